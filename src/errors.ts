/**
 * Sluice's error hierarchy (after kafkajs): one base class with a stable `code`, a `retriable` flag
 * and the underlying `cause`, and one subclass per area. Codes are UPPER_SNAKE and never change
 * meaning; messages name the file, offset, column or option at fault.
 */
export class SluiceError extends Error {
  readonly code: string
  readonly retriable: boolean

  constructor(code: string, message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retriable = options.retriable ?? false
  }
}

/** Raised at `start()` / when a plan is built, before any data moves (Spark's AnalysisException). */
export class AnalysisError extends SluiceError {}

/** A source cannot read its input (bad file, malformed row under FAILFAST, broker unavailable). */
export class SourceError extends SluiceError {}

/** A sink cannot write its output. */
export class SinkError extends SluiceError {}

/** The checkpoint is missing, torn, or does not match the query. */
export class CheckpointError extends SluiceError {}

/** A WASM kernel or the worker pool failed. */
export class KernelError extends SluiceError {}

/** An option or configuration value is invalid. */
export class OptionError extends SluiceError {}
