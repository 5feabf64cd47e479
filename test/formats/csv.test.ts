import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Schema } from '../../src/batch.ts'
import { SinkError, SourceError } from '../../src/errors.ts'
import { csvFormat } from '../../src/formats/csv.ts'
import type { ReadOptions } from '../../src/formats/format.ts'
import { MemoryFs } from '../../src/fs.ts'
import { NodeFs } from '../../src/node/fs.ts'
import { batchOf, rowsOf, tableArb, ts, type Cell } from './_helpers.ts'

async function open(text: string | Uint8Array, options: ReadOptions = {}) {
  const fs = new MemoryFs()
  fs.put('/in/data.csv', text)
  return csvFormat.open(fs, '/in/data.csv', options)
}

const schema: Schema = [
  { name: 'id', type: 'int64', nullable: true },
  { name: 'name', type: 'string', nullable: true },
  { name: 'at', type: 'timestamp', nullable: true },
]
const withCorrupt: Schema = [schema[0]!, schema[1]!, { name: '_corrupt_record', type: 'string', nullable: true }, schema[2]!]

const MALFORMED = [
  'id,name,at', // header (line 1)
  '1,a,2001-01-01T00:01:00Z',
  '2,"b, with comma",978307260000',
  'three,c,2001-01-01', // type mismatch (line 4)
  '4,d', // too few fields (line 5)
  '',
  '5,"multi',
  'line",2001-01-01 00:00', // a record over lines 7-8
  '6,e,not a time', // bad timestamp (line 9)
  '7,,',
].join('\n')

