/**
 * The Kafka sink, as Spark's KafkaSink (spark-sql-kafka-0-10), plus an exactly-once mode Spark lacks.
 *
 * Input columns (Spark's KafkaWriter): `value` string or binary (required; null = tombstone),
 * `key` string or binary (optional; null = no key), `topic` string (required unless the `topic`
 * option is set, which wins over the column), `partition` int (optional; null or absent = Kafka's
 * default partitioner, murmur2 of the key as in the Java client), `headers` string (optional; the
 * JSON form the source produces: `[{"key":"k","value":"v"}]`, a value may be `{"base64": …}` or
 * null). Other columns are ignored. All three output modes are accepted; Update and Complete
 * write every row the batch emits.
 *
 * Delivery (option `deliveryGuarantee`):
 * - `at-least-once` (default, Spark's only mode): records are produced with acks=all; a batch re-run
 *   after a crash is written again, so consumers may see duplicates.
 * - `exactly-once` (Sluice extension): each micro-batch is one Kafka transaction, committed together
 *   with a consumer-group offset that records the batch id (group = transactional id, offset =
 *   batchId + 1 on partition 0 of the first topic written). The transactional id is stable for the
 *   query (`sluice-<query id from the checkpoint>`, or `kafka.transactional.id`), so a restarted
 *   query fences the crashed process and aborts its open transaction; a batch whose transaction
 *   already committed is skipped. Consumers with isolation.level=read_committed see every output
 *   record exactly once.
 *
 * Errors: AnalysisError `KAFKA_SINK_SCHEMA` at start() for missing/mistyped columns; SinkError
 * `KAFKA_NULL_TOPIC` for a row without topic, `KAFKA_INVALID_HEADERS` for an unparsable headers value,
 * `KAFKA_UNAVAILABLE` (retriable) when the cluster does not take the batch within
 * `kafka.delivery.timeout.ms`, `KAFKA_WRITE_FAILED` for other producer errors.
 */
import { type Batch, type Column, type Schema, isValid } from '../batch.ts'
import { AnalysisError, OptionError, SinkError } from '../errors.ts'
import type { OutputMode } from '../exec/aggregate.ts'
import { joinPath } from '../fs.ts'
import type { Sink, SinkContext, SinkProvider } from '../sinks/sink.ts'
import { createKafkajs, defaultPartitioner, isRetriable, retrying } from './client.ts'
import type { KafkaSinkOptions } from './options.ts'

/* eslint-disable @typescript-eslint/no-explicit-any */

interface Message {
  key: Buffer | null
  value: Buffer | null
  partition?: number
  headers?: Record<string, Buffer | Buffer[]>
}

const emptyBuffer = Buffer.alloc(0)

function checkSchema(schema: Schema, topicOption: string | undefined): void {
  const field = (name: string) => schema.find((f) => f.name === name)
  const need = (name: string, ok: (t: string) => boolean, expected: string, required: boolean, hint = '') => {
    const f = field(name)
    if (f === undefined) {
      if (required) throw new AnalysisError('KAFKA_SINK_SCHEMA', `Required attribute '${name}' not found${hint}`)
      return
    }
    if (!ok(f.type)) throw new AnalysisError('KAFKA_SINK_SCHEMA', `${name} attribute type must be ${expected}, but it is ${f.type}`)
  }
  need('topic', (t) => t === 'string', 'a string', topicOption === undefined, ": topic option required when no 'topic' attribute is present. Use the topic option for setting a topic.")
  need('key', (t) => t === 'string' || t === 'binary', 'a string or binary', false)
  need('value', (t) => t === 'string' || t === 'binary', 'a string or binary', true)
  need('partition', (t) => t === 'int32', 'an int', false)
  need('headers', (t) => t === 'string', "a string (JSON array of {\"key\",\"value\"}, the form the Kafka source's includeHeaders gives)", false)
}

