/**
 * A small parser for the subset of SQL predicates (DuckDB / Spark SQL syntax) that floe can use to
 * skip files: AND / OR / NOT, parentheses, comparisons between a column and a literal, IN, IS NULL
 * and BETWEEN. DuckDB still evaluates the full predicate; this parse only guides data skipping, so
 * anything outside the subset becomes an opaque `unknown` node instead of an error.
 */

/** A column reference: one entry per dotted component (`a.b` → `['a', 'b']`), spelled as written. */
export type ColumnPath = string[];

/**
 * A literal. Numbers keep their source text (sign included, e.g. `-1.5e3`) so that skipping can
 * compare them exactly; DATE / TIMESTAMP literals keep their quoted text unvalidated.
 */
export type Literal =
  | { type: 'null' }
  | { type: 'boolean'; value: boolean }
  | { type: 'number'; text: string }
  | { type: 'string'; value: string }
  | { type: 'date'; value: string }
  | { type: 'timestamp'; value: string };

/** Comparison operators, normalised (`==` → `=`, `<>` → `!=`) and oriented as `column op literal`. */
export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/** A parsed predicate. `unknown` stands for any sub-expression outside the supported subset. */
export type Expr =
  | { kind: 'and'; left: Expr; right: Expr }
  | { kind: 'or'; left: Expr; right: Expr }
  | { kind: 'not'; expr: Expr }
  | { kind: 'compare'; op: CompareOp; column: ColumnPath; value: Literal }
  | { kind: 'in'; column: ColumnPath; values: Literal[]; negated: boolean }
  | { kind: 'isNull'; column: ColumnPath; negated: boolean }
  | { kind: 'between'; column: ColumnPath; low: Literal; high: Literal; negated: boolean }
  | { kind: 'const'; value: boolean | null }
  | { kind: 'unknown' };

type Token =
  | { t: 'ident'; v: string; quoted: boolean }
  | { t: 'num'; v: string }
  | { t: 'str'; v: string }
  | { t: 'op'; v: string }
  | { t: 'eof' };

const TWO_CHAR_OPS = new Set(['<=', '>=', '<>', '!=', '==', '||', '::', '->', '=>', '**', '!~', '~~', '^@', '<<', '>>', '@>', '<@', '&&']);
const RESERVED = new Set(['AND', 'OR', 'NOT', 'IN', 'IS', 'BETWEEN', 'LIKE', 'ILIKE', 'GLOB', 'SIMILAR', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'SELECT', 'EXISTS', 'CAST', 'TRUE', 'FALSE', 'NULL', 'ESCAPE', 'DISTINCT', 'FROM']);

