/**
 * Conversion between Sluice {@link Batch}es and apache-arrow `RecordBatch` / `Table`, plus Arrow IPC
 * (file and stream) helpers. Buffers are shared wherever the two layouts agree (Int32, Int64,
 * Float64, Timestamp(µs), dictionary codes, validity bitmaps at a byte-aligned offset); only
 * booleans (bytes vs bits), UTF-8 dictionaries (string[] vs bytes) and widened types are copied.
 *
 * Sluice → Arrow: timestamp → Timestamp(MICROSECOND, 'UTC'), string → Dictionary<Int32, Utf8>,
 * window → Struct<start, end>, binary → Binary.
 *
 * Arrow → Sluice: Dictionary<Int*, Utf8> → string (codes, sharing the decoded dictionary strings
 * between batches that share the Arrow dictionary); Utf8 / LargeUtf8 → string (dictionary-encoded
 * here); Int8/16/32, Uint8/16 → int32; Int64, Uint32, Uint64 → int64 (Uint64 above 2^63-1 wraps);
 * Float16/32/64 → float64; Bool → boolean; Timestamp (any unit or zone) → timestamp µs (a zone-less
 * timestamp is read as UTC); Date32 / Date64 → timestamp at midnight UTC; Struct<start, end> of
 * timestamps → window; Binary / LargeBinary → binary. Anything else is a
 * `SourceError('UNSUPPORTED_TYPE')` naming the column.
 */
import {
  Binary,
  Bool,
  Data,
  Dictionary,
  Field as ArrowField,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchReader,
  Schema as ArrowSchema,
  Struct,
  Table,
  tableToIPC,
  TimeUnit,
  Timestamp,
  Type,
  Utf8,
  Vector,
  type DataType as ArrowDataType,
} from 'apache-arrow'
import { DictionaryBuilder, emptyBatch, isValid, newValidity, setValid, type Batch, type Column, type DataType, type Field, type Schema } from './batch.ts'
import { SourceError } from './errors.ts'

// ---------------------------------------------------------------------------------------------
// Sluice → Arrow

const encoder = new TextEncoder()

/** Arrow Utf8 data built for a dictionary array, keyed by identity; rebuilt if the array grew. */
const utf8Cache = new WeakMap<readonly string[], { length: number; data: Data<Utf8> }>()

function utf8Data(strings: readonly string[]): Data<Utf8> {
  const hit = utf8Cache.get(strings)
  if (hit && hit.length === strings.length) return hit.data
  const offsets = new Int32Array(strings.length + 1)
  let bytes = new Uint8Array(Math.max(64, strings.length * 8))
  let o = 0
  for (let i = 0; i < strings.length; i++) {
    const s = strings[i]!
    // worst case 3 bytes per UTF-16 unit
    if (o + s.length * 3 > bytes.length) {
      const grown = new Uint8Array(Math.max(bytes.length * 2, o + s.length * 3))
      grown.set(bytes.subarray(0, o))
      bytes = grown
    }
    o += encoder.encodeInto(s, bytes.subarray(o)).written
    offsets[i + 1] = o
  }
  const data = makeData({ type: new Utf8(), length: strings.length, nullCount: 0, valueOffsets: offsets, data: bytes.subarray(0, o) })
  utf8Cache.set(strings, { length: strings.length, data })
  return data
}

const timestampType = (): Timestamp => new Timestamp(TimeUnit.MICROSECOND, 'UTC')

function windowStructType(): Struct {
  return new Struct([new ArrowField('start', timestampType(), true), new ArrowField('end', timestampType(), true)])
}

/** The Arrow type of a Sluice type (a fresh Dictionary id for strings unless `dictionaryId` is given; `fields` for struct). */
export function arrowType(type: DataType, dictionaryId?: number, fields?: readonly Field[]): ArrowDataType {
  switch (type) {
    case 'boolean':
      return new Bool()
    case 'int32':
      return new Int32()
    case 'int64':
      return new Int64()
    case 'float64':
      return new Float64()
    case 'timestamp':
      return timestampType()
    case 'string':
      return new Dictionary(new Utf8(), new Int32(), dictionaryId)
    case 'binary':
      return new Binary()
    case 'window':
      return windowStructType()
    case 'struct':
      return new Struct((fields ?? []).map((f) => new ArrowField(f.name, arrowType(f.type, undefined, f.fields), true)))
  }
}

