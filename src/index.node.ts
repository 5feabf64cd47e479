import { availableParallelism } from 'node:os'
import { NodeFs } from './node/fs.ts'
import { createPiscinaExecutor } from './kernels/piscina-executor.ts'
import { registerPlatform } from './platform.ts'

registerPlatform({
  name: 'node',
  fs: new NodeFs(),
  defaultThreads: () => Math.min(4, availableParallelism()),
  createExecutor: (threads) => createPiscinaExecutor({ threads }),
  log: (message) => console.error(`[sluice] ${message}`),
  kill: () => process.kill(process.pid, 'SIGKILL'),
})

export * from './index.ts'
export { NodeFs } from './node/fs.ts'
