// Runs in headless Chromium (bundled by test/browser/chromium.test.ts): the browser entry, a
// streaming windowed aggregation over a MemoryStream, WASM kernels inline, memory sink.
import { MemoryStream, SluiceSession, col, count, timestamp_seconds, window } from '../../src/index.browser.ts'

async function main() {
  const session = await SluiceSession.builder().getOrCreate()
  const input = new MemoryStream(session, { value: 'int' })
  const q = await input.toDF().withColumn('eventTime', timestamp_seconds(col('value')))
    .withWatermark('eventTime', '10 seconds')
    .groupBy(window(col('eventTime'), '5 seconds')).agg(count('*').as('count'))
    .select(col('window.start').cast('long').as('start'), col('count'))
    .writeStream.format('memory').queryName('out').outputMode('append').start()
  input.addData([10, 11, 12, 13, 14, 15].map((value) => ({ value })))
  await q.processAllAvailable()
  input.addData([{ value: 25 }])
  await q.processAllAvailable()
  const rows = await session.table('out').collect()
  const watermark = q.lastProgress?.eventTime.watermark
  await q.stop()
  await session.stop()
  return { rows, watermark, userAgent: navigator.userAgent }
}

;(globalThis as { sluiceResult?: Promise<unknown> }).sluiceResult = main()
