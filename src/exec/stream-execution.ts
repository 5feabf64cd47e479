import { randomUUID } from '../util/uuid.ts'
import { type Batch, concatBatches, selectColumns } from '../batch.ts'
import { Checkpoint, type OffsetSeq, type QueryShape } from '../checkpoint/checkpoint.ts'
import { CheckpointError, SluiceError } from '../errors.ts'
import { type Fs, MemoryFs } from '../fs.ts'
import type { Executor } from '../kernels/executor.ts'
import type { Kernels } from '../kernels/kernels.ts'
import type { Plan } from '../plan/logical.ts'
import type {
  StateOperatorProgress, StreamingQueryListener, StreamingQueryProgress, StreamingQueryStatus,
} from '../progress/progress.ts'
import { FAULT_POINTS, type FaultPoint, type Sink, type SinkProvider } from '../sinks/sink.ts'
import { type Offset, type Source, sameOffset } from '../sources/source.ts'
import { StateStore } from '../state/state-store.ts'
import { isoMs } from '../util/time.ts'
import { parseIntervalMs } from '../util/interval.ts'
import { AggregateOperator, type AggregateMetrics, type OutputMode, type PreparedBatch } from './aggregate.ts'
import { type EventTimeStats, type PhysicalPlan, type WatermarkNode, checkStreamingPlan, compile, runStage } from './physical.ts'
import type { ResolvedTrigger } from './trigger.ts'

/** The watermark the end-of-input flush moves to: the largest instant a Date can hold (+275760-09-13). */
export const FLUSH_WATERMARK_MS = 8_640_000_000_000_000

/** Session configuration recorded in the offsets log; on restart the recorded values win (as Spark's OffsetSeqMetadata.relevantSQLConfs). */
export const RECORDED_CONF = ['sluice.streaming.multipleWatermarkPolicy', 'sluice.streaming.noDataMicroBatches.enabled'] as const

export interface QuerySettings {
  readonly plan: Plan
  readonly sink: SinkProvider
  readonly outputMode: OutputMode
  readonly trigger: ResolvedTrigger
  readonly checkpointLocation: string | null
  readonly queryName: string | null
  /** Opt-in extension: with once/availableNow, the end of input moves the watermark to +∞. */
  readonly flushAtEnd: boolean
  readonly conf: ReadonlyMap<string, string>
  readonly fs: Fs
  readonly kernels: Kernels
  readonly executor: Executor
  readonly listeners: () => readonly StreamingQueryListener[]
  readonly log: (message: string) => void
  /** Kills the process at once (SIGKILL on Node), for `sluice.testing.killAt`. */
  readonly kill: () => void
}

const IDLE_POLL_MS = 100
const MAX_RECENT_PROGRESS = 100

/** A batch's rows after the stateless stages, with their event-time statistics. */
interface ReadBatch {
  readonly input: Batch | null
  readonly batch: Batch
  readonly stats: Map<WatermarkNode, EventTimeStats>
  readonly getBatchMs: number
  /** The partial aggregation, started (read-ahead only). */
  readonly prepared?: PreparedBatch
}

/** The next batch, planned and read while the previous one commits (see `startReadAhead`). */
interface ReadAhead {
  readonly start: Offset | null
  readonly end: Offset
  readonly read: ReadBatch
  readonly latestOffsetMs: number
}

/**
 * The micro-batch loop (Spark's MicroBatchExecution). For each batch: find the sources' end offsets,
 * write `offsets/N` (with the batch watermark), read `(start, end]`, run the stateless stages, the
 * aggregation and the sink, commit the state version, write `commits/N` with the next watermark, and
 * report a StreamingQueryProgress. On start it recovers from the checkpoint: a batch with an
 * offsets entry but no commit is re-run with exactly the recorded offsets.
 *
 * Read-ahead (conf `sluice.streaming.readAhead.enabled`, default true; aggregations under the
 * default or availableNow trigger): once batch N is aggregated, batch N+1's end offsets are planned,
 * its rows read (file reads and writes run on libuv's threads), its stateless stages run and its
 * partial aggregation started while N's state delta, sink output and commit are written. Nothing of
 * N+1 is persisted before `offsets/N+1`, which is still written after `commits/N`, so recovery is
 * unchanged.
 */
