/**
 * OPTIMIZE … ZORDER BY: rows clustered by the interleaved ranks of the columns, so a selective
 * filter on either column skips files by stats; dataChange=false with Spark's operation parameters;
 * the data and the change feed unchanged; Spark's errors for partition columns, unknown columns
 * and columns without stats (and its override); the SQL statement and `floe optimize --zorder-by`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { pruneFiles } from '../engine/scan.js';
import { FloeError } from '../errors.js';
import { localCopy, locJoin, newRoot, readText } from './store.js';
import { assertValidTable } from './protocol-checker.js';
import { sqlSession } from './sql-helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create();
  dir = await newRoot('floe-zorder-');
});
after(async () => {
  await floe.close();
});

/** 4 appends of rows with x and y spread independently over [0, 1000): every file spans both ranges. */
async function makeTable(name: string, partitioned = false): Promise<string> {
  const p = locJoin(dir, name);
  for (let i = 0; i < 4; i++) {
    const df = floe.duckdbSql(`SELECT (hash(range * 4 + ${i}) % 1000)::INT AS x, (hash(range * 7 + ${i} + 99) % 1000)::INT AS y, 'r' || range AS s, ${i} % 2 AS p FROM range(0, 20000)`);
    await df.write.delta(p, i ? { mode: 'append' } : { mode: 'error', properties: { 'delta.enableChangeDataFeed': 'true' }, ...(partitioned ? { partitionBy: ['p'] } : {}) });
  }
  return p;
}

async function aggregate(p: string): Promise<Record<string, unknown>> {
  return (await floe.engine.allJson(`SELECT count(*) AS n, sum(x) AS sx, sum(y) AS sy, sum(hash(s) % 1000) AS hs FROM (${await (await floe.read.delta(p)).toSQL()})`))[0]!;
}

const fraction = async (p: string, filter: string): Promise<[number, number]> => {
  const s = await floe.deltaLog(p).snapshot();
  return [pruneFiles(s, [filter]).length, s.files.length];
};

test('ZORDER BY (x, y): a selective filter on either column skips files; same rows; dataChange=false, OPTIMIZE with zOrderBy', async () => {
  const p = await makeTable('plain');
  const before = await aggregate(p);
  const s0 = await floe.deltaLog(p).snapshot();
  // Before: every file holds the whole range of both columns, nothing is skipped.
  assert.deepEqual(await fraction(p, 'x < 50'), [4, 4]);
  const size = s0.files.reduce((n, f) => n + f.size, 0);
  const t = await DeltaTable.forPath(floe, p);
  const r = await t.optimize({ zOrderBy: ['x', 'Y'], targetFileSize: Math.ceil(size / 16) });
  assert.equal(r.version, 4);
  assert.equal(r.metrics.numFilesRemoved, 4);
  assert.ok(r.metrics.numFilesAdded >= 12, `files added: ${r.metrics.numFilesAdded}`);
  assert.deepEqual(await aggregate(p), before);
  for (const f of ['x < 50', 'x = 500', 'y < 50', 'y >= 950']) {
    const [hit, total] = await fraction(p, f);
    // With 2 columns over n files, a 5% range of one column touches about sqrt(n) of them.
    assert.ok(hit <= total / 2, `${f}: ${hit} of ${total} files`);
  }
  const h = (await t.history(1))[0]!;
  assert.equal(h.operation, 'OPTIMIZE');
  assert.equal(h.operationParameters.zOrderBy, '["x","y"]');
  assert.equal(h.operationParameters.predicate, '[]');
  const commit = (await readText(p, '_delta_log/00000000000000000004.json')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, { dataChange?: boolean }>);
  assert.ok(commit.filter((a) => a.add || a.remove).every((a) => (a.add ?? a.remove)!.dataChange === false));
  // The change feed of the OPTIMIZE version is empty.
  const ch = await floe.read.changes(p, { startingVersion: 4, endingVersion: 4 });
  assert.equal((await ch.toArray()).length, 0);
  await assertValidTable(p);
});

