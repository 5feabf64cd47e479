/**
 * Helpers shared by the file formats: timestamp parsing/formatting, a row-at-a-time column
 * builder for the text formats, and projection of a file's schema onto a user schema.
 */
import {
  DictionaryBuilder,
  allocValues,
  newValidity,
  setValid,
  type Batch,
  type Column,
  type DataType,
  type Schema,
} from '../batch.ts'
import { OptionError, SourceError } from '../errors.ts'

// ---------------------------------------------------------------------------------------------
// Timestamps

const ISO_RE =
  /^([+-]\d{6}|\d{4})[-/](\d{2})[-/](\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
}

/**
 * Parses an ISO-8601 date or date-time (`2001-01-01`, also `2001/01/01 06:55` as in vega-datasets, `2001-01-01T00:01`, `2001-01-01 00:01:02.123456`,
 * with an optional `Z` / `±hh:mm` / `±hhmm` / `±hh` zone; ±YYYYYY extended years) into µs since the
 * epoch. A value without a zone is read as UTC. Fractions beyond µs are truncated. `null` if invalid.
 */
export function parseTimestamp(s: string): bigint | null {
  const m = ISO_RE.exec(s.trim())
  if (!m) return null
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = m[4] === undefined ? 0 : Number(m[4])
  const minute = m[5] === undefined ? 0 : Number(m[5])
  const second = m[6] === undefined ? 0 : Number(m[6])
  if (month < 1 || month > 12 || day < 1) return null
  const dim = month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]!
  if (day > dim || hour > 23 || minute > 59 || second > 59) return null
  let offsetMin = 0
  const z = m[8]
  if (z !== undefined && z !== 'Z' && z !== 'z') {
    const sign = z[0] === '-' ? -1 : 1
    const digits = z.slice(1).replace(':', '')
    const oh = Number(digits.slice(0, 2))
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
    if (oh > 18 || om > 59) return null
    offsetMin = sign * (oh * 60 + om)
  }
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  d.setUTCHours(hour, minute, second, 0)
  const ms = d.getTime()
  if (Number.isNaN(ms)) return null
  const frac = m[7] === undefined ? 0 : Number((m[7] + '00000').slice(0, 6))
  return (BigInt(ms) - BigInt(offsetMin) * 60_000n) * 1000n + BigInt(frac)
}

/** Epoch milliseconds (a JSON/CSV number) as µs; fractional ms keep their µs part. */
export function millisToMicros(ms: number | bigint): bigint | null {
  if (typeof ms === 'bigint') return ms * 1000n
  if (!Number.isFinite(ms)) return null
  const us = Math.round(ms * 1000)
  if (!Number.isSafeInteger(us)) {
    if (!Number.isSafeInteger(ms)) return null
    return BigInt(ms) * 1000n
  }
  return BigInt(us)
}

const MAX_DATE_US = 8_640_000_000_000_000_000n

/**
 * µs since the epoch as ISO-8601 UTC: `2001-01-01T00:00:00.000Z`, or with 6 fractional digits when
 * the value has a sub-millisecond part (so that writing and reading back is lossless).
 */
export function formatTimestamp(us: bigint): string {
  if (us > MAX_DATE_US || us < -MAX_DATE_US) throw new RangeError(`timestamp ${us}µs is outside the representable date range`)
  let ms = us / 1000n
  let rem = us - ms * 1000n
  if (rem < 0n) {
    ms -= 1n
    rem += 1000n
  }
  const iso = new Date(Number(ms)).toISOString()
  if (rem === 0n) return iso
  return iso.slice(0, -1) + String(rem).padStart(3, '0') + 'Z'
}

// ---------------------------------------------------------------------------------------------
// Column building (text formats)

export type CellValue = boolean | number | bigint | string | Uint8Array | { start: bigint; end: bigint }

/** Builds one column row by row; unset rows are null. */
export class ColumnBuilder {
  readonly type: DataType
  private readonly values: Uint8Array | Int32Array | BigInt64Array | Float64Array | Uint8Array[]
  private readonly validity: Uint8Array
  private anyNull = false
  private readonly dict: DictionaryBuilder | null
  private readonly children: { start: ColumnBuilder; end: ColumnBuilder } | null
  private readonly n: number

