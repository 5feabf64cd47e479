import type { DataType } from '../batch.ts'
import { type BinaryOp, type Expr, exprName, parseType } from '../plan/expr.ts'

/** Anything a Column method accepts as an operand: a Column, or a literal (number, bigint, string, boolean, Date, null). */
export type ColumnLike = Column | number | bigint | string | boolean | Date | null

/**
 * A column expression, as Spark's `Column`. Build with `col('name')`, `lit(value)` and the functions
 * in `functions.ts`; combine with the methods below. Evaluation is vectorised over whole batches.
 */
export class Column {
  /** @internal */
  readonly expr: Expr

  constructor(expr: Expr) {
    this.expr = expr
  }

  /** Renames the output column (Spark's `as` / `alias`). */
  as(name: string): Column {
    return new Column({ kind: 'alias', expr: this.expr, name })
  }
  alias(name: string): Column {
    return this.as(name)
  }
  name(name: string): Column {
    return this.as(name)
  }

  /** CAST to 'int' | 'long' | 'double' | 'string' | 'timestamp' | 'boolean' (Spark semantics: unparsable → NULL; timestamp ↔ number in seconds). */
  cast(to: string | DataType): Column {
    return new Column({ kind: 'cast', expr: this.expr, to: parseType(to) })
  }

  /** Field of a window (`col('window').getField('start')`) or of a struct column (`col('data').getField('x')`). */
  getField(field: string): Column {
    return new Column({ kind: 'field', expr: this.expr, field })
  }

  plus(o: ColumnLike): Column { return this.bin('+', o) }
  minus(o: ColumnLike): Column { return this.bin('-', o) }
  multiply(o: ColumnLike): Column { return this.bin('*', o) }
  divide(o: ColumnLike): Column { return this.bin('/', o) }
  mod(o: ColumnLike): Column { return this.bin('%', o) }
  equalTo(o: ColumnLike): Column { return this.bin('=', o) }
  eq(o: ColumnLike): Column { return this.bin('=', o) }
  notEqual(o: ColumnLike): Column { return this.bin('!=', o) }
  lt(o: ColumnLike): Column { return this.bin('<', o) }
  leq(o: ColumnLike): Column { return this.bin('<=', o) }
  gt(o: ColumnLike): Column { return this.bin('>', o) }
  geq(o: ColumnLike): Column { return this.bin('>=', o) }
  and(o: ColumnLike): Column { return this.bin('and', o) }
  or(o: ColumnLike): Column { return this.bin('or', o) }
  not(): Column { return new Column({ kind: 'not', expr: this.expr }) }
  isNull(): Column { return new Column({ kind: 'isNull', expr: this.expr, negate: false }) }
  isNotNull(): Column { return new Column({ kind: 'isNull', expr: this.expr, negate: true }) }

  /** Ascending sort order, for orderBy(). */
  asc(): Column {
    return new Column({ kind: 'sortOrder', expr: this.expr, ascending: true })
  }
  /** Descending sort order, for orderBy(). */
  desc(): Column {
    return new Column({ kind: 'sortOrder', expr: this.expr, ascending: false })
  }

  toString(): string {
    return exprName(this.expr)
  }

  private bin(op: BinaryOp, o: ColumnLike): Column {
    return new Column({ kind: 'binary', op, left: this.expr, right: toColumn(o).expr })
  }
}

/** A column by name; 'window.start' reads a field of a window struct. */
export function col(name: string): Column {
  return new Column({ kind: 'col', name })
}

/** Alias of {@link col}. */
export const column = col

/** A literal: numbers that are 32-bit integers are 'int', other numbers 'double', bigint 'long', Date 'timestamp'. */
export function lit(value: ColumnLike): Column {
  if (value instanceof Column) return value
  return new Column({ kind: 'lit', value, type: literalType(value) })
}

function literalType(v: unknown): DataType {
  if (typeof v === 'number') return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? 'int32' : 'float64'
  if (typeof v === 'bigint') return 'int64'
  if (typeof v === 'boolean') return 'boolean'
  if (v instanceof Date) return 'timestamp'
  return 'string'
}

export function toColumn(v: ColumnLike): Column {
  return v instanceof Column ? v : lit(v)
}

/** A column argument given as a name or a Column. */
export function toCol(v: string | Column): Column {
  return typeof v === 'string' ? col(v) : v
}
