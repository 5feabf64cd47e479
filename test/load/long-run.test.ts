import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SluiceSession, type StreamingQueryProgress, col, count, sum, window } from '../../src/index.node.ts'

// Memory stays bounded over a long run: 50 million synthetic events (Spark's rate-micro-batch
// source) through a windowed aggregation with watermark, state checkpointed every batch.

let session: SluiceSession
let dir: string
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
  dir = mkdtempSync(join(tmpdir(), 'sluice-load-'))
})
afterAll(async () => {
  await session.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('long run', () => {
  it('streams 50 M events with flat state rows and process memory after warm-up', async () => {
    const rowsPerBatch = 250_000
    const batches = 200
    const events = session.readStream.format('rate-micro-batch').option('rowsPerBatch', rowsPerBatch).option('advanceMillisPerBatch', 1000).load()
    const agg = events
      .withColumn('key', col('value').mod(1000))
      .withWatermark('timestamp', '10 seconds')
      .groupBy(window(col('timestamp'), '5 seconds'), col('key'))
      .agg(count('*').as('n'), sum('value').as('s'))
    let emitted = 0
    const q = await agg.writeStream.outputMode('append').option('checkpointLocation', join(dir, 'ckpt'))
      .foreachBatch(async (df) => { emitted += (await df.collectBatch()).numRows })
      .start()
    // sampled by a progress listener: one sample per batch, whatever the event loop is doing
    const samples: { batchId: number; stateRows: number; rss: number }[] = []
    await new Promise<void>((resolve, reject) => {
      const listener = {
        onQueryProgress: ({ progress: p }: { progress: StreamingQueryProgress }) => {
          if (p.id !== q.id) return
          samples.push({ batchId: p.batchId, stateRows: p.stateOperators[0]!.numRowsTotal, rss: process.memoryUsage().rss })
          if (p.batchId >= batches) done(null)
        },
        onQueryTerminated: () => done(q.exception ?? new Error('query ended early')),
      }
      const done = (e: Error | null) => {
        session.streams.removeListener(listener)
        if (e) reject(e)
        else resolve()
      }
      session.streams.addListener(listener)
    })
    await q.stop()
    const input = q.recentProgress.reduce((s, p) => s + p.numInputRows, 0)
    expect(q.lastProgress!.batchId).toBeGreaterThanOrEqual(batches)
    const total = (q.lastProgress!.batchId + 1) * rowsPerBatch
    expect(total).toBeGreaterThanOrEqual(50_000_000)
    expect(input).toBeGreaterThan(0)
    const warm = samples.filter((s) => s.batchId >= 40)
    const maxState = Math.max(...warm.map((s) => s.stateRows))
    // 1,000 keys × the windows within the 10 s watermark: bounded, not growing with the input
    expect(maxState).toBeLessThanOrEqual(4_000)
    const early = warm.filter((s) => s.batchId < 80)
    const late = warm.filter((s) => s.batchId >= batches - 40)
    const peak = (xs: typeof warm) => Math.max(...xs.map((s) => s.rss))
    const growthMb = (peak(late) - peak(early)) / 2 ** 20
    console.log(`long run: ${total.toLocaleString('en-US')} events, ${emitted} rows out, state rows ≤ ${maxState}, ` +
      `peak RSS ${(peak(early) / 2 ** 20).toFixed(0)} MB (batches 40-80) → ${(peak(late) / 2 ** 20).toFixed(0)} MB (last 40)`)
    expect(growthMb).toBeLessThan(64)
    // ~200 s of event time = 40 windows of 5 s; all but the last ones (within the watermark) emitted, 1,000 keys each
    expect(emitted % 1000).toBe(0)
    expect(emitted).toBeGreaterThanOrEqual(37_000)
  }, 240_000)
})
