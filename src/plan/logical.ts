import type { Field, Schema } from '../batch.ts'
import { AnalysisError } from '../errors.ts'
import type { SourceProvider } from '../sources/source.ts'
import { type Expr, containsAgg, exprName, passthroughColumn, resolveColumn, structFields, typeOf, unalias } from './expr.ts'

/**
 * The logical plan. Every node carries its output schema (resolved when the node is built, so
 * a bad column name fails at the call that names it) and `eventTime`: the output columns that carry
 * watermark metadata, with the delay of the `withWatermark` they came from.
 */
export type Plan =
  | Node<'source', { readonly provider: SourceProvider; readonly streaming: boolean }>
  | Node<'project', { readonly child: Plan; readonly exprs: readonly Expr[] }>
  | Node<'filter', { readonly child: Plan; readonly condition: Expr }>
  | Node<'watermark', { readonly child: Plan; readonly column: string; readonly delayMs: number }>
  | Node<'aggregate', { readonly child: Plan; readonly keys: readonly Expr[]; readonly aggs: readonly Expr[] }>
  | Node<'sort', { readonly child: Plan; readonly orders: readonly { expr: Expr; ascending: boolean }[] }>
  | Node<'limit', { readonly child: Plan; readonly n: number }>

type Node<K extends string, P> = { readonly kind: K; readonly schema: Schema; readonly eventTime: ReadonlyMap<string, number> } & P

export function sourceNode(provider: SourceProvider, streaming: boolean): Plan {
  return { kind: 'source', provider, streaming, schema: provider.schema, eventTime: new Map() }
}

export function projectNode(child: Plan, exprs: readonly Expr[]): Plan {
  const schema: Field[] = []
  const eventTime = new Map<string, number>()
  for (const e of exprs) {
    if (containsAgg(e)) throw new AnalysisError('AGGREGATE_IN_SELECT', `Aggregate ${exprName(e)} is only allowed in agg()`)
    if (unalias(e).kind === 'window') throw new AnalysisError('UNSUPPORTED_EXPRESSION', 'window() is only supported in groupBy()')
    const name = exprName(e)
    const type = typeOf(e, child.schema)
    schema.push(type === 'struct' ? { name, type, nullable: true, fields: structFields(e, child.schema) } : { name, type, nullable: true })
    const src = passthroughColumn(e)
    if (src !== null && child.eventTime.has(src)) eventTime.set(name, child.eventTime.get(src)!)
  }
  checkDuplicates(schema)
  return { kind: 'project', child, exprs, schema, eventTime }
}

export function filterNode(child: Plan, condition: Expr): Plan {
  const t = typeOf(condition, child.schema)
  if (t !== 'boolean') throw new AnalysisError('DATATYPE_MISMATCH', `filter() needs a boolean condition, but ${exprName(condition)} is ${t}`)
  return { kind: 'filter', child, condition, schema: child.schema, eventTime: child.eventTime }
}

export function watermarkNode(child: Plan, column: string, delayMs: number): Plan {
  const r = resolveColumn(child.schema, column)
  if (r.sub !== undefined || (r.field.type !== 'timestamp' && r.field.type !== 'window')) {
    throw new AnalysisError('INVALID_WATERMARK', `withWatermark('${column}') needs a timestamp or window column, but it is ${r.field.type}`)
  }
  if (delayMs < 0) throw new AnalysisError('INVALID_WATERMARK', `The watermark delay must not be negative: ${delayMs} ms`)
  const eventTime = new Map(child.eventTime)
  eventTime.set(column, delayMs)
  return { kind: 'watermark', child, column, delayMs, schema: child.schema, eventTime }
}

