import { readFileSync } from 'node:fs'
import {
  Binary,
  Bool,
  DateDay,
  DateMillisecond,
  DenseUnion,
  Dictionary,
  DurationMillisecond,
  Field as ArrowField,
  FixedSizeBinary,
  FixedSizeList,
  Float16,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  IntervalYearMonth,
  LargeUtf8,
  List,
  makeData,
  Map_,
  Null,
  RecordBatch,
  Schema as ArrowSchema,
  Struct,
  Table,
  tableToIPC,
  TimeMillisecond,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Uint32,
  Uint64,
  Utf8,
  Utf8View,
  Vector,
  vectorFromArray,
  type DataType as ArrowDataType,
} from 'apache-arrow'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { batchesToIPC } from '../../src/arrow.ts'
import { isValid, sliceBatch, type Batch, type Schema } from '../../src/batch.ts'
import { SourceError } from '../../src/errors.ts'
import { arrowFormat, rangeReads } from '../../src/formats/arrow.ts'
import { bytesFile, type SyncFile } from '../../src/formats/format.ts'
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
  // IPC files (ARROW1 magic) must be read by ranges only; streams are read whole
  const fs = bytes[0] === 0x41 ? new CountingFs() : new MemoryFs()
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

const DEFAULT_MIN_BYTES = rangeReads.minBytes

/** Runs `fn` with record batches of at least `minBytes` needed bytes read by row range. */
async function withRangeReads<T>(minBytes: number, fn: () => Promise<T>): Promise<T> {
  const saved = rangeReads.minBytes
  rangeReads.minBytes = minBytes
  try {
    return await fn()
  } finally {
    rangeReads.minBytes = saved
  }
}

/** A MemoryFs that counts the bytes returned by range reads and forbids whole-file reads. */
class CountingFs extends MemoryFs {
  bytes = 0
  calls = 0
  override async readRange(path: string, start: number, end: number): Promise<Uint8Array> {
    const u = await super.readRange(path, start, end)
    this.bytes += u.length
    this.calls++
    return u
  }
  override async read(path: string): Promise<Uint8Array> {
    throw new Error(`unexpected whole-file read of ${path}`)
  }
  reset(): void {
    this.bytes = 0
    this.calls = 0
  }
}

/** A SyncFile over bytes that counts the bytes it returns. */
function countingFile(path: string, bytes: Uint8Array): SyncFile & { read: number } {
  const f = {
    path,
    size: bytes.length,
    read: 0,
    readRange(a: number, b: number) {
      const u = bytes.subarray(Math.max(0, a), Math.max(0, b))
      f.read += u.length
      return u
    },
  }
  return f
}

async function sourceError(p: Promise<unknown> | (() => unknown)): Promise<SourceError> {
  let err: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    err = e
  }
  expect(err, 'expected a SourceError').toBeInstanceOf(SourceError)
  return err as SourceError
}

/** Rows [0, n) in record batches cut at `cuts`. */
function cutInto(b: Batch, cuts: number[]): Batch[] {
  const at = [...new Set([0, ...cuts.filter((c) => c > 0 && c < b.numRows), b.numRows])].sort((x, y) => x - y)
  const out: Batch[] = []
  for (let i = 0; i + 1 < at.length; i++) out.push(sliceBatch(b, at[i]!, at[i + 1]!))
  return out.length > 0 ? out : [b]
}

