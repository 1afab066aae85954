/**
 * AUTO CDC by example: the Databricks documentation's "users" example (SCD 1, SCD 1 with TRUNCATE,
 * SCD 2, SCD 2 with TRACK HISTORY ON * EXCEPT (city)) with the documented results; out-of-order and
 * tombstone cases; duplicate (key, sequence); crash between the target and the state commits;
 * AUTO CDC FROM SNAPSHOT (the documented snapshot examples); the Debezium example.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { type ApplyChangesOptions, FULL_GC_EVERY, STATE_DIR, STATE_FOLD_FILES, applyChanges, applyChangesFromSnapshot, commitTargetStep, dropTemps, prepareApplyChanges } from '../pipelines/auto-cdc.js';
import { USERS_EXPECTED, runUsersExample } from '../examples/users-cdc.js';
import { runDebeziumExample } from '../examples/debezium-cdc.js';
import { tempDir } from './helpers.js';
import { isRemoteStore, listNames, localOnly, locJoin, newRoot } from './store.js';
import { type Ev, eventsDf, readScd1, readScd2, seededRandom } from './auto-cdc-helpers.js';

let floe: Floe;
let dir: string;
let n = 0;
const fresh = (): string => locJoin(dir, `t${++n}`);
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await newRoot('floe-autocdc-');
});
after(async () => {
  await floe.close();
  if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
});

async function users(target: string, order: string): Promise<Record<string, unknown>[]> {
  const rows = await (await floe.read.delta(target)).orderBy(order).toJSON();
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v])));
}

test('users example, SCD type 1: the documented result', async () => {
  const t = fresh();
  await runUsersExample(floe, t, 1);
  assert.deepEqual(await users(t, 'userId'), USERS_EXPECTED.scd1);
  const detail = await (await DeltaTable.forPath(floe, t)).detail();
  assert.equal(detail.properties['delta.enableChangeDataFeed'], 'true');
  // The target is a normal Delta table: its change feed is readable, the state folder is not data.
  assert.equal((await floe.read.changes(t, { startingVersion: 0 })).constructor.name, 'DataFrame');
  assert.ok((await listNames(t, '')).includes(STATE_DIR));
});

test('users example, SCD type 1 with the TRUNCATE at sequenceNum 3: the documented result', async () => {
  const t = fresh();
  await runUsersExample(floe, t, 1, { withTruncate: true });
  assert.deepEqual(await users(t, 'userId'), USERS_EXPECTED.scd1Truncate);
});

test('users example, SCD type 2: the documented result', async () => {
  const t = fresh();
  await runUsersExample(floe, t, 2);
  assert.deepEqual(await users(t, 'userId, "__START_AT"'), USERS_EXPECTED.scd2);
  const types = Object.fromEntries((await (await floe.read.delta(t)).columns()).map((c) => [c.name, c.type]));
  assert.equal(types.__START_AT, types.__END_AT);
  assert.equal(types.__START_AT, 'BIGINT'); // typed like sequenceNum
});

test('users example, SCD type 2 tracking history on * EXCEPT (city): the documented result', async () => {
  const t = fresh();
  await runUsersExample(floe, t, 2, { trackHistoryExceptColumnList: ['city'] });
  assert.deepEqual(await users(t, 'userId, "__START_AT"'), USERS_EXPECTED.scd2TrackExceptCity);
});

const base = (target: string, scd: 1 | 2, extra: Partial<ApplyChangesOptions> = {}) => ({
  target, keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'd'", exceptColumnList: ['op', 'seq'], storedAsScdType: scd, flowName: 'f', ...extra,
});
const u = (id: number, seq: number, a: number | null, b: string | null = null): Ev => ({ id, seq, op: 'u', a, b });
const d = (id: number, seq: number): Ev => ({ id, seq, op: 'd', a: null, b: null });

test('SCD 1: a late event older than the target changes nothing; a tombstone stops a late resurrection', async () => {
  const t = fresh();
  let b = 0;
  const apply = (evs: Ev[]) => applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, evs), batchId: b++ });
  await apply([u(1, 5, 50), u(2, 5, 20)]);
  const v0 = (await floe.snapshot(t)).version;
  await apply([u(1, 3, 30)]); // older than what the target reflects
  assert.deepEqual(await readScd1(floe, t), [{ id: 1, a: 50, b: null }, { id: 2, a: 20, b: null }]);
  assert.equal((await floe.snapshot(t)).version, v0, 'nothing to change: no target commit');
  await apply([d(1, 7)]);
  await apply([u(1, 6, 60)]); // late, older than the delete: the tombstone wins
  assert.deepEqual(await readScd1(floe, t), [{ id: 2, a: 20, b: null }]);
  await apply([u(1, 8, 80)]); // newer than the delete: back
  assert.deepEqual(await readScd1(floe, t), [{ id: 1, a: 80, b: null }, { id: 2, a: 20, b: null }]);
  // ignore null updates: a NULL keeps the current value.
  const t2 = fresh();
  await applyChanges(floe, { ...base(t2, 1, { ignoreNullUpdates: true }), source: eventsDf(floe, [u(1, 1, 1, 'x')]), batchId: 0 });
  await applyChanges(floe, { ...base(t2, 1, { ignoreNullUpdates: true }), source: eventsDf(floe, [u(1, 2, null, 'y')]), batchId: 1 });
  assert.deepEqual(await readScd1(floe, t2), [{ id: 1, a: 1, b: 'y' }]);
});

test('SCD 1: an applied truncate holds in later batches, with or without applyAsTruncates on them', async () => {
  const t = fresh();
  let b = 0;
  const tr = (seq: number): Ev => ({ id: 0, seq, op: 't', a: null, b: null });
  const apply = (evs: Ev[], truncates: boolean) => applyChanges(floe, { ...base(t, 1, truncates ? { applyAsTruncates: "op = 't'" } : {}), source: eventsDf(floe, evs), batchId: b++ });
  await apply([u(1, 1, 10), u(2, 2, 20), tr(3), u(3, 4, 30)], true);
  assert.deepEqual(await readScd1(floe, t), [{ id: 3, a: 30, b: null }]);
  // Without the option the state's truncate (sequence 3) still covers older events; newer ones apply.
  await apply([u(1, 2, 15), u(4, 5, 40)], false);
  assert.deepEqual(await readScd1(floe, t), [{ id: 3, a: 30, b: null }, { id: 4, a: 40, b: null }]);
  await apply([u(2, 1, 5), u(1, 6, 60)], true);
  assert.deepEqual(await readScd1(floe, t), [{ id: 1, a: 60, b: null }, { id: 3, a: 30, b: null }, { id: 4, a: 40, b: null }]);
  // A flow that never truncated: the state's statistics show no truncate row.
  const t2 = fresh();
  await applyChanges(floe, { ...base(t2, 1), source: eventsDf(floe, [u(1, 1, 10)]), batchId: 0 });
  const st = await floe.snapshot(locJoin(t2, STATE_DIR));
  assert.ok(st.files.every((f) => JSON.parse(f.stats!).maxValues.__slot === 0));
  await applyChanges(floe, { ...base(t2, 1), source: eventsDf(floe, [u(1, 2, 20), u(2, 1, 5)]), batchId: 1 });
  assert.deepEqual(await readScd1(floe, t2), [{ id: 1, a: 20, b: null }, { id: 2, a: 5, b: null }]);
});

test('partitionBy and comment shape a target the call creates; later batches keep its partitions', async () => {
  for (const scd of [1, 2] as const) {
    const part = fresh();
    const plain = fresh();
    const batches: Ev[][] = [
      [u(1, 1, 10, 'x'), u(2, 1, 20, 'y'), u(3, 1, 30, 'x')],
      [u(1, 2, 11, 'y'), d(2, 2), u(4, 2, 40, 'y')],
      [u(3, 3, 31, 'x'), u(2, 3, 21, 'x')],
    ];
    for (const [i, b] of batches.entries()) {
      await applyChanges(floe, { ...base(part, scd), partitionBy: ['B'], comment: 'by b', source: eventsDf(floe, b), batchId: i });
      await applyChanges(floe, { ...base(plain, scd), source: eventsDf(floe, b), batchId: i });
    }
    const snap = await floe.snapshot(part);
    assert.deepEqual(snap.partitionColumns, ['b']);
    assert.equal(snap.metadata.description, 'by b');
    assert.ok(snap.files.every((f) => f.partitionValues.b === 'x' || f.partitionValues.b === 'y'));
    const read = scd === 1 ? readScd1 : readScd2;
    assert.deepEqual(await read(floe, part), await read(floe, plain), `scd ${scd}`);
  }
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 1), partitionBy: ['nope'], source: eventsDf(floe, [u(1, 1, 1)]), batchId: 0 }), (e: Error & { code?: string }) => e.code === 'AUTO_CDC_COLUMN_NOT_FOUND');
});

test('SCD 1: tombstones are garbage-collected after pipelines.cdc.tombstoneGCThresholdInSeconds', async () => {
  const t = fresh();
  const opts = (batchId: number, now: number, evs: Ev[]) => ({ ...base(t, 1), source: eventsDf(floe, evs), batchId, now, tombstoneGCThresholdInSeconds: 60 });
  const stateIds = async () => (await (await floe.read.delta(locJoin(t, STATE_DIR))).toJSON()).map((r) => Number(r.id)).sort();
  await applyChanges(floe, opts(0, 0, [u(1, 5, 50), d(1, 7), u(3, 1, 3), d(3, 2)]));
  await applyChanges(floe, opts(1, 30_000, [u(1, 6, 60)])); // within retention: rejected
  assert.deepEqual(await readScd1(floe, t), []);
  // Expired tombstones of keys a batch does not touch stay until the periodic pass…
  await applyChanges(floe, opts(2, 120_000, [u(2, 1, 1)]));
  assert.deepEqual(await stateIds(), [1, 2, 3]);
  // …but an expired tombstone of a key the batch touches is collected before the batch applies:
  // the late event is applied, as in DLT after GC.
  await applyChanges(floe, opts(3, 130_000, [u(1, 6, 60)]));
  assert.deepEqual(await readScd1(floe, t), [{ id: 1, a: 60, b: null }, { id: 2, a: 1, b: null }]);
  // The periodic pass (every FULL_GC_EVERY-th batch) removes key 3's expired tombstone.
  await applyChanges(floe, opts(FULL_GC_EVERY, 140_000, [u(2, 2, 2)]));
  assert.deepEqual(await stateIds(), [1, 2]);
  await applyChanges(floe, opts(FULL_GC_EVERY + 1, 150_000, [u(3, 0, 30)])); // a late event after GC starts key 3 afresh
  assert.deepEqual(await readScd1(floe, t), [{ id: 1, a: 60, b: null }, { id: 2, a: 2, b: null }, { id: 3, a: 30, b: null }]);
});

test('SCD 2: a late event is placed into history; a delete closes the current version', async () => {
  const t = fresh();
  await applyChanges(floe, { ...base(t, 2), source: eventsDf(floe, [u(1, 1, 10), u(1, 5, 50)]), batchId: 0 });
  await applyChanges(floe, { ...base(t, 2), source: eventsDf(floe, [u(1, 3, 30), d(1, 9)]), batchId: 1 });
  assert.deepEqual(await readScd2(floe, t), [
    { id: 1, a: 10, b: null, start: 1, end: 3 },
    { id: 1, a: 30, b: null, start: 3, end: 5 },
    { id: 1, a: 50, b: null, start: 5, end: 9 },
  ]);
  // An identical upsert continues its version (one batch, and across batches).
  const t3 = fresh();
  await applyChanges(floe, { ...base(t3, 2), source: eventsDf(floe, [u(1, 1, 10), u(1, 2, 10), u(1, 4, 20), u(2, 1, 5), u(2, 2, 5), d(2, 3)]), batchId: 0 });
  await applyChanges(floe, { ...base(t3, 2), source: eventsDf(floe, [u(1, 3, 10), u(1, 5, 20), u(1, 6, 30)]), batchId: 1 });
  assert.deepEqual(await readScd2(floe, t3), [
    { id: 1, a: 10, b: null, start: 1, end: 4 },
    { id: 1, a: 20, b: null, start: 4, end: 6 },
    { id: 1, a: 30, b: null, start: 6, end: null },
    { id: 2, a: 5, b: null, start: 1, end: 3 },
  ]);
  // Only untracked columns change: in place (no new version).
  const t2 = fresh();
  await applyChanges(floe, { ...base(t2, 2, { trackHistoryColumnList: ['a'] }), source: eventsDf(floe, [u(1, 1, 10, 'x')]), batchId: 0 });
  await applyChanges(floe, { ...base(t2, 2, { trackHistoryColumnList: ['a'] }), source: eventsDf(floe, [u(1, 2, 10, 'y')]), batchId: 1 });
  assert.deepEqual(await readScd2(floe, t2), [{ id: 1, a: 10, b: 'y', start: 1, end: null }]);
});

test('SCD 2: a tombstone keeps late events in history; once expired, the key starts a fresh history; untouched keys are collected by the periodic pass', async () => {
  const t = fresh();
  const opts = (batchId: number, now: number, evs: Ev[]) => ({ ...base(t, 2), source: eventsDf(floe, evs), batchId, now, tombstoneGCThresholdInSeconds: 60 });
  const stateIds = async () => (await (await floe.read.delta(locJoin(t, STATE_DIR))).toJSON()).map((r) => `${Number(r.id)}@${Number(r.__seq)}`).sort();
  await applyChanges(floe, opts(0, 0, [u(1, 5, 50), d(1, 7), u(2, 1, 1), u(3, 1, 3), d(3, 2)]));
  await applyChanges(floe, opts(1, 30_000, [u(1, 6, 60)])); // within retention: placed into history
  assert.deepEqual((await readScd2(floe, t)).filter((r) => r.id === 1), [
    { id: 1, a: 50, b: null, start: 5, end: 6 },
    { id: 1, a: 60, b: null, start: 6, end: 7 },
  ]);
  // Key 1's tombstone (applied at 0) has expired at 200 s: collected before the batch applies, so
  // the late event starts a fresh history (DLT's resurrection after GC).
  await applyChanges(floe, opts(2, 200_000, [u(1, 8, 80), u(2, 2, 2)]));
  assert.deepEqual((await readScd2(floe, t)).filter((r) => r.id === 1), [
    { id: 1, a: 50, b: null, start: 5, end: 6 },
    { id: 1, a: 60, b: null, start: 6, end: 7 },
    { id: 1, a: 80, b: null, start: 8, end: null },
  ]);
  // Key 3 (expired, untouched) stays in the state until a full-GC batch (batchId % FULL_GC_EVERY = 0).
  assert.deepEqual(await stateIds(), ['1@8', '2@1', '2@2', '3@1', '3@2']);
  await applyChanges(floe, opts(FULL_GC_EVERY, 210_000, [u(2, 3, 3)]));
  assert.deepEqual(await stateIds(), ['1@8', '2@1', '2@2', '2@3']);
  assert.deepEqual((await readScd2(floe, t)).filter((r) => r.id === 3), [{ id: 3, a: 3, b: null, start: 1, end: 2 }]);
});

test('the same key and sequence twice in a batch is an error naming the key', async () => {
  const t = fresh();
  await assert.rejects(
    applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, [u(7, 4, 1), u(7, 4, 2), u(8, 4, 1)]), batchId: 0 }),
    (e: Error & { code?: string }) => e.code === 'AUTO_CDC_DUPLICATE_SEQUENCE' && /id=7/.test(e.message) && /sequence 4/.test(e.message),
  );
  // Integer sequences whose range could hold every event distinctly are first checked by a bitmap
  // over the range: a repeated pair there (or a sequence shared by two keys) still takes the exact path.
  await assert.rejects(
    applyChanges(floe, { ...base(fresh(), 1), source: eventsDf(floe, [u(7, 4, 1), u(8, -3, 1), u(7, 4, 2), u(9, 20, 1)]), batchId: 0 }),
    (e: Error & { code?: string }) => e.code === 'AUTO_CDC_DUPLICATE_SEQUENCE' && /id=7/.test(e.message) && /sequence 4/.test(e.message),
  );
  const shared = fresh();
  await applyChanges(floe, { ...base(shared, 1), source: eventsDf(floe, [u(1, 1, 1), u(2, 1, 2), u(3, -5, 3), u(3, 9, 4), u(4, 10, 5)]), batchId: 0 });
  assert.deepEqual(await readScd1(floe, shared), [{ id: 1, a: 1, b: null }, { id: 2, a: 2, b: null }, { id: 3, a: 4, b: null }, { id: 4, a: 5, b: null }]);
  const unique = fresh();
  await applyChanges(floe, { ...base(unique, 1), source: eventsDf(floe, [u(1, -2, 1), u(2, 0, 2), u(1, 3, 3), u(1, 7, 4), d(2, 8)]), batchId: 0 });
  assert.deepEqual(await readScd1(floe, unique), [{ id: 1, a: 4, b: null }]);
  // The very same event delivered twice is one event.
  await applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, [u(7, 4, 1), u(7, 4, 1)]), batchId: 0 });
  assert.deepEqual(await readScd1(floe, t), [{ id: 7, a: 1, b: null }]);
  // A later batch too (state present): an upsert and a delete at one pair; nothing applied.
  await assert.rejects(
    applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, [u(8, 9, 1), u(7, 9, 3), d(7, 9)]), batchId: 1 }),
    (e: Error & { code?: string }) => e.code === 'AUTO_CDC_DUPLICATE_SEQUENCE' && /id=7/.test(e.message) && /sequence 9/.test(e.message),
  );
  assert.deepEqual(await readScd1(floe, t), [{ id: 7, a: 1, b: null }]);
  // SCD 2's first batch finds repeated pairs in its history pass (a delete and an upsert too).
  const t2 = fresh();
  await assert.rejects(
    applyChanges(floe, { ...base(t2, 2), source: eventsDf(floe, [u(8, 1, 1), u(7, 4, 1), d(7, 4), u(9, 4, 1)]), batchId: 0 }),
    (e: Error & { code?: string }) => e.code === 'AUTO_CDC_DUPLICATE_SEQUENCE' && /id=7/.test(e.message) && /sequence 4/.test(e.message),
  );
  assert.equal(await floe.deltaLog(t2).exists(), false, 'nothing written: the target is created by the first commit');
  await applyChanges(floe, { ...base(t2, 2), source: eventsDf(floe, [u(7, 4, 1), u(7, 2, 2), u(7, 4, 1)]), batchId: 0 });
  assert.deepEqual(await readScd2(floe, t2), [{ id: 7, a: 2, b: null, start: 2, end: 4 }, { id: 7, a: 1, b: null, start: 4, end: null }]);
  // Option checks.
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 2), applyAsTruncates: "op = 't'", source: eventsDf(floe, [u(1, 1, 1)]), batchId: 0 }), /SCD type 1 only/);
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 1), columnList: ['id'], source: eventsDf(floe, [u(1, 1, 1)]), batchId: 0 }), /mutually exclusive/);
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 2), trackHistoryColumnList: ['id'], source: eventsDf(floe, [u(1, 1, 1)]), batchId: 0 }), /names the key column 'id': keys are not tracked/);
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 2), trackHistoryColumnList: ['op'], source: eventsDf(floe, [u(1, 1, 1)]), batchId: 0 }), /names column 'op', which exceptColumnList leaves out/);
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 2), trackHistoryColumnList: ['nope'], source: eventsDf(floe, [u(1, 1, 1)]), batchId: 0 }), /names column 'nope', which the source does not have/);
  await assert.rejects(applyChanges(floe, { ...base(fresh(), 1), sequenceBy: 'a', source: eventsDf(floe, [u(1, 1, null)]), batchId: 0 }), /NULL sequenceBy/);
});

for (const scd of [1, 2] as const) {
  test(`SCD ${scd}: a crash between the target and the state commits, then a rerun, equals an uninterrupted run`, async () => {
    const batches: Ev[][] = [[u(1, 1, 10), u(2, 1, 20)], [u(1, 4, 40), d(2, 5)], [u(2, 3, 30), u(3, 2, 7)]];
    const clean = fresh();
    for (let i = 0; i < batches.length; i++) await applyChanges(floe, { ...base(clean, scd), source: eventsDf(floe, batches[i]!), batchId: i });

    const crashed = fresh();
    await applyChanges(floe, { ...base(crashed, scd), source: eventsDf(floe, batches[0]!), batchId: 0 });
    // Batch 1: the target commits, then the process "dies" before the state commit.
    const p = await prepareApplyChanges(floe, { ...base(crashed, scd), source: eventsDf(floe, batches[1]!), batchId: 1 });
    await commitTargetStep(floe, p);
    await dropTemps(floe, p);
    const targetVersion = (await floe.snapshot(crashed)).version;
    // The rerun of batch 1 skips the target (its txn landed) and still updates the state.
    const r1 = await applyChanges(floe, { ...base(crashed, scd), source: eventsDf(floe, batches[1]!), batchId: 1 });
    assert.equal(r1.skipped, false);
    assert.equal(r1.targetSkipped, true);
    assert.equal((await floe.snapshot(crashed)).version, targetVersion);
    // A rerun of a completed batch does nothing at all.
    const again = await applyChanges(floe, { ...base(crashed, scd), source: eventsDf(floe, batches[1]!), batchId: 1 });
    assert.equal(again.skipped, true);
    await applyChanges(floe, { ...base(crashed, scd), source: eventsDf(floe, batches[2]!), batchId: 2 });
    const read = scd === 1 ? readScd1 : readScd2;
    assert.deepEqual(await read(floe, crashed), await read(floe, clean));
    const st = async (t: string) => (await (await floe.read.delta(locJoin(t, STATE_DIR))).toJSON()).map((r) => ({ ...r, __ts: 0 })).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    assert.deepEqual(await st(crashed), await st(clean));
  });
}

test('AUTO CDC FROM SNAPSHOT: the documented historical snapshot example (SCD 2, TRACK HISTORY ON TrackingColumn)', async () => {
  const t = fresh();
  const snap = (rows: [number, string, string][]) =>
    floe.duckdbSql(`SELECT * FROM (VALUES ${rows.map(([k, a, b]) => `(${k}::BIGINT, '${a}', '${b}')`).join(', ')}) AS s(Key, TrackingColumn, NonTrackingColumn)`);
  const o = { target: t, keys: ['Key'], storedAsScdType: 2 as const, trackHistoryColumnList: ['TrackingColumn'], flowName: 'snap' };
  await applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[1, 'a1', 'b1'], [2, 'a2', 'b2'], [4, 'a4', 'b4']]), snapshotVersion: 1 });
  await applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[2, 'a2_new', 'b2'], [3, 'a3', 'b3'], [4, 'a4', 'b4_new']]), snapshotVersion: 2 });
  assert.deepEqual(await users(t, 'Key, "__START_AT"'), [
    { Key: 1, TrackingColumn: 'a1', NonTrackingColumn: 'b1', __START_AT: 1, __END_AT: 2 },
    { Key: 2, TrackingColumn: 'a2', NonTrackingColumn: 'b2', __START_AT: 1, __END_AT: 2 },
    { Key: 2, TrackingColumn: 'a2_new', NonTrackingColumn: 'b2', __START_AT: 2, __END_AT: null },
    { Key: 3, TrackingColumn: 'a3', NonTrackingColumn: 'b3', __START_AT: 2, __END_AT: null },
    { Key: 4, TrackingColumn: 'a4', NonTrackingColumn: 'b4_new', __START_AT: 1, __END_AT: null },
  ]);
  const before = await users(t, 'Key, "__START_AT"');
  // A rerun of an applied version is skipped; an older or equal version as a new batch is refused.
  assert.equal((await applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[9, 'x', 'y']]), snapshotVersion: 2 })).skipped, true);
  await assert.rejects(applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[9, 'x', 'y']]), snapshotVersion: 1, batchId: 5 }), (e: Error & { code?: string }) => e.code === 'INVALID_SNAPSHOT_VERSION' && /version 1, not after the last applied version 2/.test(e.message));
  await assert.rejects(applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[9, 'x', 'y']]), snapshotVersion: 2, batchId: 5 }), /INVALID_SNAPSHOT_VERSION|not after the last applied/);
  // (a fractional version into the BIGINT history is refused by the type check)
  await assert.rejects(applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[9, 'x', 'y']]), snapshotVersion: 2.5, batchId: 5 }), /AUTO_CDC_SCHEMA_MISMATCH|would change/);
  assert.deepEqual(await users(t, 'Key, "__START_AT"'), before);
  await applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[9, 'x', 'y']]), snapshotVersion: 3, batchId: 5 });
  assert.equal((await users(t, 'Key, "__START_AT"')).filter((r) => r.__END_AT === null).length, 1);
});

test('AUTO CDC FROM SNAPSHOT: the documented periodic snapshot example (timestamps as versions), and SCD 1', async () => {
  const snap = (rows: [number, string][]) => floe.duckdbSql(`SELECT * FROM (VALUES ${rows.map(([k, v]) => `(${k}::BIGINT, '${v}')`).join(', ')}) AS s(Key, Value)`);
  const t = fresh();
  const o = { target: t, keys: ['Key'], storedAsScdType: 2 as const, flowName: 'snap' };
  await applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[1, 'a1'], [2, 'a2']]), snapshotVersion: new Date('2024-01-01T00:00:00Z'), batchId: 0 });
  await applyChangesFromSnapshot(floe, { ...o, snapshot: snap([[2, 'b2'], [3, 'a3']]), snapshotVersion: new Date('2024-01-01T12:00:00Z'), batchId: 1 });
  const rows = await (await floe.read.delta(t)).orderBy('Key', '"__START_AT"').toJSON();
  const ts = (v: unknown) => (v === null ? null : new Date(String(v)).toISOString());
  assert.deepEqual(rows.map((r) => [Number(r.Key), r.Value, ts(r.__START_AT), ts(r.__END_AT)]), [
    [1, 'a1', '2024-01-01T00:00:00.000Z', '2024-01-01T12:00:00.000Z'],
    [2, 'a2', '2024-01-01T00:00:00.000Z', '2024-01-01T12:00:00.000Z'],
    [2, 'b2', '2024-01-01T12:00:00.000Z', null],
    [3, 'a3', '2024-01-01T12:00:00.000Z', null],
  ]);
  const t1 = fresh();
  await applyChangesFromSnapshot(floe, { target: t1, keys: ['Key'], flowName: 's1', snapshot: snap([[1, 'a1'], [2, 'a2']]), snapshotVersion: 1 });
  await applyChangesFromSnapshot(floe, { target: t1, keys: ['Key'], flowName: 's1', snapshot: snap([[2, 'b2'], [3, 'a3']]), snapshotVersion: 2 });
  assert.deepEqual(await users(t1, 'Key'), [{ Key: 2, Value: 'b2' }, { Key: 3, Value: 'a3' }]);
  // Once the target has deletion vectors, reading it for a snapshot's deletes loads them into engine
  // tables, dropped when the call returns (a long session applying snapshot after snapshot keeps none).
  const held = floe.trackedTables().length;
  await applyChangesFromSnapshot(floe, { target: t1, keys: ['Key'], flowName: 's1', snapshot: snap([[2, 'b2'], [3, 'b3'], [4, 'a4']]), snapshotVersion: 3 });
  assert.ok((await floe.snapshot(t1)).files.some((f) => f.deletionVector));
  await applyChangesFromSnapshot(floe, { target: t1, keys: ['Key'], flowName: 's1', snapshot: snap([[2, 'b2'], [4, 'a4']]), snapshotVersion: 4 });
  assert.equal(floe.trackedTables().length, held);
  assert.deepEqual(await users(t1, 'Key'), [{ Key: 2, Value: 'b2' }, { Key: 4, Value: 'a4' }]);
  await assert.rejects(applyChangesFromSnapshot(floe, { target: t1, keys: ['Key'], flowName: 's1', snapshot: snap([[5, 'x'], [5, 'y']]), snapshotVersion: 5 }), (e: Error & { code?: string }) => e.code === 'DUPLICATE_KEY_VIOLATION');
});

test('Debezium envelope (op c/u/d/r, before/after) mapped to AUTO CDC with a STRUCT sequence', async (t) => {
  if (localOnly(t, 'the Debezium example (src/examples/debezium-cdc.ts) takes a local folder')) return;
  const out = path.join(await tempDir('floe-autocdc-'), 'debezium');
  await fs.mkdir(out);
  const { scd1, scd2 } = await runDebeziumExample(floe, out);
  assert.deepEqual(await users(scd1, 'id'), [
    { id: 1, name: 'Ada Lovelace', email: 'ada@new.example' },
    { id: 2, name: 'Grace', email: 'grace@example' },
  ]);
  const h = (await (await floe.read.delta(scd2)).orderBy('id', '"__START_AT"').toJSON()).map((r) => [Number(r.id), r.name, JSON.stringify(r.__START_AT), JSON.stringify(r.__END_AT)]);
  assert.deepEqual(h, [
    [1, 'Ada', '{"ts_ms":"1000","lsn":"10"}', '{"ts_ms":"1005","lsn":"15"}'],
    [1, 'Ada', '{"ts_ms":"1005","lsn":"15"}', '{"ts_ms":"1005","lsn":"16"}'],
    [1, 'Ada Lovelace', '{"ts_ms":"1005","lsn":"16"}', 'null'],
    [2, 'Grace', '{"ts_ms":"1001","lsn":"11"}', 'null'],
    [3, 'Linus', '{"ts_ms":"1002","lsn":"12"}', '{"ts_ms":"1007","lsn":"18"}'],
  ]);
});

test('later batches change a target with deletion vectors by position: same target and change feed as the MERGE path', async () => {
  // A seeded history of upserts (some late), deletes and re-deliveries over 12 keys, in 4 batches,
  // applied to a target with deletion vectors (rows located while diffing, no MERGE join) and to one
  // without (floe's MERGE): per version the targets' change feeds hold the same rows.
  const rnd = seededRandom(7);
  for (const scd of [1, 2] as const) {
    const evs: Ev[] = [];
    for (let s = 1; s <= 60; s++) evs.push(rnd(6) === 0 ? d(rnd(12), s) : u(rnd(12), s, rnd(4), rnd(3) === 0 ? null : `v${rnd(3)}`));
    const batches = [evs.slice(0, 20), [...evs.slice(35, 45), ...evs.slice(20, 30)], [...evs.slice(30, 35), evs[3]!, ...evs.slice(45, 50)], evs.slice(50)];
    const withDv = fresh();
    const withoutDv = fresh();
    for (const [i, b] of batches.entries()) {
      await applyChanges(floe, { ...base(withDv, scd), source: eventsDf(floe, b), batchId: i });
      await applyChanges(floe, { ...base(withoutDv, scd), source: eventsDf(floe, b), batchId: i, tableProperties: { 'delta.enableDeletionVectors': 'false' } });
    }
    const read = scd === 1 ? readScd1 : readScd2;
    assert.deepEqual(await read(floe, withDv), await read(floe, withoutDv));
    const feed = async (t: string): Promise<string[]> => (await (await floe.read.changes(t, { startingVersion: 1 })).toJSON())
      .map((r) => JSON.stringify([r.id, r.a, r.b, r.__START_AT ?? null, r.__END_AT ?? null, r._change_type, r._commit_version])).sort();
    const [a, b] = [await feed(withDv), await feed(withoutDv)];
    assert.ok(a.some((r) => r.includes('update_preimage')) && a.some((r) => r.includes('"insert"')), `scd ${scd}: the feed has updates and inserts`);
    if (scd === 1) assert.ok(a.some((r) => r.includes('"delete"')), 'the feed has deletes');
    assert.deepEqual(a, b, `scd ${scd}: change feeds differ`);
    // The DV target's later commits copied no rows (a file whose every row changed is just removed),
    // and marked rows in deletion vectors.
    const merges = (await (await DeltaTable.forPath(floe, withDv)).history()).filter((h) => h.operation === 'MERGE');
    assert.equal(merges.length, 3);
    for (const h of merges) assert.equal(Number(h.operationMetrics?.numTargetRowsCopied ?? 0), 0);
    assert.ok(merges.some((h) => Number(h.operationMetrics?.numDeletionVectorsAdded ?? 0) + Number(h.operationMetrics?.numDeletionVectorsUpdated ?? 0) > 0), `scd ${scd}: ${JSON.stringify(merges.map((h) => h.operationMetrics))}`);
    const plain = (await (await DeltaTable.forPath(floe, withoutDv)).history()).filter((h) => h.operation === 'MERGE');
    assert.ok(plain.some((h) => Number(h.operationMetrics?.numTargetRowsCopied ?? 0) > 0), 'the MERGE path copies rows');
  }
});

test('a writer changing the target between the diff and the commit makes the batch fail with a conflict; the rerun applies it once', async () => {
  for (const scd of [1, 2] as const) {
    const t = fresh();
    await applyChanges(floe, { ...base(t, scd), source: eventsDf(floe, [u(1, 1, 10), u(2, 1, 20), u(3, 1, 30)]), batchId: 0 });
    // Batch 1 is diffed against the target (rows located by position), then another writer deletes a row.
    const p = await prepareApplyChanges(floe, { ...base(t, scd), source: eventsDf(floe, [u(1, 2, 11), d(2, 2)]), batchId: 1 });
    assert.ok(p.positional, 'the batch locates its rows by position');
    await (await DeltaTable.forPath(floe, t)).delete('id = 3');
    await assert.rejects(commitTargetStep(floe, p), (e: Error & { code?: string }) => /Concurrent/.test(`${e.code} ${e.message}`));
    await dropTemps(floe, p);
    // Nothing of batch 1 landed; the rerun (a pipeline's retry) applies it against the new version.
    await applyChanges(floe, { ...base(t, scd), source: eventsDf(floe, [u(1, 2, 11), d(2, 2)]), batchId: 1 });
    const rows = scd === 1 ? await readScd1(floe, t) : (await readScd2(floe, t)).filter((r) => r.end === null);
    assert.deepEqual(rows.map((r) => [r.id, r.a]), [[1, 11]]);
  }
});

test('the state commit marks the state rows it replaces or collects by position (no MERGE): same state and target as the MERGE path', async () => {
  // A seeded history with deletes, late events, re-deliveries and tombstones expiring (60 s
  // threshold, 100 s between batches), applied twice: as AUTO CDC creates the state (deletion
  // vectors on: the state commit works by position) and with the state's deletion vectors turned
  // off after the first batch (the state commit then takes floe's MERGE).
  const rnd = seededRandom(11);
  for (const scd of [1, 2] as const) {
    const evs: Ev[] = [];
    for (let s = 1; s <= 80; s++) evs.push(rnd(4) === 0 ? d(rnd(10), s) : u(rnd(10), s, rnd(5), rnd(3) === 0 ? null : `v${rnd(3)}`));
    const batches = [evs.slice(0, 25), [...evs.slice(40, 50), ...evs.slice(25, 35)], [...evs.slice(35, 40), evs[2]!, evs[30]!], evs.slice(50, 65), evs.slice(65)];
    const byPos = fresh();
    const merged = fresh();
    for (const [i, b] of batches.entries()) {
      const o = (t: string): ApplyChangesOptions => ({ ...base(t, scd), source: eventsDf(floe, b), batchId: i, now: i * 100_000, tombstoneGCThresholdInSeconds: 60 });
      await applyChanges(floe, o(byPos));
      await applyChanges(floe, o(merged));
      if (i === 0) await floe.sql(`ALTER TABLE delta.\`${locJoin(merged, STATE_DIR)}\` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'false')`);
    }
    const read = scd === 1 ? readScd1 : readScd2;
    assert.deepEqual(await read(floe, byPos), await read(floe, merged), `scd ${scd}: targets differ`);
    const state = async (t: string): Promise<string[]> => (await (await floe.read.delta(locJoin(t, STATE_DIR))).toJSON()).map((r) => JSON.stringify(r)).sort();
    assert.deepEqual(await state(byPos), await state(merged), `scd ${scd}: states differ`);
    // The by-position state commits copied no rows and wrote deletion vectors; the MERGE path none.
    const hist = async (t: string) => (await (await DeltaTable.forPath(floe, locJoin(t, STATE_DIR))).history()).filter((h) => h.operation === 'MERGE').map((h) => h.operationMetrics ?? {});
    const pos = await hist(byPos);
    assert.ok(pos.length >= 1, `scd ${scd}: the state took MERGE-like commits`);
    for (const m of pos) assert.equal(Number(m.numTargetRowsCopied ?? 0), 0);
    assert.ok(pos.some((m) => Number(m.numDeletionVectorsAdded ?? 0) + Number(m.numDeletionVectorsUpdated ?? 0) > 0), `scd ${scd}: ${JSON.stringify(pos)}`);
    assert.ok((await hist(merged)).every((m) => m.numDeletionVectorsAdded === undefined), 'the MERGE path writes no deletion vectors here');
  }
});

test('a later batch reads each log incrementally: no listing of the target or the state log', async () => {
  const t = fresh();
  await applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, [u(1, 1, 1), u(2, 1, 2)]), batchId: 0 });
  await applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, [u(1, 2, 3)]), batchId: 1 });
  // Both logs have been loaded by this session: the next batch moves their snapshots forward by name.
  const stores = [floe.deltaLog(t).store, floe.deltaLog(locJoin(t, STATE_DIR)).store];
  let listings = 0;
  const originals = stores.map((s) => s.list);
  stores.forEach((s, i) => {
    s.list = (...a: Parameters<typeof s.list>) => {
      listings++;
      return originals[i]!.apply(s, a);
    };
  });
  try {
    const r = await applyChanges(floe, { ...base(t, 1), source: eventsDf(floe, [u(2, 3, 4), d(1, 3)]), batchId: 2 });
    assert.equal(r.numUpsertedRows, 1);
    assert.equal(r.numDeletedRows, 1);
    assert.equal(typeof r.stateVersion, 'number');
  } finally {
    stores.forEach((s, i) => {
      s.list = originals[i]!;
    });
  }
  assert.equal(listings, 0, 'no listing of _delta_log/ in a later batch');
  assert.deepEqual(await readScd1(floe, t), [{ id: 2, a: 4, b: null }]);
});

test(`the state and the target keep few files: once ${STATE_FOLD_FILES} small ones accumulate, a commit folds them into its new file`, async () => {
  for (const scd of [1, 2] as const) {
    const folded = fresh();
    const merged = fresh();
    const batches: Ev[][] = [[u(1, 1, 1), u(2, 1, 2), u(3, 1, 3)]];
    // Each batch a new key (a state file that stays), some also change or delete an older key.
    for (let i = 1; i <= STATE_FOLD_FILES + 4; i++) batches.push([u(100 + i, 1, i), ...(i % 5 === 0 ? [d(1 + (i % 3), 10 + i)] : i % 3 === 0 ? [u(1 + (i % 4), 10 + i, i)] : [])]);
    let most = 0;
    let mostTarget = 0;
    for (const [i, b] of batches.entries()) {
      const o = (t: string): ApplyChangesOptions => ({ ...base(t, scd), source: eventsDf(floe, b), batchId: i });
      await applyChanges(floe, o(folded));
      await applyChanges(floe, o(merged));
      if (i === 0) {
        await floe.sql(`ALTER TABLE delta.\`${locJoin(merged, STATE_DIR)}\` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'false')`);
        await floe.sql(`ALTER TABLE delta.\`${merged}\` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'false')`);
      }
      most = Math.max(most, (await floe.snapshot(locJoin(folded, STATE_DIR))).files.length);
      mostTarget = Math.max(mostTarget, (await floe.snapshot(folded)).files.length);
    }
    assert.ok(most >= STATE_FOLD_FILES, `scd ${scd}: at most ${most} state files`);
    assert.ok(mostTarget >= STATE_FOLD_FILES, `scd ${scd}: at most ${mostTarget} target files`);
    const targetFiles = (await floe.snapshot(folded)).files.length;
    assert.ok(targetFiles < 8, `scd ${scd}: the target has ${targetFiles} files`);
    // The folding commit's change feed is the batch's changes alone: the feeds agree row for row.
    const feed = async (t: string): Promise<string[]> => (await (await floe.read.changes(t, { startingVersion: 0 })).toJSON())
      .map((r) => JSON.stringify({ ...r, _commit_version: 0, _commit_timestamp: 0 })).sort();
    assert.deepEqual(await feed(folded), await feed(merged), `scd ${scd}: change feeds differ`);
    const read = scd === 1 ? readScd1 : readScd2;
    assert.deepEqual(await read(floe, folded), await read(floe, merged), `scd ${scd}: targets differ`);
    const state = async (t: string): Promise<string[]> => (await (await floe.read.delta(locJoin(t, STATE_DIR))).toJSON()).map((r) => JSON.stringify({ ...r, __ts: 0 })).sort();
    assert.deepEqual(await state(folded), await state(merged), `scd ${scd}: states differ`);
    const files = (await floe.snapshot(locJoin(folded, STATE_DIR))).files.length;
    assert.ok(files < 8, `scd ${scd}: the state has ${files} files`);
    // The state, which only floe reads, is written as Parquet V2; the target as every reader takes it.
    assert.equal((await floe.snapshot(locJoin(folded, STATE_DIR))).configuration['floe.parquet.version'], 'v2');
    assert.equal((await floe.snapshot(folded)).configuration['floe.parquet.version'], undefined);
  }
});

test('SCD 1 first batch of many events over a small integer key range (perfect hash aggregation, packed sequences) equals the latest event per key', async () => {
  // 20,000 events over keys 0..4999 (range 2^13: the per-key aggregation runs with DuckDB's perfect
  // hash table), integer sequences unique over the batch, arriving shuffled; every 7th a delete.
  const ev = `SELECT (i * 7919 % 5000)::BIGINT AS id, (i * 3)::BIGINT - 30000 AS seq, CASE WHEN i % 7 = 0 THEN 'd' ELSE 'u' END AS op, i::BIGINT AS a, 'v' || i::VARCHAR AS b FROM range(20000) r(i) ORDER BY hash(i)`;
  const t = fresh();
  const before = (await floe.engine.allJson(`SELECT current_setting('perfect_ht_threshold') AS v`))[0]!.v;
  await applyChanges(floe, { ...base(t, 1), source: floe.duckdbSql(ev), batchId: 0 });
  const expected = (await floe.engine.allJson(`SELECT id, a, b FROM (${ev}) QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq DESC) = 1 AND op <> 'd' ORDER BY id`))
    .map((r) => ({ id: Number(r.id), a: Number(r.a), b: r.b }));
  const got = await readScd1(floe, t);
  assert.equal(got.length, expected.length);
  assert.deepEqual(got, expected);
  // the setting holds for that one statement only
  assert.equal((await floe.engine.allJson(`SELECT current_setting('perfect_ht_threshold') AS v`))[0]!.v, before);
});
