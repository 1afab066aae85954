/**
 * Which columns get per-file stats: `delta.dataSkippingStatsColumns` (named columns, nested paths,
 * backticks, case-insensitive, every leaf of a named struct) over `delta.dataSkippingNumIndexedCols`
 * (first N leaves depth first, arrays and maps counting as one, -1 = all); Spark's validation
 * errors on CREATE and ALTER; RENAME / DROP COLUMN keep the list in step; OPTIMIZE's Z-order check
 * follows the list.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStats } from '../core/actions.js';
import { parseStatsColumnNames, statsColumnsAfter } from '../core/stats-columns.js';
import { DeltaTable } from '../table/delta-table.js';
import { assertValidTable } from './protocol-checker.js';
import { type SqlSession, sqlSession } from './sql-helpers.js';

let s: SqlSession;
before(async () => {
  s = await sqlSession();
});
after(async () => {
  await s.close();
});

async function location(table: string): Promise<string> {
  const [d] = await s.rows(`DESCRIBE DETAIL ${table}`);
  return String(d!.location).replace(/^file:\/\//, '');
}

/** The stats of the table's files: minValues keys (nested as dotted paths) of the newest file. */
async function statsOf(table: string): Promise<{ min: string[]; nulls: string[]; numRecords: number }> {
  const snap = await s.floe.deltaLog(await location(table)).snapshot();
  const add = snap.files[snap.files.length - 1]!;
  const st = parseStats(add.stats)!;
  const keys = (o: Record<string, unknown> | undefined, prefix = ''): string[] =>
    Object.entries(o ?? {}).flatMap(([k, v]) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]));
  return { min: keys(st.minValues as Record<string, unknown>).sort(), nulls: keys(st.nullCount as Record<string, unknown>).sort(), numRecords: Number(st.numRecords) };
}

test('parsing the column list: nested paths, backticks, malformed lists', () => {
  assert.deepEqual(parseStatsColumnNames('lower,UPPER,`a.dot`,a.nested'), [['lower'], ['UPPER'], ['a.dot'], ['a', 'nested']]);
  assert.deepEqual(parseStatsColumnNames(' a , `b``c` . d '), [['a'], ['b`c', 'd']]);
  assert.deepEqual(parseStatsColumnNames(''), []);
  for (const bad of ['a,,b', 'a.', '`a', 'a b', ',a']) assert.equal(parseStatsColumnNames(bad), null, bad);
  assert.equal(statsColumnsAfter({ 'delta.dataSkippingStatsColumns': 'a,s.x,s.y' }, { rename: { from: ['s'], to: ['t'] } }), 'a,t.x,t.y');
  assert.equal(statsColumnsAfter({ 'delta.dataSkippingStatsColumns': 'a,s.x,s.y' }, { drop: [['S', 'X']] }), 'a,s.y');
  assert.equal(statsColumnsAfter({ 'delta.dataSkippingStatsColumns': 'a' }, { drop: [['b']] }), null);
  assert.equal(statsColumnsAfter({}, { drop: [['b']] }), null);
});

test('dataSkippingStatsColumns: stats for exactly the named columns (nested, case-insensitive), on every write path', async () => {
  await s.run(`CREATE TABLE sc (id INT, name STRING, s STRUCT<x: INT, y: STRING>, v DOUBLE, p STRING) PARTITIONED BY (p)
    TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'NAME, s.x, v', 'delta.enableChangeDataFeed' = 'true')`);
  await s.run(`INSERT INTO sc VALUES (1, 'a', named_struct('x', 10, 'y', 'q'), 1.5, 'k'), (2, NULL, named_struct('x', 20, 'y', 'r'), 2.5, 'k')`);
  let st = await statsOf('sc');
  assert.deepEqual(st.min, ['name', 's.x', 'v']);
  assert.deepEqual(st.nulls, ['name', 's.x', 'v']);
  assert.equal(st.numRecords, 2);
  await s.run(`UPDATE sc SET v = v + 1 WHERE id = 1`);
  st = await statsOf('sc');
  assert.deepEqual(st.min, ['name', 's.x', 'v'], 'UPDATE rewrites with the same stats columns');
  // A named struct gives all its leaves.
  await s.run(`ALTER TABLE sc SET TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 's')`);
  await s.run(`INSERT INTO sc VALUES (3, 'c', named_struct('x', 30, 'y', 't'), 3.5, 'k')`);
  assert.deepEqual((await statsOf('sc')).min, ['s.x', 's.y']);
  // The list wins over the number of indexed columns.
  await s.run(`ALTER TABLE sc SET TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '1')`);
  await s.run(`INSERT INTO sc VALUES (4, 'd', named_struct('x', 40, 'y', 'u'), 4.5, 'k')`);
  assert.deepEqual((await statsOf('sc')).min, ['s.x', 's.y']);
  // Filters on a column with stats still skip files.
  const rows = await s.rows(`SELECT id FROM sc WHERE s.x = 30`);
  assert.deepEqual(rows.map((r) => Number(r.id)), [3]);
  await assertValidTable(await location('sc'));
});

