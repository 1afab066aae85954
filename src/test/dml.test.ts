/**
 * Row-level operations: DELETE, UPDATE and MERGE (copy-on-write), their commit actions, metrics,
 * change data (cdc files in `_change_data/` when delta.enableChangeDataFeed=true), constraint and
 * append-only checks, MERGE clause semantics (order, conditions, multiple matches, null keys, schema
 * evolution, file skipping), history, and concurrent MERGEs (disjoint partitions commit, overlapping
 * files fail with a typed conflict and nothing is lost or applied twice).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { FloeError } from '../errors.js';
import { DeltaTable } from '../table/delta-table.js';
import type { DataFrame } from '../dataframe.js';
import { tempDir } from './helpers.js';
import { absent, exists, listKeys, listNames, locJoin, newRoot, readText } from './store.js';

type Row = Record<string, unknown>;
const CDF = { 'delta.enableChangeDataFeed': 'true' };
const CONFLICTS = ['ConcurrentAppendException', 'ConcurrentDeleteReadException', 'ConcurrentDeleteDeleteException'];

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/** bigint → number, Date → ISO string, so rows compare with plain literals. */
function plain(rows: Row[]): Row[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.toISOString() : v])));
}

function key(r: Row): string {
  return JSON.stringify(Object.keys(r).sort().map((k) => [k, r[k]]));
}

/** Multiset equality of rows (order-insensitive). */
function sameRows(actual: Row[], expected: Row[], msg?: string): void {
  assert.deepEqual(plain(actual).map(key).sort(), plain(expected).map(key).sort(), msg);
}

async function rows(floe: Floe, p: string, version?: number): Promise<Row[]> {
  return plain(await (await floe.read.delta(p, version === undefined ? {} : { versionAsOf: version })).toArray());
}

/** The change rows of versions [from, to] without _commit_timestamp. */
async function feed(floe: Floe, p: string, from: number, to?: number): Promise<Row[]> {
  const df = await floe.read.changes(p, { startingVersion: from, ...(to === undefined ? {} : { endingVersion: to }) });
  return plain(await df.toArray()).map(({ _commit_timestamp: _t, ...r }) => r);
}

interface Actions {
  commitInfo: Row;
  add: Row[];
  remove: Row[];
  cdc: Row[];
  metaData: Row | null;
}

async function commit(p: string, version: number): Promise<Actions> {
  const text = await readText(p, `_delta_log/${String(version).padStart(20, '0')}.json`);
  const out: Actions = { commitInfo: {}, add: [], remove: [], cdc: [], metaData: null };
  for (const line of text.split('\n').filter(Boolean)) {
    const a = JSON.parse(line) as Record<string, Row>;
    if (a.commitInfo) out.commitInfo = a.commitInfo;
    if (a.add) out.add.push(a.add);
    if (a.remove) out.remove.push(a.remove);
    if (a.cdc) out.cdc.push(a.cdc);
    if (a.metaData) out.metaData = a.metaData;
  }
  return out;
}

async function version(floe: Floe, p: string): Promise<number> {
  return (await DeltaTable.forPath(floe, p)).version();
}

/** Live data files (paths) of the latest snapshot. */
async function liveFiles(floe: Floe, p: string): Promise<string[]> {
  return (await floe.snapshot(p)).files.map((f) => f.path).sort();
}

/** Every file under the table folder except the log, relative, URI-decoded. */
async function filesOnDisk(p: string): Promise<string[]> {
  return (await listKeys(p)).filter((k) => !k.startsWith('_delta_log/') && !k.split('/').pop()!.startsWith('.'));
}

/** Paths referenced by any add/remove/cdc action of any commit. */
async function referencedFiles(p: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const f of (await listNames(p, '_delta_log')).filter((x) => /^\d{20}\.json$/.test(x))) {
    const a = await commit(p, Number(f.slice(0, 20)));
    for (const x of [...a.add, ...a.remove, ...a.cdc]) out.add(decodeURIComponent(String(x.path)));
  }
  return out;
}

/** No data or change file on disk that no commit references (failed operations clean up). */
async function assertNoOrphans(p: string): Promise<void> {
  const refs = await referencedFiles(p);
  const orphans = (await filesOnDisk(p)).filter((f) => !refs.has(f));
  assert.deepEqual(orphans, [], 'files written by a failed operation were removed');
}

async function expectCode(p: Promise<unknown>, code: string, check?: (e: FloeError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    check?.(e);
    return true;
  });
}

const ids = (lo: number, hi: number): string => `SELECT range::BIGINT AS id, (range % 7)::INTEGER AS v, 'n' || range::VARCHAR AS name FROM range(${lo}, ${hi})`;

/** A table written in several appends, one file each: [0,10), [10,20), ... (feed on unless said). */
async function filesTable(floe: Floe, dir: string, name: string, files: number, properties: Record<string, string> = CDF): Promise<string> {
  const p = locJoin(dir, name);
  for (let i = 0; i < files; i++) {
    await floe.duckdbSql(ids(i * 10, i * 10 + 10)).write.delta(p, i === 0 ? { properties } : { mode: 'append' });
  }
  return p;
}

/** A table partitioned by `part` ('a' rows id < 10, 'b' rows 10..19, 'c' rows 20..29). */
async function partTable(floe: Floe, dir: string, name: string, properties: Record<string, string> = CDF): Promise<string> {
  const p = locJoin(dir, name);
  await floe.duckdbSql(`SELECT range::BIGINT AS id, (range % 7)::INTEGER AS v, chr(97 + (range // 10)::INTEGER) AS part FROM range(30)`).write.delta(p, { partitionBy: ['part'], properties });
  return p;
}

function src(floe: Floe, values: string, cols = 'id, v'): DataFrame {
  return floe.duckdbSql(`SELECT * FROM (VALUES ${values}) AS s(${cols})`);
}

async function session(): Promise<Floe> {
  return Floe.create({ threads: 2 });
}

// ---------------------------------------------------------------------------------------------
// DELETE
// ---------------------------------------------------------------------------------------------

