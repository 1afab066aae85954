/**
 * Column features through floe.sql and the API: GENERATED ALWAYS AS columns (computed when a write
 * leaves them out, checked when it sets them, on append, overwrite, INSERT, UPDATE and MERGE), CHECK
 * constraints and generation expressions stored as Spark SQL, legacy column invariants.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeltaTable } from '../table/delta-table.js';
import { FloeError } from '../errors.js';
import { copyTable, corpusTable, tempDir } from './helpers.js';
import { sqlSession, type SqlSession } from './sql-helpers.js';
import { checkTable } from './protocol-checker.js';

async function locationOf(s: SqlSession, table: string): Promise<string> {
  return (await s.rows(`DESCRIBE DETAIL ${table}`))[0]!.location as string;
}

async function rejects(p: Promise<unknown>, code: string, fragment?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, String(e));
    assert.equal(e.code, code, e.message);
    if (fragment) assert.match(e.message, fragment);
    return true;
  });
}

test('GENERATED ALWAYS AS: stored as delta.generationExpression, writer version 4, computed on INSERT when left out', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE ev (id INT, ts TIMESTAMP, d DATE GENERATED ALWAYS AS (CAST(ts AS DATE)), y INT GENERATED ALWAYS AS (year(ts))) USING delta PARTITIONED BY (d)');
    const loc = await locationOf(s, 'ev');
    const snap = await s.floe.snapshot(loc);
    assert.deepEqual(snap.schema.fields.map((f) => f.metadata['delta.generationExpression']), [undefined, undefined, 'CAST(ts AS DATE)', 'year(ts)']);
    assert.deepEqual(snap.protocol, { minReaderVersion: 1, minWriterVersion: 4 });
    await s.run("INSERT INTO ev (id, ts) VALUES (1, TIMESTAMP'2024-03-05 10:00:00'), (2, NULL)");
    // all columns, generated values consistent with the expression: accepted
    await s.run("INSERT INTO ev VALUES (3, TIMESTAMP'2024-03-06 23:00:00', DATE'2024-03-06', 2024)");
    assert.deepEqual(await s.rows('SELECT id, d, y FROM ev ORDER BY id'), [
      { id: 1, d: '2024-03-05', y: 2024 }, { id: 2, d: null, y: null }, { id: 3, d: '2024-03-06', y: 2024 },
    ]);
    // partitioned by the generated column: one folder per computed date
    const dirs = (await fs.readdir(loc)).filter((d) => d.startsWith('d=')).sort();
    assert.deepEqual(dirs, ['d=2024-03-05', 'd=2024-03-06', 'd=__HIVE_DEFAULT_PARTITION__']);
    // a value that differs from the expression: Spark's check, nothing written
    const e = await s.fails("INSERT INTO ev VALUES (4, TIMESTAMP'2024-03-06 10:00:00', DATE'2024-03-07', 2024)", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /Generated Column \(d <=> CAST\(ts AS DATE\)\).*d : 2024-03-07/);
    assert.match(e.message, /leave d out/);
    assert.equal(Number((await s.rows('SELECT count(*) AS n FROM ev'))[0]!.n), 3);
    assert.equal((await s.floe.snapshot(loc)).version, 2);
    await s.fails('CREATE TABLE bad (a INT, b INT GENERATED ALWAYS AS (c + 1))', 'DELTA_INVALID_GENERATED_COLUMN_REFERENCES');
    await s.fails('CREATE TABLE bad (a INT, b INT GENERATED ALWAYS AS (a + 1), c INT GENERATED ALWAYS AS (b + 1))', 'DELTA_INVALID_GENERATED_COLUMN_REFERENCES');
    await s.fails('CREATE TABLE bad (a INT, b DOUBLE GENERATED ALWAYS AS (rand()))', 'DELTA_NON_DETERMINISTIC_EXPRESSION_IN_GENERATED_COLUMN');
    await s.fails('CREATE TABLE bad (a BIGINT GENERATED ALWAYS AS IDENTITY)', 'FLOE_SQL_ANALYSIS_ERROR', /IDENTITY/);
    assert.deepEqual(await checkTable(loc), []);
  } finally {
    await s.close();
  }
});

test('GENERATED columns on UPDATE (recomputed from new values; an explicit value is checked) and MERGE (updates and inserts)', async () => {
  const s = await sqlSession();
  try {
    await s.run("CREATE TABLE t (id INT, a INT, b INT GENERATED ALWAYS AS (a * 10), tag STRING GENERATED ALWAYS AS (concat('id-', id))) USING delta");
    await s.run('INSERT INTO t (id, a) VALUES (1, 1), (2, 2), (3, 3)');
    await s.run('UPDATE t SET a = a + 100 WHERE id = 1');
    await s.run('UPDATE t SET a = 7, b = 70 WHERE id = 2');
    await s.fails('UPDATE t SET b = 5 WHERE id = 3', 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /Generated Column \(b <=> a \* 10\)/);
    assert.deepEqual(await s.rows('SELECT * FROM t ORDER BY id'), [
      { id: 1, a: 101, b: 1010, tag: 'id-1' }, { id: 2, a: 7, b: 70, tag: 'id-2' }, { id: 3, a: 3, b: 30, tag: 'id-3' },
    ]);
    await s.run(`MERGE INTO t USING (SELECT 3 AS id, 9 AS a UNION ALL SELECT 4, 4) AS s ON t.id = s.id
      WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT *`);
    await s.run(`MERGE INTO t USING (SELECT 5 AS id, 5 AS a) AS s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)`);
    assert.deepEqual(await s.rows('SELECT * FROM t WHERE id >= 3 ORDER BY id'), [
      { id: 3, a: 9, b: 90, tag: 'id-3' }, { id: 4, a: 4, b: 40, tag: 'id-4' }, { id: 5, a: 5, b: 50, tag: 'id-5' },
    ]);
    await s.fails(`MERGE INTO t USING (SELECT 6 AS id, 6 AS a, 1 AS b) AS s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, a, b) VALUES (s.id, s.a, s.b)`, 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /Generated Column/);
    assert.equal(Number((await s.rows('SELECT count(*) AS n FROM t'))[0]!.n), 5);
    assert.deepEqual(await checkTable(await locationOf(s, 't')), []);
  } finally {
    await s.close();
  }
});

test('GENERATED columns through the API: builder generatedAlwaysAs, DataFrame append/overwrite compute or check', async () => {
  const s = await sqlSession();
  try {
    const dir = path.join(await tempDir('floe-gen-'), 't');
    const table = await DeltaTable.create(s.floe).location(dir)
      .addColumn('id', 'long')
      .addColumn('price', 'double')
      .addColumn('price_cents', 'long', { generatedAlwaysAs: 'CAST(price * 100 AS BIGINT)' })
      .execute();
    void table;
    await (await s.floe.createDataFrame([{ id: 1, price: 1.5 }])).write.delta(dir, { mode: 'append' });
    await (await s.floe.createDataFrame([{ id: 2, price: 2.5, price_cents: 250 }])).write.delta(dir, { mode: 'append' });
    await rejects((await s.floe.createDataFrame([{ id: 3, price: 3.5, price_cents: 1 }])).write.delta(dir, { mode: 'append' }), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
    assert.deepEqual(await (await s.floe.read.delta(dir)).orderBy('id').toJSON(), [{ id: '1', price: 1.5, price_cents: '150' }, { id: '2', price: 2.5, price_cents: '250' }]);
    await (await s.floe.createDataFrame([{ id: 9, price: 0.25 }])).write.delta(dir, { mode: 'overwrite' });
    assert.deepEqual(await (await s.floe.read.delta(dir)).toJSON(), [{ id: '9', price: 0.25, price_cents: '25' }]);
  } finally {
    await s.close();
  }
});

test('A Spark-written table with a generated column (dbr_8_1_generated_columns, writer v4) is written with the expression', async (t) => {
  const src = corpusTable(t, 'delta-spark/spark-test-resources/dbr_8_1_generated_columns');
  if (!src) return;
  const dir = await copyTable(src);
  const s = await sqlSession();
  try {
    await s.floe.duckdbSql('SELECT * FROM (VALUES (1::INT), (41::INT)) v(c1)').write.delta(dir, { mode: 'append' });
    assert.deepEqual(await (await s.floe.read.delta(dir)).orderBy('c1').toJSON(), [{ c1: 1, c2: 2 }, { c1: 41, c2: 42 }]);
    await rejects(s.floe.duckdbSql('SELECT 1::INT AS c1, 5::INT AS c2').write.delta(dir, { mode: 'append' }), 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /c2 <=> c1 \+ 1/);
    await s.run(`UPDATE delta.\`${dir}\` SET c1 = 10 WHERE c1 = 1`);
    assert.deepEqual(await s.rows(`SELECT * FROM delta.\`${dir}\` ORDER BY c1`), [{ c1: 10, c2: 11 }, { c1: 41, c2: 42 }]);
    assert.deepEqual((await s.floe.snapshot(dir)).protocol, { minReaderVersion: 1, minWriterVersion: 4 });
    assert.deepEqual(await checkTable(dir, { fromVersion: 1 }), []);
  } finally {
    await s.close();
  }
});

test('CHECK constraints are Spark SQL: stored as written, translated when enforced (Spark functions, Spark-written constraints)', async () => {
  const s = await sqlSession();
  try {
    await s.run("CREATE TABLE c (id INT, name STRING, d DATE) USING delta; INSERT INTO c VALUES (1, 'ab', DATE'2024-01-02')");
    await s.run("ALTER TABLE c ADD CONSTRAINT name_ok CHECK (nvl(length(name), 0) < 5 AND date_format(d, 'yyyy') >= '2020')");
    const loc = await locationOf(s, 'c');
    assert.equal((await s.floe.snapshot(loc)).configuration['delta.constraints.name_ok'], "nvl(length(name), 0) < 5 AND date_format(d, 'yyyy') >= '2020'");
    await s.run("INSERT INTO c VALUES (2, NULL, DATE'2021-05-05')");
    await s.fails("INSERT INTO c VALUES (3, 'abcdef', DATE'2021-05-05')", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /name_ok/);
    await s.fails("UPDATE c SET d = DATE'2019-12-31' WHERE id = 1", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /name_ok/);
    await s.fails("ALTER TABLE c ADD CONSTRAINT year_ok CHECK (date_format(d, 'yyyy') = '2024')", 'DELTA_NEW_CHECK_CONSTRAINT_VIOLATION');
    // A constraint written by another engine (set as a table property), with Spark's functions.
    await s.run("ALTER TABLE c SET TBLPROPERTIES ('delta.constraints.id_pos' = 'nvl(id, 1) > 0 AND `id` IS NOT NULL')");
    await s.fails("INSERT INTO c VALUES (NULL, 'x', DATE'2024-01-01')", 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /id_pos/);
    await s.fails("ALTER TABLE c SET TBLPROPERTIES ('delta.constraints.bad' = 'id > 0; DROP TABLE c')", /SQL_PARSE|UNSAFE|INVALID_STORED/);
    assert.equal(Number((await s.rows('SELECT count(*) AS n FROM c'))[0]!.n), 2);
  } finally {
    await s.close();
  }
});

test('legacy column invariants (delta.invariants field metadata) are enforced on every write path', async () => {
  const s = await sqlSession();
  try {
    const dir = path.join(await tempDir('floe-inv-'), 't');
    const { createTable } = await import('../table/create.js');
    await createTable(s.floe, {
      path: dir,
      schema: { type: 'struct', fields: [
        { name: 'id', type: 'integer', nullable: true, metadata: {} },
        { name: 'v', type: 'integer', nullable: true, metadata: { 'delta.invariants': JSON.stringify({ expression: { expression: 'v > 0' } }) } },
      ] },
    });
    assert.deepEqual((await s.floe.snapshot(dir)).protocol, { minReaderVersion: 1, minWriterVersion: 2 });
    const t = `delta.\`${dir}\``;
    await s.run(`INSERT INTO ${t} VALUES (1, 5), (2, NULL)`);
    await s.fails(`INSERT INTO ${t} VALUES (3, 0)`, 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /EXPRESSION\(v > 0\)/);
    await s.fails(`UPDATE ${t} SET v = -1 WHERE id = 1`, 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES', /invariant of column v/);
    await s.fails(`MERGE INTO ${t} AS t USING (SELECT 9 AS id, -9 AS v) AS s ON t.id = s.id WHEN NOT MATCHED THEN INSERT *`, 'DELTA_VIOLATE_CONSTRAINT_WITH_VALUES');
    assert.deepEqual(await s.rows(`SELECT * FROM ${t} ORDER BY id`), [{ id: 1, v: 5 }, { id: 2, v: null }]);
  } finally {
    await s.close();
  }
});

test('DEFAULT values: need delta.feature.allowColumnDefaults; INSERT with a column list, VALUES DEFAULT, UPDATE SET DEFAULT, MERGE INSERT; SET/DROP DEFAULT', async () => {
  const s = await sqlSession();
  try {
    await s.fails('CREATE TABLE d (a INT, b INT DEFAULT 5)', 'WRONG_COLUMN_DEFAULTS_FOR_DELTA_FEATURE_NOT_ENABLED', /delta\.feature\.allowColumnDefaults/);
    await s.run("CREATE TABLE d (a INT, b INT DEFAULT 5, c STRING DEFAULT concat('x', 'y'), ts DATE) TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported')");
    const loc = await locationOf(s, 'd');
    const snap = await s.floe.snapshot(loc);
    assert.ok(snap.protocol.writerFeatures?.includes('allowColumnDefaults'));
    assert.equal(snap.configuration['delta.feature.allowColumnDefaults'], undefined);
    assert.deepEqual(snap.schema.fields.map((f) => f.metadata.CURRENT_DEFAULT), [undefined, '5', "concat('x', 'y')", undefined]);
    await s.run('INSERT INTO d (a) VALUES (1)');
    await s.run("INSERT INTO d VALUES (2, DEFAULT, 'z', DEFAULT)");
    await s.run('INSERT INTO d (a, b) SELECT 3, 30');
    await s.run('UPDATE d SET b = 0 WHERE a = 3');
    await s.run('UPDATE d SET b = DEFAULT, c = DEFAULT WHERE a = 3');
    await s.run('MERGE INTO d USING (SELECT 4 AS a) AS s ON d.a = s.a WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a)');
    await s.run("MERGE INTO d USING (SELECT 6 AS a UNION ALL SELECT 2) AS s ON d.a = s.a WHEN MATCHED THEN UPDATE SET c = DEFAULT WHEN NOT MATCHED THEN INSERT (a, b, c) VALUES (s.a, DEFAULT, 'm')");
    assert.deepEqual(await s.rows('SELECT a, b, c, ts FROM d ORDER BY a'), [
      { a: 1, b: 5, c: 'xy', ts: null }, { a: 2, b: 5, c: 'xy', ts: null }, { a: 3, b: 5, c: 'xy', ts: null }, { a: 4, b: 5, c: 'xy', ts: null },
      { a: 6, b: 5, c: 'm', ts: null },
    ]);
    await s.run("ALTER TABLE d ALTER COLUMN ts SET DEFAULT DATE'2024-01-01'");
    await s.run('ALTER TABLE d ALTER COLUMN b DROP DEFAULT');
    await s.run('INSERT INTO d (a) VALUES (5)');
    assert.deepEqual(await s.rows('SELECT a, b, c, ts FROM d WHERE a = 5'), [{ a: 5, b: null, c: 'xy', ts: '2024-01-01' }]);
    await s.fails("ALTER TABLE d ALTER COLUMN a SET DEFAULT 'nope'", 'INVALID_DEFAULT_VALUE');
    // a table without the feature: SET DEFAULT says how to enable it; enabling it works
    await s.run('CREATE TABLE e (a INT, b INT)');
    await s.fails('ALTER TABLE e ALTER COLUMN b SET DEFAULT 1', 'WRONG_COLUMN_DEFAULTS_FOR_DELTA_FEATURE_NOT_ENABLED');
    await s.run("ALTER TABLE e SET TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported')");
    await s.run('ALTER TABLE e ALTER COLUMN b SET DEFAULT 1 + 1');
    await s.run('INSERT INTO e (a) VALUES (1)');
    assert.deepEqual(await s.rows('SELECT * FROM e'), [{ a: 1, b: 2 }]);
    assert.deepEqual(await checkTable(loc), []);
    assert.deepEqual(await checkTable(await locationOf(s, 'e')), []);
    const h = (await s.rows('DESCRIBE HISTORY e LIMIT 1'))[0]!;
    assert.equal(h.operation, 'WRITE');
  } finally {
    await s.close();
  }
});

test('ALTER COLUMN TYPE: widening with delta.enableTypeWidening, recorded in delta.typeChanges; old files read in the new type; other changes fail', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE w (id INT, small SMALLINT, f FLOAT, d DATE, m DECIMAL(5,2), s STRING) USING delta PARTITIONED BY (id)');
    await s.run("INSERT INTO w VALUES (1, 100, 1.5, DATE'2024-01-02', 123.45, 'a')");
    await s.fails('ALTER TABLE w ALTER COLUMN small TYPE INT', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', /delta\.enableTypeWidening/);
    await s.run("ALTER TABLE w SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')");
    const loc = await locationOf(s, 'w');
    const p = (await s.floe.snapshot(loc)).protocol;
    assert.ok(p.readerFeatures?.includes('typeWidening') && p.writerFeatures?.includes('typeWidening'), JSON.stringify(p));
    await s.run('ALTER TABLE w ALTER COLUMN small TYPE INT');
    await s.run('ALTER TABLE w ALTER COLUMN small TYPE BIGINT');
    await s.run('ALTER TABLE w ALTER COLUMN f TYPE DOUBLE');
    await s.run('ALTER TABLE w ALTER COLUMN d TYPE TIMESTAMP_NTZ');
    await s.run('ALTER TABLE w ALTER COLUMN m TYPE DECIMAL(10,4)');
    await s.run('ALTER TABLE w ALTER COLUMN id TYPE BIGINT');
    const fields = (await s.floe.snapshot(loc)).schema.fields;
    assert.deepEqual(fields.map((f) => f.type), ['long', 'long', 'double', 'timestamp_ntz', 'decimal(10,4)', 'string']);
    assert.deepEqual(fields[1]!.metadata['delta.typeChanges'], [{ fromType: 'short', toType: 'integer' }, { fromType: 'integer', toType: 'long' }]);
    assert.deepEqual(fields[3]!.metadata['delta.typeChanges'], [{ fromType: 'date', toType: 'timestamp_ntz' }]);
    await s.run("INSERT INTO w VALUES (2, 5000000000, 2.25, CAST('2024-05-06 07:08:09' AS TIMESTAMP_NTZ), 123456.7891, 'b')");
    assert.deepEqual(await s.rows('SELECT id, small, f, CAST(d AS STRING) AS d, CAST(m AS STRING) AS m FROM w ORDER BY id'), [
      { id: '1', small: '100', f: 1.5, d: '2024-01-02 00:00:00', m: '123.4500' },
      { id: '2', small: '5000000000', f: 2.25, d: '2024-05-06 07:08:09', m: '123456.7891' },
    ]);
    assert.equal(Number((await s.rows('SELECT count(*) AS n FROM w WHERE small > 1000')).at(0)!.n), 1);
    await s.fails('ALTER TABLE w ALTER COLUMN small TYPE INT', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP');
    await s.fails('ALTER TABLE w ALTER COLUMN s TYPE INT', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP');
    await s.fails('ALTER TABLE w ALTER COLUMN m TYPE DECIMAL(12,8)', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP');
    await s.fails('ALTER TABLE w ALTER COLUMN f TYPE FLOAT', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP');
    assert.deepEqual(await checkTable(loc), []);
  } finally {
    await s.close();
  }
});

test('columns a generated column uses cannot be renamed, dropped or retyped (column mapping on)', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE g (id INT, ts TIMESTAMP, other STRING, d DATE GENERATED ALWAYS AS (CAST(ts AS DATE))) USING delta
      TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.enableTypeWidening' = 'true')`);
    await s.run("INSERT INTO g (id, ts, other) VALUES (1, TIMESTAMP'2024-01-01 05:00:00', 'x')");
    await s.fails('ALTER TABLE g RENAME COLUMN ts TO ts2', 'DELTA_GENERATED_COLUMNS_DEPENDENT_COLUMN_CHANGE', /d -> CAST\(ts AS DATE\)/);
    await s.fails('ALTER TABLE g DROP COLUMN ts', 'DELTA_GENERATED_COLUMNS_DEPENDENT_COLUMN_CHANGE');
    await s.run('ALTER TABLE g RENAME COLUMN other TO other2');
    await s.run('ALTER TABLE g ALTER COLUMN id TYPE BIGINT');
    await s.run("INSERT INTO g (id, ts, other2) VALUES (2, TIMESTAMP'2024-02-02 05:00:00', 'y')");
    assert.deepEqual(await s.rows('SELECT id, d, other2 FROM g ORDER BY id'), [{ id: '1', d: '2024-01-01', other2: 'x' }, { id: '2', d: '2024-02-02', other2: 'y' }]);
    assert.deepEqual(await checkTable(await locationOf(s, 'g')), []);
  } finally {
    await s.close();
  }
});

test('stored expressions from the log cannot read files or run statements: the write fails and writes nothing', async () => {
  const s = await sqlSession();
  try {
    const { createTable } = await import('../table/create.js');
    const bad: Array<[string, Record<string, string>, Record<string, unknown>]> = [
      ['check', { 'delta.constraints.x': "id > (SELECT count(*) FROM read_csv('/etc/passwd'))" }, {}],
      ['check2', { 'delta.constraints.x': "length(read_text('/etc/passwd')) > 0" }, {}],
      ['gen', {}, { 'delta.generationExpression': "(SELECT 1); DROP TABLE t" }],
      ['inv', {}, { 'delta.invariants': JSON.stringify({ expression: { expression: "getenv('HOME') IS NOT NULL" } }) }],
    ];
    let checked = 0;
    for (const [name, properties, metadata] of bad) {
      const dir = path.join(await tempDir('floe-stored-'), name);
      await createTable(s.floe, { path: dir, properties, schema: { type: 'struct', fields: [
        { name: 'id', type: 'integer', nullable: true, metadata: {} },
        { name: 'v', type: 'integer', nullable: true, metadata },
      ] } }).catch(() => undefined);
      if (!(await s.floe.snapshot(dir).then(() => true, () => false))) continue; // refused at creation: fine too
      const before = (await s.floe.snapshot(dir)).version;
      await assert.rejects(s.run(`INSERT INTO delta.\`${dir}\` (id, v) VALUES (1, 1)`), (e: unknown) => e instanceof FloeError && /INVALID_STORED_EXPRESSION|UNSAFE|NOT_AVAILABLE|ANALYSIS/.test(e.code), name);
      assert.equal((await s.floe.snapshot(dir)).version, before, name);
      checked++;
    }
    assert.ok(checked >= 3, `${checked} tables reached the write`);
  } finally {
    await s.close();
  }
});
