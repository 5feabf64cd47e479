import type { StreamExecution } from '../exec/stream-execution.ts'
import type { StreamingQueryListener, StreamingQueryProgress, StreamingQueryStatus } from '../progress/progress.ts'
import type { SluiceError } from '../errors.ts'
import type { SluiceSession } from './session.ts'

/** A running streaming query (Spark's StreamingQuery). */
export class StreamingQuery {
  constructor(private readonly exec: StreamExecution, private readonly session: SluiceSession) {}

  /** Stable across restarts from the same checkpoint (stored in `<checkpoint>/metadata`). */
  get id(): string { return this.exec.id }
  /** New for every start. */
  get runId(): string { return this.exec.runId }
  get name(): string | null { return this.exec.name }
  get isActive(): boolean { return this.exec.isActive }
  get status(): StreamingQueryStatus { return { ...this.exec.status } }
  /** The most recent progress, or null before the first batch. */
  get lastProgress(): StreamingQueryProgress | null { return this.exec.lastProgress }
  /** Up to the last 100 progress reports, oldest first. */
  get recentProgress(): StreamingQueryProgress[] { return [...this.exec.recentProgress] }
  /** The error that terminated the query, if any. */
  get exception(): SluiceError | null { return this.exec.exception }

  /** Waits until every row available now has been processed (and the no-data batches it implies). Rejects if the query fails. */
  processAllAvailable(): Promise<void> {
    return this.exec.processAllAvailable()
  }

  /**
   * Waits for the query to end: resolves when it stops (stop(), or the end of a once/availableNow
   * run); rejects with its exception if it failed. With `timeoutMs`, resolves false if still running then.
   */
  async awaitTermination(timeoutMs?: number): Promise<boolean> {
    if (timeoutMs === undefined) {
      await this.exec.awaitTermination()
      return true
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
    try {
      return await Promise.race([this.exec.awaitTermination().then(() => true), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stops the query after the batch in flight (if any) completes. */
  async stop(): Promise<void> {
    await this.exec.stop()
    this.session.streams.unregister(this)
  }
}

/** `session.streams` (Spark's StreamingQueryManager). */
export class StreamingQueryManager {
  readonly listeners: StreamingQueryListener[] = []
  private readonly queries = new Set<StreamingQuery>()

  /** Queries still running. */
  get active(): StreamingQuery[] {
    return [...this.queries].filter((q) => q.isActive)
  }

  get(id: string): StreamingQuery | null {
    return this.active.find((q) => q.id === id) ?? null
  }

  addListener(listener: StreamingQueryListener): void {
    this.listeners.push(listener)
  }

  removeListener(listener: StreamingQueryListener): void {
    const i = this.listeners.indexOf(listener)
    if (i >= 0) this.listeners.splice(i, 1)
  }

  /** @internal */
  register(q: StreamingQuery): void {
    this.queries.add(q)
  }

  /** @internal */
  unregister(q: StreamingQuery): void {
    this.queries.delete(q)
  }
}
