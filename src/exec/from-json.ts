/**
 * JSON ↔ struct columns: Spark's `from_json` (JsonToStructs), `to_json` (StructsToJson) and
 * `struct(...)` (CreateNamedStruct), over whole columns.
 *
 * from_json parses each row once (one `JSON.parse` per row — per distinct string for a dictionary
 * column) and writes the fields straight into typed arrays and dictionary-coded strings; nested
 * objects become nested struct columns. Conversions follow Spark's JacksonParser:
 * int/long need a JSON integer in range; double takes any number and "NaN"/"Infinity"/"-Infinity";
 * boolean needs true/false; string takes a string, or the JSON text of any other value; timestamp
 * takes an ISO-8601 string (no zone = UTC) or an integer number of **seconds**; binary takes base64.
 * A value of the wrong type makes that field null (Spark ≥ 3.4's partial results); a row that is not
 * a JSON object gives a struct whose fields are all null (PERMISSIVE) or, with mode FAILFAST, a
 * SourceError `MALFORMED_JSON`; a null input row gives a null struct.
 */
import {
  type Column, type DataType, type Field, DictionaryBuilder, isValid, newValidity, setValid,
} from '../batch.ts'
import { AnalysisError, SourceError } from '../errors.ts'
import { TYPE_NAMES } from '../plan/expr.ts'
import { formatTimestamp, parseTimestampUs } from '../util/time.ts'

const utf8 = new TextDecoder()

interface Builder {
  add(v: unknown, i: number): void
  finish(): Column
}

function nullable(n: number) {
  let validity: Uint8Array | null = null
  return {
    nullAt(i: number) {
      validity ??= newValidity(n)
      setValid(validity, i, false)
    },
    get validity() {
      return validity
    },
  }
}

/** µs of 'yyyy-MM-ddTHH:mm:ss[.ffffff][Z]' (or a space for T) without a regex or BigInt; null for any other form. */
function fastIsoUs(s: string): number | null {
  const len = s.length
  if (len < 19 || len > 27) return null
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return null
  const t = s.charCodeAt(10)
  if (t !== 84 && t !== 32 && t !== 116) return null
  let bad = false
  const num = (a: number, b: number) => {
    let v = 0
    for (let i = a; i < b; i++) {
      const c = s.charCodeAt(i) - 48
      if (c < 0 || c > 9) bad = true
      v = v * 10 + c
    }
    return v
  }
  const y = num(0, 4), mo = num(5, 7), d = num(8, 10), h = num(11, 13), mi = num(14, 16), se = num(17, 19)
  if (bad || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) return null
  let p = 19, frac = 0, digits = 0
  if (p < len && s.charCodeAt(p) === 46) {
    p++
    while (p < len) {
      const c = s.charCodeAt(p) - 48
      if (c < 0 || c > 9) break
      if (digits < 6) {
        frac = frac * 10 + c
        digits++
      }
      p++
    }
    if (digits === 0) return null
  }
  for (; digits < 6; digits++) frac *= 10
  if (p < len && !(p === len - 1 && (s.charCodeAt(p) === 90 || s.charCodeAt(p) === 122))) return null
  const ms = Date.UTC(y, mo - 1, d, h, mi, se)
  if (new Date(ms).getUTCDate() !== d) return null // 2001-02-30 and the like
  return ms * 1000 + frac
}

function parseTs(s: string): number | null {
  const fast = fastIsoUs(s)
  if (fast !== null) return fast
  const us = parseTimestampUs(s)
  return us === null ? null : Number(us)
}

/** Writes numbers (|v| < 2^53) into a BigInt64Array as two Int32 halves, without a BigInt per value. */
function toInt64(src: Float64Array, n: number): BigInt64Array {
  const out = new BigInt64Array(n)
  const halves = new Int32Array(out.buffer)
  for (let i = 0; i < n; i++) {
    const v = src[i]!
    const hi = Math.floor(v / 4294967296)
    halves[2 * i] = v - hi * 4294967296
    halves[2 * i + 1] = hi
  }
  return out
}

