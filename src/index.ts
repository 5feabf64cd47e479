/**
 * Sluice: Spark Structured Streaming semantics for Node.js and the browser. This barrel is the
 * platform-independent API; `index.node.ts` / `index.browser.ts` register the platform and re-export it.
 */
export { SluiceSession, SluiceSessionBuilder, RuntimeConfig, CONF_KEYS } from './api/session.ts'
export { DataFrame, GroupedData } from './api/dataframe.ts'
export { DataStreamReader } from './api/reader.ts'
export { DataStreamWriter } from './api/writer.ts'
export { StreamingQuery, StreamingQueryManager } from './api/query.ts'
export { MemoryStream } from './api/memory-stream.ts'
export { Column, col, column, lit } from './api/column.ts'
export { window, count, sum, avg, mean, min, max, asc, desc, timestamp_seconds, from_json, to_json, struct } from './api/functions.ts'
export { ManualClock, SystemClock, type Clock, type Trigger } from './exec/trigger.ts'
export { FLUSH_WATERMARK_MS } from './exec/stream-execution.ts'
export type { OutputMode } from './exec/aggregate.ts'
export { SluiceError, AnalysisError, SourceError, SinkError, CheckpointError, KernelError, OptionError } from './errors.ts'
export type * from './progress/progress.ts'
export type { Batch, Column as ColumnData, DataType, Field, Schema } from './batch.ts'
export { type Fs, MemoryFs } from './fs.ts'
export type { Row } from './util/rows.ts'
export { batchToArrow, tableFromBatches, arrowToBatches } from './arrow.ts'
import { registerSourceConnector as registerSource } from './connectors.ts'
import { rateMicroBatchConnector } from './sources/rate.ts'

registerSource('rate-micro-batch', rateMicroBatchConnector)

export { registerSourceConnector, registerSinkConnector, type SourceConnector, type SinkConnector } from './connectors.ts'
