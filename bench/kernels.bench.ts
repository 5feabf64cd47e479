/**
 * Kernel benchmark on the flights workload shape (synthetic, seeded): 3M rows sorted by time over
 * six months (~690 rows per hour), origin codes with 229 distinct values (skewed), int64 delay.
 * Hourly tumbling windows; count(*), sum(delay), max(delay) by (window start, origin) in 250k-row
 * micro-batches (~7 rows per group, up to ~36k groups per batch).
 *
 *   npx tsx bench/kernels.bench.ts [--threads N]
 *
 * Prints the median throughput (M rows/s) of each case; the plain-JS Map baseline runs in the
 * same process for comparison.
 */
import { availableParallelism, cpus } from 'node:os'
import { Bench } from 'tinybench'
import { Kernels } from '../src/kernels/kernels.ts'
import { createPiscinaExecutor } from '../src/kernels/piscina-executor.ts'
import { InlineExecutor, type PartialAggTask } from '../src/kernels/executor.ts'
import type { AccSpec, GroupRows } from '../src/kernels/kernels.ts'

const N = 3_000_000
const BATCH = 250_000
const HOUR = 3_600_000_000n
const threadsArg = process.argv.indexOf('--threads')
const THREADS = threadsArg > 0 ? Number(process.argv[threadsArg + 1]) : Math.min(2, availableParallelism())

// --- synthetic data -------------------------------------------------------------------------
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = rng(42)
const t0 = 978_307_260_000_000n // 2001-01-01T00:01Z in µs
const spanUs = 181 * 24 * 3600 * 1e6 // six months
const ts = new BigInt64Array(N)
const origin = new Int32Array(N)
const delay = new BigInt64Array(N)
// Zipf(1.35) over 229 origins: ~100 distinct origins per hour, ~7 rows per (hour, origin) group
const zipf = Array.from({ length: 229 }, (_, k) => 1 / (k + 1) ** 1.35)
const zipfTotal = zipf.reduce((a, b) => a + b)
let acc = 0
const cdf = zipf.map((w) => (acc += w / zipfTotal))
function drawOrigin(): number {
  const u = rand()
  let lo = 0
  let hi = 228
  while (lo < hi) {
    const m = (lo + hi) >> 1
    if (cdf[m]! < u) lo = m + 1
    else hi = m
  }
  return lo
}
for (let i = 0; i < N; i++) {
  ts[i] = t0 + BigInt(Math.floor((i / N) * spanUs))
  origin[i] = drawOrigin()
  delay[i] = BigInt(Math.round(-10 + 60 * rand() ** 3 * (rand() < 0.1 ? 10 : 1)))
}
const specs: AccSpec[] = [
  { kind: 'count', input: 'none' },
  { kind: 'sum', input: 'int64' },
  { kind: 'max', input: 'int64' },
]
const batches: { ts: BigInt64Array; origin: Int32Array; delay: BigInt64Array }[] = []
for (let a = 0; a < N; a += BATCH) batches.push({ ts: ts.subarray(a, a + BATCH), origin: origin.subarray(a, a + BATCH), delay: delay.subarray(a, a + BATCH) })

const kernels = await Kernels.load()
const starts = batches.map((b) => kernels.assignWindows(b.ts, null, HOUR, HOUR, 0n).starts)
{
  const t = kernels.createGroupTable([8, 4], specs)
  let maxGroups = 0
  for (let i = 0; i < batches.length; i++) {
    t.update([starts[i]!, batches[i]!.origin], [null, { values: batches[i]!.delay, validity: null }, { values: batches[i]!.delay, validity: null }], BATCH)
    maxGroups = Math.max(maxGroups, t.numGroups)
    t.clear()
  }
  let total = 0
  for (let i = 0; i < batches.length; i++) {
    t.update([starts[i]!, batches[i]!.origin], [null, { values: batches[i]!.delay, validity: null }, { values: batches[i]!.delay, validity: null }], BATCH)
  }
  total = t.numGroups
  t.dispose()
  console.log(`data: ${N} rows, ${batches.length} batches of ${BATCH}, up to ${maxGroups} groups per batch, ${total} groups in all (${(N / total).toFixed(1)} rows per group)`)
}

// --- cases ----------------------------------------------------------------------------------
const table = kernels.createGroupTable([8, 4], specs)
const state = kernels.createGroupTable([8, 4], specs)
const inline = new InlineExecutor(kernels)
const pool = await createPiscinaExecutor({ threads: THREADS, inlineBelowRows: 1 })
let sink = 0

function task(i: number): PartialAggTask {
  const b = batches[i]!
  return { laneWidths: [8, 4], specs, keys: [starts[i]!, b.origin], inputs: [null, { values: b.delay, validity: null }, { values: b.delay, validity: null }], n: BATCH }
}

