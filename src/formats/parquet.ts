/**
 * Parquet via hyparquet (reading, with hyparquet-compressors for ZSTD/GZIP/BROTLI/LZ4) and
 * hyparquet-writer (writing, SNAPPY). Pure JS: the same code runs in Node and the browser.
 *
 * Reading: `open` fetches only the footer (through `Fs.readRange`); `read(start, end)` fetches
 * each column chunk of the row groups overlapping the range with one `readRange` (keeping the last
 * {@link GROUP_CACHE} groups' chunks, so that consecutive range reads, e.g. 250k rows at a time
 * over 272k-row groups, fetch each chunk once) and decodes just the rows asked for, page by page,
 * straight into the batch's buffers: no per-group buffers to slice and concatenate. Each chunk
 * keeps its read position: the next read carries on inside the same page (decompressed and decoded
 * once); a read elsewhere starts at the page holding its first row, the pages before it left
 * compressed. This uses hyparquet's page header, decompression and PLAIN decoders
 * (`hyparquet/src/*.js`, a public subpath export) instead of `parquetRead`, whose row assembly
 * builds a JS array per column (3-4x slower on flights-3m), and decodes the RLE / bit-packed
 * streams itself (see {@link Hybrid}): definition levels go straight into the validity bitmap and
 * dictionary indices into Int32Arrays, mapped through a typed copy of the dictionary page (for
 * strings, the indices are the batch's codes whenever the read's dictionary starts with the
 * page's). Strings never go through a per-row hash: each dictionary entry is decoded once and
 * coded into the read's {@link DictionaryBuilder} once per read (plain-encoded pages intern each
 * value). Pages in other encodings (DELTA_*, BYTE_STREAM_SPLIT, RLE booleans) go through
 * hyparquet's `readDataPage` / `readDataPageV2`. Timestamps come back as bigint µs (no `Date`
 * objects), INT64 as BigInt64Array.
 *
 * Type mapping (physical/logical → Sluice): BOOLEAN → boolean; INT32 (INT_8/16/32, UINT_8/16) →
 * int32; INT32 UINT_32 and INT64 (UINT_64 wraps above 2^63-1) → int64; FLOAT/DOUBLE/FLOAT16 →
 * float64; DECIMAL → float64 (approximate); TIMESTAMP (any unit; not-UTC-adjusted read as UTC),
 * INT96 and DATE → timestamp µs; BYTE_ARRAY UTF8/STRING/ENUM/JSON and UUID → string; other
 * BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY → binary. Nested columns and TIME are UNSUPPORTED_TYPE.
 *
 * Writing: timestamps as INT64 TIMESTAMP(MICROS, isAdjustedToUTC), strings as BYTE_ARRAY UTF8
 * (the writer dictionary-encodes them when that pays), window columns are rejected (select
 * `window.start` / `window.end` instead).
 */
import { parquetMetadata, parquetMetadataAsync, parquetSchema, type AsyncBuffer, type ColumnMetaData, type DecodedArray, type FileMetaData, type ParquetParsers, type SchemaElement, type SchemaTree } from 'hyparquet'
// hyparquet's page decoders (public subpath exports `hyparquet/src/*.js`)
import { parquetHeader } from 'hyparquet/src/column.js'
import { convert, DEFAULT_PARSERS } from 'hyparquet/src/convert.js'
import { decompressPage, readDataPage, readDataPageV2 } from 'hyparquet/src/datapage.js'
import { readPlain } from 'hyparquet/src/plain.js'
import { getMaxDefinitionLevel, getMaxRepetitionLevel } from 'hyparquet/src/schema.js'
import type { ColumnDecoder, DataPage, PageHeader } from 'hyparquet/src/types.js'
import { compressors } from 'hyparquet-compressors'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { ColumnSource } from 'hyparquet-writer'
import {
  DictionaryBuilder,
  allocValues,
  concatBatches,
  emptyBatch,
  isValid,
  newValidity,
  type Batch,
  type Column,
  type DataType,
  type Field,
  type Schema,
  type Values,
} from '../batch.ts'
import { SinkError, SourceError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import type { FileFormat, OpenedFile, ReadOptions, SyncFile } from './format.ts'
import { isNotFound, planProjection, project } from './values.ts'

/** Row groups whose column chunks (fetched bytes, page directories, read positions) are kept per open file. */
const GROUP_CACHE = 2

const utf8 = new TextDecoder()
const textEncoder = new TextEncoder()

// ---------------------------------------------------------------------------------------------
// Schema

/** The Sluice type of a top-level parquet column, or a reason it is unsupported. */
function columnType(node: SchemaTree): DataType | { unsupported: string } {
  const el = node.element
  if (node.children.length > 0 || el.repetition_type === 'REPEATED') {
    return { unsupported: 'a nested (group / list / map) column' }
  }
  const ct = el.converted_type
  const lt = el.logical_type
  switch (el.type) {
    case 'BOOLEAN':
      return 'boolean'
    case 'INT32':
      if (ct === 'DATE' || lt?.type === 'DATE') return 'timestamp'
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return 'float64'
      if (ct === 'TIME_MILLIS' || lt?.type === 'TIME') return { unsupported: 'TIME' }
      if (ct === 'UINT_32' || (lt?.type === 'INTEGER' && lt.bitWidth === 32 && !lt.isSigned)) return 'int64'
      return 'int32'
    case 'INT64':
      if (ct === 'TIMESTAMP_MILLIS' || ct === 'TIMESTAMP_MICROS' || lt?.type === 'TIMESTAMP') return 'timestamp'
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return 'float64'
      if (ct === 'TIME_MICROS' || lt?.type === 'TIME') return { unsupported: 'TIME' }
      return 'int64'
    case 'INT96':
      return 'timestamp'
    case 'FLOAT':
    case 'DOUBLE':
      return 'float64'
    case 'BYTE_ARRAY':
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return 'float64'
      if (ct === 'BSON' || lt?.type === 'BSON') return { unsupported: 'BSON' }
      if (lt?.type === 'VARIANT' || lt?.type === 'GEOMETRY' || lt?.type === 'GEOGRAPHY') return { unsupported: lt.type }
      if (ct === 'UTF8' || ct === 'ENUM' || ct === 'JSON' || lt?.type === 'STRING' || lt?.type === 'ENUM' || lt?.type === 'JSON') return 'string'
      return 'binary'
    case 'FIXED_LEN_BYTE_ARRAY':
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL' || lt?.type === 'FLOAT16') return 'float64'
      if (ct === 'INTERVAL' || lt?.type === 'INTERVAL') return { unsupported: 'INTERVAL' }
      if (lt?.type === 'UUID') return 'string'
      return 'binary'
    default:
      return { unsupported: String(el.type) }
  }
}

/** Sluice schema of a parquet file; unsupported columns throw UNSUPPORTED_TYPE unless `only` excludes them. */
export function parquetFileSchema(metadata: FileMetaData, path: string, only?: ReadonlySet<string>): Schema {
  const out: Field[] = []
  for (const node of parquetSchema(metadata).children) {
    const name = node.element.name
    const t = columnType(node)
    if (typeof t !== 'string') {
      if (only && !only.has(name)) continue
      throw new SourceError(
        'UNSUPPORTED_TYPE',
        `${path}: column '${name}' is ${t.unsupported}, which Sluice cannot read; pass a schema without it to skip it`,
      )
    }
    out.push({ name, type: t, nullable: node.element.repetition_type !== 'REQUIRED' })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Reading

function fsAsyncBuffer(fs: Fs, path: string, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const u8 = await fs.readRange(path, start, end ?? size)
      if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && u8.buffer instanceof ArrayBuffer) return u8.buffer
      return u8.slice().buffer as ArrayBuffer
    },
  }
}