test('DELETE without a predicate is metadata-only: removes every file, writes no cdc files, the feed infers deletes', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 3);
    const before = await rows(floe, p);
    const files = await liveFiles(floe, p);
    const r = await (await DeltaTable.forPath(floe, p)).delete();
    assert.equal(r.version, 3);
    assert.equal(r.metrics.numDeletedRows, 30);
    assert.equal(r.metrics.numCopiedRows, 0);
    assert.equal(r.metrics.numRemovedFiles, 3);
    assert.equal(r.metrics.numAddedFiles, 0);
    const c = await commit(p, 3);
    assert.equal(c.commitInfo.operation, 'DELETE');
    assert.deepEqual(c.remove.map((x) => x.path).sort(), files);
    assert.ok(c.remove.every((x) => x.dataChange === true));
    assert.equal(c.add.length, 0);
    assert.equal(c.cdc.length, 0, 'whole-table delete writes no change files (as Spark)');
    assert.ok(await absent(p, '_change_data'));
    assert.deepEqual(await rows(floe, p), []);
    sameRows(await feed(floe, p, 3), before.map((x) => ({ ...x, _change_type: 'delete', _commit_version: 3 })));
  } finally {
    await floe.close();
  }
});

test('DELETE with a partition-only predicate removes whole files of those partitions, no rows read, no cdc', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await partTable(floe, dir, 't');
    const before = await rows(floe, p);
    const snap = await floe.snapshot(p);
    const aFiles = snap.files.filter((f) => f.partitionValues.part === 'a').map((f) => f.path).sort();
    const r = await (await DeltaTable.forPath(floe, p)).delete("part = 'a'");
    assert.equal(r.metrics.numDeletedRows, 10);
    assert.equal(r.metrics.numCopiedRows, 0);
    assert.equal(r.metrics.numRemovedFiles, aFiles.length);
    assert.equal(r.metrics.numAddedFiles, 0);
    const c = await commit(p, r.version!);
    assert.deepEqual(c.remove.map((x) => x.path).sort(), aFiles);
    assert.equal(c.add.length, 0);
    assert.equal(c.cdc.length, 0);
    sameRows(await rows(floe, p), before.filter((x) => x.part !== 'a'));
    sameRows(await feed(floe, p, r.version!), before.filter((x) => x.part === 'a').map((x) => ({ ...x, _change_type: 'delete', _commit_version: r.version })));
  } finally {
    await floe.close();
  }
});

test('DELETE with a data predicate rewrites only the files holding matching rows, with cdc delete rows', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 3);
    const before = await rows(floe, p);
    const snap = await floe.snapshot(p);
    const t = await DeltaTable.forPath(floe, p);

    // One file holds rows 3 and 5.
    const first = snap.files.find((f) => JSON.parse(f.stats!).minValues.id === 0)!;
    const r = await t.delete('id = 3 OR id = 5');
    assert.equal(r.version, 3);
    assert.equal(r.metrics.numDeletedRows, 2);
    assert.equal(r.metrics.numCopiedRows, 8);
    assert.equal(r.metrics.numRemovedFiles, 1);
    assert.equal(r.metrics.numAddedFiles, 1);
    const c = await commit(p, 3);
    assert.deepEqual(c.remove.map((x) => x.path), [first.path]);
    assert.equal(c.add.length, 1);
    assert.equal(JSON.parse(String(c.add[0]!.stats)).numRecords, 8);
    assert.ok(c.cdc.length >= 1);
    for (const x of c.cdc) {
      assert.match(String(x.path), /^_change_data\//);
      assert.equal(x.dataChange, false);
      assert.ok(await exists(p, decodeURIComponent(String(x.path))));
    }
    assert.deepEqual(c.commitInfo.operationMetrics, { numDeletedRows: '2', numCopiedRows: '8', numRemovedFiles: '1', numAddedFiles: '1', numAddedChangeFiles: String(c.cdc.length), executionTimeMs: (c.commitInfo.operationMetrics as Row).executionTimeMs });
    sameRows(await rows(floe, p), before.filter((x) => x.id !== 3 && x.id !== 5));
    sameRows(await feed(floe, p, 3), before.filter((x) => x.id === 3 || x.id === 5).map((x) => ({ ...x, _change_type: 'delete', _commit_version: 3 })));
    // Untouched files stay live, byte for byte the same actions.
    const live = await liveFiles(floe, p);
    for (const f of snap.files.filter((x) => x.path !== first.path)) assert.ok(live.includes(f.path));

    // Rows in two files: both rewritten.
    const r2 = await t.delete('id IN (12, 27)');
    assert.equal(r2.metrics.numDeletedRows, 2);
    assert.equal(r2.metrics.numCopiedRows, 18);
    assert.equal(r2.metrics.numRemovedFiles, 2);
    // The copied rows of both files may go to one new file.
    assert.ok(r2.metrics.numAddedFiles! >= 1);
    assert.equal(r2.metrics.numAddedFiles, (await commit(p, r2.version!)).add.length);

    // A predicate stats cannot rule out but no row satisfies: no commit.
    const r3 = await t.delete('id % 100 = 77');
    assert.equal(r3.version, null);
    assert.equal(r3.metrics.numDeletedRows, 0);
    // Stats rule every file out: no commit, nothing read.
    const r4 = await t.delete('id > 1000');
    assert.equal(r4.version, null);
    assert.equal(await version(floe, p), 4);

    // Every row of a file deleted (the file rewritten by the first delete holds ids 0..9 but 3, 5):
    // the file is removed and nothing is added for it.
    const r5 = await t.delete('id < 10');
    assert.equal(r5.metrics.numDeletedRows, 8);
    assert.equal(r5.metrics.numCopiedRows, 0);
    assert.equal(r5.metrics.numRemovedFiles, 1);
    assert.equal(r5.metrics.numAddedFiles, 0);
    assert.equal((await commit(p, r5.version!)).add.length, 0);
    assert.equal((await feed(floe, p, r5.version!)).length, 8);
  } finally {
    await floe.close();
  }
});

test('DELETE writes no change data when the feed is off', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 2, {});
    const r = await (await DeltaTable.forPath(floe, p)).delete('id = 4');
    assert.equal(r.metrics.numDeletedRows, 1);
    const c = await commit(p, r.version!);
    assert.equal(c.cdc.length, 0);
    assert.equal(r.metrics.numAddedChangeFiles, undefined);
    assert.ok(await absent(p, '_change_data'));
    await expectCode(floe.read.changes(p, { startingVersion: 0 }), 'DELTA_MISSING_CHANGE_DATA');
  } finally {
    await floe.close();
  }
});

// ---------------------------------------------------------------------------------------------
// UPDATE
// ---------------------------------------------------------------------------------------------

