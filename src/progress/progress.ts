/**
 * Spark's StreamingQueryProgress (progress.scala), field for field. Times are ISO-8601 UTC strings,
 * durations milliseconds, rates rows per second.
 */
export interface StateOperatorProgress {
  operatorName: string
  numRowsTotal: number
  numRowsUpdated: number
  numRowsRemoved: number
  numRowsDroppedByWatermark: number
  /** Estimated bytes of the in-memory state. */
  memoryUsedBytes: number
  /** Time to write the state version to the checkpoint, ms. */
  commitTimeMs: number
  allUpdatesTimeMs: number
  allRemovalsTimeMs: number
  numShufflePartitions: number
  numStateStoreInstances: number
  customMetrics: Record<string, number>
}

export interface SourceProgress {
  description: string
  startOffset: unknown
  endOffset: unknown
  latestOffset: unknown
  numInputRows: number
  inputRowsPerSecond: number
  processedRowsPerSecond: number
  metrics: Record<string, string>
}

export interface SinkProgress {
  description: string
  numOutputRows: number
  metrics: Record<string, string>
}

export interface StreamingQueryProgress {
  id: string
  runId: string
  name: string | null
  timestamp: string
  batchId: number
  /** Wall time of the trigger, ms. */
  batchDuration: number
  numInputRows: number
  inputRowsPerSecond: number
  processedRowsPerSecond: number
  durationMs: {
    triggerExecution: number
    latestOffset: number
    walCommit: number
    getBatch: number
    queryPlanning: number
    addBatch: number
    commitOffsets: number
  }
  /** Present when the query has a watermark: min/max/avg event time of the batch (before late rows are dropped) and the watermark the batch ran with. */
  eventTime: { avg?: string; max?: string; min?: string; watermark?: string }
  stateOperators: StateOperatorProgress[]
  sources: SourceProgress[]
  sink: SinkProgress
  observedMetrics: Record<string, unknown>
}

export interface StreamingQueryStatus {
  message: string
  isDataAvailable: boolean
  isTriggerActive: boolean
}

export interface QueryStartedEvent { id: string; runId: string; name: string | null; timestamp: string }
export interface QueryProgressEvent { progress: StreamingQueryProgress }
export interface QueryIdleEvent { id: string; runId: string; timestamp: string }
export interface QueryTerminatedEvent { id: string; runId: string; exception: Error | null }

/** Spark's StreamingQueryListener; every method is optional. */
export interface StreamingQueryListener {
  onQueryStarted?(event: QueryStartedEvent): void
  onQueryProgress?(event: QueryProgressEvent): void
  onQueryIdle?(event: QueryIdleEvent): void
  onQueryTerminated?(event: QueryTerminatedEvent): void
}
