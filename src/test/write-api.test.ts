/**
 * The write path through the public API: `DeltaTable.create` (options and builder forms),
 * `df.write.delta` save modes, partitioned writes with awkward values, schema enforcement and
 * evolution, NOT NULL and CHECK constraints, replaceWhere, idempotent writes, session table defaults,
 * checkpoints, stats and file skipping, and history. Every table written is validated with the
 * independent protocol checker (protocol-checker.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { FloeError } from '../errors.js';
import { copyLocation, exists, listNames, localCopy, locJoin, newLocation, newRoot, readJson, readText, removeKey } from './store.js';
import { assertValidTable } from './protocol-checker.js';

let floe: Floe;
before(async () => {
  floe = await Floe.create();
});
after(async () => {
  await floe.close();
});

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<FloeError> {
  let err: FloeError | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    err = e;
    return true;
  });
  return err!;
}

/** A fresh table location (not yet existing) under a new temp folder. */
async function newTable(name = 't'): Promise<string> {
  return newLocation(name, 'floe-write-');
}

async function rows(p: string, order = 'id'): Promise<Record<string, unknown>[]> {
  return (await floe.read.delta(p)).orderBy(order).toJSON();
}

async function version(p: string): Promise<number> {
  return (await floe.snapshot(p)).version;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The actions of one commit file. */
async function commitActions(p: string, v: number): Promise<Json[]> {
  const text = await readText(p, `_delta_log/${String(v).padStart(20, '0')}.json`);
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Json);
}

async function allAdds(p: string): Promise<{ version: number; add: Json }[]> {
  const out: { version: number; add: Json }[] = [];
  for (const f of await listNames(p, '_delta_log')) {
    const m = /^(\d{20})\.json$/.exec(f);
    if (!m) continue;
    for (const a of await commitActions(p, Number(m[1]))) if (a.add) out.push({ version: Number(m[1]), add: a.add });
  }
  return out;
}

const ids = (rs: Record<string, unknown>[]): number[] => rs.map((r) => Number(r.id));

// ---------------------------------------------------------------------------------------------
// Creating tables
// ---------------------------------------------------------------------------------------------

test('DeltaTable.create with options: schema, partitioning, properties and comment land in version 0', async () => {
  const p = await newTable();
  const t = await DeltaTable.create(floe, {
    path: p,
    schema: [
      { name: 'id', type: 'long', nullable: false },
      { name: 'region', type: 'string' },
      { name: 'amount', type: 'decimal(10,2)', comment: 'in EUR' },
      { name: 'ts', type: 'timestamp' },
    ],
    partitionBy: ['region'],
    properties: { 'delta.checkpointInterval': '20', 'owner.team': 'data' },
    comment: 'orders',
  });
  const d = await t.detail();
  assert.equal(d.version, 0);
  assert.deepEqual(d.partitionColumns, ['region']);
  assert.equal(d.description, 'orders');
  assert.deepEqual(d.properties, { 'delta.checkpointInterval': '20', 'owner.team': 'data' });
  assert.equal(d.numFiles, 0);
  const snap = await floe.snapshot(p);
  assert.deepEqual(snap.schema.fields.map((f) => [f.name, f.type, f.nullable]), [
    ['id', 'long', false], ['region', 'string', true], ['amount', 'decimal(10,2)', true], ['ts', 'timestamp', true],
  ]);
  assert.equal(snap.schema.fields[2]!.metadata.comment, 'in EUR');
  assert.equal(await (await floe.read.delta(p)).count(), 0);
  const v0 = await commitActions(p, 0);
  assert.ok(v0.some((a) => a.protocol) && v0.some((a) => a.metaData) && v0.some((a) => a.commitInfo));
  assert.ok(!v0.some((a) => a.add), 'an empty table has no add actions');

  await rejectsWith(DeltaTable.create(floe, { path: p, schema: [{ name: 'x', type: 'long' }] }), 'DELTA_TABLE_ALREADY_EXISTS');
  await rejectsWith(DeltaTable.create(floe, { path: await newTable(), schema: [{ name: 'x', type: 'varchar2' }] }), 'DELTA_UNSUPPORTED_DATA_TYPE');
  await rejectsWith(DeltaTable.create(floe, { path: await newTable(), schema: [{ name: 'x', type: 'long' }], partitionBy: ['nope'] }), 'DELTA_PARTITION_COLUMN_NOT_FOUND');

  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'eu' AS region, 12.5::DECIMAL(10,2) AS amount, TIMESTAMPTZ '2024-05-01 10:00:00+00' AS ts").write.delta(p, { mode: 'append' });
  assert.deepEqual(await rows(p), [{ id: '1', region: 'eu', amount: '12.50', ts: '2024-05-01 10:00:00+00' }]);
  await assertValidTable(p);
});

test('the builder form: create, createIfNotExists (no new version), createOrReplace (new version, no files)', async () => {
  const p = await newTable();
  const t = await DeltaTable.create(floe).location(p).addColumn('id', 'long', { nullable: false }).addColumn('p', 'string')
    .partitionedBy('p').property('delta.checkpointInterval', '5').comment('built').execute();
  assert.ok(t instanceof DeltaTable);
  let d = await t.detail();
  assert.equal(d.version, 0);
  assert.deepEqual(d.partitionColumns, ['p']);
  assert.deepEqual(d.properties, { 'delta.checkpointInterval': '5' });
  assert.equal(d.description, 'built');
  assert.equal((await floe.snapshot(p)).schema.fields[0]!.nullable, false);

  await rejectsWith(DeltaTable.create(floe).location(p).addColumn('id', 'long').execute(), 'DELTA_TABLE_ALREADY_EXISTS');
  await DeltaTable.createIfNotExists(floe).location(p).addColumn('other', 'string').execute();
  assert.equal(await version(p), 0, 'createIfNotExists on an existing table commits nothing');
  assert.deepEqual((await floe.snapshot(p)).schema.fields.map((f) => f.name), ['id', 'p']);

  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'b')) t(id, p)").write.delta(p, { mode: 'append' });
  assert.equal(await version(p), 1);

  await DeltaTable.createOrReplace(floe).location(p).addColumn('k', 'string').addColumn('v', 'double').execute();
  d = await t.detail();
  assert.equal(d.version, 2);
  assert.deepEqual(d.partitionColumns, []);
  assert.equal(d.numFiles, 0);
  assert.deepEqual((await floe.snapshot(p)).schema.fields.map((f) => [f.name, f.type]), [['k', 'string'], ['v', 'double']]);
  assert.equal(await (await floe.read.delta(p)).count(), 0);
  assert.equal(await (await floe.read.delta(p, { versionAsOf: 1 })).count(), 2, 'the replaced version stays readable');

  const fresh = await newTable();
  await DeltaTable.createIfNotExists(floe).location(fresh).addColumn('a', 'integer').execute();
  assert.equal(await version(fresh), 0);
  await rejectsWith(DeltaTable.replace(floe).location(await newTable()).addColumn('a', 'long').execute(), 'DELTA_TABLE_NOT_FOUND');
  await rejectsWith(DeltaTable.create(floe).addColumn('a', 'long').execute(), 'FLOE_INVALID_ARGUMENT', /location/);
  await assertValidTable(p);
  await assertValidTable(fresh);
});

