import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { parquetMetadata, parquetRead, parquetReadObjects } from 'hyparquet'
import { parquetHeader } from 'hyparquet/src/column.js'
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

// ---------------------------------------------------------------------------------------------
// Page decoding (src/formats/parquet.ts decodes levels and dictionary indices itself, resumably
// across reads): every check compares against hyparquet's own row assembly of the same bytes.

const toBigInt = (v: unknown): bigint => (typeof v === 'bigint' ? BigInt.asIntN(64, v) : BigInt(v as number))

/** Rows `[rowStart, rowEnd)` as hyparquet's `parquetReadObjects` reads them, as cells of `s`'s types. */
async function hyparquetRows(bytes: Uint8Array, s: Schema, rowStart?: number, rowEnd?: number): Promise<Cell[][]> {
  const text = new TextDecoder()
  const objs = await parquetReadObjects({
    file: bytes.slice().buffer as ArrayBuffer,
    compressors,
    rowStart,
    rowEnd,
    utf8: false,
    parsers: {
      timestampFromMilliseconds: (v: bigint) => BigInt(v) * 1000n,
      timestampFromMicroseconds: (v: bigint) => BigInt(v),
      timestampFromNanoseconds: (v: bigint) => {
        const q = BigInt(v) / 1000n
        return BigInt(v) < 0n && q * 1000n !== BigInt(v) ? q - 1n : q
      },
      dateFromDays: (d: number) => BigInt(d) * 86_400_000_000n,
      jsonFromBytes: (b: Uint8Array) => b && text.decode(b),
      uuidFromBytes: (b: Uint8Array) => b && [...b].map((x) => x.toString(16).padStart(2, '0')).join('').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    },
  })
  return objs.map((o) =>
    s.map((f): Cell => {
      const v = o[f.name]
      if (v === null || v === undefined) return null
      switch (f.type) {
        case 'boolean':
          return !!v
        case 'int32':
        case 'float64':
          return Number(v)
        case 'int64':
        case 'timestamp':
          return toBigInt(v)
        case 'string':
          return typeof v === 'string' ? v : text.decode(v as Uint8Array)
        case 'binary':
          return Uint8Array.from(v as Uint8Array)
        default:
          throw new Error(`unexpected type ${f.type}`)
      }
    }),
  )
}

/** A sequence of row ranges inside `[0, n)`: some consecutive (a read carrying on in a page), some anywhere. */
const rangesArb = (n: number): fc.Arbitrary<[number, number][]> =>
  fc.array(
    fc.tuple(fc.boolean(), fc.nat(n), fc.nat(Math.max(1, Math.ceil(n / 3)))),
    { minLength: 1, maxLength: 8 },
  ).map((steps) => {
    const out: [number, number][] = []
    let at = 0
    for (const [next, s, len] of steps) {
      const a = next ? at : s
      const b = Math.min(n, a + len)
      out.push([a, b])
      at = b >= n ? 0 : b
    }
    return out
  })

function sameCell(a: Cell, b: Cell): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i])
  return Object.is(a, b)
}

/** `toEqual` on rows, quick when they match (deep equality over 100k cells takes a while); on a mismatch, `toEqual` on the first row that differs. */
function expectRows(got: Cell[][], want: Cell[][], label = ''): void {
  expect(got.length, label).toBe(want.length)
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!
    const w = want[i]!
    if (g.length !== w.length || g.some((c, k) => !sameCell(c, w[k]!))) expect(g, `${label} row ${i}`).toEqual(w)
  }
}

async function expectRangesMatch(f: OpenedFile, ref: Cell[][], ranges: [number, number][]): Promise<void> {
  for (const [a, b] of ranges) {
    const got = await f.read(a, b)
    expect(got.numRows, `rows ${a}-${b}`).toBe(Math.max(0, b - a))
    expectRows(rowsOf(got), ref.slice(a, b), `rows ${a}-${b}`)
  }
}

