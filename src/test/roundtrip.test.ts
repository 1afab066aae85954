/**
 * Round trips on real tables: copies of corpus tables written by Spark, Databricks and delta-rs are
 * appended to and overwritten by floe with rows shaped like their own, then read back with Spark's
 * semantics (append = old + new, overwrite = new only, rows deleted by deletion vectors stay
 * deleted); the protocol checker judges every commit floe adds. Tables with writer features floe
 * does not implement must be refused with DELTA_UNSUPPORTED_FEATURES_FOR_WRITE and left untouched.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import type { DataFrame } from '../dataframe.js';
import { DeltaTable } from '../table/delta-table.js';
import { FloeError } from '../errors.js';
import { corpus, corpusTable } from './helpers.js';
import { copyLocation, copyTableIn, isRemoteStore, listNames, localCopy, newLocation, readText, removeKey, storeAt } from './store.js';
import { assertValidTable, checkTable } from './protocol-checker.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let floe: Floe;
before(async () => {
  floe = await Floe.create();
});
after(async () => {
  await floe.close();
});

/** Rows as sorted canonical JSON strings: a multiset that compares with deepEqual. */
async function bag(df: DataFrame): Promise<string[]> {
  return (await df.toJSON()).map((r) => JSON.stringify(r)).sort();
}

async function latest(p: string): Promise<number> {
  return (await floe.snapshot(p)).version;
}

async function commitActions(p: string, v: number): Promise<Json[]> {
  const text = await readText(p, `_delta_log/${String(v).padStart(20, '0')}.json`);
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Json);
}

