/**
 * The protocol checker itself: it must accept real tables written by Spark, Databricks and delta-rs
 * (if one of them "violates" a rule, the rule is wrong) and must report deliberately broken copies.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { copyTable, corpus, tempDir, corpusTable } from './helpers.js';
import { checkTable } from './protocol-checker.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let floe: Floe;
before(async () => {
  floe = await Floe.create();
});
after(async () => {
  await floe.close();
});

const commitFile = (dir: string, v: number): string => path.join(dir, '_delta_log', `${String(v).padStart(20, '0')}.json`);

/** Rewrites one commit file through a function of its actions. */
async function editCommit(dir: string, v: number, fn: (actions: Json[]) => Json[]): Promise<void> {
  const f = commitFile(dir, v);
  const actions = (await fs.readFile(f, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Json);
  await fs.writeFile(f, fn(actions).map((a) => JSON.stringify(a)).join('\n') + '\n');
}

/** Edits the stats of every add in a commit. */
function editStats(fn: (stats: Json, add: Json) => void): (actions: Json[]) => Json[] {
  return (actions) => actions.map((a) => {
    if (a.add?.stats) {
      const s = JSON.parse(a.add.stats) as Json;
      fn(s, a.add);
      a.add.stats = JSON.stringify(s);
    }
    return a;
  });
}

function expectViolation(violations: string[], re: RegExp): void {
  assert.ok(violations.some((v) => re.test(v)), `expected a violation matching ${re}, got:\n  ${violations.join('\n  ') || '(none)'}`);
}

// ---------------------------------------------------------------------------------------------
// Valid tables pass
// ---------------------------------------------------------------------------------------------

const VALID = [
  'dat/all_primitive_types/delta',
  'dat/basic_append/delta',
  'dat/basic_partitioned/delta',
  'dat/multi_partitioned/delta',
  'dat/multi_partitioned_2/delta',
  'dat/nested_types/delta',
  'dat/no_replay/delta',
  'dat/no_stats/delta',
  'dat/stats_as_struct/delta',
  'dat/with_checkpoint/delta',
  'dat/with_schema_change/delta',
  'kernel-rs/data/table-with-dv-small',
  'kernel-rs/data/basic-decimal-table',
  'kernel-rs/data/app-txn-checkpoint',
  'kernel-rs/data/mixed-nulls',
  'kernel-rs/data/timestamp-truncation-stats',
  'kernel-rs/golden/basic-with-inserts-deletes-checkpoint/delta',
  'delta-spark/kernel-defaults-resources/data-reader-partition-values-column-mapping-name',
  'delta-spark/kernel-defaults-resources/basic-with-checkpoint',
  'delta-spark/kernel-defaults-resources/basic-dv-with-checkpoint',
  'delta-spark/spark-test-resources/delta-1.2.1',
  'delta-rs/table_with_column_mapping',
];

test('real tables written by Spark, Databricks and delta-rs pass the checker', async (t) => {
  const root = corpusTable(t, 'dat');
  if (!root) return;
  const failures: string[] = [];
  for (const rel of VALID) {
    const v = await checkTable(path.join(path.dirname(root), rel));
    if (v.length) failures.push(`${rel}:\n    ${v.join('\n    ')}`);
  }
  assert.deepEqual(failures, []);
});

test('a table floe writes (partitions, checkpoint, overwrite, txn) passes the checker', async () => {
  const p = path.join(await tempDir('floe-chk-'), 't');
  await DeltaTable.create(floe, { path: p, schema: [{ name: 'id', type: 'long' }, { name: 'p', type: 'string' }], partitionBy: ['p'], properties: { 'delta.checkpointInterval': '2' } });
  await floe.duckdbSql("SELECT * FROM (VALUES (1::BIGINT, 'a b'), (2, NULL)) t(id, p)").write.delta(p, { mode: 'append' });
  await floe.duckdbSql("SELECT 3::BIGINT AS id, 'x/y' AS p").write.delta(p, { mode: 'append', txnAppId: 'a', txnVersion: 1 });
  await floe.duckdbSql("SELECT 4::BIGINT AS id, 'a b' AS p").write.delta(p, { mode: 'overwrite', replaceWhere: "p = 'a b'" });
  assert.deepEqual(await checkTable(p), []);
});

// ---------------------------------------------------------------------------------------------
// Broken copies fail
// ---------------------------------------------------------------------------------------------

test('an add whose size differs from the file on disk is reported', async (t) => {
  const src = corpusTable(t, 'dat/basic_append/delta');
  if (!src) return;
  const dir = await copyTable(src);
  await editCommit(dir, 0, (as) => as.map((a) => (a.add ? { add: { ...a.add, size: a.add.size + 1 } } : a)));
  expectViolation(await checkTable(dir), /commit 0: add .*size \d+ but the file has \d+ bytes/);
});

test('stats with a wrong numRecords, min, max or nullCount are reported', async (t) => {
  const src = corpusTable(t, 'dat/basic_append/delta');
  if (!src) return;
  const dir = await copyTable(src);
  await editCommit(dir, 0, editStats((s) => {
    s.numRecords += 1;
  }));
  expectViolation(await checkTable(dir), /stats\.numRecords = 4 but the Parquet file has 3 rows/);

  const d2 = await copyTable(src);
  await editCommit(d2, 1, editStats((s) => {
    s.minValues.number = s.minValues.number + 1;
    s.maxValues.a_float = s.maxValues.a_float - 1;
    s.nullCount.letter = 1;
  }));
  const v = await checkTable(d2);
  expectViolation(v, /commit 1: .*stats\.minValues\.number = 5 is wrong/);
  expectViolation(v, /commit 1: .*stats\.maxValues\.a_float = .* is wrong/);
  expectViolation(v, /commit 1: .*stats\.nullCount\.letter = 1 but the file has 0 nulls/);

  const d3 = await copyTable(src);
  await editCommit(d3, 0, editStats((s) => {
    s.minValues.nope = 1;
  }));
  expectViolation(await checkTable(d3), /stats min for nope, which is not a column of the table/);
});

test('bad partition values are reported: wrong serialization, wrong keys', async (t) => {
  const src = corpusTable(t, 'dat/multi_partitioned/delta');
  if (!src) return;
  const dir = await copyTable(src);
  await editCommit(dir, 0, (as) => as.map((a) => {
    if (a.add && a.add.partitionValues.date === '1970-01-02') a.add.partitionValues.date = '01/02/1970';
    return a;
  }));
  expectViolation(await checkTable(dir), /partition value of date \(date\): '01\/02\/1970' is not \{year\}-\{month\}-\{day\}/);

  const src2 = corpusTable(t, 'dat/basic_partitioned/delta');
  if (!src2) return;
  const d2 = await copyTable(src2);
  await editCommit(d2, 0, (as) => as.map((a) => {
    if (a.add) a.add.partitionValues = { Letter: a.add.partitionValues.letter };
    return a;
  }));
  expectViolation(await checkTable(d2), /partitionValues keys \[Letter\] differ from the partition columns' physical names \[letter\]/);

  const src3 = corpusTable(t, 'dat/multi_partitioned_2/delta');
  if (!src3) return;
  const d3 = await copyTable(src3);
  await editCommit(d3, 0, (as) => as.map((a) => {
    if (a.add) a.add.partitionValues = { ...a.add.partitionValues, bool: 'yes', amount: '12.3.4', time: '2021-01-01T00:00:00' };
    return a;
  }));
  const v3 = await checkTable(d3);
  expectViolation(v3, /partition value of bool \(boolean\): 'yes'/);
  expectViolation(v3, /partition value of amount \(decimal/);
  expectViolation(v3, /partition value of time \(timestamp\)/);
});

test('missing or wrongly encoded data file paths are reported', async (t) => {
  const src = corpusTable(t, 'dat/multi_partitioned/delta');
  if (!src) return;
  const dir = await copyTable(src);
  // Single- instead of double-encoding: "letter=%2F%2520%25f" is the folder name, the log must say %252F...
  await editCommit(dir, 2, (as) => as.map((a) => {
    if (a.add?.path.startsWith('letter=%252F')) a.add.path = decodeURIComponent(a.add.path);
    return a;
  }));
  expectViolation(await checkTable(dir), /commit 2: add letter=%2F%2520%25f.*does not exist/);

  const d2 = await copyTable(src);
  await editCommit(d2, 0, (as) => as.map((a) => {
    if (a.add) a.add.path = a.add.path.replace('part-00000', 'part 00000');
    return a;
  }));
  expectViolation(await checkTable(d2), /path is not URL-encoded \(raw whitespace\)/);

  const src2 = corpusTable(t, 'dat/basic_append/delta');
  if (!src2) return;
  const d3 = await copyTable(src2);
  const live = (await fs.readdir(d3)).find((f) => f.endsWith('.parquet'))!;
  await fs.rm(path.join(d3, live));
  expectViolation(await checkTable(d3), new RegExp(`${live.replace(/\./g, '\\.')} does not exist`));
});

test('log structure violations: no commitInfo, several actions on a line, non-JSON, duplicate adds, gaps', async (t) => {
  const src = corpusTable(t, 'dat/basic_append/delta');
  if (!src) return;
  const dir = await copyTable(src);
  await editCommit(dir, 1, (as) => as.filter((a) => !a.commitInfo));
  let v = await checkTable(dir);
  expectViolation(v, /commit 1: no commitInfo action/);
  assert.ok(!v.some((x) => x.startsWith('commit 0')), 'commit 0 is fine');
  assert.deepEqual(await checkTable(dir, { fromVersion: 2 }), [], 'fromVersion leaves earlier commits unjudged');

  const d2 = await copyTable(src);
  await editCommit(d2, 1, (as) => {
    const add = as.find((a) => a.add)!;
    return [...as, { add: add.add }, { add: add.add, remove: { path: 'x', dataChange: true } }];
  });
  v = await checkTable(d2);
  expectViolation(v, /commit 1: 3 add actions for path/);
  expectViolation(v, /line \d+: an action line must hold exactly one action/);

  const d3 = await copyTable(src);
  await fs.appendFile(commitFile(d3, 1), '{"add": {"path": \n');
  expectViolation(await checkTable(d3), /commit 1 line \d+: not JSON/);

  const d4 = await copyTable(src);
  await fs.rename(commitFile(d4, 1), commitFile(d4, 2));
  expectViolation(await checkTable(d4), /skips from version 0 to 2/);

  const d5 = await copyTable(src);
  await editCommit(d5, 0, (as) => as.filter((a) => !a.protocol));
  expectViolation(await checkTable(d5), /commit 0: the first version must hold protocol and metaData/);

  // Re-adding a live file without removing it breaks file name uniqueness.
  const d6 = await copyTable(src);
  const first = (await fs.readFile(commitFile(d6, 0), 'utf8')).split('\n').filter((l) => l.includes('"add"'))[0]!;
  await fs.appendFile(commitFile(d6, 1), first + '\n');
  expectViolation(await checkTable(d6, { compareRead: false }), /already live and not removed in this commit/);
});

test('metaData and protocol violations: bad schema, foreign partition column, features the table needs', async () => {
  const p = path.join(await tempDir('floe-chk-'), 't');
  await floe.duckdbSql("SELECT 1::BIGINT AS id, 2.0::DOUBLE AS amount, TIMESTAMP '2024-01-01 00:00:00' AS tn").write.delta(p, { properties: { 'delta.constraints.positive': 'amount > 0' } });
  assert.deepEqual(await checkTable(p), []);
  const variants: [string, (m: Json, pr: Json) => void, RegExp][] = [
    ['constraint without writer 3', (_m, pr) => Object.assign(pr, { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['timestampNtz'], writerFeatures: ['timestampNtz'] }), /CHECK constraint.*requires writer feature checkConstraints/],
    ['timestamp_ntz without the feature', (_m, pr) => {
      pr.minReaderVersion = 1;
      pr.minWriterVersion = 3;
      delete pr.readerFeatures;
      delete pr.writerFeatures;
    }, /timestamp_ntz column requires writer version 7 with writer feature timestampNtz/],
    ['readerFeatures with reader 2', (_m, pr) => {
      pr.minReaderVersion = 2;
    }, /readerFeatures present with reader version 2/],
    ['writerFeatures with writer 6', (_m, pr) => {
      pr.minWriterVersion = 6;
    }, /writerFeatures present with writer version 6/],
    ['unparseable schema', (m) => {
      m.schemaString = '{"type":"struct","fields":[';
    }, /schemaString does not parse as a struct/],
    ['partition column not in schema', (m) => {
      m.partitionColumns = ['nope'];
    }, /partition column nope is not a top-level schema field/],
    ['configuration value not a string', (m) => {
      m.configuration = { ...m.configuration, 'delta.checkpointInterval': 5 };
    }, /configuration delta\.checkpointInterval is not a string/],
    ['no id', (m) => {
      delete m.id;
    }, /metaData\.id must be a non-empty string/],
    ['no provider', (m) => {
      m.format = {};
    }, /format\.provider must be a string/],
    ['change data feed on writer 3', (m, pr) => {
      m.configuration = { ...m.configuration, 'delta.enableChangeDataFeed': 'true' };
      void pr;
    }, /delta\.enableChangeDataFeed = true requires writer feature changeDataFeed/],
  ];
  for (const [name, fn, re] of variants) {
    const dir = path.join(await tempDir('floe-chk-'), 't');
    await fs.cp(p, dir, { recursive: true });
    await editCommit(dir, 0, (as) => as.map((a) => {
      if (a.metaData) fn(a.metaData, {});
      if (a.protocol) fn({}, a.protocol);
      return a;
    }));
    expectViolation(await checkTable(dir, { compareRead: false }), re);
  }
});

test('checkpoint violations: missing or extra live files, wrong schema, stale _last_checkpoint', async () => {
  const p = path.join(await tempDir('floe-chk-'), 't');
  await DeltaTable.create(floe, { path: p, schema: [{ name: 'id', type: 'long' }, { name: 'p', type: 'string' }], partitionBy: ['p'] });
  for (let i = 1; i <= 3; i++) await floe.duckdbSql(`SELECT ${i}::BIGINT AS id, 'p${i % 2}' AS p`).write.delta(p, { mode: 'append', txnAppId: 'app', txnVersion: i });
  await (await DeltaTable.forPath(floe, p)).checkpoint();
  assert.deepEqual(await checkTable(p), []);
  const cp = (d: string): string => path.join(d, '_delta_log', '00000000000000000003.checkpoint.parquet');

  const db = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await db.connect();
  const q = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  try {
    // One live file dropped from the checkpoint.
    const d1 = path.join(await tempDir('floe-chk-'), 't');
    await fs.cp(p, d1, { recursive: true });
    await conn.run(`COPY (SELECT * FROM read_parquet(${q(cp(p))}) WHERE add IS NULL OR add.path NOT LIKE '%p=p0%') TO ${q(cp(d1))} (FORMAT parquet)`);
    expectViolation(await checkTable(d1), /checkpoint 3: live file p=p0\/.* is missing from the checkpoint/);

    // A txn lost and a removed-never file listed.
    const d2 = path.join(await tempDir('floe-chk-'), 't');
    await fs.cp(p, d2, { recursive: true });
    await conn.run(`COPY (SELECT * REPLACE (CASE WHEN txn IS NULL THEN NULL ELSE {'appId': 'app', 'version': 2::BIGINT, 'lastUpdated': txn.lastUpdated} END AS txn) FROM read_parquet(${q(cp(p))})) TO ${q(cp(d2))} (FORMAT parquet)`);
    expectViolation(await checkTable(d2), /checkpoint 3: txn rows \[\["app",2\]\] differ from the replay's \[\["app",3\]\]/);

    // add.size written as INTEGER instead of long.
    const d3 = path.join(await tempDir('floe-chk-'), 't');
    await fs.cp(p, d3, { recursive: true });
    await conn.run(`COPY (SELECT * REPLACE (struct_pack(path := add.path, partitionValues := add.partitionValues, size := add.size::INTEGER, modificationTime := add.modificationTime, dataChange := add.dataChange, stats := add.stats) AS add) FROM read_parquet(${q(cp(p))})) TO ${q(cp(d3))} (FORMAT parquet)`);
    expectViolation(await checkTable(d3), /checkpoint 3: .*add\.size has type .*INTEGER.* instead of BIGINT/);

    // No txn column at all.
    const d4 = path.join(await tempDir('floe-chk-'), 't');
    await fs.cp(p, d4, { recursive: true });
    await conn.run(`COPY (SELECT * EXCLUDE (txn) FROM read_parquet(${q(cp(p))})) TO ${q(cp(d4))} (FORMAT parquet)`);
    expectViolation(await checkTable(d4), /checkpoint 3: .* has no txn column/);
  } finally {
    conn.closeSync();
    db.closeSync();
  }

  const d5 = path.join(await tempDir('floe-chk-'), 't');
  await fs.cp(p, d5, { recursive: true });
  await fs.writeFile(path.join(d5, '_delta_log', '_last_checkpoint'), JSON.stringify({ version: 2, size: 5 }));
  expectViolation(await checkTable(d5), /_last_checkpoint names version 2, which has no checkpoint/);
  await fs.writeFile(path.join(d5, '_delta_log', '_last_checkpoint'), JSON.stringify({ version: 3, size: 99 }));
  expectViolation(await checkTable(d5), /_last_checkpoint size 99 but checkpoint 3 holds \d+ actions/);
});

test('a deletion vector whose cardinality disagrees with what floe reads is reported by the read comparison', async (t) => {
  const src = corpusTable(t, 'kernel-rs/data/table-with-dv-small');
  if (!src) return;
  assert.deepEqual(await checkTable(src), []);
  const dir = await copyTable(src);
  await editCommit(dir, 1, (as) => as.map((a) => {
    if (a.add?.deletionVector) a.add.deletionVector.cardinality = 3;
    return a;
  }));
  expectViolation(await checkTable(dir), /^read: /);
});
