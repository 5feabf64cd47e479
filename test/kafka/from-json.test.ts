import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AnalysisError, SluiceSession, SourceError, col, from_json, struct, to_json } from '../../src/index.node.ts'

// from_json / to_json / struct / CAST(binary AS STRING) / selectExpr: the expressions a Kafka job
// uses to turn `value` bytes into columns and back. No broker needed.

let session: SluiceSession
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
})
afterAll(async () => {
  await session.stop()
})

const enc = new TextEncoder()
const valuesDf = (values: (string | null)[]) =>
  session.createDataFrame(values.map((v) => ({ value: v === null ? null : enc.encode(v) })), [{ name: 'value', type: 'binary', nullable: true }])

describe('from_json', () => {
  it('parses binary JSON values into typed columns, select("data.*") and col("data.x") work', async () => {
    const df = valuesDf([
      '{"origin":"SFO","delay":12,"distance":405,"date":"2001-01-01T00:01:00Z","ok":true,"ratio":0.5}',
      '{"origin":"LAX","delay":-3,"distance":1000,"date":"2001-01-01 02:00:00","ok":false}',
      null,
      'not json',
      '{"origin":7,"delay":"x","date":978307200}',
    ])
    const parsed = df.select(from_json(col('value').cast('string'), 'origin STRING, delay LONG, distance INT, date TIMESTAMP, ok BOOLEAN, ratio DOUBLE').as('data'))
    expect(parsed.schema[0]!.type).toBe('struct')
    expect(parsed.schema[0]!.fields!.map((f) => `${f.name}:${f.type}`)).toEqual(['origin:string', 'delay:int64', 'distance:int32', 'date:timestamp', 'ok:boolean', 'ratio:float64'])
    const flat = parsed.select('data.*')
    expect(flat.columns).toEqual(['origin', 'delay', 'distance', 'date', 'ok', 'ratio'])
    expect(await flat.collect()).toEqual([
      { origin: 'SFO', delay: 12, distance: 405, date: Date.UTC(2001, 0, 1, 0, 1), ok: true, ratio: 0.5 },
      { origin: 'LAX', delay: -3, distance: 1000, date: Date.UTC(2001, 0, 1, 2), ok: false, ratio: null },
      // a null value gives a null struct, hence null fields
      { origin: null, delay: null, distance: null, date: null, ok: null, ratio: null },
      // malformed: PERMISSIVE gives all-null fields
      { origin: null, delay: null, distance: null, date: null, ok: null, ratio: null },
      // string takes any JSON value's text; a wrong type nulls only that field; integer timestamps are seconds
      { origin: '7', delay: null, distance: null, date: 978307200000, ok: null, ratio: null },
    ])
    expect(await parsed.select(col('data.origin'), col('data').getField('delay').as('d')).filter(col('d').gt(0)).collect()).toEqual([{ origin: 'SFO', d: 12 }])
    const nulls = await parsed.select(col('data').isNull().as('n')).collect()
    expect(nulls.map((r) => r['n'])).toEqual([false, false, true, false, false])
  })

  it('reads a string column (each distinct string parsed once), nested STRUCT<…> fields, and schemas as objects', async () => {
    const df = session.createDataFrame([{ s: '{"a":{"x":1.5,"y":"u"},"b":[1,2]}' }, { s: '{"a":null,"b":{"k":1}}' }, { s: '{"a":{"x":1.5,"y":"u"},"b":[1,2]}' }], { s: 'string' })
    const out = await df.select(from_json('s', 'a STRUCT<x: DOUBLE, y: STRING>, b STRING').as('j')).select(col('j.a.x'), col('j.a.y'), col('j.b')).collect()
    expect(out).toEqual([{ x: 1.5, y: 'u', b: '[1,2]' }, { x: null, y: null, b: '{"k":1}' }, { x: 1.5, y: 'u', b: '[1,2]' }])
    const out2 = await df.select(from_json(col('s'), { b: 'string' }).as('j')).select('j.*').collect()
    expect(out2).toEqual([{ b: '[1,2]' }, { b: '{"k":1}' }, { b: '[1,2]' }])
  })

  it('FAILFAST throws SourceError MALFORMED_JSON naming the row; bad schemas and inputs fail when the plan is built', async () => {
    const df = valuesDf(['{"a":1}', '[1]'])
    await expect(df.select(from_json(col('value'), 'a INT', { mode: 'FAILFAST' }).as('j')).collect()).rejects.toMatchObject({ code: 'MALFORMED_JSON', message: expect.stringContaining('row 1') })
    expect(() => df.select(from_json(col('value'), 'a FANCY'))).toThrow(AnalysisError)
    expect(() => df.select(from_json(col('value'), 'a INT,, b INT'))).toThrow(/position/)
    expect(() => session.createDataFrame([{ n: 1 }], { n: 'int' }).select(from_json('n', 'a INT'))).toThrow(/needs a string column/)
    expect(SourceError).toBeDefined()
  })
})

