/**
 * Where partial aggregations run: {@link InlineExecutor} on the calling thread (browser, tiny
 * batches), or a worker pool (src/kernels/piscina-executor.ts, Node only). Core module.
 */
import { KernelError } from '../errors.ts'
import type { AccInputColumn, AccSpec, GroupRows, GroupTable, Kernels, KeyLane, LaneWidth } from './kernels.ts'

export interface PartialAggTask {
  laneWidths: LaneWidth[]
  specs: AccSpec[]
  keys: KeyLane[]
  inputs: (AccInputColumn | null)[]
  n: number
}

export interface Executor {
  readonly threads: number
  /** Partial aggregation of the task's rows: one or more partial GroupRows whose merge equals aggregating all rows. */
  partialAggregate(task: PartialAggTask): Promise<GroupRows[]>
  close(): Promise<void>
}

/**
 * Aggregates a task's rows synchronously with a table cached per (lanes, specs) layout, cleared
 * after each use. Shared by {@link InlineExecutor} and the pool's workers.
 * @internal
 */
export class PartialAggregator {
  private readonly tables = new Map<string, GroupTable>()

  constructor(readonly kernels: Kernels) {}

  aggregate(task: PartialAggTask): GroupRows {
    const key = `${task.laneWidths.join(',')}|${task.specs.map((s) => `${s.kind}:${s.input}`).join(',')}`
    let table = this.tables.get(key)
    if (table === undefined) {
      if (this.tables.size >= 16) this.dispose()
      table = this.kernels.createGroupTable(task.laneWidths, task.specs)
      this.tables.set(key, table)
    }
    try {
      table.update(task.keys, task.inputs, task.n)
      return table.export()
    } finally {
      table.clear()
    }
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
    if (this.closed) throw new KernelError('KERNEL_CLOSED', 'InlineExecutor used after close()')
    return [this.agg.aggregate(task)]
  }

  async close(): Promise<void> {
    this.closed = true
    this.agg.dispose()
  }
}
