// AggregateOperator directly (no stream loop): the fused window/dictionary lanes on real-shaped
// batches equal a plain computation, prepare()/process() equals process(), and 2 threads (split
// or not, as the tuner decides) equal 1 thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Batch, Column, Schema } from '../../src/batch.ts'
import { AggregateOperator } from '../../src/exec/aggregate.ts'
import { InlineExecutor, type Executor } from '../../src/kernels/executor.ts'
import { Kernels } from '../../src/kernels/kernels.ts'
import { createPiscinaExecutor } from '../../src/kernels/piscina-executor.ts'
import { avg, col, count, max, window } from '../../src/index.node.ts'

let k: Kernels
let inline: Executor
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

const HOUR_US = 3_600_000_000n
const schema: Schema = [
  { name: 'date', type: 'timestamp', nullable: true },
  { name: 'origin', type: 'string', nullable: true },
  { name: 'delay', type: 'int64', nullable: true },
]
const expr = (c: unknown) => (c as { expr: unknown }).expr as never

/** Batches of ~n rows over consecutive hours; some null dates, origins and delays; late rows. */
function makeBatches(nBatches: number, n: number, seed: number): Batch[] {
  let s = seed
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296)
  const out: Batch[] = []
  const t0 = 978_307_260_000_000n
  for (let b = 0; b < nBatches; b++) {
    // each batch its own dictionary, in a different order
    const dict = ['ATL', 'ORD', 'LAX', 'DFW', 'SFO', `X${b}`].sort(() => rnd() - 0.5)
    const date = new BigInt64Array(n)
    const codes = new Int32Array(n)
    const delay = new BigInt64Array(n)
    const vDate = new Uint8Array((n + 7) >> 3).fill(0xff)
    const vOrigin = new Uint8Array((n + 7) >> 3).fill(0xff)
    const vDelay = new Uint8Array((n + 7) >> 3).fill(0xff)
    for (let i = 0; i < n; i++) {
      const late = rnd() < 0.02 ? -BigInt(Math.floor(rnd() * 5)) * HOUR_US : 0n
      date[i] = t0 + BigInt(b * n + i) * 4_000_000n + late
      codes[i] = Math.floor(rnd() * dict.length)
      delay[i] = BigInt(Math.floor(rnd() * 200) - 30)
      if (rnd() < 0.01) vDate[i >> 3]! &= ~(1 << (i & 7))
      if (rnd() < 0.03) vOrigin[i >> 3]! &= ~(1 << (i & 7))
      if (rnd() < 0.05) vDelay[i >> 3]! &= ~(1 << (i & 7))
    }
    const columns: Column[] = [
      { type: 'timestamp', length: n, values: date, validity: vDate },
      { type: 'string', length: n, values: codes, validity: vOrigin, dictionary: dict },
      { type: 'int64', length: n, values: delay, validity: vDelay },
    ]
    out.push({ schema, columns, numRows: n })
  }
  return out
}

function operator(ex: Executor): AggregateOperator {
  return new AggregateOperator(k, ex, schema, [expr(window(col('date'), '1 hour')), expr(col('origin'))], [expr(count('*')), expr(avg('delay')), expr(max('delay'))], new Set(['window']), 'append')
}

/** Output rows as sorted strings. */
function rows(batches: Batch[]): string[] {
  const out: string[] = []
  for (const b of batches) {
    const w = b.columns[0]!.children!
    const o = b.columns[1]!
    for (let i = 0; i < b.numRows; i++) {
      const origin = o.validity !== null && (o.validity[i >> 3]! & (1 << (i & 7))) === 0 ? null : o.dictionary![(o.values as Int32Array)[i]!]
      const vals = b.columns.slice(2).map((c) => (c.validity !== null && (c.validity[i >> 3]! & (1 << (i & 7))) === 0 ? null : String((c.values as ArrayLike<unknown>)[i])))
      out.push(JSON.stringify([String((w.start.values as BigInt64Array)[i]), String((w.end.values as BigInt64Array)[i]), origin, ...vals]))
    }
  }
  return out.sort()
}

async function run(ex: Executor, batches: Batch[], prepared: boolean, background = false): Promise<{ out: string[]; dropped: number }> {
  const op = operator(ex)
  const outs: Batch[] = []
  let dropped = 0
  let wm = 0
  try {
    let next = prepared ? op.prepare(batches[0]!, { background }) : undefined
    for (let b = 0; b < batches.length; b++) {
      const r = await op.process(batches[b]!, wm, next)
      // as a pipelined loop would: prepare the next batch before using this one's results
      next = prepared && b + 1 < batches.length ? op.prepare(batches[b + 1]!, { background }) : undefined
      outs.push(r.output)
      dropped += r.metrics.numRowsDroppedByWatermark
      const d = batches[b]!.columns[0]!
      let mx = -Infinity
      for (let i = 0; i < d.length; i++) if ((d.validity![i >> 3]! & (1 << (i & 7))) !== 0) mx = Math.max(mx, Number((d.values as BigInt64Array)[i]! / 1000n))
      wm = Math.max(wm, mx - 3_600_000)
    }
    outs.push((await op.process({ schema, columns: schema.map((f) => ({ type: f.type, length: 0, values: new BigInt64Array(0), validity: null, ...(f.type === 'string' ? { values: new Int32Array(0), dictionary: [] } : {}) })), numRows: 0 }, 8_640_000_000_000_000)).output)
  } finally {
    op.dispose()
  }
  return { out: rows(outs), dropped }
}

