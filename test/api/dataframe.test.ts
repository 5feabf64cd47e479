import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  MemoryStream, SluiceSession, avg, col, count, desc, lit, max, min, sum, window,
} from '../../src/index.node.ts'

let session: SluiceSession
let dir: string
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-api-'))
})
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})

const people = () => session.createDataFrame([
  { name: 'ann', age: 31, score: 2.5, at: '2024-01-01T10:00:00Z' },
  { name: 'bob', age: 25, score: null, at: '2024-01-01T10:20:00Z' },
  { name: 'cid', age: 31, score: 4, at: '2024-01-01T11:05:00Z' },
  { name: null, age: 40, score: 1, at: null },
], { name: 'string', age: 'int', score: 'double', at: 'timestamp' })

describe('batch DataFrame', () => {
  it('select, withColumn, drop, cast, arithmetic and comparisons', async () => {
    const rows = await people()
      .withColumn('next', col('age').plus(1))
      .withColumn('ratio', col('age').divide(2))
      .withColumn('adult', col('age').geq(30).and(col('name').isNotNull()))
      .withColumnRenamed('name', 'who')
      .drop('score', 'at')
      .select(col('who'), col('next'), col('ratio'), col('adult'), col('age').cast('string').as('age_s'), lit(7).multiply(col('age')).as('x'))
      .collect()
    expect(rows).toEqual([
      { who: 'ann', next: 32, ratio: 15.5, adult: true, age_s: '31', x: 217 },
      { who: 'bob', next: 26, ratio: 12.5, adult: false, age_s: '25', x: 175 },
      { who: 'cid', next: 32, ratio: 15.5, adult: true, age_s: '31', x: 217 },
      { who: null, next: 41, ratio: 20, adult: false, age_s: '40', x: 280 },
    ])
  })

  it('groupBy/agg with every aggregate, orderBy desc, limit, count', async () => {
    const df = people()
    const rows = await df.groupBy('age').agg(count('*').as('n'), count('score').as('scored'), sum('score').as('s'), avg('score').as('a'), min('at').as('first'), max('age').as('oldest'))
      .orderBy(desc('n'), 'age').collect()
    expect(rows[0]).toEqual({ age: 31, n: 2, scored: 2, s: 6.5, a: 3.25, first: Date.parse('2024-01-01T10:00:00Z'), oldest: 31 })
    expect(rows.map((r) => r.age)).toEqual([31, 25, 40])
    expect(await df.orderBy(desc('age')).limit(2).select('name').collect()).toEqual([{ name: null }, { name: 'ann' }])
    expect(await df.count()).toBe(4)
    expect(await df.filter(col('at').lt('2024-01-01 11:00:00')).count()).toBe(2)
  })

  it('window() in a batch groupBy, explain, show, toArrow, schema', async () => {
    const df = people().groupBy(window(col('at'), '1 hour')).agg(count('*').as('n')).orderBy('window.start')
    expect(await df.select(col('window.start').cast('string').as('start'), col('n')).collect()).toEqual([
      { start: '2024-01-01 10:00:00', n: 2 },
      { start: '2024-01-01 11:00:00', n: 1 },
    ])
    const printed: string[] = []
    expect(df.explain((s) => printed.push(s))).toMatch(/Aggregate \[window\], \[n\]/)
    await df.show(20, false, (s) => printed.push(s))
    expect(printed.at(-1)).toMatch(/\|\{2024-01-01 10:00:00, 2024-01-01 11:00:00\}\|\s+2\|/)
    const table = await df.toArrow()
    expect(table.numRows).toBe(2)
    expect(table.schema.fields.map((f) => f.name)).toEqual(['window', 'n'])
    expect(df.schema).toEqual([{ name: 'window', type: 'window', nullable: true }, { name: 'n', type: 'int64', nullable: true }])
  })

  it('reads what a file sink wrote through its manifests', async () => {
    const input = new MemoryStream(session, { k: 'string', v: 'long' })
    const out = join(dir, 'parquet-out')
    const q = await input.toDF().writeStream.format('parquet').option('path', out).option('checkpointLocation', join(dir, 'ck-parquet')).start()
    input.addData([{ k: 'a', v: 1 }, { k: 'b', v: 2 }])
    await q.processAllAvailable()
    input.addData([{ k: 'c', v: 3 }])
    await q.processAllAvailable()
    await q.stop()
    expect(await session.read.parquet(out).orderBy('k').collect()).toEqual([{ k: 'a', v: 1 }, { k: 'b', v: 2 }, { k: 'c', v: 3 }])
  })
})

describe('streaming query API', () => {
  it('console sink prints each batch as a table; status and isActive', async () => {
    const input = new MemoryStream(session, { word: 'string' })
    const lines: string[] = []
    const spy = vi.spyOn(console, 'log').mockImplementation((s: string) => { lines.push(s) })
    try {
      const q = await input.toDF().groupBy('word').agg(count('*').as('n')).writeStream.outputMode('complete').format('console').start()
      expect(q.isActive).toBe(true)
      input.addData([{ word: 'a' }, { word: 'b' }, { word: 'a' }])
      await q.processAllAvailable()
      expect(q.status).toEqual({ message: 'Waiting for data to arrive', isDataAvailable: false, isTriggerActive: false })
      await q.stop()
      expect(q.isActive).toBe(false)
    } finally {
      spy.mockRestore()
    }
    expect(lines.join('\n')).toMatch(/Batch: 0\n-+\n\+----\+---\+\n\|word\|  n\|/)
    expect(lines.join('\n')).toMatch(/\|   a\|  2\|/)
  })

  it('trigger once runs one batch and terminates; processingTime runs on its interval', async () => {
    const input = new MemoryStream(session, { v: 'int' })
    input.addData([{ v: 1 }])
    input.addData([{ v: 2 }])
    const once = await input.toDF().writeStream.format('memory').queryName('once').trigger({ once: true }).start()
    await expect(once.awaitTermination(5_000)).resolves.toBe(true)
    expect(once.recentProgress.map((p) => p.numInputRows)).toEqual([2])
    const timed = await input.toDF().writeStream.format('memory').queryName('timed').trigger({ processingTime: '50 milliseconds' }).start()
    input.addData([{ v: 3 }])
    await new Promise((r) => setTimeout(r, 300))
    await timed.stop()
    expect((await session.table('timed').collect()).map((r) => r.v)).toEqual([1, 2, 3])
  })

  it('foreachBatch receives a batch DataFrame and the batch id', async () => {
    const input = new MemoryStream(session, { v: 'int' })
    const seen: [number, number][] = []
    const q = await input.toDF().writeStream.foreachBatch(async (df, id) => { seen.push([id, await df.count()]) }).start()
    input.addData([{ v: 1 }, { v: 2 }])
    await q.processAllAvailable()
    input.addData([{ v: 3 }])
    await q.processAllAvailable()
    await q.stop()
    expect(seen).toEqual([[0, 2], [1, 1]])
  })

  it('a failing foreachBatch terminates the query with its error as the cause', async () => {
    const input = new MemoryStream(session, { v: 'int' })
    const q = await input.toDF().writeStream.foreachBatch(() => { throw new Error('boom') }).start()
    input.addData([{ v: 1 }])
    const err = await q.awaitTermination().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'QUERY_FAILED', cause: expect.objectContaining({ message: 'boom' }) })
    expect(q.exception).toBe(err)
  })
})
