/**
 * `floe write` and `floe checkpoint`: writing from CSV, JSON and Parquet files (create, append,
 * overwrite, --partition-by, --merge-schema, --replace-where, --txn-app-id/--txn-version, --format
 * json), checkpoints, and the exit status and stderr of errors (1 for failures with their error
 * code, 2 for usage errors). Every table written is checked with the protocol checker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { tempDir } from './helpers.js';
import { absent, exists, newLocation, readText, removeKey } from './store.js';
import { assertValidTable } from './protocol-checker.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create();
  dir = await tempDir('floe-cli-write-');
});
after(async () => {
  await floe.close();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function floeCli(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run): Run {
  assert.equal(r.status, 0, `exit status 0 expected; stderr: ${r.stderr}`);
  return r;
}

async function file(name: string, content: string): Promise<string> {
  const p = path.join(dir, name);
  await fs.writeFile(p, content);
  return p;
}

/** Writes a Parquet file with DuckDB from a query. */
async function parquet(name: string, query: string): Promise<string> {
  const p = path.join(dir, name);
  await floe.engine.run(`COPY (${query}) TO '${p.replace(/'/g, "''")}' (FORMAT parquet)`);
  return p;
}

async function newTable(): Promise<string> {
  return newLocation('table', 'floe-cli-t-');
}

async function rows(p: string, order = 'id'): Promise<Record<string, unknown>[]> {
  const s = await Floe.create(); // a fresh session: the CLI changed the table behind this process's back
  try {
    return await (await s.read.delta(p)).orderBy(order).toJSON();
  } finally {
    await s.close();
  }
}

async function snapshotOf(p: string) {
  const s = await Floe.create();
  try {
    return await s.snapshot(p);
  } finally {
    await s.close();
  }
}

test('floe write: create from CSV, append from JSON, overwrite from Parquet', async () => {
  const t = await newTable();
  const csv = await file('orders.csv', 'id,name,amount,day\n1,alice,10.5,2024-01-01\n2,bob,20.25,2024-01-02\n3,carol,,2024-01-03\n');
  const r0 = ok(floeCli('write', t, '--from', csv));
  assert.match(r0.stdout, /wrote version 0: 3 rows in 1 files/);
  const snap = await snapshotOf(t);
  assert.deepEqual(snap.schema.fields.map((f) => [f.name, f.type]), [['id', 'long'], ['name', 'string'], ['amount', 'double'], ['day', 'date']]);
  assert.deepEqual(await rows(t), [
    { id: '1', name: 'alice', amount: 10.5, day: '2024-01-01' },
    { id: '2', name: 'bob', amount: 20.25, day: '2024-01-02' },
    { id: '3', name: 'carol', amount: null, day: '2024-01-03' },
  ]);

  const json = await file('more.json', '{"id": 4, "name": "dave", "amount": 1.0, "day": "2024-02-01"}\n{"id": 5, "name": "eve", "amount": 2.5, "day": "2024-02-02"}\n');
  const r1 = ok(floeCli('write', t, '--from', json, '--mode', 'append'));
  assert.match(r1.stdout, /wrote version 1: 2 rows/);
  const ndjson = await file('one.ndjson', '{"id": 6, "name": "frank", "amount": 3.0, "day": "2024-03-01"}\n');
  ok(floeCli('write', t, '--from', ndjson)); // the CLI's default mode is append
  assert.deepEqual((await rows(t)).map((r) => Number(r.id)), [1, 2, 3, 4, 5, 6]);

  const pq = await parquet('replacement.parquet', "SELECT 100::BIGINT AS id, 'zed' AS name, 9.75::DOUBLE AS amount, DATE '2025-01-01' AS day");
  const r3 = ok(floeCli('write', t, '--from', pq, '--mode', 'overwrite', '--format', 'json'));
  const res = JSON.parse(r3.stdout) as Record<string, unknown>;
  assert.equal(res.version, 3);
  assert.equal(res.skipped, false);
  assert.equal(res.numOutputRows, 1);
  assert.ok(Number(res.numRemovedFiles) >= 3);
  assert.deepEqual(await rows(t), [{ id: '100', name: 'zed', amount: 9.75, day: '2025-01-01' }]);

  const again = ok(floeCli('write', t, '--from', pq, '--mode', 'ignore'));
  assert.match(again.stdout, /nothing written/);
  const err = floeCli('write', t, '--from', pq, '--mode', 'error');
  assert.equal(err.status, 1);
  assert.match(err.stderr, /DELTA_PATH_EXISTS/);
  await assertValidTable(t);
});

