/**
 * The dense table layout and the computed key lanes (tumbling windows, dictionary codes) against
 * the plain-TS reference: 'dense', 'hash' and 'auto' updates must give exactly the reference's
 * groups, in the same (first-seen) order, and leave the table usable by every other operation.
 * Also: merge with a late filter, and table-to-table merges.
 */
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { KernelError } from '../../src/errors.ts'
import {
  Kernels, type AccInputColumn, type AccSpec, type DictLane, type GroupRows, type GroupTable, type KeyInput, type KeyLane, type LaneWidth,
  type TableLayout, type TumbleLane,
} from '../../src/kernels/kernels.ts'
import { RefTable, isValidAt, plain } from './reference.ts'

let k: Kernels

beforeAll(async () => {
  k = await Kernels.load()
})

const I64_MAX = 0x7fffffffffffffffn
const I64_MIN = -0x8000000000000000n
const HOUR = 3_600_000_000n

const SPECS: AccSpec[] = [
  { kind: 'count', input: 'none' },
  ...(['count', 'sum', 'min', 'max'] as const).flatMap((kind) => (['int32', 'int64', 'float64'] as const).map((input) => ({ kind, input }))),
]

class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed >>> 0 || 1
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!
  }
  u64(): bigint {
    return BigInt.asIntN(64, (BigInt(this.int(0, 0xffffffff)) << 32n) | BigInt(this.int(0, 0xffffffff)))
  }
}

/** Spark's window start as the kernel computes it (i64 arithmetic, wrapping). */
function refWindowStart(ts: bigint, start: bigint, size: bigint): bigint {
  let r = BigInt.asIntN(64, ts - start) % size
  if (r < 0n) r += size
  return BigInt.asIntN(64, ts - r)
}

type LaneKind = 'i32' | 'i64' | 'tumble' | 'dict'
const widthOf = (kind: LaneKind): LaneWidth => (kind === 'i32' || kind === 'dict' ? 4 : 8)

/** Per-lane generator settings fixed for a table (so batches share keys). */
interface LaneGen {
  kind: LaneKind
  make(r: Rng, n: number): KeyInput
}

function validityOf(r: Rng, n: number, pNull: number): Uint8Array | null {
  if (pNull === 0 && r.next() < 0.5) return null
  const v = new Uint8Array((n + 7) >> 3)
  for (let i = 0; i < n; i++) if (r.next() >= pNull) v[i >> 3]! |= 1 << (i & 7)
  return v
}

function laneGen(r: Rng, kind: LaneKind): LaneGen {
  if (kind === 'i32') {
    const wide = r.next() < 0.3
    return { kind, make: (x, n) => Int32Array.from({ length: n }, () => (wide ? x.int(-2147483648, 2147483647) : x.int(-5, 40))) }
  }
  if (kind === 'i64') {
    const mode = r.int(0, 2)
    return {
      kind,
      make: (x, n) => BigInt64Array.from({ length: n }, () => (mode === 0 ? BigInt(x.int(-3, 30)) : mode === 1 ? x.pick([I64_MIN, I64_MAX, 0n, -1n]) : x.u64())),
    }
  }
  if (kind === 'tumble') {
    const sizeUs = r.pick([1n, 7n, 1000n, HOUR, 1n << 40n, I64_MAX])
    const startUs = r.pick([0n, 5n, -3n, 600_000_000n, I64_MIN, I64_MAX])
    const mode = r.int(0, 3)
    const pNull = r.pick([0, 0, 0.1, 0.5, 1])
    const t0 = BigInt(r.int(-1000, 1000)) * HOUR
    return {
      kind,
      make: (x, n): TumbleLane => {
        const ts = new BigInt64Array(n)
        for (let i = 0; i < n; i++) {
          // mostly ordered with jitter; random; edges; a few far outliers
          if (mode === 0) ts[i] = t0 + BigInt(i) * 997_000_000n + BigInt(x.int(-2_000_000_000, 2_000_000_000))
          else if (mode === 1) ts[i] = t0 + BigInt(x.int(-50, 50)) * BigInt(x.int(1, 100_000_000))
          else if (mode === 2) ts[i] = x.pick([I64_MIN, I64_MAX, 0n, -1n, 1n, I64_MIN + 1n, I64_MAX - 1n])
          else ts[i] = x.next() < 0.05 ? x.u64() : t0 + BigInt(x.int(0, 20)) * HOUR
        }
        return { kind: 'tumble', ts, validity: validityOf(x, n, pNull), sizeUs, startUs }
      },
    }
  }
  const size = r.pick([0, 1, 3, 229, 1000])
  const collide = r.next() < 0.3
  const negative = r.next() < 0.1
  const remap = Int32Array.from({ length: size }, (_, i) => (negative && i === 0 ? -1 : collide ? r.int(0, 3) : 5 + i * 2))
  const pNull = size === 0 ? 1 : r.pick([0, 0, 0.1, 1])
  return {
    kind,
    make: (x, n): DictLane => {
      const validity = validityOf(x, n, pNull) ?? (size === 0 ? new Uint8Array((n + 7) >> 3) : null)
      const codes = Int32Array.from({ length: n }, (_, i) => (size === 0 || !isValidAt(validity, i) ? x.int(-9, 9) : x.int(0, size - 1)))
      return { kind: 'dict', codes, validity, remap }
    },
  }
}

