/**
 * Options of the Kafka source and sink, as Spark's Structured Streaming + Kafka Integration Guide
 * names them (https://spark.apache.org/docs/latest/structured-streaming-kafka-integration.html),
 * validated with valibot. `kafka.*` options are Kafka client properties; only those Sluice can map
 * to its client are accepted, and the ones Spark rejects are rejected with Spark's advice.
 */
import { readFileSync } from 'node:fs'
import * as v from 'valibot'
import { type OptionValue, WRITER_OPTIONS, parseOptions } from '../api/options.ts'
import { OptionError } from '../errors.ts'
import type { Isolation, KafkaConnectionConfig } from './client.ts'

const positiveInt = v.pipe(v.union([v.number(), v.string()]), v.transform(Number), v.integer(), v.minValue(1))
const bool = v.pipe(v.union([v.boolean(), v.picklist(['true', 'false', 'TRUE', 'FALSE', 'True', 'False'])]), v.transform((x) => x === true || String(x).toLowerCase() === 'true'))
const str = v.pipe(v.union([v.string(), v.number(), v.boolean()]), v.transform(String), v.minLength(1))

/** Kafka client properties both the source and the sink accept (with the `kafka.` prefix). */
const CONNECTION_OPTIONS = {
  'kafka.bootstrap.servers': str,
  'kafka.client.id': str,
  'kafka.request.timeout.ms': positiveInt,
  'kafka.default.api.timeout.ms': positiveInt,
  'kafka.socket.connection.setup.timeout.ms': positiveInt,
  'kafka.security.protocol': v.picklist(['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL']),
  'kafka.sasl.mechanism': v.picklist(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']),
  'kafka.sasl.jaas.config': str,
  'kafka.ssl.ca.location': str,
}

export const SOURCE_OPTIONS = {
  ...CONNECTION_OPTIONS,
  subscribe: str,
  subscribePattern: str,
  assign: str,
  startingOffsets: str,
  endingOffsets: str,
  maxOffsetsPerTrigger: positiveInt,
  failOnDataLoss: bool,
  includeHeaders: bool,
  /** Sluice extension: after each committed batch, commit its offsets to this consumer group (monitoring only). */
  commitOffsetsToGroup: str,
  'kafka.isolation.level': v.picklist(['read_uncommitted', 'read_committed']),
  'kafka.max.partition.fetch.bytes': positiveInt,
  'kafka.fetch.max.bytes': positiveInt,
}

export const SINK_OPTIONS = {
  ...CONNECTION_OPTIONS,
  topic: str,
  /** Sluice extension: 'at-least-once' (Spark's only guarantee, the default) or 'exactly-once' (a Kafka transaction per micro-batch). */
  deliveryGuarantee: v.picklist(['at-least-once', 'exactly-once']),
  'kafka.acks': v.picklist(['all', '-1', '1', '0', -1, 1, 0]),
  'kafka.compression.type': v.picklist(['none', 'gzip']),
  'kafka.transactional.id': str,
  'kafka.transaction.timeout.ms': positiveInt,
  'kafka.delivery.timeout.ms': positiveInt,
  'kafka.batch.size': positiveInt,
}

/** Kafka properties Spark refuses, with its explanation (KafkaSourceProvider.validateGeneralOptions / validateSinkOptions). */
const REJECTED: Record<string, string> = {
  'kafka.group.id': "Sluice never joins a consumer group (offsets live in the checkpoint). For lag monitoring set the Sluice option 'commitOffsetsToGroup' to a group id",
  'kafka.auto.offset.reset': "Kafka option 'auto.offset.reset' is not supported. Instead set the source option 'startingOffsets' to 'earliest' or 'latest' to specify where to start. Structured Streaming manages which offsets are consumed internally, rather than relying on the kafkaConsumer",
  'kafka.key.deserializer': "Kafka option 'key.deserializer' is not supported, as keys are deserialized as byte arrays. Use DataFrame operations to explicitly deserialize the keys",
  'kafka.value.deserializer': "Kafka option 'value.deserializer' is not supported, as values are deserialized as byte arrays. Use DataFrame operations to explicitly deserialize the values",
  'kafka.key.serializer': "Kafka option 'key.serializer' is not supported, as keys are serialized as byte arrays. Use DataFrame operations to explicitly serialize the keys into either strings or byte arrays",
  'kafka.value.serializer': "Kafka option 'value.serializer' is not supported, as values are serialized as byte arrays. Use DataFrame operations to explicitly serialize the values into either strings or byte arrays",
  'kafka.enable.auto.commit': "Kafka option 'enable.auto.commit' is not supported: offsets are committed to the checkpoint, not to Kafka",
  'kafka.interceptor.classes': "Kafka option 'interceptor.classes' is not supported: it would interpret records as byte arrays",
}

function validate<T extends Record<string, v.GenericSchema>>(what: string, table: T, given: ReadonlyMap<string, OptionValue>) {
  for (const k of given.keys()) {
    const reason = REJECTED[k]
    if (reason !== undefined) throw new OptionError('UNSUPPORTED_OPTION', `${what} option '${k}': ${reason}`)
  }
  return parseOptions(what, table, given)
}

/** Per-topic, per-partition offsets as Spark writes them: `{"topic":{"0":23,"1":-1}}` (-2 = earliest, -1 = latest). */
export type PartitionOffsets = Record<string, Record<string, number>>

export type OffsetSpec = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'json'; offsets: PartitionOffsets }

