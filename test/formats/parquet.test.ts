import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { beforeAll, describe, expect, it } from 'vitest'
import { concatBatches, sliceBatch, type Schema } from '../../src/batch.ts'
import { SinkError, SourceError } from '../../src/errors.ts'
import { parquetFormat } from '../../src/formats/parquet.ts'
import { bytesFile, syncFile, type OpenedFile } from '../../src/formats/format.ts'
import { MemoryFs } from '../../src/fs.ts'
import { NodeFs } from '../../src/node/fs.ts'
import { batchOf, rowsOf, tableArb, ts, type Cell } from './_helpers.ts'

const FLIGHTS = new URL('../../node_modules/vega-datasets/data/flights-3m.parquet', import.meta.url).pathname
const GROUP = 272_727 // rows per row group in flights-3m.parquet (the last holds 272_730)

/** Fs wrapper counting readRange calls. */
class CountingFs extends NodeFs {
  ranges: [number, number][] = []
  override async readRange(path: string, start: number, end: number): Promise<Uint8Array> {
    this.ranges.push([start, end])
    return super.readRange(path, start, end)
  }
  override async read(path: string): Promise<Uint8Array> {
    throw new Error(`unexpected whole-file read of ${path}`)
  }
}

async function reference(rowStart: number, rowEnd: number): Promise<Cell[][]> {
  const buf = readFileSync(FLIGHTS)
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
  const objs = await parquetReadObjects({ file, compressors, rowStart, rowEnd })
  return objs.map((o) => [BigInt((o.date as Date).getTime()) * 1000n, o.delay as bigint, o.distance as bigint, o.origin as string, o.destination as string])
}

async function expectSourceError(p: Promise<unknown> | (() => unknown), code: string, msg?: string | RegExp): Promise<SourceError> {
  let err: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    err = e
  }
  expect(err, 'expected a SourceError').toBeInstanceOf(SourceError)
  const se = err as SourceError
  expect(se.code).toBe(code)
  if (msg) expect(se.message).toMatch(msg)
  return se
}

