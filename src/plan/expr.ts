import type { DataType, Field, Schema } from '../batch.ts'
import { AnalysisError } from '../errors.ts'

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '=' | '!=' | '<' | '<=' | '>' | '>=' | 'and' | 'or'
export type AggFn = 'count' | 'sum' | 'avg' | 'min' | 'max'

/** Expression tree behind the public `Column`. */
export type Expr =
  | { readonly kind: 'col'; readonly name: string }
  | { readonly kind: 'lit'; readonly value: unknown; readonly type: DataType }
  | { readonly kind: 'alias'; readonly expr: Expr; readonly name: string }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'not'; readonly expr: Expr }
  | { readonly kind: 'isNull'; readonly expr: Expr; readonly negate: boolean }
  | { readonly kind: 'cast'; readonly expr: Expr; readonly to: DataType }
  | { readonly kind: 'field'; readonly expr: Expr; readonly field: string }
  | { readonly kind: 'window'; readonly expr: Expr; readonly windowUs: number; readonly slideUs: number; readonly startUs: number }
  | { readonly kind: 'agg'; readonly fn: AggFn; readonly expr: Expr | null }
  | { readonly kind: 'sortOrder'; readonly expr: Expr; readonly ascending: boolean }
  /** Spark's from_json: a string (or binary UTF-8) column of JSON objects parsed into a struct of `fields`. */
  | { readonly kind: 'fromJson'; readonly expr: Expr; readonly fields: readonly Field[]; readonly failFast: boolean }
  /** Spark's to_json: a struct column rendered as a JSON object per row (null fields omitted). */
  | { readonly kind: 'toJson'; readonly expr: Expr }
  /** Spark's struct(...): columns gathered into one struct column. */
  | { readonly kind: 'struct'; readonly exprs: readonly Expr[] }

export const TYPE_NAMES: Record<string, DataType> = {
  boolean: 'boolean', bool: 'boolean',
  int: 'int32', integer: 'int32', int32: 'int32', short: 'int32', byte: 'int32',
  long: 'int64', bigint: 'int64', int64: 'int64',
  double: 'float64', float: 'float64', float64: 'float64',
  string: 'string', utf8: 'string',
  timestamp: 'timestamp',
  binary: 'binary',
}

/** Resolves a Spark or Arrow type name ('int', 'long', 'double', 'timestamp', 'string', …). */
export function parseType(name: string): DataType {
  const t = TYPE_NAMES[name.toLowerCase()]
  if (t === undefined) {
    throw new AnalysisError('UNKNOWN_TYPE', `Unknown data type '${name}'; accepted: ${Object.keys(TYPE_NAMES).join(', ')}`)
  }
  return t
}

/** The output name Spark would give the expression. */
export function exprName(e: Expr): string {
  switch (e.kind) {
    case 'col':
      return e.name.includes('.') ? e.name.slice(e.name.lastIndexOf('.') + 1) : e.name
    case 'lit':
      return String(e.value)
    case 'alias':
      return e.name
    case 'binary':
      return `(${exprName(e.left)} ${e.op.toUpperCase()} ${exprName(e.right)})`
    case 'not':
      return `(NOT ${exprName(e.expr)})`
    case 'isNull':
      return `(${exprName(e.expr)} IS ${e.negate ? 'NOT ' : ''}NULL)`
    case 'cast':
      return `CAST(${exprName(e.expr)} AS ${e.to.toUpperCase()})`
    case 'field':
      return e.field
    case 'window':
      return 'window'
    case 'agg':
      return `${e.fn}(${e.expr === null ? '1' : exprName(e.expr)})`
    case 'sortOrder':
      return `${exprName(e.expr)} ${e.ascending ? 'ASC' : 'DESC'}`
    case 'fromJson':
      return `from_json(${exprName(e.expr)})`
    case 'toJson':
      return `to_json(${exprName(e.expr)})`
    case 'struct':
      return `struct(${e.exprs.map(exprName).join(', ')})`
  }
}

function numericRank(t: DataType): number {
  return t === 'int32' ? 1 : t === 'int64' ? 2 : t === 'float64' ? 3 : 0
}