const floorDiv = (a: bigint, b: bigint): bigint => {
  const q = a / b
  return a < 0n && q * b !== a ? q - 1n : q
}

/** Parsers that keep timestamps as bigint µs (no Date objects). */
const TIME_PARSERS: Partial<ParquetParsers> = {
  timestampFromMilliseconds: (ms: bigint) => BigInt(ms) * 1000n,
  timestampFromMicroseconds: (us: bigint) => BigInt(us),
  timestampFromNanoseconds: (ns: bigint) => floorDiv(BigInt(ns), 1000n),
  dateFromDays: (days: number) => BigInt(days) * 86_400_000_000n,
}

function uuidString(b: Uint8Array): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

type OutValues = Values

/** Output buffer of a column being decoded (batch.ts's layout; windows never come out of Parquet). */
function allocOut(type: DataType, n: number): OutValues {
  if (type === 'window') throw new Error('parquet: cannot build window column')
  return allocValues(type, n)
}

function storeValues(type: DataType, out: OutValues, at: number, vals: ArrayLike<unknown>, from: number, count: number, code: (s: string) => number): void {
  if (
    (type === 'int32' && vals instanceof Int32Array) ||
    ((type === 'int64' || type === 'timestamp') && vals instanceof BigInt64Array) ||
    (type === 'float64' && (vals instanceof Float64Array || vals instanceof Float32Array))
  ) {
    ;(out as Int32Array).set((vals as Int32Array).subarray(from, from + count), at)
    return
  }
  switch (type) {
    case 'boolean': {
      const o = out as Uint8Array
      for (let k = 0; k < count; k++) o[at + k] = vals[from + k] ? 1 : 0
      break
    }
    case 'int32':
    case 'float64': {
      const o = out as Float64Array
      for (let k = 0; k < count; k++) o[at + k] = Number(vals[from + k])
      break
    }
    case 'int64':
    case 'timestamp': {
      const o = out as BigInt64Array
      for (let k = 0; k < count; k++) {
        const v = vals[from + k]
        o[at + k] = typeof v === 'bigint' ? BigInt.asIntN(64, v) : BigInt(v as number)
      }
      break
    }
    case 'string': {
      const o = out as Int32Array
      for (let k = 0; k < count; k++) {
        const v = vals[from + k]
        // strings from our parsers; raw bytes for ENUM
        o[at + k] = typeof v === 'string' ? code(v) : code(utf8.decode(v as Uint8Array))
      }
      break
    }
    case 'binary': {
      const o = out as Uint8Array[]
      for (let k = 0; k < count; k++) {
        const v = vals[from + k]
        o[at + k] = typeof v === 'string' ? textEncoder.encode(v) : (v as Uint8Array)
      }
      break
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Page decoding straight into the batch being read
//
// hyparquet's `readDataPage` decodes definition levels and dictionary indices into plain JS arrays
// (one element per row, ~270k per page on flights-3m), which the profile showed as the largest
// cost after ZSTD: the levels array, a pass counting its nulls, the index array, a pass mapping it.
// PLAIN and dictionary-encoded pages (v1 and v2) are decoded here instead, with resumable stream
// readers: levels go straight into the read's validity bitmap, dictionary indices into an Int32Array
// (for strings, often the read's codes themselves), and a page read in part by one `read` is
// carried on by the next without decompressing it again. Other encodings (DELTA_*,
// BYTE_STREAM_SPLIT, RLE booleans) still go through `readDataPage` / `readDataPageV2`.

/** Number of set bits in each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let c = 0
  for (let x = b; x; x >>= 1) c += x & 1
  return c
})

/** Rows decoded per step: bounds the index scratch below (256 KiB, cache-sized). */
const READ_STEP = 1 << 16

/** Reusable scratch for dictionary indices (decoding is synchronous: one step at a time). */
let scratch = new Int32Array(0)
function scratchFor(n: number): Int32Array {
  if (scratch.length < n) scratch = new Int32Array(Math.max(n, scratch.length * 2))
  return scratch
}

/** Clears validity bits `[from, from + len)`. */
function clearBits(validity: Uint8Array, from: number, len: number): void {
  let i = from
  const end = from + len
  while (i < end && (i & 7) !== 0) {
    validity[i >> 3]! &= ~(1 << (i & 7))
    i++
  }
  if (end - i >= 8) {
    validity.fill(0, i >> 3, end >> 3)
    i = end & ~7
  }
  while (i < end) {
    validity[i >> 3]! &= ~(1 << (i & 7))
    i++
  }
}

const truncated = (): Error => new Error('parquet RLE/bit-packed data is truncated')

/** Values per inner step, so that bit offsets within a step stay int32 (2^25 × 32 bits = 2^30). */
const MAX_STEP = 1 << 25

/**
 * A resumable reader of an RLE / bit-packed hybrid stream (definition levels, dictionary indices)
 * over bytes `[pos, end)`: each call reads on from where the last stopped, inside a run or not.
 *
 * Hand-written rather than hyparquet's `readRleBitPackedHybrid` (which does take a typed output)
 * because that one decodes a whole stream at once (no resuming where a read stops), reads a byte
 * per DataView call and branches per bit step. Here a bit-packed value comes from one
 * little-endian 32-bit load at its first byte: flights-3m's 55 index pages (15 M indices, bit
 * widths 8-15) decode in 24 ms against 45 ms with `readRleBitPackedHybrid` into an Int32Array. And
 * levels are ANDed into the validity bitmap 8 at a time, with no array of levels.
 */
class Hybrid {
  private pos: number
  /** Values left in the current run. */
  private left = 0
  private packed = false
  /** The current RLE run's value. */
  private value = 0
  /** The current bit-packed run's first byte, and how many of its values were read. */
  private base = 0
  private k = 0
  private readonly view: DataView
  private readonly mask: number

  constructor(
    private readonly b: Uint8Array,
    pos: number,
    private readonly end: number,
    private readonly width: number,
  ) {
    this.pos = pos
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength)
    this.mask = width >= 32 ? -1 : (1 << width) - 1
  }

  private next(): void {
    const b = this.b
    do {
      // run header: unsigned LEB128
      let h = 0
      let mul = 1
      for (;;) {
        if (this.pos >= this.end) throw truncated()
        const byte = b[this.pos++]!
        h += (byte & 0x7f) * mul
        if ((byte & 0x80) === 0) break
        mul *= 128
        if (mul > 2 ** 35) throw new Error('parquet RLE/bit-packed run header is too long')
      }
      if (h % 2 === 1) {
        const groups = (h - 1) / 2
        this.packed = true
        this.base = this.pos
        this.k = 0
        this.left = groups * 8
        this.pos += groups * this.width
      } else {
        const bytes = (this.width + 7) >> 3
        if (this.pos + bytes > this.end) throw truncated()
        let v = 0
        for (let i = 0; i < bytes; i++) v |= b[this.pos + i]! << (i * 8)
        this.pos += bytes
        this.packed = false
        this.value = v
        this.left = h / 2
      }
    } while (this.left === 0)
  }

  /** The next `count` values into `out[at..]`; returns the largest (unsigned). */
  read(out: Int32Array, at: number, count: number): number {
    let max = 0
    while (count > 0) {
      if (this.left === 0) this.next()
      const t = Math.min(this.left, count, MAX_STEP)
      if (this.packed) max = Math.max(max, this.unpack(out, at, t))
      else {
        const v = this.value
        if (t < 64) for (let i = 0; i < t; i++) out[at + i] = v
        else out.fill(v, at, at + t)
        max = Math.max(max, v >>> 0)
      }
      this.left -= t
      at += t
      count -= t
    }
    return max
  }

  /** `t` values of the current bit-packed run into `out[at..]`; returns the largest. */
  private unpack(out: Int32Array, at: number, t: number): number {
    const { b, width, mask } = this
    const first = this.k * width
    const stop = this.base + Math.ceil((first + t * width) / 8)
    if (stop > this.end) throw truncated()
    const p0 = this.base + Math.floor(first / 8)
    let bit = first % 8
    this.k += t
    let max = 0
    if (width <= 25 && stop + 3 <= b.length) {
      // each value lies within the 4 bytes at its first bit's byte
      const view = this.view
      for (let i = 0; i < t; i++) {
        const v = (view.getUint32(p0 + (bit >>> 3), true) >>> (bit & 7)) & mask
        out[at + i] = v
        if (v > max) max = v
        bit += width
      }
    } else {
      for (let i = 0; i < t; i++) {
        let v = 0
        for (let got = 0; got < width; ) {
          const q = bit + got
          const sh = q & 7
          const n = Math.min(8 - sh, width - got)
          v |= ((b[p0 + (q >>> 3)]! >>> sh) & ((1 << n) - 1)) << got
          got += n
        }
        out[at + i] = v
        max = Math.max(max, v >>> 0)
        bit += width
      }
    }
    return max
  }

  /**
   * Bit width 1 (definition levels of a flat optional column): the next `count` levels into
   * `validity` from bit `at` (set there on entry; a level other than 1 clears it). Returns the nulls.
   */
  readBits(validity: Uint8Array, at: number, count: number): number {
    let nulls = 0
    while (count > 0) {
      if (this.left === 0) this.next()
      const t = Math.min(this.left, count, MAX_STEP)
      if (this.packed) nulls += this.bits(t, validity, at)
      else if (this.value !== 1) {
        clearBits(validity, at, t)
        nulls += t
      }
      this.left -= t
      at += t
      count -= t
    }
    return nulls
  }

  /** Skips `count` values; with bit width 1, returns how many were 1 (valid rows). */
  skip(count: number): number {
    let ones = 0
    while (count > 0) {
      if (this.left === 0) this.next()
      const t = Math.min(this.left, count, MAX_STEP)
      if (this.packed) {
        if (this.width === 1) ones += t - this.bits(t, null, 0)
        else {
          if (this.base + Math.ceil(((this.k + t) * this.width) / 8) > this.end) throw truncated()
          this.k += t
        }
      } else if (this.value === 1) ones += t
      this.left -= t
      count -= t
    }
    return ones
  }

  /** `t` bits of the current bit-packed run (bit width 1), 8 at a time: zeros cleared in `validity` from bit `at` (if given); returns the zeros. */
  private bits(t: number, validity: Uint8Array | null, at: number): number {
    const b = this.b
    const k0 = this.k
    if (this.base + Math.ceil((k0 + t) / 8) > this.end) throw truncated()
    let zeros = 0
    for (let q = 0; q < t; q += 8) {
      const m = Math.min(8, t - q)
      const s = k0 + q
      const i = this.base + (s >>> 3)
      const word = b[i]! | (i + 1 < b.length ? b[i + 1]! << 8 : 0)
      const full = (1 << m) - 1
      const clear = full & ~(word >>> (s & 7))
      if (clear === 0) continue
      zeros += POPCOUNT[clear]!
      if (validity) {
        const d = at + q
        const sh = clear << (d & 7)
        validity[d >> 3]! &= ~sh
        if (sh > 0xff) validity[(d >> 3) + 1]! &= ~(sh >> 8)
      }
    }
    this.k += t
    return zeros
  }
}

// one copy per array type, each monomorphic (V8 copies BigInt64Array elements without bigints)

/** `o[at + k] = d[idx[k]]` over `count` rows; with `nulls`, `idx` holds the valid rows' indices only. */
function mapBigInts(d: BigInt64Array, o: BigInt64Array, at: number, idx: Int32Array, count: number, validity: Uint8Array, nulls: number): void {
  if (nulls === 0) {
    for (let k = 0; k < count; k++) o[at + k] = d[idx[k]!]!
  } else {
    for (let k = 0, j = 0; k < count; k++) {
      const r = at + k
      if ((validity[r >> 3]! & (1 << (r & 7))) !== 0) o[r] = d[idx[j++]!]!
    }
  }
}

function mapFloats(d: Float64Array, o: Float64Array, at: number, idx: Int32Array, count: number, validity: Uint8Array, nulls: number): void {
  if (nulls === 0) {
    for (let k = 0; k < count; k++) o[at + k] = d[idx[k]!]!
  } else {
    for (let k = 0, j = 0; k < count; k++) {
      const r = at + k
      if ((validity[r >> 3]! & (1 << (r & 7))) !== 0) o[r] = d[idx[j++]!]!
    }
  }
}

function mapInts(d: Int32Array, o: Int32Array, at: number, idx: Int32Array, count: number, validity: Uint8Array, nulls: number): void {
  if (nulls === 0) {
    for (let k = 0; k < count; k++) o[at + k] = d[idx[k]!]!
  } else {
    for (let k = 0, j = 0; k < count; k++) {
      const r = at + k
      if ((validity[r >> 3]! & (1 << (r & 7))) !== 0) o[r] = d[idx[j++]!]!
    }
  }
}

function mapAny(d: ArrayLike<unknown>, o: unknown[], at: number, idx: Int32Array, count: number, validity: Uint8Array, nulls: number): void {
  for (let k = 0, j = 0; k < count; k++) {
    const r = at + k
    if (nulls === 0 || (validity[r >> 3]! & (1 << (r & 7))) !== 0) o[r] = d[idx[j++]!]
  }
}

/** A dictionary page, decoded. */
interface Dictionary {
  /** Non-string columns: the values, typed as the column. */
  readonly values: OutValues | null
  /** String columns: the strings; codes in a read's dictionary come from {@link remapFor}. */
  readonly strings: string[] | null
  readonly size: number
  /** The read builder the remap below is for. */
  builder?: DictionaryBuilder
  remap?: Int32Array
  /** remap[i] === i: the indices are the read's codes. */
  identity?: boolean
}

/** A data page of a column chunk. */
interface Page {
  readonly header: PageHeader
  /** The page's bytes as stored (compressed). */
  readonly data: Uint8Array
  /** First row, in the row group, and rows. */
  readonly rowStart: number
  readonly rows: number
  readonly dictionary: Dictionary | undefined
}

/** Where a read stands in a page. */
interface PageCursor {
  readonly page: number
  /** Rows of the page consumed. */
  row: number
  /** Definition levels (max level 1), as a stream; null when the column is required or `levels` holds them. */
  readonly defs: Hybrid | null
  /** Definition levels from hyparquet's decoders (other encodings); empty when none is null. */
  readonly levels: ArrayLike<number> | null
  /** Dictionary indices; null for value pages. */
  readonly idx: Hybrid | null
  /** Dictionary page of bit width 0: every index is 0. */
  readonly zeroIdx: boolean
  /** The page's non-null values, decoded (value pages), and how many were consumed. */
  readonly vals: ArrayLike<unknown> | null
  j: number
}

const isDictEncoding = (e: string): boolean => e === 'PLAIN_DICTIONARY' || e === 'RLE_DICTIONARY'

/**
 * One flat column chunk of a row group: its bytes (fetched whole), page directory and decoded
 * dictionary, and the page being read. `read(s, e, ...)` decodes rows `[s, e)` of the row group
 * into a read's buffers; consecutive reads carry on where the last stopped (a page they share is
 * decompressed and decoded once), other reads start again at the page holding their first row,
 * skipping the pages before it undecoded.
 */
class ChunkReader {
  private readonly pages: Page[] = []
  private cursor: PageCursor | null = null
  /** The last decompressed page, to go back into it without decompressing again. */
  private rawPage = -1
  private raw: Uint8Array | null = null
  private readonly decoder: ColumnDecoder
  private readonly maxDef: number
  private readonly convertValues: (raw: DecodedArray) => ArrayLike<unknown>
  /** The read's string dictionary (string columns, during a read). */
  private builder: DictionaryBuilder | null = null
  private readonly code = (s: string): number => this.builder!.code(s)

  constructor(
    bytes: ArrayBuffer,
    root: SchemaTree,
    private readonly node: SchemaTree,
    private readonly meta: ColumnMetaData,
    private readonly type: DataType,
    n: number,
  ) {
    const str = (b: Uint8Array): string => (b == null ? b : utf8.decode(b))
    const parsers: ParquetParsers = {
      ...DEFAULT_PARSERS,
      ...TIME_PARSERS,
      // strings stay strings (JSON as its text): coded into a read's dictionary when stored
      stringFromBytes: str,
      jsonFromBytes: str,
      uuidFromBytes: (b: Uint8Array) => (b == null ? b : uuidString(b)),
    }
    const schemaPath = [root, node]
    this.decoder = {
      pathInSchema: meta.path_in_schema,
      type: meta.type,
      element: node.element,
      schemaPath,
      codec: meta.codec,
      parsers,
      compressors,
      utf8: false,
    }
    this.maxDef = getMaxDefinitionLevel(schemaPath)
    if (this.maxDef > 1 || getMaxRepetitionLevel(schemaPath) > 0) throw new Error(`column '${node.element.name}' is nested`)
    // timestamps already in µs need no conversion
    const lt = node.element.logical_type
    const rawMicros = type === 'timestamp' && meta.type === 'INT64' && ((lt?.type === 'TIMESTAMP' && lt.unit === 'MICROS') || (!lt && node.element.converted_type === 'TIMESTAMP_MICROS'))
    this.convertValues = (raw: DecodedArray): ArrayLike<unknown> => (rawMicros && raw instanceof BigInt64Array ? raw : convert(raw, this.decoder))

    // the page directory (headers only), and the dictionary
    let dictionary: Dictionary | undefined
    const reader = { view: new DataView(bytes), offset: 0 }
    let rows = 0
    while (rows < n && reader.offset < bytes.byteLength - 1) {
      const header = parquetHeader(reader)
      const data = new Uint8Array(bytes, reader.offset, header.compressed_page_size)
      reader.offset += header.compressed_page_size
      if (header.type === 'DICTIONARY_PAGE') {
        dictionary = this.readDictionary(header, data)
        continue
      }
      let count: number
      if (header.type === 'DATA_PAGE') count = header.data_page_header!.num_values
      else if (header.type === 'DATA_PAGE_V2') count = header.data_page_header_v2!.num_rows
      else continue // index pages
      count = Math.min(count, n - rows)
      if (count > 0) this.pages.push({ header, data, rowStart: rows, rows: count, dictionary })
      rows += count
    }
    if (rows < n) throw new Error(`column '${node.element.name}': chunk holds ${rows} rows, the row group ${n}`)
  }

  private readDictionary(header: PageHeader, data: Uint8Array): Dictionary {
    const diph = header.dictionary_page_header!
    const raw = decompressPage(data, Number(header.uncompressed_page_size), this.meta.codec, compressors)
    const plain = readPlain({ view: new DataView(raw.buffer, raw.byteOffset, raw.byteLength), offset: 0 }, this.meta.type, diph.num_values, this.node.element.type_length)
    const vals = this.convertValues(plain)
    if (this.type === 'string') {
      const strings = Array.from(vals, (v) => (typeof v === 'string' ? v : utf8.decode(v as Uint8Array)))
      return { values: null, strings, size: strings.length }
    }
    const values = allocOut(this.type, vals.length)
    storeValues(this.type, values, 0, vals, 0, vals.length, Number)
    return { values, strings: null, size: vals.length }
  }

  /** Rows `[s, e)` of the row group into `out` / `validity` from row `at` (validity set there on entry); returns the nulls. */
  read(s: number, e: number, out: OutValues, validity: Uint8Array, at: number, builder: DictionaryBuilder | null): number {
    this.builder = builder
    let nulls = 0
    let row = s
    while (row < e) {
      let c = this.cursor
      if (c === null || c.row === this.pages[c.page]!.rows || this.pages[c.page]!.rowStart + c.row !== row) {
        const p = this.pageOf(row)
        c = this.cursor = this.open(p)
        const skip = row - this.pages[p]!.rowStart
        if (skip > 0) this.skip(c, skip)
      }
      const page = this.pages[c.page]!
      const t = Math.min(e - row, page.rows - c.row, READ_STEP)
      nulls += this.readRows(c, page, t, out, validity, at + (row - s))
      c.row += t
      row += t
    }
    this.builder = null
    return nulls
  }

  /** The page holding row `row`. */
  private pageOf(row: number): number {
    const pages = this.pages
    let lo = 0
    let hi = pages.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (pages[mid]!.rowStart <= row) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  private decompressed(p: number): Uint8Array {
    if (this.rawPage === p) return this.raw!
    const { header, data } = this.pages[p]!
    this.rawPage = -1
    this.raw = null
    const raw = decompressPage(data, Number(header.uncompressed_page_size), this.meta.codec, compressors)
    this.raw = raw
    this.rawPage = p
    return raw
  }

  /** A cursor at the start of page `p`. */
  private open(p: number): PageCursor {
    const { header, data } = this.pages[p]!
    const base = { page: p, row: 0, j: 0 }
    const none = { defs: null, levels: null, idx: null, zeroIdx: false, vals: null }
    const v1 = header.type === 'DATA_PAGE'
    const encoding = v1 ? header.data_page_header!.encoding : header.data_page_header_v2!.encoding
    if (encoding === 'PLAIN' || isDictEncoding(encoding)) {
      // levels, then the values, in `bytes` from `pos`
      let bytes: Uint8Array
      let pos = 0
      let levels: [Uint8Array, number, number] | null = null
      let levelCount: number
      if (v1) {
        const daph = header.data_page_header!
        bytes = this.decompressed(p)
        levelCount = daph.num_values
        if (this.maxDef === 1) {
          if (bytes.length < 4) throw truncated()
          const len = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0
          if (4 + len > bytes.length) throw truncated()
          levels = [bytes, 4, 4 + len]
          pos = 4 + len
        }
      } else {
        const daph2 = header.data_page_header_v2!
        const repLen = daph2.repetition_levels_byte_length
        const defLen = daph2.definition_levels_byte_length
        levelCount = daph2.num_values
        let levelsEnd = repLen
        if (this.maxDef === 1) {
          levelsEnd = repLen + defLen
          if (levelsEnd > data.length) throw truncated()
          levels = [data, repLen, levelsEnd]
        }
        bytes = data.subarray(levelsEnd)
        if (daph2.is_compressed !== false) {
          if (this.rawPage !== p) {
            this.rawPage = -1
            this.raw = null
            this.raw = decompressPage(bytes, Number(header.uncompressed_page_size) - defLen - repLen, this.meta.codec, compressors)
            this.rawPage = p
          }
          bytes = this.raw!
        }
      }
      const defs = levels ? new Hybrid(levels[0], levels[1], levels[2], 1) : null
      if (isDictEncoding(encoding)) {
        if (!this.pages[p]!.dictionary) throw new Error('dictionary-encoded page without a dictionary page')
        // (as hyparquet: a v1 BOOLEAN page has no bit width byte)
        let width = 1
        if (!v1 || this.meta.type !== 'BOOLEAN') {
          if (pos >= bytes.length) throw truncated()
          width = bytes[pos++]!
        }
        if (width > 32) throw new Error(`parquet dictionary index bit width ${width} is invalid`)
        return { ...base, ...none, defs, idx: width === 0 ? null : new Hybrid(bytes, pos, bytes.length, width), zeroIdx: width === 0 }
      }
      // PLAIN: the non-null values, decoded whole (counted first from the levels)
      const valid = levels ? new Hybrid(levels[0], levels[1], levels[2], 1).skip(levelCount) : levelCount
      const plain = readPlain({ view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: pos }, this.meta.type, valid, this.node.element.type_length)
      return { ...base, ...none, defs, vals: this.convertValues(plain) }
    }
    // other encodings: hyparquet's page decoders
    const page: DataPage = v1 ? readDataPage(this.decompressed(p), header.data_page_header!, this.decoder) : readDataPageV2(data, header, this.decoder)
    return { ...base, ...none, levels: this.maxDef > 0 ? (page.definitionLevels ?? []) : null, vals: this.convertValues(page.dataPage) }
  }

  /** Moves `c` on by `count` rows, decoding only what finds the next value. */
  private skip(c: PageCursor, count: number): void {
    let valid = count
    if (c.defs) valid = c.defs.skip(count)
    else if (c.levels && c.levels.length > 0) {
      valid = 0
      for (let k = c.row; k < c.row + count; k++) if (c.levels[k] === this.maxDef) valid++
    }
    if (c.idx) c.idx.skip(valid)
    else c.j += valid
    c.row += count
  }

  /** The next `t` rows of page `page` at cursor `c` into the read's buffers from row `at`; returns the nulls. */
  private readRows(c: PageCursor, page: Page, t: number, out: OutValues, validity: Uint8Array, at: number): number {
    const type = this.type
    let nulls = 0
    if (c.defs) nulls = c.defs.readBits(validity, at, t)
    else if (c.levels && c.levels.length > 0) {
      const levels = c.levels
      for (let k = 0; k < t; k++) {
        if (levels[c.row + k] !== this.maxDef) {
          const i = at + k
          validity[i >> 3]! &= ~(1 << (i & 7))
          nulls++
        }
      }
    }
    const valid = t - nulls
    if (c.vals === null) {
      // dictionary indices
      const dict = page.dictionary!
      if (type === 'string') {
        const builder = this.builder!
        if (dict.builder !== builder) {
          dict.builder = builder
          dict.remap = builder.remap(dict.strings!)
          let same = true
          for (let i = 0; i < dict.size && same; i++) same = dict.remap[i] === i
          dict.identity = same
        }
        if (dict.identity && nulls === 0) {
          // the indices are the codes: decode them in place
          const o = out as Int32Array
          if (c.idx) checkIndex(c.idx.read(o, at, t), t, dict.size)
          else {
            checkIndex(0, t, dict.size)
            o.fill(0, at, at + t)
          }
          return 0
        }
      }
      const idx = scratchFor(valid)
      if (c.idx) checkIndex(c.idx.read(idx, 0, valid), valid, dict.size)
      else {
        checkIndex(0, valid, dict.size)
        idx.fill(0, 0, valid)
      }
      if (type === 'string') mapInts(dict.remap!, out as Int32Array, at, idx, t, validity, nulls)
      else {
        const d = dict.values!
        if (d instanceof BigInt64Array) mapBigInts(d, out as BigInt64Array, at, idx, t, validity, nulls)
        else if (d instanceof Float64Array) mapFloats(d, out as Float64Array, at, idx, t, validity, nulls)
        else if (d instanceof Int32Array) mapInts(d, out as Int32Array, at, idx, t, validity, nulls)
        else mapAny(d as ArrayLike<unknown>, out as unknown[], at, idx, t, validity, nulls)
      }
      return nulls
    }
    // decoded values: copied over the valid rows
    const vals = c.vals
    if (c.j + valid > vals.length) throw new Error(`column '${this.node.element.name}': page holds ${vals.length} values, its levels ${c.j + valid} or more`)
    if (nulls === 0) storeValues(type, out, at, vals, c.j, t, this.code)
    else {
      let j = c.j
      let k = 0
      while (k < t) {
        let r = at + k
        if ((validity[r >> 3]! & (1 << (r & 7))) === 0) {
          k++
          continue
        }
        let e = k + 1
        while (e < t && (validity[(r = at + e) >> 3]! & (1 << (r & 7))) !== 0) e++
        storeValues(type, out, at + k, vals, j, e - k, this.code)
        j += e - k
        k = e
      }
    }
    c.j += valid
    return nulls
  }
}

/** Throws unless `max`, the largest of `count` dictionary indices, is inside a dictionary of `size`. */
function checkIndex(max: number, count: number, size: number): void {
  if (count > 0 && max >= size) throw new Error(`parquet dictionary index ${max} out of range (dictionary of ${size})`)
}

class ParquetFile implements OpenedFile {
  readonly path: string
  readonly schema: Schema
  readonly numRows: number
  readonly droppedMalformed = 0
  private readonly file: AsyncBuffer
  private readonly metadata: FileMetaData
  /** The file columns decoded (file types), and where each user field comes from. */
  private readonly decoded: Schema
  private readonly plan: number[]
  private readonly groupStarts: number[]
  /** The last {@link GROUP_CACHE} row groups' column chunks (fetched, with their readers' positions). */
  private readonly cache = new Map<number, Promise<ChunkReader[]>>()
  private readonly nodes = new Map<string, SchemaTree>()
  private readonly root: SchemaTree

  constructor(path: string, file: AsyncBuffer, metadata: FileMetaData, options: ReadOptions) {
    this.path = path
    this.file = file
    this.metadata = metadata
    this.numRows = Number(metadata.num_rows)
    this.root = parquetSchema(metadata)
    for (const node of this.root.children) this.nodes.set(node.element.name, node)
    this.groupStarts = [0]
    for (const rg of metadata.row_groups) this.groupStarts.push(this.groupStarts.at(-1)! + Number(rg.num_rows))
    if (options.schema) {
      const wanted = new Set(options.schema.map((f) => f.name))
      const fileSchema = parquetFileSchema(metadata, path, wanted)
      const plan = planProjection(path, fileSchema, options.schema)
      // decode only the columns the user schema uses
      this.decoded = plan.filter((i) => i >= 0).map((i) => fileSchema[i]!)
      this.plan = options.schema.map((f) => this.decoded.findIndex((g) => g.name === f.name))
      this.schema = options.schema
    } else {
      this.decoded = parquetFileSchema(metadata, path)
      this.plan = this.decoded.map((_, i) => i)
      this.schema = this.decoded
    }
  }

  async read(start: number, end: number): Promise<Batch> {
    start = Math.max(0, Math.floor(start))
    end = Math.min(this.numRows, Math.floor(end))
    if (end <= start) return emptyBatch(this.schema)
    const groups: number[] = []
    for (let g = 0; g < this.metadata.row_groups.length; g++) {
      const gs = this.groupStarts[g]!
      const ge = this.groupStarts[g + 1]!
      if (ge <= start || gs >= end || ge === gs) continue
      groups.push(g)
    }
    const chunks = await Promise.all(groups.map((g) => this.group(g)))
    // decode each column straight into the batch (synchronously: no other read moves the readers meanwhile)
    const n = end - start
    const columns = this.decoded.map((f, ci): Column => {
      const out = allocOut(f.type, n)
      const validity = newValidity(n, true)
      const builder = f.type === 'string' ? new DictionaryBuilder() : null
      let nulls = 0
      groups.forEach((g, k) => {
        const gs = this.groupStarts[g]!
        const s = Math.max(start, gs)
        const e = Math.min(end, this.groupStarts[g + 1]!)
        try {
          nulls += chunks[k]![ci]!.read(s - gs, e - gs, out, validity, s - start, builder)
        } catch (err) {
          this.cache.delete(g) // its readers may be mid-run
          throw this.groupError(err, g)
        }
      })
      return { type: f.type, length: n, values: out, validity: nulls === 0 ? null : validity, ...(builder ? { dictionary: builder.strings } : {}) }
    })
    return project({ schema: this.decoded, columns, numRows: n }, this.schema, this.plan)
  }

  private group(g: number): Promise<ChunkReader[]> {
    let p = this.cache.get(g)
    if (p) {
      // refresh LRU position
      this.cache.delete(g)
      this.cache.set(g, p)
      return p
    }
    p = this.loadGroup(g)
    this.cache.set(g, p)
    while (this.cache.size > GROUP_CACHE) this.cache.delete(this.cache.keys().next().value!)
    p.catch(() => {
      if (this.cache.get(g) === p) this.cache.delete(g)
    })
    return p
  }

  /** Fetches row group `g`'s column chunks (one range read each) and reads their page headers and dictionaries. */
  private async loadGroup(g: number): Promise<ChunkReader[]> {
    const rg = this.metadata.row_groups[g]!
    const n = this.groupStarts[g + 1]! - this.groupStarts[g]!
    try {
      return await Promise.all(
        this.decoded.map(async (f) => {
          const node = this.nodes.get(f.name)!
          const chunk = rg.columns.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === f.name)
          const meta = chunk?.meta_data
          if (!meta) throw new Error(`row group ${g} has no chunk for column '${f.name}'`)
          const offset = Number(meta.dictionary_page_offset || meta.data_page_offset)
          const bytes = await this.file.slice(offset, offset + Number(meta.total_compressed_size))
          return new ChunkReader(bytes, this.root, node, meta, f.type, n)
        }),
      )
    } catch (e) {
      throw this.groupError(e, g)
    }
  }

  private groupError(e: unknown, g: number): Error {
    if (e instanceof SourceError) return e
    if (isNotFound(e)) return new SourceError('FILE_NOT_FOUND', `${this.path}: file not found`, { cause: e })
    const rowStart = this.groupStarts[g]!
    const rowEnd = this.groupStarts[g + 1]!
    return new SourceError('CORRUPT_FILE', `${this.path}: corrupt parquet row group ${g} (rows ${rowStart}-${rowEnd}): ${(e as Error)?.message ?? e}`, { cause: e })
  }
}

async function openParquet(fs: Fs, path: string, options: ReadOptions): Promise<OpenedFile> {
  const st = await fs.stat(path)
  if (!st || st.isDirectory) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`)
  const file = fsAsyncBuffer(fs, path, st.size)
  let metadata: FileMetaData
  try {
    if (st.size < 12) throw new Error(`file too small for parquet (${st.size} bytes)`)
    const head = new Uint8Array(await file.slice(0, 4))
    if (String.fromCharCode(...head) !== 'PAR1') throw new Error('parquet file invalid (header != PAR1)')
    metadata = await parquetMetadataAsync(file, { initialFetchSize: Math.min(st.size, 1 << 16) })
    let total = 0
    for (const rg of metadata.row_groups) total += Number(rg.num_rows)
    if (total !== Number(metadata.num_rows)) throw new Error(`row groups hold ${total} rows but the footer says ${metadata.num_rows}`)
  } catch (e) {
    if (isNotFound(e)) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`, { cause: e })
    throw new SourceError('CORRUPT_FILE', `${path}: not a valid parquet file: ${(e as Error)?.message ?? e}`, { cause: e })
  }
  return new ParquetFile(path, file, metadata, options)
}