async function rejectsWith(p: Promise<unknown>, codes: string | string[], message?: RegExp): Promise<void> {
  const list = Array.isArray(codes) ? codes : [codes];
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `expected a FloeError, got ${String(e)}`);
    assert.ok(list.includes(e.code), `expected ${list.join(' or ')}, got ${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** Every file under a folder with its size and modification time. */
async function listing(dir: string): Promise<string[]> {
  if (isRemoteStore) return (await storeAt(dir).list('', { recursive: true })).map((m) => `${m.path} ${m.size} ${m.lastModified}`).sort();
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.push(`${path.relative(dir, p)}/`);
        await walk(p);
      } else {
        const st = await fs.stat(p);
        out.push(`${path.relative(dir, p)} ${st.size} ${st.mtimeMs}`);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// Append and overwrite on Spark tables
// ---------------------------------------------------------------------------------------------

test('dat/basic_append: append rows from the table itself, then overwrite; Spark semantics and a valid log', async (t) => {
  const src = corpusTable(t, 'dat/basic_append/delta');
  if (!src) return;
  const p = await copyTableIn(src);
  const before = await bag(await floe.read.delta(p));
  const v0 = await latest(p);
  const added = (await floe.read.delta(p)).select('letter', 'number + 100 AS number', 'a_float * 2 AS a_float');
  const addedRows = await bag(added);
  const r = await added.write.delta(p, { mode: 'append' });
  assert.equal(r.version, v0 + 1);
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...addedRows].sort(), 'append = old rows + new rows');
  assert.deepEqual(await bag(await floe.read.delta(p, { versionAsOf: v0 })), before, 'the old version is unchanged');

  const fresh = floe.duckdbSql("SELECT * FROM (VALUES ('x', 1000::BIGINT, 0.5::DOUBLE), ('y', 1001, 1.5)) t(letter, number, a_float)");
  await fresh.write.delta(p, { mode: 'overwrite' });
  assert.deepEqual(await bag(await floe.read.delta(p)), await bag(fresh), 'overwrite = new rows only');
  assert.deepEqual((await floe.snapshot(p)).schema.fields.map((f) => [f.name, f.type]), [['letter', 'string'], ['number', 'long'], ['a_float', 'double']]);
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

test('dat/basic_partitioned: appends into existing, new and null partitions; replaceWhere and overwrite', async (t) => {
  const src = corpusTable(t, 'dat/basic_partitioned/delta');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  const before = await bag(await floe.read.delta(p));
  const added = floe.duckdbSql("SELECT * FROM (VALUES ('a', 100::BIGINT, 1.0::DOUBLE), (NULL, 101, 2.0), ('z z', 102, 3.0), ('', 103, 4.0)) t(letter, number, a_float)");
  await added.write.delta(p, { mode: 'append' });
  const expectedAdded = ['{"letter":"a","number":"100","a_float":1}', '{"letter":null,"number":"101","a_float":2}', '{"letter":"z z","number":"102","a_float":3}', '{"letter":null,"number":"103","a_float":4}'];
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...expectedAdded].sort());
  const nullRows = await (await floe.read.delta(p)).filter('letter IS NULL').count();
  assert.equal(nullRows, 3, 'the corpus null-partition row plus the two new ones');

  // replaceWhere: partition a only.
  await floe.duckdbSql("SELECT 'a' AS letter, 200::BIGINT AS number, 9.0::DOUBLE AS a_float").write.delta(p, { mode: 'overwrite', replaceWhere: "letter = 'a'" });
  const rowsNow = await (await floe.read.delta(p)).toJSON();
  assert.deepEqual(rowsNow.filter((r) => r.letter === 'a'), [{ letter: 'a', number: '200', a_float: 9 }]);
  assert.equal(rowsNow.length, before.length + 4 - 3 + 1, 'the two corpus rows and the new row of partition a are replaced by one');

  await floe.duckdbSql("SELECT 'q' AS letter, 1::BIGINT AS number, 1.0::DOUBLE AS a_float").write.delta(p, { mode: 'overwrite' });
  assert.deepEqual(await (await floe.read.delta(p)).toJSON(), [{ letter: 'q', number: '1', a_float: 1 }]);
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

test('dat/multi_partitioned: three partition columns (binary, date, escaped strings, emoji) round-trip', async (t) => {
  const src = corpusTable(t, 'dat/multi_partitioned/delta');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  const before = await bag(await floe.read.delta(p));
  assert.ok(before.length > 0);
  await (await floe.read.delta(p)).write.delta(p, { mode: 'append' });
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...before].sort(), 'appending the table to itself doubles every row');
  // The partition values floe wrote equal Spark's for the same rows.
  const spark = new Set((await floe.snapshot(p, { versionAsOf: v0 })).files.map((f) => JSON.stringify(Object.entries(f.partitionValues).sort())));
  const mine = (await commitActions(p, v0 + 1)).filter((a) => a.add).map((a) => JSON.stringify(Object.entries(a.add.partitionValues as Record<string, string | null>).sort()));
  for (const pv of mine) assert.ok(spark.has(pv), `partition values ${pv} as Spark wrote them`);
  await (await floe.read.delta(p)).filter("letter = 'b'").write.delta(p, { mode: 'overwrite' });
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...before].filter((r) => (JSON.parse(r) as Json).letter === 'b').sort());
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

test('dat/all_primitive_types and dat/nested_types: every type Spark wrote is written back identically', async (t) => {
  for (const rel of ['dat/all_primitive_types/delta', 'dat/nested_types/delta']) {
    const src = corpusTable(t, rel);
    if (!src) return;
    const p = await copyTableIn(src);
    const v0 = await latest(p);
    const before = await bag(await floe.read.delta(p));
    const cols = await (await floe.read.delta(p)).columns();
    await (await floe.read.delta(p)).write.delta(p, { mode: 'append' });
    assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...before].sort(), rel);
    assert.deepEqual(await (await floe.read.delta(p)).columns(), cols, `${rel}: column types unchanged`);
    assert.deepEqual(await bag(await floe.read.delta(p, { versionAsOf: v0 + 1 })), [...before, ...before].sort());
    await assertValidTable(p, { fromVersion: v0 + 1 });
  }
});

// ---------------------------------------------------------------------------------------------
// Deletion vectors
// ---------------------------------------------------------------------------------------------

test('kernel-rs table-with-dv-small: rows deleted by the DV stay deleted after append, overwrite removes everything', async (t) => {
  const src = corpusTable(t, 'kernel-rs/data/table-with-dv-small');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  const visible = (await (await floe.read.delta(p)).toJSON()).map((r) => Number(r.value)).sort((a, b) => a - b);
  const dataFile = (await floe.snapshot(p)).files[0]!;
  assert.ok(dataFile.deletionVector, 'the corpus table has a DV');
  const physical = (await floe.read.parquet(path.join(await localCopy(p), decodeURIComponent(dataFile.path))).toJSON()).map((r) => Number(r.value));
  const deleted = physical.filter((v) => !visible.includes(v));
  assert.equal(deleted.length, 2, '10 rows, 2 soft-deleted');

  await (await floe.read.delta(p)).select('value + 100 AS value').write.delta(p, { mode: 'append' });
  const after = (await (await floe.read.delta(p)).toJSON()).map((r) => Number(r.value)).sort((a, b) => a - b);
  assert.deepEqual(after, [...visible, ...visible.map((v) => v + 100)].sort((a, b) => a - b));
  for (const d of deleted) assert.ok(!after.includes(d), `row ${d} stays deleted`);
  const snap = await floe.snapshot(p);
  assert.ok(snap.files.some((f) => f.deletionVector), 'the DV of the old file is kept');
  assert.ok((await commitActions(p, v0 + 1)).every((a) => !a.remove), 'an append removes nothing');

  // A checkpoint of a table with DVs keeps the DV descriptors.
  await (await DeltaTable.forPath(floe, p)).checkpoint();
  await assertValidTable(p, { fromVersion: v0 + 1 });
  const s2 = await Floe.create();
  try {
    assert.equal(await (await s2.read.delta(p)).count(), after.length, 'read from the checkpoint, the DV still applies');
  } finally {
    await s2.close();
  }

  await floe.duckdbSql('SELECT 7::INTEGER AS value').write.delta(p, { mode: 'overwrite' });
  assert.deepEqual(await (await floe.read.delta(p)).toJSON(), [{ value: 7 }]);
  const removes = (await commitActions(p, v0 + 2)).filter((a) => a.remove).map((a) => a.remove);
  assert.ok(removes.some((r) => r.deletionVector), 'removing a file with a DV names its DV');
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

// ---------------------------------------------------------------------------------------------
// Column mapping
// ---------------------------------------------------------------------------------------------

test('column mapping (name): new files use physical column names and physical partition keys', async (t) => {
  const src = corpusTable(t, 'delta-spark/kernel-defaults-resources/data-reader-partition-values-column-mapping-name');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  const before = await bag(await floe.read.delta(p));
  await (await floe.read.delta(p)).write.delta(p, { mode: 'append' });
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...before].sort());
  const snap = await floe.snapshot(p);
  const phys = new Map(snap.schema.fields.map((f) => [f.name, String(f.metadata['delta.columnMapping.physicalName'])]));
  const parts = new Set(snap.partitionColumns.map((c) => phys.get(c)!));
  const adds = (await commitActions(p, v0 + 1)).filter((a) => a.add).map((a) => a.add);
  assert.ok(adds.length > 0);
  for (const a of adds) {
    assert.deepEqual(Object.keys(a.partitionValues).sort(), [...parts].sort(), 'partition values keyed by physical name');
    const file = path.join(await localCopy(p), decodeURIComponent(a.path)).replace(/'/g, "''");
    const cols = (await floe.duckdbSql(`SELECT * FROM read_parquet('${file}', hive_partitioning = false)`).columns()).map((c) => c.name);
    const logical = snap.schema.fields.filter((f) => !snap.partitionColumns.includes(f.name));
    assert.deepEqual(cols.sort(), logical.map((f) => phys.get(f.name)!).sort(), 'data files use physical names');
  }
  await (await floe.read.delta(p)).limit(1).write.delta(p, { mode: 'overwrite' });
  assert.equal(await (await floe.read.delta(p)).count(), 1);
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

test('column mapping (id): new files carry the Parquet field ids of delta.columnMapping.id', async (t) => {
  const src = corpusTable(t, 'kernel-rs/data/partition_cm/id');
  if (!src) return;
  const p = await copyTableIn(src);
  await floe.duckdbSql("SELECT * FROM (VALUES (1::INTEGER, 'x'), (2, 'y'), (3, 'x')) t(value, category)").write.delta(p, { mode: 'append' });
  assert.deepEqual(await (await floe.read.delta(p)).orderBy('value').toJSON(), [
    { value: 1, category: 'x' }, { value: 2, category: 'y' }, { value: 3, category: 'x' },
  ]);
  const snap = await floe.snapshot(p);
  const valueField = snap.schema.fields.find((f) => f.name === 'value')!;
  for (const f of snap.files) {
    const file = path.join(await localCopy(p), decodeURIComponent(f.path));
    const schema = await floe.duckdbSql(`SELECT name, field_id FROM parquet_schema('${file.replace(/'/g, "''")}') WHERE num_children IS NULL OR num_children = 0`).toJSON();
    assert.deepEqual(schema.map((r) => [r.name, Number(r.field_id)]), [[valueField.metadata['delta.columnMapping.physicalName'], valueField.metadata['delta.columnMapping.id']]]);
  }
  await assertValidTable(p, { fromVersion: 1 });
});

