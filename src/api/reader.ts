import type { Schema } from '../batch.ts'
import { OptionError, SourceError } from '../errors.ts'
import { sourceConnector } from '../connectors.ts'
import { fileFormat, syncFile } from '../formats/format.ts'
import { sourceNode } from '../plan/logical.ts'
import { type SchemaSpec, toSchema } from '../sources/memory.ts'
import { FileSourceProvider, listDataFilesSync } from '../sources/file.ts'
import { type OptionValue, READER_OPTIONS, parseOptions } from './options.ts'
import { DataFrame } from './dataframe.ts'
import type { SluiceSession } from './session.ts'

/**
 * Loads files as a DataFrame: `session.readStream` (streaming, Spark's DataStreamReader) or
 * `session.read` (batch, Spark's DataFrameReader). Formats: 'parquet' (default), 'arrow' (IPC file or
 * stream), 'json' (JSON lines), 'csv'. Without `.schema(...)` the schema comes from the first file.
 * Options: maxRowsPerTrigger, maxFilesPerTrigger (streaming admission control), mode
 * (PERMISSIVE | DROPMALFORMED | FAILFAST), columnNameOfCorruptRecord, header, sep, inferSchema (csv),
 * pathGlobFilter, ignoreCorruptFiles (skip and report corrupt or mismatched files instead of failing).
 */
export class DataStreamReader {
  private fmt = 'parquet'
  private userSchema: Schema | undefined
  private readonly opts = new Map<string, OptionValue>()

  constructor(private readonly session: SluiceSession, private readonly streaming: boolean) {}

  format(source: string): this {
    if (sourceConnector(source) === undefined) fileFormat(source)
    this.fmt = source
    return this
  }

  option(key: string, value: OptionValue): this {
    this.opts.set(key, value)
    return this
  }

  options(options: Record<string, OptionValue>): this {
    for (const [k, v] of Object.entries(options)) this.opts.set(k, v)
    return this
  }

  /** The input schema: Fields, or `{ name: 'int' | 'long' | 'double' | 'string' | 'timestamp' | 'boolean' }`. */
  schema(schema: SchemaSpec): this {
    this.userSchema = toSchema(schema)
    return this
  }

  /**
   * A DataFrame over the file or directory at `path`.
   * @throws OptionError for unknown or invalid options; SourceError `PATH_NOT_FOUND` / `EMPTY_INPUT` when no schema can be found.
   */
  load(path?: string): DataFrame {
    const connector = sourceConnector(this.fmt)
    if (connector !== undefined) {
      const provider = connector.createSource({ options: this.opts, schema: this.userSchema, path, streaming: this.streaming, fs: this.session.fs })
      return new DataFrame(this.session, sourceNode(provider, this.streaming))
    }
    if (path === undefined) throw new OptionError('MISSING_OPTION', `load() needs a path for the ${this.fmt} format`)
    const o = parseOptions(this.streaming ? 'readStream' : 'read', READER_OPTIONS, this.opts)
    const format = fileFormat(this.fmt)
    const readOptions = {
      ...(o.mode !== undefined ? { mode: o.mode } : {}),
      ...(o.columnNameOfCorruptRecord !== undefined ? { columnNameOfCorruptRecord: o.columnNameOfCorruptRecord } : {}),
      ...(o.header !== undefined ? { header: o.header } : {}),
      ...(o.sep !== undefined ? { sep: o.sep } : {}),
      ...(o.inferSchema !== undefined ? { inferSchema: o.inferSchema } : {}),
      ...(o.pathGlobFilter !== undefined ? { pathGlobFilter: o.pathGlobFilter } : {}),
      ...(o.ignoreCorruptFiles !== undefined ? { ignoreCorruptFiles: o.ignoreCorruptFiles } : {}),
    }
    let schema = this.userSchema
    if (schema === undefined) {
      const fs = this.session.fs
      const files = listDataFilesSync(fs, path, o.pathGlobFilter)
      if (files === null) throw new SourceError('PATH_NOT_FOUND', `Path does not exist: ${path}`)
      if (files.length === 0) {
        throw new SourceError('EMPTY_INPUT', `Unable to infer schema for ${format.name} at ${path}: no files yet. It must be specified manually with .schema(...)`)
      }
      schema = format.inferSchema(syncFile(fs, files[0]!.path, files[0]!.size), readOptions)
    }
    const provider = new FileSourceProvider(this.session.fs, format, path, schema, readOptions, {
      ...(o.maxRowsPerTrigger !== undefined ? { maxRows: o.maxRowsPerTrigger } : {}),
      ...(o.maxFilesPerTrigger !== undefined ? { maxFiles: o.maxFilesPerTrigger } : {}),
    })
    return new DataFrame(this.session, sourceNode(provider, this.streaming))
  }

  parquet(path: string): DataFrame {
    return this.format('parquet').load(path)
  }

  json(path: string): DataFrame {
    return this.format('json').load(path)
  }

  csv(path: string): DataFrame {
    return this.format('csv').load(path)
  }

  arrow(path: string): DataFrame {
    return this.format('arrow').load(path)
  }
}
