/**
 * `checkExpression(sql)`: the guard for SQL expression strings that reach DuckDB from the
 * TypeScript API (`df.filter`, `DeltaTable.delete/update`, merge conditions and values) and from
 * stored CHECK constraints. An expression may compute over the row; it may not end the statement
 * (`;`), hide text in a comment, open a subquery (`SELECT`, DuckDB's `FROM`-first queries), call a
 * function that reads files, the network or settings (`read_csv`, `read_parquet`, `glob`,
 * `getenv`…), or close more parentheses than it opened (breaking out of the `WHERE (…)` it is
 * wrapped in). Strings are scanned with DuckDB's rules (quotes doubled, no backslash escapes), so the
 * boundaries seen here are the ones DuckDB will see.
 */
import { FloeError } from '../errors.js';
import { FORBIDDEN_FUNCTIONS } from './functions.js';

export const UNSAFE_EXPRESSION = 'FLOE_UNSAFE_EXPRESSION';

interface Tok {
  kind: 'ident' | 'qident' | 'string' | 'number' | 'op';
  text: string;
  /** Upper-case identifier / unquoted identifier name. */
  value: string;
  at: number;
}

/** Statement keywords: none of them belongs in an expression. */
const STATEMENT_WORDS = new Set([
  'SELECT', 'WITH', 'VALUES', 'TABLE', 'PRAGMA', 'COPY', 'ATTACH', 'DETACH', 'INSTALL', 'LOAD', 'CALL', 'EXPORT', 'IMPORT', 'CREATE',
  'DROP', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'ALTER', 'SET', 'RESET', 'USE', 'SUMMARIZE', 'DESCRIBE', 'SHOW', 'PIVOT', 'UNPIVOT',
  'EXECUTE', 'PREPARE', 'DEALLOCATE', 'CHECKPOINT', 'VACUUM', 'BEGIN', 'COMMIT', 'ROLLBACK', 'ABORT', 'ANALYZE', 'EXPLAIN', 'UNION',
  'INTERSECT', 'EXCEPT', 'JOIN', 'LATERAL', 'RETURNING', 'INTO', 'TRUNCATE', 'GRANT', 'REVOKE', 'SECRET',
]);

/** Functions whose argument list legitimately contains FROM. */
const FROM_FUNCTIONS = new Set(['EXTRACT', 'SUBSTRING', 'TRIM', 'OVERLAY', 'POSITION']);

const UNSAFE_FUNCTION = /^(read_|parquet_|duckdb_|pragma_|sqlite_|postgres_|mysql_|iceberg_|delta_|json_execute|glob|query|load_|install_|http|s3|azure|gcs|ducklake|arrow_scan|sniff_)|_scan$|_metadata$/;
const UNSAFE_FUNCTIONS = new Set(['getenv', 'current_setting', 'set_config', 'which_secret', 'enable_profiling', 'disable_profiling', 'checkpoint', 'force_checkpoint', 'read_text', 'read_blob', 'system', 'shell']);

function unsafe(sql: string, at: number, why: string): FloeError {
  const shown = sql.length > 80 ? sql.slice(0, 80) + '…' : sql;
  return new FloeError(UNSAFE_EXPRESSION, `The SQL expression '${shown}' is not allowed: ${why} (at character ${at + 1}). An expression can only compute over the row's columns.`, { expression: sql, at });
}

