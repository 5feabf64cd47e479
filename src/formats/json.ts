/**
 * JSON lines: one JSON object per non-blank line.
 *
 * Schema: `options.schema`, or inferred from the first 1000 records: numbers → int64 when every
 * sampled value is an integer, else float64; booleans → boolean; strings (ISO-8601 ones too) →
 * string; objects/arrays → string (their JSON text); a field only ever null → string; conflicting
 * types → string. Fields keep their order of first appearance. When inference meets a malformed
 * line under PERMISSIVE, the corrupt-record column is appended (as Spark does).
 *
 * Values (with a schema): int32/int64 need integral JSON numbers in range (integers beyond 2^53 are
 * read exactly); float64 takes any number and the strings "NaN" / "Infinity" / "-Infinity";
 * string takes any value (non-strings as their JSON text); timestamp takes an ISO-8601 string
 * (no zone = UTC) or a number of epoch **milliseconds**; binary takes base64; window takes
 * `{"start": ts, "end": ts}`. A value that does not fit makes the record malformed.
 *
 * `multiLine: true` (Spark's option) reads the whole file as one JSON value instead: an array gives
 * one record per element (e.g. vega-datasets' flights-*.json), an object one record.
 *
 * Modes (Spark's): PERMISSIVE (default) turns a malformed record into a row of nulls, with the raw
 * line in the corrupt-record column (`columnNameOfCorruptRecord`, default `_corrupt_record`) when
 * the schema has that (string) column; DROPMALFORMED drops it (counted in `droppedMalformed`);
 * FAILFAST throws `SourceError('MALFORMED_RECORD')` naming the file, the 1-based line and the column.
 *
 * Encoding: one object per line with every field (nulls as `null`), int64 as exact JSON numbers,
 * timestamps as ISO-8601 UTC with milliseconds (`2001-01-01T00:00:00.000Z`; 6 fractional digits
 * when the value has sub-millisecond precision), windows as `{"start":…,"end":…}`, binary as
 * base64, non-finite floats as "NaN" / "Infinity" / "-Infinity".
 */
import { isValid, type Batch, type Column, type DataType, type Field, type Schema } from '../batch.ts'
import { OptionError, SinkError, SourceError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import type { FileFormat, OpenedFile, ReadOptions, SyncFile } from './format.ts'
import { boolOption, ColumnBuilder, decodeText, formatTimestamp, millisToMicros, parseMode, parseTimestamp, readWhole, type CellValue } from './values.ts'

const INFER_SAMPLE = 1000
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

// ---------------------------------------------------------------------------------------------
// Parsing

/** JSON.parse, except that integers beyond 2^53 come back as exact bigints. */
export function parseJsonLine(line: string): unknown {
  if (!/\d{16}/.test(line)) return JSON.parse(line)
  return new BigJsonParser(line).parseTop()
}

class BigJsonParser {
  private i = 0
  constructor(private readonly s: string) {}

  parseTop(): unknown {
    const v = this.value()
    this.ws()
    if (this.i < this.s.length) this.fail('unexpected data after JSON value')
    return v
  }

  private fail(msg: string): never {
    throw new SyntaxError(`${msg} at position ${this.i}`)
  }

  private ws(): void {
    const s = this.s
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i)
      if (c === 32 || c === 9 || c === 10 || c === 13) this.i++
      else break
    }
  }

  private value(): unknown {
    this.ws()
    const s = this.s
    const c = s[this.i]
    if (c === '{') {
      this.i++
      const o: Record<string, unknown> = {}
      this.ws()
      if (s[this.i] === '}') {
        this.i++
        return o
      }
      for (;;) {
        this.ws()
        if (s[this.i] !== '"') this.fail('expected property name')
        const k = this.string()
        this.ws()
        if (s[this.i] !== ':') this.fail("expected ':'")
        this.i++
        o[k] = this.value()
        this.ws()
        if (s[this.i] === ',') this.i++
        else if (s[this.i] === '}') {
          this.i++
          return o
        } else this.fail("expected ',' or '}'")
      }
    }
    if (c === '[') {
      this.i++
      const a: unknown[] = []
      this.ws()
      if (s[this.i] === ']') {
        this.i++
        return a
      }
      for (;;) {
        a.push(this.value())
        this.ws()
        if (s[this.i] === ',') this.i++
        else if (s[this.i] === ']') {
          this.i++
          return a
        } else this.fail("expected ',' or ']'")
      }
    }
    if (c === '"') return this.string()
    if (s.startsWith('true', this.i)) return (this.i += 4), true
    if (s.startsWith('false', this.i)) return (this.i += 5), false
    if (s.startsWith('null', this.i)) return (this.i += 4), null
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(s.slice(this.i, this.i + 400))
    if (!m) this.fail('unexpected token')
    this.i += m[0].length
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(m[0])
      return Number.isSafeInteger(n) ? n : BigInt(m[0])
    }
    return Number(m[0])
  }

  private string(): string {
    const s = this.s
    const start = this.i
    this.i++
    let escaped = false
    while (this.i < s.length) {
      const c = s[this.i]
      if (c === '\\') {
        escaped = true
        this.i += 2
        continue
      }
      if (c === '"') break
      this.i++
    }
    if (this.i >= s.length) this.fail('unterminated string')
    this.i++
    const raw = s.slice(start, this.i)
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1)
  }
}