describe('csv: reading', () => {
  it('defaults: no header, all strings, _c0.. names, unquoted empty = null, "" = empty string', async () => {
    const f = await open('a,1,true\n"x ""q""",,""\n')
    expect(f.schema).toEqual([
      { name: '_c0', type: 'string', nullable: true },
      { name: '_c1', type: 'string', nullable: true },
      { name: '_c2', type: 'string', nullable: true },
    ])
    expect(rowsOf(await f.read(0, 2))).toEqual([
      ['a', '1', 'true'],
      ['x "q"', null, ''],
    ])
  })

  it('header and inferSchema (Spark options, strings accepted)', async () => {
    const f = await open('n;x;b;s\n1;1.5;true;x\n9223372036854775807;2;FALSE;2001-01-01\n', { header: true, inferSchema: 'true', sep: ';' })
    expect(f.schema.map((c) => `${c.name}:${c.type}`)).toEqual(['n:int64', 'x:float64', 'b:boolean', 's:string'])
    expect(f.numRows).toBe(2)
    expect(rowsOf(await f.read(0, 2))).toEqual([
      [1n, 1.5, true, 'x'],
      [9223372036854775807n, 2, false, '2001-01-01'],
    ])
  })

  it('reads vega-datasets flights-airport.csv', async () => {
    const path = new URL('../../node_modules/vega-datasets/data/flights-airport.csv', import.meta.url).pathname
    const f = await csvFormat.open(new NodeFs(), path, { header: true, inferSchema: true })
    const head = readFileSync(path, 'utf8').split('\n')[0]!.split(',')
    expect(f.schema.map((c) => c.name)).toEqual(head)
    expect(f.numRows).toBeGreaterThan(1000)
    expect(f.schema.find((c) => c.name === 'count')?.type).toBe('int64')
  })

  it('PERMISSIVE without a corrupt column: malformed records become all-null rows', async () => {
    const f = await open(MALFORMED, { header: true, schema })
    expect(f.numRows).toBe(7)
    expect(rowsOf(await f.read(0, 7))).toEqual([
      [1n, 'a', ts('2001-01-01T00:01:00Z')],
      [2n, 'b, with comma', ts('2001-01-01T00:01:00Z')],
      [null, null, null],
      [null, null, null],
      [5n, 'multi\nline', ts('2001-01-01T00:00:00Z')],
      [null, null, null],
      [7n, null, null],
    ])
  })

  it('PERMISSIVE with a corrupt column (positional mapping skips it)', async () => {
    const f = await open(MALFORMED, { header: true, schema: withCorrupt })
    const rows = rowsOf(await f.read(0, 7))
    expect(rows.map((r) => r[2])).toEqual([null, null, 'three,c,2001-01-01', '4,d', null, '6,e,not a time', null])
    expect(rows[0]).toEqual([1n, 'a', null, ts('2001-01-01T00:01:00Z')])
  })

  it('DROPMALFORMED drops and counts', async () => {
    const f = await open(MALFORMED, { header: true, schema, mode: 'DROPMALFORMED' })
    expect(rowsOf(await f.read(0, 7)).map((r) => r[0])).toEqual([1n, 2n, 5n, 7n])
    expect(f.droppedMalformed).toBe(3)
  })

  it('FAILFAST names the file, line and column', async () => {
    const f = await open(MALFORMED, { header: true, schema, mode: 'FAILFAST' })
    const e1 = (await f.read(0, 7).catch((e: unknown) => e)) as SourceError
    expect(e1).toBeInstanceOf(SourceError)
    expect(e1.code).toBe('MALFORMED_RECORD')
    expect(e1.message).toMatch(/\/in\/data\.csv line 4: .*column 'id'/)
    const e2 = (await f.read(3, 4).catch((e: unknown) => e)) as SourceError
    expect(e2.message).toMatch(/data\.csv line 5: .*expected 3 fields, got 2/)
    expect((await f.read(4, 5)).numRows).toBe(1)
    const e3 = (await f.read(5, 6).catch((e: unknown) => e)) as SourceError
    expect(e3.message).toMatch(/data\.csv line 9: .*column 'at'/)
  })

  it('CRLF files: values, empty-string vs null, line numbers', async () => {
    const ints: Schema = [
      { name: 'a', type: 'int32', nullable: true },
      { name: 'b', type: 'string', nullable: true },
    ]
    const text = 'a,b\r\n1,""\r\n\r\n2,"x\r\ny"\r\n3,\r\nx,3\r\n'
    const f = await open(text, { header: true, schema: ints, mode: 'DROPMALFORMED' })
    expect(rowsOf(await f.read(0, f.numRows))).toEqual([
      [1, ''],
      [2, 'x\r\ny'],
      [3, null],
    ])
    const g = await open(text, { header: true, schema: ints, mode: 'FAILFAST' })
    const err = (await g.read(0, g.numRows).catch((e: unknown) => e)) as SourceError
    expect(err.message).toMatch(/data\.csv line 7/)
  })

  it('an unterminated quote is a malformed record, not a corrupt file', async () => {
    const text = 'a,b\n1,2\n3,"open\n4,5\n'
    const f = await open(text, { header: true, schema: [{ name: 'a', type: 'int32', nullable: true }, { name: 'b', type: 'int32', nullable: true }, { name: '_corrupt_record', type: 'string', nullable: true }] })
    const rows = rowsOf(await f.read(0, f.numRows))
    expect(rows[0]).toEqual([1, 2, null])
    expect(rows.at(-1)![0]).toBeNull()
    expect(rows.at(-1)![2]).toMatch(/^3,"open/)
    const g = await open(text, { header: true, mode: 'FAILFAST', schema: [{ name: 'a', type: 'int32', nullable: true }, { name: 'b', type: 'int32', nullable: true }] })
    const err = (await g.read(0, g.numRows).catch((e: unknown) => e)) as SourceError
    expect(err.code).toBe('MALFORMED_RECORD')
    expect(err.message).toMatch(/data\.csv line 3/)
  })

  it('treats binary files as CORRUPT_FILE and rejects binary/window schema columns', async () => {
    const pq = new Uint8Array(readFileSync(new URL('../../node_modules/vega-datasets/data/flights-3m.parquet', import.meta.url)).subarray(0, 2000))
    const err = (await open(pq).catch((e: unknown) => e)) as SourceError
    expect(err.code).toBe('CORRUPT_FILE')
    expect(err.message).toContain('/in/data.csv')
    expect(err.cause).toBeDefined()
    const e2 = (await open(Uint8Array.of(0x61, 0x2c, 0xc3, 0x28)).catch((e: unknown) => e)) as SourceError
    expect(e2.code).toBe('CORRUPT_FILE')
    const e3 = (await open('a\n', { schema: [{ name: 'w', type: 'window', nullable: true }] }).catch((e: unknown) => e)) as SourceError
    expect(e3.code).toBe('UNSUPPORTED_TYPE')
  })
})

describe('csv: writing', () => {
  it('writes a header, quotes when needed, ISO timestamps, nulls as empty', () => {
    const s: Schema = [
      { name: 's', type: 'string', nullable: true },
      { name: 't', type: 'timestamp', nullable: true },
      { name: 'n', type: 'int64', nullable: true },
      { name: 'b', type: 'boolean', nullable: true },
    ]
    const rows: Cell[][] = [
      ['plain', ts('2001-01-01T00:00:00Z'), 2n ** 60n, true],
      ['a,"b"\nc', null, null, null],
      ['', 1n, -1n, false],
    ]
    expect(new TextDecoder().decode(csvFormat.encode([batchOf(s, rows)], s))).toBe(
      's,t,n,b\nplain,2001-01-01T00:00:00.000Z,1152921504606846976,true\n"a,""b""\nc",,,\n"",1970-01-01T00:00:00.000001Z,-1,false\n',
    )
  })

  it('rejects window and binary columns', () => {
    for (const type of ['window', 'binary'] as const) {
      const s: Schema = [{ name: 'window', type, nullable: true }]
      let err: unknown
      try {
        csvFormat.encode([batchOf(s, [])], s)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(SinkError)
      expect((err as SinkError).code).toBe('UNSUPPORTED_TYPE')
    }
  })

  it('round-trips arbitrary batches (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string'], { minCols: 2 }), async ({ schema: s, rows: r }) => {
        const f = await open(csvFormat.encode([batchOf(s, r)], s), { header: true, schema: s, mode: 'FAILFAST' })
        expect(f.numRows).toBe(r.length)
        expect(rowsOf(await f.read(0, r.length))).toEqual(r)
      }),
      { numRuns: 150 },
    )
  })
})