function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      let v = '';
      let j = i + 1;
      let closed = false;
      while (j < n) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) { v += c; j += 2; continue; }
          closed = true;
          j++;
          break;
        }
        v += sql[j];
        j++;
      }
      // An unterminated quote is a syntax error for DuckDB; we just make it unparseable.
      out.push(!closed ? { t: 'op', v: c } : c === "'" ? { t: 'str', v } : { t: 'ident', v, quoted: true });
      i = closed ? j : n;
      continue;
    }
    const num = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(sql.slice(i, i + 400));
    if (num) {
      out.push({ t: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(sql.slice(i, i + 1000));
    if (id) {
      out.push({ t: 'ident', v: id[0], quoted: false });
      i += id[0].length;
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (TWO_CHAR_OPS.has(two)) { out.push({ t: 'op', v: two }); i += 2; continue; }
    out.push({ t: 'op', v: c });
    i++;
  }
  out.push({ t: 'eof' });
  return out;
}

class Fail extends Error {}
const UNKNOWN: Expr = { kind: 'unknown' };

type Operand = { col: ColumnPath } | { lit: Literal };

class Parser {
  private pos = 0;
  constructor(private readonly toks: Token[]) {}

  private get cur(): Token { return this.toks[this.pos]!; }
  private kw(tok: Token, word: string): boolean {
    return tok.t === 'ident' && !tok.quoted && tok.v.toUpperCase() === word;
  }
  private isKw(word: string, at = this.pos): boolean { return this.kw(this.toks[at] ?? { t: 'eof' }, word); }
  private isOp(v: string, at = this.pos): boolean {
    const t = this.toks[at];
    return t !== undefined && t.t === 'op' && t.v === v;
  }
  private expectKw(word: string): void {
    if (!this.isKw(word)) throw new Fail();
    this.pos++;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new Fail();
    this.pos++;
  }
  atEnd(): boolean { return this.cur.t === 'eof'; }
  /** True at a token that may follow a complete predicate: AND, OR, `)` or the end. */
  private atBoundary(): boolean {
    return this.cur.t === 'eof' || this.isKw('AND') || this.isKw('OR') || this.isOp(')');
  }

  parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isKw('OR')) {
      this.pos++;
      left = { kind: 'or', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.isKw('AND')) {
      this.pos++;
      left = { kind: 'and', left, right: this.parseNot() };
    }
    return left;
  }

  private parseNot(): Expr {
    if (this.isKw('NOT')) {
      this.pos++;
      return { kind: 'not', expr: this.parseNot() };
    }
    const start = this.pos;
    try {
      const e = this.parseSimple();
      if (this.atBoundary()) return e;
    } catch (e) {
      if (!(e instanceof Fail)) throw e;
    }
    this.pos = start;
    this.skipSegment();
    return UNKNOWN;
  }

  /**
   * Skips an unsupported sub-expression: everything up to the next AND / OR / `)` at this nesting
   * level, where the AND of a BETWEEN and anything inside parentheses or CASE … END does not count.
   */
  private skipSegment(): void {
    let depth = 0;
    let betweens = 0;
    for (;;) {
      const tok = this.cur;
      if (tok.t === 'eof') return;
      if (depth === 0) {
        if (this.kw(tok, 'AND')) {
          if (betweens === 0) return;
          betweens--;
        } else if (this.kw(tok, 'OR') || (tok.t === 'op' && tok.v === ')')) {
          return;
        } else if (this.kw(tok, 'BETWEEN')) {
          betweens++;
        }
      }
      if ((tok.t === 'op' && tok.v === '(') || this.kw(tok, 'CASE')) depth++;
      else if (((tok.t === 'op' && tok.v === ')') || this.kw(tok, 'END')) && depth > 0) depth--;
      this.pos++;
    }
  }

  private parseSimple(): Expr {
    if (this.isOp('(')) {
      this.pos++;
      const e = this.parseOr();
      this.expectOp(')');
      return e;
    }
    const left = this.parseOperand();
    const tok = this.cur;
    if (tok.t === 'op' && ['=', '==', '!=', '<>', '<', '<=', '>', '>='].includes(tok.v)) {
      this.pos++;
      const right = this.parseOperand();
      const op = normOp(tok.v);
      if ('col' in left && 'lit' in right) return { kind: 'compare', op, column: left.col, value: right.lit };
      if ('lit' in left && 'col' in right) return { kind: 'compare', op: flipOp(op), column: right.col, value: left.lit };
      throw new Fail();
    }
    if (this.isKw('IS')) {
      this.pos++;
      const negated = this.isKw('NOT');
      if (negated) this.pos++;
      this.expectKw('NULL');
      if (!('col' in left)) throw new Fail();
      return { kind: 'isNull', column: left.col, negated };
    }
    const negated = this.isKw('NOT') && (this.isKw('IN', this.pos + 1) || this.isKw('BETWEEN', this.pos + 1));
    if (negated) this.pos++;
    if (this.isKw('IN')) {
      this.pos++;
      this.expectOp('(');
      const values: Literal[] = [this.parseLiteral()];
      while (this.isOp(',')) {
        this.pos++;
        values.push(this.parseLiteral());
      }
      this.expectOp(')');
      if (!('col' in left)) throw new Fail();
      return { kind: 'in', column: left.col, values, negated };
    }
    if (this.isKw('BETWEEN')) {
      this.pos++;
      const low = this.parseLiteral();
      this.expectKw('AND');
      const high = this.parseLiteral();
      if (!('col' in left)) throw new Fail();
      return { kind: 'between', column: left.col, low, high, negated };
    }
    if (negated) throw new Fail();
    // A bare operand used as a predicate: a boolean column, or TRUE / FALSE / NULL.
    if ('col' in left) return { kind: 'compare', op: '=', column: left.col, value: { type: 'boolean', value: true } };
    if (left.lit.type === 'boolean') return { kind: 'const', value: left.lit.value };
    if (left.lit.type === 'null') return { kind: 'const', value: null };
    throw new Fail();
  }

  private parseLiteral(): Literal {
    const o = this.parseOperand();
    if (!('lit' in o)) throw new Fail();
    return o.lit;
  }

  private parseOperand(): Operand {
    const tok = this.cur;
    if (tok.t === 'num') {
      this.pos++;
      return { lit: { type: 'number', text: tok.v } };
    }
    if (tok.t === 'str') {
      this.pos++;
      return { lit: { type: 'string', value: tok.v } };
    }
    if (tok.t === 'op' && (tok.v === '-' || tok.v === '+')) {
      const next = this.toks[this.pos + 1]!;
      if (next.t !== 'num') throw new Fail();
      this.pos += 2;
      return { lit: { type: 'number', text: tok.v === '-' ? `-${next.v}` : next.v } };
    }
    if (tok.t !== 'ident') throw new Fail();
    if (!tok.quoted) {
      const u = tok.v.toUpperCase();
      const next = this.toks[this.pos + 1]!;
      if ((u === 'DATE' || u === 'TIMESTAMP') && next.t === 'str') {
        this.pos += 2;
        return { lit: u === 'DATE' ? { type: 'date', value: next.v } : { type: 'timestamp', value: next.v } };
      }
      if (u === 'TRUE' || u === 'FALSE') {
        this.pos++;
        return { lit: { type: 'boolean', value: u === 'TRUE' } };
      }
      if (u === 'NULL') {
        this.pos++;
        return { lit: { type: 'null' } };
      }
      if (RESERVED.has(u)) throw new Fail();
    }
    const path = [tok.v];
    this.pos++;
    while (this.isOp('.')) {
      const next = this.toks[this.pos + 1]!;
      if (next.t !== 'ident' || (!next.quoted && RESERVED.has(next.v.toUpperCase()))) throw new Fail();
      path.push(next.v);
      this.pos += 2;
    }
    if (this.isOp('(')) throw new Fail(); // a function call
    return { col: path };
  }
}

function normOp(v: string): CompareOp {
  if (v === '==') return '=';
  if (v === '<>') return '!=';
  return v as CompareOp;
}

function flipOp(op: CompareOp): CompareOp {
  switch (op) {
    case '<': return '>';
    case '<=': return '>=';
    case '>': return '<';
    case '>=': return '<=';
    default: return op;
  }
}

/**
 * Parses a SQL predicate (DuckDB / Spark SQL syntax) into an {@link Expr}. Never throws: any
 * sub-expression outside the supported subset (function calls, arithmetic, LIKE, column-vs-column
 * comparisons, casts, …) becomes `{ kind: 'unknown' }`, so `a = 1 AND upper(b) = 'X'` still exposes
 * `a = 1`. Unbalanced input becomes a single unknown node. Identifiers are kept as written; callers
 * resolve them case-insensitively, as Spark and DuckDB do.
 *
 * @returns the expression, or null when `sql` is empty (or only whitespace and comments).
 */
export function parsePredicate(sql: string): Expr | null {
  const toks = tokenize(sql);
  if (toks.length === 1) return null;
  const p = new Parser(toks);
  const e = p.parseOr();
  return p.atEnd() ? e : UNKNOWN;
}

/** The column paths an expression refers to (with repeats); `unknown` nodes contribute nothing. */
export function referencedColumns(expr: Expr): ColumnPath[] {
  switch (expr.kind) {
    case 'and':
    case 'or':
      return [...referencedColumns(expr.left), ...referencedColumns(expr.right)];
    case 'not':
      return referencedColumns(expr.expr);
    case 'compare':
    case 'in':
    case 'isNull':
    case 'between':
      return [expr.column];
    default:
      return [];
  }
}

/** True if the expression contains an `unknown` node. */
export function hasUnknown(expr: Expr): boolean {
  switch (expr.kind) {
    case 'and':
    case 'or':
      return hasUnknown(expr.left) || hasUnknown(expr.right);
    case 'not':
      return hasUnknown(expr.expr);
    case 'unknown':
      return true;
    default:
      return false;
  }
}
