import type { Batch, Schema } from '../batch.ts'
import { SourceError } from '../errors.ts'
import { type FileFormat, type OpenedFile, type ReadOptions } from '../formats/format.ts'
import { type FileInfo, type Fs, baseName, joinPath } from '../fs.ts'
import { FILE_SINK_LOG, type FileSinkManifest } from '../sinks/file.ts'
import type { Offset, ReadLimit, Source, SourceContext, SourceProvider } from './source.ts'

interface LoggedFile {
  readonly path: string
  readonly numRows: number
  readonly size: number
  readonly mtimeMs: number
  /** Why the file was skipped (ignoreCorruptFiles), if it was. */
  readonly skipped?: string
}

/** Errors that `ignoreCorruptFiles` turns into a skipped, reported file. */
const SKIPPABLE = new Set(['CORRUPT_FILE', 'SCHEMA_MISMATCH', 'UNSUPPORTED_TYPE'])

/**
 * The data files of `path` (a file or a directory, sorted by name; a file sink's output directory is
 * read through its manifests, so files of uncommitted batches are never seen), or null if `path` does
 * not exist. Synchronous, so `load()` can resolve a schema at once.
 */
export function listDataFilesSync(fs: Fs, path: string, globFilter?: string): FileInfo[] | null {
  const stat = fs.statSync(path)
  if (stat === null) return null
  if (!stat.isDirectory) return [stat]
  const manifests = fs.listSync(joinPath(path, FILE_SINK_LOG)).filter((m) => /^\d+$/.test(baseName(m.path)))
  let files: FileInfo[]
  if (manifests.length > 0) {
    files = []
    for (const m of manifests.sort((a, b) => Number(baseName(a.path)) - Number(baseName(b.path)))) {
      const manifest = JSON.parse(new TextDecoder().decode(fs.readSync(m.path))) as FileSinkManifest
      for (const f of manifest.files) {
        const info = fs.statSync(joinPath(path, f.path))
        if (info === null) throw new SourceError('FILE_NOT_FOUND', `File ${joinPath(path, f.path)} listed in ${m.path} does not exist`)
        files.push(info)
      }
    }
  } else {
    files = fs.listSync(path)
  }
  if (globFilter !== undefined) {
    const re = new RegExp('^' + globFilter.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
    files = files.filter((f) => re.test(baseName(f.path)))
  }
  return files
}

/**
 * Streaming file source (Spark's FileStreamSource) over parquet, arrow, json lines or csv files in a
 * directory (or one file). New files are discovered on every trigger, ordered by name, and appended
 * to the seen-files log `<checkpoint>/sources/0/files` before any offset refers to them. The offset
 * is the number of rows consumed across that log, so `maxRowsPerTrigger` and `maxFilesPerTrigger`
 * cut batches inside or at the end of files, and a re-run batch reads exactly the same rows.
 */
export class FileSourceProvider implements SourceProvider {
  readonly description: string
  readonly kind: string

  constructor(
    private readonly fs: Fs,
    private readonly format: FileFormat,
    private readonly path: string,
    readonly schema: Schema,
    private readonly options: ReadOptions & { pathGlobFilter?: string; ignoreCorruptFiles?: boolean },
    readonly readLimit: ReadLimit,
  ) {
    this.description = `FileStreamSource[${format.name}:${path}]`
    this.kind = format.name
  }

  async createSource(ctx: SourceContext): Promise<Source> {
    const logPath = joinPath(ctx.metadataPath, 'files')
    const log: LoggedFile[] = []
    if ((await ctx.fs.stat(logPath)) !== null) {
      const text = new TextDecoder().decode(await ctx.fs.read(logPath))
      for (const [i, line] of text.split('\n').entries()) {
        if (line.trim() === '') continue
        try {
          log.push(JSON.parse(line) as LoggedFile)
        } catch (cause) {
          throw new SourceError('CORRUPT_SOURCE_LOG', `Line ${i + 1} of the seen-files log ${logPath} is not valid JSON`, { cause })
        }
      }
    }
    const opened = new Map<string, OpenedFile>()
    const readOptions: ReadOptions = { ...this.options, schema: ctx.schema ?? this.schema }
    const open = async (path: string): Promise<OpenedFile> => {
      let f = opened.get(path)
      if (f === undefined) {
        f = await this.format.open(this.fs, path, readOptions)
        opened.set(path, f)
      }
      return f
    }
    const starts = (): number[] => {
      const s = [0]
      for (const f of log) s.push(s[s.length - 1]! + f.numRows)
      return s
    }
    const ignoreCorrupt = this.options.ignoreCorruptFiles === true
    const skip = (path: string, e: unknown): string => {
      if (!ignoreCorrupt || !(e instanceof SourceError) || !SKIPPABLE.has(e.code)) throw e
      ctx.log(`Skipping ${path} (ignoreCorruptFiles): ${e.message}`)
      return `${e.code}: ${e.message}`
    }
    let batchMetrics: Record<string, string> = {}
    const discover = async (): Promise<void> => {
      const seen = new Set(log.map((f) => f.path))
      const fresh = (listDataFilesSync(this.fs, this.path, this.options.pathGlobFilter) ?? []).filter((f) => !seen.has(f.path))
      if (fresh.length === 0) return
      for (const info of fresh) {
        // opened to count rows (parquet, arrow IPC files: the footer and batch metadata; json, csv: the whole file); only one is kept, so a large backlog is not held in memory
        try {
          const f = await this.format.open(this.fs, info.path, readOptions)
          log.push({ path: info.path, numRows: f.numRows, size: info.size, mtimeMs: info.mtimeMs })
          // keep the first opened file (the next one read) so it is not read twice; drop the rest
          if (opened.size === 0) opened.set(info.path, f)
        } catch (e) {
          log.push({ path: info.path, numRows: 0, size: info.size, mtimeMs: info.mtimeMs, skipped: skip(info.path, e) })
        }
      }
      await ctx.fs.writeAtomic(logPath, log.map((f) => JSON.stringify(f)).join('\n') + '\n')
    }
    const source: Source = {
      description: this.description,
      batchMetrics: () => batchMetrics,
      latestOffset: async (start: Offset | null, limit: ReadLimit): Promise<Offset | null> => {
        await discover()
        const s = starts()
        const total = s[s.length - 1]!
        if (total === 0) return null
        const from = (start as number | null) ?? 0
        let end = total
        if (limit.maxFiles !== undefined) {
          let fi = 0
          while (fi < log.length && s[fi + 1]! <= from) fi++
          end = Math.min(end, s[Math.min(fi + limit.maxFiles, log.length)]!)
        }
        if (limit.maxRows !== undefined) end = Math.min(end, from + limit.maxRows)
        return end
      },
      getBatch: async (start: Offset | null, end: Offset): Promise<Batch[]> => {
        const from = (start as number | null) ?? 0
        const to = end as number
        const s = starts()
        const out: Batch[] = []
        let dropped = 0
        const skipped: string[] = []
        for (let i = 0; i < log.length; i++) {
          if (log[i]!.skipped !== undefined && s[i]! >= from && s[i]! < to) skipped.push(log[i]!.path)
          const a = Math.max(from, s[i]!), b = Math.min(to, s[i + 1]!)
          if (a >= b) {
            if (s[i + 1]! <= from) opened.delete(log[i]!.path)
            continue
          }
          try {
            const f = await open(log[i]!.path)
            const before = f.droppedMalformed
            out.push(await f.read(a - s[i]!, b - s[i]!))
            dropped += f.droppedMalformed - before
          } catch (e) {
            skip(log[i]!.path, e)
            skipped.push(`${log[i]!.path} rows ${a - s[i]!}-${b - s[i]!}`)
          }
          if (b === s[i + 1]!) opened.delete(log[i]!.path)
        }
        batchMetrics = {
          numRowsDroppedMalformed: String(dropped),
          ...(skipped.length > 0 ? { numFilesSkipped: String(skipped.length), skippedFiles: skipped.join(', ') } : {}),
        }
        return out
      },
      stop: async () => {
        opened.clear()
      },
    }
    return source
  }
}
