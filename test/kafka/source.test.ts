import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AnalysisError, type DataFrame, OptionError, SluiceSession, type StreamingQuery, col } from '../../src/index.node.ts'
import { type Broker, admin, closeKafkaTestEnv, kafkajs, openKafkaTestEnv, produce, uniqueTopic } from './broker.ts'

// The Kafka source against a real broker: Spark's row shape and options, offsets per partition in
// the checkpoint, startingOffsets only for a new query, maxOffsetsPerTrigger split by backlog, new
// partitions and topics from earliest, read_committed, and the monitoring-only group commit.

let broker: Broker
let session: SluiceSession
let adm: Awaited<ReturnType<typeof admin>>
let dir: string
beforeAll(async () => {
  ;({ broker, adm, session, dir } = await openKafkaTestEnv('sluice-kafka-src-'))
}, 240_000)
afterAll(() => closeKafkaTestEnv({ broker, adm, session, dir }), 120_000)

const dec = new TextDecoder()
let q = 0
const reader = (streaming = true) => (streaming ? session.readStream : session.read).format('kafka').option('kafka.bootstrap.servers', broker.bootstrap)

async function toMemory(df: DataFrame, checkpoint?: string): Promise<{ query: StreamingQuery; name: string }> {
  const name = `kafka_src_${q++}`
  let w = df.writeStream.format('memory').queryName(name)
  if (checkpoint) w = w.option('checkpointLocation', checkpoint)
  return { query: await w.start(), name }
}

describe('batch reads (session.read)', () => {
  it("returns Spark's rows: key, value (binary), topic, partition, offset, timestamp, timestampType, and headers when asked", async () => {
    const topic = uniqueTopic('rows')
    await adm.createTopic(topic, 2)
    await produce(broker.bootstrap, topic, [
      { key: 'a', value: 'one', partition: 0, timestamp: '978307200123', headers: { h1: 'x', bin: Buffer.from([0xff, 0x00]) } },
      { key: null, value: 'two', partition: 0, timestamp: '978307201000' },
      { key: 'c', value: null, partition: 1, timestamp: '978307202000' },
    ])
    const df = reader(false).option('subscribe', topic).option('includeHeaders', 'true').load()
    expect(df.schema.map((f) => `${f.name}:${f.type}`)).toEqual([
      'key:binary', 'value:binary', 'topic:string', 'partition:int32', 'offset:int64', 'timestamp:timestamp', 'timestampType:int32', 'headers:string',
    ])
    const rows = (await df.collect()).sort((a, b) => (a['partition'] as number) - (b['partition'] as number) || (a['offset'] as number) - (b['offset'] as number))
    expect(rows.map((r) => ({ ...r, key: r['key'] === null ? null : dec.decode(r['key'] as Uint8Array), value: r['value'] === null ? null : dec.decode(r['value'] as Uint8Array) }))).toEqual([
      { key: 'a', value: 'one', topic, partition: 0, offset: 0, timestamp: 978307200123, timestampType: 0, headers: '[{"key":"h1","value":"x"},{"key":"bin","value":{"base64":"/wA="}}]' },
      { key: null, value: 'two', topic, partition: 0, offset: 1, timestamp: 978307201000, timestampType: 0, headers: '[]' },
      { key: 'c', value: null, topic, partition: 1, offset: 0, timestamp: 978307202000, timestampType: 0, headers: '[]' },
    ])
    // without includeHeaders there is no headers column
    expect(reader(false).option('subscribe', topic).load().columns).not.toContain('headers')
  })

  it('reads [startingOffsets, endingOffsets) given as per-partition JSON (-2 earliest, -1 latest)', async () => {
    const topic = uniqueTopic('range')
    await adm.createTopic(topic, 2)
    await produce(broker.bootstrap, topic, Array.from({ length: 20 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })))
    const df = reader(false).option('subscribe', topic)
      .option('startingOffsets', JSON.stringify({ [topic]: { 0: 3, 1: -2 } }))
      .option('endingOffsets', JSON.stringify({ [topic]: { 0: 7, 1: -1 } }))
      .load()
    const rows = await df.select('partition', 'offset').collect()
    expect(rows.filter((r) => r['partition'] === 0).map((r) => r['offset'])).toEqual([3, 4, 5, 6])
    expect(rows.filter((r) => r['partition'] === 1).map((r) => r['offset'])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    // Spark: specific offsets must name every assigned partition
    await expect(reader(false).option('subscribe', topic).option('startingOffsets', JSON.stringify({ [topic]: { 0: 1 } })).load().collect())
      .rejects.toThrow(/you must specify all TopicPartitions/)
  })

  it('assign reads only the listed partitions; subscribePattern matches topics by regex', async () => {
    const base = uniqueTopic('pat')
    await adm.createTopic(`${base}-a`, 3)
    await adm.createTopic(`${base}-b`, 1)
    await produce(broker.bootstrap, `${base}-a`, [0, 1, 2].map((p) => ({ value: `a${p}`, partition: p })))
    await produce(broker.bootstrap, `${base}-b`, [{ value: 'b0' }])
    const assigned = await reader(false).option('assign', JSON.stringify({ [`${base}-a`]: [0, 2] })).load().select('partition').collect()
    expect(assigned.map((r) => r['partition']).sort()).toEqual([0, 2])
    const matched = await reader(false).option('subscribePattern', `${base.replace(/[-.]/g, '\\$&')}-.*`).load().select(col('value').cast('string').as('v')).collect()
    expect(matched.map((r) => r['v']).sort()).toEqual(['a0', 'a1', 'a2', 'b0'])
  })
})

