/**
 * Spark SQL expressions stored in a table's metadata (CHECK constraints, generation expressions,
 * column defaults, legacy column invariants) → DuckDB SQL. They are kept as the user (or Spark)
 * wrote them and translated when a writer enforces them, with the same translator as `floe.sql`.
 * A stored expression computes over the row only: no table, no subquery, no file-reading function
 * (the translated text is checked by `checkExpression` as well).
 */
import { FloeError } from '../errors.js';
import { checkExpression } from './check-expression.js';
import { tokenize, type Token } from './lexer.js';
import { translateExpr } from './translate.js';

export interface StoredExprOptions {
  /** What the expression is, for error messages (e.g. "the generation expression of column d"). */
  what: string;
  /** Replaces a bare column reference (case-insensitive name) by SQL; undefined keeps the column. */
  column?: (name: string) => string | undefined;
}

const cache = new Map<string, string>();

function noTables(what: string) {
  return (): never => {
    throw new FloeError('DELTA_INVALID_STORED_EXPRESSION', `${what} reads a table; a stored expression can only compute over the row's columns.`);
  };
}

/** Translates a stored Spark SQL expression to DuckDB SQL (cached when no column rewrite applies). */
export async function storedExprToDuck(text: string, opts: StoredExprOptions): Promise<string> {
  if (!opts.column && cache.has(text)) return cache.get(text)!;
  let out: string;
  try {
    const tokens = tokenize(text);
    const column = opts.column ? (parts: Token[]): string | undefined => (parts.length === 1 ? opts.column!(parts[0]!.value) : undefined) : undefined;
    out = await translateExpr(tokens, { resolveTable: noTables(opts.what), resolveChanges: noTables(opts.what), column });
    checkExpression(out);
  } catch (e) {
    if (e instanceof FloeError && e.code === 'DELTA_INVALID_STORED_EXPRESSION') throw e;
    throw new FloeError('DELTA_INVALID_STORED_EXPRESSION', `floe cannot evaluate ${opts.what} (${text}): ${(e as Error).message}`, { expression: text });
  }
  if (!opts.column) {
    if (cache.size > 1000) cache.clear();
    cache.set(text, out);
  }
  return out;
}
