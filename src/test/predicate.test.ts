import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePredicate, referencedColumns, hasUnknown, type Expr, type Literal } from '../core/predicate.js';

const U: Expr = { kind: 'unknown' };
const num = (text: string): Literal => ({ type: 'number', text });
const str = (value: string): Literal => ({ type: 'string', value });
const cmp = (column: string | string[], op: '=' | '!=' | '<' | '<=' | '>' | '>=', value: Literal): Expr => ({
  kind: 'compare', op, column: typeof column === 'string' ? [column] : column, value,
});
const and = (left: Expr, right: Expr): Expr => ({ kind: 'and', left, right });
const or = (left: Expr, right: Expr): Expr => ({ kind: 'or', left, right });
const not = (expr: Expr): Expr => ({ kind: 'not', expr });
const p = (sql: string): Expr | null => parsePredicate(sql);

test('empty input gives null', () => {
  assert.equal(p(''), null);
  assert.equal(p('   \n\t'), null);
  assert.equal(p('-- just a comment'), null);
  assert.equal(p('/* block */'), null);
});

test('comparison operators are normalised', () => {
  assert.deepEqual(p('id > 5'), cmp('id', '>', num('5')));
  assert.deepEqual(p('id >= 5'), cmp('id', '>=', num('5')));
  assert.deepEqual(p('id < 5'), cmp('id', '<', num('5')));
  assert.deepEqual(p('id <= 5'), cmp('id', '<=', num('5')));
  assert.deepEqual(p('id = 5'), cmp('id', '=', num('5')));
  assert.deepEqual(p('id == 5'), cmp('id', '=', num('5')));
  assert.deepEqual(p('id != 5'), cmp('id', '!=', num('5')));
  assert.deepEqual(p('id <> 5'), cmp('id', '!=', num('5')));
  assert.deepEqual(p('id>5'), cmp('id', '>', num('5')));
});

test('literal on the left flips the operator', () => {
  assert.deepEqual(p('5 < id'), cmp('id', '>', num('5')));
  assert.deepEqual(p('5 <= id'), cmp('id', '>=', num('5')));
  assert.deepEqual(p('5 > id'), cmp('id', '<', num('5')));
  assert.deepEqual(p('5 >= id'), cmp('id', '<=', num('5')));
  assert.deepEqual(p("'a' = s"), cmp('s', '=', str('a')));
  assert.deepEqual(p('5 <> id'), cmp('id', '!=', num('5')));
});

test('precedence: NOT binds tighter than AND, AND tighter than OR', () => {
  const a = cmp('a', '=', num('1'));
  const b = cmp('b', '=', num('2'));
  const c = cmp('c', '=', num('3'));
  assert.deepEqual(p('a = 1 OR b = 2 AND c = 3'), or(a, and(b, c)));
  assert.deepEqual(p('a = 1 AND b = 2 OR c = 3'), or(and(a, b), c));
  assert.deepEqual(p('(a = 1 OR b = 2) AND c = 3'), and(or(a, b), c));
  assert.deepEqual(p('NOT a = 1 AND b = 2'), and(not(a), b));
  assert.deepEqual(p('NOT (a = 1 AND b = 2)'), not(and(a, b)));
  assert.deepEqual(p('NOT NOT a = 1'), not(not(a)));
  assert.deepEqual(p('a = 1 AND b = 2 AND c = 3'), and(and(a, b), c));
  assert.deepEqual(p('a = 1 or b = 2 or c = 3'), or(or(a, b), c));
  assert.deepEqual(p('((a = 1))'), a);
  assert.deepEqual(p('a = 1 aNd NoT b = 2'), and(a, not(b)));
});

