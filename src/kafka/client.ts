/**
 * Sluice's Kafka client: the only module that touches kafkajs (2.2.4, pinned: its maintainers have
 * stopped, so it stays behind this interface and could be swapped). Connections, metadata, offset
 * look-ups and producers come from kafkajs; fetches use kafkajs' Fetch v11 request encoder on its
 * connections but Sluice's own response decoder (`records.ts`), which writes records straight into
 * columns. Reads are by explicit offset range per partition (Spark's "assign + seek"): no consumer
 * group is joined, ever.
 *
 * Every call retries retriable failures (broker down or restarting, leader moved, coordinator
 * loading) with backoff until `apiTimeoutMs` has passed since the call began, then throws the
 * caller's error class with code `KAFKA_UNAVAILABLE` (retriable).
 */
import { createRequire } from 'node:module'
import type { ConnectionOptions } from 'node:tls'
import { type SluiceError, SourceError } from '../errors.ts'
import { type Decompress, type PartitionCursor, RecordColumns, decodeRecordSet } from './records.ts'

const require = createRequire(import.meta.url)
/* eslint-disable @typescript-eslint/no-explicit-any */
const kafkajs = require('kafkajs') as any
const Cluster = require('kafkajs/src/cluster/index.js') as any
const { createLogger, LEVELS } = require('kafkajs/src/loggers/index.js') as any
const defaultSocketFactory = require('kafkajs/src/network/socketFactory.js') as any
const fetchV11 = require('kafkajs/src/protocol/requests/fetch/v11/request.js') as any
const Decoder = require('kafkajs/src/protocol/decoder.js') as any

export type Isolation = 'read_uncommitted' | 'read_committed'

/** How to reach a cluster (what `kafka.*` options map to). */
export interface KafkaConnectionConfig {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly ssl?: boolean | ConnectionOptions
  readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string }
  readonly connectionTimeoutMs: number
  readonly requestTimeoutMs: number
  /** How long one call keeps retrying while the cluster is unreachable (Kafka's `default.api.timeout.ms`). */
  readonly apiTimeoutMs: number
}

export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

/** One partition's offset range `[from, until)` to read. */
export interface FetchRange extends TopicPartition {
  readonly from: number
  readonly until: number
}

/** What a range read met when the log no longer holds the requested offsets. */
export interface DataLossEvent {
  readonly topic: string
  readonly partition: number
  /** The offset the read wanted. */
  readonly offset: number
  readonly kind: 'OFFSET_OUT_OF_RANGE' | 'TOPIC_DELETED' | 'OFFSETS_CHANGED'
  /** Where reading resumes (earliest available), or null when the rest of the range is gone. */
  readonly resumeAt: number | null
  readonly message: string
}

type ErrorClass = new (code: string, message: string, options?: { cause?: unknown; retriable?: boolean }) => SluiceError

const NOTHING = LEVELS.NOTHING

