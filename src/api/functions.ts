import { parseIntervalUs } from '../util/interval.ts'
import { AnalysisError } from '../errors.ts'
import type { AggFn } from '../plan/expr.ts'
import type { Field } from '../batch.ts'
import { parseJsonSchema } from '../exec/from-json.ts'
import { Column, col, toCol } from './column.ts'

/**
 * Tumbling or sliding event-time windows, as Spark's `window(timeColumn, windowDuration,
 * slideDuration = windowDuration, startTime = '0 seconds')` (TimeWindow.scala): each row goes to every
 * window `[start, start + windowDuration)` with `start ≡ startTime (mod slideDuration)` that contains
 * its timestamp; a null timestamp drops the row. The result is a struct column `window {start, end}`
 * of timestamps (µs). Durations are interval strings such as '10 seconds' or '1 hour'.
 * @throws AnalysisError `INVALID_WINDOW` unless window > 0, 0 < slide ≤ window, |startTime| < slide.
 */
export function window(timeColumn: string | Column, windowDuration: string, slideDuration?: string, startTime?: string): Column {
  const windowUs = parseIntervalUs(windowDuration, 'window duration')
  const slideUs = slideDuration === undefined ? windowUs : parseIntervalUs(slideDuration, 'slide duration')
  const startUs = startTime === undefined ? 0 : parseIntervalUs(startTime, 'start time')
  if (windowUs <= 0) throw new AnalysisError('INVALID_WINDOW', `The window duration (${windowDuration}) must be greater than 0.`)
  if (slideUs <= 0) throw new AnalysisError('INVALID_WINDOW', `The slide duration (${slideDuration}) must be greater than 0.`)
  if (slideUs > windowUs) {
    throw new AnalysisError('INVALID_WINDOW', `The slide duration (${slideDuration}) must be less than or equal to the window duration (${windowDuration}).`)
  }
  if (Math.abs(startUs) >= slideUs) {
    throw new AnalysisError('INVALID_WINDOW', `The absolute value of start time (${startTime}) must be less than the slide duration (${slideDuration ?? windowDuration}).`)
  }
  return new Column({ kind: 'window', expr: toCol(timeColumn).expr, windowUs, slideUs, startUs })
}

/** Seconds since the epoch (int/long/double) → timestamp, as Spark's `timestamp_seconds`. */
export function timestamp_seconds(c: string | Column): Column {
  return toCol(c).cast('timestamp')
}

function agg(fn: AggFn, c: string | Column | null): Column {
  return new Column({ kind: 'agg', fn, expr: c === null ? null : toCol(c).expr })
}

/** `count('*')` counts rows; `count(col)` counts non-null values. Result: long (Int64). */
export function count(c: string | Column): Column {
  return agg('count', c === '*' ? null : c)
}
/** Sum: long (Int64) for integer inputs, double for floating point; NULL when every input is NULL. */
export function sum(c: string | Column): Column {
  return agg('sum', c)
}
/** Average as double (Float64); NULL when every input is NULL. */
export function avg(c: string | Column): Column {
  return agg('avg', c)
}
/** Alias of {@link avg}. */
export const mean = avg
/** Minimum, in the input's type (numbers and timestamps). */
export function min(c: string | Column): Column {
  return agg('min', c)
}
/** Maximum, in the input's type (numbers and timestamps). */
export function max(c: string | Column): Column {
  return agg('max', c)
}

/** Ascending order of a column, for orderBy(). */
export function asc(c: string | Column): Column {
  return toCol(c).asc()
}
/** Descending order of a column, for orderBy(). */
export function desc(c: string | Column): Column {
  return toCol(c).desc()
}

/**
 * Parses a column of JSON objects into a struct column, as Spark's `from_json(col, schema[, options])`:
 * `df.select(from_json(col('value').cast('string'), 'origin STRING, delay LONG, date TIMESTAMP').as('data')).select('data.*')`.
 * `schema` is a DDL string (`'a INT, b STRUCT<x: DOUBLE>'`), `{ name: 'type' }`, or Fields.
 * The input is a string column, or a binary one (read as UTF-8; `cast('string')` of a binary column is
 * fused away). Field conversions and null rules: see src/exec/from-json.ts (Spark's JacksonParser).
 * Options: `mode` 'PERMISSIVE' (default: a row that is not a JSON object gives all-null fields) or
 * 'FAILFAST' (such a row throws SourceError `MALFORMED_JSON`).
 * @throws AnalysisError `INVALID_SCHEMA` / `UNKNOWN_TYPE` for a bad schema, `DATATYPE_MISMATCH` for a non-string input (when the plan is built).
 */
export function from_json(c: string | Column, schema: string | readonly Field[] | Record<string, string>, options: { mode?: 'PERMISSIVE' | 'FAILFAST' } = {}): Column {
  const mode = (options.mode ?? 'PERMISSIVE').toUpperCase()
  if (mode !== 'PERMISSIVE' && mode !== 'FAILFAST') throw new AnalysisError('INVALID_OPTION', `from_json mode must be PERMISSIVE or FAILFAST, got ${options.mode}`)
  return new Column({ kind: 'fromJson', expr: toCol(c).expr, fields: parseJsonSchema(schema), failFast: mode === 'FAILFAST' })
}

/**
 * A struct column as JSON text per row, as Spark's `to_json` (null fields left out; timestamps as
 * `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC; binary as base64). The usual Kafka sink value:
 * `df.select(to_json(struct(col('a'), col('b'))).as('value'))`.
 */
export function to_json(c: string | Column): Column {
  return new Column({ kind: 'toJson', expr: toCol(c).expr })
}

/** Columns gathered into one struct column, as Spark's `struct(...)` (field names: the columns' names). */
export function struct(...cols: (string | Column)[]): Column {
  return new Column({ kind: 'struct', exprs: cols.map((c) => toCol(c).expr) })
}

export { col, column, lit } from './column.ts'
