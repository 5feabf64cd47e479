import {
  type Batch, type Column, type DataType, type Values,
  DictionaryBuilder, allocValues, isValid, newValidity, setValid,
} from '../batch.ts'
import { AnalysisError } from '../errors.ts'
import { type Expr, resolveColumn, typeOf, exprName } from '../plan/expr.ts'
import { formatTimestamp, parseTimestampUs } from '../util/time.ts'
import { fromJsonColumn, structCellText, structColumn, toJsonColumn } from './from-json.ts'

/**
 * Vectorised evaluation of a scalar expression over a batch: one typed-array loop per operator,
 * no JS object per row. String predicates are evaluated once per dictionary entry.
 */
export function evalExpr(e: Expr, batch: Batch): Column {
  const n = batch.numRows
  switch (e.kind) {
    case 'col': {
      const r = resolveColumn(batch.schema, e.name)
      const c = batch.columns[r.index]!
      if (r.path) return r.path.reduce((x: Column, name) => (x.children as Record<string, Column>)[name]!, c)
      return r.sub ? c.children![r.sub] : c
    }
    case 'lit':
      return literalColumn(e.value, e.type, n)
    case 'alias':
      return evalExpr(e.expr, batch)
    case 'field':
      return (evalExpr(e.expr, batch).children as Record<string, Column>)[e.field]!
    case 'fromJson': {
      // from_json(CAST(binary AS STRING)): parse the bytes directly, without a string column in between
      const inner = e.expr.kind === 'cast' && e.expr.to === 'string' ? evalExpr(e.expr.expr, batch) : null
      return fromJsonColumn(inner !== null && inner.type === 'binary' ? inner : evalExpr(e.expr, batch), e.fields, e.failFast)
    }
    case 'toJson':
      return toJsonColumn(evalExpr(e.expr, batch))
    case 'struct':
      return structColumn(e.exprs.map(exprName), e.exprs.map((x) => evalExpr(x, batch)), n)
    case 'cast':
      return castColumn(evalExpr(e.expr, batch), e.to)
    case 'not': {
      const c = evalExpr(e.expr, batch)
      const src = c.values as Uint8Array
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = src[i] ? 0 : 1
      return { type: 'boolean', length: n, values: out, validity: c.validity }
    }
    case 'isNull': {
      const c = evalExpr(e.expr, batch)
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = isValid(c.validity, i) === e.negate ? 1 : 0
      return { type: 'boolean', length: n, values: out, validity: null }
    }
    case 'binary':
      return evalBinary(e, batch)
    case 'window':
    case 'agg':
    case 'sortOrder':
      throw new AnalysisError('UNSUPPORTED_EXPRESSION', `${exprName(e)} is only allowed in groupBy()/agg()`)
  }
}

export function literalColumn(value: unknown, type: DataType, n: number): Column {
  if (value === null || value === undefined) {
    return { type, length: n, values: allocValues(type, n), validity: newValidity(n, false), ...(type === 'string' ? { dictionary: [''] } : {}) }
  }
  switch (type) {
    case 'string':
      return { type, length: n, values: new Int32Array(n), validity: null, dictionary: [String(value)] }
    case 'boolean':
      return { type, length: n, values: new Uint8Array(n).fill(value ? 1 : 0), validity: null }
    case 'int32':
      return { type, length: n, values: new Int32Array(n).fill(Number(value)), validity: null }
    case 'float64':
      return { type, length: n, values: new Float64Array(n).fill(Number(value)), validity: null }
    case 'int64':
      return { type, length: n, values: new BigInt64Array(n).fill(BigInt(value as number)), validity: null }
    case 'timestamp': {
      const us = value instanceof Date ? BigInt(value.getTime()) * 1000n : typeof value === 'string' ? parseTimestampUs(value) : BigInt(value as number)
      if (us === null) throw new AnalysisError('INVALID_LITERAL', `Cannot parse '${String(value)}' as a timestamp`)
      return { type, length: n, values: new BigInt64Array(n).fill(us), validity: null }
    }
    default:
      throw new AnalysisError('INVALID_LITERAL', `Literals of type ${type} are not supported`)
  }
}

function andValidity(a: Uint8Array | null, b: Uint8Array | null, n: number): Uint8Array | null {
  if (a === null) return b
  if (b === null) return a
  const out = new Uint8Array((n + 7) >> 3)
  for (let i = 0; i < out.length; i++) out[i] = a[i]! & b[i]!
  return out
}

