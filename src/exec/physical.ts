import { type Batch, type Schema, concatBatches, filterBatch, makeBatch, selectColumns, sliceBatch, takeBatch } from '../batch.ts'
import { AnalysisError } from '../errors.ts'
import { MemoryFs } from '../fs.ts'
import type { Executor } from '../kernels/executor.ts'
import type { EventTimeStats, Kernels } from '../kernels/kernels.ts'
import { exprName, resolveColumn } from '../plan/expr.ts'
import type { Plan } from '../plan/logical.ts'
import type { SourceProvider } from '../sources/source.ts'
import { valueAt } from '../util/rows.ts'
import { AggregateOperator, type OutputMode } from './aggregate.ts'
import { evalExpr } from './eval.ts'

type Aggregate = Extract<Plan, { kind: 'aggregate' }>
export type WatermarkNode = Extract<Plan, { kind: 'watermark' }>

/** A query cut at its one stateful operator: stateless stages before and after it. */
export interface PhysicalPlan {
  readonly source: SourceProvider
  /** The source columns the query reads (see {@link pruneColumns}). */
  readonly sourceSchema: Schema
  readonly pre: readonly Plan[]
  readonly aggregate: Aggregate | null
  readonly post: readonly Plan[]
  readonly watermarks: readonly WatermarkNode[]
}

export function compile(plan: Plan): PhysicalPlan {
  const chain: Plan[] = []
  let p = plan
  while (p.kind !== 'source') {
    chain.unshift(p)
    p = p.child
  }
  const aggs = chain.filter((n): n is Aggregate => n.kind === 'aggregate')
  if (aggs.length > 1) {
    throw new AnalysisError('MULTIPLE_AGGREGATIONS', 'Multiple streaming aggregations are not supported with streaming DataFrames/Datasets')
  }
  const at = aggs.length === 1 ? chain.indexOf(aggs[0]!) : chain.length
  const { sourceSchema, projections } = pruneColumns(plan)
  return {
    source: p.provider,
    sourceSchema,
    pre: chain.slice(0, at).map((n) => (n.kind === 'project' ? pruneProjection(n, projections.get(n)!) : n)),
    aggregate: aggs[0] ?? null,
    post: chain.slice(at + 1),
    watermarks: chain.filter((n): n is WatermarkNode => n.kind === 'watermark'),
  }
}

type Project = Extract<Plan, { kind: 'project' }>

/**
 * Column pruning: the columns of the plan's source that the query reads — those its output carries
 * to the sink and those its expressions, watermark and grouping reference, in the source's order (at
 * least one column, so batches keep their row counts) — and, per projection, the positions of the
 * expressions whose output is used (others need not be computed).
 */
export function pruneColumns(plan: Plan): { sourceSchema: Schema; projections: Map<Project, number[]> } {
  const refs = (e: unknown, out: Set<string>): void => {
    if (Array.isArray(e)) {
      for (const x of e) refs(x, out)
      return
    }
    if (e === null || typeof e !== 'object') return
    const x = e as { kind?: unknown; name?: unknown }
    if (x.kind === 'col' && typeof x.name === 'string') {
      // 'a.b.c' may be column 'a.b.c', or fields of column 'a' or 'a.b'
      const parts = x.name.split('.')
      for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join('.'))
      return
    }
    for (const v of Object.values(e)) if (typeof v === 'object') refs(v, out)
  }
  const projections = new Map<Project, number[]>()
  let need = new Set(plan.schema.map((f) => f.name))
  let p = plan
  while (p.kind !== 'source') {
    const uses = new Set<string>()
    switch (p.kind) {
      case 'project': {
        const node = p
        let kept = node.exprs.map((_, i) => i).filter((i) => need.has(node.schema[i]!.name))
        if (kept.length === 0) kept = [0]
        for (const i of kept) refs(node.exprs[i], uses)
        projections.set(node, kept)
        need = uses
        break
      }
      case 'aggregate':
        need = uses
        refs(p.keys, uses)
        refs(p.aggs, uses)
        break
      case 'filter':
        refs(p.condition, need)
        break
      case 'watermark':
        refs({ kind: 'col', name: p.column }, need)
        break
      case 'sort':
        refs(p.orders, need)
        break
      case 'limit':
        break
    }
    p = p.child
  }
  const schema = p.schema.filter((f) => need.has(f.name))
  return { sourceSchema: schema.length > 0 || p.schema.length === 0 ? schema : p.schema.slice(0, 1), projections }
}

/** `node` computing only the expressions at `kept`. */
function pruneProjection(node: Project, kept: readonly number[]): Project {
  if (kept.length === node.exprs.length) return node
  return { ...node, exprs: kept.map((i) => node.exprs[i]!), schema: kept.map((i) => node.schema[i]!) }
}

/** Event-time statistics of one watermark node over one batch, in ms (Spark's EventTimeStats). */
export type { EventTimeStats }

/** Where {@link runStage} puts the event-time statistics of watermark nodes. */
export interface StatsContext {
  readonly stats: Map<WatermarkNode, EventTimeStats>
  readonly kernels: Kernels
  /** Event times after this (ms) are left out (see sluice.streaming.maxEventTimeAhead). */
  readonly maxEventTimeMs: number
}