/** Bytes fetched from the end of the file first when inferring a schema (as `open`'s initial fetch). */
const FOOTER_FETCH = 1 << 16

/** Reads the footer only: the last 8 bytes give the metadata length, then the metadata (usually in the same fetch). */
function parquetInferSchema(file: SyncFile, options: ReadOptions): Schema {
  if (options.schema) return options.schema
  const { path, size } = file
  let metadata: FileMetaData
  try {
    if (size < 12) throw new Error(`file too small for parquet (${size} bytes)`)
    if (String.fromCharCode(...file.readRange(0, 4)) !== 'PAR1') throw new Error('parquet file invalid (header != PAR1)')
    let tail = file.readRange(Math.max(0, size - FOOTER_FETCH), size)
    const at = size - tail.length
    if (tail.length < 8) throw new Error('parquet file is truncated')
    const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength)
    if (view.getUint32(tail.length - 4, true) !== 0x31524150) throw new Error('parquet file invalid (footer != PAR1)')
    const metadataLength = view.getUint32(tail.length - 8, true)
    if (metadataLength + 8 > size - 4) throw new Error(`parquet metadata length ${metadataLength} exceeds the file (${size} bytes)`)
    if (size - 8 - metadataLength < at) tail = file.readRange(size - 8 - metadataLength, size)
    metadata = parquetMetadata(tail)
  } catch (e) {
    if (e instanceof SourceError) throw e
    throw new SourceError('CORRUPT_FILE', `${path}: not a valid parquet file: ${(e as Error)?.message ?? e}`, { cause: e })
  }
  return parquetFileSchema(metadata, path)
}

