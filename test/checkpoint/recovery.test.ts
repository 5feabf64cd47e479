import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type DataFrame, MemoryStream, type Row, SluiceSession, col, count, sum, timestamp_seconds, window,
} from '../../src/index.node.ts'

// Torn or empty checkpoint files (as a crash or a bad disk leaves them) and restarts after changes,
// per Spark's "Recovery Semantics after Changes".

let session: SluiceSession
let dir: string
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-ckpt-'))
})
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})

let runs = 0
/** A windowed count with watermark, written by an idempotent foreachBatch into `out` (batchId → rows). */
async function runQuery(input: MemoryStream, ckpt: string, out: Map<number, Row[]>, f: (df: DataFrame) => DataFrame = (d) => d) {
  const df = f(input.toDF().withColumn('eventTime', timestamp_seconds(col('value'))))
    .withWatermark('eventTime', '10 seconds')
    .groupBy(window(col('eventTime'), '5 seconds'))
    .agg(count('*').as('n'), sum('value').as('s'))
    .select(col('window.start').cast('long').as('start'), col('n'), col('s'))
  const q = await df.writeStream.queryName(`r${runs++}`).option('checkpointLocation', ckpt).outputMode('append')
    .foreachBatch(async (b, id) => {
      if (!out.has(id)) out.set(id, await b.collect())
    }).start()
  await q.processAllAvailable()
  await q.stop()
  return q
}

/** The newest batch id in `<ckpt>/<log>`. */
const latest = (ckpt: string, log: 'offsets' | 'commits') => Math.max(...readdirSync(join(ckpt, log)).filter((f) => /^\d+$/.test(f)).map(Number))

const emitted = (out: Map<number, Row[]>) => [...out.values()].flat().map((r) => JSON.stringify(r)).sort()

/** Three data batches; the third moves the watermark past the first windows. */
async function scenario(ckpt: string, out: Map<number, Row[]>) {
  const input = new MemoryStream(session, { value: 'int' })
  for (const values of [[1, 2, 6], [7, 12], [30]]) {
    input.addData(values.map((value) => ({ value })))
    await runQuery(input, ckpt, out)
  }
  return input
}

describe('torn checkpoint files', () => {
  let expected: string[]
  beforeAll(async () => {
    const out = new Map<number, Row[]>()
    const input = await scenario(join(dir, 'clean'), out)
    input.addData([{ value: 50 }])
    await runQuery(input, join(dir, 'clean'), out)
    expected = emitted(out)
    expect(expected.length).toBeGreaterThan(0)
  })

  async function tornAt(name: string, corrupt: (ckpt: string) => void) {
    const ckpt = join(dir, name)
    const out = new Map<number, Row[]>()
    const input = await scenario(ckpt, out)
    corrupt(ckpt)
    input.addData([{ value: 50 }])
    return { run: () => runQuery(input, ckpt, out), out, ckpt }
  }

  it('an empty newest offsets entry without a commit is discarded and the batch planned again', async () => {
    const logs = vi.spyOn(console, 'error').mockImplementation(() => {})
    let next = 0
    const t = await tornAt('torn-offsets', (ckpt) => {
      next = latest(ckpt, 'commits') + 1
      writeFileSync(join(ckpt, 'offsets', String(next)), '')
    })
    await t.run()
    expect(emitted(t.out)).toEqual(expected)
    expect(logs.mock.calls.flat().join('\n')).toMatch(new RegExp(`offsets/${next} is empty or torn.*discarding`))
    logs.mockRestore()
  })

  it('a torn newest commit entry is discarded and its batch re-run without duplicating output', async () => {
    const logs = vi.spyOn(console, 'error').mockImplementation(() => {})
    let last = 0
    const t = await tornAt('torn-commit', (ckpt) => {
      last = latest(ckpt, 'commits')
      truncateSync(join(ckpt, 'commits', String(last)), 4)
    })
    await t.run()
    expect(emitted(t.out)).toEqual(expected)
    expect(logs.mock.calls.flat().join('\n')).toMatch(new RegExp(`commits/${last} .*re-running batch ${last}`))
    logs.mockRestore()
  })

  it('a torn metadata file refuses to start, naming the file', async () => {
    const t = await tornAt('torn-metadata', (ckpt) => writeFileSync(join(ckpt, 'metadata'), '{"id":"abc'))
    await expect(t.run()).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT_FILE', message: expect.stringContaining(join(t.ckpt, 'metadata')) })
  })

  it('a torn state delta that the restart needs refuses to start, naming the file', async () => {
    let version = 0
    const t = await tornAt('torn-state', (ckpt) => {
      version = latest(ckpt, 'commits') + 1
      truncateSync(join(ckpt, 'state', '0', '0', `${version}.delta`), 10)
    })
    await expect(t.run()).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT_FILE', message: expect.stringContaining(`state/0/0/${version}.delta`) })
  })

  it('a torn older offsets entry needed to re-run a batch refuses to start, naming it', async () => {
    let previous = 0
    const t = await tornAt('torn-old-offsets', (ckpt) => {
      const last = latest(ckpt, 'commits')
      previous = last - 1
      rmSync(join(ckpt, 'commits', String(last)))
      writeFileSync(join(ckpt, 'offsets', String(previous)), 'v1\n{"batchWat')
    })
    await expect(t.run()).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT_FILE', message: expect.stringContaining(`offsets/${previous}`) })
  })
})