test('floe write --partition-by: one and several partition columns', async () => {
  const t = await newTable();
  const csv = await file('parts.csv', 'id,region,kind\n1,eu,a\n2,us,b\n3,eu,b\n4,,a\n');
  ok(floeCli('write', t, '--from', csv, '--partition-by', 'region'));
  assert.deepEqual((await snapshotOf(t)).partitionColumns, ['region']);
  assert.equal((await snapshotOf(t)).files.length, 3, 'eu, us and null');
  assert.deepEqual(await rows(t), [
    { id: '1', region: 'eu', kind: 'a' }, { id: '2', region: 'us', kind: 'b' }, { id: '3', region: 'eu', kind: 'b' }, { id: '4', region: null, kind: 'a' },
  ]);
  await assertValidTable(t);

  const t2 = await newTable();
  ok(floeCli('write', t2, '--from', csv, '--partition-by', 'region, kind'));
  assert.deepEqual((await snapshotOf(t2)).partitionColumns, ['region', 'kind']);
  assert.equal((await snapshotOf(t2)).files.length, 4);
  // Appending with the same partitioning (or none given) works; a different one fails.
  ok(floeCli('write', t2, '--from', csv, '--partition-by', 'region,kind'));
  ok(floeCli('write', t2, '--from', csv));
  const bad = floeCli('write', t2, '--from', csv, '--partition-by', 'kind');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /DELTA_PARTITION_COLUMNS_MISMATCH/);
  assert.equal((await rows(t2)).length, 12);
  await assertValidTable(t2);
});

test('floe write --replace-where overwrites one partition', async () => {
  const t = await newTable();
  ok(floeCli('write', t, '--from', await file('rw.csv', 'id,region\n1,eu\n2,us\n3,eu\n'), '--partition-by', 'region'));
  const eu = await file('rw-eu.csv', 'id,region\n10,eu\n');
  ok(floeCli('write', t, '--from', eu, '--mode', 'overwrite', '--replace-where', "region = 'eu'"));
  assert.deepEqual(await rows(t), [{ id: '2', region: 'us' }, { id: '10', region: 'eu' }]);
  const bad = floeCli('write', t, '--from', eu, '--mode', 'overwrite', '--replace-where', "region = 'us'");
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /DELTA_REPLACE_WHERE_MISMATCH/);
  await assertValidTable(t);
});

test('floe write --merge-schema adds new columns; without it a new column is DELTA_SCHEMA_MISMATCH (exit 1)', async () => {
  const t = await newTable();
  ok(floeCli('write', t, '--from', await file('base.csv', 'id,name\n1,a\n2,b\n')));
  const wider = await file('wider.json', '{"id": 3, "name": "c", "score": 7.5}\n');
  const r = floeCli('write', t, '--from', wider);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /DELTA_SCHEMA_MISMATCH/);
  assert.match(r.stderr, /score/);
  assert.equal(r.stdout, '');
  assert.equal((await snapshotOf(t)).version, 0, 'nothing committed');

  ok(floeCli('write', t, '--from', wider, '--merge-schema'));
  assert.deepEqual((await snapshotOf(t)).schema.fields.map((f) => f.name), ['id', 'name', 'score']);
  assert.deepEqual(await rows(t), [{ id: '1', name: 'a', score: null }, { id: '2', name: 'b', score: null }, { id: '3', name: 'c', score: 7.5 }]);

  const wrongType = await file('wrongtype.csv', 'id,name\nx,y\n');
  const r2 = floeCli('write', t, '--from', wrongType);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /^error \[DELTA_SCHEMA_MISMATCH\]/m);
  await assertValidTable(t);
});

