import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type Batch, type Schema, makeBatch } from '../../src/batch.ts'
import { pruneColumns } from '../../src/exec/physical.ts'
import {
  AnalysisError, type DataFrame, MemoryStream, SluiceSession, type StreamingQueryProgress, registerSourceConnector,
  avg, col, count, lit, max, min, sum, timestamp_seconds, window,
} from '../../src/index.node.ts'

let session: SluiceSession
let dir: string
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-exec-'))
})
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})

let n = 0
const nextName = () => `t${n++}`

function events() {
  const input = new MemoryStream(session, { key: 'string', value: 'int', ts: 'long' })
  const df = input.toDF().withColumn('eventTime', timestamp_seconds(col('ts')))
  return { input, df }
}

describe('output modes', () => {
  it('Update emits the groups a batch changed and silently evicts groups below the watermark', async () => {
    const { input, df } = events()
    const name = nextName()
    const q = await df.withWatermark('eventTime', '10 seconds')
      .groupBy(window(col('eventTime'), '10 seconds'), col('key'))
      .agg(count('*').as('n'), sum('value').as('total'))
      .select(col('window.start').cast('long').as('start'), col('key'), col('n'), col('total'))
      .writeStream.format('memory').queryName(name).outputMode('update').start()
    input.addData([{ key: 'a', value: 1, ts: 1 }, { key: 'b', value: 2, ts: 2 }, { key: 'a', value: 3, ts: 12 }])
    await q.processAllAvailable()
    expect(await session.table(name).collect()).toHaveLength(3)
    // watermark is now 12 - 10 = 2: window [0,10) not yet expired (end 10 > 2)
    input.addData([{ key: 'a', value: 10, ts: 5 }, { key: 'c', value: 1, ts: 31 }])
    await q.processAllAvailable()
    const rows = await session.table(name).collect()
    expect(rows.slice(3)).toEqual(expect.arrayContaining([
      { start: 0, key: 'a', n: 2, total: 11 },
      { start: 30, key: 'c', n: 1, total: 1 },
    ]))
    expect(rows).toHaveLength(5)
    // watermark 21: [0,10) and [10,20) evicted from state without output
    const p = q.lastProgress!
    expect(p.stateOperators[0]!.numRowsTotal).toBe(1)
    // late row for an evicted window: dropped
    input.addData([{ key: 'a', value: 100, ts: 3 }])
    await q.processAllAvailable()
    expect(await session.table(name).collect()).toHaveLength(5)
    expect(q.recentProgress.filter((x) => x.numInputRows > 0).at(-1)!.stateOperators[0]!.numRowsDroppedByWatermark).toBe(1)
    await q.stop()
  })

  it('Complete emits the whole result every batch, keeps late rows and evicts nothing', async () => {
    const { input, df } = events()
    const name = nextName()
    const q = await df.withWatermark('eventTime', '1 second')
      .groupBy(col('key'))
      .agg(count('*').as('n'), avg('value').as('mean'), min('value').as('lo'), max('value').as('hi'))
      .writeStream.format('memory').queryName(name).outputMode('complete').start()
    input.addData([{ key: 'a', value: 1, ts: 100 }, { key: 'b', value: 5, ts: 100 }])
    await q.processAllAvailable()
    input.addData([{ key: 'a', value: 3, ts: 1 }])
    await q.processAllAvailable()
    const rows = await session.table(name).collect()
    expect(rows.sort((x, y) => String(x.key).localeCompare(String(y.key)))).toEqual([
      { key: 'a', n: 2, mean: 2, lo: 1, hi: 3 },
      { key: 'b', n: 1, mean: 5, lo: 5, hi: 5 },
    ])
    await q.stop()
  })

  it('global aggregation in Update mode', async () => {
    const { input, df } = events()
    const name = nextName()
    const q = await df.agg(count('*').as('n'), sum('value').as('s')).writeStream.format('memory').queryName(name).outputMode('update').start()
    input.addData([{ key: 'a', value: 1, ts: 1 }, { key: 'b', value: 2, ts: 2 }])
    await q.processAllAvailable()
    input.addData([{ key: 'a', value: 4, ts: 1 }])
    await q.processAllAvailable()
    expect(await session.table(name).collect()).toEqual([{ n: 2, s: 3 }, { n: 3, s: 7 }])
    await q.stop()
  })

  it('stateless queries pass rows through filter/select in Append mode', async () => {
    const { input, df } = events()
    const name = nextName()
    const q = await df.filter(col('value').gt(1).and(col('key').notEqual('z'))).select(col('key'), col('value').multiply(lit(10)).as('v10'))
      .writeStream.format('memory').queryName(name).start()
    input.addData([{ key: 'a', value: 1, ts: 1 }, { key: 'b', value: 2, ts: 2 }, { key: 'z', value: 9, ts: 2 }, { key: null, value: 3, ts: 3 }])
    await q.processAllAvailable()
    expect(await session.table(name).collect()).toEqual([{ key: 'b', v10: 20 }])
    await q.stop()
  })

  it('null keys form their own group and null values are skipped by aggregates', async () => {
    const { input, df } = events()
    const name = nextName()
    const q = await df.groupBy('key').agg(count('*').as('rows'), count('value').as('values'), sum('value').as('s'))
      .writeStream.format('memory').queryName(name).outputMode('complete').start()
    input.addData([{ key: null, value: 1, ts: 1 }, { key: null, value: null, ts: 1 }, { key: 'a', value: null, ts: 1 }])
    await q.processAllAvailable()
    const rows = await session.table(name).collect()
    expect(rows).toEqual(expect.arrayContaining([{ key: null, rows: 2, values: 1, s: 1 }, { key: 'a', rows: 1, values: 0, s: null }]))
    expect(rows).toHaveLength(2)
    await q.stop()
  })
})

