/**
 * Sluice's Kafka connector (Node only): `readStream.format('kafka')`, `read.format('kafka')` and
 * `writeStream.format('kafka')` with Spark's options and row shapes (see source.ts, sink.ts and
 * docs/kafka.md). The Node entry registers it; `sluice/kafka` exports it for explicit use.
 */
import { registerSinkConnector, registerSourceConnector } from '../connectors.ts'
import { parseSinkOptions, parseSourceOptions, SINK_OPTION_NAMES } from './options.ts'
import { KafkaSinkProvider } from './sink.ts'
import { KafkaSourceProvider, checkNoUserSchema } from './source.ts'

/** Registers the 'kafka' source and sink formats (idempotent). */
export function registerKafka(): void {
  registerSourceConnector('kafka', {
    createSource({ options, schema, streaming }) {
      checkNoUserSchema(schema)
      return new KafkaSourceProvider(parseSourceOptions(options, streaming), streaming)
    },
  })
  registerSinkConnector('kafka', {
    optionNames: SINK_OPTION_NAMES,
    createSink({ options, schema }) {
      return new KafkaSinkProvider(parseSinkOptions(options), schema)
    },
  })
}

export { KafkaSourceProvider, rateLimit } from './source.ts'
export { KafkaSinkProvider } from './sink.ts'
export { parseSourceOptions, parseSinkOptions, type KafkaSourceOptions, type KafkaSinkOptions } from './options.ts'
export { kafkaSourceSchema } from './records.ts'
