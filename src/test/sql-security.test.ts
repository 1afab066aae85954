/**
 * Security of expression strings: `checkExpression` (src/sql/check-expression.ts) accepts row
 * expressions and rejects a second statement, comments, subqueries / table references and
 * file-reading functions. The API tests check that a predicate passed to df.filter,
 * DeltaTable.delete / update and merge cannot run a second statement or read a file outside the
 * table (the API guards them with checkExpression; see src/expression-guard.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FloeError } from '../errors.js';
import { Floe } from '../floe.js';
import { checkExpression } from '../sql/check-expression.js';
import { DeltaTable } from '../table/delta-table.js';
import { writeDelta } from '../table/write.js';
import { tempDir } from './helpers.js';

const SAFE = [
  'id = 1', "name = 'a;b' AND id > 2", "name LIKE '%--x%'", "name = 'it''s'", '"weird col" IS NOT NULL', 'target.id = source.id AND source.op <> \'D\'',
  "extract(year FROM d) = 2024", "substring(name FROM 1 FOR 2) = 'ab'", "CASE WHEN a > 1 THEN 'x' ELSE NULL END = 'x'", 'id IN (1, 2, 3)',
  "CAST(id AS VARCHAR) || '/' = '1/'", 'list_contains([1, 2], id)', "coalesce(a, 0) + 1 > 2", "s.select = 1", 'abs(-1.5e3) > 0', "d > DATE '2020-01-01'",
  "regexp_matches(name, '^a.*(b|c)$')", "map_extract(m, 'k')[1] = 1",
];

const UNSAFE: [string, RegExp][] = [
  ['1 = 1; DROP TABLE t', /';'/],
  ["id = 1; COPY (SELECT 1) TO '/tmp/x'", /';'/],
  ['id = 1 -- hidden', /comments/],
  ['id = 1 /* ; DROP */', /comments/],
  ["id IN (SELECT id FROM read_csv('/etc/passwd'))", /SELECT|read_csv/],
  ["id IN (FROM '/etc/passwd')", /FROM/],
  ["EXISTS (FROM read_parquet('/x.parquet'))", /FROM|read_parquet/],
  ["length(read_text('/etc/passwd')) > 0", /read_text/],
  ['getenv(\'HOME\') IS NOT NULL', /getenv/],
  ["\"read_csv\"('/etc/passwd') IS NULL", /read_csv/],
  ["(SELECT 1) = 1", /SELECT/],
  ['1 = 1) UNION ALL (SELECT 1', /UNION|SELECT|unbalanced/],
  ['1 = 1)', /unbalanced/],
  ["name = 'a\\' ; DROP TABLE t; --'", /';'|comments/],
  ["name = E'\\' ; DROP'", /escape strings/],
  ['$$x$$ = 1', /character '\$'/],
  ['`id` = 1', /character '`'/],
  ["current_setting('threads') = '2'", /current_setting/],
  ["id = (TABLE t)", /TABLE/],
  ["glob('/etc/*') IS NOT NULL", /glob/],
  ["parquet_metadata('/x') IS NULL", /parquet_metadata/],
  ["duckdb_settings() IS NULL", /duckdb_settings/],
  ["sqlite_scan('/x', 't') IS NULL", /sqlite_scan/],
  ["id = 1 'unclosed", /unclosed/],
];

test('checkExpression accepts row expressions', () => {
  for (const e of SAFE) assert.doesNotThrow(() => checkExpression(e), e);
});

test('checkExpression rejects statements, comments, subqueries, file and settings functions', () => {
  for (const [e, why] of UNSAFE) {
    assert.throws(() => checkExpression(e), (err: unknown) => err instanceof FloeError && err.code === 'FLOE_UNSAFE_EXPRESSION' && why.test(err.message), e);
  }
});

/** Runs an API call with a hostile predicate: it must throw and leave the secret file unread and the table unchanged. */
async function hostile(run: (floe: Floe, table: string, secret: string, marker: string) => Promise<unknown>): Promise<void> {
  const floe = await Floe.create();
  try {
    const dir = await tempDir('floe-sec-');
    const table = path.join(dir, 'table');
    const secret = path.join(dir, 'secret.csv');
    const marker = path.join(dir, 'written.csv');
    await fs.writeFile(secret, 'id\n42\n');
    await writeDelta(floe, floe.duckdbSql("SELECT 1::INT AS id, 'a' AS name"), table);
    const v0 = await (await DeltaTable.forPath(floe, table)).version();
    let leaked = false;
    try {
      const out = await run(floe, table, secret, marker);
      leaked = JSON.stringify(out ?? null).includes('42');
      assert.fail(`the hostile predicate ran (result ${JSON.stringify(out)?.slice(0, 200)})`);
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
    }
    assert.ok(!leaked);
    await assert.rejects(fs.access(marker), 'a second statement wrote a file');
    assert.equal(await (await DeltaTable.forPath(floe, table)).version(), v0);
  } finally {
    await floe.close();
  }
}


test('API: df.filter cannot read a file outside the table or run a second statement', async () => {
  await hostile(async (floe, table, secret) => (await floe.read.delta(table)).filter(`id IN (SELECT id FROM read_csv('${secret}'))`).toJSON());
  await hostile(async (floe, table, secret) => (await floe.read.delta(table)).filter(`true) UNION ALL (SELECT 42, 'x' FROM read_csv('${secret}')`).toJSON());
  await hostile(async (floe, table, _s, marker) => (await floe.read.delta(table)).filter(`true; COPY (SELECT 1) TO '${marker}'`).toJSON());
});

test('API: DeltaTable.delete / update predicates and values are checked', async () => {
  await hostile(async (floe, table, secret) => (await DeltaTable.forPath(floe, table)).delete(`id IN (FROM read_csv('${secret}'))`));
  await hostile(async (floe, table, secret) => (await DeltaTable.forPath(floe, table)).update({ condition: 'true', set: { name: `(SELECT string_agg(id::VARCHAR) FROM read_csv('${secret}'))` } }));
  await hostile(async (floe, table, _s, marker) => (await DeltaTable.forPath(floe, table)).delete(`true; COPY (SELECT 1) TO '${marker}'`));
});

test('API: merge conditions are checked', async () => {
  await hostile(async (floe, table, secret) => {
    const t = await DeltaTable.forPath(floe, table);
    const src = (await floe.read.delta(table)).alias('s');
    return t.merge(src, `target.id = s.id OR target.id IN (FROM read_csv('${secret}'))`).whenMatchedDelete().execute();
  });
});
