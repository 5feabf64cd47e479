/**
 * CSV via csv-parse (sync API), with Spark's options and defaults:
 *
 * - `header` (default false): the first record holds the column names; otherwise columns are
 *   `_c0`, `_c1`, … (as many as the first record has).
 * - `sep` / `delimiter` (default ','); quotes are `"` with `""` escapes; blank lines are skipped.
 * - `inferSchema` (default false → every column is a string): int64 when every sampled value of the
 *   first 1000 records is an integer, float64 when numeric, boolean for true/false, else string.
 * - `schema`: columns are matched **by position** (as Spark does), the corrupt-record column aside.
 * - An unquoted empty field is null; a quoted empty field (`""`) is the empty string.
 * - `mode` / `columnNameOfCorruptRecord`: as for JSON (src/formats/json.ts). A record whose number
 *   of fields differs from the schema's, a value that does not parse as its column's type, or an
 *   unterminated quote is malformed.
 * - Timestamps: ISO-8601 (no zone = UTC) or a number of epoch milliseconds.
 *
 * Encoding writes a header line, `,`-separated, `"`-quoting strings that need it (and empty strings,
 * so that they stay distinct from nulls, which are written as nothing), timestamps as ISO-8601 UTC.
 * binary and window columns are rejected (SinkError UNSUPPORTED_TYPE).
 */
import { parse } from 'csv-parse/sync'
import { isValid, type Batch, type Column, type DataType, type Field, type Schema } from '../batch.ts'
import { OptionError, SinkError, SourceError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import type { FileFormat, OpenedFile, ReadOptions, SyncFile } from './format.ts'
import { mergeInferred } from './json.ts'
import { boolOption, ColumnBuilder, decodeText, formatTimestamp, millisToMicros, parseMode, parseTimestamp, readWhole, type CellValue } from './values.ts'

const INFER_SAMPLE = 1000
const INT_RE = /^[+-]?\d+$/
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/** A parsed record: its fields (null = unquoted empty), start line (1-based) and raw text, or a parse error. */
interface Rec {
  fields: (string | null)[] | null
  line: number
  raw: string
  error?: string
}

const MISMATCH = Symbol('mismatch')

function parseFloatCell(s: string): number | typeof MISMATCH {
  const t = s.trim()
  if (FLOAT_RE.test(t)) return Number(t)
  switch (t) {
    case 'NaN':
      return NaN
    case 'Infinity':
    case '+Infinity':
    case 'Inf':
      return Infinity
    case '-Infinity':
    case '-Inf':
      return -Infinity
  }
  return MISMATCH
}

/** A CSV field as a cell of `type` (`null` for null, MISMATCH when it does not parse). */
export function csvCell(type: DataType, s: string | null): CellValue | null | typeof MISMATCH {
  if (s === null) return null
  switch (type) {
    case 'string':
      return s
    case 'boolean': {
      const t = s.trim().toLowerCase()
      return t === 'true' ? true : t === 'false' ? false : MISMATCH
    }
    case 'int32': {
      const t = s.trim()
      if (!INT_RE.test(t)) return MISMATCH
      const n = Number(t)
      return n >= -2147483648 && n <= 2147483647 ? n : MISMATCH
    }
    case 'int64': {
      const t = s.trim()
      if (!INT_RE.test(t)) return MISMATCH
      const n = BigInt(t)
      return n >= INT64_MIN && n <= INT64_MAX ? n : MISMATCH
    }
    case 'float64':
      return parseFloatCell(s)
    case 'timestamp': {
      const t = s.trim()
      if (INT_RE.test(t)) return BigInt(t) * 1000n
      if (FLOAT_RE.test(t)) return millisToMicros(Number(t)) ?? MISMATCH
      return parseTimestamp(t) ?? MISMATCH
    }
    default:
      return MISMATCH
  }
}

function inferCell(s: string | null): DataType | null {
  if (s === null) return null
  const t = s.trim()
  if (INT_RE.test(t)) {
    const n = BigInt(t)
    return n >= INT64_MIN && n <= INT64_MAX ? 'int64' : 'float64'
  }
  if (parseFloatCell(t) !== MISMATCH) return 'float64'
  const l = t.toLowerCase()
  if (l === 'true' || l === 'false') return 'boolean'
  return 'string'
}

/** Line breaks in `s` (`\r\n`, `\n` or `\r`), and how many of them lead it (blank lines). */
function lineBreaks(s: string): { total: number; leading: number } {
  let total = 0
  let leading = -1
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 13 || c === 10) {
      total++
      if (c === 13 && s.charCodeAt(i + 1) === 10) i++
    } else if (leading < 0) leading = total
  }
  return { total, leading: leading < 0 ? total : leading }
}

