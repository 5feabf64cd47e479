import { existsSync } from 'node:fs'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import { describe, expect, it } from 'vitest'

// The browser entry in a real headless Chromium (Debian's, installed by .ci/run): the WASM kernels
// load from the bundle, a streaming query runs inline and matches Spark's answer (case WM-02).

const CHROMIUM = '/usr/bin/chromium'

describe('browser entry in headless Chromium', () => {
  it('runs a windowed streaming aggregation with Spark semantics', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does`)
    const bundle = await build({ entryPoints: ['test/browser/page.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' })
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    try {
      const page = await browser.newPage()
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.setContent('<!doctype html><title>sluice</title>')
      await page.addScriptTag({ content: bundle.outputFiles[0]!.text, type: 'module' })
      await page.waitForFunction(() => 'sluiceResult' in globalThis, undefined, { timeout: 20_000 })
      const result = await page.evaluate(() => (globalThis as unknown as { sluiceResult: Promise<unknown> }).sluiceResult) as {
        rows: { start: number; count: number }[]; watermark: string; userAgent: string
      }
      expect(errors).toEqual([])
      expect(result.userAgent).toMatch(/HeadlessChrome|Chrome/)
      expect(result.rows).toEqual([{ start: 10, count: 5 }])
      expect(result.watermark).toBe('1970-01-01T00:00:15.000Z')
    } finally {
      await browser.close()
    }
  }, 60_000)
})
