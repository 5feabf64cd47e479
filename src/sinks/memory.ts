import { type Batch, type Schema, concatBatches } from '../batch.ts'
import type { OutputMode } from '../exec/aggregate.ts'
import type { Sink, SinkProvider } from './sink.ts'

/** The rows a memory sink holds, readable as `session.table(queryName)`. */
export class MemoryTable {
  private batches: Batch[] = []
  private lastBatchId = -1

  constructor(readonly schema: Schema) {}

  /** As Spark's MemorySink: a batch id already seen is ignored; Complete mode replaces the content. */
  add(batchId: number, data: Batch, mode: OutputMode): void {
    if (batchId <= this.lastBatchId) return
    this.lastBatchId = batchId
    if (mode === 'complete') this.batches = [data]
    else if (data.numRows > 0) this.batches.push(data)
  }

  get data(): Batch {
    return concatBatches(this.schema, this.batches)
  }
}

export function memorySink(tables: Map<string, MemoryTable>, schema: Schema): SinkProvider {
  return {
    name: 'memory',
    outputModes: ['append', 'update', 'complete'],
    async create(ctx): Promise<Sink> {
      if (ctx.queryName === null) throw new Error('unreachable: memory sink without queryName')
      const table = new MemoryTable(schema)
      tables.set(ctx.queryName, table)
      return {
        description: `MemorySink[${ctx.queryName}]`,
        addBatch: async (batchId, data) => table.add(batchId, data, ctx.outputMode),
      }
    },
  }
}