test('identifiers: bare, double-quoted, backticked, dotted', () => {
  assert.deepEqual(p('"My Col" = 1'), cmp('My Col', '=', num('1')));
  assert.deepEqual(p('"a""b" = 1'), cmp('a"b', '=', num('1')));
  assert.deepEqual(p('`a``b` = 1'), cmp('a`b', '=', num('1')));
  assert.deepEqual(p('`weird col` = 1'), cmp('weird col', '=', num('1')));
  assert.deepEqual(p('a.b.c = 1'), cmp(['a', 'b', 'c'], '=', num('1')));
  assert.deepEqual(p('"a.b" = 1'), cmp(['a.b'], '=', num('1')));
  assert.deepEqual(p('"s"."Inner Field" = 1'), cmp(['s', 'Inner Field'], '=', num('1')));
  assert.deepEqual(p('s . x = 1'), cmp(['s', 'x'], '=', num('1')));
  assert.deepEqual(p('MixedCase = 1'), cmp('MixedCase', '=', num('1')));
  assert.deepEqual(p('_x1$ = 1'), cmp('_x1$', '=', num('1')));
  assert.deepEqual(p('"select" = 1'), cmp('select', '=', num('1')));
  assert.deepEqual(p('"true" = 1'), cmp('true', '=', num('1')));
  // date / timestamp are column names unless followed by a string
  assert.deepEqual(p("date = DATE '2020-01-01'"), cmp('date', '=', { type: 'date', value: '2020-01-01' }));
  assert.deepEqual(p('timestamp > 5'), cmp('timestamp', '>', num('5')));
});

test('numeric literals keep their text', () => {
  for (const t of ['0', '42', '1.5', '.5', '1.', '1e10', '1E10', '1.5e-3', '2.5E+7', '007']) {
    assert.deepEqual(p(`x = ${t}`), cmp('x', '=', num(t)), t);
  }
  assert.deepEqual(p('x = -5'), cmp('x', '=', num('-5')));
  assert.deepEqual(p('x = - 5'), cmp('x', '=', num('-5')));
  assert.deepEqual(p('x > -1.5e3'), cmp('x', '>', num('-1.5e3')));
  assert.deepEqual(p('x = +5'), cmp('x', '=', num('5')));
  assert.deepEqual(p('-5 < x'), cmp('x', '>', num('-5')));
  assert.deepEqual(p('x = 123456789012345678901234567890'), cmp('x', '=', num('123456789012345678901234567890')));
});

test('string, boolean, null, date and timestamp literals', () => {
  assert.deepEqual(p("s = 'abc'"), cmp('s', '=', str('abc')));
  assert.deepEqual(p("s = 'it''s'"), cmp('s', '=', str("it's")));
  assert.deepEqual(p("s = ''"), cmp('s', '=', str('')));
  assert.deepEqual(p("s = ''''"), cmp('s', '=', str("'")));
  assert.deepEqual(p("s = 'a\\b'"), cmp('s', '=', str('a\\b')));
  assert.deepEqual(p("s = 'AND OR'"), cmp('s', '=', str('AND OR')));
  assert.deepEqual(p("s = '😀é'"), cmp('s', '=', str('😀é')));
  assert.deepEqual(p('b = TRUE'), cmp('b', '=', { type: 'boolean', value: true }));
  assert.deepEqual(p('b = false'), cmp('b', '=', { type: 'boolean', value: false }));
  assert.deepEqual(p('b = NULL'), cmp('b', '=', { type: 'null' }));
  assert.deepEqual(p("d >= DATE '2020-01-01'"), cmp('d', '>=', { type: 'date', value: '2020-01-01' }));
  assert.deepEqual(p("d >= date '2020-01-01'"), cmp('d', '>=', { type: 'date', value: '2020-01-01' }));
  assert.deepEqual(p("t < TIMESTAMP '2020-01-01 10:00:00.123456'"), cmp('t', '<', { type: 'timestamp', value: '2020-01-01 10:00:00.123456' }));
  assert.deepEqual(p("t < timestamp '2020-01-01T10:00:00Z'"), cmp('t', '<', { type: 'timestamp', value: '2020-01-01T10:00:00Z' }));
});

