/**
 * The WebAssembly kernels (assembly/index.ts, built by scripts/build.mjs): Spark's window assignment
 * and a hash aggregation table. Core module: no `node:` imports, runs on Node and in the browser.
 *
 * One {@link Kernels} instance owns one WebAssembly instance (one linear memory). Every call copies
 * its inputs into a reusable scratch block of that memory, runs, and copies results out into
 * JS-owned arrays; JS views over the memory are rebuilt whenever it has grown. Instances are not
 * thread-safe and not re-entrant (they are synchronous, so a JS thread cannot interleave calls).
 */
import { KernelError } from '../errors.ts'
import { WASM_BASE64 } from './wasm-bytes.generated.ts'

export type KeyLane = Int32Array | BigInt64Array
export type LaneWidth = 4 | 8
/**
 * An i64 key lane computed in the kernel from timestamps: the start of the tumbling window of
 * `sizeUs` (offset by `startUs`, as Spark's window()) that holds each row's timestamp. Rows whose
 * timestamp is null fall into no window and are skipped by every accumulator.
 */
export interface TumbleLane {
  readonly kind: 'tumble'
  readonly ts: BigInt64Array
  readonly validity: Uint8Array | null
  readonly sizeUs: bigint
  readonly startUs: bigint
}
/** An i32 key lane computed in the kernel from dictionary codes: `remap[code]`, or -1 where null. */
export interface DictLane {
  readonly kind: 'dict'
  readonly codes: Int32Array
  readonly validity: Uint8Array | null
  /** One entry per dictionary string (codes index it). */
  readonly remap: Int32Array
}
/** What an update groups by, per key lane: values as they are, or computed in the kernel. */
export type KeyInput = KeyLane | TumbleLane | DictLane
/**
 * How an update addresses its groups: 'dense' (direct addressing over the product of the lanes'
 * domains: window index within the batch, dictionary code, integer range) or 'hash' (open
 * addressing). 'auto' picks dense when the table is empty and the product is small.
 */
export type TableLayout = 'auto' | 'dense' | 'hash'
/** Rows whose i64 key lane `lane` is <= threshold are dropped (late rows under the watermark). */
export interface LateFilter {
  readonly lane: number
  readonly threshold: bigint
}
export type AccKind = 'count' | 'sum' | 'min' | 'max'
export type AccInput = 'none' | 'int32' | 'int64' | 'float64'
export interface AccSpec {
  readonly kind: AccKind
  readonly input: AccInput
}
export interface AccInputColumn {
  readonly values: Int32Array | BigInt64Array | Float64Array
  readonly validity: Uint8Array | null
}
/**
 * Accumulator of one AccSpec over G groups. value: i64 for int32/int64 inputs (sum/min/max), f64 for
 * float64; null for count. count: number of non-null input rows seen (count(*): all rows).
 * min/max/sum with count 0 mean SQL NULL. Float min/max follow Spark: NaN is larger than any number.
 * Integer sums wrap around on overflow (two's complement).
 */
export interface Acc {
  readonly value: BigInt64Array | Float64Array | null
  readonly count: BigInt64Array
}
/** Event-time statistics in ms (Spark's EventTimeStats): max, min, sum and count of the event times. */
export interface EventTimeStats {
  max: number
  min: number
  sum: number
  count: number
}

export interface GroupRows {
  readonly numGroups: number
  readonly keys: KeyLane[]
  readonly accs: Acc[]
}

interface KernelExports {
  readonly memory: WebAssembly.Memory
  alloc(size: number): number
  free(ptr: number): void
  windows_identity(): number
  assign_windows(ts: number, valid: number, n: number, win: bigint, slide: bigint, start: bigint, k: number, outStarts: number, outRows: number, rowBase: number): number
  t_create(nLanes: number, laneWidths: number, nSpecs: number, specs: number): number
  t_free(t: number): void
  t_num_groups(t: number): number
  t_vals(t: number, j: number): number
  t_cnts(t: number, j: number): number
  t_clear(t: number): void
  t_update(t: number, lanes: number, specArgs: number, n: number, denseLimit: number): number
  t_merge(t: number, args: number, n: number, gidsOut: number, lateLane: number, thr: bigint): number
  t_merge_table(t: number, src: number, gidsOut: number, lateLane: number, thr: bigint): number
  t_gather(t: number, ids: number, n: number, out: number, withAccs: number): void
  t_select_le(t: number, lane: number, threshold: bigint, out: number): number
  t_remove_le(t: number, lane: number, threshold: bigint): number
  event_time_stats(ts: number, valid: number, n: number, maxMs: number, sum0: number, out: number): void
}

const KIND_CODE: Record<AccKind, number> = { count: 0, sum: 1, min: 2, max: 3 }
const INPUT_CODE: Record<AccInput, number> = { none: 0, int32: 1, int64: 2, float64: 3 }

