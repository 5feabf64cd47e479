/**
 * The small SQL expression language of `DataFrame.selectExpr` (a subset of Spark SQL, enough for the
 * usual Kafka idioms): column names (`a`, `a.b`, `` `odd name` ``), `*` and `a.*`, `CAST(e AS type)`,
 * functions `from_json(e, 'schema')`, `to_json(e)`, `struct(e, …)`, string and number literals, and
 * `e AS alias` or `e alias`. Operators are not parsed: use the DataFrame API for them.
 *
 *   df.selectExpr('CAST(key AS STRING) AS key', 'CAST(value AS STRING) AS json')
 *   df.selectExpr("to_json(struct(*)) AS value")
 *
 * @throws AnalysisError `PARSE_ERROR` naming the expression and position.
 */
import type { Schema } from '../batch.ts'
import { AnalysisError } from '../errors.ts'
import { parseJsonSchema } from '../exec/from-json.ts'
import { type Expr, parseType } from '../plan/expr.ts'

type Tok = { t: 'id' | 'str' | 'num' | 'sym'; v: string; p: number }

function tokenize(s: string): Tok[] {
  const out: Tok[] = []
  let p = 0
  while (p < s.length) {
    const c = s[p]!
    if (/\s/.test(c)) { p++; continue }
    if (c === '`') {
      const e = s.indexOf('`', p + 1)
      if (e < 0) throw err(s, p, 'a closing backquote')
      out.push({ t: 'id', v: s.slice(p + 1, e), p })
      p = e + 1
      continue
    }
    if (c === "'" || c === '"') {
      let e = p + 1, v = ''
      while (e < s.length && s[e] !== c) {
        if (s[e] === '\\' && e + 1 < s.length) e++
        v += s[e]
        e++
      }
      if (e >= s.length) throw err(s, p, 'a closing quote')
      out.push({ t: 'str', v, p })
      p = e + 1
      continue
    }
    const num = /^-?\d+(\.\d+)?/.exec(s.slice(p))
    if (num) { out.push({ t: 'num', v: num[0], p }); p += num[0].length; continue }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(p))
    if (id) { out.push({ t: 'id', v: id[0], p }); p += id[0].length; continue }
    if ('(),.*'.includes(c)) { out.push({ t: 'sym', v: c, p }); p++; continue }
    throw err(s, p, 'a name, literal, CAST(…), function call or alias')
  }
  return out
}

function err(s: string, p: number, expected: string): AnalysisError {
  return new AnalysisError('PARSE_ERROR', `Cannot parse selectExpr ${JSON.stringify(s)} at position ${p}: expected ${expected}`)
}

/** One selectExpr string as expressions (several for `*` / `a.*`). */
export function parseSelectExpr(text: string, schema: Schema): Expr[] {
  const toks = tokenize(text)
  let i = 0
  const peek = () => toks[i]
  const isSym = (v: string) => toks[i]?.t === 'sym' && toks[i]!.v === v
  const isKw = (v: string) => toks[i]?.t === 'id' && toks[i]!.v.toLowerCase() === v
  const expect = (v: string) => {
    if (!isSym(v)) throw err(text, toks[i]?.p ?? text.length, `'${v}'`)
    i++
  }
  const star = (prefix: string | null): Expr[] => {
    if (prefix === null) return schema.map((f) => ({ kind: 'col', name: f.name }))
    const f = schema.find((x) => x.name === prefix)
    if (f === undefined || (f.type !== 'struct' && f.type !== 'window')) throw new AnalysisError('UNRESOLVED_COLUMN', `Cannot expand ${prefix}.*: ${prefix} is not a struct column`)
    const names = f.type === 'window' ? ['start', 'end'] : (f.fields ?? []).map((x) => x.name)
    return names.map((n) => ({ kind: 'alias', name: n, expr: { kind: 'col', name: `${prefix}.${n}` } }))
  }
  const primary = (): Expr[] => {
    const t = peek()
    if (t === undefined) throw err(text, text.length, 'an expression')
    if (t.t === 'sym' && t.v === '*') { i++; return star(null) }
    if (t.t === 'str') { i++; return [{ kind: 'lit', value: t.v, type: 'string' }] }
    if (t.t === 'num') {
      i++
      const v = Number(t.v)
      return [{ kind: 'lit', value: v, type: Number.isInteger(v) && Math.abs(v) <= 2147483647 ? 'int32' : 'float64' }]
    }
    if (t.t !== 'id') throw err(text, t.p, 'an expression')
    i++
    if (isSym('(')) {
      i++
      const fn = t.v.toLowerCase()
      if (fn === 'cast') {
        const [e] = single(expr(), t.p)
        if (!isKw('as')) throw err(text, toks[i]?.p ?? text.length, 'AS in CAST(… AS type)')
        i++
        const ty = peek()
        if (ty?.t !== 'id') throw err(text, ty?.p ?? text.length, 'a type name')
        i++
        expect(')')
        return [{ kind: 'cast', expr: e!, to: parseType(ty.v) }]
      }
      const args: Expr[] = []
      if (!isSym(')')) {
        for (;;) {
          args.push(...expr())
          if (isSym(',')) { i++; continue }
          break
        }
      }
      expect(')')
      switch (fn) {
        case 'to_json': return [{ kind: 'toJson', expr: args[0]! }]
        case 'struct': return [{ kind: 'struct', exprs: args }]
        case 'from_json': {
          const sch = args[1]
          if (args.length !== 2 || sch?.kind !== 'lit' || typeof sch.value !== 'string') throw err(text, t.p, "from_json(expr, 'schema DDL')")
          return [{ kind: 'fromJson', expr: args[0]!, fields: parseJsonSchema(sch.value), failFast: false }]
        }
        default:
          throw new AnalysisError('UNSUPPORTED_EXPRESSION', `selectExpr supports CAST, from_json, to_json and struct; got ${t.v}(…) in ${JSON.stringify(text)} (use the DataFrame API for other functions)`)
      }
    }
    let name = t.v
    while (isSym('.')) {
      i++
      if (isSym('*')) { i++; return star(name) }
      const n = peek()
      if (n?.t !== 'id') throw err(text, n?.p ?? text.length, 'a field name after .')
      i++
      name += '.' + n.v
    }
    return [{ kind: 'col', name }]
  }
  const single = (es: Expr[], p: number): Expr[] => {
    if (es.length !== 1) throw err(text, p, 'one expression (not *)')
    return es
  }
  const expr = (): Expr[] => primary()
  const start = peek()?.p ?? 0
  let out = expr()
  if (i < toks.length) {
    if (isKw('as')) i++
    const a = peek()
    if (a?.t !== 'id') throw err(text, a?.p ?? text.length, 'an alias')
    i++
    out = single(out, start).map((e) => ({ kind: 'alias', expr: e, name: a.v }))
  }
  if (i < toks.length) throw err(text, toks[i]!.p, 'the end of the expression')
  return out
}
