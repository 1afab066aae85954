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
