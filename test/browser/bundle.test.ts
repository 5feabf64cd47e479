import { builtinModules } from 'node:module'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

// The browser entry must bundle without any Node built-in: the core (plan, exec, kernels, state,
// sources that take bytes) is platform-free; node:fs, Piscina and Kafka sit behind the Node entry.
describe('browser entry', () => {
  it('bundles for the browser with no Node built-in module', async () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)])
    const result = await build({
      entryPoints: ['src/index.browser.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    })
    const imported = Object.values(result.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path))
    expect(imported.filter((p) => builtins.has(p))).toEqual([])
    expect(Object.keys(result.metafile.inputs).filter((p) => /piscina|kafkajs|src\/node\//.test(p))).toEqual([])
    expect(result.outputFiles[0]!.text).toContain('SluiceSession')
  })
})
