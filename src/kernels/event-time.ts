/**
 * Event-time statistics of a timestamp column in milliseconds (Spark's EventTimeStats), without a
 * BigInt operation per row: each µs value is read as two 32-bit words and divided in doubles, which
 * is exact for |µs| < 2^53 (±285 years around 1970); other values take the BigInt path. Core module.
 */
export interface EventTimeStatsMs {
  max: number
  min: number
  sum: number
  count: number
}

const TWO32 = 4294967296

/**
 * Over rows [0, n) of `values` (µs) that are valid: ms = trunc(µs / 1000), as Number(µs / 1000n);
 * values with ms > maxMs are left out. Empty: max -Infinity, min Infinity, count 0.
 */
export function eventTimeStatsMs(values: BigInt64Array, validity: Uint8Array | null, n: number, maxMs = Infinity): EventTimeStatsMs {
  const w = new Int32Array(values.buffer, values.byteOffset, 2 * n)
  let max = -Infinity, min = Infinity, sum = 0, count = 0
  for (let i = 0; i < n; i++) {
    if (validity !== null && (validity[i >> 3]! & (1 << (i & 7))) === 0) continue
    const hi = w[2 * i + 1]!
    let ms: number
    if (hi >= -0x200000 && hi < 0x200000) {
      const us = hi * TWO32 + (w[2 * i]! >>> 0) // exact: |us| < 2^53
      ms = Math.trunc(us / 1000) + 0 // + 0: no -0
      // the division rounds: correct the quotient so that us - ms * 1000 lies in (-1000, 1000) with the sign of us
      const r = us - ms * 1000
      if (us >= 0) {
        if (r < 0) ms--
        else if (r >= 1000) ms++
      } else if (r > 0) ms++
      else if (r <= -1000) ms--
    } else {
      ms = Number(values[i]! / 1000n)
    }
    if (ms > maxMs) continue
    if (ms > max) max = ms
    if (ms < min) min = ms
    sum += ms
    count++
  }
  return { max, min, sum, count }
}