/** An Arrow schema for a Sluice schema (one Dictionary id per string field), with optional schema-level custom metadata. */
export function schemaToArrowSchema(schema: Schema, metadata?: ReadonlyMap<string, string>): ArrowSchema {
  return new ArrowSchema(schema.map((f) => new ArrowField(f.name, arrowType(f.type, undefined, f.fields), f.nullable)), metadata === undefined ? undefined : new Map(metadata))
}

function nullCountOf(validity: Uint8Array | null, n: number): number {
  if (validity === null) return 0
  let valid = 0
  const full = n >> 3
  for (let i = 0; i < full; i++) valid += POPCOUNT[validity[i]!]!
  for (let i = full << 3; i < n; i++) if (isValid(validity, i)) valid++
  return n - valid
}

const POPCOUNT = (() => {
  const t = new Uint8Array(256)
  for (let i = 0; i < 256; i++) t[i] = (i & 1) + t[i >> 1]!
  return t
})()

function columnToData(c: Column, type: ArrowDataType, dictionary?: Data<Utf8>, codes?: Int32Array): Data {
  const n = c.length
  const nullCount = nullCountOf(c.validity, n)
  const nullBitmap = nullCount === 0 ? undefined : c.validity!
  switch (c.type) {
    case 'boolean': {
      const bytes = c.values as Uint8Array
      const bits = new Uint8Array((n + 7) >> 3)
      for (let i = 0; i < n; i++) if (bytes[i]) bits[i >> 3]! |= 1 << (i & 7)
      return makeData({ type: type as Bool, length: n, nullCount, nullBitmap, data: bits })
    }
    case 'int32':
    case 'int64':
    case 'float64':
    case 'timestamp':
      return makeData({ type: type as Int32, length: n, nullCount, nullBitmap, data: c.values as Int32Array })
    case 'string':
      return makeData({
        type: type as Dictionary<Utf8, Int32>,
        length: n,
        nullCount,
        nullBitmap,
        data: codes ?? (c.values as Int32Array),
        dictionary: new Vector([dictionary ?? utf8Data(c.dictionary ?? [])]),
      })
    case 'binary': {
      const vals = c.values as Uint8Array[]
      const offsets = new Int32Array(n + 1)
      let total = 0
      for (let i = 0; i < n; i++) {
        total += vals[i]?.length ?? 0
        offsets[i + 1] = total
      }
      const bytes = new Uint8Array(total)
      for (let i = 0; i < n; i++) if (vals[i]) bytes.set(vals[i]!, offsets[i]!)
      return makeData({ type: type as Binary, length: n, nullCount, nullBitmap, valueOffsets: offsets, data: bytes })
    }
    case 'window': {
      const st = type as Struct
      const children = [
        columnToData(c.children!.start, st.children[0]!.type),
        columnToData(c.children!.end, st.children[1]!.type),
      ]
      return makeData({ type: st, length: n, nullCount, nullBitmap, children })
    }
    case 'struct': {
      const st = type as Struct
      const ch = c.children as Record<string, Column>
      const children = st.children.map((f) => columnToData(ch[f.name]!, f.type))
      return makeData({ type: st, length: n, nullCount, nullBitmap, children })
    }
  }
}

function batchData(batch: Batch, arrowSchema: ArrowSchema, dicts?: (Data<Utf8> | undefined)[], codes?: (Int32Array | undefined)[]): RecordBatch {
  const children = batch.columns.map((c, i) => columnToData(c, arrowSchema.fields[i]!.type, dicts?.[i], codes?.[i]))
  const data = makeData({ type: new Struct(arrowSchema.fields), length: batch.numRows, nullCount: 0, children })
  return new RecordBatch(arrowSchema, data)
}

/** One Batch as an Arrow RecordBatch (buffers shared except booleans, binary and the UTF-8 dictionaries). */
export function batchToArrow(batch: Batch): RecordBatch {
  return batchData(batch, schemaToArrowSchema(batch.schema))
}

/**
 * Batches of one schema as an Arrow Table. String columns get one dictionary per column across all
 * batches (as the IPC file format requires); codes are re-mapped only for batches whose dictionary
 * is not a prefix of the merged one.
 */
