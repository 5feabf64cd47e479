import type { Batch, Schema } from '../batch.ts'
import type { Fs } from '../fs.ts'

/** A source position, recorded as JSON in the offsets log (Spark's `Offset`). */
export type Offset = number | string | boolean | null | Offset[] | { [k: string]: Offset }

/** Admission control per micro-batch (maxRowsPerTrigger, maxFilesPerTrigger, maxOffsetsPerTrigger). */
export interface ReadLimit {
  readonly maxRows?: number
  readonly maxFiles?: number
}

export interface SourceContext {
  readonly fs: Fs
  /** `<checkpointLocation>/sources/<i>`: where the source keeps its own metadata (e.g. the seen-files log). */
  readonly metadataPath: string
  /** The session's log (skipped files, retries). */
  readonly log: (message: string) => void
  /**
   * The provider's columns the query reads (a subset of its schema, in its order; see
   * `pruneColumns`): a source may return batches of only these (the file sources do, so
   * Parquet and Arrow IPC files skip the other columns' bytes). Absent: every column.
   */
  readonly schema?: Schema
}

/** A running source of one streaming query (Spark's `SupportsAdmissionControl` micro-batch stream). */
export interface Source {
  readonly description: string
  /** The end offset of the next batch starting at `start` (null: no data yet), honouring `limit`. */
  latestOffset(start: Offset | null, limit: ReadLimit): Promise<Offset | null>
  /** The rows in `(start, end]`, as batches of the provider's schema. Must return the same rows for the same offsets (replayable). */
  getBatch(start: Offset | null, end: Offset): Promise<Batch[]>
  /** Metrics of the last getBatch call, reported in the progress's `sources[].metrics` (e.g. numRowsDroppedMalformed). */
  batchMetrics?(): Record<string, string>
  /** Resolves when new data may be available (push sources), so an idle query wakes at once. */
  onData?(listener: () => void): () => void
  stop(): Promise<void>
}

/** What a DataFrame holds for its input: a schema and how to open it for a query. */
export interface SourceProvider {
  readonly schema: Schema
  readonly description: string
  /** The kind of source ('parquet', 'memory', 'kafka', …), recorded in the checkpoint: a restart with another kind is refused. */
  readonly kind: string
  /** The option that limits each micro-batch, from the reader options (validated). */
  readonly readLimit: ReadLimit
  createSource(ctx: SourceContext): Promise<Source>
}

export function sameOffset(a: Offset | null, b: Offset | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
