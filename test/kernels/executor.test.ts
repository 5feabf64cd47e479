// Needs `npm run build` (build/worker.mjs); package.json's pretest runs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InlineExecutor, type Executor, type PartialAggTask } from '../../src/kernels/executor.ts'
import { Kernels, type AccSpec, type GroupRows, type LaneWidth } from '../../src/kernels/kernels.ts'
import { createPiscinaExecutor } from '../../src/kernels/piscina-executor.ts'
import { byKey } from './reference.ts'

let k: Kernels
let inline: InlineExecutor
let pool: Executor

beforeAll(async () => {
  k = await Kernels.load()
  inline = new InlineExecutor(k)
  pool = await createPiscinaExecutor({ threads: 2, inlineBelowRows: 1000 })
})

afterAll(async () => {
  await inline?.close()
  await pool?.close()
})

function makeTask(n: number, seed: number): PartialAggTask {
  let s = seed
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296)
  const laneWidths: LaneWidth[] = [8, 4]
  const specs: AccSpec[] = [
    { kind: 'count', input: 'none' },
    { kind: 'sum', input: 'int64' },
    { kind: 'max', input: 'int64' },
    { kind: 'min', input: 'float64' },
    { kind: 'count', input: 'int32' },
  ]
  const win = BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.floor(i / 700)) * 3_600_000_000n)
  const origin = Int32Array.from({ length: n }, () => Math.floor(229 * rnd() ** 3))
  const delay = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rnd() * 400) - 60))
  const f = Float64Array.from({ length: n }, () => (rnd() < 0.01 ? NaN : Math.floor(rnd() * 1000)))
  const i32 = Int32Array.from({ length: n }, (_, i) => i)
  const validity = new Uint8Array((n + 7) >> 3)
  for (let i = 0; i < n; i++) if (rnd() > 0.2) validity[i >> 3]! |= 1 << (i & 7)
  return {
    laneWidths,
    specs,
    keys: [win, origin],
    inputs: [null, { values: delay, validity }, { values: delay, validity: null }, { values: f, validity }, { values: i32, validity }],
    n,
  }
}

function mergeAll(parts: GroupRows[], task: PartialAggTask): GroupRows {
  const t = k.createGroupTable(task.laneWidths, task.specs)
  try {
    for (const p of parts) t.merge(p)
    return t.export()
  } finally {
    t.dispose()
  }
}

describe('executors', () => {
  it('InlineExecutor returns one partial equal to a direct aggregation', async () => {
    const task = makeTask(5000, 1)
    const parts = await inline.partialAggregate(task)
    expect(parts.length).toBe(1)
    const t = k.createGroupTable(task.laneWidths, task.specs)
    t.update(task.keys, task.inputs, task.n)
    expect(byKey(parts[0]!)).toEqual(byKey(t.export()))
    t.dispose()
  })

  it('PiscinaExecutor partials, merged, equal the InlineExecutor result', async () => {
    expect(pool.threads).toBe(2)
    for (const [n, seed] of [[100_003, 7], [250_000, 8], [1001, 9]] as const) {
      const task = makeTask(n, seed)
      const want = byKey(mergeAll(await inline.partialAggregate(task), task))
      const parts = await pool.partialAggregate(task)
      expect(parts.length).toBe(2)
      expect(parts.reduce((s, p) => s + Number(p.accs[0]!.count.reduce((a, c) => a + c, 0n)), 0)).toBe(n)
      expect(byKey(mergeAll(parts, task))).toEqual(want)
      // the caller's arrays are untouched (slices were copied before transfer)
      expect((task.keys[0] as BigInt64Array).length).toBe(n)
    }
  })

  it('partialAggregateWith: the calling thread\'s share stays in the caller\'s table, the rest comes as rows', async () => {
    const { PartialAggregator } = await import('../../src/kernels/executor.ts')
    const local = new PartialAggregator(k)
    try {
      for (const [n, seed, parallel] of [[100_003, 11, true], [250_000, 12, true], [250_000, 13, false], [999, 14, true]] as const) {
        const task = makeTask(n, seed)
        const want = byKey(mergeAll(await inline.partialAggregate(task), task))
        const p = await pool.partialAggregateWith(task, local, { parallel })
        expect(p.table).not.toBeNull()
        expect(p.rows.length).toBe(parallel && n >= 1000 ? 1 : 0)
        const t = k.createGroupTable(task.laneWidths, task.specs)
        try {
          t.mergeTable(p.table!)
          p.table!.clear()
          for (const r of p.rows) t.merge(r)
          expect(byKey(t.export())).toEqual(want)
        } finally {
          t.dispose()
        }
      }
    } finally {
      local.dispose()
    }
  })

  it('small tasks run inline and concurrent tasks do not interfere', async () => {
    const small = makeTask(999, 3)
    expect((await pool.partialAggregate(small)).length).toBe(1)
    const tasks = [makeTask(40_000, 4), makeTask(60_000, 5), makeTask(80_000, 6)]
    const results = await Promise.all(tasks.map((t) => pool.partialAggregate(t)))
    for (let i = 0; i < tasks.length; i++) {
      const want = byKey(mergeAll(await inline.partialAggregate(tasks[i]!), tasks[i]!))
      expect(byKey(mergeAll(results[i]!, tasks[i]!))).toEqual(want)
    }
  })
})

describe('ParallelismTuner', () => {
  const run = (t: { choose(): boolean; record(split: boolean, ms: number, rows: number): void }, n: number, ms: (split: boolean) => number): boolean[] => {
    const picks: boolean[] = []
    for (let i = 0; i < n; i++) {
      const split = t.choose()
      picks.push(split)
      t.record(split, ms(split), 1000)
    }
    return picks
  }

  it('tries both choices, then keeps the cheaper one and probes the other now and then', async () => {
    const { ParallelismTuner } = await import('../../src/kernels/executor.ts')
    expect(new ParallelismTuner(1).choose()).toBe(false)
    const picks = run(new ParallelismTuner(2, 4), 40, (split) => (split ? 4 : 5)) // splitting is a little cheaper
    expect(picks.slice(0, 2)).toEqual([false, true]) // one sample of each first
    const later = picks.slice(2)
    expect(later.filter((p) => !p).length).toBe(Math.floor(later.length / 4)) // a probe every 4 batches
  })

  it('probes a clearly worse choice less and less often, and again often once it wins', async () => {
    const { ParallelismTuner } = await import('../../src/kernels/executor.ts')
    const t = new ParallelismTuner(2, 4, 64)
    // splitting costs 4× (a dense batch): probes back off 4, 8, 16, 32, 64, 64, …
    const picks = run(t, 400, (split) => (split ? 20 : 5))
    expect(picks.filter(Boolean).length).toBeLessThanOrEqual(12) // a fixed interval of 4 would split ~100 times
    expect(picks.slice(200).filter(Boolean).length).toBeGreaterThanOrEqual(2) // still probing
    // now splitting is much cheaper: the next probe finds it and it is kept
    const after = run(t, 200, (split) => (split ? 1 : 5))
    expect(after.slice(100).filter(Boolean).length).toBeGreaterThan(90)
  })
})
