/**
 * Piscina worker (bundled by scripts/build.mjs to build/worker.mjs). Receives the compiled
 * WebAssembly.Module once through workerData, keeps one kernels instance, and answers partial
 * aggregation tasks with GroupRows whose buffers are transferred back.
 */
import { workerData } from 'node:worker_threads'
import { move, transferableSymbol, valueSymbol } from 'piscina'
import { PartialAggregator, type PartialAggTask } from './executor.ts'
import { Kernels, type GroupRows } from './kernels.ts'

const data = workerData as { module: WebAssembly.Module }
const aggregator: Promise<PartialAggregator> = Kernels.load(data.module).then((k) => new PartialAggregator(k))

export default async function partialAggregate(task: PartialAggTask): Promise<unknown> {
  const rows = (await aggregator).aggregate(task)
  return move(transferable(rows) as never)
}

function transferable(rows: GroupRows): object {
  const buffers: ArrayBuffer[] = []
  for (const lane of rows.keys) buffers.push(lane.buffer as ArrayBuffer)
  for (const acc of rows.accs) {
    if (acc.value !== null) buffers.push(acc.value.buffer as ArrayBuffer)
    buffers.push(acc.count.buffer as ArrayBuffer)
  }
  return { [transferableSymbol]: buffers, [valueSymbol]: rows }
}
