import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Schema } from '../../src/batch.ts'
import { SourceError } from '../../src/errors.ts'
import { jsonFormat, parseJsonLine } from '../../src/formats/json.ts'
import type { ReadOptions } from '../../src/formats/format.ts'
import { MemoryFs } from '../../src/fs.ts'
import { NodeFs } from '../../src/node/fs.ts'
import { batchOf, rowsOf, tableArb, ts, type Cell } from './_helpers.ts'

async function open(text: string | Uint8Array, options: ReadOptions = {}) {
  const fs = new MemoryFs()
  fs.put('/in/data.json', text)
  return jsonFormat.open(fs, '/in/data.json', options)
}

const schema: Schema = [
  { name: 'id', type: 'int64', nullable: true },
  { name: 'name', type: 'string', nullable: true },
  { name: 'at', type: 'timestamp', nullable: true },
]
const withCorrupt: Schema = [...schema, { name: '_corrupt_record', type: 'string', nullable: true }]

const MALFORMED = [
  '{"id": 1, "name": "a", "at": "2001-01-01T00:01:00Z"}',
  '{"id": 2, "name": "b", "at": 978307260000}', // epoch ms
  '{"id": "three", "name": "c"}', // type mismatch (line 3)
  '{"id": 4, "name": ', // syntax error (line 4)
  '',
  '[1, 2]', // not an object (line 6)
  '{"id": 6, "at": "not a time"}', // bad timestamp (line 7)
  '{"id": 7, "name": null, "extra": true}',
].join('\n')

describe('json: reading', () => {
  it('infers a schema from the first lines', async () => {
    const f = await open('{"a": 1, "b": 1.5, "c": "x", "d": true, "e": null}\n{"a": 2, "b": 2, "c": "2001-01-01T00:00:00Z", "f": {"x": 1}}\n')
    expect(f.schema).toEqual([
      { name: 'a', type: 'int64', nullable: true },
      { name: 'b', type: 'float64', nullable: true },
      { name: 'c', type: 'string', nullable: true },
      { name: 'd', type: 'boolean', nullable: true },
      { name: 'e', type: 'string', nullable: true },
      { name: 'f', type: 'string', nullable: true },
    ])
    expect(rowsOf(await f.read(0, 2))).toEqual([
      [1n, 1.5, 'x', true, null, null],
      [2n, 2, '2001-01-01T00:00:00Z', null, null, '{"x":1}'],
    ])
  })

  it('numRows counts non-empty lines; integers beyond 2^53 are exact', async () => {
    const f = await open('{"n": 9007199254740993}\n\n  \r\n{"n": -9223372036854775808}\r\n{"n": 1}')
    expect(f.numRows).toBe(3)
    expect(f.schema).toEqual([{ name: 'n', type: 'int64', nullable: true }])
    expect(rowsOf(await f.read(0, 3))).toEqual([[9007199254740993n], [-9223372036854775808n], [1n]])
    expect(parseJsonLine('{"a":[12345678901234567890,{"b":"x\\"y"}],"c":1.25e3}')).toEqual({ a: [12345678901234567890n, { b: 'x"y' }], c: 1250 })
  })

  it('parses timestamps from ISO strings (UTC when no zone) and epoch milliseconds', async () => {
    const f = await open(
      [
        '{"t": "2001-01-01T00:01:00Z"}',
        '{"t": "2001-01-01T00:01:00"}',
        '{"t": "2001-01-01 01:01:00.5+01:00"}',
        '{"t": "2001-01-01"}',
        '{"t": 978307260000}',
        '{"t": "2001-01-01T00:01:00.123456Z"}',
        '{"t": "2001/01/01 06:55"}',
      ].join('\n'),
      { schema: [{ name: 't', type: 'timestamp', nullable: true }] },
    )
    const t0 = ts('2001-01-01T00:01:00Z')
    expect(rowsOf(await f.read(0, 7)).map((r) => r[0])).toEqual([t0, t0, t0 + 500_000n, ts('2001-01-01T00:00:00Z'), t0, t0 + 123_456n, ts('2001-01-01T06:55:00Z')])
  })

  it('PERMISSIVE without a corrupt column: malformed lines become all-null rows', async () => {
    const f = await open(MALFORMED, { schema })
    expect(f.numRows).toBe(7)
    expect(rowsOf(await f.read(0, 7))).toEqual([
      [1n, 'a', ts('2001-01-01T00:01:00Z')],
      [2n, 'b', ts('2001-01-01T00:01:00Z')],
      [null, null, null],
      [null, null, null],
      [null, null, null],
      [null, null, null],
      [7n, null, null],
    ])
    expect(f.droppedMalformed).toBe(0)
  })

  it('PERMISSIVE with a corrupt column: the raw line is kept', async () => {
    const f = await open(MALFORMED, { schema: withCorrupt, mode: 'PERMISSIVE' })
    const rows = rowsOf(await f.read(0, 7))
    expect(rows.map((r) => r[3])).toEqual([null, null, '{"id": "three", "name": "c"}', '{"id": 4, "name": ', '[1, 2]', '{"id": 6, "at": "not a time"}', null])
    expect(rows[2]!.slice(0, 3)).toEqual([null, null, null])
    // custom column name
    const g = await open(MALFORMED, { schema: [...schema, { name: 'bad', type: 'string', nullable: true }], columnNameOfCorruptRecord: 'bad' })
    expect(rowsOf(await g.read(2, 3))[0]![3]).toBe('{"id": "three", "name": "c"}')
  })

  it('PERMISSIVE inference adds the corrupt column when it meets a malformed line', async () => {
    const f = await open('{"a": 1}\n{oops\n')
    expect(f.schema.map((x) => x.name)).toEqual(['a', '_corrupt_record'])
    expect(rowsOf(await f.read(0, 2))).toEqual([
      [1n, null],
      [null, '{oops'],
    ])
  })

  it('DROPMALFORMED drops and counts', async () => {
    const f = await open(MALFORMED, { schema, mode: 'DROPMALFORMED' })
    const b = await f.read(0, 4)
    expect(rowsOf(b).map((r) => r[0])).toEqual([1n, 2n])
    expect(f.droppedMalformed).toBe(2)
    await f.read(0, 4) // re-reading does not double count
    expect(f.droppedMalformed).toBe(2)
    expect(rowsOf(await f.read(4, 7)).map((r) => r[0])).toEqual([7n])
    expect(f.droppedMalformed).toBe(4)
  })

  it('FAILFAST names the file, the 1-based line and the column', async () => {
    const f = await open(MALFORMED, { schema, mode: 'FAILFAST' })
    expect((await f.read(0, 2)).numRows).toBe(2)
    const err = (await f.read(0, 7).catch((e: unknown) => e)) as SourceError
    expect(err).toBeInstanceOf(SourceError)
    expect(err.code).toBe('MALFORMED_RECORD')
    expect(err.message).toMatch(/\/in\/data\.json line 3: .*column 'id'/)
    const e2 = (await f.read(3, 4).catch((e: unknown) => e)) as SourceError
    expect(e2.message).toMatch(/\/in\/data\.json line 4/)
    const e3 = (await f.read(5, 6).catch((e: unknown) => e)) as SourceError
    expect(e3.message).toMatch(/data\.json line 7: .*column 'at'/)
  })

  it('multiLine reads a JSON array (vega-datasets flights-2k.json)', async () => {
    const path = new URL('../../node_modules/vega-datasets/data/flights-2k.json', import.meta.url).pathname
    const f = await jsonFormat.open(new NodeFs(), path, {
      multiLine: true,
      schema: [
        { name: 'date', type: 'timestamp', nullable: true },
        { name: 'delay', type: 'int32', nullable: true },
        { name: 'origin', type: 'string', nullable: true },
      ],
    })
    expect(f.numRows).toBe(2000)
    expect(rowsOf(await f.read(0, 1))).toEqual([[ts('2001-01-01T06:55:00Z'), -19, 'LAX']])
    const inferred = await jsonFormat.open(new NodeFs(), path, { multiLine: true })
    expect(inferred.schema.map((x) => `${x.name}:${x.type}`)).toEqual(['date:string', 'delay:int64', 'distance:int64', 'origin:string', 'destination:string'])
    const lines = await jsonFormat.open(new NodeFs(), path, {})
    expect(lines.numRows).toBe(1) // one line holding an array: malformed as JSON lines
  })

  it('treats binary files as CORRUPT_FILE', async () => {
    for (const bytes of [
      Uint8Array.of(0x50, 0x41, 0x52, 0x31, 1, 2, 3),
      Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d),
      new TextEncoder().encode('{"a":1}\n\u0000\u0000\n'),
      new Uint8Array(readFileSync(new URL('../../node_modules/vega-datasets/data/flights-200k.arrow', import.meta.url)).subarray(0, 1000)),
    ]) {
      const err = (await open(bytes).catch((e: unknown) => e)) as SourceError
      expect(err).toBeInstanceOf(SourceError)
      expect(err.code).toBe('CORRUPT_FILE')
      expect(err.message).toContain('/in/data.json')
      expect(err.cause).toBeDefined()
    }
    const missing = (await jsonFormat.open(new MemoryFs(), '/none.json', {}).catch((e: unknown) => e)) as SourceError
    expect(missing.code).toBe('FILE_NOT_FOUND')
  })
})

