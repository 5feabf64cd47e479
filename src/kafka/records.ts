/**
 * Kafka's on-wire record batches (message format v2, KIP-98) decoded straight into columns: no JS
 * object per record. Keys and values are `Uint8Array` views into the fetch response (not copied);
 * offsets and timestamps go into typed arrays. Read-committed filtering (aborted transactions and
 * control batches) follows the Java consumer's `Fetcher` (CompletedFetch.nextFetchedRecord).
 *
 * Batch layout (https://kafka.apache.org/documentation/#recordbatch): baseOffset int64, batchLength
 * int32, partitionLeaderEpoch int32, magic int8 (2), crc uint32, attributes int16 (bits 0–2
 * compression, 3 timestampType, 4 isTransactional, 5 isControlBatch), lastOffsetDelta int32,
 * baseTimestamp int64, maxTimestamp int64, producerId int64, producerEpoch int16, baseSequence
 * int32, records [length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 * key varint-bytes, value varint-bytes, headers [key varint-string, value varint-bytes]].
 */
import { gunzipSync } from 'node:zlib'
import {
  type Batch, type Column, type Schema, newValidity, setValid,
} from '../batch.ts'
import { SourceError } from '../errors.ts'

/** One record header; `value` null when the header has no value. */
export interface KafkaHeader {
  readonly key: string
  readonly value: Uint8Array | null
}

const TWO32 = 4294967296
const utf8 = new TextDecoder('utf-8', { fatal: false })

/** Growable columns of the records of one read (all its partition ranges, one after the other). */
export class RecordColumns {
  n = 0
  offsets = new Float64Array(1024)
  timestamps = new Float64Array(1024)
  timestampTypes = new Uint8Array(1024)
  topicCodes = new Int32Array(1024)
  partitions = new Int32Array(1024)
  keys: (Uint8Array | null)[] = []
  values: (Uint8Array | null)[] = []
  headers: (KafkaHeader[] | null)[] | null
  /** The topics `topicCodes` index. */
  readonly topics: string[] = []

  constructor(includeHeaders: boolean) {
    this.headers = includeHeaders ? [] : null
  }

  topicCode(topic: string): number {
    const i = this.topics.indexOf(topic)
    return i >= 0 ? i : this.topics.push(topic) - 1
  }

  reserve(extra: number): void {
    const need = this.n + extra
    if (need <= this.offsets.length) return
    let cap = this.offsets.length
    while (cap < need) cap *= 2
    const grow = <T extends Float64Array | Uint8Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as { new (n: number): T })(cap)
      b.set(a.subarray(0, this.n))
      return b
    }
    this.offsets = grow(this.offsets)
    this.timestamps = grow(this.timestamps)
    this.timestampTypes = grow(this.timestampTypes)
    this.topicCodes = grow(this.topicCodes)
    this.partitions = grow(this.partitions)
  }
}

/** Where a partition's decoding stands: the next offset to return and the exclusive end. */
export interface PartitionCursor {
  readonly topic: string
  readonly partition: number
  position: number
  readonly until: number
  /** read_committed only: aborted transactions of the fetched range (ascending firstOffset), consumed as decoding passes them. */
  aborted: { producerId: number; firstOffset: number }[]
  readonly abortedProducers: Set<number>
  readonly readCommitted: boolean
}

/** A pluggable decompressor for codecs Node has no built-in for (snappy, lz4, zstd): kafkajs' CompressionCodecs registry. */
export type Decompress = (codec: number, data: Uint8Array) => Promise<Uint8Array>

function readInt64(b: Uint8Array, dv: DataView, p: number): number {
  return dv.getInt32(p) * TWO32 + dv.getUint32(p + 4)
}

/** Zig-zag varint decoding (32-bit), returns [value, next position]. */
class VarReader {
  p = 0
  constructor(readonly b: Uint8Array) {}

  varint(): number {
    const b = this.b
    let v = 0, shift = 0, x: number
    do {
      x = b[this.p++]!
      v |= (x & 0x7f) << shift
      shift += 7
    } while (x & 0x80 && shift < 35)
    return (v >>> 1) ^ -(v & 1)
  }

  varlong(): number {
    const b = this.b
    let v = 0, mul = 1, x: number
    do {
      x = b[this.p++]!
      v += (x & 0x7f) * mul
      mul *= 128
    } while (x & 0x80 && mul < 2 ** 70)
    return v % 2 === 1 ? -(v + 1) / 2 : v / 2
  }

