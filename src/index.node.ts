import { availableParallelism } from 'node:os'
import { NodeFs } from './node/fs.ts'
import { createPiscinaExecutor } from './kernels/piscina-executor.ts'
import { registerPlatform } from './platform.ts'
import { registerKafka } from './kafka/index.ts'

const fastFs = new NodeFs()
const durableFs = new NodeFs({ durable: true })

registerPlatform({
  name: 'node',
  fileSystem: ({ durable }) => (durable ? durableFs : fastFs),
  defaultThreads: () => Math.min(4, availableParallelism()),
  createExecutor: (threads) => createPiscinaExecutor({ threads }),
  log: (message) => console.error(`[sluice] ${message}`),
  kill: () => process.kill(process.pid, 'SIGKILL'),
})

registerKafka()

export * from './index.ts'
export { NodeFs } from './node/fs.ts'
