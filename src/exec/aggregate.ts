import {
  type Batch, type Column, type DataType, type Field, type Schema,
  DictionaryBuilder, isValid, makeBatch, newValidity, setValid, takeBatch,
} from '../batch.ts'
import { AnalysisError } from '../errors.ts'
import { ParallelismTuner, PartialAggregator, type Executor, type Partials } from '../kernels/executor.ts'
import type { Acc, AccInput, AccInputColumn, AccSpec, GroupRows, GroupTable, Kernels, KeyInput, KeyLane, LaneWidth, LateFilter } from '../kernels/kernels.ts'
import { type AggFn, type Expr, exprName, typeOf, unalias } from '../plan/expr.ts'
import { evalExpr } from './eval.ts'

export type OutputMode = 'append' | 'update' | 'complete'

/** How one grouping key becomes a fixed-width lane of the kernel's hash table. */
interface KeyPlan {
  readonly name: string
  readonly type: DataType
  readonly expr: Expr
  readonly width: LaneWidth
  readonly window?: { readonly windowUs: number; readonly slideUs: number; readonly startUs: number }
  /** State-wide dictionary of a string key: codes are stable for the life of the state (replaced on restore). */
  dict?: DictionaryBuilder
  /** Bit in the null-flags lane, for nullable non-string keys. */
  readonly nullBit?: number
}

interface AggPlan {
  readonly name: string
  readonly fn: AggFn
  readonly type: DataType
  readonly inputType: DataType | null
  readonly expr: Expr | null
  readonly spec: number
}

export interface AggregateMetrics {
  numRowsTotal: number
  numRowsUpdated: number
  numRowsRemoved: number
  numRowsDroppedByWatermark: number
  memoryUsedBytes: number
}

/** A batch whose partial aggregation has started (see {@link AggregateOperator.prepare}). */
export interface PreparedBatch {
  readonly input: Batch
  /** The partials, and the time until they were ready (ms). */
  readonly parts: Promise<{ parts: Partials; ms: number }>
  /** Prepared while the caller had other work (see {@link AggregateOperator.prepare}). */
  readonly background: boolean
  /** Time the calling thread spent starting it (ms): slicing, dispatching and its own share. */
  readonly syncMs: number
}

/**
 * What a batch changed in the state, for the state store's delta: rows upserted, then rows whose
 * key column `evicted.key` (a window's start, or a timestamp/int64 key; null counts as 0) is at or
 * below `evicted.atOrBelow` removed, then the keys in `removedKeys` removed.
 */
export interface StateChanges {
  readonly upserts: Batch
  readonly evicted?: { readonly key: number; readonly atOrBelow: bigint }
  readonly removedKeys?: Batch
}

/**
 * Streaming (and batch) hash aggregation, as Spark's StateStoreRestore/Save pair with a partial
 * aggregation in front: each micro-batch is partially aggregated by the executor (WASM, possibly in
 * workers), partial rows whose event time is at or below the watermark are dropped (and counted, as
 * Spark counts them after partial aggregation), the rest merged into the state table, and rows are
 * emitted per output mode: Append emits and evicts groups whose window end (or event time) is ≤ the
 * watermark; Update emits the groups changed in the batch and then silently evicts; Complete emits
 * every group and evicts nothing.
 */
export class AggregateOperator {
  readonly keySchema: Schema
  readonly outputSchema: Schema
  readonly stateSchema: Schema
  private readonly keys: KeyPlan[]
  private readonly aggs: AggPlan[]
  private readonly specs: AccSpec[]
  private readonly laneWidths: LaneWidth[]
  private readonly nullLane: boolean
  /** Index of the key that carries the watermark, and its delay. */
  readonly watermarkKey: number
  private state: GroupTable
  /** Partial aggregation of this thread's share of a batch, in the state's kernels instance. */
  private readonly local: PartialAggregator
  /** Whether a batch is split across the executor's threads, from measured costs. */
  private readonly tuner: ParallelismTuner
  /** The prepared batch not yet processed (it holds the local partial table). */
  private pending: PreparedBatch | null = null

