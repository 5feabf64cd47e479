/**
 * The file-format layer: one {@link FileFormat} per supported format (parquet, arrow, json, csv),
 * each opening a file into an {@link OpenedFile} that reads row ranges as {@link Batch}es, and
 * encoding batches into the bytes of a file.
 *
 * Errors: a file that is not what its format says (bad magic, truncated footer, binary data read
 * as text) is `SourceError('CORRUPT_FILE')` naming the path, with the decoder's error as `cause`;
 * a missing file is `SourceError('FILE_NOT_FOUND')`; a malformed record under `mode: 'FAILFAST'`
 * is `SourceError('MALFORMED_RECORD')`; a column type Sluice cannot represent is
 * `SourceError('UNSUPPORTED_TYPE')` (reading) or `SinkError('UNSUPPORTED_TYPE')` (writing).
 */
import type { Batch, Schema } from '../batch.ts'
import { OptionError, SourceError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import { arrowFormat } from './arrow.ts'
import { csvFormat } from './csv.ts'
import { jsonFormat } from './json.ts'
import { parquetFormat } from './parquet.ts'
import { isNotFound } from './values.ts'

export interface ReadOptions {
  /** The schema to read with (columns matched by name); inferred from the file when absent. */
  schema?: Schema
  /** What to do with malformed records (json, csv): default PERMISSIVE. */
  mode?: 'PERMISSIVE' | 'DROPMALFORMED' | 'FAILFAST'
  /** PERMISSIVE: the string column that receives a malformed record's raw text (default `_corrupt_record`), if it is in the schema. */
  columnNameOfCorruptRecord?: string
  /** csv: the first line holds the column names (default false). */
  header?: boolean
  /** csv: the field separator (default ','). */
  sep?: string
  [k: string]: unknown
}

export interface OpenedFile {
  readonly path: string
  readonly schema: Schema
  readonly numRows: number
  /** Rows [start, end) as one Batch with `schema`. */
  read(start: number, end: number): Promise<Batch>
  /** Rows dropped as malformed so far (DROPMALFORMED). */
  readonly droppedMalformed: number
}

/** A file read synchronously by byte ranges (see {@link FileFormat.inferSchema}, {@link syncFile}). */
export interface SyncFile {
  readonly path: string
  /** Size in bytes. */
  readonly size: number
  /** Bytes `[start, end)`, clamped to the file (fewer bytes than asked past its end). */
  readRange(start: number, end: number): Uint8Array
}

/** A {@link SyncFile} over `fs` (`size` from `statSync` when not given); a missing file is FILE_NOT_FOUND. */
export function syncFile(fs: Fs, path: string, size?: number): SyncFile {
  const wrap = (e: unknown): never => {
    if (isNotFound(e)) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`, { cause: e })
    throw new SourceError('READ_FAILED', `${path}: cannot read file: ${(e as Error)?.message ?? e}`, { cause: e, retriable: true })
  }
  if (size === undefined) {
    let st
    try {
      st = fs.statSync(path)
    } catch (e) {
      wrap(e)
    }
    if (!st || st.isDirectory) throw new SourceError('FILE_NOT_FOUND', `${path}: file not found`)
    size = st.size
  }
  return {
    path,
    size,
    readRange(start, end) {
      try {
        return fs.readRangeSync(path, start, end)
      } catch (e) {
        return wrap(e)
      }
    },
  }
}

/** A {@link SyncFile} over bytes in memory. */
export function bytesFile(path: string, bytes: Uint8Array): SyncFile {
  return { path, size: bytes.length, readRange: (start, end) => bytes.subarray(Math.max(0, start), Math.max(0, end)) }
}

export interface FileFormat {
  readonly name: 'parquet' | 'arrow' | 'json' | 'csv'
  open(fs: Fs, path: string, options: ReadOptions): Promise<OpenedFile>
  /**
   * The schema `open` would give for `file`, synchronously (for resolving a file source's schema
   * when a DataFrame is built), reading only what it needs through `file.readRange`: Parquet its
   * footer, Arrow its footer (IPC file) or first message (IPC stream); JSON and CSV the whole file.
   * `options.schema` is returned as is when given. Throws the same SourceErrors as `open`
   * (CORRUPT_FILE naming the path, UNSUPPORTED_TYPE); a file whose data is damaged past its schema
   * is only found out by `open` / `read`.
   */
  inferSchema(file: SyncFile, options: ReadOptions): Schema
  encode(batch: Batch[], schema: Schema): Uint8Array
  /** File extension, with the dot (`.parquet`). */
  readonly extension: string
}

const FORMATS: Record<string, () => FileFormat> = {
  parquet: () => parquetFormat,
  arrow: () => arrowFormat,
  json: () => jsonFormat,
  csv: () => csvFormat,
}

/** The format called `name` (case-insensitive; `jsonl`/`ndjson` → json, `ipc`/`feather` → arrow). */
export function fileFormat(name: string): FileFormat {
  const n = String(name).toLowerCase()
  const alias: Record<string, string> = { jsonl: 'json', ndjson: 'json', ipc: 'arrow', feather: 'arrow', arrows: 'arrow' }
  const f = FORMATS[alias[n] ?? n]
  if (!f) {
    throw new OptionError('UNKNOWN_FORMAT', `unknown file format '${name}': expected one of ${Object.keys(FORMATS).join(', ')}`)
  }
  return f()
}
