/**
 * One end-to-end engine on one dataset, in its own process (so peak RSS is its own):
 *
 *   tsx bench/e2e.ts <engine> <dataset> --iters N --warmup W [--write-groups FILE | --check-groups FILE] [--what-if …]
 *   tsx bench/e2e.ts <engine> <dataset> --serve …   (runs on command: `warmup` / `run` / `done` lines on stdin)
 *
 * Workload (the main job, examples/flights-hourly.ts): count(*), avg(delay), max(delay) by hourly
 * window of `date` and `origin`. Engines:
 * - sluice-1, sluice-2: Sluice from the Arrow IPC file(s), 250k-row micro-batches, 1-hour
 *   watermark, Append with the end-of-input flush, state checkpointed every batch on disk
 *   (bench/.data/ckpt), output to a memory sink; 1 or 2 threads (sluice.executor.threads).
 * - plain-js: read the Arrow IPC file(s) with apache-arrow, one pass with a Map (no batches, no state).
 * - duckdb-oneshot: one GROUP BY over a table already loaded in DuckDB (2 threads).
 * - duckdb-batch: DuckDB as a micro-batch engine over the same loaded table, 250k rows (by rowid)
 *   per batch, each aggregated and merged into a running state table, with the same watermark,
 *   late-row filter and Append eviction as Sluice (no checkpoint). The state is rebuilt per batch
 *   with UNION ALL + GROUP BY; duckdb-upsert merges with INSERT … ON CONFLICT DO UPDATE instead.
 * - arquero: read the Arrow IPC file(s) (flechette), derive the hour, groupby + rollup.
 *
 * Prints one JSON line: { engine, dataset, timesMs, groups, check, maxRssMB, phases? }.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DATA_DIR, PARQUET, REPLAY_DIR, REPLAY_FILES, REPLAY_SHIFT_DAYS, datasetFiles, datasetRows, type Dataset } from './data.ts'
import { GroupCollector, compareCanonical, readCanonical, writeCanonical } from './groups.ts'
import type { Batch } from '../src/batch.ts'
import { installWhatIf } from './whatif.ts'

const { positionals, values: opt } = parseArgs({
  allowPositionals: true,
  options: {
    iters: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'write-groups': { type: 'string' },
    'check-groups': { type: 'string' },
    'what-if': { type: 'string' },
    serve: { type: 'boolean', default: false },
  },
})
const engine = positionals[0]!
const dataset = (positionals[1] ?? '3m') as Dataset
const iters = Number(opt.iters)
const warmup = Number(opt.warmup)
const files = datasetFiles(dataset)
const HOUR_MS = 3_600_000
const BATCH = 250_000

interface Engine {
  /** One timed run; returns a function that feeds the run's groups to a collector (untimed). */
  run(i: number): Promise<(c: GroupCollector) => void | Promise<void>>
  /** Engine-specific phase times of the last run (ms), if any. */
  phases?(): Record<string, number>
  close(): Promise<void>
}

// ------------------------------------------------------------------------------------------------
// Sluice