/** The same groups computed in plain JS (no watermark: for inputs where nothing is late). */
function plain(batches: Batch[]): string[] {
  const g = new Map<string, { n: number; s: number; c: number; m: number }>()
  for (const b of batches) {
    const [d, o, dl] = b.columns as [Column, Column, Column]
    for (let i = 0; i < b.numRows; i++) {
      const ok = (v: Uint8Array | null) => v === null || (v[i >> 3]! & (1 << (i & 7))) !== 0
      if (!ok(d.validity)) continue
      const us = (d.values as BigInt64Array)[i]!
      const start = us - (((us % HOUR_US) + HOUR_US) % HOUR_US)
      const origin = ok(o.validity) ? o.dictionary![(o.values as Int32Array)[i]!]! : null
      const key = JSON.stringify([String(start), String(start + HOUR_US), origin])
      const a = g.get(key) ?? { n: 0, s: 0, c: 0, m: -Infinity }
      a.n++
      if (ok(dl.validity)) {
        const v = Number((dl.values as BigInt64Array)[i]!)
        a.s += v
        a.c++
        a.m = Math.max(a.m, v)
      }
      g.set(key, a)
    }
  }
  return [...g].map(([k, a]) => JSON.stringify([...(JSON.parse(k) as unknown[]), String(a.n), a.c === 0 ? null : String(a.s / a.c), a.c === 0 ? null : String(a.m)])).sort()
}

describe('AggregateOperator', () => {
  it('equals a plain computation when nothing is late (one batch, tumbling window and string key computed in the kernel)', async () => {
    const batches = makeBatches(1, 20_000, 3)
    expect((await run(inline, batches, false)).out).toEqual(plain(batches))
  })

  it('prepare() then process() equals process(); 2 threads equal 1 thread; late rows are dropped alike', async () => {
    const batches = makeBatches(8, 30_000, 5)
    const base = await run(inline, batches, false)
    expect(base.dropped).toBeGreaterThan(0)
    expect(await run(inline, batches, true)).toEqual(base)
    expect(await run(pool, batches, false)).toEqual(base)
    expect(await run(pool, batches, true)).toEqual(base)
    // prepared in the background (as the loop's read-ahead does): the tuner judges by the calling thread's time
    expect(await run(pool, batches, true, true)).toEqual(base)
  })

  it('state changes (upserts, then the eviction predicate) replayed batch by batch rebuild the state', async () => {
    const batches = makeBatches(6, 30_000, 11)
    const op = operator(inline)
    // state rows (state schema) as key → values strings
    const entries = (b: Batch): [string, string][] => {
      const out: [string, string][] = []
      for (let i = 0; i < b.numRows; i++) {
        const cell = (c: Column): string => {
          if (c.validity !== null && (c.validity[i >> 3]! & (1 << (i & 7))) === 0) return 'null'
          if (c.type === 'window') return String((c.children!.start.values as BigInt64Array)[i])
          if (c.type === 'string') return c.dictionary![(c.values as Int32Array)[i]!]!
          return String((c.values as ArrayLike<unknown>)[i])
        }
        out.push([b.columns.slice(0, 2).map(cell).join('|'), b.columns.slice(2).map(cell).join('|')])
      }
      return out
    }
    try {
      const replayed = new Map<string, string>()
      let wm = 0
      for (const batch of batches) {
        const r = await op.process(batch, wm)
        for (const [k, v] of entries(r.changes.upserts)) replayed.set(k, v)
        const ev = r.changes.evicted
        expect(r.changes.removedKeys).toBeUndefined()
        let evicted = 0
        if (ev !== undefined) {
          expect(ev.key).toBe(0) // the window
          for (const k of [...replayed.keys()]) {
            if (BigInt(k.split('|')[0]!) <= ev.atOrBelow) {
              replayed.delete(k)
              evicted++
            }
          }
        }
        expect(evicted).toBe(r.metrics.numRowsRemoved)
        expect(new Map(entries(op.snapshot()))).toEqual(replayed)
        const d = batch.columns[0]!.values as BigInt64Array
        wm = Math.max(wm, Number(d[d.length - 1]! / 1000n) - 3_600_000)
      }
    } finally {
      op.dispose()
    }
  })

  it('refuses a second outstanding prepared batch, and discard releases one', async () => {
    const [a, b] = makeBatches(2, 5_000, 9)
    const op = operator(inline)
    try {
      const p = op.prepare(a!)
      expect(() => op.prepare(b!)).toThrow(/outstanding/)
      await expect(op.process(b!, 0, p)).rejects.toThrow(/not this input/)
      await op.discard(p)
      const r = await op.process(b!, 0)
      expect(r.metrics.numRowsTotal).toBeGreaterThan(0)
    } finally {
      op.dispose()
    }
  })
})