  bytes(): Uint8Array | null {
    const len = this.varint()
    if (len < 0) return null
    const out = this.b.subarray(this.p, this.p + len)
    this.p += len
    return out
  }
}

/**
 * Decodes the record batches in `records` (one partition's record set from a fetch response) into
 * `out`, from `cursor.position` up to (excluding) `cursor.until`, and advances the cursor past every
 * batch it consumed (including control batches and aborted transactions, whose offsets carry no
 * rows). A truncated last batch is left for the next fetch.
 * @throws SourceError `KAFKA_UNSUPPORTED_FORMAT` for message format v0/v1, `KAFKA_CORRUPT_RECORD` for a batch that cannot be parsed.
 */
export async function decodeRecordSet(records: Uint8Array, cursor: PartitionCursor, out: RecordColumns, decompress: Decompress): Promise<void> {
  const dv = new DataView(records.buffer, records.byteOffset, records.byteLength)
  const topicCode = out.topicCode(cursor.topic)
  const partition = cursor.partition
  let p = 0
  const end = records.length
  while (p + 17 <= end && cursor.position < cursor.until) {
    const baseOffset = readInt64(records, dv, p)
    const batchLength = dv.getInt32(p + 8)
    const batchEnd = p + 12 + batchLength
    if (batchEnd > end) break // partial batch at the end of the response
    const magic = records[p + 16]!
    if (magic !== 2) {
      throw new SourceError('KAFKA_UNSUPPORTED_FORMAT', `Topic ${cursor.topic} partition ${cursor.partition} offset ${baseOffset}: message format v${magic} is not supported (only v2, Kafka ≥ 0.11)`)
    }
    if (batchLength < 49) throw new SourceError('KAFKA_CORRUPT_RECORD', `Topic ${cursor.topic} partition ${cursor.partition} offset ${baseOffset}: record batch of ${batchLength} bytes is too short`)
    const attributes = dv.getInt16(p + 21)
    const lastOffset = baseOffset + dv.getInt32(p + 23)
    const batchStart = p
    p = batchEnd
    if (lastOffset < cursor.position) continue
    const baseTimestamp = readInt64(records, dv, batchStart + 27)
    const maxTimestamp = readInt64(records, dv, batchStart + 35)
    const producerId = readInt64(records, dv, batchStart + 43)
    const count = dv.getInt32(batchStart + 57)
    const isTransactional = (attributes & 0x10) !== 0
    const isControl = (attributes & 0x20) !== 0
    const logAppendTime = (attributes & 0x08) !== 0
    const codec = attributes & 0x07
    if (cursor.readCommitted) {
      while (cursor.aborted.length > 0 && cursor.aborted[0]!.firstOffset <= lastOffset) cursor.abortedProducers.add(cursor.aborted.shift()!.producerId)
    }
    if (isControl) {
      // control batches hold one record whose key is (version int16, type int16): 0 = ABORT, 1 = COMMIT
      if (cursor.readCommitted) cursor.abortedProducers.delete(producerId)
      cursor.position = Math.min(lastOffset + 1, cursor.until)
      continue
    }
    if (cursor.readCommitted && isTransactional && cursor.abortedProducers.has(producerId)) {
      cursor.position = Math.min(lastOffset + 1, cursor.until)
      continue
    }
    let body = records.subarray(batchStart + 61, batchEnd)
    if (codec !== 0) {
      try {
        body = codec === 1 ? gunzipSync(body) : await decompress(codec, body)
      } catch (cause) {
        if (cause instanceof SourceError) throw cause
        throw new SourceError('KAFKA_CORRUPT_RECORD', `Topic ${cursor.topic} partition ${cursor.partition} offset ${baseOffset}: cannot decompress a record batch (codec ${codec}): ${(cause as Error).message}`, { cause })
      }
    }
    const r = new VarReader(body)
    out.reserve(count)
    const tsType = logAppendTime ? 1 : 0
    const wantHeaders = out.headers !== null
    let stopped = false
    for (let i = 0; i < count; i++) {
      const length = r.varint()
      const next = r.p + length
      r.p++ // record attributes (unused)
      const tsDelta = r.varlong()
      const offset = baseOffset + r.varint()
      if (offset < cursor.position) {
        r.p = next
        continue
      }
      if (offset >= cursor.until) {
        stopped = true
        break
      }
      const key = r.bytes()
      const value = r.bytes()
      let headers: KafkaHeader[] | null = null
      if (wantHeaders) {
        const hc = r.varint()
        headers = []
        for (let h = 0; h < hc; h++) {
          const k = r.bytes()
          headers.push({ key: k === null ? '' : utf8.decode(k), value: r.bytes() })
        }
      }
      r.p = next
      const j = out.n++
      out.offsets[j] = offset
      out.timestamps[j] = logAppendTime ? maxTimestamp : baseTimestamp + tsDelta
      out.timestampTypes[j] = tsType
      out.topicCodes[j] = topicCode
      out.partitions[j] = partition
      out.keys.push(key)
      out.values.push(value)
      if (wantHeaders) out.headers!.push(headers)
    }
    cursor.position = stopped ? cursor.until : Math.min(lastOffset + 1, cursor.until)
  }
}

