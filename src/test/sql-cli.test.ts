/**
 * `floe sql` end to end (through the test fixture that calls sqlCommand, until main.ts wires it in):
 * -e with several statements, -f, stdin, --format table|csv|json, --warehouse, errors on stderr with
 * exit 1, usage errors with exit 2, and two processes creating the same table at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('./fixtures/sql-cli.js', import.meta.url));

function sql(args: string[], input?: string, env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, input, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('floe sql -e: several statements in one session, formats, errors', async () => {
  const wh = await tempDir('floe-sqlcli-');
  const setup = sql(['--warehouse', wh, '-e', "SET spark.databricks.delta.properties.defaults.enableChangeDataFeed = true; CREATE TABLE t (id INT, name STRING); INSERT INTO t VALUES (1, 'a, \"quoted\"'), (2, NULL)"]);
  assert.equal(setup.code, 0, setup.stderr);
  assert.equal(setup.stderr, '');
  assert.match(setup.stdout, /num_affected_rows/);
  const csv = sql(['--warehouse', wh, '--format', 'csv', '-e', 'SELECT * FROM t ORDER BY id']);
  assert.equal(csv.code, 0, csv.stderr);
  assert.equal(csv.stdout, 'id,name\n1,"a, ""quoted"""\n2,\n');
  const json = sql(['--warehouse', wh, '--format', 'json', '-e', 'SELECT * FROM t ORDER BY id']);
  assert.equal(json.stdout, '{"id":1,"name":"a, \\"quoted\\""}\n{"id":2,"name":null}\n');
  const table = sql(['--warehouse', wh, '-e', 'SELECT id FROM t ORDER BY id']);
  assert.match(table.stdout, /\| id \|\n\+----\+\n\| 1  \|\n\| 2  \|/);
  // the SET applied to the table created after it
  const props = sql(['--warehouse', wh, '--format', 'json', '-e', 'SHOW TBLPROPERTIES t (delta.enableChangeDataFeed)']);
  assert.equal(props.stdout, '{"key":"delta.enableChangeDataFeed","value":"true"}\n');
  // status results in json / csv
  assert.equal(sql(['--warehouse', wh, '--format', 'json', '-e', 'CREATE SCHEMA s']).stdout, '{"status":"created schema s"}\n');
  assert.equal(sql(['--warehouse', wh, '--format', 'csv', '-e', 'SHOW SCHEMAS']).stdout, 'databaseName\ndefault\ns\n');
  // errors: stderr, exit 1
  const bad = sql(['--warehouse', wh, '-e', 'SELECT * FROM t;\nSELEKT 1']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^error \[FLOE_SQL_PARSE_ERROR\] Unknown statement 'SELEKT' \(line 2, column 1\)\n$/);
  const missing = sql(['--warehouse', wh, '-e', 'SELECT * FROM nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /TABLE_OR_VIEW_NOT_FOUND/);
  // usage errors: exit 2
  assert.equal(sql(['--format', 'xml', '-e', 'SELECT 1']).code, 2);
  assert.equal(sql(['--bogus']).code, 2);
});

test('floe sql -f FILE, stdin, FLOE_WAREHOUSE', async () => {
  const wh = await tempDir('floe-sqlcli-');
  const file = path.join(wh, '..', `script-${path.basename(wh)}.sql`);
  await fs.writeFile(file, "-- a script\nCREATE TABLE x (id INT);\nINSERT INTO x VALUES (1), (2);\nSELECT count(*) AS n FROM x;\n");
  const r = sql(['-f', file, '--format', 'json'], undefined, { FLOE_WAREHOUSE: wh });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '{"n":"2"}\n');
  const piped = sql(['--format', 'csv'], 'SELECT id FROM x ORDER BY id;', { FLOE_WAREHOUSE: wh });
  assert.equal(piped.stdout, 'id\n1\n2\n');
  assert.equal(sql(['-f', path.join(wh, 'missing.sql')]).code, 1);
});

test('two processes creating the same table: one table, one clear error', async () => {
  const wh = await tempDir('floe-sqlcli-');
  const run = (): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [CLI, '--warehouse', wh, '-e', 'CREATE TABLE same AS SELECT id FROM range(1000)'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stderr }));
    });
  for (let round = 0; round < 3; round++) {
    await fs.rm(path.join(wh, 'default'), { recursive: true, force: true });
    const results = await Promise.all([run(), run(), run()]);
    const ok = results.filter((r) => r.code === 0);
    const failed = results.filter((r) => r.code !== 0);
    assert.equal(ok.length, 1, JSON.stringify(results));
    for (const f of failed) assert.match(f.stderr, /TABLE_OR_VIEW_ALREADY_EXISTS/);
    const count = sql(['--warehouse', wh, '--format', 'json', '-e', 'SELECT count(*) AS n FROM same']);
    assert.equal(count.stdout, '{"n":"1000"}\n');
    const h = sql(['--warehouse', wh, '--format', 'json', '-e', 'DESCRIBE HISTORY same']);
    assert.equal(h.stdout.trim().split('\n').length, 1);
  }
});

test('timestamps show as Spark shows them in table output (no +00 suffix); csv and json keep the offset', async () => {
  const wh = await tempDir('floe-sql-ts-');
  const q = `CREATE TABLE ts_t (ts TIMESTAMP) TBLPROPERTIES (delta.enableChangeDataFeed = true); INSERT INTO ts_t VALUES (TIMESTAMP '2024-01-02 03:04:05.5'); SELECT ts, _commit_version FROM table_changes('ts_t', 1)`;
  const table = sql(['--warehouse', wh, '-e', q]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /\| 2024-01-02 03:04:05\.5 \| 1 +\|/);
  assert.doesNotMatch(table.stdout, /\+00/);
  const csv = sql(['--warehouse', wh, '--format', 'csv', '-e', 'SELECT ts FROM ts_t']);
  assert.equal(csv.code, 0, csv.stderr);
  assert.match(csv.stdout, /2024-01-02 03:04:05\.5\+00/);
});
