/**
 * The columnar unit of work: a {@link Batch} of {@link Column}s whose buffers are laid out exactly
 * as Apache Arrow's (see `src/arrow.ts` for the zero-copy conversion to and from apache-arrow).
 *
 * Physical layout per {@link DataType}:
 * | type        | values                                   | Arrow type                         |
 * |-------------|------------------------------------------|------------------------------------|
 * | `boolean`   | Uint8Array, one byte per value (0 / 1)    | Bool (bit-packed at the edges)     |
 * | `int32`     | Int32Array                               | Int32                              |
 * | `int64`     | BigInt64Array                            | Int64                              |
 * | `float64`   | Float64Array                             | Float64                            |
 * | `timestamp` | BigInt64Array, µs since the Unix epoch   | Timestamp(MICROSECOND, 'UTC')      |
 * | `string`    | Int32Array of codes into `dictionary`    | Dictionary<Int32, Utf8>            |
 * | `binary`    | Array of Uint8Array (edge type, e.g. Kafka key/value) | Binary                |
 * | `window`    | none; `children.start` and `children.end` are `timestamp` columns | Struct<start, end> |
 * | `struct`    | none; `children` maps each field name (in `Field.fields` order) to its column | Struct<…>      |
 *
 * `validity` is an Arrow validity bitmap (bit i of byte i>>3, LSB first; 1 = valid) or `null` when
 * every value is valid. Values under a null slot are unspecified (but always initialised).
 */
export type DataType = 'boolean' | 'int32' | 'int64' | 'float64' | 'timestamp' | 'string' | 'binary' | 'window' | 'struct'

export type Values = Uint8Array | Int32Array | BigInt64Array | Float64Array | Uint8Array[]

export interface Column {
  readonly type: DataType
  readonly length: number
  readonly values: Values
  readonly validity: Uint8Array | null
  /** For `string` columns: the strings that the Int32 codes index. */
  readonly dictionary?: readonly string[]
  /** For `window` columns (start, end) and `struct` columns (one column per field, by name). */
  readonly children?: { readonly start: Column; readonly end: Column } | { readonly [field: string]: Column }
}

export interface Field {
  readonly name: string
  readonly type: DataType
  readonly nullable: boolean
  /** For `struct` fields: the nested fields, in order. */
  readonly fields?: readonly Field[]
}

export type Schema = readonly Field[]

export interface Batch {
  readonly schema: Schema
  readonly columns: readonly Column[]
  readonly numRows: number
}

export function makeBatch(schema: Schema, columns: readonly Column[], numRows?: number): Batch {
  const n = numRows ?? (columns.length > 0 ? columns[0]!.length : 0)
  return { schema, columns, numRows: n }
}

export function emptyBatch(schema: Schema): Batch {
  return makeBatch(schema, schema.map((f) => emptyColumn(f.type, f.fields)), 0)
}

export function column(batch: Batch, name: string): Column {
  const i = batch.schema.findIndex((f) => f.name === name)
  if (i < 0) throw new Error(`no column ${name}`)
  return batch.columns[i]!
}

/** The columns of `schema`, picked by name from a batch that has them (and maybe more); the batch itself when it has exactly these. */
export function selectColumns(b: Batch, schema: Schema): Batch {
  if (b.schema === schema || (b.schema.length === schema.length && b.schema.every((f, i) => f.name === schema[i]!.name))) return b
  return makeBatch(schema, schema.map((f) => column(b, f.name)), b.numRows)
}

export function isValid(validity: Uint8Array | null, i: number): boolean {
  return validity === null || (validity[i >> 3]! & (1 << (i & 7))) !== 0
}

export function newValidity(n: number, allValid = true): Uint8Array {
  return new Uint8Array((n + 7) >> 3).fill(allValid ? 0xff : 0)
}

export function setValid(validity: Uint8Array, i: number, valid: boolean): void {
  if (valid) validity[i >> 3]! |= 1 << (i & 7)
  else validity[i >> 3]! &= ~(1 << (i & 7))
}

