/**
 * Damaged logs and tables: every case copies a corpus table to a temporary folder, breaks it, and
 * checks that floe either still reads the right rows (recoverable damage) or fails with a clear,
 * typed error (never a wrong table).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { CorruptLogError, FloeError } from '../errors.js';
import { corpus } from './helpers.js';
import { copyTableIn, isRemoteStore, listKeys, readBytes, readText, removeKey, writeRaw } from './store.js';

/** Copies a corpus table to a temp folder with every file writable (the corpus is read-only), or into the remote test store. */
async function brokenCopy(t: TestContext, rel: string): Promise<string | null> {
  const dir = corpus(rel);
  if (!dir) {
    t.skip('conformance corpus absent');
    return null;
  }
  const dst = await copyTableIn(path.join(dir, rel)); // writable copy (local: temp folder, else the test store)
  if (!isRemoteStore) t.after(() => fs.rm(dst, { recursive: true, force: true }));
  return dst;
}

/** A fresh session per case: sessions cache parsed commits per table. */
async function withFloe<T>(fn: (floe: Floe) => Promise<T>): Promise<T> {
  const floe = await Floe.create();
  try {
    return await fn(floe);
  } finally {
    await floe.close();
  }
}

/** Keys of a commit and a checkpoint in the table's store. */
const commit = (v: number): string => `_delta_log/${String(v).padStart(20, '0')}.json`;
const checkpoint = (v: number): string => `_delta_log/${String(v).padStart(20, '0')}.checkpoint.parquet`;

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<FloeError> {
  let caught: FloeError | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    caught = e;
    return true;
  });
  return caught!;
}

async function count(dir: string, options = {}): Promise<number> {
  return withFloe(async (floe) => (await floe.read.delta(dir, options)).count());
}

// dat/with_checkpoint: commits 0-3, checkpoint at 2, `_last_checkpoint` → 2. Latest rows (Spark):
const WITH_CHECKPOINT_LATEST = [
  { letter: 'a', int: '93', date: '1975-06-01' },
  { letter: 'a', int: '595', date: '2013-03-01' },
  { letter: 'c', int: '620', date: '1983-10-01' },
  { letter: null, int: '653', date: '1995-12-01' },
  { letter: 'b', int: '753', date: '2012-05-01' },
];

async function latestRows(dir: string): Promise<unknown[]> {
  return withFloe(async (floe) => (await floe.read.delta(dir)).orderBy('int').toJSON());
}

// ---------------------------------------------------------------------------------------------
// Corrupt commits
// ---------------------------------------------------------------------------------------------

test('truncated JSON in the latest commit: CorruptLogError naming the file and line', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  const text = await readText(dir, commit(1));
  await writeRaw(dir, commit(1), text.slice(0, text.length - 40)); // cuts into line 2 (commitInfo)
  const e = await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /00000000000000000001\.json line 2/);
  assert.ok(e instanceof CorruptLogError);
  assert.equal(e.details.file, '_delta_log/00000000000000000001.json');
  assert.equal(e.details.line, 2);
  assert.match(e.message, /invalid JSON/);
  assert.equal(await count(dir, { versionAsOf: 0 }), 3, 'versions before the damage still read');
});

test('an add action without its path: DELTA_LOG_CORRUPT naming the field, file and line', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  const lines = (await readText(dir, commit(1))).trim().split('\n');
  const add = JSON.parse(lines[0]!) as { add: Record<string, unknown> };
  delete add.add.path;
  lines[0] = JSON.stringify(add);
  await writeRaw(dir, commit(1), lines.join('\n') + '\n');
  const e = await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /'path'/);
  assert.ok(e instanceof CorruptLogError);
  assert.match(e.message, /00000000000000000001\.json line 1/);
});

test('a line that is JSON but not an object, or an action that is not an object: DELTA_LOG_CORRUPT', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  const original = await readText(dir, commit(1));
  await writeRaw(dir, commit(1), original + '[1,2,3]\n');
  await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /line 3/);
  await writeRaw(dir, commit(1), original + '{"add":"part-00000.parquet"}\n');
  await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /line 3/);
});

test('unknown actions and unknown fields are ignored', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  const lines = (await readText(dir, commit(1))).trim().split('\n');
  const add = JSON.parse(lines[0]!) as { add: Record<string, unknown> };
  add.add.someFutureField = { nested: [1, 2] };
  lines[0] = JSON.stringify({ ...add, alsoUnknownAtTopLevel: 42 });
  lines.push(JSON.stringify({ someFutureAction: { foo: 'bar' } }));
  lines.push('');
  await writeRaw(dir, commit(1), lines.join('\n') + '\n');
  assert.equal(await count(dir), 5);
  await withFloe(async (floe) => {
    const h = await (await DeltaTable.forPath(floe, dir)).history();
    assert.deepEqual(h.map((e) => e.version), [1, 0]);
  });
});

