import { type Batch, type Column, type Schema, concatBatches, isValid, makeBatch, takeBatch } from '../batch.ts'
import { batchesToIPC, ipcToBatches } from '../arrow.ts'
import { CheckpointError } from '../errors.ts'
import { type Fs, baseName, joinPath } from '../fs.ts'
import type { StateChanges } from '../exec/aggregate.ts'

export interface StateStoreOptions {
  /** Write a snapshot every this many versions (Spark's stateStore.minDeltasForSnapshot). */
  readonly minDeltasForSnapshot: number
  /** Keep at least this many versions recoverable (Spark's minBatchesToRetain). */
  readonly minBatchesToRetain: number
}

const REMOVED = '_removed'
/** Schema metadata key of a delta whose batch evicted rows by a key's value (see StateChanges.evicted). */
const EVICTED = 'sluice.evicted'

/**
 * Versioned state of one stateful operator, as Spark's HDFSBackedStateStore: version v is the state
 * after batch v − 1. Each version writes `<v>.delta` — the rows the batch upserted, then the keys it
 * removed one by one, flagged by a `_removed` column; a watermark eviction is recorded once, as the
 * schema metadata `sluice.evicted` = `{"column": <key column>, "atOrBelow": "<µs>"}` (rows whose
 * window start or timestamp key is at or below it, applied after the upserts) — and every
 * `minDeltasForSnapshot` versions a full `<v>.snapshot`; both are Arrow IPC files with the
 * operator's state schema, readable by any Arrow tool. Loading version v reads the latest snapshot
 * ≤ v and replays the deltas after it. `_metadata/schema` records the state schema; a different
 * one at restart is refused.
 */
export class StateStore {
  constructor(
    private readonly fs: Fs,
    /** `<checkpoint>/state/<operatorId>` */
    private readonly dir: string,
    private readonly schema: Schema,
    private readonly keyColumns: number,
    private readonly options: StateStoreOptions,
  ) {}

  private get partitionDir(): string {
    return joinPath(this.dir, '0')
  }