describe('arrow IPC files: range reads', () => {
  const wide: Schema = [
    { name: 'a', type: 'int64', nullable: true },
    { name: 'b', type: 'float64', nullable: true },
    { name: 'c', type: 'timestamp', nullable: true },
    { name: 'd', type: 'int64', nullable: true },
    { name: 'e', type: 'string', nullable: true },
  ]
  const N = 100_000
  const wideRows: Cell[][] = Array.from({ length: N }, (_, i) => [BigInt(i), i / 2, BigInt(i) * 1000n, i % 7 === 0 ? null : BigInt(-i), `s${i % 5000}`])
  const wideBytes = batchesToIPC(wide, cutInto(batchOf(wide, wideRows), [30_000, 60_000, 90_000]), 'file')

  it('reads a multi-record-batch file through arbitrary ranges like the whole-file read (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
      tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string', 'binary', 'window'], { maxRows: 40 }),
      fc.array(fc.nat(40), { maxLength: 5 }),
      fc.array(fc.tuple(fc.nat(45), fc.nat(45)), { minLength: 1, maxLength: 6 }),
      fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      async ({ schema: s, rows: r }, cuts, ranges, keep) => {
        const parts = cutInto(batchOf(s, r), cuts)
        const fs = new CountingFs()
        fs.put('/d/x.arrow', batchesToIPC(s, parts, 'file'))
        // the same batches as an IPC stream, read whole
        const viaStream = await open(batchesToIPC(s, parts, 'stream'))
        // a projection: some columns, in reverse order
        const sub = s.filter((_, i) => keep[i % keep.length]).reverse()
        const cols = sub.map((x) => s.findIndex((y) => y.name === x.name))
        // record batches loaded whole (small), and read by row range: fixed-width columns (booleans,
        // numbers, timestamps, dictionary codes) by rows, binary and window ones whole, alongside
        for (const minBytes of [DEFAULT_MIN_BYTES, 0]) {
          await withRangeReads(minBytes, async () => {
            const f = await arrowFormat.open(fs, '/d/x.arrow', {})
            expect(f.schema).toEqual(s)
            expect(f.numRows).toBe(r.length)
            const g = await arrowFormat.open(fs, '/d/x.arrow', { schema: sub })
            for (const [a, b] of ranges) {
              const lo = Math.min(a, b)
              const hi = Math.max(a, b)
              const want = r.slice(lo, hi)
              expect(rowsOf(await f.read(lo, hi))).toEqual(want)
              expect(rowsOf(await f.read(lo, hi))).toEqual(rowsOf(await viaStream.read(lo, hi)))
              expect(rowsOf(await g.read(lo, hi))).toEqual(want.map((row) => cols.map((c) => row[c]!)))
            }
          })
        }
      },
      ),
      { numRuns: 60 },
    )
  })

  it('reads Arrow-typed record batches by row range like the stream read: narrow and unsigned ints, floats, time units, dates, dictionary indices, Utf8 (fast-check)', async () => {
    // [name, type, values]: fixed-width types are read by rows, Utf8 / LargeUtf8 / Binary whole
    const words = ['', 'a', 'ORD', 'LAX', 'é', 'with,comma', 'x'.repeat(20)]
    const kinds: [string, ArrowDataType, fc.Arbitrary<unknown>][] = [
      ['bool', new Bool(), fc.boolean()],
      ['i8', new Int8(), fc.integer({ min: -128, max: 127 })],
      ['i16', new Int16(), fc.integer({ min: -32768, max: 32767 })],
      ['i32', new Int32(), fc.integer()],
      ['u32', new Uint32(), fc.nat({ max: 2 ** 32 - 1 })],
      ['i64', new Int64(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })],
      ['u64', new Uint64(), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })],
      ['f16', new Float16(), fc.constantFrom(0, 1.5, -2, 65504, 0.25)],
      ['f32', new Float32(), fc.float({ noNaN: true })],
      ['f64', new Float64(), fc.double()],
      ['ts_s', new TimestampSecond(), fc.integer({ min: -1e9, max: 1e9 }).map((sec) => sec * 1000)], // apache-arrow's builders take ms
      ['ts_ms', new TimestampMillisecond(), fc.integer({ min: -1e12, max: 1e12 })],
      ['ts_us', new TimestampMicrosecond(), fc.integer({ min: -1e12, max: 1e12 })],
      ['ts_ns', new TimestampNanosecond(), fc.integer({ min: -1e12, max: 1e12 })],
      ['date_d', new DateDay(), fc.integer({ min: -1e6, max: 1e6 }).map((d) => new Date(d * 86_400_000))],
      ['date_ms', new DateMillisecond(), fc.integer({ min: -1e12, max: 1e12 }).map((ms) => new Date(ms))],
      ['dict8', new Dictionary(new Utf8(), new Int8()), fc.constantFrom(...words)],
      ['dict16', new Dictionary(new Utf8(), new Int16()), fc.constantFrom(...words)],
      ['dict32', new Dictionary(new Utf8(), new Int32()), fc.constantFrom(...words)],
      ['utf8', new Utf8(), fc.string({ maxLength: 6 })],
      ['large', new LargeUtf8(), fc.constantFrom(...words)],
      ['bin', new Binary(), fc.uint8Array({ maxLength: 4 })],
    ]
    const columnArb = (n: number) =>
      fc.tuple(fc.constantFrom(...kinds), fc.boolean()).chain(([[name, type, value], nulls]) =>
        fc.record({
          name: fc.constant(name),
          type: fc.constant(type),
          values: fc.array(nulls ? fc.option(value, { nil: null, freq: 3 }) : value, { minLength: n, maxLength: n }),
        }),
      )
    await withRangeReads(0, () =>
      fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 300 }).chain((n) =>
            fc.record({
              n: fc.constant(n),
              columns: fc.uniqueArray(columnArb(n), { minLength: 1, maxLength: 8, selector: (c) => c.name }),
              cuts: fc.array(fc.nat(n), { maxLength: 3 }),
              reads: fc.array(fc.tuple(fc.nat(n + 4), fc.nat(80)), { minLength: 1, maxLength: 6 }),
              step: fc.integer({ min: 1, max: 120 }),
              keep: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
            }),
          ),
          async ({ n, columns, cuts, reads, step, keep }) => {
            const t = new Table(Object.fromEntries(columns.map((c) => [c.name, vectorFromArray(c.values as never, c.type as never)])))
            const rb = t.batches[0]!
            const at = [...new Set([0, ...cuts.filter((c) => c > 0 && c < n), n])].sort((x, y) => x - y)
            const cut = new Table(at.slice(1).map((e, k) => rb.slice(at[k]!, e)))
            const fs = new CountingFs()
            fs.put('/d/t.arrow', tableToIPC(cut, 'file'))
            const viaStream = await open(tableToIPC(cut, 'stream'))
            const f = await arrowFormat.open(fs, '/d/t.arrow', {})
            expect(f.numRows).toBe(n)
            expect(f.schema).toEqual(viaStream.schema)
            const sub = f.schema.filter((_, i) => keep[i % keep.length]).reverse()
            const cols = sub.map((x) => f.schema.findIndex((y) => y.name === x.name))
            const g = await arrowFormat.open(fs, '/d/t.arrow', { schema: sub })
            // arbitrary ranges (unaligned starts and ends), then the whole file in consecutive ranges
            const ranges = reads.map(([a, k]) => [a, a + k] as const)
            for (let a = reads[0]![0] % 17; a < n; a += step) ranges.push([a, a + step])
            for (const [lo, hi] of ranges) {
              const want = rowsOf(await viaStream.read(lo, hi))
              expect(rowsOf(await f.read(lo, hi))).toEqual(want)
              expect(rowsOf(await g.read(lo, hi))).toEqual(want.map((row) => cols.map((c) => row[c]!)))
            }
          },
        ),
        { numRuns: 80 },
      ),
    )
  })

  it('reads rows [a, a + k) of a large record batch by byte range: about k × the width, not the whole column', async () => {
    const N = 1_000_000
    const s: Schema = [
      { name: 'x', type: 'int64', nullable: true },
      { name: 'f', type: 'float64', nullable: true },
      { name: 'b', type: 'boolean', nullable: true },
      { name: 'bin', type: 'binary', nullable: true },
    ]
    const valid = (nth: number) => {
      const v = new Uint8Array(N >> 3).fill(255)
      for (let i = 0; i < N; i += nth) v[i >> 3]! &= ~(1 << (i & 7))
      return v
    }
    const x = BigInt64Array.from({ length: N }, (_, i) => BigInt(i) * 3n)
    const fv = Float64Array.from({ length: N }, (_, i) => i / 4)
    const bv = Uint8Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 1 : 0))
    const bin = Array.from({ length: N }, (_, i) => Uint8Array.of(i & 255))
    const batch: Batch = {
      schema: s,
      numRows: N,
      columns: [
        { type: 'int64', length: N, values: x, validity: valid(7) },
        { type: 'float64', length: N, values: fv, validity: null },
        { type: 'boolean', length: N, values: bv, validity: valid(5) },
        { type: 'binary', length: N, values: bin, validity: null },
      ],
    }
    const bytes = batchesToIPC(s, [batch], 'file')
    const fs = new CountingFs()
    fs.put('/d/big.arrow', bytes)
    const a = 300_003
    const k = 50_000
    const want = rowsOf(sliceBatch(batch, a, a + k))
    const read = async (cols: number[], lo: number, hi: number): Promise<{ rows: Cell[][]; bytes: number; calls: number }> => {
      const f = await arrowFormat.open(fs, '/d/big.arrow', { schema: cols.map((c) => s[c]!) })
      fs.reset()
      const rows = rowsOf(await f.read(lo, hi))
      return { rows, bytes: fs.bytes, calls: fs.calls }
    }
    // int64 with nulls: k × 8 bytes of values and k / 8 of validity (from an 8-byte boundary), two reads
    let r = await read([0], a, a + k)
    expect(r.rows).toEqual(want.map((row) => [row[0]!]))
    expect(r.bytes).toBeGreaterThanOrEqual(k * 8 + k / 8)
    expect(r.bytes).toBeLessThan(k * 8 + k / 8 + 16)
    expect(r.calls).toBe(2)
    // float64 without nulls: exactly its rows' bytes
    r = await read([1], a, a + k)
    expect(r.rows).toEqual(want.map((row) => [row[1]!]))
    expect(r.bytes).toBe(k * 8)
    expect(r.calls).toBe(1)
    // booleans with nulls at an unaligned start: bits for bits (a column of 250 KB: read by range
    // only when the size threshold is lowered)
    r = await read([2], a, a + k)
    expect(r.bytes).toBe(2 * (N / 8))
    r = await withRangeReads(0, () => read([2], a, a + k))
    expect(r.rows).toEqual(want.map((row) => [row[2]!]))
    expect(r.bytes).toBeLessThan(2 * (k / 8 + 16))
    expect(r.calls).toBe(2)
    // with a binary column: that one is loaded whole (once), the others by rows
    const f = await arrowFormat.open(fs, '/d/big.arrow', { schema: [s[3]!, s[0]!] })
    fs.reset()
    expect(rowsOf(await f.read(a, a + k))).toEqual(want.map((row) => [row[3]!, row[0]!]))
    const binBytes = (N + 1) * 4 + N
    expect(fs.bytes).toBeGreaterThanOrEqual(binBytes + k * 8)
    expect(fs.bytes).toBeLessThan(binBytes + k * 8 + k / 8 + 64)
    fs.reset()
    expect(rowsOf(await f.read(a + k, a + 2 * k))).toEqual(rowsOf(sliceBatch(batch, a + k, a + 2 * k)).map((row) => [row[3]!, row[0]!]))
    expect(fs.bytes).toBeLessThan(k * 8 + k / 8 + 16)
    // consecutive reads through the file fetch each byte once; the last read takes the rest of the
    // batch with it when less than a read is left; a read of most of a batch from its start loads it whole
    const g = await arrowFormat.open(fs, '/d/big.arrow', { schema: [s[0]!] })
    fs.reset()
    let sum = 0n
    for (let lo = 0; lo < N; lo += 150_000) {
      const col = (await g.read(lo, lo + 150_000)).columns[0]!
      for (let i = 0; i < col.length; i++) if (isValid(col.validity, i)) sum += (col.values as BigInt64Array)[i]!
    }
    expect(sum).toBe(x.reduce((t, v, i) => (i % 7 === 0 ? t : t + v), 0n))
    expect(fs.bytes).toBeLessThan(N * 8 + N / 8 + 7 * 16)
    expect(fs.calls).toBe(2 * 6)
    const h = await arrowFormat.open(fs, '/d/big.arrow', { schema: [s[0]!] })
    fs.reset()
    await h.read(0, 600_000)
    await h.read(600_000, N)
    expect(fs.bytes).toBe(N * 8 + N / 8)
    expect(fs.calls).toBe(1)
  })

  it('reads only the byte ranges of the columns it needs (1 of 5 columns: well under the file size)', async () => {
    const fs = new CountingFs()
    fs.put('/d/w.arrow', wideBytes)
    const f = await arrowFormat.open(fs, '/d/w.arrow', { schema: [wide[3]!] })
    expect(f.numRows).toBe(N)
    // at open: the tail (footer) and each record batch's metadata, no body
    expect(fs.bytes).toBeLessThan(70_000)
    fs.reset()
    const got: Cell[][] = []
    for (let a = 0; a < N; a += 25_000) got.push(...rowsOf(await f.read(a, a + 25_000)))
    expect(got).toEqual(wideRows.map((r) => [r[3]!]))
    // column d: 8 bytes a row plus its validity bitmap; the file holds 5 columns and a 5000-entry dictionary
    expect(fs.bytes).toBeGreaterThanOrEqual(N * 8)
    expect(fs.bytes).toBeLessThan(N * 8 + N / 8 + 4 * 4096)
    expect(fs.bytes).toBeLessThan(wideBytes.length * 0.25)
    // one read per record batch: validity and values are adjacent; each batch is fetched once over consecutive reads
    expect(fs.calls).toBe(4)
  })

  it('reads the dictionary of a needed string column once, and no dictionary for other columns', async () => {
    const fs = new CountingFs()
    fs.put('/d/w.arrow', wideBytes)
    const f = await arrowFormat.open(fs, '/d/w.arrow', { schema: [wide[4]!, wide[0]!] })
    fs.reset()
    const got = rowsOf(await f.read(0, N))
    expect(got).toEqual(wideRows.map((r) => [r[4]!, r[0]!]))
    // 4 record batches (codes and int64 are not adjacent: two runs each) + the dictionary's metadata and body
    expect(fs.calls).toBeLessThanOrEqual(4 * 2 + 2)
    expect(fs.bytes).toBeLessThan(N * 12 + 5000 * 16 + 16 * 4096)
    // the same decoded dictionary is shared by every record batch
    const b1 = await f.read(0, 10)
    const b2 = await f.read(N - 10, N)
    expect(b1.columns[0]!.dictionary).toBe(b2.columns[0]!.dictionary)
  })

  it('reads delta dictionary batches (apache-arrow writes them for a growing dictionary)', async () => {
    const dt = new Dictionary(new Utf8(), new Int32(), 7)
    const d1 = vectorFromArray(['a', 'b'], new Utf8())
    const d2 = d1.concat(vectorFromArray(['c'], new Utf8()))
    const b1 = makeData({ type: dt, length: 3, nullCount: 0, data: Int32Array.from([0, 1, 0]), dictionary: d1 })
    const b2 = makeData({ type: dt, length: 3, nullCount: 0, data: Int32Array.from([2, 1, 2]), dictionary: d2 })
    const s = new ArrowSchema([new ArrowField('s', dt, true)])
    const t = new Table([b1, b2].map((d) => new RecordBatch(s, makeData({ type: new Struct(s.fields), length: 3, nullCount: 0, children: [d] }))))
    const bytes = tableToIPC(t, 'file')
    const f = await open(bytes)
    expect(rowsOf(await f.read(0, 6))).toEqual([['a'], ['b'], ['a'], ['c'], ['b'], ['c']])
    expect(rowsOf(await f.read(3, 5))).toEqual([['c'], ['b']])
  })

  it('skips unneeded columns of types Sluice cannot read, reading none of their bytes', async () => {
    const n = 20_000
    const ints = Array.from({ length: 2 * n }, (_, i) => i)
    const union = makeData({
      type: new DenseUnion([0, 1], [new ArrowField('i', new Int32(), true), new ArrowField('s', new Utf8(), true)]),
      length: 2 * n,
      nullCount: 0,
      typeIds: Int8Array.from(ints, (i) => i % 2),
      valueOffsets: Int32Array.from(ints, (i) => i >> 1),
      children: [vectorFromArray(ints.slice(0, n), new Int32()).data[0]!, vectorFromArray(ints.slice(0, n).map(String), new Utf8()).data[0]!],
    })
    const t = new Table({
      list: vectorFromArray(ints.map((i) => [i, i]), new List(new ArrowField('item', new Int32(), true))),
      a: vectorFromArray(ints, new Int32()),
      nul: vectorFromArray(ints.map(() => null), new Null()),
      struct: vectorFromArray(ints.map((i) => ({ x: i, y: `y${i}` })), new Struct([new ArrowField('x', new Int32(), true), new ArrowField('y', new Utf8(), true)])),
      fsl: vectorFromArray(ints.map((i) => [i, -i]), new FixedSizeList(2, new ArrowField('item', new Int16(), true))),
      map: vectorFromArray(ints.map((i) => new Map([[`k${i % 3}`, i]])), new Map_(new ArrowField('entries', new Struct([new ArrowField('key', new Utf8(), false), new ArrowField('value', new Int32(), true)]), false) as never)),
      dur: vectorFromArray(ints.map((i) => BigInt(i)), new DurationMillisecond()),
      time: vectorFromArray(ints, new TimeMillisecond()),
      dictint: vectorFromArray(ints.map((i) => i % 4), new Dictionary(new Int32(), new Int8())),
      view: vectorFromArray(ints.map((i) => `view-string-long-enough-${i}`), new Utf8View()),
      union: new Vector([union]),
      interval: vectorFromArray(ints.map(() => [1, 2]) as never, new IntervalYearMonth()),
      fsb: vectorFromArray(ints.map((i) => Uint8Array.of(i & 255, 1)), new FixedSizeBinary(2)),
      large: vectorFromArray(ints.map((i) => `L${i}`), new LargeUtf8()),
      z: vectorFromArray(ints.map((i) => `z${i % 10}`)),
    })
    expect(t.batches.length).toBe(1)
    // two record batches of n rows
    const bytes = tableToIPC(new Table([t.batches[0]!.slice(0, n), t.batches[0]!.slice(n, 2 * n)]), 'file')
    const fs = new CountingFs()
    fs.put('/d/x.arrow', bytes)
    const err = await sourceError(arrowFormat.open(fs, '/d/x.arrow', {}))
    expect(err.code).toBe('UNSUPPORTED_TYPE')
    expect(err.message).toContain("'list'")
    expect((await sourceError(() => arrowFormat.inferSchema(bytesFile('/d/x.arrow', bytes), {}))).code).toBe('UNSUPPORTED_TYPE')
    const want: Schema = [
      { name: 'z', type: 'string', nullable: true },
      { name: 'a', type: 'int64', nullable: true },
      { name: 'large', type: 'string', nullable: true },
    ]
    fs.reset()
    const f = await arrowFormat.open(fs, '/d/x.arrow', { schema: want })
    expect(f.numRows).toBe(2 * n)
    const rows = rowsOf(await f.read(n - 2, n + 2))
    expect(rows).toEqual([
      ['z8', BigInt(n - 2), `L${n - 2}`],
      ['z9', BigInt(n - 1), `L${n - 1}`],
      ['z0', BigInt(n), `L${n}`],
      ['z1', BigInt(n + 1), `L${n + 1}`],
    ])
    // the layout of every unneeded column was skipped over, not loaded (a whole-batch fallback would read ~all of it)
    expect(fs.bytes).toBeLessThan(bytes.length * 0.25)
  })

  it('a block past the end of the file is CORRUPT_FILE at open, a body cut short is CORRUPT_FILE at read', async () => {
    const bytes = wideBytes
    const flen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(bytes.length - 10, true)
    const dataEnd = bytes.length - 10 - flen
    // the last record batch's body loses its last 64 bytes; the footer still lists it whole
    const cut = new Uint8Array(bytes.length - 64)
    cut.set(bytes.subarray(0, dataEnd - 64))
    cut.set(bytes.subarray(dataEnd), dataEnd - 64)
    const fs = new CountingFs()
    fs.put('/d/cut.arrow', cut)
    const err = await sourceError(arrowFormat.open(fs, '/d/cut.arrow', {}))
    expect(err.code).toBe('CORRUPT_FILE')
    expect(err.message).toContain('/d/cut.arrow')
    expect(err.message).toMatch(/record batch 3 .*extends past the end/)
    // a footer length pointing before the file's start
    const badLen = bytes.slice()
    new DataView(badLen.buffer).setInt32(badLen.length - 10, bytes.length, true)
    fs.put('/d/len.arrow', badLen)
    expect((await sourceError(arrowFormat.open(fs, '/d/len.arrow', {}))).message).toMatch(/\/d\/len\.arrow.*footer length/)
    expect((await sourceError(() => arrowFormat.inferSchema(bytesFile('/d/len.arrow', badLen), {}))).code).toBe('CORRUPT_FILE')
    // the file shrinks after open: the body read comes back short
    fs.put('/d/w.arrow', bytes)
    const f = await arrowFormat.open(fs, '/d/w.arrow', {})
    fs.put('/d/w.arrow', bytes.subarray(0, 200_000))
    const short = await sourceError(f.read(0, 10))
    expect(short.code).toBe('CORRUPT_FILE')
    expect(short.message).toMatch(/\/d\/w\.arrow.*cut short/)
    // and a later read after the file is whole again succeeds (a failed load is not cached)
    fs.put('/d/w.arrow', bytes)
    expect(rowsOf(await f.read(0, 2))).toEqual(wideRows.slice(0, 2))
  })

  it('inferSchema reads only the footer of a file and the first message of a stream', () => {
    const file = countingFile('/d/w.arrow', wideBytes)
    expect(arrowFormat.inferSchema(file, {})).toEqual(wide)
    expect(file.read).toBeLessThan(70_000)
    const streamBytes = batchesToIPC(wide, cutInto(batchOf(wide, wideRows), [50_000]), 'stream')
    const stream = countingFile('/d/w.arrows', streamBytes)
    expect(arrowFormat.inferSchema(stream, {})).toEqual(wide)
    expect(stream.read).toBeLessThan(1000)
    // truncated (no trailing magic), not Arrow at all, a cut stream
    expect(corruptMessage(() => arrowFormat.inferSchema(bytesFile('/d/t.arrow', wideBytes.subarray(0, wideBytes.length - 10)), {}))).toMatch(/\/d\/t\.arrow.*truncated/)
    expect(corruptMessage(() => arrowFormat.inferSchema(bytesFile('/d/j.arrow', new TextEncoder().encode('{"id": 1}\n')), {}))).toMatch(/\/d\/j\.arrow.*magic/)
    expect(corruptMessage(() => arrowFormat.inferSchema(bytesFile('/d/s.arrows', streamBytes.subarray(0, 12)), {}))).toMatch(/\/d\/s\.arrows/)
    const pq = readFileSync(new URL('../../node_modules/vega-datasets/data/flights-3m.parquet', import.meta.url)).subarray(0, 4096)
    expect(corruptMessage(() => arrowFormat.inferSchema(bytesFile('/d/p.arrow', new Uint8Array(pq)), {}))).toMatch(/magic/)
  })
})

/** The message of the CORRUPT_FILE SourceError `fn` throws. */
function corruptMessage(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(SourceError)
    expect((e as SourceError).code).toBe('CORRUPT_FILE')
    return (e as SourceError).message
  }
  throw new Error('expected a CORRUPT_FILE SourceError')
}