  constructor(
    private readonly kernels: Kernels,
    private readonly executor: Executor,
    inputSchema: Schema,
    keyExprs: readonly Expr[],
    aggExprs: readonly Expr[],
    eventTimeKeys: ReadonlySet<string>,
    private readonly mode: OutputMode,
  ) {
    let nullBits = 0
    this.keys = keyExprs.map((k): KeyPlan => {
      const u = unalias(k)
      const name = exprName(k)
      const type = typeOf(k, inputSchema)
      if (u.kind === 'window') {
        return { name, type, expr: u.expr, width: 8, window: { windowUs: u.windowUs, slideUs: u.slideUs, startUs: u.startUs } }
      }
      switch (type) {
        case 'string':
          return { name, type, expr: k, width: 4, dict: new DictionaryBuilder() }
        case 'int32':
        case 'boolean':
          return { name, type, expr: k, width: 4, nullBit: nullBits++ }
        case 'int64':
        case 'timestamp':
        case 'float64':
          return { name, type, expr: k, width: 8, nullBit: nullBits++ }
        default:
          throw new AnalysisError('UNSUPPORTED_GROUPING_KEY', `Cannot group by ${name} of type ${type}`)
      }
    })
    if (this.keys.filter((k) => k.window).length > 1) {
      throw new AnalysisError('MULTIPLE_TIME_WINDOWS', 'Multiple time/session window expressions would result in a cartesian product of rows, therefore they are currently not supported.')
    }
    // a global aggregation (no keys) groups by a constant lane
    this.nullLane = nullBits > 0 || this.keys.length === 0
    if (nullBits > 31) throw new AnalysisError('TOO_MANY_GROUPING_KEYS', 'At most 31 nullable grouping keys are supported')
    this.specs = []
    this.aggs = aggExprs.map((a): AggPlan => {
      const u = unalias(a) as Extract<Expr, { kind: 'agg' }>
      const inputType = u.expr === null ? null : typeOf(u.expr, inputSchema)
      const input: AccInput = inputType === null ? 'none' : accInput(inputType)
      const kind = u.fn === 'avg' ? 'sum' : u.fn
      const spec = this.specs.length
      this.specs.push({ kind, input })
      return { name: exprName(a), fn: u.fn, type: typeOf(a, inputSchema), inputType, expr: u.expr, spec }
    })
    this.laneWidths = [...this.keys.map((k) => k.width), ...(this.nullLane ? [4 as LaneWidth] : [])]
    this.watermarkKey = this.keys.findIndex((k) => eventTimeKeys.has(k.name))
    this.keySchema = this.keys.map((k): Field => ({ name: k.name, type: k.type, nullable: k.type !== 'window' }))
    this.outputSchema = [...this.keySchema, ...this.aggs.map((a): Field => ({ name: a.name, type: a.type, nullable: true }))]
    this.stateSchema = [
      ...this.keySchema,
      ...this.specs.flatMap((s, j): Field[] => [
        ...(s.kind === 'count' ? [] : [{ name: `acc${j}_value`, type: s.input === 'float64' ? 'float64' as const : 'int64' as const, nullable: false }]),
        { name: `acc${j}_count`, type: 'int64', nullable: false },
      ]),
    ]
    this.state = kernels.createGroupTable(this.laneWidths, this.specs)
    this.local = new PartialAggregator(kernels)
    this.tuner = new ParallelismTuner(executor.threads)
  }

  /** True when state rows can be evicted by the watermark (Append/Update with an event-time key). */
  get evictsByWatermark(): boolean {
    return this.watermarkKey >= 0 && this.mode !== 'complete'
  }

  get numGroups(): number {
    return this.state.numGroups
  }