test('UPDATE: set expressions over the row, a condition, metrics, and pre/post images in the feed', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 3);
    const before = await rows(floe, p);
    const t = await DeltaTable.forPath(floe, p);
    const r = await t.update({ condition: 'id IN (2, 4, 13)', set: { v: 'v * 10 + id', NAME: "name || '!' || v::VARCHAR" } });
    assert.equal(r.version, 3);
    assert.equal(r.metrics.numUpdatedRows, 3);
    assert.equal(r.metrics.numCopiedRows, 17, 'the other rows of the two touched files');
    assert.equal(r.metrics.numRemovedFiles, 2);
    const c = await commit(p, 3);
    assert.ok(r.metrics.numAddedFiles! >= 1);
    assert.equal(r.metrics.numAddedFiles, c.add.length);
    assert.equal(c.commitInfo.operation, 'UPDATE');
    assert.deepEqual(c.commitInfo.operationParameters, { predicate: JSON.stringify(['id IN (2, 4, 13)']) });
    assert.equal(c.remove.length, 2);
    assert.ok(c.cdc.length >= 1);
    const upd = (x: Row): Row => ({ ...x, v: (x.v as number) * 10 + (x.id as number), name: `${x.name as string}!${x.v as number}` });
    const hit = (x: Row): boolean => [2, 4, 13].includes(x.id as number);
    sameRows(await rows(floe, p), before.map((x) => (hit(x) ? upd(x) : x)));
    sameRows(await feed(floe, p, 3), [
      ...before.filter(hit).map((x) => ({ ...x, _change_type: 'update_preimage', _commit_version: 3 })),
      ...before.filter(hit).map((x) => ({ ...upd(x), _change_type: 'update_postimage', _commit_version: 3 })),
    ]);

    // No condition: every row, every file.
    const liveBefore = await liveFiles(floe, p);
    const r2 = await t.update({ set: { v: '0' } });
    assert.equal(r2.metrics.numUpdatedRows, 30);
    assert.equal(r2.metrics.numCopiedRows, 0);
    assert.equal(r2.metrics.numRemovedFiles, liveBefore.length);
    assert.deepEqual((await commit(p, r2.version!)).remove.map((x) => x.path).sort(), liveBefore);
    assert.ok((await rows(floe, p)).every((x) => x.v === 0));
    assert.equal((await feed(floe, p, r2.version!)).length, 60);

    // Nothing matches: no commit.
    const r3 = await t.update({ condition: 'id > 1000', set: { v: '1' } });
    assert.equal(r3.version, null);
    assert.equal(r3.metrics.numUpdatedRows, 0);

    await expectCode(t.update({ set: { nope: '1' } }), 'DELTA_COLUMN_NOT_FOUND');
  } finally {
    await floe.close();
  }
});

test('DELETE and UPDATE on tables with columns named like the row markers (_file, _file_id, _row_index, file_index, __hit), with and without deletion vectors', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    for (const col of ['_file', '_file_id', '_row_index', 'file_index', '__hit']) {
      for (const dv of [false, true]) {
        const p = locJoin(dir, `${col}-${dv}`);
        const props = { ...CDF, ...(dv ? { 'delta.enableDeletionVectors': 'true' } : {}) };
        for (let i = 0; i < 3; i++) {
          await floe.duckdbSql(`SELECT range AS id, range * 10 AS ${col} FROM range(${i * 10}, ${i * 10 + 10})`).write.delta(p, i === 0 ? { properties: props } : { mode: 'append' });
        }
        const t = await DeltaTable.forPath(floe, p);
        const u = await t.update({ condition: 'id IN (2, 4, 13)', set: { [col]: '-1' } });
        assert.deepEqual([u.metrics.numUpdatedRows, u.metrics.numCopiedRows, u.metrics.numRemovedFiles], dv ? [3, 0, 2] : [3, 17, 2], `${col} dv=${dv}`);
        const d = await t.delete('id % 10 = 5');
        assert.deepEqual([d.metrics.numDeletedRows, d.metrics.numCopiedRows], dv ? [3, 0] : [3, 27], `${col} dv=${dv}`);
        const expected = Array.from({ length: 30 }, (_, id) => ({ id, [col]: [2, 4, 13].includes(id) ? -1 : id * 10 })).filter((r) => r.id % 10 !== 5);
        sameRows(await rows(floe, p), expected, `${col} dv=${dv}`);
        const f = await feed(floe, p, 3);
        assert.deepEqual([f.filter((r) => r._change_type === 'update_postimage').length, f.filter((r) => r._change_type === 'delete').length], [3, 3], `${col} dv=${dv}`);
      }
    }
  } finally {
    await floe.close();
  }
});

