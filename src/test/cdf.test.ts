/**
 * The change data feed reader (`floe.read.changes`): inclusive version and timestamp bounds, the
 * error codes of bad ranges, `allowOutOfRange`, `_commit_timestamp`, versions without the feed
 * (enabled later, disabled again), change files that are gone, and the conformance corpus' CDF tables
 * read over version and timestamp ranges.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { FloeError } from '../errors.js';
import { DeltaTable } from '../table/delta-table.js';
import { addColumns } from '../table/alter.js';
import type { ChangeFeedOptions } from '../core/cdf.js';
import { corpus } from './helpers.js';
import { locJoin, newRoot, readBytes, readOnlyTable, readText, removeKey, writeRawIfAbsent } from './store.js';

type Row = Record<string, unknown>;
const CDF = { 'delta.enableChangeDataFeed': 'true' };

function plain(rows: Row[]): Row[] {
  const big = (v: bigint): number | string => (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString());
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? big(v) : v instanceof Date ? v.toISOString() : v])));
}
const key = (r: Row): string => JSON.stringify(Object.keys(r).sort().map((k) => [k, r[k]]));
function sameRows(actual: Row[], expected: Row[], msg?: string): void {
  assert.deepEqual(plain(actual).map(key).sort(), plain(expected).map(key).sort(), msg);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const logFile = (v: number): string => `_delta_log/${String(v).padStart(20, '0')}.json`;

async function commitInfo(p: string, v: number): Promise<Row> {
  const first = (await readText(p, logFile(v))).split('\n')[0]!;
  return (JSON.parse(first) as { commitInfo: Row }).commitInfo;
}

async function changes(floe: Floe, p: string, o: ChangeFeedOptions): Promise<Row[]> {
  return plain(await (await floe.read.changes(p, o)).toArray());
}
const versionsOf = (rows: Row[]): number[] => [...new Set(rows.map((r) => r._commit_version as number))].sort((a, b) => a - b);

async function expectCode(p: Promise<unknown>, code: string, check?: (e: FloeError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    check?.(e);
    return true;
  });
}

/**
 * v0 create (ids 0..4), v1 append (5..7), v2 update id 1, v3 delete id 6, v4 merge (update 2, insert 9);
 * commits ≥ 25 ms apart so instants between them exist.
 */
async function history(floe: Floe, dir: string): Promise<{ p: string; ts: number[] }> {
  const p = locJoin(dir, 't');
  await floe.duckdbSql('SELECT range::BIGINT AS id, (range * 10)::INTEGER AS v FROM range(5)').write.delta(p, { properties: CDF });
  await sleep(25);
  await floe.duckdbSql('SELECT range::BIGINT AS id, (range * 10)::INTEGER AS v FROM range(5, 8)').write.delta(p, { mode: 'append' });
  await sleep(25);
  const t = await DeltaTable.forPath(floe, p);
  await t.update({ condition: 'id = 1', set: { v: '-1' } });
  await sleep(25);
  await t.delete('id = 6');
  await sleep(25);
  await t.alias('target').merge(floe.duckdbSql('SELECT * FROM (VALUES (2::BIGINT, -2), (9, 90)) AS s(id, v)').alias('source'), 'target.id = source.id')
    .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
  const ts: number[] = [];
  for (let v = 0; v <= 4; v++) ts.push(Number((await commitInfo(p, v)).timestamp));
  for (let v = 1; v <= 4; v++) assert.ok(ts[v]! > ts[v - 1]! + 5, 'commits are apart');
  return { p, ts };
}

const EXPECTED_BY_VERSION: Record<number, Row[]> = {
  0: [0, 1, 2, 3, 4].map((i) => ({ id: i, v: i * 10, _change_type: 'insert' })),
  1: [5, 6, 7].map((i) => ({ id: i, v: i * 10, _change_type: 'insert' })),
  2: [{ id: 1, v: 10, _change_type: 'update_preimage' }, { id: 1, v: -1, _change_type: 'update_postimage' }],
  3: [{ id: 6, v: 60, _change_type: 'delete' }],
  4: [{ id: 2, v: 20, _change_type: 'update_preimage' }, { id: 2, v: -2, _change_type: 'update_postimage' }, { id: 9, v: 90, _change_type: 'insert' }],
};
const expected = (from: number, to: number): Row[] => {
  const out: Row[] = [];
  for (let v = from; v <= to; v++) out.push(...EXPECTED_BY_VERSION[v]!.map((r) => ({ ...r, _commit_version: v })));
  return out;
};
const strip = (rows: Row[]): Row[] => rows.map(({ _commit_timestamp: _t, ...r }) => r);