export type Subscription =
  | { kind: 'subscribe'; topics: string[] }
  | { kind: 'subscribePattern'; pattern: RegExp; source: string }
  | { kind: 'assign'; partitions: Record<string, number[]> }

export interface KafkaSourceOptions {
  readonly connection: KafkaConnectionConfig
  readonly subscription: Subscription
  readonly startingOffsets: OffsetSpec
  readonly endingOffsets: OffsetSpec
  readonly maxOffsetsPerTrigger: number | undefined
  readonly failOnDataLoss: boolean
  readonly includeHeaders: boolean
  readonly commitOffsetsToGroup: string | undefined
  readonly isolation: Isolation
  readonly partitionMaxBytes: number
  readonly fetchMaxBytes: number
}

export interface KafkaSinkOptions {
  readonly connection: KafkaConnectionConfig
  readonly topic: string | undefined
  readonly exactlyOnce: boolean
  readonly acks: -1 | 0 | 1
  readonly compression: 'none' | 'gzip'
  readonly transactionalId: string | undefined
  readonly transactionTimeoutMs: number
  readonly deliveryTimeoutMs: number
  readonly batchBytes: number
  readonly checkpointLocation: string | undefined
}

function invalid(key: string, value: unknown, expected: string): never {
  throw new OptionError('INVALID_OPTION', `Invalid value for Kafka option '${key}': ${JSON.stringify(value)}; expected ${expected}`)
}

function parseJsonOption(key: string, text: string, expected: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return invalid(key, text, expected)
  }
}

const OFFSETS_SHAPE = `'earliest', 'latest' or JSON such as {"topicA":{"0":23,"1":-1},"topicB":{"0":-2}} (-2 = earliest, -1 = latest)`

function parseOffsetSpec(key: string, text: string | undefined, dflt: OffsetSpec): OffsetSpec {
  if (text === undefined) return dflt
  const t = text.trim()
  if (t.toLowerCase() === 'earliest') return { kind: 'earliest' }
  if (t.toLowerCase() === 'latest') return { kind: 'latest' }
  const j = parseJsonOption(key, t, OFFSETS_SHAPE)
  if (j === null || typeof j !== 'object' || Array.isArray(j)) invalid(key, text, OFFSETS_SHAPE)
  const offsets: PartitionOffsets = {}
  for (const [topic, parts] of Object.entries(j as Record<string, unknown>)) {
    if (parts === null || typeof parts !== 'object' || Array.isArray(parts)) invalid(key, text, OFFSETS_SHAPE)
    offsets[topic] = {}
    for (const [p, o] of Object.entries(parts as Record<string, unknown>)) {
      if (!/^\d+$/.test(p) || typeof o !== 'number' || !Number.isInteger(o) || o < -2) invalid(key, text, OFFSETS_SHAPE)
      offsets[topic]![p] = o as number
    }
  }
  return { kind: 'json', offsets }
}

function parseJaas(text: string): { username: string; password: string } {
  const user = /username\s*=\s*"([^"]*)"/.exec(text)
  const pass = /password\s*=\s*"([^"]*)"/.exec(text)
  if (!user || !pass) {
    invalid('kafka.sasl.jaas.config', '<hidden>', 'a JAAS line with username="…" and password="…", e.g. org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";')
  }
  return { username: user[1]!, password: pass[1]! }
}

type Conn = { [K in keyof typeof CONNECTION_OPTIONS]?: v.InferOutput<(typeof CONNECTION_OPTIONS)[K]> }