export function tableFromBatches(batches: readonly Batch[], schema?: Schema, metadata?: ReadonlyMap<string, string>): Table {
  const sch = schema ?? batches[0]?.schema
  if (sch === undefined) return new Table()
  // an empty input still gets one (0-row) batch: apache-arrow's empty Table builds struct
  // children that its IPC writer cannot serialise
  if (batches.length === 0) batches = [emptyBatch(sch)]
  const arrowSchema = schemaToArrowSchema(sch, metadata)
  const dicts: (Data<Utf8> | undefined)[][] = batches.map(() => [])
  const codes: (Int32Array | undefined)[][] = batches.map(() => [])
  sch.forEach((f, ci) => {
    if (f.type !== 'string') return
    const first = batches[0]!.columns[ci]!.dictionary ?? []
    if (batches.every((b) => (b.columns[ci]!.dictionary ?? []) === first)) {
      const d = utf8Data(first)
      batches.forEach((_, bi) => (dicts[bi]![ci] = d))
      return
    }
    const builder = new DictionaryBuilder()
    batches.forEach((b, bi) => {
      const col = b.columns[ci]!
      const remap = builder.remap(col.dictionary ?? [])
      let identity = true
      for (let k = 0; k < remap.length; k++) if (remap[k] !== k) { identity = false; break }
      if (!identity) {
        const src = col.values as Int32Array
        const out = new Int32Array(col.length)
        for (let k = 0; k < col.length; k++) out[k] = remap[src[k]!] ?? 0
        codes[bi]![ci] = out
      }
    })
    const d = utf8Data(builder.strings)
    batches.forEach((_, bi) => (dicts[bi]![ci] = d))
  })
  return new Table(batches.map((b, bi) => batchData(b, arrowSchema, dicts[bi], codes[bi])))
}

/**
 * Serialises batches as Arrow IPC (`'file'` = Feather v2 / `.arrow`, `'stream'` = `.arrows`);
 * `metadata` becomes the schema's custom key-value metadata (read back by {@link ipcToBatches}).
 */
export function batchesToIPC(schema: Schema, batches: readonly Batch[], format: 'file' | 'stream' = 'file', metadata?: ReadonlyMap<string, string>): Uint8Array {
  return tableToIPC(tableFromBatches(batches, schema, metadata), format)
}

// ---------------------------------------------------------------------------------------------
// Arrow → Sluice

function unsupported(name: string, type: ArrowDataType): SourceError {
  return new SourceError('UNSUPPORTED_TYPE', `column '${name}' has Arrow type ${String(type)}, which Sluice cannot read`)
}

/** The Sluice type of an Arrow type, or a SourceError UNSUPPORTED_TYPE naming the column. */
export function arrowTypeToDataType(type: ArrowDataType, name: string): DataType {
  switch (type.typeId) {
    case Type.Bool:
      return 'boolean'
    case Type.Int: {
      const t = type as unknown as { bitWidth: number; isSigned: boolean }
      if (t.bitWidth < 32 || (t.bitWidth === 32 && t.isSigned)) return 'int32'
      return 'int64'
    }
    case Type.Float:
      return 'float64'
    case Type.Timestamp:
    case Type.Date:
      return 'timestamp'
    case Type.Utf8:
    case Type.LargeUtf8:
      return 'string'
    case Type.Binary:
    case Type.LargeBinary:
      return 'binary'
    case Type.Dictionary: {
      const d = type as unknown as Dictionary
      if (d.dictionary.typeId === Type.Utf8 || d.dictionary.typeId === Type.LargeUtf8) return 'string'
      throw unsupported(name, type)
    }
    case Type.Struct: {
      const ch = (type as Struct).children
      if (
        ch.length === 2 &&
        ch[0]!.name === 'start' &&
        ch[1]!.name === 'end' &&
        ch.every((f) => f.type.typeId === Type.Timestamp)
      ) {
        return 'window'
      }
      throw unsupported(name, type)
    }
    default:
      throw unsupported(name, type)
  }
}

export function arrowSchemaToSchema(schema: ArrowSchema): Schema {
  return schema.fields.map((f): Field => ({ name: f.name, type: arrowTypeToDataType(f.type, f.name), nullable: f.nullable }))
}

/** Validity of `data` rebased to offset 0 (shared when the offset is byte-aligned). */
function validityOf(data: Data): Uint8Array | null {
  const { nullBitmap, offset, length } = data
  if (!nullBitmap || nullBitmap.length === 0 || data.nullCount === 0) return null
  if ((offset & 7) === 0) return nullBitmap.subarray(offset >> 3, (offset + length + 7) >> 3)
  const out = newValidity(length, false)
  for (let i = 0; i < length; i++) if (isValid(nullBitmap, offset + i)) setValid(out, i, true)
  return out
}

/** Decoded strings of an Arrow dictionary Vector, shared by every batch that shares the Vector. */
const dictStringsCache = new WeakMap<object, { strings: string[]; nulls: Uint8Array | null }>()

