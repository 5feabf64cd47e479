import * as v from 'valibot'
import { OptionError } from '../errors.ts'

/** Option values as users give them: Spark's options are strings; numbers and booleans are accepted too. */
export type OptionValue = string | number | boolean

const positiveInt = v.pipe(v.union([v.number(), v.string()]), v.transform(Number), v.integer(), v.minValue(1))
const bool = v.pipe(v.union([v.boolean(), v.string()]), v.transform((x) => x === true || x === 'true'))
const str = v.pipe(v.union([v.string(), v.number(), v.boolean()]), v.transform(String))

export const READER_OPTIONS = {
  maxRowsPerTrigger: positiveInt,
  maxFilesPerTrigger: positiveInt,
  mode: v.picklist(['PERMISSIVE', 'DROPMALFORMED', 'FAILFAST']),
  columnNameOfCorruptRecord: str,
  header: bool,
  sep: str,
  inferSchema: bool,
  pathGlobFilter: str,
  /** Skip (and report) files that are corrupt or do not match the schema, as Spark's ignoreCorruptFiles. */
  ignoreCorruptFiles: bool,
}

export const WRITER_OPTIONS = {
  path: str,
  checkpointLocation: str,
  numRows: positiveInt,
  truncate: bool,
  /** Sluice extension: with once/availableNow, move the watermark to +∞ at the end of input. */
  flushAtEnd: bool,
}

/**
 * Validates options against a table of valibot schemas.
 * @throws OptionError `UNKNOWN_OPTION` (listing the accepted names) or `INVALID_OPTION` (naming the value and what it must be).
 */
export function parseOptions<T extends Record<string, v.GenericSchema>>(
  what: string,
  table: T,
  given: ReadonlyMap<string, OptionValue>,
): { [K in keyof T]?: v.InferOutput<T[K]> } {
  const out: Record<string, unknown> = {}
  for (const [key, value] of given) {
    const schema = table[key]
    if (schema === undefined) {
      throw new OptionError('UNKNOWN_OPTION', `Unknown ${what} option '${key}'; accepted: ${Object.keys(table).join(', ')}`)
    }
    const r = v.safeParse(schema, value)
    if (!r.success) {
      throw new OptionError('INVALID_OPTION', `Invalid value for ${what} option '${key}': ${JSON.stringify(value)} (${r.issues.map((i) => i.message).join('; ')})`)
    }
    out[key] = r.output
  }
  return out as { [K in keyof T]?: v.InferOutput<T[K]> }
}