function toFloat64(c: Column): Float64Array {
  if (c.values instanceof Float64Array) return c.values
  const n = c.length
  const out = new Float64Array(n)
  const v = c.values
  if (v instanceof BigInt64Array) {
    const scale = c.type === 'timestamp' ? 1e6 : 1
    for (let i = 0; i < n; i++) out[i] = Number(v[i]!) / scale
  } else {
    const src = v as Int32Array
    for (let i = 0; i < n; i++) out[i] = src[i]!
  }
  return out
}

function toBigInt64(c: Column): BigInt64Array {
  if (c.values instanceof BigInt64Array) return c.values
  const n = c.length
  const out = new BigInt64Array(n)
  if (c.values instanceof Float64Array) {
    const src = c.values
    for (let i = 0; i < n; i++) out[i] = Number.isFinite(src[i]!) ? BigInt(Math.trunc(src[i]!)) : 0n
  } else {
    const src = c.values as Int32Array
    for (let i = 0; i < n; i++) out[i] = BigInt(src[i]!)
  }
  return out
}

function evalBinary(e: Extract<Expr, { kind: 'binary' }>, batch: Batch): Column {
  const n = batch.numRows
  const resultType = typeOf(e, batch.schema)
  let l = evalExpr(e.left, batch)
  let r = evalExpr(e.right, batch)
  if (e.op === 'and' || e.op === 'or') return kleene(e.op, l, r, n)
  const validity = andValidity(l.validity, r.validity, n)
  if (resultType === 'boolean') {
    // comparisons
    if (l.type === 'timestamp' && r.type === 'string') r = castColumn(r, 'timestamp')
    if (r.type === 'timestamp' && l.type === 'string') l = castColumn(l, 'timestamp')
    const out = new Uint8Array(n)
    const op = e.op
    if (l.type === 'string' && r.type === 'string') {
      const ld = l.dictionary!, rd = r.dictionary!
      const lc = l.values as Int32Array, rc = r.values as Int32Array
      if (rd.length === 1) {
        const s = rd[0]!
        const perCode = Uint8Array.from(ld, (x) => (cmp(op, x < s ? -1 : x > s ? 1 : 0) ? 1 : 0))
        for (let i = 0; i < n; i++) out[i] = perCode[lc[i]!]!
      } else {
        for (let i = 0; i < n; i++) {
          const a = ld[lc[i]!]!, b = rd[rc[i]!]!
          out[i] = cmp(op, a < b ? -1 : a > b ? 1 : 0) ? 1 : 0
        }
      }
    } else if (l.type === 'boolean' || l.type === 'float64' || r.type === 'float64' || l.type === 'int32' && r.type === 'int32') {
      const a = l.type === 'boolean' ? l.values as Uint8Array : toFloat64(l)
      const b = r.type === 'boolean' ? r.values as Uint8Array : toFloat64(r)
      for (let i = 0; i < n; i++) out[i] = cmp(op, a[i]! < b[i]! ? -1 : a[i]! > b[i]! ? 1 : 0) ? 1 : 0
    } else {
      const a = toBigInt64(l), b = toBigInt64(r)
      for (let i = 0; i < n; i++) out[i] = cmp(op, a[i]! < b[i]! ? -1 : a[i]! > b[i]! ? 1 : 0) ? 1 : 0
    }
    return { type: 'boolean', length: n, values: out, validity }
  }
  if (resultType === 'float64') {
    const a = toFloat64(l), b = toFloat64(r)
    const out = new Float64Array(n)
    let outValidity = validity
    switch (e.op) {
      case '+': for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!; break
      case '-': for (let i = 0; i < n; i++) out[i] = a[i]! - b[i]!; break
      case '*': for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!; break
      case '/':
      case '%': {
        // Spark: division or modulo by zero gives NULL
        outValidity = validity === null ? newValidity(n) : validity.slice()
        for (let i = 0; i < n; i++) {
          if (b[i] === 0) setValid(outValidity, i, false)
          else out[i] = e.op === '/' ? a[i]! / b[i]! : a[i]! % b[i]!
        }
        break
      }
    }
    return { type: 'float64', length: n, values: out, validity: outValidity }
  }
  if (resultType === 'int32') {
    const a = l.values as Int32Array, b = r.values as Int32Array
    const out = new Int32Array(n)
    let outValidity = validity
    switch (e.op) {
      case '+': for (let i = 0; i < n; i++) out[i] = (a[i]! + b[i]!) | 0; break
      case '-': for (let i = 0; i < n; i++) out[i] = (a[i]! - b[i]!) | 0; break
      case '*': for (let i = 0; i < n; i++) out[i] = Math.imul(a[i]!, b[i]!); break
      case '%':
        outValidity = validity === null ? newValidity(n) : validity.slice()
        for (let i = 0; i < n; i++) {
          if (b[i] === 0) setValid(outValidity, i, false)
          else out[i] = a[i]! % b[i]!
        }
        break
    }
    return { type: 'int32', length: n, values: out, validity: outValidity }
  }
  // int64 (or timestamp arithmetic kept as int64 µs)
  const a = toBigInt64(l), b = toBigInt64(r)
  const out = new BigInt64Array(n)
  let outValidity = validity
  switch (e.op) {
    case '+': for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, a[i]! + b[i]!); break
    case '-': for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, a[i]! - b[i]!); break
    case '*': for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, a[i]! * b[i]!); break
    case '%':
      outValidity = validity === null ? newValidity(n) : validity.slice()
      for (let i = 0; i < n; i++) {
        if (b[i] === 0n) setValid(outValidity, i, false)
        else out[i] = a[i]! % b[i]!
      }
      break
  }
  return { type: resultType, length: n, values: out, validity: outValidity }
}