  constructor(type: DataType, n: number) {
    this.type = type
    this.n = n
    this.values = allocValues(type, n)
    this.validity = newValidity(n, false)
    this.dict = type === 'string' ? new DictionaryBuilder() : null
    this.children = type === 'window' ? { start: new ColumnBuilder('timestamp', n), end: new ColumnBuilder('timestamp', n) } : null
  }

  /** Sets row `i` (values must already have the column's JS representation). */
  set(i: number, v: CellValue): void {
    setValid(this.validity, i, true)
    switch (this.type) {
      case 'boolean':
        ;(this.values as Uint8Array)[i] = v ? 1 : 0
        break
      case 'int32':
      case 'float64':
        ;(this.values as Float64Array)[i] = v as number
        break
      case 'int64':
      case 'timestamp':
        ;(this.values as BigInt64Array)[i] = v as bigint
        break
      case 'string':
        ;(this.values as Int32Array)[i] = this.dict!.code(v as string)
        break
      case 'binary':
        ;(this.values as Uint8Array[])[i] = v as Uint8Array
        break
      case 'window': {
        const w = v as { start: bigint; end: bigint }
        this.children!.start.set(i, w.start)
        this.children!.end.set(i, w.end)
        break
      }
    }
  }

  setNull(_i: number): void {
    this.anyNull = true
  }

