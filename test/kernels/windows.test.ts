import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { KernelError } from '../../src/errors.ts'
import { Kernels } from '../../src/kernels/kernels.ts'
import { refAssignWindows } from './reference.ts'

const S = 1_000_000n
let k: Kernels

beforeAll(async () => {
  k = await Kernels.load()
})

function bitmap(valid: boolean[]): Uint8Array {
  const b = new Uint8Array((valid.length + 7) >> 3)
  valid.forEach((v, i) => {
    if (v) b[i >> 3]! |= 1 << (i & 7)
  })
  return b
}

function check(ts: bigint[], valid: boolean[] | null, win: bigint, slide: bigint, start: bigint): void {
  const tsArr = BigInt64Array.from(ts)
  const validity = valid === null ? null : bitmap(valid)
  const got = k.assignWindows(tsArr, validity, win, slide, start)
  const want = refAssignWindows(tsArr, validity, win, slide, start)
  expect(Array.from(got.starts)).toEqual(want.starts)
  const identity = want.rows.length === ts.length && want.rows.every((r, i) => r === i)
  if (got.rows === null) expect(identity).toBe(true)
  else {
    expect(identity).toBe(false)
    expect(Array.from(got.rows)).toEqual(want.rows)
  }
}

describe('assignWindows', () => {
  it("matches Spark's example: 10 s window, 3 s slide", () => {
    const t = (19n * 3600n + 39n * 60n + 27n) * S
    const got = k.assignWindows(BigInt64Array.of(t), null, 10n * S, 3n * S, 0n)
    const base = (19n * 3600n + 39n * 60n) * S
    expect(Array.from(got.starts)).toEqual([18n, 21n, 24n, 27n].map((s) => base + s * S))
    expect(Array.from(got.rows!)).toEqual([0, 0, 0, 0])
  })

  it('tumbling windows without nulls return rows = null', () => {
    const ts = BigInt64Array.of(0n, 59n * S, 60n * S, 61n * S, -1n, -60n * S, -61n * S)
    const got = k.assignWindows(ts, null, 60n * S, 60n * S, 0n)
    expect(got.rows).toBeNull()
    expect(Array.from(got.starts)).toEqual([0n, 0n, 60n * S, 60n * S, -60n * S, -60n * S, -120n * S])
  })

  it('tumbling with nulls skips them and reports rows', () => {
    const got = k.assignWindows(BigInt64Array.of(5n, 15n, 25n, 35n), bitmap([true, false, true, true]), 10n, 10n, 0n)
    expect(Array.from(got.rows!)).toEqual([0, 2, 3])
    expect(Array.from(got.starts)).toEqual([0n, 20n, 30n])
  })

  it('a validity bitmap with every row valid still gives rows = null', () => {
    const got = k.assignWindows(BigInt64Array.of(5n, 15n), bitmap([true, true]), 10n, 10n, 0n)
    expect(got.rows).toBeNull()
  })

  it('negative startTime (offset) and negative timestamps', () => {
    check([-7n, -1n, 0n, 1n, 13n, -13n, 99n], null, 10n, 10n, -3n)
    check([-7n, -1n, 0n, 1n, 13n, -13n, 99n], null, 10n, 4n, -3n)
    check([-7n, -1n, 0n, 1n, 13n, -13n, 99n], null, 10n, 3n, 17n)
  })

  it('window shorter than the slide leaves gaps (rows without windows)', () => {
    check([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n], null, 3n, 5n, 1n)
  })

  it('empty input', () => {
    const got = k.assignWindows(new BigInt64Array(0), null, 10n, 5n, 0n)
    expect(got.rows).toBeNull()
    expect(got.starts.length).toBe(0)
  })

  it('rejects non-positive durations with KernelError', () => {
    expect(() => k.assignWindows(BigInt64Array.of(1n), null, 0n, 1n, 0n)).toThrow(KernelError)
    expect(() => k.assignWindows(BigInt64Array.of(1n), null, 10n, -1n, 0n)).toThrow(KernelError)
  })

  it('matches the reference on random inputs (tumbling, sliding, offsets, nulls)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(fc.bigInt(-(1n << 50n), 1n << 50n), fc.bigInt(-100n, 100n)), fc.boolean()), { maxLength: 200 }),
        fc.bigInt(1n, 1n << 30n),
        fc.integer({ min: 1, max: 12 }),
        fc.oneof(fc.constant(0n), fc.bigInt(-(1n << 32n), 1n << 32n)),
        fc.boolean(),
        fc.boolean(),
        (rows, slide, mult, start, withNulls, gappy) => {
          // window a multiple of the slide, not a multiple, or shorter than the slide
          const win = gappy ? (slide > 1n ? slide - 1n : 1n) : mult % 3 === 0 ? slide * BigInt(mult) : slide * BigInt(mult) + BigInt(mult % 5)
          check(rows.map((r) => r[0]), withNulls ? rows.map((r) => r[1]) : null, win, slide, start)
        },
      ),
      { numRuns: 400 },
    )
  })

  it('is exact for many rows and many windows per row (chunked internally)', () => {
    const n = 20_000
    const ts = BigInt64Array.from({ length: n }, (_, i) => BigInt(i * 7919 - 50_000_000))
    const valid = Array.from({ length: n }, (_, i) => i % 13 !== 5)
    // 1000 windows per row: 20M outputs, more than one WASM call
    const got = k.assignWindows(ts, bitmap(valid), 1000n, 1n, 0n)
    expect(got.starts.length).toBe(valid.filter(Boolean).length * 1000)
    const want = refAssignWindows(ts.subarray(0, 600), bitmap(valid.slice(0, 600)), 1000n, 1n, 0n)
    expect(Array.from(got.starts.subarray(0, want.starts.length))).toEqual(want.starts)
    expect(Array.from(got.rows!.subarray(0, want.rows.length))).toEqual(want.rows)
    const tailFrom = n - 600
    const tail = refAssignWindows(ts.subarray(tailFrom), bitmap(valid.slice(tailFrom)), 1000n, 1n, 0n)
    const m = tail.starts.length
    expect(Array.from(got.starts.subarray(got.starts.length - m))).toEqual(tail.starts)
    expect(Array.from(got.rows!.subarray(got.rows!.length - m))).toEqual(tail.rows.map((r) => r + tailFrom))
  })
})