function dictionaryStrings(dict: Vector): { strings: string[]; nulls: Uint8Array | null } {
  let hit = dictStringsCache.get(dict)
  if (!hit) {
    const strings = new Array<string>(dict.length)
    let nulls: Uint8Array | null = null
    let i = 0
    for (const d of dict.data) {
      const col = utf8Column(d as Data)
      const v = col.values as Int32Array
      for (let k = 0; k < d.length; k++, i++) {
        if (isValid(col.validity, k)) strings[i] = col.dictionary![v[k]!]!
        else {
          strings[i] = ''
          nulls ??= new Uint8Array(dict.length)
          nulls[i] = 1
        }
      }
    }
    hit = { strings, nulls }
    dictStringsCache.set(dict, hit)
  }
  return hit
}

const utf8Decoder = new TextDecoder()

/** Utf8 / LargeUtf8 data dictionary-encoded into a string column. */
function utf8Column(data: Data): Column {
  const n = data.length
  const validity = validityOf(data)
  const offsets = data.valueOffsets as Int32Array | BigInt64Array
  const bytes = (data.values as Uint8Array) ?? new Uint8Array(0)
  const codes = new Int32Array(n)
  const builder = new DictionaryBuilder()
  const big = offsets instanceof BigInt64Array
  // Dedupe by a hash of the bytes first, so each distinct string is decoded once: hash → code,
  // verified against the bytes of the code's first occurrence.
  const byHash = new Map<number, number>()
  const firstAt: number[] = []
  const firstEnd: number[] = []
  for (let i = 0; i < n; i++) {
    if (!isValid(validity, i)) continue
    const a = big ? Number(offsets[i]) : (offsets[i] as number)
    const b = big ? Number(offsets[i + 1]) : (offsets[i + 1] as number)
    let h = 0x811c9dc5 ^ (b - a)
    for (let k = a; k < b; k++) h = Math.imul(h ^ bytes[k]!, 0x01000193)
    const c = byHash.get(h)
    if (c !== undefined) {
      const fa = firstAt[c]!
      const fe = firstEnd[c]!
      let same = fe - fa === b - a
      for (let k = 0; same && k < b - a; k++) same = bytes[fa + k] === bytes[a + k]
      if (same) {
        codes[i] = c
        continue
      }
    }
    const code = builder.code(utf8Decoder.decode(bytes.subarray(a, b)))
    if (code === firstAt.length) {
      firstAt.push(a)
      firstEnd.push(b)
    }
    if (c === undefined) byHash.set(h, code)
    codes[i] = code
  }
  return { type: 'string', length: n, values: codes, validity, dictionary: builder.strings }
}

function toInt32(values: ArrayLike<number>, n: number): Int32Array {
  if (values instanceof Int32Array) return values.subarray(0, n)
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) out[i] = values[i]!
  return out
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * 2 ** -14 * (f / 1024)
  if (e === 31) return f ? NaN : s * Infinity
  return s * 2 ** (e - 15) * (1 + f / 1024)
}

function timestampValues(data: Data, name: string): BigInt64Array {
  const n = data.length
  const t = data.type as unknown as { typeId: Type; unit: number }
  if (t.typeId === Type.Date) {
    if (t.unit === 0 /* DateUnit.DAY */) {
      const days = data.values as Int32Array
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) out[i] = BigInt(days[i]!) * 86_400_000_000n
      return out
    }
    const ms = data.values as BigInt64Array
    const out = new BigInt64Array(n)
    for (let i = 0; i < n; i++) out[i] = ms[i]! * 1000n
    return out
  }
  if (t.typeId !== Type.Timestamp) throw unsupported(name, data.type)
  const v = data.values as BigInt64Array
  switch (t.unit) {
    case TimeUnit.MICROSECOND:
      return v.subarray(0, n)
    case TimeUnit.SECOND:
    case TimeUnit.MILLISECOND: {
      const f = t.unit === TimeUnit.SECOND ? 1_000_000n : 1000n
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) out[i] = v[i]! * f
      return out
    }
    default: {
      // nanoseconds: floor to µs
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) {
        const x = v[i]!
        const q = x / 1000n
        out[i] = x < 0n && q * 1000n !== x ? q - 1n : q
      }
      return out
    }
  }
}

