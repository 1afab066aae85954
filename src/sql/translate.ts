/**
 * Spark SQL query bodies and expressions → DuckDB SQL. Works on tokens: identifiers are re-quoted
 * through `quoteIdent`, every string literal is re-quoted through `quoteString` (so no value reaches
 * DuckDB as raw text), Spark functions are rewritten through the table in functions.ts, and table
 * references in FROM / JOIN (with `VERSION AS OF`, `TIMESTAMP AS OF`, `@v` and `table_changes`)
 * are replaced by the SQL floe produces for them. What cannot be translated fails with an analysis
 * error naming the construct, its line and its column.
 */
import { duckType, quoteIdent, quoteString } from '../core/schema.js';
import { Cursor, RESERVED, splitTopLevel } from './cursor.js';
import { analysisErrorAt, parseErrorAt, tokenDesc } from './errors.js';
import { FORBIDDEN_FUNCTIONS, FUNCTIONS, INTEGRAL_CASTS, UNSUPPORTED_FUNCTIONS, type JsonPathStep, jsonPathSql } from './functions.js';
import type { Token } from './lexer.js';
import { parseType } from './types.js';

/** Time travel on a table reference. */
export type TimeTravel = { versionAsOf: number } | { timestampAsOf: string } | undefined;

/** A table reference in a query: name parts (`db.t`, `delta.`/p``) and its time travel. */
export interface TableRef {
  parts: Token[];
  travel: TimeTravel;
}

export interface TranslateContext {
  /** DuckDB SQL (a SELECT) for a table reference. */
  resolveTable(ref: TableRef): Promise<string>;
  /** DuckDB SQL for `table_changes(…)` / `table_changes_by_path(…)`. */
  resolveChanges(fn: Token, args: Token[][]): Promise<string>;
  /** DuckDB SQL for `event_log('pipeline name or path')` (a pipeline's event log as a table). */
  resolveEventLog?(fn: Token, args: Token[][]): Promise<string>;
  /** Optional rewrite of bare column names (MERGE qualifies them with the side they belong to). */
  column?: (parts: Token[]) => string | undefined;
}

interface Scope {
  ctes: Set<string>;
}

interface Piece {
  text: string;
  ws: boolean;
  /** An operand (identifier, literal, call, parenthesised group), not an operator or keyword. */
  term: boolean;
  /** The raw text of a string literal piece, for Spark's adjacent-literal concatenation. */
  str?: string;
}

const TABLE_FUNCTIONS = new Set(['table_changes', 'table_changes_by_path', 'range', 'explode', 'unnest', 'generate_series']);

