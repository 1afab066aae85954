/**
 * The schema-changing DDL end to end through `floe sql -e` (dist/cli/main.js): ADD COLUMNS, column
 * mapping, RENAME / DROP COLUMN, constraints, ALTER COLUMN, CONVERT TO DELTA; errors on stderr, exit 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

function floeSql(wh: string, script: string, format = 'json'): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'sql', '--warehouse', wh, '--format', format, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(wh: string, script: string, format = 'json'): string {
  const r = floeSql(wh, script, format);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

function fails(wh: string, script: string, code: string): void {
  const r = floeSql(wh, script);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
}

test('floe sql -e: ALTER TABLE … ADD COLUMNS / column mapping / RENAME / DROP COLUMN / constraints / ALTER COLUMN', async () => {
  const wh = await tempDir('floe-sqlddl-');
  ok(wh, "CREATE TABLE t (id INT, name STRING) USING delta TBLPROPERTIES (delta.enableChangeDataFeed = true); INSERT INTO t VALUES (1, 'a'), (2, NULL)");
  fails(wh, 'ALTER TABLE t RENAME COLUMN name TO n', 'DELTA_UNSUPPORTED_RENAME_COLUMN');
  fails(wh, 'ALTER TABLE t DROP COLUMN name', 'DELTA_UNSUPPORTED_DROP_COLUMN');
  ok(wh, "ALTER TABLE t ADD COLUMNS (score DOUBLE COMMENT 'pts'); INSERT INTO t VALUES (3, 'c', 9.5)");
  assert.equal(ok(wh, 'SELECT * FROM t ORDER BY id', 'csv'), 'id,name,score\n1,a,\n2,,\n3,c,9.5\n');
  ok(wh, "ALTER TABLE t SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')");
  assert.equal(ok(wh, "SHOW TBLPROPERTIES t ('delta.columnMapping.mode')"), '{"key":"delta.columnMapping.mode","value":"name"}\n');
  ok(wh, 'ALTER TABLE t RENAME COLUMN name TO full_name; ALTER TABLE t DROP COLUMN score');
  assert.equal(ok(wh, 'SELECT * FROM t ORDER BY id', 'csv'), 'id,full_name\n1,a\n2,\n3,c\n');
  fails(wh, 'ALTER TABLE t ALTER COLUMN full_name SET NOT NULL', 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
  fails(wh, 'ALTER TABLE t ADD CONSTRAINT pos CHECK (id > 1)', 'DELTA_NEW_CHECK_CONSTRAINT_VIOLATION');
  ok(wh, 'ALTER TABLE t ADD CONSTRAINT pos CHECK (id > 0); ALTER TABLE t ALTER COLUMN id SET NOT NULL');
  fails(wh, "INSERT INTO t VALUES (0, 'z')", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
  fails(wh, "INSERT INTO t VALUES (NULL, 'z')", 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
  ok(wh, "ALTER TABLE t DROP CONSTRAINT pos; ALTER TABLE t ALTER COLUMN id DROP NOT NULL; ALTER TABLE t ALTER COLUMN full_name COMMENT 'the name'");
  ok(wh, "INSERT INTO t VALUES (NULL, 'z')");
  const ops = ok(wh, 'DESCRIBE HISTORY t', 'json').trim().split('\n').map((l) => (JSON.parse(l) as { operation: string }).operation);
  assert.deepEqual(ops.slice(0, 12), [
    'WRITE', 'CHANGE COLUMN', 'CHANGE COLUMN', 'DROP CONSTRAINT', 'CHANGE COLUMN', 'ADD CONSTRAINT', 'DROP COLUMNS', 'RENAME COLUMN', 'SET TBLPROPERTIES', 'WRITE', 'ADD COLUMNS', 'WRITE',
  ]);
  // the change feed after the drop, and floe.read.delta on the same table
  const cdf = ok(wh, "SELECT id, full_name, _change_type FROM table_changes('t', 12)", 'json');
  assert.equal(cdf, '{"id":null,"full_name":"z","_change_type":"insert"}\n');
  const floe = await Floe.create();
  try {
    const rows = await (await floe.read.delta(path.join(wh, 'default', 't'))).toJSON();
    assert.deepEqual(rows.map((r) => Object.keys(r)), [['id', 'full_name'], ['id', 'full_name'], ['id', 'full_name'], ['id', 'full_name']]);
  } finally {
    await floe.close();
  }
  // parse / analysis errors name the line and column
  const r = floeSql(wh, 'ALTER TABLE t\n  DROP SOMETHING x');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /FLOE_SQL_PARSE_ERROR.*line 2, column 8/);
});

test('floe sql -e: CONVERT TO DELTA parquet.`path` PARTITIONED BY', async () => {
  const wh = await tempDir('floe-sqlddl-');
  const dir = await tempDir('floe-sqlconv-');
  const floe = await Floe.create();
  try {
    await floe.engine.run(`COPY (SELECT i::INT AS id, i % 2 AS k FROM range(6) r(i)) TO '${dir}' (FORMAT parquet, PARTITION_BY (k))`);
  } finally {
    await floe.close();
  }
  fails(wh, `CONVERT TO DELTA parquet.\`${dir}\``, 'DELTA_UNEXPECTED_NUM_PARTITION_COLUMNS_FROM_FILE_NAME');
  ok(wh, `CONVERT TO DELTA parquet.\`${dir}\` PARTITIONED BY (k BIGINT)`);
  assert.equal(ok(wh, `SELECT k, count(*)::INT AS n FROM delta.\`${dir}\` GROUP BY k ORDER BY k`, 'csv'), 'k,n\n0,3\n1,3\n');
  ok(wh, `CREATE TABLE conv LOCATION '${dir}'`);
  assert.equal(ok(wh, 'DESCRIBE HISTORY conv', 'json').includes('"operation":"CONVERT"'), true);
  fails(wh, `CONVERT TO DELTA parquet.\`${dir}\``, 'DELTA_TABLE_ALREADY_EXISTS');
});
