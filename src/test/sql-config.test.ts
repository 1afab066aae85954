/**
 * The warehouse config file (floe.config.json / --config) with its precedence (flag > FLOE_WAREHOUSE >
 * config file > ./floe-warehouse) and session settings, end to end through `floe sql`; the progress
 * line (terminal only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseWarehouse, loadWarehouseConfig } from '../catalog/config-file.js';
import { startProgress } from '../cli/sql.js';
import { FloeError } from '../errors.js';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

function floe(cwd: string, args: string[], env: Record<string, string | undefined> = {}): { code: number | null; stdout: string; stderr: string } {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  const r = spawnSync(process.execPath, [MAIN, 'sql', ...args], { cwd, encoding: 'utf8', timeout: 60_000, env: e });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('loadWarehouseConfig: floe.config.json in the folder, --config FILE, relative warehouse against the file, clear errors', async () => {
  const dir = await tempDir('floe-config-');
  assert.deepEqual(await loadWarehouseConfig(undefined, dir), { file: null, settings: {} });
  await fs.writeFile(path.join(dir, 'floe.config.json'), JSON.stringify({ warehouse: 'wh', settings: { 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': true, 'x.n': 3 } }));
  const c = await loadWarehouseConfig(undefined, dir);
  assert.equal(c.file, path.join(dir, 'floe.config.json'));
  assert.equal(c.warehouse, path.join(dir, 'wh'));
  assert.deepEqual(c.settings, { 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true', 'x.n': '3' });
  // precedence
  assert.equal(chooseWarehouse('/flag', c, { FLOE_WAREHOUSE: '/env' }), '/flag');
  assert.equal(chooseWarehouse(undefined, c, { FLOE_WAREHOUSE: '/env' }), '/env');
  assert.equal(chooseWarehouse(undefined, c, {}), path.join(dir, 'wh'));
  assert.equal(chooseWarehouse(undefined, { file: null, settings: {} }, {}), path.resolve('floe-warehouse'));
  // --config FILE elsewhere; a missing explicit file is an error
  const other = path.join(dir, 'sub', 'my.json');
  await fs.mkdir(path.dirname(other));
  await fs.writeFile(other, '{"warehouse": "../w2"}');
  assert.equal((await loadWarehouseConfig(other, '/')).warehouse, path.join(dir, 'w2'));
  const code = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
    await assert.rejects(p, (e: unknown) => e instanceof FloeError && e.code === 'FLOE_INVALID_CONFIG' && re.test(e.message));
  };
  await code(loadWarehouseConfig(path.join(dir, 'nope.json')), /Cannot read/);
  for (const [text, re] of [['{', /not JSON/], ['[]', /top level/], ['{"warehose": "x"}', /unknown key 'warehose'/], ['{"warehouse": 3}', /warehouse/], ['{"settings": {"a": {"b": 1}}}', /setting 'a'/]] as const) {
    await fs.writeFile(other, text);
    await code(loadWarehouseConfig(other), re);
  }
});

test('floe sql: the config file sets the warehouse and session defaults; FLOE_WAREHOUSE and --warehouse take precedence', async () => {
  const dir = await tempDir('floe-config-cli-');
  await fs.writeFile(path.join(dir, 'floe.config.json'), JSON.stringify({ warehouse: 'wh', settings: { 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true' } }));
  let r = floe(dir, ['--format', 'csv', '-e', "CREATE TABLE t (id INT); SHOW TBLPROPERTIES t ('delta.enableChangeDataFeed')"], { FLOE_WAREHOUSE: undefined });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /delta\.enableChangeDataFeed,true/);
  await fs.access(path.join(dir, 'wh', 'default', 't', '_delta_log'));
  // RESET returns to the config file's settings, not to nothing
  r = floe(dir, ['--format', 'csv', '-e', "SET spark.databricks.delta.properties.defaults.enableChangeDataFeed = false; RESET; CREATE TABLE t2 (id INT); SHOW TBLPROPERTIES t2 ('delta.enableChangeDataFeed')"], { FLOE_WAREHOUSE: undefined });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /delta\.enableChangeDataFeed,true/);
  // env over config, flag over env
  r = floe(dir, ['-e', 'CREATE TABLE e (id INT)'], { FLOE_WAREHOUSE: path.join(dir, 'envwh') });
  assert.equal(r.code, 0, r.stderr);
  await fs.access(path.join(dir, 'envwh', 'default', 'e'));
  r = floe(dir, ['--warehouse', path.join(dir, 'flagwh'), '-e', 'CREATE TABLE f (id INT)'], { FLOE_WAREHOUSE: path.join(dir, 'envwh') });
  assert.equal(r.code, 0, r.stderr);
  await fs.access(path.join(dir, 'flagwh', 'default', 'f'));
  // --config FILE; a bad file fails clearly before anything runs
  await fs.writeFile(path.join(dir, 'other.json'), JSON.stringify({ warehouse: 'otherwh' }));
  r = floe(dir, ['--config', 'other.json', '-e', 'CREATE TABLE o (id INT)'], { FLOE_WAREHOUSE: undefined });
  assert.equal(r.code, 0, r.stderr);
  await fs.access(path.join(dir, 'otherwh', 'default', 'o'));
  // not a terminal: no progress line on stderr
  r = floe(dir, ['--warehouse', path.join(dir, 'flagwh'), '-e', 'SELECT count(*) AS n FROM range(3)']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  await fs.writeFile(path.join(dir, 'floe.config.json'), '{"warehouse": ');
  r = floe(dir, ['-e', 'CREATE TABLE z (id INT)'], { FLOE_WAREHOUSE: undefined });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[FLOE_INVALID_CONFIG\].*floe\.config\.json/);
});

test('progress line: only on a terminal, only after a second, cleared at the end', async () => {
  const out: string[] = [];
  const tty = { isTTY: true, write: (s: string) => out.push(s) };
  const quick = startProgress(tty);
  quick.stop();
  assert.deepEqual(out, []);
  const slow = startProgress(tty);
  slow.step('statement 1/2 (line 1)');
  await new Promise((r) => setTimeout(r, 1600));
  slow.stop();
  assert.ok(out.some((s) => /… statement 1\/2 \(line 1\) 1s/.test(s)), JSON.stringify(out));
  assert.equal(out.at(-1), '\r\x1b[K');
  const piped: string[] = [];
  const p = startProgress({ isTTY: false, write: (s: string) => piped.push(s) });
  await new Promise((r) => setTimeout(r, 1300));
  p.stop();
  assert.deepEqual(piped, []);
});
