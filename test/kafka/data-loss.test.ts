import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DataFrame, SluiceSession, SourceError, col } from '../../src/index.node.ts'
import { type Broker, admin, closeKafkaTestEnv, openKafkaTestEnv, produce, uniqueTopic } from './broker.ts'

// Data loss as Spark's Kafka source handles it (failOnDataLoss): records deleted before the query
// read them (offsets out of range) and a deleted topic. true (default): the query fails with
// SourceError KAFKA_DATA_LOSS naming the topic, partition and offsets; false: it logs and goes on.

let broker: Broker
let session: SluiceSession
let adm: Awaited<ReturnType<typeof admin>>
let dir: string
beforeAll(async () => {
  ;({ broker, adm, session, dir } = await openKafkaTestEnv('sluice-kafka-loss-'))
}, 240_000)
afterAll(() => closeKafkaTestEnv({ broker, adm, session, dir }), 120_000)

let n = 0
const source = (topic: string, failOnDataLoss: boolean) => session.readStream.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap)
  .option('subscribe', topic).option('startingOffsets', 'earliest').option('failOnDataLoss', failOnDataLoss).load()
  .select('partition', 'offset', col('value').cast('string').as('v'))
const start = (df: DataFrame, ckpt: string) => df.writeStream.format('memory').queryName(`loss_${n++}`).option('checkpointLocation', ckpt).start()
const offsetsOf = async (q: { name: string | null }) => (await session.table(q.name!).collect()).map((r) => r['offset'] as number).sort((a, b) => a - b)
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i)

describe('failOnDataLoss', () => {
  for (const fail of [true, false]) {
    it(`offsets deleted before they were read (deleteRecords): ${fail ? 'the query fails naming them' : 'the query skips to the earliest offset'}`, async () => {
      const topic = uniqueTopic('aged')
      await adm.createTopic(topic, 1)
      await produce(broker.bootstrap, topic, range(0, 100).map((i) => ({ value: `m${i}` })))
      const ckpt = join(dir, `aged-${fail}`)
      const q1 = await start(source(topic, fail), ckpt)
      await q1.processAllAvailable()
      expect(await offsetsOf(q1)).toEqual(range(0, 100))
      await q1.stop()
      // while the query is down, 100 more arrive and the log start moves to 150 (as retention would)
      await produce(broker.bootstrap, topic, range(100, 200).map((i) => ({ value: `m${i}` })))
      await adm.raw.fetchTopicOffsets(topic) // loads kafkajs' metadata for the topic, which deleteTopicRecords needs
      await adm.raw.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '150' }] })
      const q2 = await start(source(topic, fail), ckpt)
      if (fail) {
        const err = await q2.processAllAvailable().then(() => null, (e: unknown) => e)
        expect(err).toBeInstanceOf(SourceError)
        expect(err).toMatchObject({ code: 'KAFKA_DATA_LOSS' })
        expect((err as Error).message).toMatch(new RegExp(`offset 100 of topic ${topic} partition 0: the earliest offset is now 150`))
        expect((err as Error).message).toMatch(/failOnDataLoss/)
        expect(q2.isActive).toBe(false)
      } else {
        await q2.processAllAvailable()
        expect(await offsetsOf(q2)).toEqual(range(150, 200))
        await q2.stop()
      }
    })

    it(`the topic is deleted while the query runs: ${fail ? 'the query fails naming the partitions' : 'the query goes on and reads the topic when it is created again'}`, async () => {
      const topic = uniqueTopic('gone')
      await adm.createTopic(topic, 2)
      await produce(broker.bootstrap, topic, range(0, 10).map((i) => ({ value: `a${i}`, partition: i % 2 })))
      const q = await start(source(topic, fail), join(dir, `gone-${fail}`))
      await q.processAllAvailable()
      expect((await offsetsOf(q)).length).toBe(10)
      await adm.raw.deleteTopics({ topics: [topic], timeout: 10_000 })
      if (fail) {
        const err = await q.awaitTermination(30_000).then(() => null, (e: unknown) => e)
        expect(err).toMatchObject({ code: 'KAFKA_DATA_LOSS' })
        expect((err as Error).message).toMatch(new RegExp(`${topic}-0, ${topic}-1 are gone`))
      } else {
        await q.processAllAvailable()
        expect(q.isActive).toBe(true)
        // created again with new data: its partitions are new, read from earliest
        for (let i = 0; i < 50; i++) {
          try {
            await adm.createTopic(topic, 1)
            break
          } catch {
            await new Promise((r) => setTimeout(r, 200)) // deletion still in progress
          }
        }
        await produce(broker.bootstrap, topic, [{ value: 'reborn' }])
        for (let i = 0; i < 100 && !(await session.table(q.name!).collect()).some((r) => r['v'] === 'reborn'); i++) {
          await q.processAllAvailable()
          await new Promise((r) => setTimeout(r, 100))
        }
        const values = (await session.table(q.name!).collect()).map((r) => r['v'])
        expect(values).toContain('reborn')
        expect(values).toHaveLength(11)
        expect(q.exception).toBeNull()
        await q.stop()
      }
    })
  }
})
