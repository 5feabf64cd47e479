/**
 * Per-batch overhead, in its own process: the main job's query over the first 100,000 flights rows
 * in batches of 1,000 rows (maxRowsPerTrigger), checkpoint on disk, a no-op foreachBatch sink,
 * 1 thread. Per batch: the wall time between consecutive progress events (everything: offsets log,
 * read, aggregation, state commit, sink, commit log, progress), and its parts.
 *
 *   tsx bench/overhead.ts [--rows-per-batch N]
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SluiceSession, avg, col, count, max, window, NodeFs } from '../src/index.node.ts'
import { AggregateOperator } from '../src/exec/aggregate.ts'
import { StateStore } from '../src/state/state-store.ts'
import { ARROW_100K, DATA_DIR } from './data.ts'

const { values: opt } = parseArgs({ options: { 'rows-per-batch': { type: 'string', default: '1000' } } })
const perBatch = Number(opt['rows-per-batch'])

// per-batch part timers, installed here (not in the engine)
const part: Record<string, number> = {}
function wrap(proto: object, name: string, key: string): void {
  const o = proto as Record<string, (...a: unknown[]) => unknown>
  const f = o[name]!
  o[name] = function (this: unknown, ...a: unknown[]) {
    const t = performance.now()
    const r = f.apply(this, a)
    const done = () => (part[key] = (part[key] ?? 0) + performance.now() - t)
    if (r instanceof Promise) return r.finally(done)
    done()
    return r
  }
}
wrap(AggregateOperator.prototype, 'process', 'aggregation operator')
wrap(StateStore.prototype, 'commit', 'state commit (delta file)')
wrap(NodeFs.prototype, 'writeAtomic', 'atomic file writes (all)')

const session = await SluiceSession.builder().config('sluice.executor.threads', '1').getOrCreate()
const stamps: number[] = []
const rows: Record<string, number>[] = []
session.streams.addListener({
  onQueryProgress({ progress }) {
    stamps.push(performance.now())
    rows.push({ ...part, 'progress.walCommit': progress.durationMs.walCommit ?? 0, 'progress.commitOffsets': progress.durationMs.commitOffsets ?? 0, inputRows: progress.numInputRows })
    for (const k of Object.keys(part)) delete part[k]
  },
})
const ck = join(DATA_DIR, 'ckpt', `overhead-${process.pid}`)
rmSync(ck, { recursive: true, force: true })
const t0 = performance.now()
const q = await session.readStream.format('arrow').option('maxRowsPerTrigger', perBatch).load(ARROW_100K)
  .withWatermark('date', '1 hour')
  .groupBy(window(col('date'), '1 hour'), col('origin'))
  .agg(count('*').as('flights'), avg('delay').as('avg_delay'), max('delay').as('max_delay'))
  .writeStream.outputMode('append').foreachBatch(() => {})
  .option('checkpointLocation', ck).option('flushAtEnd', true).trigger({ availableNow: true })
  .start()
await q.awaitTermination()
const total = performance.now() - t0
await session.stop()
rmSync(ck, { recursive: true, force: true })

// batches 2.. with a full batch of input (the first includes opening the file)
const per: number[] = []
const parts: Record<string, number[]> = {}
for (let i = 1; i < stamps.length; i++) {
  if (rows[i]!.inputRows !== perBatch) continue
  per.push(stamps[i]! - stamps[i - 1]!)
  for (const [k, v] of Object.entries(rows[i]!)) if (k !== 'inputRows') (parts[k] ??= []).push(v)
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!
}
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN
const result = {
  rowsPerBatch: perBatch,
  batches: stamps.length,
  measured: per.length,
  medianMs: median(per),
  p90Ms: p90(per),
  totalMs: total,
  parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, median(v)])),
  maxRssMB: process.resourceUsage().maxRSS / 1024,
}
process.stderr.write(`  per batch of ${perBatch} rows: median ${result.medianMs.toFixed(2)} ms, p90 ${result.p90Ms.toFixed(2)} ms over ${per.length} batches; parts (median): ${Object.entries(result.parts).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}\n`)
console.log(JSON.stringify({ overhead: result }))
