import type { Batch, Field, Schema } from '../batch.ts'
import { parseType } from '../plan/expr.ts'
import { type Row, rowsToBatch } from '../util/rows.ts'
import type { Offset, ReadLimit, Source, SourceProvider } from './source.ts'

/** A schema given as `{ column: 'int' | 'long' | 'double' | 'string' | 'timestamp' | 'boolean' }` or as Fields. */
export type SchemaSpec = Schema | Record<string, string>

export function toSchema(spec: SchemaSpec): Schema {
  if (Array.isArray(spec)) return spec as Schema
  return Object.entries(spec as Record<string, string>).map(([name, t]): Field => ({ name, type: parseType(t), nullable: true }))
}

/**
 * In-memory streaming source for tests and small data, as Spark's `MemoryStream`: each `addData`
 * call becomes one new offset (rows converted to one columnar batch at once). Data stays in
 * memory for the life of the object, so a query restarted on the same checkpoint resumes from it.
 */
export class MemoryStreamProvider implements SourceProvider {
  readonly schema: Schema
  readonly description: string
  readonly readLimit: ReadLimit = {}
  readonly kind = 'memory'
  private readonly batches: Batch[] = []
  private readonly listeners = new Set<() => void>()

  constructor(schema: Schema, name: string) {
    this.schema = schema
    this.description = `MemoryStream[${name}]`
  }

  /** Appends rows as one new offset; returns that offset (0 for the first call). */
  addData(rows: readonly Row[]): number {
    this.batches.push(rowsToBatch(this.schema, rows))
    for (const l of this.listeners) l()
    return this.batches.length - 1
  }

  async createSource(): Promise<Source> {
    const batches = this.batches
    const listeners = this.listeners
    return {
      description: this.description,
      latestOffset: async (): Promise<Offset | null> => (batches.length === 0 ? null : batches.length - 1),
      getBatch: async (start: Offset | null, end: Offset): Promise<Batch[]> => batches.slice((start as number | null ?? -1) + 1, (end as number) + 1),
      onData(listener: () => void) {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      stop: async () => {},
    }
  }
}
