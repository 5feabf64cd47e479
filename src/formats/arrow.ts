/**
 * Arrow IPC files (`ARROW1` magic, a.k.a. Feather v2) and streams (continuation-marker framing),
 * told apart by their first bytes. `encode` writes the IPC file format.
 *
 * IPC files are read by byte ranges, through `Fs.readRange`, never whole: `open` reads the footer
 * (the last 10 bytes give its length; it holds the schema and the blocks of the record and
 * dictionary batches) and each record batch's metadata message (its row count, and each column
 * buffer's offset and length within the batch's body). `read(start, end)` then fetches, for the
 * record batches overlapping the rows, only the buffers of the columns it needs (adjacent buffers
 * coalesced into one `readRange`), and the dictionary batches of the dictionary-encoded columns it
 * needs (once per open file). The buffers are decoded by apache-arrow's own `VectorLoader` and
 * converted zero-copy (see src/arrow.ts); the last {@link BATCH_CACHE} loaded record batches are
 * kept, so consecutive row ranges within one record batch fetch it once. Record batches that are
 * compressed are read through the whole-file path below.
 *
 * A read of part of a large record batch (see {@link rangeReads}) fetches only those rows of the
 * needed fixed-width columns (Bool, Int, Float, Timestamp, Date, Time, Duration, and dictionary
 * indices): rows [a, b) are bytes [a·w, b·w) of the values and bits [a, b) of the validity bitmap
 * (shifted to bit 0 when a % 8 ≠ 0; booleans likewise). Other needed columns (Utf8, Binary, nested,
 * or buffers shorter than the metadata says) are loaded for the whole record batch and kept, as
 * above. When fewer rows than a read's would be left after it in the record batch, the read takes
 * them too (the whole record batch if it started at row 0), so sequential reads fetch each byte once.
 * The last {@link RANGE_CACHE} row ranges are kept.
 *
 * IPC streams have no footer: the whole stream is read at `open` and all its record batches are
 * converted at once.
 *
 * `inferSchema` reads the footer of a file, or the first message of a stream.
 */
