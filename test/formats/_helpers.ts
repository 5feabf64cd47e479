/** Test helpers for the format tests: batches from JS rows and back, and fast-check arbitraries. */
import fc from 'fast-check'
import { isValid, type Batch, type Column, type DataType, type Field, type Schema } from '../../src/batch.ts'

export type Cell = boolean | number | bigint | string | Uint8Array | { start: bigint | null; end: bigint | null } | null

function bitmap(nulls: boolean[]): Uint8Array | null {
  if (!nulls.some((x) => x)) return null
  const v = new Uint8Array((nulls.length + 7) >> 3)
  nulls.forEach((isNull, i) => {
    if (!isNull) v[i >> 3]! |= 1 << (i & 7)
  })
  return v
}

/** A column from JS values (bigint for int64/timestamp, {start,end} for window; null = null). */
export function columnOf(type: DataType, cells: readonly Cell[]): Column {
  const n = cells.length
  const validity = bitmap(cells.map((c) => c === null))
  switch (type) {
    case 'boolean':
      return { type, length: n, values: Uint8Array.from(cells, (c) => (c ? 1 : 0)), validity }
    case 'int32':
      return { type, length: n, values: Int32Array.from(cells, (c) => (c === null ? 0 : (c as number))), validity }
    case 'float64':
      return { type, length: n, values: Float64Array.from(cells, (c) => (c === null ? 0 : (c as number))), validity }
    case 'int64':
    case 'timestamp':
      return { type, length: n, values: BigInt64Array.from(cells, (c) => (c === null ? 0n : (c as bigint))), validity }
    case 'string': {
      // deliberately unsorted dictionary with an unused entry
      const dict: string[] = ['\u0000unused']
      const codes = new Int32Array(n)
      cells.forEach((c, i) => {
        if (c === null) return
        let k = dict.indexOf(c as string)
        if (k < 0) k = dict.push(c as string) - 1
        codes[i] = k
      })
      return { type, length: n, values: codes, validity, dictionary: dict }
    }
    case 'binary':
      return { type, length: n, values: cells.map((c) => (c === null ? new Uint8Array(0) : (c as Uint8Array))), validity }
    case 'window': {
      const w = cells as ({ start: bigint | null; end: bigint | null } | null)[]
      return {
        type,
        length: n,
        values: new Uint8Array(0),
        validity,
        children: { start: columnOf('timestamp', w.map((x) => x?.start ?? null)), end: columnOf('timestamp', w.map((x) => x?.end ?? null)) },
      }
    }
  }
}

export function batchOf(schema: Schema, rows: readonly (readonly Cell[])[]): Batch {
  return { schema, columns: schema.map((f, i) => columnOf(f.type, rows.map((r) => r[i]!))), numRows: rows.length }
}

function cellOf(c: Column, i: number): Cell {
  if (!isValid(c.validity, i)) return null
  switch (c.type) {
    case 'boolean':
      return (c.values as Uint8Array)[i] !== 0
    case 'int32':
    case 'float64':
      return (c.values as Float64Array)[i]!
    case 'int64':
    case 'timestamp':
      return (c.values as BigInt64Array)[i]!
    case 'string':
      return c.dictionary![(c.values as Int32Array)[i]!]!
    case 'binary':
      return Uint8Array.from((c.values as Uint8Array[])[i]!)
    case 'window':
      return { start: cellOf(c.children!.start, i) as bigint | null, end: cellOf(c.children!.end, i) as bigint | null }
  }
}

/** Rows of a batch as JS values (see {@link columnOf}). */
export function rowsOf(b: Batch): Cell[][] {
  for (const c of b.columns) if (c.length !== b.numRows) throw new Error(`column length ${c.length} != numRows ${b.numRows}`)
  const out: Cell[][] = []
  for (let i = 0; i < b.numRows; i++) out.push(b.columns.map((c) => cellOf(c, i)))
  return out
}

export const ts = (iso: string): bigint => BigInt(Date.parse(iso)) * 1000n

// ---------------------------------------------------------------------------------------------
// fast-check

const MAX_TS = 8_640_000_000_000_000_000n // JS Date range in µs

export function cellArb(type: DataType, opts: { nullable?: boolean; ascii?: boolean } = {}): fc.Arbitrary<Cell> {
  let a: fc.Arbitrary<Cell>
  switch (type) {
    case 'boolean':
      a = fc.boolean()
      break
    case 'int32':
      a = fc.integer()
      break
    case 'int64':
      a = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
      break
    case 'float64':
      a = fc.double()
      break
    case 'timestamp':
      a = fc.bigInt({ min: -MAX_TS, max: MAX_TS })
      break
    case 'string':
      a = fc.oneof(fc.constantFrom('', 'a', 'ORD', 'with,comma', 'with "quote"', 'line\nbreak', ' padded '), fc.string({ unit: opts.ascii ? 'grapheme-ascii' : 'binary', maxLength: 12 }))
      break
    case 'binary':
      a = fc.uint8Array({ maxLength: 8 })
      break
    case 'window':
      a = fc.record({ start: cellArb('timestamp', { nullable: false }) as fc.Arbitrary<bigint>, end: cellArb('timestamp', { nullable: false }) as fc.Arbitrary<bigint> })
      break
  }
  return opts.nullable === false ? a : fc.option(a, { nil: null, freq: 4 })
}

/** A schema of 1..maxCols fields of the given types, and rows for it. */
export function tableArb(types: readonly DataType[], opts: { minCols?: number; maxCols?: number; maxRows?: number; ascii?: boolean } = {}): fc.Arbitrary<{ schema: Schema; rows: Cell[][] }> {
  return fc
    .array(fc.constantFrom(...types), { minLength: opts.minCols ?? 1, maxLength: opts.maxCols ?? 5 })
    .chain((ts) => {
      const schema: Field[] = ts.map((type, i) => ({ name: `c${i}_${type}`, type, nullable: true }))
      const row = fc.tuple(...schema.map((f) => cellArb(f.type, { ascii: opts.ascii })))
      return fc.record({ schema: fc.constant(schema as Schema), rows: fc.array(row, { maxLength: opts.maxRows ?? 30 }) })
    })
}

/** Rows with -0 normalised (for formats that cannot tell -0 from 0) and NaN kept. */
export function normalize(rows: Cell[][]): unknown[][] {
  return rows.map((r) => r.map((c) => (typeof c === 'number' && Object.is(c, -0) ? 0 : c)))
}