/**
 * A column by name: a top-level field, a window bound (`window.start`), or a field of a struct
 * column (`data.x`, `data.inner.y`): then `path` lists the struct fields walked and `leaf` is the
 * field reached.
 */
export function resolveColumn(schema: Schema, name: string): { field: Field; index: number; sub?: 'start' | 'end'; path?: readonly string[]; leaf?: Field } {
  let i = schema.findIndex((f) => f.name === name)
  if (i >= 0) return { field: schema[i]!, index: i }
  const dot = name.lastIndexOf('.')
  if (dot > 0) {
    const parent = name.slice(0, dot)
    const sub = name.slice(dot + 1)
    i = schema.findIndex((f) => f.name === parent)
    if (i >= 0 && schema[i]!.type === 'window' && (sub === 'start' || sub === 'end')) {
      return { field: schema[i]!, index: i, sub }
    }
  }
  // struct fields: the longest top-level name that prefixes `name`, then one struct field per segment
  for (let cut = name.indexOf('.'); cut > 0; cut = name.indexOf('.', cut + 1)) {
    i = schema.findIndex((f) => f.name === name.slice(0, cut))
    if (i < 0 || schema[i]!.type !== 'struct') continue
    const path = name.slice(cut + 1).split('.')
    let f: Field | undefined = schema[i]!
    for (const seg of path) f = f?.type === 'struct' ? f.fields?.find((x) => x.name === seg) : undefined
    if (f !== undefined) return { field: schema[i]!, index: i, path, leaf: f }
  }
  throw new AnalysisError(
    'UNRESOLVED_COLUMN',
    `A column or function parameter with name '${name}' cannot be resolved. Did you mean one of: ${schema.map((f) => f.name).join(', ')}?`,
  )
}

/** The result type of `e` over `schema`. @throws AnalysisError for unknown columns and type mismatches. */
export function typeOf(e: Expr, schema: Schema): DataType {
  switch (e.kind) {
    case 'col': {
      const r = resolveColumn(schema, e.name)
      return r.sub ? 'timestamp' : r.leaf ? r.leaf.type : r.field.type
    }
    case 'lit':
      return e.type
    case 'alias':
      return typeOf(e.expr, schema)
    case 'binary': {
      const l = typeOf(e.left, schema)
      const r = typeOf(e.right, schema)
      if (e.op === 'and' || e.op === 'or') {
        if (l !== 'boolean' || r !== 'boolean') throw mismatch(e, l, r)
        return 'boolean'
      }
      if (e.op === '=' || e.op === '!=' || e.op === '<' || e.op === '<=' || e.op === '>' || e.op === '>=') {
        const comparable = l === r || (numericRank(l) > 0 && numericRank(r) > 0) || ((l === 'timestamp' || r === 'timestamp') && (l === 'string' || r === 'string'))
        if (!comparable) throw mismatch(e, l, r)
        return 'boolean'
      }
      if (numericRank(l) === 0 || numericRank(r) === 0) throw mismatch(e, l, r)
      if (e.op === '/') return 'float64'
      return numericRank(l) >= numericRank(r) ? l : r
    }
    case 'not':
      if (typeOf(e.expr, schema) !== 'boolean') throw new AnalysisError('DATATYPE_MISMATCH', `NOT needs a boolean: ${exprName(e.expr)}`)
      return 'boolean'
    case 'isNull':
      typeOf(e.expr, schema)
      return 'boolean'
    case 'cast':
      typeOf(e.expr, schema)
      return e.to
    case 'field': {
      const t = typeOf(e.expr, schema)
      if (t === 'struct') {
        const f = structFields(e.expr, schema).find((x) => x.name === e.field)
        if (f === undefined) throw new AnalysisError('FIELD_NOT_FOUND', `No such struct field ${e.field} in ${exprName(e.expr)} (fields: ${structFields(e.expr, schema).map((x) => x.name).join(', ')})`)
        return f.type
      }
      if (t !== 'window' || (e.field !== 'start' && e.field !== 'end')) throw new AnalysisError('DATATYPE_MISMATCH', `.${e.field} needs a window column (start, end) or a struct column: ${exprName(e.expr)}`)
      return 'timestamp'
    }
    case 'fromJson': {
      const t = typeOf(e.expr, schema)
      if (t !== 'string' && t !== 'binary') throw new AnalysisError('DATATYPE_MISMATCH', `from_json() needs a string column, but ${exprName(e.expr)} is ${t}`)
      return 'struct'
    }
    case 'toJson': {
      const t = typeOf(e.expr, schema)
      if (t !== 'struct' && t !== 'window') throw new AnalysisError('DATATYPE_MISMATCH', `to_json() needs a struct column, but ${exprName(e.expr)} is ${t}`)
      return 'string'
    }
    case 'struct':
      for (const x of e.exprs) typeOf(x, schema)
      return 'struct'
    case 'window': {
      const t = typeOf(e.expr, schema)
      if (t !== 'timestamp') {
        throw new AnalysisError('DATATYPE_MISMATCH', `window() needs a timestamp column, but ${exprName(e.expr)} is ${t}`)
      }
      return 'window'
    }
    case 'sortOrder':
      throw new AnalysisError('UNSUPPORTED_EXPRESSION', `${exprName(e)}: asc()/desc() are only allowed in orderBy()`)
    case 'agg': {
      if (e.expr === null) return 'int64'
      const t = typeOf(e.expr, schema)
      if (e.fn === 'count') return 'int64'
      if (e.fn === 'avg') {
        if (numericRank(t) === 0) throw new AnalysisError('DATATYPE_MISMATCH', `avg() needs a numeric column, but ${exprName(e.expr)} is ${t}`)
        return 'float64'
      }
      if (e.fn === 'sum') {
        if (numericRank(t) === 0) throw new AnalysisError('DATATYPE_MISMATCH', `sum() needs a numeric column, but ${exprName(e.expr)} is ${t}`)
        return t === 'float64' ? 'float64' : 'int64'
      }
      if (numericRank(t) === 0 && t !== 'timestamp') {
        throw new AnalysisError('DATATYPE_MISMATCH', `${e.fn}() needs a numeric or timestamp column, but ${exprName(e.expr)} is ${t}`)
      }
      return t
    }
  }
}