test('version bounds are inclusive; the end is clamped to the latest version; columns and types', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const { p } = await history(floe, dir);
    sameRows(strip(await changes(floe, p, { startingVersion: 0 })), expected(0, 4));
    sameRows(strip(await changes(floe, p, { startingVersion: 1, endingVersion: 3 })), expected(1, 3));
    sameRows(strip(await changes(floe, p, { startingVersion: 2, endingVersion: 2 })), expected(2, 2));
    sameRows(strip(await changes(floe, p, { startingVersion: 4 })), expected(4, 4));
    sameRows(strip(await changes(floe, p, { startingVersion: 3, endingVersion: 100 })), expected(3, 4));
    const df = await floe.read.changes(p, { startingVersion: 0 });
    const cols = await df.columns();
    assert.deepEqual(cols.map((c) => c.name), ['id', 'v', '_change_type', '_commit_version', '_commit_timestamp']);
    assert.deepEqual(cols.slice(2).map((c) => c.type), ['VARCHAR', 'BIGINT', 'TIMESTAMP WITH TIME ZONE']);
  } finally {
    await floe.close();
  }
});

test('files\' columns taken from the log: additive schema changes (column mapping, nested field, partitions), RESTORE, removed files', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = locJoin(dir, 't');
    await floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS p, {'x': 1} AS st UNION ALL SELECT 2, 'b', {'x': 2}")
      .write.delta(p, { partitionBy: ['p'], properties: { ...CDF, 'delta.columnMapping.mode': 'name' } }); // v0
    await floe.duckdbSql("SELECT 3::BIGINT AS id, 'a' AS p, {'x': 3} AS st").write.delta(p, { mode: 'append' }); // v1
    await addColumns(floe, p, [{ path: ['name'], type: 'string' }, { path: ['st', 'y'], type: 'string' }]); // v2
    const t = await DeltaTable.forPath(floe, p);
    await t.update({ condition: 'id = 1', set: { name: "'one'" } }); // v3: change files with the new columns
    await floe.duckdbSql("SELECT 4::BIGINT AS id, 'b' AS p, {'x': 4, 'y': 'w'} AS st, 'four' AS name").write.delta(p, { mode: 'append' }); // v4
    await t.delete("p = 'b'"); // v5: whole files removed (written before, columns unknown from the log)
    await t.restoreToVersion(1); // v6: old files re-added
    const st = (x: number, y: string | null = null): Row => ({ x, y });
    const r = (id: number, pv: string, s: Row, name: string | null, type: string, v: number): Row => ({ id, p: pv, st: s, name, _change_type: type, _commit_version: v });
    const read = async (o: ChangeFeedOptions): Promise<Row[]> => (await changes(floe, p, o)).map(({ _commit_timestamp: _, ...rest }) => rest);
    const v1to4 = [
      r(3, 'a', st(3), null, 'insert', 1),
      r(1, 'a', st(1), null, 'update_preimage', 3), r(1, 'a', st(1), 'one', 'update_postimage', 3),
      r(4, 'b', st(4, 'w'), 'four', 'insert', 4),
    ];
    sameRows(await read({ startingVersion: 1, endingVersion: 4 }), v1to4);
    // every file's layout known from the log: read without union_by_name, no footers opened to plan
    assert.doesNotMatch(await (await floe.read.changes(p, { startingVersion: 1, endingVersion: 4 })).toSQL(), /union_by_name/);
    const v5 = [r(2, 'b', st(2), null, 'delete', 5), r(4, 'b', st(4, 'w'), 'four', 'delete', 5)];
    sameRows(await read({ startingVersion: 1, endingVersion: 5 }), [...v1to4, ...v5]);
    // RESTORE brings back version 1's files and schema (without name): read on its own, across it refused
    const g = (id: number, pv: string, type: string): Row => ({ id, p: pv, st: { x: id }, _change_type: type, _commit_version: 6 });
    sameRows(await read({ startingVersion: 6, endingVersion: 6 }), [g(1, 'a', 'insert'), g(2, 'b', 'insert'), g(1, 'a', 'delete')]);
    await assert.rejects(read({ startingVersion: 1, endingVersion: 6 }), (e: unknown) => e instanceof FloeError && e.code === 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE');
  } finally {
    await floe.close();
  }
});

