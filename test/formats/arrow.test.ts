import { readFileSync } from 'node:fs'
import { Field as ArrowField, Int32, List, Table, tableToIPC, vectorFromArray } from 'apache-arrow'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { batchesToIPC } from '../../src/arrow.ts'
import { sliceBatch, type Schema } from '../../src/batch.ts'
import { SourceError } from '../../src/errors.ts'
import { arrowFormat } from '../../src/formats/arrow.ts'
import { MemoryFs } from '../../src/fs.ts'
import { NodeFs } from '../../src/node/fs.ts'
import { batchOf, rowsOf, tableArb, ts, type Cell } from './_helpers.ts'

const schema: Schema = [
  { name: 'k', type: 'string', nullable: true },
  { name: 'n', type: 'int64', nullable: true },
  { name: 't', type: 'timestamp', nullable: true },
  { name: 'window', type: 'window', nullable: true },
]
const rows: Cell[][] = [
  ['a', 2n ** 60n, ts('2001-01-01T00:00:00Z'), { start: 0n, end: 60_000_000n }],
  [null, null, null, null],
  ['b', -1n, 1n, { start: 60_000_000n, end: 120_000_000n }],
  ['a', 3n, 2n, { start: 0n, end: 60_000_000n }],
  ['c', 4n, 3n, null],
]

async function open(bytes: Uint8Array, options = {}) {
  const fs = new MemoryFs()
  fs.put('/d/x.arrow', bytes)
  return arrowFormat.open(fs, '/d/x.arrow', options)
}

async function corrupt(bytes: Uint8Array): Promise<SourceError> {
  let err: unknown
  try {
    const f = await open(bytes)
    await f.read(0, f.numRows)
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(SourceError)
  expect((err as SourceError).code).toBe('CORRUPT_FILE')
  expect((err as SourceError).message).toContain('/d/x.arrow')
  expect((err as SourceError).cause).toBeDefined()
  return err as SourceError
}

describe('arrow format', () => {
  it('reads IPC files and streams, slicing across record batches', async () => {
    const b = batchOf(schema, rows)
    for (const format of ['file', 'stream'] as const) {
      const bytes = batchesToIPC(schema, [sliceBatch(b, 0, 2), sliceBatch(b, 2, 3), sliceBatch(b, 3, 5)], format)
      const f = await open(bytes)
      expect(f.schema).toEqual(schema)
      expect(f.numRows).toBe(5)
      expect(rowsOf(await f.read(0, 5))).toEqual(rows)
      expect(rowsOf(await f.read(1, 4))).toEqual(rows.slice(1, 4))
      expect(rowsOf(await f.read(4, 99))).toEqual(rows.slice(4))
      expect((await f.read(5, 9)).numRows).toBe(0)
    }
  })

  it('encode writes the IPC file format', async () => {
    const bytes = arrowFormat.encode([batchOf(schema, rows)], schema)
    expect(new TextDecoder().decode(bytes.subarray(0, 6))).toBe('ARROW1')
    expect(rowsOf(await (await open(bytes)).read(0, 5))).toEqual(rows)
  })

  it('reads vega-datasets flights-200k.arrow', async () => {
    const f = await arrowFormat.open(new NodeFs(), new URL('../../node_modules/vega-datasets/data/flights-200k.arrow', import.meta.url).pathname, {})
    expect(f.numRows).toBe(200_000)
    expect(f.schema.map((c) => c.type)).toEqual(['int32', 'int32', 'float64'])
    expect(rowsOf(await f.read(0, 1))).toEqual([[0, 1452, 0]])
  })

  it('applies a user schema and skips unsupported columns it leaves out', async () => {
    const t = new Table({
      a: vectorFromArray([1, 2, 3], new Int32()),
      l: vectorFromArray([[1], [2], []], new List(new ArrowField('item', new Int32()))),
    })
    const bytes = tableToIPC(t, 'file')
    let err: unknown
    try {
      await open(bytes)
    } catch (e) {
      err = e
    }
    expect((err as SourceError).code).toBe('UNSUPPORTED_TYPE')
    expect((err as SourceError).message).toContain("'l'")
    const f = await open(bytes, {
      schema: [
        { name: 'a', type: 'int64', nullable: true },
        { name: 'zz', type: 'string', nullable: true },
      ],
    })
    expect(rowsOf(await f.read(0, 3))).toEqual([
      [1n, null],
      [2n, null],
      [3n, null],
    ])
  })

  it('rejects corrupt and truncated files', async () => {
    const file = batchesToIPC(schema, [batchOf(schema, rows)], 'file')
    const stream = batchesToIPC(schema, [batchOf(schema, rows)], 'stream')
    expect((await corrupt(file.subarray(0, file.length - 10))).message).toMatch(/truncated/)
    await corrupt(file.subarray(0, Math.floor(file.length / 2)))
    await corrupt(stream.subarray(0, Math.floor(stream.length * 0.6)))
    await corrupt(stream.subarray(0, 6))
    expect((await corrupt(new TextEncoder().encode('a,b\n1,2\n'))).message).toMatch(/magic/)
    const pq = readFileSync(new URL('../../node_modules/vega-datasets/data/flights-3m.parquet', import.meta.url)).subarray(0, 4096)
    await corrupt(new Uint8Array(pq))
  })

  it('round-trips arbitrary batches (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string', 'binary', 'window']), async ({ schema: s, rows: r }) => {
        const f = await open(arrowFormat.encode([batchOf(s, r)], s))
        expect(f.schema).toEqual(s)
        expect(rowsOf(await f.read(0, r.length))).toEqual(r)
      }),
      { numRuns: 100 },
    )
  })
})