export function allocValues(type: DataType, n: number): Values {
  switch (type) {
    case 'boolean':
      return new Uint8Array(n)
    case 'int32':
    case 'string':
      return new Int32Array(n)
    case 'int64':
    case 'timestamp':
      return new BigInt64Array(n)
    case 'float64':
      return new Float64Array(n)
    case 'binary':
      return new Array<Uint8Array>(n).fill(new Uint8Array(0))
    case 'window':
    case 'struct':
      return new Uint8Array(0)
  }
}

export function emptyColumn(type: DataType, fields?: readonly Field[]): Column {
  if (type === 'struct') {
    return { type, length: 0, values: new Uint8Array(0), validity: null, children: Object.fromEntries((fields ?? []).map((f) => [f.name, emptyColumn(f.type, f.fields)])) }
  }
  if (type === 'window') {
    return { type, length: 0, values: new Uint8Array(0), validity: null, children: { start: emptyColumn('timestamp'), end: emptyColumn('timestamp') } }
  }
  return { type, length: 0, values: allocValues(type, 0), validity: null, ...(type === 'string' ? { dictionary: [] } : {}) }
}

/** Rows `[start, end)` of a column, sharing buffers where the validity bitmap allows it. */
export function sliceColumn(c: Column, start: number, end: number): Column {
  const n = end - start
  let validity: Uint8Array | null = null
  if (c.validity !== null) {
    if ((start & 7) === 0) validity = c.validity.subarray(start >> 3, (end + 7) >> 3)
    else {
      validity = newValidity(n, false)
      for (let i = 0; i < n; i++) if (isValid(c.validity, start + i)) setValid(validity, i, true)
    }
  }
  if (c.type === 'window') {
    return { ...c, length: n, validity, children: { start: sliceColumn(c.children!.start, start, end), end: sliceColumn(c.children!.end, start, end) } }
  }
  if (c.type === 'struct') return { ...c, length: n, validity, children: mapChildren(c, (ch) => sliceColumn(ch, start, end)) }
  const values = Array.isArray(c.values) ? c.values.slice(start, end) : (c.values as Int32Array).subarray(start, end)
  return { ...c, length: n, values, validity }
}

export function sliceBatch(b: Batch, start: number, end: number): Batch {
  return makeBatch(b.schema, b.columns.map((c) => sliceColumn(c, start, end)), end - start)
}

/** Rows picked by index (`indices` may repeat rows). */
export function takeColumn(c: Column, indices: Int32Array): Column {
  const n = indices.length
  let validity: Uint8Array | null = null
  if (c.validity !== null) {
    validity = newValidity(n, false)
    for (let i = 0; i < n; i++) if (isValid(c.validity, indices[i]!)) setValid(validity, i, true)
  }
  if (c.type === 'window') {
    return { ...c, length: n, validity, children: { start: takeColumn(c.children!.start, indices), end: takeColumn(c.children!.end, indices) } }
  }
  if (c.type === 'struct') return { ...c, length: n, validity, children: mapChildren(c, (ch) => takeColumn(ch, indices)) }
  let values: Values
  if (Array.isArray(c.values)) {
    const src = c.values
    values = Array.from(indices, (i) => src[i]!)
  } else {
    const src = c.values as Int32Array
    const out = new (src.constructor as Int32ArrayConstructor)(n)
    for (let i = 0; i < n; i++) out[i] = src[indices[i]!]!
    values = out
  }
  return { ...c, length: n, values, validity }
}

export function takeBatch(b: Batch, indices: Int32Array): Batch {
  return makeBatch(b.schema, b.columns.map((c) => takeColumn(c, indices)), indices.length)
}

