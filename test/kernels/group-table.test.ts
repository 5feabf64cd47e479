import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { KernelError } from '../../src/errors.ts'
import { Kernels, type AccInputColumn, type AccSpec, type GroupRows, type GroupTable, type KeyLane, type LaneWidth } from '../../src/kernels/kernels.ts'
import { RefTable, plain } from './reference.ts'

let k: Kernels

beforeAll(async () => {
  k = await Kernels.load()
})

const ALL_SPECS: AccSpec[] = [
  { kind: 'count', input: 'none' },
  ...(['count', 'sum', 'min', 'max'] as const).flatMap((kind) => (['int32', 'int64', 'float64'] as const).map((input) => ({ kind, input }))),
]

// --- seeded random data ----------------------------------------------------------------------

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

const I32_EDGE = [-2147483648, 2147483647, 0, -1, 1]
const I64_EDGE = [-0x8000000000000000n, 0x7fffffffffffffffn, 0n, -1n, 1n, 0xffffffffn, -0x100000000n]
const F64_EDGE = [NaN, Infinity, -Infinity, -0, 0, 1.5, -2.25, 1e300, -1e300, Number.MIN_VALUE]

/** Key generator with a per-lane domain: tiny (many duplicates), edge values, or full range. */
function keyLaneGen(r: Rng, width: LaneWidth): (rng: Rng) => number | bigint {
  const domain = r.int(0, 3)
  if (width === 4) {
    if (domain === 0) return (x) => x.int(-3, 3)
    if (domain === 1) return (x) => x.pick(I32_EDGE)
    if (domain === 2) return (x) => x.int(0, 50)
    return (x) => x.int(-2147483648, 2147483647)
  }
  if (domain === 0) return (x) => BigInt(x.int(-3, 3))
  if (domain === 1) return (x) => x.pick(I64_EDGE)
  if (domain === 2) return (x) => BigInt(x.int(0, 50)) * 3_600_000_000n
  return (x) => x.u64()
}

interface Batch {
  keys: KeyLane[]
  inputs: (AccInputColumn | null)[]
  n: number
}

function makeBatch(r: Rng, laneWidths: readonly LaneWidth[], specs: readonly AccSpec[], gens: ((rng: Rng) => number | bigint)[], n: number, floatsExact = false): Batch {
  const extra = r.int(0, 3) // arrays longer than n, and views at an offset
  const lead = r.int(0, 2)
  const keys = laneWidths.map((w, l): KeyLane => {
    const len = lead + n + extra
    const arr = w === 8 ? new BigInt64Array(len) : new Int32Array(len)
    for (let i = 0; i < len; i++) (arr as unknown as (number | bigint)[])[i] = gens[l]!(r)
    return arr.subarray(lead)
  })
  const inputs = specs.map((s): AccInputColumn | null => {
    if (s.input === 'none') return null
    const len = n + extra
    let values: Int32Array | BigInt64Array | Float64Array
    if (s.input === 'int32') values = Int32Array.from({ length: len }, () => (r.next() < 0.2 ? r.pick(I32_EDGE) : r.int(-1000, 1000)))
    else if (s.input === 'int64') values = BigInt64Array.from({ length: len }, () => (r.next() < 0.2 ? r.pick(I64_EDGE) : r.next() < 0.5 ? r.u64() : BigInt(r.int(-1000, 1000))))
    else values = Float64Array.from({ length: len }, () => (floatsExact ? (r.next() < 0.1 ? NaN : r.int(-1000, 1000)) : r.next() < 0.3 ? r.pick(F64_EDGE) : (r.next() - 0.5) * 1000))
    let validity: Uint8Array | null = null
    if (r.next() < 0.6) {
      const pNull = r.pick([0, 0.1, 0.5, 1])
      validity = new Uint8Array((len + 7) >> 3)
      for (let i = 0; i < len; i++) if (r.next() >= pNull) validity[i >> 3]! |= 1 << (i & 7)
    }
    return { values, validity }
  })
  return { keys, inputs, n }
}

/** Elements of a typed array (of either kind) as a plain array. */
const list = (a: ArrayLike<number | bigint>): (number | bigint)[] => Array.from(a)

