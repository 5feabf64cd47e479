import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Schema } from '../../src/batch.ts'
import { OptionError } from '../../src/errors.ts'
import { fileFormat, syncFile } from '../../src/formats/format.ts'
import { formatTimestamp, parseTimestamp } from '../../src/formats/values.ts'
import { MemoryFs } from '../../src/fs.ts'
import { batchOf, rowsOf, ts } from './_helpers.ts'

describe('fileFormat', () => {
  it('finds the four formats (case-insensitive, with aliases)', () => {
    expect(fileFormat('parquet').name).toBe('parquet')
    expect(fileFormat('PARQUET').extension).toBe('.parquet')
    expect(fileFormat('arrow').name).toBe('arrow')
    expect(fileFormat('ipc').name).toBe('arrow')
    expect(fileFormat('json').extension).toBe('.json')
    expect(fileFormat('jsonl').name).toBe('json')
    expect(fileFormat('csv').name).toBe('csv')
  })

  it('throws OptionError UNKNOWN_FORMAT listing the accepted names', () => {
    let err: unknown
    try {
      fileFormat('orc')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(OptionError)
    expect((err as OptionError).code).toBe('UNKNOWN_FORMAT')
    expect((err as OptionError).message).toMatch(/orc.*parquet, arrow, json, csv/)
  })

  it('every format round-trips the same rows and resolves the schema synchronously', async () => {
    const schema: Schema = [
      { name: 'origin', type: 'string', nullable: true },
      { name: 'delay', type: 'int64', nullable: true },
      { name: 'at', type: 'timestamp', nullable: true },
    ]
    const rows = [
      ['ORD', 5n, ts('2001-01-01T00:01:00Z')],
      [null, null, null],
      ['LAX', -(2n ** 62n), ts('2001-06-30T23:59:59.999Z')],
    ] as const
    for (const name of ['parquet', 'arrow', 'json', 'csv']) {
      const f = fileFormat(name)
      const fs = new MemoryFs()
      const path = `/out/part-0${f.extension}`
      fs.put(path, f.encode([batchOf(schema, rows as never)], schema))
      const options = name === 'csv' ? { header: true, inferSchema: true } : {}
      const opened = await f.open(fs, path, { ...options, schema })
      expect(rowsOf(await opened.read(0, 3)), name).toEqual(rows)
      const inferred = f.inferSchema(syncFile(fs, path), options)
      expect(inferred.map((x) => x.name), name).toEqual(['origin', 'delay', 'at'])
      expect(inferred[1]!.type, name).toBe('int64')
    }
  })
})

describe('syncFile', () => {
  it('reads clamped byte ranges synchronously; a missing file is FILE_NOT_FOUND', async () => {
    const fs = new MemoryFs()
    fs.put('/a/b.bin', '0123456789')
    const f = syncFile(fs, '/a/b.bin')
    expect(f.size).toBe(10)
    const text = (u: Uint8Array) => new TextDecoder().decode(u)
    expect(text(f.readRange(2, 5))).toBe('234')
    expect(text(f.readRange(8, 100))).toBe('89')
    expect(text(f.readRange(-3, 2))).toBe('01')
    expect(f.readRange(20, 30).length).toBe(0)
    expect(text(fs.readRangeSync('/a/b.bin', 2, 5))).toBe(text(await fs.readRange('/a/b.bin', 2, 5)))
    expect(() => syncFile(fs, '/a/missing')).toThrow(expect.objectContaining({ code: 'FILE_NOT_FOUND' }))
    expect(() => syncFile(fs, '/a/missing', 10).readRange(0, 1)).toThrow(expect.objectContaining({ code: 'FILE_NOT_FOUND' }))
  })
})

describe('timestamps', () => {
  it('formats with ms, or µs when needed, and parses back (fast-check)', () => {
    expect(formatTimestamp(ts('2001-01-01T00:00:00Z'))).toBe('2001-01-01T00:00:00.000Z')
    expect(formatTimestamp(-1n)).toBe('1969-12-31T23:59:59.999999Z')
    expect(parseTimestamp('2001-01-01T00:00:00+05:30')).toBe(ts('2000-12-31T18:30:00Z'))
    expect(parseTimestamp('2001-01-01T00:00:00-0800')).toBe(ts('2001-01-01T08:00:00Z'))
    expect(parseTimestamp('+012345-01-01T00:00:00Z')).toBe(BigInt(Date.UTC(12345, 0, 1)) * 1000n)
    expect(parseTimestamp('0099-01-01')).toBe(BigInt(Date.parse('0099-01-01T00:00:00Z')) * 1000n)
    for (const bad of ['2001-02-29', '2001-13-01', '2001-01-01T24:00', 'yesterday', '2001-01-01T00:00:00+25:00', '']) expect(parseTimestamp(bad), bad).toBeNull()
    fc.assert(
      fc.property(fc.bigInt({ min: -8_640_000_000_000_000_000n, max: 8_640_000_000_000_000_000n }), (us) => {
        expect(parseTimestamp(formatTimestamp(us))).toBe(us)
      }),
    )
  })
})