test('IN, NOT IN, IS [NOT] NULL, [NOT] BETWEEN', () => {
  assert.deepEqual(p("letter IN ('a', 'b')"), { kind: 'in', column: ['letter'], values: [str('a'), str('b')], negated: false });
  assert.deepEqual(p('x NOT IN (1, -2, NULL)'), { kind: 'in', column: ['x'], values: [num('1'), num('-2'), { type: 'null' }], negated: true });
  assert.deepEqual(p("d in (DATE '2020-01-01')"), { kind: 'in', column: ['d'], values: [{ type: 'date', value: '2020-01-01' }], negated: false });
  assert.deepEqual(p('x IS NULL'), { kind: 'isNull', column: ['x'], negated: false });
  assert.deepEqual(p('x is not null'), { kind: 'isNull', column: ['x'], negated: true });
  assert.deepEqual(p('x BETWEEN 1 AND 5'), { kind: 'between', column: ['x'], low: num('1'), high: num('5'), negated: false });
  assert.deepEqual(p('x NOT BETWEEN -1 AND 5'), { kind: 'between', column: ['x'], low: num('-1'), high: num('5'), negated: true });
  assert.deepEqual(
    p('x BETWEEN 1 AND 5 AND y = 2'),
    and({ kind: 'between', column: ['x'], low: num('1'), high: num('5'), negated: false }, cmp('y', '=', num('2'))),
  );
  assert.deepEqual(p('NOT x IS NULL'), not({ kind: 'isNull', column: ['x'], negated: false }));
});

test('bare booleans', () => {
  assert.deepEqual(p('flag'), cmp('flag', '=', { type: 'boolean', value: true }));
  assert.deepEqual(p('NOT flag'), not(cmp('flag', '=', { type: 'boolean', value: true })));
  assert.deepEqual(p('TRUE'), { kind: 'const', value: true });
  assert.deepEqual(p('false OR a = 1'), or({ kind: 'const', value: false }, cmp('a', '=', num('1'))));
  assert.deepEqual(p('NULL'), { kind: 'const', value: null });
});

test('unsupported sub-expressions become unknown nodes', () => {
  const a1 = cmp('a', '=', num('1'));
  const c3 = cmp('c', '=', num('3'));
  assert.deepEqual(p("a = 1 AND upper(b) = 'X'"), and(a1, U));
  assert.deepEqual(p("upper(b) = 'X' OR a = 1"), or(U, a1));
  assert.deepEqual(p("NOT upper(b) = 'X'"), not(U));
  for (const sql of [
    'a + 1 > 2', 'a = 5 - 3', "a LIKE 'x%'", "a NOT LIKE 'x%'", "a ILIKE 'x'", 'a = b', 'a::int = 5', 'CAST(a AS INT) = 5',
    'a IN (SELECT x FROM t)', 'a IN (1, b)', 'a IN ()', "'x' = 'y'", '1 = 1', 'a IS TRUE', 'a IS DISTINCT FROM 1',
    '(a = 1) = TRUE', 'a = 1 IS NULL', "a = 'x' 'y'", '(a, b) IN ((1, 2))', 'a BETWEEN 1 + 1 AND 5', 'x = ?', 'x = $1',
    "x = INTERVAL '1 day'", 'x = 0x10', 'x = 1_000', 'a = -b', 'abs(a) BETWEEN 1 AND 2', 'EXISTS (SELECT 1)', 'a.f(1) = 2',
    'a = --5\n', '5', "'str'", 'a NOT NULL', 'a ISNULL', 'a IN [1, 2]', 'a = 1 = TRUE',
  ]) {
    const e = p(sql);
    assert.ok(e !== null, sql);
    assert.ok(hasUnknown(e), `${sql} → ${JSON.stringify(e)}`);
    assert.equal(referencedColumns(e).length, 0, `${sql} → ${JSON.stringify(e)}`);
  }
  // An unknown BETWEEN keeps its AND: the right operand must not leak out as a predicate.
  assert.deepEqual(p('f(x) BETWEEN 1 AND 2 OR c = 3'), or(U, c3));
  assert.deepEqual(p('g BETWEEN f(1) AND h'), U);
  assert.deepEqual(p('g BETWEEN f(1) AND h AND c = 3'), and(U, c3));
  assert.deepEqual(p('CASE WHEN a = 1 AND b = 2 THEN TRUE ELSE FALSE END OR c = 3'), or(U, c3));
  assert.deepEqual(p('coalesce(a, 1) = 1 AND (c = 3 OR lower(s) IN (\'x\'))'), and(U, or(c3, U)));
  assert.deepEqual(p('a = 1 AND (b + 1 = 2)'), and(a1, U));
  assert.deepEqual(p('a = 1 -- trailing comment'), a1);
  assert.deepEqual(p('a /* inline */ = 1'), a1);
});

