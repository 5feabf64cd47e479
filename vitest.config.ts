import { defineConfig } from 'vitest/config'

// Two groups run one after the other (sequence.groupOrder): the core suite in parallel, then the
// tests against the real Kafka broker, one file at a time, so broker restarts and timeouts are not
// disturbed by the CPU load of the rest of the suite on a 2-core machine.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'core', include: ['test/**/*.test.ts'], exclude: ['test/kafka/**'], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'kafka', include: ['test/kafka/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
})