describe('parquet: page decoding against hyparquet', () => {
  it('reads every row of flights-3m.parquet like hyparquet, in reads cutting its pages anywhere', async () => {
    const f = await parquetFormat.open(new NodeFs(), FLIGHTS, {})
    const n = f.numRows
    const date = new BigInt64Array(n)
    const delay = new BigInt64Array(n)
    const distance = new BigInt64Array(n)
    const origin: string[] = new Array(n)
    const destination: string[] = new Array(n)
    // odd read sizes: row-group boundaries (one page per column chunk in this file) fall inside reads, at varying offsets
    for (let a = 0, k = 0; a < n; k++) {
      const b = Math.min(n, a + [199_999, 77_777, 300_001][k % 3]!)
      const batch = await f.read(a, b)
      expect(batch.columns.every((c) => c.validity === null)).toBe(true)
      date.set(batch.columns[0]!.values as BigInt64Array, a)
      delay.set(batch.columns[1]!.values as BigInt64Array, a)
      distance.set(batch.columns[2]!.values as BigInt64Array, a)
      for (const [ci, out] of [[3, origin], [4, destination]] as const) {
        const c = batch.columns[ci]!
        const codes = c.values as Int32Array
        for (let i = 0; i < codes.length; i++) out[a + i] = c.dictionary![codes[i]!]!
      }
      a = b
    }
    const buf = readFileSync(FLIGHTS)
    let checked = 0
    let mismatches = 0
    const ours: Record<string, ArrayLike<unknown>> = { date, delay, distance, origin, destination }
    await parquetRead({
      file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
      compressors,
      parsers: { timestampFromMicroseconds: (v: bigint) => BigInt(v) },
      onChunk: ({ columnName, columnData, rowStart, rowEnd }) => {
        const mine = ours[columnName]!
        for (let i = rowStart; i < rowEnd; i++) if (mine[i] !== columnData[i - rowStart]) mismatches++
        checked += rowEnd - rowStart
      },
    })
    expect(checked).toBe(5 * n)
    expect(mismatches).toBe(0)
  })

  it('matches hyparquet on flights-3m.parquet over random row ranges around a row-group boundary (fast-check)', async () => {
    const lo = GROUP - 4000
    const bytes = new Uint8Array(readFileSync(FLIGHTS))
    const f = await parquetFormat.open(new NodeFs(), FLIGHTS, {})
    const ref = await hyparquetRows(bytes, f.schema, lo, GROUP + 4000)
    const window = { numRows: 8000, read: (a: number, b: number) => f.read(lo + a, lo + b) } as OpenedFile
    await fc.assert(
      fc.asyncProperty(rangesArb(8000), (ranges) => expectRangesMatch(window, ref, ranges)),
      { numRuns: 15 },
    )
  })

  it('matches hyparquet on files the encoder writes, over random row ranges (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string', 'binary'], { maxRows: 400 }).chain((t) =>
          fc.record({ t: fc.constant(t), ranges: rangesArb(t.rows.length) }),
        ),
        async ({ t: { schema: s, rows: r }, ranges }) => {
          const bytes = parquetFormat.encode([batchOf(s, r)], s)
          const fs = new MemoryFs()
          fs.put('/p.parquet', bytes)
          const f = await parquetFormat.open(fs, '/p.parquet', {})
          const ref = await hyparquetRows(bytes, s)
          expect(ref).toEqual(r)
          await expectRangesMatch(f, ref, ranges)
        },
      ),
      { numRuns: 60 },
    )
  })

  /** A column for hyparquet-writer: its data, type and encoding, and its Sluice type. */
  type WriterColumn = { name: string; data: unknown[]; type: string; encoding?: string; nullable: boolean }
  const encodingsOf: Record<string, (string | undefined)[]> = {
    INT32: [undefined, 'PLAIN', 'RLE_DICTIONARY', 'DELTA_BINARY_PACKED', 'BYTE_STREAM_SPLIT'],
    INT64: [undefined, 'PLAIN', 'RLE_DICTIONARY', 'DELTA_BINARY_PACKED', 'BYTE_STREAM_SPLIT'],
    DOUBLE: [undefined, 'PLAIN', 'RLE_DICTIONARY', 'BYTE_STREAM_SPLIT'],
    BOOLEAN: [undefined, 'PLAIN', 'RLE'],
    STRING: [undefined, 'PLAIN', 'RLE_DICTIONARY', 'DELTA_LENGTH_BYTE_ARRAY', 'DELTA_BYTE_ARRAY'],
    TIMESTAMP: [undefined, 'PLAIN', 'RLE_DICTIONARY'],
    BYTE_ARRAY: [undefined, 'PLAIN', 'RLE_DICTIONARY'],
  }
  const valueOf: Record<string, (x: number) => unknown> = {
    INT32: (x) => x | 0,
    INT64: (x) => BigInt(x) * 1_000_000_007n,
    DOUBLE: (x) => x / 8,
    BOOLEAN: (x) => x % 2 === 0,
    STRING: (x) => `s${x}`,
    TIMESTAMP: (x) => new Date(Date.UTC(2001, 0, 1) + x * 60_000),
    BYTE_ARRAY: (x) => Uint8Array.of(x & 255, x >> 8),
  }
  const columnArb = (n: number, k: number): fc.Arbitrary<WriterColumn> =>
    fc
      .record({
        type: fc.constantFrom(...Object.keys(encodingsOf)),
        nullable: fc.boolean(),
        nullFreq: fc.constantFrom(0, 0.1, 0.5, 0.95, 1),
        // distinct values: 1 (a bit width 0 dictionary), a few, or many
        distinct: fc.constantFrom(1, 3, 300, 100_000),
        seed: fc.nat(),
      })
      .chain(({ type, nullable, nullFreq, distinct, seed }) =>
        fc.constantFrom(...encodingsOf[type]!).map((encoding): WriterColumn => {
          let x = seed || 1
          const rnd = (): number => ((x = (x * 48271) % 2147483647) / 2147483647)
          const data = Array.from({ length: n }, () => (nullable && rnd() < nullFreq ? null : valueOf[type]!(Math.floor(rnd() * distinct))))
          return { name: `c${k}_${type}_${encoding ?? 'auto'}`, data, type, encoding, nullable }
        }),
      )

  it('matches hyparquet on multi-page chunks in every encoding, with nulls, over ranges cutting pages (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3000 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            columns: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }).chain((ks) => fc.tuple(...ks.map((_, k) => columnArb(n, k)))),
            rowGroupSize: fc.integer({ min: 1, max: 3000 }),
            pageSize: fc.constantFrom(16, 100, 1000, 1 << 20),
            codec: fc.constantFrom('UNCOMPRESSED', 'SNAPPY'),
            ranges: rangesArb(n),
          }),
        ),
        async ({ n, columns, rowGroupSize, pageSize, codec, ranges }) => {
          const buf = parquetWriteBuffer({
            columnData: columns.map((c) => ({ name: c.name, data: c.data, type: c.type, nullable: c.nullable, ...(c.encoding ? { encoding: c.encoding } : {}) })) as never,
            rowGroupSize,
            pageSize,
            codec: codec as 'SNAPPY',
          })
          const bytes = new Uint8Array(buf)
          const fs = new MemoryFs()
          fs.put('/m.parquet', bytes)
          const f = await parquetFormat.open(fs, '/m.parquet', {})
          expect(f.numRows).toBe(n)
          const ref = await hyparquetRows(bytes, f.schema)
          await expectRangesMatch(f, ref, ranges)
          expectRows(rowsOf(await f.read(0, n)), ref)
        },
      ),
      { numRuns: 80 },
    )
  })

  it('matches hyparquet on DuckDB files (v1 data pages): nulls in every type, dictionary and plain strings (fast-check ranges)', async () => {
    const { DuckDBInstance } = await import('@duckdb/node-api')
    const db = await DuckDBInstance.create(':memory:')
    const con = await db.connect()
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pq-'))
    try {
      const path = join(dir, 'd.parquet')
      const nul = (k: number, e: string): string => `CASE WHEN hash(i * ${k}) % 4 = 0 THEN NULL ELSE ${e} END`
      await con.run(`COPY (SELECT
          ${nul(1, 'i % 3 = 0')} AS b,
          ${nul(2, 'CAST(hash(i) % 1000 AS INTEGER) - 500')} AS i32,
          ${nul(3, 'CAST(hash(i + 1) % 100000000000 AS BIGINT) - 50000000000')} AS i64,
          ${nul(4, 'CAST(i AS DOUBLE) / 7')} AS f64,
          ${nul(5, 'CAST(i AS FLOAT) / 4')} AS f32,
          ${nul(6, "TIMESTAMP '2001-01-01' + to_microseconds(CAST(hash(i) % 100000000000 AS BIGINT))")} AS ts,
          ${nul(7, "DATE '2001-01-01' + CAST(i % 400 AS INTEGER)")} AS d,
          ${nul(8, "'k' || (hash(i) % 40)")} AS few,
          ${nul(9, "'unique-' || i || '-' || hash(i)")} AS many,
          ${nul(10, 'CAST((hash(i) % 10000) AS DECIMAL(9, 2)) / 100')} AS dec,
          ${nul(11, "encode('x' || (i % 5))")} AS blob,
          'always' AS req
        FROM range(20000) t(i)) TO '${path}' (FORMAT parquet, ROW_GROUP_SIZE 8192)`)
      const bytes = new Uint8Array(readFileSync(path))
      const md = parquetMetadata(bytes)
      const pageTypes = new Set(pagesOf(bytes, md).map((h) => `${h.type}:${h.data_page_header?.encoding ?? ''}`))
      expect(md.row_groups.length).toBe(3)
      expect([...pageTypes]).toEqual(expect.arrayContaining(['DATA_PAGE:PLAIN', expect.stringMatching(/^DATA_PAGE:(PLAIN|RLE)_DICTIONARY$/)]))
      expect([...pageTypes].some((t) => t.startsWith('DATA_PAGE_V2'))).toBe(false)
      const fs = new NodeFs()
      const f = await parquetFormat.open(fs, path, {})
      expect(f.schema.map((c) => `${c.name}:${c.type}`)).toEqual([
        'b:boolean', 'i32:int32', 'i64:int64', 'f64:float64', 'f32:float64', 'ts:timestamp', 'd:timestamp',
        'few:string', 'many:string', 'dec:float64', 'blob:binary', 'req:string',
      ])
      const ref = await hyparquetRows(bytes, f.schema)
      expect(ref.some((r) => r.every((c, i) => (c === null) === (i < 11)))).toBe(true) // nulls in every nullable column
      expectRows(rowsOf(await f.read(0, f.numRows)), ref)
      await fc.assert(
        fc.asyncProperty(rangesArb(f.numRows), (ranges) => expectRangesMatch(f, ref, ranges)),
        { numRuns: 20 },
      )
    } finally {
      con.closeSync()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a dictionary index past the dictionary, or truncated indices, are CORRUPT_FILE', async () => {
    const n = 40
    const buf = parquetWriteBuffer({
      columnData: [{ name: 's', data: Array.from({ length: n }, (_, i) => ['a', 'b', 'c'][i % 3]!), type: 'STRING', nullable: false, encoding: 'RLE_DICTIONARY' }],
      codec: 'UNCOMPRESSED',
    })
    const good = new Uint8Array(buf)
    const meta = parquetMetadata(good).row_groups[0]!.columns[0]!.meta_data!
    // the data page: header, then (a required column: no levels) the bit width and the index runs
    const at = Number(meta.data_page_offset)
    const reader = { view: new DataView(good.buffer, good.byteOffset + at), offset: 0 }
    const header = parquetHeader(reader)
    expect(header.data_page_header_v2!.encoding).toBe('RLE_DICTIONARY')
    const values = at + reader.offset
    const cases: [Uint8Array, RegExp][] = []
    const outOfRange = good.slice()
    outOfRange.set([2, n << 1, 3], values) // bit width 2, one RLE run of n threes: index 3 of 3 entries
    cases.push([outOfRange, /dictionary index 3 out of range/])
    const cut = good.slice()
    cut.set([32, 0x0b], values) // bit width 32: the run of 5 groups (40 values) needs 160 bytes, past the page's end
    cases.push([cut, /truncated/])
    for (const [bytes, msg] of cases) {
      const fs = new MemoryFs()
      fs.put('/c.parquet', bytes)
      const f = await parquetFormat.open(fs, '/c.parquet', {})
      await expectSourceError(f.read(0, n), 'CORRUPT_FILE', msg)
      await expectSourceError(f.read(5, 10), 'CORRUPT_FILE', /row group 0/)
    }
    expect(rowsOf(await (await openMem(good)).read(0, 4))).toEqual([['a'], ['b'], ['c'], ['a']])
  })
})

async function openMem(bytes: Uint8Array): Promise<OpenedFile> {
  const fs = new MemoryFs()
  fs.put('/m.parquet', bytes)
  return parquetFormat.open(fs, '/m.parquet', {})
}

/** Every page header of every column chunk. */
function pagesOf(bytes: Uint8Array, md: ReturnType<typeof parquetMetadata>): ReturnType<typeof parquetHeader>[] {
  const out: ReturnType<typeof parquetHeader>[] = []
  for (const rg of md.row_groups) {
    for (const c of rg.columns) {
      const m = c.meta_data!
      const start = Number(m.dictionary_page_offset || m.data_page_offset)
      const reader = { view: new DataView(bytes.buffer, bytes.byteOffset + start, Number(m.total_compressed_size)), offset: 0 }
      while (reader.offset < reader.view.byteLength) {
        const h = parquetHeader(reader)
        reader.offset += h.compressed_page_size
        out.push(h)
      }
    }
  }
  return out
}
