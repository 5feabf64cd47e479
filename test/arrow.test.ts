import { readFileSync } from 'node:fs'
import {
  Binary,
  Bool,
  DateDay,
  DateMillisecond,
  Dictionary,
  Field as ArrowField,
  Float16,
  Float32,
  Int16,
  Int32,
  Int8,
  LargeUtf8,
  List,
  makeData,
  Schema as ArrowSchema,
  Struct,
  Table,
  tableFromIPC,
  TimeUnit,
  Timestamp,
  Type,
  Uint16,
  Uint32,
  Uint64,
  Utf8,
  vectorFromArray,
  makeVector,
} from 'apache-arrow'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  arrowSchemaToSchema,
  arrowToBatches,
  batchesToIPC,
  batchToArrow,
  ipcToBatches,
  tableFromBatches,
} from '../src/arrow.ts'
import { sliceBatch, type Schema } from '../src/batch.ts'
import { SourceError } from '../src/errors.ts'
import { batchOf, rowsOf, tableArb, ts } from './formats/_helpers.ts'

const schema: Schema = [
  { name: 'b', type: 'boolean', nullable: true },
  { name: 'i', type: 'int32', nullable: true },
  { name: 'l', type: 'int64', nullable: false },
  { name: 'f', type: 'float64', nullable: true },
  { name: 't', type: 'timestamp', nullable: true },
  { name: 's', type: 'string', nullable: true },
  { name: 'bin', type: 'binary', nullable: true },
  { name: 'w', type: 'window', nullable: true },
]
const big = 2n ** 60n + 7n
const rows = [
  [true, 1, big, 1.5, ts('2001-01-01T00:01:00Z'), 'ORD', Uint8Array.of(1, 2), { start: 0n, end: 3_600_000_000n }],
  [null, null, -big, null, null, null, null, null],
  [false, -7, 0n, -0.25, ts('1969-12-31T23:59:59.999Z'), 'LAX', new Uint8Array(0), { start: 10n, end: 20n }],
  [true, 2147483647, 9223372036854775807n, NaN, 1n, 'ORD', Uint8Array.of(255), { start: -5n, end: 5n }],
]

describe('batchToArrow', () => {
  it('maps Sluice types to Arrow types and values', () => {
    const rb = batchToArrow(batchOf(schema, rows))
    const types = rb.schema.fields.map((f) => f.type)
    expect(types[0]).toBeInstanceOf(Bool)
    expect(types[1]).toBeInstanceOf(Int32)
    expect(String(types[2])).toBe('Int64')
    expect(String(types[3])).toBe('Float64')
    const t = types[4] as Timestamp
    expect(t.typeId).toBe(Type.Timestamp)
    expect(t.unit).toBe(TimeUnit.MICROSECOND)
    expect(t.timezone).toBe('UTC')
    const d = types[5] as Dictionary
    expect(d.typeId).toBe(Type.Dictionary)
    expect(d.indices.bitWidth).toBe(32)
    expect(d.dictionary.typeId).toBe(Type.Utf8)
    expect(types[6]).toBeInstanceOf(Binary)
    expect((types[7] as Struct).children.map((f) => f.name)).toEqual(['start', 'end'])
    expect(rb.schema.fields[2]!.nullable).toBe(false)

    expect(rb.numRows).toBe(4)
    expect(rb.getChild('s')!.toArray()).toEqual(['ORD', null, 'LAX', 'ORD'])
    expect(rb.getChild('l')!.get(0)).toBe(big)
    expect(rb.getChild('b')!.toArray()).toEqual([true, null, false, true])
    expect(rb.getChild('i')!.get(1)).toBeNull()
    const w = rb.getChild('w')!.data[0]!
    expect([w.children[0]!.values[0], w.children[1]!.values[0]]).toEqual([0n, 3_600_000_000n])
  })

  it('shares fixed-width buffers (zero copy)', () => {
    const b = batchOf(schema, rows)
    const rb = batchToArrow(b)
    expect(rb.data.children[2]!.values).toBe(b.columns[2]!.values)
    expect(rb.data.children[4]!.values).toBe(b.columns[4]!.values)
    expect(rb.data.children[5]!.values).toBe(b.columns[5]!.values)
    expect(rb.data.children[1]!.nullBitmap.buffer).toBe(b.columns[1]!.validity!.buffer)
  })
})