test('floe write --txn-app-id / --txn-version: a repeated batch is skipped, the next one lands', async () => {
  const t = await newTable();
  const b1 = await file('batch1.csv', 'id\n1\n2\n');
  const b2 = await file('batch2.csv', 'id\n3\n');
  ok(floeCli('write', t, '--from', b1, '--txn-app-id', 'loader', '--txn-version', '1'));
  const again = ok(floeCli('write', t, '--from', b1, '--txn-app-id', 'loader', '--txn-version', '1', '--format', 'json'));
  const res = JSON.parse(again.stdout) as Record<string, unknown>;
  assert.equal(res.skipped, true);
  assert.equal(res.version, null);
  const text = ok(floeCli('write', t, '--from', b1, '--txn-app-id', 'loader', '--txn-version', '1'));
  assert.match(text.stdout, /nothing written/);
  ok(floeCli('write', t, '--from', b2, '--txn-app-id', 'loader', '--txn-version', '2'));
  assert.deepEqual((await rows(t)).map((r) => Number(r.id)), [1, 2, 3]);
  assert.equal((await snapshotOf(t)).txnVersion('loader'), 2);

  const half = floeCli('write', t, '--from', b2, '--txn-app-id', 'loader');
  assert.equal(half.status, 1);
  assert.match(half.stderr, /DELTA_INVALID_IDEMPOTENT_WRITES_OPTIONS/);
  const notInt = floeCli('write', t, '--from', b2, '--txn-app-id', 'loader', '--txn-version', 'three');
  assert.equal(notInt.status, 2);
  assert.match(notInt.stderr, /txn-version/);
  await assertValidTable(t);
});

test('floe checkpoint writes a checkpoint and _last_checkpoint; the table reads the same', async () => {
  const t = await newTable();
  const csv = await file('cp.csv', 'id,name\n1,a\n2,b\n');
  ok(floeCli('write', t, '--from', csv));
  ok(floeCli('write', t, '--from', csv));
  const before = await rows(t);
  const r = ok(floeCli('checkpoint', t));
  assert.match(r.stdout, /checkpoint written at version 1/);
  assert.ok(await exists(t, '_delta_log/00000000000000000001.checkpoint.parquet'));
  const last = JSON.parse(await readText(t, '_delta_log/_last_checkpoint')) as Record<string, unknown>;
  assert.equal(last.version, 1);
  ok(floeCli('write', t, '--from', csv));
  const j = JSON.parse(ok(floeCli('checkpoint', t, '--format', 'json')).stdout) as Record<string, unknown>;
  assert.equal(j.version, 2);
  assert.equal(j.path, '_delta_log/00000000000000000002.checkpoint.parquet');
  // Reading from the checkpoint alone.
  for (const v of [0, 1]) await removeKey(t, `_delta_log/${String(v).padStart(20, '0')}.json`);
  assert.deepEqual(await rows(t), [...before, { id: '1', name: 'a' }, { id: '2', name: 'b' }].sort((a, b) => Number(a.id) - Number(b.id)));
  await assertValidTable(t);

  const missing = floeCli('checkpoint', await newLocation('no-such-table'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /DELTA_TABLE_NOT_FOUND/);
});

test('usage errors exit 2: no --from, unknown file extension, bad --mode, no PATH', async () => {
  const t = await newTable();
  const noFrom = floeCli('write', t);
  assert.equal(noFrom.status, 2);
  assert.match(noFrom.stderr, /--from/);
  const xlsx = await file('data.xlsx', 'id\n1\n');
  const ext = floeCli('write', t, '--from', xlsx);
  assert.equal(ext.status, 2);
  assert.match(ext.stderr, /\.csv|format/);
  const csv = await file('u.csv', 'id\n1\n');
  const mode = floeCli('write', t, '--from', csv, '--mode', 'upsert');
  assert.equal(mode.status, 2);
  assert.match(mode.stderr, /--mode/);
  const noPath = floeCli('write', '--from', csv);
  assert.equal(noPath.status, 2);
  const unknownFlag = floeCli('write', t, '--from', csv, '--partition', 'id');
  assert.equal(unknownFlag.status, 2);
  assert.ok(await absent(t), 'no usage error creates anything');
});

test('a missing source file fails with exit 1 and creates no table', async () => {
  const t = await newTable();
  const r = floeCli('write', t, '--from', path.join(dir, 'nope.csv'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nope\.csv/);
  assert.ok(await absent(t, '_delta_log'));
});
