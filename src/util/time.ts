/** Timestamps are Int64 microseconds since the Unix epoch, UTC (as Spark's TimestampType). */

const TS_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i

/** Parses 'yyyy-MM-dd[ HH:mm[:ss[.fffffffff]]][Z|±hh:mm]' (zone-less text is UTC) into µs, or null. */
export function parseTimestampUs(text: string): bigint | null {
  const m = TS_RE.exec(text.trim())
  if (m === null) return null
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  if (Number.isNaN(ms)) return null
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000
  }
  const micros = frac === '' ? 0n : BigInt(frac.padEnd(6, '0').slice(0, 6))
  return BigInt(ms) * 1000n + micros
}

/** Spark's CAST(timestamp AS STRING) in UTC: 'yyyy-MM-dd HH:mm:ss[.ffffff]' (trailing zeros trimmed). */
export function formatTimestamp(us: bigint): string {
  const ms = floorDiv(us, 1000n)
  const micros = Number(us - ms * 1000n)
  const iso = new Date(Number(ms)).toISOString()
  let out = iso.slice(0, 10) + ' ' + iso.slice(11, 19)
  const frac = (Number(iso.slice(20, 23)) * 1000 + micros).toString().padStart(6, '0').replace(/0+$/, '')
  if (frac !== '') out += '.' + frac
  return out
}

/** ISO-8601 UTC with milliseconds, as Spark's progress reports print event times. */
export function isoMs(ms: number): string {
  return new Date(ms).toISOString()
}

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b
  return (a % b !== 0n) && ((a < 0n) !== (b < 0n)) ? q - 1n : q
}

/** µs → ms, truncating toward zero as Spark's EventTimeWatermarkExec (Long division). */
export function usToMs(us: bigint): number {
  return Number(us / 1000n)
}