test('UPDATE: NOT NULL and CHECK violations fail with their codes and leave the table unchanged', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = locJoin(dir, 't');
    await DeltaTable.create(floe, {
      path: p,
      schema: [{ name: 'id', type: 'long', nullable: false }, { name: 'v', type: 'integer' }],
      properties: { ...CDF, 'delta.constraints.v_nonneg': 'v >= 0' },
    });
    await floe.duckdbSql('SELECT range::BIGINT AS id, range::INTEGER AS v FROM range(10)').write.delta(p, { mode: 'append' });
    const t = await DeltaTable.forPath(floe, p);
    const before = await rows(floe, p);
    await expectCode(t.update({ condition: 'id = 3', set: { id: 'NULL' } }), 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
    await expectCode(t.update({ condition: 'id = 3', set: { v: '-1' } }), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
    assert.equal(await version(floe, p), 1);
    sameRows(await rows(floe, p), before);
    // A valid update still works afterwards.
    const ok = await t.update({ condition: 'id = 3', set: { v: '30' } });
    assert.equal(ok.version, 2);
    // MERGE checks the same constraints.
    const m = t.alias('target').merge(src(floe, '(3::BIGINT, -5)').alias('source'), 'target.id = source.id').whenMatchedUpdateAll();
    await expectCode(m.execute(), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
    const m2 = t.alias('target').merge(src(floe, '(NULL::BIGINT, 5)').alias('source'), 'target.id = source.id').whenNotMatchedInsertAll();
    await expectCode(m2.execute(), 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
    assert.equal(await version(floe, p), 2);
    assert.equal((await rows(floe, p)).length, 10);
    // The failed operations left no data or change files behind.
    await assertNoOrphans(p);
  } finally {
    await floe.close();
  }
});

test('DELETE, UPDATE and MERGE refuse an append-only table', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 1, { 'delta.appendOnly': 'true' });
    const t = await DeltaTable.forPath(floe, p);
    await expectCode(t.update({ set: { v: '1' } }), 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
    await expectCode(t.delete('id = 1'), 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
    await expectCode(t.delete(), 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
    await expectCode(t.alias('target').merge(src(floe, '(1::BIGINT, 2)').alias('source'), 'target.id = source.id').whenMatchedDelete().execute(), 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
    assert.equal(await version(floe, p), 0);
  } finally {
    await floe.close();
  }
});

// ---------------------------------------------------------------------------------------------
// MERGE
// ---------------------------------------------------------------------------------------------

test('MERGE upsert in the seed form: update matched, insert the rest, metrics, history, feed', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = locJoin(dir, 't');
    await (await floe.createDataFrame([{ id: 1, name: 'a', v: 10 }, { id: 2, name: 'b', v: 20 }, { id: 3, name: 'c', v: 30 }])).write.delta(p, { properties: CDF });
    const target = await DeltaTable.forPath(floe, p);
    const source = await floe.createDataFrame([{ id: 2, name: 'B', v: 21 }, { id: 4, name: 'd', v: 40 }]);
    const r = await target.alias('target').merge(source.alias('source'), 'target.id = source.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
    assert.equal(r.version, 1);
    sameRows(await rows(floe, p), [{ id: 1, name: 'a', v: 10 }, { id: 2, name: 'B', v: 21 }, { id: 3, name: 'c', v: 30 }, { id: 4, name: 'd', v: 40 }]);
    const m = r.metrics;
    assert.equal(m.numSourceRows, 2);
    assert.equal(m.numTargetRowsInserted, 1);
    assert.equal(m.numTargetRowsUpdated, 1);
    assert.equal(m.numTargetRowsMatchedUpdated, 1);
    assert.equal(m.numTargetRowsDeleted, 0);
    assert.equal(m.numTargetRowsCopied, 2);
    assert.equal(m.numOutputRows, 4);
    assert.equal(m.numTargetFilesRemoved, 1);
    assert.ok(m.numTargetFilesAdded >= 1);

    const [h] = await target.history(1);
    assert.equal(h!.operation, 'MERGE');
    assert.equal(h!.readVersion, 0);
    assert.equal(h!.operationParameters.predicate, 'target.id = source.id');
    assert.deepEqual(JSON.parse(String(h!.operationParameters.matchedPredicates)), [{ actionType: 'update' }]);
    assert.deepEqual(JSON.parse(String(h!.operationParameters.notMatchedPredicates)), [{ actionType: 'insert' }]);
    for (const k of ['numSourceRows', 'numTargetRowsInserted', 'numTargetRowsUpdated', 'numTargetRowsDeleted', 'numTargetRowsCopied', 'numTargetFilesAdded', 'numTargetFilesRemoved', 'numOutputRows']) {
      assert.equal(h!.operationMetrics[k], String(m[k]), `operationMetrics.${k}`);
    }
    sameRows(await feed(floe, p, 1), [
      { id: 2, name: 'b', v: 20, _change_type: 'update_preimage', _commit_version: 1 },
      { id: 2, name: 'B', v: 21, _change_type: 'update_postimage', _commit_version: 1 },
      { id: 4, name: 'd', v: 40, _change_type: 'insert', _commit_version: 1 },
    ]);
    const c = await commit(p, 1);
    assert.ok(c.cdc.length >= 1, 'a MERGE changing existing rows writes cdc files');

    // The default target alias is 'target'.
    const r2 = await target.merge(src(floe, "(1::BIGINT, 'z', 99)", 'id, name, v').alias('source'), 'target.id = source.id').whenMatchedUpdate({ set: { v: 'source.v' } }).execute();
    assert.equal(r2.metrics.numTargetRowsUpdated, 1);
  } finally {
    await floe.close();
  }
});

test('MERGE with every clause kind: conditions, first match wins, the rows each clause changes and their change data', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = locJoin(dir, 't');
    // target ids 1..8, v = id
    await floe.duckdbSql('SELECT range::BIGINT AS id, range::INTEGER AS v FROM range(1, 9)').write.delta(p, { properties: CDF });
    const before = await rows(floe, p);
    const t = await DeltaTable.forPath(floe, p);
    // source: 1..4 match, 10..12 do not
    const s = src(floe, '(1::BIGINT, 100), (2, 200), (3, 300), (4, 5), (10, 1000), (11, 5), (12, 1200)');
    const r = await t.alias('target').merge(s.alias('source'), 'target.id = source.id')
      .whenMatchedDelete({ condition: 'target.id = 1' })            // 1: deleted (also satisfies the next clause)
      .whenMatchedUpdate({ condition: 'source.v > 150', set: { v: 'source.v + target.v' } }) // 2, 3
      .whenMatchedUpdateAll()                                        // 4
      .whenNotMatchedInsert({ condition: 'source.v > 999', values: { id: 'source.id', v: 'source.v * 2' } }) // 10, 12
      .whenNotMatchedInsertAll({ condition: 'source.v < 10' })       // 11
      .whenNotMatchedBySourceDelete({ condition: 'target.v >= 7' })  // 7, 8
      .whenNotMatchedBySourceUpdate({ set: { v: '-target.v' } })     // 5, 6
      .execute();
    const expected = [
      { id: 2, v: 202 }, { id: 3, v: 303 }, { id: 4, v: 5 },
      { id: 5, v: -5 }, { id: 6, v: -6 },
      { id: 10, v: 2000 }, { id: 11, v: 5 }, { id: 12, v: 2400 },
    ];
    sameRows(await rows(floe, p), expected);
    const m = r.metrics;
    assert.equal(m.numSourceRows, 7);
    assert.equal(m.numTargetRowsInserted, 3);
    assert.equal(m.numTargetRowsMatchedUpdated, 3);
    assert.equal(m.numTargetRowsNotMatchedBySourceUpdated, 2);
    assert.equal(m.numTargetRowsUpdated, 5);
    assert.equal(m.numTargetRowsMatchedDeleted, 1);
    assert.equal(m.numTargetRowsNotMatchedBySourceDeleted, 2);
    assert.equal(m.numTargetRowsDeleted, 3);
    assert.equal(m.numTargetRowsCopied, 0);
    assert.equal(m.numOutputRows, 8);
    const byId = new Map(before.map((x) => [x.id, x]));
    const pre = (id: number): Row => ({ ...byId.get(id)!, _change_type: 'update_preimage', _commit_version: 1 });
    sameRows(await feed(floe, p, 1), [
      { id: 1, v: 1, _change_type: 'delete', _commit_version: 1 },
      { id: 7, v: 7, _change_type: 'delete', _commit_version: 1 },
      { id: 8, v: 8, _change_type: 'delete', _commit_version: 1 },
      pre(2), pre(3), pre(4), pre(5), pre(6),
      ...[{ id: 2, v: 202 }, { id: 3, v: 303 }, { id: 4, v: 5 }, { id: 5, v: -5 }, { id: 6, v: -6 }].map((x) => ({ ...x, _change_type: 'update_postimage', _commit_version: 1 })),
      ...[{ id: 10, v: 2000 }, { id: 11, v: 5 }, { id: 12, v: 2400 }].map((x) => ({ ...x, _change_type: 'insert', _commit_version: 1 })),
    ]);
    const h = (await t.history(1))[0]!;
    assert.deepEqual(JSON.parse(String(h.operationParameters.matchedPredicates)), [
      { predicate: 'target.id = 1', actionType: 'delete' }, { predicate: 'source.v > 150', actionType: 'update' }, { actionType: 'update' },
    ]);
    assert.deepEqual(JSON.parse(String(h.operationParameters.notMatchedBySourcePredicates)), [{ predicate: 'target.v >= 7', actionType: 'delete' }, { actionType: 'update' }]);
  } finally {
    await floe.close();
  }
});

