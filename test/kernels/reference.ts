/** Plain-TS reference implementations of the WASM kernels, for tests. */
import type { AccInputColumn, AccSpec, GroupRows, KeyLane, LaneWidth } from '../../src/kernels/kernels.ts'

export function isValidAt(validity: Uint8Array | null, i: number): boolean {
  return validity === null || (validity[i >> 3]! & (1 << (i & 7))) !== 0
}

export function refAssignWindows(ts: BigInt64Array, validity: Uint8Array | null, win: bigint, slide: bigint, start: bigint): { rows: number[]; starts: bigint[] } {
  const rows: number[] = []
  const starts: bigint[] = []
  const k = (win + slide - 1n) / slide
  for (let i = 0; i < ts.length; i++) {
    if (!isValidAt(validity, i)) continue
    const t = ts[i]!
    let r = (t - start) % slide
    if (r < 0n) r += slide
    const last = t - r
    for (let j = k - 1n; j >= 0n; j--) {
      const s = last - j * slide
      if (s <= t && t < s + win) {
        rows.push(i)
        starts.push(s)
      }
    }
  }
  return { rows, starts }
}

interface RefAcc {
  value: bigint | number
  count: bigint
}

interface RefGroup {
  key: bigint[]
  accs: RefAcc[]
}

function initAcc(spec: AccSpec): RefAcc {
  if (spec.kind === 'count') return { value: 0, count: 0n }
  if (spec.input === 'float64') return { value: spec.kind === 'sum' ? 0 : spec.kind === 'min' ? NaN : -Infinity, count: 0n }
  return { value: spec.kind === 'sum' ? 0n : spec.kind === 'min' ? 0x7fffffffffffffffn : -0x8000000000000000n, count: 0n }
}

/** Folds one value into an accumulator value exactly as the kernels do (Spark's NaN ordering). */
function fold(spec: AccSpec, cur: bigint | number, v: bigint | number): bigint | number {
  if (typeof cur === 'number') {
    const x = v as number
    if (spec.kind === 'sum') return cur + x
    if (spec.kind === 'min') return x < cur || Number.isNaN(cur) ? x : cur
    return x > cur || Number.isNaN(x) ? x : cur
  }
  const x = v as bigint
  if (spec.kind === 'sum') return BigInt.asIntN(64, cur + x)
  if (spec.kind === 'min') return x < cur ? x : cur
  return x > cur ? x : cur
}

/** A model of GroupTable: groups in insertion order, ids dense. */
export class RefTable {
  groups: RefGroup[] = []
  private index = new Map<string, number>()

  constructor(readonly laneWidths: readonly LaneWidth[], readonly specs: readonly AccSpec[]) {}

  get numGroups(): number {
    return this.groups.length
  }

  private id(key: bigint[]): number {
    const s = key.join(',')
    let g = this.index.get(s)
    if (g === undefined) {
      g = this.groups.length
      this.groups.push({ key, accs: this.specs.map(initAcc) })
      this.index.set(s, g)
    }
    return g
  }

  update(keys: readonly KeyLane[], inputs: readonly (AccInputColumn | null)[], n: number): void {
    for (let i = 0; i < n; i++) {
      const g = this.groups[this.id(keys.map((l) => BigInt(l[i]!)))]!
      this.specs.forEach((spec, j) => {
        const col = inputs[j]
        if (col !== null && col !== undefined && !isValidAt(col.validity, i)) return
        const acc = g.accs[j]!
        acc.count++
        if (spec.kind === 'count') return
        const raw = col!.values[i]!
        acc.value = fold(spec, acc.value, spec.input === 'float64' ? (raw as number) : BigInt(raw))
      })
    }
  }

  merge(rows: GroupRows): number[] {
    const out: number[] = []
    for (let i = 0; i < rows.numGroups; i++) {
      const gid = this.id(rows.keys.map((l) => BigInt(l[i]!)))
      out.push(gid)
      const g = this.groups[gid]!
      this.specs.forEach((spec, j) => {
        const acc = g.accs[j]!
        const other = rows.accs[j]!
        acc.count += other.count[i]!
        if (spec.kind !== 'count') acc.value = fold(spec, acc.value, other.value![i]!)
      })
    }
    return out
  }

  exportIds(ids: readonly number[]): GroupRows {
    const n = ids.length
    const keys = this.laneWidths.map((w, l): KeyLane => (w === 8 ? BigInt64Array.from(ids, (g) => this.groups[g]!.key[l]!) : Int32Array.from(ids, (g) => Number(this.groups[g]!.key[l]!))))
    const accs = this.specs.map((spec, j) => ({
      value: spec.kind === 'count' ? null : spec.input === 'float64' ? Float64Array.from(ids, (g) => this.groups[g]!.accs[j]!.value as number) : BigInt64Array.from(ids, (g) => this.groups[g]!.accs[j]!.value as bigint),
      count: BigInt64Array.from(ids, (g) => this.groups[g]!.accs[j]!.count),
    }))
    return { numGroups: n, keys, accs }
  }

  export(): GroupRows {
    return this.exportIds(this.groups.map((_, i) => i))
  }

  removeWhere(lane: number, threshold: bigint): GroupRows {
    const removedIds = this.groups.flatMap((g, i) => (g.key[lane]! <= threshold ? [i] : []))
    const removed = this.exportIds(removedIds)
    this.groups = this.groups.filter((g) => !(g.key[lane]! <= threshold))
    this.index = new Map(this.groups.map((g, i) => [g.key.join(','), i]))
    return removed
  }

  clear(): void {
    this.groups = []
    this.index.clear()
  }
}

/** GroupRows as plain arrays (for toEqual). Values of groups with count 0 are replaced by null. */
export function plain(rows: GroupRows): { n: number; keys: bigint[][]; accs: { value: (bigint | number | null)[] | null; count: bigint[] }[] } {
  return {
    n: rows.numGroups,
    keys: rows.keys.map((l) => Array.from(l as ArrayLike<number | bigint>, (v) => BigInt(v))),
    accs: rows.accs.map((a) => ({
      value: a.value === null ? null : Array.from(a.value as ArrayLike<number | bigint>, (v, i) => (a.count[i] === 0n ? null : v)),
      count: Array.from(a.count),
    })),
  }
}

/** GroupRows as a map from key to accumulators (order-insensitive comparisons). */
export function byKey(rows: GroupRows): Map<string, unknown[]> {
  const p = plain(rows)
  const m = new Map<string, unknown[]>()
  for (let i = 0; i < p.n; i++) {
    m.set(p.keys.map((l) => l[i]).join(','), p.accs.map((a) => [a.value === null ? null : a.value[i], a.count[i]]))
  }
  return m
}

export function concatGroupRows(parts: readonly GroupRows[], laneWidths: readonly LaneWidth[], specs: readonly AccSpec[]): RefTable {
  const t = new RefTable(laneWidths, specs)
  for (const p of parts) t.merge(p)
  return t
}