test('_commit_timestamp is the commit\'s commitInfo.timestamp', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const { p, ts } = await history(floe, dir);
    const rows = await changes(floe, p, { startingVersion: 0 });
    assert.equal(rows.length, 14);
    for (const r of rows) assert.equal(r._commit_timestamp, new Date(ts[r._commit_version as number]!).toISOString(), `version ${String(r._commit_version)}`);
  } finally {
    await floe.close();
  }
});

test('timestamp bounds: exact commit instants are inclusive, instants between commits round inward', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const { p, ts } = await history(floe, dir);
    const iso = (ms: number): string => new Date(ms).toISOString();
    const sql = (ms: number): string => iso(ms).replace('T', ' ').replace('Z', ''); // 'YYYY-MM-DD HH:MM:SS.mmm', UTC
    // Exact instants, in every accepted form.
    for (const [s, e] of [[ts[1]!, ts[3]!], [new Date(ts[1]!), new Date(ts[3]!)], [iso(ts[1]!), iso(ts[3]!)], [sql(ts[1]!), sql(ts[3]!)]] as const) {
      assert.deepEqual(versionsOf(await changes(floe, p, { startingTimestamp: s, endingTimestamp: e })), [1, 2, 3], `${String(s)} .. ${String(e)}`);
    }
    // Between commits: start rounds up to the next commit, end down to the previous one.
    assert.deepEqual(versionsOf(await changes(floe, p, { startingTimestamp: ts[1]! + 1, endingTimestamp: ts[3]! - 1 })), [2]);
    assert.deepEqual(versionsOf(await changes(floe, p, { startingTimestamp: ts[0]! - 60_000 })), [0, 1, 2, 3, 4], 'a start before the first commit starts at version 0');
    assert.deepEqual(versionsOf(await changes(floe, p, { startingVersion: 0, endingTimestamp: ts[1]! + 1 })), [0, 1]);
    assert.deepEqual(versionsOf(await changes(floe, p, { startingTimestamp: ts[3]!, endingVersion: 3 })), [3]);
    sameRows(strip(await changes(floe, p, { startingTimestamp: ts[2]!, endingTimestamp: ts[2]! })), expected(2, 2));
    // Both bounds between the same two commits: empty, not an error (Spark).
    const empty = await floe.read.changes(p, { startingTimestamp: ts[1]! + 1, endingTimestamp: ts[2]! - 1 });
    assert.equal(await empty.count(), 0);
    assert.deepEqual((await empty.columns()).map((c) => c.name), ['id', 'v', '_change_type', '_commit_version', '_commit_timestamp']);
    // Versions as numeric strings (Spark's options are strings) read as numbers; other strings are refused clearly.
    assert.deepEqual(versionsOf(await changes(floe, p, { startingVersion: '1' as unknown as number, endingVersion: '2' as unknown as number })), [1, 2]);
    await assert.rejects(changes(floe, p, { startingVersion: 'one' as unknown as number }), /startingVersion must be a non-negative integer, got 'one'/);
    // A start timestamp after the end timestamp is an error, as in Spark (not an empty feed).
    await expectCode(floe.read.changes(p, { startingTimestamp: ts[3]!, endingTimestamp: ts[1]! }), 'DELTA_INVALID_CDC_RANGE');
    // A start after the last commit: an error, or empty with allowOutOfRange.
    await expectCode(floe.read.changes(p, { startingTimestamp: ts[4]! + 1 }), 'DELTA_TIMESTAMP_GREATER_THAN_COMMIT');
    assert.equal(await (await floe.read.changes(p, { startingTimestamp: ts[4]! + 1, allowOutOfRange: true })).count(), 0);
    assert.deepEqual(versionsOf(await changes(floe, p, { startingTimestamp: ts[4]! })), [4]);
    // An end before the first commit.
    await expectCode(floe.read.changes(p, { startingVersion: 0, endingTimestamp: ts[0]! - 60_000 }), 'DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION');
    await expectCode(floe.read.changes(p, { startingTimestamp: 'not a time' }), 'FLOE_INVALID_ARGUMENT');
  } finally {
    await floe.close();
  }
});