describe('parquet: flights-3m.parquet (hyparquet)', () => {
  let fs: CountingFs
  let f: OpenedFile
  beforeAll(async () => {
    fs = new CountingFs()
    f = await parquetFormat.open(fs, FLIGHTS, {})
  })

  it('opens from the footer only', () => {
    expect(f.numRows).toBe(3_000_000)
    expect(f.schema).toEqual([
      { name: 'date', type: 'timestamp', nullable: true },
      { name: 'delay', type: 'int64', nullable: true },
      { name: 'distance', type: 'int64', nullable: true },
      { name: 'origin', type: 'string', nullable: true },
      { name: 'destination', type: 'string', nullable: true },
    ])
    const size = readFileSync(FLIGHTS).length
    // footer only: every range read at open is in the last 64 KiB (plus the 4-byte header magic)
    for (const [s, e] of fs.ranges) expect(s === 0 && e === 4 ? true : s >= size - 65536).toBe(true)
  })

  it('reads the first rows', async () => {
    const b = await f.read(0, 3)
    const rows = rowsOf(b)
    expect(rows[0]![0]).toBe(ts('2001-01-01T00:01:00Z'))
    expect(rows).toEqual(await reference(0, 3))
    expect(typeof rows[0]![1]).toBe('bigint')
    expect(b.columns[3]!.values).toBeInstanceOf(Int32Array)
    expect(b.columns[0]!.validity).toBeNull()
  })

  it('slices across row-group boundaries exactly like a whole read', async () => {
    const whole = await f.read(GROUP - 1000, 2 * GROUP + 1000)
    expect(whole.numRows).toBe(GROUP + 2000)
    for (const [s, e] of [
      [GROUP - 5, GROUP + 5],
      [GROUP - 1000, GROUP],
      [GROUP, GROUP + 1],
      [2 * GROUP - 3, 2 * GROUP + 1000],
    ] as const) {
      const part = await f.read(s, e)
      expect(part.numRows).toBe(e - s)
      expect(rowsOf(part)).toEqual(rowsOf(sliceBatch(whole, s - (GROUP - 1000), e - (GROUP - 1000))))
    }
    expect(rowsOf(await f.read(GROUP - 3, GROUP + 3))).toEqual(await reference(GROUP - 3, GROUP + 3))
  })

  it('matches hyparquet row by row on samples, including the last row', async () => {
    for (const s of [123_456, 1_500_000, 2_999_990]) {
      const e = Math.min(s + 10, 3_000_000)
      expect(rowsOf(await f.read(s, e))).toEqual(await reference(s, e))
    }
    expect((await f.read(2_999_999, 5_000_000)).numRows).toBe(1)
    expect((await f.read(3_000_000, 3_000_001)).numRows).toBe(0)
  })

  it('decodes each row group once over consecutive 250k-row reads', async () => {
    const cfs = new CountingFs()
    const g = await parquetFormat.open(cfs, FLIGHTS, {})
    cfs.ranges = []
    let rows = 0
    const parts = []
    for (let s = 0; s < g.numRows; s += 250_000) {
      const b = await g.read(s, s + 250_000)
      rows += b.numRows
      if (s === 250_000) parts.push(b)
    }
    expect(rows).toBe(3_000_000)
    // 11 row groups x 5 column chunks, each fetched once
    expect(cfs.ranges.length).toBe(55)
    expect(new Set(cfs.ranges.map((r) => r.join())).size).toBe(55)
    // a read spanning two row groups re-codes strings into one dictionary
    const b = parts[0]!
    expect(b.columns[3]!.dictionary!.length).toBeLessThan(400)
  })

  it('reads with a user schema: projection, widening, missing columns', async () => {
    const g = await parquetFormat.open(new NodeFs(), FLIGHTS, {
      schema: [
        { name: 'origin', type: 'string', nullable: true },
        { name: 'distance', type: 'float64', nullable: true },
        { name: 'nope', type: 'int32', nullable: true },
      ],
    })
    const rows = rowsOf(await g.read(0, 2))
    const ref = await reference(0, 2)
    expect(rows).toEqual(ref.map((r) => [r[3], Number(r[2]), null]))
    await expectSourceError(
      parquetFormat.open(new NodeFs(), FLIGHTS, { schema: [{ name: 'origin', type: 'int64', nullable: true }] }),
      'SCHEMA_MISMATCH',
      /origin/,
    )
  })

  it('inferSchema gives the schema from the footer only', () => {
    const file = syncFile(new NodeFs(), FLIGHTS)
    let read = 0
    const counted = { ...file, readRange: (a: number, b: number) => { const u = file.readRange(a, b); read += u.length; return u } }
    expect(parquetFormat.inferSchema(counted, {})).toEqual(f.schema)
    expect(read).toBeGreaterThan(0)
    expect(read).toBeLessThan(70_000) // header magic + a 64 KiB tail fetch, of a 18 MB file
    expect(() => parquetFormat.inferSchema(bytesFile('/x.parquet', new TextEncoder().encode('nope')), {})).toThrow(/x\.parquet/)
    const bytes = new Uint8Array(readFileSync(FLIGHTS))
    for (const cut of [bytes.subarray(0, bytes.length - 3), bytes.subarray(0, 4096), bytes.subarray(0, 16)]) {
      let err: unknown
      try {
        parquetFormat.inferSchema(bytesFile('/t.parquet', cut), {})
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(SourceError)
      expect((err as SourceError).code).toBe('CORRUPT_FILE')
      expect((err as SourceError).message).toContain('/t.parquet')
    }
    // a footer larger than the first 64 KiB fetch is read with a second one
    const wide: Schema = Array.from({ length: 600 }, (_, i) => ({ name: `a_rather_long_column_name_for_a_wide_footer_${i}`, type: 'int64', nullable: true }))
    const wideBytes = parquetFormat.encode([batchOf(wide, [wide.map(() => 1n)])], wide)
    expect(parquetFormat.inferSchema(bytesFile('/w.parquet', wideBytes), {})).toEqual(wide)
  })
})

const schema: Schema = [
  { name: 'b', type: 'boolean', nullable: true },
  { name: 'i', type: 'int32', nullable: true },
  { name: 'l', type: 'int64', nullable: true },
  { name: 'f', type: 'float64', nullable: true },
  { name: 't', type: 'timestamp', nullable: true },
  { name: 's', type: 'string', nullable: true },
  { name: 'bin', type: 'binary', nullable: true },
  { name: 'req', type: 'int64', nullable: false },
]
const rows: Cell[][] = [
  [true, 1, 2n ** 62n + 1n, 1.5, ts('2001-01-01T00:01:00Z') + 7n, 'ORD', Uint8Array.of(1, 2), 1n],
  [null, null, null, null, null, null, null, 2n],
  [false, -2147483648, -(2n ** 63n), -0.5, -1n, '', new Uint8Array(0), -(2n ** 53n) - 1n],
  [true, 7, 9007199254740993n, Infinity, 0n, 'ünïcødé ✈', Uint8Array.of(0), 9223372036854775807n],
]

describe('parquet: encode → open → read', () => {
  it('round-trips values, nulls, strings, timestamps and int64 beyond 2^53', async () => {
    const fs = new MemoryFs()
    const bytes = parquetFormat.encode([batchOf(schema, rows.slice(0, 2)), batchOf(schema, rows.slice(2))], schema)
    fs.put('/t/a.parquet', bytes)
    const f = await parquetFormat.open(fs, '/t/a.parquet', {})
    expect(f.schema).toEqual(schema)
    expect(f.numRows).toBe(4)
    expect(rowsOf(await f.read(0, 4))).toEqual(rows)
    expect(rowsOf(await f.read(1, 3))).toEqual(rows.slice(1, 3))
  })

  it('writes TIMESTAMP(MICROS, UTC) and UTF8 that hyparquet reads back', async () => {
    const bytes = parquetFormat.encode([batchOf(schema, rows)], schema)
    const md = parquetMetadata(bytes)
    const t = md.schema.find((e) => e.name === 't')!
    expect(t.type).toBe('INT64')
    expect(t.logical_type).toEqual({ type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' })
    const s = md.schema.find((e) => e.name === 's')!
    expect(s.converted_type).toBe('UTF8')
    expect(md.schema.find((e) => e.name === 'req')!.repetition_type).toBe('REQUIRED')
    const objs = await parquetReadObjects({ file: bytes.slice().buffer as ArrayBuffer })
    expect(objs[0]!.s).toBe('ORD')
    expect((objs[0]!.t as Date).toISOString()).toBe('2001-01-01T00:01:00.000Z')
    expect(objs[3]!.l).toBe(9007199254740993n)
  })

  it('dictionary-encodes repetitive strings', () => {
    const many: Cell[][] = Array.from({ length: 5000 }, (_, i) => [['ORD', 'LAX', 'SFO'][i % 3]!])
    const s1: Schema = [{ name: 's', type: 'string', nullable: true }]
    const md = parquetMetadata(parquetFormat.encode([batchOf(s1, many)], s1))
    expect(md.row_groups[0]!.columns[0]!.meta_data!.encodings).toContain('RLE_DICTIONARY')
  })

  it('rejects window columns, pointing at window.start / window.end', () => {
    const ws: Schema = [{ name: 'window', type: 'window', nullable: true }]
    let err: unknown
    try {
      parquetFormat.encode([batchOf(ws, [[{ start: 0n, end: 1n }]])], ws)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(SinkError)
    expect((err as SinkError).code).toBe('UNSUPPORTED_TYPE')
    expect((err as SinkError).message).toMatch(/window\.start/)
  })

  it('rejects nulls in a non-nullable column', () => {
    const s1: Schema = [{ name: 'x', type: 'int32', nullable: false }]
    expect(() => parquetFormat.encode([batchOf(s1, [[1], [null]])], s1)).toThrow(SinkError)
  })

  it('reads files with several row groups and other parquet types', async () => {
    const n = 2500
    const buf = parquetWriteBuffer({
      rowGroupSize: 1000,
      columnData: [
        { name: 'day', data: Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : new Date(Date.UTC(2001, 0, 1 + (i % 30))))), type: 'TIMESTAMP' },
        { name: 'u', data: Array.from({ length: n }, (_, i) => i * 1000), type: 'INT32' },
        { name: 'flt', data: Float32Array.from({ length: n }, (_, i) => i / 4), type: 'FLOAT', nullable: false },
        { name: 'flag', data: Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : i % 2 === 0)), type: 'BOOLEAN' },
        { name: 'js', data: Array.from({ length: n }, (_, i) => ({ k: i % 3 })), type: 'JSON' },
        { name: 'raw', data: Array.from({ length: n }, (_, i) => Uint8Array.of(i & 255, 1)), type: 'BYTE_ARRAY' },
      ],
    })
    const fs = new MemoryFs()
    fs.put('/x.parquet', new Uint8Array(buf))
    const f = await parquetFormat.open(fs, '/x.parquet', {})
    expect(f.schema.map((c) => `${c.name}:${c.type}`)).toEqual(['day:timestamp', 'u:int32', 'flt:float64', 'flag:boolean', 'js:string', 'raw:binary'])
    const all = rowsOf(await f.read(0, n))
    expect(all[0]).toEqual([null, 0, 0, null, '{"k":0}', Uint8Array.of(0, 1)])
    expect(all[1]).toEqual([ts('2001-01-02T00:00:00Z'), 1000, 0.25, false, '{"k":1}', Uint8Array.of(1, 1)])
    expect(all[1002]).toEqual([ts('2001-01-13T00:00:00Z'), 1002000, 250.5, true, '{"k":0}', Uint8Array.of(1002 & 255, 1)])
    expect(rowsOf(await f.read(990, 2010))).toEqual(all.slice(990, 2010))
  })

  it('round-trips arbitrary batches (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string', 'binary']), fc.nat(40), async ({ schema: s, rows: r }, cut) => {
        const fs = new MemoryFs()
        const k = Math.min(cut, r.length)
        const b = batchOf(s, r)
        fs.put('/p.parquet', parquetFormat.encode([sliceBatch(b, 0, k), sliceBatch(b, k, r.length)], s))
        const f = await parquetFormat.open(fs, '/p.parquet', {})
        expect(f.schema).toEqual(s)
        expect(f.numRows).toBe(r.length)
        expect(rowsOf(await f.read(0, r.length))).toEqual(r)
        const parts = [await f.read(0, k), await f.read(k, r.length)]
        expect(rowsOf(concatBatches(s, parts))).toEqual(r)
      }),
      { numRuns: 100 },
    )
  })
})

