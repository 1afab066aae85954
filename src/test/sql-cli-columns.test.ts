/**
 * Column features end to end through `floe sql -e` (dist/cli/main.js): generated columns, DEFAULT
 * values, Spark SQL CHECK constraints, ALTER COLUMN TYPE with type widening; errors on stderr, exit 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

function floeSql(wh: string, script: string, format = 'csv'): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'sql', '--warehouse', wh, '--format', format, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(wh: string, script: string): string {
  const r = floeSql(wh, script);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

function fails(wh: string, script: string, code: string): string {
  const r = floeSql(wh, script);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
  return r.stderr;
}

test('floe sql -e: GENERATED ALWAYS AS, DEFAULT, Spark SQL CHECK constraints, type widening', async () => {
  const wh = await tempDir('floe-sqlcols-');
  ok(wh, `CREATE TABLE ev (id INT, ts TIMESTAMP, d DATE GENERATED ALWAYS AS (CAST(ts AS DATE)), n INT DEFAULT 7)
    USING delta PARTITIONED BY (d) TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported');
    INSERT INTO ev (id, ts) VALUES (1, TIMESTAMP'2024-03-05 10:00:00');
    UPDATE ev SET ts = TIMESTAMP'2024-04-01 00:00:00' WHERE id = 1`);
  assert.equal(ok(wh, 'SELECT id, d, n FROM ev'), 'id,d,n\n1,2024-04-01,7\n');
  const err = fails(wh, "INSERT INTO ev VALUES (2, TIMESTAMP'2024-03-05 10:00:00', DATE'2000-01-01', 1)", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
  assert.match(err, /Generated Column/);
  ok(wh, "ALTER TABLE ev ADD CONSTRAINT recent CHECK (date_format(d, 'yyyy') >= '2024')");
  fails(wh, "INSERT INTO ev (id, ts) VALUES (3, TIMESTAMP'2019-01-01 00:00:00')", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
  fails(wh, 'ALTER TABLE ev ALTER COLUMN id TYPE BIGINT', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP');
  ok(wh, "ALTER TABLE ev SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true'); ALTER TABLE ev ALTER COLUMN id TYPE BIGINT; INSERT INTO ev (id, ts) VALUES (5000000000, TIMESTAMP'2024-05-01 00:00:00')");
  assert.equal(ok(wh, 'SELECT id, d, n FROM ev ORDER BY id'), 'id,d,n\n1,2024-04-01,7\n5000000000,2024-05-01,7\n');
  assert.match(ok(wh, 'SHOW CREATE TABLE ev'), /GENERATED ALWAYS AS \(CAST\(ts AS DATE\)\)/);
});
