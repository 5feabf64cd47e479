import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { batchesToIPC } from '../../src/arrow.ts'
import { sliceBatch, type Schema } from '../../src/batch.ts'
import { fileFormat } from '../../src/formats/format.ts'
import { type DataFrame, type Row, SluiceSession, col, count, sum } from '../../src/index.node.ts'
import { NodeFs } from '../../src/node/fs.ts'
import { rowsToBatch } from '../../src/util/rows.ts'

// A file source over Arrow IPC files reads each file by byte ranges: the footer when the DataFrame is
// built (schema inference) and when the file is discovered, then only the buffers of the columns the
// query needs, once.

let session: SluiceSession
let dir: string
let n = 0
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-arrow-src-'))
})
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})
afterEach(() => {
  vi.restoreAllMocks()
})

const schema: Schema = [
  { name: 'id', type: 'int64', nullable: true },
  { name: 'origin', type: 'string', nullable: true },
  { name: 'payload', type: 'float64', nullable: true },
  { name: 'other', type: 'float64', nullable: true },
  { name: 'delay', type: 'int64', nullable: true },
]
const ORIGINS = ['ORD', 'LAX', 'SFO', 'JFK']

function rows(from: number, to: number): Row[] {
  const out: Row[] = []
  for (let i = from; i < to; i++) out.push({ id: i, origin: ORIGINS[i % 4]!, payload: i / 3, other: -i, delay: i % 11 })
  return out
}

/** An Arrow IPC file of rows [from, to) in record batches of `per` rows. */
function arrowFile(from: number, to: number, per: number): Uint8Array {
  const b = rowsToBatch(schema, rows(from, to))
  const parts = []
  for (let a = 0; a < b.numRows; a += per) parts.push(sliceBatch(b, a, Math.min(b.numRows, a + per)))
  return batchesToIPC(schema, parts, 'file')
}

/** Counts bytes read from `.arrow` files through every NodeFs read method (`max`: the largest range read). */
function countReads(): { whole: number; ranges: number; max: number } {
  const c = { whole: 0, ranges: 0, max: 0 }
  const proto = NodeFs.prototype
  const read = proto.read
  const readSync = proto.readSync
  const readRange = proto.readRange
  const readRangeSync = proto.readRangeSync
  const arrow = (p: string) => p.endsWith('.arrow')
  vi.spyOn(proto, 'read').mockImplementation(async function (this: NodeFs, p: string) {
    const u = await read.call(this, p)
    if (arrow(p)) c.whole += u.length
    return u
  })
  vi.spyOn(proto, 'readSync').mockImplementation(function (this: NodeFs, p: string) {
    const u = readSync.call(this, p)
    if (arrow(p)) c.whole += u.length
    return u
  })
  vi.spyOn(proto, 'readRange').mockImplementation(async function (this: NodeFs, p: string, s: number, e: number) {
    const u = await readRange.call(this, p, s, e)
    if (arrow(p)) {
      c.ranges += u.length
      c.max = Math.max(c.max, u.length)
    }
    return u
  })
  vi.spyOn(proto, 'readRangeSync').mockImplementation(function (this: NodeFs, p: string, s: number, e: number) {
    const u = readRangeSync.call(this, p, s, e)
    if (arrow(p)) c.ranges += u.length
    return u
  })
  return c
}