import { DateUnit, makeData, Message, MetadataVersion, Precision, RecordBatchReader, Type, UnionMode, Vector, type Data, type DataType as ArrowDataType, type RecordBatch, type Schema as ArrowSchema } from 'apache-arrow'
import { Footer, type FileBlock } from 'apache-arrow/ipc/metadata/file'
import type { BufferRegion, DictionaryBatch as DictionaryBatchHeader, FieldNode, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message'
import { VectorLoader } from 'apache-arrow/visitor/vectorloader'
import { arrowTypeToDataType, batchesToIPC, dataToColumn } from '../arrow.ts'
import { concatBatches, emptyBatch, sliceBatch, sliceColumn, type Batch, type Column, type Field, type Schema } from '../batch.ts'
import { SourceError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import type { FileFormat, OpenedFile, ReadOptions, SyncFile } from './format.ts'
import { isNotFound, planProjection, project, readWhole } from './values.ts'

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31] // "ARROW1"

/** Record batches kept decoded per open file (whole, or the columns loaded whole alongside row ranges). */
const BATCH_CACHE = 2
/** Row ranges of record batches kept decoded per open file. */
const RANGE_CACHE = 2
/**
 * Row-range reads: record batches whose needed columns' buffers total fewer than `minBytes` bytes
 * are loaded whole (small files are not fetched in many pieces). Mutable for tests only.
 * @internal
 */
export const rangeReads = { minBytes: 1 << 20 }
/** Bytes read from the end of a file at first: the footer usually fits. */
const TAIL_FETCH = 1 << 14
/** Buffers closer than this are fetched in one read (the gap is read and dropped). */
const COALESCE_GAP = 4096
/** Record batch metadata messages read at once by `open`. */
const OPEN_CONCURRENCY = 16

const EMPTY = new Uint8Array(0)

function hasMagicAt(b: Uint8Array, at: number): boolean {
  if (at < 0 || at + 6 > b.length) return false
  for (let i = 0; i < 6; i++) if (b[at + i] !== MAGIC[i]) return false
  return true
}

const TRUNCATED = 'Arrow IPC file is truncated (no trailing ARROW1 magic)'
const BAD_MAGIC = 'not an Arrow IPC file or stream (bad magic)'

/** 'file', 'stream', or a reason the bytes are neither. */
export function sniffIPC(bytes: Uint8Array): 'file' | 'stream' | { bad: string } {
  return sniffHead(bytes.subarray(0, 8), bytes.length, () => bytes.subarray(Math.max(0, bytes.length - 6)))
}

/** As {@link sniffIPC} from a file's first (up to) 8 bytes, its size and a way to read its last 6 bytes. */
function sniffHead(head: Uint8Array, size: number, tail6: () => Uint8Array): 'file' | 'stream' | { bad: string } {
  if (hasMagicAt(head, 0)) {
    if (size < 12 || !hasMagicAt(tail6(), 0)) return { bad: TRUNCATED }
    return 'file'
  }
  if (size >= 8 && head[0] === 0xff && head[1] === 0xff && head[2] === 0xff && head[3] === 0xff) return 'stream'
  return { bad: BAD_MAGIC }
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength)

/** The [start, end) of the Footer flatbuffer, from the file's last bytes `tail` (which end with the magic). */
function footerRange(tail: Uint8Array, size: number): { start: number; end: number } {
  if (tail.length < 10) throw new Error(`file too small for an Arrow IPC file (${size} bytes)`)
  const len = view(tail).getInt32(tail.length - 10, true)
  const end = size - 10
  const start = end - len
  if (len <= 0 || start < 8) throw new Error(`footer length ${len} does not fit in the file (${size} bytes)`)
  return { start, end }
}

function decodeFooter(bytes: Uint8Array): Footer {
  const footer = Footer.decode(bytes)
  if (!footer.schema) throw new Error('the footer has no schema')
  return footer
}

/** Decodes an encapsulated message: [0xFFFFFFFF] int32 length, flatbuffer (the legacy form has no marker). */
function decodeMessage(meta: Uint8Array, what: string): Message {
  if (meta.length < 8) throw new Error(`${what}: metadata of ${meta.length} bytes is too short`)
  let len = view(meta).getInt32(0, true)
  let at = 4
  if (len === -1) {
    len = view(meta).getInt32(4, true)
    at = 8
  }
  if (len <= 0 || at + len > meta.length) throw new Error(`${what}: metadata length ${len} does not fit its ${meta.length}-byte block`)
  return Message.decode(meta.subarray(at, at + len))
}

function corrupt(path: string, kind: string, e: unknown): SourceError {
  if (e instanceof SourceError) return e
  return new SourceError('CORRUPT_FILE', `${path}: corrupt Arrow IPC ${kind}: ${(e as Error)?.message ?? e}`, { cause: e })
}

function badKind(path: string, bad: string): SourceError {
  return new SourceError('CORRUPT_FILE', `${path}: ${bad}`, { cause: new Error(bad) })
}

/** How the decoded `fields` map onto the schema read with (`options.schema`, or the fields themselves). */
function projection(path: string, fields: Schema, options: ReadOptions): { plan: number[]; schema: Schema } {
  if (!options.schema) return { plan: fields.map((_, i) => i), schema: fields }
  return { plan: planProjection(path, fields, options.schema), schema: options.schema }
}

/** The Sluice fields of the columns in `wanted` (all when null), with their indices in the Arrow schema. */
function sluiceFields(arrowSchema: ArrowSchema, path: string, wanted: ReadonlySet<string> | null): { idx: number[]; fields: Field[] } {
  const idx: number[] = []
  const fields: Field[] = []
  arrowSchema.fields.forEach((f, i) => {
    // an unsupported column the schema leaves out is skipped
    if (wanted && !wanted.has(f.name)) return
    let type
    try {
      type = arrowTypeToDataType(f.type, f.name)
    } catch (e) {
      throw new SourceError('UNSUPPORTED_TYPE', `${path}: ${(e as Error).message}`, { cause: e })
    }
    idx.push(i)
    fields.push({ name: f.name, type, nullable: f.nullable })
  })
  return { idx, fields }
}

// ---------------------------------------------------------------------------------------------
// IPC streams (and compressed files): the whole file, converted at open

class ArrowFile implements OpenedFile {
  readonly path: string
  readonly schema: Schema
  readonly numRows: number
  readonly droppedMalformed = 0
  private readonly batches: Batch[]
  private readonly starts: number[]
  private readonly decoded: Schema
  private readonly plan: number[]

  constructor(path: string, arrowSchema: ArrowSchema, rbs: RecordBatch[], options: ReadOptions) {
    this.path = path
    const { idx, fields } = sluiceFields(arrowSchema, path, options.schema ? new Set(options.schema.map((f) => f.name)) : null)
    this.decoded = fields
    this.batches = rbs.map((rb) => ({
      schema: fields,
      columns: idx.map((i, k) => dataToColumn(rb.data.children[i]!, fields[k]!.name)),
      numRows: rb.numRows,
    }))
    this.starts = [0]
    for (const b of this.batches) this.starts.push(this.starts.at(-1)! + b.numRows)
    this.numRows = this.starts.at(-1)!
    ;({ plan: this.plan, schema: this.schema } = projection(path, fields, options))
  }

  async read(start: number, end: number): Promise<Batch> {
    start = Math.max(0, Math.floor(start))
    end = Math.min(this.numRows, Math.floor(end))
    if (end <= start) return emptyBatch(this.schema)
    const parts: Batch[] = []
    for (let i = 0; i < this.batches.length; i++) {
      const bs = this.starts[i]!
      const be = this.starts[i + 1]!
      if (be <= start || bs >= end || be === bs) continue
      const b = this.batches[i]!
      const s = Math.max(start, bs) - bs
      const e = Math.min(end, be) - bs
      parts.push(s === 0 && e === b.numRows ? b : sliceBatch(b, s, e))
    }
    return project(concatBatches(this.decoded, parts), this.schema, this.plan)
  }
}

function arrowFromBytes(bytes: Uint8Array, path: string, options: ReadOptions): ArrowFile {
  const kind = sniffIPC(bytes)
  if (typeof kind !== 'string') throw badKind(path, kind.bad)
  let arrowSchema: ArrowSchema
  let rbs: RecordBatch[]
  try {
    const reader = RecordBatchReader.from(bytes)
    reader.open()
    // schema and footer before readAll(), which closes the reader
    arrowSchema = reader.schema
    if (!arrowSchema) throw new Error('no schema message')
    let expected: number | undefined
    if (kind === 'file') expected = (reader as unknown as { numRecordBatches?: number }).numRecordBatches
    rbs = reader.readAll()
    if (expected !== undefined && expected !== rbs.length) throw new Error(`footer lists ${expected} record batches, read ${rbs.length}`)
    for (const rb of rbs) {
      // touch every column's buffers so truncation surfaces here, not later
      for (const child of rb.data.children) if (child.length > 0 && child.values === undefined && child.children.length === 0) throw new Error('missing column buffer')
    }
  } catch (e) {
    throw corrupt(path, kind, e)
  }
  return new ArrowFile(path, arrowSchema, rbs, options)
}

// ---------------------------------------------------------------------------------------------
// IPC files: footer at open, column buffers on demand

/** Where each top-level column's field nodes, buffers and variadic buffer counts start in a record batch's metadata. */
interface Cursor {
  n: number
  b: number
  v: number
}

/** Advances `c` past the nodes and buffers of one column of type `t`, as apache-arrow's VectorLoader consumes them. */
function skipColumn(t: ArrowDataType, version: MetadataVersion, c: Cursor, variadic: readonly number[]): void {
  c.n++
  switch (t.typeId) {
    case Type.Null:
      return
    case Type.Bool:
    case Type.Int:
    case Type.Float:
    case Type.Decimal:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Interval:
    case Type.Duration:
    case Type.FixedSizeBinary:
    case Type.Dictionary: // validity, indices
      c.b += 2
      return
    case Type.Binary:
    case Type.Utf8:
    case Type.LargeBinary:
    case Type.LargeUtf8:
      c.b += 3
      return
    case Type.BinaryView:
    case Type.Utf8View:
      c.b += 2 + (variadic[c.v++] ?? 0)
      return
    case Type.List:
    case Type.LargeList:
    case Type.Map:
      c.b += 2
      skipColumn(t.children[0]!.type, version, c, variadic)
      return
    case Type.FixedSizeList:
      c.b += 1
      skipColumn(t.children[0]!.type, version, c, variadic)
      return
    case Type.Struct:
      c.b += 1
      for (const ch of t.children) skipColumn(ch.type, version, c, variadic)
      return
    case Type.Union: {
      if (version < MetadataVersion.V5) c.b += 1
      c.b += (t as unknown as { mode: UnionMode }).mode === UnionMode.Sparse ? 1 : 2
      for (const ch of t.children) skipColumn(ch.type, version, c, variadic)
      return
    }
    default:
      throw new Error(`no buffer layout for Arrow type ${String(t)}`)
  }
}

/**
 * For each column of `schema`, where its nodes/buffers/variadic counts start in `header`, plus the
 * end; null if the layout does not account for exactly the header's nodes and buffers (the batch is
 * then loaded whole, by apache-arrow's loader).
 */
function columnLayout(schema: ArrowSchema, header: RecordBatchHeader): Cursor[] | null {
  const c: Cursor = { n: 0, b: 0, v: 0 }
  const out: Cursor[] = []
  try {
    for (const f of schema.fields) {
      out.push({ ...c })
      skipColumn(f.type, schema.metadataVersion, c, header.variadicBufferCounts)
    }
  } catch {
    return null
  }
  out.push({ ...c })
  return c.n === header.nodes.length && c.b === header.buffers.length ? out : null
}

/** The dictionary ids a column of type `t` refers to (nested ones first). */
function dictionaryIds(t: ArrowDataType, out: number[] = []): number[] {
  if (t.typeId === Type.Dictionary) {
    const d = t as unknown as { id: number; dictionary: ArrowDataType }
    dictionaryIds(d.dictionary, out)
    if (!out.includes(d.id)) out.push(d.id)
    return out
  }
  for (const ch of t.children ?? []) dictionaryIds(ch.type, out)
  return out
}

interface Run {
  readonly start: number
  readonly end: number
  bytes: Uint8Array
}

/** Sorted, coalesced byte ranges covering `regions` (body offsets). */
function coalesce(regions: readonly BufferRegion[]): Run[] {
  const rs = regions.filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset)
  const out: { start: number; end: number; bytes: Uint8Array }[] = []
  for (const r of rs) {
    const last = out.at(-1)
    if (last && r.offset <= last.end + COALESCE_GAP) last.end = Math.max(last.end, r.offset + r.length)
    else out.push({ start: r.offset, end: r.offset + r.length, bytes: EMPTY })
  }
  return out
}

