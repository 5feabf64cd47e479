/**
 * Where partial aggregations run: {@link InlineExecutor} on the calling thread (browser, tiny
 * batches), or a worker pool (src/kernels/piscina-executor.ts, Node only). Core module.
 */
import { KernelError } from '../errors.ts'
import type { AccInputColumn, AccSpec, GroupRows, GroupTable, Kernels, KeyInput, LaneWidth, TableLayout } from './kernels.ts'

export interface PartialAggTask {
  laneWidths: LaneWidth[]
  specs: AccSpec[]
  keys: KeyInput[]
  inputs: (AccInputColumn | null)[]
  n: number
  /** Table layout of the partial aggregation (default 'auto': dense when the key domains are small). */
  layout?: TableLayout
}

/**
 * Partials of one task whose merge equals aggregating all its rows: `table` is the calling
 * thread's share, aggregated by the caller's {@link PartialAggregator} and left in its table (merge
 * it with GroupTable.mergeTable, then clear it); `rows` come from other threads.
 */
export interface Partials {
  table: GroupTable | null
  rows: GroupRows[]
}

/** Options of {@link Executor.partialAggregateWith}. */
export interface PartialAggOptions {
  /** false: aggregate on the calling thread only, even when the task is large (default true). */
  parallel?: boolean
}

export interface Executor {
  readonly threads: number
  /** Partial aggregation of the task's rows: one or more partial GroupRows whose merge equals aggregating all rows. */
  partialAggregate(task: PartialAggTask): Promise<GroupRows[]>
  /**
   * As {@link partialAggregate}, but the calling thread's share is aggregated by `local` (a
   * PartialAggregator of the caller's kernels instance) and returned as its table, without copies.
   */
  partialAggregateWith(task: PartialAggTask, local: PartialAggregator, opts?: PartialAggOptions): Promise<Partials>
  close(): Promise<void>
}

/**
 * Chooses, batch by batch, between aggregating on the calling thread only and splitting the batch
 * across the executor's threads, from the measured cost per row of each (moving averages): one
 * sample of each first, then the better one, trying the other every `probeEvery` batches. Splitting
 * pays when the kernel is slow per row (many groups, hashed) and costs when it is fast (a dense
 * 250k-row batch aggregates in ~3 ms on the calling thread and ~17 ms split, with slicing, transfer
 * and merging a second partial), so neither is right for every query. A probe that loses by more
 * than half doubles the probe interval (up to `maxProbeEvery`), so a clearly worse choice costs a
 * few batches per thousand; a probe that wins resets it.
 */
export class ParallelismTuner {
  private readonly cost = [NaN, NaN] // ms per row: [calling thread only, split]
  private readonly samples = [0, 0]
  private decisions = 0
  private probing: boolean | null = null
  private interval: number

  constructor(private readonly threads: number, private readonly probeEvery = 16, private readonly maxProbeEvery = 512) {
    this.interval = probeEvery
  }

  /** True: split this batch across threads. */
  choose(): boolean {
    this.probing = null
    if (this.threads <= 1) return false
    if (this.samples[0]! < 1) return false
    if (this.samples[1]! < 1) return true
    const better = this.cost[1]! < this.cost[0]!
    if (++this.decisions % this.interval !== 0) return better
    this.probing = !better
    return !better
  }

  /** Records a batch that ran split (or not) in `ms` for `rows` rows. */
  record(split: boolean, ms: number, rows: number): void {
    if (rows <= 0 || !(ms >= 0)) return
    const i = split ? 1 : 0
    const c = ms / rows
    if (this.probing === split) {
      // a probe of the choice that was worse: back off while it stays clearly worse
      this.interval = c > 1.5 * this.cost[1 - i]! ? Math.min(this.interval * 2, this.maxProbeEvery) : this.probeEvery
    }
    this.probing = null
    this.cost[i] = this.samples[i] === 0 ? c : 0.7 * this.cost[i]! + 0.3 * c
    this.samples[i]!++
  }
}

/**
 * Aggregates a task's rows synchronously with a table cached per (lanes, specs) layout. Shared by
 * {@link InlineExecutor}, the pool's workers and the aggregation operator.
 * @internal
 */
export class PartialAggregator {
  private readonly tables = new Map<string, GroupTable>()

  constructor(readonly kernels: Kernels) {}

  /** The cached (empty) table for the task's layout. */
  private table(task: PartialAggTask): GroupTable {
    const key = `${task.laneWidths.join(',')}|${task.specs.map((s) => `${s.kind}:${s.input}`).join(',')}`
    let table = this.tables.get(key)
    if (table === undefined) {
      if (this.tables.size >= 16) this.dispose()
      table = this.kernels.createGroupTable(task.laneWidths, task.specs)
      this.tables.set(key, table)
    }
    return table
  }

  /** The task's groups, exported (the table is cleared). */
  aggregate(task: PartialAggTask): GroupRows {
    const table = this.table(task)
    try {
      table.update(task.keys, task.inputs, task.n, { layout: task.layout ?? 'auto' })
      return table.export()
    } finally {
      table.clear()
    }
  }

  /** The task's groups, left in the cached table: the caller must clear() it before the next call. */
  aggregateToTable(task: PartialAggTask): GroupTable {
    const table = this.table(task)
    try {
      table.update(task.keys, task.inputs, task.n, { layout: task.layout ?? 'auto' })
    } catch (e) {
      table.clear()
      throw e
    }
    return table
  }

  dispose(): void {
    for (const t of this.tables.values()) t.dispose()
    this.tables.clear()
  }
}

/** Runs partial aggregations on the calling thread. */
export class InlineExecutor implements Executor {
  readonly threads = 1
  private readonly agg: PartialAggregator
  private closed = false

  constructor(kernels: Kernels) {
    this.agg = new PartialAggregator(kernels)
  }

  async partialAggregate(task: PartialAggTask): Promise<GroupRows[]> {
    this.check()
    return [this.agg.aggregate(task)]
  }

  async partialAggregateWith(task: PartialAggTask, local: PartialAggregator, _opts?: PartialAggOptions): Promise<Partials> {
    this.check()
    return { table: local.aggregateToTable(task), rows: [] }
  }

  private check(): void {
    if (this.closed) throw new KernelError('KERNEL_CLOSED', 'InlineExecutor used after close()')
  }

  async close(): Promise<void> {
    this.closed = true
    this.agg.dispose()
  }
}
