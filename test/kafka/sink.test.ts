import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AnalysisError, MemoryStream, SluiceSession, col, count, lit, struct, to_json } from '../../src/index.node.ts'
import { type Broker, admin, closeKafkaTestEnv, openKafkaTestEnv, uniqueTopic } from './broker.ts'

// The Kafka sink against a real broker: Spark's columns (topic/key/value/headers/partition), the
// three output modes, at-least-once re-runs (duplicates, as Spark) and the exactly-once mode (a
// transaction per micro-batch keyed to the batch id: a re-run batch adds nothing for read_committed).

let broker: Broker
let session: SluiceSession
let adm: Awaited<ReturnType<typeof admin>>
let dir: string
beforeAll(async () => {
  ;({ broker, adm, session, dir } = await openKafkaTestEnv('sluice-kafka-sink-'))
}, 240_000)
afterAll(() => closeKafkaTestEnv({ broker, adm, session, dir }), 120_000)

const dec = new TextDecoder()

/** Everything in `topic`, read back with Sluice's batch Kafka reader. */
async function readBack(topic: string, isolation: 'read_committed' | 'read_uncommitted' = 'read_committed') {
  const rows = await session.read.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('subscribe', topic)
    .option('includeHeaders', true).option('kafka.isolation.level', isolation).load().collect()
  return rows.map((r) => ({
    key: r['key'] === null ? null : dec.decode(r['key'] as Uint8Array),
    value: r['value'] === null ? null : dec.decode(r['value'] as Uint8Array),
    partition: r['partition'] as number,
    headers: r['headers'] as string,
  }))
}

function kafkaWriter(df: import('../../src/index.node.ts').DataFrame, ckpt: string) {
  return df.writeStream.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('checkpointLocation', ckpt)
}

