/**
 * The Kafka source, as Spark's KafkaMicroBatchStream / KafkaSource (spark-sql-kafka-0-10) behaves:
 *
 * - Rows: `key` binary, `value` binary, `topic` string, `partition` int, `offset` long, `timestamp`
 *   timestamp (µs; Kafka's ms × 1000), `timestampType` int (0 = CreateTime, 1 = LogAppendTime), and
 *   with `includeHeaders` = true `headers` — a string holding a JSON array of `{"key","value"}` (Sluice
 *   has no array type yet; a value is a string when it is UTF-8, else `{"base64": …}`).
 * - Offsets: `{"topic":{"0":123,"1":456}}`, the next offset to read per partition, recorded in the
 *   checkpoint's offsets log before each batch. A batch reads `[start, end)` of every partition, so a
 *   batch re-run after a crash reads exactly the same records (as long as Kafka still holds them).
 * - `startingOffsets` (streaming default 'latest', batch default 'earliest') applies to a new query
 *   only: it is resolved once and written to `<checkpoint>/sources/0/0`; a restarted query resumes
 *   from its checkpoint. Partitions that appear later (new partitions, new topics matching
 *   `subscribePattern`) are read from their earliest offset.
 * - `maxOffsetsPerTrigger` splits the limit across partitions in proportion to their backlog, never
 *   starving a partition (Spark's KafkaMicroBatchStream.rateLimit).
 * - Lost data (offsets aged out or deleted, topic deleted, partition gone, offsets moved backwards)
 *   fails the query with SourceError `KAFKA_DATA_LOSS` when `failOnDataLoss` is true (default),
 *   and is logged and skipped otherwise (Spark's reportDataLoss).
 * - Broker unavailable: every call retries for `kafka.default.api.timeout.ms` (60 s), then the query
 *   fails with SourceError `KAFKA_UNAVAILABLE` (retriable: restart the query to resume).
 * - `commitOffsetsToGroup` (Sluice extension; Spark never commits): after each batch is committed
 *   to the checkpoint, its end offsets are committed to that consumer group, for lag monitoring only.
 */
import { type Batch, type Schema } from '../batch.ts'
import { AnalysisError, OptionError, SourceError } from '../errors.ts'
import { type Fs, joinPath } from '../fs.ts'
import { platform } from '../platform.ts'
import type { Offset, ReadLimit, Source, SourceContext, SourceProvider } from '../sources/source.ts'
import { type DataLossEvent, type FetchRange, KafkaReader, type TopicPartition } from './client.ts'
import type { KafkaSourceOptions, OffsetSpec, PartitionOffsets } from './options.ts'
import { kafkaSourceSchema, recordsToBatch } from './records.ts'

const INITIAL_OFFSETS_VERSION = 'v1'

/** The platform's log (stderr on Node), or stderr when only `sluice/kafka` was imported. */
function log(message: string): void {
  try {
    platform().log(message)
  } catch {
    console.error(`[sluice] ${message}`)
  }
}

/** Sorted `topic → partition → offset` as plain JSON (stable key order, so equal offsets compare equal). */
export function toOffsetJson(m: ReadonlyMap<string, ReadonlyMap<number, number>>): PartitionOffsets {
  const out: PartitionOffsets = {}
  for (const topic of [...m.keys()].sort()) {
    const parts = m.get(topic)!
    if (parts.size === 0) continue
    const o: Record<string, number> = {}
    for (const p of [...parts.keys()].sort((a, b) => a - b)) o[String(p)] = parts.get(p)!
    out[topic] = o
  }
  return out
}

export function fromOffsetJson(o: Offset | null): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>()
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return out
  for (const [topic, parts] of Object.entries(o)) {
    const m = new Map<number, number>()
    for (const [p, off] of Object.entries(parts as Record<string, number>)) m.set(Number(p), off)
    out.set(topic, m)
  }
  return out
}

const get = (m: ReadonlyMap<string, ReadonlyMap<number, number>>, tp: TopicPartition) => m.get(tp.topic)?.get(tp.partition)
const tpName = (tp: TopicPartition) => `${tp.topic}-${tp.partition}`

