import type { Batch, Schema } from '../batch.ts'
import type { Source, SourceProvider } from './source.ts'

/** A bounded source over batches already in memory (createDataFrame, session.table, foreachBatch's DataFrame). */
export function batchSourceProvider(schema: Schema, batches: () => readonly Batch[], description: string): SourceProvider {
  return {
    schema,
    description,
    kind: 'batch',
    readLimit: {},
    async createSource(): Promise<Source> {
      return {
        description,
        latestOffset: async () => 0,
        getBatch: async () => [...batches()],
        stop: async () => {},
      }
    },
  }
}
