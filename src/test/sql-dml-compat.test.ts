/**
 * DML and DDL behaviour matching Spark / Delta where floe differed (an exploratory tester's report):
 * correlated subqueries in UPDATE / DELETE / MERGE conditions, store assignment of fractional values
 * to integer columns, session settings (autoMerge, dynamic partition overwrite, session time zone),
 * CREATE TABLE validation, nested NOT NULL and DESCRIBE HISTORY operation names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sqlSession } from './sql-helpers.js';

test('UPDATE / DELETE with correlated subqueries change only the matching rows', async () => {
  const s = await sqlSession();
  try {
    const reset = async (): Promise<void> => {
      await s.run('CREATE OR REPLACE TABLE t (id INT, n INT) USING delta');
      await s.run('INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)');
    };
    await s.run('CREATE TABLE k (id INT) USING delta');
    await s.run('INSERT INTO k VALUES (3)');
    const ids = async (): Promise<unknown[]> => (await s.rows('SELECT id, n FROM t ORDER BY id')).map((r) => [r.id, r.n]);

    await reset();
    await s.run('UPDATE t SET n = 0 WHERE EXISTS (SELECT 1 FROM k WHERE k.id = t.id)');
    assert.deepEqual(await ids(), [[1, 10], [2, 20], [3, 0]]);

    await reset();
    await s.run('DELETE FROM t AS x WHERE EXISTS (SELECT 1 FROM k WHERE k.id = x.id)');
    assert.deepEqual(await ids(), [[1, 10], [2, 20]]);

    await reset();
    await s.run('DELETE FROM t AS x WHERE NOT EXISTS (SELECT 1 FROM k WHERE k.id = x.id)');
    assert.deepEqual(await ids(), [[3, 30]]);

    await reset();
    await s.run('UPDATE t x SET n = -1 WHERE x.id IN (SELECT k.id FROM k WHERE k.id = x.id)');
    assert.deepEqual(await ids(), [[1, 10], [2, 20], [3, -1]]);

    // a correlated scalar subquery in SET
    await reset();
    await s.run('UPDATE t SET n = t.n + (SELECT count(*) FROM k WHERE k.id = t.id)');
    assert.deepEqual(await ids(), [[1, 10], [2, 20], [3, 31]]);

    // the same table inside the subquery: its own qualifier binds to the inner table (innermost first)
    await reset();
    await s.run('DELETE FROM t WHERE id IN (SELECT id FROM t AS t WHERE t.n > 15)');
    assert.deepEqual(await ids(), [[1, 10]]);

    // qualifiers outside subqueries still work
    await reset();
    await s.run('DELETE FROM t AS x WHERE x.id = 2');
    await s.run('UPDATE t SET n = t.n + 1 WHERE t.id = 1');
    assert.deepEqual(await ids(), [[1, 11], [3, 30]]);
  } finally {
    await s.close();
  }
});

test('MERGE conditions with subqueries: names inside resolve innermost first', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE k (id INT) USING delta');
    await s.run('INSERT INTO k VALUES (3)');
    await s.run('CREATE TABLE m (id INT, v INT) USING delta');
    await s.run('INSERT INTO m VALUES (1, 1), (3, 3)');
    // `id` inside the subquery is k.id (not an ambiguous target / source column)
    await s.run('MERGE INTO m USING (SELECT 3 AS id, 9 AS v UNION ALL SELECT 1, 8) s ON m.id = s.id WHEN MATCHED AND EXISTS (SELECT 1 FROM k WHERE id = s.id) THEN UPDATE SET v = s.v');
    assert.deepEqual((await s.rows('SELECT id, v FROM m ORDER BY id')).map((r) => [r.id, r.v]), [[1, 1], [3, 9]]);
    await s.run('MERGE INTO m USING (SELECT 1 AS id) s ON m.id = s.id WHEN NOT MATCHED BY SOURCE AND EXISTS (SELECT 1 FROM k WHERE k.id = m.id) THEN DELETE');
    assert.deepEqual((await s.rows('SELECT id FROM m ORDER BY id')).map((r) => r.id), [1]);
  } finally {
    await s.close();
  }
});

test('store assignment: fractional values written to integral columns truncate toward zero (INSERT, UPDATE, MERGE)', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE c (k INT, i INT, b BIGINT, t TINYINT, d DOUBLE) USING delta');
    await s.run('INSERT INTO c VALUES (1, 1.7, -1.5, 2.5, 1.5), (2, -1.5, CAST(2.9 AS DOUBLE), CAST(-2.5 AS FLOAT), 2)');
    await s.run('INSERT INTO c SELECT 3, 2.9, -0.5, 127.9, 1');
    const all = async (): Promise<unknown[]> => (await s.rows('SELECT k, i, b, t, d FROM c ORDER BY k')).map((r) => [r.k, r.i, Number(r.b), r.t, r.d]);
    assert.deepEqual(await all(), [[1, 1, -1, 2, 1.5], [2, -1, 2, -2, 2], [3, 2, 0, 127, 1]]);
    await s.run('UPDATE c SET i = i * 1.5, b = -d WHERE k = 1');
    assert.deepEqual((await all())[0], [1, 1, -1, 2, 1.5]);
    await s.run('UPDATE c SET i = i * 1.5 WHERE k = 3');
    assert.deepEqual((await all())[2], [3, 3, 0, 127, 1]);
    await s.run(`MERGE INTO c USING (SELECT 2 AS k, 7.9 AS v UNION ALL SELECT 4, -3.7) s ON c.k = s.k
      WHEN MATCHED THEN UPDATE SET i = s.v WHEN NOT MATCHED THEN INSERT (k, i, b, t, d) VALUES (s.k, s.v, s.v * 2, s.v, s.v)`);
    assert.deepEqual((await all()).slice(1), [[2, 7, 2, -2, 2], [3, 3, 0, 127, 1], [4, -3, -7, -3, -3.7]]);
    // out of range still fails
    await s.fails('INSERT INTO c VALUES (5, 3e9, 1, 1, 1)', /./, /out of range/);
    await s.fails('INSERT INTO c VALUES (5, 1, 1, 128.5, 1)', /./, /out of range|cast/i);
    await s.fails('UPDATE c SET i = 1e10', /./, /out of range/);
    assert.equal(Number((await s.rows('SELECT count(*) AS n FROM c'))[0]!.n), 4);
  } finally {
    await s.close();
  }
});

test('SET spark.sql.sources.partitionOverwriteMode = dynamic: INSERT OVERWRITE replaces only the partitions written', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE p (id INT, p STRING) USING delta PARTITIONED BY (p)');
    await s.run("INSERT INTO p VALUES (1, 'x'), (2, 'y'), (5, NULL), (6, 'z')");
    await s.run('SET spark.sql.sources.partitionOverwriteMode = dynamic');
    await s.run("INSERT OVERWRITE p VALUES (3, 'x'), (4, NULL)");
    const rows = async (): Promise<unknown[]> => (await s.rows('SELECT id, p FROM p ORDER BY id')).map((r) => [r.id, r.p]);
    assert.deepEqual(await rows(), [[2, 'y'], [3, 'x'], [4, null], [6, 'z']]);
    assert.equal((await s.rows('DESCRIBE HISTORY p'))[0]!.operation, 'WRITE');
    // an INSERT OVERWRITE with no rows replaces nothing
    await s.run("INSERT OVERWRITE p SELECT 9, 'q' WHERE false");
    assert.equal((await rows()).length, 4);
    // static (the default) replaces the whole table
    await s.run('SET spark.sql.sources.partitionOverwriteMode = STATIC');
    await s.run("INSERT OVERWRITE p VALUES (7, 'x')");
    assert.deepEqual(await rows(), [[7, 'x']]);
    await s.run('SET spark.sql.sources.partitionOverwriteMode = sometimes');
    await s.fails("INSERT OVERWRITE p VALUES (8, 'x')", 'DELTA_ILLEGAL_OPTION');
    await s.run('RESET spark.sql.sources.partitionOverwriteMode');

    // the DataFrame writer's per-write option; with replaceWhere it is an error, as in Delta
    const df = s.floe.duckdbSql("SELECT 10 AS id, 'y' AS p");
    await df.write.delta(await tableLocation(s, 'p'), { mode: 'overwrite', partitionOverwriteMode: 'dynamic' });
    assert.deepEqual(await rows(), [[7, 'x'], [10, 'y']]);
    await assert.rejects(df.write.delta(await tableLocation(s, 'p'), { mode: 'overwrite', partitionOverwriteMode: 'dynamic', replaceWhere: "p = 'y'" }), /DELTA_REPLACE_WHERE_WITH_DYNAMIC_PARTITION_OVERWRITE/);
    // the session setting gives way to replaceWhere
    await s.run('SET spark.sql.sources.partitionOverwriteMode = dynamic');
    await s.run("INSERT INTO p REPLACE WHERE p = 'x' SELECT 11, 'x'");
    assert.deepEqual(await rows(), [[10, 'y'], [11, 'x']]);
  } finally {
    await s.close();
  }
});

async function tableLocation(s: Awaited<ReturnType<typeof sqlSession>>, name: string): Promise<string> {
  const d = await s.rows(`DESCRIBE DETAIL ${name}`);
  return String(d[0]!.location);
}

test('SET spark.databricks.delta.schema.autoMerge.enabled = true: MERGE and writes evolve the schema', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE m (id INT) USING delta');
    await s.run('SET spark.databricks.delta.schema.autoMerge.enabled = true');
    await s.run("MERGE INTO m USING (SELECT 1 AS id, 'v' AS extra) s ON m.id = s.id WHEN NOT MATCHED THEN INSERT *");
    assert.deepEqual(await s.rows('SELECT * FROM m'), [{ id: 1, extra: 'v' }]);
    await s.run("MERGE INTO m USING (SELECT 1 AS id, 'w' AS extra, 5 AS more) s ON m.id = s.id WHEN MATCHED THEN UPDATE SET *");
    assert.deepEqual(await s.rows('SELECT * FROM m'), [{ id: 1, extra: 'w', more: 5 }]);
    await s.run("MERGE INTO m USING (SELECT 2 AS id, 'x' AS note) s ON m.id = s.id WHEN NOT MATCHED THEN INSERT (id, note) VALUES (s.id, s.note)");
    assert.deepEqual(await s.rows('SELECT id, note FROM m ORDER BY id'), [{ id: 1, note: null }, { id: 2, note: 'x' }]);
    // a DataFrame append with a new column (Delta's autoMerge applies to writes too)
    await s.floe.duckdbSql("SELECT 3 AS id, 'n' AS added").write.delta(await tableLocation(s, 'm'), { mode: 'append' });
    assert.deepEqual(await s.rows('SELECT id, added FROM m WHERE id = 3'), [{ id: 3, added: 'n' }]);
    // off again: the source's new columns are not added (and * needs the target's columns)
    await s.run('SET spark.databricks.delta.schema.autoMerge.enabled = false');
    await s.fails("MERGE INTO m USING (SELECT 4 AS id, 'q' AS other) s ON m.id = s.id WHEN NOT MATCHED THEN INSERT (id, other) VALUES (s.id, s.other)", /./, /other/);
    await assert.rejects(s.floe.duckdbSql("SELECT 5 AS id, 'n' AS other").write.delta(await tableLocation(s, 'm'), { mode: 'append' }), /DELTA_SCHEMA_MISMATCH|schema mismatch/i);
  } finally {
    await s.close();
  }
});

test('SET spark.sql.session.timeZone: only UTC, anything else is a clear error', async () => {
  const s = await sqlSession();
  try {
    await s.fails('SET spark.sql.session.timeZone = America/New_York', 'FLOE_SQL_ANALYSIS_ERROR', /spark\.sql\.session\.timeZone.*'America\/New_York' is not supported/);
    await s.fails("SET spark.sql.session.timeZone = '+05:00'", 'FLOE_SQL_ANALYSIS_ERROR', /not supported/);
    assert.equal(s.floe.config.get('spark.sql.session.timeZone'), undefined);
    for (const z of ['UTC', "'Etc/UTC'", 'GMT', 'Z', '+00:00']) await s.run(`SET spark.sql.session.timeZone = ${z}`);
  } finally {
    await s.close();
  }
});

test('CREATE TABLE partitioned by every column fails at CREATE (DELTA_CANNOT_USE_ALL_COLUMNS_FOR_PARTITION)', async () => {
  const s = await sqlSession();
  try {
    await s.fails('CREATE TABLE z (a INT) USING delta PARTITIONED BY (a)', 'DELTA_CANNOT_USE_ALL_COLUMNS_FOR_PARTITION');
    await s.fails('CREATE TABLE z2 (a INT, b STRING) USING delta PARTITIONED BY (b, a)', 'DELTA_CANNOT_USE_ALL_COLUMNS_FOR_PARTITION');
    await s.fails('CREATE TABLE z3 USING delta PARTITIONED BY (a) AS SELECT 1 AS a', 'DELTA_CANNOT_USE_ALL_COLUMNS_FOR_PARTITION');
    assert.deepEqual(await s.rows('SHOW TABLES'), []);
    await s.run('CREATE TABLE ok (a INT, b STRING) USING delta PARTITIONED BY (b)');
    await s.run("INSERT INTO ok VALUES (1, 'x')");
  } finally {
    await s.close();
  }
});

test('CREATE / ALTER validation: duplicate nested field names, appendOnly and retention values', async () => {
  const s = await sqlSession();
  try {
    await s.fails('CREATE TABLE z7 (a STRUCT<b: INT, b: STRING>) USING delta', 'DELTA_DUPLICATE_COLUMNS_FOUND', /a\.b/);
    await s.fails('CREATE TABLE z8 (a ARRAY<STRUCT<x: INT, y: STRUCT<c: INT, C: INT>>>) USING delta', 'DELTA_DUPLICATE_COLUMNS_FOUND', /\.C/);
    assert.deepEqual(await s.rows('SHOW TABLES'), []);
    await s.run('CREATE TABLE t (id INT) USING delta');
    await s.fails('ALTER TABLE t ADD COLUMNS (s STRUCT<x: INT, X: STRING>)', 'DELTA_DUPLICATE_COLUMNS_FOUND');
    await s.fails("CREATE TABLE p1 (id INT) USING delta TBLPROPERTIES ('delta.appendOnly' = 'maybe')", 'FLOE_INVALID_ARGUMENT', /delta\.appendOnly needs to be a boolean/);
    await s.fails("CREATE TABLE p2 (id INT) USING delta TBLPROPERTIES ('delta.logRetentionDuration' = 'banana')", 'FLOE_INVALID_ARGUMENT', /delta\.logRetentionDuration/);
    await s.fails("ALTER TABLE t SET TBLPROPERTIES ('delta.appendOnly' = 'maybe')", 'FLOE_INVALID_ARGUMENT', /boolean/);
    await s.fails("ALTER TABLE t SET TBLPROPERTIES ('delta.logRetentionDuration' = 'banana')", 'FLOE_INVALID_ARGUMENT', /interval 30 days/);
    await s.fails("ALTER TABLE t SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 1 month')", 'FLOE_INVALID_ARGUMENT', /deletedFileRetentionDuration/);
    assert.equal((await s.rows('DESCRIBE HISTORY t')).length, 1);
    await s.run("ALTER TABLE t SET TBLPROPERTIES ('delta.logRetentionDuration' = 'interval 30 days', 'delta.deletedFileRetentionDuration' = '2 weeks', 'delta.appendOnly' = 'TRUE')");
    await s.fails('DELETE FROM t', 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
    await s.fails('INSERT OVERWRITE t VALUES (1)', 'DELTA_CANNOT_MODIFY_APPEND_ONLY');
  } finally {
    await s.close();
  }
});

test('NOT NULL on nested struct fields is enforced on write (where the parent struct is not NULL)', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE n (id INT, s STRUCT<a: INT NOT NULL, b: STRING, c: STRUCT<d: INT NOT NULL>>, l ARRAY<STRUCT<e: INT NOT NULL>>) USING delta');
    await s.fails("INSERT INTO n VALUES (1, named_struct('a', CAST(NULL AS INT), 'b', 'x', 'c', NULL), NULL)", 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED', /column: s\.a\b/);
    await s.fails("INSERT INTO n VALUES (1, named_struct('a', 1, 'b', 'x', 'c', named_struct('d', CAST(NULL AS INT))), NULL)", 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED', /column: s\.c\.d\b/);
    // a NULL parent struct passes (its fields are not checked), as in Spark; so do array elements
    await s.run("INSERT INTO n VALUES (1, NULL, NULL), (2, named_struct('a', 1, 'b', NULL, 'c', NULL), NULL)");
    await s.fails("UPDATE n SET s = named_struct('a', CAST(NULL AS INT), 'b', 'y', 'c', NULL) WHERE id = 2", 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED', /s\.a/);
    await s.fails("MERGE INTO n USING (SELECT 9 AS id) src ON n.id = src.id WHEN NOT MATCHED THEN INSERT (id, s) VALUES (src.id, named_struct('a', 1, 'b', 'z', 'c', named_struct('d', CAST(NULL AS INT))))", 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED', /s\.c\.d/);
    assert.deepEqual((await s.rows('SELECT id FROM n ORDER BY id')).map((r) => r.id), [1, 2]);
  } finally {
    await s.close();
  }
});

test('DESCRIBE HISTORY names CTAS and RTAS as Spark records them', async () => {
  const s = await sqlSession();
  try {
    await s.run("CREATE TABLE a COMMENT 'first' AS SELECT 1 AS x");
    await s.run('CREATE OR REPLACE TABLE a AS SELECT 2 AS x');
    await s.run('CREATE OR REPLACE TABLE b PARTITIONED BY (p) AS SELECT 1 AS y, 2 AS p');
    const a = await s.rows('DESCRIBE HISTORY a');
    assert.deepEqual(a.map((h) => h.operation), ['CREATE OR REPLACE TABLE AS SELECT', 'CREATE TABLE AS SELECT']);
    assert.equal((a[1]!.operationParameters as Record<string, string>).description, 'first');
    const b = await s.rows('DESCRIBE HISTORY b');
    assert.deepEqual(b.map((h) => h.operation), ['CREATE TABLE AS SELECT']);
    assert.equal((b[0]!.operationParameters as Record<string, string>).partitionBy, '["p"]');
    // writes are still WRITE
    await s.run('INSERT INTO a VALUES (3)');
    assert.equal((await s.rows('DESCRIBE HISTORY a LIMIT 1'))[0]!.operation, 'WRITE');
  } finally {
    await s.close();
  }
});

test('REPLACE TABLE replaces a table that exists, and fails for one that does not', async () => {
  const s = await sqlSession();
  try {
    await assert.rejects(s.run('REPLACE TABLE r (a INT) USING delta'), (e: Error & { code?: string }) => e.code === 'DELTA_CANNOT_REPLACE_MISSING_TABLE' && /CREATE OR REPLACE TABLE/.test(e.message));
    await s.run('CREATE TABLE r (a INT) USING delta');
    await s.run('INSERT INTO r VALUES (1)');
    await s.run('REPLACE TABLE r AS SELECT 2 AS b');
    assert.deepEqual(await s.rows('SELECT * FROM r'), [{ b: 2 }]);
    assert.equal((await s.rows('DESCRIBE HISTORY r LIMIT 1'))[0]!.operation, 'REPLACE TABLE AS SELECT');
    await s.run('REPLACE TABLE r (c STRING) USING delta');
    assert.deepEqual(await s.rows('SELECT * FROM r'), []);
  } finally {
    await s.close();
  }
});

test('CHAR(n) / VARCHAR(n) columns keep their type as Spark does, and writes check the length', async () => {
  const s = await sqlSession();
  try {
    await s.run('CREATE TABLE v (id INT, s VARCHAR(3), c CHAR(4)) USING delta');
    // Spark's field metadata: the column is a string, its declared type in __CHAR_VARCHAR_TYPE_STRING
    const snap = await s.floe.deltaLog(`${s.warehouse}/default/v`).snapshot();
    const meta = Object.fromEntries(snap.schema.fields.map((f) => [f.name, [f.type, f.metadata.__CHAR_VARCHAR_TYPE_STRING ?? null]]));
    assert.deepEqual(meta, { id: ['integer', null], s: ['string', 'varchar(3)'], c: ['string', 'char(4)'] });
    assert.deepEqual((await s.rows('DESCRIBE TABLE v')).slice(0, 3).map((r) => r.data_type), ['int', 'varchar(3)', 'char(4)']);
    // trailing spaces beyond the length are dropped; CHAR pads to its length
    await s.run("INSERT INTO v VALUES (1, 'abc', 'ab'), (2, 'ab    ', 'abcd  '), (3, NULL, NULL)");
    const rows = async (): Promise<unknown[]> => (await s.rows('SELECT id, s, c FROM v ORDER BY id')).map((r) => [r.id, r.s, r.c]);
    assert.deepEqual(await rows(), [[1, 'abc', 'ab  '], [2, 'ab ', 'abcd'], [3, null, null]]);
    // longer values fail on every write path, and nothing is written
    await s.fails("INSERT INTO v VALUES (4, 'abcd', 'x')", 'EXCEED_LIMIT_LENGTH', /limitation: 3.*Column s is varchar\(3\)/);
    await s.fails("INSERT INTO v (id, c) VALUES (4, 'abcde')", 'EXCEED_LIMIT_LENGTH', /Column c is char\(4\)/);
    await s.fails("UPDATE v SET s = s || 'zz' WHERE id = 1", 'EXCEED_LIMIT_LENGTH');
    await s.fails("MERGE INTO v USING (SELECT 1 AS id) x ON v.id = x.id WHEN MATCHED THEN UPDATE SET c = 'toolong'", 'EXCEED_LIMIT_LENGTH');
    await s.fails("MERGE INTO v USING (SELECT 9 AS id) x ON v.id = x.id WHEN NOT MATCHED THEN INSERT (id, s) VALUES (x.id, 'long')", 'EXCEED_LIMIT_LENGTH');
    await assert.rejects((await s.floe.createDataFrame([{ s: 'abcdef' }])).write.delta(`${s.warehouse}/default/v`, { mode: 'append' }), /EXCEED_LIMIT_LENGTH/);
    assert.deepEqual(await rows(), [[1, 'abc', 'ab  '], [2, 'ab ', 'abcd'], [3, null, null]]);
    // UPDATE and MERGE within the length; ADD COLUMN keeps the type too
    await s.run("UPDATE v SET c = 'z' WHERE id = 3");
    await s.run("MERGE INTO v USING (SELECT 9 AS id) x ON v.id = x.id WHEN NOT MATCHED THEN INSERT (id, s) VALUES (x.id, 'q')");
    await s.run('ALTER TABLE v ADD COLUMN w VARCHAR(2)');
    assert.equal((await s.rows('DESCRIBE TABLE v'))[3]!.data_type, 'varchar(2)');
    await s.fails("INSERT INTO v (id, w) VALUES (10, 'abc')", 'EXCEED_LIMIT_LENGTH', /Column w/);
    assert.deepEqual(await rows(), [[1, 'abc', 'ab  '], [2, 'ab ', 'abcd'], [3, null, 'z   '], [9, 'q', null]]);
    assert.match(String((await s.rows('SHOW CREATE TABLE v'))[0]!.createtab_stmt), /`s` VARCHAR\(3\),\s+`c` CHAR\(4\)/);
    await s.fails('CREATE TABLE bad (s VARCHAR(0)) USING delta', /./, /positive/);
    // ALTER COLUMN TYPE: a VARCHAR may grow, any CHAR/VARCHAR may become STRING; nothing else gains a length
    await s.run('ALTER TABLE v ALTER COLUMN s TYPE VARCHAR(5)');
    await s.run("INSERT INTO v (id, s) VALUES (11, 'abcde')");
    await s.fails('ALTER TABLE v ALTER COLUMN s TYPE VARCHAR(4)', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', /varchar\(5\) to varchar\(4\)/);
    await s.fails('ALTER TABLE v ALTER COLUMN c TYPE VARCHAR(9)', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', /char\(4\) to varchar\(9\)/);
    await s.run('CREATE TABLE plain (p STRING) USING delta');
    await s.fails('ALTER TABLE plain ALTER COLUMN p TYPE VARCHAR(9)', 'DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', /string to varchar\(9\)/);
    await s.run('ALTER TABLE v ALTER COLUMN c TYPE STRING');
    await s.run('ALTER TABLE v CHANGE COLUMN s s STRING');
    await s.run("INSERT INTO v (id, s, c) VALUES (12, 'abcdefgh', 'xyzxyz')");
    assert.deepEqual((await s.rows('DESCRIBE TABLE v')).slice(0, 3).map((r) => r.data_type), ['int', 'string', 'string']);
    assert.deepEqual((await s.rows('SELECT s, c FROM v WHERE id = 12')), [{ s: 'abcdefgh', c: 'xyzxyz' }]);
  } finally {
    await s.close();
  }
});

test('columns named like the change feed\'s own (_change_type, _commit_version, _commit_timestamp) and the change feed exclude each other', async () => {
  const s = await sqlSession();
  try {
    await s.fails("CREATE TABLE c1 (id BIGINT, _change_type STRING) USING delta TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')", 'DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS', /_change_type/);
    await s.run('CREATE TABLE c2 (id BIGINT, _Commit_Version BIGINT) USING delta');
    await s.run('INSERT INTO c2 VALUES (1, 7)');
    await s.fails("ALTER TABLE c2 SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')", 'DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS', /_Commit_Version/);
    await s.run("CREATE TABLE c3 (id BIGINT) USING delta TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')");
    await s.fails('ALTER TABLE c3 ADD COLUMNS (_commit_timestamp TIMESTAMP)', 'DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS');
    await s.fails("CREATE TABLE c4 TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true') AS SELECT 1 AS id, 'x' AS _change_type", 'DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS');
    // without the feed such columns are ordinary
    await s.run("UPDATE c2 SET _commit_version = 8 WHERE id = 1");
    assert.deepEqual(await s.rows('SELECT * FROM c2'), [{ id: '1', _Commit_Version: '8' }]);
    assert.equal((await s.rows('DESCRIBE HISTORY c2')).length, 3);
  } finally {
    await s.close();
  }
});