// ---------------------------------------------------------------------------------------------
// Values

/** Marker for a value that does not fit the column type. */
const MISMATCH = Symbol('mismatch')

function toJsonText(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x))
}

function base64Decode(s: string): Uint8Array | typeof MISMATCH {
  try {
    const bin = atob(s)
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out
  } catch {
    return MISMATCH
  }
}

function base64Encode(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000))
  return btoa(s)
}

function toTimestamp(v: unknown): bigint | typeof MISMATCH {
  if (typeof v === 'string') return parseTimestamp(v) ?? MISMATCH
  if (typeof v === 'number' || typeof v === 'bigint') return millisToMicros(v) ?? MISMATCH
  return MISMATCH
}

/** A JSON value as a cell of `type` (`null` for null/missing, MISMATCH when it does not fit). */
export function jsonCell(type: DataType, v: unknown): CellValue | null | typeof MISMATCH {
  if (v === null || v === undefined) return null
  switch (type) {
    case 'boolean':
      return typeof v === 'boolean' ? v : MISMATCH
    case 'int32':
      return typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? v : MISMATCH
    case 'int64':
      if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : MISMATCH
      if (typeof v === 'bigint') return v >= INT64_MIN && v <= INT64_MAX ? v : MISMATCH
      return MISMATCH
    case 'float64':
      if (typeof v === 'number') return v
      if (typeof v === 'bigint') return Number(v)
      if (v === 'NaN') return NaN
      if (v === 'Infinity' || v === '+Infinity') return Infinity
      if (v === '-Infinity') return -Infinity
      return MISMATCH
    case 'string':
      if (typeof v === 'string') return v
      if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
      return toJsonText(v)
    case 'timestamp':
      return toTimestamp(v)
    case 'binary':
      return typeof v === 'string' ? base64Decode(v) : MISMATCH
    case 'window': {
      if (typeof v !== 'object' || Array.isArray(v)) return MISMATCH
      const o = v as Record<string, unknown>
      const start = toTimestamp(o.start)
      const end = toTimestamp(o.end)
      if (start === MISMATCH || end === MISMATCH) return MISMATCH
      return { start, end }
    }
    case 'struct':
      // reading nested objects into struct columns: use from_json() on a string column
      return MISMATCH
  }
}

// ---------------------------------------------------------------------------------------------
// Inference

function jsonType(v: unknown): DataType | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'boolean') return 'boolean'
  if (typeof v === 'bigint') return 'int64'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int64' : 'float64'
  return 'string'
}