test('MERGE clause order: the first clause whose condition holds wins', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const base = 'SELECT range::BIGINT AS id, range::INTEGER AS v FROM range(1, 4)';
    const s = (): DataFrame => src(floe, '(1::BIGINT, 10), (2, 20)').alias('source');
    const p1 = locJoin(dir, 'a');
    await floe.duckdbSql(base).write.delta(p1);
    await (await DeltaTable.forPath(floe, p1)).alias('target').merge(s(), 'target.id = source.id')
      .whenMatchedDelete({ condition: 'source.v > 5' }).whenMatchedUpdate({ set: { v: '0' } }).execute();
    sameRows(await rows(floe, p1), [{ id: 3, v: 3 }]);
    const p2 = locJoin(dir, 'b');
    await floe.duckdbSql(base).write.delta(p2);
    await (await DeltaTable.forPath(floe, p2)).alias('target').merge(s(), 'target.id = source.id')
      .whenMatchedUpdate({ condition: 'source.v > 5', set: { v: '0' } }).whenMatchedDelete().execute();
    sameRows(await rows(floe, p2), [{ id: 1, v: 0 }, { id: 2, v: 0 }, { id: 3, v: 3 }]);
    // Not matched: the first insert whose condition holds, once per source row.
    const p3 = locJoin(dir, 'c');
    await floe.duckdbSql(base).write.delta(p3);
    await (await DeltaTable.forPath(floe, p3)).alias('target').merge(src(floe, '(7::BIGINT, 70), (8, 1)').alias('source'), 'target.id = source.id')
      .whenNotMatchedInsert({ condition: 'source.v > 50', values: { id: 'source.id', v: '-1' } })
      .whenNotMatchedInsertAll().execute();
    sameRows(await rows(floe, p3), [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }, { id: 7, v: -1 }, { id: 8, v: 1 }]);
  } finally {
    await floe.close();
  }
});

test('MERGE: only the last clause of a kind may omit its condition; at least one clause', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 1);
    const t = await DeltaTable.forPath(floe, p);
    const mk = () => t.alias('target').merge(src(floe, '(1::BIGINT, 2)').alias('source'), 'target.id = source.id');
    await expectCode(mk().whenMatchedUpdateAll().whenMatchedDelete().execute(), 'DELTA_NON_LAST_MATCHED_CLAUSE_OMIT_CONDITION');
    await expectCode(mk().whenNotMatchedInsertAll().whenNotMatchedInsertAll({ condition: 'source.v > 1' }).execute(), 'DELTA_NON_LAST_NOT_MATCHED_CLAUSE_OMIT_CONDITION');
    await expectCode(mk().whenNotMatchedBySourceDelete().whenNotMatchedBySourceUpdate({ set: { v: '1' } }).execute(), 'DELTA_NON_LAST_NOT_MATCHED_BY_SOURCE_CLAUSE_OMIT_CONDITION');
    await expectCode(mk().execute(), 'DELTA_MERGE_MISSING_WHEN');
    // As Spark resolves them: a NOT MATCHED clause sees the source row only, a NOT MATCHED BY SOURCE
    // clause the target row only (no NULLs for the other side); nothing is written.
    await expectCode(mk().whenNotMatchedInsert({ condition: 'target.v IS NULL', values: { id: 'source.id', v: 'source.v' } }).execute(), 'DELTA_MERGE_UNRESOLVED_EXPRESSION');
    await expectCode(mk().whenNotMatchedInsert({ values: { id: 'source.id', v: 'coalesce(target.v, 0)' } }).execute(), 'DELTA_MERGE_UNRESOLVED_EXPRESSION');
    await expectCode(mk().whenNotMatchedBySourceUpdate({ condition: 'source.v > 1', set: { v: '0' } }).execute(), 'DELTA_MERGE_UNRESOLVED_EXPRESSION');
    await expectCode(mk().whenNotMatchedBySourceUpdate({ set: { v: 'source.v' } }).execute(), 'DELTA_MERGE_UNRESOLVED_EXPRESSION');
    await assert.rejects(mk().whenNotMatchedInsert({ condition: 'source.v > 0 AND target.v IS NULL', values: { id: 'source.id', v: 'source.v' } }).execute(),
      (e: Error) => /Cannot resolve source\.v > 0 AND target\.v IS NULL in the WHEN NOT MATCHED clause's condition given columns source\.id, source\.v/.test(e.message));
    assert.equal(await version(floe, p), 0);
    // Unqualified names both sides have are the clause's side's: the source's in NOT MATCHED, the
    // target's in NOT MATCHED BY SOURCE (as Spark resolves them; in the join they would be ambiguous).
    const p2 = await filesTable(floe, dir, 't2', 1);
    const before = await rows(floe, p2);
    const extra = before.find((x) => Number(x.id) !== 1)!;
    await (await DeltaTable.forPath(floe, p2)).alias('target').merge(src(floe, '(1::BIGINT, 2), (900, 9), (901, -9)').alias('source'), 'target.id = source.id')
      .whenNotMatchedInsert({ condition: 'v > 0', values: { id: 'id', v: 'v * 10' } })
      .whenNotMatchedBySourceUpdate({ condition: `id = ${Number(extra.id)}`, set: { v: 'v + 1000' } })
      .execute();
    const after = await rows(floe, p2);
    assert.equal(Number(after.find((x) => Number(x.id) === 900)?.v), 90);
    assert.ok(!after.some((x) => Number(x.id) === 901));
    assert.equal(Number(after.find((x) => Number(x.id) === Number(extra.id))!.v), Number(extra.v) + 1000);
    // Each side's own columns are fine there; the MATCHED clauses see both.
    await mk().whenNotMatchedBySourceUpdate({ condition: 'target.v > 100', set: { v: 'target.v + 1' } }).whenMatchedUpdate({ condition: 'target.v < source.v', set: { v: 'target.v + source.v' } }).execute();
    assert.equal(await version(floe, p), 1);
    // Allowed: an unconditional last clause of each kind after conditional ones, kinds interleaved.
    // The source lacks target column `name`: INSERT * would not resolve (Spark), so insert explicitly.
    const r = await mk().whenMatchedDelete({ condition: 'source.v > 100' }).whenNotMatchedInsert({ values: { id: 'source.id', v: 'source.v' } }).whenMatchedUpdate({ set: { v: 'source.v' } }).execute();
    assert.equal(r.metrics.numTargetRowsUpdated, 1);
    assert.equal(await version(floe, p), 2);
  } finally {
    await floe.close();
  }
});