/** Rows per WASM call: bounds the scratch memory a call needs (a multiple of 8 for bitmaps). */
const PIECE_ROWS = 1 << 20
/** Window outputs per assign_windows call. */
const MAX_WINDOW_OUTPUTS = 1 << 22
/** Most windows one row may fall into (ceil(window / slide)). */
const MAX_WINDOWS_PER_ROW = 1 << 20

const align8 = (n: number): number => (n + 7) & ~7

/** Bytes of one key-lane descriptor of t_update (see assembly/index.ts). */
const LANE_BYTES = 40
const LANE_CODE = { i64: 0, i32: 1, tumble: 2, dict: 3 } as const
/** Most dense slots an 'auto' update uses: 4 per row, at least 2^16, at most 2^22 (16 MiB of slot index). */
function autoDenseLimit(n: number): number {
  return Math.max(1 << 16, Math.min(1 << 22, 4 * n))
}
/** 'dense' addresses densely whenever the domains allow it (tests, benchmarks). */
const FORCED_DENSE_LIMIT = 1 << 26
const I64_MAX = 0x7fffffffffffffffn
const I64_MIN = -0x8000000000000000n

function clampI64(v: bigint): bigint {
  return v > I64_MAX ? I64_MAX : v < I64_MIN ? I64_MIN : v
}

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

let defaultModule: Promise<WebAssembly.Module> | undefined