// ---------------------------------------------------------------------------------------------
// Save modes
// ---------------------------------------------------------------------------------------------

test('save modes: error (default) creates then refuses, ignore skips, append adds, overwrite replaces', async () => {
  const p = await newTable();
  const first = floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'b')) t(id, name)");
  const r0 = await first.write.delta(p);
  assert.equal(r0.version, 0);
  assert.equal(r0.skipped, false);
  assert.equal(r0.numOutputRows, 2);
  assert.ok(r0.numFiles >= 1);

  await rejectsWith(first.write.delta(p), 'DELTA_PATH_EXISTS');
  await rejectsWith(first.write.delta(p, { mode: 'error' }), 'DELTA_PATH_EXISTS');
  await rejectsWith(first.write.delta(p, { mode: 'errorifexists' }), 'DELTA_PATH_EXISTS');

  const ri = await floe.duckdbSql("SELECT 99::BIGINT AS id, 'z' AS name").write.delta(p, { mode: 'ignore' });
  assert.equal(ri.skipped, true);
  assert.equal(ri.version, null);
  assert.equal(await version(p), 0);

  const ra = await floe.duckdbSql("SELECT 3::BIGINT AS id, 'c' AS name").write.delta(p, { mode: 'append' });
  assert.equal(ra.version, 1);
  assert.deepEqual(await rows(p), [{ id: '1', name: 'a' }, { id: '2', name: 'b' }, { id: '3', name: 'c' }]);

  const ro = await floe.duckdbSql("SELECT 10::BIGINT AS id, 'x' AS name").write.delta(p, { mode: 'overwrite' });
  assert.equal(ro.version, 2);
  assert.ok(ro.numRemovedFiles >= 2, `the overwrite removes the files of both earlier writes (${ro.numRemovedFiles})`);
  assert.deepEqual(await rows(p), [{ id: '10', name: 'x' }]);
  assert.equal(await (await floe.read.delta(p, { versionAsOf: 1 })).count(), 3, 'time travel still sees the overwritten rows');
  const v2 = await commitActions(p, 2);
  assert.ok(v2.filter((a) => a.remove).every((a) => a.remove.dataChange === true && typeof a.remove.deletionTimestamp === 'number'));

  // ignore and append on a path without a table create it.
  const q = await newTable();
  assert.equal((await first.write.delta(q, { mode: 'ignore' })).version, 0);
  assert.equal(await (await floe.read.delta(q)).count(), 2);
  const q2 = await newTable();
  assert.equal((await first.write.delta(q2, { mode: 'append' })).version, 0);
  await rejectsWith(first.write.delta(await newTable(), { mode: 'upsert' as 'append' }), 'FLOE_INVALID_ARGUMENT');
  for (const x of [p, q, q2]) await assertValidTable(x);
});

// ---------------------------------------------------------------------------------------------
// Partitioned writes
// ---------------------------------------------------------------------------------------------

test('partitioned writes: null, spaces, =, /, %, quotes, unicode, dates, timestamps, booleans, decimals, ints read back exactly', async () => {
  const p = await newTable();
  const df = floe.duckdbSql(`SELECT id, s, d, ts, b, CAST(dec AS DECIMAL(10,2)) AS dec, i FROM (VALUES
    (1::BIGINT, 'a b', DATE '2024-01-02', TIMESTAMPTZ '2024-01-02 03:04:05.123456+00', true, 1.25::DECIMAL(10,2), 7::INTEGER),
    (2, 'x=y/z%', NULL, NULL, NULL, NULL, NULL),
    (3, NULL, DATE '1999-12-31', TIMESTAMPTZ '1970-01-01 00:00:00+00', false, -3.5, -1),
    (4, '日本😈', DATE '2024-01-03', TIMESTAMPTZ '2024-01-02 03:04:05+00', false, 0, 0),
    (5, 'it''s "q" \\ :*?#&+', DATE '2024-01-03', TIMESTAMPTZ '2024-01-02 03:04:05+00', false, 99999999.99, 2147483647),
    (6, '%20%2F', DATE '2024-02-29', TIMESTAMPTZ '2024-02-29 23:59:59.999999+00', true, -0.01, -2147483648)
  ) t(id, s, d, ts, b, dec, i)`);
  const r = await df.write.delta(p, { partitionBy: ['s', 'd', 'ts', 'b', 'dec', 'i'] });
  assert.equal(r.numOutputRows, 6);
  assert.equal(r.numFiles, 6, 'one file per distinct partition');
  const expected = [
    { id: '1', s: 'a b', d: '2024-01-02', ts: '2024-01-02 03:04:05.123456+00', b: true, dec: '1.25', i: 7 },
    { id: '2', s: 'x=y/z%', d: null, ts: null, b: null, dec: null, i: null },
    { id: '3', s: null, d: '1999-12-31', ts: '1970-01-01 00:00:00+00', b: false, dec: '-3.50', i: -1 },
    { id: '4', s: '日本😈', d: '2024-01-03', ts: '2024-01-02 03:04:05+00', b: false, dec: '0.00', i: 0 },
    { id: '5', s: 'it\'s "q" \\ :*?#&+', d: '2024-01-03', ts: '2024-01-02 03:04:05+00', b: false, dec: '99999999.99', i: 2147483647 },
    { id: '6', s: '%20%2F', d: '2024-02-29', ts: '2024-02-29 23:59:59.999999+00', b: true, dec: '-0.01', i: -2147483648 },
  ];
  assert.deepEqual(await rows(p), expected);
  const cols = await (await floe.read.delta(p)).columns();
  assert.deepEqual(cols.map((c) => c.type), ['BIGINT', 'VARCHAR', 'DATE', 'TIMESTAMP WITH TIME ZONE', 'BOOLEAN', 'DECIMAL(10,2)', 'INTEGER']);

  // The log holds the partition values as PROTOCOL.md "Partition Value Serialization" says.
  const adds = (await commitActions(p, 0)).filter((a) => a.add).map((a) => a.add);
  const byS = new Map(adds.map((a) => [a.partitionValues.s as string | null, a.partitionValues]));
  assert.deepEqual({ ...byS.get('a b'), ts: undefined }, { s: 'a b', d: '2024-01-02', ts: undefined, b: 'true', dec: '1.25', i: '7' });
  assert.match(byS.get('a b')!.ts, /^2024-01-02[ T]03:04:05\.123456Z?$/);
  assert.deepEqual(byS.get('x=y/z%'), { s: 'x=y/z%', d: null, ts: null, b: null, dec: null, i: null });
  assert.equal(byS.get(null)!.dec, '-3.50');
  assert.equal(byS.get('日本😈')!.i, '0');
  for (const a of adds) {
    const rel = decodeURIComponent(a.path);
    assert.ok(await exists(p, rel), `the log path ${a.path} decodes to a file that exists`);
    assert.ok(!rel.startsWith('/'), 'paths are relative');
  }

  // Filters on partition columns pick the right partition and skip the other files.
  for (const [cond, id] of [["s = 'a b'", 1], ["s = 'x=y/z%'", 2], ['s IS NULL', 3], ["s = '日本😈'", 4], ["s = '%20%2F'", 6],
    ["d = DATE '1999-12-31'", 3], ["ts = TIMESTAMP '1970-01-01 00:00:00'", 3], ['dec = -0.01', 6], ['i = 2147483647', 5], ['b AND i < 0', 6]] as const) {
    const f = (await floe.read.delta(p)).filter(cond);
    assert.deepEqual(ids(await f.toJSON()), [id], cond);
    assert.ok(f.lastScan[0]!.filesScanned < f.lastScan[0]!.filesTotal, `${cond}: partition pruning skipped files`);
  }

  assert.deepEqual(ids(await (await floe.read.delta(p)).filter("ts = TIMESTAMPTZ '2024-01-02 03:04:05.123456+00'").toJSON()), [1]);
  assert.deepEqual(ids(await (await floe.read.delta(p)).filter("ts = TIMESTAMPTZ '2024-02-29 23:59:59.999999+00'").toJSON()), [6]);

  // Appending into an existing partition and a new one.
  await floe.duckdbSql("SELECT 7::BIGINT AS id, 'a b' AS s, DATE '2024-01-02' AS d, TIMESTAMPTZ '2024-01-02 03:04:05.123456+00' AS ts, true AS b, 1.25::DECIMAL(10,2) AS dec, 7 AS i")
    .write.delta(p, { mode: 'append' });
  assert.deepEqual(ids(await (await floe.read.delta(p)).filter("s = 'a b'").orderBy('id').toJSON()), [1, 7]);
  await assertValidTable(p);
});

