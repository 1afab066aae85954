/**
 * Typed errors with stable codes. Codes borrow Spark's / delta-rs's names where they exist so that
 * users can search for them; messages say what happened, to which table and version, and what to do.
 */
export class FloeError extends Error {
  /** Stable machine-readable code, e.g. `DELTA_TABLE_NOT_FOUND`. */
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(`[${code}] ${message}`, options);
    this.name = 'FloeError';
    this.code = code;
    this.details = details;
  }
}

/** The path holds no Delta table (no `_delta_log` with a commit). */
export class TableNotFoundError extends FloeError {
  constructor(path: string) {
    super('DELTA_TABLE_NOT_FOUND', `No Delta table at ${path}: ${path}/_delta_log has no commit files. Check the path, or create the table first.`, { path });
    this.name = 'TableNotFoundError';
  }
}

/** The log is malformed: truncated JSON, missing required fields, gaps in versions, lying checkpoints. */
export class CorruptLogError extends FloeError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('DELTA_LOG_CORRUPT', message, details, options);
    this.name = 'CorruptLogError';
  }
}

/** The table needs a protocol feature floe cannot honour. */
export class UnsupportedFeatureError extends FloeError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('DELTA_UNSUPPORTED_FEATURES_FOR_READ', message, details);
    this.name = 'UnsupportedFeatureError';
  }
}

/** Bad arguments from the caller (invalid option values, unknown columns, ...). */
export class InvalidArgumentError extends FloeError {
  constructor(message: string, details: Record<string, unknown> = {}, code = 'FLOE_INVALID_ARGUMENT') {
    super(code, message, details);
    this.name = 'InvalidArgumentError';
  }
}

/** A put-if-absent lost: the object already exists. Storage-level; transactions turn it into a conflict check. */
export class ObjectExistsError extends FloeError {
  constructor(path: string) {
    super('FLOE_OBJECT_EXISTS', `Object already exists: ${path}`, { path });
    this.name = 'ObjectExistsError';
  }
}

/** An object that should exist does not. */
export class ObjectNotFoundError extends FloeError {
  constructor(path: string) {
    super('FLOE_OBJECT_NOT_FOUND', `Object not found: ${path}`, { path });
    this.name = 'ObjectNotFoundError';
  }
}

/** An engine error's message without its code prefix and the statement DuckDB quotes (floe's generated SQL). */
export function engineMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/^\[[A-Z_]+\] /, '').replace(/\s*LINE \d+:[\s\S]*$/, '').trim();
}

/**
 * A data file the Delta log references is missing (DuckDB found no file locally, or a remote store
 * answered not found while staging it): the same error on every store.
 */
export function missingDataFileError(file: string, cause?: unknown): FloeError {
  return new FloeError('DELTA_FILE_NOT_FOUND', `A data file referenced by the Delta log is missing: ${file}. The table is damaged, or the file was removed by VACUUM while still referenced; restore the file or time travel to a version that does not need it.`, { file }, cause === undefined ? undefined : { cause });
}

/**
 * A request to remote object storage failed after retries. `retrySafe` says whether running the same
 * operation again is safe: true when nothing was committed (a failed upload or read), false when a
 * commit's outcome is unknown (its log entry may or may not have been written: check the history).
 */
export class StorageError extends FloeError {
  readonly retrySafe: boolean;
  constructor(code: string, message: string, retrySafe: boolean, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, `${message} ${retrySafe ? 'Nothing was committed: retrying the operation is safe.' : 'The commit may or may not have been written: check DESCRIBE HISTORY (its txnId) before retrying.'}`, { ...details, retrySafe }, options);
    this.name = 'StorageError';
    this.retrySafe = retrySafe;
  }
}

/** True when a commit's outcome is unknown: files it references must not be cleaned up (the commit may exist). */
export function commitOutcomeUnknown(e: unknown): boolean {
  return e instanceof StorageError && !e.retrySafe;
}