export class StreamExecution {
  id = ''
  readonly runId = randomUUID()
  readonly name: string | null
  readonly recentProgress: StreamingQueryProgress[] = []
  status: StreamingQueryStatus = { message: 'Initializing', isDataAvailable: false, isTriggerActive: false }
  exception: SluiceError | null = null

  private readonly phys: PhysicalPlan
  private checkpoint!: Checkpoint
  private source!: Source
  private sink!: Sink
  private aggregate: AggregateOperator | null = null
  private stateStore: StateStore | null = null
  private conf = new Map<string, string>()

  private batchId = 0
  private committedOffset: Offset | null = null
  /** Watermark of the last batch that ran, and the one the next batch will use (ms). */
  private batchWatermarkMs = 0
  private nextWatermarkMs = 0
  private readonly operatorWatermarks = new Map<WatermarkNode, number>()
  private pendingRerun: OffsetSeq | null = null
  private availableNowEnd: Offset | null | undefined = undefined
  private readAhead: Promise<ReadAhead | null> | null = null
  private flushed = false
  private lastTriggerStartMs = 0

  private active = false
  private stopRequested = false
  private loopDone: Promise<void> = Promise.resolve()
  private idleTick = -1
  private tick = 0
  private wakeIdle: (() => void) | null = null
  private readonly idleWaiters: { tick: number; resolve: () => void; reject: (e: unknown) => void }[] = []
  private readonly terminationWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = []
  private unsubscribe: (() => void) | null = null

  constructor(private readonly settings: QuerySettings) {
    this.name = settings.queryName
    this.phys = compile(settings.plan)
    checkStreamingPlan(this.phys, settings.outputMode)
    if (!settings.sink.outputModes.includes(settings.outputMode)) {
      throw new SluiceError('UNSUPPORTED_OUTPUT_MODE', `Data source ${settings.sink.name} does not support ${settings.outputMode} output mode (supported: ${settings.sink.outputModes.join(', ')})`)
    }
    for (const [k, v] of settings.conf) this.conf.set(k, v)
  }

  get isActive(): boolean {
    return this.active
  }

  get lastProgress(): StreamingQueryProgress | null {
    return this.recentProgress.at(-1) ?? null
  }

  /** Opens the checkpoint, recovers offsets, watermark and state, and starts the loop. */
  async start(): Promise<void> {
    const s = this.settings
    const fs = s.checkpointLocation === null ? new MemoryFs() : s.fs
    this.checkpoint = new Checkpoint(fs, s.checkpointLocation ?? `memory:${this.runId}`)
    const shape: QueryShape = {
      sources: [this.phys.source.kind],
      sink: { kind: s.sink.name, ...(s.sink.path !== undefined ? { path: s.sink.path } : {}) },
    }
    const meta = await this.checkpoint.metadata(shape)
    this.id = meta.id
    if (meta.shape !== null) checkShape(meta.shape, shape, this.checkpoint.path('metadata'))
    this.killAt = parseKillAt(this.conf.get('sluice.testing.killAt'))
    this.source = await this.phys.source.createSource({ fs, metadataPath: this.checkpoint.path('sources', '0'), log: s.log, schema: this.phys.sourceSchema })
    if (this.phys.aggregate) {
      const a = this.phys.aggregate
      const eventTimeKeys = new Set(a.eventTime.keys())
      this.aggregate = new AggregateOperator(s.kernels, s.executor, a.child.schema, a.keys, a.aggs, eventTimeKeys, s.outputMode)
      this.stateStore = new StateStore(fs, this.checkpoint.path('state', '0'), this.aggregate.stateSchema, this.aggregate.keySchema.length, {
        minDeltasForSnapshot: this.confInt('sluice.stateStore.minDeltasForSnapshot', 10),
        minBatchesToRetain: this.confInt('sluice.streaming.minBatchesToRetain', 100),
      })
      await this.stateStore.checkSchema()
    }
    await this.recover()
    this.sink = await s.sink.create({ fs: s.fs, queryName: s.queryName, outputMode: s.outputMode, faultPoint: (p) => this.faultPoint(p) })
    this.unsubscribe = this.source.onData?.(() => this.wakeIdle?.()) ?? null
    this.active = true
    const startedAt = isoMs(Date.now())
    for (const l of s.listeners()) l.onQueryStarted?.({ id: this.id, runId: this.runId, name: this.name, timestamp: startedAt })
    this.loopDone = this.runLoop()
  }

