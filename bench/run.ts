/**
 * The benchmark suite (`npm run bench`, which builds first):
 *
 *   npm run bench -- [--quick] [--json] [--no-write] [--only kernels,e2e,decode,overhead] [--no-30m] [--all]
 *
 * Sections, each in its own process (so peak RSS is per engine): kernels (bench/kernels.ts),
 * end to end on the flights log as Arrow IPC and on its 30M-row replay (bench/e2e.ts, one process
 * per engine; every engine's groups are checked against the plain-JS baseline's), source decoding
 * (bench/decode.ts) and per-batch overhead (bench/overhead.ts). Writes bench/RESULTS.md (medians,
 * ratios from this run, peak RSS, machine and versions, targets) unless --no-write; --json prints
 * all results as one JSON document on stdout. --quick: fewer iterations; --all: also Arquero on the
 * 30M replay (~1 min, ~4 GB).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DATA_DIR, ROOT, prepareData, type Dataset } from './data.ts'
import { machineInfo, renderMarkdown, type E2EResult, type Results } from './report.ts'
import { WHAT_IFS } from './whatif.ts'

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'no-30m': { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
})
const quick = opt.quick!
const sections = new Set((opt.only ?? 'kernels,e2e,decode,overhead').split(','))
const with30m = !opt['no-30m'] && sections.has('e2e')
const t00 = performance.now()
const log = (s: string) => process.stderr.write(`[bench ${((performance.now() - t00) / 1000).toFixed(0).padStart(3)} s] ${s}\n`)

/** Runs a bench script in a child process; returns its last stdout line as JSON. */
function child(script: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => {
      err += d
      if (!opt.json || true) process.stderr.write(String(d).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn')).map((l) => `${l}\n`).join(''))
    })
    p.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? ''
      if (code !== 0) return reject(new Error(`${script} ${args.join(' ')} exited with ${code}:\n${err.slice(-2000)}`))
      try {
        resolve(JSON.parse(last) as Record<string, unknown>)
      } catch {
        reject(new Error(`${script} printed no JSON result:\n${out.slice(-2000)}`))
      }
    })
  })
}

/** A long-lived e2e child (`--serve`): one JSON line answers each command. */
class Served {
  private lines: string[] = []
  private waiters: ((l: string) => void)[] = []
  private err = ''
  private readonly p
  private exited: Promise<number | null>

  constructor(args: string[]) {
    this.p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'e2e.ts'), ...args, '--serve'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    let buf = ''
    this.p.stdout!.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim()
        buf = buf.slice(i + 1)
        if (!line.startsWith('{')) continue
        const w = this.waiters.shift()
        if (w) w(line)
        else this.lines.push(line)
      }
    })
    this.p.stderr!.on('data', (d) => (this.err = (this.err + d).slice(-4000)))
    this.exited = new Promise((resolve) => this.p.on('exit', (code) => resolve(code)))
  }

  private next(): Promise<Record<string, unknown>> {
    const l = this.lines.shift()
    const line = l !== undefined ? Promise.resolve(l) : new Promise<string>((resolve) => this.waiters.push(resolve))
    return Promise.race([line.then((x) => JSON.parse(x) as Record<string, unknown>), this.exited.then((code) => {
      throw new Error(`exited with ${code}: ${this.err}`)
    })])
  }

  ready(): Promise<Record<string, unknown>> {
    return this.next()
  }

  send(cmd: 'warmup' | 'run' | 'done'): Promise<Record<string, unknown>> {
    this.p.stdin!.write(`${cmd}\n`)
    if (cmd === 'done') this.p.stdin!.end()
    return this.next()
  }

  kill(): void {
    this.p.kill()
  }
}

const started = performance.now()
const results: Results = { machine: machineInfo(), quick, e2e: [], kernels: null, decode: null, overhead: null }
await prepareData({ replay: with30m, log })
const groupsDir = join(DATA_DIR, 'groups')
mkdirSync(groupsDir, { recursive: true })

if (sections.has('kernels')) {
  log('kernels (tinybench)…')
  results.kernels = (await child('kernels.ts', quick ? ['--quick'] : [])) as Results['kernels']
}

// small checkpoint writes first: the end-to-end section deletes ~1 GB of checkpoints, and the
// file system's discards slow small writes for a while after that
if (sections.has('overhead')) {
  log('per-batch overhead…')
  results.overhead = (await child('overhead.ts', [])) as Results['overhead']
}

if (sections.has('decode')) {
  log('source decoding…')
  results.decode = (await child('decode.ts', ['--iters', quick ? '2' : '5'])) as Results['decode']
}