  /**
   * Runs one micro-batch. `watermarkMs` is the batch's watermark (null: no watermark in the query).
   * Returns the rows to emit (outputSchema), the state changes for the delta, and state metrics.
   */
  async process(input: Batch, watermarkMs: number | null, prepared?: PreparedBatch): Promise<{ output: Batch; changes: StateChanges; metrics: AggregateMetrics }> {
    const prep = prepared ?? this.prepare(input)
    if (prep.input !== input) throw new Error('AggregateOperator.process: the prepared batch is not this input')
    let parts: Partials
    let partialMs: number
    try {
      ;({ parts, ms: partialMs } = await prep.parts)
    } finally {
      if (this.pending === prep) this.pending = null
    }
    const tm = performance.now()
    // partial groups at or below the watermark are late: dropped (and counted) before the merge
    const late: LateFilter | undefined = this.evictsByWatermark && watermarkMs !== null ? { lane: this.watermarkKey, threshold: this.evictionThreshold(watermarkMs) } : undefined
    let dropped = 0
    const idLists: Int32Array[] = []
    if (parts.table !== null) {
      const t = parts.table
      try {
        const before = t.numGroups
        const ids = this.state.mergeTable(t, late)
        dropped += before - ids.length
        idLists.push(ids)
      } finally {
        t.clear()
      }
    }
    for (const p of parts.rows) {
      if (p.numGroups === 0) continue
      const ids = this.state.merge(p, late)
      dropped += p.numGroups - ids.length
      idLists.push(ids)
    }
    // the cost of the partial aggregation and its merge, per row, as split (or not): for a batch
    // prepared in the background only the calling thread's time counts (waiting for the workers
    // overlapped other work, and includes it)
    const mergeMs = performance.now() - tm
    if (input.numRows > 0) this.tuner.record(parts.rows.length > 0, (prep.background ? prep.syncMs : partialMs) + mergeMs, input.numRows)
    const updated = this.state.exportIds(touchedIds(idLists, this.state.numGroups))
    let output: GroupRows
    let removed: GroupRows | null = null
    let evicted: StateChanges['evicted']
    if (this.mode === 'complete') {
      output = this.state.export()
    } else {
      if (this.evictsByWatermark && watermarkMs !== null) {
        evicted = { key: this.watermarkKey, atOrBelow: this.evictionThreshold(watermarkMs) }
        removed = this.state.removeWhere(evicted.key, evicted.atOrBelow)
      }
      output = this.mode === 'update' ? updated : removed ?? emptyRows(this.laneWidths, this.specs)
    }
    const metrics: AggregateMetrics = {
      numRowsTotal: this.state.numGroups,
      numRowsUpdated: updated.numGroups,
      numRowsRemoved: removed?.numGroups ?? 0,
      numRowsDroppedByWatermark: dropped,
      memoryUsedBytes: this.state.numGroups * this.rowBytes(),
    }
    return {
      output: this.finalize(output),
      // evictions are recorded as the predicate, not as the evicted keys (half the delta's rows before)
      changes: { upserts: this.toStateBatch(updated), ...(removed !== null && removed.numGroups > 0 ? { evicted } : {}) },
      metrics,
    }
  }

  /**
   * Starts the partial aggregation of a batch, which reads no state: a micro-batch loop may prepare
   * batch N+1 (once its offsets are known) while batch N's state delta, sink output and commit log
   * are being written, then call `process(input, watermark, prepared)` for it. At most one prepared
   * batch may be outstanding; one that will not be processed must be given to {@link discard}.
   * `background`: the caller has other work until it processes the batch, so splitting the batch
   * across threads is judged by the calling thread's time, not by the time until the partials are
   * ready.
   */
  prepare(input: Batch, opts: { background?: boolean } = {}): PreparedBatch {
    if (this.pending !== null) throw new Error('AggregateOperator.prepare: a prepared batch is still outstanding')
    const split = this.tuner.choose()
    const t0 = performance.now()
    const parts = input.numRows > 0 ? this.partialAggregate(input, split) : Promise.resolve<Partials>({ table: null, rows: [] })
    const syncMs = performance.now() - t0
    const prep: PreparedBatch = { input, parts: parts.then((p) => ({ parts: p, ms: performance.now() - t0 })), background: opts.background === true, syncMs }
    prep.parts.catch(() => {
      if (this.pending === prep) this.pending = null
    })
    this.pending = prep
    return prep
  }

  /** Drops a prepared batch that will not be processed (releases its partial table). */
  async discard(prepared: PreparedBatch): Promise<void> {
    try {
      const { parts } = await prepared.parts
      parts.table?.clear()
    } catch {
      // its failure is reported by whoever processes or discards it; nothing to release
    } finally {
      if (this.pending === prepared) this.pending = null
    }
  }

  /** All state rows (state schema), for snapshots. */
  snapshot(): Batch {
    return this.toStateBatch(this.state.export())
  }