/** apache-arrow's VectorLoader over buffers fetched as separate runs of a body instead of the whole body. */
class RangeLoader extends VectorLoader {
  private readonly runs: readonly Run[]
  constructor(runs: readonly Run[], nodes: FieldNode[], buffers: BufferRegion[], dictionaries: Map<number, Vector>, version: MetadataVersion, variadic: number[]) {
    super(EMPTY, nodes, buffers, dictionaries, version, variadic)
    this.runs = runs
  }

  protected override readData<T extends ArrowDataType>(_type: T, region: BufferRegion = this.nextBufferRange()): Uint8Array {
    if (region === undefined) throw new Error('the record batch lists fewer buffers than its schema needs')
    return fromRuns(this.runs, region.offset, region.length)
  }
}

/** Body bytes [offset, offset + length), from the fetched `runs`. */
function fromRuns(runs: readonly Run[], offset: number, length: number): Uint8Array {
  if (length === 0) return EMPTY
  for (const r of runs) {
    if (offset >= r.start && offset + length <= r.end) return r.bytes.subarray(offset - r.start, offset - r.start + length)
  }
  throw new Error(`buffer at body offset ${offset} (${length} bytes) was not fetched`)
}

// Row ranges of fixed-width columns

/**
 * Bytes per value of a column of type `t` whose rows [a, b) are the bytes [a·w, b·w) of its values
 * buffer (0: bit-packed booleans, bits [a, b)); undefined for other layouts (variable-width, nested),
 * or when apache-arrow would view the buffer with another element size.
 */