/** True for failures worth retrying: connection trouble, leadership changes, coordinators loading. */
export function isRetriable(e: unknown): boolean {
  const err = e as { name?: string; retriable?: boolean; cause?: unknown; originalError?: unknown; code?: unknown; type?: string } | null
  if (err === null || typeof err !== 'object') return false
  // kafkajs gives up on retriable errors only (others it throws at once)
  if (err.name === 'KafkaJSNumberOfRetriesExceeded') return true
  if (err.name === 'KafkaJSGroupCoordinatorNotFound' || err.name === 'KafkaJSBrokerNotFound' || err.name === 'KafkaJSLockTimeout') return true
  if (err.name === 'KafkaJSConnectionError' || err.name === 'KafkaJSConnectionClosedError' || err.name === 'KafkaJSRequestTimeoutError' || err.name === 'KafkaJSNoBrokerAvailableError') return true
  if (err.name === 'KafkaJSMetadataNotLoaded' || err.name === 'KafkaJSTopicMetadataNotLoaded') return true
  if (typeof err.code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTCONN)$/.test(err.code)) return true
  // kafkajs's transactional producer re-throws a lost connection as KafkaJSNonRetriableError, keeping
  // only the message (no cause): a broker that went away is still worth retrying
  if (err.name === 'KafkaJSNonRetriableError') {
    if (err.cause !== undefined && isRetriable(err.cause)) return true
    const message = (e as Error).message ?? ''
    if (/Connection error|Connection timeout|Closed connection|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|There is no leader|broker not connected/i.test(message)) return true
  }
  if (typeof err.retriable === 'boolean') return err.retriable
  return false
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function describe(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: unknown }
  const inner = err?.cause && (err.cause as Error).message && (err.cause as Error).message !== err.message ? ` (${(err.cause as Error).message})` : ''
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}${inner}`
}

/** kafkajs' client configuration from Sluice's. */
export function kafkajsConfig(c: KafkaConnectionConfig): Record<string, unknown> {
  return {
    brokers: [...c.brokers],
    clientId: c.clientId,
    ...(c.ssl !== undefined ? { ssl: c.ssl } : {}),
    ...(c.sasl !== undefined ? { sasl: c.sasl } : {}),
    connectionTimeout: c.connectionTimeoutMs,
    requestTimeout: c.requestTimeoutMs,
    enforceRequestTimeout: true,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: NOTHING,
  }
}

/**
 * Runs `fn` until it succeeds, a non-retriable error occurs, or `timeoutMs` passes (then throws
 * `errorClass('KAFKA_UNAVAILABLE')`). `onRetry` runs before each new attempt (e.g. to reconnect).
 */
export async function retrying<T>(
  what: string, timeoutMs: number, errorClass: ErrorClass, brokers: readonly string[],
  fn: (attempt: number) => Promise<T>, onRetry?: (e: unknown) => Promise<void>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let backoff = 100
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (e) {
      if (!isRetriable(e)) throw e
      if (Date.now() + backoff >= deadline) {
        throw new errorClass('KAFKA_UNAVAILABLE', `Kafka at ${brokers.join(',')} did not answer while trying to ${what} for ${Math.round(timeoutMs / 1000)} s (kafka.default.api.timeout.ms = ${timeoutMs}); last error: ${describe(e)}`, { cause: e, retriable: true })
      }
      await sleep(backoff)
      backoff = Math.min(backoff * 2, 1000)
      if (onRetry) {
        try {
          await onRetry(e)
        } catch {
          // the next attempt reports it
        }
      }
    }
  }
}

/** A fetch response partition, decoded up to its record set. */
interface FetchPartition {
  partition: number
  errorCode: number
  highWatermark: number
  lastStableOffset: number
  logStartOffset: number
  aborted: { producerId: number; firstOffset: number }[]
  records: Uint8Array | null
}

/** Fetch v11 response (KIP-392) decoded without touching the records (they are decoded into columns later). */
function decodeFetchV11(payload: Buffer): { errorCode: number; topics: { topic: string; partitions: FetchPartition[] }[] } {
  const d = new Decoder(payload)
  d.readInt32() // throttle time
  const errorCode = d.readInt16()
  d.readInt32() // session id
  const topics = d.readArray((t: any) => ({
    topic: t.readString(),
    partitions: t.readArray((p: any): FetchPartition => {
      const partition = p.readInt32()
      const pErr = p.readInt16()
      const highWatermark = Number(p.readInt64().toString())
      const lastStableOffset = Number(p.readInt64().toString())
      const logStartOffset = Number(p.readInt64().toString())
      const aborted = p.readArray((a: any) => ({ producerId: Number(a.readInt64().toString()), firstOffset: Number(a.readInt64().toString()) })) ?? []
      p.readInt32() // preferred read replica
      const size = p.readInt32()
      let records: Uint8Array | null = null
      if (size >= 0) {
        const buf: Buffer = p.buffer
        records = new Uint8Array(buf.buffer, buf.byteOffset + p.offset, size)
        p.offset += size
      }
      return { partition, errorCode: pErr, highWatermark, lastStableOffset, logStartOffset, aborted: aborted.sort((x: { firstOffset: number }, y: { firstOffset: number }) => x.firstOffset - y.firstOffset), records }
    }),
  }))
  return { errorCode, topics }
}

const RETRIABLE_FETCH_ERRORS = new Set([5, 6, 7, 13, 19, 56, 74, 75, 15])
const OFFSET_OUT_OF_RANGE = 1
const UNKNOWN_TOPIC_OR_PARTITION = 3
const UNKNOWN_TOPIC_ID = 100

export interface FetchOptions {
  readonly isolation: Isolation
  readonly includeHeaders: boolean
  /** Bytes asked per partition per fetch (max.partition.fetch.bytes). */
  readonly partitionMaxBytes: number
  /** Bytes asked per fetch (fetch.max.bytes). */
  readonly maxBytes: number
  /** Called when offsets of a range are gone; may throw (failOnDataLoss) or return to continue. */
  readonly onDataLoss: (e: DataLossEvent) => void
}

/** A metadata/offset/fetch client for one source (one isolation level). */
export class KafkaReader {
  private cluster: any = null

  constructor(readonly config: KafkaConnectionConfig, readonly isolation: Isolation, private readonly errorClass: ErrorClass = SourceError) {}

  private newCluster(): any {
    return new Cluster({
      logger: createLogger({ level: NOTHING, logCreator: () => () => {} }),
      socketFactory: defaultSocketFactory(),
      brokers: [...this.config.brokers],
      ssl: this.config.ssl,
      sasl: this.config.sasl,
      clientId: this.config.clientId,
      connectionTimeout: this.config.connectionTimeoutMs,
      requestTimeout: this.config.requestTimeoutMs,
      enforceRequestTimeout: true,
      metadataMaxAge: 300_000,
      retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 1000 },
      allowAutoTopicCreation: false,
      isolationLevel: this.isolation === 'read_committed' ? 1 : 0,
    })
  }

  private async connected(): Promise<any> {
    if (this.cluster === null) this.cluster = this.newCluster()
    if (!this.cluster.isConnected()) await this.cluster.connect()
    return this.cluster
  }

  private async reset(): Promise<void> {
    const c = this.cluster
    this.cluster = null
    if (c !== null) await c.disconnect().catch(() => {})
  }

  private retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retrying(what, this.config.apiTimeoutMs, this.errorClass, this.config.brokers, fn, () => this.reset())
  }

  /** Topics (internal ones excluded) and their partition ids, ascending. */
  async topics(): Promise<Map<string, number[]>> {
    return this.retry('read the cluster metadata', async () => this.topicsOnce(await this.connected()))
  }

  private async topicsOnce(c: any): Promise<Map<string, number[]>> {
    {
      await c.brokerPool.refreshMetadata([])
      const out = new Map<string, number[]>()
      for (const t of c.brokerPool.metadata.topicMetadata as { topic: string; isInternal: boolean; topicErrorCode: number; partitionMetadata: { partitionId: number }[] }[]) {
        if (t.isInternal || t.topicErrorCode !== 0) continue
        out.set(t.topic, t.partitionMetadata.map((p) => p.partitionId).sort((a, b) => a - b))
      }
      return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    }
  }

  /**
   * Earliest, latest (the high watermark, or the last stable offset under read_committed) or
   * by-timestamp offsets of partitions, keyed `topic` → partition → offset. Partitions must exist.
   */
  async offsets(tps: readonly TopicPartition[], which: 'earliest' | 'latest' | { timestamp: number }): Promise<Map<string, Map<number, number>>> {
    const out = new Map<string, Map<number, number>>()
    if (tps.length === 0) return out
    const byTopic = new Map<string, number[]>()
    for (const tp of tps) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition])
    const label = typeof which === 'string' ? which : `timestamp ${which.timestamp}`
    return this.retry(`list the ${label} offsets of ${[...byTopic.keys()].join(', ')}`, async () => {
      const c = await this.connected()
      await c.brokerPool.refreshMetadata([])
      // partitions deleted meanwhile are left out (the caller treats them as gone)
      const known = new Map<string, Set<number>>()
      for (const t of c.brokerPool.metadata.topicMetadata as { topic: string; topicErrorCode: number; partitionMetadata: { partitionId: number }[] }[]) {
        if (t.topicErrorCode === 0) known.set(t.topic, new Set(t.partitionMetadata.map((p) => p.partitionId)))
      }
      const existing = [...byTopic].map(([topic, ps]) => [topic, ps.filter((p) => known.get(topic)?.has(p))] as const).filter(([, ps]) => ps.length > 0)
      if (existing.length === 0) return out
      const res = await c.fetchTopicsOffset(existing.map(([topic, partitions]) => ({
        topic,
        partitions: partitions.map((partition) => ({ partition })),
        ...(typeof which === 'string' ? { fromBeginning: which === 'earliest' } : { fromTimestamp: which.timestamp }),
      })))
      for (const t of res as { topic: string; partitions: { partition: number; offset: string }[] }[]) {
        const m = new Map<number, number>()
        for (const p of t.partitions) m.set(p.partition, Number(p.offset))
        out.set(t.topic, m)
      }
      return out
    })
  }

  /**
   * Reads every range `[from, until)` into one set of columns (ranges read in parallel, rows grouped by fetch response).
   * Offsets that the log no longer holds are reported to `onDataLoss`, which throws or lets the read
   * continue from the earliest available offset (Spark's failOnDataLoss).
   */
  async fetch(ranges: readonly FetchRange[], opts: FetchOptions): Promise<RecordColumns> {
    const out = new RecordColumns(opts.includeHeaders)
    const cursors: PartitionCursor[] = ranges.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      position: r.from, until: r.until, aborted: [], abortedProducers: new Set(), readCommitted: opts.isolation === 'read_committed',
    }))
    const decompress: Decompress = async (codec, data) => {
      const factory = kafkajs.CompressionCodecs?.[codec]
      if (typeof factory !== 'function') {
        throw new this.errorClass('KAFKA_UNSUPPORTED_COMPRESSION', `Record batch compressed with codec ${['none', 'gzip', 'snappy', 'lz4', 'zstd'][codec] ?? codec}: register a decompressor in kafkajs' CompressionCodecs (e.g. kafkajs-snappy, @kafkajs/zstd)`)
      }
      return new Uint8Array(await factory().decompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength)))
    }
    const pending = () => ranges.map((_, i) => i).filter((i) => cursors[i]!.position < cursors[i]!.until)
    let stalls = 0
    while (pending().length > 0) {
      const progress = await this.retry(`fetch records of ${describeRanges(ranges, pending())}`, async () => {
        let moved = false
        const c = await this.connected()
        const todo = pending()
        const byLeader = new Map<number, number[]>()
        for (const i of todo) {
          const r = ranges[i]!
          let leaders: Record<string, number[]> = {}
          try {
            leaders = c.findLeaderForPartitions(r.topic, [r.partition])
          } catch {
            // not in the cached metadata: look again below
          }
          let nodeId = Object.keys(leaders)[0]
          if (nodeId === undefined) {
            // deleted, or metadata not there yet: only fresh metadata without the partition means deleted
            if (!((await this.topicsOnce(c)).get(r.topic)?.includes(r.partition) ?? false)) {
              moved = true
              this.lost(opts, r, cursors[i]!, 'TOPIC_DELETED', null, `Topic ${r.topic} partition ${r.partition} no longer exists (deleted?); offsets ${cursors[i]!.position}–${r.until - 1} cannot be read`)
              continue
            }
            leaders = c.findLeaderForPartitions(r.topic, [r.partition])
            nodeId = Object.keys(leaders)[0]
          }
          if (nodeId === undefined || Number(nodeId) < 0) {
            const e = new Error(`No leader for ${r.topic}-${r.partition} (broker starting or electing)`) as Error & { retriable: boolean }
            e.retriable = true
            throw e
          }
          byLeader.set(Number(nodeId), [...(byLeader.get(Number(nodeId)) ?? []), i])
        }
        for (const [nodeId, idx] of byLeader) {
          const broker = await c.findBroker({ nodeId })
          const topics = new Map<string, { partition: number; fetchOffset: string; maxBytes: number }[]>()
          for (const i of idx) {
            const r = ranges[i]!
            topics.set(r.topic, [...(topics.get(r.topic) ?? []), { partition: r.partition, fetchOffset: String(cursors[i]!.position), maxBytes: opts.partitionMaxBytes }])
          }
          const request = fetchV11({
            replicaId: -1,
            maxWaitTime: 50,
            minBytes: 1,
            maxBytes: opts.maxBytes,
            isolationLevel: opts.isolation === 'read_committed' ? 1 : 0,
            topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })),
          })
          const res = await broker.connectionPool.send({
            request,
            response: { decode: async (payload: Buffer) => decodeFetchV11(payload), parse: async (x: unknown) => x },
            requestTimeout: this.config.requestTimeoutMs + 50,
          }) as ReturnType<typeof decodeFetchV11>
          if (res.errorCode !== 0) throw protocolError(res.errorCode, `fetch from broker ${nodeId}`)
          for (const t of res.topics) {
            for (const p of t.partitions) {
              const i = idx.find((j) => ranges[j]!.topic === t.topic && ranges[j]!.partition === p.partition)
              if (i === undefined) continue
              const r = ranges[i]!, cur = cursors[i]!
              if (p.errorCode === OFFSET_OUT_OF_RANGE) {
                moved = true
                await this.outOfRange(opts, r, cur)
                continue
              }
              if (p.errorCode === UNKNOWN_TOPIC_OR_PARTITION || p.errorCode === UNKNOWN_TOPIC_ID) {
                const still = (await this.topicsOnce(c)).get(r.topic)?.includes(r.partition) ?? false
                if (still) throw protocolError(p.errorCode, `fetch ${r.topic}-${r.partition}`)
                moved = true
                this.lost(opts, r, cur, 'TOPIC_DELETED', null, `Topic ${r.topic} partition ${r.partition} no longer exists (deleted?); offsets ${cur.position}–${r.until - 1} cannot be read`)
                continue
              }
              if (p.errorCode !== 0) throw protocolError(p.errorCode, `fetch ${r.topic}-${r.partition} at offset ${cur.position}`)
              const before = cur.position
              if (opts.isolation === 'read_committed') cur.aborted = p.aborted
              if (p.records !== null && p.records.length > 0) await decodeRecordSet(p.records, cur, out, decompress)
              if (cur.position > before) moved = true
              else {
                const end = opts.isolation === 'read_committed' ? p.lastStableOffset : p.highWatermark
                if (end >= 0 && end <= cur.position && end < r.until) {
                  // the log ends before the range: it was truncated or the topic recreated
                  moved = true
                  this.lost(opts, r, cur, 'OFFSETS_CHANGED', null, `Topic ${r.topic} partition ${r.partition} ends at offset ${end}, before the offsets ${cur.position}–${r.until - 1} that this batch must read (topic recreated or log truncated)`)
                }
              }
            }
          }
        }
        return moved
      })
      if (progress) stalls = 0
      else if (++stalls > 200) {
        throw new this.errorClass('KAFKA_FETCH_STALLED', `Fetching ${describeRanges(ranges, pending())} made no progress in 200 fetches`, { retriable: true })
      }
    }
    return out
  }

  private lost(opts: FetchOptions, r: FetchRange, cur: PartitionCursor, kind: DataLossEvent['kind'], resumeAt: number | null, message: string): void {
    opts.onDataLoss({ topic: r.topic, partition: r.partition, offset: cur.position, kind, resumeAt, message })
    cur.position = resumeAt === null ? cur.until : Math.max(cur.position, Math.min(resumeAt, cur.until))
  }

  private async outOfRange(opts: FetchOptions, r: FetchRange, cur: PartitionCursor): Promise<void> {
    const tp = [{ topic: r.topic, partition: r.partition }]
    const earliest = (await this.offsets(tp, 'earliest')).get(r.topic)?.get(r.partition)
    const latest = (await this.offsets(tp, 'latest')).get(r.topic)?.get(r.partition)
    if (earliest !== undefined && cur.position < earliest) {
      this.lost(opts, r, cur, 'OFFSET_OUT_OF_RANGE', earliest,
        `Cannot fetch offset ${cur.position} of topic ${r.topic} partition ${r.partition}: the earliest offset is now ${earliest} (records deleted by retention or deleteRecords); ` +
          `${Math.min(earliest, r.until) - cur.position} records of this batch are lost`)
    } else {
      this.lost(opts, r, cur, 'OFFSETS_CHANGED', null,
        `Cannot fetch offset ${cur.position} of topic ${r.topic} partition ${r.partition}: the partition now holds offsets ${earliest ?? '?'}–${latest ?? '?'} (topic recreated or log truncated)`)
    }
  }

  /**
   * Commits offsets to a consumer group outside any group membership (generation -1), so that lag
   * tools (kafka-consumer-groups.sh, Burrow, …) see the query's progress. Sluice never reads them back.
   */
  async commitGroupOffsets(groupId: string, offsets: ReadonlyMap<string, ReadonlyMap<number, number>>): Promise<void> {
    await this.retry(`commit offsets to consumer group ${groupId}`, async () => {
      const c = await this.connected()
      const coordinator = await c.findGroupCoordinator({ groupId })
      await coordinator.offsetCommit({
        groupId,
        groupGenerationId: -1,
        memberId: '',
        topics: [...offsets].map(([topic, m]) => ({ topic, partitions: [...m].map(([partition, offset]) => ({ partition, offset: String(offset) })) })),
      })
    })
  }

  async close(): Promise<void> {
    await this.reset()
  }
}

function describeRanges(ranges: readonly FetchRange[], idx: readonly number[]): string {
  const shown = idx.slice(0, 4).map((i) => `${ranges[i]!.topic}-${ranges[i]!.partition} [${ranges[i]!.from}, ${ranges[i]!.until})`)
  return shown.join(', ') + (idx.length > 4 ? ` and ${idx.length - 4} more` : '')
}

function protocolError(code: number, what: string): Error {
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as any
  const e = createErrorFromCode(code)
  const err = new Error(`${what}: ${e.type} (${e.message})`) as Error & { retriable: boolean; type: string }
  err.retriable = RETRIABLE_FETCH_ERRORS.has(code) || e.retriable === true
  err.type = e.type
  err.name = 'KafkaProtocolError'
  return err
}

/** The kafkajs client object (for producers and admin), isolated here so callers never import kafkajs. */
export function createKafkajs(config: KafkaConnectionConfig): any {
  return new kafkajs.Kafka(kafkajsConfig(config))
}

/** kafkajs' Java-compatible murmur2 partitioner (same key → same partition as the Java client). */
export const defaultPartitioner = (): any => kafkajs.Partitioners.DefaultPartitioner

export { RecordColumns }