test('bad ranges and options fail with their codes', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const { p, ts } = await history(floe, dir);
    await expectCode(floe.read.changes(p, {}), 'DELTA_NO_START_FOR_CDC_READ');
    await expectCode(floe.read.changes(p, { endingVersion: 2 }), 'DELTA_NO_START_FOR_CDC_READ');
    await expectCode(floe.read.changes(p, { startingVersion: 0, startingTimestamp: ts[0]! }), 'DELTA_MULTIPLE_CDC_BOUNDARY');
    await expectCode(floe.read.changes(p, { startingVersion: 0, endingVersion: 2, endingTimestamp: ts[2]! }), 'DELTA_MULTIPLE_CDC_BOUNDARY');
    await expectCode(floe.read.changes(p, { startingVersion: 5 }), 'DELTA_CDC_START_VERSION_AFTER_LATEST', (e) => {
      assert.equal(e.details.start, 5);
      assert.equal(e.details.latest, 4);
    });
    const out = await floe.read.changes(p, { startingVersion: 5, allowOutOfRange: true });
    assert.equal(await out.count(), 0);
    assert.deepEqual((await out.columns()).map((c) => c.name), ['id', 'v', '_change_type', '_commit_version', '_commit_timestamp']);
    await expectCode(floe.read.changes(p, { startingVersion: 3, endingVersion: 1 }), 'DELTA_INVALID_CDC_RANGE', (e) => {
      assert.equal(e.details.start, 3);
      assert.equal(e.details.end, 1);
    });
    await expectCode(floe.read.changes(p, { startingVersion: -1 }), 'FLOE_INVALID_ARGUMENT');
    await expectCode(floe.read.changes(p, { startingVersion: 1.5 }), 'FLOE_INVALID_ARGUMENT');
    await expectCode(floe.read.changes(locJoin(dir, 'nope'), { startingVersion: 0 }), 'DELTA_TABLE_NOT_FOUND');
  } finally {
    await floe.close();
  }
});

/**
 * Writes commit `v` by hand: a copy of data file `f` under the name `to` added (and `from` removed,
 * when given), with `commitInfo`: the commits Spark writes that floe itself does not.
 */