/** Which fields of a raw record were quoted (to tell `""`, the empty string, from an unquoted empty field, null). */
function quotedFields(raw: string, sep: string): boolean[] {
  const out: boolean[] = []
  let i = 0
  while (i < raw.length && (raw[i] === '\r' || raw[i] === '\n')) i++
  for (;;) {
    if (raw[i] === '"') {
      out.push(true)
      i++
      for (; i < raw.length; i++) {
        if (raw[i] === '"') {
          if (raw[i + 1] === '"') i++
          else break
        }
      }
      i++
    } else out.push(false)
    while (i < raw.length && !raw.startsWith(sep, i) && raw[i] !== '\n' && raw[i] !== '\r') i++
    if (i >= raw.length || !raw.startsWith(sep, i)) return out
    i += sep.length
  }
}

function parseRecords(text: string, sep: string): Rec[] {
  const skipped: { raw: string; lines?: number; error: string }[] = []
  // csv-parse's `cast` / `on_record` / `info` hooks cost 2-15x; raw records are enough
  const parsed = parse(text, {
    delimiter: sep,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    raw: true,
    on_skip: (err: { message?: string; lines?: number } | undefined, raw: string | undefined) => {
      skipped.push({ raw: raw ?? '', lines: err?.lines, error: err?.message ?? 'unparsable record' })
      return undefined
    },
  } as never) as { record: string[]; raw: string }[]
  const recs: Rec[] = new Array(parsed.length)
  let line = 1
  for (let k = 0; k < parsed.length; k++) {
    const { record, raw } = parsed[k]!
    const lb = lineBreaks(raw)
    const fields: (string | null)[] = record
    if (fields.includes('')) {
      const quoted = raw.includes('"') ? quotedFields(raw, sep) : null
      for (let i = 0; i < fields.length; i++) if (fields[i] === '' && !quoted?.[i]) fields[i] = null
    }
    recs[k] = { fields, line: line + lb.leading, raw: raw.replace(/^[\r\n]+|[\r\n]+$/g, '') }
    line += lb.total
  }
  // with relax_quotes the only record csv-parse gives up on is an unterminated quote, which runs to
  // the end of the file
  for (const sk of skipped) {
    const lb = lineBreaks(sk.raw)
    recs.push({ fields: null, line: line + lb.leading, raw: sk.raw.replace(/^[\r\n]+|[\r\n]+$/g, ''), error: sk.error })
    line += lb.total
  }
  return recs
}

class CsvFile implements OpenedFile {
  readonly path: string
  readonly schema: Schema
  readonly numRows: number
  private readonly recs: Rec[]
  private readonly mode: 'PERMISSIVE' | 'DROPMALFORMED' | 'FAILFAST'
  private readonly corruptIdx: number
  /** Schema index of each CSV position. */
  private readonly dataCols: number[]
  private readonly dropped: Uint8Array
  private droppedCount = 0

