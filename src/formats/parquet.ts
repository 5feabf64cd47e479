/**
 * Parquet via hyparquet (reading, with hyparquet-compressors for ZSTD/GZIP/BROTLI/LZ4) and
 * hyparquet-writer (writing, SNAPPY). Pure JS: the same code runs in Node and the browser.
 *
 * Reading: `open` fetches only the footer (through `Fs.readRange`); `read(start, end)` decodes the
 * row groups overlapping the range, whole, and keeps the last {@link GROUP_CACHE} decoded groups so
 * that consecutive range reads (e.g. 250k rows at a time over 272k-row groups) decode each group
 * once. Each column chunk is fetched with one `readRange` and decoded page by page with hyparquet's
 * own page decoders (`hyparquet/src/*.js`, a public subpath export) instead of `parquetRead`,
 * whose row assembly builds a JS array per column (3-4x slower on flights-3m): definition levels
 * become the validity bitmap and dictionary indices are mapped through a typed copy of the
 * dictionary page. Strings never go through a per-row hash: the `stringFromBytes` parser runs once
 * per dictionary entry and returns its code in a per-column, per-row-group {@link DictionaryBuilder}
 * (plain-encoded pages intern each value). Timestamps come back as bigint µs (no `Date` objects),
 * INT64 as BigInt64Array.
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
import { getMaxDefinitionLevel } from 'hyparquet/src/schema.js'
import type { ColumnDecoder, DataPage } from 'hyparquet/src/types.js'
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
  sliceBatch,
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

/** Decoded row groups kept per open file. */
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
        // codes from our stringFromBytes parser; raw bytes for ENUM
        o[at + k] = typeof v === 'number' ? v : typeof v === 'string' ? code(v) : code(utf8.decode(v as Uint8Array))
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

/** A typed copy of a converted dictionary, indexable by dictionary index. */
function typedDictionary(type: DataType, vals: ArrayLike<unknown>, code: (s: string) => number): OutValues {
  const out = allocOut(type, vals.length)
  storeValues(type, out, 0, vals, 0, vals.length, code)
  return out
}

/**
 * Decodes one flat column chunk of a row group into a Sluice column of `n` rows, using hyparquet's
 * page decoders directly: definition levels become the validity bitmap, dictionary indices are
 * mapped through a typed copy of the (converted) dictionary, so no per-row JS objects are built.
 */
