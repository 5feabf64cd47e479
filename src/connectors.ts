import type { Schema } from './batch.ts'
import type { OutputMode } from './exec/aggregate.ts'
import type { Fs } from './fs.ts'
import type { OptionValue } from './api/options.ts'
import type { SinkProvider } from './sinks/sink.ts'
import type { SourceProvider } from './sources/source.ts'

/**
 * Formats beyond the file formats, registered by a platform entry (e.g. 'kafka' by the Node entry),
 * so the core never imports them. A connector validates its own options.
 */
export interface SourceConnector {
  /** `readStream.format(name)…load(path?)` / `read.format(name)…load(path?)`. */
  createSource(args: { options: ReadonlyMap<string, OptionValue>; schema: Schema | undefined; path: string | undefined; streaming: boolean; fs: Fs }): SourceProvider
}

export interface SinkConnector {
  /** `writeStream.format(name)…start()`. */
  createSink(args: { options: ReadonlyMap<string, OptionValue>; schema: Schema; outputMode: OutputMode; fs: Fs }): SinkProvider
  /** Option names the sink accepts besides the writer's own (checkpointLocation, …). */
  readonly optionNames: readonly string[]
}

const sources = new Map<string, SourceConnector>()
const sinks = new Map<string, SinkConnector>()

export function registerSourceConnector(name: string, c: SourceConnector): void {
  sources.set(name, c)
}

export function registerSinkConnector(name: string, c: SinkConnector): void {
  sinks.set(name, c)
}

export function sourceConnector(name: string): SourceConnector | undefined {
  return sources.get(name)
}

export function sinkConnector(name: string): SinkConnector | undefined {
  return sinks.get(name)
}

export function registeredSinkNames(): string[] {
  return [...sinks.keys()]
}