test('an empty string partition value reads back as NULL, as in Spark; whitespace and control characters survive', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, ''), (2, 'x'), (3, NULL), (4, ' a '), (5, 'tab\tx'), (6, 'nl\nx'), (7, 'a/../b'), (8, '.hidden'), (9, '_under')) t(id, s)")
    .write.delta(p, { partitionBy: ['s'] });
  assert.deepEqual(await rows(p), [
    { id: '1', s: null }, { id: '2', s: 'x' }, { id: '3', s: null }, { id: '4', s: ' a ' }, { id: '5', s: 'tab\tx' },
    { id: '6', s: 'nl\nx' }, { id: '7', s: 'a/../b' }, { id: '8', s: '.hidden' }, { id: '9', s: '_under' },
  ]);
  await assertValidTable(p);
});

test('append with a different partitionBy than the table has fails', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS p").write.delta(p, { partitionBy: ['p'] });
  await rejectsWith(floe.duckdbSql("SELECT 2::BIGINT AS id, 'b' AS p").write.delta(p, { mode: 'append', partitionBy: ['id'] }), 'DELTA_PARTITION_COLUMNS_MISMATCH');
  await floe.duckdbSql("SELECT 2::BIGINT AS id, 'b' AS p").write.delta(p, { mode: 'append', partitionBy: ['p'] });
  assert.equal(await version(p), 1);
  await assertValidTable(p);
});

test('types: timestamp_ntz needs the timestampNtz table feature; nested struct / array / map columns round-trip', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT 1::BIGINT AS id, TIMESTAMP '2024-01-01 10:00:00.123456' AS tn").write.delta(p);
  const d = await (await DeltaTable.forPath(floe, p)).detail();
  assert.equal(d.minReaderVersion, 3);
  assert.equal(d.minWriterVersion, 7);
  assert.ok(d.tableFeatures.includes('timestampNtz'));
  assert.equal((await floe.snapshot(p)).schema.fields[1]!.type, 'timestamp_ntz');
  assert.deepEqual(await rows(p), [{ id: '1', tn: '2024-01-01 10:00:00.123456' }]);
  await assertValidTable(p);

  const q = await newTable();
  await floe.duckdbSql("SELECT 1::BIGINT AS id, {'a': 1, 'b': 'x', 'c': {'d': 2.5}} AS s, [1, 2, NULL] AS arr, MAP {'k': 10, 'l': NULL} AS m").write.delta(q);
  await floe.duckdbSql('SELECT 2::BIGINT AS id, NULL::STRUCT(a INTEGER, b VARCHAR, c STRUCT(d DECIMAL(2,1))) AS s, []::INTEGER[] AS arr, NULL::MAP(VARCHAR, INTEGER) AS m').write.delta(q, { mode: 'append' });
  const t = (await floe.snapshot(q)).schema.fields.map((f) => [f.name, typeof f.type === 'string' ? f.type : f.type.type]);
  assert.deepEqual(t, [['id', 'long'], ['s', 'struct'], ['arr', 'array'], ['m', 'map']]);
  const got = await (await floe.read.delta(q)).orderBy('id').select('id', "to_json(s) AS s", 'to_json(arr) AS arr', 'to_json(m) AS m').toJSON();
  assert.deepEqual(got, [
    { id: '1', s: '{"a":1,"b":"x","c":{"d":2.5}}', arr: '[1,2,null]', m: '{"k":10,"l":null}' },
    { id: '2', s: null, arr: '[]', m: null },
  ]);
  await assertValidTable(q);
});

test('writes match columns by name, whatever their order; an empty DataFrame creates an empty table', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS name").write.delta(p);
  await floe.duckdbSql("SELECT 'b' AS name, 2::BIGINT AS id").write.delta(p, { mode: 'append' });
  assert.deepEqual(await rows(p), [{ id: '1', name: 'a' }, { id: '2', name: 'b' }]);
  await assertValidTable(p);

  const q = await newTable();
  const r = await floe.duckdbSql("SELECT 1::BIGINT AS id, 'x' AS name WHERE false").write.delta(q);
  assert.equal(r.version, 0);
  assert.equal(r.numFiles, 0);
  assert.deepEqual((await floe.snapshot(q)).schema.fields.map((f) => f.name), ['id', 'name']);
  assert.equal(await (await floe.read.delta(q)).count(), 0);
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'x' AS name").write.delta(q, { mode: 'append' });
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'x' AS name WHERE false").write.delta(q, { mode: 'overwrite' });
  assert.equal(await (await floe.read.delta(q)).count(), 0, 'overwriting with no rows empties the table');
  await assertValidTable(q);
});

