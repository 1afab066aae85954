/**
 * The guard on SQL expression strings that callers hand to the TypeScript API (filters, DML
 * predicates, SET values, merge conditions): they may compute over rows, never end the statement,
 * open a subquery or read files (see sql/check-expression.ts). floe's own SQL front end validates
 * whole statements itself, so what it passes down runs inside `runTrusted` and is not re-checked.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { checkExpression } from './sql/check-expression.js';

const trusted = new AsyncLocalStorage<boolean>();

/** Runs `fn` with expressions that floe's SQL front end already validated. */
export function runTrusted<T>(fn: () => Promise<T>): Promise<T> {
  return trusted.run(true, fn);
}

/** Throws FLOE_UNSAFE_EXPRESSION for an unsafe caller expression (outside `runTrusted`). */
export function guardExpression(...exprs: (string | undefined)[]): void {
  if (trusted.getStore()) return;
  for (const e of exprs) if (e !== undefined) checkExpression(e);
}
