/**
 * The read path through the public API: `floe.read.delta` (time travel by version and timestamp),
 * DeltaTable history/detail, partitions, deletion vectors, column mapping, file skipping, DataFrame
 * operations, plain file readers and types. Expected values come from the conformance corpus (logs,
 * DAT expected Parquet files and `dat/_expected_text/*.txt`).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Floe } from '../floe.js';
import { DataFrame } from '../dataframe.js';
import { DeltaTable } from '../table/delta-table.js';
import { FloeError } from '../errors.js';
import { corpus, tempDir, corpusTable } from './helpers.js';
import { copyTableIn, corpusTableIn, isRemoteStore, locJoin, newRoot, readOnlyTable, readText, writeRaw } from './store.js';

let floe: Floe;
before(async () => {
  floe = await Floe.create();
});
after(async () => {
  await floe.close();
});

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** JS values made comparable: bigint/number as text, Date as ISO, bytes as hex, objects with sorted keys. */
function canon(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint' || typeof v === 'number') return String(v);
  if (v instanceof Date) return `D${v.toISOString()}`;
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canon(x)]));
  }
  return v;
}

async function rowSet(df: DataFrame): Promise<string[]> {
  return (await df.toArray()).map((r) => JSON.stringify(canon(r))).sort();
}

// ---------------------------------------------------------------------------------------------
// DAT tables at every version
// ---------------------------------------------------------------------------------------------

test('every DAT case at every expected version matches Spark rows and table_version_metadata', async (t) => {
  const root = corpusTable(t, 'dat');
  if (!root) return;
  const cases = (await fs.readdir(root)).filter((c) => existsSync(path.join(root, c, 'expected')));
  assert.ok(cases.length >= 11, `expected the 11 DAT cases, found ${cases.length}`);
  let checked = 0;
  for (const c of cases) {
    for (const ver of await fs.readdir(path.join(root, c, 'expected'))) {
      const meta = JSON.parse(readFileSync(path.join(root, c, 'expected', ver, 'table_version_metadata.json'), 'utf8')) as {
        version: number; properties: Record<string, string>; min_reader_version: number; min_writer_version: number;
      };
      const opts = ver === 'latest' ? {} : { versionAsOf: Number(ver.slice(1)) };
      const table = await readOnlyTable(path.join(root, c, 'delta'));
      const df = await floe.read.delta(table, opts);
      const expected = floe.read.parquet(path.join(root, c, 'expected', ver, 'table_content', '*.parquet'));
      const actualCols = (await df.columns()).map((x) => x.name);
      const expectedCols = (await expected.columns()).map((x) => x.name);
      assert.deepEqual([...actualCols].sort(), [...expectedCols].sort(), `${c}@${ver}: columns`);
      assert.deepEqual(await rowSet(df), await rowSet(expected), `${c}@${ver}: rows`);
      const detail = await (await DeltaTable.forPath(floe, table)).detail(opts);
      assert.equal(detail.version, meta.version, `${c}@${ver}: version`);
      assert.deepEqual(detail.properties, meta.properties, `${c}@${ver}: properties`);
      assert.equal(detail.minReaderVersion, meta.min_reader_version, `${c}@${ver}: minReaderVersion`);
      assert.equal(detail.minWriterVersion, meta.min_writer_version, `${c}@${ver}: minWriterVersion`);
      checked++;
    }
  }
  assert.equal(checked, 19, 'DAT v0.0.2 has 19 (case, version) expectations');
});

test('basic_append: v0 has the 3 rows of the first write, v1 and latest all 5', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const v0 = await floe.read.delta(p, { versionAsOf: 0 });
  assert.deepEqual(await v0.orderBy('number').toArray(), [
    { letter: 'a', number: 1n, a_float: 1.1 },
    { letter: 'b', number: 2n, a_float: 2.2 },
    { letter: 'c', number: 3n, a_float: 3.3 },
  ]);
  const v1 = await floe.read.delta(p, { versionAsOf: 1 });
  assert.equal(await v1.count(), 5);
  const latest = await floe.read.delta(p);
  assert.deepEqual((await latest.select('letter').orderBy('letter').toJSON()).map((r) => r.letter), ['a', 'b', 'c', 'd', 'e']);
  assert.equal((await floe.snapshot(p)).version, 1);
  assert.equal(await (await DeltaTable.forPath(floe, p)).version(), 1);
});

test('basic_partitioned: v0 3 rows; v1 adds a null-partition row and rows in partitions a and e', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  assert.equal(await (await floe.read.delta(p, { versionAsOf: 0 })).count(), 3);
  const rows = await (await floe.read.delta(p)).orderBy('number').toJSON();
  assert.deepEqual(rows, [
    { letter: 'a', number: '1', a_float: 1.1 },
    { letter: 'b', number: '2', a_float: 2.2 },
    { letter: 'c', number: '3', a_float: 3.3 },
    { letter: 'a', number: '4', a_float: 4.4 },
    { letter: 'e', number: '5', a_float: 5.5 },
    { letter: null, number: '6', a_float: 6.6 },
  ]);
  assert.deepEqual(await (await floe.read.delta(p)).columns(), [
    { name: 'letter', type: 'VARCHAR' },
    { name: 'number', type: 'BIGINT' },
    { name: 'a_float', type: 'DOUBLE' },
  ]);
});

// ---------------------------------------------------------------------------------------------
// Time travel
// ---------------------------------------------------------------------------------------------

// basic_append commitInfo.timestamp: v0 1674611413970 (2023-01-25T01:50:13.970Z), v1 1674611422877 (2023-01-25T01:50:22.877Z)
const BA_T0 = 1674611413970;
const BA_T1 = 1674611422877;

