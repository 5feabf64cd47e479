import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

// A real Apache Kafka broker for the Kafka tests, started with scripts/kafka.sh (KRaft, no Docker).
// The shared broker (127.0.0.1:19092) is leased per test process and stopped when the last lease
// goes; a test that restarts its broker gets a private one on other ports. If the broker cannot
// start, beforeAll throws and every test of the file FAILS with the reason (never skipped).

export const root = fileURLToPath(new URL('../..', import.meta.url))
const script = `${root}scripts/kafka.sh`

const require = createRequire(import.meta.url)
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const kafkajs = require('kafkajs') as any

export interface Broker {
  readonly bootstrap: string
  readonly env: NodeJS.ProcessEnv
  /** Stops the broker (SIGTERM, by the pid the script started) keeping its data. */
  stop(): Promise<void>
  /** Starts it again on the same data. */
  start(): Promise<void>
  /** Ends this process's use: the shared broker stops when no test process uses it any more. */
  release(): Promise<void>
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 1 << 22 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(
          `The Kafka tests need a real broker, and 'scripts/kafka.sh ${args.join(' ')}' failed (${err.message.split('\n')[0]}).\n` +
            `It needs Java 17+ and Maven 3 (Kafka's jars come from Maven Central; see docs/kafka.md).\n${stderr.trim().split('\n').slice(-25).join('\n')}`,
        ))
      } else resolve(stdout.trim())
    })
  })
}

/**
 * Starts (or joins) a broker. `private_` gives this test its own broker on `port` (and port+1 for
 * the controller) in its own directory, for tests that stop and restart it.
 */
export async function startBroker(opts: { private?: { port: number; name: string } } = {}): Promise<Broker> {
  const env: NodeJS.ProcessEnv = opts.private
    ? { SLUICE_KAFKA_PORT: String(opts.private.port), SLUICE_KAFKA_DIR: `${root}.kafka/${opts.private.name}` }
    : {}
  const lease = String(process.pid)
  const bootstrap = opts.private ? `127.0.0.1:${opts.private.port}` : '127.0.0.1:19092'
  await run(opts.private ? ['start'] : ['start', '--lease', lease], env)
  return {
    bootstrap,
    env,
    stop: async () => void (await run(['stop'], env)),
    start: async () => void (await run(['start', '--keep-data'], env)),
    release: async () => void (await run(opts.private ? ['stop'] : ['stop', '--lease', lease], env)),
  }
}

let topicSeq = 0
/** A topic name unique to this test process. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${topicSeq++}`
}

/** A kafkajs admin connected to `bootstrap` (test-side tooling: creating topics, reading offsets). */
export async function admin(bootstrap: string) {
  const kafka = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING, clientId: 'sluice-test' })
  const a = kafka.admin()
  await a.connect()
  return {
    kafka,
    raw: a,
    async createTopic(topic: string, numPartitions: number): Promise<void> {
      await a.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: true })
    },
    async endOffsets(topic: string): Promise<Record<string, number>> {
      const offs = (await a.fetchTopicOffsets(topic)) as { partition: number; high: string }[]
      return Object.fromEntries(offs.map((o) => [String(o.partition), Number(o.high)]))
    },
    async close(): Promise<void> {
      await a.disconnect()
    },
  }
}

export interface TestMessage {
  key?: string | Buffer | null
  value: string | Buffer | null
  partition?: number
  headers?: Record<string, string | Buffer>
  timestamp?: string
}

/** Produces messages (acks=all) in chunks, with the Java-compatible partitioner. */
export async function produce(bootstrap: string, topic: string, messages: readonly TestMessage[], chunk = 5000): Promise<void> {
  const kafka = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING, clientId: 'sluice-test-producer' })
  const p = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner })
  await p.connect()
  try {
    for (let i = 0; i < messages.length; i += chunk) await p.send({ topic, acks: -1, messages: messages.slice(i, i + chunk) })
  } finally {
    await p.disconnect()
  }
}

/** What the source, sink and data-loss suites share: a broker, an admin client, a session and a temporary directory. */
export interface KafkaTestEnv {
  broker: Broker
  adm: Awaited<ReturnType<typeof admin>>
  session: import('../../src/index.node.ts').SluiceSession
  dir: string
}

export async function openKafkaTestEnv(dirPrefix: string): Promise<KafkaTestEnv> {
  const { SluiceSession } = await import('../../src/index.node.ts')
  const { mkdtempSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const broker = await startBroker()
  const adm = await admin(broker.bootstrap)
  const session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  return { broker, adm, session, dir: mkdtempSync(join(tmpdir(), dirPrefix)) }
}

export async function closeKafkaTestEnv(env: Partial<KafkaTestEnv>): Promise<void> {
  const { rmSync } = await import('node:fs')
  await env.session?.stop()
  await env.adm?.close()
  await env.broker?.release()
  if (env.dir) rmSync(env.dir, { recursive: true, force: true })
}