function rangeWidth(t: ArrowDataType): number | undefined {
  let w: number
  switch (t.typeId) {
    case Type.Bool:
      return 0
    case Type.Int:
    case Type.Time:
      w = (t as unknown as { bitWidth: number }).bitWidth / 8
      break
    case Type.Float:
      w = 2 << (t as unknown as { precision: Precision }).precision // HALF 2, SINGLE 4, DOUBLE 8
      break
    case Type.Timestamp:
    case Type.Duration:
      w = 8
      break
    case Type.Date:
      w = (t as unknown as { unit: DateUnit }).unit === DateUnit.DAY ? 4 : 8
      break
    case Type.Dictionary: // the indices
      return rangeWidth((t as unknown as { indices: ArrowDataType }).indices)
    default:
      return undefined
  }
  return (t as unknown as { ArrayType?: { BYTES_PER_ELEMENT: number } }).ArrayType?.BYTES_PER_ELEMENT === w ? w : undefined
}

/** A needed column of one record batch that can be read by row range. */
interface RangeColumn {
  /** Its index among the decoded columns. */
  readonly j: number
  readonly type: ArrowDataType
  /** See {@link rangeWidth}. */
  readonly width: number
  /** Its validity bitmap; null when it has no nulls in the record batch. */
  readonly validity: BufferRegion | null
  readonly values: BufferRegion
}

/** How the needed columns of one record batch are read by row range. */
interface RangePlan {
  readonly columns: readonly RangeColumn[]
  /** Decoded columns loaded for the whole record batch instead (other layouts, buffers shorter than the metadata says). */
  readonly whole: readonly number[]
  /** Bytes of the needed columns' buffers in the record batch. */
  readonly bytes: number
}

/** A body region of a bitmap holding bits [a, b): it starts on an 8-byte boundary, at bit `bit` of its first byte. */
interface BitRegion extends BufferRegion {
  readonly bit: number
}

function bitRegion(r: BufferRegion, a: number, b: number): BitRegion {
  const from = (a >> 6) << 3
  return { offset: r.offset + from, length: ((b + 7) >> 3) - from, bit: a - from * 8 }
}

/** Bits [bit, bit + n) of `src` as a bitmap from bit 0 (shared when `bit` is a multiple of 8). */
function bitsFrom(src: Uint8Array, bit: number, n: number): Uint8Array {
  const q = bit >> 3
  const r = bit & 7
  const len = (n + 7) >> 3
  if (r === 0) return src.subarray(q, q + len)
  const out = new Uint8Array(len)
  const last = Math.min(len, src.length - q - 1)
  for (let i = 0; i < last; i++) out[i] = (src[q + i]! >> r) | (src[q + i + 1]! << (8 - r))
  for (let i = Math.max(0, last); i < len; i++) out[i] = src[q + i]! >> r
  return out
}

const POPCOUNT = (() => {
  const t = new Uint8Array(256)
  for (let i = 0; i < 256; i++) t[i] = (i & 1) + t[i >> 1]!
  return t
})()

/** Zero bits among the first `n` bits of `bits`. */
function zeroBits(bits: Uint8Array, n: number): number {
  let ones = 0
  const full = n >> 3
  for (let i = 0; i < full; i++) ones += POPCOUNT[bits[i]!]!
  if (n & 7) ones += POPCOUNT[bits[full]! & ((1 << (n & 7)) - 1)]!
  return n - ones
}

/** `bytes`, copied when not aligned for a typed-array view of `width`-byte elements. */
const aligned = (bytes: Uint8Array, width: number): Uint8Array => (bytes.byteOffset % width === 0 ? bytes : bytes.slice())

/** Checks that a loaded column's buffers hold its rows (a metadata/body mismatch would otherwise read garbage). */
function checkData(d: Data, what: string): void {
  const n = d.offset + d.length
  const short = (buf: string): Error => new Error(`${what}: the ${buf} buffer is too short for ${d.length} rows`)
  if (d.nullCount > 0 && d.nullBitmap && d.nullBitmap.length > 0 && d.nullBitmap.length * 8 < n) throw short('validity')
  switch (d.typeId) {
    case Type.Bool:
      if (n > 0 && (d.values?.length ?? 0) * 8 < n) throw short('data')
      break
    case Type.Int:
    case Type.Float:
    case Type.Decimal:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Interval:
    case Type.Duration:
    case Type.FixedSizeBinary:
    case Type.Dictionary:
      if (n > 0 && (d.values?.length ?? 0) < n * d.stride) throw short('data')
      break
    case Type.Binary:
    case Type.Utf8:
    case Type.LargeBinary:
    case Type.LargeUtf8: {
      const offs = d.valueOffsets as Int32Array | BigInt64Array | undefined
      if (n > 0) {
        if (!offs || offs.length < n + 1) throw short('offsets')
        if (Number(offs[n]) > (d.values?.length ?? 0)) throw short('data')
      }
      break
    }
  }
  d.children.forEach((ch, i) => checkData(ch, `${what}.${i}`))
}