function decodeColumnChunk(bytes: ArrayBuffer, root: SchemaTree, node: SchemaTree, meta: ColumnMetaData, type: DataType, n: number): Column {
  const dict = type === 'string' ? new DictionaryBuilder() : null
  const code = dict ? (s: string): number => dict.code(s) : (s: string): number => Number(s)
  const parsers: ParquetParsers = {
    ...DEFAULT_PARSERS,
    ...TIME_PARSERS,
    stringFromBytes: (b: Uint8Array) => (b == null ? b : code(utf8.decode(b))),
    jsonFromBytes: (b: Uint8Array) => (b == null ? b : code(utf8.decode(b))),
    uuidFromBytes: (b: Uint8Array) => (b == null ? b : code(uuidString(b))),
  }
  const schemaPath = [root, node]
  const decoder: ColumnDecoder = {
    pathInSchema: meta.path_in_schema,
    type: meta.type,
    element: node.element,
    schemaPath,
    codec: meta.codec,
    parsers,
    compressors,
    utf8: false,
  }
  const maxDef = getMaxDefinitionLevel(schemaPath)
  // timestamps already in µs need no conversion
  const lt = node.element.logical_type
  const rawMicros = type === 'timestamp' && meta.type === 'INT64' && ((lt?.type === 'TIMESTAMP' && lt.unit === 'MICROS') || (!lt && node.element.converted_type === 'TIMESTAMP_MICROS'))
  const convertValues = (raw: DecodedArray): ArrayLike<unknown> => (rawMicros && raw instanceof BigInt64Array ? raw : convert(raw, decoder))

  const out = allocOut(type, n)
  const validity = newValidity(n, true)
  let nulls = 0
  let dictionary: OutValues | undefined
  const reader = { view: new DataView(bytes), offset: 0 }
  let row = 0
  while (row < n && reader.offset < bytes.byteLength - 1) {
    const header = parquetHeader(reader)
    const compressed = new Uint8Array(bytes, reader.offset, header.compressed_page_size)
    reader.offset += header.compressed_page_size
    let page: DataPage
    let count: number
    let encoding: string
    if (header.type === 'DICTIONARY_PAGE') {
      const diph = header.dictionary_page_header!
      const raw = decompressPage(compressed, Number(header.uncompressed_page_size), meta.codec, compressors)
      const plain = readPlain({ view: new DataView(raw.buffer, raw.byteOffset, raw.byteLength), offset: 0 }, meta.type, diph.num_values, node.element.type_length)
      dictionary = typedDictionary(type, convertValues(plain), code)
      continue
    } else if (header.type === 'DATA_PAGE') {
      const daph = header.data_page_header!
      const raw = decompressPage(compressed, Number(header.uncompressed_page_size), meta.codec, compressors)
      page = readDataPage(raw, daph, decoder)
      count = daph.num_values
      encoding = daph.encoding
    } else if (header.type === 'DATA_PAGE_V2') {
      const daph2 = header.data_page_header_v2!
      page = readDataPageV2(compressed, header, decoder)
      count = daph2.num_rows
      encoding = daph2.encoding
    } else {
      continue // index pages
    }
    count = Math.min(count, n - row)
    const defs = page.definitionLevels ?? []
    const hasNulls = maxDef > 0 && defs.length > 0
    const isDict = encoding === 'PLAIN_DICTIONARY' || encoding === 'RLE_DICTIONARY'
    if (isDict) {
      if (!dictionary) throw new Error(`column '${node.element.name}': dictionary-encoded page without a dictionary page`)
      const idx = page.dataPage as ArrayLike<number>
      const d = dictionary
      if (Array.isArray(d)) {
        const o = out as Uint8Array[]
        for (let k = 0, j = 0; k < count; k++) {
          if (hasNulls && defs[k] !== maxDef) continue
          o[row + k] = d[idx[j++]!]!
        }
      } else {
        const o = out as Int32Array
        const dd = d as Int32Array
        if (!hasNulls) for (let k = 0; k < count; k++) o[row + k] = dd[idx[k]!]!
        else for (let k = 0, j = 0; k < count; k++) if (defs[k] === maxDef) o[row + k] = dd[idx[j++]!]!
      }
    } else {
      const vals = convertValues(page.dataPage)
      if (!hasNulls) storeValues(type, out, row, vals, 0, count, code)
      else {
        // scatter the non-null values over the rows
        let j = 0
        let k = 0
        while (k < count) {
          if (defs[k] !== maxDef) {
            k++
            continue
          }
          let e = k
          while (e < count && defs[e] === maxDef) e++
          storeValues(type, out, row + k, vals, j, e - k, code)
          j += e - k
          k = e
        }
      }
    }
    if (hasNulls) {
      for (let k = 0; k < count; k++) {
        if (defs[k] !== maxDef) {
          const i = row + k
          validity[i >> 3]! &= ~(1 << (i & 7))
          nulls++
        }
      }
    }
    row += count
  }
  if (row < n) throw new Error(`column '${node.element.name}': chunk holds ${row} rows, the row group ${n}`)
  return { type, length: n, values: out, validity: nulls === 0 ? null : validity, ...(dict ? { dictionary: dict.strings } : {}) }
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
  private readonly cache = new Map<number, Promise<Batch>>()
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
    const parts: Batch[] = []
    for (let g = 0; g < this.metadata.row_groups.length; g++) {
      const gs = this.groupStarts[g]!
      const ge = this.groupStarts[g + 1]!
      if (ge <= start || gs >= end || ge === gs) continue
      const b = await this.group(g)
      const s = Math.max(start, gs) - gs
      const e = Math.min(end, ge) - gs
      parts.push(s === 0 && e === b.numRows ? b : sliceBatch(b, s, e))
    }
    return project(concatBatches(this.decoded, parts), this.schema, this.plan)
  }

  private group(g: number): Promise<Batch> {
    let p = this.cache.get(g)
    if (p) {
      // refresh LRU position
      this.cache.delete(g)
      this.cache.set(g, p)
      return p
    }
    p = this.decodeGroup(g)
    this.cache.set(g, p)
    while (this.cache.size > GROUP_CACHE) this.cache.delete(this.cache.keys().next().value!)
    p.catch(() => this.cache.delete(g))
    return p
  }

  private async decodeGroup(g: number): Promise<Batch> {
    const rowStart = this.groupStarts[g]!
    const n = this.groupStarts[g + 1]! - rowStart
    const rg = this.metadata.row_groups[g]!
    try {
      const columns = await Promise.all(
        this.decoded.map(async (f) => {
          const node = this.nodes.get(f.name)!
          const chunk = rg.columns.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === f.name)
          const meta = chunk?.meta_data
          if (!meta) throw new Error(`row group ${g} has no chunk for column '${f.name}'`)
          const offset = Number(meta.dictionary_page_offset || meta.data_page_offset)
          const bytes = await this.file.slice(offset, offset + Number(meta.total_compressed_size))
          return decodeColumnChunk(bytes, this.root, node, meta, f.type, n)
        }),
      )
      return { schema: this.decoded, columns, numRows: n }
    } catch (e) {
      if (isNotFound(e)) throw new SourceError('FILE_NOT_FOUND', `${this.path}: file not found`, { cause: e })
      if (e instanceof SourceError) throw e
      throw new SourceError('CORRUPT_FILE', `${this.path}: corrupt parquet row group ${g} (rows ${rowStart}-${rowStart + n}): ${(e as Error)?.message ?? e}`, {
        cause: e,
      })
    }
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