function connectionConfig(o: Conn, side: 'source' | 'sink'): KafkaConnectionConfig {
  const servers = o['kafka.bootstrap.servers']
  if (servers === undefined) {
    throw new OptionError('MISSING_OPTION', `Option 'kafka.bootstrap.servers' must be specified for configuring Kafka consumer/producer (e.g. option('kafka.bootstrap.servers', 'host1:9092,host2:9092'))`)
  }
  const brokers = servers.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const b of brokers) if (!/^[^\s:]+:\d+$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d+$/.test(b)) invalid('kafka.bootstrap.servers', servers, 'a comma-separated list of host:port')
  const protocol = o['kafka.security.protocol'] ?? 'PLAINTEXT'
  const ssl = protocol === 'SSL' || protocol === 'SASL_SSL'
  const sasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL'
  let sslConfig: KafkaConnectionConfig['ssl']
  if (ssl) {
    const ca = o['kafka.ssl.ca.location']
    sslConfig = ca === undefined ? true : { ca: [readFileSync(ca, 'utf8')] }
  }
  let saslConfig: KafkaConnectionConfig['sasl']
  if (sasl) {
    const jaas = o['kafka.sasl.jaas.config']
    if (jaas === undefined) throw new OptionError('MISSING_OPTION', `kafka.security.protocol=${protocol} needs 'kafka.sasl.jaas.config' (username and password)`)
    const mech = (o['kafka.sasl.mechanism'] ?? 'PLAIN').toLowerCase() as 'plain' | 'scram-sha-256' | 'scram-sha-512'
    saslConfig = { mechanism: mech, ...parseJaas(jaas) }
  }
  return {
    brokers,
    clientId: o['kafka.client.id'] ?? `sluice-${side}`,
    ...(sslConfig !== undefined ? { ssl: sslConfig } : {}),
    ...(saslConfig !== undefined ? { sasl: saslConfig } : {}),
    connectionTimeoutMs: o['kafka.socket.connection.setup.timeout.ms'] ?? 10_000,
    requestTimeoutMs: o['kafka.request.timeout.ms'] ?? 30_000,
    apiTimeoutMs: o['kafka.default.api.timeout.ms'] ?? 60_000,
  }
}

/**
 * The source's options (Spark's KafkaSourceProvider rules: exactly one of subscribe /
 * subscribePattern / assign; `endingOffsets` only for batch reads; `startingOffsets` 'latest' not
 * for batch reads, `endingOffsets` 'earliest' never).
 * @throws OptionError UNKNOWN_OPTION, INVALID_OPTION, MISSING_OPTION, UNSUPPORTED_OPTION
 */