test('timestampAsOf: an exact commit timestamp resolves to that version, a timestamp between commits to the earlier', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const at = async (ts: Date | number | string): Promise<number> => (await floe.snapshot(p, { timestampAsOf: ts })).version;
  assert.equal(await at(BA_T0), 0);
  assert.equal(await at(BA_T0 + 1), 0);
  assert.equal(await at(BA_T1 - 1), 0);
  assert.equal(await at(new Date(BA_T1)), 1);
  assert.equal(await at('2023-01-25T01:50:22.877Z'), 1);
  assert.equal(await at('2023-01-25 01:50:20'), 0, "'YYYY-MM-DD HH:MM:SS' is UTC");
  assert.equal(await at('2023-01-25T02:50:22.877+01:00'), 1, 'an explicit offset is honoured');
  const rows = await (await floe.read.delta(p, { timestampAsOf: BA_T1 - 1 })).count();
  assert.equal(rows, 3, 'data read at a timestamp is the data of the resolved version');
  assert.equal(await (await floe.read.delta(p, { timestampAsOf: BA_T1 })).count(), 5);
});

test('timestampAsOf before the first commit / after the last commit fails with Spark error codes', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  await rejectsWith(floe.read.delta(p, { timestampAsOf: BA_T0 - 1 }), 'DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION', /version 0/);
  await rejectsWith(floe.read.delta(p, { timestampAsOf: '2000-01-01' }), 'DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION');
  await rejectsWith(floe.read.delta(p, { timestampAsOf: BA_T1 + 1 }), 'DELTA_TIMESTAMP_GREATER_THAN_COMMIT', /version 1/);
  await rejectsWith(floe.read.delta(p, { timestampAsOf: new Date('2100-01-01T00:00:00Z') }), 'DELTA_TIMESTAMP_GREATER_THAN_COMMIT');
});

test('versionAsOf beyond the latest, negative, or both options at once are errors', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  await rejectsWith(floe.read.delta(p, { versionAsOf: 2 }), 'DELTA_VERSION_NOT_FOUND', /latest version is 1/);
  await rejectsWith(floe.read.delta(p, { versionAsOf: 1000 }), 'DELTA_VERSION_NOT_FOUND');
  await rejectsWith(floe.read.delta(p, { versionAsOf: -1 }), 'FLOE_INVALID_ARGUMENT');
  await rejectsWith(floe.read.delta(p, { versionAsOf: 0.5 }), 'FLOE_INVALID_ARGUMENT');
  await rejectsWith(floe.read.delta(p, { versionAsOf: 0, timestampAsOf: BA_T0 }), 'DELTA_INVALID_TIME_TRAVEL_SPEC');
  await rejectsWith(floe.read.delta(p, { timestampAsOf: 'last tuesday' }), 'FLOE_INVALID_ARGUMENT');
});

test('time travel on a log whose early commits were cleaned up (dat/no_replay: log starts at checkpoint 2)', async (t) => {
  const p = await corpusTableIn(t, 'dat/no_replay/delta');
  if (!p) return;
  assert.equal((await floe.snapshot(p, { versionAsOf: 2 })).version, 2);
  await rejectsWith(floe.read.delta(p, { versionAsOf: 1 }), 'DELTA_VERSION_NOT_FOUND', /earliest version that can be read is 2/);
  // v2 commitInfo.timestamp 1674611467718, v3 1674611469760
  assert.equal((await floe.snapshot(p, { timestampAsOf: 1674611467718 })).version, 2);
  assert.equal((await floe.snapshot(p, { timestampAsOf: 1674611469760 })).version, 3);
  await rejectsWith(floe.read.delta(p, { timestampAsOf: 1674611467717 }), 'DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION', /version 2/);
  const hist = await (await DeltaTable.forPath(floe, p)).history();
  assert.deepEqual(hist.map((h) => h.version), [3, 2]);
});

test('non-ICT commit timestamps come from commitInfo.timestamp and are made strictly increasing, as Spark does', async (t) => {
  const src = corpusTable(t, 'dat/basic_append/delta');
  if (!src) return;
  const dir = await copyTableIn(src);
  try {
    // Rewrite commit 1 so its commitInfo.timestamp lies before commit 0's.
    const f = '_delta_log/00000000000000000001.json';
    const text = await readText(dir, f);
    await writeRaw(dir, f, text.replace(`"timestamp":${BA_T1}`, `"timestamp":${BA_T0 - 5000}`));
    const local = await Floe.create();
    try {
      const hist = await (await DeltaTable.forPath(local, dir)).history();
      assert.deepEqual(hist.map((h) => [h.version, h.timestamp]), [
        [1, new Date(BA_T0 + 1).toISOString()],
        [0, new Date(BA_T0).toISOString()],
      ]);
      assert.equal((await local.snapshot(dir, { timestampAsOf: BA_T0 })).version, 0);
      assert.equal((await local.snapshot(dir, { timestampAsOf: BA_T0 + 1 })).version, 1);
    } finally {
      await local.close();
    }
  } finally {
    if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
  }
});

// delta-rs/cdc_ict_table: in-commit timestamps (delta.enableInCommitTimestamps=true from v0).
// inCommitTimestamp: v0 1783874203271, v1 1683874206883 (hand-edited, out of order; commitInfo.timestamp 1783874206883),
// v2 1783874212175, v3 1783874213881.
test('in-commit timestamps: history reports inCommitTimestamp, including the out-of-order commit 1', async (t) => {
  const p = await corpusTableIn(t, 'delta-rs/cdc_ict_table');
  if (!p) return;
  const hist = await (await DeltaTable.forPath(floe, p)).history();
  assert.deepEqual(hist.map((h) => [h.version, h.timestamp, h.operation]), [
    [3, '2026-07-12T16:36:53.881Z', 'UPDATE'],
    [2, '2026-07-12T16:36:52.175Z', 'DELETE'],
    [1, '2023-05-12T06:50:06.883Z', 'WRITE'],
    [0, '2026-07-12T16:36:43.271Z', 'CREATE OR REPLACE TABLE'],
  ]);
  assert.equal((await floe.snapshot(p)).timestamp, 1783874213881);
  assert.equal((await floe.snapshot(p, { versionAsOf: 1 })).timestamp, 1683874206883);
});

