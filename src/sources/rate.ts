import * as v from 'valibot'
import type { Batch, Schema } from '../batch.ts'
import type { SourceConnector } from '../connectors.ts'
import { parseOptions } from '../api/options.ts'
import { OptionError } from '../errors.ts'
import type { Offset, Source, SourceProvider } from './source.ts'

const OPTIONS = {
  rowsPerBatch: v.pipe(v.union([v.number(), v.string()]), v.transform(Number), v.integer(), v.minValue(1)),
  numPartitions: v.pipe(v.union([v.number(), v.string()]), v.transform(Number), v.integer(), v.minValue(1)),
  startTimestamp: v.pipe(v.union([v.number(), v.string()]), v.transform(Number), v.integer(), v.minValue(0)),
  advanceMillisPerBatch: v.pipe(v.union([v.number(), v.string()]), v.transform(Number), v.integer(), v.minValue(0)),
}

const SCHEMA: Schema = [
  { name: 'timestamp', type: 'timestamp', nullable: false },
  { name: 'value', type: 'int64', nullable: false },
]

/**
 * Spark's `rate-micro-batch` source (RatePerMicroBatchProvider): every micro-batch gets exactly
 * `rowsPerBatch` rows (columns `timestamp`: timestamp, `value`: long, counting up from 0); every row
 * of a batch has the batch's timestamp, which starts at `startTimestamp` (epoch ms, default 0) and
 * advances by `advanceMillisPerBatch` (default 1000) per batch — deterministic, independent of the
 * wall clock. For load tests and benchmarks. Offset: `{"offset": rows, "timestamp": ms}`.
 * @throws OptionError without rowsPerBatch, or for unknown/invalid options.
 */
export const rateMicroBatchConnector: SourceConnector = {
  createSource({ options }): SourceProvider {
    const o = parseOptions('rate-micro-batch', OPTIONS, options)
    if (o.rowsPerBatch === undefined) throw new OptionError('MISSING_OPTION', "The rate-micro-batch source needs option 'rowsPerBatch' (a positive integer)")
    const rowsPerBatch = o.rowsPerBatch
    const startTimestamp = o.startTimestamp ?? 0
    const advance = o.advanceMillisPerBatch ?? 1000
    return {
      schema: SCHEMA,
      description: `RatePerMicroBatchStream[rowsPerBatch=${rowsPerBatch}, startTimestamp=${startTimestamp}, advanceMillisPerBatch=${advance}]`,
      kind: 'rate-micro-batch',
      readLimit: {},
      async createSource(): Promise<Source> {
        return {
          description: `RatePerMicroBatchStream[rowsPerBatch=${rowsPerBatch}]`,
          latestOffset: async (start: Offset | null): Promise<Offset> => {
            const s = (start as { offset: number; timestamp: number } | null) ?? { offset: 0, timestamp: startTimestamp }
            return { offset: s.offset + rowsPerBatch, timestamp: s.timestamp + advance }
          },
          getBatch: async (start: Offset | null, end: Offset): Promise<Batch[]> => {
            const s = (start as { offset: number; timestamp: number } | null) ?? { offset: 0, timestamp: startTimestamp }
            const e = end as { offset: number }
            const n = e.offset - s.offset
            // write the int64 values as two uint32 words each (little endian): no BigInt per row
            const values = new BigInt64Array(n)
            const words = new Uint32Array(values.buffer)
            for (let i = 0; i < n; i++) {
              const x = s.offset + i
              words[2 * i] = x >>> 0
              words[2 * i + 1] = Math.floor(x / 4294967296)
            }
            const ts = new BigInt64Array(n).fill(BigInt(s.timestamp) * 1000n)
            return [{
              schema: SCHEMA,
              numRows: n,
              columns: [
                { type: 'timestamp', length: n, values: ts, validity: null },
                { type: 'int64', length: n, values, validity: null },
              ],
            }]
          },
          stop: async () => {},
        }
      },
    }
  },
}