function flatten(m: ReadonlyMap<string, readonly number[] | ReadonlyMap<number, number>>): TopicPartition[] {
  const out: TopicPartition[] = []
  for (const [topic, ps] of m) for (const partition of Array.isArray(ps) ? ps : [...(ps as ReadonlyMap<number, number>).keys()]) out.push({ topic, partition })
  return out
}

/**
 * Spark's rateLimit: `limit` offsets split across partitions in proportion to their backlog
 * (`until − from`); a partition's share is floored, or rounded up when below 1 so that none starves.
 */
export function rateLimit(limit: number, from: ReadonlyMap<string, ReadonlyMap<number, number>>, until: ReadonlyMap<string, ReadonlyMap<number, number>>): Map<string, Map<number, number>> {
  const sizes = new Map<string, number>()
  let total = 0
  for (const tp of flatten(until)) {
    const begin = get(from, tp)
    if (begin === undefined) continue
    const size = get(until, tp)! - begin
    if (size > 0) {
      sizes.set(tpName(tp), size)
      total += size
    }
  }
  const out = new Map<string, Map<number, number>>()
  for (const [topic, parts] of until) {
    const m = new Map<number, number>()
    for (const [partition, end] of parts) {
      const size = sizes.get(tpName({ topic, partition }))
      if (total < 1 || size === undefined) {
        m.set(partition, end)
        continue
      }
      const begin = from.get(topic)!.get(partition)!
      const prorate = limit * (size / total)
      const share = prorate < 1 ? Math.ceil(prorate) : Math.floor(prorate)
      m.set(partition, Math.min(end, begin + share))
    }
    out.set(topic, m)
  }
  return out
}

export class KafkaSourceProvider implements SourceProvider {
  readonly kind = 'kafka'
  readonly schema: Schema
  readonly description: string
  readonly readLimit: ReadLimit

  constructor(readonly options: KafkaSourceOptions, readonly streaming: boolean) {
    this.schema = kafkaSourceSchema(options.includeHeaders)
    const s = options.subscription
    this.description = s.kind === 'subscribe'
      ? `KafkaV2[Subscribe[${s.topics.join(',')}]]`
      : s.kind === 'subscribePattern'
        ? `KafkaV2[SubscribePattern[${s.source}]]`
        : `KafkaV2[Assign[${Object.entries(s.partitions).flatMap(([t, ps]) => ps.map((p) => `${t}-${p}`)).join(', ')}]]`
    this.readLimit = options.maxOffsetsPerTrigger !== undefined ? { maxRows: options.maxOffsetsPerTrigger } : {}
  }

  async createSource(ctx: SourceContext): Promise<Source> {
    return new KafkaSource(this, ctx)
  }
}

class KafkaSource implements Source {
  readonly description: string
  private readonly reader: KafkaReader
  private readonly opts: KafkaSourceOptions
  private initial: Map<string, Map<number, number>> | null = null
  private lastGroupCommit = ''
  private groupCommit: Promise<void> = Promise.resolve()

  constructor(private readonly provider: KafkaSourceProvider, private readonly ctx: SourceContext) {
    this.opts = provider.options
    this.description = provider.description
    this.reader = new KafkaReader(this.opts.connection, this.opts.isolation, SourceError)
  }

  /** The partitions the subscription covers now. */
  private async assigned(): Promise<Map<string, number[]>> {
    const s = this.opts.subscription
    const topics = await this.reader.topics()
    const out = new Map<string, number[]>()
    if (s.kind === 'subscribe') {
      for (const t of [...s.topics].sort()) if (topics.has(t)) out.set(t, topics.get(t)!)
    } else if (s.kind === 'subscribePattern') {
      for (const [t, ps] of topics) if (s.pattern.test(t)) out.set(t, ps)
    } else {
      for (const t of Object.keys(s.partitions).sort()) {
        const existing = topics.get(t) ?? []
        const ps = s.partitions[t]!.filter((p) => existing.includes(p))
        if (ps.length > 0) out.set(t, ps)
      }
    }
    return out
  }

