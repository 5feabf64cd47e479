import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SluiceSession, SourceError, col } from '../../src/index.node.ts'
import { type Broker, admin, produce, startBroker, uniqueTopic } from './broker.ts'

// The broker goes away while a query runs (its own broker, on other ports, so the other Kafka tests
// are not disturbed): within kafka.default.api.timeout.ms the query waits, retries and continues
// without losing or duplicating a record (Kafka source → Kafka sink exactly-once); past it, the
// query fails with a retriable SourceError KAFKA_UNAVAILABLE, and a restart resumes where it stopped.

let broker: Broker
let session: SluiceSession
let dir: string
beforeAll(async () => {
  broker = await startBroker({ private: { port: 19192, name: 'broker-restart' } })
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-restart-'))
}, 240_000)
afterAll(async () => {
  await session?.stop()
  await broker?.release()
  if (dir) rmSync(dir, { recursive: true, force: true })
}, 120_000)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i)

async function createTopics(...topics: [string, number][]) {
  const adm = await admin(broker.bootstrap)
  for (const [t, n] of topics) await adm.createTopic(t, n)
  await adm.close()
}

async function readValues(topic: string): Promise<string[]> {
  const rows = await session.read.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('subscribe', topic)
    .option('kafka.isolation.level', 'read_committed').load().select(col('value').cast('string').as('v')).collect()
  return rows.map((r) => r['v'] as string)
}

describe('broker restarted while a query runs', () => {
  it('the query retries, continues, and loses nothing (source and exactly-once sink)', async () => {
    const input = uniqueTopic('in'), output = uniqueTopic('out')
    await createTopics([input, 2], [output, 2])
    await produce(broker.bootstrap, input, range(0, 2000).map((i) => ({ value: `r${i}`, partition: i % 2 })))
    const q = await session.readStream.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('subscribe', input)
      .option('startingOffsets', 'earliest').option('maxOffsetsPerTrigger', 200).load()
      .select(col('value'))
      .writeStream.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('topic', output)
      .option('deliveryGuarantee', 'exactly-once').option('checkpointLocation', join(dir, 'continue')).start()
    for (let i = 0; i < 100 && (q.lastProgress?.batchId ?? -1) < 2; i++) await sleep(50)
    await broker.stop()
    await sleep(3000)
    expect(q.isActive, `query died while the broker was down: ${q.exception?.stack}\ncause: ${(q.exception?.cause as Error | undefined)?.stack}`).toBe(true)
    await broker.start()
    await produce(broker.bootstrap, input, range(2000, 3000).map((i) => ({ value: `r${i}`, partition: i % 2 })))
    await q.processAllAvailable()
    expect(q.exception).toBeNull()
    await q.stop()
    const values = await readValues(output)
    expect(values.length).toBe(3000)
    expect(new Set(values)).toEqual(new Set(range(0, 3000).map((i) => `r${i}`)))
  }, 180_000)

  it('with a short kafka.default.api.timeout.ms the query fails with a clear retriable error, and a restart resumes', async () => {
    const input = uniqueTopic('in2')
    await createTopics([input, 1])
    await produce(broker.bootstrap, input, range(0, 500).map((i) => ({ value: `v${i}` })))
    const ckpt = join(dir, 'bounded')
    const start = () => session.readStream.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('subscribe', input)
      .option('startingOffsets', 'earliest').option('maxOffsetsPerTrigger', 100).option('kafka.default.api.timeout.ms', 3000).load()
      .select(col('value').cast('string').as('v'))
      .writeStream.format('parquet').option('path', join(dir, 'bounded-out')).option('checkpointLocation', ckpt).start()
    const q = await start()
    await q.processAllAvailable()
    await broker.stop()
    const t0 = Date.now()
    const err = await q.awaitTermination(60_000).then(() => null, (e: unknown) => e)
    const waited = Date.now() - t0
    expect(err).toBeInstanceOf(SourceError)
    expect(err).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true })
    expect((err as Error).message).toMatch(/kafka.default.api.timeout.ms = 3000/)
    expect((err as Error).message).toContain(broker.bootstrap)
    expect(waited).toBeLessThan(30_000)
    await broker.start()
    await produce(broker.bootstrap, input, range(500, 600).map((i) => ({ value: `v${i}` })))
    const q2 = await start()
    await q2.processAllAvailable()
    await q2.stop()
    const rows = await session.read.parquet(join(dir, 'bounded-out')).collect()
    expect(rows.map((r) => r['v']).sort()).toEqual(range(0, 600).map((i) => `v${i}`).sort())
  }, 180_000)
})