async function copyCommit(p: string, v: number, f: { path: string; size: number }, to: string, commitInfo: Record<string, unknown>, from?: string): Promise<void> {
  const now = typeof commitInfo.timestamp === 'number' ? commitInfo.timestamp : Date.now();
  await writeRawIfAbsent(p, to, await readBytes(p, from ?? f.path));
  const lines = [
    { commitInfo: { readVersion: v - 1, isolationLevel: 'Serializable', operationParameters: {}, ...commitInfo } },
    ...(from ? [{ remove: { path: from, deletionTimestamp: now, dataChange: true, extendedFileMetadata: true, partitionValues: {}, size: f.size } }] : []),
    { add: { ...f, path: to, modificationTime: now, dataChange: true } },
  ];
  await writeRawIfAbsent(p, logFile(v), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}

/** Writes a metadata-only commit changing table properties (what ALTER TABLE … SET TBLPROPERTIES commits). */
async function setProperties(floe: Floe, p: string, props: Record<string, string>): Promise<number> {
  const s = await floe.snapshot(p);
  const v = s.version + 1;
  const lines = [
    { commitInfo: { timestamp: Date.now(), operation: 'SET TBLPROPERTIES', operationParameters: { properties: JSON.stringify(props) }, readVersion: s.version, isolationLevel: 'Serializable', isBlindAppend: true } },
    { protocol: { minReaderVersion: Math.max(1, s.protocol.minReaderVersion), minWriterVersion: Math.max(4, s.protocol.minWriterVersion) } },
    { metaData: { ...s.metadata, configuration: { ...s.configuration, ...props } } },
  ];
  await writeRawIfAbsent(p, logFile(v), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return v;
}

test('versions without the feed: DELTA_MISSING_CHANGE_DATA names the version (enabled at v2, disabled at v5)', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = locJoin(dir, 't');
    await floe.duckdbSql('SELECT range::BIGINT AS id, range::INTEGER AS v FROM range(4)').write.delta(p); // v0, no feed
    await floe.duckdbSql('SELECT 4::BIGINT AS id, 4::INTEGER AS v').write.delta(p, { mode: 'append' }); // v1
    assert.equal(await setProperties(floe, p, CDF), 2); // v2: feed on
    const t = await DeltaTable.forPath(floe, p);
    const u = await t.update({ condition: 'id = 1', set: { v: '100' } }); // v3
    assert.equal(u.version, 3);
    assert.ok(u.metrics.numAddedChangeFiles! >= 1, 'writers honour a feed enabled after creation');
    await t.delete('id = 2'); // v4
    assert.equal(await setProperties(floe, p, { 'delta.enableChangeDataFeed': 'false' }), 5); // v5: feed off
    await floe.duckdbSql('SELECT 9::BIGINT AS id, 9::INTEGER AS v').write.delta(p, { mode: 'append' }); // v6

    for (const [start, end, bad] of [[0, 4, 0], [1, 4, 1], [0, undefined, 0], [2, 5, 5], [3, 6, 5], [6, 6, 6]] as const) {
      await expectCode(floe.read.changes(p, { startingVersion: start, ...(end === undefined ? {} : { endingVersion: end }) }), 'DELTA_MISSING_CHANGE_DATA', (e) => {
        assert.equal(e.details.version, bad, `[${start}, ${end ?? 'latest'}] names version ${bad}`);
        assert.match(e.message, new RegExp(`version ${bad}\\b`));
      });
    }
    const rows = strip(await changes(floe, p, { startingVersion: 2, endingVersion: 4 }));
    sameRows(rows, [
      { id: 1, v: 1, _change_type: 'update_preimage', _commit_version: 3 },
      { id: 1, v: 100, _change_type: 'update_postimage', _commit_version: 3 },
      { id: 2, v: 2, _change_type: 'delete', _commit_version: 4 },
    ], 'the metadata-only version contributes no rows');
    // The feed can also be turned on by an overwrite that replaces the schema and sets properties.
    const q = locJoin(dir, 'q');
    await floe.duckdbSql('SELECT 1::BIGINT AS id').write.delta(q);
    await floe.duckdbSql('SELECT range::BIGINT AS id FROM range(2)').write.delta(q, { mode: 'overwrite', overwriteSchema: true, properties: CDF });
    sameRows(strip(await changes(floe, q, { startingVersion: 1 })), [
      { id: 1, _change_type: 'delete', _commit_version: 1 }, { id: 0, _change_type: 'insert', _commit_version: 1 }, { id: 1, _change_type: 'insert', _commit_version: 1 },
    ]);
    await expectCode(floe.read.changes(q, { startingVersion: 0 }), 'DELTA_MISSING_CHANGE_DATA', (e) => assert.equal(e.details.version, 0));
  } finally {
    await floe.close();
  }
});

test('a change file or data file that is gone: DELTA_CHANGE_DATA_FILE_NOT_FOUND names the version', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const { p } = await history(floe, dir);
    const cdcOf = async (v: number): Promise<string[]> => (await readText(p, logFile(v))).split('\n').filter(Boolean)
      .map((l) => JSON.parse(l) as { cdc?: { path: string } }).filter((a) => a.cdc).map((a) => decodeURIComponent(a.cdc!.path));
    const files = await cdcOf(2);
    assert.ok(files.length >= 1 && files.every((f) => f.startsWith('_change_data/')));
    for (const f of files) await removeKey(p, f);
    for (const o of [{ startingVersion: 0 }, { startingVersion: 2, endingVersion: 2 }, { startingVersion: 1, endingVersion: 3 }]) {
      await expectCode(floe.read.changes(p, o), 'DELTA_CHANGE_DATA_FILE_NOT_FOUND', (e) => {
        assert.equal(e.details.version, 2);
        assert.match(e.message, /version 2\b/);
      });
    }
    // Ranges without that version still read.
    sameRows(strip(await changes(floe, p, { startingVersion: 3 })), expected(3, 4));
    sameRows(strip(await changes(floe, p, { startingVersion: 0, endingVersion: 1 })), expected(0, 1));
    // A data file of an insert-only version.
    const add = (await readText(p, logFile(1))).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { add?: { path: string } }).find((a) => a.add)!.add!;
    await removeKey(p, decodeURIComponent(add.path));
    await expectCode(floe.read.changes(p, { startingVersion: 0, endingVersion: 1 }), 'DELTA_CHANGE_DATA_FILE_NOT_FOUND', (e) => assert.equal(e.details.version, 1));
  } finally {
    await floe.close();
  }
});