// ---------------------------------------------------------------------------------------------
// Missing data files, gaps, empty logs
// ---------------------------------------------------------------------------------------------

test('a deleted data file: the snapshot loads, reading rows fails with DELTA_FILE_NOT_FOUND', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  const gone = 'part-00000-c156ac8b-f738-4479-803d-750072dd4c51-c000.snappy.parquet'; // added by commit 1
  await removeKey(dir, gone);
  await withFloe(async (floe) => {
    const snap = await floe.snapshot(dir);
    assert.equal(snap.version, 1);
    assert.equal(snap.files.length, 2);
    const df = await floe.read.delta(dir);
    const e = await rejectsWith(df.toArray(), 'DELTA_FILE_NOT_FOUND', new RegExp(gone.replace(/\./g, '\\.')));
    assert.ok(String(e.details.file).endsWith(gone));
    await rejectsWith(df.count(), 'DELTA_FILE_NOT_FOUND');
    assert.equal(await (await floe.read.delta(dir, { versionAsOf: 0 })).count(), 3, 'v0 does not need the file');
  });
});

test('a gap in versions: DELTA_LOG_CORRUPT naming the missing commit', async (t) => {
  const dir = await brokenCopy(t, 'dat/multi_partitioned/delta');
  if (!dir) return;
  await removeKey(dir, commit(1));
  const e = await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /commit 1 is missing/);
  assert.ok(e instanceof CorruptLogError);
  await rejectsWith(count(dir, { versionAsOf: 2 }), 'DELTA_LOG_CORRUPT');
  assert.equal(await count(dir, { versionAsOf: 0 }), 3, 'the version before the gap still reads');
});

test('an empty _delta_log, or none at all: DELTA_TABLE_NOT_FOUND', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  for (const k of await listKeys(dir, '_delta_log/')) await removeKey(dir, k);
  await rejectsWith(count(dir), 'DELTA_TABLE_NOT_FOUND');
  await withFloe(async (floe) => {
    await rejectsWith(DeltaTable.forPath(floe, dir), 'DELTA_TABLE_NOT_FOUND');
    assert.equal(await DeltaTable.isDeltaTable(floe, dir), false);
  });
  // Only non-log files left in _delta_log (crc, temp files) is still no table.
  await writeRaw(dir, '_delta_log/.00000000000000000000.json.crc', 'x');
  await writeRaw(dir, '_delta_log/_last_checkpoint', '{"version":0,"size":3}');
  await rejectsWith(count(dir), 'DELTA_TABLE_NOT_FOUND');
  for (const k of await listKeys(dir, '_delta_log/')) await removeKey(dir, k);
  await rejectsWith(count(dir), 'DELTA_TABLE_NOT_FOUND');
});

// ---------------------------------------------------------------------------------------------
// _last_checkpoint and checkpoints
// ---------------------------------------------------------------------------------------------

test('a garbage _last_checkpoint is ignored: the table reads correctly from the listing', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  const hint = '_delta_log/_last_checkpoint';
  for (const content of ['{"version": garbage', '', 'null', '[]', '{"size": 4}', '{"version": "2"}', '\u0000\u0001\u0002']) {
    await writeRaw(dir, hint, content);
    assert.deepEqual(await latestRows(dir), WITH_CHECKPOINT_LATEST, `_last_checkpoint = ${JSON.stringify(content)}`);
  }
});

test('a _last_checkpoint naming a checkpoint that does not exist is ignored', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  const hint = '_delta_log/_last_checkpoint';
  for (const v of [1, 3, 7, 1000]) {
    await writeRaw(dir, hint, JSON.stringify({ version: v, size: 4 }));
    assert.deepEqual(await latestRows(dir), WITH_CHECKPOINT_LATEST, `_last_checkpoint version ${v}`);
    await withFloe(async (floe) => assert.equal((await floe.snapshot(dir)).version, 3));
  }
  // A table without any checkpoint and a hint pointing into the middle of its log.
  const mp = await brokenCopy(t, 'dat/multi_partitioned/delta');
  if (!mp) return;
  await writeRaw(mp, '_delta_log/_last_checkpoint', JSON.stringify({ version: 1, size: 3 }));
  assert.equal(await count(mp), 2);
  await withFloe(async (floe) => assert.equal((await floe.snapshot(mp)).files.length, 2));
});