function cmp(op: string, c: number): boolean {
  switch (op) {
    case '=': return c === 0
    case '!=': return c !== 0
    case '<': return c < 0
    case '<=': return c <= 0
    case '>': return c > 0
    default: return c >= 0
  }
}

/** SQL three-valued AND / OR. */
function kleene(op: 'and' | 'or', l: Column, r: Column, n: number): Column {
  const a = l.values as Uint8Array, b = r.values as Uint8Array
  const out = new Uint8Array(n)
  const anyNull = l.validity !== null || r.validity !== null
  const validity = anyNull ? newValidity(n) : null
  for (let i = 0; i < n; i++) {
    const av = isValid(l.validity, i), bv = isValid(r.validity, i)
    if (op === 'and') {
      if ((av && a[i] === 0) || (bv && b[i] === 0)) out[i] = 0
      else if (av && bv) out[i] = 1
      else setValid(validity!, i, false)
    } else {
      if ((av && a[i] !== 0) || (bv && b[i] !== 0)) out[i] = 1
      else if (av && bv) out[i] = 0
      else setValid(validity!, i, false)
    }
  }
  return { type: 'boolean', length: n, values: out, validity }
}

/** Spark's CAST semantics for the types Sluice has; unparsable values become NULL. */
export function castColumn(c: Column, to: DataType): Column {
  if (c.type === to) return c
  if (c.type === 'binary' && to === 'string') return binaryToString(c)
  if (c.type === 'string' && to === 'binary') return stringToBinary(c)
  if (c.type === 'binary' || to === 'binary') throw new AnalysisError('UNSUPPORTED_CAST', `Cannot cast ${c.type} to ${to}`)
  const n = c.length
  const validity = c.validity === null ? newValidity(n) : c.validity.slice()
  let anyNull = c.validity !== null
  const markNull = (i: number) => { setValid(validity, i, false); anyNull = true }
  let values: Values
  if (c.type === 'string') {
    // evaluate once per dictionary entry
    const dict = c.dictionary!
    const codes = c.values as Int32Array
    const parsed = dict.map((s) => parseScalar(s, to))
    if (to === 'string') return c
    values = allocValues(to, n)
    const dst = values as unknown as { [i: number]: unknown }
    for (let i = 0; i < n; i++) {
      const v = parsed[codes[i]!]
      if (v === null || v === undefined) markNull(i)
      else dst[i] = v
    }
  } else if (to === 'string') {
    const dict: string[] = []
    const index = new Map<string, number>()
    const codes = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      if (!isValid(c.validity, i)) continue
      const s = formatScalar(c, i)
      let k = index.get(s)
      if (k === undefined) { k = dict.length; dict.push(s); index.set(s, k) }
      codes[i] = k
    }
    return { type: 'string', length: n, values: codes, validity: c.validity, dictionary: dict }
  } else if (to === 'timestamp') {
    const out = new BigInt64Array(n)
    if (c.values instanceof Float64Array) {
      const src = c.values
      for (let i = 0; i < n; i++) {
        if (Number.isFinite(src[i]!)) out[i] = BigInt(Math.trunc(src[i]! * 1e6))
        else markNull(i)
      }
    } else {
      const src = toBigInt64(c)
      for (let i = 0; i < n; i++) out[i] = src[i]! * 1_000_000n
    }
    values = out
  } else if (to === 'float64') {
    values = toFloat64(c)
  } else if (to === 'int64') {
    if (c.type === 'timestamp') {
      const src = c.values as BigInt64Array
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) {
        const q = src[i]! / 1_000_000n
        out[i] = src[i]! < 0n && q * 1_000_000n !== src[i]! ? q - 1n : q
      }
      values = out
    } else values = toBigInt64(c)
  } else if (to === 'int32') {
    const out = new Int32Array(n)
    if (c.type === 'timestamp') {
      const src = c.values as BigInt64Array
      for (let i = 0; i < n; i++) out[i] = Number(src[i]! / 1_000_000n) | 0
    } else if (c.values instanceof BigInt64Array) {
      const src = c.values
      for (let i = 0; i < n; i++) out[i] = Number(BigInt.asIntN(32, src[i]!))
    } else {
      const src = c.values as Float64Array | Uint8Array
      for (let i = 0; i < n; i++) out[i] = Math.trunc(src[i]!) | 0
    }
    values = out
  } else if (to === 'boolean') {
    const out = new Uint8Array(n)
    const src = toFloat64(c)
    for (let i = 0; i < n; i++) out[i] = src[i] !== 0 ? 1 : 0
    values = out
  } else {
    throw new AnalysisError('UNSUPPORTED_CAST', `Cannot cast ${c.type} to ${to}`)
  }
  return { type: to, length: n, values, validity: anyNull ? validity : null }
}

