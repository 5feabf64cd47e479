/**
 * Arrow IPC files (`ARROW1` magic, a.k.a. Feather v2) and streams (continuation-marker framing),
 * told apart by their first bytes. The whole file is read at `open` and its record batches are
 * converted zero-copy (see src/arrow.ts); `read(start, end)` slices across record batches.
 * `encode` writes the IPC file format.
 */
import { RecordBatchReader, type RecordBatch, type Schema as ArrowSchema } from 'apache-arrow'
import { arrowTypeToDataType, batchesToIPC, dataToColumn } from '../arrow.ts'
import { concatBatches, emptyBatch, sliceBatch, type Batch, type Field, type Schema } from '../batch.ts'
import { SourceError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import type { FileFormat, OpenedFile, ReadOptions } from './format.ts'
import { planProjection, project, readWhole } from './values.ts'

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31] // "ARROW1"

function hasMagicAt(b: Uint8Array, at: number): boolean {
  if (at < 0 || at + 6 > b.length) return false
  for (let i = 0; i < 6; i++) if (b[at + i] !== MAGIC[i]) return false
  return true
}

/** 'file', 'stream', or a reason the bytes are neither. */
export function sniffIPC(bytes: Uint8Array): 'file' | 'stream' | { bad: string } {
  if (hasMagicAt(bytes, 0)) {
    if (bytes.length < 12 || !hasMagicAt(bytes, bytes.length - 6)) return { bad: 'Arrow IPC file is truncated (no trailing ARROW1 magic)' }
    return 'file'
  }
  if (bytes.length >= 8 && bytes[0] === 0xff && bytes[1] === 0xff && bytes[2] === 0xff && bytes[3] === 0xff) return 'stream'
  return { bad: 'not an Arrow IPC file or stream (bad magic)' }
}

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
    const wanted = options.schema ? new Set(options.schema.map((f) => f.name)) : null
    // convert only the columns needed (an unsupported column the schema leaves out is skipped)
    const idx: number[] = []
    const fields: Field[] = []
    arrowSchema.fields.forEach((f, i) => {
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
    this.decoded = fields
    this.batches = rbs.map((rb) => ({
      schema: fields,
      columns: idx.map((i, k) => dataToColumn(rb.data.children[i]!, fields[k]!.name)),
      numRows: rb.numRows,
    }))
    this.starts = [0]
    for (const b of this.batches) this.starts.push(this.starts.at(-1)! + b.numRows)
    this.numRows = this.starts.at(-1)!
    if (options.schema) {
      this.plan = planProjection(path, fields, options.schema)
      this.schema = options.schema
    } else {
      this.plan = fields.map((_, i) => i)
      this.schema = fields
    }
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

async function openArrow(fs: Fs, path: string, options: ReadOptions): Promise<OpenedFile> {
  return arrowFromBytes(await readWhole(fs, path), path, options)
}

function arrowInferSchema(bytes: Uint8Array, path: string, options: ReadOptions): Schema {
  if (options.schema) return options.schema
  return arrowFromBytes(bytes, path, options).schema
}

function arrowFromBytes(bytes: Uint8Array, path: string, options: ReadOptions): ArrowFile {
  const kind = sniffIPC(bytes)
  if (typeof kind !== 'string') throw new SourceError('CORRUPT_FILE', `${path}: ${kind.bad}`, { cause: new Error(kind.bad) })
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
    throw new SourceError('CORRUPT_FILE', `${path}: corrupt Arrow IPC ${kind}: ${(e as Error)?.message ?? e}`, { cause: e })
  }
  return new ArrowFile(path, arrowSchema, rbs, options)
}

export const arrowFormat: FileFormat = {
  name: 'arrow',
  extension: '.arrow',
  open: openArrow,
  inferSchema: arrowInferSchema,
  encode: (batches, schema) => batchesToIPC(schema, batches, 'file'),
}