describe('restarts after changes', () => {
  it('allows a new filter and a projection that keep the state schema', async () => {
    const ckpt = join(dir, 'allowed')
    const out = new Map<number, Row[]>()
    const input = await scenario(ckpt, out)
    input.addData([{ value: 50 }, { value: 51 }])
    await expect(runQuery(input, ckpt, out, (df) => df.filter(col('value').gt(50)).select(col('value'), col('eventTime')))).resolves.toBeDefined()
    expect(emitted(out).length).toBeGreaterThan(0)
  })

  it('refuses changed grouping keys, naming the old and new state schema', async () => {
    const ckpt = join(dir, 'keys')
    const input = new MemoryStream(session, { value: 'int', key: 'string' })
    input.addData([{ value: 1, key: 'a' }])
    const start = (keys: string[]) => input.toDF().groupBy(...keys).agg(count('*').as('n')).writeStream.format('memory')
      .queryName(`r${runs++}`).outputMode('complete').option('checkpointLocation', ckpt).start()
    const q = await start(['key'])
    await q.processAllAvailable()
    await q.stop()
    await expect(start(['key', 'value'])).rejects.toMatchObject({ code: 'STATE_SCHEMA_MISMATCH', message: expect.stringMatching(/key: string, value: int32.*key: string/) })
  })

  it('refuses a different kind of source', async () => {
    const ckpt = join(dir, 'sources')
    const input = new MemoryStream(session, { value: 'long' })
    input.addData([{ value: 1 }])
    const q = await input.toDF().writeStream.format('memory').queryName(`r${runs++}`).option('checkpointLocation', ckpt).start()
    await q.processAllAvailable()
    await q.stop()
    writeFileSync(join(dir, 'values.json'), '{"value": 1}\n')
    const fileDf = session.readStream.format('json').load(join(dir, 'values.json'))
    await expect(fileDf.writeStream.format('memory').queryName(`r${runs++}`).option('checkpointLocation', ckpt).start())
      .rejects.toMatchObject({ code: 'SOURCES_CHANGED', message: expect.stringContaining('[json]') })
  })

  it('refuses a file sink writing to another directory', async () => {
    const ckpt = join(dir, 'sink')
    const input = new MemoryStream(session, { value: 'long' })
    input.addData([{ value: 1 }])
    const start = (path: string) => input.toDF().writeStream.format('json').option('path', path).option('checkpointLocation', ckpt).start()
    const q = await start(join(dir, 'sink-out-1'))
    await q.processAllAvailable()
    await q.stop()
    await expect(start(join(dir, 'sink-out-2'))).rejects.toMatchObject({ code: 'SINK_CHANGED', message: expect.stringContaining('sink-out-1') })
  })

  it('conf recorded in the offsets log wins over the session, with a log line', async () => {
    const ckpt = join(dir, 'conf')
    const out = new Map<number, Row[]>()
    session.conf.set('sluice.streaming.multipleWatermarkPolicy', 'min')
    const input = await scenario(ckpt, out)
    session.conf.set('sluice.streaming.multipleWatermarkPolicy', 'max')
    const logs = vi.spyOn(console, 'error').mockImplementation(() => {})
    input.addData([{ value: 60 }])
    await runQuery(input, ckpt, out)
    expect(logs.mock.calls.flat().join('\n')).toMatch(/multipleWatermarkPolicy = max differs .* \(min\); using the checkpoint's/)
    expect(readFileSync(join(ckpt, 'offsets', '4'), 'utf8')).toContain('"sluice.streaming.multipleWatermarkPolicy":"min"')
    logs.mockRestore()
    session.conf.set('sluice.streaming.multipleWatermarkPolicy', 'min')
  })
})