test('a garbage checkpoint with its commits still present: reads fall back to the commits', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  await writeRaw(dir, checkpoint(2), 'this is not a parquet file');
  assert.deepEqual(await latestRows(dir), WITH_CHECKPOINT_LATEST);
  assert.equal(await count(dir, { versionAsOf: 2 }), 5);
  assert.equal(await count(dir, { versionAsOf: 3 }), 5);
});

test('a truncated checkpoint with its commits still present: reads fall back to the commits', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  const bytes = await readBytes(dir, checkpoint(2));
  await writeRaw(dir, checkpoint(2), bytes.subarray(0, Math.floor(bytes.length / 2)));
  assert.deepEqual(await latestRows(dir), WITH_CHECKPOINT_LATEST);
});

test('a checkpoint that is valid Parquet but holds no actions: reads fall back to the commits', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  // A data file in place of the checkpoint: readable Parquet, no protocol/metaData/add columns.
  await writeRaw(dir, checkpoint(2), await readBytes(dir, 'part-00000-70b1dcdf-0236-4f63-a072-124cdbafd8a0-c000.snappy.parquet'));
  assert.deepEqual(await latestRows(dir), WITH_CHECKPOINT_LATEST);
});

test('a garbage checkpoint whose earlier commits were removed: a clear DELTA_LOG_CORRUPT', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  await writeRaw(dir, checkpoint(2), 'this is not a parquet file');
  await removeKey(dir, commit(0));
  await removeKey(dir, commit(1));
  const e = await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /[Cc]heckpoint 2/);
  assert.ok(e instanceof CorruptLogError);
});

test('a valid-Parquet checkpoint without actions whose earlier commits were removed: DELTA_LOG_CORRUPT', async (t) => {
  const dir = await brokenCopy(t, 'dat/with_checkpoint/delta');
  if (!dir) return;
  await writeRaw(dir, checkpoint(2), await readBytes(dir, 'part-00000-70b1dcdf-0236-4f63-a072-124cdbafd8a0-c000.snappy.parquet'));
  await removeKey(dir, commit(0));
  await removeKey(dir, commit(1));
  await rejectsWith(count(dir), 'DELTA_LOG_CORRUPT', /[Cc]heckpoint 2/);
});

test('a log that starts at a checkpoint (no_replay) reads from the checkpoint alone', async (t) => {
  const dir = await brokenCopy(t, 'dat/no_replay/delta');
  if (!dir) return;
  await removeKey(dir, '_delta_log/_last_checkpoint');
  await withFloe(async (floe) => {
    assert.equal((await floe.snapshot(dir)).version, 3);
    assert.equal(await (await floe.read.delta(dir)).count(), 5);
  });
});

// ---------------------------------------------------------------------------------------------
// Protocol
// ---------------------------------------------------------------------------------------------

async function upgradeProtocol(dir: string, protocol: Record<string, unknown>): Promise<void> {
  await writeRaw(dir, commit(2), [
    JSON.stringify({ protocol }),
    JSON.stringify({ commitInfo: { timestamp: 1674611500000, operation: 'UPGRADE PROTOCOL', operationParameters: {} } }),
    '',
  ].join('\n'));
}

test('a protocol requiring reader version 4: DELTA_UNSUPPORTED_FEATURES_FOR_READ naming the version', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  await upgradeProtocol(dir, { minReaderVersion: 4, minWriterVersion: 7 });
  const e = await rejectsWith(count(dir), 'DELTA_UNSUPPORTED_FEATURES_FOR_READ', /reader version 4/);
  assert.equal(e.details.minReaderVersion, 4);
  assert.equal(await count(dir, { versionAsOf: 1 }), 5, 'versions before the upgrade still read');
});

test('an unknown reader feature: DELTA_UNSUPPORTED_FEATURES_FOR_READ naming the feature', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  await upgradeProtocol(dir, {
    minReaderVersion: 3,
    minWriterVersion: 7,
    readerFeatures: ['deletionVectors', 'fancyNewThing'],
    writerFeatures: ['deletionVectors', 'fancyNewThing'],
  });
  const e = await rejectsWith(count(dir), 'DELTA_UNSUPPORTED_FEATURES_FOR_READ', /fancyNewThing/);
  assert.deepEqual(e.details.features, ['fancyNewThing']);
  assert.doesNotMatch(e.message, /deletionVectors/, 'only unsupported features are named');
});

test('an unknown writer-only feature does not block reading', async (t) => {
  const dir = await brokenCopy(t, 'dat/basic_append/delta');
  if (!dir) return;
  await upgradeProtocol(dir, { minReaderVersion: 1, minWriterVersion: 7, writerFeatures: ['someWriterOnlyThing'] });
  assert.equal(await count(dir), 5);
});