describe('json: writing', () => {
  it('writes one object per line with ISO timestamps, windows, nulls and exact int64', () => {
    const s: Schema = [
      { name: 'n', type: 'int64', nullable: true },
      { name: 't', type: 'timestamp', nullable: true },
      { name: 'window', type: 'window', nullable: true },
      { name: 's', type: 'string', nullable: true },
      { name: 'f', type: 'float64', nullable: true },
    ]
    const rows: Cell[][] = [
      [2n ** 60n, ts('2001-01-01T00:00:00Z'), { start: ts('2001-01-01T00:00:00Z'), end: ts('2001-01-01T01:00:00Z') }, 'a"b', 0.1],
      [null, 1n, null, null, NaN],
    ]
    const text = new TextDecoder().decode(jsonFormat.encode([batchOf(s, rows)], s))
    expect(text).toBe(
      '{"n":1152921504606846976,"t":"2001-01-01T00:00:00.000Z","window":{"start":"2001-01-01T00:00:00.000Z","end":"2001-01-01T01:00:00.000Z"},"s":"a\\"b","f":0.1}\n' +
        '{"n":null,"t":"1970-01-01T00:00:00.000001Z","window":null,"s":null,"f":"NaN"}\n',
    )
  })

  it('round-trips arbitrary batches (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string', 'binary', 'window']), async ({ schema: s, rows: r }) => {
        const f = await open(jsonFormat.encode([batchOf(s, r)], s), { schema: s, mode: 'FAILFAST' })
        expect(f.numRows).toBe(r.length)
        expect(rowsOf(await f.read(0, r.length))).toEqual(r)
      }),
      { numRuns: 150 },
    )
  })
})