describe('analysis errors at start()', () => {
  it('Append on an aggregation without a watermark', async () => {
    const { df } = events()
    const err = await df.groupBy('key').agg(count('*')).writeStream.format('memory').queryName(nextName()).outputMode('append').start().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AnalysisError)
    expect((err as AnalysisError).code).toBe('APPEND_WITHOUT_WATERMARK')
  })

  it('Complete without an aggregation', async () => {
    const { df } = events()
    const err = await df.writeStream.format('memory').queryName(nextName()).outputMode('complete').start().catch((e: unknown) => e)
    expect((err as AnalysisError).code).toBe('COMPLETE_WITHOUT_AGGREGATION')
  })

  it('unknown columns, bad windows and collect() on a stream', async () => {
    const { df } = events()
    expect(() => df.select('nope')).toThrow(expect.objectContaining({ code: 'UNRESOLVED_COLUMN' }))
    expect(() => window(col('eventTime'), '5 seconds', '10 seconds')).toThrow(expect.objectContaining({ code: 'INVALID_WINDOW' }))
    expect(() => window(col('eventTime'), '5 secnds')).toThrow(expect.objectContaining({ code: 'INVALID_INTERVAL' }))
    await expect(df.collect()).rejects.toMatchObject({ code: 'STREAMING_COLLECT' })
  })
})