function builder(f: Field, n: number): Builder {
  const nl = nullable(n)
  switch (f.type) {
    case 'int32': {
      const out = new Int32Array(n)
      return {
        add(v, i) {
          if (typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647) out[i] = v
          else nl.nullAt(i)
        },
        finish: () => ({ type: 'int32', length: n, values: out, validity: nl.validity }),
      }
    }
    case 'int64':
    case 'timestamp': {
      // numbers (< 2^53: JSON.parse gives no more) kept as doubles, written as Int64 at the end
      const out = new Float64Array(n)
      const ts = f.type === 'timestamp'
      return {
        add(v, i) {
          if (typeof v === 'number' && Number.isSafeInteger(v) && (!ts || Math.abs(v) < 9_007_199_254)) out[i] = ts ? v * 1_000_000 : v
          else if (ts && typeof v === 'string') {
            const us = parseTs(v)
            if (us === null) nl.nullAt(i)
            else out[i] = us
          } else nl.nullAt(i)
        },
        finish: () => ({ type: f.type, length: n, values: toInt64(out, n), validity: nl.validity }),
      }
    }
    case 'float64': {
      const out = new Float64Array(n)
      return {
        add(v, i) {
          if (typeof v === 'number') out[i] = v
          else if (v === 'NaN') out[i] = NaN
          else if (v === 'Infinity' || v === '+Infinity') out[i] = Infinity
          else if (v === '-Infinity') out[i] = -Infinity
          else nl.nullAt(i)
        },
        finish: () => ({ type: 'float64', length: n, values: out, validity: nl.validity }),
      }
    }
    case 'boolean': {
      const out = new Uint8Array(n)
      return {
        add(v, i) {
          if (typeof v === 'boolean') out[i] = v ? 1 : 0
          else nl.nullAt(i)
        },
        finish: () => ({ type: 'boolean', length: n, values: out, validity: nl.validity }),
      }
    }
    case 'string': {
      const codes = new Int32Array(n)
      const dict = new DictionaryBuilder()
      return {
        add(v, i) {
          if (v === null || v === undefined) nl.nullAt(i)
          else codes[i] = dict.code(typeof v === 'string' ? v : JSON.stringify(v))
        },
        finish: () => ({ type: 'string', length: n, values: codes, validity: nl.validity, dictionary: dict.strings }),
      }
    }
    case 'binary': {
      const out = new Array<Uint8Array>(n).fill(new Uint8Array(0))
      return {
        add(v, i) {
          if (typeof v === 'string') {
            const b = Buffer.from(v, 'base64')
            out[i] = new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
          } else nl.nullAt(i)
        },
        finish: () => ({ type: 'binary', length: n, values: out, validity: nl.validity }),
      }
    }
    case 'struct': {
      const subs = (f.fields ?? []).map((x) => [x.name, builder(x, n)] as const)
      return {
        add(v, i) {
          if (v === null || typeof v !== 'object' || Array.isArray(v)) {
            nl.nullAt(i)
            for (const [, b] of subs) b.add(undefined, i)
            return
          }
          const o = v as Record<string, unknown>
          for (const [name, b] of subs) b.add(o[name], i)
        },
        finish: () => ({ type: 'struct', length: n, values: new Uint8Array(0), validity: nl.validity, children: Object.fromEntries(subs.map(([name, b]) => [name, b.finish()])) }),
      }
    }
    case 'window':
      throw new AnalysisError('UNSUPPORTED_TYPE', `from_json() cannot produce a window field (${f.name}); use two timestamp fields`)
  }
}

const MALFORMED = Symbol('malformed')

function parse(text: string): unknown {
  try {
    const v = JSON.parse(text) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : MALFORMED
  } catch {
    return MALFORMED
  }
}

/**
 * from_json over a string (dictionary: each distinct string parsed once) or binary (UTF-8) column.
 * Binary rows that are flat JSON objects (scalar values, no escapes) are scanned byte by byte into
 * the field builders without a JS object per row; any other row goes through `JSON.parse`.
 * @throws SourceError `MALFORMED_JSON` naming the row in FAILFAST mode.
 */