test('in-commit timestamps: timestampAsOf resolves against inCommitTimestamp', async (t) => {
  const p = await corpusTableIn(t, 'delta-rs/cdc_ict_table');
  if (!p) return;
  const at = async (ts: number | string): Promise<number> => (await floe.snapshot(p, { timestampAsOf: ts })).version;
  assert.equal(await at(1783874212175), 2);
  assert.equal(await at(1783874213000), 2);
  assert.equal(await at('2026-07-12T16:36:53.881Z'), 3);
  await rejectsWith(floe.read.delta(p, { timestampAsOf: 1783874213882 }), 'DELTA_TIMESTAMP_GREATER_THAN_COMMIT', /version 3/);
  await rejectsWith(floe.read.delta(p, { timestampAsOf: '2020-01-01T00:00:00Z' }), 'DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION');
  assert.deepEqual(await (await floe.read.delta(p, { timestampAsOf: 1783874213881 })).orderBy('name').toJSON(), [
    { name: 'Kate', birthyear: 1995, age: 37 },
    { name: 'Steve', birthyear: 1986, age: 41 },
  ]);
  assert.deepEqual(await (await floe.read.delta(p, { versionAsOf: 1 })).orderBy('name').toJSON(), [
    { name: 'Dan', birthyear: 1995, age: 14 },
    { name: 'Dave', birthyear: 1995, age: 22 },
    { name: 'Kate', birthyear: 1995, age: 36 },
    { name: 'Steve', birthyear: 1986, age: 40 },
  ]);
});

// ---------------------------------------------------------------------------------------------
// History and detail
// ---------------------------------------------------------------------------------------------

test('history: newest first, every DESCRIBE HISTORY field from commitInfo', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const dt = await DeltaTable.forPath(floe, p);
  const hist = await dt.history();
  assert.deepEqual(hist, [
    {
      version: 1,
      timestamp: '2023-01-25T01:50:22.877Z',
      userId: null,
      userName: null,
      operation: 'WRITE',
      operationParameters: { mode: 'Append', partitionBy: '[]' },
      job: null,
      notebook: null,
      clusterId: null,
      readVersion: 0,
      isolationLevel: 'Serializable',
      isBlindAppend: true,
      operationMetrics: { numFiles: '1', numOutputRows: '2', numOutputBytes: '984' },
      userMetadata: null,
      engineInfo: 'Apache-Spark/3.3.1 Delta-Lake/2.1.1',
    },
    {
      version: 0,
      timestamp: '2023-01-25T01:50:13.970Z',
      userId: null,
      userName: null,
      operation: 'WRITE',
      operationParameters: { mode: 'ErrorIfExists', partitionBy: '[]' },
      job: null,
      notebook: null,
      clusterId: null,
      readVersion: null,
      isolationLevel: 'Serializable',
      isBlindAppend: true,
      operationMetrics: { numFiles: '1', numOutputRows: '3', numOutputBytes: '996' },
      userMetadata: null,
      engineInfo: 'Apache-Spark/3.3.1 Delta-Lake/2.1.1',
    },
  ]);
  assert.deepEqual((await dt.history(1)).map((h) => h.version), [1]);
  const wc = await corpusTableIn(t, 'dat/with_checkpoint/delta');
  if (!wc) return;
  const wh = await (await DeltaTable.forPath(floe, wc)).history();
  assert.deepEqual(wh.map((h) => [h.version, h.operation, h.readVersion, h.isBlindAppend]), [
    [3, 'WRITE', 2, false],
    [2, 'WRITE', 1, false],
    [1, 'WRITE', 0, false],
    [0, 'CREATE TABLE', null, true],
  ]);
  assert.deepEqual(wh[3]!.operationParameters, { isManaged: 'false', description: null, partitionBy: '[]', properties: '{"delta.checkpointInterval":"2"}' });
});

test('history: Databricks commits keep user, notebook, cluster, DELETE predicate and non-string parameters', async (t) => {
  const p = await corpusTableIn(t, 'delta-rs/table_with_column_mapping');
  if (!p) return;
  const [h] = await (await DeltaTable.forPath(floe, p)).history();
  assert.ok(h);
  assert.equal(h.version, 0);
  assert.equal(h.timestamp, new Date(1699946089972).toISOString());
  assert.equal(h.userId, '2797914831036774');
  assert.equal(h.userName, 'censoredmail@bmsuisse.ch');
  assert.deepEqual(h.notebook, { notebookId: '3271485675102593' });
  assert.equal(h.clusterId, '0428-070410-lm8e9giw');
  assert.equal(h.isolationLevel, 'WriteSerializable');
  assert.equal(h.isBlindAppend, false);
  assert.deepEqual(h.operationParameters, { mode: 'Overwrite', statsOnLoad: false, partitionBy: '["Company Very Short"]' });
  assert.equal(h.engineInfo, 'Databricks-Runtime/13.3.x-photon-scala2.12');

  const dv = await corpusTableIn(t, 'kernel-rs/data/table-with-dv-small');
  if (!dv) return;
  const [d1, d0] = await (await DeltaTable.forPath(floe, dv)).history();
  assert.ok(d1 && d0);
  assert.equal(d1.operation, 'DELETE');
  assert.deepEqual(d1.operationParameters, { predicate: '["(spark_catalog.delta.`/tmp/table-with-dv-small`.value IN (0, 9))"]' });
  assert.equal(d1.readVersion, 0);
  assert.equal(d1.operationMetrics.numDeletedRows, '2');
  assert.equal(d1.operationMetrics.numDeletionVectorsAdded, '1');
  assert.equal(d1.timestamp, '2023-03-03T02:39:54.429Z');
  assert.equal(d0.operation, 'WRITE');
});