/** Column values as Buffers (string dictionaries encoded once per entry), null for null slots. */
function bytesOf(c: Column | undefined): (i: number) => Buffer | null {
  if (c === undefined) return () => null
  if (c.type === 'string') {
    const dict = c.dictionary!.map((s) => Buffer.from(s, 'utf8'))
    const codes = c.values as Int32Array
    return (i) => (isValid(c.validity, i) ? dict[codes[i]!]! : null)
  }
  const vals = c.values as Uint8Array[]
  return (i) => {
    if (!isValid(c.validity, i)) return null
    const v = vals[i]!
    return v.length === 0 ? emptyBuffer : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  }
}

function parseHeaders(text: string, row: number): Record<string, Buffer | Buffer[]> | undefined {
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch (cause) {
    throw new SinkError('KAFKA_INVALID_HEADERS', `Row ${row}: headers is not JSON: ${text.slice(0, 80)}`, { cause })
  }
  if (!Array.isArray(j)) throw new SinkError('KAFKA_INVALID_HEADERS', `Row ${row}: headers must be a JSON array of {"key","value"}, got ${text.slice(0, 80)}`)
  if (j.length === 0) return undefined
  const out: Record<string, Buffer | Buffer[]> = {}
  for (const h of j as { key?: unknown; value?: unknown }[]) {
    if (h === null || typeof h !== 'object' || typeof h.key !== 'string') {
      throw new SinkError('KAFKA_INVALID_HEADERS', `Row ${row}: each header needs a string "key": ${text.slice(0, 80)}`)
    }
    const v = h.value
    // kafkajs cannot send a header without value: null becomes an empty value
    const b = v === null || v === undefined ? emptyBuffer
      : typeof v === 'string' ? Buffer.from(v, 'utf8')
        : typeof v === 'object' && typeof (v as { base64?: unknown }).base64 === 'string' ? Buffer.from((v as { base64: string }).base64, 'base64')
          : Buffer.from(JSON.stringify(v), 'utf8')
    const prev = out[h.key]
    out[h.key] = prev === undefined ? b : Array.isArray(prev) ? [...prev, b] : [prev, b]
  }
  return out
}

/** The batch's rows as kafkajs messages grouped by topic, in row order. */
export function batchToMessages(batch: Batch, topicOption: string | undefined): Map<string, Message[]> {
  const col = (name: string) => {
    const i = batch.schema.findIndex((f) => f.name === name)
    return i < 0 ? undefined : batch.columns[i]
  }
  const n = batch.numRows
  const key = bytesOf(col('key'))
  const value = bytesOf(col('value'))
  const topicCol = col('topic')
  const partCol = col('partition')
  const headersCol = col('headers')
  const out = new Map<string, Message[]>()
  let lastTopic = '', lastList: Message[] = []
  for (let i = 0; i < n; i++) {
    let topic = topicOption
    if (topic === undefined) {
      if (!isValid(topicCol!.validity, i)) throw new SinkError('KAFKA_NULL_TOPIC', `Row ${i}: null topic present in the data. Use the topic option for setting a topic.`)
      topic = topicCol!.dictionary![(topicCol!.values as Int32Array)[i]!]!
    }
    const m: Message = { key: key(i), value: value(i) }
    if (partCol !== undefined && isValid(partCol.validity, i)) m.partition = (partCol.values as Int32Array)[i]!
    if (headersCol !== undefined && isValid(headersCol.validity, i)) {
      const h = parseHeaders(headersCol.dictionary![(headersCol.values as Int32Array)[i]!]!, i)
      if (h !== undefined) m.headers = h
    }
    if (topic !== lastTopic) {
      lastTopic = topic
      lastList = out.get(topic) ?? []
      out.set(topic, lastList)
    }
    lastList.push(m)
  }
  return out
}

