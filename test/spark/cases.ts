import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Test cases from Apache Spark's own suites, in ../shared/spark-cases (see its README). */
export interface SparkCase {
  id: string
  category: string
  kind: 'batch' | 'streaming'
  query: string
  input?: Record<string, unknown>[]
  expected?: { ordered: boolean; columns: string[]; rows: Record<string, unknown>[] }
  output_mode?: string
  steps?: Step[]
  parts?: { name: string; output_mode: string; steps: Step[] }[]
  notes?: string[]
}

export interface Step {
  action: string
  rows?: Record<string, unknown>[]
  [k: string]: unknown
}

const file = fileURLToPath(new URL('../../../shared/spark-cases/cases.json', import.meta.url))

export function sparkCase(id: string): SparkCase {
  const all = JSON.parse(readFileSync(file, 'utf8')) as { cases: SparkCase[] }
  const c = all.cases.find((x) => x.id === id)
  if (c === undefined) throw new Error(`Spark case ${id} not found in ${file}`)
  return c
}

/** Rows as sorted JSON strings, for order-insensitive comparison. */
export function bag(rows: readonly Record<string, unknown>[]): string[] {
  return rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1))))).sort()
}