describe('checkpoint and restart', () => {
  it('a query restarted on its checkpoint resumes offsets, watermark and state', async () => {
    const ckpt = join(dir, 'restart')
    const input = new MemoryStream(session, { value: 'int' })
    const name = nextName()
    const build = () => input.toDF().withColumn('eventTime', timestamp_seconds(col('value')))
      .withWatermark('eventTime', '10 seconds')
      .groupBy(window(col('eventTime'), '5 seconds')).agg(count('*').as('count'))
      .select(col('window.start').cast('long').as('start'), col('count'))
    let q = await build().writeStream.format('memory').queryName(name).outputMode('append').option('checkpointLocation', ckpt).start()
    input.addData([{ value: 10 }, { value: 11 }, { value: 16 }])
    await q.processAllAvailable()
    const firstId = q.id
    await q.stop()
    // restart: same id, state of [10,15) and [15,20) recovered, watermark 6 recovered
    input.addData([{ value: 12 }, { value: 30 }])
    q = await build().writeStream.format('memory').queryName(name).outputMode('append').option('checkpointLocation', ckpt).start()
    await q.processAllAvailable()
    expect(q.id).toBe(firstId)
    expect(await session.table(name).collect()).toEqual([{ start: 10, count: 3 }, { start: 15, count: 1 }])
    expect(q.lastProgress!.eventTime.watermark).toBe('1970-01-01T00:00:20.000Z')
    await q.stop()
    expect(readdirSync(join(ckpt, 'offsets')).length).toBeGreaterThan(0)
    expect(readFileSync(join(ckpt, 'commits', '0'), 'utf8')).toMatch(/^v1\n\{"nextBatchWatermarkMs":6000\}/)
  })

  it('a restart with different aggregates is refused with the schema difference', async () => {
    const ckpt = join(dir, 'schema-change')
    const input = new MemoryStream(session, { key: 'string', value: 'int' })
    const q = await input.toDF().groupBy('key').agg(count('*').as('n')).writeStream.format('memory').queryName(nextName())
      .outputMode('complete').option('checkpointLocation', ckpt).start()
    input.addData([{ key: 'a', value: 1 }])
    await q.processAllAvailable()
    await q.stop()
    const err = await input.toDF().groupBy('key').agg(sum('value').as('s')).writeStream.format('memory').queryName(nextName())
      .outputMode('complete').option('checkpointLocation', ckpt).start().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'STATE_SCHEMA_MISMATCH' })
    expect(String((err as Error).message)).toMatch(/acc0_value/)
  })
})

describe('progress', () => {
  it('reports Spark-shaped progress to listeners', async () => {
    const seen: StreamingQueryProgress[] = []
    const events: string[] = []
    const listener = {
      onQueryStarted: () => events.push('started'),
      onQueryProgress: (e: { progress: StreamingQueryProgress }) => seen.push(e.progress),
      onQueryTerminated: () => events.push('terminated'),
    }
    session.streams.addListener(listener)
    const input = new MemoryStream(session, { value: 'int' })
    const name = nextName()
    const q = await input.toDF().writeStream.format('memory').queryName(name).start()
    expect(session.streams.active).toContain(q)
    input.addData([{ value: 1 }, { value: 2 }])
    await q.processAllAvailable()
    await q.stop()
    session.streams.removeListener(listener)
    expect(events).toEqual(['started', 'terminated'])
    const p = seen[0]!
    expect(p).toMatchObject({ id: q.id, runId: q.runId, name, batchId: 0, numInputRows: 2, sink: { numOutputRows: 2 } })
    expect(Object.keys(p.durationMs).sort()).toEqual(['addBatch', 'commitOffsets', 'getBatch', 'latestOffset', 'queryPlanning', 'triggerExecution', 'walCommit'])
    expect(p.sources[0]).toMatchObject({ startOffset: null, endOffset: 0, numInputRows: 2 })
    expect(q.isActive).toBe(false)
  })
})