function mismatch(e: Extract<Expr, { kind: 'binary' }>, l: DataType, r: DataType): AnalysisError {
  return new AnalysisError('DATATYPE_MISMATCH', `Cannot resolve ${exprName(e)}: ${l} ${e.op} ${r}`)
}

export function containsAgg(e: Expr): boolean {
  switch (e.kind) {
    case 'agg':
      return true
    case 'alias': case 'not': case 'isNull': case 'cast': case 'field': case 'window': case 'sortOrder': case 'fromJson': case 'toJson':
      return containsAgg(e.expr)
    case 'struct':
      return e.exprs.some(containsAgg)
    case 'binary':
      return containsAgg(e.left) || containsAgg(e.right)
    default:
      return false
  }
}

/** The fields of a struct-typed expression (from_json's schema, struct(...)'s columns, a struct column or nested field). */
export function structFields(e: Expr, schema: Schema): readonly Field[] {
  switch (e.kind) {
    case 'alias':
      return structFields(e.expr, schema)
    case 'fromJson':
      return e.fields
    case 'struct':
      return e.exprs.map((x) => ({ name: exprName(x), type: typeOf(x, schema), nullable: true, ...(typeOf(x, schema) === 'struct' ? { fields: structFields(x, schema) } : {}) }))
    case 'col': {
      const r = resolveColumn(schema, e.name)
      return (r.leaf ?? r.field).fields ?? []
    }
    case 'field':
      return structFields(e.expr, schema).find((f) => f.name === e.field)?.fields ?? []
    default:
      return []
  }
}

/** Strips aliases. */
export function unalias(e: Expr): Expr {
  return e.kind === 'alias' ? unalias(e.expr) : e
}

/** The column an expression passes through unchanged (col, or an alias of col), if any. */
export function passthroughColumn(e: Expr): string | null {
  const u = unalias(e)
  return u.kind === 'col' && !u.name.includes('.') ? u.name : null
}
