// Sluice WebAssembly kernels (AssemblyScript). Raw-pointer ABI, no JS bindings: the JS side
// (src/kernels/kernels.ts) copies inputs into memory obtained from `alloc`, passes pointers and
// copies results out. Memory management is heap.alloc/realloc/free (TLSF, `--runtime minimal`);
// no managed objects are created after start-up, so the GC never runs.
//
// Group table: open addressing with linear probing over u64 slots `(tag << 32) | (gid + 1)`
// (0 = empty); `tag` is the high half of a multiply-xorshift hash of the key words and the slot
// position is the tag's top bits (Fibonacci hashing), so rehashing never needs the keys. Keys are
// stored packed per group (W u64 words per group: every i64 lane takes a word, i32 lanes are
// paired into words), accumulators are struct-of-arrays (one value and one count array per spec).

// ---------------------------------------------------------------------------------------------
// memory

export function alloc(size: usize): usize {
  return heap.alloc(size < 16 ? 16 : size)
}

export function free(ptr: usize): void {
  if (ptr != 0) heap.free(ptr)
}

// ---------------------------------------------------------------------------------------------
// window assignment

/** 1 when the last assign_windows call produced exactly one window per input row, in order. */
let identity: i32 = 0

export function windows_identity(): i32 {
  return identity
}

@inline function validAt(valid: usize, i: usize): bool {
  return valid == 0 || ((<u32>load<u8>(valid + (i >> 3)) >> <u32>(i & 7)) & 1) != 0
}

/**
 * Spark's TimeWindowing. Rows [0, n) of `ts` (i64 µs), `valid` an Arrow bitmap or 0. For each
 * valid row: lastStart = ts - pmod(ts - start, slide); candidates lastStart - i*slide for
 * i = k-1 .. 0 (ascending starts) kept when ts < candidate + win. Writes starts (i64) and row
 * indices (rowBase + i, i32); returns the number of outputs.
 */
export function assign_windows(ts: usize, valid: usize, n: i32, win: i64, slide: i64, start: i64, k: i32,
  outStarts: usize, outRows: usize, rowBase: i32): i32 {
  let c: i32 = 0
  let lo: i64 = 1
  let hi: i64 = 0 // [lo, hi): cached window of the previous row (empty at first)
  let ident: bool = true
  if (win == slide) {
    // tumbling: exactly one window per valid row
    for (let i: i32 = 0; i < n; i++) {
      if (!validAt(valid, <usize>i)) { ident = false; continue }
      const t = load<i64>(ts + (<usize>i << 3))
      if (!(t >= lo && t < hi)) {
        let r = (t - start) % slide
        if (r < 0) r += slide
        lo = t - r
        hi = lo + slide
      }
      store<i64>(outStarts + (<usize>c << 3), lo)
      store<i32>(outRows + (<usize>c << 2), rowBase + i)
      c++
    }
  } else {
    for (let i: i32 = 0; i < n; i++) {
      if (!validAt(valid, <usize>i)) { ident = false; continue }
      const t = load<i64>(ts + (<usize>i << 3))
      if (!(t >= lo && t < hi)) {
        let r = (t - start) % slide
        if (r < 0) r += slide
        lo = t - r
        hi = lo + slide
      }
      const c0 = c
      for (let j: i32 = k - 1; j >= 0; j--) {
        const s = lo - <i64>j * slide
        if (t < s + win) {
          store<i64>(outStarts + (<usize>c << 3), s)
          store<i32>(outRows + (<usize>c << 2), rowBase + i)
          c++
        }
      }
      if (c - c0 != 1) ident = false
    }
  }
  identity = ident ? 1 : 0
  return c
}

// ---------------------------------------------------------------------------------------------
// group table

const KIND_COUNT: i32 = 0
const KIND_SUM: i32 = 1
const KIND_MIN: i32 = 2
const KIND_MAX: i32 = 3

const IN_NONE: i32 = 0
const IN_I32: i32 = 1
const IN_I64: i32 = 2
const IN_F64: i32 = 3