// ---------------------------------------------------------------------------------------------
// Writing


function schemaElement(f: Field): SchemaElement {
  const repetition_type = f.nullable ? 'OPTIONAL' : 'REQUIRED'
  switch (f.type) {
    case 'boolean':
      return { name: f.name, type: 'BOOLEAN', repetition_type }
    case 'int32':
      return { name: f.name, type: 'INT32', repetition_type }
    case 'int64':
      return { name: f.name, type: 'INT64', repetition_type }
    case 'float64':
      return { name: f.name, type: 'DOUBLE', repetition_type }
    case 'timestamp':
      return {
        name: f.name,
        type: 'INT64',
        repetition_type,
        converted_type: 'TIMESTAMP_MICROS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
      }
    case 'string':
      return { name: f.name, type: 'BYTE_ARRAY', repetition_type, converted_type: 'UTF8', logical_type: { type: 'STRING' } }
    case 'binary':
      return { name: f.name, type: 'BYTE_ARRAY', repetition_type }
    case 'window':
      throw new SinkError(
        'UNSUPPORTED_TYPE',
        `parquet cannot store the window column '${f.name}': select its bounds instead, e.g. select(col('${f.name}.start'), col('${f.name}.end'))`,
      )
    case 'struct':
      throw new SinkError('UNSUPPORTED_TYPE', `parquet cannot store the struct column '${f.name}': select its fields instead, e.g. select('${f.name}.*')`)
  }
}

