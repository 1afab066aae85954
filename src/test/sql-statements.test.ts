/**
 * floe SQL statements through executeSql: catalog (schemas, managed / external / path tables), DDL,
 * DML, queries with time travel and the change feed, utility statements, SET / RESET.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeltaTable } from '../table/delta-table.js';
import { exists, isRemoteStore, localOnly, locJoin, newRoot } from './store.js';
import { sqlSession } from './sql-helpers.js';

test('schemas: CREATE / SHOW / DROP [CASCADE], USE, default schema', async (t) => {
  if (localOnly(t, 'managed tables and the catalog live in the local warehouse folder')) return;
  const s = await sqlSession();
  try {
    assert.deepEqual(await s.rows('SHOW SCHEMAS'), [{ databaseName: 'default' }]);
    await s.run('CREATE SCHEMA sales');
    await s.run('CREATE SCHEMA IF NOT EXISTS sales');
    await s.fails('CREATE SCHEMA sales', 'SCHEMA_ALREADY_EXISTS');
    await s.run('CREATE DATABASE hr COMMENT "people"');
    assert.deepEqual((await s.rows('SHOW SCHEMAS')).map((r) => r.databaseName), ['default', 'hr', 'sales']);
    assert.deepEqual((await s.rows("SHOW SCHEMAS LIKE 's*'")).map((r) => r.databaseName), ['sales']);
    await s.run('CREATE TABLE sales.orders (id BIGINT) USING DELTA');
    await s.fails('DROP SCHEMA sales', 'SCHEMA_NOT_EMPTY');
    await s.run('USE sales');
    assert.deepEqual(await s.rows('SHOW TABLES'), [{ database: 'sales', tableName: 'orders', isTemporary: false }]);
    await s.run('DROP SCHEMA sales CASCADE');
    assert.ok(!existsSync(path.join(s.warehouse, 'sales')));
    assert.deepEqual(await s.rows('SHOW TABLES'), []); // back to default
    await s.run('DROP SCHEMA IF EXISTS sales');
    await s.fails('DROP SCHEMA sales', 'SCHEMA_NOT_FOUND');
    await s.fails('SHOW TABLES IN nope', 'SCHEMA_NOT_FOUND');
    await s.fails('DROP SCHEMA default', 'FLOE_CANNOT_DROP_DEFAULT_SCHEMA');
  } finally {
    await s.close();
  }
});

test('CREATE TABLE: columns, NOT NULL, COMMENT, PARTITIONED BY, TBLPROPERTIES, IF NOT EXISTS, OR REPLACE', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE people (
      id BIGINT NOT NULL COMMENT 'the key',
      name STRING,
      tags ARRAY<STRING>,
      attrs MAP<STRING, INT>,
      addr STRUCT<city: STRING, zip: INT>,
      amount DECIMAL(10, 2),
      born DATE,
      country STRING
    ) USING delta PARTITIONED BY (country)${await s.at('people')} COMMENT 'all people' TBLPROPERTIES ('delta.appendOnly' = 'false', delta.checkpointInterval = 5)`);
    const d = (await s.rows('DESCRIBE DETAIL people'))[0]!;
    assert.deepEqual(d.partitionColumns, ['country']);
    assert.equal(d.description, 'all people');
    assert.equal(d.name, 'spark_catalog.default.people');
    assert.equal((d.properties as Record<string, string>)['delta.checkpointInterval'], '5');
    const desc = await s.rows('DESCRIBE people');
    assert.deepEqual(desc.slice(0, 8).map((r) => [r.col_name, r.data_type]), [
      ['id', 'bigint'], ['name', 'string'], ['tags', 'array<string>'], ['attrs', 'map<string,int>'], ['addr', 'struct<city:string,zip:int>'],
      ['amount', 'decimal(10,2)'], ['born', 'date'], ['country', 'string'],
    ]);
    assert.equal(desc[0]!.comment, 'the key');
    assert.ok(desc.some((r) => r.col_name === '# Partition Information'));
    await s.fails("INSERT INTO people (id, name) VALUES (NULL, 'x')", 'DELTA_NOT_NULL_CONSTRAINT_VIOLATED');
    await s.fails('CREATE TABLE people (id INT)', 'TABLE_OR_VIEW_ALREADY_EXISTS');
    assert.match((await s.run('CREATE TABLE IF NOT EXISTS people (id INT)') as { message: string }).message, /already exists/);
    await s.run("INSERT INTO people (id, name, country) VALUES (1, 'a', 'UK')");
    await s.run(`CREATE OR REPLACE TABLE people (id INT, note STRING) USING delta${isRemoteStore ? ` LOCATION '${String((await s.rows('DESCRIBE DETAIL people'))[0]!.location)}'` : ''}`);
    assert.deepEqual((await s.rows('DESCRIBE people')).map((r) => r.col_name), ['id', 'note']);
    assert.deepEqual(await s.rows('SELECT * FROM people'), []);
    const h = await s.rows('DESCRIBE HISTORY people');
    assert.equal(h[0]!.operation, 'CREATE OR REPLACE TABLE');
    await s.fails('CREATE TABLE bad (a INT) USING parquet', 'FLOE_SQL_ANALYSIS_ERROR', /USING DELTA.*parquet/);
    await s.fails('CREATE TABLE bad (a INT) PARTITIONED BY (b)', 'FLOE_SQL_ANALYSIS_ERROR', /Partition column 'b'/);
    await s.fails('CREATE TABLE bad (a BIGINT GENERATED ALWAYS AS IDENTITY)', 'FLOE_SQL_ANALYSIS_ERROR', /IDENTITY.*line 1, column 28/);
    assert.ok(!existsSync(path.join(s.warehouse, 'default', 'bad')));
  } finally {
    await s.close();
  }
});

test('the session default enableChangeDataFeed applies to tables created after SET (seed SQL verbatim)', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE before_set (id INT) USING delta${await s.at('before_set')}`);
    await s.run('SET spark.databricks.delta.properties.defaults.enableChangeDataFeed = true;');
    await s.run(`CREATE TABLE delta_demo (id INT, name STRING, age INT)\nUSING delta${await s.at('delta_demo')}\nTBLPROPERTIES (delta.enableChangeDataFeed = true)`);
    await s.run(`CREATE TABLE after_set (id INT) USING delta${await s.at('after_set')}`);
    const props = async (t: string): Promise<Record<string, string>> => Object.fromEntries((await s.rows(`SHOW TBLPROPERTIES ${t}`)).map((r) => [r.key, r.value])) as Record<string, string>;
    assert.equal((await props('before_set'))['delta.enableChangeDataFeed'], undefined);
    assert.equal((await props('after_set'))['delta.enableChangeDataFeed'], 'true');
    assert.equal((await props('delta_demo'))['delta.enableChangeDataFeed'], 'true');
    await s.run('ALTER TABLE before_set\nSET TBLPROPERTIES (delta.enableChangeDataFeed = true)');
    assert.equal((await props('before_set'))['delta.enableChangeDataFeed'], 'true');
    assert.deepEqual(await s.rows('SHOW TBLPROPERTIES before_set (delta.enableChangeDataFeed)'), [{ key: 'delta.enableChangeDataFeed', value: 'true' }]);
    await s.run("ALTER TABLE before_set UNSET TBLPROPERTIES ('delta.enableChangeDataFeed')");
    assert.equal((await props('before_set'))['delta.enableChangeDataFeed'], undefined);
    await s.fails('ALTER TABLE before_set UNSET TBLPROPERTIES (nope)', 'DELTA_UNSET_NON_EXISTENT_PROPERTY');
    await s.run('ALTER TABLE before_set UNSET TBLPROPERTIES IF EXISTS (nope)');
    // SET shows, RESET restores the session's initial configuration
    assert.deepEqual(await s.rows('SET spark.databricks.delta.properties.defaults.enableChangeDataFeed'), [{ key: 'spark.databricks.delta.properties.defaults.enableChangeDataFeed', value: 'true' }]);
    assert.ok((await s.rows('SET')).length >= 1);
    await s.run('RESET');
    assert.equal(s.floe.config.get('spark.databricks.delta.properties.defaults.enableChangeDataFeed'), undefined);
    await s.run("SET my.key = 'quoted value'");
    assert.equal(s.floe.config.get('my.key'), 'quoted value');
    await s.run('RESET my.key');
    assert.equal(s.floe.config.get('my.key'), undefined);
  } finally {
    await s.close();
  }
});

test('INSERT INTO / INSERT OVERWRITE: VALUES, SELECT, column lists, positional matching, REPLACE WHERE', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, name STRING, part STRING) USING delta PARTITIONED BY (part)${await s.at('t')}`);
    const r = await s.rows("INSERT INTO t VALUES (1, 'a', 'x'), (2, 'b', 'y')");
    assert.deepEqual(r, [{ num_affected_rows: 2, num_inserted_rows: 2 }]);
    await s.run("INSERT INTO t (part, id) VALUES ('x', 3)");
    await s.run("INSERT INTO TABLE t SELECT id + 10, upper(name), part FROM t WHERE id < 3");
    assert.deepEqual(await s.rows('SELECT id, name, part FROM t ORDER BY id'), [
      { id: 1, name: 'a', part: 'x' }, { id: 2, name: 'b', part: 'y' }, { id: 3, name: null, part: 'x' }, { id: 11, name: 'A', part: 'x' }, { id: 12, name: 'B', part: 'y' },
    ]);
    await s.fails("INSERT INTO t VALUES (1, 'a')", 'INSERT_COLUMN_ARITY_MISMATCH');
    await s.fails('INSERT INTO t SELECT 1', 'INSERT_COLUMN_ARITY_MISMATCH');
    await s.fails("INSERT INTO t (nope) VALUES (1)", 'DELTA_COLUMN_NOT_FOUND', /line 1, column 16/);
    await s.run("INSERT INTO t REPLACE WHERE part = 'y' SELECT 20, 'z', 'y'");
    assert.deepEqual(await s.rows("SELECT id FROM t WHERE part = 'y'"), [{ id: 20 }]);
    await s.fails("INSERT INTO t REPLACE WHERE part = 'y' VALUES (21, 'z', 'x')", 'DELTA_REPLACE_WHERE_MISMATCH');
    await s.run("INSERT OVERWRITE t VALUES (100, 'only', 'x')");
    assert.deepEqual(await s.rows('SELECT id FROM t'), [{ id: 100 }]);
    assert.equal((await s.rows('DESCRIBE HISTORY t LIMIT 1'))[0]!.operation, 'WRITE');
    await s.fails('INSERT INTO nope VALUES (1)', 'TABLE_OR_VIEW_NOT_FOUND', /line 1, column 13/);
  } finally {
    await s.close();
  }
});

test('CTAS, external tables (LOCATION), path tables, DROP TABLE managed vs external', async () => {
  const s = await sqlSession();
  const extRoot = await newRoot('floe-ext-');
  const ext = locJoin(extRoot, 'ext_table');
  try {
    await s.run("CREATE TABLE ctas USING delta PARTITIONED BY (k) TBLPROPERTIES (delta.appendOnly = false) COMMENT 'c' AS SELECT 1 AS id, 'a' AS k UNION ALL SELECT 2, 'b'");
    assert.deepEqual(await s.rows('SELECT * FROM ctas ORDER BY id'), [{ id: 1, k: 'a' }, { id: 2, k: 'b' }]);
    assert.deepEqual((await s.rows('DESCRIBE DETAIL ctas'))[0]!.partitionColumns, ['k']);
    await s.run('CREATE OR REPLACE TABLE ctas AS SELECT 5 AS x');
    assert.deepEqual(await s.rows('SELECT * FROM ctas'), [{ x: 5 }]);

    await s.run(`CREATE TABLE ext (id INT) USING delta LOCATION '${ext}'`);
    await s.run('INSERT INTO ext VALUES (7)');
    const detail = (await s.rows('DESCRIBE EXTENDED ext')).find((r) => r.col_name === 'Type');
    assert.equal(detail!.data_type, 'EXTERNAL');
    // path tables
    assert.deepEqual(await s.rows(`SELECT * FROM delta.\`${ext}\``), [{ id: 7 }]);
    await s.run(`INSERT INTO delta.\`${ext}\` VALUES (8)`);
    await s.run(`UPDATE delta.\`${ext}\` SET id = id + 1 WHERE id = 8`);
    assert.deepEqual(await s.rows('SELECT * FROM spark_catalog.default.ext ORDER BY id'), [{ id: 7 }, { id: 9 }]);
    assert.deepEqual(await s.rows('SELECT count(*) AS n FROM main.default.ext'), [{ n: '2' }]);
    await s.fails('SELECT * FROM other_catalog.default.ext', 'FLOE_SQL_ANALYSIS_ERROR', /Unknown catalog/);
    // DROP external: unregistered only
    await s.run('DROP TABLE ext');
    assert.ok(await exists(ext, '_delta_log/00000000000000000000.json'));
    await s.fails('SELECT * FROM ext', 'TABLE_OR_VIEW_NOT_FOUND');
    // register the existing table again by LOCATION alone
    await s.run(`CREATE TABLE ext2 LOCATION '${ext}'`);
    assert.deepEqual(await s.rows('SELECT count(*) AS n FROM ext2'), [{ n: '2' }]);
    // DROP managed: data removed
    // (managed tables live in the local warehouse folder on every test store)
    const managed = path.join(s.warehouse, 'default', 'ctas');
    assert.ok(existsSync(managed));
    await s.run('DROP TABLE ctas');
    assert.ok(!existsSync(managed));
    await s.fails('DROP TABLE ctas', 'TABLE_OR_VIEW_NOT_FOUND');
    await s.run('DROP TABLE IF EXISTS ctas');
    // path table creation
    const p2 = locJoin(extRoot, 'by_path');
    await s.run(`CREATE TABLE delta.\`${p2}\` (a INT) USING delta`);
    assert.ok(await DeltaTable.isDeltaTable(s.floe, p2));
    await s.fails(`CREATE TABLE delta.\`${p2}\` (a INT)`, 'DELTA_TABLE_ALREADY_EXISTS');
    await s.fails('SELECT * FROM delta.`/no/such/table`', 'DELTA_TABLE_NOT_FOUND');
  } finally {
    await s.close();
  }
});

test('UPDATE / DELETE / TRUNCATE with aliases and Spark expressions', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, name STRING, score DOUBLE)${await s.at('t')}; INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', 2.5), (3, 'c', NULL)`);
    assert.deepEqual(await s.rows("UPDATE t AS x SET x.name = upper(x.name), score = nvl(score, 0) + 1 WHERE x.id >= 2"), [{ num_affected_rows: 2 }]);
    assert.deepEqual(await s.rows('SELECT * FROM t ORDER BY id'), [{ id: 1, name: 'a', score: 1.5 }, { id: 2, name: 'B', score: 3.5 }, { id: 3, name: 'C', score: 1 }]);
    await s.run("UPDATE t SET name = if(id = 1, 'one', name)");
    assert.deepEqual((await s.rows('SELECT name FROM t ORDER BY id')).map((r) => r.name), ['one', 'B', 'C']);
    await s.fails('UPDATE t SET nope = 1', 'DELTA_COLUMN_NOT_FOUND');
    assert.deepEqual(await s.rows('DELETE FROM t t2 WHERE t2.id IN (SELECT 2)'), [{ num_affected_rows: 1 }]);
    assert.deepEqual(await s.rows('DELETE FROM t WHERE id = 99'), [{ num_affected_rows: 0 }]);
    assert.deepEqual((await s.rows('SELECT id FROM t ORDER BY id')).map((r) => r.id), [1, 3]);
    await s.run('TRUNCATE TABLE t');
    assert.deepEqual(await s.rows('SELECT * FROM t'), []);
    assert.equal((await s.rows('DESCRIBE HISTORY t LIMIT 1'))[0]!.operation, 'DELETE');
  } finally {
    await s.close();
  }
});

test('MERGE: matched update / UPDATE SET * / delete, not matched insert / INSERT *, not matched by source', async () => {
  const s = await sqlSession({ 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true' });
  try {
    await s.run(`CREATE TABLE target (id INT, name STRING, n INT)${await s.at('target')}; INSERT INTO target VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3), (4, 'd', 4)`);
    await s.run(`CREATE TABLE updates (id INT, name STRING, n INT, op STRING)${await s.at('updates')}; INSERT INTO updates VALUES (1, 'A', 10, 'u'), (2, NULL, NULL, 'd'), (5, 'e', 5, 'i')`);
    const r = await s.rows(`MERGE INTO target t
      USING updates u
      ON t.id = u.id
      WHEN MATCHED AND u.op = 'd' THEN DELETE
      WHEN MATCHED THEN UPDATE SET name = u.name, t.n = t.n + u.n
      WHEN NOT MATCHED BY TARGET AND op = 'i' THEN INSERT (id, name, n) VALUES (u.id, u.name, u.n * 2)
      WHEN NOT MATCHED BY SOURCE AND t.id = 4 THEN UPDATE SET n = -1
      WHEN NOT MATCHED BY SOURCE THEN DELETE`);
    assert.deepEqual(r, [{ num_affected_rows: 5, num_updated_rows: 2, num_deleted_rows: 2, num_inserted_rows: 1 }]);
    assert.deepEqual(await s.rows('SELECT * FROM target ORDER BY id'), [{ id: 1, name: 'A', n: 11 }, { id: 4, name: 'd', n: -1 }, { id: 5, name: 'e', n: 10 }]);
    await s.fails('MERGE INTO target t USING updates u ON t.id = u.id WHEN MATCHED THEN UPDATE SET n = n + 1', 'FLOE_SQL_ANALYSIS_ERROR', /'n' is ambiguous.*line 1, column 85/);
    // As Spark resolves them: a NOT MATCHED clause sees only the source (names both sides have are the
    // source's), a NOT MATCHED BY SOURCE clause only the target; naming the other side is an error.
    await s.run(`CREATE TABLE t2 (id INT, n INT, note STRING)${await s.at('t2')}; INSERT INTO t2 VALUES (1, 1, 'x'), (2, 2, 'y')`);
    await s.run(`CREATE TABLE s2 (id INT, n INT)${await s.at('s2')}; INSERT INTO s2 VALUES (2, 20), (3, 30), (4, 5)`);
    assert.deepEqual(await s.rows(`MERGE INTO t2 USING s2 ON t2.id = s2.id
      WHEN NOT MATCHED AND n > 10 THEN INSERT (id, n) VALUES (id, n * 10)
      WHEN NOT MATCHED BY SOURCE AND n < 2 AND note = 'x' THEN UPDATE SET n = n - 100`), [{ num_affected_rows: 2, num_updated_rows: 1, num_deleted_rows: 0, num_inserted_rows: 1 }]);
    assert.deepEqual(await s.rows('SELECT id, n, note FROM t2 ORDER BY id'), [{ id: 1, n: -99, note: 'x' }, { id: 2, n: 2, note: 'y' }, { id: 3, n: 300, note: null }]);
    await s.fails(`MERGE INTO t2 USING s2 ON t2.id = s2.id WHEN NOT MATCHED AND note IS NULL THEN INSERT (id, n) VALUES (id, n)`, 'DELTA_MERGE_UNRESOLVED_EXPRESSION', /note IS NULL.*WHEN NOT MATCHED/);
    await s.fails(`MERGE INTO t2 USING s2 ON t2.id = s2.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET n = s2.n`, 'DELTA_MERGE_UNRESOLVED_EXPRESSION', /WHEN NOT MATCHED BY SOURCE/);
    // UPDATE SET * / INSERT * from a subquery source
    await s.run(`MERGE INTO target USING (SELECT 4 AS id, 'D' AS name, 44 AS n UNION ALL SELECT 6, 'f', 6) AS src ON target.id = src.id
      WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *`);
    assert.deepEqual(await s.rows('SELECT * FROM target ORDER BY id'), [{ id: 1, name: 'A', n: 11 }, { id: 4, name: 'D', n: 44 }, { id: 5, name: 'e', n: 10 }, { id: 6, name: 'f', n: 6 }]);
    // duplicate source rows matching one target row
    await s.fails('MERGE INTO target t USING (SELECT 1 AS id UNION ALL SELECT 1) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET n = 0', 'DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE');
    // source time travel
    // INSERT * takes the target's columns by name; the source's extra column `op` is ignored (Spark)...
    await s.run('MERGE INTO target t USING updates VERSION AS OF 1 AS u ON t.id = u.id WHEN NOT MATCHED THEN INSERT *');
    assert.deepEqual(await s.rows('SELECT * FROM target WHERE id = 2'), [{ id: 2, name: null, n: null }]);
    await s.run('DELETE FROM target WHERE id = 2');
    // ...and added to the target with schema evolution.
    await s.run('MERGE WITH SCHEMA EVOLUTION INTO target t USING updates VERSION AS OF 1 AS u ON t.id = u.id WHEN NOT MATCHED THEN INSERT *');
    assert.deepEqual(await s.rows('SELECT * FROM target WHERE id = 2'), [{ id: 2, name: null, n: null, op: 'd' }]);
    await s.fails('MERGE INTO target USING target ON 1 = 1 WHEN MATCHED THEN DELETE', 'FLOE_SQL_ANALYSIS_ERROR', /different names/);
    // the change feed saw MERGE's updates
    const cdf = await s.rows("SELECT _change_type, count(*) AS n FROM table_changes('target', 2, 2) GROUP BY 1 ORDER BY 1");
    assert.ok(cdf.length > 0);
    assert.ok(cdf.some((x) => x._change_type === 'update_postimage'));
  } finally {
    await s.close();
  }
});

test('queries: joins, CTEs, windows, aggregates, time travel (VERSION / TIMESTAMP AS OF, @v), table_changes(_by_path)', async () => {
  const s = await sqlSession({ 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true' });
  try {
    await s.run(`CREATE TABLE a (id INT, g STRING)${await s.at('a')}; INSERT INTO a VALUES (1, 'x'), (2, 'x'), (3, 'y')`);
    await s.run(`CREATE TABLE b (id INT, v INT)${await s.at('b')}; INSERT INTO b VALUES (1, 10), (2, 20), (3, 30)`);
    const q = `WITH j AS (SELECT a.id, a.g, b.v FROM a JOIN b ON a.id = b.id)
      SELECT g, sum(v) AS total, count(*) AS n, collect_list(id) AS ids,
             row_number() OVER (ORDER BY g DESC) AS rn
      FROM j GROUP BY g ORDER BY g`;
    assert.deepEqual(await s.rows(q), [{ g: 'x', total: '30', n: '2', ids: [1, 2], rn: '2' }, { g: 'y', total: '30', n: '1', ids: [3], rn: '1' }]);
    assert.deepEqual(await s.rows('SELECT x.id FROM a x, b y WHERE x.id = y.id AND y.v > 15 ORDER BY 1'), [{ id: 2 }, { id: 3 }]);
    assert.deepEqual(await s.rows('SELECT `id` FROM default.`a` WHERE id IN (SELECT id FROM b WHERE v = 20)'), [{ id: 2 }]);
    assert.deepEqual(await s.rows('SELECT * EXCEPT (g) FROM a WHERE id = 1'), [{ id: 1 }]);
    // time travel
    await s.run('DELETE FROM a WHERE id = 1'); // version 2
    assert.equal((await s.rows('SELECT * FROM a VERSION AS OF 1')).length, 3);
    assert.equal((await s.rows('SELECT * FROM a FOR VERSION AS OF 1')).length, 3);
    assert.equal((await s.rows('SELECT * FROM a@v1')).length, 3);
    assert.equal((await s.rows('SELECT * FROM a@v0')).length, 0);
    assert.equal((await s.rows('SELECT * FROM a')).length, 2);
    const h = await s.rows('DESCRIBE HISTORY a');
    const ts1 = String(h.find((e) => e.version === 1)!.timestamp);
    assert.equal((await s.rows(`SELECT * FROM a TIMESTAMP AS OF '${ts1}'`)).length, 3);
    // both versions in one query
    assert.deepEqual(await s.rows('SELECT (SELECT count(*) FROM a@v1) - (SELECT count(*) FROM a) AS d'), [{ d: '1' }]);
    // change feed
    assert.deepEqual(await s.rows("SELECT id, _change_type, _commit_version FROM table_changes('a', 2)"), [{ id: 1, _change_type: 'delete', _commit_version: '2' }]);
    assert.equal((await s.rows("SELECT * FROM table_changes('default.a', 0, 1)")).length, 3);
    assert.equal((await s.rows(`SELECT * FROM table_changes('a', '${ts1}')`)).length, 4);
    // bounds as constant expressions: TIMESTAMP literals, casts, arithmetic, current_timestamp() - INTERVAL
    assert.equal((await s.rows(`SELECT * FROM table_changes('a', TIMESTAMP '${ts1}')`)).length, 4);
    assert.equal((await s.rows(`SELECT * FROM table_changes('a', CAST('${ts1}' AS TIMESTAMP), 1 + 1)`)).length, 4);
    assert.equal((await s.rows("SELECT * FROM table_changes('a', 0 + 1, 2)")).length, 4);
    assert.equal((await s.rows("SELECT * FROM table_changes('a', current_timestamp() - INTERVAL 1 DAY)")).length, (await s.rows("SELECT * FROM table_changes('a', 0)")).length);
    await s.fails("SELECT * FROM table_changes('a', true)", 'FLOE_SQL_ANALYSIS_ERROR', /version number or a timestamp, not a BOOLEAN/);
    await s.fails("SELECT * FROM table_changes('a', nope)", 'FLOE_SQL_ANALYSIS_ERROR', /the start must be a version number or a timestamp/);
    const loc = String((await s.rows('DESCRIBE DETAIL a'))[0]!.location);
    assert.equal((await s.rows(`SELECT * FROM table_changes_by_path('${loc}', 1, 2)`)).length, 4);
    await s.fails("SELECT * FROM table_changes('a', 5)", /DELTA_CDC_START_VERSION_AFTER_LATEST|DELTA_INVALID_CDC_RANGE/);
    await s.fails('SELECT * FROM table_changes(a, 1)', 'FLOE_SQL_ANALYSIS_ERROR');
    await s.fails('SELECT nope FROM a', 'FLOE_SQL_ANALYSIS_ERROR', /nope.*line 1, column 1/);
    // VALUES and FROM-less queries
    assert.deepEqual(await s.rows('VALUES (1, 2)'), [{ col0: 1, col1: 2 }]);
  } finally {
    await s.close();
  }
});

test('DESCRIBE HISTORY / DETAIL, VACUUM [RETAIN n HOURS] [DRY RUN], OPTIMIZE [WHERE], RESTORE, SHOW CREATE TABLE, SHOW COLUMNS', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT, p STRING) PARTITIONED BY (p)${await s.at('t')}`);
    for (let i = 0; i < 3; i++) await s.run(`INSERT INTO t VALUES (${i}, 'a'), (${i + 10}, 'b')`);
    assert.equal((await s.rows('DESCRIBE HISTORY t')).length, 4);
    assert.equal((await s.rows('DESCRIBE HISTORY t LIMIT 2')).length, 2);
    assert.equal((await s.rows('DESCRIBE DETAIL t'))[0]!.numFiles, 6);
    const opt = await s.rows("OPTIMIZE t WHERE p = 'a'");
    assert.equal((opt[0]!.metrics as Record<string, number>).numFilesRemoved, 3);
    assert.equal((await s.rows('DESCRIBE DETAIL t'))[0]!.numFiles, 4);
    await s.fails('OPTIMIZE t ZORDER BY (p)', 'DELTA_ZORDERING_ON_PARTITION_COLUMN');
    await s.fails('VACUUM t RETAIN 0 HOURS', 'DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT');
    await s.run('SET spark.databricks.delta.retentionDurationCheck.enabled = false');
    const dry = await s.rows('VACUUM t RETAIN 0 HOURS DRY RUN');
    assert.equal(dry.length, 3);
    assert.equal((await s.run('VACUUM t RETAIN 0 HOURS') as { message: string }).message, 'deleted 3 file(s)');
    const restored = await s.rows('RESTORE TABLE t TO VERSION AS OF 4');
    assert.equal(restored[0]!.num_of_files_after_restore, 4);
    await s.fails('RESTORE t TO VERSION AS OF 1', 'DELTA_CANNOT_RESTORE_MISSING_FILES');
    const ts = String((await s.rows('DESCRIBE HISTORY t')).find((e) => e.version === 4)!.timestamp);
    await s.run(`RESTORE t TO TIMESTAMP AS OF '${ts}'`);
    assert.equal((await s.rows('SELECT count(*) AS n FROM t'))[0]!.n, '6');
    const ddl = String((await s.rows('SHOW CREATE TABLE t'))[0]!.createtab_stmt);
    assert.match(ddl, /CREATE TABLE spark_catalog\.default\.t \(\n {2}`id` INT,\n {2}`p` STRING\)\nUSING delta\nPARTITIONED BY \(`p`\)/);
    assert.deepEqual(await s.rows('SHOW COLUMNS IN t'), [{ col_name: 'id' }, { col_name: 'p' }]);
    assert.deepEqual(await s.rows('DESCRIBE SELECT id FROM t'), [{ col_name: 'id', data_type: 'integer', comment: null }]);
  } finally {
    await s.close();
  }
});

test('multiple statements run in order; a parse error anywhere runs nothing; the last result is returned', async (t) => {
  if (localOnly(t, 'managed tables and the catalog live in the local warehouse folder')) return;
  const s = await sqlSession();
  try {
    await s.fails("CREATE TABLE t (id INT); INSERT INTO t VALUES (1); SELEC 1", 'FLOE_SQL_PARSE_ERROR', /line 1, column 52/);
    await s.fails('SELECT * FROM t', 'TABLE_OR_VIEW_NOT_FOUND');
    const r = await s.run("CREATE TABLE t (id INT); -- a comment; with a semicolon\nINSERT INTO t VALUES (1); /* ; */ SELECT id, ';' AS semi FROM t");
    assert.equal(r.kind, 'rows');
    assert.deepEqual(await s.rows('SELECT id, \';\' AS semi FROM t'), [{ id: 1, semi: ';' }]);
    await s.fails('', 'FLOE_SQL_PARSE_ERROR', /No SQL statement/);
    await s.fails('  -- only a comment', 'FLOE_SQL_PARSE_ERROR');
  } finally {
    await s.close();
  }
});