  /** The first `length` rows as a column. */
  finish(length: number = this.n): Column {
    let allValid = !this.anyNull
    if (allValid) {
      // rows never set are null too
      const full = length >> 3
      for (let b = 0; b < full && allValid; b++) if (this.validity[b] !== 0xff) allValid = false
      for (let i = full << 3; i < length && allValid; i++) if (!(this.validity[i >> 3]! & (1 << (i & 7)))) allValid = false
    }
    const validity = allValid ? null : this.validity.subarray(0, (length + 7) >> 3)
    if (this.type === 'window') {
      return {
        type: 'window',
        length,
        values: new Uint8Array(0),
        validity,
        children: { start: this.children!.start.finish(length), end: this.children!.end.finish(length) },
      }
    }
    const values = Array.isArray(this.values) ? this.values.slice(0, length) : (this.values as Int32Array).subarray(0, length)
    return {
      type: this.type,
      length,
      values,
      validity,
      ...(this.dict ? { dictionary: this.dict.strings } : {}),
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Projection of a file schema onto a user schema

/** A column of `length` nulls. */
export function nullColumn(type: DataType, length: number): Column {
  const validity = newValidity(length, false)
  if (type === 'window') {
    return { type, length, values: new Uint8Array(0), validity, children: { start: nullColumn('timestamp', length), end: nullColumn('timestamp', length) } }
  }
  return { type, length, values: allocValues(type, length), validity, ...(type === 'string' ? { dictionary: [] } : {}) }
}

function castColumn(c: Column, to: DataType): Column {
  if (c.type === to) return c
  const n = c.length
  if (c.type === 'int32' && to === 'int64') {
    const src = c.values as Int32Array
    const out = new BigInt64Array(n)
    for (let i = 0; i < n; i++) out[i] = BigInt(src[i]!)
    return { type: to, length: n, values: out, validity: c.validity }
  }
  if ((c.type === 'int32' || c.type === 'int64') && to === 'float64') {
    const src = c.values as Int32Array | BigInt64Array
    const out = new Float64Array(n)
    for (let i = 0; i < n; i++) out[i] = Number(src[i]!)
    return { type: to, length: n, values: out, validity: c.validity }
  }
  throw new Error(`cannot cast ${c.type} to ${to}`)
}

/** Whether a file column of type `from` can be read as a user-schema column of type `to`. */
export function canCast(from: DataType, to: DataType): boolean {
  return from === to || (from === 'int32' && (to === 'int64' || to === 'float64')) || (from === 'int64' && to === 'float64')
}

/**
 * Checks a user schema against a file schema (by name): a missing column reads as nulls (as in
 * Spark), a column of an incompatible type is a SourceError SCHEMA_MISMATCH; int32 → int64 /
 * float64 and int64 → float64 are widened. Returns the file column index per user field (-1 =
 * missing).
 */
export function planProjection(path: string, fileSchema: Schema, userSchema: Schema): number[] {
  return userSchema.map((f) => {
    const i = fileSchema.findIndex((g) => g.name === f.name)
    if (i < 0) return -1
    const from = fileSchema[i]!.type
    if (!canCast(from, f.type)) {
      throw new SourceError('SCHEMA_MISMATCH', `${path}: column '${f.name}' is ${from} in the file but ${f.type} in the given schema`)
    }
    return i
  })
}

export function project(batch: Batch, userSchema: Schema, plan: readonly number[]): Batch {
  const columns = userSchema.map((f, k) => {
    const i = plan[k]!
    return i < 0 ? nullColumn(f.type, batch.numRows) : castColumn(batch.columns[i]!, f.type)
  })
  return { schema: userSchema, columns, numRows: batch.numRows }
}

/** Node/Fs "file not found" errors carry code ENOENT. */
export function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT'
}

/** Reads a whole file, turning "not found" into SourceError FILE_NOT_FOUND. */
export async function readWhole(fs: { read(path: string): Promise<Uint8Array> }, path: string): Promise<Uint8Array> {
  try {
    return await fs.read(path)
  } catch (e) {
    if (isNotFound(e)) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`, { cause: e })
    throw new SourceError('READ_FAILED', `${path}: cannot read file: ${(e as Error)?.message ?? e}`, { cause: e, retriable: true })
  }
}

const BINARY_MAGICS: [string, number[]][] = [
  ['parquet', [0x50, 0x41, 0x52, 0x31]],
  ['Arrow IPC file', [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]],
  ['Arrow IPC stream', [0xff, 0xff, 0xff, 0xff]],
  ['gzip', [0x1f, 0x8b]],
  ['zip', [0x50, 0x4b, 0x03, 0x04]],
]

/**
 * Decodes a text file strictly; anything that is not text is CORRUPT_FILE: invalid UTF-8, a known
 * binary magic number (parquet, Arrow, gzip, zip), or NUL characters (any NUL when `strictNul`, as
 * JSON never contains one; else at least 4 and more than 1% of the first 4 KiB).
 */
export function decodeText(bytes: Uint8Array, path: string, format: string, strictNul = true): string {
  for (const [name, magic] of BINARY_MAGICS) {
    if (bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b)) {
      const msg = `${path}: not a ${format} file (it starts like a ${name} file)`
      throw new SourceError('CORRUPT_FILE', msg, { cause: new Error(`${name} magic number at offset 0`) })
    }
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch (e) {
    throw new SourceError('CORRUPT_FILE', `${path}: not a ${format} file (invalid UTF-8)`, { cause: e })
  }
  const nul = text.indexOf('\0')
  if (nul >= 0) {
    let binary = strictNul
    if (!binary) {
      const head = text.slice(0, 4096)
      let count = 0
      for (let i = head.indexOf('\0'); i >= 0; i = head.indexOf('\0', i + 1)) count++
      binary = count >= 4 && count > head.length / 100
    }
    if (binary) {
      throw new SourceError('CORRUPT_FILE', `${path}: not a ${format} file (binary content at character ${nul})`, {
        cause: new Error(`NUL character at offset ${nul}`),
      })
    }
  }
  return text
}

/** Normalises a `mode` option (case-insensitive, default PERMISSIVE). */
export function parseMode(mode: unknown): 'PERMISSIVE' | 'DROPMALFORMED' | 'FAILFAST' {
  if (mode === undefined || mode === null) return 'PERMISSIVE'
  const m = String(mode).toUpperCase()
  if (m === 'PERMISSIVE' || m === 'DROPMALFORMED' || m === 'FAILFAST') return m
  throw new OptionError('INVALID_OPTION', `mode must be PERMISSIVE, DROPMALFORMED or FAILFAST, got '${String(mode)}'`)
}

/** Boolean options given as booleans or strings ('true'/'false', as in Spark's option map). */
export function boolOption(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt
  if (typeof v === 'boolean') return v
  const s = String(v).toLowerCase()
  if (s === 'true') return true
  if (s === 'false') return false
  return dflt
}
