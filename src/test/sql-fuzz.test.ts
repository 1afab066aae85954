/**
 * Fuzz: ≥ 10,000 random truncations and mutations of a statement corpus through executeSql. Each
 * either succeeds or fails with a FloeError — never another exception, never a hang — and a table
 * no statement names is never changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FloeError } from '../errors.js';
import { executeSql } from '../sql/executor.js';
import { rng } from '../examples/medallion/generate.js';
import { sqlSession } from './sql-helpers.js';

const CORPUS = [
  "CREATE TABLE IF NOT EXISTS f (id INT NOT NULL COMMENT 'k', name STRING, p STRING) USING delta PARTITIONED BY (p) TBLPROPERTIES (delta.enableChangeDataFeed = true)",
  "INSERT INTO f VALUES (1, 'a', 'x'), (2, 'b', 'y')",
  "INSERT INTO f (id, p) SELECT id + 10, p FROM f WHERE id < 3",
  "INSERT OVERWRITE f SELECT * FROM f VERSION AS OF 1",
  "UPDATE f AS t SET name = upper(t.name), id = id + 0 WHERE id = 1 AND p = 'x'",
  "DELETE FROM f WHERE name IS NULL OR id > 100",
  "MERGE INTO f t USING (SELECT 1 AS id, 'm' AS name, 'x' AS p) s ON t.id = s.id WHEN MATCHED AND s.name <> 'z' THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT * WHEN NOT MATCHED BY SOURCE AND t.id > 50 THEN DELETE",
  "SELECT p, count(*) AS n, collect_list(name) FROM f GROUP BY p HAVING count(*) > 0 ORDER BY p LIMIT 10",
  "WITH c AS (SELECT id, nvl(name, 'none') AS nm FROM f@v1) SELECT c.*, row_number() OVER (PARTITION BY nm ORDER BY id) FROM c",
  "SELECT * FROM table_changes('f', 0, 2) WHERE _change_type = 'insert'",
  "SELECT date_format(TIMESTAMP '2024-01-01 10:00:00', 'yyyy-MM-dd'), datediff('2024-01-05', '2024-01-01'), 7 div 2, named_struct('a', 1), map('k', 'v'), array(1, 2)[0]",
  "SELECT `id`, \"str\" || 'it\\'s', substring(name, 0, 1), instr(name, 'a') FROM default.f TIMESTAMP AS OF '2099-01-01'",
  "DESCRIBE EXTENDED f",
  "DESCRIBE HISTORY f LIMIT 2",
  "DESCRIBE DETAIL f",
  "SHOW TBLPROPERTIES f",
  "SHOW TABLES IN default",
  "SHOW SCHEMAS",
  "ALTER TABLE f SET TBLPROPERTIES ('delta.checkpointInterval' = 10)",
  "ALTER TABLE f UNSET TBLPROPERTIES IF EXISTS (foo.bar)",
  "OPTIMIZE f WHERE p = 'x'",
  "VACUUM f RETAIN 200 HOURS DRY RUN",
  "SET spark.databricks.delta.properties.defaults.enableChangeDataFeed = true",
  "CREATE SCHEMA IF NOT EXISTS fz COMMENT 'fuzz'",
  "CREATE OR REPLACE TABLE fz.g AS SELECT 1 AS a, 'b' AS b",
  "DROP TABLE IF EXISTS fz.g",
  "SELECT a.id FROM f a JOIN f b ON a.id = b.id AND a.p = b.p WHERE a.id IN (SELECT id FROM f) /* comment ; */ -- tail",
  "RESTORE TABLE f TO VERSION AS OF 1",
  "TRUNCATE TABLE f",
];

const INSERTS = ['(', ')', "'", '"', '`', ';', '--', '/*', '*/', ',', '.', '@v1', '@', '=', '*', ' SELECT ', ' FROM ', ' WHERE ', ' AS ', ' OF ', ' NULL ', ' 1 ', ' -1 ', " 'x' ", ' \\', ' CASE WHEN ', ' END ', ' div ', ' RLIKE ', '::', ':', '[', ']', '{', '->', ' VERSION AS OF ', ' table_changes(', ' delta.`/tmp` ', ' read_csv(', ' ATTACH ', '\n', '\u00e9', '\u0000'];

function mutate(s: string, r: () => number): string {
  const pos = (): number => Math.floor(r() * (s.length + 1));
  const rounds = 1 + Math.floor(r() * 3);
  for (let k = 0; k < rounds; k++) {
    const op = Math.floor(r() * 6);
    const i = pos();
    if (op === 0) s = s.slice(0, i); // truncate
    else if (op === 1) s = s.slice(0, i) + s.slice(Math.min(s.length, i + 1 + Math.floor(r() * 8))); // delete a run
    else if (op === 2) s = s.slice(0, i) + INSERTS[Math.floor(r() * INSERTS.length)] + s.slice(i); // insert a token
    else if (op === 3) {
      const j = pos();
      const [a, b] = i < j ? [i, j] : [j, i];
      s = s.slice(0, a) + s.slice(b, b + (b - a)) + s.slice(a); // duplicate a slice elsewhere
    } else if (op === 4) s = s.slice(0, i) + String.fromCharCode(32 + Math.floor(r() * 95)) + s.slice(i + 1); // replace a char
    else s = s.toUpperCase();
  }
  return s;
}

test('fuzz: 10,000 mutated statements give a FloeError or succeed; never a crash, a hang, or a change to an unnamed table', { timeout: 600_000 }, async () => {
  const s = await sqlSession({ 'spark.databricks.delta.retentionDurationCheck.enabled': 'true' });
  try {
    await s.run("CREATE TABLE guard (id INT, v STRING); INSERT INTO guard VALUES (1, 'keep')");
    for (const stmt of CORPUS.slice(0, 3)) await s.run(stmt);
    const guardBefore = JSON.stringify(await s.rows('DESCRIBE HISTORY guard'));
    const r = rng(20240601);
    const N = 10_000;
    let ok = 0;
    const codes = new Map<string, number>();
    for (let n = 0; n < N; n++) {
      const base = CORPUS[Math.floor(r() * CORPUS.length)]!;
      const text = mutate(base, r);
      const started = Date.now();
      try {
        const res = await executeSql(s.floe, text, { warehouse: s.warehouse });
        if (res.kind === 'rows') await res.dataFrame.count();
        ok++;
      } catch (e) {
        if (!(e instanceof FloeError)) assert.fail(`mutation ${n} threw ${(e as Error)?.stack ?? e}\n--- input ---\n${text}`);
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
      assert.ok(Date.now() - started < 20_000, `mutation ${n} took ${Date.now() - started} ms: ${text}`);
    }
    assert.equal(JSON.stringify(await s.rows('DESCRIBE HISTORY guard')), guardBefore, 'the guard table changed');
    assert.deepEqual(await s.rows('SELECT * FROM guard'), [{ id: 1, v: 'keep' }]);
    assert.ok((codes.get('FLOE_SQL_PARSE_ERROR') ?? 0) > 1000, JSON.stringify([...codes]));
    console.log(`# fuzz: ${ok} succeeded, errors by code: ${JSON.stringify(Object.fromEntries(codes))}`);
  } finally {
    await s.close();
  }
});
