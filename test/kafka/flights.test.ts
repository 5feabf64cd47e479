import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Row, SluiceSession, avg, col, count, from_json, lit, max, window } from '../../src/index.node.ts'
import { type Broker, admin, produce, root, startBroker, uniqueTopic } from './broker.ts'

// The main job over Kafka: three weeks of the real flights log produced as JSON to a 4-partition
// topic, aggregated hourly from Kafka with maxOffsetsPerTrigger by a real child process, compared
// with the same query over the Parquet file; then SIGKILLed mid-run several times and restarted,
// with the file sink and with the Kafka sink in exactly-once mode (read back read_committed).

const flightsFile = join(dirname(createRequire(import.meta.url).resolve('vega-datasets')), '..', 'data', 'flights-3m.parquet')
const CUTOFF = Date.UTC(2001, 0, 22)
const MAX_OFFSETS = 40_000
const OUT_SCHEMA = 'window_start TIMESTAMP, window_end TIMESTAMP, origin STRING, flights LONG, avg_delay DOUBLE, max_delay LONG'

let broker: Broker
let session: SluiceSession
let work: string
let topic: string
let numRows = 0
let expected: string[]

const toMs = (v: unknown) => (v instanceof Date ? v.getTime() : typeof v === 'bigint' ? Number(v / 1000n) : Number(v))
const canonical = (rows: Row[]) => rows.map((r) => JSON.stringify([r['window_start'], r['window_end'], r['origin'], r['flights'], r['avg_delay'], r['max_delay']])).sort()

