/**
 * Spark SQL compatibility of the translator (an exploratory tester's findings): query constructs,
 * NULL ordering, literals, casts, division, joins and set operators, higher-order and collection
 * functions, engine error text and default column names, each checked against Spark's result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sqlSession } from './sql-helpers.js';

test('IS [NOT] DISTINCT FROM in select lists and WHERE of queries', async () => {
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows('SELECT 1 IS DISTINCT FROM 2 AS a, NULL IS NOT DISTINCT FROM NULL AS b, 1 IS DISTINCT FROM 1 AS c'), [{ a: true, b: true, c: false }]);
    assert.deepEqual(await s.rows('SELECT 1 AS x WHERE 1 IS NOT DISTINCT FROM NULL'), []);
    assert.deepEqual(await s.rows('SELECT x FROM (SELECT 1 AS x UNION ALL SELECT NULL) WHERE x IS DISTINCT FROM 1'), [{ x: null }]);
    assert.deepEqual(await s.rows('SELECT x FROM (SELECT 1 AS x) AS t WHERE NOT (x IS NOT DISTINCT FROM 2) AND x IS DISTINCT FROM (SELECT 3)'), [{ x: 1 }]);
  } finally {
    await s.close();
  }
});

test("Spark's NULL ordering: ascending NULLS FIRST, descending NULLS LAST", async () => {
  const s = await sqlSession();
  try {
    const v = '(SELECT 1 AS x, 2 AS y UNION ALL SELECT NULL, 1 UNION ALL SELECT 3, NULL) AS v';
    const xs = async (sql: string): Promise<unknown[]> => (await s.rows(sql)).map((r) => r.x);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY x`), [null, 1, 3]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY x ASC`), [null, 1, 3]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY x DESC`), [3, 1, null]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY x NULLS LAST`), [1, 3, null]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY x DESC NULLS FIRST`), [null, 3, 1]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY y, x LIMIT 2`), [3, null]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} ORDER BY coalesce(x, y) DESC, x`), [3, null, 1]);
    assert.deepEqual(await xs(`SELECT x FROM (SELECT x FROM ${v} ORDER BY x LIMIT 1)`), [null]);
    assert.deepEqual(await xs(`SELECT x FROM ${v} UNION ALL SELECT 0 ORDER BY x`), [null, 0, 1, 3]);
    // window ORDER BY
    const w = await s.rows(`SELECT x, row_number() OVER (ORDER BY x) AS r, lag(x) OVER (ORDER BY x DESC) AS l FROM ${v} ORDER BY r`);
    assert.deepEqual(w, [{ x: null, r: '1', l: 1 }, { x: 1, r: '2', l: 3 }, { x: 3, r: '3', l: null }]);
    // sort_array: NULLs first ascending, last descending; array_sort: NULLs last
    assert.deepEqual(await s.rows('SELECT sort_array(array(3, NULL, 1)) AS a, sort_array(array(3, NULL, 1), false) AS d, array_sort(array(3, NULL, 1)) AS s'), [{ a: [null, 1, 3], d: [3, 1, null], s: [1, 3, null] }]);
  } finally {
    await s.close();
  }
});

test('TIMESTAMP literals keep their offset; a TIMESTAMP as a string is Spark text (no +00)', async () => {
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows("SELECT CAST(TIMESTAMP '2024-01-01 10:00:00+05:00' AS STRING) AS a, CAST(TIMESTAMP'2024-03-10 01:30:00+05:00' = CAST('2024-03-10 01:30:00+05:00' AS TIMESTAMP) AS STRING) AS b, hour(TIMESTAMP '2024-01-01 10:00:00+05:00') AS h"), [{ a: '2024-01-01 05:00:00', b: 'true', h: '5' }]);
    await s.run('CREATE TABLE ts (ts TIMESTAMP) USING delta');
    await s.run("INSERT INTO ts VALUES (TIMESTAMP '2024-03-10 01:30:00.25+01:00')");
    assert.deepEqual(await s.rows("SELECT CAST(ts AS STRING) AS a, string(ts) AS b, ts::string AS c, TRY_CAST(ts AS STRING) AS d, concat('x', ts) AS e, CAST(1 AS STRING) AS f, CAST(DATE '2024-01-02' AS STRING) AS g, CAST(array(1) AS STRING) AS h FROM ts"),
      [{ a: '2024-03-10 00:30:00.25', b: '2024-03-10 00:30:00.25', c: '2024-03-10 00:30:00.25', d: '2024-03-10 00:30:00.25', e: 'x2024-03-10 00:30:00.25', f: '1', g: '2024-01-02', h: '[1]' }]);
    // CTAS of the string keeps Spark's text
    await s.run('CREATE TABLE ts2 AS SELECT CAST(ts AS STRING) AS s FROM ts');
    assert.deepEqual(await s.rows('SELECT s FROM ts2'), [{ s: '2024-03-10 00:30:00.25' }]);
    // concat of arrays is still array concatenation
    assert.deepEqual(await s.rows('SELECT concat(array(1), array(2)) AS a'), [{ a: [1, 2] }]);
    // || next to a string literal spells its other operand as Spark does; NULL stays NULL; a product binds first
    assert.deepEqual(await s.rows("SELECT 'x' || ts AS a, ts || '!' AS b, 'n=' || id || ';' AS c, 'x' || CAST(NULL AS TIMESTAMP) AS d, 'v' || id * 2 AS e FROM (SELECT ts, 4 AS id FROM ts)"),
      [{ a: 'x2024-03-10 00:30:00.25', b: '2024-03-10 00:30:00.25!', c: 'n=4;', d: null, e: 'v8' }]);
    assert.deepEqual(Object.keys((await s.rows("SELECT 'x' || ts, ts || '!' FROM ts"))[0]!), ['(x || ts)', '(ts || !)']);
    assert.deepEqual(await s.rows("SELECT count(*) AS n FROM ts WHERE 'x' || ts = 'x2024-03-10 00:30:00.25'"), [{ n: '1' }]);
  } finally {
    await s.close();
  }
});

test('CAST of a fractional number or numeric string to an integral type truncates toward zero', async () => {
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows('SELECT CAST(1.7 AS INT) AS a, CAST(-1.5 AS INT) AS b, CAST(2.5 AS BIGINT) AS c, CAST(-2.9D AS SMALLINT) AS d, CAST(CAST(9.99 AS FLOAT) AS TINYINT) AS e, TRY_CAST(1.9 AS INT) AS f, 7.8::int AS g, int(-7.8) AS h, bigint(3.99) AS i'),
      [{ a: 1, b: -1, c: '2', d: -2, e: 9, f: 1, g: 7, h: -7, i: '3' }]);
    // A numeric string: Spark without ANSI mode (floe's choice, as for `/` by zero) truncates too.
    assert.deepEqual(await s.rows("SELECT CAST('1.7' AS INT) AS a, CAST(' -1.5 ' AS BIGINT) AS b, CAST('12' AS INT) AS c, TRY_CAST('x' AS INT) AS d, CAST(NULL AS INT) AS e, CAST(true AS INT) AS f, CAST(12345678901234567.8 AS BIGINT) AS g"),
      [{ a: 1, b: '-1', c: 12, d: null, e: null, f: 1, g: '12345678901234567' }]);
    assert.deepEqual(await s.rows('SELECT CAST(x AS INT) AS i FROM (VALUES (1.5D), (-0.5D), (2.9D)) AS v(x)'), [{ i: 1 }, { i: 0 }, { i: 2 }]);
    await s.fails("SELECT CAST('x' AS INT)", /FLOE_/);
  } finally {
    await s.close();
  }
});

test('division by zero is NULL (Spark without ANSI mode, as % and div already were)', async () => {
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows('SELECT 1/0 AS a, 1.5D / 0 AS b, CAST(1.5 AS DECIMAL(3,1)) / 0 AS c, 5 % 0 AS d, 7 div 0 AS e, 7.5 div 0 AS f, 6 / 4 AS g, 1 / -x AS h, x / (x - 2) * 2 AS i, 3 / y AS j FROM (SELECT 2 AS x) CROSS JOIN (SELECT 0 AS y)'),
      [{ a: null, b: null, c: null, d: null, e: null, f: null, g: 1.5, h: -0.5, i: null, j: null }]);
    assert.deepEqual(await s.rows('SELECT x / y AS q FROM (VALUES (1, 0), (6, 3), (NULL, 1)) AS v(x, y) ORDER BY q'), [{ q: null }, { q: null }, { q: 2 }]);
    // a CASE divisor (nested CASE, a sign before it) is guarded as a whole
    assert.deepEqual(await s.rows('SELECT 10 / CASE WHEN x > 1 THEN 0 END AS a, 10 / CASE WHEN x > 5 THEN 1 ELSE CASE WHEN x > 1 THEN 4 END END + 1 AS b, 10 / - CASE WHEN x > 1 THEN 2 ELSE 0 END AS c, 1 / CASE x WHEN 2 THEN 0 ELSE 1 END AS d FROM (SELECT 2 AS x)'),
      [{ a: null, b: 3.5, c: -5, d: null }]);
  } finally {
    await s.close();
  }
});

test('LEFT SEMI / LEFT ANTI / SEMI / ANTI JOIN, MINUS, X binary literals, WITH … INSERT', async () => {
  const s = await sqlSession();
  try {
    const a = '(SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT NULL) AS a';
    const b = '(SELECT 2 AS x UNION ALL SELECT 3) AS b';
    const xs = async (sql: string): Promise<unknown[]> => (await s.rows(sql)).map((r) => r.x);
    assert.deepEqual(await xs(`SELECT * FROM ${a} LEFT SEMI JOIN ${b} ON a.x = b.x`), [2]);
    assert.deepEqual(await xs(`SELECT * FROM ${a} SEMI JOIN ${b} ON a.x = b.x`), [2]);
    assert.deepEqual(await xs(`SELECT a.x FROM ${a} LEFT ANTI JOIN ${b} ON a.x = b.x ORDER BY a.x`), [null, 1]);
    assert.deepEqual(await xs(`SELECT a.x FROM ${a} ANTI JOIN ${b} ON a.x = b.x ORDER BY x`), [null, 1]);
    assert.deepEqual(await xs('SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 2) MINUS SELECT 1'), [2]);
    assert.deepEqual(await xs('SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 2) MINUS ALL SELECT 2 ORDER BY x'), [1, 2]);
    assert.deepEqual(await s.rows("SELECT hex(X'0AFF') AS h, octet_length(x'00') AS n, hex(X'') AS e"), [{ h: '0AFF', n: '1', e: '' }]);
    await s.fails("SELECT X'0G'", 'FLOE_SQL_PARSE_ERROR', /hexadecimal/);
    await s.run('CREATE TABLE w (id INT, s STRING) USING delta');
    await s.run("WITH c AS (SELECT 1 AS id, 'a' AS s), d AS (SELECT id + 1 AS id, s FROM c) INSERT INTO w SELECT * FROM c UNION ALL SELECT * FROM d");
    await s.run("WITH c AS (SELECT 3 AS id) INSERT INTO w WITH e AS (SELECT id, 'e' AS s FROM c) SELECT * FROM e");
    assert.deepEqual(await s.rows('SELECT * FROM w ORDER BY id'), [{ id: 1, s: 'a' }, { id: 2, s: 'a' }, { id: 3, s: 'e' }]);
    await s.fails("WITH c AS (SELECT 1) INSERT INTO w VALUES (1, 'x')", 'FLOE_SQL_ANALYSIS_ERROR', /WITH … INSERT … VALUES/);
  } finally {
    await s.close();
  }
});

test("engine errors show DuckDB's first line only: no rewritten SQL, no DuckDB settings", async () => {
  const s = await sqlSession();
  try {
    for (const sql of ["SELECT CAST('x' AS INT)", "SELECT 'abc' < 5", 'SELECT (SELECT id FROM range(2))', 'SELECT nosuchfn(1)', 'SELECT nosuchcol']) {
      const e = await s.fails(sql, /FLOE_/);
      assert.doesNotMatch(e.message, /LINE \d+:|\^|SET scalar_subquery|Did you mean|\n/, `${sql}: ${e.message}`);
    }
  } finally {
    await s.close();
  }
});

test('higher-order functions: exists, forall, aggregate / reduce, array_except, filter and transform with a 0-based index', async () => {
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows('SELECT exists(array(1, 2), x -> x = 2) AS e, exists(array(1), x -> x > 5) AS n, exists(array(), x -> true) AS z, forall(array(2, 4), x -> x % 2 = 0) AS f, forall(array(1, 2), x -> x > 1) AS g, forall(array(), x -> false) AS h'),
      [{ e: true, n: false, z: false, f: true, g: false, h: true }]);
    assert.deepEqual(await s.rows('SELECT aggregate(array(1, 2, 3), 0, (acc, x) -> acc + x) AS a, reduce(array(1, 2, 3), 10, (acc, x) -> acc + x, acc -> acc * 2) AS r, aggregate(array(), 5, (acc, x) -> acc + x) AS e'),
      [{ a: 6, r: 32, e: 5 }]);
    assert.deepEqual(await s.rows('SELECT array_except(array(1, 2, 3, 2, 4), array(2, 5)) AS a, filter(array(5, 6, 7), (x, i) -> i > 0) AS f, filter(array(1, 2, 3), x -> x > 1) AS g, transform(array(10, 20), (x, i) -> x + i) AS t, transform(array(1, 2), x -> x * 10) AS u'),
      [{ a: [1, 3, 4], f: [6, 7], g: [2, 3], t: [10, 21], u: [10, 20] }]);
    // an EXISTS subquery is still one
    assert.deepEqual(await s.rows('SELECT 1 AS x WHERE EXISTS (SELECT 1) AND NOT EXISTS(SELECT 1 WHERE false)'), [{ x: 1 }]);
    for (const f of ['arrays_zip(array(1), array(2))', 'zip_with(array(1), array(2), (x, y) -> x + y)', "map_filter(map('a', 1), (k, v) -> v > 0)", "format_number(1.5, 2)", "next_day(DATE '2024-01-01', 'MO')"]) {
      await s.fails(`SELECT ${f}`, 'FLOE_SQL_ANALYSIS_ERROR', /is not supported by floe SQL/);
    }
  } finally {
    await s.close();
  }
});

test("array and string functions as Spark: array_union / array_distinct order, array_join's null text, split's limit, regexp_replace's $n", async () => {
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows("SELECT array_union(array(3, 1, 2), array(5, 1, 4)) AS u, array_distinct(array(3, 1, 3, NULL, 2, NULL, 1)) AS d, array_join(array('a', NULL, 'b'), ',', 'N') AS j, array_join(array('a', NULL, 'b'), ',') AS j2"),
      [{ u: [3, 1, 2, 5, 4], d: [3, 1, null, 2], j: 'a,N,b', j2: 'a,b' }]);
    assert.deepEqual(await s.rows("SELECT split('a,b,c', ',', 2) AS s2, split('a,b,c', ',', 1) AS s1, split('a,b,c', ',', -1) AS sn, split('a,b,c', ',', 5) AS s5, split('a1b22c', '[0-9]+', 2) AS sr, split('a,b,c', ',') AS s"),
      [{ s2: ['a', 'b,c'], s1: ['a,b,c'], sn: ['a', 'b', 'c'], s5: ['a', 'b', 'c'], sr: ['a', 'b22c'], s: ['a', 'b', 'c'] }]);
    assert.deepEqual(await s.rows("SELECT regexp_replace('abc123', '([a-z]+)([0-9]+)', '$2-$1') AS r, regexp_replace('a.b', '[.]', '\\\\$') AS d, regexp_replace('ab', 'b', 'x') AS p"),
      [{ r: '123-abc', d: 'a$b', p: 'ax' }]);
  } finally {
    await s.close();
  }
});

test('unaliased expressions floe rewrites are named by their Spark text (CTAS keeps the names)', async () => {
  const s = await sqlSession();
  try {
    await s.run("CREATE TABLE src AS SELECT 1 AS id, 2 AS cnt, 'abc' AS s");
    await s.run('CREATE TABLE named AS SELECT CAST(1.7 AS INT), id / cnt, substring(s, 1, 2), id, cnt AS c, upper(s) u, * EXCEPT (s, id, cnt) FROM src');
    const cols = (await s.rows('DESCRIBE named')).map((r) => String(r.col_name));
    assert.deepEqual(cols, ['CAST(1.7 AS INT)', '(id / cnt)', 'substring(s, 1, 2)', 'id', 'c', 'u']);
    assert.ok(cols.every((c) => !/floe_|nullif|main\./.test(String(c))), JSON.stringify(cols));
  } finally {
    await s.close();
  }
});
