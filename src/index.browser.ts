import { MemoryFs } from './fs.ts'
import { InlineExecutor } from './kernels/executor.ts'
import { registerPlatform } from './platform.ts'

/** Files the browser build reads: add them with `browserFs.put(path, bytes)` (e.g. from a File input or fetch). */
export const browserFs = new MemoryFs()

registerPlatform({
  name: 'browser',
  fileSystem: () => browserFs,
  defaultThreads: () => 1,
  createExecutor: async (_threads, kernels) => new InlineExecutor(kernels),
  log: (message) => console.warn(`[sluice] ${message}`),
  kill: () => {
    throw new Error('sluice.testing.killAt is not supported in the browser')
  },
})

export * from './index.ts'
