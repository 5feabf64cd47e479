import type { Batch } from '../batch.ts'
import { formatTimestamp } from './time.ts'
import { isValid } from '../batch.ts'

/** Spark's `Dataset.showString`: an ASCII table of the first `numRows` rows, cells cut at 20 characters when `truncate`. */
export function showString(batch: Batch, numRows = 20, truncate = true): string {
  const n = Math.min(numRows, batch.numRows)
  const header = batch.schema.map((f) => f.name)
  const cells: string[][] = []
  for (let i = 0; i < n; i++) {
    cells.push(batch.columns.map((c) => {
      const s = cellText(c, i)
      return truncate && s.length > 20 ? s.slice(0, 17) + '...' : s
    }))
  }
  const widths = header.map((h, j) => Math.max(3, h.length, ...cells.map((r) => r[j]!.length)))
  const sep = '+' + widths.map((w) => '-'.repeat(w)).join('+') + '+'
  const line = (r: string[]) => '|' + r.map((s, j) => s.padStart(widths[j]!)).join('|') + '|'
  const out = [sep, line(header), sep, ...cells.map(line), sep]
  if (batch.numRows > n) out.push(`only showing top ${n} row${n === 1 ? '' : 's'}`)
  return out.join('\n') + '\n'
}

function cellText(c: Batch['columns'][number], i: number): string {
  if (!isValid(c.validity, i)) return 'NULL'
  switch (c.type) {
    case 'timestamp': return formatTimestamp((c.values as BigInt64Array)[i]!)
    case 'window': return `{${cellText(c.children!.start, i)}, ${cellText(c.children!.end, i)}}`
    case 'struct': return `{${Object.values(c.children ?? {}).map((ch) => cellText(ch, i)).join(', ')}}`
    case 'string': return c.dictionary![(c.values as Int32Array)[i]!]!
    case 'boolean': return (c.values as Uint8Array)[i] ? 'true' : 'false'
    case 'binary': return `[${Array.from((c.values as Uint8Array[])[i]!, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(' ')}]`
    default: return String((c.values as Int32Array)[i])
  }
}
