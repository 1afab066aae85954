/** A cursor over one statement's tokens, with the helpers the parser and translator share. */
import type { Token } from './lexer.js';
import { parseErrorAt, tokenDesc } from './errors.js';

/** Reserved words that end a bare alias or an expression at the top level. */
export const RESERVED = new Set([
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'OFFSET', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'JOIN', 'INNER',
  'LEFT', 'RIGHT', 'FULL', 'OUTER', 'CROSS', 'SEMI', 'ANTI', 'NATURAL', 'ON', 'USING', 'WHEN', 'THEN', 'ELSE', 'END', 'AND', 'OR', 'NOT',
  'AS', 'SET', 'VALUES', 'WINDOW', 'QUALIFY', 'LATERAL', 'PIVOT', 'UNPIVOT', 'SORT', 'DISTRIBUTE', 'CLUSTER', 'TABLESAMPLE', 'VERSION',
  'TIMESTAMP', 'FOR', 'WITH', 'INTO', 'OVERWRITE', 'PARTITION', 'BY', 'IS', 'IN', 'LIKE', 'ILIKE', 'RLIKE', 'BETWEEN', 'CASE', 'DISTINCT',
  'ALL', 'NULL', 'TRUE', 'FALSE', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'OVER', 'REPLACE', 'TBLPROPERTIES', 'LOCATION', 'COMMENT',
  'PARTITIONED', 'CLUSTERED', 'OPTIONS', 'RETAIN', 'DRY', 'ZORDER', 'SYSTEM_VERSION', 'SYSTEM_TIME', 'EXISTS', 'ANY', 'SOME', 'ASC', 'DESC', 'NULLS', 'FETCH',
]);

export class Cursor {
  i = 0;
  constructor(readonly tokens: Token[]) {}

  peek(k = 0): Token {
    const t = this.tokens[Math.min(this.i + k, this.tokens.length - 1)];
    if (t && (this.i + k < this.tokens.length || t.kind === 'eof')) return t;
    // past the end of a token slice without an eof token: a synthetic end
    const last = this.tokens[this.tokens.length - 1];
    return { kind: 'eof', text: '', value: '', upper: '', offset: last?.end ?? 0, end: last?.end ?? 0, line: last?.line ?? 1, col: (last?.col ?? 0) + (last?.text.length ?? 0), ws: false };
  }
  next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  atEnd(): boolean {
    return this.peek().kind === 'eof';
  }
  /** Is the token at offset k the keyword (case-insensitive)? */
  isKw(word: string, k = 0): boolean {
    const t = this.peek(k);
    return t.kind === 'ident' && t.upper === word;
  }
  /** Are the next tokens these keywords? */
  isKws(...words: string[]): boolean {
    return words.every((w, k) => this.isKw(w, k));
  }
  acceptKw(...words: string[]): boolean {
    if (!this.isKws(...words)) return false;
    this.i += words.length;
    return true;
  }
  expectKw(...words: string[]): void {
    for (const w of words) {
      const t = this.peek();
      if (!(t.kind === 'ident' && t.upper === w)) throw parseErrorAt(t, `Expected ${w} but found ${tokenDesc(t)}`);
      this.next();
    }
  }
  isOp(op: string, k = 0): boolean {
    const t = this.peek(k);
    return t.kind === 'op' && t.text === op;
  }
  acceptOp(op: string): boolean {
    if (!this.isOp(op)) return false;
    this.next();
    return true;
  }
  expectOp(op: string): Token {
    const t = this.peek();
    if (!(t.kind === 'op' && t.text === op)) throw parseErrorAt(t, `Expected '${op}' but found ${tokenDesc(t)}`);
    return this.next();
  }
  /** An identifier (bare or backticked). */
  ident(what = 'an identifier'): Token {
    const t = this.peek();
    if (t.kind !== 'ident' && t.kind !== 'qident') throw parseErrorAt(t, `Expected ${what} but found ${tokenDesc(t)}`);
    return this.next();
  }
  string(what = 'a string literal'): Token {
    const t = this.peek();
    if (t.kind !== 'string') throw parseErrorAt(t, `Expected ${what} but found ${tokenDesc(t)}`);
    return this.next();
  }
  integer(what = 'an integer'): number {
    const t = this.peek();
    if (t.kind !== 'number' || !/^\d+L?$/i.test(t.text)) throw parseErrorAt(t, `Expected ${what} but found ${tokenDesc(t)}`);
    this.next();
    const v = Number(t.text.replace(/L$/i, ''));
    if (!Number.isSafeInteger(v)) throw parseErrorAt(t, `${t.text} is too large`);
    return v;
  }
  number(what = 'a number'): number {
    const t = this.peek();
    if (t.kind !== 'number') throw parseErrorAt(t, `Expected ${what} but found ${tokenDesc(t)}`);
    this.next();
    const v = Number(t.text.replace(/(BD|[LSYDF])$/i, ''));
    if (!Number.isFinite(v)) throw parseErrorAt(t, `Invalid number ${t.text}`);
    return v;
  }
  expectEnd(): void {
    const t = this.peek();
    if (t.kind !== 'eof') throw parseErrorAt(t, `Unexpected ${tokenDesc(t)}: expected the end of the statement`);
  }

  /**
   * Tokens of an expression up to (not including) one of the stop keywords / operators at the top level:
   * parentheses, brackets and CASE … END nest. Throws when empty.
   */
  until(stopKws: string[], stopOps: string[] = [], what = 'an expression'): Token[] {
    const start = this.i;
    let depth = 0;
    let caseDepth = 0;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') break;
      if (depth === 0 && caseDepth === 0) {
        if (t.kind === 'ident' && stopKws.includes(t.upper)) break;
        if (t.kind === 'op' && stopOps.includes(t.text)) break;
      }
      if (t.kind === 'op' && (t.text === '(' || t.text === '[' || t.text === '{')) depth++;
      else if (t.kind === 'op' && (t.text === ')' || t.text === ']' || t.text === '}')) {
        if (depth === 0) break;
        depth--;
      } else if (t.kind === 'ident' && t.upper === 'CASE') caseDepth++;
      else if (t.kind === 'ident' && t.upper === 'END' && caseDepth > 0) caseDepth--;
      this.next();
    }
    const toks = this.tokens.slice(start, this.i);
    if (!toks.length) throw parseErrorAt(this.peek(), `Expected ${what} but found ${tokenDesc(this.peek())}`);
    return toks;
  }

  /** A parenthesised, comma-separated list of items parsed by `item`. */
  list<T>(item: () => T): T[] {
    this.expectOp('(');
    const out: T[] = [];
    if (this.acceptOp(')')) return out;
    for (;;) {
      out.push(item());
      if (this.acceptOp(',')) continue;
      this.expectOp(')');
      return out;
    }
  }
}

/** Splits tokens at top-level commas. */
export function splitTopLevel(tokens: Token[]): Token[][] {
  const out: Token[][] = [];
  let cur: Token[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === 'op' && (t.text === '(' || t.text === '[' || t.text === '{')) depth++;
    if (t.kind === 'op' && (t.text === ')' || t.text === ']' || t.text === '}')) depth--;
    if (depth === 0 && t.kind === 'op' && t.text === ',') {
      out.push(cur);
      cur = [];
      continue;
    }
    cur.push(t);
  }
  out.push(cur);
  return out;
}
