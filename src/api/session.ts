import { randomUUID } from '../util/uuid.ts'
import type { Batch } from '../batch.ts'
import { AnalysisError, OptionError } from '../errors.ts'
import type { Fs } from '../fs.ts'
import type { Executor } from '../kernels/executor.ts'
import { InlineExecutor } from '../kernels/executor.ts'
import { Kernels } from '../kernels/kernels.ts'
import { type Platform, platform } from '../platform.ts'
import { sourceNode } from '../plan/logical.ts'
import { batchSourceProvider } from '../sources/batch-source.ts'
import { type SchemaSpec, toSchema } from '../sources/memory.ts'
import type { MemoryTable } from '../sinks/memory.ts'
import { type Row, rowsToBatch } from '../util/rows.ts'
import { DataFrame } from './dataframe.ts'
import { StreamingQueryManager } from './query.ts'
import { DataStreamReader } from './reader.ts'

/** Configuration keys Sluice reads (Spark's names with the `sluice.` prefix). */
export const CONF_KEYS = {
  'sluice.executor.threads': 'worker threads for partial aggregation (1 = in the calling thread); default: the platform\'s core count, at most 4',
  'sluice.streaming.multipleWatermarkPolicy': "'min' (default) or 'max' over the query's watermarks",
  'sluice.streaming.noDataMicroBatches.enabled': "'true' (default): run a batch without data when the watermark moves, to emit and evict state",
  'sluice.streaming.minBatchesToRetain': 'checkpoint versions kept recoverable (default 100)',
  'sluice.stateStore.minDeltasForSnapshot': 'state deltas between snapshots (default 10)',
  'sluice.streaming.maxEventTimeAhead': "unset (Spark's behaviour); an interval such as '1 day': event times further ahead of the batch's processing time do not move the watermark",
  'sluice.streaming.readAhead.enabled': "'true' (default): aggregations under the default or availableNow trigger read and partially aggregate batch N+1 while batch N's state, output and commit are written",
  'sluice.checkpoint.fsync': "'false' (default, as Spark's local checkpoints): atomic rename only, which survives a crash of the process; 'true' also fsyncs each file and directory, to survive power loss",
  'sluice.sql.streaming.checkpointLocation': 'default root for query checkpoints (a query gets <root>/<queryName>)',
} as const

/** Builder of the session: `SluiceSession.builder().appName('x').config('sluice.executor.threads', 2).getOrCreate()`. */
export class SluiceSessionBuilder {
  private name = 'sluice'
  private readonly conf = new Map<string, string>()

  appName(name: string): this {
    this.name = name
    return this
  }

  /** Ignored (kept for Spark source compatibility): Sluice runs in this process. */
  master(_master: string): this {
    return this
  }

  config(key: string, value: string | number | boolean): this {
    this.conf.set(key, String(value))
    return this
  }

  /** The active session (with this builder's config applied), or a new one: loads the WASM kernels and starts the worker pool. */
  async getOrCreate(): Promise<SluiceSession> {
    if (SluiceSession.active && !SluiceSession.active.stopped) {
      for (const [k, v] of this.conf) SluiceSession.active.conf.set(k, v)
      return SluiceSession.active
    }
    const p = platform()
    const conf = new RuntimeConfig(this.conf)
    const threadsText = conf.get('sluice.executor.threads')
    const threads = threadsText === undefined ? p.defaultThreads() : Number(threadsText)
    if (!Number.isInteger(threads) || threads < 1) {
      throw new OptionError('INVALID_OPTION', `sluice.executor.threads must be a positive integer, got '${threadsText}'`)
    }
    const kernels = await Kernels.load()
    const executor = threads > 1 ? await p.createExecutor(threads, kernels) : new InlineExecutor(kernels)
    const session = new SluiceSession(this.name, conf, p, kernels, executor)
    SluiceSession.active = session
    return session
  }
}

