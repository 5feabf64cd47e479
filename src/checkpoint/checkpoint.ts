import { randomUUID } from '../util/uuid.ts'
import { CheckpointError } from '../errors.ts'
import { type Fs, baseName, joinPath } from '../fs.ts'
import type { Offset } from '../sources/source.ts'

/** The metadata line of an offsets-log entry (Spark's OffsetSeqMetadata). */
export interface OffsetSeqMetadata {
  batchWatermarkMs: number
  batchTimestampMs: number
  conf: Record<string, string>
}

export interface OffsetSeq {
  metadata: OffsetSeqMetadata
  /** One end offset per source, in plan order (null: that source had no data yet). */
  offsets: (Offset | null)[]
}

/** What a restart must keep (Spark's "Recovery Semantics after Changes"). */
export interface QueryShape {
  /** One entry per source, in plan order: its kind (e.g. 'parquet', 'memory', 'kafka'). */
  sources: string[]
  /** The sink's kind and, for file sinks, its output path. */
  sink: { kind: string; path?: string }
}

export interface CommitMetadata {
  nextBatchWatermarkMs: number
}

const VERSION = 'v1'

/**
 * A checkpoint location laid out as Spark's (DESIGN.md §4): `metadata` ({"id"}), `offsets/<batchId>`
 * (written before a batch runs: "v1", the metadata JSON, then one offset JSON line per source),
 * `commits/<batchId>` (written after the sink committed: "v1", {"nextBatchWatermarkMs"}). Every file
 * is written atomically (temporary file + rename).
 */
export class Checkpoint {
  constructor(readonly fs: Fs, readonly location: string) {}

  path(...parts: string[]): string {
    return joinPath(this.location, ...parts)
  }

  /**
   * Reads `metadata`, creating it (with a new query id and `shape`) for a new checkpoint. Besides
   * Spark's `id`, Sluice records the query's shape (its sources and sink) to refuse restarts after
   * changes Spark forbids.
   */
  async metadata(shape: QueryShape): Promise<{ id: string; isNew: boolean; shape: QueryShape | null }> {
    const file = this.path('metadata')
    const stat = await this.fs.stat(file)
    if (stat !== null) {
      const text = new TextDecoder().decode(await this.fs.read(file))
      let meta: { id?: unknown; shape?: QueryShape }
      try {
        meta = JSON.parse(text) as typeof meta
      } catch (cause) {
        throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `Checkpoint file ${file} is torn or not valid JSON: ${JSON.stringify(text.slice(0, 80))}`, { cause })
      }
      if (typeof meta.id !== 'string') throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `Checkpoint file ${file} has no query id`)
      return { id: meta.id, isNew: false, shape: meta.shape ?? null }
    }
    const id = randomUUID()
    await this.fs.writeAtomic(file, JSON.stringify({ id, shape }) + '\n')
    return { id, isNew: true, shape }
  }

  async batchIds(log: 'offsets' | 'commits'): Promise<number[]> {
    const files = await this.fs.list(this.path(log))
    return files
      .map((f) => baseName(f.path))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b)
  }

  async latestBatchId(log: 'offsets' | 'commits'): Promise<number | null> {
    const ids = await this.batchIds(log)
    return ids.length === 0 ? null : ids[ids.length - 1]!
  }

  async writeOffsets(batchId: number, seq: OffsetSeq): Promise<void> {
    const lines = [VERSION, JSON.stringify(seq.metadata), ...seq.offsets.map((o) => (o === null ? '-' : JSON.stringify(o)))]
    await this.fs.writeAtomic(this.path('offsets', String(batchId)), lines.join('\n'))
  }

  async readOffsets(batchId: number): Promise<OffsetSeq> {
    const file = this.path('offsets', String(batchId))
    const lines = await this.readLines(file)
    try {
      const metadata = JSON.parse(lines[1]!) as OffsetSeqMetadata
      if (typeof metadata.batchWatermarkMs !== 'number') throw new Error('no batchWatermarkMs')
      const offsets = lines.slice(2).map((l) => (l === '-' ? null : (JSON.parse(l) as Offset)))
      return { metadata, offsets }
    } catch (cause) {
      throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `Offsets log entry ${file} is malformed`, { cause })
    }
  }

  async writeCommit(batchId: number, commit: CommitMetadata): Promise<void> {
    await this.fs.writeAtomic(this.path('commits', String(batchId)), `${VERSION}\n${JSON.stringify(commit)}`)
  }

  async readCommit(batchId: number): Promise<CommitMetadata> {
    const file = this.path('commits', String(batchId))
    const lines = await this.readLines(file)
    try {
      const c = JSON.parse(lines[1]!) as CommitMetadata
      if (typeof c.nextBatchWatermarkMs !== 'number') throw new Error('no nextBatchWatermarkMs')
      return c
    } catch (cause) {
      throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `Commit log entry ${file} is malformed`, { cause })
    }
  }

  /** Deletes offsets and commits entries of batches before `minBatchId` (Spark's minBatchesToRetain). */
  async purge(minBatchId: number): Promise<void> {
    for (const log of ['offsets', 'commits'] as const) {
      for (const id of await this.batchIds(log)) if (id < minBatchId) await this.fs.remove(this.path(log, String(id)))
    }
  }

  private async readLines(file: string): Promise<string[]> {
    const text = new TextDecoder().decode(await this.fs.read(file))
    const lines = text.split('\n').filter((l) => l !== '')
    if (lines[0] !== VERSION || lines.length < 2) {
      throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `Checkpoint file ${file} is empty or torn (expected '${VERSION}' and a JSON line, got ${JSON.stringify(text.slice(0, 80))})`)
    }
    return lines
  }
}