function columnValues(c: Column, nullable: boolean): ColumnSource['data'] {
  const n = c.length
  const hasNulls = c.validity !== null && nullable
  if (!hasNulls && (c.type === 'int32' || c.type === 'int64' || c.type === 'float64')) return c.values as Int32Array
  const out = new Array<unknown>(n)
  switch (c.type) {
    case 'string': {
      // encode each dictionary entry once; rows share the bytes
      const dict = c.dictionary ?? []
      const bytes = new Array<Uint8Array | undefined>(dict.length)
      const codes = c.values as Int32Array
      for (let i = 0; i < n; i++) {
        if (hasNulls && !isValid(c.validity, i)) out[i] = null
        else {
          const k = codes[i]!
          out[i] = bytes[k] ??= textEncoder.encode(dict[k] ?? '')
        }
      }
      break
    }
    case 'boolean': {
      const v = c.values as Uint8Array
      for (let i = 0; i < n; i++) out[i] = hasNulls && !isValid(c.validity, i) ? null : v[i] !== 0
      break
    }
    default: {
      const v = c.values as ArrayLike<unknown>
      for (let i = 0; i < n; i++) out[i] = hasNulls && !isValid(c.validity, i) ? null : v[i]
    }
  }
  return out as ColumnSource['data']
}

function encodeParquet(batches: Batch[], schema: Schema): Uint8Array {
  const elements = schema.map(schemaElement)
  const b = concatBatches(schema, batches)
  for (let i = 0; i < schema.length; i++) {
    const f = schema[i]!
    if (!f.nullable && b.columns[i]!.validity !== null) {
      for (let r = 0; r < b.numRows; r++) {
        if (!isValid(b.columns[i]!.validity, r)) throw new SinkError('NULL_IN_NON_NULLABLE', `parquet: column '${f.name}' is not nullable but row ${r} is null`)
      }
    }
  }
  const columnData: ColumnSource[] = schema.map((f, i) => ({ name: f.name, data: columnValues(b.columns[i]!, f.nullable) }))
  const buf = parquetWriteBuffer({
    columnData,
    schema: [{ name: 'root', num_children: schema.length }, ...elements],
    createdBy: 'sluice (hyparquet-writer)',
  })
  return new Uint8Array(buf)
}

export const parquetFormat: FileFormat = {
  name: 'parquet',
  extension: '.parquet',
  open: openParquet,
  inferSchema: parquetInferSchema,
  encode: encodeParquet,
}