test('malformed input never throws', () => {
  for (const sql of ['a = 1)', '(a = 1', "a = 'unterminated", 'a = "x', 'AND', 'a = 1 AND', 'OR OR', '()', ')(', 'NOT', 'a IN (1', 'a BETWEEN 1', 'a IS', 'a.', '`x', '=', '(((']) {
    const e = p(sql);
    assert.ok(e !== null, sql);
    assert.ok(hasUnknown(e), `${sql} → ${JSON.stringify(e)}`);
  }
  assert.deepEqual(p('a = 1)'), U);
  assert.deepEqual(p('a = 1 AND'), and(cmp('a', '=', num('1')), U));
});

// ---------------------------------------------------------------------------------------------
// Property tests: random token soup never throws; rendered random trees parse back exactly.

const tokenArb = fc.constantFrom(
  'a', 'b.c', '"q"', '`t`', '1', '-2.5', "'s'", "'it''s'", '(', ')', ',', 'AND', 'OR', 'NOT', 'IN', 'IS', 'NULL', 'BETWEEN', '=', '<>', '<',
  '>=', '+', '*', '::', 'f(', 'CASE', 'WHEN', 'THEN', 'END', 'TRUE', 'DATE', "'2020-01-01'", 'LIKE', "'", '"', '.', '--', '/*',
);

test('property: parsePredicate never throws and is non-null for non-empty input', () => {
  fc.assert(
    fc.property(fc.array(tokenArb, { minLength: 1, maxLength: 25 }), (toks) => {
      const sql = toks.join(' ');
      const e = parsePredicate(sql);
      if (e === null) assert.ok(/^\s*(--|\/\*)/.test(sql) || sql.trim() === '');
    }),
    { numRuns: 2000 },
  );
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => { parsePredicate(s); }), { numRuns: 1000 });
});

type Gen =
  | { g: 'leaf'; sql: string; expr: Expr }
  | { g: 'and' | 'or'; l: Gen; r: Gen }
  | { g: 'not'; e: Gen };

const colArb = fc.constantFrom<[string, string[]]>(['id', ['id']], ['"My Col"', ['My Col']], ['s.x', ['s', 'x']], ['`b`', ['b']], ['date', ['date']]);
const litArb = fc.constantFrom<[string, Literal]>(
  ['5', num('5')], ['-3.25', num('-3.25')], ['1e3', num('1e3')], ["'x''y'", str("x'y")], ['TRUE', { type: 'boolean', value: true }],
  ['NULL', { type: 'null' }], ["DATE '2021-02-03'", { type: 'date', value: '2021-02-03' }],
  ["TIMESTAMP '2021-02-03 04:05:06'", { type: 'timestamp', value: '2021-02-03 04:05:06' }],
);
const opArb = fc.constantFrom<['=' | '!=' | '<' | '<=' | '>' | '>=', string]>(['=', '='], ['!=', '<>'], ['<', '<'], ['<=', '<='], ['>', '>'], ['>=', '>='], ['=', '=='], ['!=', '!=']);
const flipped = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as const;