describe('streaming reads', () => {
  it("startingOffsets 'latest' skips what was there; a restarted query resumes from its checkpoint, not from startingOffsets", async () => {
    const topic = uniqueTopic('resume')
    await adm.createTopic(topic, 2)
    await produce(broker.bootstrap, topic, [{ value: 'old1' }, { value: 'old2' }])
    const ckpt = join(dir, 'resume')
    const df = () => reader().option('subscribe', topic).load().select(col('value').cast('string').as('v'))
    const a = await toMemory(df(), ckpt)
    await a.query.processAllAvailable()
    await produce(broker.bootstrap, topic, [{ value: 'new1', partition: 0 }, { value: 'new2', partition: 1 }])
    await a.query.processAllAvailable()
    expect((await session.table(a.name).collect()).map((r) => r['v']).sort()).toEqual(['new1', 'new2'])
    await a.query.stop()
    await produce(broker.bootstrap, topic, [{ value: 'while-stopped', partition: 0 }])
    // startingOffsets would say 'earliest', but the checkpoint wins
    const b = await toMemory(reader().option('subscribe', topic).option('startingOffsets', 'earliest').load().select(col('value').cast('string').as('v')), ckpt)
    await b.query.processAllAvailable()
    await produce(broker.bootstrap, topic, [{ value: 'after', partition: 1 }])
    await b.query.processAllAvailable()
    expect((await session.table(b.name).collect()).map((r) => r['v']).sort()).toEqual(['after', 'while-stopped'])
    await b.query.stop()
  })

  it('maxOffsetsPerTrigger is split across partitions in proportion to their backlog', async () => {
    const topic = uniqueTopic('limit')
    await adm.createTopic(topic, 3)
    const msgs = [...Array.from({ length: 600 }, () => ({ value: 'p0', partition: 0 })), ...Array.from({ length: 300 }, () => ({ value: 'p1', partition: 1 })), ...Array.from({ length: 100 }, () => ({ value: 'p2', partition: 2 }))]
    await produce(broker.bootstrap, topic, msgs)
    const { query, name } = await toMemory(reader().option('subscribe', topic).option('startingOffsets', 'earliest').option('maxOffsetsPerTrigger', 100).load().select('partition'))
    await query.processAllAvailable()
    const progress = query.recentProgress.filter((p) => p.numInputRows > 0)
    expect(progress[0]!.sources[0]!.endOffset).toEqual({ [topic]: { 0: 60, 1: 30, 2: 10 } })
    expect(progress.every((p) => p.numInputRows <= 100)).toBe(true)
    expect(progress).toHaveLength(10)
    expect(await session.table(name).count()).toBe(1000)
    await query.stop()
  })

  it('picks up new partitions and new topics matching subscribePattern from their earliest offset', async () => {
    const base = uniqueTopic('grow')
    await adm.createTopic(`${base}-x`, 1)
    const { query, name } = await toMemory(reader().option('subscribePattern', `${base}-.*`).option('startingOffsets', 'earliest').load().select('topic', 'partition', col('value').cast('string').as('v')))
    await produce(broker.bootstrap, `${base}-x`, [{ value: 'x0' }])
    await query.processAllAvailable()
    await adm.raw.createPartitions({ topicPartitions: [{ topic: `${base}-x`, count: 3 }] })
    await adm.createTopic(`${base}-y`, 1)
    await produce(broker.bootstrap, `${base}-x`, [{ value: 'x1', partition: 1 }, { value: 'x2', partition: 2 }])
    await produce(broker.bootstrap, `${base}-y`, [{ value: 'y0' }])
    for (let i = 0; i < 50 && (await session.table(name).count()) < 4; i++) {
      await query.processAllAvailable()
      await new Promise((r) => setTimeout(r, 100))
    }
    expect((await session.table(name).collect()).map((r) => r['v']).sort()).toEqual(['x0', 'x1', 'x2', 'y0'])
    expect(query.lastProgress!.sources[0]!.endOffset).toEqual({ [`${base}-x`]: { 0: 1, 1: 1, 2: 1 }, [`${base}-y`]: { 0: 1 } })
    await query.stop()
  })

  it('read_committed hides aborted transactions; read_uncommitted (the default, as Spark) shows them', async () => {
    const topic = uniqueTopic('txn')
    await adm.createTopic(topic, 1)
    const kafka = new kafkajs.Kafka({ brokers: [broker.bootstrap], logLevel: kafkajs.logLevel.NOTHING })
    const p = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, createPartitioner: kafkajs.Partitioners.DefaultPartitioner })
    await p.connect()
    const t1 = await p.transaction()
    await t1.send({ topic, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] })
    await t1.commit()
    const t2 = await p.transaction()
    await t2.send({ topic, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] })
    await t2.abort()
    const t3 = await p.transaction()
    await t3.send({ topic, messages: [{ value: 'committed-3' }] })
    await t3.commit()
    await p.disconnect()
    const values = async (isolation?: string) => {
      let r = reader(false).option('subscribe', topic)
      if (isolation) r = r.option('kafka.isolation.level', isolation)
      return (await r.load().select(col('value').cast('string').as('v')).collect()).map((x) => x['v'])
    }
    expect(await values('read_committed')).toEqual(['committed-1', 'committed-2', 'committed-3'])
    expect(await values()).toEqual(['committed-1', 'committed-2', 'aborted-1', 'aborted-2', 'committed-3'])
  })

  it('commitOffsetsToGroup commits each committed batch\'s end offsets to a consumer group (monitoring only)', async () => {
    const topic = uniqueTopic('lag')
    await adm.createTopic(topic, 2)
    await produce(broker.bootstrap, topic, Array.from({ length: 10 }, (_, i) => ({ value: `m${i}`, partition: i % 2 })))
    const group = `${topic}-monitor`
    const { query } = await toMemory(reader().option('subscribe', topic).option('startingOffsets', 'earliest').option('commitOffsetsToGroup', group).load())
    await query.processAllAvailable()
    let committed: Record<string, number> = {}
    for (let i = 0; i < 50; i++) {
      await query.processAllAvailable()
      // (a group coordinator that is still loading answers NOT_COORDINATOR: ask again)
      const res = (await adm.raw.fetchOffsets({ groupId: group, topics: [topic] }).catch(() => null)) as { partitions: { partition: number; offset: string }[] }[] | null
      if (res !== null) committed = Object.fromEntries(res[0]!.partitions.map((x) => [String(x.partition), Number(x.offset)]))
      if (committed['0'] === 5 && committed['1'] === 5) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(committed).toEqual({ 0: 5, 1: 5 })
    await query.stop()
  })
})

