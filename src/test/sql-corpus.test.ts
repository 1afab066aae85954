/**
 * A corpus of statements from the Delta Lake and Databricks documentation (quickstart, table batch
 * reads and writes, update / delete / merge, table utility commands, constraints, column mapping,
 * change data feed, CONVERT TO DELTA), run unchanged in order in one session. Only folder paths
 * (`/tmp/delta/...`) are replaced by temporary folders, and a few seed rows are inserted so that
 * the statements have data to act on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers.js';
import { sqlSession } from './sql-helpers.js';

/** [statement, optional check of its rows]. `$DIR` is a temporary folder. */
const CORPUS: [string, ((rows: Record<string, unknown>[]) => void)?][] = [
  // quickstart / table batch reads and writes
  [`CREATE TABLE IF NOT EXISTS default.people10m (
  id INT,
  firstName STRING,
  middleName STRING,
  lastName STRING,
  gender STRING,
  birthDate TIMESTAMP,
  ssn STRING,
  salary INT
) USING DELTA`],
  [`CREATE OR REPLACE TABLE default.people10m (
  id INT,
  firstName STRING,
  middleName STRING,
  lastName STRING,
  gender STRING,
  birthDate TIMESTAMP,
  ssn STRING,
  salary INT
) USING DELTA`],
  [`INSERT INTO default.people10m VALUES
  (10, 'Pennie', 'Carry', 'Hirschmann', 'F', '1955-07-02T04:00:00.000+0000', '981-43-9345', 56172),
  (11, 'An', 'Amira', 'Cowper', 'F', '1992-02-08T05:00:00.000+0000', '978-97-8086', 40203),
  (12, 'Quyen', 'Marlen', 'Dome', 'M', '1970-10-11T04:00:00.000+0000', '957-57-8246', 53417)`],
  ['SELECT * FROM default.people10m', (r) => assert.equal(r.length, 3)],
  [`CREATE TABLE default.people10m_upload (
  id INT,
  firstName STRING,
  middleName STRING,
  lastName STRING,
  gender STRING,
  birthDate TIMESTAMP,
  ssn STRING,
  salary INT
) USING DELTA`],
  [`INSERT INTO default.people10m_upload VALUES
  (9999998, 'Billy', 'Tommie', 'Luppitt', 'M', '1992-09-17T04:00:00.000+0000', '953-38-9452', 55250),
  (9999999, 'Elias', 'Cyril', 'Leadbetter', 'M', '1984-05-22T04:00:00.000+0000', '906-51-2137', 48500),
  (10000000, 'Joshua', 'Chas', 'Broggio', 'M', '1968-07-22T04:00:00.000+0000', '988-61-6247', 90000)`],
  ['SELECT * FROM default.people10m WHERE id >= 9999998', (r) => assert.equal(r.length, 0)],
  [`MERGE INTO people10m
USING people10m_upload
ON people10m.id = people10m_upload.id
WHEN MATCHED THEN
  UPDATE SET
    id = people10m_upload.id,
    firstName = people10m_upload.firstName,
    middleName = people10m_upload.middleName,
    lastName = people10m_upload.lastName,
    gender = people10m_upload.gender,
    birthDate = people10m_upload.birthDate,
    ssn = people10m_upload.ssn,
    salary = people10m_upload.salary
WHEN NOT MATCHED
  THEN INSERT (
    id,
    firstName,
    middleName,
    lastName,
    gender,
    birthDate,
    ssn,
    salary
  )
  VALUES (
    people10m_upload.id,
    people10m_upload.firstName,
    people10m_upload.middleName,
    people10m_upload.lastName,
    people10m_upload.gender,
    people10m_upload.birthDate,
    people10m_upload.ssn,
    people10m_upload.salary
  )`, (r) => assert.equal(r[0]!.num_inserted_rows, 3)],
  ['SELECT * FROM default.people10m WHERE id >= 9999998', (r) => assert.equal(r.length, 3)],
  ["UPDATE people10m SET gender = 'Female' WHERE gender = 'F'"],
  ["UPDATE people10m SET gender = 'Male' WHERE gender = 'M'"],
  ["DELETE FROM people10m WHERE birthDate < '1955-01-01'"],
  ['DESCRIBE HISTORY people10m', (r) => assert.ok(r.length >= 6)],
  ['DESCRIBE DETAIL people10m'],
  ['SELECT * FROM default.people10m VERSION AS OF 0', (r) => assert.equal(r.length, 0)],
  ['SELECT * FROM people10m@v2', (r) => assert.equal(r.length, 3)],
  ['OPTIMIZE people10m'],
  ['VACUUM people10m'],
  ['VACUUM people10m RETAIN 168 HOURS DRY RUN'],
  ['RESTORE TABLE people10m TO VERSION AS OF 2'],
  ['SELECT count(*) AS n FROM people10m', (r) => assert.equal(Number(r[0]!.n), 3)],
  // merge: every clause kind
  ['CREATE TABLE target (key INT, value STRING, lastSeen TIMESTAMP, active BOOLEAN, marked_for_deletion BOOLEAN) USING DELTA'],
  ['CREATE TABLE source (key INT, value STRING, timestamp TIMESTAMP) USING DELTA'],
  ["INSERT INTO target VALUES (1, 'a', '2024-01-01', true, false), (2, 'b', '2024-01-01', true, true), (3, 'c', '2024-01-01', true, false)"],
  ["INSERT INTO source VALUES (1, 'A', '2024-02-01'), (2, 'B', '2024-02-01'), (4, 'D', '2024-02-01')"],
  [`MERGE INTO target
USING source
ON source.key = target.key
WHEN MATCHED AND target.marked_for_deletion THEN
  DELETE
WHEN MATCHED THEN
  UPDATE SET target.lastSeen = source.timestamp, target.value = source.value
WHEN NOT MATCHED THEN
  INSERT (key, value, lastSeen, active, marked_for_deletion) VALUES (source.key, source.value, source.timestamp, true, false)
WHEN NOT MATCHED BY SOURCE AND target.lastSeen >= (current_date() - INTERVAL '5' DAY) THEN
  UPDATE SET target.active = false
WHEN NOT MATCHED BY SOURCE THEN
  DELETE`],
  ['SELECT key, value FROM target ORDER BY key', (r) => assert.deepEqual(r, [{ key: 1, value: 'A' }, { key: 4, value: 'D' }])],
  ['CREATE TABLE logs (uniqueId INT, msg STRING) USING DELTA'],
  ['CREATE TABLE newDedupedLogs (uniqueId INT, msg STRING) USING DELTA'],
  ["INSERT INTO newDedupedLogs VALUES (1, 'x')"],
  [`MERGE INTO logs
USING newDedupedLogs
ON logs.uniqueId = newDedupedLogs.uniqueId
WHEN NOT MATCHED
  THEN INSERT *`],
  [`MERGE INTO logs
USING newDedupedLogs
ON logs.uniqueId = newDedupedLogs.uniqueId
WHEN MATCHED THEN
  UPDATE SET *
WHEN NOT MATCHED THEN
  INSERT *
WHEN NOT MATCHED BY SOURCE THEN
  DELETE`],
  ['TRUNCATE TABLE logs'],
  // partitions, replace where, overwrite
  ['CREATE TABLE events (eventId STRING, date DATE, eventType STRING, data STRING) USING DELTA PARTITIONED BY (date)'],
  ['CREATE TABLE newEvents (eventId STRING, date DATE, eventType STRING, data STRING) USING DELTA'],
  ["INSERT INTO newEvents VALUES ('e1', '2017-01-02', 'click', '{}'), ('e2', '2017-02-01', 'view', '{}')"],
  ['INSERT INTO events SELECT * FROM newEvents'],
  ["INSERT INTO TABLE events REPLACE WHERE date >= '2017-01-01' AND date <= '2017-01-31' SELECT * FROM newEvents WHERE date >= '2017-01-01' AND date <= '2017-01-31'"],
  ['INSERT OVERWRITE TABLE events SELECT * FROM newEvents'],
  ["OPTIMIZE events WHERE date >= '2017-01-01'"],
  ["DELETE FROM events WHERE date < '2017-01-01'"],
  ['SELECT * FROM events', (r) => assert.equal(r.length, 2)],
  // constraints
  ["ALTER TABLE default.people10m ADD CONSTRAINT dateWithinRange CHECK (birthDate > '1900-01-01')"],
  ['DESCRIBE DETAIL default.people10m'],
  ['ALTER TABLE default.people10m DROP CONSTRAINT dateWithinRange'],
  ['ALTER TABLE default.people10m CHANGE COLUMN middleName DROP NOT NULL'],
  ['ALTER TABLE default.people10m ALTER COLUMN ssn SET NOT NULL'],
  ["ALTER TABLE default.people10m ADD CONSTRAINT validIds CHECK (id > 1 and id < 99999999)"],
  ['SHOW TBLPROPERTIES default.people10m', (r) => assert.ok(r.some((x) => x.key === 'delta.constraints.validids'))],
  // schema changes and column mapping
  ["ALTER TABLE people10m ADD COLUMNS (nickname STRING COMMENT 'optional' AFTER firstName)"],
  ["ALTER TABLE people10m ALTER COLUMN nickname COMMENT 'what friends say'"],
  ['ALTER TABLE people10m ALTER COLUMN nickname FIRST'],
  [`ALTER TABLE people10m SET TBLPROPERTIES (
   'delta.minReaderVersion' = '2',
   'delta.minWriterVersion' = '5',
   'delta.columnMapping.mode' = 'name'
)`],
  ['ALTER TABLE people10m RENAME COLUMN nickname TO alias'],
  ['ALTER TABLE people10m DROP COLUMN alias'],
  ['ALTER TABLE people10m DROP COLUMNS (middleName, gender)'],
  ['SELECT * FROM people10m ORDER BY id', (r) => assert.deepEqual(Object.keys(r[0]!), ['id', 'firstName', 'lastName', 'birthDate', 'ssn', 'salary'])],
  ['SHOW CREATE TABLE people10m'],
  // change data feed
  ['CREATE TABLE student (id INT, name STRING, age INT) TBLPROPERTIES (delta.enableChangeDataFeed = true)'],
  ['ALTER TABLE events SET TBLPROPERTIES (delta.enableChangeDataFeed = true)'],
  ['set spark.databricks.delta.properties.defaults.enableChangeDataFeed = true'],
  ["INSERT INTO student VALUES (1, 'a', 20), (2, 'b', 21)"],
  ['UPDATE student SET age = 22 WHERE id = 2'],
  ["SELECT * FROM table_changes('student', 0, 10)", (r) => assert.equal(r.length, 4)],
  ["SELECT * FROM table_changes('student', 0)", (r) => assert.equal(r.length, 4)],
  ["SELECT * FROM table_changes('`default`.`student`', 2)", (r) => assert.equal(r.length, 2)],
  ["SELECT * FROM table_changes_by_path('$DIR/default/student', 1)", (r) => assert.equal(r.length, 4)],
  // path tables and CONVERT TO DELTA
  ['CREATE TABLE delta.`$DIR/delta-table` (id BIGINT) USING DELTA'],
  ['INSERT INTO delta.`$DIR/delta-table` SELECT id FROM range(5)'],
  ['SELECT * FROM delta.`$DIR/delta-table`', (r) => assert.equal(r.length, 5)],
  ["DESCRIBE HISTORY '$DIR/delta-table'", (r) => assert.equal(r.length, 2)],
  ['DESCRIBE HISTORY delta.`$DIR/delta-table`'],
  ["DESCRIBE DETAIL '$DIR/delta-table'"],
  ['RESTORE TABLE delta.`$DIR/delta-table` TO VERSION AS OF 0'],
  ['CONVERT TO DELTA parquet.`$DIR/parquet-table`'],
  ['CONVERT TO DELTA parquet.`$DIR/parquet-partitioned` PARTITIONED BY (part_col_1 INT, part_col_2 INT)'],
  ['SELECT * FROM delta.`$DIR/parquet-partitioned` ORDER BY a', (r) => assert.deepEqual(r, [{ a: 1, part_col_1: 1, part_col_2: 2 }])],
];

test('statements from the Delta Lake / Databricks documentation run unchanged', async () => {
  const s = await sqlSession();
  try {
    const dir = s.warehouse;
    // Parquet folders for CONVERT TO DELTA
    await fs.mkdir(path.join(dir, 'parquet-table'));
    await s.floe.engine.run(`COPY (SELECT 1 AS a) TO '${path.join(dir, 'parquet-table', 'f.parquet')}' (FORMAT parquet)`);
    await fs.mkdir(path.join(dir, 'parquet-partitioned', 'part_col_1=1', 'part_col_2=2'), { recursive: true });
    await s.floe.engine.run(`COPY (SELECT 1::INT AS a) TO '${path.join(dir, 'parquet-partitioned', 'part_col_1=1', 'part_col_2=2', 'f.parquet')}' (FORMAT parquet)`);
    const failures: string[] = [];
    for (const [stmt, check] of CORPUS) {
      const sql = stmt.replaceAll('$DIR', dir);
      try {
        const rows = await s.rows(sql);
        check?.(rows);
      } catch (e) {
        failures.push(`${sql.split('\n')[0]!.slice(0, 100)}\n    → ${(e as Error).message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failures, []);
  } finally {
    await s.close();
  }
});

void tempDir;
