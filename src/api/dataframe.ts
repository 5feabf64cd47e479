import type { Table } from 'apache-arrow'
import type { Batch, Schema } from '../batch.ts'
import { tableFromBatches } from '../arrow.ts'
import { AnalysisError } from '../errors.ts'
import { executeBatchPlan } from '../exec/physical.ts'
import {
  type Plan, aggregateNode, explainPlan, filterNode, isStreaming, limitNode, projectNode, sortNode, watermarkNode,
} from '../plan/logical.ts'
import { parseIntervalMs } from '../util/interval.ts'
import { type Row, batchToRows } from '../util/rows.ts'
import { showString } from '../util/show.ts'
import { Column, col, toCol } from './column.ts'
import { count as countFn } from './functions.ts'
import type { SluiceSession } from './session.ts'
import { DataStreamWriter } from './writer.ts'
import { parseSelectExpr } from './select-expr.ts'

/**
 * A relational query over a batch or a stream, as Spark's DataFrame. Transformations build a
 * logical plan (resolved at once: unknown columns throw `AnalysisError` here); a batch DataFrame
 * runs with `collect()` / `show()`, a streaming one with `writeStream…start()`.
 */
export class DataFrame {
  /** @internal */
  readonly plan: Plan
  /** @internal */
  readonly session: SluiceSession

  constructor(session: SluiceSession, plan: Plan) {
    this.session = session
    this.plan = plan
  }

  get schema(): Schema {
    return this.plan.schema
  }

  get columns(): string[] {
    return this.plan.schema.map((f) => f.name)
  }

  /** True when the DataFrame reads a streaming source. */
  get isStreaming(): boolean {
    return isStreaming(this.plan)
  }

  /** Columns or expressions; a name `'s.*'` expands to the fields of the struct (or window) column `s`, `'*'` to every column. */
  select(...cols: (string | Column)[]): DataFrame {
    return this.with(projectNode(this.plan, cols.flatMap((c) => (typeof c === 'string' && (c === '*' || c.endsWith('.*')) ? parseSelectExpr(c, this.schema) : [toCol(c).expr]))))
  }

  /**
   * Spark's selectExpr for the SQL forms Sluice parses (see src/api/select-expr.ts): names, `*`,
   * `s.*`, `CAST(e AS type)`, `from_json(e, 'ddl')`, `to_json(e)`, `struct(…)`, `e AS alias`.
   * @throws AnalysisError `PARSE_ERROR` / `UNSUPPORTED_EXPRESSION`
   */
  selectExpr(...exprs: string[]): DataFrame {
    return this.with(projectNode(this.plan, exprs.flatMap((e) => parseSelectExpr(e, this.schema))))
  }

  filter(condition: Column): DataFrame {
    return this.with(filterNode(this.plan, condition.expr))
  }

  where(condition: Column): DataFrame {
    return this.filter(condition)
  }

  /** Adds or replaces a column. */
  withColumn(name: string, c: Column): DataFrame {
    const exprs = this.columns.map((n) => (n === name ? c.as(name) : col(n)).expr)
    if (!this.columns.includes(name)) exprs.push(c.as(name).expr)
    return this.with(projectNode(this.plan, exprs))
  }

  withColumnRenamed(existing: string, name: string): DataFrame {
    return this.with(projectNode(this.plan, this.columns.map((n) => (n === existing ? col(n).as(name) : col(n)).expr)))
  }

  /** Drops columns; unknown names are ignored (as Spark). */
  drop(...names: string[]): DataFrame {
    return this.with(projectNode(this.plan, this.columns.filter((n) => !names.includes(n)).map((n) => col(n).expr)))
  }

