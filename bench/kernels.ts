/**
 * Kernel benchmarks (tinybench), in their own process:
 *
 *   tsx bench/kernels.ts [--quick]
 *
 * Inputs are the real flights columns (date, origin, delay) from bench/.data/flights-3m.arrow, cut
 * into Arrow batches of 64k, 256k and 1M rows, and synthetic keys for the high cardinality:
 * - low (229 groups): by origin (dictionary code lane)
 * - medium (424,259 groups in the file): by hourly window of date and origin (the flights workload)
 * - high (10M distinct keys): by an int64 key drawn uniformly from 10M values
 * Aggregates: count(*), sum(delay), max(delay). Partial = GroupTable.update of one batch into an
 * empty table (then clear); merge = merging that partial's exported rows into an empty state table.
 * The flights cases run the whole file in 250k-row micro-batches. Prints one JSON line.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { tableFromIPC } from 'apache-arrow'
import { Bench } from 'tinybench'
import { InlineExecutor, PartialAggregator, type PartialAggTask } from '../src/kernels/executor.ts'
import { Kernels, type AccSpec, type GroupRows, type GroupTable, type KeyInput, type TableLayout } from '../src/kernels/kernels.ts'
import { createPiscinaExecutor } from '../src/kernels/piscina-executor.ts'
import { ARROW_3M } from './data.ts'

const quick = process.argv.includes('--quick')
const HOUR = 3_600_000_000n
const SIZES = [1 << 16, 1 << 18, 1 << 20]
const FLIGHTS_BATCH = 250_000

// --- data ---------------------------------------------------------------------------------------
const table = tableFromIPC(readFileSync(ARROW_3M))
const col = (name: string) => table.getChild(name)!.data[0]!
const date = col('date').values as BigInt64Array
const origin = col('origin').values as Int32Array
const delay = col('delay').values as BigInt64Array
const dictSize = col('origin').dictionary!.length
const remap = Int32Array.from({ length: dictSize }, (_, i) => i)
const N = table.numRows
for (const name of ['date', 'origin', 'delay']) if (col(name).nullCount > 0) throw new Error(`${name} has nulls: the kernel bench assumes none`)
let seed = 12345
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
const highKeys = BigInt64Array.from({ length: 1 << 20 }, () => BigInt(Math.floor(rnd() * 10_000_000)))

const specs: AccSpec[] = [{ kind: 'count', input: 'none' }, { kind: 'sum', input: 'int64' }, { kind: 'max', input: 'int64' }]
type Card = 'low' | 'medium' | 'high'
const widths = { low: [4], medium: [8, 4], high: [8] } as const

function keysFor(card: Card, a: number, b: number): KeyInput[] {
  if (card === 'low') return [{ kind: 'dict', codes: origin.subarray(a, b), validity: null, remap }]
  if (card === 'medium') return [{ kind: 'tumble', ts: date.subarray(a, b), validity: null, sizeUs: HOUR, startUs: 0n }, { kind: 'dict', codes: origin.subarray(a, b), validity: null, remap }]
  return [highKeys.subarray(0, b - a)]
}
const inputsFor = (a: number, b: number) => [null, { values: delay.subarray(a, b), validity: null }, { values: delay.subarray(a, b), validity: null }]

// --- cases --------------------------------------------------------------------------------------
interface Case {
  group: string
  name: string
  rows: number
  /** what `rows` counts, for the report */
  unit?: string
  fn: () => unknown
  note?: string
}
const k = await Kernels.load()
const cases: Case[] = []
let sink = 0
const tables: GroupTable[] = []
const newTable = (w: readonly (4 | 8)[]) => {
  const t = k.createGroupTable([...w], specs)
  tables.push(t)
  return t
}