// word kinds: how a key word is built from the row's lanes
const WORD_I64: i32 = 0 // one i64 lane
const WORD_I32: i32 = 1 // one i32 lane, zero-extended
const WORD_I32x2: i32 = 2 // two i32 lanes: low | high << 32

const CHUNK: i32 = 2048
const GIDS: usize = memory.data(8192, 16) // CHUNK group ids

const M1: u64 = 0x9e3779b97f4a7c15
const M2: u64 = 0xc2b2ae3d27d4eb4f
const M3: u64 = 0x165667b19e3779f9

@unmanaged
class Table {
  W: i32 = 0 // key words per group
  nLanes: i32 = 0
  nSpecs: i32 = 0
  numGroups: i32 = 0
  groupCap: i32 = 0
  slotShift: i32 = 0 // 32 - log2(slot capacity)
  slotCap: i32 = 0
  growAt: i32 = 0 // grow the slots when numGroups reaches this
  words: usize = 0 // per word: i32 kind, i32 laneA, i32 laneB
  lanes: usize = 0 // per lane: i32 width, i32 word, i32 part (0 = whole, 1 = low half, 2 = high half)
  specs: usize = 0 // per spec: i32 kind, i32 input
  vals: usize = 0 // per spec: usize pointer to groupCap values (0 for count)
  cnts: usize = 0 // per spec: usize pointer to groupCap i64 counts
  keys: usize = 0 // groupCap * W u64
  slots: usize = 0 // slotCap u64
}

@inline function specKind(t: Table, j: i32): i32 {
  return load<i32>(t.specs + (<usize>j << 3))
}
@inline function specInput(t: Table, j: i32): i32 {
  return load<i32>(t.specs + (<usize>j << 3), 4)
}
@inline function valsOf(t: Table, j: i32): usize {
  return load<usize>(t.vals + (<usize>j << 2))
}
@inline function cntsOf(t: Table, j: i32): usize {
  return load<usize>(t.cnts + (<usize>j << 2))
}

@inline function hashWords(W: i32, w0: u64, w1: u64, w2: u64): u64 {
  let h = (w0 ^ 0x2545f4914f6cdd1d) * M1
  if (W >= 2) h = (rotl<u64>(h, 32) ^ w1) * M2
  if (W >= 3) h = (rotl<u64>(h, 32) ^ w2) * M3
  // the top bits of a product depend on every input bit; fold once more for W = 1 keys that
  // differ only in their high bits
  if (W == 1) h = (h ^ (h >> 29)) * M2
  return h
}

/** Fills the accumulators of groups [from, to) with their identity values. */
function initAccs(t: Table, from: i32, to: i32): void {
  if (to <= from) return
  const cnt = <usize>(to - from)
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    memory.fill(cntsOf(t, j) + (<usize>from << 3), 0, cnt << 3)
    const v = valsOf(t, j)
    if (v == 0) continue
    const kind = specKind(t, j)
    const input = specInput(t, j)
    const p = v + (<usize>from << 3)
    if (kind == KIND_SUM) {
      memory.fill(p, 0, cnt << 3)
    } else if (input == IN_F64) {
      const init: f64 = kind == KIND_MIN ? NaN : -Infinity
      for (let i: usize = 0; i < cnt; i++) store<f64>(p + (i << 3), init)
    } else {
      const init: i64 = kind == KIND_MIN ? i64.MAX_VALUE : i64.MIN_VALUE
      for (let i: usize = 0; i < cnt; i++) store<i64>(p + (i << 3), init)
    }
  }
}

function growGroups(t: Table): void {
  const oldCap = t.groupCap
  const cap = oldCap < 64 ? 64 : oldCap * 2
  t.keys = heap.realloc(t.keys, <usize>cap * <usize>t.W * 8)
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    const cp = t.cnts + (<usize>j << 2)
    store<usize>(cp, heap.realloc(load<usize>(cp), <usize>cap << 3))
    const vp = t.vals + (<usize>j << 2)
    if (load<usize>(vp) != 0) store<usize>(vp, heap.realloc(load<usize>(vp), <usize>cap << 3))
  }
  t.groupCap = cap
  initAccs(t, oldCap, cap)
}