test('detail: files, size, partitions, properties, protocol and features at latest and at a version', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  const dt = await DeltaTable.forPath(floe, p);
  const d = await dt.detail();
  assert.equal(d.format, 'delta');
  assert.equal(d.id, 'ced0baf6-aa13-4871-af26-91e6e2787052');
  assert.equal(d.name, null);
  assert.equal(d.description, null);
  assert.equal(d.location, p);
  assert.equal(d.createdAt, '2023-01-25T01:50:26.764Z');
  assert.equal(d.lastModified, '2023-01-25T01:50:29.957Z');
  assert.equal(d.version, 1);
  assert.deepEqual(d.partitionColumns, ['letter']);
  assert.deepEqual(d.clusteringColumns, []);
  assert.equal(d.numFiles, 6);
  assert.equal(d.sizeInBytes, 5 * 751 + 750);
  assert.deepEqual(d.properties, {});
  assert.equal(d.minReaderVersion, 1);
  assert.equal(d.minWriterVersion, 2);
  assert.equal(d.schema, 'letter: string, number: long, a_float: double');
  const d0 = await dt.detail({ versionAsOf: 0 });
  assert.equal(d0.version, 0);
  assert.equal(d0.numFiles, 3);
  assert.equal(d0.sizeInBytes, 3 * 751);
  assert.equal(d0.lastModified, '2023-01-25T01:50:27.131Z');

  const dv = await corpusTableIn(t, 'kernel-rs/data/table-with-dv-small');
  if (!dv) return;
  const dd = await (await DeltaTable.forPath(floe, dv)).detail();
  assert.equal(dd.numFiles, 1);
  assert.equal(dd.sizeInBytes, 635);
  assert.equal(dd.minReaderVersion, 3);
  assert.equal(dd.minWriterVersion, 7);
  assert.deepEqual(dd.tableFeatures, ['deletionVectors']);
  assert.deepEqual(dd.properties, { 'delta.enableDeletionVectors': 'true', 'delta.columnMapping.mode': 'none' });

  const ict = await corpusTableIn(t, 'delta-rs/cdc_ict_table');
  if (!ict) return;
  const di = await (await DeltaTable.forPath(floe, ict)).detail();
  assert.deepEqual(di.tableFeatures, ['appendOnly', 'changeDataFeed', 'inCommitTimestamp', 'invariants']);
  assert.deepEqual(di.partitionColumns, ['birthyear']);
  assert.deepEqual(di.properties, { 'delta.enableChangeDataFeed': 'true', 'delta.enableInCommitTimestamps': 'true' });
  assert.equal(di.numFiles, 2);
  assert.equal(di.sizeInBytes, 929 + 922);
  assert.equal(di.lastModified, '2026-07-12T16:36:53.881Z');

  const wc = await corpusTableIn(t, 'dat/with_checkpoint/delta');
  if (!wc) return;
  assert.deepEqual((await (await DeltaTable.forPath(floe, wc)).detail()).properties, { 'delta.checkpointInterval': '2' });
});

test('detail: a legacy protocol lists the features it implies, as Spark DESCRIBE DETAIL does', async (t) => {
  // Spark: tableFeatures = (protocol.implicitlySupportedFeatures ++ readerAndWriterFeatureNames).sorted;
  // protocol (1, 2) implies appendOnly and invariants.
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const d = await (await DeltaTable.forPath(floe, p)).detail();
  assert.deepEqual(d.tableFeatures, ['appendOnly', 'invariants']);
  // protocol (2, 5) implies every legacy feature up to column mapping (identityColumns needs writer 6).
  const cm = await corpusTableIn(t, 'kernel-rs/golden/table-with-columnmapping-mode-id/delta');
  if (!cm) return;
  const dc = await (await DeltaTable.forPath(floe, cm)).detail();
  assert.deepEqual(dc.tableFeatures, ['appendOnly', 'changeDataFeed', 'checkConstraints', 'columnMapping', 'generatedColumns', 'invariants']);
  // A table-features protocol (writer 7) implies nothing: only the listed features.
  const ict = await corpusTableIn(t, 'delta-rs/cdc_ict_table');
  if (!ict) return;
  assert.deepEqual((await (await DeltaTable.forPath(floe, ict)).detail()).tableFeatures, ['appendOnly', 'changeDataFeed', 'inCommitTimestamp', 'invariants']);
});

test('DeltaTable.forPath / read.delta on a folder without a table: DELTA_TABLE_NOT_FOUND', async () => {
  const dir = await newRoot();
  try {
    await rejectsWith(DeltaTable.forPath(floe, dir), 'DELTA_TABLE_NOT_FOUND');
    await rejectsWith(floe.read.delta(dir), 'DELTA_TABLE_NOT_FOUND');
    await rejectsWith(floe.read.delta(locJoin(dir, 'missing')), 'DELTA_TABLE_NOT_FOUND');
    assert.equal(await DeltaTable.isDeltaTable(floe, dir), false);
  } finally {
    if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
  }
});

test('tables open by file:// URL; unsupported URL schemes are refused clearly (s3:// and Azure: cloud-tables.test.ts)', async (t) => {
  const p = corpusTable(t, 'dat/basic_append/delta');
  if (!p) return;
  assert.equal(await (await floe.read.delta(pathToFileURL(p).href)).count(), 5);
  await rejectsWith(floe.read.delta('gs://bucket/table'), 'FLOE_REMOTE_NOT_SUPPORTED');
});