function inputsFor(r: Rng, specs: readonly AccSpec[], n: number): (AccInputColumn | null)[] {
  return specs.map((s): AccInputColumn | null => {
    if (s.input === 'none') return null
    let values: Int32Array | BigInt64Array | Float64Array
    if (s.input === 'int32') values = Int32Array.from({ length: n }, () => r.int(-1000, 1000))
    else if (s.input === 'int64') values = BigInt64Array.from({ length: n }, () => (r.next() < 0.1 ? r.u64() : BigInt(r.int(-1000, 1000))))
    else values = Float64Array.from({ length: n }, () => (r.next() < 0.05 ? NaN : r.int(-1000, 1000) / 4))
    return { values, validity: validityOf(r, n, r.pick([0, 0.2])) }
  })
}

/** The reference's view of an update: materialised lanes, rows without a window left out. */
function materialise(keys: readonly KeyInput[], inputs: readonly (AccInputColumn | null)[], n: number): { keys: KeyLane[]; inputs: (AccInputColumn | null)[]; n: number } {
  const rows: number[] = []
  for (let i = 0; i < n; i++) {
    if (keys.every((l) => ArrayBuffer.isView(l) || l.kind !== 'tumble' || isValidAt(l.validity, i))) rows.push(i)
  }
  const lanes = keys.map((l): KeyLane => {
    if (ArrayBuffer.isView(l)) return l instanceof BigInt64Array ? BigInt64Array.from(rows, (i) => l[i]!) : Int32Array.from(rows, (i) => l[i]!)
    if (l.kind === 'tumble') return BigInt64Array.from(rows, (i) => refWindowStart(l.ts[i]!, l.startUs, l.sizeUs))
    return Int32Array.from(rows, (i) => (isValidAt(l.validity, i) ? l.remap[l.codes[i]!]! : -1))
  })
  const ins = inputs.map((c): AccInputColumn | null => {
    if (c === null) return null
    const values = c.values instanceof BigInt64Array ? BigInt64Array.from(rows, (i) => (c.values as BigInt64Array)[i]!) : c.values instanceof Float64Array ? Float64Array.from(rows, (i) => c.values[i] as number) : Int32Array.from(rows, (i) => c.values[i] as number)
    let validity: Uint8Array | null = null
    if (c.validity !== null) {
      validity = new Uint8Array((rows.length + 7) >> 3)
      rows.forEach((i, j) => {
        if (isValidAt(c.validity, i)) validity![j >> 3]! |= 1 << (j & 7)
      })
    }
    return { values, validity }
  })
  return { keys: lanes, inputs: ins, n: rows.length }
}