describe('options, as Spark validates them', () => {
  it('rejects bad or missing options with OptionError / AnalysisError naming them', () => {
    const base = () => session.readStream.format('kafka')
    expect(() => base().option('subscribe', 't').load()).toThrow(/kafka.bootstrap.servers/)
    expect(() => reader().load()).toThrow(/One of the options 'subscribe', 'subscribePattern' or 'assign'/)
    expect(() => reader().option('subscribe', 't').option('assign', '{"t":[0]}').load()).toThrow(OptionError)
    expect(() => reader().option('subscribe', 't').option('endingOffsets', 'latest').load()).toThrow(/not valid for streaming/)
    expect(() => reader(false).option('subscribe', 't').option('startingOffsets', 'latest').load()).toThrow(/not valid for batch/)
    expect(() => reader().option('subscribe', 't').option('kafka.auto.offset.reset', 'earliest').load()).toThrow(/startingOffsets/)
    expect(() => reader().option('subscribe', 't').option('kafka.group.id', 'g').load()).toThrow(/commitOffsetsToGroup/)
    expect(() => reader().option('subscribe', 't').option('startingOffsets', '{"t":{"0":"x"}}').load()).toThrow(/startingOffsets/)
    expect(() => reader().option('assign', '[1]').load()).toThrow(/assign/)
    expect(() => reader().option('subscribe', 't').option('maxOffsetsPerTrigger', 0).load()).toThrow(/maxOffsetsPerTrigger/)
    expect(() => reader().option('subscribe', 't').option('fancy', 1).load()).toThrow(/Unknown .*'fancy'.*accepted/)
    expect(() => reader().option('subscribe', 't').schema({ a: 'int' }).load()).toThrow(AnalysisError)
  })
})
