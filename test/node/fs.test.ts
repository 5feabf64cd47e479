import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeFs } from '../../src/node/fs.ts'

describe('NodeFs', () => {
  let dir: string
  const fs = new NodeFs()
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-fs-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('lists files sorted by name, skipping hidden/underscore names and directories', async () => {
    const d = join(dir, 'list')
    await mkdir(join(d, 'sub'), { recursive: true })
    for (const n of ['b.json', 'a.json', '10.json', '.tmp.json', '_SUCCESS', '_spark_metadata']) await writeFile(join(d, n), n)
    const files = await fs.list(d)
    expect(files.map((f) => f.path)).toEqual([`${d}/10.json`, `${d}/a.json`, `${d}/b.json`])
    expect(files[1]!.size).toBe(6)
    expect(files[1]!.mtimeMs).toBeGreaterThan(0)
    expect(fs.listSync(d)).toEqual(files)
    expect(await fs.list(`${d}/`)).toEqual(files)
  })

  it('lists a missing directory as []', async () => {
    expect(await fs.list(join(dir, 'nope'))).toEqual([])
    expect(fs.listSync(join(dir, 'nope'))).toEqual([])
    // a file is not a directory
    await writeFile(join(dir, 'plain'), 'x')
    expect(await fs.list(join(dir, 'plain'))).toEqual([])
  })

  it('stats files and directories; null when missing', async () => {
    const p = join(dir, 'st.txt')
    await writeFile(p, 'hello')
    expect(await fs.stat(p)).toMatchObject({ path: p, size: 5, isDirectory: false })
    expect(await fs.stat(dir)).toMatchObject({ size: 0, isDirectory: true })
    expect(await fs.stat(join(dir, 'missing'))).toBeNull()
    expect(fs.statSync(p)).toMatchObject({ size: 5, isDirectory: false })
    expect(fs.statSync(join(dir, 'missing'))).toBeNull()
  })

  it('reads whole files and byte ranges', async () => {
    const p = join(dir, 'r.bin')
    await writeFile(p, Buffer.from('0123456789'))
    expect(new TextDecoder().decode(await fs.read(p))).toBe('0123456789')
    expect(new TextDecoder().decode(fs.readSync(p))).toBe('0123456789')
    expect(new TextDecoder().decode(await fs.readRange(p, 2, 5))).toBe('234')
    expect(new TextDecoder().decode(await fs.readRange(p, 8, 100))).toBe('89')
    expect((await fs.readRange(p, 20, 30)).length).toBe(0)
    expect(new TextDecoder().decode(fs.readRangeSync(p, 2, 5))).toBe('234')
    expect(new TextDecoder().decode(fs.readRangeSync(p, 8, 100))).toBe('89')
    expect(new TextDecoder().decode(fs.readRangeSync(p, -3, 2))).toBe('01')
    expect(fs.readRangeSync(p, 20, 30).length).toBe(0)
    expect(fs.readRangeSync(p, 5, 3).length).toBe(0)
    expect(() => fs.readRangeSync(join(dir, 'missing'), 0, 1)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    await expect(fs.read(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(() => fs.readSync(join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }))
  })

  it('writes atomically: creates parents, replaces, leaves no temporary files', async () => {
    const p = join(dir, 'deep', 'er', 'out.json')
    await fs.writeAtomic(p, '{"a":1}')
    expect(await readFile(p, 'utf8')).toBe('{"a":1}')
    await fs.writeAtomic(p, new TextEncoder().encode('{"a":2}'))
    expect(await readFile(p, 'utf8')).toBe('{"a":2}')
    expect(await readdir(join(dir, 'deep', 'er'))).toEqual(['out.json'])
    // concurrent writers to one path: one wins whole, nothing torn or left over
    await Promise.all(Array.from({ length: 8 }, (_, i) => fs.writeAtomic(p, `{"w":${i}}`.repeat(1000))))
    expect(await readFile(p, 'utf8')).toMatch(/^(\{"w":\d\})+$/)
    expect(await readdir(join(dir, 'deep', 'er'))).toEqual(['out.json'])
    // large files take the asynchronous path (from 256 KiB): same guarantees
    const big = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 31) & 0xff)
    await Promise.all([fs.writeAtomic(p, big), fs.writeAtomic(join(dir, 'deep', 'new', 'big.bin'), big)])
    expect(new Uint8Array(await readFile(p))).toEqual(big)
    expect(new Uint8Array(await readFile(join(dir, 'deep', 'new', 'big.bin')))).toEqual(big)
    expect(await readdir(join(dir, 'deep', 'er'))).toEqual(['out.json'])
  })

  it('removes files and trees, ignoring missing paths; mkdirp is idempotent', async () => {
    const d = join(dir, 'rm', 'x')
    await fs.mkdirp(d)
    await fs.mkdirp(d)
    await writeFile(join(d, 'f'), 'x')
    await fs.remove(join(d, 'f'))
    expect(await fs.stat(join(d, 'f'))).toBeNull()
    await fs.remove(join(d, 'f'))
    await fs.remove(join(dir, 'rm'))
    expect(await fs.stat(join(dir, 'rm'))).toBeNull()
  })

  it('writes atomically with fsync when durable, and recreates a directory removed behind its back', async () => {
    const durable = new NodeFs({ durable: true })
    const d = join(dir, 'durable', 'sub')
    await durable.writeAtomic(join(d, 'a'), 'one')
    await durable.writeAtomic(join(d, 'a'), new TextEncoder().encode('two'))
    expect(await readFile(join(d, 'a'), 'utf8')).toBe('two')
    expect((await readdir(d)).filter((n) => n.endsWith('.tmp'))).toEqual([])
    await rm(join(dir, 'durable'), { recursive: true })
    await durable.writeAtomic(join(d, 'b'), 'three')
    expect(await readFile(join(d, 'b'), 'utf8')).toBe('three')
  })
})