/** Chunks of about `maxBytes` (keys + values + headers), so no request exceeds the broker's message size limit. */
function* chunks(messages: Map<string, Message[]>, maxBytes: number): Generator<{ topic: string; messages: Message[] }[]> {
  let chunk: { topic: string; messages: Message[] }[] = []
  let bytes = 0
  for (const [topic, list] of messages) {
    let cur: Message[] = []
    chunk.push({ topic, messages: cur })
    for (const m of list) {
      const size = 24 + (m.key?.length ?? 0) + (m.value?.length ?? 0) + (m.headers ? Object.entries(m.headers).reduce((s, [k, v]) => s + k.length + (Array.isArray(v) ? v.reduce((a, b) => a + b.length, 0) : v.length), 0) : 0)
      if (bytes + size > maxBytes && bytes > 0) {
        yield chunk
        cur = []
        chunk = [{ topic, messages: cur }]
        bytes = 0
      }
      cur.push(m)
      bytes += size
    }
  }
  chunk = chunk.filter((c) => c.messages.length > 0)
  if (chunk.length > 0) yield chunk
}

export class KafkaSinkProvider implements SinkProvider {
  readonly name = 'kafka'
  readonly outputModes: readonly OutputMode[] = ['append', 'update', 'complete']

  constructor(readonly options: KafkaSinkOptions, readonly schema: Schema) {
    checkSchema(schema, options.topic)
    if (options.exactlyOnce && options.transactionalId === undefined && options.checkpointLocation === undefined) {
      throw new OptionError('MISSING_OPTION', "deliveryGuarantee 'exactly-once' needs a stable transactional id: set option('checkpointLocation', …) (the id is derived from the query id stored there) or option('kafka.transactional.id', …)")
    }
  }

  async create(ctx: SinkContext): Promise<Sink> {
    let transactionalId = this.options.transactionalId
    if (this.options.exactlyOnce && transactionalId === undefined) {
      const file = joinPath(this.options.checkpointLocation!, 'metadata')
      const id = (await ctx.fs.stat(file)) === null ? undefined : (JSON.parse(new TextDecoder().decode(await ctx.fs.read(file))) as { id?: string }).id
      if (typeof id !== 'string') throw new SinkError('KAFKA_NO_QUERY_ID', `Cannot derive the transactional id: ${file} holds no query id`)
      transactionalId = `sluice-${id}`
    }
    return new KafkaSink(this.options, transactionalId)
  }
}

class KafkaSink implements Sink {
  readonly description: string
  private kafka: any = null
  private producer: any = null
  private admin: any = null

  constructor(private readonly opts: KafkaSinkOptions, private readonly transactionalId: string | undefined) {
    this.description = `KafkaSink[${opts.topic ?? 'topic column'}${opts.exactlyOnce ? `, exactly-once as ${transactionalId}` : ''}]`
  }

  private async connect(): Promise<any> {
    if (this.producer !== null) return this.producer
    this.kafka ??= createKafkajs(this.opts.connection)
    const producer = this.kafka.producer({
      createPartitioner: defaultPartitioner(),
      allowAutoTopicCreation: true,
      ...(this.transactionalId !== undefined
        ? { transactionalId: this.transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: this.opts.transactionTimeoutMs }
        : {}),
    })
    await producer.connect()
    this.producer = producer
    return producer
  }

  private async reset(): Promise<void> {
    const p = this.producer, a = this.admin
    this.producer = null
    this.admin = null
    if (p !== null) await p.disconnect().catch(() => {})
    if (a !== null) await a.disconnect().catch(() => {})
  }

  private retry(what: string, fn: () => Promise<void>): Promise<void> {
    return retrying(what, this.opts.deliveryTimeoutMs, SinkError, this.opts.connection.brokers, fn, () => this.reset()).catch((e: unknown) => {
      if (e instanceof SinkError) throw e
      throw new SinkError('KAFKA_WRITE_FAILED', `Kafka sink could not ${what}: ${(e as Error)?.message ?? e}`, { cause: e, retriable: isRetriable(e) })
    })
  }