describe('arrowToBatches', () => {
  it('round-trips every Sluice type through an Arrow table', () => {
    const b = batchOf(schema, rows)
    const back = arrowToBatches(new Table([batchToArrow(b)]))
    expect(back).toHaveLength(1)
    expect(back[0]!.schema).toEqual(schema)
    expect(rowsOf(back[0]!)).toEqual(rowsOf(b))
  })

  it('converts the other Arrow types', () => {
    const n = 3
    const table = new Table({
      i8: vectorFromArray([1, -2, null], new Int8()),
      i16: vectorFromArray([300, null, -300], new Int16()),
      u16: vectorFromArray([65535, 0, 1], new Uint16()),
      u32: vectorFromArray([4294967295, 0, 1], new Uint32()),
      u64: vectorFromArray([18446744073709551615n, 5n, 0n], new Uint64()),
      f32: vectorFromArray([1.5, null, -2], new Float32()),
      f16: makeVector(makeData({ type: new Float16(), length: n, data: Uint16Array.of(0x3c00, 0xc000, 0x7c00) })),
      d32: vectorFromArray([new Date('2001-01-02T00:00:00Z'), null, new Date('1969-12-31T00:00:00Z')], new DateDay()),
      d64: vectorFromArray([new Date('2001-01-02T00:00:00Z'), new Date(0), null], new DateMillisecond()),
      tsS: makeVector(makeData({ type: new Timestamp(TimeUnit.SECOND), length: n, data: BigInt64Array.of(1n, -1n, 0n) })),
      tsMs: makeVector(makeData({ type: new Timestamp(TimeUnit.MILLISECOND, 'America/New_York'), length: n, data: BigInt64Array.of(1n, -1n, 0n) })),
      tsNs: makeVector(makeData({ type: new Timestamp(TimeUnit.NANOSECOND), length: n, data: BigInt64Array.of(1999n, -1n, 5000n) })),
      utf8: vectorFromArray(['a', null, 'a'], new Utf8()),
      large: vectorFromArray(['x', 'é', null], new LargeUtf8()),
      dict8: vectorFromArray(['p', 'q', 'p'], new Dictionary(new Utf8(), new Int8())),
    })
    const [b] = arrowToBatches(table)
    expect(b!.schema.map((f) => `${f.name}:${f.type}`)).toEqual([
      'i8:int32', 'i16:int32', 'u16:int32', 'u32:int64', 'u64:int64', 'f32:float64', 'f16:float64', 'd32:timestamp', 'd64:timestamp',
      'tsS:timestamp', 'tsMs:timestamp', 'tsNs:timestamp', 'utf8:string', 'large:string', 'dict8:string',
    ])
    const r = rowsOf(b!)
    const col = (k: number): unknown[] => r.map((row) => row[k])
    expect(col(0)).toEqual([1, -2, null])
    expect(col(1)).toEqual([300, null, -300])
    expect(col(2)).toEqual([65535, 0, 1])
    expect(col(3)).toEqual([4294967295n, 0n, 1n])
    expect(col(4)).toEqual([-1n, 5n, 0n]) // Uint64 above 2^63-1 wraps
    expect(col(5)).toEqual([1.5, null, -2])
    expect(col(6)).toEqual([1, -2, Infinity])
    expect(col(7)).toEqual([ts('2001-01-02T00:00:00Z'), null, ts('1969-12-31T00:00:00Z')])
    expect(col(8)).toEqual([ts('2001-01-02T00:00:00Z'), 0n, null])
    expect(col(9)).toEqual([1_000_000n, -1_000_000n, 0n])
    expect(col(10)).toEqual([1000n, -1000n, 0n])
    expect(col(11)).toEqual([1n, -1n, 5n]) // ns floored to µs
    expect(col(12)).toEqual(['a', null, 'a'])
    expect(col(13)).toEqual(['x', 'é', null])
    expect(col(14)).toEqual(['p', 'q', 'p'])
    // Utf8 is dictionary-encoded: repeated strings share a code
    const u = b!.columns[12]!
    expect(u.dictionary).toEqual(['a'])
  })

  it('shares the decoded dictionary between batches that share the Arrow dictionary', () => {
    const v = vectorFromArray(['a', 'b', 'a', 'c', 'b', 'a', 'c', 'c', 'a', 'b'], new Dictionary(new Utf8(), new Int32()))
    const table = new Table({ s: v })
    const sliced = new Table([table.batches[0]!.slice(0, 3), table.batches[0]!.slice(3, 10)])
    const [b1, b2] = arrowToBatches(sliced)
    expect(b1!.columns[0]!.dictionary).toBe(b2!.columns[0]!.dictionary)
    expect(rowsOf(b2!).map((r) => r[0])).toEqual(['c', 'b', 'a', 'c', 'c', 'a', 'b'])
  })

  it('handles sliced Arrow data at bit offsets (validity and booleans)', () => {
    const vals = [true, null, false, true, true, null, false, false, true, null, true]
    const i32 = [1, null, 3, 4, 5, null, 7, 8, 9, null, 11]
    const table = new Table({ b: vectorFromArray(vals, new Bool()), i: vectorFromArray(i32, new Int32()) })
    const rb = table.batches[0]!.slice(3, 10)
    const [b] = arrowToBatches(new Table([rb]))
    expect(rowsOf(b!)).toEqual(vals.slice(3, 10).map((v, k) => [v, i32[3 + k]]))
  })

  it('names the column of an unsupported type', () => {
    const table = new Table({ ok: vectorFromArray([1], new Int32()), bad: vectorFromArray([[1, 2]], new List(new ArrowField('item', new Int32()))) })
    expect(() => arrowToBatches(table)).toThrowError(expect.objectContaining({ name: 'SourceError', code: 'UNSUPPORTED_TYPE', message: expect.stringContaining("'bad'") }))
    const s = new ArrowSchema([new ArrowField('x', new Struct([new ArrowField('a', new Int32())]))])
    expect(() => arrowSchemaToSchema(s)).toThrow(SourceError)
  })

  it('reads vega-datasets flights-200k.arrow', () => {
    const bytes = readFileSync(new URL('../node_modules/vega-datasets/data/flights-200k.arrow', import.meta.url))
    const { schema: s, batches } = ipcToBatches(new Uint8Array(bytes))
    expect(s.map((f) => `${f.name}:${f.type}`)).toEqual(['delay:int32', 'distance:int32', 'time:float64'])
    expect(batches.reduce((n, b) => n + b.numRows, 0)).toBe(200_000)
    expect(rowsOf(sliceBatch(batches[0]!, 0, 1))).toEqual([[0, 1452, 0]])
    const t = tableFromIPC(bytes)
    const last = t.get(t.numRows - 1)!.toJSON()
    const lb = batches.at(-1)!
    expect(rowsOf(sliceBatch(lb, lb.numRows - 1, lb.numRows))[0]).toEqual([last.delay, last.distance, Math.fround(last.time)])
  })
})