test('a large write under a small delta.targetFileSize is split into several files, each with exact stats', async () => {
  const p = await newTable();
  const r = await floe.duckdbSql("SELECT i::BIGINT AS id, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s FROM range(300000) r(i)")
    .write.delta(p, { properties: { 'delta.targetFileSize': String(1024 * 1024) } });
  assert.ok(r.numFiles > 1, `expected several files, got ${r.numFiles}`);
  assert.equal(r.numOutputRows, 300000);
  const total = (await allAdds(p)).reduce((n, a) => n + (JSON.parse(a.add.stats) as Json).numRecords, 0);
  assert.equal(total, 300000);
  await assertValidTable(p);
});

test('floe.parquet.version = v2 writes data page V2 files (DELTA encodings) on every write path; the default stays version 1', async () => {
  const v1 = await newTable('v1');
  const v2 = await newTable('v2');
  const src = 'SELECT i::BIGINT AS id, (i * 7)::BIGINT AS x FROM range(5000) r(i)';
  await floe.duckdbSql(src).write.delta(v1);
  await floe.duckdbSql(src).write.delta(v2, { properties: { 'floe.parquet.version': 'V2' } });
  for (const p of [v1, v2]) {
    await floe.duckdbSql('SELECT 5000::BIGINT AS id, 1::BIGINT AS x').write.delta(p, { mode: 'append' });
    await (await DeltaTable.forPath(floe, p)).update({ condition: 'id < 10', set: { x: '0' } });
  }
  /** The encodings of column `id` in each file the log adds. */
  const encodings = async (p: string): Promise<string[]> => {
    const dir = await localCopy(p);
    const adds = (await allAdds(p)).sort((a, b) => a.version - b.version);
    const out: string[] = [];
    for (const { add } of adds) {
      const file = path.join(dir, ...decodeURIComponent(add.path as string).split('/'));
      const r = await floe.engine.allJson(`SELECT string_agg(DISTINCT encodings, ',') AS e FROM parquet_metadata('${file.replace(/'/g, "''")}') WHERE path_in_schema = 'id'`);
      out.push(String(r[0]!.e));
    }
    return out;
  };
  const e1 = await encodings(v1);
  const e2 = await encodings(v2);
  assert.ok(e2.length >= 3 && e2.length === e1.length, `create, append and update each wrote a file: ${e2.length}`);
  for (const e of e1) assert.doesNotMatch(e, /DELTA_BINARY_PACKED/);
  for (const e of e2) assert.match(e, /DELTA_BINARY_PACKED/);
  assert.deepEqual(await rows(v2), await rows(v1));
  await assertValidTable(v2);
  // Any other value is refused, at creation and when set later.
  await rejectsWith(floe.duckdbSql(src).write.delta(await newTable('bad'), { properties: { 'floe.parquet.version': '2' } }), 'DELTA_INVALID_TABLE_PROPERTY_VALUE', /'v1' or 'v2'/);
  await rejectsWith(floe.sql(`ALTER TABLE delta.\`${v1}\` SET TBLPROPERTIES ('floe.parquet.version' = 'v3')`), 'DELTA_INVALID_TABLE_PROPERTY_VALUE', /'v1' or 'v2'/);
  await floe.sql(`ALTER TABLE delta.\`${v1}\` SET TBLPROPERTIES ('floe.parquet.version' = 'v2')`);
  await floe.duckdbSql('SELECT 5001::BIGINT AS id, 1::BIGINT AS x').write.delta(v1, { mode: 'append' });
  assert.match((await encodings(v1)).at(-1)!, /DELTA_BINARY_PACKED/, 'set later, it applies to the next write');
});

test('the table root may contain spaces, %, quotes and unicode', async () => {
  const p = locJoin(await newRoot('floe-write-'), "my table 100% it's 日本");
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'b c')) t(id, p)").write.delta(p, { partitionBy: ['p'] });
  await floe.duckdbSql("SELECT 3::BIGINT AS id, 'a' AS p").write.delta(p, { mode: 'append' });
  assert.deepEqual(ids(await rows(p)), [1, 2, 3]);
  await assertValidTable(p);
});

test('write options description and userMetadata are recorded (metaData.description, commitInfo.userMetadata)', async () => {
  const p = await newTable();
  await floe.duckdbSql('SELECT 1::BIGINT AS id').write.delta(p, { description: 'my table', userMetadata: 'batch 1' });
  await floe.duckdbSql('SELECT 2::BIGINT AS id').write.delta(p, { mode: 'append', userMetadata: 'batch 2' });
  const t = await DeltaTable.forPath(floe, p);
  assert.equal((await t.detail()).description, 'my table');
  const h = await t.history();
  assert.equal(h[0]!.userMetadata, 'batch 2');
  assert.equal(h[1]!.userMetadata, 'batch 1');
  assert.equal((await commitActions(p, 1)).find((a) => a.commitInfo)!.commitInfo.userMetadata, 'batch 2');
});

// ---------------------------------------------------------------------------------------------
// Schema enforcement and evolution
// ---------------------------------------------------------------------------------------------

test('schema enforcement: an unknown column or an incompatible type fails with DELTA_SCHEMA_MISMATCH showing both schemas', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS name").write.delta(p);
  const e = await rejectsWith(floe.duckdbSql("SELECT 2::BIGINT AS id, 'b' AS name, 3.5::DOUBLE AS extra").write.delta(p, { mode: 'append' }), 'DELTA_SCHEMA_MISMATCH');
  assert.match(e.message, /extra/);
  assert.match(e.message, /id: long, name: string(?!, extra)/, 'the table schema');
  assert.match(e.message, /id: long, name: string, extra: double/, 'the data schema');
  const e2 = await rejectsWith(floe.duckdbSql("SELECT 'not a number' AS id, 'b' AS name").write.delta(p, { mode: 'append' }), 'DELTA_SCHEMA_MISMATCH');
  assert.match(e2.message, /id/);
  assert.match(e2.message, /id: string/);
  assert.match(e2.message, /id: long/);
  await rejectsWith(floe.duckdbSql('SELECT 2::BIGINT AS id, 5 AS name2').write.delta(p, { mode: 'overwrite' }), 'DELTA_SCHEMA_MISMATCH');
  assert.equal(await version(p), 0, 'failed writes commit nothing');
  assert.deepEqual(await rows(p), [{ id: '1', name: 'a' }]);
  await assertValidTable(p);
});

