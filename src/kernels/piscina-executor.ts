/**
 * Node-only {@link Executor} backed by a Piscina pool running build/worker.mjs (`npm run build`).
 * Large tasks are cut into `threads` contiguous slices aggregated in parallel; the partials come
 * back with transferred buffers. Small tasks run inline on the calling thread.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { KernelError } from '../errors.ts'
import { InlineExecutor, type Executor, type PartialAggTask } from './executor.ts'
import { Kernels, type AccInputColumn, type GroupRows, type KeyLane } from './kernels.ts'

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
  const inline = new InlineExecutor(await Kernels.load(module))
  const pool = new Piscina({ filename, minThreads: threads, maxThreads: threads, workerData: { module } })
  return new PiscinaExecutor(pool, inline, threads, inlineBelowRows)
}

class PiscinaExecutor implements Executor {
  private closed = false

  constructor(
    private readonly pool: Piscina,
    private readonly inline: InlineExecutor,
    readonly threads: number,
    private readonly inlineBelowRows: number,
  ) {}

  async partialAggregate(task: PartialAggTask): Promise<GroupRows[]> {
    if (this.closed) throw new KernelError('KERNEL_CLOSED', 'executor used after close()')
    const n = task.n
    if (n < this.inlineBelowRows) return this.inline.partialAggregate(task)
    // slice boundaries on multiples of 8 so validity bitmaps slice on byte boundaries
    const per = Math.ceil(n / this.threads / 8) * 8
    const runs: Promise<GroupRows>[] = []
    for (let a = 0; a < n; a += per) {
      const b = Math.min(n, a + per)
      const transferList: ArrayBuffer[] = []
      const keys = task.keys.map((lane): KeyLane => {
        const s = lane.slice(a, b)
        transferList.push(s.buffer)
        return s
      })
      const inputs = task.inputs.map((col): AccInputColumn | null => {
        if (col === null) return null
        const values = col.values.slice(a, b)
        transferList.push(values.buffer)
        const validity = col.validity === null ? null : col.validity.slice(a >> 3, (b + 7) >> 3)
        if (validity !== null) transferList.push(validity.buffer)
        return { values, validity }
      })
      const slice: PartialAggTask = { laneWidths: task.laneWidths, specs: task.specs, keys, inputs, n: b - a }
      runs.push(this.pool.run(slice, { transferList }) as Promise<GroupRows>)
    }
    try {
      return await Promise.all(runs)
    } catch (e) {
      if (e instanceof KernelError) throw e
      throw new KernelError('KERNEL_WORKER_FAILED', `partial aggregation in a worker failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.inline.close()
    await this.pool.destroy()
  }
}