/** (Re)builds the slot array with `cap` slots (a power of two) from the stored keys. */
function rebuildSlots(t: Table, cap: i32): void {
  if (cap != t.slotCap) {
    if (t.slots != 0) heap.free(t.slots)
    t.slots = heap.alloc(<usize>cap << 3)
    t.slotCap = cap
    t.slotShift = 32 - (31 - <i32>clz<u32>(<u32>cap))
    t.growAt = cap >> 1
  }
  const slots = t.slots
  memory.fill(slots, 0, <usize>cap << 3)
  const mask = <u32>(cap - 1)
  const shift = <u32>t.slotShift
  const W = t.W
  for (let g: i32 = 0; g < t.numGroups; g++) {
    const kp = t.keys + <usize>g * <usize>W * 8
    const w0 = load<u64>(kp)
    const w1 = W >= 2 ? load<u64>(kp, 8) : 0
    const w2 = W >= 3 ? load<u64>(kp, 16) : 0
    const h = hashWords(W, w0, w1, w2)
    const tag = <u32>(h >> 32)
    let pos = shift >= 32 ? 0 : tag >> shift
    while (load<u64>(slots + (<usize>pos << 3)) != 0) pos = (pos + 1) & mask
    store<u64>(slots + (<usize>pos << 3), (<u64>tag << 32) | <u64>(g + 1))
  }
}

/** Adds a new group with the given key (known to be absent) and returns its id. */
@inline function addGroup(t: Table, tag: u32, w0: u64, w1: u64, w2: u64, W: i32): i32 {
  const g = t.numGroups
  if (g >= t.growAt) rebuildSlots(t, t.slotCap * 2)
  if (g >= t.groupCap) growGroups(t)
  const kp = t.keys + <usize>g * <usize>W * 8
  store<u64>(kp, w0)
  if (W >= 2) store<u64>(kp, w1, 8)
  if (W >= 3) store<u64>(kp, w2, 16)
  const mask = <u32>(t.slotCap - 1)
  const slots = t.slots
  let pos = tag >> <u32>t.slotShift
  while (load<u64>(slots + (<usize>pos << 3)) != 0) pos = (pos + 1) & mask
  store<u64>(slots + (<usize>pos << 3), (<u64>tag << 32) | <u64>(g + 1))
  t.numGroups = g + 1
  return g
}

function addGroup1(t: Table, tag: u32, w0: u64): i32 {
  return addGroup(t, tag, w0, 0, 0, 1)
}
function addGroup2(t: Table, tag: u32, w0: u64, w1: u64): i32 {
  return addGroup(t, tag, w0, w1, 0, 2)
}
function addGroup3(t: Table, tag: u32, w0: u64, w1: u64, w2: u64): i32 {
  return addGroup(t, tag, w0, w1, w2, 3)
}

@inline function loadWord(kind: i32, pa: usize, pb: usize, r: usize): u64 {
  if (kind == WORD_I64) return load<u64>(pa + (r << 3))
  if (kind == WORD_I32) return <u64>load<u32>(pa + (r << 2))
  return <u64>load<u32>(pa + (r << 2)) | (<u64>load<u32>(pb + (r << 2)) << 32)
}

