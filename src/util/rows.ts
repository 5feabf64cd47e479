import {
  type Batch, type Column, type Schema, DictionaryBuilder, allocValues, isValid, makeBatch, newValidity, setValid,
} from '../batch.ts'
import { SourceError } from '../errors.ts'
import { parseTimestampUs } from './time.ts'

/** A plain row at the API's edges (MemoryStream.addData, collect()). */
export type Row = Record<string, unknown>

/**
 * Rows → one columnar Batch (the only place rows become columns). Timestamps may be epoch
 * milliseconds (number), Date, bigint µs, or ISO-8601 text (UTC unless a zone is given).
 * @throws SourceError `INVALID_ROW` naming the row index and column for a value of the wrong type.
 */
export function rowsToBatch(schema: Schema, rows: readonly Row[]): Batch {
  const n = rows.length
  const columns = schema.map((f): Column => {
    let validity: Uint8Array | null = null
    const nullAt = (i: number) => {
      validity ??= newValidity(n)
      setValid(validity, i, false)
    }
    const bad = (i: number, v: unknown): never => {
      throw new SourceError('INVALID_ROW', `Row ${i}: column '${f.name}' expects ${f.type}, got ${typeof v} ${String(v)}`)
    }
    if (f.type === 'window') {
      const start = new BigInt64Array(n), end = new BigInt64Array(n)
      for (let i = 0; i < n; i++) {
        const v = rows[i]![f.name] as { start: unknown; end: unknown } | null | undefined
        if (v == null) { nullAt(i); continue }
        start[i] = toMicros(v.start) ?? bad(i, v.start)
        end[i] = toMicros(v.end) ?? bad(i, v.end)
      }
      return {
        type: 'window', length: n, values: new Uint8Array(0), validity,
        children: { start: { type: 'timestamp', length: n, values: start, validity: null }, end: { type: 'timestamp', length: n, values: end, validity: null } },
      }
    }
    if (f.type === 'struct') {
      const sub = rows.map((r, i) => {
        const v = r[f.name]
        if (v == null) { nullAt(i); return {} }
        if (typeof v !== 'object') bad(i, v)
        return v as Row
      })
      const inner = rowsToBatch(f.fields ?? [], sub)
      return { type: 'struct', length: n, values: new Uint8Array(0), validity, children: Object.fromEntries((f.fields ?? []).map((x, k) => [x.name, inner.columns[k]!])) }
    }
    if (f.type === 'string') {
      const dict = new DictionaryBuilder()
      const codes = new Int32Array(n)
      for (let i = 0; i < n; i++) {
        const v = rows[i]![f.name]
        if (v == null) nullAt(i)
        else codes[i] = dict.code(String(v))
      }
      return { type: 'string', length: n, values: codes, validity, dictionary: dict.strings }
    }
    const values = allocValues(f.type, n)
    for (let i = 0; i < n; i++) {
      const v = rows[i]![f.name]
      if (v == null) { nullAt(i); continue }
      switch (f.type) {
        case 'timestamp': (values as BigInt64Array)[i] = toMicros(v) ?? bad(i, v); break
        case 'int64': (values as BigInt64Array)[i] = typeof v === 'bigint' ? v : Number.isInteger(v) ? BigInt(v as number) : bad(i, v); break
        case 'int32': (values as Int32Array)[i] = Number.isInteger(v) ? (v as number) : bad(i, v); break
        case 'float64': (values as Float64Array)[i] = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : bad(i, v); break
        case 'boolean': (values as Uint8Array)[i] = typeof v === 'boolean' ? (v ? 1 : 0) : bad(i, v); break
        case 'binary': (values as Uint8Array[])[i] = v instanceof Uint8Array ? v : typeof v === 'string' ? new TextEncoder().encode(v) : bad(i, v); break
      }
    }
    return { type: f.type, length: n, values, validity }
  })
  return makeBatch(schema, columns, n)
}

function toMicros(v: unknown): bigint | null {
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.round(v * 1000)) : null
  if (v instanceof Date) return BigInt(v.getTime()) * 1000n
  if (typeof v === 'bigint') return v
  if (typeof v === 'string') return parseTimestampUs(v)
  return null
}

/**
 * Batch → plain rows, for collect() and the console: timestamps as epoch milliseconds (number,
 * fractional below 1 ms), windows as `{ start, end }` in ms, longs as numbers, nulls as null.
 */
export function batchToRows(batch: Batch): Row[] {
  const rows: Row[] = Array.from({ length: batch.numRows }, () => ({}))
  batch.schema.forEach((f, ci) => {
    const c = batch.columns[ci]!
    for (let i = 0; i < batch.numRows; i++) rows[i]![f.name] = valueAt(c, i)
  })
  return rows
}

export function valueAt(c: Column, i: number): unknown {
  if (!isValid(c.validity, i)) return null
  switch (c.type) {
    case 'timestamp': return Number((c.values as BigInt64Array)[i]!) / 1000
    case 'int64': return Number((c.values as BigInt64Array)[i]!)
    case 'string': return c.dictionary![(c.values as Int32Array)[i]!]
    case 'boolean': return (c.values as Uint8Array)[i] !== 0
    case 'window': return { start: valueAt(c.children!.start, i), end: valueAt(c.children!.end, i) }
    case 'struct': return Object.fromEntries(Object.entries(c.children ?? {}).map(([k, ch]) => [k, valueAt(ch, i)]))
    default: return (c.values as Int32Array | Float64Array | Uint8Array[])[i]
  }
}