test('implicit upcast: int data into a long column, missing nullable columns, case-insensitive names', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS name, 1.5::DOUBLE AS score").write.delta(p);
  await floe.duckdbSql("SELECT 2::INTEGER AS id, 'b' AS name, 2::INTEGER AS score").write.delta(p, { mode: 'append' });
  await floe.duckdbSql('SELECT 3::SMALLINT AS id').write.delta(p, { mode: 'append' });
  await floe.duckdbSql("SELECT 4::BIGINT AS ID, 'd' AS Name").write.delta(p, { mode: 'append' });
  const snap = await floe.snapshot(p);
  assert.deepEqual(snap.schema.fields.map((f) => [f.name, f.type]), [['id', 'long'], ['name', 'string'], ['score', 'double']], 'the table schema is unchanged');
  assert.deepEqual(await rows(p), [
    { id: '1', name: 'a', score: 1.5 },
    { id: '2', name: 'b', score: 2 },
    { id: '3', name: null, score: null },
    { id: '4', name: 'd', score: null },
  ]);
  assert.deepEqual((await (await floe.read.delta(p)).columns()).map((c) => c.type), ['BIGINT', 'VARCHAR', 'DOUBLE']);
  await assertValidTable(p);
});

test('mergeSchema adds the new column; rows written before read NULL in it', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'b')) t(id, name)").write.delta(p);
  const r = await floe.duckdbSql("SELECT 3::BIGINT AS id, 'c' AS name, 9.5::DOUBLE AS score, DATE '2024-03-01' AS day").write.delta(p, { mode: 'append', mergeSchema: true });
  assert.equal(r.version, 1);
  const snap = await floe.snapshot(p);
  assert.deepEqual(snap.schema.fields.map((f) => [f.name, f.type, f.nullable]), [['id', 'long', true], ['name', 'string', true], ['score', 'double', true], ['day', 'date', true]]);
  assert.ok((await commitActions(p, 1)).some((a) => a.metaData), 'the schema change is a metaData action in the same commit');
  assert.deepEqual(await rows(p), [
    { id: '1', name: 'a', score: null, day: null },
    { id: '2', name: 'b', score: null, day: null },
    { id: '3', name: 'c', score: 9.5, day: '2024-03-01' },
  ]);
  // The old version still has the old schema.
  assert.deepEqual((await (await floe.read.delta(p, { versionAsOf: 0 })).columns()).map((c) => c.name), ['id', 'name']);
  // A later append without the new columns works too.
  await floe.duckdbSql("SELECT 4::BIGINT AS id, 'd' AS name").write.delta(p, { mode: 'append' });
  assert.equal(await (await floe.read.delta(p)).filter('score IS NULL').count(), 3);
  await assertValidTable(p);
});

test('overwriteSchema replaces schema and partitioning; overwrite without it keeps enforcing the schema', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'b')) t(id, name)").write.delta(p, { partitionBy: ['name'] });
  const next = floe.duckdbSql("SELECT * FROM (VALUES ('k1', 1.5::DOUBLE), ('k2', 2.5)) t(key, value)");
  await rejectsWith(next.write.delta(p, { mode: 'overwrite' }), 'DELTA_SCHEMA_MISMATCH');
  const r = await next.write.delta(p, { mode: 'overwrite', overwriteSchema: true, partitionBy: ['key'] });
  assert.equal(r.version, 1);
  const snap = await floe.snapshot(p);
  assert.deepEqual(snap.schema.fields.map((f) => [f.name, f.type]), [['key', 'string'], ['value', 'double']]);
  assert.deepEqual(snap.partitionColumns, ['key']);
  assert.deepEqual(await rows(p, 'key'), [{ key: 'k1', value: 1.5 }, { key: 'k2', value: 2.5 }]);
  assert.deepEqual(await (await floe.read.delta(p, { versionAsOf: 0 })).orderBy('id').toJSON(), [{ id: '1', name: 'a' }, { id: '2', name: 'b' }]);
  assert.equal(snap.metadata.id, (await floe.snapshot(p, { versionAsOf: 0 })).metadata.id, 'the table id survives');
  await assertValidTable(p);
});

// ---------------------------------------------------------------------------------------------
// Constraints
// ---------------------------------------------------------------------------------------------