/** Group ids of rows [off, off + n) of the key lanes at `lanePtrs` (usize per lane) into `out`. */
@inline function findImpl(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize, W: i32): void {
  const wd = t.words
  const k0 = load<i32>(wd)
  const a0 = load<usize>(lanePtrs + (<usize>load<i32>(wd, 4) << 2))
  const b0 = load<usize>(lanePtrs + (<usize>load<i32>(wd, 8) << 2))
  let k1: i32 = 0, a1: usize = 0, b1: usize = 0, k2: i32 = 0, a2: usize = 0, b2: usize = 0
  if (W >= 2) {
    k1 = load<i32>(wd, 12)
    a1 = load<usize>(lanePtrs + (<usize>load<i32>(wd, 16) << 2))
    b1 = load<usize>(lanePtrs + (<usize>load<i32>(wd, 20) << 2))
  }
  if (W >= 3) {
    k2 = load<i32>(wd, 24)
    a2 = load<usize>(lanePtrs + (<usize>load<i32>(wd, 28) << 2))
    b2 = load<usize>(lanePtrs + (<usize>load<i32>(wd, 32) << 2))
  }
  let slots = t.slots
  let keys = t.keys
  let mask = <u32>(t.slotCap - 1)
  let shift = <u32>t.slotShift
  for (let i: i32 = 0; i < n; i++) {
    const r = <usize>(off + i)
    const w0 = loadWord(k0, a0, b0, r)
    const w1: u64 = W >= 2 ? loadWord(k1, a1, b1, r) : 0
    const w2: u64 = W >= 3 ? loadWord(k2, a2, b2, r) : 0
    const h = hashWords(W, w0, w1, w2)
    const tag = <u32>(h >> 32)
    let pos = tag >> shift
    let gid: i32 = 0
    while (true) {
      const s = load<u64>(slots + (<usize>pos << 3))
      if (s == 0) {
        if (W == 1) gid = addGroup1(t, tag, w0)
        else if (W == 2) gid = addGroup2(t, tag, w0, w1)
        else gid = addGroup3(t, tag, w0, w1, w2)
        slots = t.slots
        keys = t.keys
        mask = <u32>(t.slotCap - 1)
        shift = <u32>t.slotShift
        break
      }
      if (<u32>(s >> 32) == tag) {
        const g = <i32>(<u32>s) - 1
        const kp = keys + <usize>g * <usize>(W * 8)
        if (load<u64>(kp) == w0 && (W < 2 || load<u64>(kp, 8) == w1) && (W < 3 || load<u64>(kp, 16) == w2)) {
          gid = g
          break
        }
      }
      pos = (pos + 1) & mask
    }
    store<i32>(out + (<usize>i << 2), gid)
  }
}

function find1(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize): void {
  findImpl(t, lanePtrs, off, n, out, 1)
}
function find2(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize): void {
  findImpl(t, lanePtrs, off, n, out, 2)
}
function find3(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize): void {
  findImpl(t, lanePtrs, off, n, out, 3)
}

function find(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize): void {
  const W = t.W
  if (W == 1) find1(t, lanePtrs, off, n, out)
  else if (W == 2) find2(t, lanePtrs, off, n, out)
  else find3(t, lanePtrs, off, n, out)
}

/**
 * Creates a table. `laneWidths`: nLanes i32 (4 or 8); `specs`: nSpecs pairs of i32 (kind, input).
 * Returns 0 for an invalid layout.
 */