async function sluice(threads: number): Promise<Engine> {
  const { SluiceSession, avg, col, count, max, window, NodeFs } = await import('../src/index.node.ts')
  const { AggregateOperator } = await import('../src/exec/aggregate.ts')
  const { StateStore } = await import('../src/state/state-store.ts')
  const variant = installWhatIf((opt['what-if'] ?? '').split(',').filter(Boolean), StateStore)
  // phase timers (wrappers installed here, not in the engine)
  const ph: Record<string, number> = {}
  const timeSync = (obj: Record<string, unknown>, name: string, key: string) => {
    const f = obj[name] as (...a: unknown[]) => unknown
    obj[name] = function (this: unknown, ...a: unknown[]) {
      const t = performance.now()
      const r = f.apply(this, a)
      if (r instanceof Promise) return r.finally(() => (ph[key] = (ph[key] ?? 0) + performance.now() - t))
      ph[key] = (ph[key] ?? 0) + performance.now() - t
      return r
    }
  }
  timeSync(AggregateOperator.prototype as never, 'process', 'aggregate (operator)')
  timeSync(StateStore.prototype as never, 'commit', 'state commit')
  timeSync(NodeFs.prototype as never, 'read', 'file reads (whole, async)')
  timeSync(NodeFs.prototype as never, 'readSync', 'file reads (whole, sync)')
  timeSync(NodeFs.prototype as never, 'readRange', 'file reads (ranges, async)')
  timeSync(NodeFs.prototype as never, 'readRangeSync', 'file reads (ranges, sync)')
  timeSync(NodeFs.prototype as never, 'writeAtomic', 'file writes (atomic)')
  const builder = SluiceSession.builder().appName('bench').config('sluice.executor.threads', String(threads))
  for (const [k, v] of Object.entries(variant.conf)) builder.config(k, v)
  const session = await builder.getOrCreate()
  const input = dataset === '3m' ? files[0]! : REPLAY_DIR
  let progress: Record<string, number> = {}
  session.streams.addListener({
    onQueryProgress({ progress: p }) {
      for (const [k, v] of Object.entries(p.durationMs)) progress[k] = (progress[k] ?? 0) + (v as number)
      progress.batches = (progress.batches ?? 0) + 1
    },
  })
  return {
    async run(i) {
      for (const k of Object.keys(ph)) delete ph[k]
      progress = {}
      const ck = join(DATA_DIR, 'ckpt', `${engine}-${process.pid}-${i}`)
      rmSync(ck, { recursive: true, force: true })
      // output through foreachBatch; the batches are kept for the group check (last run only)
      const kept: Batch[] = []
      const query = await session.readStream.format('arrow').option('maxRowsPerTrigger', BATCH).load(input)
        .withWatermark('date', '1 hour')
        .groupBy(window(col('date'), '1 hour'), col('origin'))
        .agg(count('*').as('flights'), avg('delay').as('avg_delay'), max('delay').as('max_delay'))
        .select(col('window.start').as('window_start'), col('window.end').as('window_end'), col('origin'), col('flights'), col('avg_delay'), col('max_delay'))
        .writeStream.outputMode('append')
        .foreachBatch(async (df) => {
          kept.push(await df.collectBatch())
        })
        .option('checkpointLocation', ck).option('flushAtEnd', true).trigger({ availableNow: true })
        .start()
      await query.awaitTermination()
      return (c) => {
        rmSync(ck, { recursive: true, force: true })
        for (const b of kept) sluiceGroups(b, c)
      }
    },
    phases: () => ({ ...Object.fromEntries(Object.entries(progress).map(([k, v]) => [`progress.${k}`, v])), ...ph }),
    async close() {
      await session.stop()
    },
  }
}

/** Groups of a Sluice output batch (window_start µs, origin, flights, avg_delay, max_delay). */
function sluiceGroups(b: Batch, c: GroupCollector): void {
  const col = (n: string) => b.columns[b.schema.findIndex((f) => f.name === n)]!
  const ws = col('window_start').values as BigInt64Array
  const origin = col('origin')
  const flights = col('flights').values as BigInt64Array
  const avgC = col('avg_delay')
  const maxC = col('max_delay')
  const valid = (v: Uint8Array | null, i: number) => v === null || (v[i >> 3]! & (1 << (i & 7))) !== 0
  for (let i = 0; i < b.numRows; i++) {
    c.add(
      Number(ws[i]! / 1000n),
      valid(origin.validity, i) ? origin.dictionary![(origin.values as Int32Array)[i]!]! : null,
      Number(flights[i]!),
      valid(avgC.validity, i) ? (avgC.values as Float64Array)[i]! : null,
      valid(maxC.validity, i) ? Number((maxC.values as BigInt64Array)[i]!) : null,
    )
  }
}

// ------------------------------------------------------------------------------------------------
// plain JS

async function plainJs(): Promise<Engine> {
  const { tableFromIPC } = await import('apache-arrow')
  const valid = (bm: Uint8Array | null | undefined, off: number, i: number) => bm == null || (bm[(off + i) >> 3]! & (1 << ((off + i) & 7))) !== 0
  return {
    async run() {
      // key: hour * 65536 + origin id (0 = null); accumulators in arrays by group index
      const groups = new Map<number, number>()
      const originIds = new Map<string, number>()
      const originNames: (string | null)[] = [null]
      const cnt: number[] = [], sum: number[] = [], nn: number[] = [], mx: number[] = [], keys: number[] = []
      for (const file of files) {
        const table = tableFromIPC(readFileSync(file))
        for (const rb of table.batches) {
          const dateD = rb.getChild('date')!.data[0]!
          const originD = rb.getChild('origin')!.data[0]!
          const delayD = rb.getChild('delay')!.data[0]!
          const date = dateD.values as BigInt64Array
          const codes = originD.values as Int32Array
          const delay = delayD.values as BigInt64Array
          const dateNulls = dateD.nullCount > 0 ? dateD.nullBitmap : null
          const originNulls = originD.nullCount > 0 ? originD.nullBitmap : null
          const delayNulls = delayD.nullCount > 0 ? delayD.nullBitmap : null
          // this batch's dictionary codes → global origin ids
          const dict = originD.dictionary!
          const remap = new Int32Array(dict.length)
          for (let k = 0; k < dict.length; k++) {
            const s = dict.get(k) as string
            let id = originIds.get(s)
            if (id === undefined) {
              id = originNames.length
              originNames.push(s)
              originIds.set(s, id)
            }
            remap[k] = id
          }
          for (let i = 0; i < rb.numRows; i++) {
            if (!valid(dateNulls, dateD.offset, i)) continue
            const ms = Number(date[i]!) / 1000
            const hour = Math.floor(ms / HOUR_MS)
            const key = hour * 65536 + (valid(originNulls, originD.offset, i) ? remap[codes[i]!]! : 0)
            let g = groups.get(key)
            if (g === undefined) {
              g = cnt.length
              groups.set(key, g)
              keys.push(key)
              cnt.push(0)
              sum.push(0)
              nn.push(0)
              mx.push(-Infinity)
            }
            cnt[g]!++
            if (valid(delayNulls, delayD.offset, i)) {
              const d = Number(delay[i]!)
              sum[g]! += d
              nn[g]!++
              if (d > mx[g]!) mx[g] = d
            }
          }
        }
      }
      return (c) => {
        for (let g = 0; g < cnt.length; g++) {
          const k = keys[g]!
          const has = nn[g]! > 0
          c.add(Math.floor(k / 65536) * HOUR_MS, originNames[k % 65536]!, cnt[g]!, has ? sum[g]! / nn[g]! : null, has ? mx[g]! : null)
        }
      }
    },
    async close() {},
  }
}