test('dataSkippingNumIndexedCols: first N leaves depth first, arrays count as one, -1 means all', async () => {
  await s.run(`CREATE TABLE ni (a INT, arr ARRAY<INT>, b INT, s STRUCT<x: INT, y: INT>, c STRING) TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '2')`);
  const insert = (t: string): Promise<unknown> => s.run(`INSERT INTO ${t} VALUES (1, array(1, 2), 2, named_struct('x', 3, 'y', 4), 'z')`);
  await insert('ni');
  assert.deepEqual((await statsOf('ni')).min, ['a'], 'arr is the second indexed column (no min/max), so b gets none');
  await s.run(`ALTER TABLE ni SET TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '4')`);
  await insert('ni');
  assert.deepEqual((await statsOf('ni')).min, ['a', 'b', 's.x']);
  await s.run(`ALTER TABLE ni SET TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '-1')`);
  await insert('ni');
  assert.deepEqual((await statsOf('ni')).min, ['a', 'b', 'c', 's.x', 's.y'], '-1 collects stats for every column');
  await s.run(`ALTER TABLE ni SET TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '0')`);
  await insert('ni');
  const st = await statsOf('ni');
  assert.deepEqual([st.min, st.numRecords], [[], 1], '0: numRecords only');
});

test("Spark's errors for bad stats properties, on CREATE and on ALTER", async () => {
  await s.fails(`CREATE TABLE e1 (a INT, p STRING) PARTITIONED BY (p) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'p')`, 'DELTA_COLUMN_DATA_SKIPPING_NOT_SUPPORTED_PARTITIONED_COLUMN', /partition column 'p'/);
  await s.fails(`CREATE TABLE e2 (a INT) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'a, nope')`, 'DELTA_COLUMN_NOT_FOUND', /'nope'/);
  await s.fails(`CREATE TABLE e3 (a INT, f BOOLEAN) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'f')`, 'DELTA_COLUMN_DATA_SKIPPING_NOT_SUPPORTED_TYPE', /'f' of type boolean/);
  await s.fails(`CREATE TABLE e4 (a INT, s STRUCT<x: INT, m: MAP<STRING, INT>>) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 's')`, 'DELTA_COLUMN_DATA_SKIPPING_NOT_SUPPORTED_TYPE', /'s\.m' of type map/);
  await s.fails(`CREATE TABLE e5 (a INT, s STRUCT<x: INT>) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 's, s.x')`, 'DELTA_DUPLICATE_DATA_SKIPPING_COLUMNS', /s\.x/);
  await s.fails(`CREATE TABLE e6 (a INT) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'a,,')`, 'DELTA_INVALID_TABLE_PROPERTY_VALUE', /comma-separated list/);
  await s.fails(`CREATE TABLE e7 (a INT) TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = '-2')`, 'DELTA_INVALID_TABLE_PROPERTY_VALUE', /larger than or equal to -1/);
  await s.run(`CREATE TABLE e8 (a INT, f BOOLEAN)`);
  await s.fails(`ALTER TABLE e8 SET TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'f')`, 'DELTA_COLUMN_DATA_SKIPPING_NOT_SUPPORTED_TYPE');
  await s.fails(`ALTER TABLE e8 SET TBLPROPERTIES ('delta.dataSkippingNumIndexedCols' = 'many')`, 'DELTA_INVALID_TABLE_PROPERTY_VALUE');
  const [d] = await s.rows(`DESCRIBE DETAIL e8`);
  assert.deepEqual(d!.properties, {}, 'nothing was committed');
});

test('RENAME and DROP COLUMN keep the list in step (column mapping; stats keyed by physical names)', async () => {
  await s.run(`CREATE TABLE rn (id INT, a INT, b STRING) TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.dataSkippingStatsColumns' = 'a,b')`);
  await s.run(`ALTER TABLE rn RENAME COLUMN a TO a2`);
  let [d] = await s.rows(`DESCRIBE DETAIL rn`);
  assert.equal((d!.properties as Record<string, string>)['delta.dataSkippingStatsColumns'], 'a2,b');
  await s.run(`ALTER TABLE rn DROP COLUMN b`);
  [d] = await s.rows(`DESCRIBE DETAIL rn`);
  assert.equal((d!.properties as Record<string, string>)['delta.dataSkippingStatsColumns'], 'a2');
  await s.run(`INSERT INTO rn VALUES (1, 5)`);
  const snap = await s.floe.deltaLog(await location('rn')).snapshot();
  const a2 = snap.schema.fields.find((f) => f.name === 'a2')!;
  const physical = String(a2.metadata['delta.columnMapping.physicalName']);
  assert.match(physical, /^col-/);
  assert.deepEqual((await statsOf('rn')).min, [physical]);
  assert.deepEqual((await s.rows(`SELECT * FROM rn WHERE a2 = 5`)).length, 1);
});

test("OPTIMIZE ZORDER BY's stats check follows dataSkippingStatsColumns", async () => {
  await s.run(`CREATE TABLE zs (x INT, y INT) TBLPROPERTIES ('delta.dataSkippingStatsColumns' = 'y')`);
  await s.run(`INSERT INTO zs VALUES (1, 2)`);
  await s.run(`INSERT INTO zs VALUES (3, 4)`);
  const t = await DeltaTable.forPath(s.floe, await location('zs'));
  await assert.rejects(t.optimize({ zOrderBy: ['x'] }), /DELTA_ZORDERING_ON_COLUMN_WITHOUT_STATS|no min\/max statistics/);
  const r = await t.optimize({ zOrderBy: ['y'] });
  assert.ok((r.version ?? -1) > 0, 'OPTIMIZE committed');
});