describe('parquet: corrupt files', () => {
  const good = parquetFormat.encode([batchOf(schema, rows)], schema)

  async function openBytes(bytes: Uint8Array, path = '/bad.parquet'): Promise<OpenedFile> {
    const fs = new MemoryFs()
    fs.put(path, bytes)
    return parquetFormat.open(fs, path, {})
  }

  it('truncated footer', async () => {
    const e = await expectSourceError(openBytes(good.subarray(0, good.length - 20)), 'CORRUPT_FILE', /\/bad\.parquet/)
    expect(e.cause).toBeInstanceOf(Error)
  })

  it('bad magic / not parquet at all', async () => {
    const bad = good.slice()
    bad[0] = 0x58
    await expectSourceError(openBytes(bad), 'CORRUPT_FILE', /\/bad\.parquet/)
    await expectSourceError(openBytes(new TextEncoder().encode('{"a":1}\n{"a":2}\n')), 'CORRUPT_FILE', /not a valid parquet file/)
    await expectSourceError(openBytes(new Uint8Array(0)), 'CORRUPT_FILE')
  })

  it('garbage inside a column chunk fails at read time', async () => {
    const bad = good.slice()
    const md = parquetMetadata(good)
    const chunk = md.row_groups[0]!.columns[5]!.meta_data! // the string column
    const off = Number(chunk.dictionary_page_offset || chunk.data_page_offset)
    bad.fill(0xff, off, off + Number(chunk.total_compressed_size))
    const f = await openBytes(bad)
    const e = await expectSourceError(f.read(0, 4), 'CORRUPT_FILE', /\/bad\.parquet.*row group 0/)
    expect(e.cause).toBeDefined()
  })

  it('missing file', async () => {
    await expectSourceError(parquetFormat.open(new MemoryFs(), '/nope.parquet', {}), 'FILE_NOT_FOUND', /nope\.parquet/)
  })

  it('unsupported nested columns are named, and skipped when the schema leaves them out', async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'ok', data: [1, 2] },
        { name: 'lst', data: [[1, 2], [3]] },
      ],
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'ok', type: 'INT32', repetition_type: 'OPTIONAL' },
        { name: 'lst', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'INT32', repetition_type: 'OPTIONAL' },
      ],
    })
    const fs = new MemoryFs()
    fs.put('/n.parquet', new Uint8Array(buf))
    await expectSourceError(parquetFormat.open(fs, '/n.parquet', {}), 'UNSUPPORTED_TYPE', /'lst'/)
    const f = await parquetFormat.open(fs, '/n.parquet', { schema: [{ name: 'ok', type: 'int32', nullable: true }] })
    expect(rowsOf(await f.read(0, 2))).toEqual([[1], [2]])
  })
})
