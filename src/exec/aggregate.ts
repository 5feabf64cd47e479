import {
  type Batch, type Column, type DataType, type Field, type Schema,
  DictionaryBuilder, isValid, makeBatch, newValidity, setValid, takeBatch,
} from '../batch.ts'
import { AnalysisError } from '../errors.ts'
import type { Executor } from '../kernels/executor.ts'
import type { Acc, AccInput, AccInputColumn, AccSpec, GroupRows, GroupTable, Kernels, KeyLane, LaneWidth } from '../kernels/kernels.ts'
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
  /** State-wide dictionary of a string key: codes are stable for the life of the state. */
  readonly dict?: DictionaryBuilder
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

/** What a batch changed in the state, for the state store's delta. */
export interface StateChanges {
  readonly upserts: Batch
  readonly removedKeys: Batch
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
  async process(input: Batch, watermarkMs: number | null): Promise<{ output: Batch; changes: StateChanges; metrics: AggregateMetrics }> {
    const T = ((globalThis as any).__T ??= {}) as Record<string, number>
    let t0 = performance.now()
    const tick = (k: string) => { const t = performance.now(); T[k] = (T[k] ?? 0) + t - t0; t0 = t }
    const partials = input.numRows > 0 ? await this.partialAggregate(input) : []
    tick('partial')
    const late = this.evictsByWatermark && watermarkMs !== null ? this.evictionThreshold(watermarkMs) : null
    let dropped = 0
    const touched = new Uint8Array(0)
    let touchedIds: number[] = []
    let touchedMark = touched
    for (const p of partials) {
      let rows = p
      if (late !== null) {
        const lane = p.keys[this.watermarkKey] as BigInt64Array
        const keep = new Uint8Array(p.numGroups)
        let kept = 0
        for (let i = 0; i < p.numGroups; i++) if (lane[i]! > late) { keep[i] = 1; kept++ }
        dropped += p.numGroups - kept
        if (kept < p.numGroups) rows = filterRows(p, keep, kept)
      }
      if (rows.numGroups === 0) continue
      const ids = this.state.merge(rows)
      if (touchedMark.length < this.state.numGroups) {
        const grown = new Uint8Array(Math.max(this.state.numGroups, touchedMark.length * 2))
        grown.set(touchedMark)
        touchedMark = grown
      }
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!
        if (touchedMark[id] === 0) { touchedMark[id] = 1; touchedIds.push(id) }
      }
    }
    tick('merge')
    const updated = this.state.exportIds(Int32Array.from(touchedIds))
    tick('exportIds')
    touchedIds = []
    let output: GroupRows
    let removed: GroupRows | null = null
    if (this.mode === 'complete') {
      output = this.state.export()
    } else {
      if (this.evictsByWatermark && watermarkMs !== null) removed = this.state.removeWhere(this.watermarkKey, this.evictionThreshold(watermarkMs))
      output = this.mode === 'update' ? updated : removed ?? emptyRows(this.laneWidths, this.specs)
    }
    tick('evict')
    const metrics: AggregateMetrics = {
      numRowsTotal: this.state.numGroups,
      numRowsUpdated: updated.numGroups,
      numRowsRemoved: removed?.numGroups ?? 0,
      numRowsDroppedByWatermark: dropped,
      memoryUsedBytes: this.state.numGroups * this.rowBytes(),
    }
    const fin = this.finalize(output)
    tick('finalize')
    const ch = { upserts: this.toStateBatch(updated), removedKeys: this.keysBatch(removed ?? emptyRows(this.laneWidths, this.specs)) }
    tick('stateBatch')
    return { output: fin, changes: ch, metrics }
  }

  /** All state rows (state schema), for snapshots. */
  snapshot(): Batch {
    return this.toStateBatch(this.state.export())
  }

  /** Replaces the state with the given rows (state schema). */
  restore(rows: Batch): void {
    this.state.dispose()
    for (const k of this.keys) if (k.dict) (k as { dict: DictionaryBuilder }).dict = new DictionaryBuilder()
    this.state = this.kernels.createGroupTable(this.laneWidths, this.specs)
    if (rows.numRows > 0) this.state.merge(this.fromStateBatch(rows))
  }

  dispose(): void {
    this.state.dispose()
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

  private async partialAggregate(input: Batch): Promise<GroupRows[]> {
    let batch = input
    const windowKey = this.keys.find((k) => k.window)
    let starts: BigInt64Array | null = null
    if (windowKey) {
      const ts = evalExpr(windowKey.expr, batch)
      const w = windowKey.window!
      const T = ((globalThis as any).__T ??= {}) as Record<string, number>; let t0 = performance.now()
      const r = this.kernels.assignWindows(ts.values as BigInt64Array, ts.validity, BigInt(w.windowUs), BigInt(w.slideUs), BigInt(w.startUs))
      if (r.rows !== null) batch = takeBatch(batch, r.rows)
      starts = r.starts
      T.assign = (T.assign ?? 0) + performance.now() - t0
    }
    const n = batch.numRows
    if (n === 0) return []
    const lanes: KeyLane[] = []
    const nullFlags = this.nullLane ? new Int32Array(n) : null
    for (const k of this.keys) {
      if (k.window) {
        lanes.push(starts!)
        continue
      }
      const c = evalExpr(k.expr, batch)
      lanes.push(this.keyLane(k, c, nullFlags))
    }
    if (nullFlags) lanes.push(nullFlags)
    const inputs = this.aggs.map((a) => (a.expr === null ? null : accInputColumn(evalExpr(a.expr, batch))))
    return this.executor.partialAggregate({ laneWidths: this.laneWidths, specs: this.specs, keys: lanes, inputs, n })
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
        const ends = new BigInt64Array(n)
        const w = BigInt(k.window.windowUs)
        for (let j = 0; j < n; j++) ends[j] = starts[j]! + w
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

  private keysBatch(rows: GroupRows): Batch {
    return makeBatch(this.keySchema, this.keyColumns(rows), rows.numGroups)
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
        const v = acc.value!
        for (let j = 0; j < n; j++) out[j] = acc.count[j] === 0n ? 0 : Number(v[j]!) / Number(acc.count[j]!)
        cols.push({ type: 'float64', length: n, values: out, validity })
      } else if (a.type === 'int32') {
        cols.push({ type: 'int32', length: n, values: Int32Array.from(acc.value as BigInt64Array, Number), validity })
      } else if (a.type === 'boolean') {
        cols.push({ type: 'boolean', length: n, values: Uint8Array.from(acc.value as BigInt64Array, Number), validity })
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

function nullWhereZero(count: BigInt64Array, n: number): Uint8Array | null {
  let validity: Uint8Array | null = null
  for (let j = 0; j < n; j++) {
    if (count[j] === 0n) {
      validity ??= newValidity(n)
      setValid(validity, j, false)
    }
  }
  return validity
}

function filterRows(p: GroupRows, keep: Uint8Array, kept: number): GroupRows {
  const pick = <T extends KeyLane | Float64Array>(a: T): T => {
    const out = new (a.constructor as new (n: number) => T)(kept)
    for (let i = 0, j = 0; i < keep.length; i++) if (keep[i]) out[j++] = a[i]!
    return out
  }
  return {
    numGroups: kept,
    keys: p.keys.map(pick),
    accs: p.accs.map((a) => ({ value: a.value === null ? null : pick(a.value), count: pick(a.count) })),
  }
}

function emptyRows(widths: readonly LaneWidth[], specs: readonly AccSpec[]): GroupRows {
  return {
    numGroups: 0,
    keys: widths.map((w) => (w === 4 ? new Int32Array(0) : new BigInt64Array(0))),
    accs: specs.map((s) => ({ value: s.kind === 'count' ? null : s.input === 'float64' ? new Float64Array(0) : new BigInt64Array(0), count: new BigInt64Array(0) })),
  }
}