// ---------------------------------------------------------------------------------------------
// the conformance corpus
// ---------------------------------------------------------------------------------------------

interface Expected {
  test_fn: string;
  expected: { columns: string[]; rows: string[][] }[];
}

/** A corpus table where the test store reads it (uploaded once on a remote store), or null when absent. */
async function corpusTable(t: TestContext, rel: string): Promise<string | null> {
  const dir = corpus(rel);
  if (!dir) {
    t.skip('conformance corpus absent');
    return null;
  }
  return readOnlyTable(path.join(dir, rel));
}

function expectedRows(fn: string): Row[] {
  const all = JSON.parse(readFileSync(path.join(corpus('CDF_EXPECTED.json')!, 'CDF_EXPECTED.json'), 'utf8')) as Expected[];
  const e = all.find((x) => x.test_fn === fn)!.expected[0]!;
  return e.rows.map((r) => Object.fromEntries(e.columns.map((c, i) => [c, r[i]])));
}

/** Rows as strings in the expected rows' columns (timestamps as ISO without the zone). */
async function asStrings(floe: Floe, p: string, o: ChangeFeedOptions, cols: string[]): Promise<Row[]> {
  return (await changes(floe, p, o)).map((r) => Object.fromEntries(cols.map((c) => {
    const v = r[c];
    // plain() made Dates ISO strings: timestamps lose the zone, dates keep the day only.
    const s = v === null || v === undefined ? '' : typeof v === 'string' && c === '_commit_timestamp' ? v.replace(/Z$/, '') : typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T00:00:00\.000Z$/.test(v) ? v.slice(0, 10) : String(v);
    return [c, s];
  })));
}

const inVersions = (rows: Row[], from: number, to: number): Row[] => rows.filter((r) => Number(r._commit_version) >= from && Number(r._commit_version) <= to);

test('corpus delta-rs/cdf-table over version ranges and timestamps', async (t) => {
  const p = await corpusTable(t, 'delta-rs/cdf-table');
  if (!p) return;
  const floe = await Floe.create({ threads: 2 });
  try {
    const all = expectedRows('basic_cdf');
    const cols = ['id', 'name', 'birthday', '_change_type', '_commit_version'];
    for (const [from, to] of [[0, 0], [1, 2], [2, 3], [3, 3], [0, 3]] as const) {
      sameRows(await asStrings(floe, p, { startingVersion: from, endingVersion: to }, cols), inVersions(all, from, to), `[${from}, ${to}]`);
    }
    // Version 3 deleted a whole file: delete rows inferred from its remove action.
    assert.deepEqual(await asStrings(floe, p, { startingVersion: 3 }, cols), [{ id: '7', name: 'Dennis', birthday: '2023-12-29', _change_type: 'delete', _commit_version: '3' }]);
    // delta-rs load_cdf.rs test_load_local_datetime: endingTimestamp at version 1's exact commit instant.
    const dt = expectedRows('test_load_local_datetime');
    const colsTs = ['id', 'name', 'birthday', '_change_type', '_commit_version', '_commit_timestamp'];
    sameRows(await asStrings(floe, p, { startingVersion: 0, endingTimestamp: '2023-12-22T17:10:21.675Z' }, colsTs), dt);
    sameRows(await asStrings(floe, p, { startingVersion: 0, endingTimestamp: '2023-12-22 17:10:21.675' }, colsTs), dt);
    sameRows(await asStrings(floe, p, { startingVersion: 0 }, colsTs), expectedRows('test_load_local'));
    await expectCode(floe.read.changes(p, { startingVersion: 4 }), 'DELTA_CDC_START_VERSION_AFTER_LATEST');
  } finally {
    await floe.close();
  }
});

