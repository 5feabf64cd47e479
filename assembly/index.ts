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
//
// Dense layout: when an update starts on an empty table and the product of its key lanes' domains
// (window index within the batch, dictionary code, integer range) is small, rows are addressed
// directly — slot = Σ code_l × stride_l, `slotGroup[slot]` = group id + 1 — instead of hashed. The
// groups, their packed keys and accumulators are exactly what the hashed path would produce (same
// ids, first-seen order), so everything else (gather, merge, removal) works on either; the hash
// slots are rebuilt from the stored keys the first time a hashed operation needs them.

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
        hi = cacheEnd(lo, start, slide)
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
        hi = cacheEnd(lo, start, slide)
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
  hashStale: i32 = 0 // groups were added densely: the hash slots do not index them
  dense: i32 = 0 // slotGroup holds entries for groups 0..numGroups (reset them before reuse)
  slotGroup: usize = 0 // dense slot -> group id + 1 (0 = empty); all zero while dense == 0
  slotGroupCap: i32 = 0
  groupSlot: usize = 0 // per group: its dense slot (groupCap i32)
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
  t.groupSlot = heap.realloc(t.groupSlot, <usize>cap << 2)
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
  t.hashStale = 0
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

/** Drops the dense index (resetting its entries) and makes the hash slots index every group. */
function toHashed(t: Table): void {
  if (t.dense != 0) {
    const sg = t.slotGroup
    for (let g: i32 = 0; g < t.numGroups; g++) store<i32>(sg + (<usize>load<i32>(t.groupSlot + (<usize>g << 2)) << 2), 0)
    t.dense = 0
  }
  if (t.hashStale != 0) {
    let cap: i32 = 128
    while (cap >> 1 <= t.numGroups) cap <<= 1
    rebuildSlots(t, cap)
  }
}

@inline function loadWord(kind: i32, pa: usize, pb: usize, r: usize): u64 {
  if (kind == WORD_I64) return load<u64>(pa + (r << 3))
  if (kind == WORD_I32) return <u64>load<u32>(pa + (r << 2))
  return <u64>load<u32>(pa + (r << 2)) | (<u64>load<u32>(pb + (r << 2)) << 32)
}

/**
 * Group ids of rows [off, off + n) of the key lanes at `lanePtrs` (usize per lane) into `out`.
 * `skip` (0 or n bytes): rows flagged non-zero get id 0 and create no group.
 */
