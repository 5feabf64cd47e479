import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { Kernels } from '../../src/kernels/kernels.ts'

let k: Kernels
beforeAll(async () => {
  k = await Kernels.load()
})

function reference(values: BigInt64Array, validity: Uint8Array | null, maxMs: number) {
  let max = -Infinity, min = Infinity, sum = 0, count = 0
  for (let i = 0; i < values.length; i++) {
    if (validity !== null && (validity[i >> 3]! & (1 << (i & 7))) === 0) continue
    const ms = Number(values[i]! / 1000n)
    if (ms > maxMs) continue
    if (ms > max) max = ms
    if (ms < min) min = ms
    sum += ms
    count++
  }
  return { max, min, sum, count }
}

const EDGES = [0n, -1n, 1n, 999n, -999n, 1000n, -1000n, 1001n, -1001n, (1n << 53n) - 1n, -(1n << 53n), (1n << 53n), -(1n << 53n) - 1n,
  9_007_199_254_740_999n, 0x7fffffffffffffffn, -0x8000000000000000n, 978_307_260_000_000n, 978_307_260_999_999n, -978_307_260_000_001n]

describe('Kernels.eventTimeStats', () => {
  it('equals the BigInt computation on random and edge timestamps, with nulls and a cap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), fc.bigInt({ min: -(1n << 54n), max: 1n << 54n }), fc.constantFrom(...EDGES)), { maxLength: 200 }),
        fc.boolean(),
        fc.constantFrom(Infinity, 0, 978_307_260_000, -5),
        (vals, withNulls, maxMs) => {
          const values = BigInt64Array.from(vals)
          const validity = withNulls ? Uint8Array.from({ length: (vals.length + 7) >> 3 }, (_, i) => (i * 37) & 0xff) : null
          expect(k.eventTimeStats(values, validity, values.length, maxMs)).toEqual(reference(values, validity, maxMs))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('reads views at an offset and only the first n rows', () => {
    const all = BigInt64Array.from([5_000n, 7_000n, 9_999n, 123_456_789n])
    expect(k.eventTimeStats(all.subarray(1), null, 2)).toEqual({ max: 9, min: 7, sum: 16, count: 2 })
    expect(k.eventTimeStats(all, null, 0)).toEqual({ max: -Infinity, min: Infinity, sum: 0, count: 0 })
    expect(() => k.eventTimeStats(all, null, 5)).toThrow(/5 rows/)
  })

  it('sums in row order across the pieces of a column longer than one WASM call (2^20 rows)', () => {
    const n = (1 << 20) + 12_345
    const values = new BigInt64Array(n)
    for (let i = 0; i < n; i++) values[i] = 978_307_260_000_000n + BigInt(i) * 3_999_987n
    const validity = Uint8Array.from({ length: (n + 7) >> 3 }, (_, i) => (i % 3 === 0 ? 0xf7 : 0xff))
    expect(k.eventTimeStats(values, validity, n)).toEqual(reference(values, validity, Infinity))
  })
})