function expectSame(got: GroupRows, want: GroupRows): void {
  expect(plain(got)).toEqual(plain(want))
}

// --- tests -------------------------------------------------------------------------------------

describe('GroupTable', () => {
  it('aggregates a fixed case with every accumulator kind and nulls', () => {
    const specs: AccSpec[] = [
      { kind: 'count', input: 'none' },
      { kind: 'count', input: 'int64' },
      { kind: 'sum', input: 'int64' },
      { kind: 'min', input: 'int32' },
      { kind: 'max', input: 'float64' },
      { kind: 'min', input: 'float64' },
    ]
    const t = k.createGroupTable([8, 4], specs)
    const win = BigInt64Array.of(100n, 200n, 100n, 100n, 200n)
    const org = Int32Array.of(1, 1, 1, 2, 1)
    const delay = BigInt64Array.of(5n, 7n, -3n, 9n, 0n)
    const delayValid = Uint8Array.of(0b10111) // row 3 null
    const i32 = Int32Array.of(4, -8, 2, 6, 0)
    const f = Float64Array.of(1.5, NaN, -2, 3, 4)
    t.update([win, org], [null, { values: delay, validity: delayValid }, { values: delay, validity: delayValid }, { values: i32, validity: null }, { values: f, validity: null }, { values: f, validity: null }], 5)
    expect(t.numGroups).toBe(3)
    const e = t.export()
    expect(list(e.keys[0]!)).toEqual([100n, 200n, 100n])
    expect(list(e.keys[1]!)).toEqual([1, 1, 2])
    expect(list(e.accs[0]!.count)).toEqual([2n, 2n, 1n])
    expect(list(e.accs[1]!.count)).toEqual([2n, 2n, 0n])
    expect(e.accs[1]!.value).toBeNull()
    expect(list(e.accs[2]!.value!)).toEqual([2n, 7n, 0n])
    expect(list(e.accs[2]!.count)).toEqual([2n, 2n, 0n]) // group 2: sum is NULL
    expect(list(e.accs[3]!.value!)).toEqual([2n, -8n, 6n])
    expect(e.accs[4]!.value).toBeInstanceOf(Float64Array)
    expect(list(e.accs[4]!.value!)).toEqual([1.5, NaN, 3]) // NaN is the largest
    expect(list(e.accs[5]!.value!)).toEqual([-2, 4, 3]) // ... and never the smallest
    t.dispose()
  })

  it('merge combines partials and returns group ids', () => {
    const specs: AccSpec[] = [{ kind: 'count', input: 'none' }, { kind: 'sum', input: 'float64' }, { kind: 'min', input: 'int64' }]
    const a = k.createGroupTable([4], specs)
    const b = k.createGroupTable([4], specs)
    a.update([Int32Array.of(1, 2)], [null, { values: Float64Array.of(1, 2), validity: null }, { values: BigInt64Array.of(10n, 20n), validity: null }], 2)
    b.update([Int32Array.of(3, 2, 2)], [null, { values: Float64Array.of(4, 8, 16), validity: null }, { values: BigInt64Array.of(5n, 30n, 15n), validity: null }], 3)
    const ids = a.merge(b.export())
    expect(Array.from(ids)).toEqual([2, 1])
    const e = a.export()
    expect(list(e.keys[0]!)).toEqual([1, 2, 3])
    expect(list(e.accs[0]!.count)).toEqual([1n, 3n, 1n])
    expect(list(e.accs[1]!.value!)).toEqual([1, 26, 4])
    expect(list(e.accs[2]!.value!)).toEqual([10n, 15n, 5n])
    expectSame(a.exportIds(Int32Array.of(2, 0, 2)), {
      numGroups: 3,
      keys: [Int32Array.of(3, 1, 3)],
      accs: [
        { value: null, count: BigInt64Array.of(1n, 1n, 1n) },
        { value: Float64Array.of(4, 1, 4), count: BigInt64Array.of(1n, 1n, 1n) },
        { value: BigInt64Array.of(5n, 10n, 5n), count: BigInt64Array.of(1n, 1n, 1n) },
      ],
    })
    a.dispose()
    b.dispose()
  })

  it('removeWhere returns the removed groups and renumbers the rest', () => {
    const t = k.createGroupTable([4, 8], [{ kind: 'sum', input: 'int32' }])
    const win = BigInt64Array.of(30n, 10n, 20n, 10n, 40n, -5n)
    t.update([Int32Array.of(1, 1, 1, 2, 1, 1), win], [{ values: Int32Array.of(1, 2, 3, 4, 5, 6), validity: null }], 6)
    const removed = t.removeWhere(1, 20n)
    expect(list(removed.keys[1]!)).toEqual([10n, 20n, 10n, -5n])
    expect(list(removed.keys[0]!)).toEqual([1, 1, 2, 1])
    expect(list(removed.accs[0]!.value!)).toEqual([2n, 3n, 4n, 6n])
    expect(t.numGroups).toBe(2)
    const rest = t.export()
    expect(list(rest.keys[1]!)).toEqual([30n, 40n])
    expect(list(rest.accs[0]!.value!)).toEqual([1n, 5n])
    // the table keeps working: old keys come back as new groups, existing ones accumulate
    t.update([Int32Array.of(1, 1), BigInt64Array.of(10n, 40n)], [{ values: Int32Array.of(100, 1000), validity: null }], 2)
    const e = t.export()
    expect(list(e.keys[1]!)).toEqual([30n, 40n, 10n])
    expect(list(e.accs[0]!.value!)).toEqual([1n, 1005n, 100n])
    expect(t.removeWhere(1, -100n).numGroups).toBe(0)
    expect(() => t.removeWhere(0, 0n)).toThrow(KernelError) // an i32 lane
    t.dispose()
  })

  it('rejects bad layouts, bad inputs and use after dispose with KernelError', () => {
    expect(() => k.createGroupTable([], [])).toThrow(KernelError)
    expect(() => k.createGroupTable([8, 8, 8, 4], [])).toThrow(KernelError)
    expect(() => k.createGroupTable([8], [{ kind: 'sum', input: 'none' }])).toThrow(KernelError)
    const t = k.createGroupTable([8], [{ kind: 'sum', input: 'int64' }])
    expect(() => t.update([Int32Array.of(1)], [{ values: BigInt64Array.of(1n), validity: null }], 1)).toThrow(KernelError)
    expect(() => t.update([BigInt64Array.of(1n)], [{ values: Int32Array.of(1), validity: null }], 1)).toThrow(KernelError)
    expect(() => t.update([BigInt64Array.of(1n)], [{ values: BigInt64Array.of(1n), validity: null }], 2)).toThrow(KernelError)
    expect(() => t.exportIds(Int32Array.of(0))).toThrow(KernelError)
    t.dispose()
    t.dispose()
    expect(() => t.export()).toThrow(KernelError)
  })

  it('matches the reference model on random operation sequences, several tables alive at once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), fc.integer({ min: 1, max: 3 }), (seed, nTables) => {
        const r = new Rng(seed)
        const tables: { t: GroupTable; ref: RefTable; gens: ((rng: Rng) => number | bigint)[] }[] = []
        try {
          for (let ti = 0; ti < nTables; ti++) {
            const laneWidths = Array.from({ length: r.int(1, 3) }, () => r.pick([4, 8] as const))
            const specs = Array.from({ length: r.int(0, 5) }, () => r.pick(ALL_SPECS))
            tables.push({ t: k.createGroupTable(laneWidths, specs), ref: new RefTable(laneWidths, specs), gens: laneWidths.map((w) => keyLaneGen(r, w)) })
          }
          for (let op = 0; op < 12; op++) {
            const { t, ref, gens } = r.pick(tables)
            const choice = r.next()
            if (choice < 0.45) {
              const n = r.next() < 0.1 ? r.int(2000, 6000) : r.int(0, 150)
              const b = makeBatch(r, ref.laneWidths, ref.specs, gens, n)
              t.update(b.keys, b.inputs, b.n)
              ref.update(b.keys, b.inputs, b.n)
            } else if (choice < 0.65) {
              // merge the export of another (model) table with the same layout
              const src = new RefTable(ref.laneWidths, ref.specs)
              const b = makeBatch(r, ref.laneWidths, ref.specs, gens, r.int(0, 120))
              src.update(b.keys, b.inputs, b.n)
              const rows = src.export()
              expect(Array.from(t.merge(rows))).toEqual(ref.merge(rows))
            } else if (choice < 0.8) {
              const lane = ref.laneWidths.indexOf(8)
              if (lane >= 0) {
                const thr = ref.numGroups > 0 && r.next() < 0.8 ? ref.groups[r.int(0, ref.numGroups - 1)]!.key[lane]! : r.u64()
                expectSame(t.removeWhere(lane, thr), ref.removeWhere(lane, thr))
              }
            } else if (choice < 0.9) {
              const ids = ref.numGroups === 0 ? [] : Array.from({ length: r.int(0, 20) }, () => r.int(0, ref.numGroups - 1))
              expectSame(t.exportIds(Int32Array.from(ids)), ref.exportIds(ids))
            } else if (choice < 0.95) {
              t.clear()
              ref.clear()
            }
            expect(t.numGroups).toBe(ref.numGroups)
            expectSame(t.export(), ref.export())
          }
        } finally {
          for (const { t } of tables) t.dispose()
        }
      }),
      { numRuns: 150 },
    )
  })

  it('partials merged equal aggregating all rows at once (exact floats)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), fc.integer({ min: 1, max: 5 }), (seed, parts) => {
        const r = new Rng(seed)
        const laneWidths = Array.from({ length: r.int(1, 3) }, () => r.pick([4, 8] as const))
        const specs = Array.from({ length: r.int(1, 5) }, () => r.pick(ALL_SPECS))
        const gens = laneWidths.map((w) => keyLaneGen(r, w))
        const all = k.createGroupTable(laneWidths, specs)
        const merged = k.createGroupTable(laneWidths, specs)
        const part = k.createGroupTable(laneWidths, specs)
        try {
          for (let p = 0; p < parts; p++) {
            const b = makeBatch(r, laneWidths, specs, gens, r.int(0, 400), true)
            all.update(b.keys, b.inputs, b.n)
            part.update(b.keys, b.inputs, b.n)
            merged.merge(part.export())
            part.clear()
          }
          const key = (rows: GroupRows) => {
            const p = plain(rows)
            return Array.from({ length: p.n }, (_, i) => JSON.stringify([p.keys.map((l) => l[i]), p.accs.map((a) => [a.value?.[i] ?? null, a.count[i]])], (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)))
              .sort()
          }
          expect(key(merged.export())).toEqual(key(all.export()))
        } finally {
          all.dispose()
          merged.dispose()
          part.dispose()
        }
      }),
      { numRuns: 100 },
    )
  })

  it('grows past many groups and WASM memory growth, with tables interleaved', () => {
    const specs: AccSpec[] = [{ kind: 'count', input: 'none' }, { kind: 'sum', input: 'int64' }, { kind: 'max', input: 'float64' }]
    const before = k.memoryBytes
    const a = k.createGroupTable([8, 4, 8], specs)
    const b = k.createGroupTable([4], specs)
    const G = 300_000
    const n = 2 * G
    const l0 = new BigInt64Array(n)
    const l1 = new Int32Array(n)
    const l2 = new BigInt64Array(n)
    const v = new BigInt64Array(n)
    const f = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      const g = (i * 7919) % G // every group twice, scattered
      l0[i] = BigInt(g) * 3_600_000_000n
      l1[i] = g % 229
      l2[i] = -BigInt(g)
      v[i] = BigInt(i)
      f[i] = i
    }
    for (let off = 0; off < n; off += 100_000) {
      const m = 100_000
      a.update([l0.subarray(off, off + m), l1.subarray(off, off + m), l2.subarray(off, off + m)], [null, { values: v.subarray(off, off + m), validity: null }, { values: f.subarray(off, off + m), validity: null }], m)
      b.update([l1.subarray(off, off + m)], [null, { values: v.subarray(off, off + m), validity: null }, { values: f.subarray(off, off + m), validity: null }], m)
    }
    expect(a.numGroups).toBe(G)
    expect(b.numGroups).toBe(229)
    expect(k.memoryBytes).toBeGreaterThan(before)
    const e = a.export()
    const first = new Map<number, number>()
    for (let i = 0; i < n; i++) {
      const g = (i * 7919) % G
      if (!first.has(g)) first.set(g, i)
    }
    // group ids in first-appearance order; each group saw rows i and i + G
    for (let id = 0; id < G; id += 997) {
      const i = [...first.values()][id]!
      const g = (i * 7919) % G
      expect(e.keys[0]![id]).toBe(BigInt(g) * 3_600_000_000n)
      expect(e.keys[1]![id]).toBe(g % 229)
      expect(e.keys[2]![id]).toBe(-BigInt(g))
      expect(e.accs[0]!.count[id]).toBe(2n)
      expect(e.accs[1]!.value![id]).toBe(BigInt(2 * i + G))
      expect(e.accs[2]!.value![id]).toBe(i + G)
    }
    const eb = b.export()
    expect(eb.accs[0]!.count.reduce((s, c) => s + c, 0n)).toBe(BigInt(n))
    // removal of most groups, then re-adding: ids dense again
    const removed = a.removeWhere(0, BigInt(G - 1000) * 3_600_000_000n - 1n)
    expect(removed.numGroups).toBe(G - 1000)
    expect(a.numGroups).toBe(1000)
    a.update([BigInt64Array.of(-1n), Int32Array.of(0), BigInt64Array.of(0n)], [null, { values: BigInt64Array.of(1n), validity: null }, { values: Float64Array.of(1), validity: null }], 1)
    expect(a.numGroups).toBe(1001)
    a.dispose()
    b.dispose()
  })

  it('handles update and merge calls larger than one internal piece (> 2^20 rows)', () => {
    const specs: AccSpec[] = [{ kind: 'count', input: 'int64' }, { kind: 'sum', input: 'int64' }]
    const n = (1 << 20) + 12_345
    const G = 1000
    const keys = Int32Array.from({ length: n }, (_, i) => i % G)
    const vals = BigInt64Array.from({ length: n }, (_, i) => BigInt(i))
    const validity = new Uint8Array((n + 7) >> 3)
    for (let i = 0; i < n; i++) if (i % 3 !== 0) validity[i >> 3]! |= 1 << (i & 7)
    const t = k.createGroupTable([4], specs)
    t.update([keys], [{ values: vals, validity }, { values: vals, validity }], n)
    const want = Array.from({ length: G }, () => [0n, 0n])
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) continue
      want[i % G]![0]! += 1n
      want[i % G]![1]! += BigInt(i)
    }
    const e = t.export()
    expect(list(e.accs[0]!.count)).toEqual(want.map((w) => w[0]))
    expect(list(e.accs[1]!.value!)).toEqual(want.map((w) => w[1]))
    // merge of more than 2^20 groups, half of them new
    const M = (1 << 20) + 100
    const rows: GroupRows = {
      numGroups: M,
      keys: [Int32Array.from({ length: M }, (_, i) => i * 2)],
      accs: [{ value: null, count: new BigInt64Array(M).fill(1n) }, { value: new BigInt64Array(M).fill(5n), count: new BigInt64Array(M).fill(1n) }],
    }
    const ids = t.merge(rows)
    expect(ids.length).toBe(M)
    expect(ids[0]).toBe(0)
    expect(ids[M - 1]).toBe(G + M - G / 2 - 1)
    expect(t.numGroups).toBe(G + M - G / 2)
    t.dispose()
  })

  it('reuses the memory of disposed tables', () => {
    const specs: AccSpec[] = [{ kind: 'count', input: 'none' }, { kind: 'min', input: 'int64' }]
    const n = 50_000
    const keys = BigInt64Array.from({ length: n }, (_, i) => BigInt(i))
    const run = () => {
      const t = k.createGroupTable([8], specs)
      t.update([keys], [null, { values: keys, validity: null }], n)
      expect(t.numGroups).toBe(n)
      t.dispose()
    }
    run()
    const mem = k.memoryBytes
    for (let i = 0; i < 20; i++) run()
    expect(k.memoryBytes).toBe(mem)
  })
})