// ------------------------------------------------------------------------------------------------
// DuckDB

async function duckdb(mode: 'oneshot' | 'batch' | 'upsert'): Promise<Engine> {
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' })
  const c = await inst.connect()
  // load the table once (not timed): the flights file, or its 30M replay with shifted dates
  const copies = dataset === '3m' ? 1 : REPLAY_FILES
  await c.run(`CREATE TABLE flights AS SELECT * FROM read_parquet('${PARQUET}') LIMIT 0`)
  for (let k = 0; k < copies; k++) {
    await c.run(`INSERT INTO flights SELECT * REPLACE (date + INTERVAL ${k * REPLAY_SHIFT_DAYS} DAY AS date) FROM read_parquet('${PARQUET}')`)
  }
  const n = datasetRows(dataset)
  type Reader = Awaited<ReturnType<typeof c.runAndReadAll>>
  const feed = (readers: Reader[]) => (col: GroupCollector) => {
    for (const r of readers) {
      for (const row of r.getRows()) {
        col.add(Number(row[0] as bigint), row[1] as string | null, Number(row[2] as bigint), row[3] as number | null, row[4] === null ? null : Number(row[4] as bigint))
      }
    }
  }
  const H = 3_600_000_000n
  return {
    async run() {
      if (mode === 'oneshot') {
        const r = await c.runAndReadAll(`SELECT epoch_ms(date_trunc('hour', date)) AS ws, origin, count(*) AS n, avg(delay) AS a, max(delay) AS m
          FROM flights WHERE date IS NOT NULL GROUP BY ALL`)
        return feed([r])
      }
      // micro-batches by rowid, watermark = max event time of the previous batches - 1 hour
      if (mode === 'upsert') await c.run(`CREATE OR REPLACE TEMP TABLE st (ws BIGINT, origin VARCHAR, n BIGINT, s HUGEINT, c BIGINT, m BIGINT, PRIMARY KEY (ws, origin))`)
      else await c.run(`CREATE OR REPLACE TEMP TABLE st (ws BIGINT, origin VARCHAR, n BIGINT, s HUGEINT, c BIGINT, m BIGINT)`)
      const out: Reader[] = []
      let wm = -(2n ** 62n)
      let maxTs = -(2n ** 62n)
      for (let a = 0; ; a += BATCH) {
        const last = a >= n
        if (!last) {
          const batchAgg = `SELECT * FROM (SELECT epoch_us(date_trunc('hour', date)) AS ws, origin, count(*) AS n, sum(delay)::HUGEINT AS s, count(delay) AS c, max(delay) AS m
            FROM flights WHERE rowid >= ${a} AND rowid < ${a + BATCH} AND date IS NOT NULL GROUP BY ALL) WHERE ws + ${H} > ${wm}`
          const mx = (await c.runAndReadAll(`SELECT epoch_us(max(date)) FROM flights WHERE rowid >= ${a} AND rowid < ${a + BATCH}`)).getRows()[0]![0] as bigint | null
          if (mode === 'upsert') {
            await c.run(`INSERT INTO st ${batchAgg} ON CONFLICT DO UPDATE SET n = n + excluded.n, s = s + excluded.s, c = c + excluded.c, m = greatest(m, excluded.m)`)
          } else {
            await c.run(`CREATE OR REPLACE TEMP TABLE st AS SELECT ws, origin, sum(n)::BIGINT AS n, sum(s)::HUGEINT AS s, sum(c)::BIGINT AS c, max(m) AS m
              FROM (SELECT * FROM st UNION ALL ${batchAgg}) GROUP BY ALL`)
          }
          if (mx !== null && mx > maxTs) maxTs = mx
        }
        const thr = last ? 2n ** 62n : wm
        out.push(await c.runAndReadAll(`SELECT ws // 1000, origin, n, CASE WHEN c = 0 THEN NULL ELSE CAST(s AS DOUBLE) / c END, m FROM st WHERE ws + ${H} <= ${thr}`))
        await c.run(`DELETE FROM st WHERE ws + ${H} <= ${thr}`)
        wm = maxTs - H
        if (last) break
      }
      return feed(out)
    },
    async close() {
      c.closeSync()
      inst.closeSync()
    },
  }
}