  private killAt: { point: FaultPoint; batchId: number } | null = null

  /** Test hook (`sluice.testing.killAt = '<point>@<batchId>'`): kills the process at that point of that batch. */
  private faultPoint(point: FaultPoint): void {
    if (this.killAt !== null && this.killAt.point === point && this.killAt.batchId === this.batchId) this.settings.kill()
  }

  private confInt(key: string, dflt: number): number {
    const v = this.conf.get(key)
    return v === undefined ? dflt : Number(v)
  }

  /**
   * Finds where to resume. A torn or empty entry that a crash can leave is handled where that is
   * safe: the newest offsets entry, if unreadable and uncommitted, never ran (it is written before
   * its batch) and is discarded; the newest commit entry, if unreadable, is discarded and its batch
   * re-run (sinks are idempotent on batch id). Anything else unreadable refuses the start with a
   * CheckpointError naming the file.
   */
  private async recover(): Promise<void> {
    const ck = this.checkpoint
    const offsetIds = await ck.batchIds('offsets')
    const commitIds = await ck.batchIds('commits')
    let lastOffsets = offsetIds.at(-1) ?? null
    let seq: OffsetSeq | null = null
    if (lastOffsets !== null) {
      try {
        seq = await ck.readOffsets(lastOffsets)
      } catch (e) {
        if (!(e instanceof CheckpointError) || commitIds.includes(lastOffsets)) throw e
        this.settings.log(`${e.message}: discarding it (batch ${lastOffsets} never ran) and planning the batch again`)
        await ck.fs.remove(ck.path('offsets', String(lastOffsets)))
        lastOffsets = offsetIds.at(-2) ?? null
        seq = lastOffsets === null ? null : await ck.readOffsets(lastOffsets)
      }
    }
    let stateVersion = 0
    if (lastOffsets !== null && seq !== null) {
      for (const key of RECORDED_CONF) {
        const recorded = seq.metadata.conf[key]
        if (recorded !== undefined && this.conf.get(key) !== undefined && this.conf.get(key) !== recorded) {
          this.settings.log(`Conf ${key} = ${this.conf.get(key)} differs from the value recorded in the checkpoint (${recorded}); using the checkpoint's.`)
        }
        if (recorded !== undefined) this.conf.set(key, recorded)
      }
      let commit: { nextBatchWatermarkMs: number } | null = null
      if (commitIds.includes(lastOffsets)) {
        try {
          commit = await ck.readCommit(lastOffsets)
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e
          this.settings.log(`${e.message}: discarding it and re-running batch ${lastOffsets}`)
          await ck.fs.remove(ck.path('commits', String(lastOffsets)))
        }
      }
      if (commit !== null) {
        this.batchId = lastOffsets + 1
        this.committedOffset = seq.offsets[0] ?? null
        this.batchWatermarkMs = seq.metadata.batchWatermarkMs
        this.nextWatermarkMs = commit.nextBatchWatermarkMs
        stateVersion = lastOffsets + 1
      } else {
        this.batchId = lastOffsets
        this.pendingRerun = seq
        this.committedOffset = lastOffsets > 0 ? ((await ck.readOffsets(lastOffsets - 1)).offsets[0] ?? null) : null
        this.batchWatermarkMs = this.nextWatermarkMs = seq.metadata.batchWatermarkMs
        stateVersion = lastOffsets
      }
      this.flushed = this.nextWatermarkMs >= FLUSH_WATERMARK_MS
    }
    if (this.aggregate && this.stateStore) this.aggregate.restore(await this.stateStore.load(stateVersion))
  }

