/** Incremental reads of a Delta table: the append-only stream and the change feed, in micro-batches. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { readChangeFeedBatch, readStreamBatch } from '../streaming/delta-source.js';
import { applyChanges } from '../pipelines/auto-cdc.js';
import { isRemoteStore, locJoin, newRoot } from './store.js';

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create({ threads: 2, config: { 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true' } });
  dir = await newRoot('floe-source-');
});
after(async () => {
  await floe.close();
  if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
});

const ids = async (df: { toJSON(): Promise<Record<string, unknown>[]> }): Promise<number[]> => (await df.toJSON()).map((r) => Number(r.id)).sort((a, b) => a - b);
const append = (t: string, from: number, to: number) => floe.duckdbSql(`SELECT range AS id, 'v' || range AS v FROM range(${from}, ${to})`).write.delta(t, { mode: 'append' });

test('append-only stream: first the snapshot, then only new appends, whole commits per batch', async () => {
  const t = locJoin(dir, 'appends');
  await append(t, 0, 2); // v0
  const first = await readStreamBatch(floe, t);
  assert.ok(first);
  assert.deepEqual(await ids(first.df), [0, 1]);
  assert.equal(first.endVersion, 0);
  assert.equal(await readStreamBatch(floe, t, { lastVersion: 0 }), null);
  await append(t, 2, 4); // v1
  await append(t, 4, 6); // v2
  await append(t, 6, 8); // v3
  const b1 = await readStreamBatch(floe, t, { lastVersion: 0, maxFilesPerTrigger: 2 });
  assert.ok(b1);
  assert.deepEqual([b1.startVersion, b1.endVersion], [1, 2]);
  assert.deepEqual(await ids(b1.df), [2, 3, 4, 5]);
  const b2 = await readStreamBatch(floe, t, { lastVersion: b1.endVersion, maxBytesPerTrigger: 1 }); // at least one commit
  assert.ok(b2);
  assert.deepEqual([b2.startVersion, b2.endVersion], [3, 3]);
  assert.deepEqual(await ids(b2.df), [6, 7]);
  // startingVersion without a checkpoint.
  const fromV2 = await readStreamBatch(floe, t, { startingVersion: 2 });
  assert.deepEqual(await ids(fromV2!.df), [4, 5, 6, 7]);
});

test('append-only stream: a commit that deletes rows fails the stream unless skipChangeCommits', async () => {
  const t = locJoin(dir, 'changes');
  await append(t, 0, 3); // v0
  await (await DeltaTable.forPath(floe, t)).delete('id = 1'); // v1
  await append(t, 3, 5); // v2
  await assert.rejects(readStreamBatch(floe, t, { lastVersion: 0 }), (e: Error & { code?: string }) => e.code === 'DELTA_SOURCE_TABLE_IGNORE_CHANGES' && /version 1/.test(e.message));
  const b = await readStreamBatch(floe, t, { lastVersion: 0, skipChangeCommits: true });
  assert.ok(b);
  assert.deepEqual(b.skippedChangeCommits, [1]);
  assert.deepEqual(await ids(b.df), [3, 4]);
  assert.equal(b.endVersion, 2);
  // The files read: v2's, not the skipped DELETE's rewritten file.
  const v2 = (await floe.deltaLog(t).readCommit(2)).adds;
  assert.equal(b.numFiles, v2.length);
  assert.equal(b.numBytes, v2.reduce((x, a) => x + a.size, 0));
});

test('append-only stream: a commit that only deletes is DELTA_SOURCE_IGNORE_DELETE, which ignoreDeletes skips (updates still fail)', async () => {
  const t = locJoin(dir, 'deletes');
  await append(t, 0, 3); // v0
  await append(t, 3, 5); // v1
  await (await DeltaTable.forPath(floe, t)).delete('id >= 3'); // v2: v1's file removed whole, nothing added
  await append(t, 5, 6); // v3
  await assert.rejects(readStreamBatch(floe, t, { lastVersion: 1 }), (e: Error & { code?: string }) => e.code === 'DELTA_SOURCE_IGNORE_DELETE' && /version 2/.test(e.message) && /ignoreDeletes/.test(e.message));
  const b = await readStreamBatch(floe, t, { lastVersion: 1, ignoreDeletes: true });
  assert.deepEqual(b!.skippedChangeCommits, [2]);
  assert.deepEqual(await ids(b!.df), [5]);
  await (await DeltaTable.forPath(floe, t)).update({ condition: 'id = 0', set: { id: '100' } }); // v4: an update
  await assert.rejects(readStreamBatch(floe, t, { lastVersion: 3, ignoreDeletes: true }), (e: Error & { code?: string }) => e.code === 'DELTA_SOURCE_TABLE_IGNORE_CHANGES');
});

test('change feed batches, applied to an AUTO CDC target (sequence = commit version)', async () => {
  const src = locJoin(dir, 'cdf_src');
  await append(src, 0, 3); // v0: inserts 0,1,2
  const table = await DeltaTable.forPath(floe, src);
  await table.update({ condition: 'id = 1', set: { v: "'changed'" } }); // v1
  await table.delete('id = 2'); // v2
  const target = locJoin(dir, 'cdf_target');
  let last: number | undefined;
  let batchId = 0;
  for (;;) {
    const b = await readChangeFeedBatch(floe, src, { lastVersion: last, maxFilesPerTrigger: 1 });
    if (!b) break;
    assert.equal(b.startVersion, b.endVersion, 'one commit per batch here');
    const events = floe.duckdbSql(`SELECT * FROM (${await b.df.toSQL()}) WHERE _change_type <> 'update_preimage'`);
    await applyChanges(floe, {
      target, source: events, keys: ['id'], sequenceBy: '_commit_version', applyAsDeletes: "_change_type = 'delete'",
      exceptColumnList: ['_change_type', '_commit_version', '_commit_timestamp'], storedAsScdType: 1, flowName: 'cdf', batchId: batchId++,
    });
    last = b.endVersion;
  }
  assert.equal(last, 2);
  const rows = (await (await floe.read.delta(target)).orderBy('id').toJSON()).map((r) => [Number(r.id), r.v]);
  assert.deepEqual(rows, [[0, 'v0'], [1, 'changed']]);
});

test('change feed without a starting version: first the latest snapshot as inserts of its version (as Spark), then the changes after it; works when the feed was enabled late', async () => {
  const src = locJoin(dir, 'cdf_late');
  await floe.duckdbSql(`SELECT range AS id, 'v' || range AS v FROM range(0, 2)`).write.delta(src, { mode: 'append', properties: { 'delta.enableChangeDataFeed': 'false' } }); // v0
  const table = await DeltaTable.forPath(floe, src);
  await table.update({ condition: 'id = 1', set: { v: "'u'" } }); // v1, no change data
  await floe.sql(`ALTER TABLE delta.\`${src}\` SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`); // v2
  await append(src, 2, 3); // v3
  // From version 0 the feed is missing (v1 has no change data); without a starting version it is not read.
  await assert.rejects(readChangeFeedBatch(floe, src, { startingVersion: 0 }), (e: Error & { code?: string }) => e.code === 'DELTA_MISSING_CHANGE_DATA');
  const first = (await readChangeFeedBatch(floe, src))!;
  assert.deepEqual([first.startVersion, first.endVersion], [3, 3]);
  const rows = await first.df.orderBy('id').toJSON();
  assert.deepEqual(rows.map((r) => [Number(r.id), r.v, r._change_type, Number(r._commit_version)]), [[0, 'v0', 'insert', 3], [1, 'u', 'insert', 3], [2, 'v2', 'insert', 3]]);
  const ts = (await table.history(1))[0]!.timestamp;
  assert.equal(new Date(String(rows[0]!._commit_timestamp)).getTime(), new Date(String(ts)).getTime());
  assert.equal(await readChangeFeedBatch(floe, src, { lastVersion: first.endVersion }), null);
  await table.delete('id = 0'); // v4
  const next = (await readChangeFeedBatch(floe, src, { lastVersion: first.endVersion }))!;
  assert.deepEqual((await next.df.toJSON()).map((r) => [Number(r.id), r._change_type, Number(r._commit_version)]), [[0, 'delete', 4]]);
});