interface BatchInfo {
  readonly block: FileBlock
  readonly header: RecordBatchHeader
  /** File offset of the body. */
  readonly bodyStart: number
  readonly layout: Cursor[] | null
}

interface DictInfo {
  readonly index: number
  readonly header: DictionaryBatchHeader
  readonly bodyStart: number
  readonly bodyLength: number
}

class ArrowIpcFile implements OpenedFile {
  readonly schema: Schema
  readonly numRows: number
  readonly droppedMalformed = 0
  private readonly decoded: Schema
  private readonly idx: number[]
  private readonly plan: number[]
  private readonly starts: number[]
  /**
   * Needed columns loaded for whole record batches, least recently used first: key `i` all of
   * them, key `i:whole` those of the range plan's `whole` (read alongside row ranges of the others).
   */
  private readonly cache = new Map<string, Promise<Column[]>>()
  /** Row ranges of record batches read by range, least recently used first. */
  private readonly ranges = new Map<string, { i: number; start: number; end: number; batch: Promise<Batch> }>()
  /** Each record batch's range plan (computed on first need; null: loaded whole only). */
  private readonly rangePlans: (RangePlan | null | undefined)[] = []
  private readonly dictionaries = new Map<number, Promise<Vector>>()
  private dictHeaders: Promise<DictInfo[]> | undefined

  constructor(
    private readonly fs: Fs,
    readonly path: string,
    private readonly arrowSchema: ArrowSchema,
    private readonly footer: Footer,
    private readonly dataEnd: number,
    private readonly batches: BatchInfo[],
    options: ReadOptions,
  ) {
    const { idx, fields } = sluiceFields(arrowSchema, path, options.schema ? new Set(options.schema.map((f) => f.name)) : null)
    this.idx = idx
    this.decoded = fields
    this.starts = [0]
    for (const b of batches) this.starts.push(this.starts.at(-1)! + b.header.length)
    this.numRows = this.starts.at(-1)!
    ;({ plan: this.plan, schema: this.schema } = projection(path, fields, options))
  }

  async read(start: number, end: number): Promise<Batch> {
    start = Math.max(0, Math.floor(start))
    end = Math.min(this.numRows, Math.floor(end))
    if (end <= start) return emptyBatch(this.schema)
    const parts: Promise<Batch>[] = []
    for (let i = 0; i < this.batches.length; i++) {
      const bs = this.starts[i]!
      const be = this.starts[i + 1]!
      if (be <= start || bs >= end || be === bs) continue
      parts.push(this.rows(i, Math.max(start, bs) - bs, Math.min(end, be) - bs))
    }
    return project(concatBatches(this.decoded, await Promise.all(parts)), this.schema, this.plan)
  }

  /**
   * Rows [s, e) of record batch `i`: from a loaded whole batch or row range that holds them; else the
   * rows [s, e) — through the batch's end when fewer rows than [s, e) would be left after it — are
   * read by range, or the whole batch when that is all of it, it is small ({@link rangeReads})
   * or no needed column can be read by range.
   */
  private rows(i: number, s: number, e: number): Promise<Batch> {
    const n = this.batches[i]!.header.length
    const slice = (b: Batch, from: number): Batch => (s === from && e - s === b.numRows ? b : sliceBatch(b, s - from, e - from))
    const whole = this.touch(this.cache, `${i}`)
    if (whole !== undefined) return whole.then((cols) => slice(this.asBatch(cols, n), 0))
    for (const [key, r] of this.ranges) {
      if (r.i === i && r.start <= s && e <= r.end) {
        this.touch(this.ranges, key)
        return r.batch.then((b) => slice(b, r.start))
      }
    }
    const plan = this.rangePlan(i)
    // fewer rows left after this read than it reads: read them now too (kept for the next read)
    const to = n - e < e - s ? n : e
    if (plan === null || plan.columns.length === 0 || plan.bytes < rangeReads.minBytes || (s === 0 && to === n)) {
      return this.columns(i, `${i}`, this.decoded.map((_, j) => j)).then((cols) => slice(this.asBatch(cols, n), 0))
    }
    const key = `${i}:${s}:${to}`
    const batch = this.loadRows(i, plan, s, to).catch((err: unknown) => {
      this.ranges.delete(key)
      throw corrupt(this.path, 'file', err)
    })
    this.ranges.set(key, { i, start: s, end: to, batch })
    while (this.ranges.size > RANGE_CACHE) this.ranges.delete(this.ranges.keys().next().value!)
    return batch.then((b) => slice(b, s))
  }

  private asBatch(columns: Column[], numRows: number): Batch {
    return { schema: this.decoded, columns, numRows }
  }

  /** `map`'s entry for `key`, made the most recently used. */
  private touch<V>(map: Map<string, V>, key: string): V | undefined {
    const v = map.get(key)
    if (v !== undefined) {
      map.delete(key)
      map.set(key, v)
    }
    return v
  }