export function fromJsonColumn(input: Column, fields: readonly Field[], failFast: boolean): Column {
  const n = input.length
  const subs = fields.map((f) => builder(f, n))
  const addObject = (o: Record<string, unknown>, i: number) => {
    for (let k = 0; k < subs.length; k++) subs[k]!.add(o[fields[k]!.name], i)
  }
  const malformed = (i: number, text: string) => {
    if (failFast) throw new SourceError('MALFORMED_JSON', `from_json: row ${i} is not a JSON object (mode FAILFAST): ${text.slice(0, 100)}`)
    addObject({}, i)
  }
  if (input.type === 'string') {
    const dict = input.dictionary!
    const parsed = new Array<unknown>(dict.length)
    const codes = input.values as Int32Array
    for (let i = 0; i < n; i++) {
      if (!isValid(input.validity, i)) {
        addObject({}, i)
        continue
      }
      const k = codes[i]!
      let v = parsed[k]
      if (v === undefined) v = parsed[k] = parse(dict[k]!)
      if (v === MALFORMED) malformed(i, dict[k]!)
      else addObject(v as Record<string, unknown>, i)
    }
  } else if (input.type === 'binary') {
    const vals = input.values as Uint8Array[]
    const scanner = new FlatObjectScanner(fields.map((f) => f.name))
    for (let i = 0; i < n; i++) {
      if (!isValid(input.validity, i)) {
        addObject({}, i)
        continue
      }
      if (scanner.apply(vals[i]!, subs, i)) continue
      const text = utf8.decode(vals[i]!)
      const v = parse(text)
      if (v === MALFORMED) malformed(i, text)
      else addObject(v as Record<string, unknown>, i)
    }
  } else {
    throw new AnalysisError('DATATYPE_MISMATCH', `from_json() needs a string column, got ${input.type}`)
  }
  const validity = input.validity === null ? null : input.validity.slice()
  return { type: 'struct', length: n, values: new Uint8Array(0), validity, children: Object.fromEntries(fields.map((f, k) => [f.name, subs[k]!.finish()])) }
}

const bufferOf = new WeakMap<ArrayBufferLike, Buffer>()
function nodeBuffer(b: Uint8Array): Buffer {
  let buf = bufferOf.get(b.buffer)
  if (buf === undefined) {
    buf = Buffer.from(b.buffer as ArrayBuffer)
    bufferOf.set(b.buffer, buf)
  }
  return buf
}

const KIND_STRING = 0, KIND_NUMBER = 1, KIND_TRUE = 2, KIND_FALSE = 3, KIND_NULL = 4

/**
 * Scans one flat JSON object (`{"k": scalar, …}`) in UTF-8 bytes and feeds the wanted fields to
 * their builders. Returns false, having fed nothing, for anything it does not handle (nested values,
 * escapes, duplicate keys, malformed text): the caller then uses JSON.parse for that row.
 */
class FlatObjectScanner {
  private readonly names: Uint8Array[]
  private readonly predicted: Int32Array
  private readonly seen: Uint8Array
  private fieldAt = new Int32Array(16)
  private starts = new Int32Array(16)
  private ends = new Int32Array(16)
  private kinds = new Uint8Array(16)

  constructor(names: readonly string[]) {
    const enc = new TextEncoder()
    this.names = names.map((x) => enc.encode(x))
    this.predicted = new Int32Array(64).fill(-1)
    this.seen = new Uint8Array(names.length)
  }

  private fieldOf(b: Uint8Array, s: number, e: number, pos: number): number {
    const len = e - s
    const guess = pos < 64 ? this.predicted[pos]! : -1
    if (guess >= 0 && this.same(this.names[guess]!, b, s, len)) return guess
    for (let k = 0; k < this.names.length; k++) {
      if (k !== guess && this.same(this.names[k]!, b, s, len)) {
        if (pos < 64) this.predicted[pos] = k
        return k
      }
    }
    return -1
  }