test('column mapping (delta-rs): a partition column with spaces in its name', async (t) => {
  const src = corpusTable(t, 'delta-rs/table_with_column_mapping');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  const before = await bag(await floe.read.delta(p));
  await (await floe.read.delta(p)).write.delta(p, { mode: 'append' });
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...before].sort());
  const one = (await floe.read.delta(p)).filter('"Company Very Short" IS NOT NULL').limit(1);
  await one.write.delta(p, { mode: 'overwrite' });
  assert.equal(await (await floe.read.delta(p)).count(), 1);
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

// ---------------------------------------------------------------------------------------------
// Tables with checkpoints
// ---------------------------------------------------------------------------------------------

test('a Spark table with a checkpoint: appends continue its log, and floe checkpoints it again at version 20', async (t) => {
  const src = corpusTable(t, 'kernel-rs/golden/basic-with-inserts-deletes-checkpoint/delta');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  assert.equal(v0, 13);
  const before = await bag(await floe.read.delta(p));
  const one = await (await floe.read.delta(p)).orderBy('id').limit(1).toJSON();
  for (let v = v0 + 1; v <= 20; v++) await (await floe.read.delta(p)).orderBy('id').limit(1).write.delta(p, { mode: 'append' });
  assert.equal(await latest(p), 20);
  const log = await listNames(p, '_delta_log');
  assert.ok(log.includes('00000000000000000020.checkpoint.parquet'));
  assert.equal((JSON.parse(await readText(p, '_delta_log/_last_checkpoint')) as Json).version, 20);
  const expected = [...before, ...Array<string>(7).fill(JSON.stringify(one[0]))].sort();
  assert.deepEqual(await bag(await floe.read.delta(p)), expected);
  // The checkpoint alone (JSON commits before it removed) gives the same table.
  const copy = await newLocation('t', 'floe-rt-');
  await copyLocation(p, copy);
  for (let v = 0; v < 20; v++) await removeKey(copy, `_delta_log/${String(v).padStart(20, '0')}.json`);
  const s = await Floe.create();
  try {
    assert.deepEqual(await bag(await s.read.delta(copy)), expected);
  } finally {
    await s.close();
  }
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

test('dat/no_replay (log starts at a checkpoint): append and overwrite work and read back', async (t) => {
  const src = corpusTable(t, 'dat/no_replay/delta');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  const before = await bag(await floe.read.delta(p));
  await (await floe.read.delta(p)).write.delta(p, { mode: 'append' });
  assert.deepEqual(await bag(await floe.read.delta(p)), [...before, ...before].sort());
  await (await DeltaTable.forPath(floe, p)).checkpoint();
  await assertValidTable(p, { fromVersion: v0 + 1 });
  const two = (await floe.read.delta(p)).orderBy('letter', 'int', 'date').limit(2);
  const expected = await bag(two);
  await two.write.delta(p, { mode: 'overwrite' });
  assert.deepEqual(await bag(await floe.read.delta(p)), expected);
  await assertValidTable(p, { fromVersion: v0 + 1 });
});

// ---------------------------------------------------------------------------------------------
// Schema replacement keeps the protocol valid
// ---------------------------------------------------------------------------------------------

test('overwriteSchema on a table with table features keeps a valid protocol (features are never dropped)', async () => {
  // A floe table with timestamp_ntz (3/7, timestampNtz) overwritten with a schema that needs no features.
  const p = await newLocation('t', 'floe-rt-');
  await floe.duckdbSql("SELECT 1::BIGINT AS id, TIMESTAMP '2024-01-01 00:00:00' AS tn").write.delta(p);
  await floe.duckdbSql("SELECT 'x' AS k").write.delta(p, { mode: 'overwrite', overwriteSchema: true });
  const proto = (await floe.snapshot(p)).protocol;
  assert.deepEqual(await checkTable(p), [], `protocol after overwriteSchema: ${JSON.stringify(proto)}`);
  assert.ok(proto.readerFeatures?.includes('timestampNtz') && proto.writerFeatures?.includes('timestampNtz'), 'a protocol is never downgraded by a write');
});

test('createOrReplace on a table with table features keeps a valid protocol', async (t) => {
  const src = corpusTable(t, 'kernel-rs/data/table-with-dv-small');
  if (!src) return;
  const p = await copyTableIn(src);
  const v0 = await latest(p);
  await DeltaTable.createOrReplace(floe).location(p).addColumn('k', 'string').execute();
  const proto = (await floe.snapshot(p)).protocol;
  assert.deepEqual(await checkTable(p, { fromVersion: v0 + 1 }), [], `protocol after createOrReplace: ${JSON.stringify(proto)}`);
  assert.equal(await (await floe.read.delta(p)).count(), 0);
});

test('overwriteSchema on a column-mapped table is refused clearly (not yet supported) and leaves it untouched', async (t) => {
  const src = corpusTable(t, 'delta-spark/kernel-defaults-resources/data-reader-partition-values-column-mapping-name');
  if (!src) return;
  const p = await copyTableIn(src);
  const before = await listing(p);
  await rejectsWith(floe.duckdbSql("SELECT 'x' AS k, 1 AS v").write.delta(p, { mode: 'overwrite', overwriteSchema: true }), 'FLOE_UNSUPPORTED_OPERATION', /column-mapped/);
  assert.deepEqual(await listing(p), before);
});

// ---------------------------------------------------------------------------------------------
// Tables floe must refuse to write
// ---------------------------------------------------------------------------------------------

const REFUSED: [string, RegExp][] = [
  // dbr_8_1_generated_columns is written now (generated columns are implemented: sql-columns.test.ts).
  ['delta-rs/issue-2152', /identityColumns/],
  // kernel-rs/data/crc-full (rowTracking) is refused earlier, at read: its .crc contradicts its log.
  ['delta-rs/table_with_liquid_clustering', /rowTracking/],
  ['delta-rs/checkpoint-v2-table', /v2Checkpoint|identityColumns/],
];

test('tables with writer features floe does not implement: append and overwrite fail and leave the table untouched', async (t) => {
  for (const [rel, feature] of REFUSED) {
    const src = corpusTable(t, rel);
    if (!src) return;
    const p = await copyTableIn(src);
    const before = await listing(p);
    const own = await floe.read.delta(p); // rows shaped like the table's
    await rejectsWith(own.write.delta(p, { mode: 'append' }), 'DELTA_UNSUPPORTED_FEATURES_FOR_WRITE', feature);
    await rejectsWith(own.write.delta(p, { mode: 'overwrite' }), 'DELTA_UNSUPPORTED_FEATURES_FOR_WRITE', feature);
    await rejectsWith(own.write.delta(p, { mode: 'append', mergeSchema: true }), 'DELTA_UNSUPPORTED_FEATURES_FOR_WRITE', feature);
    assert.deepEqual(await listing(p), before, `${rel}: nothing written`);
  }
});

/**
 * Tables whose unsupported features bind every write, whatever the schema (row tracking, clustering,
 * V2 checkpoints). Generated and identity columns only bind writes while the schema has them, so a
 * schema replacement that drops them is not judged here.
 */
const REFUSED_ALWAYS = REFUSED.filter(([rel]) => !/generated|issue-2152/.test(rel));

test('tables with writer features floe does not implement: overwriteSchema and createOrReplace fail too', async (t) => {
  const problems: string[] = [];
  for (const [rel, feature] of REFUSED_ALWAYS) {
    const src = corpusTable(t, rel);
    if (!src) return;
    const p = await copyTableIn(src);
    const before = await listing(p);
    for (const [what, run] of [
      ['overwriteSchema', () => floe.duckdbSql('SELECT 1 AS x').write.delta(p, { mode: 'overwrite', overwriteSchema: true })],
      ['createOrReplace', () => DeltaTable.createOrReplace(floe).location(p).addColumn('x', 'long').execute()],
    ] as [string, () => Promise<unknown>][]) {
      try {
        await run();
        problems.push(`${rel}: ${what} succeeded`);
      } catch (e) {
        if (!(e instanceof FloeError) || e.code !== 'DELTA_UNSUPPORTED_FEATURES_FOR_WRITE' || !feature.test(e.message)) problems.push(`${rel}: ${what} failed with ${String(e)}`);
      }
    }
    if (JSON.stringify(await listing(p)) !== JSON.stringify(before)) problems.push(`${rel}: the table was changed`);
  }
  assert.deepEqual(problems, []);
});

test('tables with writer features floe does not implement: a checkpoint (a write to _delta_log) is refused too', async (t) => {
  const problems: string[] = [];
  for (const [rel] of REFUSED_ALWAYS) {
    const src = corpusTable(t, rel);
    if (!src) return;
    const p = await copyTableIn(src);
    const before = await listing(p);
    try {
      await (await DeltaTable.forPath(floe, p)).checkpoint();
      problems.push(`${rel}: checkpoint written`);
    } catch (e) {
      if (!(e instanceof FloeError) || !['DELTA_UNSUPPORTED_FEATURES_FOR_WRITE', 'FLOE_UNSUPPORTED_OPERATION'].includes(e.code)) problems.push(`${rel}: checkpoint failed with ${String(e)}`);
    }
    if (JSON.stringify(await listing(p)) !== JSON.stringify(before)) problems.push(`${rel}: the table was changed`);
  }
  assert.deepEqual(problems, []);
});