/** Rows where `mask[i] !== 0` (a `boolean` column's values; nulls count as false when `validity` is given). */
export function filterBatch(b: Batch, mask: Uint8Array, validity: Uint8Array | null = null): Batch {
  let count = 0
  for (let i = 0; i < b.numRows; i++) if (mask[i] !== 0 && isValid(validity, i)) count++
  if (count === b.numRows) return b
  const idx = new Int32Array(count)
  for (let i = 0, j = 0; i < b.numRows; i++) if (mask[i] !== 0 && isValid(validity, i)) idx[j++] = i
  return takeBatch(b, idx)
}

/** Concatenates batches of one schema. String columns are re-coded into one merged dictionary. */
export function concatBatches(schema: Schema, batches: readonly Batch[]): Batch {
  const nonEmpty = batches.filter((b) => b.numRows > 0)
  if (nonEmpty.length === 0) return emptyBatch(schema)
  if (nonEmpty.length === 1) return nonEmpty[0]!
  const n = nonEmpty.reduce((s, b) => s + b.numRows, 0)
  const columns = schema.map((f, ci) => concatColumns(f.type, nonEmpty.map((b) => b.columns[ci]!), n))
  return makeBatch(schema, columns, n)
}

export function concatColumns(type: DataType, cols: readonly Column[], n: number): Column {
  const anyNull = cols.some((c) => c.validity !== null)
  let validity: Uint8Array | null = null
  if (anyNull) {
    validity = newValidity(n, false)
    let o = 0
    for (const c of cols) {
      for (let i = 0; i < c.length; i++) if (isValid(c.validity, i)) setValid(validity, o + i, true)
      o += c.length
    }
  }
  if (type === 'window') {
    return {
      type, length: n, values: new Uint8Array(0), validity,
      children: {
        start: concatColumns('timestamp', cols.map((c) => c.children!.start), n),
        end: concatColumns('timestamp', cols.map((c) => c.children!.end), n),
      },
    }
  }
  if (type === 'binary') {
    return { type, length: n, values: cols.flatMap((c) => c.values as Uint8Array[]), validity }
  }
  if (type === 'struct') {
    const first = cols[0]?.children ?? {}
    const children: Record<string, Column> = {}
    for (const [name, ch] of Object.entries(first)) children[name] = concatColumns(ch.type, cols.map((c) => (c.children as Record<string, Column>)[name]!), n)
    return { type, length: n, values: new Uint8Array(0), validity, children }
  }
  const values = allocValues(type, n) as Int32Array
  if (type === 'string') {
    const dict = new DictionaryBuilder()
    let o = 0
    for (const c of cols) {
      const remap = dict.remap(c.dictionary!)
      const src = c.values as Int32Array
      for (let i = 0; i < c.length; i++) values[o + i] = remap[src[i]!] ?? 0
      o += c.length
    }
    return { type, length: n, values, validity, dictionary: dict.strings }
  }
  let o = 0
  for (const c of cols) {
    values.set(c.values as Int32Array, o)
    o += c.length
  }
  return { type, length: n, values, validity }
}

/** A struct column's children, each mapped by `fn` (names and order kept). */
export function mapChildren(c: Column, fn: (child: Column, name: string) => Column): Record<string, Column> {
  const out: Record<string, Column> = {}
  for (const [name, ch] of Object.entries(c.children ?? {})) out[name] = fn(ch, name)
  return out
}

/** Interns strings into stable Int32 codes. */
export class DictionaryBuilder {
  readonly strings: string[] = []
  private readonly codes = new Map<string, number>()

  constructor(initial: readonly string[] = []) {
    for (const s of initial) this.code(s)
  }

  code(s: string): number {
    let c = this.codes.get(s)
    if (c === undefined) {
      c = this.strings.length
      this.strings.push(s)
      this.codes.set(s, c)
    }
    return c
  }

  /** Codes of `dictionary`'s strings in this builder: `remap[oldCode] = newCode`. */
  remap(dictionary: readonly string[]): Int32Array {
    const out = new Int32Array(dictionary.length)
    for (let i = 0; i < dictionary.length; i++) out[i] = this.code(dictionary[i]!)
    return out
  }

  get size(): number {
    return this.strings.length
  }
}
