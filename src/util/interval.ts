import { OptionError } from '../errors.ts'

const UNIT_US: Record<string, number> = {
  microsecond: 1,
  millisecond: 1_000,
  second: 1_000_000,
  minute: 60_000_000,
  hour: 3_600_000_000,
  day: 86_400_000_000,
  week: 7 * 86_400_000_000,
}

const ALIASES: Record<string, string> = {
  us: 'microsecond', micro: 'microsecond', micros: 'microsecond', microseconds: 'microsecond',
  ms: 'millisecond', milli: 'millisecond', millis: 'millisecond', milliseconds: 'millisecond',
  s: 'second', sec: 'second', secs: 'second', seconds: 'second',
  m: 'minute', min: 'minute', mins: 'minute', minutes: 'minute',
  h: 'hour', hours: 'hour',
  d: 'day', days: 'day',
  weeks: 'week',
}

/**
 * Parses a Spark interval string ('10 seconds', '1 hour 30 minutes', 'interval 5 minutes', '-5 seconds')
 * into microseconds. Months and years are rejected, as Spark's window() does.
 * @throws OptionError `INVALID_INTERVAL` naming the text and the accepted units.
 */
export function parseIntervalUs(text: string, what = 'interval'): number {
  const src = String(text).trim().toLowerCase().replace(/^interval\s+/, '')
  const re = /\s*([+-]?\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(src)) !== null) {
    const unit = UNIT_US[m[2]!] !== undefined ? m[2]! : ALIASES[m[2]!]
    if (unit === undefined) break
    total += Math.round(Number(m[1]) * UNIT_US[unit]!)
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== src.length) {
    throw new OptionError(
      'INVALID_INTERVAL',
      `Invalid ${what} '${text}': expected '<number> <unit>' (e.g. '10 seconds', '1 hour 30 minutes'); units: ${Object.keys(UNIT_US).map((u) => u + 's').join(', ')}`,
    )
  }
  return total
}

export function parseIntervalMs(text: string, what?: string): number {
  return Math.trunc(parseIntervalUs(text, what) / 1000)
}
