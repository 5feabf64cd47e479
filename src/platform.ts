import type { Fs } from './fs.ts'
import type { Executor } from './kernels/executor.ts'
import type { Kernels } from './kernels/kernels.ts'

/** What differs between Node and the browser; each entry point registers its own. */
export interface Platform {
  readonly name: 'node' | 'browser'
  /** The file system; `durable` asks for fsync on every checkpoint write (conf sluice.checkpoint.fsync). */
  fileSystem(options: { durable: boolean }): Fs
  /** Worker threads to use when `sluice.executor.threads` is not set. */
  defaultThreads(): number
  createExecutor(threads: number, kernels: Kernels): Promise<Executor>
  log(message: string): void
  /** Ends the process at once (test hook for crash recovery; SIGKILL on Node). */
  kill(): void
}

let current: Platform | null = null

export function registerPlatform(p: Platform): void {
  current = p
}

export function platform(): Platform {
  if (current === null) throw new Error("No Sluice platform registered: import from 'sluice' (the package entry), not from src/index.ts")
  return current
}