/** Keywords that end a FROM clause's table list. */
const FROM_END = new Set(['WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'OFFSET', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'WINDOW', 'QUALIFY', 'SELECT', 'FETCH']);

/** Spark constructs with no translation (yet). */
const UNSUPPORTED_KWS: Record<string, string> = {
  'LATERAL VIEW': 'LATERAL VIEW', 'SORT BY': 'SORT BY', 'DISTRIBUTE BY': 'DISTRIBUTE BY', 'CLUSTER BY': 'CLUSTER BY',
  'TABLESAMPLE': 'TABLESAMPLE', 'PIVOT': 'PIVOT', 'UNPIVOT': 'UNPIVOT', 'TRANSFORM': 'TRANSFORM … USING',
};

const KEYWORDS_NOT_COLUMNS = new Set([...RESERVED, 'INTERVAL', 'DATE', 'TIMESTAMP', 'X', 'ROWS', 'RANGE', 'PRECEDING', 'FOLLOWING', 'UNBOUNDED', 'CURRENT', 'ROW', 'ESCAPE', 'FILTER', 'IGNORE', 'RESPECT', 'WITHIN', 'AT', 'ZONE', 'DIV', 'RECURSIVE', 'LAST', 'FIRST', 'CURRENT_DATE', 'CURRENT_TIMESTAMP', 'LOCAL', 'EXCLUDE', 'YEAR', 'MONTH', 'DAY', 'HOUR', 'MINUTE', 'SECOND', 'DAYS', 'HOURS', 'MINUTES', 'SECONDS', 'MONTHS', 'YEARS', 'WEEK', 'WEEKS']);

const MUL_OPS = new Set(['*', '/', '%', '//']);

/** Translates a Spark query (SELECT / WITH / VALUES / FROM-first) into DuckDB SQL. */
export async function translateQuery(tokens: Token[], ctx: TranslateContext): Promise<string> {
  return new Translator(ctx).run(stripEof(tokens), { ctes: new Set() }, true);
}

/** Translates a Spark expression into DuckDB SQL (subqueries inside it are translated as queries). */
export async function translateExpr(tokens: Token[], ctx: TranslateContext): Promise<string> {
  return new Translator(ctx).run(stripEof(tokens), { ctes: new Set() }, false);
}

function stripEof(tokens: Token[]): Token[] {
  const out = tokens.filter((t) => t.kind !== 'eof');
  const semi = out.find((t) => t.kind === 'semi');
  if (semi) throw parseErrorAt(semi, 'A second statement cannot appear inside an expression or query');
  return out;
}

/** The index of the `)` / `]` matching the opener at `open`. */
/** Index of the bracket closing the one at `open` (`(`, `[` or `{`); a mismatched or missing close is a parse error. */
export function matching(toks: Token[], open: number): number {
  const o = toks[open]!.text;
  const c = o === '(' ? ')' : o === '[' ? ']' : '}';
  let depth = 0;
  for (let i = open; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind !== 'op') continue;
    if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
    else if (t.text === ')' || t.text === ']' || t.text === '}') {
      depth--;
      if (depth === 0) {
        if (t.text !== c) throw parseErrorAt(t, `Mismatched '${t.text}': expected '${c}'`);
        return i;
      }
    }
  }
  throw parseErrorAt(toks[open]!, `Unclosed '${o}'`);
}

function isKw(t: Token | undefined, w: string): boolean {
  return !!t && t.kind === 'ident' && t.upper === w;
}
function isOp(t: Token | undefined, o: string): boolean {
  return !!t && t.kind === 'op' && t.text === o;
}
function isName(t: Token | undefined): boolean {
  return !!t && (t.kind === 'ident' || t.kind === 'qident');
}
/**
 * The path of `expr:path` from `i` (Databricks' JSON path expression): a first identifier or
 * bracket, then `.identifier`, `['field']`, `[n]` or `[*]` steps written without spaces before them.
 */
function jsonPathSteps(toks: Token[], i: number, colon: Token): { steps: JsonPathStep[]; next: number } {
  const steps: JsonPathStep[] = [];
  const bracket = (k: number): number => {
    const inner = toks[k + 1];
    const close = toks[k + 2];
    if (!isOp(close, ']')) throw parseErrorAt(inner ?? colon, "A JSON path bracket holds one 'field' string, an index or *, then ']'");
    if (inner!.kind === 'string') steps.push({ kind: 'field', name: inner!.value });
    else if (inner!.kind === 'number' && /^\d+$/.test(inner!.text)) steps.push({ kind: 'index', index: Number(inner!.text) });
    else if (isOp(inner, '*')) steps.push({ kind: 'all' });
    else throw parseErrorAt(inner!, "A JSON path bracket holds one 'field' string, a non-negative index or *");
    return k + 3;
  };
  let k = i;
  if (toks[k] && toks[k]!.kind !== 'eof' && toks[k]!.ws) throw parseErrorAt(toks[k]!, "Expected a JSON path right after ':', without a space (as in raw:store.fruit[0].type)");
  if (isName(toks[k])) {
    steps.push({ kind: 'key', name: toks[k]!.value });
    k++;
  } else if (isOp(toks[k], '[')) k = bracket(k);
  else throw parseErrorAt(toks[k] ?? colon, "Expected a JSON path after ':' (a field name or [...], as in raw:store.fruit[0].type)");
  for (;;) {
    const t = toks[k];
    if (isOp(t, '.') && !t!.ws && isName(toks[k + 1]) && !toks[k + 1]!.ws) {
      steps.push({ kind: 'key', name: toks[k + 1]!.value });
      k += 2;
    } else if (isOp(t, '[') && !t!.ws) k = bracket(k);
    else return { steps, next: k };
  }
}

/**
 * Spark's name for an unaliased select item where DuckDB's differs: `count(*)` is `count(1)`, and
 * `col:path` (or `col:path::type`) is named after the path's last field. Null: DuckDB's name stands.
 */
const ARITHMETIC = new Set(['+', '-', '*', '/', '%', '||']);

/**
 * A select item that is an expression without an alias, for certain: it ends with `)` (a call, a
 * CAST, a parenthesised group: an alias would follow it) or with an operand right after an arithmetic
 * operator (`a / b`). Anything else (a column, `*`, a possible implicit alias) is left alone.
 */
function unaliasedExpression(item: Token[]): boolean {
  const last = item[item.length - 1];
  const prev = item[item.length - 2];
  if (!last || item.length < 2) return false;
  // (Star expansions name their own columns: *, t.*, * EXCEPT (…), COLUMNS(…).)
  const star = item.findIndex((t) => isOp(t, '*'));
  if (isOp(item[0], '*') || (star > 0 && isOp(item[star - 1], '.')) || isKw(item[0], 'COLUMNS')) return false;
  if (isOp(last, ')')) return true;
  return (last.kind === 'ident' || last.kind === 'qident' || last.kind === 'number' || last.kind === 'string') && prev?.kind === 'op' && ARITHMETIC.has(prev.text);
}

/** Spark's name for an unaliased expression, near enough: its text (string literals unquoted, single spaces), a top-level operator's expression in parentheses. */
function sparkExpressionName(item: Token[]): string {
  let depth = 0;
  let topOp = false;
  let out = '';
  for (const [k, t] of item.entries()) {
    if (isOp(t, '(')) depth++;
    else if (isOp(t, ')')) depth--;
    else if (depth === 0 && t.kind === 'op' && ARITHMETIC.has(t.text)) topOp = true;
    const text = t.kind === 'string' ? t.value : t.kind === 'qident' ? t.value : t.text;
    out += (k > 0 && t.ws ? ' ' : '') + text;
  }
  return topOp ? `(${out})` : out;
}

function sparkItemName(item: Token[]): string | null {
  if (item.length === 4 && isKw(item[0], 'COUNT') && isOp(item[1], '(') && isOp(item[2], '*') && isOp(item[3], ')')) return 'count(1)';
  return jsonPathItemName(item);
}

/** The name of a select item that is just `col:path[::type]`: the path's last field (null otherwise). */
function jsonPathItemName(item: Token[]): string | null {
  let k = 0;
  if (!isName(item[k])) return null;
  k++;
  while (isOp(item[k], '.') && isName(item[k + 1])) k += 2;
  if (!isOp(item[k], ':')) return null;
  let parsed: { steps: JsonPathStep[]; next: number };
  try {
    parsed = jsonPathSteps(item, k + 1, item[k]!);
  } catch {
    return null;
  }
  k = parsed.next;
  if (isOp(item[k], '::')) {
    const c = new Cursor([...item.slice(k + 1), { ...item[k]!, kind: 'eof', text: '' }]);
    try {
      parseType(c);
    } catch {
      return null;
    }
    k += 1 + c.i;
  }
  if (k !== item.length) return null;
  const named = parsed.steps.filter((st): st is { kind: 'key' | 'field'; name: string } => st.kind === 'key' || st.kind === 'field');
  return named.length ? named[named.length - 1]!.name : null;
}

const SELECT_LIST_END = new Set(['FROM', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'WINDOW', 'QUALIFY', 'CLUSTER', 'DISTRIBUTE', 'SORT', 'INTO']);

/** Keywords that end an ORDER BY list (of a query or a window). */
const ORDER_BY_END = new Set(['LIMIT', 'OFFSET', 'FETCH', 'ROWS', 'RANGE', 'GROUPS', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'WINDOW', 'QUALIFY']);

/**
 * The NULLS clause to add after each top-level ORDER BY item that has none, as [index of the token
 * after the item, text]: Spark sorts NULLs first ascending and last descending; DuckDB sorts them
 * last either way (a session-wide default_null_order would change floe's own queries too).
 */
function orderByNullsClauses(toks: Token[]): [number, string][] {
  const out: [number, string][] = [];
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'op' && (t.text === '(' || t.text === '[' || t.text === '{')) depth++;
    else if (t.kind === 'op' && (t.text === ')' || t.text === ']' || t.text === '}')) depth--;
    if (depth !== 0 || !isKw(t, 'ORDER') || !isKw(toks[i + 1], 'BY')) continue;
    let d = 0;
    let start = i + 2;
    let k = start;
    const endItem = (end: number): void => {
      if (end <= start) return;
      const last = toks[end - 1]!;
      if (isKw(toks[end - 2], 'NULLS') && (isKw(last, 'FIRST') || isKw(last, 'LAST'))) return;
      out.push([end, isKw(last, 'DESC') ? 'NULLS LAST' : 'NULLS FIRST']);
    };
    for (; k < toks.length; k++) {
      const x = toks[k]!;
      if (x.kind === 'op' && (x.text === '(' || x.text === '[' || x.text === '{')) d++;
      else if (x.kind === 'op' && (x.text === ')' || x.text === ']' || x.text === '}')) d--;
      else if (d === 0 && isOp(x, ',')) {
        endItem(k);
        start = k + 1;
      } else if (d === 0 && x.kind === 'ident' && ORDER_BY_END.has(x.upper)) break;
    }
    endItem(k);
    i = k - 1;
  }
  return out;
}