test('corpus delta-rs/checkpoint-cdf-table: commits before the checkpoint are gone', async (t) => {
  const p = await corpusTable(t, 'delta-rs/checkpoint-cdf-table');
  if (!p) return;
  const floe = await Floe.create({ threads: 2 });
  try {
    const cols = ['id', 'name', 'birthday', '_change_type', '_commit_version', '_commit_timestamp'];
    // delta-rs test_load_vacuumed_table: a start one hour before version 3's commit resolves to 3.
    const exp = expectedRows('test_load_vacuumed_table');
    sameRows(await asStrings(floe, p, { startingTimestamp: '2024-01-06T15:44:59.570Z' }, cols), exp);
    sameRows(await asStrings(floe, p, { startingVersion: 4, endingVersion: 4 }, cols), inVersions(exp, 4, 4));
    await expectCode(floe.read.changes(p, { startingVersion: 0 }), 'DELTA_MISSING_CHANGE_DATA', (e) => assert.equal(e.details.version, 0));
    await expectCode(floe.read.changes(p, { startingVersion: 2, endingVersion: 4 }), 'DELTA_MISSING_CHANGE_DATA', (e) => assert.equal(e.details.version, 2));
  } finally {
    await floe.close();
  }
});

test('corpus cdf-table-with-cdc-and-dvs and cdf-table-non-partitioned over version ranges', async (t) => {
  const p = await corpusTable(t, 'delta-rs/cdf-table-with-cdc-and-dvs');
  const q = await corpusTable(t, 'delta-rs/cdf-table-non-partitioned');
  if (!p || !q) return;
  const floe = await Floe.create({ threads: 2 });
  try {
    const all = expectedRows('cdf_with_cdc_and_dvs');
    const cols = ['id', 'comment', '_change_type', '_commit_version'];
    for (const [from, to] of [[0, 3], [4, 8], [9, 12], [13, 17], [11, 11], [18, 25], [24, 25]] as const) {
      sameRows(await asStrings(floe, p, { startingVersion: from, endingVersion: to }, cols), inVersions(all, from, to), `[${from}, ${to}]`);
    }
    const np = expectedRows('cdf_non_partitioned');
    const npCols = Object.keys(np[0]!);
    for (const [from, to] of [[0, 1], [2, 4], [4, 4]] as const) {
      sameRows(await asStrings(floe, q, { startingVersion: from, endingVersion: to }, npCols), inVersions(np, from, to), `non-partitioned [${from}, ${to}]`);
    }
  } finally {
    await floe.close();
  }
});

test('the feed is not read across a schema change it cannot read through: a replaced schema (no column mapping), a dropped column after the start', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = locJoin(dir, 'x');
    await floe.duckdbSql("SELECT 1::BIGINT AS id, 1.75::DOUBLE AS v, 'x' AS w").write.delta(p, { properties: CDF }); // v0
    await floe.duckdbSql('SELECT 3::BIGINT AS id, 33 AS v').write.delta(p, { mode: 'overwrite', overwriteSchema: true }); // v1: v DOUBLE -> INTEGER, w gone
    await assert.rejects(changes(floe, p, { startingVersion: 0 }), (e: unknown) => e instanceof FloeError && e.code === 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE'
      && /across version 1: column 'v' was changed from double to integer/.test(e.message) && /up to 0 and from 1 on/.test(e.message));
    // widening and added columns read through (old rows read NULL for a new column)
    const q = locJoin(dir, 'y');
    await floe.duckdbSql('SELECT 1::BIGINT AS id, 5::INTEGER AS n').write.delta(q, { properties: CDF });
    await floe.duckdbSql("SELECT 2::BIGINT AS id, 6::BIGINT AS n, 'z' AS extra").write.delta(q, { mode: 'overwrite', overwriteSchema: true });
    assert.deepEqual((await changes(floe, q, { startingVersion: 0 })).map((r) => [r.id, r.n, r.extra ?? null, r._change_type]).sort(),
      [[1, 5, null, 'delete'], [1, 5, null, 'insert'], [2, 6, 'z', 'insert']].sort());
    // column mapping: a column dropped after the start version is refused even when the start is after its last write
    const m = locJoin(dir, 'm');
    await floe.duckdbSql("SELECT 1::BIGINT AS id, 'q' AS w").write.delta(m, { properties: { ...CDF, 'delta.columnMapping.mode': 'name' } }); // v0
    await floe.duckdbSql("SELECT 2::BIGINT AS id, 'r' AS w").write.delta(m, { mode: 'append' }); // v1
    const { dropColumns } = await import('../table/alter.js');
    await dropColumns(floe, m, [['w']]); // v2
    await assert.rejects(changes(floe, m, { startingVersion: 1 }), (e: unknown) => e instanceof FloeError && /across version 2: column 'w' was dropped/.test(e.message));
    assert.deepEqual(await changes(floe, m, { startingVersion: 2 }), []);
  } finally {
    await floe.close();
  }
});

