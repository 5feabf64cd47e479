import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SluiceSession, col, count, sum, window } from '../../src/index.node.ts'
import { fileFormat } from '../../src/formats/format.ts'
import type { Schema } from '../../src/batch.ts'

// A backlog much larger than one batch is consumed in bounded batches (maxFilesPerTrigger /
// maxRowsPerTrigger), each reading only its own rows, with memory that does not grow with the backlog.

const FILES = 16
const ROWS = 400_000
let session: SluiceSession
let dir: string
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-backlog-'))
  mkdirSync(join(dir, 'in'))
  const schema: Schema = [{ name: 'ts', type: 'timestamp', nullable: false }, { name: 'key', type: 'int64', nullable: false }, { name: 'value', type: 'float64', nullable: false }]
  for (let f = 0; f < FILES; f++) {
    const ts = new BigInt64Array(ROWS), key = new BigInt64Array(ROWS), value = new Float64Array(ROWS)
    for (let i = 0; i < ROWS; i++) {
      const row = f * ROWS + i
      ts[i] = BigInt(row) * 1000n
      key[i] = BigInt(row % 97)
      value[i] = (row % 13) / 4
    }
    const batch = { schema, numRows: ROWS, columns: [
      { type: 'timestamp' as const, length: ROWS, values: ts, validity: null },
      { type: 'int64' as const, length: ROWS, values: key, validity: null },
      { type: 'float64' as const, length: ROWS, values: value, validity: null },
    ] }
    writeFileSync(join(dir, 'in', `part-${String(f).padStart(3, '0')}.parquet`), fileFormat('parquet').encode([batch], schema))
  }
}, 120_000)
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('backlog', () => {
  it.each([
    ['maxFilesPerTrigger', 1, ROWS],
    ['maxRowsPerTrigger', 150_000, 150_000],
  ] as const)('is consumed in bounded batches with %s', async (option, limit, maxBatch) => {
    const rssBefore = process.memoryUsage().rss
    let peakRss = rssBefore
    const q = await session.readStream.format('parquet').option(option, limit).load(join(dir, 'in'))
      .withWatermark('ts', '10 seconds').groupBy(window(col('ts'), '1 minute'), col('key')).agg(count('*').as('n'), sum('value').as('s'))
      .writeStream.outputMode('append').option('checkpointLocation', join(dir, `ckpt-${option}`))
      .trigger({ availableNow: true }).option('flushAtEnd', true)
      .foreachBatch(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) })
      .start()
    await q.awaitTermination()
    const progress = q.recentProgress.filter((p) => p.numInputRows > 0)
    expect(progress.reduce((s, p) => s + p.numInputRows, 0)).toBe(FILES * ROWS)
    expect(Math.max(...progress.map((p) => p.numInputRows))).toBeLessThanOrEqual(maxBatch)
    expect(progress.length).toBeGreaterThanOrEqual(Math.ceil((FILES * ROWS) / maxBatch))
    const backlogBytes = FILES * ROWS * 24
    const growth = peakRss - rssBefore
    console.log(`${option}: ${progress.length} batches, backlog ${(backlogBytes / 2 ** 20).toFixed(0)} MB decoded (${(statSync(join(dir, 'in', 'part-000.parquet')).size * FILES / 2 ** 20).toFixed(0)} MB on disk), RSS growth ${(growth / 2 ** 20).toFixed(0)} MB`)
    expect(growth).toBeLessThan(backlogBytes)
  }, 120_000)
})
