import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SluiceSession, col, count, window } from '../../src/index.node.ts'
import { sparkCase } from './cases.ts'

let session: SluiceSession
beforeAll(async () => {
  session = await SluiceSession.builder().config('sluice.executor.threads', 1).getOrCreate()
})
afterAll(() => session.stop())

// DataFrameTimeWindowingSuite: window assignment over a batch DataFrame, compared with Spark's exact answer.
describe.each([
  ['TW-01', ['10 seconds']],
  ['TW-02', ['10 seconds', '10 seconds', '-5 seconds']],
  ['TW-04', ['10 seconds', '3 seconds', '0 second']],
] as const)('Spark case %s', (id, args) => {
  it('assigns rows to the same windows as Spark', async () => {
    const c = sparkCase(id)
    const df = session.createDataFrame(c.input!, { time: 'timestamp', value: 'int', id: 'string' })
    const [w, s, st] = args as readonly [string, string?, string?]
    const rows = await df
      .groupBy(window(col('time'), w, s, st))
      .agg(count('*').as('counts'))
      .orderBy('window.start')
      .select(col('window.start').cast('string').as('start'), col('window.end').cast('string').as('end'), col('counts'))
      .collect()
    expect(rows).toEqual(c.expected!.rows)
  })
})