  private async resolve(spec: OffsetSpec, assigned: Map<string, number[]>, what: string): Promise<Map<string, Map<number, number>>> {
    const tps = flatten(assigned)
    if (spec.kind === 'earliest' || spec.kind === 'latest') return this.reader.offsets(tps, spec.kind)
    const given = new Map<string, Map<number, number>>()
    for (const [topic, ps] of Object.entries(spec.offsets)) given.set(topic, new Map(Object.entries(ps).map(([p, o]) => [Number(p), o])))
    const missing = tps.filter((tp) => get(given, tp) === undefined).map(tpName)
    const extra = flatten(given).filter((tp) => !(assigned.get(tp.topic) ?? []).includes(tp.partition)).map(tpName)
    if (missing.length > 0 || extra.length > 0) {
      throw new OptionError('INVALID_OPTION',
        `If ${what} contains specific offsets, you must specify all TopicPartitions. Use -1 for latest, -2 for earliest. ` +
          `Specified: ${flatten(given).map(tpName).join(', ')}; assigned: ${tps.map(tpName).join(', ')}${extra.length > 0 ? ` (${extra.join(', ')} do not exist)` : ''}`)
    }
    const needEarliest = tps.filter((tp) => get(given, tp) === -2)
    const needLatest = tps.filter((tp) => get(given, tp) === -1)
    const earliest = await this.reader.offsets(needEarliest, 'earliest')
    const latest = await this.reader.offsets(needLatest, 'latest')
    const out = new Map<string, Map<number, number>>()
    for (const tp of tps) {
      const o = get(given, tp)!
      const v = o === -2 ? get(earliest, tp) : o === -1 ? get(latest, tp) : o
      if (v === undefined) continue
      if (!out.has(tp.topic)) out.set(tp.topic, new Map())
      out.get(tp.topic)!.set(tp.partition, v)
    }
    return out
  }

  /** The offsets a new query starts from, resolved once and kept in `<checkpoint>/sources/0/0` (Spark's initial offset log). */
  private async initialOffsets(): Promise<Map<string, Map<number, number>>> {
    if (this.initial !== null) return this.initial
    const fs: Fs = this.ctx.fs
    const file = joinPath(this.ctx.metadataPath, '0')
    const persist = this.provider.streaming && this.ctx.metadataPath !== ''
    if (persist && (await fs.stat(file)) !== null) {
      const text = new TextDecoder().decode(await fs.read(file))
      const [version, json] = text.split('\n', 2)
      try {
        if (version !== INITIAL_OFFSETS_VERSION) throw new Error(`unknown version ${version}`)
        this.initial = fromOffsetJson(JSON.parse(json!) as Offset)
      } catch (cause) {
        throw new SourceError('CORRUPT_SOURCE_LOG', `The Kafka source's initial offsets ${file} are unreadable (${(cause as Error).message}); expected '${INITIAL_OFFSETS_VERSION}' and a JSON line`, { cause })
      }
      return this.initial
    }
    const resolved = await this.resolve(this.opts.startingOffsets, await this.assigned(), 'startingOffsets')
    if (persist) await fs.writeAtomic(file, `${INITIAL_OFFSETS_VERSION}\n${JSON.stringify(toOffsetJson(resolved))}`)
    this.initial = resolved
    return resolved
  }

  private reportDataLoss(message: string): void {
    if (this.opts.failOnDataLoss) {
      throw new SourceError('KAFKA_DATA_LOSS',
        `${message}. Some data may have been lost because they are not available in Kafka any more; either the data was aged out by Kafka or the topic may have been deleted before all the data in the topic was processed. ` +
          "If you want your streaming query to continue in such cases, set the source option 'failOnDataLoss' to 'false'.")
    }
    log(`Kafka source ${this.description}: ${message}. Some data may have been lost because they are not available in Kafka any more; ` +
      "if you want your streaming query to fail in such cases, set the source option 'failOnDataLoss' to 'true'.")
  }