describe('IPC', () => {
  it('round-trips file and stream formats, merging per-batch dictionaries', () => {
    const b1 = batchOf(schema, rows.slice(0, 2))
    const b2 = batchOf(schema, [rows[2]!, rows[3]!, rows[0]!])
    // b2's string dictionary differs from b1's
    for (const format of ['file', 'stream'] as const) {
      const bytes = batchesToIPC(schema, [b1, b2], format)
      if (format === 'file') expect(new TextDecoder().decode(bytes.subarray(0, 6))).toBe('ARROW1')
      else expect([...bytes.subarray(0, 4)]).toEqual([255, 255, 255, 255])
      const back = ipcToBatches(bytes)
      expect(back.schema).toEqual(schema)
      expect(back.batches.map((b) => b.numRows)).toEqual([2, 3])
      expect(back.batches.flatMap(rowsOf)).toEqual([...rowsOf(b1), ...rowsOf(b2)])
      // apache-arrow itself reads it
      const t = tableFromIPC(bytes)
      expect(t.getChild('s')!.toArray()).toEqual(['ORD', null, 'LAX', 'ORD', 'ORD'])
    }
  })

  it('keeps the schema of an empty table', () => {
    for (const format of ['file', 'stream'] as const) {
      const back = ipcToBatches(batchesToIPC(schema, [], format))
      expect(back.schema).toEqual(schema)
      expect(back.batches.reduce((n, b) => n + b.numRows, 0)).toBe(0)
    }
  })

  it('tableFromBatches reuses a shared dictionary without re-coding', () => {
    const b = batchOf(schema, rows)
    const t = tableFromBatches([sliceBatch(b, 0, 2), sliceBatch(b, 2, 4)])
    const d0 = t.batches[0]!.getChild('s')!.data[0]!
    const d1 = t.batches[1]!.getChild('s')!.data[0]!
    expect(d0.dictionary!.data[0]).toBe(d1.dictionary!.data[0])
    expect(d1.values.buffer).toBe((b.columns[5]!.values as Int32Array).buffer)
  })

  it('rejects garbage as CORRUPT_FILE with a cause', () => {
    let err: unknown
    try {
      ipcToBatches(new TextEncoder().encode('{"not":"arrow"}'))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(SourceError)
    expect((err as SourceError).code).toBe('CORRUPT_FILE')
    expect((err as SourceError).cause).toBeDefined()
  })

  it('round-trips arbitrary batches (fast-check)', () => {
    fc.assert(
      fc.property(tableArb(['boolean', 'int32', 'int64', 'float64', 'timestamp', 'string', 'binary', 'window']), fc.nat(40), ({ schema: s, rows: r }, cut) => {
        const b = batchOf(s, r)
        const k = Math.min(cut, r.length)
        const parts = [sliceBatch(b, 0, k), sliceBatch(b, k, r.length)]
        const back = ipcToBatches(batchesToIPC(s, parts, cut % 2 ? 'file' : 'stream'))
        expect(back.schema).toEqual(s)
        expect(back.batches.flatMap(rowsOf)).toEqual(r.map((row) => row.map((c) => (c instanceof Uint8Array ? Uint8Array.from(c) : c))))
      }),
      { numRuns: 150 },
    )
  })
})