export function t_create(nLanes: i32, laneWidths: usize, nSpecs: i32, specs: usize): usize {
  if (nLanes < 1) return 0
  // lay out the key words: i64 lanes first (one word each), then i32 lanes in pairs
  let W: i32 = 0
  for (let l: i32 = 0; l < nLanes; l++) if (load<i32>(laneWidths + (<usize>l << 2)) == 8) W++
  let n32: i32 = 0
  for (let l: i32 = 0; l < nLanes; l++) if (load<i32>(laneWidths + (<usize>l << 2)) != 8) n32++
  W += (n32 + 1) >> 1
  if (W > 3) return 0
  const t = new Table()
  t.W = W
  t.nLanes = nLanes
  t.nSpecs = nSpecs
  t.words = heap.alloc(<usize>W * 12)
  t.lanes = heap.alloc(<usize>nLanes * 12)
  let w: i32 = 0
  for (let l: i32 = 0; l < nLanes; l++) {
    if (load<i32>(laneWidths + (<usize>l << 2)) != 8) continue
    store<i32>(t.words + <usize>w * 12, WORD_I64)
    store<i32>(t.words + <usize>w * 12, l, 4)
    store<i32>(t.words + <usize>w * 12, l, 8)
    store<i32>(t.lanes + <usize>l * 12, 8)
    store<i32>(t.lanes + <usize>l * 12, w, 4)
    store<i32>(t.lanes + <usize>l * 12, 0, 8)
    w++
  }
  let pending: i32 = -1
  for (let l: i32 = 0; l < nLanes; l++) {
    if (load<i32>(laneWidths + (<usize>l << 2)) == 8) continue
    store<i32>(t.lanes + <usize>l * 12, 4)
    if (pending < 0) {
      store<i32>(t.words + <usize>w * 12, WORD_I32)
      store<i32>(t.words + <usize>w * 12, l, 4)
      store<i32>(t.words + <usize>w * 12, l, 8)
      store<i32>(t.lanes + <usize>l * 12, w, 4)
      store<i32>(t.lanes + <usize>l * 12, 1, 8)
      pending = w
      w++
    } else {
      store<i32>(t.words + <usize>pending * 12, WORD_I32x2)
      store<i32>(t.words + <usize>pending * 12, l, 8)
      store<i32>(t.lanes + <usize>l * 12, pending, 4)
      store<i32>(t.lanes + <usize>l * 12, 2, 8)
      pending = -1
    }
  }
  const ns: usize = nSpecs > 0 ? <usize>nSpecs : 1
  t.specs = heap.alloc(ns << 3)
  t.vals = heap.alloc(ns << 2)
  t.cnts = heap.alloc(ns << 2)
  for (let j: i32 = 0; j < nSpecs; j++) {
    const kind = load<i32>(specs + (<usize>j << 3))
    const input = load<i32>(specs + (<usize>j << 3), 4)
    store<i32>(t.specs + (<usize>j << 3), kind)
    store<i32>(t.specs + (<usize>j << 3), input, 4)
    store<usize>(t.cnts + (<usize>j << 2), heap.alloc(64 << 3))
    store<usize>(t.vals + (<usize>j << 2), kind == KIND_COUNT ? 0 : heap.alloc(64 << 3))
  }
  t.keys = heap.alloc(<usize>64 * <usize>W * 8)
  t.groupCap = 64
  initAccs(t, 0, 64)
  rebuildSlots(t, 128)
  return changetype<usize>(t)
}

export function t_free(tp: usize): void {
  const t = changetype<Table>(tp)
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    heap.free(cntsOf(t, j))
    const v = valsOf(t, j)
    if (v != 0) heap.free(v)
  }
  heap.free(t.specs)
  heap.free(t.vals)
  heap.free(t.cnts)
  heap.free(t.words)
  heap.free(t.lanes)
  heap.free(t.keys)
  heap.free(t.slots)
  heap.free(tp)
}

export function t_num_groups(tp: usize): i32 {
  return changetype<Table>(tp).numGroups
}

export function t_vals(tp: usize, j: i32): usize {
  return valsOf(changetype<Table>(tp), j)
}

export function t_cnts(tp: usize, j: i32): usize {
  return cntsOf(changetype<Table>(tp), j)
}

export function t_clear(tp: usize): void {
  const t = changetype<Table>(tp)
  initAccs(t, 0, t.numGroups)
  t.numGroups = 0
  memory.fill(t.slots, 0, <usize>t.slotCap << 3)
}

// --- update: scatter loops, one per accumulator

@inline function bitAt(valid: usize, r: usize): bool {
  return ((<u32>load<u8>(valid + (r >> 3)) >> <u32>(r & 7)) & 1) != 0
}

function scatterCount(cnts: usize, valid: usize, off: i32, n: i32, gids: usize): void {
  if (valid == 0) {
    for (let i: i32 = 0; i < n; i++) {
      const p = cnts + (<usize>load<i32>(gids + (<usize>i << 2)) << 3)
      store<i64>(p, load<i64>(p) + 1)
    }
  } else {
    for (let i: i32 = 0; i < n; i++) {
      const p = cnts + (<usize>load<i32>(gids + (<usize>i << 2)) << 3)
      store<i64>(p, load<i64>(p) + (bitAt(valid, <usize>(off + i)) ? 1 : 0))
    }
  }
}