  /** Replaces the state with the given rows (state schema). */
  restore(rows: Batch): void {
    this.state.dispose()
    for (const k of this.keys) if (k.dict) k.dict = new DictionaryBuilder()
    this.state = this.kernels.createGroupTable(this.laneWidths, this.specs)
    if (rows.numRows > 0) this.state.merge(this.fromStateBatch(rows))
  }

  dispose(): void {
    this.state.dispose()
    this.local.dispose()
  }

  /** Lane threshold: a group is at or below the watermark when its lane value ≤ this. */
  private evictionThreshold(watermarkMs: number): bigint {
    const k = this.keys[this.watermarkKey]!
    const wmUs = BigInt(watermarkMs) * 1000n
    return k.window ? wmUs - BigInt(k.window.windowUs) : wmUs
  }

  private rowBytes(): number {
    return this.laneWidths.reduce((s, w) => s + w, 0) + this.specs.length * 16 + 8
  }

  /**
   * Partial aggregation of a batch. Tumbling windows and string keys are computed in the kernel
   * from the batch's own buffers (window start from the timestamp, state dictionary code from the
   * batch dictionary code), so the common case copies no column in JS; sliding windows expand the
   * rows first (one row per window).
   */
  private async partialAggregate(input: Batch, split: boolean): Promise<Partials> {
    let batch = input
    const windowKey = this.keys.find((k) => k.window)
    let windowLane: KeyInput | null = null
    if (windowKey) {
      const ts = evalExpr(windowKey.expr, batch)
      const w = windowKey.window!
      if (w.windowUs === w.slideUs) {
        windowLane = { kind: 'tumble', ts: ts.values as BigInt64Array, validity: ts.validity, sizeUs: BigInt(w.windowUs), startUs: BigInt(w.startUs) }
      } else {
        const r = this.kernels.assignWindows(ts.values as BigInt64Array, ts.validity, BigInt(w.windowUs), BigInt(w.slideUs), BigInt(w.startUs))
        if (r.rows !== null) batch = takeBatch(batch, r.rows)
        windowLane = r.starts
      }
    }
    const n = batch.numRows
    if (n === 0) return { table: null, rows: [] }
    const lanes: KeyInput[] = []
    const nullFlags = this.nullLane ? new Int32Array(n) : null
    for (const k of this.keys) {
      if (k.window) {
        lanes.push(windowLane!)
        continue
      }
      const c = evalExpr(k.expr, batch)
      if (k.dict) lanes.push({ kind: 'dict', codes: c.values as Int32Array, validity: c.validity, remap: k.dict.remap(c.dictionary!) })
      else lanes.push(this.keyLane(k, c, nullFlags))
    }
    if (nullFlags) lanes.push(nullFlags)
    const inputs = this.aggs.map((a) => (a.expr === null ? null : accInputColumn(evalExpr(a.expr, batch))))
    return this.executor.partialAggregateWith({ laneWidths: this.laneWidths, specs: this.specs, keys: lanes, inputs, n }, this.local, { parallel: split })
  }

  private keyLane(k: KeyPlan, c: Column, nullFlags: Int32Array | null): KeyLane {
    const n = c.length
    if (k.dict) {
      const remap = k.dict.remap(c.dictionary!)
      const src = c.values as Int32Array
      const out = new Int32Array(n)
      for (let i = 0; i < n; i++) out[i] = isValid(c.validity, i) ? remap[src[i]!]! : -1
      return out
    }
    const bit = 1 << k.nullBit!
    if (c.validity !== null && nullFlags !== null) {
      for (let i = 0; i < n; i++) if (!isValid(c.validity, i)) nullFlags[i]! |= bit
    }
    const zeroNulls = <T extends Int32Array | BigInt64Array>(lane: T, zero: T[number]): T => {
      if (c.validity === null) return lane
      const copy = lane.slice() as T
      for (let i = 0; i < n; i++) if (!isValid(c.validity, i)) copy[i] = zero
      return copy
    }
    switch (c.type) {
      case 'boolean':
        return zeroNulls(Int32Array.from(c.values as Uint8Array), 0)
      case 'int32':
        return zeroNulls(c.values as Int32Array, 0)
      case 'float64': {
        // group by the bit pattern; normalise -0 and NaN as Spark does
        const f = Float64Array.from(c.values as Float64Array, (v) => (v === 0 ? 0 : Number.isNaN(v) ? NaN : v))
        return zeroNulls(new BigInt64Array(f.buffer), 0n)
      }
      default:
        return zeroNulls(c.values as BigInt64Array, 0n)
    }
  }

