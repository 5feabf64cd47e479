import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Row, SluiceSession, type StreamingQuery, col, count, window } from '../../src/index.node.ts'
import { fileFormat } from '../../src/formats/format.ts'
import { rowsToBatch } from '../../src/util/rows.ts'

// Bad input gets a clear error and loses nothing: Spark's `mode` for JSON/CSV, corrupt or mismatched
// Parquet/Arrow files (optionally skipped and reported), odd event times, invalid options.

let session: SluiceSession
let dir: string
let n = 0
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-bad-'))
})
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})

function inputDir(files: Record<string, string | Uint8Array>): string {
  const d = join(dir, `in-${n++}`)
  mkdirSync(d)
  for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), content)
  return d
}

async function drain(q: StreamingQuery): Promise<Row[]> {
  await q.processAllAvailable()
  const rows = await session.table(q.name!).collect()
  await q.stop()
  return rows
}

const jsonLines = ['{"id": 1, "v": 10}', '{"id": 2, "v": "ten"}', '{"id": 3, "v": 30', 'not json at all', '{"id": 5, "v": 50}'].join('\n') + '\n'
const schema = { id: 'long', v: 'long', _corrupt_record: 'string' }

describe('JSON lines and CSV modes', () => {
  it('PERMISSIVE keeps malformed rows (type mismatch included) with nulls and the raw text in _corrupt_record', async () => {
    const d = inputDir({ 'a.json': jsonLines })
    const q = await session.readStream.format('json').schema(schema).load(d).writeStream.format('memory').queryName(`m${n++}`).start()
    const rows = await drain(q)
    expect(rows).toEqual([
      { id: 1, v: 10, _corrupt_record: null },
      { id: null, v: null, _corrupt_record: '{"id": 2, "v": "ten"}' },
      { id: null, v: null, _corrupt_record: '{"id": 3, "v": 30' },
      { id: null, v: null, _corrupt_record: 'not json at all' },
      { id: 5, v: 50, _corrupt_record: null },
    ])
  })

  it('DROPMALFORMED drops them and counts them in the progress', async () => {
    const d = inputDir({ 'a.json': jsonLines })
    const q = await session.readStream.format('json').schema({ id: 'long', v: 'long' }).option('mode', 'DROPMALFORMED').load(d)
      .writeStream.format('memory').queryName(`m${n++}`).start()
    await q.processAllAvailable()
    expect(q.lastProgress!.sources[0]!.metrics).toMatchObject({ numRowsDroppedMalformed: '3' })
    expect(await drain(q)).toEqual([{ id: 1, v: 10 }, { id: 5, v: 50 }])
  })

  it('FAILFAST stops the query with an error naming file, line and column', async () => {
    const d = inputDir({ 'a.json': jsonLines })
    const q = await session.readStream.format('json').schema({ id: 'long', v: 'long' }).option('mode', 'FAILFAST').load(d)
      .writeStream.format('memory').queryName(`m${n++}`).start()
    const err = await q.processAllAvailable().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'MALFORMED_RECORD' })
    expect((err as Error).message).toContain(join(d, 'a.json'))
    expect((err as Error).message).toMatch(/line 2/)
    expect((err as Error).message).toMatch(/'v'/)
    expect(q.isActive).toBe(false)
    expect(q.exception).toBe(err)
  })

  it('CSV follows the same modes', async () => {
    const csv = 'id,v\n1,10\n2,ten\n3\n4,40\n'
    const d = inputDir({ 'a.csv': csv })
    const read = (mode: string) => session.readStream.format('csv').option('header', true).option('mode', mode).schema({ id: 'long', v: 'long' }).load(d)
    const dropped = await read('DROPMALFORMED').writeStream.format('memory').queryName(`m${n++}`).start()
    await dropped.processAllAvailable()
    expect(dropped.lastProgress!.sources[0]!.metrics).toMatchObject({ numRowsDroppedMalformed: '2' })
    expect(await drain(dropped)).toEqual([{ id: 1, v: 10 }, { id: 4, v: 40 }])
    const failing = await read('FAILFAST').writeStream.format('memory').queryName(`m${n++}`).start()
    await expect(failing.processAllAvailable()).rejects.toMatchObject({ code: 'MALFORMED_RECORD', message: expect.stringContaining('a.csv') })
  })
})