test('ZORDER BY on a partitioned table with WHERE: only the chosen partition is rewritten, rows ordered by Z-value', async () => {
  const p = await makeTable('parted', true);
  const before = await aggregate(p);
  const t = await DeltaTable.forPath(floe, p);
  const r = await t.optimize({ where: 'p = 1', zOrderBy: ['y'] });
  assert.equal(r.metrics.numFilesRemoved, 2);
  assert.equal(r.metrics.numFilesAdded, 1);
  assert.deepEqual(await aggregate(p), before);
  const s = await floe.deltaLog(p).snapshot();
  const added = s.files.filter((f) => f.partitionValues.p === '1');
  assert.equal(added.length, 1);
  // Inside the file the rows are in Z-value order (one column: ascending y).
  const ys = (await floe.engine.allJson(`SELECT y FROM read_parquet('${path.join(await localCopy(p), decodeURIComponent(added[0]!.path))}')`)).map((x) => Number(x.y));
  assert.deepEqual(ys, [...ys].sort((a, b) => a - b));
  await assertValidTable(p);
});

test('ZORDER BY errors: partition column, unknown column, column without stats (and the override)', async () => {
  const p = await makeTable('errors', true);
  const t = await DeltaTable.forPath(floe, p);
  const code = async (f: () => Promise<unknown>, c: string, re: RegExp): Promise<void> => {
    await assert.rejects(f, (e: unknown) => e instanceof FloeError && e.code === c && re.test(e.message));
  };
  await code(() => t.optimize({ zOrderBy: ['p'] }), 'DELTA_ZORDERING_ON_PARTITION_COLUMN', /p is a partition column/);
  await code(() => t.optimize({ zOrderBy: ['x', 'nope'] }), 'DELTA_ZORDERING_COLUMN_DOES_NOT_EXIST', /nope does not exist/);
  await code(() => t.optimize({ zOrderBy: ['x', 'X'] }), 'FLOE_INVALID_ARGUMENT', /names a column twice/);
  await code(() => t.optimize({ zOrderBy: [] }), 'FLOE_INVALID_ARGUMENT', /at least one column/);
  await t.setProperties({ 'delta.dataSkippingNumIndexedCols': '1' });
  await code(() => t.optimize({ zOrderBy: ['x', 'y'] }), 'DELTA_ZORDERING_ON_COLUMN_WITHOUT_STATS', /\[y\].*checkStatsCollection\.enabled = false/s);
  const version = (await floe.deltaLog(p).snapshot()).version;
  floe.config.set('spark.databricks.delta.optimize.zorder.checkStatsCollection.enabled', 'false');
  try {
    const r = await t.optimize({ zOrderBy: ['x', 'y'] });
    assert.equal(r.version, version + 1);
  } finally {
    floe.config.unset('spark.databricks.delta.optimize.zorder.checkStatsCollection.enabled');
  }
});

test('SQL OPTIMIZE … ZORDER BY and floe optimize --zorder-by', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE z (a INT, b INT, p STRING) PARTITIONED BY (p)');
    for (let i = 0; i < 3; i++) await s.run(`INSERT INTO z VALUES (${i}, ${10 - i}, 'a'), (${i + 10}, ${i}, 'b')`);
    const r = await s.rows("OPTIMIZE z WHERE p = 'a' ZORDER BY (a, b)");
    assert.equal((r[0]!.metrics as Record<string, number>).numFilesRemoved, 3);
    const h = await s.rows('DESCRIBE HISTORY z LIMIT 1');
    assert.equal(h[0]!.operation, 'OPTIMIZE');
    assert.equal((h[0]!.operationParameters as Record<string, string>).zOrderBy, '["a","b"]');
    await s.run('OPTIMIZE z ZORDER BY a');
    await s.fails('OPTIMIZE z ZORDER BY (p)', 'DELTA_ZORDERING_ON_PARTITION_COLUMN');
    await s.fails('OPTIMIZE z ZORDER BY (c)', 'DELTA_ZORDERING_COLUMN_DOES_NOT_EXIST');
    await s.fails('OPTIMIZE z ZORDER BY (a', /PARSE|SYNTAX/);
  } finally {
    await s.close();
  }
  const p = await makeTable('cli');
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  const ok = run('optimize', p, '--zorder-by', 'x,y');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /version 4: z-ordered 4 files by x, y into 1/);
  const bad = run('optimize', p, '--zorder-by', 'zz');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /DELTA_ZORDERING_COLUMN_DOES_NOT_EXIST/);
  const json = run('optimize', p, '--zorder-by', 'y', '--format', 'json');
  assert.equal(json.status, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout).metrics.numFilesRemoved, 1);
});
