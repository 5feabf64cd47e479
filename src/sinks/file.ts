import type { Schema } from '../batch.ts'
import { fileFormat } from '../formats/format.ts'
import { joinPath } from '../fs.ts'
import type { Sink, SinkProvider } from './sink.ts'

/** Directory under the output path holding one manifest per committed batch (Spark's `_spark_metadata`). */
export const FILE_SINK_LOG = '_sluice_log'

export interface FileSinkManifest {
  batchId: number
  files: { path: string; numRows: number; size: number }[]
}

/**
 * File sink (parquet, json, csv, arrow), Append mode as Spark's FileStreamSink. Batch N writes
 * `part-<N>-0.<ext>` then the manifest `_sluice_log/<N>` naming it; a batch whose manifest exists is
 * skipped, and a batch re-run after a crash overwrites its own part file, so output is exactly-once.
 * Readers of the directory (`session.read.load(path)`) read only the files the manifests list.
 */
export function fileSink(format: string, path: string, schema: Schema): SinkProvider {
  const fmt = fileFormat(format)
  return {
    name: format,
    outputModes: ['append'],
    path,
    async create(ctx): Promise<Sink> {
      const fs = ctx.fs
      await fs.mkdirp(joinPath(path, FILE_SINK_LOG))
      return {
        description: `FileSink[${path}]`,
        async addBatch(batchId, data) {
          const manifestPath = joinPath(path, FILE_SINK_LOG, String(batchId))
          if ((await fs.stat(manifestPath)) !== null) return
          const files: FileSinkManifest['files'] = []
          if (data.numRows > 0) {
            const name = `part-${String(batchId).padStart(5, '0')}-0${fmt.extension}`
            const bytes = fmt.encode([data], schema)
            await fs.writeAtomic(joinPath(path, name), bytes)
            files.push({ path: name, numRows: data.numRows, size: bytes.length })
            ctx.faultPoint('duringSinkWrite')
          }
          const manifest: FileSinkManifest = { batchId, files }
          await fs.writeAtomic(manifestPath, JSON.stringify(manifest))
        },
      }
    },
  }
}