// ---------------------------------------------------------------------------------------------
// Partitions, deletion vectors, column mapping
// ---------------------------------------------------------------------------------------------

test('multi_partitioned: null partitions, binary and date partition values, escaped directory names', async (t) => {
  const p = await corpusTableIn(t, 'dat/multi_partitioned/delta');
  if (!p) return;
  const v1 = await (await floe.read.delta(p, { versionAsOf: 1 })).orderBy('number').toArray();
  assert.deepEqual(canon(v1), canon([
    { letter: 'a', date: new Date('1970-01-01T00:00:00Z'), data: Buffer.from('hello'), number: 1n },
    { letter: 'b', date: new Date('1970-01-01T00:00:00Z'), data: Buffer.from('world'), number: 2n },
    { letter: 'b', date: new Date('1970-01-02T00:00:00Z'), data: Buffer.from('world'), number: 3n },
    { letter: 'a', date: null, data: Buffer.from('x'), number: 4n },
    { letter: null, date: null, data: null, number: 5n },
  ]));
  const v2 = await (await floe.read.delta(p)).orderBy('number').toArray();
  assert.equal(v2.length, 2);
  assert.equal(v2[0]!.letter, '/%20%f', 'partition value decoded exactly once (directory letter=%2F%2520%25f)');
  assert.equal(Buffer.from(v2[0]!.data as Uint8Array).toString('hex'), '68656c6c6f');
  assert.equal(v2[1]!.letter, 'b');
  assert.equal(Buffer.from(v2[1]!.data as Uint8Array).toString('hex'), 'f09f9888', 'emoji binary partition value');
  assert.deepEqual(await (await floe.read.delta(p)).select('date').toJSON(), [{ date: '1970-01-01' }, { date: '1970-01-01' }]);
});

test('multi_partitioned_2: boolean, timestamp and decimal partition columns', async (t) => {
  const p = await corpusTableIn(t, 'dat/multi_partitioned_2/delta');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual(await df.columns(), [
    { name: 'bool', type: 'BOOLEAN' },
    { name: 'time', type: 'TIMESTAMP WITH TIME ZONE' },
    { name: 'amount', type: 'DECIMAL(38,18)' },
    { name: 'int', type: 'BIGINT' },
  ]);
  assert.deepEqual(await df.orderBy('int').toJSON(), [
    { bool: true, time: '1970-01-01 00:00:00+00', amount: '200.000000000000000000', int: '1' },
    { bool: true, time: '1970-01-01 12:30:00+00', amount: '200.000000000000000000', int: '2' },
    { bool: false, time: '1970-01-02 08:45:00+00', amount: '12.000000000000000000', int: '3' },
  ]);
});

test('deletion vectors: table-with-dv-small shows 8 of 10 rows; v0 shows all 10', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/data/table-with-dv-small');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual((await df.orderBy('value').toJSON()).map((r) => r.value), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(await df.count(), 8);
  assert.equal(await df.filter('value > 5').count(), 3);
  assert.equal(await (await floe.read.delta(p, { versionAsOf: 0 })).count(), 10);
  const snap = await floe.snapshot(p);
  assert.equal(snap.files.length, 1);
  assert.equal(snap.files[0]!.deletionVector?.cardinality, 2);
  assert.equal(snap.numRecordsFromStats, 8);
});

test('deletion vectors: with-short-dv drops rows 0-2 of its first file', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/data/with-short-dv');
  if (!p) return;
  const ids = (await (await floe.read.delta(p)).select('id').orderBy('id').toJSON()).map((r) => r.id);
  assert.deepEqual(ids, ['3', '4', '5', '6', '7', '8', '9']);
});

test('column mapping name mode: logical names, partition column with spaces, skipping on physical stats', async (t) => {
  const p = await corpusTableIn(t, 'delta-rs/table_with_column_mapping');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual(await df.columns(), [
    { name: 'Company Very Short', type: 'VARCHAR' },
    { name: 'Super Name', type: 'VARCHAR' },
  ]);
  assert.deepEqual(await df.orderBy('"Super Name"').toJSON(), [
    { 'Company Very Short': 'BMS', 'Super Name': 'Anthony Johnson' },
    { 'Company Very Short': 'BMS', 'Super Name': 'Mr. Daniel Ferguson MD' },
    { 'Company Very Short': 'BMS', 'Super Name': 'Nathan Bennett' },
    { 'Company Very Short': 'BMS', 'Super Name': 'Stephanie Mcgrath' },
    { 'Company Very Short': 'BME', 'Super Name': 'Timothy Lamb' },
  ]);
  const byPart = df.filter(`"Company Very Short" = 'BME'`);
  assert.deepEqual(await byPart.toJSON(), [{ 'Company Very Short': 'BME', 'Super Name': 'Timothy Lamb' }]);
  assert.deepEqual(byPart.lastScan, [{ filesTotal: 2, filesScanned: 1 }]);
  const byStats = df.filter(`"Super Name" >= 'T'`);
  assert.deepEqual(await byStats.toJSON(), [{ 'Company Very Short': 'BME', 'Super Name': 'Timothy Lamb' }]);
  assert.deepEqual(byStats.lastScan, [{ filesTotal: 2, filesScanned: 1 }]);
});

