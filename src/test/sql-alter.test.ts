/**
 * Schema-changing DDL through executeSql: ADD COLUMNS, enabling column mapping, RENAME / DROP COLUMN,
 * ADD / DROP CONSTRAINT, ALTER COLUMN (SET / DROP NOT NULL, COMMENT, position), CONVERT TO DELTA;
 * each followed by reads (SQL, floe.read.delta, the change feed) and writes, and the error codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StructField } from '../core/schema.js';
import { addColumns, renameColumn, withColumnMappingMode } from '../table/alter.js';
import { tempDir } from './helpers.js';
import { newRoot, placeFolder } from './store.js';
import { sqlSession, type SqlSession } from './sql-helpers.js';

async function schemaOf(s: SqlSession, table: string): Promise<StructField[]> {
  const loc = (await s.rows(`DESCRIBE DETAIL ${table}`))[0]!.location as string;
  return (await s.floe.snapshot(loc)).schema.fields;
}

async function lastCommit(s: SqlSession, table: string): Promise<Record<string, unknown>> {
  return (await s.rows(`DESCRIBE HISTORY ${table} LIMIT 1`))[0]!;
}

test('ADD COLUMNS: appended nullable columns, comments, positions, nested struct fields; old files read as NULL', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, s STRUCT<a: INT>) USING delta${await s.at('t')}; INSERT INTO t VALUES (1, named_struct('a', 10))`);
    await s.run("ALTER TABLE t ADD COLUMNS (name STRING COMMENT 'who', score DOUBLE)");
    const h = await lastCommit(s, 't');
    assert.equal(h.operation, 'ADD COLUMNS');
    assert.match(String((h.operationParameters as Record<string, string>).columns), /"name":"name"/);
    assert.deepEqual((await s.rows('DESCRIBE t')).map((r) => [r.col_name, r.data_type, r.comment]), [
      ['id', 'int', null], ['s', 'struct<a:int>', null], ['name', 'string', 'who'], ['score', 'double', null],
    ]);
    await s.run("INSERT INTO t VALUES (2, named_struct('a', 20), 'b', 1.5)");
    assert.deepEqual(await s.rows('SELECT id, name, score FROM t ORDER BY id'), [{ id: 1, name: null, score: null }, { id: 2, name: 'b', score: 1.5 }]);
    await s.run('ALTER TABLE t ADD COLUMN first_col BIGINT FIRST');
    await s.run('ALTER TABLE t ADD COLUMNS (after_id STRING AFTER id)');
    assert.deepEqual((await schemaOf(s, 't')).map((f) => f.name), ['first_col', 'id', 'after_id', 's', 'name', 'score']);
    // nested: a struct field
    await s.run('ALTER TABLE t ADD COLUMNS (s.b STRING)');
    assert.deepEqual(await s.rows('SELECT id, s FROM t ORDER BY id'), [{ id: 1, s: { a: 10, b: null } }, { id: 2, s: { a: 20, b: null } }]);
    const df = await s.floe.read.delta(String((await s.rows('DESCRIBE DETAIL t'))[0]!.location));
    assert.equal((await df.toJSON()).length, 2);
    // errors
    await s.fails('ALTER TABLE t ADD COLUMNS (name INT)', 'FIELD_ALREADY_EXISTS');
    await s.fails('ALTER TABLE t ADD COLUMNS (x INT NOT NULL)', 'DELTA_OPERATION_NOT_ALLOWED', /NOT NULL/);
    await s.fails('ALTER TABLE t ADD COLUMNS (nope.x INT)', 'DELTA_COLUMN_NOT_FOUND');
    await s.fails('ALTER TABLE t ADD COLUMNS (id.x INT)', 'DELTA_UNSUPPORTED_NESTED_COLUMN');
    await s.fails('ALTER TABLE t ADD COLUMNS (x INT AFTER nope)', 'DELTA_COLUMN_NOT_FOUND');
    await s.fails('ALTER TABLE t ADD COLUMNS (x INTERVAL)', 'FLOE_SQL_ANALYSIS_ERROR');
    await s.fails('ALTER TABLE t ADD COLUMNS (x INT DEFAULT 1)', 'FLOE_SQL_ANALYSIS_ERROR', /DEFAULT/);
    await s.fails('ALTER TABLE nope ADD COLUMNS (x INT)', 'TABLE_OR_VIEW_NOT_FOUND');
    // timestamp_ntz upgrades the protocol to the table feature
    await s.run('ALTER TABLE t ADD COLUMNS (ts TIMESTAMP_NTZ)');
    const p = Object.fromEntries((await s.rows('SHOW TBLPROPERTIES t')).map((r) => [r.key, r.value]));
    assert.equal(p['delta.minWriterVersion'], '7');
  } finally {
    await s.close();
  }
});

test("SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name') upgrades an existing table as Spark does", async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, s STRUCT<a: INT, b: ARRAY<STRUCT<c: STRING>>>, p STRING) USING delta${await s.at('t')} PARTITIONED BY (p)`);
    await s.run("INSERT INTO t VALUES (1, named_struct('a', 1, 'b', array(named_struct('c', 'x'))), 'u')");
    await s.run("ALTER TABLE t SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')");
    const fields = await schemaOf(s, 't');
    const ids: number[] = [];
    const names: string[] = [];
    const walk = (fs: StructField[]): void => {
      for (const f of fs) {
        ids.push(f.metadata['delta.columnMapping.id'] as number);
        assert.equal(f.metadata['delta.columnMapping.physicalName'], f.name);
        names.push(f.name);
        const t = f.type;
        if (typeof t !== 'string' && t.type === 'struct') walk(t.fields);
        if (typeof t !== 'string' && t.type === 'array' && typeof t.elementType !== 'string' && t.elementType.type === 'struct') walk(t.elementType.fields);
      }
    };
    walk(fields);
    assert.deepEqual(names, ['id', 's', 'a', 'b', 'c', 'p']);
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6]);
    const props = Object.fromEntries((await s.rows('SHOW TBLPROPERTIES t')).map((r) => [r.key, r.value]));
    assert.equal(props['delta.columnMapping.mode'], 'name');
    assert.equal(props['delta.columnMapping.maxColumnId'], '6');
    assert.equal(props['delta.minReaderVersion'], '2');
    assert.equal(props['delta.minWriterVersion'], '5');
    assert.equal((await lastCommit(s, 't')).operation, 'SET TBLPROPERTIES');
    // the data reads the same, and writes keep working
    await s.run("INSERT INTO t VALUES (2, named_struct('a', 2, 'b', array()), 'v')");
    assert.deepEqual(await s.rows('SELECT id, s.a AS a, p FROM t ORDER BY id'), [{ id: 1, a: 1, p: 'u' }, { id: 2, a: 2, p: 'v' }]);
    await s.fails("ALTER TABLE t SET TBLPROPERTIES ('delta.columnMapping.mode' = 'none')", 'DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE');
    await s.fails("ALTER TABLE t SET TBLPROPERTIES ('delta.columnMapping.mode' = 'id')", 'DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE');
    // Spark's documented recipe (protocol versions alongside the mode), with another property in the same statement
    await s.run(`CREATE TABLE u (id INT) USING delta${await s.at('u')}; INSERT INTO u VALUES (1)`);
    await s.run("ALTER TABLE u SET TBLPROPERTIES ('delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5', 'delta.columnMapping.mode' = 'name', 'owner' = 'me')");
    const pu = Object.fromEntries((await s.rows('SHOW TBLPROPERTIES u')).map((r) => [r.key, r.value]));
    assert.equal(pu['delta.columnMapping.mode'], 'name');
    assert.equal(pu.owner, 'me');
    assert.equal(pu['delta.minReaderVersion'], '2');
    // none → id only on a table without data (TypeScript function)
    assert.throws(() => withColumnMappingMode({ id: 'x', format: { provider: 'parquet', options: {} }, schemaString: '{"type":"struct","fields":[]}', partitionColumns: [], configuration: {} }, 'id', true), /DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE|not supported/);
    // with deletion vectors on, the upgrade uses table features
    await s.run(`CREATE TABLE dv (id INT) USING delta${await s.at('dv')} TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')`);
    await s.run("ALTER TABLE dv SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')");
    const d = (await s.rows('DESCRIBE DETAIL dv'))[0]!;
    assert.ok((d.tableFeatures as string[]).includes('columnMapping'), JSON.stringify(d.tableFeatures));
  } finally {
    await s.close();
  }
});

test('RENAME COLUMN / DROP COLUMN need column mapping; with it, reads, writes, time travel and the change feed follow', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, name STRING, p STRING, s STRUCT<x: INT, y: INT>) USING delta${await s.at('t')} PARTITIONED BY (p) TBLPROPERTIES (delta.enableChangeDataFeed = true)`);
    await s.run("INSERT INTO t VALUES (1, 'a', 'u', named_struct('x', 1, 'y', 2)), (2, 'b', 'v', named_struct('x', 3, 'y', 4))");
    await s.fails('ALTER TABLE t RENAME COLUMN name TO full_name', 'DELTA_UNSUPPORTED_RENAME_COLUMN', /columnMapping\.mode/);
    await s.fails('ALTER TABLE t DROP COLUMN name', 'DELTA_UNSUPPORTED_DROP_COLUMN', /columnMapping\.mode/);
    await s.run("ALTER TABLE t SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')"); // v2
    await s.run('ALTER TABLE t RENAME COLUMN name TO full_name'); // v3
    let h = await lastCommit(s, 't');
    assert.equal(h.operation, 'RENAME COLUMN');
    assert.deepEqual(h.operationParameters, { oldColumnPath: 'name', newColumnPath: 'full_name' });
    assert.deepEqual(await s.rows('SELECT id, full_name FROM t ORDER BY id'), [{ id: 1, full_name: 'a' }, { id: 2, full_name: 'b' }]);
    const f = (await schemaOf(s, 't')).find((x) => x.name === 'full_name')!;
    assert.equal(f.metadata['delta.columnMapping.physicalName'], 'name'); // files unchanged
    // a partition column and a nested field can be renamed too
    await s.run('ALTER TABLE t RENAME COLUMN p TO region'); // v4
    await s.run("ALTER TABLE t ALTER COLUMN id COMMENT 'key'"); // v5
    assert.deepEqual(await s.rows('SELECT id, region, s FROM t ORDER BY id'), [{ id: 1, region: 'u', s: { x: 1, y: 2 } }, { id: 2, region: 'v', s: { x: 3, y: 4 } }]);
    assert.deepEqual((await s.rows('DESCRIBE DETAIL t'))[0]!.partitionColumns, ['region']);
    await s.run("INSERT INTO t VALUES (3, 'c', 'u', named_struct('x', 5, 'y', 6))"); // v6
    assert.deepEqual(await s.rows("SELECT id, full_name FROM t WHERE region = 'u' ORDER BY id"), [{ id: 1, full_name: 'a' }, { id: 3, full_name: 'c' }]);
    // floe.read.delta directly, and time travel to before the rename (the old name)
    const loc = String((await s.rows('DESCRIBE DETAIL t'))[0]!.location);
    assert.deepEqual((await (await s.floe.read.delta(loc)).toJSON()).map((r) => Object.keys(r)), [['id', 'full_name', 'region', 's'], ['id', 'full_name', 'region', 's'], ['id', 'full_name', 'region', 's']]);
    assert.deepEqual(await s.rows('SELECT id, name FROM t VERSION AS OF 1 ORDER BY id'), [{ id: 1, name: 'a' }, { id: 2, name: 'b' }]);
    // the change feed after the rename reads; across it is refused as Spark does
    assert.deepEqual(await s.rows("SELECT id, full_name, _change_type FROM table_changes('t', 6)"), [{ id: 3, full_name: 'c', _change_type: 'insert' }]);
    await s.fails("SELECT * FROM table_changes('t', 1)", 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE');
    // UPDATE / DELETE / MERGE by the new names
    await s.run("UPDATE t SET full_name = 'A' WHERE id = 1");
    await s.run('DELETE FROM t WHERE id = 2');
    await s.run("MERGE INTO t USING (SELECT 3 AS id, 'C' AS n) src ON t.id = src.id WHEN MATCHED THEN UPDATE SET full_name = src.n");
    assert.deepEqual(await s.rows('SELECT id, full_name FROM t ORDER BY id'), [{ id: 1, full_name: 'A' }, { id: 3, full_name: 'C' }]);
    // DROP COLUMN(S)
    await s.run('ALTER TABLE t DROP COLUMN full_name');
    h = await lastCommit(s, 't');
    assert.equal(h.operation, 'DROP COLUMNS');
    assert.deepEqual(h.operationParameters, { columns: '["full_name"]' });
    assert.deepEqual(await s.rows('SELECT id, region, s.y AS y FROM t ORDER BY id'), [{ id: 1, region: 'u', y: 2 }, { id: 3, region: 'u', y: 6 }]);
    await s.run('ALTER TABLE t DROP COLUMNS (s.y)');
    assert.deepEqual(await s.rows('SELECT s FROM t ORDER BY id'), [{ s: { x: 1 } }, { s: { x: 5 } }]);
    // re-adding a dropped name gives a new column (new physical name): old values do not come back
    await s.run('ALTER TABLE t ADD COLUMNS (full_name STRING)');
    const nf = (await schemaOf(s, 't')).find((x) => x.name === 'full_name')!;
    assert.match(String(nf.metadata['delta.columnMapping.physicalName']), /^col-[0-9a-f-]{36}$/);
    assert.equal(nf.metadata['delta.columnMapping.id'], 7); // after maxColumnId 6: ids are never reused
    assert.deepEqual(await s.rows('SELECT id, full_name FROM t ORDER BY id'), [{ id: 1, full_name: null }, { id: 3, full_name: null }]);
    await s.run("INSERT INTO t (id, region, full_name) VALUES (9, 'u', 'new')");
    assert.deepEqual(await s.rows('SELECT id, full_name FROM t WHERE id = 9'), [{ id: 9, full_name: 'new' }]);
    // errors
    await s.fails('ALTER TABLE t DROP COLUMN region', 'DELTA_UNSUPPORTED_DROP_PARTITION_COLUMN');
    await s.fails('ALTER TABLE t DROP COLUMN nope', 'DELTA_COLUMN_NOT_FOUND');
    await s.run('ALTER TABLE t DROP COLUMN IF EXISTS nope');
    await s.fails('ALTER TABLE t RENAME COLUMN id TO region', 'FIELD_ALREADY_EXISTS');
    await s.fails('ALTER TABLE t RENAME COLUMN nope TO x', 'DELTA_COLUMN_NOT_FOUND');
    await s.fails('ALTER TABLE t RENAME TO other', 'FLOE_SQL_ANALYSIS_ERROR', /RENAME TO/);
    await s.fails('ALTER TABLE t DROP COLUMNS (s.x)', 'DELTA_DROP_COLUMN_ON_SINGLE_FIELD_SCHEMA');
  } finally {
    await s.close();
  }
});

test('column mapping: a nested field added later reads as NULL from files written before it (also after a nested rename)', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE n (id INT, s STRUCT<a: INT, t: STRUCT<c: INT>>) USING delta${await s.at('n')} TBLPROPERTIES ('delta.columnMapping.mode' = 'name')`);
    await s.run("INSERT INTO n VALUES (1, named_struct('a', 1, 't', named_struct('c', 2)))");
    await s.run('ALTER TABLE n ADD COLUMNS (s.b STRING, s.t.d STRING)');
    // Only the old file exists: the new nested fields are NULL, not a binder error.
    assert.deepEqual(await s.rows('SELECT id, s FROM n'), [{ id: 1, s: { a: 1, t: { c: 2, d: null }, b: null } }]);
    await s.run("INSERT INTO n VALUES (2, named_struct('a', 10, 't', named_struct('c', 20, 'd', 'w'), 'b', 'x'))");
    await s.run('ALTER TABLE n RENAME COLUMN s.a TO aa');
    assert.deepEqual(await s.rows('SELECT id, s FROM n ORDER BY id'), [{ id: 1, s: { aa: 1, t: { c: 2, d: null }, b: null } }, { id: 2, s: { aa: 10, t: { c: 20, d: 'w' }, b: 'x' } }]);
    assert.deepEqual(await s.rows('SELECT s.b AS b FROM n VERSION AS OF 2'), [{ b: null }]);
  } finally {
    await s.close();
  }
});

test('CREATE TABLE with column mapping gives ids and physical names; DROP COLUMN then works', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE m (id INT, a STRING, b STRING) USING delta${await s.at('m')} TBLPROPERTIES ('delta.columnMapping.mode' = 'name')`);
    const fields = await schemaOf(s, 'm');
    assert.deepEqual(fields.map((f) => f.metadata['delta.columnMapping.id']), [1, 2, 3]);
    assert.ok(fields.every((f) => /^col-/.test(String(f.metadata['delta.columnMapping.physicalName']))));
    await s.run("INSERT INTO m VALUES (1, 'x', 'y')");
    await s.run('ALTER TABLE m DROP COLUMNS (a, b)');
    assert.deepEqual(await s.rows('SELECT * FROM m'), [{ id: 1 }]);
    await s.fails('ALTER TABLE m DROP COLUMN id', 'DELTA_DROP_COLUMN_ON_SINGLE_FIELD_SCHEMA');
  } finally {
    await s.close();
  }
});

test('ADD / DROP CONSTRAINT … CHECK: validated against existing rows, enforced on writes, writer version 3', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, qty INT, d DATE) USING delta${await s.at('t')}`);
    await s.run("INSERT INTO t VALUES (1, 5, DATE'2024-01-01'), (2, -1, DATE'2024-02-01')");
    await s.fails('ALTER TABLE t ADD CONSTRAINT qty_positive CHECK (qty > 0)', 'DELTA_NEW_CHECK_CONSTRAINT_VIOLATION', /1 rows/);
    await s.run('DELETE FROM t WHERE qty < 0');
    await s.run('ALTER TABLE t ADD CONSTRAINT qty_Positive CHECK (qty > 0)');
    const h = await lastCommit(s, 't');
    assert.equal(h.operation, 'ADD CONSTRAINT');
    assert.deepEqual(h.operationParameters, { name: 'qty_positive', expr: 'qty > 0' });
    const props = Object.fromEntries((await s.rows('SHOW TBLPROPERTIES t')).map((r) => [r.key, r.value]));
    assert.equal(props['delta.constraints.qty_positive'], 'qty > 0');
    assert.equal(props['delta.minWriterVersion'], '3');
    await s.fails('INSERT INTO t VALUES (3, 0, NULL)', 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
    await s.run('INSERT INTO t VALUES (3, 7, NULL)');
    await s.run("ALTER TABLE t ADD CONSTRAINT date_ok CHECK (d IS NULL OR d > '2020-01-01')");
    await s.fails("ALTER TABLE t ADD CONSTRAINT QTY_POSITIVE CHECK (qty > 1)", 'DELTA_CONSTRAINT_ALREADY_EXISTS');
    await s.fails('ALTER TABLE t ADD CONSTRAINT c2 CHECK (nope > 1)', 'FLOE_SQL_ANALYSIS_ERROR');
    await s.fails("ALTER TABLE t ADD CONSTRAINT c3 CHECK (qty > (SELECT count(*) FROM read_parquet('/etc/x')))", /FLOE_UNSAFE_EXPRESSION|FLOE_SQL_ANALYSIS_ERROR/);
    await s.fails('ALTER TABLE t ADD CONSTRAINT c4 PRIMARY KEY (id)', 'FLOE_SQL_ANALYSIS_ERROR', /PRIMARY KEY/);
    // constraints keep their columns from being renamed / dropped
    await s.run("ALTER TABLE t SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')");
    await s.fails('ALTER TABLE t RENAME COLUMN qty TO quantity', 'DELTA_CONSTRAINT_DEPENDENT_COLUMN_CHANGE', /qty_positive/);
    await s.fails('ALTER TABLE t DROP COLUMN qty', 'DELTA_CONSTRAINT_DEPENDENT_COLUMN_CHANGE');
    await s.run('ALTER TABLE t DROP CONSTRAINT qty_positive');
    assert.equal((await lastCommit(s, 't')).operation, 'DROP CONSTRAINT');
    await s.run('INSERT INTO t VALUES (4, -5, NULL)');
    await s.run('ALTER TABLE t RENAME COLUMN qty TO quantity');
    await s.fails('ALTER TABLE t DROP CONSTRAINT qty_positive', 'DELTA_CONSTRAINT_DOES_NOT_EXIST', /IF EXISTS/);
    await s.run('ALTER TABLE t DROP CONSTRAINT IF EXISTS qty_positive');
    assert.deepEqual(await s.rows('SELECT id, quantity FROM t ORDER BY id'), [{ id: 1, quantity: 5 }, { id: 3, quantity: 7 }, { id: 4, quantity: -5 }]);
  } finally {
    await s.close();
  }
});

test('ALTER COLUMN: SET NOT NULL (validated) / DROP NOT NULL, COMMENT, FIRST / AFTER, CHANGE COLUMN', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, name STRING, v DOUBLE) USING delta${await s.at('t')}; INSERT INTO t VALUES (1, 'a', 1.0), (2, NULL, 2.0)`);
    await s.fails('ALTER TABLE t ALTER COLUMN name SET NOT NULL', 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED', /name/);
    await s.run('ALTER TABLE t ALTER COLUMN id SET NOT NULL');
    assert.equal((await lastCommit(s, 't')).operation, 'CHANGE COLUMN');
    assert.equal((await schemaOf(s, 't'))[0]!.nullable, false);
    await s.fails('INSERT INTO t VALUES (NULL, 1, 1)', 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
    await s.run('ALTER TABLE t ALTER COLUMN id DROP NOT NULL');
    await s.run('INSERT INTO t VALUES (NULL, NULL, 3.0)');
    await s.run("ALTER TABLE t ALTER COLUMN name COMMENT 'the name'");
    await s.run("ALTER TABLE t CHANGE COLUMN v v DOUBLE COMMENT 'value' FIRST");
    assert.deepEqual((await s.rows('DESCRIBE t')).map((r) => [r.col_name, r.comment]), [['v', 'value'], ['id', null], ['name', 'the name']]);
    await s.run('ALTER TABLE t ALTER COLUMN v AFTER name');
    assert.deepEqual((await schemaOf(s, 't')).map((f) => f.name), ['id', 'name', 'v']);
    assert.deepEqual(await s.rows('SELECT * FROM t WHERE id = 1'), [{ id: 1, name: 'a', v: 1 }]);
    await s.fails('ALTER TABLE t ALTER COLUMN v TYPE BIGINT', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP');
    await s.run('ALTER TABLE t ALTER COLUMN v TYPE DOUBLE'); // same type: allowed
    await s.fails('ALTER TABLE t CHANGE COLUMN v w DOUBLE', 'FLOE_SQL_ANALYSIS_ERROR', /RENAME COLUMN/);
    await s.fails('ALTER TABLE t ALTER COLUMN nope SET NOT NULL', 'DELTA_COLUMN_NOT_FOUND');
    await s.fails('ALTER TABLE t ALTER COLUMN v', 'FLOE_SQL_PARSE_ERROR');
    await s.fails('ALTER TABLE t ALTER COLUMN v SET DEFAULT 1', 'WRONG_COLUMN_DEFAULTS_FOR_DELTA_FEATURE_NOT_ENABLED');
  } finally {
    await s.close();
  }
});

test('CONVERT TO DELTA parquet.`path`: schema, stats, partitions from folders; refuses a Delta table', async () => {
  const s = await sqlSession();
  try {
    // The Parquet files are written locally, then placed in the test store (uploaded on a remote store).
    const local = await tempDir('floe-convert-');
    const e = s.floe.engine;
    await fs.mkdir(path.join(local, 'year=2023', 'region=eu'), { recursive: true });
    await fs.mkdir(path.join(local, 'year=2024', 'region=us%2Fwest'), { recursive: true });
    await e.run(`COPY (SELECT i::INT AS id, 'n' || i AS name, (i * 1.5)::DOUBLE AS amount FROM range(1, 4) r(i)) TO '${path.join(local, 'year=2023', 'region=eu', 'a.parquet')}' (FORMAT parquet)`);
    await e.run(`COPY (SELECT i::INT AS id, NULL::VARCHAR AS name, (i * 1.5)::DOUBLE AS amount FROM range(10, 12) r(i)) TO '${path.join(local, 'year=2024', 'region=us%2Fwest', 'b.parquet')}' (FORMAT parquet)`);
    const dir = await placeFolder(local);
    await s.fails(`CONVERT TO DELTA parquet.\`${dir}\``, 'DELTA_UNEXPECTED_NUM_PARTITION_COLUMNS_FROM_FILE_NAME', /PARTITIONED BY/);
    await s.fails(`CONVERT TO DELTA parquet.\`${dir}\` PARTITIONED BY (year)`, 'FLOE_SQL_PARSE_ERROR', /needs a type/);
    await s.fails(`CONVERT TO DELTA parquet.\`${dir}\` PARTITIONED BY (year INT, zone STRING)`, 'DELTA_UNEXPECTED_PARTITION_COLUMN_FROM_FILE_NAME');
    await s.run(`CONVERT TO DELTA parquet.\`${dir}\` PARTITIONED BY (year INT, region STRING)`);
    const h = await s.rows(`DESCRIBE HISTORY delta.\`${dir}\``);
    assert.equal(h.length, 1);
    assert.equal(h[0]!.operation, 'CONVERT');
    assert.deepEqual(await s.rows(`SELECT * FROM delta.\`${dir}\` ORDER BY id`), [
      { id: 1, name: 'n1', amount: 1.5, year: 2023, region: 'eu' }, { id: 2, name: 'n2', amount: 3, year: 2023, region: 'eu' }, { id: 3, name: 'n3', amount: 4.5, year: 2023, region: 'eu' },
      { id: 10, name: null, amount: 15, year: 2024, region: 'us/west' }, { id: 11, name: null, amount: 16.5, year: 2024, region: 'us/west' },
    ]);
    const snap = await s.floe.snapshot(dir);
    assert.deepEqual(snap.partitionColumns, ['year', 'region']);
    const stats = snap.files.map((f) => JSON.parse(f.stats!)).sort((a, b) => a.numRecords - b.numRecords);
    assert.deepEqual(stats[0], { numRecords: 2, minValues: { id: 10, amount: 15 }, maxValues: { id: 11, amount: 16.5 }, nullCount: { id: 0, name: 2, amount: 0 } });
    assert.deepEqual(stats[1].minValues, { id: 1, name: 'n1', amount: 1.5 });
    // the table is a normal Delta table now: skipping, writes, DML
    assert.equal((await (await s.floe.read.delta(dir)).filter('id > 5').toJSON()).length, 2);
    await s.run(`INSERT INTO delta.\`${dir}\` VALUES (20, 'z', 1.0, 2025, 'eu')`);
    await s.run(`DELETE FROM delta.\`${dir}\` WHERE id = 1`);
    assert.deepEqual(await s.rows(`SELECT count(*)::INT AS n FROM delta.\`${dir}\``), [{ n: 5 }]);
    await s.fails(`CONVERT TO DELTA parquet.\`${dir}\``, 'DELTA_TABLE_ALREADY_EXISTS');
    // unpartitioned; a partition value that does not cast
    const flatLocal = await tempDir('floe-convert-');
    await e.run(`COPY (SELECT 1 AS a) TO '${path.join(flatLocal, 'x.parquet')}' (FORMAT parquet)`);
    const flat = await placeFolder(flatLocal);
    await s.run(`CONVERT TO DELTA parquet.\`${flat}\``);
    assert.deepEqual(await s.rows(`SELECT * FROM delta.\`${flat}\``), [{ a: 1 }]);
    const badLocal = await tempDir('floe-convert-');
    await fs.mkdir(path.join(badLocal, 'k=abc'));
    await e.run(`COPY (SELECT 1 AS a) TO '${path.join(badLocal, 'k=abc', 'x.parquet')}' (FORMAT parquet)`);
    const bad = await placeFolder(badLocal);
    await s.fails(`CONVERT TO DELTA parquet.\`${bad}\` PARTITIONED BY (k INT)`, 'DELTA_FAILED_CAST_PARTITION_VALUE');
    await s.fails(`CONVERT TO DELTA parquet.\`${await newRoot('floe-convert-')}\``, 'DELTA_EMPTY_DIRECTORY');
    await s.fails('CONVERT TO DELTA some_table', 'FLOE_SQL_ANALYSIS_ERROR');
  } finally {
    await s.close();
  }
});

test('TypeScript API: addColumns / renameColumn from src/table/alter.ts', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT) USING delta${await s.at('t')} TBLPROPERTIES ('delta.columnMapping.mode' = 'name'); INSERT INTO t VALUES (1)`);
    const loc = String((await s.rows('DESCRIBE DETAIL t'))[0]!.location);
    await addColumns(s.floe, loc, [{ path: ['tags'], type: { type: 'array', elementType: 'string', containsNull: true } }]);
    await renameColumn(s.floe, loc, ['id'], 'key');
    assert.deepEqual(await (await s.floe.read.delta(loc)).toJSON(), [{ key: 1, tags: null }]);
  } finally {
    await s.close();
  }
});

// The writer casts struct values to the physical struct type by name (src/engine/writer.ts), so a
// renamed nested field is written as NULL, by INSERT and by every DML rewrite of an old file.
// Reading is right (scan.ts maps physical → logical). Fixed when the writer maps nested fields by name → physical name.
test('writing a struct after a nested field rename keeps the value', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, s STRUCT<x: INT, y: INT>) USING delta${await s.at('t')} TBLPROPERTIES ('delta.columnMapping.mode' = 'name')`);
    await s.run('ALTER TABLE t RENAME COLUMN s.x TO xx');
    await s.run("INSERT INTO t VALUES (1, named_struct('xx', 5, 'y', 6))");
    assert.deepEqual(await s.rows('SELECT s FROM t'), [{ s: { xx: 5, y: 6 } }]);
    await s.run('UPDATE t SET id = 2');
    assert.deepEqual(await s.rows('SELECT s FROM t'), [{ s: { xx: 5, y: 6 } }]);
  } finally {
    await s.close();
  }
});

// planScan (src/engine/scan.ts) reads each partition group with its own read_parquet but decides
// which columns exist from the union of all files: a column added later and written to one
// partition only makes the other partitions' branch fail to bind.
test('a column added to a partitioned table and written to one partition reads as NULL elsewhere', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, p STRING) USING delta${await s.at('t')} PARTITIONED BY (p); INSERT INTO t VALUES (1, 'u')`);
    await s.run("ALTER TABLE t ADD COLUMNS (x STRING); INSERT INTO t VALUES (2, 'w', 'new')");
    assert.deepEqual(await s.rows('SELECT * FROM t ORDER BY id'), [{ id: 1, p: 'u', x: null }, { id: 2, p: 'w', x: 'new' }]);
  } finally {
    await s.close();
  }
});