  /**
   * Declares `eventTime` (a timestamp column) as event time with a watermark `delayThreshold`
   * behind the largest event time seen (Spark's withWatermark): after each micro-batch the watermark
   * becomes max(eventTime) − delay (never moving back) and applies from the next batch; stateful
   * operators drop rows at or below it and evict state past it.
   */
  withWatermark(eventTime: string, delayThreshold: string): DataFrame {
    return this.with(watermarkNode(this.plan, eventTime, parseIntervalMs(delayThreshold, 'watermark delay')))
  }

  /** Groups by columns or expressions (including `window(...)`); aggregate with `.agg(...)`. */
  groupBy(...cols: (string | Column)[]): GroupedData {
    return new GroupedData(this, cols.map(toCol))
  }

  /** Global aggregation (no grouping keys). */
  agg(...aggs: Column[]): DataFrame {
    return this.groupBy().agg(...aggs)
  }

  /** Sorts a batch DataFrame (or a Complete-mode aggregation): columns ascending unless given as desc(col). */
  orderBy(...cols: (string | Column)[]): DataFrame {
    const orders = cols.map((c) => {
      const e = toCol(c).expr
      return e.kind === 'sortOrder' ? { expr: e.expr, ascending: e.ascending } : { expr: e, ascending: true }
    })
    return this.with(sortNode(this.plan, orders))
  }

  sort(...cols: (string | Column)[]): DataFrame {
    return this.orderBy(...cols)
  }

  limit(n: number): DataFrame {
    return this.with(limitNode(this.plan, n))
  }

  /** The plan as text (Spark's explain()). */
  explain(print: (s: string) => void = console.log): string {
    const text = `== Logical Plan ==\n${explainPlan(this.plan)}`
    print(text)
    return text
  }

  printSchema(print: (s: string) => void = console.log): void {
    print('root\n' + this.schema.map((f) => ` |-- ${f.name}: ${f.type} (nullable = ${f.nullable})`).join('\n'))
  }

  /** Runs a batch query and returns its result as one columnar batch. */
  async collectBatch(): Promise<Batch> {
    if (this.isStreaming) {
      throw new AnalysisError('STREAMING_COLLECT', 'Queries with streaming sources must be executed with writeStream.start()')
    }
    const { kernels, executor } = this.session.engine()
    return executeBatchPlan(this.plan, kernels, executor)
  }

  /** Runs a batch query: rows as plain objects (timestamps as epoch ms, windows as `{ start, end }`, longs as numbers). */
  async collect(): Promise<Row[]> {
    return batchToRows(await this.collectBatch())
  }

  /** Runs a batch query into an apache-arrow Table (timestamps µs UTC, strings dictionary-encoded). */
  async toArrow(): Promise<Table> {
    return tableFromBatches([await this.collectBatch()])
  }

  /** Number of rows of a batch query. */
  async count(): Promise<number> {
    const rows = await this.agg(countFn('*').as('count')).collect()
    return rows[0]!['count'] as number
  }

  async show(numRows = 20, truncate = true, print: (s: string) => void = console.log): Promise<void> {
    print(showString(await this.collectBatch(), numRows, truncate))
  }

  /** The interface for starting a streaming query. */
  get writeStream(): DataStreamWriter {
    if (!this.isStreaming) throw new AnalysisError('WRITE_STREAM_ON_BATCH', "'writeStream' can be called only on streaming DataFrames")
    return new DataStreamWriter(this)
  }

  private with(plan: Plan): DataFrame {
    return new DataFrame(this.session, plan)
  }
}

/** The result of `groupBy`, as Spark's RelationalGroupedDataset. */
export class GroupedData {
  constructor(private readonly df: DataFrame, private readonly keys: Column[]) {}

  /** Aggregates with count / sum / avg / min / max columns; output: the keys, then one column per aggregate. */
  agg(...aggs: Column[]): DataFrame {
    return new DataFrame(this.df.session, aggregateNode(this.df.plan, this.keys.map((k) => k.expr), aggs.map((a) => a.expr)))
  }

  count(): DataFrame {
    return this.agg(countFn('*').as('count'))
  }
}