/** Is the FROM at `i` part of `IS [NOT] DISTINCT FROM` (an operator, not a FROM clause)? */
function isDistinctFrom(toks: Token[], i: number): boolean {
  return isKw(toks[i - 1], 'DISTINCT') && (isKw(toks[i - 2], 'IS') || (isKw(toks[i - 2], 'NOT') && isKw(toks[i - 3], 'IS')));
}

function startsQuery(toks: Token[], i: number): boolean {
  const t = toks[i];
  return isKw(t, 'SELECT') || isKw(t, 'WITH') || isKw(t, 'VALUES') || isKw(t, 'FROM') || (isOp(t, '(') && startsQuery(toks, i + 1));
}

/**
 * `a / b` with Spark's result for a zero divisor: NULL (Spark without ANSI mode; floe's `%` and `div`
 * give NULL too), where DuckDB gives ±Infinity. The divisor is the operand right after `/` (with its
 * signs), or a CASE … END; a non-zero number literal needs no guard.
 */
function guardDivisions(pieces: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (let k = 0; k < pieces.length; k++) {
    const p = pieces[k]!;
    out.push(p);
    if (p.term || p.text !== '/') continue;
    let e = k + 1;
    while (e < pieces.length && !pieces[e]!.term && (pieces[e]!.text === '-' || pieces[e]!.text === '+')) e++;
    const operand = pieces[e];
    if (operand && !operand.term && /^case$/i.test(operand.text)) {
      // CASE … END: the divisor runs to its matching END.
      let depth = 0;
      let end = e;
      for (; end < pieces.length; end++) {
        const t = pieces[end]!;
        if (t.term) continue;
        if (/^case$/i.test(t.text)) depth++;
        else if (/^end$/i.test(t.text) && --depth === 0) break;
      }
      if (end >= pieces.length) continue;
      out.push({ text: `nullif(${join(pieces.slice(k + 1, end + 1), false)}, 0)`, ws: pieces[k + 1]!.ws, term: true });
      k = end;
      continue;
    }
    if (!operand?.term) continue;
    const text = join(pieces.slice(k + 1, e + 1), false);
    if (/^[+-]*(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(text) && /[1-9]/.test(text.replace(/e.*$/i, ''))) continue;
    out.push({ text: `nullif(${text}, 0)`, ws: pieces[k + 1]!.ws, term: true });
    k = e;
  }
  return out;
}

/**
 * `'text' || x`: x as Spark writes it as a string (a TIMESTAMP without DuckDB's '+00', as concat()
 * does), when x is one operand next to a string literal (not part of a product or sum, which binds
 * first); `||` keeps its NULL result for a NULL operand.
 */
function spellConcatOperands(pieces: Piece[]): Piece[] {
  const out = pieces.slice();
  // The operand stands alone when its other neighbour is nothing, another ||, a comparison, a comma or a keyword.
  const alone = (p: Piece | undefined): boolean => !p || (!p.term && (/^(\|\||,|=|==|<>|!=|<|>|<=|>=|<=>)$/.test(p.text) || /^[A-Za-z_]/.test(p.text)));
  const wrap = (i: number): void => {
    const p = out[i]!;
    if (p.str !== undefined || p.text.startsWith('floe_spark_string(')) return;
    out[i] = { ...p, text: `floe_spark_string(${p.text})` };
  };
  for (let k = 1; k < out.length - 1; k++) {
    if (out[k]!.term || out[k]!.text !== '||') continue;
    const l = out[k - 1]!;
    const r = out[k + 1]!;
    if (l.str !== undefined && r.term && alone(out[k + 2])) wrap(k + 1);
    if (r.str !== undefined && l.term && alone(out[k - 2])) wrap(k - 1);
  }
  return out;
}

function join(pieces: Piece[], guard = true): string {
  let s = '';
  for (const p of guard ? guardDivisions(spellConcatOperands(pieces)) : pieces) {
    if (!s) s = p.text;
    else if (p.ws || (/[A-Za-z0-9_"'$]$/.test(s) && /^[A-Za-z0-9_"'$]/.test(p.text))) s += ' ' + p.text;
    else s += p.text;
  }
  return s;
}

class Translator {
  constructor(private readonly ctx: TranslateContext) {}

  /** Translates a token range; `query` enables FROM-clause handling at this level. */
  async run(toks: Token[], scope: Scope, query: boolean): Promise<string> {
    const pieces: Piece[] = [];
    let i = 0;
    let expectTable = false;
    let inFrom = false;
    const local: Scope = { ctes: new Set(scope.ctes) };
    // Spark's default NULL order (ascending NULLS FIRST, descending NULLS LAST), made explicit.
    const nullOrder = orderByNullsClauses(toks);
    let nextNulls = 0;
    // The select list's current item (token index), to name items as Spark does where DuckDB differs.
    let itemStart: number | null = null;
    /** Where the current item's pieces start (null when its first token was not reached on its own). */
    let itemPieces: number | null = null;
    const endItem = (end: number): void => {
      if (itemStart === null) return;
      const item = toks.slice(itemStart, end);
      let name = sparkItemName(item);
      // An unaliased expression floe rewrote (a macro, a guarded division, …) is named by its Spark
      // text, not by the DuckDB text (a CTAS would keep that as the column's name).
      if (name === null && itemPieces !== null && unaliasedExpression(item)) {
        const written = join(pieces.slice(itemPieces)).replace(/\s+/g, '');
        const source = item.map((x) => x.text).join('').replace(/\s+/g, '');
        if (written.toLowerCase() !== source.toLowerCase()) name = sparkExpressionName(item);
      }
      if (name !== null) pieces.push({ text: `AS ${quoteIdent(name)}`, ws: true, term: false });
    };
    while (i < toks.length) {
      while (nextNulls < nullOrder.length && nullOrder[nextNulls]![0] <= i) pieces.push({ text: nullOrder[nextNulls++]![1], ws: true, term: false });
      if (query && itemStart === i) itemPieces = pieces.length;
      const t = toks[i]!;
      const ws = t.ws || i === 0;
      if (query && itemStart !== null) {
        if (isOp(t, ',')) {
          endItem(i);
          itemStart = i + 1;
          itemPieces = null;
        } else if (t.kind === 'ident' && SELECT_LIST_END.has(t.upper) && !isDistinctFrom(toks, i)) {
          endItem(i);
          itemStart = null;
        }
      }
      if (query && isKw(t, 'SELECT')) {
        itemStart = isKw(toks[i + 1], 'DISTINCT') || isKw(toks[i + 1], 'ALL') ? i + 2 : i + 1;
        itemPieces = null;
      }
      // WITH name AS (query), … : common table expressions
      if (query && isKw(t, 'WITH')) {
        pieces.push({ text: 'WITH', ws, term: false });
        i++;
        if (isKw(toks[i], 'RECURSIVE')) {
          pieces.push({ text: 'RECURSIVE', ws: true, term: false });
          i++;
        }
        for (;;) {
          const name = toks[i];
          if (!isName(name)) throw parseErrorAt(name ?? t, `Expected a name for the WITH query but found ${name ? tokenDesc(name) : 'end of input'}`);
          local.ctes.add(name!.value.toLowerCase());
          pieces.push({ text: quoteIdent(name!.value), ws: true, term: true });
          i++;
          if (isOp(toks[i], '(')) {
            const close = matching(toks, i);
            const cols = splitTopLevel(toks.slice(i + 1, close)).map((c) => {
              if (c.length !== 1 || !isName(c[0])) throw parseErrorAt(c[0] ?? toks[i]!, 'Expected a column name');
              return quoteIdent(c[0]!.value);
            });
            pieces.push({ text: `(${cols.join(', ')})`, ws: true, term: false });
            i = close + 1;
          }
          if (!isKw(toks[i], 'AS')) throw parseErrorAt(toks[i] ?? t, `Expected AS in the WITH clause but found ${toks[i] ? tokenDesc(toks[i]!) : 'end of input'}`);
          i++;
          if (!isOp(toks[i], '(')) throw parseErrorAt(toks[i] ?? t, `Expected '(' after AS in the WITH clause`);
          const close = matching(toks, i);
          pieces.push({ text: `AS (${await this.run(toks.slice(i + 1, close), local, true)})`, ws: true, term: false });
          i = close + 1;
          if (isOp(toks[i], ',')) {
            pieces.push({ text: ',', ws: false, term: false });
            i++;
            continue;
          }
          break;
        }
        continue;
      }
      if (t.kind === 'ident') {
        const two = `${t.upper} ${toks[i + 1]?.kind === 'ident' ? toks[i + 1]!.upper : ''}`;
        const construct = UNSUPPORTED_KWS[two] ?? (t.upper === 'TABLESAMPLE' || t.upper === 'PIVOT' || t.upper === 'UNPIVOT' ? UNSUPPORTED_KWS[t.upper] : undefined);
        if (construct && (query || t.upper !== 'TRANSFORM')) throw analysisErrorAt(t, `${construct} is not supported by floe SQL`, { construct });
      }
      if (query && t.kind === 'ident' && (t.upper === 'JOIN' || (t.upper === 'FROM' && !isDistinctFrom(toks, i)))) {
        pieces.push({ text: t.upper, ws, term: false });
        i++;
        expectTable = true;
        inFrom = true;
      }
      if (expectTable) {
        i = await this.tableFactor(toks, i, pieces, local);
        expectTable = false;
        continue;
      }
      if (inFrom && isOp(t, ',')) {
        pieces.push({ text: ',', ws: false, term: false });
        i++;
        expectTable = true;
        continue;
      }
      if (inFrom && t.kind === 'ident' && FROM_END.has(t.upper)) inFrom = false;
      i = await this.expressionToken(toks, i, pieces, local, query);
    }
    while (nextNulls < nullOrder.length) pieces.push({ text: nullOrder[nextNulls++]![1], ws: true, term: false });
    if (query) endItem(toks.length);
    return join(pieces);
  }

  /** One table factor at `i` (a name with time travel, a subquery, or a table function) and its alias. */
  private async tableFactor(toks: Token[], i: number, pieces: Piece[], scope: Scope): Promise<number> {
    const t = toks[i];
    if (!t) throw parseErrorAt(toks[i - 1]!, 'Expected a table after FROM / JOIN');
    let aliasDefault: string | undefined;
    if (isKw(t, 'LATERAL')) throw analysisErrorAt(t, 'LATERAL subqueries are not supported by floe SQL', { construct: 'LATERAL' });
    if (isOp(t, '(')) {
      const close = matching(toks, i);
      if (!startsQuery(toks, i + 1)) throw analysisErrorAt(t, 'A parenthesised join in FROM is not supported; use a subquery (SELECT …)', { construct: 'parenthesised join' });
      pieces.push({ text: `(${await this.run(toks.slice(i + 1, close), scope, true)})`, ws: t.ws, term: true });
      i = close + 1;
    } else if (t.kind === 'string') {
      throw analysisErrorAt(t, `A file path as a table ('${t.value}') is not supported; use delta.\`/path/to/table\``, { construct: 'file path table' });
    } else if (isName(t) && isOp(toks[i + 1], '(')) {
      const fname = t.value.toLowerCase();
      const close = matching(toks, i + 1);
      const args = toks.slice(i + 2, close);
      const argList = args.length ? splitTopLevel(args) : [];
      if (fname === 'table_changes' || fname === 'table_changes_by_path') {
        pieces.push({ text: `(${await this.ctx.resolveChanges(t, argList)})`, ws: true, term: true });
        aliasDefault = fname;
      } else if (fname === 'event_log' && this.ctx.resolveEventLog) {
        pieces.push({ text: `(${await this.ctx.resolveEventLog(t, argList)})`, ws: true, term: true });
        aliasDefault = fname;
      } else if (TABLE_FUNCTIONS.has(fname)) {
        const translated = await Promise.all(argList.map((a) => this.run(a, scope, false)));
        if (fname === 'range') {
          // Spark's range(end) / range(start, end[, step]) yields one BIGINT column named id.
          if (translated.length < 1 || translated.length > 4) throw analysisErrorAt(t, 'range() takes (end), (start, end), (start, end, step) or (start, end, step, numPartitions)', { construct: 'range' });
          pieces.push({ text: `(SELECT range AS id FROM range(${translated.slice(0, 3).join(', ')}))`, ws: true, term: true });
          aliasDefault = 'range';
        } else pieces.push({ text: `${fname === 'explode' ? 'unnest' : fname}(${translated.join(', ')})`, ws: true, term: true });
      } else {
        throw analysisErrorAt(t, `Table function ${t.value}() is not supported by floe SQL`, { construct: t.value });
      }
      i = close + 1;
    } else if (isName(t)) {
      const parts: Token[] = [t];
      i++;
      while (isOp(toks[i], '.') && isName(toks[i + 1])) {
        parts.push(toks[i + 1]!);
        i += 2;
      }
      let travel: TimeTravel;
      // t@v5 / t@20240101000000000
      if (isOp(toks[i], '@') && toks[i + 1] && !toks[i]!.ws) {
        const v = toks[i + 1]!;
        const m = /^v(\d+)$/i.exec(v.text);
        if (m) travel = { versionAsOf: Number(m[1]) };
        else if (v.kind === 'number' && /^\d{17}$/.test(v.text)) {
          const s = v.text;
          travel = { timestampAsOf: `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)} ${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12, 14)}.${s.slice(14)}` };
        } else throw parseErrorAt(v, `Expected @v<version> or @yyyyMMddHHmmssSSS after the table name but found ${tokenDesc(v)}`);
        i += 2;
      }
      const c = new Cursor(toks.slice(i));
      c.acceptKw('FOR');
      if (c.acceptKw('VERSION', 'AS', 'OF') || c.acceptKw('SYSTEM_VERSION', 'AS', 'OF')) {
        travel = { versionAsOf: c.integer('a version number') };
        i += c.i;
      } else if (c.acceptKw('TIMESTAMP', 'AS', 'OF') || c.acceptKw('SYSTEM_TIME', 'AS', 'OF')) {
        travel = { timestampAsOf: c.string('a timestamp string').value };
        i += c.i;
      }
      const single = parts.length === 1 ? parts[0]!.value.toLowerCase() : undefined;
      if (single !== undefined && scope.ctes.has(single) && !travel) {
        pieces.push({ text: quoteIdent(parts[0]!.value), ws: true, term: true });
      } else {
        pieces.push({ text: `(${await this.ctx.resolveTable({ parts, travel })})`, ws: true, term: true });
        aliasDefault = parts[parts.length - 1]!.value;
      }
    } else {
      throw parseErrorAt(t, `Expected a table name or subquery but found ${tokenDesc(t)}`);
    }
    // alias: AS name [(cols)] | name
    let alias: Token | undefined;
    if (isKw(toks[i], 'AS')) {
      if (!isName(toks[i + 1])) throw parseErrorAt(toks[i + 1] ?? toks[i]!, 'Expected an alias after AS');
      alias = toks[i + 1];
      i += 2;
    } else if (toks[i] && ((toks[i]!.kind === 'ident' && !RESERVED.has(toks[i]!.upper)) || toks[i]!.kind === 'qident')) {
      alias = toks[i];
      i++;
    }
    if (alias) {
      let text = `AS ${quoteIdent(alias.value)}`;
      if (isOp(toks[i], '(')) {
        const close = matching(toks, i);
        const cols = splitTopLevel(toks.slice(i + 1, close)).map((c) => {
          if (c.length !== 1 || !isName(c[0])) throw parseErrorAt(c[0] ?? toks[i]!, 'Expected a column name in the alias list');
          return quoteIdent(c[0]!.value);
        });
        text += `(${cols.join(', ')})`;
        i = close + 1;
      }
      pieces.push({ text, ws: true, term: false });
    } else if (aliasDefault) {
      pieces.push({ text: `AS ${quoteIdent(aliasDefault)}`, ws: true, term: false });
    }
    return i;
  }

  /** One token (or construct) of an expression at `i`; returns the next index. */
  private async expressionToken(toks: Token[], i: number, pieces: Piece[], scope: Scope, query: boolean): Promise<number> {
    const t = toks[i]!;
    const ws = t.ws;
    switch (t.kind) {
      case 'string': {
        const last = pieces[pieces.length - 1];
        // 'a' 'b' is 'ab' in Spark
        if (last?.str !== undefined) {
          last.str += t.value;
          last.text = quoteString(last.str);
        } else pieces.push({ text: quoteString(t.value), ws, term: true, str: t.value });
        return i + 1;
      }
      case 'number': {
        const m = /^(.*?)(BD|[LSYDF])$/i.exec(t.text);
        if (m) {
          const type = { L: 'BIGINT', S: 'SMALLINT', Y: 'TINYINT', D: 'DOUBLE', F: 'FLOAT', BD: 'DECIMAL(38,18)' }[m[2]!.toUpperCase()]!;
          pieces.push({ text: `CAST(${m[1]} AS ${type})`, ws, term: true });
        } else pieces.push({ text: t.text, ws, term: true });
        return i + 1;
      }
      case 'qident':
      case 'ident':
        return this.nameOrCall(toks, i, pieces, scope);
      case 'op':
        break;
      default:
        throw parseErrorAt(t, `Unexpected ${tokenDesc(t)}`);
    }
    // operators
    switch (t.text) {
      case '(': {
        const close = matching(toks, i);
        const inner = toks.slice(i + 1, close);
        const text = startsQuery(toks, i + 1) ? await this.run(inner, scope, true) : await this.run(inner, scope, false);
        pieces.push({ text: `(${text})`, ws, term: true });
        return this.postfix(toks, close + 1, pieces, scope);
      }
      case '[': {
        const close = matching(toks, i);
        const last = pieces[pieces.length - 1];
        if (last?.term && !ws) last.text = await this.indexExpr(last.text, toks.slice(i + 1, close), scope);
        else pieces.push({ text: `[${await this.run(toks.slice(i + 1, close), scope, false)}]`, ws, term: true });
        return this.postfix(toks, close + 1, pieces, scope);
      }
      case ')': case ']': case '}':
        throw parseErrorAt(t, `Unmatched '${t.text}'`);
      case '==':
        pieces.push({ text: '=', ws, term: false });
        return i + 1;
      case '!':
        pieces.push({ text: 'NOT', ws: true, term: false });
        return i + 1;
      case '<=>':
        pieces.push({ text: 'IS NOT DISTINCT FROM', ws: true, term: false });
        return i + 1;
      case '::': {
        const c = new Cursor([...toks.slice(i + 1), { ...t, kind: 'eof', text: '' }]);
        const type = parseType(c);
        const last = pieces[pieces.length - 1];
        if (!last?.term) throw parseErrorAt(t, "Expected an expression before '::'");
        last.text = castSql('CAST', last.text, duckType(type));
        return i + 1 + c.i;
      }
      case ':': {
        const last = pieces[pieces.length - 1];
        if (!last?.term) throw parseErrorAt(t, "Expected a JSON string expression before ':' (a JSON path: col:field.nested[0])");
        const { steps, next } = jsonPathSteps(toks, i + 1, t);
        last.text = jsonPathSql(last.text, steps);
        return next;
      }
      case '{': case '@': case '?': case '=>': case '&&':
        throw parseErrorAt(t, `Unexpected ${tokenDesc(t)}`);
      case '*': {
        // SELECT * EXCEPT (a, b) → * EXCLUDE (a, b)
        pieces.push({ text: '*', ws, term: !pieces.length || !pieces[pieces.length - 1]!.term });
        if (query && isKw(toks[i + 1], 'EXCEPT') && isOp(toks[i + 2], '(')) {
          pieces.push({ text: 'EXCLUDE', ws: true, term: false });
          return i + 2;
        }
        return i + 1;
      }
      default:
        pieces.push({ text: t.text, ws, term: false });
        return i + 1;
    }
  }

  private async indexExpr(base: string, idx: Token[], scope: Scope): Promise<string> {
    const e = await this.run(idx, scope, false);
    // A string key indexes a map; anything else indexes an array (Spark 0-based, DuckDB 1-based).
    if (idx.length === 1 && idx[0]!.kind === 'string') return `${base}[${e}]`;
    return `list_extract(${base}, (${e}) + 1)`;
  }

  /** `.field` and `[i]` after an operand. */
  private async postfix(toks: Token[], i: number, pieces: Piece[], scope: Scope): Promise<number> {
    for (;;) {
      const t = toks[i];
      if (isOp(t, '.') && isName(toks[i + 1]) && !t!.ws) {
        pieces[pieces.length - 1]!.text += `.${quoteIdent(toks[i + 1]!.value)}`;
        i += 2;
        continue;
      }
      if (isOp(t, '[') && !t!.ws) {
        const close = matching(toks, i);
        const last = pieces[pieces.length - 1]!;
        last.text = await this.indexExpr(last.text, toks.slice(i + 1, close), scope);
        i = close + 1;
        continue;
      }
      return i;
    }
  }

  /** An identifier: a keyword, a (qualified) column, a function call, or the `div` / `rlike` operators. */
  private async nameOrCall(toks: Token[], i: number, pieces: Piece[], scope: Scope): Promise<number> {
    const t = toks[i]!;
    const ws = t.ws;
    if (t.kind === 'ident' && isOp(toks[i + 1], '(') && !(t.upper === 'IN' || (t.upper === 'EXISTS' && startsQuery(toks, i + 2)) || t.upper === 'OVER' || (t.upper === 'FILTER' && isKw(toks[i + 2], 'WHERE')) || t.upper === 'AS' || t.upper === 'VALUES' || t.upper === 'AND' || t.upper === 'OR' || t.upper === 'NOT' || t.upper === 'ON' || t.upper === 'USING' || t.upper === 'BY' || t.upper === 'EXCLUDE' || t.upper === 'THEN' || t.upper === 'ELSE' || t.upper === 'WHEN' || t.upper === 'SELECT' || t.upper === 'WHERE' || t.upper === 'ANY' || t.upper === 'ALL' || t.upper === 'SOME' || t.upper === 'IS' || t.upper === 'WITHIN' || t.upper === 'INTERVAL')) {
      return this.call(toks, i, pieces, scope);
    }
    if (t.kind === 'qident' && isOp(toks[i + 1], '(')) return this.call(toks, i, pieces, scope);
    if (t.kind === 'ident') {
      const u = t.upper;
      if (u === 'DIV' && pieces.length && pieces[pieces.length - 1]!.term) return this.binary(toks, i, pieces, scope, 'div');
      if ((u === 'RLIKE' || u === 'REGEXP') && pieces.length) return this.binary(toks, i, pieces, scope, 'rlike');
      // Spark's TIMESTAMP '…' (an instant: an offset in the text counts), TIMESTAMP_LTZ '…' and
      // TIMESTAMP_NTZ '…' (a wall time) typed literals.
      if ((u === 'TIMESTAMP' || u === 'TIMESTAMP_NTZ' || u === 'TIMESTAMP_LTZ') && toks[i + 1]?.kind === 'string') {
        pieces.push({ text: `CAST(${quoteString(toks[i + 1]!.value)} AS ${u === 'TIMESTAMP_NTZ' ? 'TIMESTAMP' : 'TIMESTAMPTZ'})`, ws, term: true });
        return this.postfix(toks, i + 2, pieces, scope);
      }
      // Spark's LEFT SEMI / LEFT ANTI JOIN are DuckDB's SEMI / ANTI JOIN; MINUS is EXCEPT.
      if (u === 'LEFT' && (isKw(toks[i + 1], 'SEMI') || isKw(toks[i + 1], 'ANTI')) && isKw(toks[i + 2], 'JOIN')) return i + 1;
      if (u === 'MINUS') {
        pieces.push({ text: 'EXCEPT', ws: true, term: false });
        return i + 1;
      }
      // X'0AFF': a BINARY literal
      if (u === 'X' && toks[i + 1]?.kind === 'string' && !toks[i + 1]!.ws) {
        const hex = toks[i + 1]!.value;
        if (!/^[0-9a-fA-F]*$/.test(hex)) throw parseErrorAt(toks[i + 1]!, `A binary literal X'…' holds hexadecimal digits, not '${hex}'`);
        pieces.push({ text: `from_hex(${quoteString(hex.length % 2 ? '0' + hex : hex)})`, ws, term: true });
        return this.postfix(toks, i + 2, pieces, scope);
      }
      if (u === 'NULL' || u === 'TRUE' || u === 'FALSE') {
        pieces.push({ text: u, ws, term: true });
        return i + 1;
      }
      if (KEYWORDS_NOT_COLUMNS.has(u) && !(isOp(toks[i + 1], '.') && isName(toks[i + 2]))) {
        pieces.push({ text: t.text, ws, term: false });
        return i + 1;
      }
    }
    // a column, possibly qualified: a.b.c
    const parts: Token[] = [t];
    let j = i + 1;
    while (isOp(toks[j], '.') && isName(toks[j + 1]) && !toks[j]!.ws) {
      parts.push(toks[j + 1]!);
      j += 2;
    }
    if (isOp(toks[j], '.') && isOp(toks[j + 1], '*')) {
      pieces.push({ text: `${parts.map((p) => quoteIdent(p.value)).join('.')}.*`, ws, term: true });
      return j + 2;
    }
    let text: string | undefined;
    if (this.ctx.column && toks[j]?.kind !== 'string' && !isOp(toks[j], '(')) text = this.ctx.column(parts);
    text ??= parts.map((p) => (p.kind === 'ident' ? p.text : quoteIdent(p.value))).join('.');
    pieces.push({ text, ws, term: true });
    return this.postfix(toks, j, pieces, scope);
  }

  /** A function call `name(args)` with FILTER / OVER after it. */
  private async call(toks: Token[], i: number, pieces: Piece[], scope: Scope): Promise<number> {
    const t = toks[i]!;
    const name = t.value.toLowerCase();
    const close = matching(toks, i + 1);
    const inner = toks.slice(i + 2, close);
    if (FORBIDDEN_FUNCTIONS.has(name)) throw analysisErrorAt(t, `Function ${t.value}() is not available in floe SQL`, { construct: t.value });
    let text: string;
    if (name === 'cast' || name === 'try_cast') {
      const asAt = topLevelKw(inner, 'AS');
      if (asAt < 0) throw parseErrorAt(t, `Expected ${t.value.toUpperCase()}(expression AS type)`);
      const c = new Cursor([...inner.slice(asAt + 1), { ...toks[close]!, kind: 'eof', text: '' }]);
      const type = parseType(c);
      c.expectEnd();
      text = castSql(name === 'cast' ? 'CAST' : 'TRY_CAST', await this.run(inner.slice(0, asAt), scope, false), duckType(type));
    } else if (['extract', 'trim', 'position', 'overlay'].includes(name) && inner.some((x) => isKw(x, 'FROM') || isKw(x, 'IN') || isKw(x, 'BOTH') || isKw(x, 'LEADING') || isKw(x, 'TRAILING') || isKw(x, 'PLACING'))) {
      // SQL-standard forms: extract(YEAR FROM ts), trim(BOTH 'x' FROM s), position('a' IN s)
      text = `${name}(${await this.run(inner, scope, false)})`;
    } else if ((name === 'substring' || name === 'substr') && inner.some((x) => isKw(x, 'FROM'))) {
      text = `substring(${await this.run(inner, scope, false)})`;
    } else if (name === 'count' && inner.length === 1 && isOp(inner[0], '*')) {
      text = 'count(*)';
    } else {
      let argToks = inner;
      let distinct = false;
      if (isKw(argToks[0], 'DISTINCT')) {
        distinct = true;
        argToks = argToks.slice(1);
      } else if (isKw(argToks[0], 'ALL')) argToks = argToks.slice(1);
      const raw = argToks.length ? splitTopLevel(argToks) : [];
      for (const r of raw) if (!r.length) throw parseErrorAt(toks[close]!, `Empty argument in ${t.value}()`);
      const args: string[] = [];
      if (UNSUPPORTED_FUNCTIONS.has(name) && t.kind === 'ident') throw analysisErrorAt(t, `Function ${t.value}() is not supported by floe SQL`, { construct: t.value });
      for (const r of raw) args.push(await this.lambdaOrExpr(r, scope, name === 'transform' || name === 'filter'));
      const fn = t.kind === 'ident' ? FUNCTIONS[name] : undefined;
      if (fn) text = fn({ name, args, raw, at: t, distinct });
      else text = `${t.kind === 'qident' ? quoteIdent(t.value) : t.text}(${distinct ? 'DISTINCT ' : ''}${args.join(', ')})`;
    }
    let j = close + 1;
    // IGNORE NULLS / RESPECT NULLS after the call, FILTER (WHERE …), OVER (…) / OVER name
    if ((isKw(toks[j], 'IGNORE') || isKw(toks[j], 'RESPECT')) && isKw(toks[j + 1], 'NULLS')) {
      if (toks[j]!.upper === 'IGNORE') text = text.replace(/\)$/, ' IGNORE NULLS)');
      j += 2;
    }
    if (isKw(toks[j], 'FILTER') && isOp(toks[j + 1], '(')) {
      const c2 = matching(toks, j + 1);
      text += ` FILTER (${await this.run(toks.slice(j + 2, c2), scope, false)})`;
      j = c2 + 1;
    }
    if (isKw(toks[j], 'OVER')) {
      if (isOp(toks[j + 1], '(')) {
        const c2 = matching(toks, j + 1);
        text += ` OVER (${await this.run(toks.slice(j + 2, c2), scope, false)})`;
        j = c2 + 1;
      } else if (isName(toks[j + 1])) {
        text += ` OVER ${quoteIdent(toks[j + 1]!.value)}`;
        j += 2;
      } else throw parseErrorAt(toks[j + 1] ?? toks[j]!, 'Expected a window after OVER');
    }
    pieces.push({ text, ws: t.ws, term: true });
    return this.postfix(toks, j, pieces, scope);
  }

  /**
   * A function argument: an expression, or a lambda `x -> …` / `(x, y) -> …`. With `indexed`
   * (transform, filter), a second parameter is the element's index: 0-based in Spark, 1-based in DuckDB.
   */
  private async lambdaOrExpr(r: Token[], scope: Scope, indexed = false): Promise<string> {
    const arrow = r.findIndex((x) => isOp(x, '->'));
    if (arrow > 0) {
      const params = r.slice(0, arrow).filter((x) => isName(x)).map((x) => x.value);
      const saved = this.ctx.column;
      const index = indexed && params.length === 2 ? params[1]!.toLowerCase() : undefined;
      this.ctx.column = index === undefined ? undefined : (parts) => (parts.length === 1 && parts[0]!.value.toLowerCase() === index ? `(CAST(${quoteIdent(parts[0]!.value)} AS INTEGER) - 1)` : undefined);
      try {
        const body = await this.run(r.slice(arrow + 1), scope, false);
        return `lambda ${params.map(quoteIdent).join(', ')}: ${body}`;
      } finally {
        this.ctx.column = saved;
      }
    }
    return this.run(r, scope, false);
  }

  /** Binary operators with Spark semantics: `a div b` (integral division), `a [NOT] RLIKE b`. */
  private async binary(toks: Token[], i: number, pieces: Piece[], scope: Scope, op: 'div' | 'rlike'): Promise<number> {
    const t = toks[i]!;
    // left operand: for div, the run of multiplicative terms before it; for rlike, the additive expression.
    let k = pieces.length - 1;
    let negate = false;
    if (op === 'rlike' && pieces[k]!.text.toUpperCase() === 'NOT') {
      negate = true;
      pieces.pop();
      k--;
    }
    if (!pieces[k]?.term) throw parseErrorAt(t, `Expected an expression before ${negate ? 'NOT ' : ''}${t.text.toUpperCase()}`);
    const ops = op === 'div' ? MUL_OPS : new Set([...MUL_OPS, '+', '-', '||']);
    while (k >= 2 && !pieces[k - 1]!.term && ops.has(pieces[k - 1]!.text) && pieces[k - 2]!.term) k -= 2;
    const left = join(pieces.splice(k));
    // right operand: one (signed) operand for div; an additive run for rlike.
    const right: Piece[] = [];
    let j = i + 1;
    for (;;) {
      while (isOp(toks[j], '-') || isOp(toks[j], '+')) {
        right.push({ text: toks[j]!.text, ws: toks[j]!.ws, term: false });
        j++;
      }
      if (j >= toks.length) throw parseErrorAt(t, `Expected an expression after ${t.text.toUpperCase()}`);
      const before = right.length;
      j = await this.expressionToken(toks, j, right, scope, false);
      if (right.length === before || !right[right.length - 1]!.term) throw parseErrorAt(toks[j - 1] ?? t, `Expected an expression after ${t.text.toUpperCase()}`);
      if (op === 'rlike' && toks[j] && toks[j]!.kind === 'op' && ['+', '-', '||', '*', '/', '%'].includes(toks[j]!.text)) {
        right.push({ text: toks[j]!.text, ws: true, term: false });
        j++;
        continue;
      }
      break;
    }
    const r = join(right);
    const text = op === 'div' ? `floe_spark_div(${left}, ${r})` : `${negate ? 'NOT ' : ''}regexp_matches(${left}, ${r})`;
    pieces.push({ text, ws: true, term: true });
    return j;
  }
}

/**
 * A CAST with Spark's result where DuckDB's differs: to a string, a TIMESTAMP is Spark's text
 * (`2024-01-01 05:00:00`, no `+00`; floe_spark_string); to an integral type, a fractional number
 * or numeric string truncates toward zero (floe_cast_integer, …; DuckDB rounds).
 */
function castSql(fn: 'CAST' | 'TRY_CAST', expr: string, type: string): string {
  if (type === 'VARCHAR') return `floe_spark_string(${expr})`;
  if (INTEGRAL_CASTS.includes(type)) return `floe_${fn.toLowerCase()}_${type.toLowerCase()}(${expr})`;
  return `${fn}(${expr} AS ${type})`;
}

/** The index of a keyword at the top level of a token list, or -1. */
export function topLevelKw(toks: Token[], kw: string): number {
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'op' && (t.text === '(' || t.text === '[')) depth++;
    else if (t.kind === 'op' && (t.text === ')' || t.text === ']')) depth--;
    else if (depth === 0 && t.kind === 'ident' && t.upper === kw) return i;
  }
  return -1;
}