@inline function findImpl(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize, W: i32, skip: usize): void {
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
    if (skip != 0 && load<u8>(skip + <usize>i) != 0) {
      store<i32>(out + (<usize>i << 2), 0)
      continue
    }
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

function find1(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize, skip: usize): void {
  findImpl(t, lanePtrs, off, n, out, 1, skip)
}
function find2(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize, skip: usize): void {
  findImpl(t, lanePtrs, off, n, out, 2, skip)
}
function find3(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize, skip: usize): void {
  findImpl(t, lanePtrs, off, n, out, 3, skip)
}

/** Hashed group lookup (the table must be hashed: see toHashed). */
function find(t: Table, lanePtrs: usize, off: i32, n: i32, out: usize, skip: usize): void {
  const W = t.W
  if (W == 1) find1(t, lanePtrs, off, n, out, skip)
  else if (W == 2) find2(t, lanePtrs, off, n, out, skip)
  else find3(t, lanePtrs, off, n, out, skip)
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
  t.groupSlot = heap.alloc(<usize>64 << 2)
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
  heap.free(t.groupSlot)
  if (t.slotGroup != 0) heap.free(t.slotGroup)
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
  if (t.dense != 0) {
    const sg = t.slotGroup
    for (let g: i32 = 0; g < t.numGroups; g++) store<i32>(sg + (<usize>load<i32>(t.groupSlot + (<usize>g << 2)) << 2), 0)
    t.dense = 0
  }
  initAccs(t, 0, t.numGroups)
  t.numGroups = 0
  if (t.hashStale == 0) memory.fill(t.slots, 0, <usize>t.slotCap << 3) // else no slot was used since the last clear
  t.hashStale = 0
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

// --- update: key lanes

// key lane kinds (lane descriptors of t_update, LANE_BYTES each):
//   i32 kind, i32 dictSize, usize ptr, usize validity, usize remap, i32 pad, i64 p0, i64 p1
const LANE_I64: i32 = 0 // i64 values at ptr
const LANE_I32: i32 = 1 // i32 values at ptr
const LANE_TUMBLE: i32 = 2 // i64 timestamps at ptr (validity: null rows are skipped); value = window start, p0 = start offset, p1 = size
const LANE_DICT: i32 = 3 // i32 codes at ptr into a dictionary of dictSize entries; value = remap[code], or -1 when null
const LANE_BYTES: usize = 40

const MAX_LANES: i32 = 6
const LV: usize = memory.data(MAX_LANES * CHUNK * 8, 16) // per lane: CHUNK lane values (i64 or i32)
const LVPTRS: usize = memory.data(MAX_LANES * 4, 16) // pointers to the LV blocks
const SLOT: usize = memory.data(CHUNK * 4, 16) // dense slot of each row of a chunk
const SKIP: usize = memory.data(CHUNK, 16) // 1 for rows skipped (null window timestamp)
// per lane: dense base (i64) and domain (i64); per-call state of a tumbling lane's window cache
const DBASE: usize = memory.data(MAX_LANES * 8, 16)
const DDOM: usize = memory.data(MAX_LANES * 8, 16)

@inline function laneKind(d: usize): i32 { return load<i32>(d) }
@inline function laneDictSize(d: usize): i32 { return load<i32>(d, 4) }
@inline function lanePtr(d: usize): usize { return load<usize>(d, 8) }
@inline function laneValid(d: usize): usize { return load<usize>(d, 12) }
@inline function laneRemap(d: usize): usize { return load<usize>(d, 16) }
@inline function laneP0(d: usize): i64 { return load<i64>(d, 24) }
@inline function laneP1(d: usize): i64 { return load<i64>(d, 32) }

/** Spark's window start of timestamp t: t - pmod(t - start, size). */
@inline function windowStart(t: i64, start: i64, size: i64): i64 {
  let r = (t - start) % size
  if (r < 0) r += size
  return t - r
}

/**
 * End of the cached window [lo, hi) of Spark's window start `lo` of size `size`: lo + size, or lo
 * (an empty cache) when some timestamp in the window would compute its start with an overflowing
 * t - start (then each row computes its own, exactly as the formula does).
 */
@inline function cacheEnd(lo: i64, start: i64, size: i64): i64 {
  const hi = lo + size
  const last = hi - 1
  if (hi <= lo || ((lo ^ start) & (lo ^ (lo - start))) < 0 || ((last ^ start) & (last ^ (last - start))) < 0) return lo
  return hi
}

/**
 * Computes each lane's dense domain over rows [0, n) into DBASE/DDOM and returns the product of the
 * domains, or -1 when it exceeds `limit` (or some lane cannot be addressed densely).
 */
function denseDomains(t: Table, lanes: usize, n: i32, limit: i64): i64 {
  let product: i64 = 1
  for (let l: i32 = 0; l < t.nLanes; l++) {
    const d = lanes + <usize>l * LANE_BYTES
    const kind = laneKind(d)
    const p = lanePtr(d)
    let base: i64 = 0
    let dom: i64 = 1
    if (kind == LANE_DICT) {
      // code = remap[c] - min + 1 (0 = null): by the remapped value, so that codes remapped to the
      // same value (a dictionary with repeated strings) share a group as they do when hashed
      const remap = laneRemap(d)
      const size = laneDictSize(d)
      let mn: i32 = i32.MAX_VALUE, mx: i32 = i32.MIN_VALUE
      for (let i: i32 = 0; i < size; i++) {
        const v = load<i32>(remap + (<usize>i << 2))
        if (v < mn) mn = v
        if (v > mx) mx = v
      }
      if (mn < 0 && size > 0) return -1 // a negative value would share the key of null (-1): hash
      if (size > 0) {
        base = <i64>mn
        dom = <i64>mx - <i64>mn + 2
      }
    } else if (kind == LANE_I32) {
      let mn: i32 = i32.MAX_VALUE, mx: i32 = i32.MIN_VALUE
      for (let i: i32 = 0; i < n; i++) {
        const v = load<i32>(p + (<usize>i << 2))
        if (v < mn) mn = v
        if (v > mx) mx = v
      }
      base = <i64>mn
      dom = n == 0 ? 1 : <i64>mx - <i64>mn + 1
    } else if (kind == LANE_TUMBLE) {
      // window starts of the valid rows: their range, and that they lie on one grid of `size`
      // (always, unless timestamp - start overflows i64, which falls back to hashing)
      const valid = laneValid(d)
      const start = laneP0(d)
      const size = laneP1(d)
      let lo: i64 = 1, hi: i64 = 0
      let mn: i64 = i64.MAX_VALUE, mx: i64 = i64.MIN_VALUE
      let first: i64 = 0
      let any = false
      for (let i: i32 = 0; i < n; i++) {
        if (!validAt(valid, <usize>i)) continue
        const ts = load<i64>(p + (<usize>i << 3))
        if (ts >= lo && ts < hi) continue
        lo = windowStart(ts, start, size)
        hi = cacheEnd(lo, start, size)
        if (!any) { first = lo; any = true }
        else if ((lo >= first ? <u64>(lo - first) : <u64>(first - lo)) % <u64>size != 0) return -1
        if (lo < mn) mn = lo
        if (lo > mx) mx = lo
      }
      if (any) {
        const span = <u64>(mx - mn) / <u64>size
        if (span >= <u64>limit) return -1
        base = mn
        dom = <i64>span + 1
      }
    } else {
      // i64 values: their range
      let mn: i64 = i64.MAX_VALUE, mx: i64 = i64.MIN_VALUE
      for (let i: i32 = 0; i < n; i++) {
        const v = load<i64>(p + (<usize>i << 3))
        if (v < mn) mn = v
        if (v > mx) mx = v
      }
      if (n > 0) {
        const span = <u64>(mx - mn)
        if (span >= <u64>limit) return -1
        base = mn
        dom = <i64>span + 1
      }
    }
    store<i64>(DBASE + (<usize>l << 3), base)
    store<i64>(DDOM + (<usize>l << 3), dom)
    if (dom > limit) return -1
    product *= dom
    if (product > limit) return -1
  }
  return product
}

/**
 * Materialises the lane values of rows [off, off + m) into the LV blocks; with `dense`, also each
 * row's dense slot into SLOT. Rows with a null window timestamp are flagged in SKIP (returns true
 * when there is any).
 */
function laneValues(t: Table, lanes: usize, off: i32, m: i32, dense: bool): bool {
  let anySkip = false
  if (dense) memory.fill(SLOT, 0, <usize>m << 2)
  for (let l: i32 = 0; l < t.nLanes; l++) {
    const d = lanes + <usize>l * LANE_BYTES
    const kind = laneKind(d)
    const p = lanePtr(d)
    const out = LV + <usize>l * <usize>(CHUNK * 8)
    const base = load<i64>(DBASE + (<usize>l << 3))
    const dom = <i32>load<i64>(DDOM + (<usize>l << 3))
    if (kind == LANE_I64) {
      for (let i: i32 = 0; i < m; i++) {
        const v = load<i64>(p + (<usize>(off + i) << 3))
        store<i64>(out + (<usize>i << 3), v)
        if (dense) store<i32>(SLOT + (<usize>i << 2), load<i32>(SLOT + (<usize>i << 2)) * dom + <i32>(v - base))
      }
    } else if (kind == LANE_I32) {
      for (let i: i32 = 0; i < m; i++) {
        const v = load<i32>(p + (<usize>(off + i) << 2))
        store<i32>(out + (<usize>i << 2), v)
        if (dense) store<i32>(SLOT + (<usize>i << 2), load<i32>(SLOT + (<usize>i << 2)) * dom + (v - <i32>base))
      }
    } else if (kind == LANE_DICT) {
      const valid = laneValid(d)
      const remap = laneRemap(d)
      for (let i: i32 = 0; i < m; i++) {
        const r = <usize>(off + i)
        const c = load<i32>(p + (r << 2))
        const ok = validAt(valid, r)
        const v = ok ? load<i32>(remap + (<usize>c << 2)) : -1
        store<i32>(out + (<usize>i << 2), v)
        if (dense) store<i32>(SLOT + (<usize>i << 2), load<i32>(SLOT + (<usize>i << 2)) * dom + (ok ? v - <i32>base + 1 : 0))
      }
    } else {
      // tumbling window: cache the window [lo, hi) of the previous row (timestamps are mostly ordered)
      const valid = laneValid(d)
      const start = laneP0(d)
      const size = laneP1(d)
      let lo: i64 = 1
      let hi: i64 = 0
      let code: i32 = 0
      for (let i: i32 = 0; i < m; i++) {
        const r = <usize>(off + i)
        if (!validAt(valid, r)) {
          store<u8>(SKIP + <usize>i, 1)
          store<i64>(out + (<usize>i << 3), 0)
          anySkip = true
          continue
        }
        const ts = load<i64>(p + (r << 3))
        if (!(ts >= lo && ts < hi)) {
          lo = windowStart(ts, start, size)
          hi = cacheEnd(lo, start, size)
          if (dense) code = <i32>(<u64>(lo - base) / <u64>size)
        }
        store<i64>(out + (<usize>i << 3), lo)
        if (dense) store<i32>(SLOT + (<usize>i << 2), load<i32>(SLOT + (<usize>i << 2)) * dom + code)
      }
    }
  }
  return anySkip
}

/** Dense group lookup of a chunk: SLOT → group ids into `out` (new groups take their keys from LV). */
function denseFind(t: Table, m: i32, out: usize, anySkip: bool): void {
  const W = t.W
  const sg = t.slotGroup
  const wd = t.words
  for (let i: i32 = 0; i < m; i++) {
    if (anySkip && load<u8>(SKIP + <usize>i) != 0) {
      store<i32>(out + (<usize>i << 2), 0)
      continue
    }
    const slot = <usize>load<i32>(SLOT + (<usize>i << 2))
    let g = load<i32>(sg + (slot << 2)) - 1
    if (g < 0) {
      g = t.numGroups
      if (g >= t.groupCap) growGroups(t)
      const kp = t.keys + <usize>g * <usize>W * 8
      for (let w: i32 = 0; w < W; w++) {
        const kind = load<i32>(wd + <usize>w * 12)
        const a = LV + <usize>load<i32>(wd + <usize>w * 12, 4) * <usize>(CHUNK * 8)
        const b = LV + <usize>load<i32>(wd + <usize>w * 12, 8) * <usize>(CHUNK * 8)
        store<u64>(kp + (<usize>w << 3), loadWord(kind, a, b, <usize>i))
      }
      store<i32>(t.groupSlot + (<usize>g << 2), <i32>slot)
      store<i32>(sg + (slot << 2), g + 1)
      t.numGroups = g + 1
    }
    store<i32>(out + (<usize>i << 2), g)
  }
}

/** ANDs validity bitmaps a and b (n bits, either may be 0 = all valid) into a new block, or returns the non-zero one. */
function andValidity(a: usize, b: usize, n: i32): usize {
  if (a == 0) return b
  if (b == 0) return a
  const bytes = <usize>((n + 7) >> 3)
  const out = heap.alloc(bytes)
  for (let i: usize = 0; i < bytes; i++) store<u8>(out + i, load<u8>(a + i) & load<u8>(b + i))
  return out
}

let lastLayout: i32 = 0

/** 1 when the last t_update addressed its groups densely, 0 when it hashed them. */
export function t_last_layout(): i32 {
  return lastLayout
}

/**
 * Aggregates n rows. `lanes`: nLanes lane descriptors (LANE_BYTES each, see above); `specArgs`
 * (usize each): per spec (value pointer or 0, validity pointer or 0). Rows whose tumbling-window
 * timestamp is null are skipped. The groups are addressed densely when the table is empty and the
 * product of the lanes' domains is at most `denseLimit` (0: never), hashed otherwise. Returns 1
 * (dense) or 0 (hashed), or -1 - i when row i has a dictionary code outside its dictionary (nothing
 * is changed then).
 */
export function t_update(tp: usize, lanes: usize, specArgs: usize, n: i32, denseLimit: i32): i32 {
  const t = changetype<Table>(tp)
  // refuse dictionary codes outside their dictionary (valid rows), before changing anything
  for (let l: i32 = 0; l < t.nLanes; l++) {
    const d = lanes + <usize>l * LANE_BYTES
    if (laneKind(d) != LANE_DICT) continue
    const p = lanePtr(d)
    const valid = laneValid(d)
    const size = <u32>laneDictSize(d)
    for (let i: i32 = 0; i < n; i++) {
      if (<u32>load<i32>(p + (<usize>i << 2)) >= size && validAt(valid, <usize>i)) return -1 - i
    }
  }
  // validity of the rows that have a window (null timestamps are skipped by every spec)
  let rowValid: usize = 0
  let ownRowValid = false
  for (let l: i32 = 0; l < t.nLanes; l++) {
    const d = lanes + <usize>l * LANE_BYTES
    if (laneKind(d) != LANE_TUMBLE || laneValid(d) == 0) continue
    const v = andValidity(rowValid, laneValid(d), n)
    if (v != rowValid && v != laneValid(d)) {
      // a new block (several tumbling lanes): a row is skipped when any of its timestamps is null
      if (ownRowValid) heap.free(rowValid)
      ownRowValid = true
    }
    rowValid = v
  }
  let dense = false
  if (t.numGroups == 0 && denseLimit > 0 && n > 0) {
    const product = denseDomains(t, lanes, n, <i64>denseLimit)
    if (product > 0) {
      dense = true
      if (<i64>t.slotGroupCap < product) {
        if (t.slotGroup != 0) heap.free(t.slotGroup)
        let cap: i64 = 1024
        while (cap < product) cap <<= 1
        t.slotGroup = heap.alloc(<usize>cap << 2)
        memory.fill(t.slotGroup, 0, <usize>cap << 2)
        t.slotGroupCap = <i32>cap
      }
      t.dense = 1
      t.hashStale = 1
    }
  }
  if (!dense) toHashed(t)
  lastLayout = dense ? 1 : 0
  const valids = heap.alloc(<usize>(t.nSpecs > 0 ? t.nSpecs : 1) << 2)
  for (let j: i32 = 0; j < t.nSpecs; j++) store<usize>(valids + (<usize>j << 2), andValidity(load<usize>(specArgs + (<usize>j << 3), 4), rowValid, n))
  for (let l: i32 = 0; l < t.nLanes; l++) store<usize>(LVPTRS + (<usize>l << 2), LV + <usize>l * <usize>(CHUNK * 8))
  for (let off: i32 = 0; off < n; off += CHUNK) {
    const m = n - off < CHUNK ? n - off : CHUNK
    if (rowValid != 0) memory.fill(SKIP, 0, <usize>m)
    const anySkip = laneValues(t, lanes, off, m, dense)
    if (dense) denseFind(t, m, GIDS, anySkip)
    else find(t, LVPTRS, 0, m, GIDS, anySkip ? SKIP : 0)
    for (let j: i32 = 0; j < t.nSpecs; j++) {
      const inp = load<usize>(specArgs + (<usize>j << 3))
      const valid = load<usize>(valids + (<usize>j << 2))
      scatter(specKind(t, j), specInput(t, j), valsOf(t, j), cntsOf(t, j), inp, valid, off, m, GIDS)
    }
  }
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    const v = load<usize>(valids + (<usize>j << 2))
    if (v != 0 && v != rowValid && v != load<usize>(specArgs + (<usize>j << 3), 4)) heap.free(v)
  }
  heap.free(valids)
  if (ownRowValid) heap.free(rowValid)
  return lastLayout
}

// --- merge

/** Combines partial accumulators into groups gids[i]; row i of the input is srcIdx[i] (or i when srcIdx is 0). */
@inline function mergeImpl<V>(kind: i32, vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void {
  for (let i: i32 = 0; i < n; i++) {
    const g = <usize>load<i32>(gids + (<usize>i << 2))
    const r = (srcIdx == 0 ? <usize>i : <usize>load<i32>(srcIdx + (<usize>i << 2))) << 3
    if (kind != KIND_COUNT) {
      const vp = vals + (g << 3)
      store<V>(vp, combine<V>(kind, load<V>(vp), load<V>(inVals + r)))
    }
    const cp = cnts + (g << 3)
    store<i64>(cp, load<i64>(cp) + load<i64>(inCnts + r))
  }
}

function mergeCount(cnts: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<i64>(KIND_COUNT, 0, cnts, 0, inCnts, n, gids, srcIdx) }
function mergeSumI(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<i64>(KIND_SUM, vals, cnts, inVals, inCnts, n, gids, srcIdx) }
function mergeMinI(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<i64>(KIND_MIN, vals, cnts, inVals, inCnts, n, gids, srcIdx) }
function mergeMaxI(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<i64>(KIND_MAX, vals, cnts, inVals, inCnts, n, gids, srcIdx) }
function mergeSumF(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<f64>(KIND_SUM, vals, cnts, inVals, inCnts, n, gids, srcIdx) }
function mergeMinF(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<f64>(KIND_MIN, vals, cnts, inVals, inCnts, n, gids, srcIdx) }
function mergeMaxF(vals: usize, cnts: usize, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void { mergeImpl<f64>(KIND_MAX, vals, cnts, inVals, inCnts, n, gids, srcIdx) }

function mergeSpec(t: Table, j: i32, inVals: usize, inCnts: usize, n: i32, gids: usize, srcIdx: usize): void {
  const kind = specKind(t, j)
  const vals = valsOf(t, j)
  const cnts = cntsOf(t, j)
  if (kind == KIND_COUNT) mergeCount(cnts, inCnts, n, gids, srcIdx)
  else if (specInput(t, j) == IN_F64) {
    if (kind == KIND_SUM) mergeSumF(vals, cnts, inVals, inCnts, n, gids, srcIdx)
    else if (kind == KIND_MIN) mergeMinF(vals, cnts, inVals, inCnts, n, gids, srcIdx)
    else mergeMaxF(vals, cnts, inVals, inCnts, n, gids, srcIdx)
  } else {
    if (kind == KIND_SUM) mergeSumI(vals, cnts, inVals, inCnts, n, gids, srcIdx)
    else if (kind == KIND_MIN) mergeMinI(vals, cnts, inVals, inCnts, n, gids, srcIdx)
    else mergeMaxI(vals, cnts, inVals, inCnts, n, gids, srcIdx)
  }
}

/**
 * Merges n partial groups. `args` (usize each): nLanes lane pointers, then per spec (value
 * pointer or 0, count pointer). With lateLane >= 0, rows whose i64 key lane `lateLane` is <= thr
 * are dropped first (the input arrays are compacted in place). Writes the group id of each kept row
 * to `gidsOut` and returns the number of kept rows.
 */
export function t_merge(tp: usize, args: usize, n: i32, gidsOut: usize, lateLane: i32, thr: i64): i32 {
  const t = changetype<Table>(tp)
  toHashed(t)
  const specArgs = args + (<usize>t.nLanes << 2)
  let m = n
  if (lateLane >= 0) {
    const lane = load<usize>(args + (<usize>lateLane << 2))
    m = 0
    for (let i: i32 = 0; i < n; i++) {
      if (load<i64>(lane + (<usize>i << 3)) <= thr) continue
      if (m != i) {
        for (let l: i32 = 0; l < t.nLanes; l++) {
          const p = load<usize>(args + (<usize>l << 2))
          if (load<i32>(t.lanes + <usize>l * 12) == 8) store<u64>(p + (<usize>m << 3), load<u64>(p + (<usize>i << 3)))
          else store<u32>(p + (<usize>m << 2), load<u32>(p + (<usize>i << 2)))
        }
        for (let j: i32 = 0; j < t.nSpecs; j++) {
          const vp = load<usize>(specArgs + (<usize>j << 3))
          const cp = load<usize>(specArgs + (<usize>j << 3), 4)
          if (vp != 0) store<u64>(vp + (<usize>m << 3), load<u64>(vp + (<usize>i << 3)))
          store<u64>(cp + (<usize>m << 3), load<u64>(cp + (<usize>i << 3)))
        }
      }
      m++
    }
  }
  find(t, args, 0, m, gidsOut, 0)
  for (let j: i32 = 0; j < t.nSpecs; j++) {
    mergeSpec(t, j, load<usize>(specArgs + (<usize>j << 3)), load<usize>(specArgs + (<usize>j << 3), 4), m, gidsOut, 0)
  }
  return m
}

/** Finds or adds the group of packed key words at kp (W words); the table must be hashed. */
@inline function findPacked(t: Table, kp: usize, W: i32): i32 {
  const w0 = load<u64>(kp)
  const w1: u64 = W >= 2 ? load<u64>(kp, 8) : 0
  const w2: u64 = W >= 3 ? load<u64>(kp, 16) : 0
  const tag = <u32>(hashWords(W, w0, w1, w2) >> 32)
  const slots = t.slots
  const keys = t.keys
  const mask = <u32>(t.slotCap - 1)
  let pos = tag >> <u32>t.slotShift
  while (true) {
    const s = load<u64>(slots + (<usize>pos << 3))
    if (s == 0) break
    if (<u32>(s >> 32) == tag) {
      const g = <i32>(<u32>s) - 1
      const gp = keys + <usize>g * <usize>(W * 8)
      if (load<u64>(gp) == w0 && (W < 2 || load<u64>(gp, 8) == w1) && (W < 3 || load<u64>(gp, 16) == w2)) return g
    }
    pos = (pos + 1) & mask
  }
  if (W == 1) return addGroup1(t, tag, w0)
  if (W == 2) return addGroup2(t, tag, w0, w1)
  return addGroup3(t, tag, w0, w1, w2)
}

function findPackedAll(t: Table, src: Table, ids: usize, n: i32, out: usize): void {
  const W = t.W
  const W8 = <usize>W << 3
  for (let i: i32 = 0; i < n; i++) {
    const kp = src.keys + <usize>load<i32>(ids + (<usize>i << 2)) * W8
    const g = W == 1 ? findPacked(t, kp, 1) : W == 2 ? findPacked(t, kp, 2) : findPacked(t, kp, 3)
    store<i32>(out + (<usize>i << 2), g)
  }
}

/**
 * Merges every group of table `sp` (same lanes and specs) into table `tp`, dropping (with
 * lateLane >= 0) the groups whose i64 key lane `lateLane` is <= thr. Writes the group id in tp of
 * each kept group (in sp's group order) to `gidsOut` and returns their number.
 */
export function t_merge_table(tp: usize, sp: usize, gidsOut: usize, lateLane: i32, thr: i64): i32 {
  const t = changetype<Table>(tp)
  const src = changetype<Table>(sp)
  toHashed(t)
  const n = src.numGroups
  const ids = heap.alloc(<usize>(n > 0 ? n : 1) << 2)
  let m: i32 = 0
  const laneOff = lateLane >= 0 ? <usize>load<i32>(src.lanes + <usize>lateLane * 12, 4) << 3 : 0
  const W8 = <usize>src.W << 3
  for (let g: i32 = 0; g < n; g++) {
    if (lateLane >= 0 && load<i64>(src.keys + <usize>g * W8 + laneOff) <= thr) continue
    store<i32>(ids + (<usize>m << 2), g)
    m++
  }
  findPackedAll(t, src, ids, m, gidsOut)
  for (let j: i32 = 0; j < t.nSpecs; j++) mergeSpec(t, j, valsOf(src, j), cntsOf(src, j), m, gidsOut, ids)
  heap.free(ids)
  return m
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
  toHashed(t)
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
  // shrink the slots only below what the groups before this removal needed: a state that fills up
  // and is evicted every batch keeps its capacity instead of regrowing (and rehashing) each time
  let cap = t.slotCap
  while (cap > 128 && <i64>n * 4 < <i64>cap) cap >>= 1
  rebuildSlots(t, cap)
  return n - k
}

// --- event time

/**
 * Event-time statistics of the valid rows of ts[0..n) (µs): ms = µs / 1000 truncated toward zero
 * (as Number(µs / 1000n)), rows with ms > maxMs left out. Writes [max, min, sum, count] as f64 to
 * `out` (empty: -Infinity, Infinity, sum0, 0); the sum is accumulated from `sum0` in row order, as
 * in JS (so calls over consecutive pieces give the sum of one pass).
 */
export function event_time_stats(ts: usize, valid: usize, n: i32, maxMs: f64, sum0: f64, out: usize): void {
  let max: f64 = -Infinity
  let min: f64 = Infinity
  let sum: f64 = sum0
  let count: i32 = 0
  for (let i: i32 = 0; i < n; i++) {
    if (valid != 0 && ((<i32>load<u8>(valid + (<usize>i >> 3)) >> (i & 7)) & 1) == 0) continue
    const ms = <f64>(load<i64>(ts + (<usize>i << 3)) / 1000)
    if (ms > maxMs) continue
    if (ms > max) max = ms
    if (ms < min) min = ms
    sum += ms
    count++
  }
  store<f64>(out, max)
  store<f64>(out, min, 8)
  store<f64>(out, sum, 16)
  store<f64>(out, <f64>count, 24)
}
