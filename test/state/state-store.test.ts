import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { type Batch, type Schema, makeBatch } from '../../src/batch.ts'
import { MemoryFs } from '../../src/fs.ts'
import { StateStore } from '../../src/state/state-store.ts'
import { batchToRows } from '../../src/util/rows.ts'

const schema: Schema = [
  { name: 'key', type: 'string', nullable: true },
  { name: 'acc0_value', type: 'int64', nullable: false },
  { name: 'acc0_count', type: 'int64', nullable: false },
]

function rows(entries: [string, number][]): Batch {
  const dict = [...new Set(entries.map(([k]) => k))]
  return makeBatch(schema, [
    { type: 'string', length: entries.length, values: Int32Array.from(entries, ([k]) => dict.indexOf(k)), validity: null, dictionary: dict },
    { type: 'int64', length: entries.length, values: BigInt64Array.from(entries, ([, v]) => BigInt(v)), validity: null },
    { type: 'int64', length: entries.length, values: BigInt64Array.from(entries, () => 1n), validity: null },
  ], entries.length)
}

function keys(ks: string[]): Batch {
  return makeBatch(schema.slice(0, 1), [{ type: 'string', length: ks.length, values: Int32Array.from(ks, (_, i) => i), validity: null, dictionary: ks }], ks.length)
}

const asMap = (b: Batch) => new Map(batchToRows(b).map((r) => [r.key as string, r.acc0_value as number]))