/** One Arrow Data (a column of one record batch) as a Sluice column. */
export function dataToColumn(data: Data, name: string): Column {
  const type = arrowTypeToDataType(data.type, name)
  const n = data.length
  switch (type) {
    case 'boolean': {
      const bits = data.values as Uint8Array
      const out = new Uint8Array(n)
      const off = data.offset
      for (let i = 0; i < n; i++) out[i] = (bits[(off + i) >> 3]! >> ((off + i) & 7)) & 1
      return { type, length: n, values: out, validity: validityOf(data) }
    }
    case 'int32':
      return { type, length: n, values: toInt32((data.values ?? new Int32Array(0)) as Int32Array, n), validity: validityOf(data) }
    case 'int64': {
      const v = data.values as BigInt64Array | BigUint64Array | Uint32Array
      let values: BigInt64Array
      if (v instanceof BigInt64Array) values = v.subarray(0, n)
      else if (v instanceof BigUint64Array) values = new BigInt64Array(v.buffer, v.byteOffset, n)
      else {
        values = new BigInt64Array(n)
        for (let i = 0; i < n; i++) values[i] = BigInt(v[i]!)
      }
      return { type, length: n, values, validity: validityOf(data) }
    }
    case 'float64': {
      const v = data.values as Float64Array | Float32Array | Uint16Array
      let values: Float64Array
      if (v instanceof Float64Array) values = v.subarray(0, n)
      else if (v instanceof Uint16Array) {
        values = new Float64Array(n)
        for (let i = 0; i < n; i++) values[i] = halfToFloat(v[i]!)
      } else values = Float64Array.from(v.subarray(0, n))
      return { type, length: n, values, validity: validityOf(data) }
    }
    case 'timestamp':
      return { type, length: n, values: timestampValues(data, name), validity: validityOf(data) }
    case 'string': {
      if (data.type.typeId !== Type.Dictionary) return utf8Column(data)
      const { strings, nulls } = dictionaryStrings(data.dictionary!)
      const codes = toInt32(data.values as Int32Array, n)
      let validity = validityOf(data)
      if (nulls) {
        // a null dictionary entry makes the rows that point at it null
        const v = newValidity(n, true)
        for (let i = 0; i < n; i++) if (!isValid(validity, i) || nulls[codes[i]!]) setValid(v, i, false)
        validity = v
      }
      return { type, length: n, values: codes, validity, dictionary: strings }
    }
    case 'binary': {
      const offsets = data.valueOffsets as Int32Array | BigInt64Array
      const bytes = (data.values as Uint8Array) ?? new Uint8Array(0)
      const validity = validityOf(data)
      const out = new Array<Uint8Array>(n)
      for (let i = 0; i < n; i++) out[i] = bytes.subarray(Number(offsets[i]), Number(offsets[i + 1]))
      return { type, length: n, values: out, validity }
    }
    case 'window': {
      const [s, e] = data.children
      return {
        type,
        length: n,
        values: new Uint8Array(0),
        validity: validityOf(data),
        children: { start: dataToColumn(s!, `${name}.start`), end: dataToColumn(e!, `${name}.end`) },
      }
    }    case 'struct':
      // arrowTypeToDataType never yields 'struct' (reading general Arrow structs is not supported yet)
      throw unsupported(name, data.type)
  }
}

/** One Batch per record batch of `table`. */
export function arrowToBatches(table: Table): Batch[] {
  const schema = arrowSchemaToSchema(table.schema)
  return table.batches.map((rb) => recordBatchToBatch(rb, schema))
}

export function recordBatchToBatch(rb: RecordBatch, schema: Schema = arrowSchemaToSchema(rb.schema)): Batch {
  const columns = schema.map((f, i) => dataToColumn(rb.data.children[i]!, f.name))
  return { schema, columns, numRows: rb.numRows }
}

/**
 * Parses Arrow IPC bytes (file or stream format, detected by the library). The schema is kept even
 * when there are no record batches. Errors are `SourceError('CORRUPT_FILE')` with the cause.
 */
export function ipcToBatches(bytes: Uint8Array): { schema: Schema; batches: Batch[]; metadata: ReadonlyMap<string, string> } {
  let arrowSchema: ArrowSchema
  let rbs: RecordBatch[]
  try {
    const reader = RecordBatchReader.from(bytes)
    reader.open()
    arrowSchema = reader.schema // read before readAll(), which closes the reader
    if (!arrowSchema) throw new Error('no Arrow schema message')
    rbs = reader.readAll()
  } catch (e) {
    throw new SourceError('CORRUPT_FILE', `invalid Arrow IPC data: ${(e as Error)?.message ?? e}`, { cause: e })
  }
  const schema = arrowSchemaToSchema(arrowSchema)
  return { schema, batches: rbs.map((rb) => recordBatchToBatch(rb, schema)), metadata: arrowSchema.metadata }
}