// window assignment
for (const S of SIZES) {
  const ts = date.subarray(0, S)
  cases.push({ group: 'window assignment', name: `WASM assignWindows, hourly tumbling, ${S / 1024}k rows`, rows: S, fn: () => (sink += k.assignWindows(ts, null, HOUR, HOUR, 0n).starts.length) })
  cases.push({ group: 'window assignment', name: `WASM assignWindows, 1h window / 10 min slide (6 per row), ${S / 1024}k rows`, rows: S, fn: () => (sink += k.assignWindows(ts, null, HOUR, 600_000_000n, 0n).starts.length) })
  cases.push({
    group: 'window assignment', name: `plain JS (BigInt), hourly tumbling, ${S / 1024}k rows`, rows: S,
    fn: () => {
      const out = new BigInt64Array(S)
      for (let i = 0; i < S; i++) {
        const v = ts[i]!
        let r = v % HOUR
        if (r < 0n) r += HOUR
        out[i] = v - r
      }
      sink += out.length
    },
  })
}

// partial and merge per cardinality, batch size and layout
for (const card of ['low', 'medium', 'high'] as Card[]) {
  for (const S of SIZES) {
    const keys = keysFor(card, 0, S)
    const inputs = inputsFor(0, S)
    const part = newTable(widths[card])
    const layouts: TableLayout[] = ['auto', 'hash', ...(card === 'high' ? (['dense'] as TableLayout[]) : [])]
    let groups = 0
    for (const layout of layouts) {
      part.update(keys, inputs, S, { layout })
      const used = part.lastLayout
      groups = part.numGroups
      part.clear()
      cases.push({
        group: `partial aggregation (${card} cardinality)`, name: `update, ${S / 1024}k rows, layout ${layout}${layout === 'auto' ? ` → ${used}` : ''} (${groups.toLocaleString('en-US')} groups)`, rows: S,
        fn: () => {
          part.update(keys, inputs, S, { layout })
          sink += part.numGroups
          part.clear()
        },
      })
    }
    // the merge source: a partial of this batch, kept (the update cases above clear `part`)
    const src = newTable(widths[card])
    src.update(keys, inputs, S)
    const rows = src.export()
    const state = newTable(widths[card])
    cases.push({
      group: `merge (${card} cardinality)`, name: `merge exported partial (${groups.toLocaleString('en-US')} groups of ${S / 1024}k rows) into a state table`, rows: rows.numGroups, unit: 'groups',
      fn: () => {
        sink += state.merge(rows).length
        state.clear()
      },
    })
    cases.push({
      group: `merge (${card} cardinality)`, name: `mergeTable (same instance, no copy), ${groups.toLocaleString('en-US')} groups of ${S / 1024}k rows`, rows: rows.numGroups, unit: 'groups',
      fn: () => {
        sink += state.mergeTable(src).length
        state.clear()
      },
    })
  }
}

// the flights workload in 250k-row micro-batches
const batches: [number, number][] = []
for (let a = 0; a < N; a += FLIGHTS_BATCH) batches.push([a, Math.min(N, a + FLIGHTS_BATCH)])
{
  const part = newTable([8, 4])
  const state = newTable([8, 4])
  for (const layout of ['auto', 'hash'] as TableLayout[]) {
    cases.push({
      group: 'flights workload (3M rows, 250k-row batches, 1 thread)', name: `update (window start and origin computed in the kernel), layout ${layout}`, rows: N,
      fn: () => {
        for (const [a, b] of batches) {
          part.update(keysFor('medium', a, b), inputsFor(a, b), b - a, { layout })
          sink += part.numGroups
          part.clear()
        }
      },
    })
  }
  cases.push({
    group: 'flights workload (3M rows, 250k-row batches, 1 thread)', name: 'update + mergeTable into state + evict under the watermark (the operator\'s kernel work)', rows: N,
    fn: () => {
      // as the operator: batch N runs with the watermark of batches < N (max event time - 1 hour);
      // windows ending at or before it are late (dropped) and then evicted
      let wmUs = -(1n << 62n)
      for (const [a, b] of batches) {
        part.update(keysFor('medium', a, b), inputsFor(a, b), b - a)
        const ids = state.mergeTable(part, { lane: 0, threshold: wmUs - HOUR })
        part.clear()
        sink += state.exportIds(ids).numGroups
        sink += state.removeWhere(0, wmUs - HOUR).numGroups
        wmUs = date[b - 1]! - HOUR
      }
      state.clear()
    },
  })
  cases.push({
    group: 'flights workload (3M rows, 250k-row batches, 1 thread)', name: 'plain JS Map baseline (same aggregation, per batch)', rows: N,
    fn: () => {
      for (const [a, b] of batches) {
        const groups = new Map<number, number>()
        const cnt: number[] = [], sum: number[] = [], max: number[] = []
        for (let i = a; i < b; i++) {
          const key = Math.floor(Number(date[i]!) / 3_600_000_000) * 1024 + origin[i]!
          let g = groups.get(key)
          const d = Number(delay[i]!)
          if (g === undefined) {
            g = cnt.length
            groups.set(key, g)
            cnt.push(0)
            sum.push(0)
            max.push(-Infinity)
          }
          cnt[g]!++
          sum[g]! += d
          if (d > max[g]!) max[g] = d
        }
        sink += cnt.length
      }
    },
  })
}

