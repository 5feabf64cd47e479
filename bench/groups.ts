/**
 * The group check: every engine's output, reduced to a canonical form — groups sorted by (hour,
 * origin) with count, max and avg as doubles — written to a binary file by the reference engine and
 * compared by the others: same keys, same counts and maxima, averages within 1e-9 relative (engines
 * sum and divide in different orders). Nulls (no non-null delay) are NaN.
 */
import { readFileSync, writeFileSync } from 'node:fs'

const HOUR_MS = 3_600_000

export class GroupCollector {
  private wsMs: number[] = []
  private origin: (string | null)[] = []
  private count: number[] = []
  private avg: number[] = []
  private max: number[] = []

  add(wsMs: number, origin: string | null, count: number, avg: number | null, max: number | null): void {
    this.wsMs.push(wsMs)
    this.origin.push(origin)
    this.count.push(count)
    this.avg.push(avg ?? NaN)
    this.max.push(max ?? NaN)
  }

  get size(): number {
    return this.wsMs.length
  }

  finish(): Canonical {
    const n = this.wsMs.length
    const names = [...new Set(this.origin.filter((o): o is string => o !== null))].sort()
    const id = new Map(names.map((s, i) => [s, i + 1]))
    const packed = new BigInt64Array(n)
    for (let i = 0; i < n; i++) {
      const ws = this.wsMs[i]!
      if (ws % HOUR_MS !== 0) throw new Error(`window start ${ws} is not on an hour`)
      const o = this.origin[i]
      const key = (ws / HOUR_MS) * 65536 + (o === null ? 0 : id.get(o)!)
      packed[i] = (BigInt(key) << 23n) | BigInt(i)
    }
    packed.sort()
    const keys = new Float64Array(n)
    const count = new Float64Array(n)
    const max = new Float64Array(n)
    const avg = new Float64Array(n)
    for (let j = 0; j < n; j++) {
      const i = Number(packed[j]! & 0x7fffffn)
      keys[j] = Number(packed[j]! >> 23n)
      count[j] = this.count[i]!
      max[j] = this.max[i]!
      avg[j] = this.avg[i]!
    }
    return { n, origins: names, keys, count, max, avg }
  }
}

export interface Canonical {
  n: number
  origins: string[]
  keys: Float64Array
  count: Float64Array
  max: Float64Array
  avg: Float64Array
}

export function writeCanonical(path: string, c: Canonical): void {
  const header = Buffer.from(JSON.stringify({ n: c.n, origins: c.origins }))
  const pad = (8 - ((4 + header.length) % 8)) % 8
  const head = Buffer.alloc(4 + header.length + pad)
  head.writeUInt32LE(header.length, 0)
  header.copy(head, 4)
  const parts = [head, ...[c.keys, c.count, c.max, c.avg].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))]
  writeFileSync(path, Buffer.concat(parts))
}

export function readCanonical(path: string): Canonical {
  const b = readFileSync(path)
  const len = b.readUInt32LE(0)
  const h = JSON.parse(b.subarray(4, 4 + len).toString()) as { n: number; origins: string[] }
  let off = 4 + len
  off += (8 - (off % 8)) % 8
  const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice(off)
  const arr = (k: number) => new Float64Array(bytes.buffer, k * h.n * 8, h.n)
  return { n: h.n, origins: h.origins, keys: arr(0), count: arr(1), max: arr(2), avg: arr(3) }
}

/** null when equal, else the first difference. */
export function compareCanonical(got: Canonical, want: Canonical): string | null {
  if (got.n !== want.n) return `${got.n} groups, ${want.n} expected`
  if (got.origins.join('|') !== want.origins.join('|')) return `origins differ (${got.origins.length} vs ${want.origins.length})`
  const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b))
  for (let i = 0; i < got.n; i++) {
    const where = () => `group ${i} (hour ${Math.floor(want.keys[i]! / 65536)}, origin #${want.keys[i]! % 65536})`
    if (got.keys[i] !== want.keys[i]) return `key of ${where()} differs`
    if (!same(got.count[i]!, want.count[i]!)) return `count of ${where()}: ${got.count[i]} vs ${want.count[i]}`
    if (!same(got.max[i]!, want.max[i]!)) return `max of ${where()}: ${got.max[i]} vs ${want.max[i]}`
    const a = got.avg[i]!, b = want.avg[i]!
    if (!(same(a, b) || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)))) return `avg of ${where()}: ${a} vs ${b}`
  }
  return null
}