describe('read-ahead', () => {
  // json files of hourly events, one batch per file (maxFilesPerTrigger 1)
  function writeFiles(sub: string): string {
    const d = join(dir, sub)
    mkdirSync(d, { recursive: true })
    for (let f = 0; f < 6; f++) {
      const lines: string[] = []
      for (let i = 0; i < 50; i++) lines.push(JSON.stringify({ ts: f * 7200 + i * 97 - (i % 7 === 0 ? 5000 : 0), key: `k${i % 4}`, v: i }))
      writeFileSync(join(d, `part-${f}.json`), lines.join('\n') + '\n')
    }
    return d
  }

  async function run(readAhead: boolean, path: string) {
    const s = session
    s.conf.set('sluice.streaming.readAhead.enabled', String(readAhead))
    const name = nextName()
    const q = await s.readStream.format('json').schema({ ts: 'long', key: 'string', v: 'int' }).option('maxFilesPerTrigger', 1).load(path)
      .withColumn('eventTime', timestamp_seconds(col('ts')))
      .withWatermark('eventTime', '1 hour')
      .groupBy(window(col('eventTime'), '1 hour'), col('key'))
      .agg(count('*').as('n'), max('v').as('top'))
      .select(col('window.start').cast('long').as('start'), col('key'), col('n'), col('top'))
      .writeStream.format('memory').queryName(name).outputMode('append').trigger({ availableNow: true }).start()
    await q.awaitTermination()
    const rows = (await s.table(name).collect()).map((r) => JSON.stringify(r)).sort()
    const progress = q.recentProgress.map((p) => [p.batchId, p.numInputRows, p.eventTime.watermark, p.stateOperators[0]?.numRowsTotal, p.stateOperators[0]?.numRowsDroppedByWatermark])
    s.conf.unset('sluice.streaming.readAhead.enabled')
    return { rows, progress }
  }

  // (2 threads: test/exec/aggregate-operator.test.ts checks prepare() on the worker pool)
  it('gives the same rows and the same batches as without it', async () => {
    const path = writeFiles('read-ahead')
    const base = await run(false, path)
    expect(base.progress.length).toBeGreaterThanOrEqual(6)
    expect(base.rows.length).toBeGreaterThan(20)
    expect(base.progress.some((p) => (p[4] as number) > 0)).toBe(true) // some rows were late
    expect(await run(true, path)).toEqual(base)
  })

  it('plans a batch again when reading it ahead failed, logging why', async () => {
    const schema: Schema = [{ name: 'eventTime', type: 'timestamp', nullable: false }]
    let failures = 0
    registerSourceConnector('test-flaky', {
      createSource: () => ({
        // offsets 0..3, one batch of 10 rows in hour k per offset k
        schema, description: 'FlakyTestSource', kind: 'test-flaky', readLimit: { maxRows: 10 },
        createSource: async () => ({
          description: 'FlakyTestSource',
          latestOffset: async (start, limit) => (limit.maxRows === undefined ? 3 : Math.min(((start as number | null) ?? -1) + 1, 3)),
          getBatch: async (start, end) => {
            if (end === 2 && failures++ === 0) throw new Error('transient read failure')
            const out: Batch[] = []
            for (let k = ((start as number | null) ?? -1) + 1; k <= (end as number); k++) {
              const us = BigInt64Array.from({ length: 10 }, (_, i) => BigInt((k * 3600 + i) * 1_000_000))
              out.push(makeBatch(schema, [{ type: 'timestamp', length: 10, values: us, validity: null }], 10))
            }
            return out
          },
          stop: async () => {},
        }),
      }),
    })
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const s = session
      const name = nextName()
      const q = await s.readStream.format('test-flaky').load()
        .withWatermark('eventTime', '1 hour').groupBy(window(col('eventTime'), '1 hour')).agg(count('*').as('n'))
        .writeStream.format('memory').queryName(name).outputMode('append').trigger({ availableNow: true }).option('flushAtEnd', true).start()
      await q.awaitTermination()
      expect(q.exception).toBeNull()
      expect((await s.table(name).collect()).map((r) => r.n)).toEqual([10, 10, 10, 10])
      expect(failures).toBe(2)
      expect(logged.mock.calls.flat().join('\n')).toMatch(/Reading batch 2 ahead failed \(transient read failure\); planning it again/)
    } finally {
      logged.mockRestore()
    }
  })
})

describe('column pruning', () => {
  it('pruneColumns keeps what the sink gets and what expressions, watermarks and groupings reference', () => {
    const input = new MemoryStream(session, { key: 'string', value: 'int', ts: 'long', unused: 'double', s: 'string' })
    const df = input.toDF()
    const names = (d: DataFrame) => pruneColumns(d.plan).sourceSchema.map((f) => f.name)
    expect(names(df)).toEqual(['key', 'value', 'ts', 'unused', 's'])
    expect(names(df.select(col('value')))).toEqual(['value'])
    expect(names(df.filter(col('s').isNotNull()).select(col('key')))).toEqual(['key', 's'])
    expect(names(df.withColumn('eventTime', timestamp_seconds(col('ts'))).withWatermark('eventTime', '1 minute')
      .groupBy(window(col('eventTime'), '1 minute'), col('key')).agg(sum('value').as('v')))).toEqual(['key', 'value', 'ts'])
    expect(names(df.groupBy().agg(count('*').as('n')))).toEqual(['key']) // one column at least: row counts
    expect(names(df.withColumn('x', col('value')).filter(col('x').gt(1)))).toEqual(['key', 'value', 'ts', 'unused', 's'])
  })
})
