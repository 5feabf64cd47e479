/**
 * Benchmark inputs, prepared once and cached under bench/.data/ (gitignored):
 * - flights-3m.arrow: vega-datasets' flights-3m.parquet converted to Arrow IPC (file format, all
 *   five columns, one record batch), with Sluice's own parquet reader.
 * - replay-30m/part-NN.arrow: ten copies of it with `date` shifted by NN × 182 days: a 30-million-row
 *   replay that continues in time (no two files share an hour, so the groups are 10 × 424,259).
 * - flights-100k.arrow: the first 100,000 rows (the per-batch overhead benchmark).
 * A cache entry is rebuilt when the source file is newer or the format version changes.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { batchesToIPC } from '../src/arrow.ts'
import { sliceBatch, type Batch, type Column } from '../src/batch.ts'
import { parquetFormat } from '../src/formats/parquet.ts'
import { NodeFs } from '../src/node/fs.ts'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const DATA_DIR = join(ROOT, 'bench', '.data')
export const PARQUET = join(dirname(createRequire(import.meta.url).resolve('vega-datasets')), '..', 'data', 'flights-3m.parquet')
export const ARROW_3M = join(DATA_DIR, 'flights-3m.arrow')
export const ARROW_100K = join(DATA_DIR, 'flights-100k.arrow')
export const REPLAY_DIR = join(DATA_DIR, 'replay-30m')
export const REPLAY_FILES = 10
export const REPLAY_SHIFT_DAYS = 182
export const ROWS_3M = 3_000_000
const VERSION = 1

const DAY_US = 86_400_000_000n

/** Hidden sidecar files: the file source skips names starting with '.'. */
const hidden = (path: string, suffix: string): string => join(dirname(path), `.${basename(path)}${suffix}`)

function fresh(path: string): boolean {
  const meta = hidden(path, '.meta.json')
  if (!existsSync(path) || !existsSync(meta)) return false
  try {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { version: number; source: number }
    return m.version === VERSION && m.source === statSync(PARQUET).mtimeMs
  } catch {
    return false
  }
}

function writeCached(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = hidden(path, `.${process.pid}.tmp`)
  writeFileSync(tmp, bytes)
  renameSync(tmp, path)
  writeFileSync(hidden(path, '.meta.json'), JSON.stringify({ version: VERSION, source: statSync(PARQUET).mtimeMs }))
}

/** The whole flights file as one batch, read with Sluice's parquet reader. */
export async function readFlightsParquet(): Promise<Batch> {
  const f = await parquetFormat.open(new NodeFs(), PARQUET, {})
  const parts: Batch[] = []
  for (let a = 0; a < f.numRows; a += 1 << 20) parts.push(await f.read(a, Math.min(f.numRows, a + (1 << 20))))
  const { concatBatches } = await import('../src/batch.ts')
  return concatBatches(f.schema, parts)
}

function shiftDates(b: Batch, days: number): Batch {
  const i = b.schema.findIndex((f) => f.name === 'date')
  const c = b.columns[i]!
  const src = c.values as BigInt64Array
  const out = new BigInt64Array(src.length)
  const d = BigInt(days) * DAY_US
  for (let r = 0; r < src.length; r++) out[r] = src[r]! + d
  const columns = b.columns.map((col, k): Column => (k === i ? { ...c, values: out } : col))
  return { ...b, columns }
}

export function replayFile(k: number): string {
  return join(REPLAY_DIR, `part-${String(k).padStart(2, '0')}.arrow`)
}

/** Prepares the inputs that are missing or stale; logs what it does. */
export async function prepareData(opts: { replay: boolean; log: (s: string) => void }): Promise<void> {
  let flights: Batch | null = null
  const load = async (): Promise<Batch> => (flights ??= await readFlightsParquet())
  if (!fresh(ARROW_3M)) {
    opts.log('converting flights-3m.parquet to Arrow IPC (once)…')
    const b = await load()
    writeCached(ARROW_3M, batchesToIPC(b.schema, [b], 'file'))
  }
  if (!fresh(ARROW_100K)) {
    const b = await load()
    writeCached(ARROW_100K, batchesToIPC(b.schema, [sliceBatch(b, 0, 100_000)], 'file'))
  }
  if (opts.replay) {
    for (let k = 0; k < REPLAY_FILES; k++) {
      const path = replayFile(k)
      if (fresh(path)) continue
      if (k === 0) opts.log(`writing the 30M-row replay (${REPLAY_FILES} Arrow IPC files, date shifted by k × ${REPLAY_SHIFT_DAYS} days)…`)
      const b = await load()
      writeCached(path, batchesToIPC(b.schema, [shiftDates(b, k * REPLAY_SHIFT_DAYS)], 'file'))
    }
  }
}

export type Dataset = '3m' | '30m'

/** The Arrow IPC files of a dataset, in order. */
export function datasetFiles(ds: Dataset): string[] {
  return ds === '3m' ? [ARROW_3M] : Array.from({ length: REPLAY_FILES }, (_, k) => replayFile(k))
}

export function datasetRows(ds: Dataset): number {
  return ds === '3m' ? ROWS_3M : ROWS_3M * REPLAY_FILES
}