  /** The decoded columns `js` of record batch `i`, loaded whole (once while cached under `key`). */
  private columns(i: number, key: string, js: readonly number[]): Promise<Column[]> {
    let p = this.touch(this.cache, key)
    if (p !== undefined) return p
    p = this.load(i, js).catch((e: unknown) => {
      this.cache.delete(key)
      throw corrupt(this.path, 'file', e)
    })
    this.cache.set(key, p)
    while (this.cache.size > BATCH_CACHE) this.cache.delete(this.cache.keys().next().value!)
    return p
  }

  /** Bytes [start, end) of the file, exactly (fewer is a truncated file), 8-byte aligned for typed-array views. */
  private async fetch(start: number, end: number, what: string): Promise<Uint8Array> {
    let bytes: Uint8Array
    try {
      bytes = await this.fs.readRange(this.path, start, end)
    } catch (e) {
      if (isNotFound(e)) throw new SourceError('FILE_NOT_FOUND', `${this.path}: file not found`, { cause: e })
      throw new SourceError('READ_FAILED', `${this.path}: cannot read file: ${(e as Error)?.message ?? e}`, { cause: e, retriable: true })
    }
    if (bytes.length !== end - start) throw new Error(`${what} is cut short: ${bytes.length} of ${end - start} bytes at ${start}`)
    return bytes.byteOffset % 8 === 0 ? bytes : bytes.slice()
  }

  /** Fetches the coalesced `runs` of record batch `info`'s body. */
  private async fetchRuns(info: BatchInfo, runs: readonly Run[], what: string): Promise<void> {
    await Promise.all(
      runs.map(async (r) => {
        r.bytes = await this.fetch(info.bodyStart + r.start, info.bodyStart + r.end, `the body of ${what}`)
      }),
    )
  }

  /** Converts loaded column `d` (decoded column `j` of a record batch of `n` rows), checking it against the metadata. */
  private convert(d: Data, j: number, n: number, what: string): Column {
    const name = this.decoded[j]!.name
    if (d.length !== n) throw new Error(`${what}: column '${name}' has ${d.length} rows, the batch ${n}`)
    checkData(d, `${what}: column '${name}'`)
    return dataToColumn(d, name)
  }

  /** The decoded columns `js` of record batch `i`, all its rows. */
  private async load(i: number, js: readonly number[]): Promise<Column[]> {
    const info = this.batches[i]!
    const { header, layout } = info
    const fields = this.arrowSchema.fields
    const ks = js.map((j) => this.idx[j]!)
    const what = `record batch ${i}`
    const dicts = new Map<number, Vector>()
    for (const k of ks) for (const id of dictionaryIds(fields[k]!.type)) dicts.set(id, await this.dictionary(id))
    const version = this.arrowSchema.metadataVersion
    let datas: Data[]
    if (layout === null) {
      const body = await this.fetch(info.bodyStart, info.bodyStart + info.block.bodyLength, `the body of ${what}`)
      for (const f of fields) for (const id of dictionaryIds(f.type)) if (!dicts.has(id)) dicts.set(id, await this.dictionary(id))
      const all = new VectorLoader(body, header.nodes, header.buffers, dicts, version, header.variadicBufferCounts).visitMany(fields)
      datas = ks.map((k) => all[k]!)
    } else {
      const runs = coalesce(ks.flatMap((k) => header.buffers.slice(layout[k]!.b, layout[k + 1]!.b)))
      await this.fetchRuns(info, runs, what)
      datas = ks.map((k) => {
        const a = layout[k]!
        const b = layout[k + 1]!
        const loader = new RangeLoader(runs, header.nodes.slice(a.n, b.n), header.buffers.slice(a.b, b.b), dicts, version, header.variadicBufferCounts.slice(a.v, b.v))
        return loader.visit(fields[k]!)
      })
    }
    return datas.map((d, x) => this.convert(d, js[x]!, header.length, what))
  }

  /** Record batch `i`'s range plan; null when its metadata's layout is not understood. */
  private rangePlan(i: number): RangePlan | null {
    let plan = this.rangePlans[i]
    if (plan !== undefined) return plan
    const { header, layout } = this.batches[i]!
    plan = null
    if (layout !== null) {
      const n = header.length
      const columns: RangeColumn[] = []
      const whole: number[] = []
      let bytes = 0
      this.idx.forEach((k, j) => {
        const a = layout[k]!
        const b = layout[k + 1]!
        const buffers = header.buffers.slice(a.b, b.b)
        for (const r of buffers) bytes += r.length
        const type = this.arrowSchema.fields[k]!.type
        const width = rangeWidth(type)
        const node = header.nodes[a.n]
        const [validity, values] = buffers
        if (width === undefined || b.n - a.n !== 1 || buffers.length !== 2 || node?.length !== n || !validity || !values) return void whole.push(j)
        const nulls = node.nullCount > 0
        // buffers shorter than the rows need: loaded whole, where the check fails as it should
        if ((nulls && validity.length < (n + 7) >> 3) || values.length < (width === 0 ? (n + 7) >> 3 : n * width)) return void whole.push(j)
        columns.push({ j, type, width, validity: nulls ? validity : null, values })
      })
      plan = { columns, whole, bytes }
    }
    this.rangePlans[i] = plan
    return plan
  }