export class Kernels {
  /** Compiles the kernels module; with no bytes, the built-in module, compiled once per process. */
  static compile(bytes?: Uint8Array): Promise<WebAssembly.Module> {
    if (bytes !== undefined) return wrapAsync(() => WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>))
    defaultModule ??= wrapAsync(() => WebAssembly.compile(decodeBase64(WASM_BASE64) as Uint8Array<ArrayBuffer>))
    defaultModule.catch(() => (defaultModule = undefined))
    return defaultModule
  }

  /** Instantiates the module (one instance = one linear memory). */
  static async load(module?: WebAssembly.Module): Promise<Kernels> {
    const mod = module ?? (await Kernels.compile())
    let ex: KernelExports | undefined
    const abort = (msg: number, file: number, line: number, col: number): never => {
      const str = (p: number): string => {
        if (ex === undefined || p === 0) return ''
        const len = new Uint32Array(ex.memory.buffer, (p >>> 0) - 4, 1)[0]!
        return String.fromCharCode(...new Uint16Array(ex.memory.buffer, p >>> 0, len >>> 1))
      }
      throw new KernelError('KERNEL_ABORT', `WASM kernel aborted: ${str(msg)} at ${str(file)}:${line}:${col}`)
    }
    const instance = await wrapAsync(() => WebAssembly.instantiate(mod, { env: { abort } }))
    ex = instance.exports as unknown as KernelExports
    return new Kernels(ex)
  }

  /** @internal */
  readonly ex: KernelExports
  private broken: string | null = null
  private scratchPtr = 0
  private scratchSize = 0
  private buf: ArrayBuffer | null = null
  private u8 = new Uint8Array(0)
  private u32 = new Uint32Array(0)

  private constructor(ex: KernelExports) {
    this.ex = ex
  }

  /** Bytes of linear memory currently reserved by this instance. */
  get memoryBytes(): number {
    return this.ex.memory.buffer.byteLength
  }

  /** @internal Current memory buffer (views are rebuilt whenever the memory has grown). */
  mem(): ArrayBuffer {
    const b = this.ex.memory.buffer
    if (b !== this.buf) {
      this.buf = b
      this.u8 = new Uint8Array(b)
      this.u32 = new Uint32Array(b)
    }
    return b
  }

  /** @internal Writes u32 words (pointers) at `ptr`. */
  putU32(ptr: number, values: readonly number[]): void {
    this.mem()
    this.u32.set(values, ptr >>> 2)
  }

  /** @internal Writes one i32 at a 4-aligned address. */
  putI32(ptr: number, v: number): void {
    this.mem()
    new Int32Array(this.buf!, ptr, 1)[0] = v
  }

  /** @internal Writes one i64 at an 8-aligned address. */
  putI64(ptr: number, v: bigint): void {
    new BigInt64Array(this.mem(), ptr, 1)[0] = v
  }

  /** @internal Copies bytes into memory. */
  putBytes(ptr: number, src: Uint8Array): void {
    this.mem()
    this.u8.set(src, ptr)
  }

  /** @internal Copies a typed array's first n elements into memory at ptr. */
  put(ptr: number, src: Int32Array | BigInt64Array | Float64Array, n: number): void {
    const b = this.mem()
    const s = src.length === n ? src : src.subarray(0, n)
    if (s instanceof BigInt64Array) new BigInt64Array(b, ptr, n).set(s)
    else if (s instanceof Float64Array) new Float64Array(b, ptr, n).set(s)
    else new Int32Array(b, ptr, n).set(s)
  }

  /**
   * @internal Lays out blocks of the given byte sizes (8-aligned) in the scratch area, growing it if
   * needed, and returns their addresses. Valid until the next call to `scratch`.
   */
  scratch(sizes: readonly number[]): number[] {
    let total = 0
    for (const s of sizes) total += align8(s)
    if (total > this.scratchSize) {
      const size = Math.max(align8(total), Math.min(this.scratchSize * 2, 1 << 28), 1 << 16)
      if (this.scratchPtr !== 0) this.ex.free(this.scratchPtr)
      this.scratchPtr = 0
      this.scratchSize = 0
      this.scratchPtr = this.ex.alloc(size) >>> 0
      this.scratchSize = size
    }
    const out: number[] = []
    let p = this.scratchPtr
    for (const s of sizes) {
      out.push(p)
      p += align8(s)
    }
    return out
  }

  /** @internal Runs `f`, turning traps into KernelErrors; a trapped instance refuses further calls. */
  run<T>(what: string, f: () => T): T {
    if (this.broken !== null) throw new KernelError('KERNEL_BROKEN', `WASM kernels unusable after an earlier failure (${this.broken})`)
    try {
      return f()
    } catch (e) {
      if (e instanceof KernelError && e.code !== 'KERNEL_ABORT') throw e
      const msg = e instanceof Error ? e.message : String(e)
      if (e instanceof WebAssembly.RuntimeError || (e instanceof KernelError && e.code === 'KERNEL_ABORT')) {
        this.broken = `${what}: ${msg}`
        throw new KernelError('KERNEL_TRAP', `WASM kernel ${what} failed (out of memory?): ${msg}`, { cause: e })
      }
      throw new KernelError('KERNEL_FAILED', `WASM kernel ${what} failed: ${msg}`, { cause: e })
    }
  }

  /**
   * Event-time statistics in ms (Spark's EventTimeStats) of the valid rows of `values` (µs) among
   * rows [0, n): ms = trunc(µs / 1000), as Number(µs / 1000n); rows with ms > maxMs are left out.
   * Empty: max -Infinity, min Infinity, sum 0, count 0. The sum is accumulated in row order.
   */
  eventTimeStats(values: BigInt64Array, validity: Uint8Array | null, n: number, maxMs = Infinity): EventTimeStats {
    if (values.length < n || (validity !== null && validity.length < (n + 7) >> 3)) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `eventTimeStats: ${n} rows need ${n} values and ${(n + 7) >> 3} validity bytes`)
    }
    return this.run('eventTimeStats', () => {
      let max = -Infinity, min = Infinity, sum = 0, count = 0
      // in pieces, so the scratch area stays bounded; the pieces' sums add in row order
      for (let a = 0; a < n; a += PIECE_ROWS) {
        const m = Math.min(PIECE_ROWS, n - a)
        const [tsP, vP, outP] = this.scratch([m * 8, validity ? (m + 7) >> 3 : 0, 32])
        this.put(tsP!, values.subarray(a, a + m), m)
        if (validity) this.putBytes(vP!, validity.subarray(a >> 3, (a + m + 7) >> 3))
        this.ex.event_time_stats(tsP!, validity ? vP! : 0, m, maxMs, sum, outP!)
        const o = new Float64Array(this.mem(), outP!, 4)
        if (o[0]! > max) max = o[0]!
        if (o[1]! < min) min = o[1]!
        sum = o[2]! // continued from the previous piece's sum: one pass in row order
        count += o[3]!
      }
      return { max, min, sum, count }
    })
  }

  /**
   * Window assignment as Spark's TimeWindow / TimeWindowing rule: lastStart = ts - ((ts - startUs)
   * mod slideUs) with mod made non-negative; candidates lastStart - i*slideUs for i = 0 ..
   * ceil(windowUs/slideUs)-1, keep those with start <= ts < start + windowUs. Null ts → no output row.
   * Output rows are ordered by input row, then by window start ascending. rows = input row index of
   * each output, or null when the output is exactly one window per input row in order.
   */
  assignWindows(ts: BigInt64Array, validity: Uint8Array | null, windowUs: bigint, slideUs: bigint, startUs: bigint): { rows: Int32Array | null; starts: BigInt64Array } {
    if (typeof windowUs !== 'bigint' || typeof slideUs !== 'bigint' || typeof startUs !== 'bigint') {
      throw new KernelError('KERNEL_BAD_ARGUMENT', 'assignWindows: windowUs, slideUs and startUs must be bigints')
    }
    if (windowUs <= 0n || slideUs <= 0n) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `assignWindows: window (${windowUs} µs) and slide (${slideUs} µs) must be positive`)
    }
    if (!(ts instanceof BigInt64Array)) throw new KernelError('KERNEL_BAD_ARGUMENT', 'assignWindows: ts must be a BigInt64Array')
    const n = ts.length
    if (validity !== null && validity.length < (n + 7) >> 3) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `assignWindows: validity has ${validity.length} bytes, ${(n + 7) >> 3} needed`)
    }
    const kBig = (windowUs + slideUs - 1n) / slideUs
    if (kBig > BigInt(MAX_WINDOWS_PER_ROW)) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `assignWindows: a row would fall into ${kBig} windows (at most ${MAX_WINDOWS_PER_ROW})`)
    }
    const k = Number(kBig)
    if (n === 0) return { rows: null, starts: new BigInt64Array(0) }
    const win = BigInt.asIntN(64, windowUs)
    const slide = BigInt.asIntN(64, slideUs)
    const start = BigInt.asIntN(64, startUs)
    return this.run('assignWindows', () => {
      let chunk = Math.max(8, Math.floor(MAX_WINDOW_OUTPUTS / k) & ~7)
      if (chunk >= n) chunk = n
      const startParts: BigInt64Array[] = []
      const rowParts: Int32Array[] = []
      let total = 0
      let identity = true
      for (let off = 0; off < n; off += chunk) {
        const m = Math.min(chunk, n - off)
        const vBytes = validity === null ? 0 : (m + 7) >> 3
        const [tsP, vP, sP, rP] = this.scratch([m * 8, vBytes, m * k * 8, m * k * 4])
        this.put(tsP!, off === 0 && m === n ? ts : ts.subarray(off, off + m), m)
        if (validity !== null) this.putBytes(vP!, validity.subarray(off >> 3, (off >> 3) + vBytes))
        const c = this.ex.assign_windows(tsP!, validity === null ? 0 : vP!, m, win, slide, start, k, sP!, rP!, off)
        if (this.ex.windows_identity() === 0) identity = false
        const b = this.mem()
        startParts.push(new BigInt64Array(b, sP!, c).slice())
        rowParts.push(new Int32Array(b, rP!, c).slice())
        total += c
      }
      const starts = startParts.length === 1 ? startParts[0]! : concat64(startParts, total)
      if (identity && total === n) return { rows: null, starts }
      const rows = rowParts.length === 1 ? rowParts[0]! : concat32(rowParts, total)
      return { rows, starts }
    })
  }

  createGroupTable(laneWidths: readonly LaneWidth[], specs: readonly AccSpec[]): GroupTable {
    return new GroupTable(this, laneWidths, specs)
  }
}