test('column mapping id mode: all types, nested structs, arrays and maps under logical names', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/golden/table-with-columnmapping-mode-id/delta');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual((await df.columns()).map((c) => c.name), [
    'ByteType', 'ShortType', 'IntegerType', 'LongType', 'FloatType', 'DoubleType', 'decimal', 'BooleanType', 'StringType', 'BinaryType',
    'DateType', 'TimestampType', 'nested_struct', 'array_of_prims', 'array_of_arrays', 'array_of_structs', 'map_of_prims', 'map_of_rows', 'map_of_arrays',
  ]);
  assert.equal(await df.count(), 6);
  const four = df.filter('IntegerType = 4');
  const [r] = await four.toJSON();
  assert.deepEqual(r, {
    ByteType: 4, ShortType: 4, IntegerType: 4, LongType: '4', FloatType: 4, DoubleType: 4, decimal: '4.00', BooleanType: true, StringType: '4',
    BinaryType: '4', DateType: '2021-11-18', TimestampType: '1970-01-01 00:00:00.004+00',
    nested_struct: { aa: '4', ac: { aca: 4 } },
    array_of_prims: [4, 5], array_of_arrays: [[4, 5], [6, 7]], array_of_structs: [{ ab: '4' }, null],
    map_of_prims: [{ key: 4, value: '5' }, { key: 6, value: '7' }],
    map_of_rows: [{ key: 5, value: { ab: '80' } }],
    map_of_arrays: [{ key: '4', value: [4, null, 5] }, { key: '5', value: [] }],
  });
  assert.deepEqual(four.lastScan, [{ filesTotal: 2, filesScanned: 1 }], 'stats keyed by physical names still skip');
  assert.equal(await df.filter('ByteType IS NULL').count(), 1, 'the all-null row');
  assert.deepEqual(canon(await df.filter('ByteType = 1').select('BinaryType', 'TimestampType').toArray()), canon([
    { BinaryType: Buffer.from('1'), TimestampType: new Date(1) },
  ]));
});

// ---------------------------------------------------------------------------------------------
// File skipping
// ---------------------------------------------------------------------------------------------

test('file skipping: a partition filter scans only matching partitions and returns the right rows', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  const df = await floe.read.delta(p);
  const a = df.filter(`letter = 'a'`).orderBy('number');
  assert.deepEqual(await a.toJSON(), [
    { letter: 'a', number: '1', a_float: 1.1 },
    { letter: 'a', number: '4', a_float: 4.4 },
  ]);
  assert.deepEqual(a.lastScan, [{ filesTotal: 6, filesScanned: 2 }]);
  const nul = df.filter('letter IS NULL');
  assert.deepEqual(await nul.toJSON(), [{ letter: null, number: '6', a_float: 6.6 }]);
  assert.equal(nul.lastScan[0]!.filesScanned, 1);
  assert.ok(nul.lastScan[0]!.filesScanned < nul.lastScan[0]!.filesTotal);
  const none = df.filter(`letter = 'zzz'`);
  assert.deepEqual(await none.toJSON(), []);
  assert.deepEqual(none.lastScan, [{ filesTotal: 6, filesScanned: 0 }]);
  const all = df.select('number');
  await all.toArray();
  assert.deepEqual(all.lastScan, [{ filesTotal: 6, filesScanned: 6 }]);
});

test('file skipping: a filter on a stats column skips files whose min/max exclude it', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const df = (await floe.read.delta(p)).filter('number > 3');
  assert.deepEqual(await df.toJSON(), [
    { letter: 'd', number: '4', a_float: 4.4 },
    { letter: 'e', number: '5', a_float: 5.5 },
  ]);
  assert.deepEqual(df.lastScan, [{ filesTotal: 2, filesScanned: 1 }]);
  const both = (await floe.read.delta(p)).filter(`letter >= 'c'`).filter('a_float < 4');
  assert.deepEqual(await both.toJSON(), [{ letter: 'c', number: '3', a_float: 3.3 }]);
  assert.deepEqual(both.lastScan, [{ filesTotal: 2, filesScanned: 1 }]);
});

test('file skipping: partition filters on multi_partitioned, timestamp_ntz partitions and decimals', async (t) => {
  const mp = await corpusTableIn(t, 'dat/multi_partitioned/delta');
  if (!mp) return;
  const esc = (await floe.read.delta(mp)).filter(`letter = '/%20%f'`);
  assert.deepEqual((await esc.toJSON()).map((r) => r.number), ['6']);
  assert.deepEqual(esc.lastScan, [{ filesTotal: 2, filesScanned: 1 }]);
  const nullDate = (await floe.read.delta(mp, { versionAsOf: 1 })).filter('date IS NULL').orderBy('number');
  assert.deepEqual((await nullDate.toJSON()).map((r) => r.number), ['4', '5']);
  assert.deepEqual(nullDate.lastScan, [{ filesTotal: 5, filesScanned: 2 }]);

  const mp2 = await corpusTableIn(t, 'dat/multi_partitioned_2/delta');
  if (!mp2) return;
  const dec = (await floe.read.delta(mp2)).filter('amount = 200').orderBy('int');
  assert.deepEqual((await dec.toJSON()).map((r) => r.int), ['1', '2']);
  assert.deepEqual(dec.lastScan, [{ filesTotal: 3, filesScanned: 2 }]);

  const ntz = await corpusTableIn(t, 'kernel-rs/data/data-reader-timestamp_ntz');
  if (!ntz) return;
  const ts = (await floe.read.delta(ntz)).filter(`tsNtzPartition = TIMESTAMP '2013-07-05 17:01:00.123456'`).orderBy('id');
  assert.deepEqual((await ts.toJSON()).map((r) => r.id), [3, 4, 5]);
  assert.deepEqual(ts.lastScan, [{ filesTotal: 4, filesScanned: 2 }]);
});