if (sections.has('e2e')) {
  // engine, warm-up runs, timed runs
  const plan: { ds: Dataset; engines: [string, number, number][]; interleave: boolean }[] = [
    {
      ds: '3m',
      interleave: true,
      engines: quick
        ? [['plain-js', 1, 3], ['sluice-1', 1, 3], ['sluice-2', 1, 3], ['duckdb-oneshot', 1, 3], ['duckdb-batch', 1, 3], ['arquero', 0, 1]]
        : [['plain-js', 1, 5], ['sluice-1', 1, 5], ['sluice-2', 1, 5], ['duckdb-oneshot', 1, 5], ['duckdb-batch', 1, 5], ['duckdb-upsert', 0, 2], ['arquero', 1, 3]],
    },
  ]
  if (with30m) {
    // one engine at a time (memory), fewer runs: each is 5-60 s
    plan.push({
      ds: '30m',
      interleave: false,
      engines: quick
        ? [['plain-js', 0, 1], ['sluice-1', 0, 1], ['sluice-2', 0, 1], ['duckdb-oneshot', 0, 1], ['duckdb-batch', 0, 1]]
        : [['plain-js', 0, 2], ['sluice-1', 0, 2], ['sluice-2', 0, 2], ['duckdb-oneshot', 0, 2], ['duckdb-batch', 0, 1], ...(opt.all ? [['arquero', 0, 1] as [string, number, number]] : [])],
    })
  }
  for (const { ds, engines, interleave } of plan) {
    const ref = join(groupsDir, `${ds}.bin`)
    const groupsArg = (engine: string) => (engine === 'plain-js' ? ['--write-groups', ref] : ['--check-groups', ref])
    const record = (engine: string, r: E2EResult) => {
      results.e2e.push(r)
      log(`  ${engine} on ${ds}: median ${[...r.timesMs].sort((a, b) => a - b)[r.timesMs.length >> 1]?.toFixed(0)} ms over ${r.timesMs.length}, ${r.groups} groups, check ${r.check}, peak RSS ${r.maxRssMB.toFixed(0)} MB`)
    }
    const failed = (engine: string, e: unknown) => {
      log(`  ${engine} failed: ${(e as Error).message}`)
      results.e2e.push({ engine, dataset: ds, timesMs: [], groups: 0, check: `failed: ${(e as Error).message.split('\n')[0]}`, maxRssMB: 0 })
    }
    if (interleave) {
      // every engine in its own long-lived process, runs taken round-robin (rotating the order), so
      // that the machine's noise falls on all engines alike
      log(`end to end on ${ds}: ${engines.map((e) => e[0]).join(', ')}, interleaved…`)
      const live = new Map<string, Served>()
      for (const [engine] of engines) {
        const c = new Served([engine, ds, ...groupsArg(engine)])
        try {
          await c.ready()
          live.set(engine, c)
        } catch (e) {
          c.kill()
          failed(engine, e)
        }
      }
      const rounds = Math.max(...engines.map(([, w, n]) => w + n))
      for (let round = 0; round < rounds; round++) {
        const order = engines.map((_, i) => engines[(i + round) % engines.length]!)
        for (const [engine, warm, n] of order) {
          const c = live.get(engine)
          if (!c || round >= warm + n) continue
          try {
            await c.send(round < warm ? 'warmup' : 'run')
          } catch (e) {
            c.kill()
            live.delete(engine)
            failed(engine, e)
          }
        }
        log(`  round ${round + 1}/${rounds} done`)
      }
      // plain JS first: it writes the reference groups the others are checked against
      for (const [engine] of [...engines].sort((a, b) => (a[0] === 'plain-js' ? -1 : b[0] === 'plain-js' ? 1 : 0))) {
        const c = live.get(engine)
        if (!c) continue
        try {
          record(engine, (await c.send('done')) as unknown as E2EResult)
        } catch (e) {
          failed(engine, e)
        }
      }
      continue
    }
    for (const [engine, warmup, iters] of engines) {
      log(`end to end: ${engine} on ${ds} (${warmup} warm-up + ${iters} timed)…`)
      try {
        record(engine, (await child('e2e.ts', [engine, ds, '--warmup', String(warmup), '--iters', String(iters), ...groupsArg(engine)])) as unknown as E2EResult)
      } catch (e) {
        failed(engine, e)
      }
    }
  }
  // headroom: Sluice variants (see bench/whatif.ts), each alternated with the engine as shipped
  // (3 rounds of 3 timed runs each), so the pair is compared side by side on this noisy machine
  if (!quick) {
    for (const w of WHAT_IFS) {
      log(`end to end: sluice-1 on 3m, what-if ${w}, alternated with the engine as shipped…`)
      try {
        const runs: Record<string, E2EResult[]> = { base: [], variant: [] }
        for (let round = 0; round < 3; round++) {
          for (const [k, extra] of [['base', []], ['variant', ['--what-if', w]]] as const) {
            runs[k]!.push((await child('e2e.ts', ['sluice-1', '3m', '--warmup', '1', '--iters', '3', ...extra, '--check-groups', join(groupsDir, '3m.bin')])) as unknown as E2EResult)
          }
        }
        const merge = (rs: E2EResult[], whatIf: string): E2EResult => ({
          ...rs[0]!, whatIf, timesMs: rs.flatMap((r) => r.timesMs), check: rs.every((r) => r.check === 'ok') ? 'ok' : rs.find((r) => r.check !== 'ok')!.check,
        })
        results.e2e.push(merge(runs.base!, `as shipped, alternated with ${w}`), merge(runs.variant!, w))
      } catch (e) {
        log(`  failed: ${(e as Error).message}`)
      }
    }
  }
  rmSync(join(DATA_DIR, 'ckpt'), { recursive: true, force: true })
}

results.machine.benchSeconds = (performance.now() - started) / 1000
if (!opt['no-write']) {
  writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), renderMarkdown(results))
  log(`wrote bench/RESULTS.md (${results.machine.benchSeconds.toFixed(0)} s)`)
}
if (opt.json) process.stdout.write(JSON.stringify(results, null, 1) + '\n')
else process.stdout.write(renderMarkdown(results, { summaryOnly: true }))