/** Session configuration (Spark's RuntimeConfig). */
export class RuntimeConfig {
  constructor(private readonly values: Map<string, string>) {}
  get(key: string): string | undefined
  get(key: string, dflt: string): string
  get(key: string, dflt?: string): string | undefined {
    return this.values.get(key) ?? dflt
  }
  set(key: string, value: string | number | boolean): void {
    this.values.set(key, String(value))
  }
  unset(key: string): void {
    this.values.delete(key)
  }
  getAll(): Record<string, string> {
    return Object.fromEntries(this.values)
  }
}

/**
 * The entry point (Spark's SparkSession): readers for streams and batches, the registry of running
 * queries, memory-sink tables, and the engine (WASM kernels + worker pool) that queries share.
 */
export class SluiceSession {
  /** @internal */
  static active: SluiceSession | null = null

  readonly streams = new StreamingQueryManager()
  /** @internal memory sink tables by query name */
  readonly memoryTables = new Map<string, MemoryTable>()
  stopped = false
  private memoryStreams = 0

  /** @internal use SluiceSession.builder() */
  constructor(
    readonly appName: string,
    readonly conf: RuntimeConfig,
    /** @internal */ readonly platform: Platform,
    private readonly kernels: Kernels,
    private readonly executor: Executor,
  ) {}

  static builder(): SluiceSessionBuilder {
    return new SluiceSessionBuilder()
  }

  /** The file system of this platform (node:fs on Node, in-memory in the browser). */
  get fs(): Fs {
    return this.platform.fileSystem({ durable: this.conf.get('sluice.checkpoint.fsync') === 'true' })
  }

  /** Reads files as a stream. */
  get readStream(): DataStreamReader {
    return new DataStreamReader(this, true)
  }

  /** Reads files as a batch DataFrame. */
  get read(): DataStreamReader {
    return new DataStreamReader(this, false)
  }

  /** The rows of the memory sink of the query named `name`, as a batch DataFrame. */
  table(name: string): DataFrame {
    const t = this.memoryTables.get(name)
    if (t === undefined) throw new AnalysisError('TABLE_NOT_FOUND', `Table or view not found: ${name} (memory sink tables: ${[...this.memoryTables.keys()].join(', ') || 'none'})`)
    return new DataFrame(this, sourceNode(batchSourceProvider(t.schema, () => [t.data], `MemoryTable[${name}]`), false))
  }

  /** A batch DataFrame from plain rows (timestamps as epoch ms, Date or ISO text). */
  createDataFrame(rows: readonly Row[], schema: SchemaSpec): DataFrame {
    return this.dataFrameOf(rowsToBatch(toSchema(schema), rows))
  }

  /** @internal a batch DataFrame over one batch */
  dataFrameOf(batch: Batch): DataFrame {
    return new DataFrame(this, sourceNode(batchSourceProvider(batch.schema, () => [batch], 'LocalRelation'), false))
  }

  /** @internal */
  engine(): { kernels: Kernels; executor: Executor } {
    if (this.stopped) throw new AnalysisError('SESSION_STOPPED', 'This SluiceSession has been stopped')
    return { kernels: this.kernels, executor: this.executor }
  }

  /** @internal */
  confMap(): Map<string, string> {
    return new Map(Object.entries(this.conf.getAll()))
  }

  /** @internal */
  defaultCheckpoint(queryName: string | null): string | null {
    const root = this.conf.get('sluice.sql.streaming.checkpointLocation')
    return root === undefined ? null : `${root}/${queryName ?? randomUUID()}`
  }

  /** @internal */
  nextMemoryStreamId(): number {
    return this.memoryStreams++
  }

  /** @internal console output */
  print(text: string): void {
    console.log(text)
  }

  /** Stops every active query and the worker pool. */
  async stop(): Promise<void> {
    if (this.stopped) return
    for (const q of this.streams.active) await q.stop()
    this.stopped = true
    await this.executor.close()
    if (SluiceSession.active === this) SluiceSession.active = null
  }
}