describe('Kafka sink', () => {
  it('writes value/key/headers/partition columns to the topic option or the topic column', async () => {
    const t1 = uniqueTopic('sink-a'), t2 = uniqueTopic('sink-b')
    await adm.createTopic(t1, 3)
    await adm.createTopic(t2, 3)
    const input = new MemoryStream(session, { t: 'string', k: 'string', v: 'string', p: 'int', h: 'string' })
    const df = input.toDF().select(col('t').as('topic'), col('k').as('key'), col('v').as('value'), col('p').as('partition'), col('h').as('headers'))
    const q1 = await kafkaWriter(df.drop('topic'), join(dir, 'a')).option('topic', t1).start()
    const q2 = await kafkaWriter(df, join(dir, 'b')).start()
    input.addData([
      { t: t2, k: 'k1', v: 'hello', p: 2, h: '[{"key":"trace","value":"abc"}]' },
      { t: t2, k: null, v: 'no key', p: null, h: null },
      { t: t2, k: 'k3', v: null, p: 0, h: '[{"key":"bin","value":{"base64":"/wA="}},{"key":"trace","value":"x"}]' },
    ])
    await q1.processAllAvailable()
    await q2.processAllAvailable()
    const a = (await readBack(t1)).sort((x, y) => String(x.value).localeCompare(String(y.value)))
    expect(a).toEqual([
      { key: 'k1', value: 'hello', partition: 2, headers: '[{"key":"trace","value":"abc"}]' },
      { key: 'k3', value: null, partition: 0, headers: '[{"key":"bin","value":{"base64":"/wA="}},{"key":"trace","value":"x"}]' },
      { key: null, value: 'no key', partition: expect.any(Number), headers: '[]' },
    ].sort((x, y) => String(x.value).localeCompare(String(y.value))))
    // the topic column routed the same rows to t2
    expect((await readBack(t2)).map((r) => r.value).sort()).toEqual(a.map((r) => r.value).sort())
    await q1.stop()
    await q2.stop()
    // a partition the topic does not have fails the batch at once, as the Java producer does
    const input2 = new MemoryStream(session, { v: 'string', p: 'int' })
    const q3 = await kafkaWriter(input2.toDF().select(col('v').as('value'), col('p').as('partition')), join(dir, 'c')).option('topic', t2).start()
    input2.addData([{ v: 'x', p: 7 }])
    await expect(q3.processAllAvailable()).rejects.toMatchObject({ code: 'KAFKA_INVALID_PARTITION', message: expect.stringContaining('[0...3)') })
  })

  it('rejects a schema without value or topic, and mistyped columns, at start()', async () => {
    const input = new MemoryStream(session, { n: 'int', s: 'string' })
    await expect(kafkaWriter(input.toDF(), join(dir, 'bad1')).option('topic', 't').start()).rejects.toThrow(/Required attribute 'value' not found/)
    await expect(kafkaWriter(input.toDF().select(col('s').as('value')), join(dir, 'bad2')).start()).rejects.toThrow(/topic option required/)
    await expect(kafkaWriter(input.toDF().select(col('n').as('value')), join(dir, 'bad3')).option('topic', 't').start()).rejects.toThrow(AnalysisError)
    await expect(kafkaWriter(input.toDF().select(col('s').as('value')), join(dir, 'bad4')).option('topic', 't').option('deliveryGuarantee', 'twice').start()).rejects.toThrow(/deliveryGuarantee/)
  })

  it('accepts Update and Complete output modes (every row a batch emits is written)', async () => {
    const topic = uniqueTopic('sink-modes')
    await adm.createTopic(topic, 1)
    const input = new MemoryStream(session, { k: 'string' })
    const counts = input.toDF().groupBy('k').agg(count('*').as('n'))
      .select(col('k').as('key'), to_json(struct(col('k'), col('n'))).as('value'))
    const complete = await kafkaWriter(counts, join(dir, 'complete')).outputMode('complete').option('topic', topic).option('kafka.client.id', 'complete').start()
    input.addData([{ k: 'a' }, { k: 'b' }, { k: 'a' }])
    await complete.processAllAvailable()
    input.addData([{ k: 'b' }])
    await complete.processAllAvailable()
    await complete.stop()
    expect((await readBack(topic)).map((r) => r.value)).toEqual(['{"k":"a","n":2}', '{"k":"b","n":1}', '{"k":"a","n":2}', '{"k":"b","n":2}'])
    const topic2 = uniqueTopic('sink-update')
    await adm.createTopic(topic2, 1)
    const input2 = new MemoryStream(session, { k: 'string' })
    const update = await kafkaWriter(input2.toDF().groupBy('k').agg(count('*').as('n')).select(to_json(struct(col('k'), col('n'))).as('value')), join(dir, 'update'))
      .outputMode('update').option('topic', topic2).start()
    input2.addData([{ k: 'a' }, { k: 'b' }])
    await update.processAllAvailable()
    input2.addData([{ k: 'b' }])
    await update.processAllAvailable()
    await update.stop()
    expect((await readBack(topic2)).map((r) => r.value)).toEqual(['{"k":"a","n":1}', '{"k":"b","n":1}', '{"k":"b","n":2}'])
  })

  it('a batch re-run after a crash duplicates records at-least-once, and adds nothing in exactly-once mode (read_committed)', async () => {
    for (const mode of ['at-least-once', 'exactly-once'] as const) {
      const topic = uniqueTopic(`sink-${mode}`)
      await adm.createTopic(topic, 2)
      const ckpt = join(dir, `rerun-${mode}`)
      const input = new MemoryStream(session, { v: 'string' })
      const df = input.toDF().select(col('v').as('value'), lit('x').as('key'))
      const start = () => kafkaWriter(df, ckpt).option('topic', topic).option('deliveryGuarantee', mode).start()
      let query = await start()
      input.addData([{ v: 'a' }, { v: 'b' }])
      await query.processAllAvailable()
      input.addData([{ v: 'c' }])
      await query.processAllAvailable()
      await query.stop()
      // a crash between the sink's write and the commit log: batch 1 has offsets but no commit
      expect(readdirSync(join(ckpt, 'commits')).filter((f) => /^\d+$/.test(f)).sort()).toEqual(['0', '1'])
      rmSync(join(ckpt, 'commits', '1'))
      query = await start()
      await query.processAllAvailable()
      await query.stop()
      const values = (await readBack(topic)).map((r) => r.value).sort()
      expect(values).toEqual(mode === 'exactly-once' ? ['a', 'b', 'c'] : ['a', 'b', 'c', 'c'])
    }
  })

  it('exactly-once needs a stable transactional id: a checkpointLocation or kafka.transactional.id', async () => {
    const input = new MemoryStream(session, { v: 'string' })
    await expect(input.toDF().select(col('v').as('value')).writeStream.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap)
      .option('topic', 't').option('deliveryGuarantee', 'exactly-once').start()).rejects.toThrow(/transactional id/)
  })
})
