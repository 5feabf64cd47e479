/**
 * Source decoding, in its own process: rows/s reading the flights Parquet file into Sluice's Arrow
 * layout (Batch) with the chosen reader — hyparquet through its page decoders
 * (src/formats/parquet.ts) — in 250k-row reads as the file source makes them; and, for comparison,
 * the converted Arrow IPC file (src/formats/arrow.ts), which is zero-copy after the file read.
 *
 *   tsx bench/decode.ts [--iters N]
 */
import { parseArgs } from 'node:util'
import { arrowFormat } from '../src/formats/arrow.ts'
import { parquetFormat } from '../src/formats/parquet.ts'
import type { FileFormat } from '../src/formats/format.ts'
import { NodeFs } from '../src/node/fs.ts'
import { ARROW_3M, PARQUET } from './data.ts'

const { values: opt } = parseArgs({ options: { iters: { type: 'string', default: '5' } } })
const iters = Number(opt.iters)
const fs = new NodeFs()

async function readAll(format: FileFormat, path: string, columns: string[] | null): Promise<number> {
  let schema
  if (columns) {
    const full = (await format.open(fs, path, {})).schema
    schema = full.filter((f) => columns.includes(f.name))
  }
  const f = await format.open(fs, path, schema ? { schema } : {})
  let rows = 0
  for (let a = 0; a < f.numRows; a += 250_000) rows += (await f.read(a, Math.min(f.numRows, a + 250_000))).numRows
  return rows
}

const cases: { name: string; fn: () => Promise<number> }[] = [
  { name: 'Parquet → Batch, hyparquet page decoders (src/formats/parquet.ts), all 5 columns', fn: () => readAll(parquetFormat, PARQUET, null) },
  { name: 'Parquet → Batch, hyparquet page decoders, the 3 columns the job reads', fn: () => readAll(parquetFormat, PARQUET, ['date', 'origin', 'delay']) },
  { name: 'Arrow IPC → Batch (src/formats/arrow.ts: whole-file read, zero-copy columns)', fn: () => readAll(arrowFormat, ARROW_3M, null) },
]
const out: { name: string; medianMs: number; mRowsPerSec: number; rows: number }[] = []
for (const c of cases) {
  const times: number[] = []
  let rows = 0
  for (let i = 0; i <= iters; i++) {
    const t0 = performance.now()
    rows = await c.fn()
    if (i > 0) times.push(performance.now() - t0) // first run: warm-up
  }
  times.sort((a, b) => a - b)
  const med = times[Math.floor(times.length / 2)]!
  out.push({ name: c.name, medianMs: med, mRowsPerSec: rows / med / 1000, rows })
  process.stderr.write(`  ${c.name}: ${med.toFixed(0)} ms, ${(rows / med / 1000).toFixed(2)} M rows/s\n`)
}
console.log(JSON.stringify({ decode: out, maxRssMB: process.resourceUsage().maxRSS / 1024 }))
