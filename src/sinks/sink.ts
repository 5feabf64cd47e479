import type { Batch } from '../batch.ts'
import type { Fs } from '../fs.ts'
import type { OutputMode } from '../exec/aggregate.ts'

export interface SinkContext {
  readonly fs: Fs
  readonly queryName: string | null
  readonly outputMode: OutputMode
  /** Test hook: called at named points inside a batch (see `sluice.testing.killAt`). */
  readonly faultPoint: (point: FaultPoint) => void
}

/** Points inside a micro-batch where `sluice.testing.killAt` can kill the process, in order. */
export const FAULT_POINTS = ['afterOffsetsLog', 'duringAggregation', 'afterStateCommit', 'duringSinkWrite', 'afterSink', 'afterCommitLog'] as const
export type FaultPoint = (typeof FAULT_POINTS)[number]

/** A running sink (Spark's `Sink.addBatch`): must be idempotent on batchId — a batch re-run after a crash is given the same id. */
export interface Sink {
  readonly description: string
  addBatch(batchId: number, data: Batch): Promise<void>
  stop?(): Promise<void>
}

export interface SinkProvider {
  readonly name: string
  /** Output directory of a file sink, recorded in the checkpoint: a restart writing elsewhere is refused (as Spark). */
  readonly path?: string
  /** Output modes this sink accepts (Spark: file sinks are Append only). */
  readonly outputModes: readonly OutputMode[]
  create(ctx: SinkContext): Promise<Sink>
}