export function parseSourceOptions(given: ReadonlyMap<string, OptionValue>, streaming: boolean): KafkaSourceOptions {
  const what = streaming ? 'Kafka source (readStream)' : 'Kafka source (read)'
  const o = validate(what, SOURCE_OPTIONS, given)
  const strategies = (['subscribe', 'subscribePattern', 'assign'] as const).filter((k) => o[k] !== undefined)
  if (strategies.length !== 1) {
    throw new OptionError(strategies.length === 0 ? 'MISSING_OPTION' : 'INVALID_OPTION',
      `One of the options 'subscribe', 'subscribePattern' or 'assign' must be specified for the Kafka source${strategies.length > 1 ? ` (got ${strategies.join(', ')})` : ''}`)
  }
  let subscription: Subscription
  if (o.subscribe !== undefined) {
    const topics = o.subscribe.split(',').map((t) => t.trim()).filter((t) => t !== '')
    if (topics.length === 0) invalid('subscribe', o.subscribe, 'a comma-separated list of topics')
    subscription = { kind: 'subscribe', topics }
  } else if (o.subscribePattern !== undefined) {
    let pattern: RegExp
    try {
      pattern = new RegExp(`^(?:${o.subscribePattern})$`)
    } catch {
      invalid('subscribePattern', o.subscribePattern, 'a regular expression over topic names (e.g. topic-.*)')
    }
    subscription = { kind: 'subscribePattern', pattern, source: o.subscribePattern }
  } else {
    const shape = 'JSON such as {"topicA":[0,1],"topicB":[2,4]}'
    const j = parseJsonOption('assign', o.assign!, shape)
    if (j === null || typeof j !== 'object' || Array.isArray(j)) invalid('assign', o.assign, shape)
    const partitions: Record<string, number[]> = {}
    for (const [topic, ps] of Object.entries(j as Record<string, unknown>)) {
      if (!Array.isArray(ps) || !ps.every((p) => Number.isInteger(p) && p >= 0)) invalid('assign', o.assign, shape)
      partitions[topic] = [...new Set(ps as number[])].sort((a, b) => a - b)
    }
    if (Object.keys(partitions).length === 0) invalid('assign', o.assign, shape)
    subscription = { kind: 'assign', partitions }
  }
  if (streaming && o.endingOffsets !== undefined) {
    throw new OptionError('INVALID_OPTION', "Option 'endingOffsets' is not valid for streaming queries: a stream reads until it is stopped (use a batch read, session.read, for a bounded range)")
  }
  const startingOffsets = parseOffsetSpec('startingOffsets', o.startingOffsets, streaming ? { kind: 'latest' } : { kind: 'earliest' })
  const endingOffsets = parseOffsetSpec('endingOffsets', o.endingOffsets, { kind: 'latest' })
  if (!streaming && startingOffsets.kind === 'latest') {
    throw new OptionError('INVALID_OPTION', "Option 'startingOffsets' = 'latest' is not valid for batch queries (it would read nothing)")
  }
  if (!streaming && startingOffsets.kind === 'json' && Object.values(startingOffsets.offsets).some((ps) => Object.values(ps).includes(-1))) {
    throw new OptionError('INVALID_OPTION', "Option 'startingOffsets' for batch queries cannot use -1 (latest) for a partition")
  }
  if (endingOffsets.kind === 'earliest' || (endingOffsets.kind === 'json' && Object.values(endingOffsets.offsets).some((ps) => Object.values(ps).includes(-2)))) {
    throw new OptionError('INVALID_OPTION', "Option 'endingOffsets' cannot be 'earliest' (or -2 for a partition): it would read nothing")
  }
  if (o.maxOffsetsPerTrigger !== undefined && !streaming) {
    throw new OptionError('INVALID_OPTION', "Option 'maxOffsetsPerTrigger' only applies to streaming queries (readStream)")
  }
  return {
    connection: connectionConfig(o, 'source'),
    subscription,
    startingOffsets,
    endingOffsets,
    maxOffsetsPerTrigger: o.maxOffsetsPerTrigger,
    failOnDataLoss: o.failOnDataLoss ?? true,
    includeHeaders: o.includeHeaders ?? false,
    commitOffsetsToGroup: o.commitOffsetsToGroup,
    isolation: o['kafka.isolation.level'] ?? 'read_uncommitted',
    partitionMaxBytes: o['kafka.max.partition.fetch.bytes'] ?? 8 * 1024 * 1024,
    fetchMaxBytes: o['kafka.fetch.max.bytes'] ?? 50 * 1024 * 1024,
  }
}

/** Option names the sink takes besides the writer's (for DataStreamWriter's unknown-option check). */
export const SINK_OPTION_NAMES: readonly string[] = [...Object.keys(SINK_OPTIONS), ...Object.keys(REJECTED)]

/**
 * The sink's options; writer options (checkpointLocation, …) are passed through untouched.
 * @throws OptionError UNKNOWN_OPTION, INVALID_OPTION, MISSING_OPTION, UNSUPPORTED_OPTION
 */
export function parseSinkOptions(given: ReadonlyMap<string, OptionValue>): KafkaSinkOptions {
  const own = new Map([...given].filter(([k]) => !(k in WRITER_OPTIONS)))
  const o = validate('Kafka sink (writeStream)', SINK_OPTIONS, own)
  const acks = o['kafka.acks'] === undefined || o['kafka.acks'] === 'all' ? -1 : (Number(o['kafka.acks']) as -1 | 0 | 1)
  const exactlyOnce = o.deliveryGuarantee === 'exactly-once'
  if (exactlyOnce && acks !== -1) {
    throw new OptionError('INVALID_OPTION', "deliveryGuarantee 'exactly-once' needs kafka.acks = all (transactions require acknowledgement by all in-sync replicas)")
  }
  const checkpoint = given.get('checkpointLocation')
  return {
    connection: connectionConfig(o, 'sink'),
    topic: o.topic,
    exactlyOnce,
    acks,
    compression: o['kafka.compression.type'] ?? 'none',
    transactionalId: o['kafka.transactional.id'],
    transactionTimeoutMs: o['kafka.transaction.timeout.ms'] ?? 60_000,
    deliveryTimeoutMs: o['kafka.delivery.timeout.ms'] ?? 120_000,
    batchBytes: o['kafka.batch.size'] ?? 512 * 1024,
    checkpointLocation: checkpoint === undefined ? undefined : String(checkpoint),
  }
}

