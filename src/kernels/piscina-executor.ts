/**
 * Node-only {@link Executor} backed by a Piscina pool running build/worker.mjs (`npm run build`).
 * A large task is cut into `threads` contiguous slices aggregated in parallel: the first on the
 * calling thread (which would otherwise wait), the others by `threads - 1` workers, whose partials
 * come back with transferred buffers. Small tasks run on the calling thread only.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { KernelError } from '../errors.ts'
import { InlineExecutor, PartialAggregator, type Executor, type PartialAggOptions, type PartialAggTask, type Partials } from './executor.ts'
import { Kernels, type AccInputColumn, type GroupRows, type KeyInput } from './kernels.ts'

export interface PiscinaExecutorOptions {
  threads: number
  /** Tasks with fewer rows run on the calling thread (default 65536). */
  inlineBelowRows?: number
}

export async function createPiscinaExecutor(opts: PiscinaExecutorOptions): Promise<Executor> {
  const threads = opts.threads
  if (!Number.isInteger(threads) || threads < 1) throw new KernelError('KERNEL_BAD_ARGUMENT', `threads must be a positive integer, got ${threads}`)
  const inlineBelowRows = opts.inlineBelowRows ?? 65536
  const filename = fileURLToPath(new URL('../../build/worker.mjs', import.meta.url))
  if (!existsSync(filename)) throw new KernelError('KERNEL_WORKER_MISSING', `worker bundle ${filename} not found: run \`npm run build\``)
  const module = await Kernels.compile()
  const kernels = await Kernels.load(module)
  const inline = new InlineExecutor(kernels)
  const own = new PartialAggregator(kernels)
  const workers = threads - 1
  const pool = workers > 0 ? new Piscina({ filename, minThreads: workers, maxThreads: workers, workerData: { module } }) : null
  return new PiscinaExecutor(pool, inline, own, threads, inlineBelowRows)
}

/** Rows [a, b) of a key input, copied (a is a multiple of 8, so validity bitmaps slice on bytes). */
function sliceKey(key: KeyInput, a: number, b: number, transfer: ArrayBuffer[]): KeyInput {
  const own = <T extends { buffer: ArrayBufferLike }>(x: T): T => (transfer.push(x.buffer as ArrayBuffer), x)
  const bits = (v: Uint8Array | null) => (v === null ? null : own(v.slice(a >> 3, (b + 7) >> 3)))
  if (ArrayBuffer.isView(key)) return own(key.slice(a, b))
  if (key.kind === 'tumble') return { ...key, ts: own(key.ts.slice(a, b)), validity: bits(key.validity) }
  return { ...key, codes: own(key.codes.slice(a, b)), validity: bits(key.validity) }
}

class PiscinaExecutor implements Executor {
  private closed = false

  constructor(
    private readonly pool: Piscina | null,
    private readonly inline: InlineExecutor,
    private readonly own: PartialAggregator,
    readonly threads: number,
    private readonly inlineBelowRows: number,
  ) {}

  async partialAggregate(task: PartialAggTask): Promise<GroupRows[]> {
    this.check()
    if (task.n < this.inlineBelowRows || this.pool === null) return this.inline.partialAggregate(task)
    const { first, runs } = this.dispatch(task)
    let mine
    try {
      mine = this.own.aggregate(first)
    } catch (e) {
      await Promise.allSettled(runs)
      throw e
    }
    return [mine, ...(await this.collect(runs))]
  }

  async partialAggregateWith(task: PartialAggTask, local: PartialAggregator, opts: PartialAggOptions = {}): Promise<Partials> {
    this.check()
    if (task.n < this.inlineBelowRows || this.pool === null || opts.parallel === false) return { table: local.aggregateToTable(task), rows: [] }
    const { first, runs } = this.dispatch(task)
    let table
    try {
      table = local.aggregateToTable(first)
    } catch (e) {
      await Promise.allSettled(runs)
      throw e
    }
    try {
      return { table, rows: await this.collect(runs) }
    } catch (e) {
      table.clear() // the caller gets no partials: leave its table empty for the next task
      throw e
    }
  }

  /** Sends slices 1.. to the workers; returns slice 0 (a view, not a copy) for the calling thread. */
  private dispatch(task: PartialAggTask): { first: PartialAggTask; runs: Promise<GroupRows>[] } {
    const n = task.n
    // slice boundaries on multiples of 8 so validity bitmaps slice on byte boundaries
    const per = Math.ceil(n / this.threads / 8) * 8
    const runs: Promise<GroupRows>[] = []
    for (let a = per; a < n; a += per) {
      const b = Math.min(n, a + per)
      const transferList: ArrayBuffer[] = []
      const keys = task.keys.map((key) => sliceKey(key, a, b, transferList))
      const inputs = task.inputs.map((col): AccInputColumn | null => {
        if (col === null) return null
        const values = col.values.slice(a, b)
        transferList.push(values.buffer)
        const validity = col.validity === null ? null : col.validity.slice(a >> 3, (b + 7) >> 3)
        if (validity !== null) transferList.push(validity.buffer)
        return { values, validity }
      })
      const slice: PartialAggTask = { laneWidths: task.laneWidths, specs: task.specs, keys, inputs, n: b - a, ...(task.layout ? { layout: task.layout } : {}) }
      runs.push(this.pool!.run(slice, { transferList }) as Promise<GroupRows>)
    }
    // the calling thread's slice: rows [0, per), the arrays as they are (update reads the first n rows)
    return { first: { ...task, n: Math.min(per, n) }, runs }
  }

  private async collect(runs: Promise<GroupRows>[]): Promise<GroupRows[]> {
    try {
      return await Promise.all(runs)
    } catch (e) {
      if (e instanceof KernelError) throw e
      throw new KernelError('KERNEL_WORKER_FAILED', `partial aggregation in a worker failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
    }
  }

  private check(): void {
    if (this.closed) throw new KernelError('KERNEL_CLOSED', 'executor used after close()')
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.own.dispose()
    await this.inline.close()
    await this.pool?.destroy()
  }
}