// executors: inline vs worker threads, partial aggregation + merge into state per batch
const inline = new InlineExecutor(k)
const pool = await createPiscinaExecutor({ threads: Math.min(2, availableParallelism()), inlineBelowRows: 1 })
{
  const local = new PartialAggregator(k)
  const state = newTable([8, 4])
  const task = (a: number, b: number): PartialAggTask => ({ laneWidths: [8, 4], specs, keys: keysFor('medium', a, b), inputs: inputsFor(a, b), n: b - a })
  for (const [name, ex] of [['InlineExecutor (1 thread)', inline], [`PiscinaExecutor(${pool.threads}): calling thread + ${pool.threads - 1} worker`, pool]] as const) {
    cases.push({
      group: 'flights workload (3M rows, 250k-row batches, 1 thread)', name: `${name}: partialAggregateWith + merge into state + evict`, rows: N,
      fn: async () => {
        for (const [a, b] of batches) {
          const p = await ex.partialAggregateWith(task(a, b), local)
          const late = { lane: 0, threshold: date[a]! - 2n * HOUR } // about the previous batch's watermark
          if (p.table) {
            sink += state.mergeTable(p.table, late).length
            p.table.clear()
          }
          for (const r of p.rows as GroupRows[]) sink += state.merge(r, late).length
          sink += state.removeWhere(0, date[b - 1]! - 2n * HOUR).numGroups
        }
        state.clear()
      },
    })
  }
}

// --- run ----------------------------------------------------------------------------------------
const results: { group: string; name: string; medianMs: number; mRowsPerSec: number; unit: string; samples: number }[] = []
for (const c of cases) {
  const bench = new Bench({ iterations: quick ? 5 : 15, time: quick ? 50 : 300, warmup: true, warmupIterations: quick ? 1 : 3, warmupTime: 0 })
  bench.add(c.name, c.fn)
  await bench.run()
  const t = bench.tasks[0]!
  const r = t.result as { latency?: { p50: number; samplesCount?: number }; error?: unknown; state?: string } | undefined
  const p50 = r?.latency?.p50
  if (p50 === undefined) throw new Error(`${c.name}: ${String((r as { error?: unknown } | undefined)?.error)}`)
  results.push({ group: c.group, name: c.name, medianMs: p50, mRowsPerSec: c.rows / p50 / 1000, unit: c.unit ?? 'rows', samples: (r!.latency as { samplesCount?: number }).samplesCount ?? 0 })
  process.stderr.write(`  ${c.name}: ${p50.toFixed(2)} ms, ${(c.rows / p50 / 1000).toFixed(1)} M ${c.unit ?? 'rows'}/s\n`)
}
await pool.close()
await inline.close()
for (const t of tables) t.dispose()
if (sink === -1) console.error(sink)
console.log(JSON.stringify({ kernels: results, maxRssMB: process.resourceUsage().maxRSS / 1024 }))