describe('file source over Arrow IPC files', () => {
  it('infers the schema from the footer and reads each needed byte once: only the columns the query uses, or the schema given', async () => {
    const d = join(dir, `in-${n++}`)
    mkdirSync(d)
    const files = [arrowFile(0, 120_000, 50_000), arrowFile(120_000, 200_000, 30_000)]
    files.forEach((bytes, i) => writeFileSync(join(d, `part-${i}.arrow`), bytes))
    const size = files.reduce((s, f) => s + f.length, 0)
    const want = new Map<string, { n: number; delay: number }>()
    for (const r of rows(0, 200_000)) {
      const w = want.get(r.origin as string) ?? { n: 0, delay: 0 }
      w.n++
      w.delay += r.delay as number
      want.set(r.origin as string, w)
    }
    const expected = [...want].map(([origin, w]) => ({ origin, n: w.n, delay: w.delay })).sort((a, b) => a.origin.localeCompare(b.origin))
    const run = async (df: DataFrame): Promise<Row[]> => {
      const name = `m${n++}`
      const q = await df
        .groupBy(col('origin'))
        .agg(count('*').as('n'), sum('delay').as('delay'))
        .writeStream.format('memory').queryName(name).outputMode('complete').start()
      await q.processAllAvailable()
      await q.stop()
      return (await session.table(name).collect()).sort((a, b) => String(a.origin).localeCompare(String(b.origin)))
    }

    let reads = countReads()
    const df = session.readStream.format('arrow').option('maxRowsPerTrigger', 35_000).load(d)
    expect(df.schema.map((f) => f.name)).toEqual(schema.map((f) => f.name))
    // load(): the tail (footer) of the first file only
    expect(reads.whole).toBe(0)
    expect(reads.ranges).toBeLessThanOrEqual(8 + 16_384)
    expect(await run(df)).toEqual(expected)
    // the query uses origin (codes) and delay: 12 of the 36 bytes a row, plus tails, metadata and
    // the dictionaries (column pruning: pruneColumns)
    expect(reads.whole).toBe(0)
    expect(reads.ranges).toBeGreaterThanOrEqual(200_000 * 12)
    expect(reads.ranges).toBeLessThan(size * 0.45)

    vi.restoreAllMocks()
    reads = countReads()
    // every column reaches the sink: each byte read once (plus each file's tail per open)
    const all = `m${n++}`
    const q = await df.writeStream.format('memory').queryName(all).start()
    await q.processAllAvailable()
    await q.stop()
    expect((await session.table(all).collect()).length).toBe(200_000)
    expect(reads.whole).toBe(0)
    expect(reads.ranges).toBeGreaterThanOrEqual(200_000 * 36)
    expect(reads.ranges).toBeLessThan(size + 5 * 16_384)

    vi.restoreAllMocks()
    reads = countReads()
    const narrow = session.readStream.format('arrow').schema({ origin: 'string', delay: 'long' }).option('maxRowsPerTrigger', 35_000).load(d)
    expect(await run(narrow)).toEqual(expected)
    // origin (codes) and delay: 12 of the 36 bytes a row, plus tails, metadata and the dictionaries
    expect(reads.whole).toBe(0)
    expect(reads.ranges).toBeGreaterThanOrEqual(200_000 * 12)
    expect(reads.ranges).toBeLessThan(size * 0.45)
  })

  it('reads one large record batch by row ranges as the micro-batches go, each needed byte once', async () => {
    const d = join(dir, `in-${n++}`)
    mkdirSync(d)
    const N = 400_000
    writeFileSync(join(d, 'one.arrow'), arrowFile(0, N, N))
    const want = new Map<string, { n: number; delay: number }>()
    for (let i = 0; i < N; i++) {
      const w = want.get(ORIGINS[i % 4]!) ?? { n: 0, delay: 0 }
      w.n++
      w.delay += i % 11
      want.set(ORIGINS[i % 4]!, w)
    }
    const reads = countReads()
    const name = `m${n++}`
    const q = await session.readStream.format('arrow').option('maxRowsPerTrigger', 50_000).load(d)
      .groupBy(col('origin')).agg(count('*').as('n'), sum('delay').as('delay'))
      .writeStream.format('memory').queryName(name).outputMode('complete').start()
    await q.processAllAvailable()
    await q.stop()
    const got = (await session.table(name).collect()).sort((a, b) => String(a.origin).localeCompare(String(b.origin)))
    expect(got).toEqual([...want].map(([origin, w]) => ({ origin, n: w.n, delay: w.delay })).sort((a, b) => a.origin.localeCompare(b.origin)))
    // origin (codes) and delay: 12 bytes a row, each read once, plus tails, metadata and the dictionary
    expect(reads.whole).toBe(0)
    expect(reads.ranges).toBeGreaterThanOrEqual(N * 12)
    expect(reads.ranges).toBeLessThan(N * 12 + 4 * 16_384)
    // in pieces of about a micro-batch's rows (50,000 × 8 bytes), never a whole 3.2 MB column
    expect(reads.max).toBeLessThanOrEqual(50_000 * 8)
  })

  it('an Arrow file whose footer lists a record batch past its end fails the query with CORRUPT_FILE naming it, or is skipped', async () => {
    const good = arrowFile(0, 1000, 400)
    const flen = new DataView(good.buffer, good.byteOffset, good.byteLength).getInt32(good.length - 10, true)
    const dataEnd = good.length - 10 - flen
    const cut = new Uint8Array(good.length - 128)
    cut.set(good.subarray(0, dataEnd - 128))
    cut.set(good.subarray(dataEnd), dataEnd - 128)
    const d = join(dir, `in-${n++}`)
    mkdirSync(d)
    writeFileSync(join(d, 'a.arrow'), cut)
    writeFileSync(join(d, 'b.arrow'), good)
    const df = session.readStream.format('arrow').load(d).select(col('id'))
    const q = await df.writeStream.format('memory').queryName(`m${n++}`).start()
    await expect(q.processAllAvailable()).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/a\.arrow.*extends past the end/) })
    const logs: string[] = []
    vi.spyOn(console, 'error').mockImplementation((m: string) => void logs.push(m))
    const name = `m${n++}`
    const skipping = await session.readStream.format('arrow').option('ignoreCorruptFiles', true).load(d).select(col('id'))
      .writeStream.format('memory').queryName(name).start()
    await skipping.processAllAvailable()
    expect(skipping.lastProgress!.sources[0]!.metrics).toMatchObject({ numFilesSkipped: '1' })
    await skipping.stop()
    expect((await session.table(name).collect()).length).toBe(1000)
  })

  it('a truncated Arrow file fails at load() with CORRUPT_FILE naming it, without reading it whole', () => {
    const good = arrowFile(0, 1000, 400)
    const d = join(dir, `in-${n++}`)
    mkdirSync(d)
    writeFileSync(join(d, 'a.arrow'), good.subarray(0, good.length - 3))
    const reads = countReads()
    expect(() => session.readStream.format('arrow').load(d)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE', message: expect.stringMatching(/a\.arrow.*truncated/) }))
    expect(reads.whole).toBe(0)
    expect(reads.ranges).toBeLessThanOrEqual(8 + 16_384)
  })

  it('a Parquet source infers its schema from the footer at load()', () => {
    const d = join(dir, `in-${n++}`)
    mkdirSync(d)
    const b = rowsToBatch(schema, rows(0, 50_000))
    writeFileSync(join(d, 'a.parquet'), fileFormat('parquet').encode([b], schema))
    const readSync = vi.spyOn(NodeFs.prototype, 'readSync')
    expect(session.readStream.format('parquet').load(d).schema).toEqual(schema)
    expect(readSync).not.toHaveBeenCalled()
  })
})
