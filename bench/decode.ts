/**
 * Source decoding, in its own process: rows/s reading the flights Parquet file into Sluice's Arrow
 * layout (Batch) with the chosen reader — hyparquet through its page decoders
 * (src/formats/parquet.ts) — in 250k-row reads as the file source makes them; and, for comparison,
 * the converted Arrow IPC file (src/formats/arrow.ts: footer at open, then only the needed columns'
 * buffers by byte ranges, zero-copy). The Arrow "as load() + the file source" case adds the schema
 * inference `load()` makes (the footer, through `Fs.readRangeSync`) to the open and reads. Each
 * case also reports its first 250k-row read's median time (a query's first micro-batch waits for it;
 * the Arrow file is one 3M-row record batch, read by row ranges).
 *
 *   tsx bench/decode.ts [--iters N]
 */
import { parseArgs } from 'node:util'
import type { Schema } from '../src/batch.ts'
import { arrowFormat } from '../src/formats/arrow.ts'
import { parquetFormat } from '../src/formats/parquet.ts'
import { syncFile, type FileFormat } from '../src/formats/format.ts'
import { NodeFs } from '../src/node/fs.ts'
import { ARROW_3M, PARQUET } from './data.ts'

const { values: opt } = parseArgs({ options: { iters: { type: 'string', default: '5' } } })
const iters = Number(opt.iters)
const fs = new NodeFs()
const JOB_COLUMNS = ['date', 'origin', 'delay']

/** Time of the last run's first 250k-row `read` (what a query's first micro-batch waits for). */
let firstReadMs = 0

/** Reads all of `f` in 250k-row reads, timing the first. */
async function readRows(f: { numRows: number; read(a: number, b: number): Promise<{ numRows: number }> }): Promise<number> {
  let rows = 0
  for (let a = 0; a < f.numRows; a += 250_000) {
    const t0 = performance.now()
    rows += (await f.read(a, Math.min(f.numRows, a + 250_000))).numRows
    if (a === 0) firstReadMs = performance.now() - t0
  }
  return rows
}

/** Reads the whole file in 250k-row reads; `columns`: only those (the schema as `load()` infers it, narrowed). */
async function readAll(format: FileFormat, path: string, columns: string[] | null): Promise<number> {
  let schema: Schema | undefined
  if (columns) schema = format.inferSchema(syncFile(fs, path), {}).filter((f) => columns.includes(f.name))
  return readRows(await format.open(fs, path, schema ? { schema } : {}))
}

const cases: { name: string; fn: () => Promise<number> }[] = [
  { name: 'Parquet → Batch (src/formats/parquet.ts: hyparquet page headers and decompression, pages decoded into the batch), all 5 columns', fn: () => readAll(parquetFormat, PARQUET, null) },
  { name: 'Parquet → Batch, the 3 columns the job reads', fn: () => readAll(parquetFormat, PARQUET, JOB_COLUMNS) },
  { name: 'Arrow IPC → Batch (src/formats/arrow.ts: footer, then column buffers by byte ranges, zero-copy), all 5 columns', fn: () => readAll(arrowFormat, ARROW_3M, null) },
  { name: 'Arrow IPC → Batch, the 3 columns the job reads (60 of 96 MB)', fn: () => readAll(arrowFormat, ARROW_3M, JOB_COLUMNS) },
  {
    name: 'Arrow IPC → Batch as load() + the file source do: inferSchema, open, reads, all 5 columns',
    fn: async () => {
      const schema = arrowFormat.inferSchema(syncFile(fs, ARROW_3M), {})
      return readRows(await arrowFormat.open(fs, ARROW_3M, { schema }))
    },
  },
]
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const out: { name: string; medianMs: number; mRowsPerSec: number; rows: number; firstReadMs: number }[] = []
for (const c of cases) {
  const times: number[] = []
  const firsts: number[] = []
  let rows = 0
  for (let i = 0; i <= iters; i++) {
    const t0 = performance.now()
    rows = await c.fn()
    if (i === 0) continue // warm-up
    times.push(performance.now() - t0)
    firsts.push(firstReadMs)
  }
  const med = median(times)
  const first = median(firsts)
  out.push({ name: c.name, medianMs: med, mRowsPerSec: rows / med / 1000, rows, firstReadMs: first })
  process.stderr.write(`  ${c.name}: ${med.toFixed(0)} ms, ${(rows / med / 1000).toFixed(2)} M rows/s (first 250k-row read: ${first.toFixed(1)} ms)\n`)
}
console.log(JSON.stringify({ decode: out, maxRssMB: process.resourceUsage().maxRSS / 1024 }))