beforeAll(async () => {
  broker = await startBroker()
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  work = mkdtempSync(join(tmpdir(), 'sluice-kafka-flights-'))
  const buf = readFileSync(flightsFile)
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
  const rows = await parquetReadObjects({ file, compressors, rowStart: 0, rowEnd: 450_000 })
  const messages = []
  for (const [i, r] of rows.entries()) {
    const ms = toMs(r['date'])
    if (ms >= CUTOFF) break
    const value = JSON.stringify({ date: new Date(ms).toISOString(), delay: Number(r['delay']), distance: Number(r['distance']), origin: r['origin'], destination: r['destination'] })
    messages.push({ key: r['origin'] as string, value, partition: i % 4 })
  }
  numRows = messages.length
  topic = uniqueTopic('flights')
  const adm = await admin(broker.bootstrap)
  await adm.createTopic(topic, 4)
  await adm.close()
  const t0 = performance.now()
  await produce(broker.bootstrap, topic, messages, 20_000)
  console.log(`produced ${numRows} flights to ${topic} (4 partitions) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  // the same query over the Parquet file (rows before the cut-off), in this process
  const hourly = session.readStream.parquet(flightsFile).filter(col('date').lt(lit(new Date(CUTOFF))))
    .withWatermark('date', '1 hour')
    .groupBy(window(col('date'), '1 hour'), col('origin'))
    .agg(count('*').as('flights'), avg('delay').as('avg_delay'), max('delay').as('max_delay'))
    .select(col('window.start').as('window_start'), col('window.end').as('window_end'), col('origin'), col('flights'), col('avg_delay'), col('max_delay'))
  const q = await hourly.writeStream.format('memory').queryName('parquet_hourly').outputMode('append')
    .option('flushAtEnd', true).trigger({ availableNow: true }).start()
  await q.awaitTermination()
  expected = canonical(await session.table('parquet_hourly').collect())
}, 300_000)

afterAll(async () => {
  await session?.stop()
  await broker?.release()
  if (work) rmSync(work, { recursive: true, force: true })
}, 120_000)

function startJob(checkpoint: string, out: { dir: string } | { topic: string }, extra: string[] = []): ChildProcess {
  const sink = 'dir' in out ? ['--out', out.dir] : ['--out-topic', out.topic]
  return spawn(process.execPath, ['--import', 'tsx', 'test/kafka/jobs/hourly.ts', '--bootstrap', broker.bootstrap, '--topic', topic, '--checkpoint', checkpoint, '--max-offsets', String(MAX_OFFSETS), ...sink, ...extra], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

function runJob(checkpoint: string, out: { dir: string } | { topic: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = startJob(checkpoint, out)
    let text = ''
    p.stdout!.on('data', (d) => (text += d))
    p.stderr!.on('data', (d) => (text += d))
    p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`job exited with ${code}:\n${text}`))))
  })
}

/** Starts the job and SIGKILLs it after it reports batch `target` (+0–150 ms), several times; returns how many kills landed. */
async function killRepeatedly(checkpoint: string, out: { dir: string } | { topic: string }, targets: number[]): Promise<number> {
  let seed = 7
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  let kills = 0
  for (const target of targets) {
    const p = startJob(checkpoint, out)
    await new Promise<void>((resolve) => {
      let log = ''
      p.stderr!.on('data', (d) => {
        log += d
        const last = [...log.matchAll(/batch (\d+):/g)].at(-1)
        if (last && Number(last[1]) >= target && p.exitCode === null && !p.killed) setTimeout(() => p.kill('SIGKILL'), Math.floor(rand() * 150))
      })
      p.on('exit', () => resolve())
    })
    if (p.signalCode === 'SIGKILL') kills++
  }
  return kills
}

async function readParquetOut(dir: string): Promise<Row[]> {
  return session.read.parquet(dir).collect()
}

async function readKafkaOut(outTopic: string, isolation: string): Promise<Row[]> {
  return session.read.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('subscribe', outTopic)
    .option('kafka.isolation.level', isolation).load()
    .select(from_json(col('value').cast('string'), OUT_SCHEMA).as('r')).select('r.*').collect()
}

describe('flights-hourly over Kafka', () => {
  it('with maxOffsetsPerTrigger gives exactly the result of the same query over the Parquet file', async () => {
    expect(numRows).toBeGreaterThan(300_000)
    const out = join(work, 'out')
    const log = await runJob(join(work, 'ckpt'), { dir: out })
    const batches = [...log.matchAll(/batch \d+: (\d+) rows in/g)].map((m) => Number(m[1]))
    expect(batches.filter((n) => n > 0).length).toBeGreaterThanOrEqual(Math.ceil(numRows / MAX_OFFSETS))
    expect(Math.max(...batches)).toBeLessThanOrEqual(MAX_OFFSETS)
    expect(batches.reduce((a, b) => a + b, 0)).toBe(numRows)
    const got = canonical(await readParquetOut(out))
    expect(got.length).toBe(expected.length)
    expect(got).toEqual(expected)
  }, 300_000)

  it('SIGKILLed mid-run several times and restarted: identical results (file sink)', async () => {
    const out = join(work, 'killed-out')
    const ckpt = join(work, 'killed-ckpt')
    const kills = await killRepeatedly(ckpt, { dir: out }, [0, 2, 4, 6, 8])
    expect(kills).toBeGreaterThanOrEqual(3)
    expect(existsSync(join(ckpt, 'offsets'))).toBe(true)
    await runJob(ckpt, { dir: out })
    expect(canonical(await readParquetOut(out))).toEqual(expected)
  }, 300_000)

  it('SIGKILLed mid-run and restarted with the Kafka sink in exactly-once mode: no duplicates for read_committed', async () => {
    const outTopic = uniqueTopic('hourly-out')
    const adm = await admin(broker.bootstrap)
    await adm.createTopic(outTopic, 2)
    await adm.close()
    const ckpt = join(work, 'eos-ckpt')
    const kills = await killRepeatedly(ckpt, { topic: outTopic }, [1, 3, 5])
    expect(kills).toBeGreaterThanOrEqual(2)
    // and twice inside a transaction, after its records were sent and before its commit
    for (const k of ['2', '1']) {
      const p = startJob(ckpt, { topic: outTopic }, ['--crash-before-commit', k])
      const signal = await new Promise((resolve) => p.on('exit', (_code, sig) => resolve(sig)))
      expect(signal).toBe('SIGKILL')
    }
    await runJob(ckpt, { topic: outTopic })
    const got = canonical(await readKafkaOut(outTopic, 'read_committed'))
    expect(got.length).toBe(expected.length)
    expect(got).toEqual(expected)
    // read_uncommitted also sees what killed runs wrote in transactions that were later aborted
    const raw = await readKafkaOut(outTopic, 'read_uncommitted')
    expect(raw.length).toBeGreaterThan(expected.length)
    console.log(`exactly-once: ${expected.length} committed output records; read_uncommitted sees ${raw.length} (aborted attempts included)`)
  }, 300_000)

  it('source throughput: raw records and from_json rows per second on this machine', async () => {
    const raw = session.read.format('kafka').option('kafka.bootstrap.servers', broker.bootstrap).option('subscribe', topic).load()
    let t = performance.now()
    const b = await raw.collectBatch()
    const rawRate = b.numRows / ((performance.now() - t) / 1000)
    t = performance.now()
    const parsed = await raw.select(from_json(col('value').cast('string'), 'date TIMESTAMP, delay LONG, distance LONG, origin STRING, destination STRING').as('f')).select('f.*').collectBatch()
    const parsedRate = parsed.numRows / ((performance.now() - t) / 1000)
    expect(b.numRows).toBe(numRows)
    expect(parsed.numRows).toBe(numRows)
    console.log(`Kafka source throughput: ${Math.round(rawRate).toLocaleString('en-US')} records/s raw, ${Math.round(parsedRate).toLocaleString('en-US')} rows/s with from_json (${numRows} records, 4 partitions)`)
    expect(rawRate).toBeGreaterThan(20_000)
  }, 120_000)
})