describe('to_json, struct, casts and selectExpr', () => {
  it('to_json(struct(...)) renders rows as Spark does (nulls left out, timestamps ISO with ms)', async () => {
    const df = session.createDataFrame([
      { k: 'a', n: 1, x: 2.5, t: Date.UTC(2001, 0, 1, 3), b: true },
      { k: 'b', n: null, x: null, t: null, b: false },
    ], { k: 'string', n: 'long', x: 'double', t: 'timestamp', b: 'boolean' })
    expect(await df.select(to_json(struct(col('k'), col('n'), col('x'), col('t'), col('b'))).as('value')).collect()).toEqual([
      { value: '{"k":"a","n":1,"x":2.5,"t":"2001-01-01T03:00:00.000Z","b":true}' },
      { value: '{"k":"b","b":false}' },
    ])
    expect(await df.selectExpr('to_json(struct(*)) AS value').collect()).toHaveLength(2)
  })

  it('CAST(binary AS STRING) decodes UTF-8; CAST(string AS BINARY) encodes; selectExpr parses the Kafka idioms', async () => {
    const df = session.createDataFrame([{ key: enc.encode('k1'), value: enc.encode('héllo') }, { key: null, value: enc.encode('x') }],
      [{ name: 'key', type: 'binary', nullable: true }, { name: 'value', type: 'binary', nullable: true }])
    expect(await df.selectExpr('CAST(key AS STRING) AS key', 'CAST(value AS STRING) v').collect()).toEqual([{ key: 'k1', v: 'héllo' }, { key: null, v: 'x' }])
    const round = await df.select(col('value').cast('string').cast('binary').as('b')).collect()
    expect(round[0]!['b']).toEqual(enc.encode('héllo'))
    const j = session.createDataFrame([{ value: '{"a":3}' }], { value: 'string' })
    expect(await j.selectExpr("from_json(value, 'a INT') AS d").select('d.*').collect()).toEqual([{ a: 3 }])
    expect(() => df.selectExpr('CAST(value AS)')).toThrow(/PARSE|type name/)
    expect(() => df.selectExpr('upper(value)')).toThrow(/selectExpr supports/)
    expect(() => df.select(col('value').cast('int'))).not.toThrow()
  })
})

describe('from_json over bytes (scanned without JSON.parse) agrees with from_json over strings (JSON.parse)', () => {
  const schema = 'a LONG, b DOUBLE, c STRING, d BOOLEAN, t TIMESTAMP, i INT'
  const compare = async (texts: string[]) => {
    const bin = await valuesDf(texts).select(from_json(col('value'), schema).as('j')).select('j.*').collect()
    const str = await session.createDataFrame(texts.map((s) => ({ s })), { s: 'string' }).select(from_json(col('s'), schema).as('j')).select('j.*').collect()
    expect(bin).toEqual(str)
    return bin
  }

  it('on edge cases: whitespace, escapes, nesting, duplicates, unknown keys, numbers, unicode, garbage', async () => {
    const rows = await compare([
      '{"a":1,"b":2.5,"c":"x","d":true,"t":"2001-01-01T00:00:00Z","i":7}',
      ' { "a" : -12 , "b" : 1e3 , "c" : "caf\u00e9 \u2603" , "d" : false } ',
      '{"c":"esc\\"aped\\n","a":3}',
      '{"c":{"nested":[1,2]},"a":4}',
      '{"a":5,"a":6}',
      '{"zz":1,"a":7,"other":"x"}',
      '{"b":-0,"i":2147483648,"a":9007199254740991}',
      '{"b":"NaN","t":"2001-02-30T00:00:00Z","i":1.0}',
      '{"t":"2001-01-01 10:00:00.123456","a":null}',
      '{"t":"2001-01-01T10:00:00+02:00"}',
      '{"t":978307200}',
      '{"a":1}garbage',
      '{"a":1,}',
      '{}',
      '',
      '{"a":-}',
    ])
    expect(rows[0]).toEqual({ a: 1, b: 2.5, c: 'x', d: true, t: 978307200000, i: 7 })
    expect(rows[1]!['c']).toBe('café ☃')
    expect(rows[2]!['c']).toBe('esc"aped\n')
    expect(rows[3]!['c']).toBe('{"nested":[1,2]}')
    expect(rows[4]!['a']).toBe(6)
    expect(rows[8]!['t']).toBeCloseTo(Date.UTC(2001, 0, 1, 10) + 123.456, 6)
    expect(rows[9]!['t']).toBe(Date.UTC(2001, 0, 1, 8))
  })

  it('on random flat objects (fast-check)', async () => {
    const fc = await import('fast-check')
    const value = fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.string(), fc.boolean(), fc.constant(null),
      fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()))
    const obj = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 't', 'i', 'x'), value)
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(obj, fc.constantFrom('', ' ', '\n')), { minLength: 1, maxLength: 20 }), async (objs) => {
      await compare(objs.map(([o, w]) => w + JSON.stringify(o, null, w === '' ? undefined : 1) + w))
    }), { numRuns: 60 })
  })
})