test('file skipping: without min/max stats nothing is skipped and results stay correct (dat/no_stats)', async (t) => {
  const p = await corpusTableIn(t, 'dat/no_stats/delta');
  if (!p) return;
  const df = (await floe.read.delta(p)).filter('int > 600').orderBy('int');
  assert.deepEqual(await df.toJSON(), [
    { letter: 'c', int: '620', date: '1983-10-01' },
    { letter: null, int: '653', date: '1995-12-01' },
    { letter: 'b', int: '753', date: '2012-05-01' },
  ]);
  assert.deepEqual(df.lastScan, [{ filesTotal: 1, filesScanned: 1 }]);
});

// ---------------------------------------------------------------------------------------------
// DataFrame operations, createDataFrame, plain files
// ---------------------------------------------------------------------------------------------

test('DataFrame: select expressions, orderBy, limit, count, columns, alias, where', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual(await df.select('letter', 'number * 2 AS twice').orderBy('twice DESC').limit(2).toArray(), [
    { letter: 'e', twice: 10n },
    { letter: 'd', twice: 8n },
  ]);
  assert.equal(await df.count(), 5);
  assert.equal(await df.where('number <= 2').count(), 2);
  assert.equal(await df.limit(0).count(), 0);
  assert.deepEqual(await df.select('letter').columns(), [{ name: 'letter', type: 'VARCHAR' }]);
  assert.deepEqual(await df.collect(), await df.toArray());
  const a = df.alias('t');
  assert.equal(a.aliasName, 't');
  assert.equal(await a.count(), 5);
  assert.match(await df.filter('number = 1').toSQL(), /number = 1/);
  assert.throws(() => df.select(), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_INVALID_ARGUMENT');
  assert.throws(() => df.limit(-1), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_INVALID_ARGUMENT');
  assert.throws(() => df.filter('  '), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_INVALID_ARGUMENT');
  await rejectsWith(df.filter('no_such_column = 1').toArray(), 'FLOE_SQL_ERROR', /no_such_column/);
});

test('DataFrame.show prints an ASCII table of the first n rows', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const df = (await floe.read.delta(p)).orderBy('number');
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string | Uint8Array): boolean => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    await df.show(2);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(chunks.join(''), [
    '+--------+--------+---------+',
    '| letter | number | a_float |',
    '+--------+--------+---------+',
    '| a      | 1      | 1.1     |',
    '| b      | 2      | 2.2     |',
    '+--------+--------+---------+',
    '',
  ].join('\n'));
});

test('createDataFrame infers types from JS rows and supports the DataFrame operations', async () => {
  const df = await floe.createDataFrame([
    { id: 1, name: 'a', score: 1.5, tags: ['x', 'y'], nested: { k: 1 } },
    { id: 2, name: 'b', score: null, tags: [], nested: { k: 2 } },
    { id: 3, name: 'c', score: 3.25, tags: ['z'], nested: null },
  ]);
  assert.deepEqual(await df.columns(), [
    { name: 'id', type: 'BIGINT' },
    { name: 'name', type: 'VARCHAR' },
    { name: 'score', type: 'DOUBLE' },
    { name: 'tags', type: 'VARCHAR[]' },
    { name: 'nested', type: 'STRUCT(k BIGINT)' },
  ]);
  assert.deepEqual(await df.orderBy('id').toArray(), [
    { id: 1n, name: 'a', score: 1.5, tags: ['x', 'y'], nested: { k: 1n } },
    { id: 2n, name: 'b', score: null, tags: [], nested: { k: 2n } },
    { id: 3n, name: 'c', score: 3.25, tags: ['z'], nested: null },
  ]);
  assert.deepEqual(await df.filter('id >= 2').select('id', 'name').orderBy('id DESC').toJSON(), [
    { id: '3', name: 'c' },
    { id: '2', name: 'b' },
  ]);
  assert.equal(await df.count(), 3);
  await rejectsWith(floe.createDataFrame([]), 'FLOE_INVALID_ARGUMENT');
});

test('createDataFrame keeps JS bigint values as BIGINT, exact beyond 2^53', async () => {
  const big = await floe.createDataFrame([{ v: 9007199254740993n }, { v: 5n }]);
  assert.deepEqual(await big.columns(), [{ name: 'v', type: 'BIGINT' }]);
  assert.deepEqual(await big.orderBy('v').toArray(), [{ v: 5n }, { v: 9007199254740993n }]);
});

