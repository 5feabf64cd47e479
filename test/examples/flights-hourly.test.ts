import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The main job end to end, as a user runs it (a real process over the real flights file), checked
// against a plain computation over the same file read independently with hyparquet.

const root = fileURLToPath(new URL('../..', import.meta.url))
const flightsFile = join(dirname(createRequire(import.meta.url).resolve('vega-datasets')), '..', 'data', 'flights-3m.parquet')
const work = mkdtempSync(join(tmpdir(), 'sluice-flights-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function startJob(out: string, checkpoint: string, quiet = true): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'examples/flights-hourly.ts', '--out', out, '--checkpoint', checkpoint, ...(quiet ? ['--quiet'] : [])], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

function runJob(out: string, checkpoint: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = startJob(out, checkpoint)
    let text = ''
    p.stdout!.on('data', (d) => (text += d))
    p.stderr!.on('data', (d) => (text += d))
    p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`job exited with ${code}:\n${text}`))))
  })
}

interface OutRow { window_start: number; window_end: number; origin: string; flights: number; avg_delay: number; max_delay: number }

/** The job's output, read through the file sink's manifests (the committed batches only). */
async function readOutput(out: string): Promise<{ rows: OutRow[]; files: number }> {
  const manifests = readdirSync(join(out, '_sluice_log')).filter((f) => /^\d+$/.test(f))
  const rows: OutRow[] = []
  let files = 0
  for (const m of manifests) {
    const manifest = JSON.parse(readFileSync(join(out, '_sluice_log', m), 'utf8')) as { files: { path: string }[] }
    for (const f of manifest.files) {
      files++
      const buf = readFileSync(join(out, f.path))
      const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
      for (const r of await parquetReadObjects({ file, compressors })) {
        rows.push({
          window_start: toMs(r.window_start), window_end: toMs(r.window_end), origin: r.origin as string,
          flights: Number(r.flights), avg_delay: Number(r.avg_delay), max_delay: Number(r.max_delay),
        })
      }
    }
  }
  return { rows, files }
}

function toMs(v: unknown): number {
  return v instanceof Date ? v.getTime() : typeof v === 'bigint' ? Number(v / 1000n) : Number(v)
}

const keyOf = (r: OutRow) => `${r.window_start}|${r.origin}`
const canonical = (rows: OutRow[]) => rows.map((r) => JSON.stringify(r)).sort()

let uninterrupted: OutRow[]
beforeAll(async () => {
  await runJob(join(work, 'out'), join(work, 'ckpt'))
  uninterrupted = (await readOutput(join(work, 'out'))).rows
}, 300_000)

describe('examples/flights-hourly.ts', () => {
  it('has one row per (hour, origin) with the count, average and maximum of a plain computation', async () => {
    const buf = readFileSync(flightsFile)
    const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
    const expected = new Map<string, { n: number; sum: number; max: number }>()
    for (const r of await parquetReadObjects({ file, compressors, columns: ['date', 'origin', 'delay'] })) {
      const ms = toMs(r.date)
      const key = `${ms - (ms % 3_600_000)}|${r.origin as string}`
      const delay = Number(r.delay)
      const g = expected.get(key)
      if (g === undefined) expected.set(key, { n: 1, sum: delay, max: delay })
      else {
        g.n++
        g.sum += delay
        if (delay > g.max) g.max = delay
      }
    }
    expect(expected.size).toBe(424_259)
    expect(uninterrupted).toHaveLength(424_259)
    expect(uninterrupted.reduce((s, r) => s + r.flights, 0)).toBe(3_000_000)
    const mismatches: string[] = []
    for (const r of uninterrupted) {
      const g = expected.get(keyOf(r))
      if (g === undefined || g.n !== r.flights || g.max !== r.max_delay || Math.abs(g.sum / g.n - r.avg_delay) > 1e-9 || r.window_end - r.window_start !== 3_600_000) {
        mismatches.push(`${keyOf(r)}: got ${JSON.stringify(r)}, expected ${JSON.stringify(g)}`)
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([])
    expect(new Set(uninterrupted.map(keyOf)).size).toBe(uninterrupted.length)
  }, 120_000)

  it('killed with SIGKILL mid-run several times and restarted, ends with exactly the uninterrupted output', async () => {
    const out = join(work, 'killed-out')
    const ckpt = join(work, 'killed-ckpt')
    // Kill after the job reports batch `target` (a restarted job continues the numbering from its
    // checkpoint), plus a pseudo-random 0–150 ms so kills land in different phases of the next batch.
    let seed = 42
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    let kills = 0
    for (const target of [0, 2, 4, 6, 9]) {
      const p = startJob(out, ckpt, false)
      const killed = await new Promise<boolean>((resolve) => {
        let log = ''
        p.stderr!.on('data', (d) => {
          log += d
          const last = [...log.matchAll(/batch (\d+):/g)].at(-1)
          if (last && Number(last[1]) >= target && p.exitCode === null && !p.killed) {
            setTimeout(() => resolve(p.kill('SIGKILL')), Math.floor(rand() * 150))
          }
        })
        p.on('exit', (_code, signal) => resolve(signal === 'SIGKILL'))
      })
      if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r))
      if (killed && p.signalCode === 'SIGKILL') kills++
    }
    expect(kills).toBeGreaterThanOrEqual(3)
    expect(existsSync(join(ckpt, 'offsets'))).toBe(true)
    await runJob(out, ckpt)
    const after = (await readOutput(out)).rows
    expect(after).toHaveLength(uninterrupted.length)
    expect(canonical(after)).toEqual(canonical(uninterrupted))
  }, 300_000)
})