const leafArb: fc.Arbitrary<Gen> = fc.oneof(
  fc.tuple(colArb, opArb, litArb, fc.boolean()).map(([[cs, cp], [op, ops], [ls, lv], rev]): Gen => ({
    g: 'leaf',
    sql: rev ? `${ls} ${ops} ${cs}` : `${cs} ${ops} ${ls}`,
    expr: { kind: 'compare', op: rev ? flipped[op] : op, column: cp, value: lv },
  })),
  fc.tuple(colArb, fc.array(litArb, { minLength: 1, maxLength: 3 }), fc.boolean()).map(([[cs, cp], lits, neg]): Gen => ({
    g: 'leaf',
    sql: `${cs} ${neg ? 'NOT IN' : 'IN'} (${lits.map((l) => l[0]).join(', ')})`,
    expr: { kind: 'in', column: cp, values: lits.map((l) => l[1]), negated: neg },
  })),
  fc.tuple(colArb, fc.boolean()).map(([[cs, cp], neg]): Gen => ({ g: 'leaf', sql: `${cs} IS ${neg ? 'NOT ' : ''}NULL`, expr: { kind: 'isNull', column: cp, negated: neg } })),
  fc.tuple(colArb, litArb, litArb, fc.boolean()).map(([[cs, cp], lo, hi, neg]): Gen => ({
    g: 'leaf',
    sql: `${cs} ${neg ? 'NOT BETWEEN' : 'BETWEEN'} ${lo[0]} AND ${hi[0]}`,
    expr: { kind: 'between', column: cp, low: lo[1], high: hi[1], negated: neg },
  })),
  fc.constantFrom<Gen>(
    { g: 'leaf', sql: "upper(s) = 'X'", expr: U },
    { g: 'leaf', sql: 'f(x) BETWEEN 1 AND 2', expr: U },
    { g: 'leaf', sql: 'CASE WHEN a = 1 AND b = 2 THEN 1 END = 1', expr: U },
    { g: 'leaf', sql: 'a + b * 2 >= 3', expr: U },
    { g: 'leaf', sql: '(x, y) IN ((1, 2))', expr: U },
  ),
);

const genArb: fc.Arbitrary<Gen> = fc.letrec<{ node: Gen }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.tuple(fc.constantFrom<'and' | 'or'>('and', 'or'), tie('node'), tie('node')).map(([g, l, r]): Gen => ({ g, l, r })),
    tie('node').map((e): Gen => ({ g: 'not', e })),
  ),
})).node;

const PREC = { or: 1, and: 2, not: 3, leaf: 4 } as const;
/** Renders with the fewest parentheses the grammar allows (left-associative AND / OR). */
function render(n: Gen, minPrec = 0): string {
  const prec = PREC[n.g];
  let s: string;
  if (n.g === 'leaf') s = n.sql;
  else if (n.g === 'not') s = `NOT ${render(n.e, PREC.not)}`;
  else s = `${render(n.l, prec)} ${n.g.toUpperCase()} ${render(n.r, prec + 1)}`;
  return prec < minPrec ? `(${s})` : s;
}
function toExpr(n: Gen): Expr {
  if (n.g === 'leaf') return n.expr;
  if (n.g === 'not') return not(toExpr(n.e));
  return { kind: n.g, left: toExpr(n.l), right: toExpr(n.r) };
}

test('property: rendered random predicates parse back to the same tree', () => {
  fc.assert(
    fc.property(genArb, fc.boolean(), (g, lower) => {
      let sql = render(g);
      if (lower) sql = sql.replace(/\b(AND|OR|NOT|IN|IS|NULL|BETWEEN)\b/g, (m) => m.toLowerCase());
      assert.deepEqual(parsePredicate(sql), toExpr(g), sql);
    }),
    { numRuns: 3000 },
  );
});

test('referencedColumns and hasUnknown', () => {
  const e = p("a = 1 AND (b.c IN (1) OR upper(x) = 'y') AND NOT d IS NULL")!;
  assert.deepEqual(referencedColumns(e), [['a'], ['b', 'c'], ['d']]);
  assert.equal(hasUnknown(e), true);
  assert.equal(hasUnknown(p('a = 1 AND b BETWEEN 1 AND 2')!), false);
});