// ------------------------------------------------------------------------------------------------
// Arquero

async function arquero(): Promise<Engine> {
  const aq = await import('arquero')
  const op = aq.op
  return {
    async run() {
      let dt = aq.fromArrow(readFileSync(files[0]!), { columns: ['date', 'origin', 'delay'], useDate: false })
      for (const f of files.slice(1)) dt = dt.concat(aq.fromArrow(readFileSync(f), { columns: ['date', 'origin', 'delay'], useDate: false }))
      const out = dt
        .filter((d: { date: number | null }) => d.date != null)
        .derive({ ws: (d: { date: number }) => op.floor(d.date / 3600000) * 3600000 })
        .groupby('ws', 'origin')
        .rollup({ n: op.count(), a: op.mean('delay'), m: op.max('delay') })
      return (c) => {
        const ws = out.array('ws') as ArrayLike<number>
        const origin = out.array('origin') as ArrayLike<string | null>
        const nn = out.array('n') as ArrayLike<number>
        const a = out.array('a') as ArrayLike<number | undefined>
        const m = out.array('m') as ArrayLike<number | undefined>
        for (let i = 0; i < out.numRows(); i++) c.add(ws[i]!, origin[i] ?? null, nn[i]!, a[i] ?? null, m[i] ?? null)
      }
    },
    async close() {},
  }
}

// ------------------------------------------------------------------------------------------------

async function makeEngine(): Promise<Engine> {
  switch (engine) {
    case 'sluice-1': return sluice(1)
    case 'sluice-2': return sluice(2)
    case 'plain-js': return plainJs()
    case 'duckdb-oneshot': return duckdb('oneshot')
    case 'duckdb-batch': return duckdb('batch')
    case 'duckdb-upsert': return duckdb('upsert')
    case 'arquero': return arquero()
    default: throw new Error(`unknown engine ${engine}`)
  }
}

const e = await makeEngine()
const times: number[] = []
let feed: ((c: GroupCollector) => void | Promise<void>) | null = null
let phases: Record<string, number> | undefined
let runs = 0

/** One run (timed or warm-up); keeps the last run's output for the group check. */
async function runOnce(timed: boolean): Promise<number> {
  const i = runs++
  if (i > 0 && engine.startsWith('sluice')) rmSync(join(DATA_DIR, 'ckpt', `${engine}-${process.pid}-${i - 1}`), { recursive: true, force: true })
  feed = null
  const t0 = performance.now()
  const f = await e.run(i)
  const ms = performance.now() - t0
  if (timed) times.push(ms)
  feed = f
  phases = e.phases?.()
  return ms
}

/** The group check on the last run (not timed), then the result line. */
async function finish(): Promise<void> {
  const collector = new GroupCollector()
  await feed!(collector)
  await e.close()
  const canonical = collector.finish()
  let check: string
  if (opt['write-groups']) {
    writeCanonical(opt['write-groups'], canonical)
    check = 'reference'
  } else if (opt['check-groups']) {
    check = compareCanonical(canonical, readCanonical(opt['check-groups'])) ?? 'ok'
  } else check = 'unchecked'
  const maxRssMB = process.resourceUsage().maxRSS / 1024
  const whatIf = opt['what-if'] ? { whatIf: opt['what-if'] } : {}
  console.log(JSON.stringify({ engine, dataset, ...whatIf, timesMs: times, groups: canonical.n, check, maxRssMB, ...(phases ? { phases } : {}) }))
}

if (opt.serve) {
  // driven by bench/run.ts, one command per stdin line: warmup | run | done (engines interleaved)
  console.log(JSON.stringify({ ready: true }))
  const { createInterface } = await import('node:readline')
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = line.trim()
    if (cmd === 'done') {
      await finish()
      process.exit(0) // stdin stays open (the driver's pipe)
    }
    console.log(JSON.stringify({ ms: await runOnce(cmd === 'run') }))
  }
} else {
  for (let i = 0; i < warmup; i++) await runOnce(false)
  for (let i = 0; i < iters; i++) await runOnce(true)
  await finish()
}