test('NOT NULL: a null in a non-nullable column fails with DELTA_NOT_NULL_CONSTRAINT_VIOLATED and changes nothing', async () => {
  const p = await newTable();
  await DeltaTable.create(floe, { path: p, schema: [{ name: 'id', type: 'long', nullable: false }, { name: 'name', type: 'string' }] });
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, NULL)) t(id, name)").write.delta(p, { mode: 'append' });
  const before = await rows(p);
  const files = (await floe.snapshot(p)).files.map((f) => f.path).sort();
  const bad = floe.duckdbSql("SELECT * FROM (VALUES (3::BIGINT, 'c'), (NULL, 'd')) t(id, name)");
  const e = await rejectsWith(bad.write.delta(p, { mode: 'append' }), 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
  assert.match(e.message, /\bid\b/);
  await rejectsWith(bad.write.delta(p, { mode: 'overwrite' }), 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
  await rejectsWith(floe.duckdbSql("SELECT 'e' AS name").write.delta(p, { mode: 'append' }), 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED', /\bid\b/);
  assert.equal(await version(p), 1);
  assert.deepEqual(await rows(p), before);
  assert.deepEqual((await floe.snapshot(p)).files.map((f) => f.path).sort(), files);
  await assertValidTable(p);
});

test('CHECK constraint from delta.constraints.*: violation fails with DELTA_VIOLATE_CONSTRAINT_WITH_VALUES and changes nothing', async () => {
  const p = await newTable();
  await DeltaTable.create(floe, { path: p, schema: [{ name: 'id', type: 'long' }, { name: 'amount', type: 'double' }], properties: { 'delta.constraints.positive': 'amount > 0' } });
  const d = await (await DeltaTable.forPath(floe, p)).detail();
  assert.ok(d.minWriterVersion >= 3, 'CHECK constraints need writer version 3');
  await floe.duckdbSql('SELECT * FROM (VALUES (1::BIGINT, 10.0::DOUBLE), (2, 0.5)) t(id, amount)').write.delta(p, { mode: 'append' });
  const e = await rejectsWith(floe.duckdbSql('SELECT * FROM (VALUES (3::BIGINT, 5.0::DOUBLE), (4, -1.0)) t(id, amount)').write.delta(p, { mode: 'append' }), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
  assert.match(e.message, /positive/);
  assert.match(e.message, /amount > 0/);
  await rejectsWith(floe.duckdbSql('SELECT 5::BIGINT AS id, 0.0::DOUBLE AS amount').write.delta(p, { mode: 'overwrite' }), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
  assert.equal(await version(p), 1);
  assert.deepEqual(await rows(p), [{ id: '1', amount: 10 }, { id: '2', amount: 0.5 }]);
  await floe.duckdbSql('SELECT 6::BIGINT AS id, 3.0::DOUBLE AS amount').write.delta(p, { mode: 'append' });
  assert.equal(await (await floe.read.delta(p)).count(), 3);

  // A constraint given as a property of the write that creates the table applies to later writes.
  const q = await newTable();
  await floe.duckdbSql('SELECT 1::BIGINT AS id, 1.0::DOUBLE AS amount').write.delta(q, { properties: { 'delta.constraints.positive': 'amount > 0' } });
  assert.ok((await (await DeltaTable.forPath(floe, q)).detail()).minWriterVersion >= 3);
  await rejectsWith(floe.duckdbSql('SELECT 2::BIGINT AS id, -2.0::DOUBLE AS amount').write.delta(q, { mode: 'append' }), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
  assert.equal(await version(q), 0);
  await assertValidTable(p);
  await assertValidTable(q);
});

// ---------------------------------------------------------------------------------------------
// replaceWhere
// ---------------------------------------------------------------------------------------------

test('replaceWhere on a partition column replaces only that partition and rejects rows outside it', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'a'), (3, 'b'), (4, 'c')) t(id, p)").write.delta(p, { partitionBy: ['p'] });
  const bFiles = (await floe.snapshot(p)).files.filter((f) => f.partitionValues.p !== 'a').map((f) => f.path).sort();
  const r = await floe.duckdbSql("SELECT * FROM (VALUES (10::BIGINT, 'a'), (11, 'a'), (12, 'a')) t(id, p)").write.delta(p, { mode: 'overwrite', replaceWhere: "p = 'a'" });
  assert.equal(r.version, 1);
  assert.equal(r.numRemovedFiles, 1);
  assert.deepEqual(await rows(p), [{ id: '3', p: 'b' }, { id: '4', p: 'c' }, { id: '10', p: 'a' }, { id: '11', p: 'a' }, { id: '12', p: 'a' }]);
  const v1 = await commitActions(p, 1);
  assert.ok(v1.filter((a) => a.remove).every((a) => a.remove.partitionValues.p === 'a'), 'only files of partition a are removed');
  assert.deepEqual((await floe.snapshot(p)).files.filter((f) => f.partitionValues.p !== 'a').map((f) => f.path).sort(), bFiles, 'other partitions keep their files');

  const e = await rejectsWith(floe.duckdbSql("SELECT * FROM (VALUES (20::BIGINT, 'a'), (21, 'b')) t(id, p)").write.delta(p, { mode: 'overwrite', replaceWhere: "p = 'a'" }), 'DELTA_REPLACE_WHERE_MISMATCH');
  assert.match(e.message, /p = 'a'/);
  assert.equal(await version(p), 1);
  assert.equal(await (await floe.read.delta(p)).count(), 5);

  // replaceWhere covering two partitions, one of which receives no new rows.
  await floe.duckdbSql("SELECT 30::BIGINT AS id, 'b' AS p").write.delta(p, { mode: 'overwrite', replaceWhere: "p IN ('b', 'c')" });
  assert.deepEqual(await rows(p), [{ id: '10', p: 'a' }, { id: '11', p: 'a' }, { id: '12', p: 'a' }, { id: '30', p: 'b' }]);
  await rejectsWith(floe.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS p").write.delta(p, { mode: 'append', replaceWhere: "p = 'a'" }), 'FLOE_INVALID_ARGUMENT');
  await assertValidTable(p);
});

// ---------------------------------------------------------------------------------------------
// Idempotent writes
// ---------------------------------------------------------------------------------------------

test('idempotent writes: a repeated (txnAppId, txnVersion) is skipped, a higher version lands', async () => {
  const p = await newTable();
  const batch = (id: number) => floe.duckdbSql(`SELECT ${id}::BIGINT AS id`);
  const r0 = await batch(1).write.delta(p, { mode: 'append', txnAppId: 'ingest-job', txnVersion: 1 });
  assert.equal(r0.version, 0);
  const r1 = await batch(1).write.delta(p, { mode: 'append', txnAppId: 'ingest-job', txnVersion: 1 });
  assert.equal(r1.skipped, true);
  assert.equal(r1.version, null);
  assert.equal(await version(p), 0);
  const r2 = await batch(2).write.delta(p, { mode: 'append', txnAppId: 'ingest-job', txnVersion: 2 });
  assert.equal(r2.version, 1);
  assert.equal((await batch(99).write.delta(p, { mode: 'append', txnAppId: 'ingest-job', txnVersion: 0 })).skipped, true, 'an older version is skipped too');
  const r3 = await batch(3).write.delta(p, { mode: 'append', txnAppId: 'other-job', txnVersion: 1 });
  assert.equal(r3.version, 2, 'application ids are independent');
  assert.deepEqual(ids(await rows(p)), [1, 2, 3]);
  const txns = (await commitActions(p, 1)).filter((a) => a.txn).map((a) => a.txn);
  assert.equal(txns.length, 1);
  assert.equal(txns[0].appId, 'ingest-job');
  assert.equal(txns[0].version, 2);
  assert.equal((await floe.snapshot(p)).txnVersion('ingest-job'), 2);
  await rejectsWith(batch(4).write.delta(p, { mode: 'append', txnAppId: 'ingest-job' }), 'DELTA_INVALID_IDEMPOTENT_WRITES_OPTIONS');
  await assertValidTable(p);
});

// ---------------------------------------------------------------------------------------------
// Session defaults
// ---------------------------------------------------------------------------------------------

test('session table defaults: appendOnly default makes new tables append-only; overwrite then fails', async () => {
  const s = await Floe.create({ config: { 'spark.databricks.delta.properties.defaults.appendOnly': 'true' } });
  try {
    const p = await newTable();
    await s.duckdbSql("SELECT 1::BIGINT AS id, 'a' AS name").write.delta(p);
    const d = await (await DeltaTable.forPath(s, p)).detail();
    assert.equal(d.properties['delta.appendOnly'], 'true');
    assert.ok(d.minWriterVersion >= 2, 'appendOnly needs writer version 2');
    await rejectsWith(s.duckdbSql("SELECT 2::BIGINT AS id, 'b' AS name").write.delta(p, { mode: 'overwrite' }), 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
    await rejectsWith(floe.duckdbSql("SELECT 2::BIGINT AS id, 'b' AS name").write.delta(p, { mode: 'overwrite' }), 'DELTA_CANNOT_MODIFY_APPEND_ONLY', undefined);
    assert.equal(await version(p), 0);
    await s.duckdbSql("SELECT 2::BIGINT AS id, 'b' AS name").write.delta(p, { mode: 'append' });
    assert.equal(await (await s.read.delta(p)).count(), 2);

    const q = await newTable();
    await DeltaTable.create(s, { path: q, schema: [{ name: 'id', type: 'long' }] });
    assert.equal((await (await DeltaTable.forPath(s, q)).detail()).properties['delta.appendOnly'], 'true');
    // An explicit property wins over the session default.
    const r = await newTable();
    await s.duckdbSql('SELECT 1::BIGINT AS id').write.delta(r, { properties: { 'delta.appendOnly': 'false' } });
    assert.equal((await (await DeltaTable.forPath(s, r)).detail()).properties['delta.appendOnly'], 'false');
    await s.duckdbSql('SELECT 2::BIGINT AS id').write.delta(r, { mode: 'overwrite' });
    // The session default does not apply to tables created without it.
    const u = await newTable();
    await floe.duckdbSql('SELECT 1::BIGINT AS id').write.delta(u);
    assert.equal((await (await DeltaTable.forPath(floe, u)).detail()).properties['delta.appendOnly'], undefined);
    for (const x of [p, q, r, u]) await assertValidTable(x);
  } finally {
    await s.close();
  }
});

test('session table defaults apply only to tables being created, not to an overwriteSchema of an existing table', async () => {
  const p = await newTable();
  await floe.duckdbSql('SELECT 1::BIGINT AS id').write.delta(p);
  const s = await Floe.create({ config: { 'spark.databricks.delta.properties.defaults.appendOnly': 'true' } });
  try {
    await s.duckdbSql("SELECT 'x' AS k").write.delta(p, { mode: 'overwrite', overwriteSchema: true });
    const d = await (await DeltaTable.forPath(s, p)).detail();
    assert.equal(d.properties['delta.appendOnly'], undefined, 'Spark merges the session defaults into the configuration of new tables only');
  } finally {
    await s.close();
  }
  await assertValidTable(p);
});

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

test('a checkpoint is written at every delta.checkpointInterval (default 10) and the table reads the same from it', async () => {
  const p = await newTable();
  for (let v = 0; v <= 11; v++) {
    await floe.duckdbSql(`SELECT ${v}::BIGINT AS id, 'r${v}' AS name, ${v % 3} AS grp`).write.delta(p, { mode: v === 0 ? 'error' : 'append', partitionBy: ['grp'] });
  }
  const cps = (await listNames(p, '_delta_log')).filter((f) => f.includes('.checkpoint.')).sort();
  assert.deepEqual(cps, ['00000000000000000010.checkpoint.parquet']);
  const last = await readJson<Json>(p, '_delta_log/_last_checkpoint');
  assert.equal(last.version, 10);
  assert.equal(typeof last.size, 'number');
  await assertValidTable(p);

  // Reading from the checkpoint alone (commits 0-9 deleted in a copy) gives the same rows.
  const expected = await rows(p);
  const atTen = await (await floe.read.delta(p, { versionAsOf: 10 })).orderBy('id').toJSON();
  const copy = await newLocation('t', 'floe-cp-');
  await copyLocation(p, copy);
  for (let v = 0; v < 10; v++) await removeKey(copy, `_delta_log/${String(v).padStart(20, '0')}.json`);
  const s = await Floe.create();
  try {
    assert.deepEqual(await (await s.read.delta(copy)).orderBy('id').toJSON(), expected);
    assert.deepEqual(await (await s.read.delta(copy, { versionAsOf: 10 })).orderBy('id').toJSON(), atTen);
    assert.equal((await s.snapshot(copy)).version, 11);
    // And writes continue on the truncated log.
    await s.duckdbSql("SELECT 100::BIGINT AS id, 'x' AS name, 1 AS grp").write.delta(copy, { mode: 'append' });
    assert.equal(await (await s.read.delta(copy)).count(), 13);
  } finally {
    await s.close();
  }
  await assertValidTable(copy);
});

test('delta.checkpointInterval = 3 checkpoints at 3 and 6; DeltaTable.checkpoint() writes one on demand', async () => {
  const p = await newTable();
  await DeltaTable.create(floe, { path: p, schema: [{ name: 'id', type: 'long' }], properties: { 'delta.checkpointInterval': '3' } });
  for (let v = 1; v <= 7; v++) await floe.duckdbSql(`SELECT ${v}::BIGINT AS id`).write.delta(p, { mode: 'append' });
  // A removal, a txn and a metadata change make the checkpoint content more than adds.
  await floe.duckdbSql('SELECT 50::BIGINT AS id').write.delta(p, { mode: 'overwrite', txnAppId: 'app', txnVersion: 7 }); // v8
  assert.deepEqual((await listNames(p, '_delta_log')).filter((f) => f.includes('.checkpoint.')).sort(), [
    '00000000000000000003.checkpoint.parquet', '00000000000000000006.checkpoint.parquet',
  ]);
  assert.equal((await readJson<Json>(p, '_delta_log/_last_checkpoint')).version, 6);
  const r = await (await DeltaTable.forPath(floe, p)).checkpoint();
  assert.equal(r.version, 8);
  assert.ok(await exists(p, '_delta_log/00000000000000000008.checkpoint.parquet'));
  assert.equal((await readJson<Json>(p, '_delta_log/_last_checkpoint')).version, 8);
  await floe.duckdbSql('SELECT 51::BIGINT AS id').write.delta(p, { mode: 'append' }); // v9 -> checkpoint
  assert.ok(await exists(p, '_delta_log/00000000000000000009.checkpoint.parquet'));
  await assertValidTable(p);
  const s = await Floe.create();
  try {
    assert.equal((await s.snapshot(p)).txnVersion('app'), 7, 'txn survives in the checkpoint');
    assert.deepEqual(ids(await (await s.read.delta(p)).orderBy('id').toJSON()), [50, 51]);
  } finally {
    await s.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Stats and file skipping
// ---------------------------------------------------------------------------------------------

test('every add carries stats (numRecords, minValues, maxValues, nullCount) that let filters skip files', async () => {
  const p = await newTable();
  for (let b = 0; b < 3; b++) {
    await floe.duckdbSql(`SELECT i::BIGINT AS id, 'name-' || lpad(i::VARCHAR, 3, '0') AS name, CASE WHEN i % 5 = 0 THEN NULL ELSE i * 1.5 END AS score,
      DATE '2024-01-01' + i::INTEGER AS day, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i) AS ts
      FROM range(${b * 10 + 1}, ${b * 10 + 11}) r(i)`).write.delta(p, { mode: b ? 'append' : 'error' });
  }
  const adds = await allAdds(p);
  assert.equal(adds.length, 3);
  for (const { add } of adds) {
    assert.equal(typeof add.stats, 'string', 'stats present');
    const st = JSON.parse(add.stats) as Json;
    assert.equal(st.numRecords, 10);
    for (const c of ['id', 'name', 'score', 'day', 'ts']) {
      assert.ok(c in st.minValues, `minValues.${c}`);
      assert.ok(c in st.maxValues, `maxValues.${c}`);
      assert.ok(c in st.nullCount, `nullCount.${c}`);
    }
  }
  const first = JSON.parse(adds[0]!.add.stats) as Json;
  assert.deepEqual(first.minValues, { id: 1, name: 'name-001', score: 1.5, day: '2024-01-02', ts: '2024-01-01T00:00:01.000Z' });
  assert.deepEqual(first.maxValues, { id: 10, name: 'name-010', score: 13.5, day: '2024-01-11', ts: '2024-01-01T00:00:10.000Z' });
  assert.deepEqual(first.nullCount, { id: 0, name: 0, score: 2, day: 0, ts: 0 });

  const f = (await floe.read.delta(p)).filter('id > 25');
  assert.deepEqual(ids(await f.orderBy('id').toJSON()), [26, 27, 28, 29, 30]);
  const scan = (await floe.read.delta(p)).filter('id > 25');
  await scan.toArray();
  assert.equal(scan.lastScan[0]!.filesTotal, 3);
  assert.equal(scan.lastScan[0]!.filesScanned, 1, 'stats skip the two files with id <= 20');
  const byName = (await floe.read.delta(p)).filter("name = 'name-015'");
  assert.equal((await byName.toArray()).length, 1);
  assert.equal(byName.lastScan[0]!.filesScanned, 1);
  const byDay = (await floe.read.delta(p)).filter("day < DATE '2024-01-05'");
  assert.equal((await byDay.toArray()).length, 3);
  assert.equal(byDay.lastScan[0]!.filesScanned, 1);
  await assertValidTable(p);
});

test('long strings: min is a 32-character prefix, max is left out or still an upper bound', async () => {
  const p = await newTable();
  const long = 'x'.repeat(40);
  await floe.duckdbSql(`SELECT * FROM (VALUES (1::BIGINT, '${long}a'), (2, '${long}b'), (3, 'a${long}')) t(id, s)`).write.delta(p);
  const st = JSON.parse((await allAdds(p))[0]!.add.stats) as Json;
  assert.equal(st.minValues.s, ('a' + long).slice(0, 32));
  if (st.maxValues.s !== undefined) assert.ok(st.maxValues.s >= long + 'b');
  assert.equal((await (await floe.read.delta(p)).filter(`s = '${long}b'`).toArray()).length, 1);
  await assertValidTable(p);
});

// ---------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------

test('history shows operation, operationParameters and operationMetrics of each write', async () => {
  const p = await newTable();
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a'), (2, 'b'), (3, 'a')) t(id, p)").write.delta(p, { partitionBy: ['p'] });
  await floe.duckdbSql("SELECT 4::BIGINT AS id, 'c' AS p").write.delta(p, { mode: 'append' });
  await floe.duckdbSql("SELECT 5::BIGINT AS id, 'a' AS p").write.delta(p, { mode: 'overwrite', replaceWhere: "p = 'a'" });
  await floe.duckdbSql("SELECT 6::BIGINT AS id, 'd' AS p").write.delta(p, { mode: 'overwrite' });
  const h = await (await DeltaTable.forPath(floe, p)).history();
  assert.deepEqual(h.map((e) => e.version), [3, 2, 1, 0]);
  const [ow, rw, ap, cr] = h as [typeof h[0], typeof h[0], typeof h[0], typeof h[0]];
  assert.equal(ap.operation, 'WRITE');
  assert.deepEqual(ap.operationParameters, { mode: 'Append', partitionBy: '["p"]' });
  assert.equal(ap.operationMetrics.numFiles, '1');
  assert.equal(ap.operationMetrics.numOutputRows, '1');
  assert.ok(Number(ap.operationMetrics.numOutputBytes) > 0);
  assert.equal(ap.isBlindAppend, true);
  assert.equal(ap.readVersion, 0);
  assert.equal(rw.operation, 'WRITE');
  assert.equal(rw.operationParameters.mode, 'Overwrite');
  assert.equal(rw.operationParameters.predicate, JSON.stringify(["p = 'a'"]));
  assert.equal(rw.operationMetrics.numOutputRows, '1');
  assert.equal(rw.isBlindAppend, false);
  assert.equal(ow.operation, 'WRITE');
  assert.equal(ow.operationParameters.mode, 'Overwrite');
  assert.equal(ow.operationMetrics.numOutputRows, '1');
  assert.ok(cr.operation === 'WRITE' || cr.operation === 'CREATE TABLE AS SELECT');
  assert.equal(cr.operationMetrics.numOutputRows, '3');
  assert.equal(cr.operationMetrics.numFiles, '2');
  for (const e of h) assert.equal(typeof e.engineInfo, 'string');
  await assertValidTable(p);
});

test('history records writes as Spark does: a path write is WRITE with mode ErrorIfExists, createOrReplace is CREATE OR REPLACE TABLE', async () => {
  const p = await newTable();
  await floe.duckdbSql('SELECT 1::BIGINT AS id').write.delta(p);
  await DeltaTable.createOrReplace(floe).location(p).addColumn('id', 'long').execute();
  const h = await (await DeltaTable.forPath(floe, p)).history();
  // Spark's DataFrameWriter.save(path) commits DeltaOperations.Write ("WRITE") even for a new table,
  // with the SaveMode's name as mode.
  assert.equal(h[1]!.operation, 'WRITE');
  assert.equal(h[1]!.operationParameters.mode, 'ErrorIfExists');
  assert.equal(h[0]!.operation, 'CREATE OR REPLACE TABLE');
  await assertValidTable(p);
});

test('enabling in-commit timestamps on an existing table records the enabling version and ICT in its metadata', async () => {
  const p = await newTable();
  await floe.duckdbSql('SELECT 1 AS id').write.delta(p);
  await floe.duckdbSql('SELECT 2 AS id').write.delta(p, { mode: 'append' });
  const t = await DeltaTable.forPath(floe, p);
  const v = await t.setProperties({ 'delta.enableInCommitTimestamps': 'true' });
  assert.equal(v, 2);
  const actions = await commitActions(p, 2);
  const ict = actions.find((a) => a.commitInfo)!.commitInfo.inCommitTimestamp;
  assert.equal(typeof ict, 'number');
  const conf = actions.find((a) => a.metaData)!.metaData.configuration;
  assert.equal(conf['delta.inCommitTimestampEnablementVersion'], '2');
  assert.equal(conf['delta.inCommitTimestampEnablementTimestamp'], String(ict));
  await assertValidTable(p);
  // Later commits keep the recorded enablement, and the timestamps of versions 2+ are ICTs.
  await floe.duckdbSql('SELECT 3 AS id').write.delta(p, { mode: 'append' });
  assert.equal((await floe.snapshot(p)).metadata.configuration['delta.inCommitTimestampEnablementVersion'], '2');
  assert.equal((await floe.snapshot(p, { versionAsOf: 2 })).timestamp, ict);
  // Setting another property later does not move the enablement version.
  await t.setProperties({ 'delta.appendOnly': 'false' });
  assert.equal((await floe.snapshot(p)).metadata.configuration['delta.inCommitTimestampEnablementVersion'], '2');
});
