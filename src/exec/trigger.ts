import { OptionError } from '../errors.ts'
import { parseIntervalMs } from '../util/interval.ts'

/** A source of time for processing-time triggers. */
export interface Clock {
  now(): number
  /** Resolves at `time` (ms) or when `wake()` is called, whichever is first. */
  waitUntil(time: number): Promise<void>
  wake(): void
}

export class SystemClock implements Clock {
  private wakeUp: (() => void) | null = null

  now(): number {
    return Date.now()
  }

  waitUntil(time: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, time - Date.now()))
      const self = this
      function done() {
        clearTimeout(timer)
        if (self.wakeUp === done) self.wakeUp = null
        resolve()
      }
      this.wakeUp = done
    })
  }

  wake(): void {
    this.wakeUp?.()
  }
}

/** A clock that moves only when told to (Spark's StreamManualClock), for tests of processing-time triggers. */
export class ManualClock implements Clock {
  private time: number
  private waiters: { time: number; resolve: () => void }[] = []

  constructor(startMs = 0) {
    this.time = startMs
  }

  now(): number {
    return this.time
  }

  advance(ms: number): void {
    this.time += ms
    const due = this.waiters.filter((w) => w.time <= this.time)
    this.waiters = this.waiters.filter((w) => w.time > this.time)
    for (const w of due) w.resolve()
  }

  /** True when the query is blocked waiting for the clock to advance. */
  get isWaiting(): boolean {
    return this.waiters.length > 0
  }

  waitUntil(time: number): Promise<void> {
    if (time <= this.time) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ time, resolve }))
  }

  wake(): void {
    const all = this.waiters
    this.waiters = []
    for (const w of all) w.resolve()
  }
}

/**
 * When micro-batches run (Spark's Trigger): by default as fast as possible; `processingTime` every
 * interval; `once` one batch with all available data; `availableNow` everything available at start,
 * in batches that honour the source's limits, then stop. `clock` is a test hook ({@link ManualClock}).
 */
export type Trigger =
  | { readonly processingTime: string | number; readonly clock?: Clock }
  | { readonly once: true }
  | { readonly availableNow: true }

export interface ResolvedTrigger {
  readonly kind: 'processingTime' | 'once' | 'availableNow'
  readonly intervalMs: number
  readonly clock: Clock
}

export function resolveTrigger(t: Trigger | undefined): ResolvedTrigger {
  if (t === undefined) return { kind: 'processingTime', intervalMs: 0, clock: new SystemClock() }
  if ('processingTime' in t) {
    const ms = typeof t.processingTime === 'number' ? t.processingTime : parseIntervalMs(t.processingTime, 'trigger interval')
    if (!(ms >= 0)) throw new OptionError('INVALID_TRIGGER', `processingTime must be >= 0, got ${String(t.processingTime)}`)
    return { kind: 'processingTime', intervalMs: ms, clock: t.clock ?? new SystemClock() }
  }
  if ('once' in t && t.once === true) return { kind: 'once', intervalMs: 0, clock: new SystemClock() }
  if ('availableNow' in t && t.availableNow === true) return { kind: 'availableNow', intervalMs: 0, clock: new SystemClock() }
  throw new OptionError('INVALID_TRIGGER', `Unknown trigger ${JSON.stringify(t)}; use { processingTime: '1 second' }, { once: true } or { availableNow: true }`)
}