  private same(name: Uint8Array, b: Uint8Array, s: number, len: number): boolean {
    if (name.length !== len) return false
    for (let j = 0; j < len; j++) if (name[j] !== b[s + j]) return false
    return true
  }

  private values: unknown[] = new Array(16)

  apply(b: Uint8Array, subs: readonly Builder[], row: number): boolean {
    const end = b.length
    let p = skipWs(b, 0, end)
    if (b[p] !== 123 /* { */) return false
    p = skipWs(b, p + 1, end)
    let count = 0
    this.seen.fill(0)
    if (b[p] === 125 /* } */) p++
    else {
      for (;;) {
        if (b[p] !== 34 /* " */) return false
        const ks = ++p
        while (p < end && b[p] !== 34) {
          if (b[p] === 92 /* \ */) return false
          p++
        }
        if (p >= end) return false
        const ke = p++
        p = skipWs(b, p, end)
        if (b[p] !== 58 /* : */) return false
        p = skipWs(b, p + 1, end)
        const c = b[p]
        let vs = p, ve: number, kind: number
        if (c === 34) {
          vs = ++p
          while (p < end && b[p] !== 34) {
            if (b[p] === 92) return false
            p++
          }
          if (p >= end) return false
          ve = p++
          kind = KIND_STRING
        } else if (c === 45 /* - */ || (c !== undefined && c >= 48 && c <= 57)) {
          p++
          while (p < end) {
            const d = b[p]!
            if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) p++
            else break
          }
          ve = p
          kind = KIND_NUMBER
        } else if (c === 116 && b[p + 1] === 114 && b[p + 2] === 117 && b[p + 3] === 101) {
          p += 4; ve = p; kind = KIND_TRUE
        } else if (c === 102 && b[p + 1] === 97 && b[p + 2] === 108 && b[p + 3] === 115 && b[p + 4] === 101) {
          p += 5; ve = p; kind = KIND_FALSE
        } else if (c === 110 && b[p + 1] === 117 && b[p + 2] === 108 && b[p + 3] === 108) {
          p += 4; ve = p; kind = KIND_NULL
        } else return false
        const f = this.fieldOf(b, ks, ke, count)
        if (f >= 0) {
          if (this.seen[f]) return false
          this.seen[f] = 1
        }
        if (count === this.fieldAt.length) this.grow()
        this.fieldAt[count] = f
        this.starts[count] = vs
        this.ends[count] = ve
        this.kinds[count] = kind
        count++
        p = skipWs(b, p, end)
        if (b[p] === 44 /* , */) {
          p = skipWs(b, p + 1, end)
          continue
        }
        if (b[p] === 125) {
          p++
          break
        }
        return false
      }
    }
    p = skipWs(b, p, end)
    if (p !== end) return false
    // all tokens valid: convert the wanted ones (numbers first, so a bad number still falls back)
    if (this.values.length < count) this.values = new Array(count * 2)
    const values = this.values
    const buf = nodeBuffer(b)
    const off = b.byteOffset
    for (let t = 0; t < count; t++) {
      if (this.fieldAt[t]! < 0) continue
      const s = this.starts[t]!, e = this.ends[t]!
      switch (this.kinds[t]) {
        case KIND_NUMBER: {
          let v: number
          if (e - s <= 15 && !hasFraction(b, s, e)) {
            v = 0
            const neg = b[s] === 45
            for (let j = neg ? s + 1 : s; j < e; j++) v = v * 10 + (b[j]! - 48)
            if (neg) v = -v
            if (neg && e - s === 1) return false
          } else {
            v = Number(buf.toString('latin1', off + s, off + e))
            if (Number.isNaN(v)) return false
          }
          values[t] = v
          break
        }
        case KIND_STRING: {
          let ascii = true
          for (let j = s; j < e; j++) if (b[j]! >= 0x80) { ascii = false; break }
          values[t] = ascii ? buf.toString('latin1', off + s, off + e) : buf.toString('utf8', off + s, off + e)
          break
        }
        case KIND_TRUE: values[t] = true; break
        case KIND_FALSE: values[t] = false; break
        default: values[t] = null
      }
    }
    for (let t = 0; t < count; t++) {
      const f = this.fieldAt[t]!
      if (f >= 0) subs[f]!.add(values[t], row)
    }
    for (let k = 0; k < subs.length; k++) if (!this.seen[k]) subs[k]!.add(undefined, row)
    return true
  }

  private grow(): void {
    const m = this.fieldAt.length * 2
    const g = <T extends Int32Array | Uint8Array>(a: T): T => {
      const x = new (a.constructor as { new (n: number): T })(m)
      x.set(a)
      return x
    }
    this.fieldAt = g(this.fieldAt)
    this.starts = g(this.starts)
    this.ends = g(this.ends)
    this.kinds = g(this.kinds)
  }
}