// T: input element type (i32, i64, f64). The value type is i64 for integer inputs, f64 for f64.
@inline function combine<V>(kind: i32, cur: V, v: V): V {
  if (kind == KIND_SUM) return cur + v
  if (isFloat<V>()) {
    // Spark: NaN is larger than any other value
    if (kind == KIND_MIN) return v < cur || cur != cur ? v : cur
    return v > cur || v != v ? v : cur
  }
  if (kind == KIND_MIN) return v < cur ? v : cur
  return v > cur ? v : cur
}

@inline function scatterImpl<T, V>(kind: i32, vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void {
  if (valid == 0) {
    for (let i: i32 = 0; i < n; i++) {
      const g = <usize>load<i32>(gids + (<usize>i << 2))
      const v = <V>load<T>(inp + (<usize>(off + i) << alignof<T>()))
      const vp = vals + (g << 3)
      store<V>(vp, combine<V>(kind, load<V>(vp), v))
      const cp = cnts + (g << 3)
      store<i64>(cp, load<i64>(cp) + 1)
    }
  } else {
    for (let i: i32 = 0; i < n; i++) {
      const r = <usize>(off + i)
      if (!bitAt(valid, r)) continue
      const g = <usize>load<i32>(gids + (<usize>i << 2))
      const v = <V>load<T>(inp + (r << alignof<T>()))
      const vp = vals + (g << 3)
      store<V>(vp, combine<V>(kind, load<V>(vp), v))
      const cp = cnts + (g << 3)
      store<i64>(cp, load<i64>(cp) + 1)
    }
  }
}

function scatterSumI32(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<i32, i64>(KIND_SUM, vals, cnts, inp, valid, off, n, gids) }
function scatterMinI32(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<i32, i64>(KIND_MIN, vals, cnts, inp, valid, off, n, gids) }
function scatterMaxI32(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<i32, i64>(KIND_MAX, vals, cnts, inp, valid, off, n, gids) }
function scatterSumI64(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<i64, i64>(KIND_SUM, vals, cnts, inp, valid, off, n, gids) }
function scatterMinI64(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<i64, i64>(KIND_MIN, vals, cnts, inp, valid, off, n, gids) }
function scatterMaxI64(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<i64, i64>(KIND_MAX, vals, cnts, inp, valid, off, n, gids) }
function scatterSumF64(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<f64, f64>(KIND_SUM, vals, cnts, inp, valid, off, n, gids) }
function scatterMinF64(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<f64, f64>(KIND_MIN, vals, cnts, inp, valid, off, n, gids) }
function scatterMaxF64(vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void { scatterImpl<f64, f64>(KIND_MAX, vals, cnts, inp, valid, off, n, gids) }

function scatter(kind: i32, input: i32, vals: usize, cnts: usize, inp: usize, valid: usize, off: i32, n: i32, gids: usize): void {
  if (kind == KIND_COUNT || input == IN_NONE) { scatterCount(cnts, valid, off, n, gids); return }
  if (input == IN_I32) {
    if (kind == KIND_SUM) scatterSumI32(vals, cnts, inp, valid, off, n, gids)
    else if (kind == KIND_MIN) scatterMinI32(vals, cnts, inp, valid, off, n, gids)
    else scatterMaxI32(vals, cnts, inp, valid, off, n, gids)
  } else if (input == IN_I64) {
    if (kind == KIND_SUM) scatterSumI64(vals, cnts, inp, valid, off, n, gids)
    else if (kind == KIND_MIN) scatterMinI64(vals, cnts, inp, valid, off, n, gids)
    else scatterMaxI64(vals, cnts, inp, valid, off, n, gids)
  } else {
    if (kind == KIND_SUM) scatterSumF64(vals, cnts, inp, valid, off, n, gids)
    else if (kind == KIND_MIN) scatterMinF64(vals, cnts, inp, valid, off, n, gids)
    else scatterMaxF64(vals, cnts, inp, valid, off, n, gids)
  }
}

/**
 * Aggregates n rows. `args` (usize each): nLanes lane pointers, then per spec (value pointer or 0,
 * validity pointer or 0).
 */
export function t_update(tp: usize, args: usize, n: i32): void {
  const t = changetype<Table>(tp)
  const specArgs = args + (<usize>t.nLanes << 2)
  for (let off: i32 = 0; off < n; off += CHUNK) {
    const m = n - off < CHUNK ? n - off : CHUNK
    find(t, args, off, m, GIDS)
    for (let j: i32 = 0; j < t.nSpecs; j++) {
      const inp = load<usize>(specArgs + (<usize>j << 3))
      const valid = load<usize>(specArgs + (<usize>j << 3), 4)
      scatter(specKind(t, j), specInput(t, j), valsOf(t, j), cntsOf(t, j), inp, valid, off, m, GIDS)
    }
  }
}

// --- merge

@inline function mergeImpl<V>(kind: i32, vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void {
  for (let i: i32 = 0; i < n; i++) {
    const g = <usize>load<i32>(gids + (<usize>i << 2))
    const r = <usize>i << 3
    if (kind != KIND_COUNT) {
      const vp = vals + (g << 3)
      store<V>(vp, combine<V>(kind, load<V>(vp), load<V>(inVals + r)))
    }
    const cp = cnts + (g << 3)
    store<i64>(cp, load<i64>(cp) + load<i64>(inCnts + r))
  }
}

function mergeCount(cnts: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<i64>(KIND_COUNT, 0, cnts, 0, inCnts, n, gids) }
function mergeSumI(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<i64>(KIND_SUM, vals, cnts, inVals, inCnts, n, gids) }
function mergeMinI(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<i64>(KIND_MIN, vals, cnts, inVals, inCnts, n, gids) }
function mergeMaxI(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<i64>(KIND_MAX, vals, cnts, inVals, inCnts, n, gids) }
function mergeSumF(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<f64>(KIND_SUM, vals, cnts, inVals, inCnts, n, gids) }
function mergeMinF(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<f64>(KIND_MIN, vals, cnts, inVals, inCnts, n, gids) }
function mergeMaxF(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize): void { mergeImpl<f64>(KIND_MAX, vals, cnts, inVals, inCnts, n, gids) }

/**
 * Merges n partial groups. `args` (usize each): nLanes lane pointers, then per spec (value
 * pointer or 0, count pointer); group ids are written to `gidsOut`.
 */
export function t_merge(tp: usize, args: usize, n: i32, gidsOut: usize): void {
  const t = changetype<Table>(tp)
  find(t, args, 0, n, gidsOut)
  const specArgs = args + (<usize>t.nLanes << 2)
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    const inVals = load<usize>(specArgs + (<usize>j << 3))
    const inCnts = load<usize>(specArgs + (<usize>j << 3), 4)
    const kind = specKind(t, j)
    const vals = valsOf(t, j)
    const cnts = cntsOf(t, j)
    if (kind == KIND_COUNT) mergeCount(cnts, inCnts, n, gidsOut)
    else if (specInput(t, j) == IN_F64) {
      if (kind == KIND_SUM) mergeSumF(vals, cnts, inVals, inCnts, n, gidsOut)
      else if (kind == KIND_MIN) mergeMinF(vals, cnts, inVals, inCnts, n, gidsOut)
      else mergeMaxF(vals, cnts, inVals, inCnts, n, gidsOut)
    } else {
      if (kind == KIND_SUM) mergeSumI(vals, cnts, inVals, inCnts, n, gidsOut)
      else if (kind == KIND_MIN) mergeMinI(vals, cnts, inVals, inCnts, n, gidsOut)
      else mergeMaxI(vals, cnts, inVals, inCnts, n, gidsOut)
    }
  }
}

// --- export

/**
 * Writes the keys (unpacked per lane) of groups ids[0..n) — or 0..n when ids is 0 — to the lane
 * pointers in `out` (usize each, nLanes), and, when `withAccs`, the values and counts to the
 * following per-spec (value pointer or 0, count pointer) pairs.
 */
export function t_gather(tp: usize, ids: usize, n: i32, out: usize, withAccs: i32): void {
  const t = changetype<Table>(tp)
  const W8 = <usize>t.W << 3
  for (let l: i32 = 0; l < t.nLanes; l++) {
    const dst = load<usize>(out + (<usize>l << 2))
    const lp = t.lanes + <usize>l * 12
    const width = load<i32>(lp)
    const wordOff = <usize>load<i32>(lp, 4) << 3
    const part = load<i32>(lp, 8)
    const base = t.keys + wordOff + (part == 2 ? 4 : 0)
    for (let i: i32 = 0; i < n; i++) {
      const g = ids == 0 ? <usize>i : <usize>load<i32>(ids + (<usize>i << 2))
      const src = base + g * W8
      if (width == 8) store<u64>(dst + (<usize>i << 3), load<u64>(src))
      else store<u32>(dst + (<usize>i << 2), load<u32>(src))
    }
  }
  if (withAccs == 0) return
  const specOut = out + (<usize>t.nLanes << 2)
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    const dv = load<usize>(specOut + (<usize>j << 3))
    const dc = load<usize>(specOut + (<usize>j << 3), 4)
    const vals = valsOf(t, j)
    const cnts = cntsOf(t, j)
    for (let i: i32 = 0; i < n; i++) {
      const g = ids == 0 ? <usize>i : <usize>load<i32>(ids + (<usize>i << 2))
      store<u64>(dc + (<usize>i << 3), load<u64>(cnts + (g << 3)))
      if (vals != 0) store<u64>(dv + (<usize>i << 3), load<u64>(vals + (g << 3)))
    }
  }
}

// --- removal

@inline function laneKeyI64(t: Table, lane: i32, g: i32): i64 {
  const lp = t.lanes + <usize>lane * 12
  return load<i64>(t.keys + <usize>g * (<usize>t.W << 3) + (<usize>load<i32>(lp, 4) << 3))
}

/** Writes the ids of the groups whose i64 key lane `lane` is <= threshold to `out`; returns their number. */
export function t_select_le(tp: usize, lane: i32, threshold: i64, out: usize): i32 {
  const t = changetype<Table>(tp)
  let c: i32 = 0
  for (let g: i32 = 0; g < t.numGroups; g++) {
    if (laneKeyI64(t, lane, g) <= threshold) {
      store<i32>(out + (<usize>c << 2), g)
      c++
    }
  }
  return c
}

/** Removes the groups whose i64 key lane `lane` is <= threshold; the others keep their order. */
export function t_remove_le(tp: usize, lane: i32, threshold: i64): i32 {
  const t = changetype<Table>(tp)
  const W8 = <usize>t.W << 3
  const n = t.numGroups
  let k: i32 = 0
  for (let g: i32 = 0; g < n; g++) {
    if (laneKeyI64(t, lane, g) <= threshold) continue
    if (k != g) {
      memory.copy(t.keys + <usize>k * W8, t.keys + <usize>g * W8, W8)
      for (let j: i32 = 0; j < t.nSpecs; j++) {
        const c = cntsOf(t, j)
        store<u64>(c + (<usize>k << 3), load<u64>(c + (<usize>g << 3)))
        const v = valsOf(t, j)
        if (v != 0) store<u64>(v + (<usize>k << 3), load<u64>(v + (<usize>g << 3)))
      }
    }
    k++
  }
  if (k == n) return 0
  initAccs(t, k, n)
  t.numGroups = k
  // shrink the slots when they became very sparse (load < 1/8), keeping room to grow 4x
  let cap = t.slotCap
  while (cap > 128 && <i64>k * 8 < <i64>cap) cap >>= 1
  rebuildSlots(t, cap)
  return n - k
}