describe('StateStore', () => {
  it('restores every retained version from snapshots + deltas, deltas only, and after purging', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ ups: fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.integer({ min: -5, max: 5 })), { maxLength: 4 }), rm: fc.subarray(['a', 'b', 'c', 'd', 'e']) }), { minLength: 1, maxLength: 14 }),
      async (versions) => {
        const fs = new MemoryFs()
        const store = new StateStore(fs, 'ck/state/0', schema, 1, { minDeltasForSnapshot: 3, minBatchesToRetain: 4 })
        await store.checkSchema()
        const model = new Map<string, number>()
        const history: Map<string, number>[] = [new Map()]
        for (const [i, v] of versions.entries()) {
          const ups = [...new Map(v.ups).entries()].filter(([k]) => !v.rm.includes(k))
          for (const [k, val] of ups) model.set(k, val)
          const removed = v.rm.filter((k) => model.has(k))
          for (const k of removed) model.delete(k)
          history.push(new Map(model))
          const snapshotRows = [...model.entries()]
          await store.commit(i + 1, { upserts: rows(ups), removedKeys: keys(removed) }, () => rows(snapshotRows))
        }
        const latest = versions.length
        for (let v = Math.max(0, latest - 3); v <= latest; v++) expect(asMap(await store.load(v))).toEqual(history[v])
        const files = (await fs.list('ck/state/0/0')).map((f) => f.path.split('/').pop())
        // snapshots every 3 versions; files older than the base snapshot of the retained window are purged
        if (latest >= 6) expect(files).not.toContain('1.delta')
        const snaps = files.filter((f) => f!.endsWith('.snapshot')).map((f) => Number(f!.split('.')[0]))
        expect(snaps.every((v) => v % 3 === 0)).toBe(true)
        if (latest >= 3) expect(snaps).toContain(latest - (latest % 3))
      },
    ), { numRuns: 60 })
  })

  it('replays watermark evictions (the predicate recorded in the delta) with upserts and removals, from snapshots and deltas', async () => {
    const tsSchema: Schema = [
      { name: 'window', type: 'window', nullable: false },
      { name: 'acc0_count', type: 'int64', nullable: false },
    ]
    const tsRows = (entries: [number, number][]): Batch => {
      const starts = BigInt64Array.from(entries, ([k]) => BigInt(k))
      return makeBatch(tsSchema, [
        { type: 'window', length: entries.length, values: new Uint8Array(0), validity: null, children: { start: { type: 'timestamp', length: entries.length, values: starts, validity: null }, end: { type: 'timestamp', length: entries.length, values: starts.map((x) => x + 10n), validity: null } } },
        { type: 'int64', length: entries.length, values: BigInt64Array.from(entries, ([, v]) => BigInt(v)), validity: null },
      ], entries.length)
    }
    const asTsMap = (b: Batch) => {
      if (b.numRows === 0) return new Map<number, number>()
      const st = b.columns[0]!.children!.start.values as BigInt64Array
      const v = b.columns[1]!.values as BigInt64Array
      return new Map(Array.from({ length: b.numRows }, (_, i) => [Number(st[i]), Number(v[i])]))
    }
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ ups: fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 50 })), { maxLength: 5 }), evict: fc.option(fc.integer({ min: -1, max: 9 })) }), { minLength: 1, maxLength: 12 }),
      async (versions) => {
        const fs = new MemoryFs()
        const store = new StateStore(fs, 'ck/state/0', tsSchema, 1, { minDeltasForSnapshot: 4, minBatchesToRetain: 100 })
        const model = new Map<number, number>()
        const history: Map<number, number>[] = [new Map()]
        for (const [i, v] of versions.entries()) {
          const ups = [...new Map(v.ups).entries()]
          for (const [k, val] of ups) model.set(k, val)
          // upserts first, then the eviction (which may evict this batch's own upserts)
          if (v.evict !== null) for (const k of [...model.keys()]) if (k <= v.evict) model.delete(k)
          history.push(new Map(model))
          const snap = [...model.entries()]
          await store.commit(i + 1, { upserts: tsRows(ups), ...(v.evict !== null ? { evicted: { key: 0, atOrBelow: BigInt(v.evict) } } : {}) }, () => tsRows(snap))
        }
        for (let v = 0; v <= versions.length; v++) expect(asTsMap(await store.load(v))).toEqual(history[v])
      },
    ), { numRuns: 60 })
  })

  it('names a delta whose eviction entry is invalid', async () => {
    const fs = new MemoryFs()
    const store = new StateStore(fs, 's', schema, 1, { minDeltasForSnapshot: 10, minBatchesToRetain: 100 })
    await store.commit(1, { upserts: rows([['a', 1]]), evicted: { key: 1, atOrBelow: 0n } }, () => rows([]))
    await expect(store.load(1)).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT_FILE', message: expect.stringContaining('s/0/1.delta') })
  })

  it('falls back to an older snapshot when the newest is torn, and names a torn delta it cannot skip', async () => {
    const fs = new MemoryFs()
    const store = new StateStore(fs, 's', schema, 1, { minDeltasForSnapshot: 2, minBatchesToRetain: 100 })
    const model: [string, number][] = []
    for (let v = 1; v <= 5; v++) {
      model.push([`k${v}`, v])
      await store.commit(v, { upserts: rows([[`k${v}`, v]]), removedKeys: keys([]) }, () => rows(model))
    }
    fs.put('s/0/4.snapshot', new Uint8Array([1, 2, 3]))
    expect(asMap(await store.load(5)).size).toBe(5)
    fs.put('s/0/3.delta', '')
    await expect(store.load(5)).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT_FILE', message: expect.stringContaining('s/0/4.snapshot') })
    await expect(store.load(3)).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT_FILE', message: expect.stringContaining('s/0/3.delta') })
  })

  it('refuses a different state schema, naming both', async () => {
    const fs = new MemoryFs()
    await new StateStore(fs, 's', schema, 1, { minDeltasForSnapshot: 10, minBatchesToRetain: 100 }).checkSchema()
    const other: Schema = [{ name: 'origin', type: 'string', nullable: true }, ...schema.slice(1)]
    await expect(new StateStore(fs, 's', other, 1, { minDeltasForSnapshot: 10, minBatchesToRetain: 100 }).checkSchema())
      .rejects.toMatchObject({ code: 'STATE_SCHEMA_MISMATCH', message: expect.stringMatching(/origin: string.*key: string/) })
  })
})