function skipWs(b: Uint8Array, p: number, end: number): number {
  while (p < end) {
    const c = b[p]!
    if (c === 32 || c === 9 || c === 10 || c === 13) p++
    else break
  }
  return p
}

function hasFraction(b: Uint8Array, s: number, e: number): boolean {
  for (let j = s; j < e; j++) {
    const c = b[j]!
    if (c === 46 || c === 101 || c === 69 || c === 43 || (c === 45 && j > s)) return true
  }
  return false
}

/** Spark's struct(...): the given columns as the children of one struct column (never null). */
export function structColumn(names: readonly string[], cols: readonly Column[], n: number): Column {
  return { type: 'struct', length: n, values: new Uint8Array(0), validity: null, children: Object.fromEntries(names.map((name, i) => [name, cols[i]!])) }
}

function jsonWriter(c: Column): (i: number) => string | undefined {
  const valid = (i: number) => isValid(c.validity, i)
  switch (c.type) {
    case 'boolean': {
      const v = c.values as Uint8Array
      return (i) => (valid(i) ? (v[i] ? 'true' : 'false') : undefined)
    }
    case 'int32':
    case 'int64': {
      const v = c.values as Int32Array | BigInt64Array
      return (i) => (valid(i) ? String(v[i]) : undefined)
    }
    case 'float64': {
      const v = c.values as Float64Array
      return (i) => (!valid(i) ? undefined : Number.isFinite(v[i]!) ? JSON.stringify(v[i]) : `"${v[i] === Infinity ? 'Infinity' : v[i] === -Infinity ? '-Infinity' : 'NaN'}"`)
    }
    case 'timestamp': {
      // Spark's default timestampFormat for JSON: yyyy-MM-dd'T'HH:mm:ss.SSSXXX (UTC session zone)
      const v = c.values as BigInt64Array
      return (i) => {
        if (!valid(i)) return undefined
        const us = v[i]!
        const ms = Number(us / 1000n) - (us % 1000n < 0n ? 1 : 0)
        return `"${new Date(ms).toISOString()}"`
      }
    }
    case 'string': {
      const codes = c.values as Int32Array
      const dict = c.dictionary ?? []
      const quoted = new Array<string | undefined>(dict.length)
      return (i) => (valid(i) ? (quoted[codes[i]!] ??= JSON.stringify(dict[codes[i]!] ?? '')) : undefined)
    }
    case 'binary': {
      const v = c.values as Uint8Array[]
      return (i) => (valid(i) ? `"${Buffer.from(v[i]!.buffer, v[i]!.byteOffset, v[i]!.byteLength).toString('base64')}"` : undefined)
    }
    case 'window':
    case 'struct': {
      const fields = Object.entries(c.children ?? {}).map(([k, ch]) => [JSON.stringify(k), jsonWriter(ch)] as const)
      return (i) => {
        if (!valid(i)) return undefined
        let s = '{'
        for (const [k, w] of fields) {
          const x = w(i)
          if (x !== undefined) s += (s.length > 1 ? ',' : '') + k + ':' + x
        }
        return s + '}'
      }
    }
  }
}