  private async runLoop(): Promise<void> {
    const trigger = this.settings.trigger
    let nextTrigger = trigger.clock.now()
    try {
      while (!this.stopRequested) {
        const tick = this.tick++
        if (trigger.kind === 'processingTime' && trigger.intervalMs > 0) {
          await trigger.clock.waitUntil(nextTrigger)
          if (this.stopRequested) break
          const now = trigger.clock.now()
          nextTrigger = now - (now % trigger.intervalMs) + trigger.intervalMs
        }
        const ran = await this.runOneBatchIfAny()
        if (ran) {
          if (trigger.kind === 'once' && !this.needsAnotherBatch() && !this.needsFlush()) break
          continue
        }
        if (trigger.kind !== 'processingTime') break
        this.markIdle(tick)
        if (trigger.intervalMs === 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, IDLE_POLL_MS)
            const self = this
            function done() {
              clearTimeout(timer)
              self.wakeIdle = null
              resolve()
            }
            this.wakeIdle = done
          })
        }
      }
      await this.terminate(null)
    } catch (e) {
      await this.terminate(e)
    }
  }

  private needsAnotherBatch(): boolean {
    if (this.conf.get('sluice.streaming.noDataMicroBatches.enabled') === 'false') return false
    return this.aggregate !== null && this.aggregate.evictsByWatermark && this.nextWatermarkMs > this.batchWatermarkMs
  }

  private needsFlush(): boolean {
    return this.settings.flushAtEnd && !this.flushed && this.settings.trigger.kind !== 'processingTime' && this.aggregate?.evictsByWatermark === true
  }

  /** Plans and runs the next batch if there is data or a no-data batch is due; false when idle. */
  private async runOneBatchIfAny(): Promise<boolean> {
    const t0 = performance.now()
    this.status = { message: 'Getting offsets from ' + this.source.description, isDataAvailable: false, isTriggerActive: true }
    if (this.pendingRerun) {
      const seq = this.pendingRerun
      this.pendingRerun = null
      this.settings.log(`Re-running batch ${this.batchId} with the offsets recorded in the checkpoint`)
      await this.runBatch(seq.offsets[0] ?? null, seq.metadata.batchWatermarkMs, t0, 0, false)
      return true
    }
    const ahead = await this.takeReadAhead()
    if (ahead !== null) {
      await this.runBatch(ahead.end, this.nextWatermarkMs, t0, ahead.latestOffsetMs, true, ahead.read)
      return true
    }
    const end = await this.nextEnd(this.committedOffset)
    const latestOffsetMs = performance.now() - t0
    const hasData = end !== null && !sameOffset(end, this.committedOffset)
    if (hasData) {
      await this.runBatch(end, this.nextWatermarkMs, t0, latestOffsetMs, true)
      return true
    }
    if (this.needsAnotherBatch()) {
      await this.runBatch(this.committedOffset, this.nextWatermarkMs, t0, latestOffsetMs, true)
      return true
    }
    if (this.needsFlush()) {
      this.nextWatermarkMs = FLUSH_WATERMARK_MS
      await this.runBatch(this.committedOffset, FLUSH_WATERMARK_MS, t0, latestOffsetMs, true)
      return true
    }
    this.status = { message: 'Waiting for data to arrive', isDataAvailable: false, isTriggerActive: false }
    return false
  }

  /** The end offset of the batch after `start` (null: no data), within the trigger's limits. */
  private async nextEnd(start: Offset | null): Promise<Offset | null> {
    const limit = this.settings.trigger.kind === 'once' ? {} : this.phys.source.readLimit
    let end = await this.source.latestOffset(start, limit)
    if (this.settings.trigger.kind === 'availableNow') {
      if (this.availableNowEnd === undefined) this.availableNowEnd = await this.source.latestOffset(start, {})
      if (end !== null && this.availableNowEnd !== null && beyond(end, this.availableNowEnd)) end = this.availableNowEnd
      if (this.availableNowEnd === null) end = null
    }
    return end
  }

  /** Rows (start, end] through the stateless stages; `prepare` also starts the partial aggregation. */
  private async readBatch(start: Offset | null, end: Offset | null, maxEventTimeMs: number, prepare: boolean): Promise<ReadBatch> {
    const t = performance.now()
    const hasData = end !== null && !sameOffset(end, start)
    const schema = this.phys.sourceSchema
    const input = hasData ? concatBatches(schema, (await this.source.getBatch(start, end)).map((b) => selectColumns(b, schema))) : null
    const getBatchMs = performance.now() - t
    const stats = new Map<WatermarkNode, EventTimeStats>()
    let batch: Batch = input ?? concatBatches(schema, [])
    const ctx = { stats, kernels: this.settings.kernels, maxEventTimeMs }
    for (const node of this.phys.pre) batch = runStage(node, batch, ctx)
    return { input, batch, stats, getBatchMs, ...(prepare && this.aggregate ? { prepared: this.aggregate.prepare(batch, { background: true }) } : {}) }
  }

  private get readAheadEnabled(): boolean {
    const t = this.settings.trigger
    return this.aggregate !== null && !this.stopRequested &&
      (t.kind === 'availableNow' || (t.kind === 'processingTime' && t.intervalMs === 0)) &&
      // the event-time cap depends on the batch's trigger time
      this.conf.get('sluice.streaming.maxEventTimeAhead') === undefined &&
      this.conf.get('sluice.streaming.readAhead.enabled') !== 'false'
  }

  /** Plans and reads the batch after `start` in the background (see the class comment). */
  private startReadAhead(start: Offset | null): void {
    if (!this.readAheadEnabled) return
    const t0 = performance.now()
    this.readAhead = (async (): Promise<ReadAhead | null> => {
      const end = await this.nextEnd(start)
      const latestOffsetMs = performance.now() - t0
      if (end === null || sameOffset(end, start)) return null
      return { start, end, read: await this.readBatch(start, end, Infinity, true), latestOffsetMs }
    })()
    // a failure is handled where the read-ahead is taken
    this.readAhead.catch(() => {})
  }

  /**
   * The batch read ahead, if it starts at the committed offset and has data; otherwise null (and its
   * partial aggregation released), and the batch is planned again. A failed read-ahead is logged and
   * the batch planned again, which raises the error again if it persists.
   */
  private async takeReadAhead(): Promise<ReadAhead | null> {
    const pending = this.readAhead
    if (pending === null) return null
    this.readAhead = null
    let ahead: ReadAhead | null
    try {
      ahead = await pending
    } catch (e) {
      this.settings.log(`Reading batch ${this.batchId} ahead failed (${(e as Error)?.message ?? String(e)}); planning it again`)
      return null
    }
    if (ahead !== null && !sameOffset(ahead.start, this.committedOffset)) {
      if (ahead.read.prepared) await this.aggregate!.discard(ahead.read.prepared)
      return null
    }
    return ahead
  }

  private async runBatch(end: Offset | null, watermarkMs: number, t0: number, latestOffsetMs: number, writeWal: boolean, readAhead?: ReadBatch): Promise<void> {
    const s = this.settings
    const batchId = this.batchId
    const triggerStart = Date.now()
    this.status = { message: 'Processing new data', isDataAvailable: true, isTriggerActive: true }
    let t = performance.now()
    if (writeWal) {
      const conf: Record<string, string> = {}
      for (const key of RECORDED_CONF) {
        const v = this.conf.get(key)
        if (v !== undefined) conf[key] = v
      }
      await this.checkpoint.writeOffsets(batchId, { metadata: { batchWatermarkMs: watermarkMs, batchTimestampMs: triggerStart, conf }, offsets: [end] })
    }
    this.faultPoint('afterOffsetsLog')
    const walCommitMs = performance.now() - t
    t = performance.now()
    const capAhead = this.conf.get('sluice.streaming.maxEventTimeAhead')
    const maxEventTimeMs = capAhead === undefined ? Infinity : triggerStart + parseIntervalMs(capAhead, 'sluice.streaming.maxEventTimeAhead')
    const read = readAhead ?? (await this.readBatch(this.committedOffset, end, maxEventTimeMs, false))
    const { input, stats, getBatchMs } = read
    let batch = read.batch
    t = performance.now()
    const hasWatermark = this.phys.watermarks.length > 0
    let aggMetrics: AggregateMetrics | null = null
    let commitTimeMs = 0
    if (this.aggregate) {
      const r = await this.aggregate.process(batch, hasWatermark ? watermarkMs : null, read.prepared)
      this.faultPoint('duringAggregation')
      if (input !== null) this.startReadAhead(end)
      batch = r.output
      aggMetrics = r.metrics
      const tc = performance.now()
      const agg = this.aggregate
      await this.stateStore!.commit(batchId + 1, r.changes, () => agg.snapshot())
      commitTimeMs = performance.now() - tc
      this.faultPoint('afterStateCommit')
    }
    for (const node of this.phys.post) batch = runStage(node, batch)
    await this.sink.addBatch(batchId, batch)
    this.faultPoint('afterSink')
    const addBatchMs = performance.now() - t
    // watermark for the next batch (Spark's WatermarkTracker.updateWatermark, min or max policy)
    t = performance.now()
    let next = this.nextWatermarkMs
    if (hasWatermark && watermarkMs < FLUSH_WATERMARK_MS) {
      for (const node of this.phys.watermarks) {
        const st = stats.get(node)
        const prev = this.operatorWatermarks.get(node)
        if (st !== undefined && st.count > 0) {
          const candidate = st.max - node.delayMs
          if (prev === undefined || candidate > prev) this.operatorWatermarks.set(node, candidate)
        } else if (prev === undefined) this.operatorWatermarks.set(node, 0)
      }
      const values = [...this.operatorWatermarks.values()]
      const policy = this.conf.get('sluice.streaming.multipleWatermarkPolicy') === 'max' ? Math.max : Math.min
      const chosen = values.length > 0 ? policy(...values) : 0
      if (chosen > next) next = chosen
    }
    await this.checkpoint.writeCommit(batchId, { nextBatchWatermarkMs: next })
    this.faultPoint('afterCommitLog')
    const commitOffsetsMs = performance.now() - t
    if (watermarkMs >= FLUSH_WATERMARK_MS) this.flushed = true
    const startOffset = this.committedOffset
    this.committedOffset = end
    this.batchWatermarkMs = watermarkMs
    this.nextWatermarkMs = next
    this.batchId = batchId + 1
    const retain = this.confInt('sluice.streaming.minBatchesToRetain', 100)
    if (batchId + 1 > retain && (batchId + 1) % 10 === 0) await this.checkpoint.purge(batchId + 1 - retain)

    const triggerMs = performance.now() - t0
    const numInputRows = input?.numRows ?? 0
    const sinceLast = this.lastTriggerStartMs > 0 ? (triggerStart - this.lastTriggerStartMs) / 1000 : 0
    this.lastTriggerStartMs = triggerStart
    const rate = (rows: number, sec: number) => (sec > 0 ? rows / sec : 0)
    const eventTime: StreamingQueryProgress['eventTime'] = {}
    const st = this.phys.watermarks.length > 0 ? stats.get(this.phys.watermarks[0]!) : undefined
    if (st && st.count > 0) {
      eventTime.avg = isoMs(Math.trunc(st.sum / st.count))
      eventTime.max = isoMs(st.max)
      eventTime.min = isoMs(st.min)
    }
    if (hasWatermark) eventTime.watermark = isoMs(Math.min(watermarkMs, FLUSH_WATERMARK_MS))
    const stateOperators: StateOperatorProgress[] = aggMetrics
      ? [{
          operatorName: 'stateStoreSave',
          ...aggMetrics,
          commitTimeMs: Math.round(commitTimeMs),
          allUpdatesTimeMs: 0,
          allRemovalsTimeMs: 0,
          numShufflePartitions: 1,
          numStateStoreInstances: 1,
          customMetrics: {},
        }]
      : []
    const progress: StreamingQueryProgress = {
      id: this.id,
      runId: this.runId,
      name: this.name,
      timestamp: isoMs(triggerStart),
      batchId,
      batchDuration: Math.round(triggerMs),
      numInputRows,
      inputRowsPerSecond: rate(numInputRows, sinceLast),
      processedRowsPerSecond: rate(numInputRows, triggerMs / 1000),
      durationMs: {
        triggerExecution: Math.round(triggerMs),
        latestOffset: Math.round(latestOffsetMs),
        walCommit: Math.round(walCommitMs),
        getBatch: Math.round(getBatchMs),
        queryPlanning: 0,
        addBatch: Math.round(addBatchMs),
        commitOffsets: Math.round(commitOffsetsMs),
      },
      eventTime,
      stateOperators,
      sources: [{
        description: this.source.description,
        startOffset: startOffset,
        endOffset: end,
        latestOffset: end,
        numInputRows,
        inputRowsPerSecond: rate(numInputRows, sinceLast),
        processedRowsPerSecond: rate(numInputRows, triggerMs / 1000),
        metrics: input !== null ? (this.source.batchMetrics?.() ?? {}) : {},
      }],
      sink: { description: this.sink.description, numOutputRows: batch.numRows, metrics: {} },
      observedMetrics: {},
    }
    this.recentProgress.push(progress)
    if (this.recentProgress.length > MAX_RECENT_PROGRESS) this.recentProgress.shift()
    for (const l of s.listeners()) l.onQueryProgress?.({ progress })
  }

  private markIdle(tick: number): void {
    this.idleTick = tick
    for (let i = this.idleWaiters.length - 1; i >= 0; i--) {
      const w = this.idleWaiters[i]!
      if (w.tick <= tick) {
        this.idleWaiters.splice(i, 1)
        w.resolve()
      }
    }
    const now = isoMs(Date.now())
    for (const l of this.settings.listeners()) l.onQueryIdle?.({ id: this.id, runId: this.runId, timestamp: now })
  }

  /** Resolves once every row available now has been processed and committed (Spark's processAllAvailable). */
  processAllAvailable(): Promise<void> {
    if (this.exception) return Promise.reject(this.exception)
    if (!this.active) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.idleWaiters.push({ tick: this.tick, resolve, reject })
      this.wakeIdle?.()
    })
  }

  /** Resolves when the query ends (stop(), end of a once/availableNow run); rejects with its exception if it failed. */
  awaitTermination(): Promise<void> {
    if (this.exception) return Promise.reject(this.exception)
    if (!this.active) return Promise.resolve()
    return new Promise((resolve, reject) => this.terminationWaiters.push({ resolve, reject }))
  }

  async stop(): Promise<void> {
    this.stopRequested = true
    this.wakeIdle?.()
    this.settings.trigger.clock.wake()
    await this.loopDone
  }

  private async terminate(error: unknown): Promise<void> {
    if (!this.active) return
    this.active = false
    this.unsubscribe?.()
    if (error !== null) {
      this.exception = error instanceof SluiceError ? error : new SluiceError('QUERY_FAILED', `Query ${this.name ?? this.id} terminated with an exception: ${(error as Error)?.message ?? String(error)}`, { cause: error })
    }
    this.status = { message: 'Stopped', isDataAvailable: false, isTriggerActive: false }
    if (this.readAhead !== null) {
      const ahead = await this.readAhead.catch(() => null) // a batch that will not run: its errors do not matter
      this.readAhead = null
      if (ahead?.read.prepared) await this.aggregate!.discard(ahead.read.prepared)
    }
    for (const [what, close] of [['source', () => this.source?.stop()], ['sink', () => this.sink?.stop?.()]] as const) {
      try {
        await close()
      } catch (e) {
        this.settings.log(`Stopping the ${what} of query ${this.name ?? this.id} failed: ${(e as Error)?.message ?? String(e)}`)
      }
    }
    this.aggregate?.dispose()
    for (const w of this.idleWaiters.splice(0)) this.exception ? w.reject(this.exception) : w.resolve()
    for (const w of this.terminationWaiters.splice(0)) this.exception ? w.reject(this.exception) : w.resolve()
    for (const l of this.settings.listeners()) l.onQueryTerminated?.({ id: this.id, runId: this.runId, exception: this.exception })
  }
}