function concat64(parts: BigInt64Array[], total: number): BigInt64Array {
  const out = new BigInt64Array(total)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

function concat32(parts: Int32Array[], total: number): Int32Array {
  const out = new Int32Array(total)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

async function wrapAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f()
  } catch (e) {
    if (e instanceof KernelError) throw e
    throw new KernelError('KERNEL_LOAD_FAILED', `cannot load the WASM kernels: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
  }
}

const finalizer = typeof FinalizationRegistry === 'undefined'
  ? null
  : new FinalizationRegistry<{ k: Kernels; ptr: number }>(({ k, ptr }) => {
    try {
      k.ex.t_free(ptr)
    } catch {
      // the instance may be unusable; nothing to free then
    }
  })

/**
 * Open-addressing hash table of groups living in the instance's WASM memory; several may coexist.
 * Keys: 1..n lanes of i32 or i64 whose packed size is at most 3 × 64 bits (every i64 lane takes 64
 * bits, i32 lanes are paired), e.g. up to three i64 lanes or one i64 and four i32 lanes.
 */
export class GroupTable {
  readonly laneWidths: readonly LaneWidth[]
  readonly specs: readonly AccSpec[]
  private readonly k: Kernels
  private ptr: number
  private readonly token = {}

  /** @internal Use {@link Kernels.createGroupTable}. */
  constructor(k: Kernels, laneWidths: readonly LaneWidth[], specs: readonly AccSpec[]) {
    if (laneWidths.length === 0) throw new KernelError('KERNEL_BAD_ARGUMENT', 'GroupTable: at least one key lane is needed')
    let words64 = 0
    let n32 = 0
    for (const w of laneWidths) {
      if (w === 8) words64++
      else if (w === 4) n32++
      else throw new KernelError('KERNEL_BAD_ARGUMENT', `GroupTable: lane width ${String(w)} (4 or 8 expected)`)
    }
    if (words64 + ((n32 + 1) >> 1) > 3) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `GroupTable: key lanes [${laneWidths.join(', ')}] exceed 24 bytes packed (i32 lanes pair into 8 bytes)`)
    }
    for (const s of specs) {
      if (!(s.kind in KIND_CODE)) throw new KernelError('KERNEL_BAD_ARGUMENT', `GroupTable: unknown accumulator kind ${String(s.kind)}`)
      if (!(s.input in INPUT_CODE)) throw new KernelError('KERNEL_BAD_ARGUMENT', `GroupTable: unknown accumulator input ${String(s.input)}`)
      if (s.input === 'none' && s.kind !== 'count') throw new KernelError('KERNEL_BAD_ARGUMENT', `GroupTable: ${s.kind} needs an input column`)
    }
    this.k = k
    this.laneWidths = [...laneWidths]
    this.specs = specs.map((s) => ({ kind: s.kind, input: s.input }))
    this.ptr = k.run('createGroupTable', () => {
      const [wP, sP] = k.scratch([laneWidths.length * 4, Math.max(1, specs.length) * 8])
      k.putU32(wP!, [...laneWidths])
      k.putU32(sP!, specs.flatMap((s) => [KIND_CODE[s.kind], INPUT_CODE[s.input]]))
      const p = k.ex.t_create(laneWidths.length, wP!, specs.length, sP!) >>> 0
      if (p === 0) throw new KernelError('KERNEL_BAD_ARGUMENT', 'GroupTable: invalid layout')
      return p
    })
    finalizer?.register(this, { k, ptr: this.ptr }, this.token)
  }

  private live(): number {
    if (this.ptr === 0) throw new KernelError('KERNEL_DISPOSED', 'GroupTable used after dispose()')
    return this.ptr
  }

  get numGroups(): number {
    return this.k.ex.t_num_groups(this.live())
  }

  private checkLanes(keys: readonly KeyInput[], n: number, what: string): void {
    if (keys.length !== this.laneWidths.length) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: ${keys.length} key lanes given, ${this.laneWidths.length} expected`)
    }
    for (let l = 0; l < keys.length; l++) {
      const lane = keys[l]!
      const w = this.laneWidths[l]
      if (!ArrayBuffer.isView(lane)) {
        if (what !== 'update') throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} must be a typed array`)
        const kind = (lane as { kind?: unknown }).kind
        if (kind === 'tumble') {
          const t = lane as TumbleLane
          if (w !== 8) throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} is a window start (i64) but the table's lane is i32`)
          if (!(t.ts instanceof BigInt64Array) || t.ts.length < n) throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} needs ${n} timestamps in a BigInt64Array`)
          if (typeof t.sizeUs !== 'bigint' || typeof t.startUs !== 'bigint' || t.sizeUs <= 0n || t.sizeUs > I64_MAX) {
            throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} needs a positive bigint sizeUs and a bigint startUs`)
          }
          this.checkValidity(t.validity, n, `${what}: key lane ${l}`)
        } else if (kind === 'dict') {
          const d = lane as DictLane
          if (w !== 4) throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} is a dictionary code (i32) but the table's lane is i64`)
          if (!(d.codes instanceof Int32Array) || d.codes.length < n) throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} needs ${n} codes in an Int32Array`)
          if (!(d.remap instanceof Int32Array)) throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} needs an Int32Array remap`)
          this.checkValidity(d.validity, n, `${what}: key lane ${l}`)
          // codes outside the dictionary are refused by the kernel (before any change)
        } else {
          throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} must be a typed array, a tumble lane or a dict lane`)
        }
        continue
      }
      if (!(w === 8 ? lane instanceof BigInt64Array : lane instanceof Int32Array)) {
        throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} must be ${w === 8 ? 'a BigInt64Array' : 'an Int32Array'}`)
      }
      if (lane.length < n) throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: key lane ${l} has ${lane.length} values, ${n} needed`)
    }
  }

  private checkValidity(v: Uint8Array | null, n: number, what: string): void {
    if (v !== null && (!(v instanceof Uint8Array) || v.length < (n + 7) >> 3)) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: validity needs ${(n + 7) >> 3} bytes`)
    }
  }

  private lastLayoutDense = false

  /** The layout the last update of this table used ('dense' or 'hash'). */
  get lastLayout(): 'dense' | 'hash' {
    return this.lastLayoutDense ? 'dense' : 'hash'
  }

  /**
   * Aggregates n rows: keys[i] feeds key lane i (length ≥ n, width per laneWidths; a typed array of
   * values, or a {@link TumbleLane} / {@link DictLane} computed in the kernel); inputs[j] feeds
   * specs[j] (null for 'none'). Null input values are skipped (count = non-null rows); rows with a
   * null window timestamp are skipped altogether.
   */
  update(keys: readonly KeyInput[], inputs: readonly (AccInputColumn | null)[], n: number, opts: { layout?: TableLayout } = {}): void {
    const t = this.live()
    if (!Number.isInteger(n) || n < 0) throw new KernelError('KERNEL_BAD_ARGUMENT', `update: bad row count ${n}`)
    this.checkLanes(keys, n, 'update')
    if (inputs.length !== this.specs.length) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `update: ${inputs.length} inputs given, ${this.specs.length} expected`)
    }
    for (let j = 0; j < inputs.length; j++) {
      const spec = this.specs[j]!
      const col = inputs[j]
      if (spec.input === 'none') {
        if (col !== null && col !== undefined) throw new KernelError('KERNEL_BAD_ARGUMENT', `update: input ${j} must be null for count(*)`)
        continue
      }
      if (col === null || col === undefined) throw new KernelError('KERNEL_BAD_ARGUMENT', `update: input ${j} (${spec.kind} of ${spec.input}) is missing`)
      const v = col.values
      const ok = spec.input === 'int32' ? v instanceof Int32Array : spec.input === 'int64' ? v instanceof BigInt64Array : v instanceof Float64Array
      if (!ok) throw new KernelError('KERNEL_BAD_ARGUMENT', `update: input ${j} must hold ${spec.input} values`)
      if (v.length < n) throw new KernelError('KERNEL_BAD_ARGUMENT', `update: input ${j} has ${v.length} values, ${n} needed`)
      if (col.validity !== null && col.validity.length < (n + 7) >> 3) {
        throw new KernelError('KERNEL_BAD_ARGUMENT', `update: validity of input ${j} has ${col.validity.length} bytes, ${(n + 7) >> 3} needed`)
      }
    }
    const layout = opts.layout ?? 'auto'
    if (layout !== 'auto' && layout !== 'dense' && layout !== 'hash') throw new KernelError('KERNEL_BAD_ARGUMENT', `update: unknown layout ${String(layout)}`)
    if (n === 0) return
    const k = this.k
    k.run('update', () => {
      // each distinct array (by identity) is copied once, e.g. sum(x) and max(x) share x's copy;
      // validity bitmaps and remaps are byte arrays (remaps are copied whole)
      const arrays: (KeyLane | Float64Array | Uint8Array)[] = []
      const whole: boolean[] = []
      const slot = new Map<object, number>()
      const use = (a: KeyLane | Float64Array | Uint8Array, isWhole = false): number => {
        let i = slot.get(a)
        if (i === undefined) {
          i = arrays.length
          arrays.push(a)
          whole.push(isWhole)
          slot.set(a, i)
        }
        return i
      }
      const laneSlots = keys.map((lane) => {
        if (ArrayBuffer.isView(lane)) return { code: lane instanceof BigInt64Array ? LANE_CODE.i64 : LANE_CODE.i32, ptr: use(lane), valid: -1, remap: -1, size: 0, p0: 0n, p1: 0n }
        if (lane.kind === 'tumble') {
          return { code: LANE_CODE.tumble, ptr: use(lane.ts), valid: lane.validity === null ? -1 : use(lane.validity), remap: -1, size: 0, p0: clampI64(lane.startUs), p1: lane.sizeUs }
        }
        const remap = new Uint8Array(lane.remap.buffer, lane.remap.byteOffset, lane.remap.byteLength)
        return { code: LANE_CODE.dict, ptr: use(lane.codes), valid: lane.validity === null ? -1 : use(lane.validity), remap: use(remap, true), size: lane.remap.length, p0: 0n, p1: 0n }
      })
      const inputSlots = inputs.map((col) => (col === null ? null : [use(col.values), col.validity === null ? -1 : use(col.validity)] as const))
      const limit = layout === 'hash' ? 0 : layout === 'dense' ? FORCED_DENSE_LIMIT : autoDenseLimit(n)
      for (let off = 0; off < n; off += PIECE_ROWS) {
        const m = Math.min(PIECE_ROWS, n - off)
        const sizes = [keys.length * LANE_BYTES, inputs.length * 8]
        for (let i = 0; i < arrays.length; i++) {
          const a = arrays[i]!
          sizes.push(whole[i] ? a.byteLength : a instanceof Uint8Array ? (m + 7) >> 3 : m * a.BYTES_PER_ELEMENT)
        }
        const ptrs = k.scratch(sizes)
        const at = (i: number): number => ptrs[i + 2]!
        for (let i = 0; i < arrays.length; i++) {
          const a = arrays[i]!
          if (whole[i]) k.putBytes(at(i), a as Uint8Array)
          else if (a instanceof Uint8Array) k.putBytes(at(i), a.subarray(off >> 3, (off >> 3) + ((m + 7) >> 3)))
          else k.put(at(i), off === 0 ? a : a.subarray(off), m)
        }
        const lp = ptrs[0]!
        laneSlots.forEach((s, l) => {
          const d = lp + l * LANE_BYTES
          k.putU32(d, [s.code, s.size, at(s.ptr), s.valid < 0 ? 0 : at(s.valid), s.remap < 0 ? 0 : at(s.remap), 0])
          k.putI64(d + 24, s.p0)
          k.putI64(d + 32, s.p1)
        })
        const args: number[] = []
        for (const s of inputSlots) {
          if (s === null) args.push(0, 0)
          else args.push(at(s[0]), s[1] < 0 ? 0 : at(s[1]))
        }
        k.putU32(ptrs[1]!, args)
        const r = k.ex.t_update(t, lp, ptrs[1]!, m, limit)
        if (r < 0) throw new KernelError('KERNEL_BAD_ARGUMENT', `update: a dictionary key lane has a code outside its dictionary (row ${off + (-r - 1)})`)
        this.lastLayoutDense = r === 1
      }
    })
  }

  /**
   * Merges another table's rows (same lanes/specs): counts added, sums added, min/max combined.
   * Returns, for each merged row, its group id in this table. With `late`, rows whose i64 key lane
   * `late.lane` is <= `late.threshold` are dropped first, and the ids are those of the kept rows
   * (in order; `rows.numGroups - ids.length` were dropped).
   */
  merge(rows: GroupRows, late?: LateFilter): Int32Array {
    const t = this.live()
    const n = rows.numGroups
    this.checkLanes(rows.keys, n, 'merge')
    if (rows.accs.length !== this.specs.length) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `merge: ${rows.accs.length} accumulators given, ${this.specs.length} expected`)
    }
    for (let j = 0; j < this.specs.length; j++) {
      const spec = this.specs[j]!
      const acc = rows.accs[j]!
      if (!(acc.count instanceof BigInt64Array) || acc.count.length < n) throw new KernelError('KERNEL_BAD_ARGUMENT', `merge: accumulator ${j} needs ${n} counts`)
      if (spec.kind === 'count') continue
      const ok = spec.input === 'float64' ? acc.value instanceof Float64Array : acc.value instanceof BigInt64Array
      if (!ok || acc.value!.length < n) throw new KernelError('KERNEL_BAD_ARGUMENT', `merge: accumulator ${j} needs ${n} ${spec.input === 'float64' ? 'f64' : 'i64'} values`)
    }
    const [lateLane, thr] = this.lateArgs(late, 'merge')
    if (n === 0) return new Int32Array(0)
    const k = this.k
    return k.run('merge', () => {
      const parts: Int32Array[] = []
      let total = 0
      for (let off = 0; off < n; off += PIECE_ROWS) {
        const m = Math.min(PIECE_ROWS, n - off)
        const sizes: number[] = [(rows.keys.length + rows.accs.length * 2) * 4, m * 4]
        for (const lane of rows.keys) sizes.push(m * (lane as KeyLane).BYTES_PER_ELEMENT)
        for (const acc of rows.accs) sizes.push(acc.value === null ? 0 : m * 8, m * 8)
        const ptrs = k.scratch(sizes)
        const args: number[] = []
        let q = 2
        for (const lane of rows.keys as readonly KeyLane[]) {
          const p = ptrs[q++]!
          k.put(p, lane.subarray(off), m)
          args.push(p)
        }
        for (let j = 0; j < rows.accs.length; j++) {
          const acc = rows.accs[j]!
          const vp = ptrs[q++]!
          const cp = ptrs[q++]!
          const hasValue = this.specs[j]!.kind !== 'count'
          if (hasValue) k.put(vp, acc.value!.subarray(off), m)
          k.put(cp, acc.count.subarray(off), m)
          args.push(hasValue ? vp : 0, cp)
        }
        k.putU32(ptrs[0]!, args)
        const kept = k.ex.t_merge(t, ptrs[0]!, m, ptrs[1]!, lateLane, thr)
        parts.push(new Int32Array(k.mem(), ptrs[1]!, kept).slice())
        total += kept
      }
      return parts.length === 1 ? parts[0]! : concat32(parts, total)
    })
  }

  /**
   * Merges every group of `src` (a table of the same kernels instance, lanes and specs) into this
   * one without copying through JS; `late` as in {@link merge}. Returns the group id in this table
   * of each kept group of `src`, in `src`'s group order.
   */
  mergeTable(src: GroupTable, late?: LateFilter): Int32Array {
    const t = this.live()
    const s = src.live()
    if (src.k !== this.k) throw new KernelError('KERNEL_BAD_ARGUMENT', 'mergeTable: the tables belong to different kernels instances')
    if (src === this) throw new KernelError('KERNEL_BAD_ARGUMENT', 'mergeTable: cannot merge a table into itself')
    if (src.laneWidths.join() !== this.laneWidths.join() || src.specs.map((x) => `${x.kind}:${x.input}`).join() !== this.specs.map((x) => `${x.kind}:${x.input}`).join()) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', 'mergeTable: the tables have different key lanes or accumulators')
    }
    const [lateLane, thr] = this.lateArgs(late, 'mergeTable')
    const k = this.k
    return k.run('mergeTable', () => {
      const n = k.ex.t_num_groups(s)
      const [out] = k.scratch([Math.max(4, n * 4)])
      const kept = k.ex.t_merge_table(t, s, out!, lateLane, thr)
      return new Int32Array(k.mem(), out!, kept).slice()
    })
  }

  private lateArgs(late: LateFilter | undefined, what: string): [number, bigint] {
    if (late === undefined) return [-1, 0n]
    if (!Number.isInteger(late.lane) || late.lane < 0 || late.lane >= this.laneWidths.length || this.laneWidths[late.lane] !== 8) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: late lane ${late.lane} is not an i64 key lane`)
    }
    if (typeof late.threshold !== 'bigint') throw new KernelError('KERNEL_BAD_ARGUMENT', `${what}: late threshold must be a bigint`)
    return [late.lane, clampI64(late.threshold)]
  }

  /** All groups, in group-id order (ids are dense and stable until removeWhere/clear). Copies. */
  export(): GroupRows {
    const t = this.live()
    const k = this.k
    return k.run('export', () => {
      const n = k.ex.t_num_groups(t)
      const ptrs = k.scratch([this.laneWidths.length * 4, ...this.laneWidths.map((w) => n * w)])
      k.putU32(ptrs[0]!, ptrs.slice(1))
      k.ex.t_gather(t, 0, n, ptrs[0]!, 0)
      const b = k.mem()
      const keys = this.laneWidths.map((w, l): KeyLane => (w === 8 ? new BigInt64Array(b, ptrs[l + 1]!, n).slice() : new Int32Array(b, ptrs[l + 1]!, n).slice()))
      const accs = this.specs.map((s, j): Acc => {
        const count = new BigInt64Array(b, k.ex.t_cnts(t, j) >>> 0, n).slice()
        if (s.kind === 'count') return { value: null, count }
        const vp = k.ex.t_vals(t, j) >>> 0
        return { value: s.input === 'float64' ? new Float64Array(b, vp, n).slice() : new BigInt64Array(b, vp, n).slice(), count }
      })
      return { numGroups: n, keys, accs }
    })
  }

  /** The given groups, in the given order (ids may repeat). */
  exportIds(ids: Int32Array): GroupRows {
    const t = this.live()
    const k = this.k
    const g = k.ex.t_num_groups(t)
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      if (id < 0 || id >= g) throw new KernelError('KERNEL_BAD_ARGUMENT', `exportIds: group id ${id} out of range [0, ${g})`)
    }
    return k.run('exportIds', () => this.gather(t, ids, ids.length))
  }

  /** Gathers groups ids[0..n): ids given as an array, or as a pointer outside the scratch area. */
  private gather(t: number, ids: Int32Array | number, n: number): GroupRows {
    const k = this.k
    const L = this.laneWidths.length
    const S = this.specs.length
    const sizes = [typeof ids === 'number' ? 0 : n * 4, (L + 2 * S) * 4, ...this.laneWidths.map((w) => n * w)]
    for (const s of this.specs) sizes.push(s.kind === 'count' ? 0 : n * 8, n * 8)
    const ptrs = k.scratch(sizes)
    if (typeof ids !== 'number') k.put(ptrs[0]!, ids, n)
    const idsPtr = typeof ids === 'number' ? ids : ptrs[0]!
    const outs = ptrs.slice(2)
    const args: number[] = []
    for (let l = 0; l < L; l++) args.push(outs[l]!)
    for (let j = 0; j < S; j++) args.push(this.specs[j]!.kind === 'count' ? 0 : outs[L + 2 * j]!, outs[L + 2 * j + 1]!)
    k.putU32(ptrs[1]!, args)
    k.ex.t_gather(t, idsPtr, n, ptrs[1]!, 1)
    const b = k.mem()
    const keys = this.laneWidths.map((w, l): KeyLane => (w === 8 ? new BigInt64Array(b, outs[l]!, n).slice() : new Int32Array(b, outs[l]!, n).slice()))
    const accs = this.specs.map((s, j): Acc => {
      const count = new BigInt64Array(b, outs[L + 2 * j + 1]!, n).slice()
      if (s.kind === 'count') return { value: null, count }
      const vp = outs[L + 2 * j]!
      return { value: s.input === 'float64' ? new Float64Array(b, vp, n).slice() : new BigInt64Array(b, vp, n).slice(), count }
    })
    return { numGroups: n, keys, accs }
  }

  /**
   * Removes every group whose i64 key lane `lane` is <= threshold and returns them (in group-id
   * order, exported before removal); the remaining groups keep their order and get new dense ids.
   */
  removeWhere(lane: number, threshold: bigint): GroupRows {
    const t = this.live()
    if (!Number.isInteger(lane) || lane < 0 || lane >= this.laneWidths.length || this.laneWidths[lane] !== 8) {
      throw new KernelError('KERNEL_BAD_ARGUMENT', `removeWhere: lane ${lane} is not an i64 key lane`)
    }
    if (typeof threshold !== 'bigint') throw new KernelError('KERNEL_BAD_ARGUMENT', 'removeWhere: threshold must be a bigint')
    const thr = clampI64(threshold)
    const k = this.k
    return k.run('removeWhere', () => {
      const g = k.ex.t_num_groups(t)
      const idsPtr = k.ex.alloc(Math.max(4, g * 4)) >>> 0
      try {
        const c = k.ex.t_select_le(t, lane, thr, idsPtr)
        const removed = this.gather(t, idsPtr, c)
        if (c > 0) k.ex.t_remove_le(t, lane, thr)
        return removed
      } finally {
        k.ex.free(idsPtr)
      }
    })
  }

  clear(): void {
    const t = this.live()
    this.k.run('clear', () => this.k.ex.t_clear(t))
  }

  /** Frees the table's WASM memory (reused by later tables of the same instance). Idempotent. */
  dispose(): void {
    if (this.ptr === 0) return
    const p = this.ptr
    this.ptr = 0
    finalizer?.unregister(this.token)
    this.k.run('dispose', () => this.k.ex.t_free(p))
  }
}