describe('corrupt and mismatched binary files', () => {
  const good = () => fileFormat('parquet').encode([rowsToBatch([{ name: 'id', type: 'int64', nullable: true }], [{ id: 1 }, { id: 2 }])], [{ name: 'id', type: 'int64', nullable: true }])

  it('a truncated Parquet file fails the query with an error naming the file', async () => {
    const bytes = good()
    const d = inputDir({ 'a.parquet': good(), 'b.parquet': bytes.subarray(0, bytes.length - 7) })
    const q = await session.readStream.format('parquet').schema({ id: 'long' }).load(d).writeStream.format('memory').queryName(`m${n++}`).start()
    await expect(q.processAllAvailable()).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining(join(d, 'b.parquet')) })
  })

  it('an .arrow file that is not Arrow fails with CORRUPT_FILE naming it', async () => {
    const d = inputDir({ 'x.arrow': '{"id": 1}\n' })
    expect(() => session.readStream.format('arrow').load(d)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE', message: expect.stringContaining('x.arrow') }))
  })

  it('with ignoreCorruptFiles, corrupt files and files of another schema are skipped and reported; the rest is read', async () => {
    const bytes = good()
    const otherSchema = fileFormat('parquet').encode([rowsToBatch([{ name: 'id', type: 'string', nullable: true }], [{ id: 'x' }])], [{ name: 'id', type: 'string', nullable: true }])
    const d = inputDir({ 'a.parquet': good(), 'b.parquet': bytes.subarray(0, 20), 'c.parquet': otherSchema, 'd.parquet': good() })
    const logs: string[] = []
    const orig = console.error
    console.error = (m: string) => logs.push(m)
    try {
      const q = await session.readStream.format('parquet').schema({ id: 'long' }).option('ignoreCorruptFiles', true).load(d)
        .writeStream.format('memory').queryName(`m${n++}`).start()
      await q.processAllAvailable()
      const metrics = q.lastProgress!.sources[0]!.metrics
      expect(await drain(q)).toEqual([{ id: 1 }, { id: 2 }, { id: 1 }, { id: 2 }])
      expect(metrics).toMatchObject({ numFilesSkipped: '2' })
      expect(metrics.skippedFiles).toContain('b.parquet')
      expect(metrics.skippedFiles).toContain('c.parquet')
    } finally {
      console.error = orig
    }
    expect(logs.join('\n')).toMatch(/Skipping .*b\.parquet .*CORRUPT_FILE|Skipping .*b\.parquet/)
    expect(logs.join('\n')).toMatch(/c\.parquet.*(string|SCHEMA_MISMATCH|int64)/)
  })
})

describe('event times', () => {
  const hourly = (d: string) =>
    session.readStream.format('json').schema({ ts: 'timestamp', v: 'long' }).load(d)
      .withWatermark('ts', '1 hour').groupBy(window(col('ts'), '1 hour')).agg(count('*').as('n'))
      .select(col('window.start').cast('string').as('start'), col('n'))

  it('null event times are dropped by window(); 1970 and 9999 rows do not break the watermark with maxEventTimeAhead', async () => {
    const d = join(dir, `in-${n++}`)
    mkdirSync(d)
    const rows = (hours: number[]) => hours.map((h) => JSON.stringify({ ts: new Date(Date.UTC(2001, 0, 1, h, 30)).toISOString(), v: 1 })).join('\n') + '\n'
    writeFileSync(join(d, '1.json'), rows([0, 0, 1]) + '{"ts": null, "v": 1}\n{"ts": "1970-01-01T00:00:01Z", "v": 1}\n{"ts": "9999-12-31T23:00:00Z", "v": 1}\n')
    session.conf.set('sluice.streaming.maxEventTimeAhead', '1 day')
    try {
      const name = `m${n++}`
      const q = await hourly(d).writeStream.format('memory').queryName(name).outputMode('update').start()
      await q.processAllAvailable()
      writeFileSync(join(d, '2.json'), rows([2, 3, 4]))
      await q.processAllAvailable()
      const p = q.recentProgress.filter((x) => x.numInputRows > 0)
      expect(p[0]!.eventTime.max).toBe('2001-01-01T01:30:00.000Z')
      expect(p[1]!.eventTime.watermark).toBe('2001-01-01T00:30:00.000Z')
      expect(p[1]!.stateOperators[0]!.numRowsDroppedByWatermark).toBe(0)
      const out = await drain(q)
      expect(out).toEqual(expect.arrayContaining([{ start: '2001-01-01 04:00:00', n: 1 }, { start: '9999-12-31 23:00:00', n: 1 }, { start: '1970-01-01 00:00:00', n: 1 }]))
      expect(out.reduce((s, r) => s + (r.n as number), 0)).toBe(8)
    } finally {
      session.conf.unset('sluice.streaming.maxEventTimeAhead')
    }
  })
})

describe('options are validated with clear errors', () => {
  it('unknown names, negative limits and malformed durations', () => {
    const d = inputDir({ 'a.json': '{"a": 1}\n' })
    expect(() => session.readStream.format('json').option('maxRowsPerTriger', 10).load(d))
      .toThrow(expect.objectContaining({ code: 'UNKNOWN_OPTION', message: expect.stringContaining('maxRowsPerTrigger') }))
    expect(() => session.readStream.format('json').option('maxRowsPerTrigger', -1).load(d)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }))
    expect(() => session.readStream.format('json').option('mode', 'LENIENT').load(d))
      .toThrow(expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining('PERMISSIVE') }))
    expect(() => session.readStream.format('json').load(d).withWatermark('a', '10 secnds'))
      .toThrow(expect.objectContaining({ code: 'INVALID_INTERVAL', message: expect.stringContaining('seconds') }))
    expect(() => session.readStream.format('xml')).toThrow(expect.objectContaining({ code: 'UNKNOWN_FORMAT' }))
    expect(readFileSync(join(d, 'a.json'), 'utf8')).toBe('{"a": 1}\n')
  })

  it('writer options are checked at start()', async () => {
    const d = inputDir({ 'a.json': '{"a": 1}\n' })
    const df = session.readStream.format('json').load(d)
    await expect(df.writeStream.format('memory').queryName(`m${n++}`).option('numRow', 5).start())
      .rejects.toMatchObject({ code: 'UNKNOWN_OPTION', message: expect.stringContaining('numRows') })
    await expect(df.writeStream.format('parquet').option('path', join(dir, 'x')).start()).rejects.toMatchObject({ code: 'CHECKPOINT_REQUIRED' })
  })
})