  /** Rows [s, e) of record batch `i`: the byte ranges of those rows for `plan.columns`, the others sliced from the whole batch's. */
  private async loadRows(i: number, plan: RangePlan, s: number, e: number): Promise<Batch> {
    const info = this.batches[i]!
    const what = `record batch ${i}`
    const m = e - s
    // the columns loaded whole, alongside
    const whole = plan.whole.length > 0 ? this.columns(i, `${i}:whole`, plan.whole) : undefined
    whole?.catch(() => {})
    const regions: BufferRegion[] = []
    const picks = plan.columns.map((c) => {
      const validity = c.validity && bitRegion(c.validity, s, e)
      const values: BitRegion = c.width === 0 ? bitRegion(c.values, s, e) : { offset: c.values.offset + s * c.width, length: m * c.width, bit: 0 }
      if (validity) regions.push(validity)
      regions.push(values)
      return { c, validity, values }
    })
    const runs = coalesce(regions)
    const dicts = new Map<number, Vector>()
    await Promise.all([
      this.fetchRuns(info, runs, what),
      ...picks.flatMap(({ c }) => dictionaryIds(c.type).map(async (id) => dicts.set(id, await this.dictionary(id)))),
    ])
    const columns = new Array<Column>(this.decoded.length)
    for (const { c, validity, values } of picks) {
      const bitmap = validity ? bitsFrom(fromRuns(runs, validity.offset, validity.length), validity.bit, m) : undefined
      const nullCount = bitmap ? zeroBits(bitmap, m) : 0
      const bytes = fromRuns(runs, values.offset, values.length)
      const data = c.width === 0 ? bitsFrom(bytes, values.bit, m) : aligned(bytes, c.width)
      const dictionary = c.type.typeId === Type.Dictionary ? dicts.get((c.type as unknown as { id: number }).id) : undefined
      const make = makeData as (props: object) => Data
      const d = make({ type: c.type, length: m, nullCount, nullBitmap: nullCount > 0 ? bitmap : undefined, data, dictionary })
      columns[c.j] = this.convert(d, c.j, m, what)
    }
    if (whole !== undefined) {
      const cols = await whole
      plan.whole.forEach((j, x) => (columns[j] = sliceColumn(cols[x]!, s, e)))
    }
    return this.asBatch(columns, m)
  }

  /** The dictionary batches' metadata (read on first need). */
  private dictionaryHeaders(): Promise<DictInfo[]> {
    this.dictHeaders ??= (async () => {
      const out: DictInfo[] = []
      for (let j = 0; j < this.footer.numDictionaries; j++) {
        const block = this.footer.getDictionaryBatch(j)
        if (!block) throw new Error(`dictionary batch ${j} has no block in the footer`)
        const what = `dictionary batch ${j}`
        const msg = decodeMessage(await this.fetch(block.offset, block.offset + block.metaDataLength, `the metadata of ${what}`), what)
        if (!msg.isDictionaryBatch()) throw new Error(`${what} is not a dictionary batch message`)
        if (msg.header().data.compression != null) throw new Error(`${what} is compressed`)
        const bodyStart = block.offset + block.metaDataLength
        if (bodyStart + msg.bodyLength > this.dataEnd) throw new Error(`${what} extends past the end of the file's data (byte ${this.dataEnd})`)
        out.push({ index: j, header: msg.header(), bodyStart, bodyLength: msg.bodyLength })
      }
      return out
    })()
    // a failed read is retried on the next need, not remembered
    this.dictHeaders.catch(() => (this.dictHeaders = undefined))
    return this.dictHeaders
  }

  /** Dictionary `id`: its dictionary batches in file order (deltas appended), loaded once per open file. */
  private dictionary(id: number): Promise<Vector> {
    let p = this.dictionaries.get(id)
    if (p === undefined) {
      p = (async () => {
        const type = this.arrowSchema.dictionaries.get(id)
        if (type === undefined) throw new Error(`no dictionary type for id ${id}`)
        const nested = new Map<number, Vector>()
        for (const n of dictionaryIds(type)) nested.set(n, await this.dictionary(n))
        let vector: Vector | undefined
        for (const d of await this.dictionaryHeaders()) {
          if (d.header.id !== id) continue
          const what = `dictionary batch ${d.index}`
          const body = await this.fetch(d.bodyStart, d.bodyStart + d.bodyLength, `the body of ${what}`)
          const h = d.header.data
          const data = new VectorLoader(body, h.nodes, h.buffers, nested, this.arrowSchema.metadataVersion, h.variadicBufferCounts).visitMany([type])
          for (const x of data) checkData(x, what)
          vector = vector && d.header.isDelta ? vector.concat(new Vector(data)) : new Vector(data)
        }
        if (vector === undefined) throw new Error(`no dictionary batch for dictionary id ${id}`)
        return vector
      })()
      this.dictionaries.set(id, p)
      p.catch(() => this.dictionaries.delete(id))
    }
    return p
  }
}

