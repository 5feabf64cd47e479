import { showString } from '../util/show.ts'
import type { Sink, SinkProvider } from './sink.ts'

/** Spark's console sink: prints each batch as a table. Options: numRows (20), truncate (true). */
export function consoleSink(options: { numRows: number; truncate: boolean }, print: (text: string) => void): SinkProvider {
  return {
    name: 'console',
    outputModes: ['append', 'update', 'complete'],
    async create(): Promise<Sink> {
      return {
        description: 'ConsoleSink',
        async addBatch(batchId, data) {
          print(`-------------------------------------------\nBatch: ${batchId}\n-------------------------------------------\n${showString(data, options.numRows, options.truncate)}`)
        },
      }
    },
  }
}