  /** Decodes key lanes into columns of keySchema. */
  private keyColumns(rows: GroupRows): Column[] {
    const n = rows.numGroups
    const flags = this.nullLane ? (rows.keys[this.keys.length] as Int32Array) : null
    return this.keys.map((k, i): Column => {
      const lane = rows.keys[i]!
      if (k.window) {
        const starts = lane as BigInt64Array
        const ends = addI64(starts, BigInt(k.window.windowUs), n)
        return {
          type: 'window', length: n, values: new Uint8Array(0), validity: null,
          children: { start: { type: 'timestamp', length: n, values: starts, validity: null }, end: { type: 'timestamp', length: n, values: ends, validity: null } },
        }
      }
      if (k.dict) {
        const codes = lane as Int32Array
        let validity: Uint8Array | null = null
        for (let j = 0; j < n; j++) {
          if (codes[j]! < 0) {
            validity ??= newValidity(n)
            setValid(validity, j, false)
          }
        }
        return { type: 'string', length: n, values: codes, validity, dictionary: k.dict.strings }
      }
      let validity: Uint8Array | null = null
      if (flags) {
        const bit = 1 << k.nullBit!
        for (let j = 0; j < n; j++) {
          if ((flags[j]! & bit) !== 0) {
            validity ??= newValidity(n)
            setValid(validity, j, false)
          }
        }
      }
      switch (k.type) {
        case 'boolean': return { type: k.type, length: n, values: Uint8Array.from(lane as Int32Array), validity }
        case 'float64': return { type: k.type, length: n, values: new Float64Array((lane as BigInt64Array).slice().buffer), validity }
        default: return { type: k.type, length: n, values: lane as Int32Array | BigInt64Array, validity }
      }
    })
  }

  /** Final aggregate values (count, sum, avg = sum / count, min, max) with SQL NULL where no input was non-null. */
  private finalize(rows: GroupRows): Batch {
    const n = rows.numGroups
    const cols = this.keyColumns(rows)
    for (const a of this.aggs) {
      const acc = rows.accs[a.spec]!
      if (a.fn === 'count') {
        cols.push({ type: 'int64', length: n, values: acc.count, validity: null })
        continue
      }
      const validity = nullWhereZero(acc.count, n)
      if (a.fn === 'avg') {
        const out = new Float64Array(n)
        const c32 = words(acc.count, n)
        const v = acc.value!
        if (v instanceof Float64Array) {
          for (let j = 0; j < n; j++) {
            const c = c32[2 * j + 1]! * 4294967296 + (c32[2 * j]! >>> 0)
            out[j] = c === 0 ? 0 : v[j]! / c
          }
        } else {
          const v32 = words(v, n)
          for (let j = 0; j < n; j++) {
            const c = c32[2 * j + 1]! * 4294967296 + (c32[2 * j]! >>> 0)
            // hi * 2^32 + lo: one rounding, as Number(bigint)
            out[j] = c === 0 ? 0 : (v32[2 * j + 1]! * 4294967296 + (v32[2 * j]! >>> 0)) / c
          }
        }
        cols.push({ type: 'float64', length: n, values: out, validity })
      } else if (a.type === 'int32' || a.type === 'boolean') {
        // the i64 accumulator of an i32 / boolean input fits its low word
        const v32 = words(acc.value as BigInt64Array, n)
        const out = a.type === 'int32' ? new Int32Array(n) : new Uint8Array(n)
        for (let j = 0; j < n; j++) out[j] = v32[2 * j]!
        cols.push({ type: a.type, length: n, values: out, validity })
      } else {
        cols.push({ type: a.type, length: n, values: acc.value!, validity })
      }
    }
    return makeBatch(this.outputSchema, cols, n)
  }

  private toStateBatch(rows: GroupRows): Batch {
    const n = rows.numGroups
    const cols = this.keyColumns(rows)
    this.specs.forEach((s, j) => {
      const acc = rows.accs[j]!
      if (s.kind !== 'count') cols.push({ type: acc.value instanceof Float64Array ? 'float64' : 'int64', length: n, values: acc.value!, validity: null })
      cols.push({ type: 'int64', length: n, values: acc.count, validity: null })
    })
    return makeBatch(this.stateSchema, cols, n)
  }