export function aggregateNode(child: Plan, keys: readonly Expr[], aggs: readonly Expr[]): Plan {
  if (aggs.length === 0) throw new AnalysisError('EMPTY_AGGREGATION', 'agg() needs at least one aggregate expression')
  const schema: Field[] = []
  const eventTime = new Map<string, number>()
  for (const k of keys) {
    if (containsAgg(k)) throw new AnalysisError('AGGREGATE_IN_GROUP_BY', `Aggregate ${exprName(k)} is not allowed in groupBy()`)
    const name = exprName(k)
    const keyType = typeOf(k, child.schema)
    if (keyType === 'struct') throw new AnalysisError('UNSUPPORTED_GROUPING', `Cannot group by the struct ${name}: group by its fields instead (e.g. col('${name}.x'))`)
    schema.push({ name, type: keyType, nullable: true })
    const u = unalias(k)
    const src = u.kind === 'window' ? passthroughColumn(u.expr) : passthroughColumn(k)
    if (src !== null && child.eventTime.has(src)) eventTime.set(name, child.eventTime.get(src)!)
  }
  for (const a of aggs) {
    const u = unalias(a)
    if (u.kind !== 'agg') throw new AnalysisError('NOT_AN_AGGREGATE', `agg() takes aggregate functions (count, sum, avg, min, max), got ${exprName(a)}`)
    if (u.expr !== null && containsAgg(u.expr)) throw new AnalysisError('NESTED_AGGREGATE', `Nested aggregate in ${exprName(a)}`)
    schema.push({ name: exprName(a), type: typeOf(a, child.schema), nullable: true })
  }
  checkDuplicates(schema)
  return { kind: 'aggregate', child, keys, aggs, schema, eventTime }
}

export function sortNode(child: Plan, orders: readonly { expr: Expr; ascending: boolean }[]): Plan {
  for (const o of orders) typeOf(o.expr, child.schema)
  return { kind: 'sort', child, orders, schema: child.schema, eventTime: child.eventTime }
}

export function limitNode(child: Plan, n: number): Plan {
  if (!Number.isInteger(n) || n < 0) throw new AnalysisError('INVALID_LIMIT', `limit() needs a non-negative integer, got ${n}`)
  return { kind: 'limit', child, n, schema: child.schema, eventTime: child.eventTime }
}

function checkDuplicates(schema: Schema): void {
  const seen = new Set<string>()
  for (const f of schema) {
    if (seen.has(f.name)) throw new AnalysisError('DUPLICATE_COLUMN', `Found duplicate column name '${f.name}'; rename one with .as()`)
    seen.add(f.name)
  }
}

export function isStreaming(p: Plan): boolean {
  return p.kind === 'source' ? p.streaming : isStreaming(p.child)
}

export function sources(p: Plan): SourceProvider[] {
  return p.kind === 'source' ? [p.provider] : sources(p.child)
}

export function collectNodes(p: Plan, kind: Plan['kind']): Plan[] {
  const here = p.kind === kind ? [p] : []
  return p.kind === 'source' ? here : [...collectNodes(p.child, kind), ...here]
}

/** A readable tree, as `df.explain()` prints it. */
export function explainPlan(p: Plan, indent = 0): string {
  const pad = '  '.repeat(indent) + (indent > 0 ? '+- ' : '')
  const cols = `[${p.schema.map((f) => `${f.name}: ${f.type}`).join(', ')}]`
  let line: string
  switch (p.kind) {
    case 'source': line = `${p.streaming ? 'StreamingRelation' : 'Relation'} ${p.provider.description} ${cols}`; break
    case 'project': line = `Project [${p.exprs.map(exprName).join(', ')}]`; break
    case 'filter': line = `Filter ${exprName(p.condition)}`; break
    case 'watermark': line = `EventTimeWatermark ${p.column}, ${p.delayMs} ms`; break
    case 'aggregate': line = `Aggregate [${p.keys.map(exprName).join(', ')}], [${p.aggs.map(exprName).join(', ')}]`; break
    case 'sort': line = `Sort [${p.orders.map((o) => `${exprName(o.expr)} ${o.ascending ? 'ASC' : 'DESC'}`).join(', ')}]`; break
    case 'limit': line = `Limit ${p.n}`; break
  }
  return pad + line + (p.kind === 'source' ? '' : '\n' + explainPlan(p.child, indent + 1))
}