/** Plain JS: Map from window start to a Map from origin to group index; accumulators in arrays. */
function jsMapAggregate(st: BigInt64Array, org: Int32Array, dl: BigInt64Array): number {
  const groups = new Map<number, Map<number, number>>()
  const cnt: number[] = []
  const sum: number[] = []
  const max: number[] = []
  let lastStart = NaN
  let inner: Map<number, number> | undefined
  for (let i = 0; i < st.length; i++) {
    const s = Number(st[i]!)
    if (s !== lastStart) {
      inner = groups.get(s)
      if (inner === undefined) groups.set(s, (inner = new Map()))
      lastStart = s
    }
    const o = org[i]!
    let g = inner!.get(o)
    const d = Number(dl[i]!)
    if (g === undefined) {
      g = cnt.length
      inner!.set(o, g)
      cnt.push(0)
      sum.push(0)
      max.push(-Infinity)
    }
    cnt[g]!++
    sum[g]! += d
    if (d > max[g]!) max[g] = d
  }
  return cnt.length
}

/** Plain JS window assignment (tumbling): BigInt arithmetic per row. */
function jsAssign(t: BigInt64Array, size: bigint): BigInt64Array {
  const out = new BigInt64Array(t.length)
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!
    let r = v % size
    if (r < 0n) r += size
    out[i] = v - r
  }
  return out
}

const bench = new Bench({ iterations: 8, time: 0, warmup: true })
bench
  .add('WASM assignWindows (hourly tumbling)', () => {
    for (const b of batches) sink += kernels.assignWindows(b.ts, null, HOUR, HOUR, 0n).starts.length
  })
  .add('JS assignWindows baseline (BigInt)', () => {
    for (const b of batches) sink += jsAssign(b.ts, HOUR).length
  })
  .add('WASM GroupTable.update (250k batches, clear between)', () => {
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!
      table.update([starts[i]!, b.origin], [null, { values: b.delay, validity: null }, { values: b.delay, validity: null }], BATCH)
      sink += table.numGroups
      table.clear()
    }
  })
  .add('WASM update + export (partial per batch)', () => {
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!
      table.update([starts[i]!, b.origin], [null, { values: b.delay, validity: null }, { values: b.delay, validity: null }], BATCH)
      sink += table.export().numGroups
      table.clear()
    }
  })
  .add('WASM assign + update + export + merge into state', () => {
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!
      const w = kernels.assignWindows(b.ts, null, HOUR, HOUR, 0n)
      table.update([w.starts, b.origin], [null, { values: b.delay, validity: null }, { values: b.delay, validity: null }], BATCH)
      sink += state.merge(table.export()).length
      table.clear()
    }
    state.clear()
  })
  .add('WASM assign + update + export + merge + evict (watermark)', () => {
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!
      const w = kernels.assignWindows(b.ts, null, HOUR, HOUR, 0n)
      table.update([w.starts, b.origin], [null, { values: b.delay, validity: null }, { values: b.delay, validity: null }], BATCH)
      sink += state.merge(table.export()).length
      table.clear()
      // watermark = max event time - 10 min; windows ending at or before it are final
      const watermark = b.ts[b.ts.length - 1]! - 600_000_000n
      sink += state.removeWhere(0, watermark - HOUR).numGroups
    }
    state.clear()
  })
  .add('JS Map baseline (same aggregation)', () => {
    for (let i = 0; i < batches.length; i++) sink += jsMapAggregate(starts[i]!, batches[i]!.origin, batches[i]!.delay)
  })
  .add('InlineExecutor.partialAggregate + merge', async () => {
    for (let i = 0; i < batches.length; i++) for (const p of await inline.partialAggregate(task(i))) sink += state.merge(p).length
    state.clear()
  })
  .add(`PiscinaExecutor(${THREADS}).partialAggregate + merge`, async () => {
    // batches in flight two at a time, as a pipelined engine would
    let pending = pool.partialAggregate(task(0))
    for (let i = 0; i < batches.length; i++) {
      const next = i + 1 < batches.length ? pool.partialAggregate(task(i + 1)) : null
      for (const p of (await pending) as GroupRows[]) sink += state.merge(p).length
      if (next !== null) pending = next
    }
    state.clear()
  })

await bench.run()
console.log(`\n${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} threads available, Node ${process.version}`)
console.log('case'.padEnd(58), 'median ms', '  M rows/s')
for (const t of bench.tasks) {
  const r = t.result as { latency?: { p50: number } } | undefined
  const ms = r?.latency?.p50
  if (ms === undefined) {
    console.log(t.name.padEnd(58), 'failed', (t.result as { error?: unknown } | undefined)?.error)
    continue
  }
  console.log(t.name.padEnd(58), ms.toFixed(1).padStart(9), (N / ms / 1000).toFixed(1).padStart(10))
}
await pool.close()
await inline.close()
table.dispose()
state.dispose()
if (sink === -1) console.log(sink)
