/** Variants of the Sluice engines for the headroom measurements (bench/e2e.ts, bench/overhead.ts `--what-if a,b`). */
/**
 * no-read-ahead — the engine's conf `sluice.streaming.readAhead.enabled=false` (a real option: what
 * reading batch N+1 while batch N commits is worth); no-state-commit — the state store writes
 * nothing, patched into this process only (a bound, not a fix).
 */
export const WHAT_IFS = ['no-read-ahead', 'no-state-commit'] as const

export function installWhatIf(list: string[], StateStore: { prototype: object }): { conf: Record<string, string> } {
  for (const w of list) if (!(WHAT_IFS as readonly string[]).includes(w)) throw new Error(`unknown --what-if ${w} (expected ${WHAT_IFS.join(', ')})`)
  if (list.includes('no-state-commit')) (StateStore.prototype as Record<string, unknown>).commit = async () => {}
  return { conf: list.includes('no-read-ahead') ? { 'sluice.streaming.readAhead.enabled': 'false' } : {} }
}