  async latestOffset(start: Offset | null, limit: ReadLimit): Promise<Offset | null> {
    if (start !== null) this.commitToGroup(start)
    // a new query fixes its starting offsets before it looks for the end of its first batch
    if (start === null && this.provider.streaming) await this.initialOffsets()
    const assigned = await this.assigned()
    let until: Map<string, Map<number, number>>
    if (!this.provider.streaming) until = await this.resolve(this.opts.endingOffsets, assigned, 'endingOffsets')
    else until = await this.reader.offsets(flatten(assigned), 'latest')
    if (flatten(until).length === 0 && start === null) return null
    if (limit.maxRows !== undefined) {
      const from = start === null ? await this.initialOffsets() : fromOffsetJson(start)
      const fresh = flatten(until).filter((tp) => get(from, tp) === undefined)
      const merged = new Map([...from].map(([t, m]) => [t, new Map(m)]))
      for (const [topic, m] of await this.reader.offsets(fresh, 'earliest')) {
        if (!merged.has(topic)) merged.set(topic, new Map())
        for (const [p, o] of m) merged.get(topic)!.set(p, o)
      }
      until = rateLimit(limit.maxRows, merged, until)
    }
    return toOffsetJson(until)
  }

  async getBatch(start: Offset | null, end: Offset): Promise<Batch[]> {
    const from = start === null ? await this.initialOffsets() : fromOffsetJson(start)
    const until = fromOffsetJson(end)
    const fresh = flatten(until).filter((tp) => get(from, tp) === undefined)
    const freshStart = await this.reader.offsets(fresh, 'earliest')
    const gone = fresh.filter((tp) => get(freshStart, tp) === undefined)
    if (gone.length > 0) this.reportDataLoss(`Cannot find earliest offsets of ${gone.map(tpName).join(', ')}`)
    for (const tp of fresh) {
      const o = get(freshStart, tp)
      if (o !== undefined && o !== 0 && start !== null) this.reportDataLoss(`Added partition ${tpName(tp)} starts from ${o} instead of 0`)
    }
    const deleted = flatten(from).filter((tp) => get(until, tp) === undefined)
    if (deleted.length > 0 && this.provider.streaming) this.reportDataLoss(`${deleted.map(tpName).join(', ')} are gone`)
    const ranges: FetchRange[] = []
    for (const tp of flatten(until)) {
      const a = get(from, tp) ?? get(freshStart, tp)
      const b = get(until, tp)!
      if (a === undefined) continue
      if (b < a) {
        this.reportDataLoss(`Partition ${tpName(tp)}'s offset was changed from ${a} to ${b}`)
        continue
      }
      if (b > a) ranges.push({ ...tp, from: a, until: b })
    }
    if (ranges.length === 0) return []
    const records = await this.reader.fetch(ranges, {
      isolation: this.opts.isolation,
      includeHeaders: this.opts.includeHeaders,
      partitionMaxBytes: this.opts.partitionMaxBytes,
      maxBytes: this.opts.fetchMaxBytes,
      onDataLoss: (e: DataLossEvent) => this.reportDataLoss(e.message),
    })
    return records.n === 0 ? [] : [recordsToBatch(records, this.provider.schema)]
  }

  /** Fire-and-forget commit of a committed batch's end offsets to the monitoring group; one at a time, failures only logged. */
  private commitToGroup(offsets: Offset): void {
    const group = this.opts.commitOffsetsToGroup
    if (group === undefined) return
    const key = JSON.stringify(offsets)
    if (key === this.lastGroupCommit) return
    this.lastGroupCommit = key
    this.groupCommit = this.groupCommit.then(() => this.reader.commitGroupOffsets(group, fromOffsetJson(offsets))).catch((e: unknown) => {
      log(`Kafka source ${this.description}: could not commit offsets to consumer group ${group} (monitoring only): ${(e as Error).message}`)
    })
  }

  async stop(): Promise<void> {
    await this.groupCommit
    await this.reader.close()
  }
}

/** Spark refuses a user schema for Kafka: the row shape is fixed. */
export function checkNoUserSchema(schema: Schema | undefined): void {
  if (schema !== undefined) {
    throw new AnalysisError('USER_SCHEMA_NOT_ALLOWED', 'Kafka source has a fixed schema and cannot be set with a custom one (key, value, topic, partition, offset, timestamp, timestampType[, headers]); parse the value with from_json() instead')
  }
}
