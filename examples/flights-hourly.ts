/**
 * The main job: hourly delay by origin over the real flights log (vega-datasets' flights-3m.parquet:
 * 3,000,000 US flights, Jan–Jun 2001). Micro-batches of at most 250,000 rows, a 1 hour watermark,
 * Append mode with the end-of-input flush, Parquet output, a console preview and a summary.
 *
 *   npm start -- [--out DIR] [--checkpoint DIR] [--input FILE] [--threads N] [--max-rows N] [--quiet]
 *
 * Killed at any moment and started again with the same arguments, it finishes with exactly the
 * output of an uninterrupted run (the checkpoint resumes it; the file sink skips committed batches).
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import { SluiceSession, avg, col, count, desc, max, window } from '../src/index.node.ts'

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'out/hourly' },
    checkpoint: { type: 'string', default: 'out/checkpoint' },
    input: { type: 'string' },
    threads: { type: 'string' },
    'max-rows': { type: 'string', default: '250000' },
    quiet: { type: 'boolean', default: false },
  },
})

const input = args.input ?? join(dirname(createRequire(import.meta.url).resolve('vega-datasets')), '..', 'data', 'flights-3m.parquet')
const builder = SluiceSession.builder().appName('flights-hourly')
if (args.threads !== undefined) builder.config('sluice.executor.threads', args.threads)
const session = await builder.getOrCreate()

const flights = session.readStream.format('parquet').option('maxRowsPerTrigger', Number(args['max-rows'])).load(input)

const hourly = flights
  .withWatermark('date', '1 hour')
  .groupBy(window(col('date'), '1 hour'), col('origin'))
  .agg(count('*').as('flights'), avg('delay').as('avg_delay'), max('delay').as('max_delay'))
  .select(col('window.start').as('window_start'), col('window.end').as('window_end'), col('origin'), col('flights'), col('avg_delay'), col('max_delay'))

const totalRows = 3_000_000
const tty = process.stderr.isTTY && !args.quiet
const bar = tty
  ? new cliProgress.SingleBar({ format: 'flights-hourly |{bar}| {percentage}% | {value}/{total} rows | batch {batch} | {rate} rows/s | eta {eta}s', stream: process.stderr }, cliProgress.Presets.shades_classic)
  : null
let rowsIn = 0
let rowsOut = 0
let batches = 0
session.streams.addListener({
  onQueryProgress({ progress }) {
    batches++
    rowsIn += progress.numInputRows
    rowsOut += progress.sink.numOutputRows
    const rate = Math.round(progress.processedRowsPerSecond).toLocaleString('en-US')
    if (bar) bar.update(Math.min(rowsIn, totalRows), { batch: progress.batchId, rate })
    else if (!args.quiet) console.error(`batch ${progress.batchId}: ${progress.numInputRows} rows in, ${progress.sink.numOutputRows} rows out, ${rate} rows/s, watermark ${progress.eventTime.watermark}`)
  },
})

const started = performance.now()
bar?.start(totalRows, 0, { batch: '-', rate: '-' })
const query = await hourly.writeStream
  .outputMode('append')
  .format('parquet')
  .option('path', args.out)
  .option('checkpointLocation', args.checkpoint)
  .option('flushAtEnd', true)
  .trigger({ availableNow: true })
  .start()
try {
  await query.awaitTermination()
} finally {
  bar?.stop()
}
const seconds = (performance.now() - started) / 1000

if (!args.quiet) {
  console.log(`\nBusiest hours (from ${args.out}):`)
  await session.read.parquet(args.out).orderBy(desc('flights')).limit(10).show()
}
console.log(
  `flights-hourly: ${batches} batches this run, ${rowsIn.toLocaleString('en-US')} rows in, ${rowsOut.toLocaleString('en-US')} rows out, ` +
    `${seconds.toFixed(1)} s wall, ${Math.round(rowsIn / seconds).toLocaleString('en-US')} rows/s → ${args.out}`,
)
await session.stop()
