import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAULT_POINTS } from '../../src/sinks/sink.ts'

// Exactly-once under SIGKILL: the query of test/fixtures/crash-query.ts is killed at each step of a
// batch (and at random moments), restarted on its checkpoint, and must end with the output of an
// uninterrupted run — no row lost, none duplicated.

const root = fileURLToPath(new URL('../..', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'sluice-crash-'))
const input = join(work, 'input')
afterAll(() => rmSync(work, { recursive: true, force: true }))

beforeAll(() => {
  // 3 files × 1500 events over ~2 minutes of event time, 4 keys, with some disorder (and late rows)
  mkdirSync(input)
  let seed = 7
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  let t = 1_000_000_000_000
  for (let f = 0; f < 3; f++) {
    const lines: string[] = []
    for (let i = 0; i < 1500; i++) {
      t += Math.floor(rand() * 60)
      const jitter = rand() < 0.05 ? -Math.floor(rand() * 20_000) : 0
      lines.push(JSON.stringify({ ts: new Date(t + jitter).toISOString(), key: `k${Math.floor(rand() * 4)}`, value: Math.floor(rand() * 100) }))
    }
    writeFileSync(join(input, `part-${f}.json`), lines.join('\n') + '\n')
  }
})

type Config = { mode: 'append' | 'update'; sink: 'file' | 'foreachBatch' }
const configs: Config[] = [
  { mode: 'append', sink: 'file' },
  { mode: 'append', sink: 'foreachBatch' },
  { mode: 'update', sink: 'foreachBatch' },
]

function start(dir: string, c: Config, extra: string[] = []): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/crash-query.ts', '--input', input, '--out', join(dir, 'out'),
    '--checkpoint', join(dir, 'ckpt'), '--mode', c.mode, '--sink', c.sink, ...extra], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] })
}

function run(dir: string, c: Config, extra: string[] = []): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = start(dir, c, extra)
    let stderr = ''
    p.stderr!.on('data', (d) => (stderr += d))
    p.on('exit', (code, signal) => resolve({ code, signal, stderr }))
  })
}

/** The query's result: Append — every row emitted; Update — the last value of each key, in batch order. */
function result(dir: string, c: Config): string[] {
  const out = join(dir, 'out')
  const batches: Record<string, unknown>[][] = []
  if (c.sink === 'file') {
    for (const m of readdirSync(join(out, '_sluice_log')).filter((f) => /^\d+$/.test(f)).sort((x, y) => Number(x) - Number(y))) {
      const manifest = JSON.parse(readFileSync(join(out, '_sluice_log', m), 'utf8')) as { files: { path: string }[] }
      batches.push(manifest.files.flatMap((f) => readFileSync(join(out, f.path), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)))
    }
  } else {
    for (const f of readdirSync(out).filter((x) => x.endsWith('.json')).sort()) batches.push(JSON.parse(readFileSync(join(out, f), 'utf8')) as Record<string, unknown>[])
  }
  if (c.mode === 'append') return batches.flat().map((r) => JSON.stringify(r)).sort()
  const last = new Map<string, string>()
  for (const b of batches) for (const r of b) last.set(`${r.start}|${r.key}`, JSON.stringify(r))
  return [...last.values()].sort()
}

let dirs = 0
const fresh = () => {
  const d = join(work, `run-${dirs++}`)
  mkdirSync(d)
  return d
}

describe.each(configs)('crash matrix: $mode mode into $sink', (c) => {
  let expected: string[]
  beforeAll(async () => {
    const d = fresh()
    const r = await run(d, c)
    expect(r.code, r.stderr).toBe(0)
    expected = result(d, c)
    expect(expected.length).toBeGreaterThan(20)
  }, 60_000)

  const points = FAULT_POINTS.filter((p) => c.sink === 'file' || p !== 'duringSinkWrite')
  it.each(points)('killed at %s of batch 2, restarted: same output', async (point) => {
    const d = fresh()
    const killed = await run(d, c, ['--kill-at', `${point}@2`])
    expect(killed.signal, killed.stderr).toBe('SIGKILL')
    const r = await run(d, c)
    expect(r.code, r.stderr).toBe(0)
    expect(result(d, c)).toEqual(expected)
  }, 60_000)
})

describe('random kills', () => {
  it('killed at random moments many times in a row (bounded in time), ends with the uninterrupted output', async () => {
    const c: Config = { mode: 'append', sink: 'file' }
    const extra = ['--max-rows', '3']
    const base = fresh()
    const first = await run(base, c, extra)
    expect(first.code, first.stderr).toBe(0)
    const expected = result(base, c)
    const d = fresh()
    let seed = 99
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    let kills = 0
    const deadline = Date.now() + 40_000
    while (Date.now() < deadline) {
      const p = start(d, c, extra)
      let stderr = ''
      p.stderr!.on('data', (x) => (stderr += x))
      const timer = setTimeout(() => p.kill('SIGKILL'), 600 + Math.floor(rand() * 1000))
      const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => p.on('exit', (cd, sg) => resolve([cd, sg])))
      clearTimeout(timer)
      if (code === 0) break
      // a restart that fails on its own (not killed) is a recovery bug: show what it said
      expect(signal, `run ${kills + 1} exited with ${code}: ${stderr}`).toBe('SIGKILL')
      kills++
    }
    expect(kills).toBeGreaterThanOrEqual(5)
    const last = await run(d, c, extra)
    expect(last.code, last.stderr).toBe(0)
    expect(result(d, c)).toEqual(expected)
    console.log(`random kills survived: ${kills}`)
  }, 120_000)
})
