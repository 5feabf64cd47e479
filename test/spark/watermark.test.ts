import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type DataFrame, ManualClock, MemoryStream, type OutputMode, SluiceSession, type StreamingQuery,
  col, count, timestamp_seconds, window,
} from '../../src/index.node.ts'
import { type Step, bag, sparkCase } from './cases.ts'

let session: SluiceSession
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
})
afterAll(() => session.stop())

let queryCounter = 0

/** Spark's query in these suites: event time = timestamp_seconds(value), 5 s windows, count(*). */
function windowedCounts(input: MemoryStream, watermark: boolean): DataFrame {
  let df = input.toDF().withColumn('eventTime', timestamp_seconds(col('value')))
  if (watermark) df = df.withWatermark('eventTime', '10 seconds')
  return df
    .groupBy(window(col('eventTime'), '5 seconds').as('window'))
    .agg(count('*').as('count'))
    .select(col('window.start').cast('long').as('window_start'), col('count'))
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString()

/** Runs testStream-style steps: AddData, CheckAnswer, CheckNewAnswer, assert* (see the cases' README). */
async function runSteps(q: StreamingQuery, input: MemoryStream, name: string, steps: Step[]): Promise<void> {
  let seen = 0
  const answer = async () => session.table(name).collect()
  for (const step of steps) {
    switch (step.action) {
      case 'AddData':
        input.addData(step.rows!)
        break
      case 'CheckAnswer': {
        await q.processAllAvailable()
        const rows = await answer()
        expect(bag(rows)).toEqual(bag(step.rows!))
        seen = rows.length
        break
      }
      case 'CheckNewAnswer': {
        await q.processAllAvailable()
        const rows = await answer()
        expect(bag(rows.slice(seen))).toEqual(bag(step.rows!))
        seen = rows.length
        break
      }
      case 'assertEventStats': {
        const p = q.recentProgress.filter((x) => x.numInputRows > 0).at(-1)!
        if (step.expect !== undefined) {
          expect(p.eventTime).toEqual({})
        } else {
          expect(p.eventTime).toEqual({
            min: iso(step.min as number), max: iso(step.max as number), avg: iso(step.avg as number), watermark: iso(step.watermark as number),
          })
        }
        break
      }
      case 'assertNumStateRows':
        expect(q.lastProgress!.stateOperators[0]!.numRowsTotal).toBe(step.numRowsTotal)
        break
      case 'assertNumRowsDroppedByWatermark': {
        const p = q.recentProgress.filter((x) => x.numInputRows > 0).at(-1)!
        expect(p.stateOperators[0]!.numRowsDroppedByWatermark).toBe(step.value)
        break
      }
      default:
        throw new Error(`step ${step.action} not handled`)
    }
  }
}

async function runCase(steps: Step[], mode: OutputMode, watermark: boolean): Promise<void> {
  const input = new MemoryStream(session, { value: 'int' })
  const name = `q${queryCounter++}`
  const q = await windowedCounts(input, watermark).writeStream.format('memory').queryName(name).outputMode(mode).start()
  try {
    await runSteps(q, input, name, steps)
  } finally {
    await q.stop()
  }
}

describe('Spark case WM-01 (EventTimeWatermarkSuite: event time and watermark metrics)', () => {
  const c = sparkCase('WM-01')
  it('without a watermark, Complete mode reports no event-time stats', async () => {
    const part = c.parts![0]!
    await runCase(part.steps, 'complete', false)
  })
  it('with a 10 s watermark, Append mode reports min/max/avg and the batch watermark', async () => {
    const part = c.parts![1]!
    await runCase(part.steps, 'append', true)
  })
})

describe('Spark case WM-02 (EventTimeWatermarkSuite: append mode)', () => {
  it('emits a window once the watermark passes its end and drops late rows', async () => {
    await runCase(sparkCase('WM-02').steps!, 'append', true)
  })
})

describe('Spark case AGG-01 (StreamingAggregationSuite: state metrics - append mode)', () => {
  it('runs one batch per trigger, no-data batches included, with Spark state metrics', async () => {
    const c = sparkCase('AGG-01')
    const clock = new ManualClock()
    const input = new MemoryStream(session, { value: 'int' })
    const name = `q${queryCounter++}`
    const waitForBatch = async (id: number) => {
      for (let i = 0; i < 500 && (q.lastProgress?.batchId ?? -1) < id; i++) await new Promise((r) => setTimeout(r, 10))
      expect(q.lastProgress?.batchId).toBe(id)
    }
    let q!: StreamingQuery
    let expectedBatch = 0
    try {
      for (const step of c.steps!) {
        if (step.action === 'AddData') input.addData(step.rows!)
        else if (step.action.startsWith('StartStream')) {
          q = await windowedCounts(input, true).writeStream.format('memory').queryName(name).outputMode('append')
            .trigger({ processingTime: '1 second', clock }).start()
          await waitForBatch(expectedBatch++)
        } else if (step.action === 'AdvanceManualClock') {
          // wait until the query sleeps on the clock, so the tick fires exactly one trigger
          for (let i = 0; i < 500 && !clock.isWaiting; i++) await new Promise((r) => setTimeout(r, 5))
          clock.advance(step.ms as number)
          await waitForBatch(expectedBatch++)
        } else if (step.action === 'CheckAnswer') {
          expect(bag(await session.table(name).collect())).toEqual(bag(step.rows!))
        } else if (step.action === 'assert') {
          const p = q.lastProgress!
          expect(p.stateOperators[0]!.numRowsUpdated).toBe(step.updated)
          expect(p.stateOperators[0]!.numRowsTotal).toBe(step.total)
          expect(p.sink.numOutputRows).toBe(step.sinkOut)
        } else throw new Error(`step ${step.action} not handled`)
      }
    } finally {
      await q?.stop()
    }
  })
})