test('MERGE: a target row matched by several source rows is an error, except insert-only and a single unconditional delete', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const dup = (): DataFrame => src(floe, '(1::BIGINT, 10), (1, 11), (5, 50), (5, 51)').alias('source');
    const p = locJoin(dir, 't');
    await floe.duckdbSql('SELECT range::BIGINT AS id, range::INTEGER AS v FROM range(1, 4)').write.delta(p, { properties: CDF });
    const t = await DeltaTable.forPath(floe, p);
    await expectCode(t.alias('target').merge(dup(), 'target.id = source.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(), 'DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE');
    await expectCode(t.alias('target').merge(dup(), 'target.id = source.id').whenMatchedDelete({ condition: 'source.v > 0' }).execute(), 'DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE');
    await expectCode(t.alias('target').merge(dup(), 'target.id = source.id').whenMatchedDelete({ condition: 'source.v > 100' }).whenMatchedUpdateAll().execute(), 'DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE');
    assert.equal(await version(floe, p), 0);
    await assertNoOrphans(p);

    // Insert-only: the matched duplicates are skipped, the unmatched ones are all inserted.
    const r1 = await t.alias('target').merge(dup(), 'target.id = source.id').whenNotMatchedInsertAll().execute();
    assert.equal(r1.metrics.numTargetRowsInserted, 2);
    sameRows(await rows(floe, p), [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }, { id: 5, v: 50 }, { id: 5, v: 51 }]);
    sameRows(await feed(floe, p, r1.version!), [{ id: 5, v: 50, _change_type: 'insert', _commit_version: 1 }, { id: 5, v: 51, _change_type: 'insert', _commit_version: 1 }]);

    // A single unconditional delete: each matched target row is deleted once (Spark corrects the
    // metric for the duplicate matches and de-duplicates the delete change rows).
    const r2 = await t.alias('target').merge(src(floe, '(1::BIGINT, 10), (1, 11), (1, 12), (2, 20)').alias('source'), 'target.id = source.id').whenMatchedDelete().execute();
    sameRows(await rows(floe, p), [{ id: 3, v: 3 }, { id: 5, v: 50 }, { id: 5, v: 51 }]);
    sameRows(await feed(floe, p, r2.version!), [{ id: 1, v: 1, _change_type: 'delete', _commit_version: 2 }, { id: 2, v: 2, _change_type: 'delete', _commit_version: 2 }], 'one delete change row per deleted target row');
    assert.equal(r2.metrics.numTargetRowsDeleted, 2, 'numTargetRowsDeleted counts target rows, not matches');
    assert.equal(r2.metrics.numTargetRowsMatchedDeleted, 2);
  } finally {
    await floe.close();
  }
});

test('MERGE: null keys never match (inserted as new rows, or handled as not matched by source)', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = locJoin(dir, 't');
    await floe.duckdbSql('SELECT * FROM (VALUES (1::BIGINT, 1), (NULL, 2)) AS t(id, v)').write.delta(p, { properties: CDF });
    const t = await DeltaTable.forPath(floe, p);
    const r = await t.alias('target').merge(src(floe, '(NULL::BIGINT, 10), (1, 11)').alias('source'), 'target.id = source.id')
      .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
    assert.equal(r.metrics.numTargetRowsInserted, 1);
    assert.equal(r.metrics.numTargetRowsUpdated, 1);
    sameRows(await rows(floe, p), [{ id: 1, v: 11 }, { id: null, v: 2 }, { id: null, v: 10 }]);
    // Not matched by source: both null-key target rows.
    const r2 = await t.alias('target').merge(src(floe, '(NULL::BIGINT, 10)').alias('source'), 'target.id = source.id')
      .whenNotMatchedBySourceDelete({ condition: 'target.id IS NULL' }).execute();
    assert.equal(r2.metrics.numTargetRowsDeleted, 2);
    sameRows(await rows(floe, p), [{ id: 1, v: 11 }]);
  } finally {
    await floe.close();
  }
});

test('MERGE withSchemaEvolution adds the source columns to the target schema', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = locJoin(dir, 't');
    await floe.duckdbSql('SELECT range::BIGINT AS id, range::INTEGER AS v FROM range(1, 4)').write.delta(p, { properties: CDF });
    const t = await DeltaTable.forPath(floe, p);
    const s = (): DataFrame => src(floe, "(2::BIGINT, 20, 'x'), (9, 90, 'y')", 'id, v, extra').alias('source');
    const r = await t.alias('target').merge(s(), 'target.id = source.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().withSchemaEvolution().execute();
    assert.equal(r.version, 1);
    const snap = await floe.snapshot(p);
    assert.deepEqual(snap.schema.fields.map((f) => f.name), ['id', 'v', 'extra']);
    assert.ok((await commit(p, 1)).metaData, 'the MERGE commit carries the new metadata');
    sameRows(await rows(floe, p), [{ id: 1, v: 1, extra: null }, { id: 2, v: 20, extra: 'x' }, { id: 3, v: 3, extra: null }, { id: 9, v: 90, extra: 'y' }]);
    sameRows(await rows(floe, p, 0), [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }]);
    sameRows(await feed(floe, p, 1), [
      { id: 2, v: 2, extra: null, _change_type: 'update_preimage', _commit_version: 1 },
      { id: 2, v: 20, extra: 'x', _change_type: 'update_postimage', _commit_version: 1 },
      { id: 9, v: 90, extra: 'y', _change_type: 'insert', _commit_version: 1 },
    ]);
  } finally {
    await floe.close();
  }
});