  constructor(path: string, recs: Rec[], options: ReadOptions) {
    this.path = path
    this.mode = parseMode(options.mode)
    const corruptName = options.columnNameOfCorruptRecord ?? '_corrupt_record'
    const header = boolOption(options.header, false)
    let names: string[] | null = null
    if (header && recs.length > 0) {
      const h = recs.shift()!
      names = (h.fields ?? []).map((n, i) => (n === null || n === '' ? `_c${i}` : n))
    }
    this.recs = recs
    this.numRows = recs.length
    if (options.schema) {
      this.schema = options.schema
    } else {
      const first = names ?? recs.find((r) => r.fields)?.fields?.map((_, i) => `_c${i}`) ?? []
      const infer = boolOption(options.inferSchema, false)
      const types: (DataType | null)[] = first.map(() => (infer ? null : 'string'))
      if (infer) {
        for (const r of recs.slice(0, INFER_SAMPLE)) {
          if (!r.fields || r.fields.length !== first.length) continue
          r.fields.forEach((v, i) => (types[i] = mergeInferred(types[i]!, inferCell(v))))
        }
      }
      this.schema = first.map((name, i): Field => ({ name, type: types[i] ?? 'string', nullable: true }))
    }
    this.corruptIdx = this.schema.findIndex((f) => f.name === corruptName)
    if (this.corruptIdx >= 0 && this.schema[this.corruptIdx]!.type !== 'string') {
      throw new OptionError('INVALID_OPTION', `the corrupt-record column '${corruptName}' must be a string column, not ${this.schema[this.corruptIdx]!.type}`)
    }
    for (const f of this.schema) {
      if (f.type === 'binary' || f.type === 'window' || f.type === 'struct') {
        throw new SourceError('UNSUPPORTED_TYPE', `${path}: CSV cannot hold the ${f.type} column '${f.name}'`)
      }
    }
    this.dataCols = this.schema.map((_, i) => i).filter((i) => i !== this.corruptIdx)
    this.dropped = new Uint8Array(recs.length)
  }

  get droppedMalformed(): number {
    return this.droppedCount
  }

  async read(start: number, end: number): Promise<Batch> {
    start = Math.max(0, Math.floor(start))
    end = Math.min(this.numRows, Math.floor(end))
    const n = Math.max(0, end - start)
    const schema = this.schema
    const builders = schema.map((f) => new ColumnBuilder(f.type, n))
    const cells = new Array<CellValue | null>(schema.length).fill(null)
    const width = this.dataCols.length
    let r = 0
    for (let ri = start; ri < end; ri++) {
      const rec = this.recs[ri]!
      let bad: string | null = null
      if (!rec.fields) bad = rec.error ?? 'unparsable record'
      else if (rec.fields.length !== width) bad = `expected ${width} fields, got ${rec.fields.length}`
      else {
        for (let p = 0; p < width; p++) {
          const c = this.dataCols[p]!
          const f = schema[c]!
          const v = csvCell(f.type, rec.fields[p]!)
          if (v === MISMATCH) {
            bad = `column '${f.name}': expected ${f.type}, got ${JSON.stringify(rec.fields[p])}`
            break
          }
          cells[c] = v
        }
      }
      if (bad) {
        if (this.mode === 'FAILFAST') throw new SourceError('MALFORMED_RECORD', `${this.path} line ${rec.line}: malformed CSV record (mode FAILFAST): ${bad}`)
        if (this.mode === 'DROPMALFORMED') {
          if (!this.dropped[ri]) {
            this.dropped[ri] = 1
            this.droppedCount++
          }
          continue
        }
        if (this.corruptIdx >= 0) builders[this.corruptIdx]!.set(r, rec.raw)
        r++
        continue
      }
      for (const c of this.dataCols) {
        const v = cells[c]
        if (v !== null && v !== undefined) builders[c]!.set(r, v)
      }
      r++
    }
    return { schema, columns: builders.map((b) => b.finish(r)), numRows: r }
  }
}

async function openCsv(fs: Fs, path: string, options: ReadOptions): Promise<OpenedFile> {
  return csvFromBytes(await readWhole(fs, path), path, options)
}

function csvInferSchema(file: SyncFile, options: ReadOptions): Schema {
  if (options.schema) return options.schema
  return csvFromBytes(file.readRange(0, file.size), file.path, options).schema
}