  async addBatch(batchId: number, data: Batch): Promise<void> {
    if (data.numRows === 0) return
    const messages = batchToMessages(data, this.opts.topic)
    const send = async (sender: any) => {
      for (const topicMessages of chunks(messages, this.opts.batchBytes)) {
        await sender.sendBatch({ topicMessages, acks: this.opts.acks, compression: this.opts.compression === 'gzip' ? 1 : 0 })
      }
    }
    if (!this.opts.exactlyOnce) {
      if (data.schema.some((f) => f.name === 'partition')) await this.checkPartitions(messages)
      // at-least-once: a failed attempt is re-sent whole (records of it may already be in Kafka)
      await this.retry(`write batch ${batchId} (${data.numRows} rows)`, async () => send(await this.connect()))
      return
    }
    if (data.schema.some((f) => f.name === 'partition')) await this.checkPartitions(messages)
    const marker = [...messages.keys()].sort()[0]!
    await this.retry(`write batch ${batchId} (${data.numRows} rows) in a transaction`, async () => {
      const producer = await this.connect()
      // the first transaction of this producer runs InitProducerId: it fences a crashed run and aborts its open transaction
      const txn = await producer.transaction()
      try {
        const last = await this.lastCommittedBatch()
        if (last > batchId) {
          // only the batch being re-run can already be committed: a later one means another query used this id
          await txn.abort()
          throw new SinkError('KAFKA_TRANSACTIONAL_ID_REUSED',
            `Transactional id ${this.transactionalId} has already committed batch ${last}, but this query is at batch ${batchId}: ` +
              'another query (or an earlier checkpoint) used the same kafka.transactional.id; give this query its own id')
        }
        if (last === batchId) {
          await txn.abort()
          return
        }
        await send(txn)
        await txn.sendOffsets({ consumerGroupId: this.transactionalId, topics: [{ topic: marker, partitions: [{ partition: 0, offset: String(batchId + 1) }] }] })
        await txn.commit()
      } catch (e) {
        await txn.abort().catch(() => {})
        throw e
      }
    })
  }

  private async connectAdmin(): Promise<any> {
    if (this.admin === null) {
      this.kafka ??= createKafkajs(this.opts.connection)
      const admin = this.kafka.admin()
      await admin.connect()
      this.admin = admin
    }
    return this.admin
  }

  /** As the Java producer: a record for a partition the topic does not have fails at once (not after delivery.timeout.ms). */
  private async checkPartitions(messages: Map<string, Message[]>): Promise<void> {
    const wanted = new Map<string, number>()
    for (const [topic, list] of messages) {
      let max = -1
      for (const m of list) if (m.partition !== undefined && m.partition > max) max = m.partition
      if (max >= 0) wanted.set(topic, max)
    }
    if (wanted.size === 0) return
    let counts = new Map<string, number>()
    await this.retry('read topic metadata', async () => {
      const admin = await this.connectAdmin()
      const existing = new Set<string>(await admin.listTopics())
      const topics = [...wanted.keys()].filter((t) => existing.has(t))
      const md = topics.length === 0 ? { topics: [] } : await admin.fetchTopicMetadata({ topics })
      counts = new Map((md.topics as { name: string; partitions: unknown[] }[]).map((t) => [t.name, t.partitions.length]))
    })
    for (const [topic, max] of wanted) {
      const n = counts.get(topic)
      if (n !== undefined && max >= n) {
        throw new SinkError('KAFKA_INVALID_PARTITION', `Invalid partition given with a record: ${max} is not in the range [0...${n}) of topic ${topic}`)
      }
    }
  }

  /** The highest batch id whose transaction committed (−1 if none): the group's committed offsets hold batchId + 1. */
  private async lastCommittedBatch(): Promise<number> {
    const admin = await this.connectAdmin()
    const res = await admin.fetchOffsets({ groupId: this.transactionalId }) as { topic: string; partitions: { partition: number; offset: string }[] }[]
    let max = -1
    for (const t of res) for (const p of t.partitions) max = Math.max(max, Number(p.offset) - 1)
    return max
  }

  async stop(): Promise<void> {
    await this.reset()
  }
}
