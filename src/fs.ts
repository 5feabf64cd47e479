/**
 * The file-system surface Sluice needs (file sources, file sinks, the checkpoint). The core only
 * sees this interface: `NodeFs` (src/node/fs.ts) backs it with node:fs; {@link MemoryFs} serves the
 * browser and tests. Paths use '/' separators.
 */
export interface FileInfo {
  /** Full path, as given to `list` joined with the entry name. */
  readonly path: string
  readonly size: number
  readonly mtimeMs: number
}

export interface Fs {
  /** Files (not directories) directly under `dir`, sorted by name; `[]` if `dir` does not exist. */
  list(dir: string): Promise<FileInfo[]>
  /** Metadata of a file, or `null` if it does not exist. A directory reports size 0 and `isDirectory`. */
  stat(path: string): Promise<(FileInfo & { isDirectory: boolean }) | null>
  read(path: string): Promise<Uint8Array>
  /** Bytes `[start, end)` of a file (for Parquet footers and column chunks). */
  readRange(path: string, start: number, end: number): Promise<Uint8Array>
  /** Writes atomically: the content goes to a temporary file that is renamed over `path`. Creates parent directories. */
  writeAtomic(path: string, data: Uint8Array | string): Promise<void>
  remove(path: string): Promise<void>
  mkdirp(dir: string): Promise<void>
  /** Synchronous forms, for resolving a file source's schema when a DataFrame is built and for listing. */
  listSync(dir: string): FileInfo[]
  statSync(path: string): (FileInfo & { isDirectory: boolean }) | null
  readSync(path: string): Uint8Array
  /**
   * Bytes `[start, end)` of a file, synchronously (for reading only a file's schema — a Parquet or
   * Arrow footer — when a DataFrame is built). As {@link Fs.readRange}: the range is clamped to the
   * file, so fewer bytes than asked (none past the end) mean the file is shorter.
   */
  readRangeSync(path: string, start: number, end: number): Uint8Array
}

export function joinPath(...parts: string[]): string {
  return parts
    .filter((p) => p !== '')
    .join('/')
    .replace(/\/{2,}/g, '/')
}

export function baseName(path: string): string {
  const i = path.lastIndexOf('/')
  return i < 0 ? path : path.slice(i + 1)
}

const encoder = new TextEncoder()

/** An in-memory {@link Fs}, for the browser (files added from `File` objects or fetches) and tests. */
export class MemoryFs implements Fs {
  private readonly files = new Map<string, { data: Uint8Array; mtimeMs: number }>()

  put(path: string, data: Uint8Array | string): void {
    this.files.set(normalize(path), { data: typeof data === 'string' ? encoder.encode(data) : data, mtimeMs: Date.now() })
  }

  async list(dir: string): Promise<FileInfo[]> {
    return this.listSync(dir)
  }

  listSync(dir: string): FileInfo[] {
    const prefix = normalize(dir) + '/'
    const out: FileInfo[] = []
    for (const [path, f] of this.files) {
      if (path.startsWith(prefix) && !path.slice(prefix.length).includes('/')) out.push({ path, size: f.data.length, mtimeMs: f.mtimeMs })
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  async stat(path: string): Promise<(FileInfo & { isDirectory: boolean }) | null> {
    return this.statSync(path)
  }

  statSync(path: string): (FileInfo & { isDirectory: boolean }) | null {
    const p = normalize(path)
    const f = this.files.get(p)
    if (f) return { path: p, size: f.data.length, mtimeMs: f.mtimeMs, isDirectory: false }
    for (const k of this.files.keys()) if (k.startsWith(p + '/')) return { path: p, size: 0, mtimeMs: 0, isDirectory: true }
    return null
  }

  async read(path: string): Promise<Uint8Array> {
    return this.readSync(path)
  }

  readSync(path: string): Uint8Array {
    const f = this.files.get(normalize(path))
    if (!f) throw Object.assign(new Error(`ENOENT: no such file ${path}`), { code: 'ENOENT' })
    return f.data
  }

  async readRange(path: string, start: number, end: number): Promise<Uint8Array> {
    return this.readRangeSync(path, start, end)
  }

  readRangeSync(path: string, start: number, end: number): Uint8Array {
    return this.readSync(path).subarray(Math.max(0, start), Math.max(0, end))
  }

  async writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
    this.put(path, typeof data === 'string' ? data : data.slice())
  }

  async remove(path: string): Promise<void> {
    this.files.delete(normalize(path))
  }

  async mkdirp(): Promise<void> {}
}

function normalize(p: string): string {
  return p.replace(/\/{2,}/g, '/').replace(/\/$/, '')
}