test('a MERGE commit whose metrics say no row changed has no changes, though it re-added a file (Spark\'s no-op MERGE rule)', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = locJoin(dir, 'noop');
    await floe.duckdbSql('SELECT range::BIGINT AS id FROM range(3)').write.delta(p, { properties: CDF }); // v0
    const s = await floe.snapshot(p);
    const f = s.files[0]!;
    // v1 and v2: the file rewritten unchanged under a new name (as a Spark MERGE rewriting a file it changed nothing in)
    const commit = (v: number, from: string, to: string, metrics: Record<string, string>): Promise<void> =>
      copyCommit(p, v, f, to, { timestamp: Date.now(), operation: 'MERGE', isBlindAppend: false, operationMetrics: metrics }, from);
    await commit(1, f.path, 'part-noop-1.parquet', { numTargetRowsInserted: '0', numTargetRowsUpdated: '0', numTargetRowsDeleted: '0', numTargetRowsCopied: '3' });
    assert.deepEqual(await changes(floe, p, { startingVersion: 1 }), []);
    // the same actions with a row counted as updated are read as the files' rows
    await commit(2, 'part-noop-1.parquet', 'part-noop-2.parquet', { numTargetRowsInserted: '0', numTargetRowsUpdated: '1', numTargetRowsDeleted: '0' });
    assert.deepEqual((await changes(floe, p, { startingVersion: 1 })).map((r) => r._change_type).sort(), ['delete', 'delete', 'delete', 'insert', 'insert', 'insert']);
  } finally {
    await floe.close();
  }
});

test('commit timestamps out of order (clock skew between writers) are made increasing, as Spark does: a timestamp range keeps every version it resolves to', async () => {
  const dir = await newRoot();
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = locJoin(dir, 'skew');
    await floe.duckdbSql('SELECT 1::BIGINT AS id').write.delta(p, { properties: CDF }); // v0
    const f = (await floe.snapshot(p)).files[0]!;
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    // v1 at +20 s, v2 at +10 s (behind v1), v3 at +30 s: each adds a copy of the first file
    for (const [v, at] of [[1, 20_000], [2, 10_000], [3, 30_000]] as const) {
      await copyCommit(p, v, f, `part-skew-${v}.parquet`, { timestamp: t0 + at, operation: 'WRITE', operationParameters: { mode: 'Append' }, isBlindAppend: true });
    }
    const rows = await changes(floe, p, { startingTimestamp: new Date(t0 + 15_000).toISOString() });
    assert.deepEqual(versionsOf(rows), [1, 2, 3]);
    const ts = new Map(rows.map((r) => [Number(r._commit_version), new Date(String(r._commit_timestamp).replace(' ', 'T') + (/Z|[+-]\d\d(:?\d\d)?$/.test(String(r._commit_timestamp)) ? '' : 'Z')).getTime()]));
    assert.equal(ts.get(2), t0 + 20_001, 'v2 counts as 1 ms after v1');
    assert.deepEqual(versionsOf(await changes(floe, p, { startingTimestamp: new Date(t0 + 20_001).toISOString(), endingTimestamp: new Date(t0 + 20_001).toISOString() })), [2]);
  } finally {
    await floe.close();
  }
});
