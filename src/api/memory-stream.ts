import { type SchemaSpec, MemoryStreamProvider, toSchema } from '../sources/memory.ts'
import { sourceNode } from '../plan/logical.ts'
import type { Row } from '../util/rows.ts'
import { DataFrame } from './dataframe.ts'
import type { SluiceSession } from './session.ts'

/**
 * An in-memory stream for tests and small data (Spark's MemoryStream):
 * `const input = new MemoryStream(session, { eventTime: 'timestamp', value: 'int' })`,
 * `input.addData([{ eventTime: 15_000, value: 1 }])` (timestamps as epoch ms, Date or ISO text),
 * `input.toDF()` for a streaming DataFrame. Each addData call is one offset.
 */
export class MemoryStream {
  private readonly provider: MemoryStreamProvider

  constructor(private readonly session: SluiceSession, schema: SchemaSpec) {
    this.provider = new MemoryStreamProvider(toSchema(schema), String(session.nextMemoryStreamId()))
  }

  /** Appends rows as one new offset; returns the offset. @throws SourceError INVALID_ROW for a value of the wrong type. */
  addData(rows: readonly Row[]): number {
    return this.provider.addData(rows)
  }

  toDF(): DataFrame {
    return new DataFrame(this.session, sourceNode(this.provider, true))
  }
}