test('MERGE reads only the target files whose id range can hold a source key', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    // Four files with disjoint id ranges; the source touches keys of one file.
    const p = await filesTable(floe, dir, 't', 4);
    const before = await rows(floe, p);
    const t = await DeltaTable.forPath(floe, p);
    const r = await t.alias('target').merge(src(floe, '(12::BIGINT, 100), (15, 100)').alias('source'), 'target.id = source.id')
      .whenMatchedUpdate({ set: { v: 'source.v' } }).execute();
    sameRows(await rows(floe, p), before.map((x) => ([12, 15].includes(x.id as number) ? { ...x, v: 100 } : x)));
    assert.equal(r.metrics.numTargetRowsUpdated, 2);
    assert.equal(r.metrics.numTargetRowsCopied, 8);
    assert.equal(r.metrics.numTargetFilesRemoved, 1);
    assert.equal(r.metrics.numTargetFilesAdded, 1);
    assert.equal(r.metrics.numTargetFilesTotal, 4);
    assert.equal(r.metrics.numTargetFilesScanned, 1, 'files whose id stats exclude 12..15 are skipped');
    assert.equal((await t.history(1))[0]!.operationMetrics.numTargetFilesScanned, '1');
  } finally {
    await floe.close();
  }
});

test('MERGE on a partitioned table with the partition column in the condition reads only those partitions', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const q = await partTable(floe, dir, 'part');
    const qt = await DeltaTable.forPath(floe, q);
    const total = (await floe.snapshot(q)).files.length;
    assert.equal(total, 3);
    const r = await qt.alias('target').merge(src(floe, "(21::BIGINT, 9, 'c')", 'id, v, part').alias('source'), 'target.part = source.part AND target.id = source.id')
      .whenMatchedUpdateAll().execute();
    assert.equal(r.metrics.numTargetRowsUpdated, 1);
    assert.equal(r.metrics.numTargetFilesTotal, 3);
    assert.equal(r.metrics.numTargetFilesScanned, 1, `scanned ${r.metrics.numTargetFilesScanned} of ${total}`);
  } finally {
    await floe.close();
  }
});

test('MERGE: source keys in no file scan nothing; NOT MATCHED BY SOURCE scans every file', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 4);
    const t = await DeltaTable.forPath(floe, p);
    const r3 = await t.alias('target').merge(src(floe, '(12::BIGINT, 1)').alias('source'), 'target.id = source.id')
      .whenNotMatchedBySourceUpdate({ condition: 'target.id = 5', set: { v: '7' } }).execute();
    assert.equal(r3.metrics.numTargetFilesScanned, r3.metrics.numTargetFilesTotal);
    assert.equal(r3.metrics.numTargetRowsUpdated, 1);
    const r2 = await t.alias('target').merge(src(floe, '(500::BIGINT, 1), (NULL, 2)').alias('source'), 'target.id = source.id')
      .whenMatchedUpdate({ set: { v: 'source.v' } }).whenNotMatchedInsert({ values: { id: 'source.id', v: 'source.v', name: "'new'" } }).execute();
    assert.equal(r2.metrics.numTargetRowsInserted, 2);
    assert.equal(r2.metrics.numTargetFilesRemoved, 0);
    sameRows((await rows(floe, p)).filter((x) => (x.id as number) >= 500 || x.id === null || x.id === 5), [{ id: 5, v: 7, name: 'n5' }, { id: 500, v: 1, name: 'new' }, { id: null, v: 2, name: 'new' }]);
    assert.equal(r2.metrics.numTargetFilesScanned, 0, 'no file holds id 500');
  } finally {
    await floe.close();
  }
});