function scan(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if ((c === '-' && sql[i + 1] === '-') || (c === '/' && sql[i + 1] === '*')) throw unsafe(sql, i, 'comments are not allowed in an expression');
    if (c === ';') throw unsafe(sql, i, "';' would end the statement");
    const start = i;
    if (c === "'") {
      const prev = out[out.length - 1];
      if (prev && prev.kind === 'ident' && prev.at + prev.text.length === i && prev.value === 'E') throw unsafe(sql, i, "escape strings (E'…') are not allowed");
      i++;
      for (;;) {
        if (i >= n) throw unsafe(sql, start, 'unclosed string literal');
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      out.push({ kind: 'string', text: sql.slice(start, i), value: '', at: start });
      continue;
    }
    if (c === '"') {
      i++;
      let v = '';
      for (;;) {
        if (i >= n) throw unsafe(sql, start, 'unclosed quoted identifier');
        if (sql[i] === '"') {
          if (sql[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i];
        i++;
      }
      out.push({ kind: 'qident', text: sql.slice(start, i), value: v, at: start });
      continue;
    }
    if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[i]!)) i++;
      const text = sql.slice(start, i);
      out.push({ kind: 'ident', text, value: text.toUpperCase(), at: start });
      continue;
    }
    if (/[0-9.]/.test(c)) {
      while (i < n && /[0-9A-Za-z_.]/.test(sql[i]!)) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '+' || sql[i + 1] === '-')) i++;
        i++;
      }
      out.push({ kind: 'number', text: sql.slice(start, i), value: '', at: start });
      continue;
    }
    if ('()[]{},+-*/%<>=!~&|^:@#'.includes(c)) {
      i++;
      out.push({ kind: 'op', text: c, value: c, at: start });
      continue;
    }
    // `$` (dollar quoting, parameters), backticks, backslashes, `?`…
    throw unsafe(sql, i, `the character '${c}' is not allowed`);
  }
  return out;
}

/**
 * Throws FLOE_UNSAFE_EXPRESSION unless `sql` is a single row expression: no second statement, no
 * comment, no subquery or table reference, no function reading files or settings, balanced
 * parentheses.
 */
export function checkExpression(sql: string): void {
  if (typeof sql !== 'string') throw new FloeError(UNSAFE_EXPRESSION, 'An SQL expression must be a string.');
  const toks = scan(sql);
  // Innermost open brackets, each with the function name before it (if any).
  const stack: { op: string; fn: string | null }[] = [];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    const next = toks[k + 1];
    const callsNext = next?.kind === 'op' && next.text === '(';
    if (t.kind === 'ident') {
      // `x.select` style member names are column / field names, not statements.
      const prev = toks[k - 1];
      const member = prev?.kind === 'op' && prev.text === '.';
      if (!member && STATEMENT_WORDS.has(t.value)) throw unsafe(sql, t.at, `${t.value} is not allowed in an expression (quote a column of that name: "${t.text}")`);
      if (!member && t.value === 'FROM') {
        const top = stack[stack.length - 1];
        if (!top || !top.fn || !FROM_FUNCTIONS.has(top.fn)) throw unsafe(sql, t.at, 'FROM (a subquery or table reference) is not allowed in an expression');
      }
    }
    if ((t.kind === 'ident' || t.kind === 'qident') && callsNext) {
      const name = (t.kind === 'ident' ? t.text : t.value).toLowerCase();
      const bare = name.replace(/^.*\./, '');
      if (FORBIDDEN_FUNCTIONS.has(bare) || UNSAFE_FUNCTIONS.has(bare) || UNSAFE_FUNCTION.test(bare)) throw unsafe(sql, t.at, `the function ${t.text}() reads files, the network or settings`);
    }
    if (t.kind === 'string' && callsNext) throw unsafe(sql, t.at, 'a string cannot be called as a function');
    if (t.kind === 'op') {
      if (t.text === '(' || t.text === '[' || t.text === '{') {
        const prev = toks[k - 1];
        stack.push({ op: t.text, fn: prev && (prev.kind === 'ident') ? prev.value : null });
      } else if (t.text === ')' || t.text === ']' || t.text === '}') {
        const open = stack.pop();
        const want = t.text === ')' ? '(' : t.text === ']' ? '[' : '{';
        if (!open || open.op !== want) throw unsafe(sql, t.at, `unbalanced '${t.text}'`);
      }
    }
  }
  if (stack.length) throw unsafe(sql, sql.length - 1, `unclosed '${stack[stack.length - 1]!.op}'`);
}
