/**
 * The flights-hourly job reading from Kafka (run as a child process by test/kafka/flights.test.ts,
 * which SIGKILLs it mid-run): JSON flights from `--topic` (from_json on the value), hourly count /
 * average / maximum delay per origin with a 1 hour watermark, Append mode with the end-of-input
 * flush, written to Parquet (`--out DIR`) or to Kafka exactly-once (`--out-topic T`).
 *
 *   tsx test/kafka/jobs/hourly.ts --bootstrap 127.0.0.1:19092 --topic flights --checkpoint DIR
 *     (--out DIR | --out-topic TOPIC) [--max-offsets 40000] [--crash-before-commit K]
 */
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { SluiceSession, avg, col, count, from_json, max, struct, to_json, window } from '../../../src/index.node.ts'

const { values: args } = parseArgs({
  options: {
    bootstrap: { type: 'string', default: '127.0.0.1:19092' },
    topic: { type: 'string' },
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    'out-topic': { type: 'string' },
    'max-offsets': { type: 'string', default: '40000' },
    // test failpoint: SIGKILL this process inside its K-th Kafka transaction, after the records were sent, before the commit
    'crash-before-commit': { type: 'string' },
  },
})

if (args['crash-before-commit'] !== undefined) {
  const k = Number(args['crash-before-commit'])
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const kafkajs = createRequire(import.meta.url)('kafkajs') as any
  const producer = kafkajs.Kafka.prototype.producer
  let commits = 0
  kafkajs.Kafka.prototype.producer = function (...a: unknown[]) {
    const p = producer.apply(this, a)
    const transaction = p.transaction
    p.transaction = async () => {
      const t = await transaction()
      const commit = t.commit
      t.commit = async () => {
        if (++commits === k) {
          console.error(`crashing inside transaction ${k}, before its commit`)
          process.kill(process.pid, 'SIGKILL')
          await new Promise(() => {})
        }
        return commit()
      }
      return t
    }
    return p
  }
}

const FLIGHT_SCHEMA = 'date TIMESTAMP, delay LONG, distance LONG, origin STRING, destination STRING'

const session = await SluiceSession.builder().appName('kafka-hourly').config('sluice.executor.threads', 1).getOrCreate()
const flights = session.readStream.format('kafka')
  .option('kafka.bootstrap.servers', args.bootstrap!)
  .option('subscribe', args.topic!)
  .option('startingOffsets', 'earliest')
  .option('maxOffsetsPerTrigger', Number(args['max-offsets']))
  .load()
  .select(from_json(col('value').cast('string'), FLIGHT_SCHEMA).as('f'))
  .select('f.*')

const hourly = flights
  .withWatermark('date', '1 hour')
  .groupBy(window(col('date'), '1 hour'), col('origin'))
  .agg(count('*').as('flights'), avg('delay').as('avg_delay'), max('delay').as('max_delay'))
  .select(col('window.start').as('window_start'), col('window.end').as('window_end'), col('origin'), col('flights'), col('avg_delay'), col('max_delay'))

session.streams.addListener({
  onQueryProgress({ progress }) {
    console.error(`batch ${progress.batchId}: ${progress.numInputRows} rows in, ${progress.sink.numOutputRows} rows out`)
  },
})

let writer = args['out-topic'] !== undefined
  ? hourly.select(col('origin').as('key'), to_json(struct(col('window_start'), col('window_end'), col('origin'), col('flights'), col('avg_delay'), col('max_delay'))).as('value'))
    .writeStream.format('kafka').option('kafka.bootstrap.servers', args.bootstrap!).option('topic', args['out-topic']).option('deliveryGuarantee', 'exactly-once')
  : hourly.writeStream.format('parquet').option('path', args.out!)
writer = writer.outputMode('append').option('checkpointLocation', args.checkpoint!).option('flushAtEnd', true).trigger({ availableNow: true })
const query = await writer.start()
await query.awaitTermination()
await session.stop()
console.error('done')
