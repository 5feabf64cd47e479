/** Simulated fixes for the headroom measurements (bench/e2e.ts, bench/overhead.ts `--what-if`). */
/**
 * Simulated fixes outside the aggregation code, patched into this process only (Sluice engines,
 * `--what-if a,b`): read-once — each Arrow file is read from disk once per run (the source reads it
 * three times today); sync-writes — atomic writes done with synchronous open/write/close/rename (no
 * fsync, as the engine's default); no-state-commit — the state store writes nothing (a bound, not a fix).
 */
export async function installWhatIf(list: string[], NodeFs: { prototype: object }, StateStore: { prototype: object }): Promise<() => void> {
  const fsMod = await import('node:fs')
  const { dirname, basename } = await import('node:path')
  const proto = NodeFs.prototype as Record<string, (...a: unknown[]) => unknown>
  const cache = new Map<string, Uint8Array>()
  if (list.includes('read-once')) {
    const read = proto.read!, readSync = proto.readSync!
    proto.read = async function (this: unknown, p: unknown) {
      if (typeof p !== 'string' || !p.endsWith('.arrow')) return read.call(this, p)
      let b = cache.get(p)
      if (!b) cache.set(p, (b = (await read.call(this, p)) as Uint8Array))
      return b
    }
    proto.readSync = function (this: unknown, p: unknown) {
      if (typeof p !== 'string' || !p.endsWith('.arrow')) return readSync.call(this, p)
      let b = cache.get(p)
      if (!b) cache.set(p, (b = readSync.call(this, p) as Uint8Array))
      return b
    }
  }
  if (list.includes('sync-writes')) {
    const made = new Set<string>()
    proto.writeAtomic = async function (path: unknown, data: unknown) {
      const p = path as string
      const dir = dirname(p)
      if (!made.has(dir)) {
        fsMod.mkdirSync(dir, { recursive: true })
        made.add(dir)
      }
      const tmp = `${dir}/.${basename(p)}.${process.pid}.tmp`
      const fd = fsMod.openSync(tmp, 'w')
      fsMod.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : (data as Uint8Array))
      fsMod.closeSync(fd) // no fsync: the engine's default (sluice.checkpoint.fsync=false)
      fsMod.renameSync(tmp, p)
    }
  }
  if (list.includes('no-state-commit')) (StateStore.prototype as Record<string, unknown>).commit = async () => {}
  return () => cache.clear()
}