function csvFromBytes(bytes: Uint8Array, path: string, options: ReadOptions): CsvFile {
  const text = decodeText(bytes, path, 'CSV', false)
  const sep = String(options.sep ?? options.delimiter ?? ',')
  if (sep.length === 0) throw new OptionError('INVALID_OPTION', 'csv: sep must not be empty')
  let recs: Rec[]
  try {
    recs = parseRecords(text, sep)
  } catch (e) {
    throw new SourceError('CORRUPT_FILE', `${path}: cannot parse CSV: ${(e as Error)?.message ?? e}`, { cause: e })
  }
  return new CsvFile(path, recs, options)
}

// ---------------------------------------------------------------------------------------------
// Writing

function quote(s: string, sep: string): string {
  if (s === '' || s.includes(sep) || s.includes('"') || s.includes('\n') || s.includes('\r') || s.trim() !== s) return `"${s.replaceAll('"', '""')}"`
  return s
}

function floatText(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return 'Infinity'
  if (v === -Infinity) return '-Infinity'
  if (Object.is(v, -0)) return '-0.0'
  return String(v)
}

function cellWriter(c: Column, name: string, sep: string): (i: number) => string {
  const valid = (i: number): boolean => isValid(c.validity, i)
  switch (c.type) {
    case 'boolean': {
      const v = c.values as Uint8Array
      return (i) => (!valid(i) ? '' : v[i] ? 'true' : 'false')
    }
    case 'int32':
    case 'int64': {
      const v = c.values as Int32Array | BigInt64Array
      return (i) => (!valid(i) ? '' : String(v[i]))
    }
    case 'float64': {
      const v = c.values as Float64Array
      return (i) => (!valid(i) ? '' : floatText(v[i]!))
    }
    case 'timestamp': {
      const v = c.values as BigInt64Array
      return (i) => {
        if (!valid(i)) return ''
        try {
          return formatTimestamp(v[i]!)
        } catch (e) {
          throw new SinkError('VALUE_OUT_OF_RANGE', `csv: column '${name}': ${(e as Error).message}`, { cause: e })
        }
      }
    }
    case 'string': {
      const v = c.values as Int32Array
      const dict = c.dictionary ?? []
      const quoted = new Array<string | undefined>(dict.length)
      return (i) => (!valid(i) ? '' : (quoted[v[i]!] ??= quote(dict[v[i]!] ?? '', sep)))
    }
    default:
      throw new Error(`csv: cannot write ${c.type}`)
  }
}

function encodeCsv(batches: Batch[], schema: Schema): Uint8Array {
  const sep = ','
  for (const f of schema) {
    if (f.type === 'window') {
      throw new SinkError(
        'UNSUPPORTED_TYPE',
        `csv cannot store the window column '${f.name}': select its bounds instead, e.g. select(col('${f.name}.start'), col('${f.name}.end'))`,
      )
    }
    if (f.type === 'binary') throw new SinkError('UNSUPPORTED_TYPE', `csv cannot store the binary column '${f.name}'`)
    if (f.type === 'struct') throw new SinkError('UNSUPPORTED_TYPE', `csv cannot store the struct column '${f.name}': select its fields instead, e.g. select('${f.name}.*')`)
  }
  const parts: string[] = [schema.map((f) => quote(f.name, sep)).join(sep) + '\n']
  for (const b of batches) {
    const writers = b.columns.map((c, k) => cellWriter(c, schema[k]!.name, sep))
    for (let i = 0; i < b.numRows; i++) {
      let line = ''
      for (let k = 0; k < writers.length; k++) line += (k ? sep : '') + writers[k]!(i)
      parts.push(line + '\n')
    }
  }
  return new TextEncoder().encode(parts.join(''))
}

export const csvFormat: FileFormat = {
  name: 'csv',
  extension: '.csv',
  open: openCsv,
  inferSchema: csvInferSchema,
  encode: encodeCsv,
}