/** Bytes [start, end) read through `fs`, with "not found" as FILE_NOT_FOUND. */
async function readAt(fs: Fs, path: string, start: number, end: number): Promise<Uint8Array> {
  try {
    return await fs.readRange(path, start, end)
  } catch (e) {
    if (isNotFound(e)) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`, { cause: e })
    throw new SourceError('READ_FAILED', `${path}: cannot read file: ${(e as Error)?.message ?? e}`, { cause: e, retriable: true })
  }
}

async function openArrow(fs: Fs, path: string, options: ReadOptions): Promise<OpenedFile> {
  const st = await fs.stat(path)
  if (!st || st.isDirectory) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`)
  const size = st.size
  const tail = await readAt(fs, path, Math.max(0, size - TAIL_FETCH), size)
  const head = size <= tail.length ? tail.subarray(0, 8) : await readAt(fs, path, 0, Math.min(size, 8))
  const kind = sniffHead(head, size, () => tail.subarray(Math.max(0, tail.length - 6)))
  if (typeof kind !== 'string') throw badKind(path, kind.bad)
  if (kind === 'stream') return arrowFromBytes(await readWhole(fs, path), path, options)

  let footer: Footer
  let dataEnd: number
  const batches: BatchInfo[] = []
  try {
    const at = size - tail.length
    const fr = footerRange(tail, size)
    dataEnd = fr.start
    footer = decodeFooter(fr.start >= at ? tail.subarray(fr.start - at, fr.end - at) : await readAt(fs, path, fr.start, fr.end))
    const past = (what: string, block: FileBlock): Error | null => {
      const end = block.offset + block.metaDataLength + block.bodyLength
      if (block.offset < 8 || block.metaDataLength <= 0 || block.bodyLength < 0) return new Error(`${what} has an invalid block (offset ${block.offset}, metadata ${block.metaDataLength} bytes)`)
      if (end > dataEnd) return new Error(`${what} (bytes ${block.offset}–${end}) extends past the end of the file's data (byte ${dataEnd} of ${size}): the file is truncated or its footer is corrupt`)
      return null
    }
    const blocks: FileBlock[] = []
    for (let i = 0; i < footer.numRecordBatches; i++) {
      const b = footer.getRecordBatch(i)
      if (!b) throw new Error(`record batch ${i} has no block in the footer`)
      const bad = past(`record batch ${i}`, b)
      if (bad) throw bad
      blocks.push(b)
    }
    for (let j = 0; j < footer.numDictionaries; j++) {
      const b = footer.getDictionaryBatch(j)
      if (!b) throw new Error(`dictionary batch ${j} has no block in the footer`)
      const bad = past(`dictionary batch ${j}`, b)
      if (bad) throw bad
    }
    // each record batch's metadata (row count, buffer offsets); bodies are read on demand
    let compressed = false
    for (let i = 0; i < blocks.length; i += OPEN_CONCURRENCY) {
      const part = await Promise.all(
        blocks.slice(i, i + OPEN_CONCURRENCY).map(async (block, k): Promise<BatchInfo> => {
          const what = `record batch ${i + k}`
          const meta = await readAt(fs, path, block.offset, block.offset + block.metaDataLength)
          if (meta.length !== block.metaDataLength) throw new Error(`the metadata of ${what} is cut short`)
          const msg = decodeMessage(meta, what)
          if (!msg.isRecordBatch()) throw new Error(`${what} is not a record batch message`)
          const header = msg.header()
          const bodyStart = block.offset + block.metaDataLength
          if (msg.bodyLength > block.bodyLength) throw new Error(`${what}: its message has a ${msg.bodyLength}-byte body, its block ${block.bodyLength}`)
          for (const r of header.buffers) {
            if (r.offset < 0 || r.length < 0 || r.offset + r.length > msg.bodyLength) throw new Error(`${what}: a buffer (offset ${r.offset}, ${r.length} bytes) extends past its ${msg.bodyLength}-byte body`)
          }
          if (header.compression != null) compressed = true
          return { block, header, bodyStart, layout: columnLayout(footer.schema, header) }
        }),
      )
      batches.push(...part)
    }
    if (compressed) return arrowFromBytes(await readWhole(fs, path), path, options)
  } catch (e) {
    throw corrupt(path, 'file', e)
  }
  return new ArrowIpcFile(fs, path, footer.schema, footer, dataEnd, batches, options)
}

/** The schema of an IPC file (from its footer) or stream (from its first message), reading only those bytes. */
function arrowInferSchema(file: SyncFile, options: ReadOptions): Schema {
  if (options.schema) return options.schema
  const { path, size } = file
  const head = file.readRange(0, Math.min(size, 8))
  // a file: its tail holds the trailing magic and (usually) the whole footer
  const tail = hasMagicAt(head, 0) ? file.readRange(Math.max(0, size - TAIL_FETCH), size) : EMPTY
  const kind = sniffHead(head, size, () => tail.subarray(Math.max(0, tail.length - 6)))
  if (typeof kind !== 'string') throw badKind(path, kind.bad)
  let arrowSchema: ArrowSchema
  try {
    if (kind === 'file') {
      const at = size - tail.length
      const fr = footerRange(tail, size)
      arrowSchema = decodeFooter(fr.start >= at ? tail.subarray(fr.start - at, fr.end - at) : file.readRange(fr.start, fr.end)).schema
    } else {
      const len = view(head).getInt32(4, true)
      if (len <= 0 || 8 + len > size) throw new Error(`first message length ${len} does not fit in the stream (${size} bytes)`)
      const msg = decodeMessage(file.readRange(0, 8 + len), 'the first message')
      if (!msg.isSchema()) throw new Error('the first message is not a schema')
      arrowSchema = msg.header()
    }
  } catch (e) {
    throw corrupt(path, kind, e)
  }
  return sluiceFields(arrowSchema, path, null).fields
}

export const arrowFormat: FileFormat = {
  name: 'arrow',
  extension: '.arrow',
  open: openArrow,
  inferSchema: arrowInferSchema,
  encode: (batches, schema) => batchesToIPC(schema, batches, 'file'),
}