test('MERGE that changes nothing commits nothing', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await filesTable(floe, dir, 't', 2);
    const t = await DeltaTable.forPath(floe, p);
    const r = await t.alias('target').merge(src(floe, '(3::BIGINT, 1)').alias('source'), 'target.id = source.id')
      .whenMatchedUpdate({ condition: 'source.v > 10', set: { v: 'source.v' } }).whenNotMatchedInsert({ values: { id: 'source.id', v: 'source.v' } }).execute();
    assert.equal(r.version, null);
    assert.equal(r.metrics.numTargetRowsUpdated, 0);
    assert.equal(r.metrics.numTargetRowsInserted, 0);
    assert.equal(await version(floe, p), 1);
    await assertNoOrphans(p);
  } finally {
    await floe.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Concurrent MERGEs
// ---------------------------------------------------------------------------------------------

/**
 * Holds session A's next commit (put-if-absent of a `_delta_log/*.json`) until `release` resolves,
 * so B commits in between: A then finds B's commit as a winner and checks for conflicts.
 */
function holdCommit(floe: Floe, p: string, release: Promise<unknown>): void {
  const store = floe.deltaLog(p).store as unknown as { putIfAbsent: (k: string, d: Uint8Array | string) => Promise<void> };
  const orig = store.putIfAbsent.bind(store);
  let held = false;
  store.putIfAbsent = async (k, d) => {
    if (!held && /_delta_log\/\d{20}\.json$/.test(k)) {
      held = true;
      await release;
    }
    return orig(k, d);
  };
}

/** Waits until a folder holds `n` files (a concurrent operation has read its snapshot and is writing). */
async function filesAppear(p: string, folder: string, n: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await listKeys(p, `${folder}/`)).filter((f) => f.endsWith('.parquet')).length < n) {
    if (Date.now() > deadline) throw new Error(`no new file in ${folder}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function mergeInto(floe: Floe, p: string, values: string): Promise<{ version: number | null }> {
  return DeltaTable.forPath(floe, p).then((t) => t.alias('target')
    .merge(src(floe, values, 'id, v, part').alias('source'), 'target.part = source.part AND target.id = source.id')
    .whenMatchedUpdate({ set: { v: 'source.v' } }).whenNotMatchedInsertAll().execute());
}

test('two MERGEs on disjoint partitions racing in one process both commit', async () => {
  const dir = await newRoot();
  const a = await session();
  const b = await session();
  let releaseA!: () => void;
  const gate = new Promise<void>((r) => (releaseA = r));
  try {
    const p = await partTable(a, dir, 't');
    const before = await rows(a, p);
    holdCommit(a, p, gate);
    const ma = mergeInto(a, p, "(1::BIGINT, 100, 'a'), (100, 100, 'a')");
    // Let A read its snapshot and write its files before B starts.
    await filesAppear(p, 'part=a', 2);
    const rb = await mergeInto(b, p, "(11::BIGINT, 200, 'b'), (200, 200, 'b')");
    assert.equal(rb.version, 1);
    releaseA();
    const ra = await ma;
    assert.equal(ra.version, 2, 'A rebased onto B and committed');
    const expected = [
      ...before.map((x) => (x.id === 1 ? { ...x, v: 100 } : x.id === 11 ? { ...x, v: 200 } : x)),
      { id: 100, v: 100, part: 'a' }, { id: 200, v: 200, part: 'b' },
    ];
    sameRows(await rows(a, p), expected);
    const f = await feed(a, p, 1, 2);
    assert.equal(f.filter((x) => x._commit_version === 1).length, 3);
    assert.equal(f.filter((x) => x._commit_version === 2).length, 3);
  } finally {
    releaseA();
    await a.close();
    await b.close();
  }
});

test('two MERGEs on the same file: the later commit fails with a typed conflict, nothing lost or applied twice', async () => {
  const dir = await newRoot();
  const a = await session();
  const b = await session();
  let releaseA!: () => void;
  const gate = new Promise<void>((r) => (releaseA = r));
  try {
    const p = await partTable(a, dir, 't');
    const before = await rows(a, p);
    holdCommit(a, p, gate);
    const ma = mergeInto(a, p, "(1::BIGINT, 100, 'a'), (100, 100, 'a')");
    const settledA = ma.then(() => null, (e: unknown) => e);
    await filesAppear(p, 'part=a', 2);
    const rb = await mergeInto(b, p, "(2::BIGINT, 200, 'a'), (300, 300, 'a')");
    assert.equal(rb.version, 1);
    releaseA();
    const err = await settledA;
    assert.ok(err instanceof FloeError, `A must fail with a conflict, got ${String(err)}`);
    assert.ok(CONFLICTS.includes(err.code), err.code);
    assert.equal(await version(a, p), 1);
    sameRows(await rows(a, p), [...before.map((x) => (x.id === 2 ? { ...x, v: 200 } : x)), { id: 300, v: 300, part: 'a' }]);
    await assertNoOrphans(p);
    // A retry reads the new state and applies once.
    const again = await mergeInto(a, p, "(1::BIGINT, 100, 'a'), (100, 100, 'a')");
    assert.equal(again.version, 2);
    sameRows(await rows(a, p), [
      ...before.map((x) => (x.id === 2 ? { ...x, v: 200 } : x.id === 1 ? { ...x, v: 100 } : x)),
      { id: 300, v: 300, part: 'a' }, { id: 100, v: 100, part: 'a' },
    ]);
  } finally {
    releaseA();
    await a.close();
    await b.close();
  }
});

test('two processes MERGE into disjoint partitions at once: both commit', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = await partTable(floe, dir, 't');
    const before = await rows(floe, p);
    const floeJs = fileURLToPath(new URL('../floe.js', import.meta.url));
    const dtJs = fileURLToPath(new URL('../table/delta-table.js', import.meta.url));
    // Both children open the table, then wait for the go file so that their MERGEs overlap.
    const go = path.join(await tempDir(), 'go');
    const script = (part: string, id: number): string => `
      const { Floe } = await import(${JSON.stringify(floeJs)});
      const { DeltaTable } = await import(${JSON.stringify(dtJs)});
      const floe = await Floe.create({ threads: 1 });
      const t = await DeltaTable.forPath(floe, ${JSON.stringify(p)});
      const s = floe.duckdbSql("SELECT * FROM (VALUES (${id}::BIGINT, 1000, '${part}'), (${id + 1000}::BIGINT, 1000, '${part}')) AS s(id, v, part)");
      const { existsSync } = await import('node:fs');
      process.stderr.write('ready\\n');
      while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1));
      const r = await t.alias('target').merge(s.alias('source'), 'target.part = source.part AND target.id = source.id')
        .whenMatchedUpdate({ set: { v: 'source.v' } }).whenNotMatchedInsertAll().execute();
      process.stdout.write(JSON.stringify({ version: r.version }));
      await floe.close();`;
    let ready = 0;
    let bothReady!: () => void;
    const readyP = new Promise<void>((r) => (bothReady = r));
    const run = (code: string): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let isReady = false;
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!isReady && /(^|\n)ready\n/.test(err)) { // (a library warning may come first on stderr)
          isReady = true;
          if (++ready === 2) bothReady();
        }
      });
      c.on('close', (rc) => {
        bothReady(); // a child that died before it was ready must not hang the test
        resolve({ code: rc, out, err: err.replace(/(^|\n)ready\n/, '$1') });
      });
    });
    const runs = Promise.all([run(script('a', 3)), run(script('c', 23))]);
    await readyP;
    await fs.writeFile(go, '');
    const [x, y] = await runs;
    assert.equal(x.code, 0, x.err);
    assert.equal(y.code, 0, y.err);
    const versions = [JSON.parse(x.out).version, JSON.parse(y.out).version].sort();
    assert.deepEqual(versions, [1, 2]);
    sameRows(await rows(floe, p), [
      ...before.map((r) => ([3, 23].includes(r.id as number) ? { ...r, v: 1000 } : r)),
      { id: 1003, v: 1000, part: 'a' }, { id: 1023, v: 1000, part: 'c' },
    ]);
  } finally {
    await floe.close();
  }
});

test('MERGE INSERT * / UPDATE SET * resolve target columns by name in the source (Spark): extra source columns are ignored, missing ones fail', async () => {
  const dir = await newRoot();
  const floe = await session();
  try {
    const p = `${dir}/t`;
    await floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS name").write.delta(p);
    const t = await DeltaTable.forPath(floe, p);
    const extra = floe.duckdbSql("SELECT 1::BIGINT AS id, 'b' AS name, 42 AS extra UNION ALL SELECT 2, 'c', 43").alias('source');
    const r = await t.alias('target').merge(extra, 'target.id = source.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
    assert.equal(r.metrics.numTargetRowsUpdated, 1);
    assert.equal(r.metrics.numTargetRowsInserted, 1);
    assert.deepEqual((await (await floe.read.delta(p)).orderBy('id').toJSON()).map((x) => Object.keys(x)), [['id', 'name'], ['id', 'name']]);
    const missing = floe.duckdbSql('SELECT 3::BIGINT AS id').alias('source');
    await expectCode(t.alias('target').merge(missing, 'target.id = source.id').whenNotMatchedInsertAll().execute(), 'DELTA_MERGE_UNRESOLVED_EXPRESSION');
    const ev = await t.alias('target').merge(floe.duckdbSql('SELECT 3::BIGINT AS id').alias('source'), 'target.id = source.id').whenNotMatchedInsertAll().withSchemaEvolution().execute();
    assert.equal(ev.metrics.numTargetRowsInserted, 1);
  } finally {
    await floe.close();
  }
});