  /** Writes or checks `_metadata/schema`. @throws CheckpointError STATE_SCHEMA_MISMATCH */
  async checkSchema(): Promise<void> {
    const file = joinPath(this.dir, '_metadata', 'schema')
    const want = { keySchema: this.schema.slice(0, this.keyColumns), valueSchema: this.schema.slice(this.keyColumns) }
    if ((await this.fs.stat(file)) === null) {
      await this.fs.writeAtomic(file, JSON.stringify(want, null, 1))
      return
    }
    const text = new TextDecoder().decode(await this.fs.read(file))
    let have: typeof want
    try {
      have = JSON.parse(text) as typeof want
    } catch (cause) {
      throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `State schema file ${file} is not valid JSON`, { cause })
    }
    const fmt = (s: Schema) => s.map((f) => `${f.name}: ${f.type}`).join(', ')
    for (const part of ['keySchema', 'valueSchema'] as const) {
      if (fmt(have[part]) !== fmt(want[part])) {
        throw new CheckpointError(
          'STATE_SCHEMA_MISMATCH',
          `The query's state ${part === 'keySchema' ? 'key' : 'value'} schema [${fmt(want[part])}] does not match the checkpoint's [${fmt(have[part])}] (${file}). ` +
            'Grouping keys and aggregates cannot change across restarts; use a new checkpoint location.',
        )
      }
    }
  }

  /** Commits version `version` (the state after batch version − 1). */
  async commit(version: number, changes: StateChanges, snapshot: () => Batch): Promise<void> {
    const removed = changes.removedKeys
    let rows = changes.upserts
    if (removed !== undefined && removed.numRows > 0) {
      const removedRows = makeBatch(this.schema, [
        ...removed.columns,
        ...this.schema.slice(this.keyColumns).map((f): Column => ({ type: f.type, length: removed.numRows, values: f.type === 'float64' ? new Float64Array(removed.numRows) : new BigInt64Array(removed.numRows), validity: null })),
      ], removed.numRows)
      rows = concatBatches(this.schema, [rows, removedRows])
    }
    const n = rows.numRows
    const flag = new Uint8Array(n)
    flag.fill(1, changes.upserts.numRows)
    const delta = makeBatch([...this.schema, { name: REMOVED, type: 'boolean', nullable: false }], [...rows.columns, { type: 'boolean', length: n, values: flag, validity: null }], n)
    const ev = changes.evicted
    const metadata = ev === undefined ? undefined : new Map([[EVICTED, JSON.stringify({ column: this.schema[ev.key]!.name, atOrBelow: String(ev.atOrBelow) })]])
    await this.fs.writeAtomic(this.file(version, 'delta'), batchesToIPC(delta.schema, [delta], 'file', metadata))
    if (version % this.options.minDeltasForSnapshot === 0) {
      const snap = snapshot()
      await this.fs.writeAtomic(this.file(version, 'snapshot'), batchesToIPC(this.schema, [snap], 'file'))
      await this.purge(version)
    }
  }

  /**
   * The state rows at `version` (0: empty): the latest snapshot ≤ version plus the deltas after it.
   * A torn snapshot falls back to an older snapshot (or to the deltas from version 1) when those
   * files are still there.
   * @throws CheckpointError STATE_MISSING / CORRUPT_CHECKPOINT_FILE naming the file
   */
  async load(version: number): Promise<Batch> {
    if (version === 0) return makeBatch(this.schema, [], 0)
    const files = (await this.fs.list(this.partitionDir)).map((f) => baseName(f.path))
    const snapshots = files.filter((f) => f.endsWith('.snapshot')).map((f) => Number(f.split('.')[0])).filter((v) => v <= version)
    const bases = [...snapshots.sort((a, b) => b - a), 0]
    let firstError: CheckpointError | null = null
    for (const from of bases) {
      try {
        return await this.loadFrom(from, version, files)
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e
        firstError ??= e
        // only a torn snapshot is worth a fallback; a missing or torn delta ends the search
        if (!(e.code === 'CORRUPT_CHECKPOINT_FILE' && from > 0 && e.message.includes(`${from}.snapshot`))) break
      }
    }
    throw firstError!
  }

  private async loadFrom(from: number, version: number, files: string[]): Promise<Batch> {
    const parts: Batch[] = []
    // replay: the last write of a key wins; an eviction or a removal deletes it
    const live = new Map<string, [number, number]>()
    const apply = (b: Batch, flags: Uint8Array | null, evicted: { key: number; atOrBelow: bigint } | null): void => {
      const bi = parts.push(b) - 1
      for (let r = 0; r < b.numRows; r++) if (!flags || !flags[r]) live.set(keyString(b, this.keyColumns, r), [bi, r])
      if (evicted) {
        for (const [key, [pi, r]] of live) if (keyValue(parts[pi]!.columns[evicted.key]!, r) <= evicted.atOrBelow) live.delete(key)
      }
      if (flags) for (let r = 0; r < b.numRows; r++) if (flags[r]) live.delete(keyString(b, this.keyColumns, r))
    }
    if (from > 0) apply((await this.readFile(this.file(from, 'snapshot'))).batch, null, null)
    for (let v = from + 1; v <= version; v++) {
      const file = this.file(v, 'delta')
      if (!files.includes(`${v}.delta`)) {
        throw new CheckpointError('STATE_MISSING', `State file ${file} is missing: cannot rebuild state version ${version} (from ${from > 0 ? `snapshot ${from}` : 'version 0'})`)
      }
      const { batch: b, metadata } = await this.readFile(file)
      const flagCol = b.columns[b.schema.findIndex((f) => f.name === REMOVED)]!
      apply(makeBatch(this.schema, b.columns.slice(0, this.schema.length), b.numRows), flagCol.values as Uint8Array, this.evictionOf(metadata, file))
    }
    const picks = parts.map(() => [] as number[])
    for (const [bi, r] of live.values()) picks[bi]!.push(r)
    return concatBatches(this.schema, parts.map((b, bi) => takeBatch(b, Int32Array.from(picks[bi]!))))
  }

  /** The eviction a delta records. @throws CheckpointError CORRUPT_CHECKPOINT_FILE naming the file */
  private evictionOf(metadata: ReadonlyMap<string, string>, file: string): { key: number; atOrBelow: bigint } | null {
    const text = metadata.get(EVICTED)
    if (text === undefined) return null
    try {
      const { column, atOrBelow } = JSON.parse(text) as { column: string; atOrBelow: string }
      const key = this.schema.findIndex((f) => f.name === column)
      if (key < 0 || key >= this.keyColumns) throw new Error(`'${column}' is not a key column`)
      return { key, atOrBelow: BigInt(atOrBelow) }
    } catch (cause) {
      throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `State file ${file} has an invalid ${EVICTED} entry: ${text}`, { cause })
    }
  }

  private async readFile(file: string): Promise<{ batch: Batch; metadata: ReadonlyMap<string, string> }> {
    let bytes: Uint8Array
    try {
      bytes = await this.fs.read(file)
    } catch (cause) {
      throw new CheckpointError('STATE_MISSING', `State file ${file} cannot be read`, { cause })
    }
    try {
      const { batches, schema, metadata } = ipcToBatches(bytes)
      return { batch: concatBatches(schema, batches), metadata }
    } catch (cause) {
      throw new CheckpointError('CORRUPT_CHECKPOINT_FILE', `State file ${file} is torn or not Arrow IPC`, { cause })
    }
  }

  private file(version: number, kind: 'delta' | 'snapshot'): string {
    return joinPath(this.partitionDir, `${version}.${kind}`)
  }

  /** Deletes files no longer needed to load any of the last minBatchesToRetain versions. */
  private async purge(latest: number): Promise<void> {
    const oldestToKeep = latest - this.options.minBatchesToRetain + 1
    if (oldestToKeep <= 0) return
    const files = (await this.fs.list(this.partitionDir)).map((f) => baseName(f.path))
    const snaps = files.filter((f) => f.endsWith('.snapshot')).map((f) => Number(f.split('.')[0])).filter((v) => v <= oldestToKeep)
    if (snaps.length === 0) return
    const base = Math.max(...snaps)
    for (const f of files) {
      const v = Number(f.split('.')[0])
      if (v < base) await this.fs.remove(joinPath(this.partitionDir, f))
    }
  }
}

/** The value an eviction compares: a window's start, or an i64 key's value; null is 0 (as the kernel's lanes). */
function keyValue(c: Column, r: number): bigint {
  if (!isValid(c.validity, r)) return 0n
  if (c.type === 'window') return (c.children!.start.values as BigInt64Array)[r]!
  return (c.values as BigInt64Array)[r]!
}

function keyString(b: Batch, keyColumns: number, r: number): string {
  let s = ''
  for (let i = 0; i < keyColumns; i++) {
    const c = b.columns[i]!
    if (!isValid(c.validity, r)) s += '\u0000N|'
    else if (c.type === 'window') s += String((c.children!.start.values as BigInt64Array)[r]) + '|'
    else if (c.type === 'string') s += c.dictionary![(c.values as Int32Array)[r]!] + '\u0000|'
    else s += String((c.values as Int32Array)[r]) + '|'
  }
  return s
}