/** Runs a stateless stage over a batch; watermark nodes record their event-time statistics in `ctx`. */
export function runStage(node: Plan, batch: Batch, ctx?: StatsContext): Batch {
  switch (node.kind) {
    case 'project':
      return makeBatch(node.schema, node.exprs.map((e) => evalExpr(e, batch)), batch.numRows)
    case 'filter': {
      const mask = evalExpr(node.condition, batch)
      return filterBatch(batch, mask.values as Uint8Array, mask.validity)
    }
    case 'watermark': {
      if (ctx && batch.numRows > 0) ctx.stats.set(node, eventTimeStats(batch, node.column, ctx))
      return batch
    }
    case 'sort':
      return sortBatch(batch, node)
    case 'limit':
      return batch.numRows <= node.n ? batch : sliceBatch(batch, 0, node.n)
    default:
      throw new Error(`unreachable: ${node.kind} as a stateless stage`)
  }
}

/** Event-time statistics in ms (Spark's EventTimeStats, computed in WASM); a window column counts by its end. */
function eventTimeStats(batch: Batch, column: string, ctx: StatsContext): EventTimeStats {
  const r = resolveColumn(batch.schema, column)
  let c = batch.columns[r.index]!
  if (c.type === 'window') c = c.children!.end
  return ctx.kernels.eventTimeStats(c.values as BigInt64Array, c.validity, c.length, ctx.maxEventTimeMs)
}

function sortBatch(batch: Batch, node: Extract<Plan, { kind: 'sort' }>): Batch {
  const keys = node.orders.map((o) => ({ col: evalExpr(o.expr, batch), sign: o.ascending ? 1 : -1 }))
  const idx = Int32Array.from({ length: batch.numRows }, (_, i) => i)
  const cmpValue = (a: unknown, b: unknown): number => {
    if (a === b) return 0
    if (a === null) return -1 // Spark: NULLS FIRST for ascending
    if (b === null) return 1
    if (typeof a === 'object') return cmpValue((a as { start: number }).start, (b as { start: number }).start)
    return (a as number) < (b as number) ? -1 : 1
  }
  idx.sort((i, j) => {
    for (const k of keys) {
      const c = cmpValue(valueAt(k.col, i), valueAt(k.col, j))
      if (c !== 0) return c * k.sign
    }
    return i - j
  })
  return takeBatch(batch, idx)
}

/** Runs a non-streaming plan to completion (Spark's batch execution): one pass, aggregation emits every group. */
export async function executeBatchPlan(plan: Plan, kernels: Kernels, executor: Executor): Promise<Batch> {
  const phys = compile(plan)
  const source = await phys.source.createSource({ fs: new MemoryFs(), metadataPath: '', log: () => {}, schema: phys.sourceSchema })
  try {
    const end = await source.latestOffset(null, {})
    let batch = concatBatches(phys.sourceSchema, end === null ? [] : (await source.getBatch(null, end)).map((b) => selectColumns(b, phys.sourceSchema)))
    for (const node of phys.pre) batch = runStage(node, batch)
    if (phys.aggregate) {
      const a = phys.aggregate
      const op = new AggregateOperator(kernels, executor, a.child.schema, a.keys, a.aggs, new Set(), 'complete')
      try {
        batch = (await op.process(batch, null)).output
      } finally {
        op.dispose()
      }
    }
    for (const node of phys.post) batch = runStage(node, batch)
    return batch
  } finally {
    await source.stop()
  }
}

/** Spark's UnsupportedOperationChecker for the operations Sluice has. @throws AnalysisError */
export function checkStreamingPlan(phys: PhysicalPlan, mode: OutputMode): void {
  const a = phys.aggregate
  if (a === null && mode === 'complete') {
    throw new AnalysisError('COMPLETE_WITHOUT_AGGREGATION', 'Complete output mode not supported when there are no streaming aggregations on streaming DataFrames/Datasets')
  }
  if (a !== null && mode === 'append') {
    const hasWatermarkKey = a.keys.some((k) => a.schema.some((f) => f.name === exprName(k) && a.eventTime.has(f.name)))
    if (!hasWatermarkKey) {
      throw new AnalysisError(
        'APPEND_WITHOUT_WATERMARK',
        'Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark; ' +
          "add withWatermark() on the event-time column and group by it or by a window() over it, or use outputMode('update' | 'complete')",
      )
    }
  }
  for (const node of [...phys.pre, ...phys.post]) {
    if (node.kind === 'sort' && !(mode === 'complete' && phys.post.includes(node))) {
      throw new AnalysisError('SORT_ON_STREAM', 'Sorting is not supported on streaming DataFrames/Datasets, unless it is on aggregated DataFrame/Dataset in Complete output mode')
    }
    if (node.kind === 'limit' && mode !== 'complete') {
      throw new AnalysisError('LIMIT_ON_STREAM', 'Limits are not supported on streaming DataFrames/Datasets in Update or Append output modes')
    }
  }
}
