import type { Batch } from '../batch.ts'
import type { Sink, SinkProvider } from './sink.ts'

/**
 * Spark's foreachBatch: calls `fn(batchData, batchId)` once per micro-batch. A batch that is re-run
 * after a crash comes with the same batchId, so a writer that records the ids it committed (and
 * skips those) gives exactly-once output.
 */
export function foreachBatchSink<T>(wrap: (b: Batch) => T, fn: (df: T, batchId: number) => unknown): SinkProvider {
  return {
    name: 'foreachBatch',
    outputModes: ['append', 'update', 'complete'],
    async create(): Promise<Sink> {
      return {
        description: 'ForeachBatchSink',
        async addBatch(batchId, data) {
          await fn(wrap(data), batchId)
        },
      }
    },
  }
}
