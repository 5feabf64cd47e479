import { AnalysisError, OptionError } from '../errors.ts'
import type { OutputMode } from '../exec/aggregate.ts'
import { StreamExecution } from '../exec/stream-execution.ts'
import { type Trigger, resolveTrigger } from '../exec/trigger.ts'
import { consoleSink } from '../sinks/console.ts'
import { fileSink } from '../sinks/file.ts'
import { foreachBatchSink } from '../sinks/foreach-batch.ts'
import { memorySink } from '../sinks/memory.ts'
import type { SinkProvider } from '../sinks/sink.ts'
import { type OptionValue, WRITER_OPTIONS, parseOptions } from './options.ts'
import type { DataFrame } from './dataframe.ts'
import { StreamingQuery } from './query.ts'
import { registeredSinkNames, sinkConnector } from '../connectors.ts'

const FORMATS = ['console', 'memory', 'parquet', 'json', 'csv', 'arrow', 'foreachBatch'] as const

/**
 * Starts a streaming query (Spark's DataStreamWriter):
 * `df.writeStream.outputMode('append').format('parquet').option('path', …).option('checkpointLocation', …).trigger({ availableNow: true }).start()`.
 */
export class DataStreamWriter {
  private mode: OutputMode = 'append'
  private fmt = 'console'
  private readonly opts = new Map<string, OptionValue>()
  private name: string | null = null
  private trig: Trigger | undefined
  private batchFn: ((df: DataFrame, batchId: number) => unknown) | null = null

  constructor(private readonly df: DataFrame) {}

  /** 'append' (default) | 'update' | 'complete', with Spark's rules (checked at start()). */
  outputMode(mode: OutputMode | string): this {
    const m = String(mode).toLowerCase()
    if (m !== 'append' && m !== 'update' && m !== 'complete') {
      throw new OptionError('INVALID_OUTPUT_MODE', `Unknown output mode ${mode}. Accepted output modes are 'append', 'complete', 'update'`)
    }
    this.mode = m
    return this
  }

  /** 'console' (default), 'memory', 'parquet', 'json', 'csv', 'arrow'. */
  format(source: string): this {
    if (!(FORMATS as readonly string[]).includes(source) && sinkConnector(source) === undefined) {
      throw new OptionError('UNKNOWN_FORMAT', `Unknown sink format '${source}'; accepted: ${[...FORMATS, ...registeredSinkNames()].join(', ')}`)
    }
    this.fmt = source
    return this
  }

  /** Options: path, checkpointLocation, numRows / truncate (console), flushAtEnd (Sluice: end of input moves the watermark to +∞ with once/availableNow). */
  option(key: string, value: OptionValue): this {
    this.opts.set(key, value)
    return this
  }

  options(options: Record<string, OptionValue>): this {
    for (const [k, v] of Object.entries(options)) this.opts.set(k, v)
    return this
  }

  queryName(name: string): this {
    this.name = name
    return this
  }

  trigger(trigger: Trigger): this {
    this.trig = trigger
    return this
  }

  /** Calls `fn(batchDF, batchId)` for every micro-batch's output (a batch DataFrame). */
  foreachBatch(fn: (df: DataFrame, batchId: number) => unknown): this {
    this.batchFn = fn
    this.fmt = 'foreachBatch'
    return this
  }

  /**
   * Starts the query: checks the plan against the output mode, opens or recovers the checkpoint,
   * and begins the micro-batch loop.
   * @throws AnalysisError (e.g. APPEND_WITHOUT_WATERMARK), OptionError, CheckpointError
   */
  async start(path?: string): Promise<StreamingQuery> {
    if (path !== undefined) this.opts.set('path', path)
    const connector = sinkConnector(this.fmt)
    const own = new Map([...this.opts].filter(([k]) => k in WRITER_OPTIONS || connector === undefined))
    if (connector !== undefined) {
      for (const k of this.opts.keys()) {
        if (!(k in WRITER_OPTIONS) && !connector.optionNames.includes(k)) {
          throw new OptionError('UNKNOWN_OPTION', `Unknown ${this.fmt} sink option '${k}'; accepted: ${[...Object.keys(WRITER_OPTIONS), ...connector.optionNames].join(', ')}`)
        }
      }
    }
    const o = parseOptions('writeStream', WRITER_OPTIONS, own)
    const session = this.df.session
    const trigger = resolveTrigger(this.trig)
    if (o.flushAtEnd && trigger.kind === 'processingTime') {
      throw new OptionError('INVALID_OPTION', "Option 'flushAtEnd' needs trigger({ once: true }) or trigger({ availableNow: true }): a continuous query has no end of input")
    }
    const schema = this.df.schema
    let sink: SinkProvider
    switch (this.fmt) {
      case 'memory':
        if (this.name === null) throw new AnalysisError('MEMORY_SINK_NEEDS_NAME', 'queryName must be specified for memory sink')
        sink = memorySink(session.memoryTables, schema)
        break
      case 'console':
        sink = consoleSink({ numRows: o.numRows ?? 20, truncate: o.truncate ?? true }, (s) => session.print(s))
        break
      case 'foreachBatch': {
        const fn = this.batchFn!
        sink = foreachBatchSink((b) => session.dataFrameOf(b), fn)
        break
      }
      default:
        if (connector !== undefined) {
          sink = connector.createSink({ options: this.opts, schema, outputMode: this.mode, fs: session.fs })
          break
        }
        if (o.path === undefined) throw new OptionError('MISSING_OPTION', `'path' is not specified for the ${this.fmt} sink`)
        if (o.checkpointLocation === undefined) {
          throw new AnalysisError('CHECKPOINT_REQUIRED', "checkpointLocation must be specified either through option('checkpointLocation', ...) or SparkSession.conf.set('sluice.sql.streaming.checkpointLocation', ...)")
        }
        sink = fileSink(this.fmt, o.path, schema)
    }
    const { kernels, executor } = session.engine()
    const exec = new StreamExecution({
      plan: this.df.plan,
      sink,
      outputMode: this.mode,
      trigger,
      checkpointLocation: o.checkpointLocation ?? session.defaultCheckpoint(this.name),
      queryName: this.name,
      flushAtEnd: o.flushAtEnd ?? false,
      conf: session.confMap(),
      fs: session.fs,
      kernels,
      executor,
      listeners: () => session.streams.listeners,
      log: (m) => session.platform.log(m),
      kill: () => session.platform.kill(),
    })
    const query = new StreamingQuery(exec, session)
    if (this.name !== null && session.streams.active.some((q) => q.name === this.name)) {
      throw new AnalysisError('DUPLICATE_QUERY_NAME', `Cannot start query with name ${this.name} as a query with that name is already active`)
    }
    await exec.start()
    session.streams.register(query)
    return query
  }
}