test('catalog: a failed CREATE leaves no entry and no folder; entries are written atomically', async (t) => {
  if (localOnly(t, 'managed tables and the catalog live in the local warehouse folder')) return;
  const s = await sqlSession();
  try {
    await s.fails('CREATE TABLE t AS SELECT nope', 'FLOE_SQL_ANALYSIS_ERROR');
    assert.ok(!existsSync(path.join(s.warehouse, 'default', 't')));
    assert.ok(!existsSync(path.join(s.warehouse, 'default', '.floe-catalog', 't.json')));
    await s.run('CREATE TABLE t (id INT)');
    const files = await fs.readdir(path.join(s.warehouse, 'default', '.floe-catalog'));
    assert.deepEqual(files, ['t.json']); // no temp or lock files left
    const entry = JSON.parse(await fs.readFile(path.join(s.warehouse, 'default', '.floe-catalog', 't.json'), 'utf8'));
    assert.equal(entry.type, 'MANAGED');
    await s.fails('CREATE TABLE `bad name` (id INT)', 'FLOE_SQL_ANALYSIS_ERROR', /Invalid table name/);
  } finally {
    await s.close();
  }
});

test('DROP TABLE then CREATE TABLE with the same name in one session reads the new table', async () => {
  const s = await sqlSession();
  try {
    await s.run(`CREATE TABLE t (id INT)${await s.at('t')}; INSERT INTO t VALUES (1), (2)`);
    await s.run(`DROP TABLE t; CREATE TABLE t (name STRING)${await s.at('t')}; INSERT INTO t VALUES ('x')`);
    assert.deepEqual(await s.rows('SELECT * FROM t'), [{ name: 'x' }]);
  } finally {
    await s.close();
  }
});