const expectSame = (got: GroupRows, want: GroupRows): void => {
  expect(plain(got)).toEqual(plain(want))
}

function randomTable(r: Rng): { kinds: LaneKind[]; gens: LaneGen[]; widths: LaneWidth[]; specs: AccSpec[] } {
  const kinds = Array.from({ length: r.int(1, 3) }, () => r.pick(['i32', 'i64', 'tumble', 'dict', 'tumble', 'dict'] as const))
  const gens = kinds.map((kd) => laneGen(r, kd))
  const specs = Array.from({ length: r.int(0, 4) }, () => r.pick(SPECS))
  return { kinds, gens, widths: kinds.map(widthOf), specs }
}

describe('dense layout and computed key lanes', () => {
  it('dense, hash and auto updates equal the reference, groups in the same order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        const r = new Rng(seed)
        const { gens, widths, specs } = randomTable(r)
        const tables = (['dense', 'hash', 'auto'] as TableLayout[]).map((layout) => ({ layout, t: k.createGroupTable(widths, specs) }))
        const ref = new RefTable(widths, specs)
        try {
          for (let b = 0; b < 3; b++) {
            const n = r.next() < 0.1 ? r.int(2100, 5000) : r.int(0, 200)
            const keys = gens.map((g) => g.make(r, n))
            const inputs = inputsFor(r, specs, n)
            const m = materialise(keys, inputs, n)
            ref.update(m.keys, m.inputs, m.n)
            for (const { layout, t } of tables) {
              t.update(keys, inputs, n, { layout })
              if (layout === 'hash') expect(t.lastLayout).toBe('hash')
              expect(t.numGroups).toBe(ref.numGroups)
              expectSame(t.export(), ref.export())
            }
            if (r.next() < 0.5) {
              for (const { t } of tables) t.clear()
              ref.clear()
            }
          }
        } finally {
          for (const { t } of tables) t.dispose()
        }
      }),
      { numRuns: 300 },
    )
  })

  it('a densely filled table supports every other operation (merge, removeWhere, exportIds, clear, hashed updates)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        const r = new Rng(seed)
        const { gens, widths, specs } = randomTable(r)
        const t = k.createGroupTable(widths, specs)
        const ref = new RefTable(widths, specs)
        try {
          for (let op = 0; op < 10; op++) {
            const c = r.next()
            if (c < 0.4) {
              const n = r.int(0, 300)
              const keys = gens.map((g) => g.make(r, n))
              const inputs = inputsFor(r, specs, n)
              const m = materialise(keys, inputs, n)
              t.update(keys, inputs, n, { layout: r.pick(['auto', 'dense', 'hash'] as const) })
              ref.update(m.keys, m.inputs, m.n)
            } else if (c < 0.6) {
              const src = new RefTable(widths, specs)
              const n = r.int(0, 100)
              const m = materialise(gens.map((g) => g.make(r, n)), inputsFor(r, specs, n), n)
              src.update(m.keys, m.inputs, m.n)
              const rows = src.export()
              expect(Array.from(t.merge(rows))).toEqual(ref.merge(rows))
            } else if (c < 0.75) {
              const lane = widths.indexOf(8)
              if (lane >= 0) {
                const thr = ref.numGroups > 0 && r.next() < 0.8 ? ref.groups[r.int(0, ref.numGroups - 1)]!.key[lane]! : r.u64()
                expectSame(t.removeWhere(lane, thr), ref.removeWhere(lane, thr))
              }
            } else if (c < 0.85) {
              const ids = ref.numGroups === 0 ? [] : Array.from({ length: r.int(0, 10) }, () => r.int(0, ref.numGroups - 1))
              expectSame(t.exportIds(Int32Array.from(ids)), ref.exportIds(ids))
            } else {
              t.clear()
              ref.clear()
            }
            expect(t.numGroups).toBe(ref.numGroups)
            expectSame(t.export(), ref.export())
          }
        } finally {
          t.dispose()
        }
      }),
      { numRuns: 200 },
    )
  })

  it('merge with a late filter drops the rows at or under the threshold and returns the kept ids', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        const r = new Rng(seed)
        const widths: LaneWidth[] = [8, 4]
        const specs: AccSpec[] = [{ kind: 'count', input: 'none' }, { kind: 'sum', input: 'int64' }, { kind: 'max', input: 'float64' }]
        const t = k.createGroupTable(widths, specs)
        const ref = new RefTable(widths, specs)
        try {
          for (let b = 0; b < 4; b++) {
            const src = new RefTable(widths, specs)
            const n = r.int(0, 200)
            const keys: KeyLane[] = [BigInt64Array.from({ length: n }, () => BigInt(r.int(0, 20)) * HOUR), Int32Array.from({ length: n }, () => r.int(0, 5))]
            src.update(keys, inputsFor(r, specs, n), n)
            const rows = src.export()
            const thr = r.pick([-1n, 5n * HOUR, 10n * HOUR, I64_MAX, I64_MIN])
            const keep = Array.from({ length: rows.numGroups }, (_, i) => (rows.keys[0] as BigInt64Array)[i]! > thr)
            const kept = keep.filter(Boolean).length
            const filtered: GroupRows = {
              numGroups: kept,
              keys: rows.keys.map((l) => (l instanceof BigInt64Array ? BigInt64Array.from(l.filter((_, i) => keep[i])) : Int32Array.from(l.filter((_, i) => keep[i])))),
              accs: rows.accs.map((a) => ({
                value: a.value === null ? null : a.value instanceof Float64Array ? Float64Array.from(a.value.filter((_, i) => keep[i])) : BigInt64Array.from(a.value.filter((_, i) => keep[i])),
                count: BigInt64Array.from(a.count.filter((_, i) => keep[i])),
              })),
            }
            expect(Array.from(t.merge(rows, { lane: 0, threshold: thr }))).toEqual(ref.merge(filtered))
            expectSame(t.export(), ref.export())
          }
          expect(() => t.merge(t.export(), { lane: 1, threshold: 0n })).toThrow(KernelError)
        } finally {
          t.dispose()
        }
      }),
      { numRuns: 100 },
    )
  })

  it('mergeTable equals merging the exported rows, with and without a late filter', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), (seed) => {
        const r = new Rng(seed)
        const { gens, widths, specs } = randomTable(r)
        const a = k.createGroupTable(widths, specs)
        const b = k.createGroupTable(widths, specs)
        const part = k.createGroupTable(widths, specs)
        try {
          for (let round = 0; round < 4; round++) {
            const n = r.int(0, 300)
            const keys = gens.map((g) => g.make(r, n))
            const inputs = inputsFor(r, specs, n)
            part.update(keys, inputs, n, { layout: r.pick(['auto', 'dense', 'hash'] as const) })
            const lane = widths.indexOf(8)
            const late = lane >= 0 && r.next() < 0.5 ? { lane, threshold: r.pick([0n, 10n * HOUR, I64_MIN, I64_MAX]) } : undefined
            const want = b.merge(part.export(), late)
            expect(Array.from(a.mergeTable(part, late))).toEqual(Array.from(want))
            expectSame(a.export(), b.export())
            part.clear()
          }
          expect(() => a.mergeTable(a)).toThrow(KernelError)
        } finally {
          a.dispose()
          b.dispose()
          part.dispose()
        }
      }),
      { numRuns: 150 },
    )
  })

  it('picks dense for small domains and hash for wide ones; refuses codes outside the dictionary without changes', () => {
    const specs: AccSpec[] = [{ kind: 'count', input: 'none' }]
    const t = k.createGroupTable([8, 4], specs)
    try {
      const n = 10_000
      const ts = BigInt64Array.from({ length: n }, (_, i) => 978_307_260_000_000n + BigInt(i) * 5_000_000n) // ~14 hours
      const codes = Int32Array.from({ length: n }, (_, i) => i % 229)
      const remap = Int32Array.from({ length: 229 }, (_, i) => i)
      const tumble: TumbleLane = { kind: 'tumble', ts, validity: null, sizeUs: HOUR, startUs: 0n }
      t.update([tumble, { kind: 'dict', codes, validity: null, remap }], [null], n)
      expect(t.lastLayout).toBe('dense')
      const e = t.export()
      expect(e.numGroups).toBe(14 * 229) // 50,000 s from 00:01: 14 hours, each with every code
      expect(Array.from(e.accs[0]!.count).reduce((s, c) => s + c, 0n)).toBe(BigInt(n))
      // a second update on a non-empty table hashes
      t.update([tumble, { kind: 'dict', codes, validity: null, remap }], [null], n)
      expect(t.lastLayout).toBe('hash')
      expect(t.numGroups).toBe(e.numGroups)
      t.clear()
      // second-resolution windows over the same span: 50k windows × 230 codes: too wide for auto
      t.update([{ ...tumble, sizeUs: 1_000_000n }, { kind: 'dict', codes, validity: null, remap }], [null], n)
      expect(t.lastLayout).toBe('hash')
      t.clear()
      const bad = codes.slice()
      bad[7] = 229
      expect(() => t.update([tumble, { kind: 'dict', codes: bad, validity: null, remap }], [null], n)).toThrow(/outside its dictionary/)
      expect(t.numGroups).toBe(0)
      // ... unless that row is null
      const validity = new Uint8Array((n + 7) >> 3).fill(0xff)
      validity[0] = 0x7f
      t.update([tumble, { kind: 'dict', codes: bad, validity, remap }], [null], n)
      expect(t.numGroups).toBeGreaterThan(0)
      expect(() => t.update([ts, Int32Array.of(1)], [null], 2)).toThrow(KernelError)
      expect(() => t.update([{ ...tumble, sizeUs: 0n }, codes], [null], n)).toThrow(KernelError)
      expect(() => t.update([{ kind: 'dict', codes, validity: null, remap }, codes] as KeyInput[], [null], n)).toThrow(KernelError)
    } finally {
      t.dispose()
    }
  })

  it('aggregates the flights shape identically in both layouts (250k rows, ~36k groups)', () => {
    const n = 250_000
    const r = new Rng(7)
    const ts = BigInt64Array.from({ length: n }, (_, i) => 978_307_260_000_000n + BigInt(Math.floor((i / n) * 362 * 3600)) * 1_000_000n)
    const codes = Int32Array.from({ length: n }, () => Math.min(228, Math.floor(229 * r.next() ** 3)))
    const delay = BigInt64Array.from({ length: n }, () => BigInt(r.int(-30, 300)))
    const dv = new Uint8Array((n + 7) >> 3).fill(0xff)
    dv[3] = 0
    const remap = Int32Array.from({ length: 229 }, (_, i) => 228 - i)
    const specs: AccSpec[] = [{ kind: 'count', input: 'none' }, { kind: 'sum', input: 'int64' }, { kind: 'max', input: 'int64' }]
    const keys: KeyInput[] = [{ kind: 'tumble', ts, validity: null, sizeUs: HOUR, startUs: 0n }, { kind: 'dict', codes, validity: null, remap }]
    const inputs = [null, { values: delay, validity: dv }, { values: delay, validity: dv }]
    const d = k.createGroupTable([8, 4], specs)
    const h = k.createGroupTable([8, 4], specs)
    try {
      d.update(keys, inputs, n)
      h.update(keys, inputs, n, { layout: 'hash' })
      expect(d.lastLayout).toBe('dense')
      expectSame(d.export(), h.export())
      const ref = new RefTable([8, 4], specs)
      const m = materialise(keys, inputs, n)
      ref.update(m.keys, m.inputs, m.n)
      expectSame(d.export(), ref.export())
    } finally {
      d.dispose()
      h.dispose()
    }
  })
})