/** The wider of two inferred types. */
export function mergeInferred(a: DataType | null, b: DataType | null): DataType | null {
  if (a === null) return b
  if (b === null || a === b) return a
  if ((a === 'int64' && b === 'float64') || (a === 'float64' && b === 'int64')) return 'float64'
  return 'string'
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function parseRecord(recs: JsonRecords, i: number): { value?: unknown; error?: string } {
  if (recs.values) return recs.error !== undefined ? { error: recs.error } : { value: recs.values[i] }
  try {
    return { value: parseJsonLine(recs.texts[i]!) }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

function inferSchema(recs: JsonRecords, mode: string, corruptName: string): Schema {
  const types = new Map<string, DataType | null>()
  let malformed = false
  const n = Math.min(recs.texts.length, INFER_SAMPLE)
  for (let i = 0; i < n; i++) {
    const { value: v, error } = parseRecord(recs, i)
    if (error !== undefined) {
      malformed = true
      continue
    }
    if (!isRecord(v)) {
      malformed = true
      continue
    }
    for (const k of Object.keys(v)) types.set(k, mergeInferred(types.get(k) ?? null, jsonType(v[k])))
  }
  const fields: Field[] = [...types].map(([name, t]) => ({ name, type: t ?? 'string', nullable: true }))
  if (malformed && mode === 'PERMISSIVE' && !types.has(corruptName)) fields.push({ name: corruptName, type: 'string', nullable: true })
  return fields
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The records of a file: JSON lines (parsed per read), or, with `multiLine`, values parsed at open. */
export interface JsonRecords {
  /** Raw text of each record. */
  readonly texts: readonly string[]
  /** 1-based line of each record (JSON lines), or null (multiLine: records are numbered instead). */
  readonly lineNos: Int32Array | null
  /** multiLine: the parsed values (undefined entries failed to parse). */
  readonly values: readonly unknown[] | null
  /** multiLine: the parse error of a file that is not valid JSON. */
  readonly error?: string
}

class JsonFile implements OpenedFile {
  readonly path: string
  readonly schema: Schema
  readonly numRows: number
  private readonly recs: JsonRecords
  private readonly mode: 'PERMISSIVE' | 'DROPMALFORMED' | 'FAILFAST'
  private readonly corruptIdx: number
  private readonly dropped: Uint8Array
  private droppedCount = 0

  constructor(path: string, recs: JsonRecords, options: ReadOptions) {
    this.path = path
    this.recs = recs
    this.numRows = recs.texts.length
    this.mode = parseMode(options.mode)
    const corruptName = options.columnNameOfCorruptRecord ?? '_corrupt_record'
    this.schema = options.schema ?? inferSchema(recs, this.mode, corruptName)
    this.corruptIdx = this.schema.findIndex((f) => f.name === corruptName)
    if (this.corruptIdx >= 0 && this.schema[this.corruptIdx]!.type !== 'string') {
      throw new OptionError('INVALID_OPTION', `the corrupt-record column '${corruptName}' must be a string column, not ${this.schema[this.corruptIdx]!.type}`)
    }
    this.dropped = new Uint8Array(this.numRows)
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
    const cells = new Array<CellValue | null>(schema.length)
    let r = 0
    for (let li = start; li < end; li++) {
      const line = this.recs.texts[li]!
      let bad: { column?: string; reason: string } | null = null
      const parsed = parseRecord(this.recs, li)
      const obj = parsed.value
      if (parsed.error !== undefined) bad = { reason: parsed.error }
      else if (!isRecord(obj)) bad = { reason: `expected a JSON object, got ${obj === null ? 'null' : Array.isArray(obj) ? 'an array' : typeof obj}` }
      if (!bad) {
        const o = obj as Record<string, unknown>
        for (let c = 0; c < schema.length; c++) {
          if (c === this.corruptIdx) {
            cells[c] = null
            continue
          }
          const f = schema[c]!
          const raw = o[f.name]
          const v = jsonCell(f.type, raw)
          if (v === MISMATCH) {
            bad = { column: f.name, reason: `expected ${f.type}, got ${truncate(toJsonText(raw))}` }
            break
          }
          cells[c] = v
        }
      }
      if (bad) {
        if (this.mode === 'FAILFAST') {
          throw new SourceError(
            'MALFORMED_RECORD',
            `${this.path} ${this.recs.lineNos ? `line ${this.recs.lineNos[li]}` : `record ${li + 1}`}: malformed JSON record (mode FAILFAST)${bad.column ? ` in column '${bad.column}'` : ''}: ${bad.reason}`,
          )
        }
        if (this.mode === 'DROPMALFORMED') {
          if (!this.dropped[li]) {
            this.dropped[li] = 1
            this.droppedCount++
          }
          continue
        }
        if (this.corruptIdx >= 0) builders[this.corruptIdx]!.set(r, line)
        r++
        continue
      }
      for (let c = 0; c < schema.length; c++) {
        const v = cells[c]
        if (v !== null && v !== undefined) builders[c]!.set(r, v)
      }
      r++
    }
    return { schema, columns: builders.map((b) => b.finish(r)), numRows: r }
  }
}

function truncate(s: string | undefined): string {
  if (s === undefined) return 'undefined'
  return s.length > 80 ? s.slice(0, 77) + '...' : s
}

/** Splits JSON-lines text (or, with `multiLine`, parses the whole text) into records. */
export function jsonRecords(text: string, multiLine: boolean): JsonRecords {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  if (multiLine) {
    // Spark's multiLine: the file is one JSON value; an array holds one record per element
    if (text.trim() === '') return { texts: [], lineNos: null, values: [] }
    let v: unknown
    try {
      v = parseJsonLine(text)
    } catch (e) {
      return { texts: [text], lineNos: null, values: [undefined], error: (e as Error).message }
    }
    const values = Array.isArray(v) ? v : [v]
    return { texts: Array.isArray(v) ? values.map((x) => toJsonText(x)) : [text], lineNos: null, values }
  }
  const lines: string[] = []
  const nos: number[] = []
  let pos = 0
  let no = 1
  while (pos <= text.length) {
    let nl = text.indexOf('\n', pos)
    if (nl < 0) nl = text.length
    let line = text.slice(pos, nl)
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (line.trim() !== '') {
      lines.push(line)
      nos.push(no)
    }
    no++
    pos = nl + 1
  }
  return { texts: lines, lineNos: Int32Array.from(nos), values: null }
}

function jsonRecordsOf(bytes: Uint8Array, path: string, options: ReadOptions): JsonRecords {
  return jsonRecords(decodeText(bytes, path, 'JSON'), boolOption(options.multiLine, false))
}

async function openJson(fs: Fs, path: string, options: ReadOptions): Promise<OpenedFile> {
  return new JsonFile(path, jsonRecordsOf(await readWhole(fs, path), path, options), options)
}

function jsonInferSchema(file: SyncFile, options: ReadOptions): Schema {
  if (options.schema) return options.schema
  return new JsonFile(file.path, jsonRecordsOf(file.readRange(0, file.size), file.path, options), options).schema
}

// ---------------------------------------------------------------------------------------------
// Writing

function floatJson(v: number): string {
  if (Number.isNaN(v)) return '"NaN"'
  if (v === Infinity) return '"Infinity"'
  if (v === -Infinity) return '"-Infinity"'
  if (Object.is(v, -0)) return '-0.0'
  return String(v)
}

function timestampJson(v: bigint, name: string): string {
  try {
    return `"${formatTimestamp(v)}"`
  } catch (e) {
    throw new SinkError('VALUE_OUT_OF_RANGE', `json: column '${name}': ${(e as Error).message}`, { cause: e })
  }
}

/** A function rendering row i of a column as JSON text. */
function cellWriter(c: Column, name: string): (i: number) => string {
  const valid = (i: number): boolean => isValid(c.validity, i)
  switch (c.type) {
    case 'boolean': {
      const v = c.values as Uint8Array
      return (i) => (!valid(i) ? 'null' : v[i] ? 'true' : 'false')
    }
    case 'int32':
    case 'int64': {
      const v = c.values as Int32Array | BigInt64Array
      return (i) => (!valid(i) ? 'null' : String(v[i]))
    }
    case 'float64': {
      const v = c.values as Float64Array
      return (i) => (!valid(i) ? 'null' : floatJson(v[i]!))
    }
    case 'timestamp': {
      const v = c.values as BigInt64Array
      return (i) => (!valid(i) ? 'null' : timestampJson(v[i]!, name))
    }
    case 'string': {
      const v = c.values as Int32Array
      const dict = c.dictionary ?? []
      const quoted = new Array<string | undefined>(dict.length)
      return (i) => (!valid(i) ? 'null' : (quoted[v[i]!] ??= JSON.stringify(dict[v[i]!] ?? '')))
    }
    case 'binary': {
      const v = c.values as Uint8Array[]
      return (i) => (!valid(i) ? 'null' : `"${base64Encode(v[i]!)}"`)
    }
    case 'window': {
      const s = cellWriter(c.children!.start, `${name}.start`)
      const e = cellWriter(c.children!.end, `${name}.end`)
      return (i) => (!valid(i) ? 'null' : `{"start":${s(i)},"end":${e(i)}}`)
    }
    case 'struct': {
      const fields = Object.entries(c.children ?? {}).map(([k, ch]) => [JSON.stringify(k) + ':', cellWriter(ch, `${name}.${k}`)] as const)
      return (i) => (!valid(i) ? 'null' : '{' + fields.map(([k, w]) => k + w(i)).join(',') + '}')
    }
  }
}

function encodeJson(batches: Batch[], schema: Schema): Uint8Array {
  const keys = schema.map((f) => JSON.stringify(f.name) + ':')
  const parts: string[] = []
  for (const b of batches) {
    const writers = b.columns.map((c, k) => cellWriter(c, schema[k]!.name))
    for (let i = 0; i < b.numRows; i++) {
      let line = '{'
      for (let k = 0; k < writers.length; k++) line += (k ? ',' : '') + keys[k] + writers[k]!(i)
      parts.push(line + '}\n')
    }
  }
  return new TextEncoder().encode(parts.join(''))
}

export const jsonFormat: FileFormat = {
  name: 'json',
  extension: '.json',
  open: openJson,
  inferSchema: jsonInferSchema,
  encode: encodeJson,
}