test('read.csv / read.json / read.parquet of files written to a temp folder', async () => {
  const dir = await tempDir();
  try {
    const csv = path.join(dir, 'a.csv');
    await fs.writeFile(csv, 'id,name\n1,alpha\n2,"be,ta"\n3,\n');
    const c = floe.read.csv(csv);
    assert.deepEqual(await c.columns(), [{ name: 'id', type: 'BIGINT' }, { name: 'name', type: 'VARCHAR' }]);
    assert.deepEqual(await c.orderBy('id').toJSON(), [
      { id: '1', name: 'alpha' },
      { id: '2', name: 'be,ta' },
      { id: '3', name: null },
    ]);
    const psv = path.join(dir, 'b.txt');
    await fs.writeFile(psv, '1|x\n2|y\n');
    assert.deepEqual(await floe.read.csv(psv, { header: false, delimiter: '|' }).orderBy('column0').toJSON(), [
      { column0: '1', column1: 'x' },
      { column0: '2', column1: 'y' },
    ]);

    const json = path.join(dir, 'a.json');
    await fs.writeFile(json, '{"id":1,"v":{"x":[1,2]}}\n{"id":2,"v":{"x":[]}}\n');
    assert.deepEqual(await floe.read.json(json).orderBy('id').toArray(), [
      { id: 1n, v: { x: [1n, 2n] } },
      { id: 2n, v: { x: [] } },
    ]);

    const p1 = path.join(dir, 'a.parquet');
    const p2 = path.join(dir, 'b.parquet');
    await floe.engine.run(`COPY (SELECT range AS id, 'r' || range AS s FROM range(5)) TO '${p1}' (FORMAT parquet)`);
    await floe.engine.run(`COPY (SELECT range AS id, 'r' || range AS s FROM range(5, 7)) TO '${p2}' (FORMAT parquet)`);
    assert.deepEqual(await floe.read.parquet(p1).filter('id > 2').orderBy('id').toJSON(), [
      { id: '3', s: 'r3' },
      { id: '4', s: 'r4' },
    ]);
    assert.equal(await floe.read.parquet([p1, p2]).count(), 7);
    await assert.rejects(floe.read.parquet(path.join(dir, 'nope.parquet')).count(), FloeError);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

test('types: all_primitive_types maps every Delta primitive to its DuckDB type and value', async (t) => {
  const p = await corpusTableIn(t, 'dat/all_primitive_types/delta');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual(await df.columns(), [
    { name: 'utf8', type: 'VARCHAR' },
    { name: 'int64', type: 'BIGINT' },
    { name: 'int32', type: 'INTEGER' },
    { name: 'int16', type: 'SMALLINT' },
    { name: 'int8', type: 'TINYINT' },
    { name: 'float32', type: 'FLOAT' },
    { name: 'float64', type: 'DOUBLE' },
    { name: 'bool', type: 'BOOLEAN' },
    { name: 'binary', type: 'BLOB' },
    { name: 'decimal', type: 'DECIMAL(5,3)' },
    { name: 'date32', type: 'DATE' },
    { name: 'timestamp', type: 'TIMESTAMP WITH TIME ZONE' },
  ]);
  const js = await df.filter(`utf8 = '3'`).toArray();
  assert.deepEqual(canon(js), canon([{
    utf8: '3', int64: 3n, int32: 3, int16: 3, int8: 3, float32: 3, float64: 3, bool: false, binary: Buffer.from([0, 0, 0]),
    decimal: 13, date32: new Date('1970-01-04T00:00:00Z'), timestamp: new Date('1970-01-01T03:00:00Z'),
  }]));
  assert.ok(js[0]!.int64 === 3n, '64-bit integers are bigint');
  assert.ok(js[0]!.timestamp instanceof Date);
  assert.deepEqual(await df.filter(`utf8 = '4'`).toJSON(), [{
    utf8: '4', int64: '4', int32: 4, int16: 4, int8: 4, float32: 4, float64: 4, bool: true, binary: '\\x00\\x00\\x00\\x00',
    decimal: '14.000', date32: '1970-01-05', timestamp: '1970-01-01 04:00:00+00',
  }]);
  assert.deepEqual((await df.orderBy('utf8').select('"binary"').toArray()).map((r) => (r.binary as Uint8Array).length), [0, 1, 2, 3, 4]);
});

test('types: timestamp_ntz is a zone-less TIMESTAMP with microseconds, in data and partition columns', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/data/data-reader-timestamp_ntz');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual(await df.columns(), [
    { name: 'id', type: 'INTEGER' },
    { name: 'tsNtz', type: 'TIMESTAMP' },
    { name: 'tsNtzPartition', type: 'TIMESTAMP' },
  ]);
  const A = '2021-11-18 02:30:00.123456';
  const B = '2013-07-05 17:01:00.123456';
  assert.deepEqual(await df.orderBy('id').toJSON(), [
    { id: 0, tsNtz: A, tsNtzPartition: A },
    { id: 1, tsNtz: B, tsNtzPartition: A },
    { id: 2, tsNtz: null, tsNtzPartition: A },
    { id: 3, tsNtz: A, tsNtzPartition: B },
    { id: 4, tsNtz: B, tsNtzPartition: B },
    { id: 5, tsNtz: null, tsNtzPartition: B },
    { id: 6, tsNtz: A, tsNtzPartition: null },
    { id: 7, tsNtz: B, tsNtzPartition: null },
    { id: 8, tsNtz: null, tsNtzPartition: null },
  ]);
});

test('types: nested struct, array and map (dat/nested_types)', async (t) => {
  const p = await corpusTableIn(t, 'dat/nested_types/delta');
  if (!p) return;
  const df = await floe.read.delta(p);
  assert.deepEqual(await df.columns(), [
    { name: 'pk', type: 'INTEGER' },
    { name: 'struct', type: 'STRUCT(float64 DOUBLE, bool BOOLEAN)' },
    { name: 'array', type: 'SMALLINT[]' },
    { name: 'map', type: 'MAP(VARCHAR, INTEGER)' },
  ]);
  const rows = await df.orderBy('pk').toArray();
  assert.equal(rows.length, 5);
  assert.deepEqual(rows[0], { pk: 0, struct: { float64: 0, bool: true }, array: [0], map: [] });
  assert.deepEqual(rows[3], {
    pk: 3,
    struct: { float64: 3, bool: false },
    array: [0, 1, 2, 3],
    map: [{ key: '0', value: 0 }, { key: '1', value: 1 }, { key: '2', value: 2 }],
  });
  assert.deepEqual(await df.filter('pk = 2').select('"struct".bool AS b', '"array"[3] AS third', `"map"['1'] AS one`).toJSON(), [{ b: true, third: 2, one: 1 }]);
});

test('unsupported reader features are refused with the feature named', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/data/unshredded-variant');
  if (!p) return;
  await rejectsWith(floe.read.delta(p), 'DELTA_UNSUPPORTED_FEATURES_FOR_READ', /variantType-preview/);
  const stf = await corpusTableIn(t, 'delta-rs/simple_table_features');
  if (!stf) return;
  await rejectsWith(floe.read.delta(stf), 'DELTA_UNSUPPORTED_FEATURES_FOR_READ', /reader version 5/);
});