/** Spark's to_json over a struct column: one JSON object per row, null fields left out; null struct → null. */
export function toJsonColumn(c: Column): Column {
  const n = c.length
  const write = jsonWriter(c)
  const codes = new Int32Array(n)
  const dict = new DictionaryBuilder()
  let validity: Uint8Array | null = null
  for (let i = 0; i < n; i++) {
    const s = write(i)
    if (s === undefined) {
      validity ??= newValidity(n)
      setValid(validity, i, false)
    } else codes[i] = dict.code(s)
  }
  return { type: 'string', length: n, values: codes, validity, dictionary: dict.strings }
}

/** A struct column's row as text, as Spark's CAST(struct AS STRING): `{v1, v2}` (null fields as 'null'). */
export function structCellText(c: Column, i: number, cell: (child: Column, i: number) => string): string {
  return '{' + Object.values(c.children ?? {}).map((ch) => (isValid(ch.validity, i) ? cell(ch, i) : 'null')).join(', ') + '}'
}

/**
 * A schema for from_json: Fields, `{ name: 'int' | … }`, or a DDL string as Spark takes it
 * (`'a INT, b STRING, c STRUCT<x: DOUBLE, y: TIMESTAMP>'`; names may be `backquoted`).
 * @throws AnalysisError `INVALID_SCHEMA` naming the position.
 */
export function parseJsonSchema(spec: string | readonly Field[] | Record<string, string>): Field[] {
  if (typeof spec !== 'string') {
    if (Array.isArray(spec)) return [...(spec as readonly Field[])]
    return Object.entries(spec as Record<string, string>).map(([name, t]) => ({ name, type: typeName(t, name), nullable: true }))
  }
  let p = 0
  const s = spec
  const ws = () => { while (p < s.length && /\s/.test(s[p]!)) p++ }
  const fail = (what: string): never => {
    throw new AnalysisError('INVALID_SCHEMA', `Cannot parse the schema ${JSON.stringify(spec)} at position ${p}: expected ${what}`)
  }
  const ident = (): string => {
    ws()
    if (s[p] === '`') {
      const end = s.indexOf('`', p + 1)
      if (end < 0) fail('a closing backquote')
      const name = s.slice(p + 1, end)
      p = end + 1
      return name
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(p))
    if (!m) fail('a field name')
    p += m![0].length
    return m![0]
  }
  const fieldList = (close: string | null, sepColon: boolean): Field[] => {
    const out: Field[] = []
    for (;;) {
      ws()
      if (close !== null && s[p] === close) break
      const name = ident()
      ws()
      if (sepColon && s[p] === ':') p++
      const t = typeSpec()
      out.push(t.type === 'struct' ? { name, type: 'struct', nullable: true, fields: t.fields } : { name, type: t.type, nullable: true })
      ws()
      if (s[p] === ',') {
        p++
        continue
      }
      break
    }
    return out
  }
  const typeSpec = (): { type: DataType; fields?: Field[] } => {
    ws()
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(p))
    if (!m) fail('a type name')
    p += m![0].length
    const name = m![0].toLowerCase()
    if (name === 'struct') {
      ws()
      if (s[p] !== '<') fail("'<' after STRUCT")
      p++
      const fields = fieldList('>', true)
      ws()
      if (s[p] !== '>') fail("'>' closing STRUCT<")
      p++
      return { type: 'struct', fields }
    }
    return { type: typeName(name, spec) }
  }
  const fields = fieldList(null, false)
  ws()
  if (p < s.length) fail('end of schema or a comma')
  return fields
}

function typeName(t: string, where: string): DataType {
  const d = TYPE_NAMES[t.toLowerCase()]
  if (d === undefined) throw new AnalysisError('UNKNOWN_TYPE', `Unknown data type '${t}' in ${where}; accepted: ${Object.keys(TYPE_NAMES).join(', ')}, STRUCT<…>`)
  return d
}

export { formatTimestamp }
