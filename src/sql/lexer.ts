/**
 * The SQL lexer: Spark SQL tokens with positions (line, column), case-insensitive keywords (a keyword
 * is an `ident` token compared by `upper`), backtick identifiers, single- and double-quoted strings
 * with Spark's backslash escapes, `--` and block comments, and statement splitting on `;` outside
 * strings and comments.
 */
import { sqlParseError } from './errors.js';

export type TokenKind = 'ident' | 'qident' | 'string' | 'number' | 'op' | 'semi' | 'eof';

export interface Token {
  kind: TokenKind;
  /** Source text of the token (for `qident` / `string`: as written, with quotes). */
  text: string;
  /** Identifier name (backticks removed) or string value (escapes applied); upper-cased keyword for `ident` in `upper`. */
  value: string;
  upper: string;
  offset: number;
  end: number;
  line: number;
  col: number;
  /** Whitespace or a comment precedes the token. */
  ws: boolean;
}

const OPS = ['<=>', '::', '==', '!=', '<>', '<=', '>=', '||', '&&', '->', '=>', '<<', '>>', '(', ')', '[', ']', '{', '}', ',', '.', '+', '-', '*', '/', '%', '<', '>', '=', '!', '~', '&', '|', '^', ':', '@', '?'];

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', '0': '\0', Z: '\x1a', '%': '\\%', _: '\\_' };

export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let ws = false;
  const n = text.length;
  const pos = (at: number): { line: number; col: number } => ({ line, col: at - lineStart + 1 });
  const newlines = (from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    }
  };
  while (i < n) {
    const c = text[i]!;
    // whitespace
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      if (c === '\n') {
        line++;
        lineStart = i + 1;
      }
      i++;
      ws = true;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      while (i < n && text[i] !== '\n') i++;
      ws = true;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const p = pos(i);
      // Spark allows nested bracketed comments.
      let depth = 0;
      let k = i;
      while (k < n) {
        if (text[k] === '/' && text[k + 1] === '*') {
          depth++;
          k += 2;
        } else if (text[k] === '*' && text[k + 1] === '/') {
          depth--;
          k += 2;
          if (depth === 0) break;
        } else k++;
      }
      if (depth !== 0) throw sqlParseError('Unclosed comment /* … */', p.line, p.col);
      newlines(i, k);
      i = k;
      ws = true;
      continue;
    }
    const start = i;
    const p = pos(i);
    const push = (kind: TokenKind, value: string): void => {
      const t = text.slice(start, i);
      out.push({ kind, text: t, value, upper: kind === 'ident' ? value.toUpperCase() : '', offset: start, end: i, line: p.line, col: p.col, ws });
      ws = false;
    };
    if (c === "'" || c === '"') {
      let v = '';
      i++;
      let closed = false;
      while (i < n) {
        const d = text[i]!;
        if (d === '\\' && i + 1 < n) {
          const e = text[i + 1]!;
          if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            v += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          v += ESCAPES[e] ?? e;
          i += 2;
          continue;
        }
        if (d === c) {
          if (text[i + 1] === c) {
            v += c;
            i += 2;
            continue;
          }
          i++;
          closed = true;
          break;
        }
        v += d;
        i++;
      }
      if (!closed) throw sqlParseError('Unclosed string literal', p.line, p.col);
      newlines(start, i);
      push('string', v);
      continue;
    }
    if (c === '`') {
      let v = '';
      i++;
      let closed = false;
      while (i < n) {
        if (text[i] === '`') {
          if (text[i + 1] === '`') {
            v += '`';
            i += 2;
            continue;
          }
          i++;
          closed = true;
          break;
        }
        v += text[i];
        i++;
      }
      if (!closed) throw sqlParseError('Unclosed backtick identifier', p.line, p.col);
      newlines(start, i);
      push('qident', v);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      while (i < n && /[0-9]/.test(text[i]!)) i++;
      if (text[i] === '.' && /[0-9]/.test(text[i + 1] ?? '')) {
        i++;
        while (i < n && /[0-9]/.test(text[i]!)) i++;
      } else if (text[i] === '.' && !/[A-Za-z_]/.test(text[i + 1] ?? '')) i++;
      if (/[eE]/.test(text[i] ?? '') && /[0-9]/.test(text[i + 1] === '+' || text[i + 1] === '-' ? text[i + 2] ?? '' : text[i + 1] ?? '')) {
        i += text[i + 1] === '+' || text[i + 1] === '-' ? 2 : 1;
        while (i < n && /[0-9]/.test(text[i]!)) i++;
      }
      // Spark's typed suffixes: 1L, 2S, 3Y, 1.5D, 1.5F, 1.5BD
      const suf = /^(BD|[LSYDF])(?![A-Za-z0-9_])/i.exec(text.slice(i, i + 3));
      if (suf) i += suf[1]!.length;
      else if (/[A-Za-z_]/.test(text[i] ?? '')) {
        // an identifier starting with digits (Spark allows `1a` as a name)
        while (i < n && /[A-Za-z0-9_]/.test(text[i]!)) i++;
        push('ident', text.slice(start, i));
        continue;
      }
      push('number', text.slice(start, i));
      continue;
    }
    if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(text[i]!)) i++;
      push('ident', text.slice(start, i));
      continue;
    }
    if (c === ';') {
      i++;
      push('semi', ';');
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) throw sqlParseError(`Unexpected character '${c}'`, p.line, p.col);
    i += op.length;
    push('op', op);
  }
  const p = pos(n);
  out.push({ kind: 'eof', text: '', value: '', upper: '', offset: n, end: n, line: p.line, col: p.col, ws });
  return out;
}

/** One statement's tokens (without the `;`, ending with an `eof` token) and its source text. */
export interface StatementTokens {
  tokens: Token[];
  text: string;
}

/** Splits a script into statements on `;` outside strings and comments; empty statements are dropped. */
export function splitStatements(text: string): StatementTokens[] {
  const toks = tokenize(text);
  const out: StatementTokens[] = [];
  let cur: Token[] = [];
  for (const t of toks) {
    if (t.kind === 'semi' || t.kind === 'eof') {
      if (cur.length) {
        const eof: Token = { kind: 'eof', text: '', value: '', upper: '', offset: t.offset, end: t.offset, line: t.line, col: t.col, ws: false };
        out.push({ tokens: [...cur, eof], text: text.slice(cur[0]!.offset, cur[cur.length - 1]!.end) });
      }
      cur = [];
      continue;
    }
    cur.push(t);
  }
  return out;
}

/** Is the script complete (ends with `;` outside strings and comments)? For the REPL. */
export function endsStatement(text: string): boolean {
  try {
    const toks = tokenize(text);
    const last = toks[toks.length - 2];
    return last?.kind === 'semi';
  } catch {
    return false;
  }
}