  /** State-schema rows → lanes and accumulators (strings re-interned into the state dictionaries). */
  fromStateBatch(b: Batch): GroupRows {
    const n = b.numRows
    const nullFlags = this.nullLane ? new Int32Array(n) : null
    const keys: KeyLane[] = this.keys.map((k, i) => {
      const c = b.columns[i]!
      if (k.window) return (c.children!.start.values as BigInt64Array).slice()
      return this.keyLane(k, c, nullFlags)
    })
    if (nullFlags) keys.push(nullFlags)
    let ci = this.keys.length
    const accs: Acc[] = this.specs.map((s) => {
      const value = s.kind === 'count' ? null : (b.columns[ci++]!.values as BigInt64Array | Float64Array)
      const count = b.columns[ci++]!.values as BigInt64Array
      return { value, count }
    })
    return { numGroups: n, keys, accs }
  }
}

function accInput(t: DataType): AccInput {
  switch (t) {
    case 'float64': return 'float64'
    case 'int64': case 'timestamp': return 'int64'
    case 'int32': case 'string': case 'boolean': return 'int32'
    default: throw new AnalysisError('UNSUPPORTED_AGGREGATE_INPUT', `Cannot aggregate a column of type ${t}`)
  }
}

function accInputColumn(c: Column): AccInputColumn {
  if (c.type === 'boolean') return { values: Int32Array.from(c.values as Uint8Array), validity: c.validity }
  return { values: c.values as Int32Array | BigInt64Array | Float64Array, validity: c.validity }
}

/** The i64 values' 32-bit words (low, high signed), without BigInt per value (little-endian, as WASM). */
function words(a: BigInt64Array | Float64Array, n: number): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, 2 * n)
}

/** a[i] + delta for i < n, wrapping as i64, with 32-bit word arithmetic. */
function addI64(a: BigInt64Array, delta: bigint, n: number): BigInt64Array {
  const out = new BigInt64Array(n)
  const s = new Uint32Array(a.buffer, a.byteOffset, 2 * n)
  const o = new Uint32Array(out.buffer, 0, 2 * n)
  const d = BigInt.asUintN(64, delta)
  const dlo = Number(d & 0xffffffffn)
  const dhi = Number(d >> 32n)
  for (let i = 0; i < n; i++) {
    const lo = s[2 * i]! + dlo
    o[2 * i] = lo
    o[2 * i + 1] = s[2 * i + 1]! + dhi + (lo > 0xffffffff ? 1 : 0)
  }
  return out
}

function nullWhereZero(count: BigInt64Array, n: number): Uint8Array | null {
  let validity: Uint8Array | null = null
  const c32 = words(count, n)
  for (let j = 0; j < n; j++) {
    if ((c32[2 * j]! | c32[2 * j + 1]!) === 0) {
      validity ??= newValidity(n)
      setValid(validity, j, false)
    }
  }
  return validity
}

function emptyRows(widths: readonly LaneWidth[], specs: readonly AccSpec[]): GroupRows {
  return {
    numGroups: 0,
    keys: widths.map((w) => (w === 4 ? new Int32Array(0) : new BigInt64Array(0))),
    accs: specs.map((s) => ({ value: s.kind === 'count' ? null : s.input === 'float64' ? new Float64Array(0) : new BigInt64Array(0), count: new BigInt64Array(0) })),
  }
}

/** The distinct ids of the lists, in first-seen order (one list of a merge is distinct already). */
function touchedIds(lists: readonly Int32Array[], numGroups: number): Int32Array {
  if (lists.length === 0) return new Int32Array(0)
  if (lists.length === 1) return lists[0]!
  const mark = new Uint8Array(numGroups)
  let total = 0
  for (const l of lists) total += l.length
  const out = new Int32Array(total)
  let k = 0
  for (const l of lists) {
    for (let i = 0; i < l.length; i++) {
      const id = l[i]!
      if (mark[id] === 0) {
        mark[id] = 1
        out[k++] = id
      }
    }
  }
  return out.subarray(0, k)
}