/** Spark's rules for restarts after changes: same number and kinds of sources; a file sink keeps its path. */
function checkShape(recorded: QueryShape, now: QueryShape, file: string): void {
  const fmt = (x: string[]) => `[${x.join(', ')}]`
  if (fmt(recorded.sources) !== fmt(now.sources)) {
    throw new CheckpointError(
      'SOURCES_CHANGED',
      `The query's sources ${fmt(now.sources)} differ from those recorded in the checkpoint ${fmt(recorded.sources)} (${file}); ` +
        'changing the number or kind of sources is not allowed across restarts: use a new checkpoint location',
    )
  }
  if (recorded.sink.path !== undefined && now.sink.path !== undefined && recorded.sink.path !== now.sink.path) {
    throw new CheckpointError(
      'SINK_CHANGED',
      `The file sink writes to ${now.sink.path} but the checkpoint recorded ${recorded.sink.path} (${file}); a file sink cannot change its output directory across restarts`,
    )
  }
}

function parseKillAt(text: string | undefined): { point: FaultPoint; batchId: number } | null {
  if (text === undefined) return null
  const m = /^(\w+)@(\d+)$/.exec(text)
  if (m === null || !(FAULT_POINTS as readonly string[]).includes(m[1]!)) {
    throw new SluiceError('INVALID_OPTION', `sluice.testing.killAt must be '<point>@<batchId>' with point one of ${FAULT_POINTS.join(', ')}; got '${text}'`)
  }
  return { point: m[1] as FaultPoint, batchId: Number(m[2]) }
}

/** True when offset `a` lies past `b` (numbers, or objects compared field by field). */
function beyond(a: Offset, b: Offset): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a > b
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    for (const k of Object.keys(b)) if (k in a && beyond(a[k]!, b[k]!)) return true
    return false
  }
  return false
}