/** Spark's Kafka source schema (KafkaRecordToRowConverter): headers only with includeHeaders. */
export function kafkaSourceSchema(includeHeaders: boolean): Schema {
  const s: Schema = [
    { name: 'key', type: 'binary', nullable: true },
    { name: 'value', type: 'binary', nullable: true },
    { name: 'topic', type: 'string', nullable: false },
    { name: 'partition', type: 'int32', nullable: false },
    { name: 'offset', type: 'int64', nullable: false },
    { name: 'timestamp', type: 'timestamp', nullable: false },
    { name: 'timestampType', type: 'int32', nullable: false },
  ]
  return includeHeaders ? [...s, { name: 'headers', type: 'string', nullable: true }] : s
}

/** Writes numbers (< 2^53) into a BigInt64Array without a BigInt per value (two Int32 halves, little-endian). */
function toInt64(src: Float64Array, n: number, scale: number): BigInt64Array {
  const out = new BigInt64Array(n)
  const halves = new Int32Array(out.buffer)
  for (let i = 0; i < n; i++) {
    const v = src[i]! * scale
    const hi = Math.floor(v / TWO32)
    halves[2 * i] = v - hi * TWO32
    halves[2 * i + 1] = hi
  }
  return out
}

function binaryColumn(values: (Uint8Array | null)[], n: number): Column {
  let validity: Uint8Array | null = null
  const out = new Array<Uint8Array>(n)
  const empty = new Uint8Array(0)
  for (let i = 0; i < n; i++) {
    const v = values[i]
    if (v === null || v === undefined) {
      validity ??= newValidity(n)
      setValid(validity, i, false)
      out[i] = empty
    } else out[i] = v
  }
  return { type: 'binary', length: n, values: out, validity }
}

/**
 * `headers` as Sluice carries them (it has no array type yet): a JSON array of `{"key", "value"}`
 * objects, the value a string when it is valid UTF-8, `{"base64": "…"}` otherwise, or null.
 */
export function headersToJson(headers: readonly KafkaHeader[]): string {
  return JSON.stringify(headers.map((h) => ({ key: h.key, value: h.value === null ? null : headerValueJson(h.value) })))
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })
function headerValueJson(v: Uint8Array): string | { base64: string } {
  try {
    return strictUtf8.decode(v)
  } catch {
    return { base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') }
  }
}

/** The decoded records as a Batch of {@link kafkaSourceSchema}. */
export function recordsToBatch(rc: RecordColumns, schema: Schema): Batch {
  const n = rc.n
  const columns: Column[] = [
    binaryColumn(rc.keys, n),
    binaryColumn(rc.values, n),
    { type: 'string', length: n, values: rc.topicCodes.slice(0, n), validity: null, dictionary: [...rc.topics] },
    { type: 'int32', length: n, values: rc.partitions.slice(0, n), validity: null },
    { type: 'int64', length: n, values: toInt64(rc.offsets, n, 1), validity: null },
    { type: 'timestamp', length: n, values: toInt64(rc.timestamps, n, 1000), validity: null },
    { type: 'int32', length: n, values: Int32Array.from(rc.timestampTypes.subarray(0, n)), validity: null },
  ]
  if (rc.headers !== null) {
    const dict: string[] = []
    const index = new Map<string, number>()
    const codes = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      const h = rc.headers[i]
      if (h === null || h === undefined || h.length === 0) {
        // Spark gives an empty array; Sluice an empty JSON array (null only for a missing column)
        const s = '[]'
        let c = index.get(s)
        if (c === undefined) { c = dict.length; dict.push(s); index.set(s, c) }
        codes[i] = c
        continue
      }
      const s = headersToJson(h)
      let c = index.get(s)
      if (c === undefined) { c = dict.length; dict.push(s); index.set(s, c) }
      codes[i] = c
    }
    columns.push({ type: 'string', length: n, values: codes, validity: null, dictionary: dict })
  }
  return { schema, columns, numRows: n }
}