/** CAST(binary AS STRING): UTF-8 decoding (invalid sequences become U+FFFD), dictionary-coded. */
function binaryToString(c: Column): Column {
  const n = c.length
  const vals = c.values as Uint8Array[]
  const dict = new DictionaryBuilder()
  const codes = new Int32Array(n)
  for (let i = 0; i < n; i++) if (isValid(c.validity, i)) codes[i] = dict.code(utf8Decoder.decode(vals[i]!))
  return { type: 'string', length: n, values: codes, validity: c.validity, dictionary: dict.strings }
}

/** CAST(string AS BINARY): UTF-8 bytes, each dictionary entry encoded once. */
function stringToBinary(c: Column): Column {
  const n = c.length
  const enc = new TextEncoder()
  const bytes = (c.dictionary ?? []).map((s) => enc.encode(s))
  const codes = c.values as Int32Array
  const out = new Array<Uint8Array>(n)
  const empty = new Uint8Array(0)
  for (let i = 0; i < n; i++) out[i] = isValid(c.validity, i) ? bytes[codes[i]!]! : empty
  return { type: 'binary', length: n, values: out, validity: c.validity }
}

const utf8Decoder = new TextDecoder()

function parseScalar(s: string, to: DataType): unknown {
  const t = s.trim()
  switch (to) {
    case 'int32': {
      if (!/^[+-]?\d+$/.test(t)) return null
      const v = Number(t)
      return v >= -2147483648 && v <= 2147483647 ? v : null
    }
    case 'int64':
      if (!/^[+-]?\d+$/.test(t)) return null
      return BigInt.asIntN(64, BigInt(t)) === BigInt(t) ? BigInt(t) : null
    case 'float64': {
      if (t === '') return null
      const v = Number(t)
      return Number.isNaN(v) && t.toLowerCase() !== 'nan' ? null : v
    }
    case 'boolean':
      return /^(true|t|yes|y|1)$/i.test(t) ? 1 : /^(false|f|no|n|0)$/i.test(t) ? 0 : null
    case 'timestamp':
      return parseTimestampUs(t)
    default:
      return null
  }
}

function formatScalar(c: Column, i: number): string {
  switch (c.type) {
    case 'timestamp':
      return formatTimestamp((c.values as BigInt64Array)[i]!)
    case 'boolean':
      return (c.values as Uint8Array)[i] ? 'true' : 'false'
    case 'window':
      return `{${formatTimestamp((c.children!.start.values as BigInt64Array)[i]!)}, ${formatTimestamp((c.children!.end.values as BigInt64Array)[i]!)}}`
    case 'struct':
      return structCellText(c, i, formatScalar)
    case 'string':
      return c.dictionary![(c.values as Int32Array)[i]!]!
    default:
      return String((c.values as Int32Array)[i])
  }
}
