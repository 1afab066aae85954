/**
 * Pipeline SQL files (Databricks' pipeline SQL): each statement form parsed into the builder's
 * definitions; the documentation's users example as SQL (SCD 1, SCD 1 with TRUNCATE, SCD 2, SCD 2
 * TRACK HISTORY ON * EXCEPT) with the documented results; a pipeline mixing a JS and a SQL library
 * through pipeline.yml; `floe pipelines init --sql`; errors naming file, line and column.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { initProject } from '../cli/pipelines.js';
import { Floe } from '../floe.js';
import { collectDefinitions, type PipelineDefinitions } from '../pipelines/definition.js';
import { runPipeline, validatePipeline } from '../pipelines/runner.js';
import { parseSqlLibrary, substituteVariables } from '../pipelines/sql-library.js';
import { USERS_EVENTS, USERS_EXPECTED, USERS_TRUNCATE } from '../examples/users-cdc.js';
import { tempDir } from './helpers.js';

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-plsql-');
});
after(async () => {
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const defs = async (sql: string, conf: Record<string, string> = {}): Promise<PipelineDefinitions> => collectDefinitions([{ define: await parseSqlLibrary(sql, 'lib.sql', conf), source: 'lib.sql' }]);

const rows = async (warehouse: string, sql: string): Promise<Record<string, unknown>[]> => {
  const r = await floe.sql(sql, { warehouse });
  assert.equal(r.kind, 'rows');
  const out = r.kind === 'rows' ? await r.dataFrame.toJSON() : [];
  return out.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v])));
};

const ok = (r: Awaited<ReturnType<typeof runPipeline>>): void => {
  assert.equal(r.state, 'COMPLETED', JSON.stringify(Object.values(r.flows).map((f) => f.error?.message).filter(Boolean)));
};

test('parse: CREATE OR REFRESH STREAMING TABLE with constraints, comment, partitioning, properties and a streaming query', async () => {
  const d = await defs(`
    -- bronze
    CREATE OR REFRESH STREAMING TABLE bronze (
      id BIGINT NOT NULL COMMENT 'the id',
      amount DOUBLE,
      CONSTRAINT valid_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW,
      CONSTRAINT positive EXPECT (amount > 0),
      CONSTRAINT kind_ok EXPECT (kind <=> "a" OR nvl(kind, 'x') == 'x') ON VIOLATION FAIL UPDATE
    )
    COMMENT 'raw events'
    PARTITIONED BY (kind)
    TBLPROPERTIES ('pipelines.reset.allowed' = false, delta.appendOnly = true)
    AS SELECT * FROM STREAM(LIVE.src);`);
  assert.equal(d.datasets.length, 1);
  const b = d.datasets[0]!;
  assert.equal(b.kind, 'table');
  assert.equal(b.comment, 'raw events');
  assert.deepEqual(b.partitionBy, ['kind']);
  assert.deepEqual(b.tableProperties, { 'pipelines.reset.allowed': 'false', 'delta.appendOnly': 'true' });
  assert.deepEqual(b.expectations.map((e) => [e.name, e.action]), [['valid_id', 'drop'], ['positive', 'warn'], ['kind_ok', 'fail']]);
  assert.equal(b.expectations[0]!.condition, 'id IS NOT NULL');
  assert.equal(b.expectations[2]!.condition, "kind IS NOT DISTINCT FROM 'a' OR coalesce(kind, 'x') = 'x'");
  assert.deepEqual(d.flows.map((f) => [f.name, f.target, f.kind, f.source]), [['bronze', 'bronze', 'query', 'lib.sql']]);
});

test('parse: every statement form', async () => {
  const d = await defs(`
    SET pipelines.trigger.interval = '1 hour';
    CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_files('\${landing}/events', format => 'json');
    CREATE OR REFRESH STREAMING LIVE TABLE raw2 AS SELECT * FROM cloud_files('/data/x', 'csv', map('header', 'false'));
    CREATE OR REFRESH STREAMING TABLE s1 AS SELECT a.*, b.name FROM STREAM raw a JOIN LIVE.dim b ON a.id = b.id;
    CREATE OR REFRESH MATERIALIZED VIEW mv (CONSTRAINT c1 EXPECT (n > 0)) COMMENT 'counts' AS SELECT count(*) AS n FROM s1;
    CREATE OR REFRESH LIVE TABLE dim AS SELECT * FROM read_files('/data/dim.parquet');
    CREATE TEMPORARY VIEW v AS SELECT * FROM STREAM(raw) WHERE id > 0;
    CREATE TEMPORARY LIVE VIEW v2 AS SELECT * FROM mv;
    CREATE OR REFRESH STREAMING TABLE target;
    CREATE FLOW f1 COMMENT 'first' AS INSERT INTO target BY NAME SELECT * FROM STREAM(v);
    CREATE FLOW backfill AS INSERT INTO ONCE target SELECT * FROM dim; -- (BY NAME optional, as in Spark's SDP guide)
    CREATE OR REFRESH STREAMING TABLE cdc1;
    CREATE FLOW cdc1_flow AS AUTO CDC INTO cdc1 FROM STREAM(raw) KEYS (id, region) IGNORE NULL UPDATES
      APPLY AS DELETE WHEN op = "D" APPLY AS TRUNCATE WHEN op = 'T' SEQUENCE BY struct(ts, seq)
      COLUMNS (id, region, name) STORED AS SCD TYPE 1;
    CREATE OR REFRESH STREAMING TABLE cdc2;
    APPLY CHANGES INTO LIVE.cdc2 FROM STREAM(LIVE.raw) KEYS (id) SEQUENCE BY seq COLUMNS * EXCEPT (op, seq)
      STORED AS SCD TYPE 2 TRACK HISTORY ON * EXCEPT (city);
    CREATE OR REFRESH STREAMING TABLE inline_cdc FLOW AUTO CDC FROM STREAM raw KEYS (id) SEQUENCE BY seq TRACK HISTORY ON (name) STORED AS SCD TYPE 2;
    CREATE OR REFRESH STREAMING TABLE inline_append FLOW INSERT BY NAME SELECT id FROM STREAM(raw);
  `, { landing: '/landing' });
  assert.deepEqual(d.datasets.map((x) => [x.name, x.kind]), [
    ['raw', 'table'], ['raw2', 'table'], ['s1', 'table'], ['mv', 'materializedView'], ['dim', 'materializedView'], ['v', 'view'], ['v2', 'view'],
    ['target', 'streamingTable'], ['cdc1', 'streamingTable'], ['cdc2', 'streamingTable'], ['inline_cdc', 'streamingTable'], ['inline_append', 'streamingTable'],
  ]);
  assert.deepEqual(d.flows.map((f) => [f.name, f.target, f.kind, f.once]), [
    ['raw', 'raw', 'query', false], ['raw2', 'raw2', 'query', false], ['s1', 's1', 'query', false], ['mv', 'mv', 'query', false], ['dim', 'dim', 'query', false],
    ['v', 'v', 'query', false], ['v2', 'v2', 'query', false], ['f1', 'target', 'append', false], ['backfill', 'target', 'append', true],
    ['cdc1_flow', 'cdc1', 'autoCdc', false], ['cdc2', 'cdc2', 'autoCdc', false], ['inline_cdc', 'inline_cdc', 'autoCdc', false], ['inline_append', 'inline_append', 'append', false],
  ]);
  assert.equal(d.flows[7]!.comment, 'first');
  assert.deepEqual(d.datasets[3]!.expectations, [{ name: 'c1', condition: 'n > 0', action: 'warn' }]);
  const c1 = d.flows[9]!.cdc!;
  assert.deepEqual({ ...c1 }, {
    source: 'raw', keys: ['id', 'region'], sequenceBy: c1.sequenceBy, ignoreNullUpdates: true, applyAsDeletes: "op = 'D'", applyAsTruncates: "op = 'T'",
    columnList: ['id', 'region', 'name'], storedAsScdType: 1, target: 'cdc1', name: 'cdc1_flow',
  });
  assert.match(c1.sequenceBy, /ts.*seq/);
  const c2 = d.flows[10]!.cdc!;
  assert.equal(c2.source, 'raw');
  assert.deepEqual(c2.exceptColumnList, ['op', 'seq']);
  assert.deepEqual(c2.trackHistoryExceptColumnList, ['city']);
  assert.equal(c2.storedAsScdType, 2);
  assert.deepEqual(d.flows[11]!.cdc!.trackHistoryColumnList, ['name']);

  // What the query functions read: recorded through a context.
  const reads: string[] = [];
  const frame = floe.duckdbSql('SELECT 1 AS id');
  const ctx = {
    floe,
    read: (n: string) => (reads.push(`read ${n}`), frame),
    readStream: (n: string) => (reads.push(`stream ${n}`), frame),
    readStreamFiles: (n: string, o: { format: string; header?: boolean }) => (reads.push(`files ${n} ${o.format}${o.header === false ? ' noheader' : ''}`), frame),
    readFiles: (n: string, o: { format: string }) => (reads.push(`batchfiles ${n} ${o.format}`), frame),
    sql: (q: string, f: Record<string, unknown> = {}) => (reads.push(`sql ${Object.keys(f).length}`), floe.duckdbSql(q)),
    conf: () => undefined,
  } as unknown as Parameters<NonNullable<PipelineDefinitions['flows'][number]['query']>>[0];
  for (const f of d.flows) if (f.query) await f.query(ctx);
  assert.deepEqual(reads.filter((r) => !r.startsWith('sql')), [
    'files /landing/events json', 'files /data/x csv noheader', 'stream raw', 'read dim', 'read s1', 'batchfiles /data/dim.parquet parquet',
    'stream raw', 'read mv', 'stream v', 'read dim', 'stream raw',
  ]);
});

test('SQL queries are translated from Spark SQL, aliases default to the dataset name, CTEs and subqueries work', async () => {
  const wh = path.join(dir, 'wh-translate');
  const land = path.join(dir, 'land-translate');
  await fs.mkdir(land, { recursive: true });
  await fs.writeFile(path.join(land, 'a.json'), '{"id":1,"name":"ada","ts":"2024-01-02 03:04:05"}\n{"id":2,"name":"grace","ts":"2024-02-03 04:05:06"}\n');
  const sql = await parseSqlLibrary(`
    CREATE OR REFRESH STREAMING TABLE people AS SELECT * FROM STREAM read_files('${land}', format => 'json');
    CREATE OR REFRESH MATERIALIZED VIEW shaped AS
      WITH p AS (SELECT * FROM LIVE.people)
      SELECT people.id, upper(people.name) AS name, date_format(CAST(people.ts AS TIMESTAMP), 'yyyy/MM') AS month,
             7 div 2 AS half, nvl(NULL, 'x') AS filled, (SELECT count(*) FROM p) AS total
      FROM people WHERE people.id IN (SELECT id FROM p);`, path.join(dir, 't.sql'));
  ok(await runPipeline({ floe, name: 'translate', definitions: sql, warehouse: wh }));
  assert.deepEqual(await rows(wh, 'SELECT * FROM shaped ORDER BY id'), [
    { id: 1, name: 'ADA', month: '2024/01', half: 3, filled: 'x', total: 2 },
    { id: 2, name: 'GRACE', month: '2024/02', half: 3, filled: 'x', total: 2 },
  ]);
});

/** The users example of the Databricks AUTO CDC documentation, as pipeline SQL. */
async function usersPipeline(name: string, events: object[], sqlText: string): Promise<string> {
  const proj = path.join(dir, name);
  await fs.mkdir(path.join(proj, 'landing'), { recursive: true });
  await fs.mkdir(path.join(proj, 'transformations'), { recursive: true });
  await fs.writeFile(path.join(proj, 'landing', 'users.json'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await fs.writeFile(path.join(proj, 'pipeline.yml'), `name: ${name}\nwarehouse: ./wh\nlibraries:\n  - glob:\n      include: transformations/**\nconfiguration:\n  source: ./landing\n`);
  await fs.writeFile(path.join(proj, 'transformations', 'users.sql'), `CREATE OR REFRESH STREAMING TABLE users AS SELECT * FROM STREAM read_files('\${source}', format => 'json');\n${sqlText}`);
  ok(await runPipeline({ floe, spec: path.join(proj, 'pipeline.yml') }));
  return path.join(proj, 'wh');
}

test('users example as SQL: SCD type 2 (CREATE FLOW … AS AUTO CDC INTO) gives the documented result', async () => {
  const wh = await usersPipeline('users_scd2', USERS_EVENTS, `
CREATE OR REFRESH STREAMING TABLE target;

CREATE FLOW flow
AS AUTO CDC INTO
  target
FROM
  stream(users)
KEYS
  (userId)
APPLY AS DELETE WHEN
  operation = "DELETE"
SEQUENCE BY
  sequenceNum
COLUMNS * EXCEPT
  (operation, sequenceNum)
STORED AS
  SCD TYPE 2;
`);
  assert.deepEqual(await rows(wh, 'SELECT * FROM target ORDER BY userId, __START_AT'), USERS_EXPECTED.scd2);
});

test('an AUTO CDC target declared PARTITIONED BY with a COMMENT is created so by its first batch', async () => {
  const wh = await usersPipeline('users_part', USERS_EVENTS, `
CREATE OR REFRESH STREAMING TABLE target PARTITIONED BY (city) COMMENT 'users by city';
CREATE FLOW flow AS AUTO CDC INTO target FROM stream(users) KEYS (userId) APPLY AS DELETE WHEN operation = "DELETE"
  SEQUENCE BY sequenceNum COLUMNS * EXCEPT (operation, sequenceNum) STORED AS SCD TYPE 2;
`);
  const snap = await floe.snapshot(path.join(wh, 'default', 'target'));
  assert.deepEqual(snap.partitionColumns, ['city']);
  assert.equal(snap.metadata.description, 'users by city');
  assert.deepEqual(await rows(wh, 'SELECT * FROM target ORDER BY userId, __START_AT'), USERS_EXPECTED.scd2);
});

test('users example as SQL: SCD type 1 (older APPLY CHANGES INTO LIVE.… syntax), with TRUNCATE, and SCD 2 TRACK HISTORY ON * EXCEPT (city)', async () => {
  const wh = await usersPipeline('users_more', [...USERS_EVENTS, USERS_TRUNCATE], `
CREATE OR REFRESH STREAMING TABLE scd1;
APPLY CHANGES INTO live.scd1 FROM stream(LIVE.users_no_truncate) KEYS (userId)
  APPLY AS DELETE WHEN operation = "DELETE" SEQUENCE BY sequenceNum COLUMNS * EXCEPT (operation, sequenceNum) STORED AS SCD TYPE 1;

CREATE OR REFRESH STREAMING TABLE scd1_truncate;
CREATE FLOW scd1_truncate_flow AS AUTO CDC INTO scd1_truncate FROM STREAM(users) KEYS (userId)
  APPLY AS DELETE WHEN operation = "DELETE" APPLY AS TRUNCATE WHEN operation = "TRUNCATE"
  SEQUENCE BY sequenceNum COLUMNS * EXCEPT (operation, sequenceNum) STORED AS SCD TYPE 1;

CREATE OR REFRESH STREAMING TABLE scd2_track;
CREATE FLOW scd2_track_flow AS AUTO CDC INTO scd2_track FROM STREAM(users_no_truncate) KEYS (userId)
  APPLY AS DELETE WHEN operation = "DELETE" SEQUENCE BY sequenceNum COLUMNS * EXCEPT (operation, sequenceNum)
  STORED AS SCD TYPE 2 TRACK HISTORY ON * EXCEPT (city);

CREATE TEMPORARY VIEW users_no_truncate AS SELECT * FROM STREAM(users) WHERE operation <> 'TRUNCATE';
`);
  assert.deepEqual(await rows(wh, 'SELECT * FROM scd1 ORDER BY userId'), USERS_EXPECTED.scd1);
  assert.deepEqual(await rows(wh, 'SELECT * FROM scd1_truncate ORDER BY userId'), USERS_EXPECTED.scd1Truncate);
  assert.deepEqual(await rows(wh, 'SELECT * FROM scd2_track ORDER BY userId, __START_AT'), USERS_EXPECTED.scd2TrackExceptCity);
});

test('a pipeline mixing a JS library and a SQL library: expectations, views, append flows, incremental runs', async () => {
  const proj = path.join(dir, 'mixed');
  await fs.mkdir(path.join(proj, 'landing'), { recursive: true });
  await fs.mkdir(path.join(proj, 'transformations'), { recursive: true });
  await fs.writeFile(path.join(proj, 'pipeline.yml'), `name: mixed\nwarehouse: ./wh\nlibraries:\n  - glob:\n      include: transformations/**\nconfiguration:\n  landing: ./landing\n  min_amount: "0"\n`);
  await fs.writeFile(path.join(proj, 'transformations', 'bronze.mjs'), `export default function (p) {
  p.table({ name: 'bronze', query: (ctx) => ctx.readStreamFiles(ctx.conf('landing'), { format: 'json' }) });
}
`);
  await fs.writeFile(path.join(proj, 'transformations', 'silver_gold.sql'), `
CREATE TEMPORARY VIEW cleaned (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW
) AS SELECT id, amount, seq, op FROM STREAM(bronze);

CREATE OR REFRESH STREAMING TABLE silver (
  CONSTRAINT positive EXPECT (amount > \${min_amount})
) COMMENT 'current amounts';

CREATE FLOW silver_cdc AS AUTO CDC INTO silver FROM STREAM(cleaned) KEYS (id)
  APPLY AS DELETE WHEN op = 'D' SEQUENCE BY seq COLUMNS * EXCEPT (op, seq);

CREATE OR REFRESH STREAMING TABLE audit;
CREATE FLOW audit_main AS INSERT INTO audit BY NAME SELECT id, op, 'stream' AS origin FROM STREAM(bronze) WHERE id IS NOT NULL;
CREATE FLOW audit_backfill AS INSERT INTO ONCE audit BY NAME SELECT 0 AS id, 'B' AS op, 'backfill' AS origin;

CREATE OR REFRESH MATERIALIZED VIEW gold AS
SELECT count(*) AS n, sum(amount) AS total FROM LIVE.silver;
`);
  const spec = path.join(proj, 'pipeline.yml');
  const v = await validatePipeline({ spec, floe });
  assert.deepEqual([...v.graph.datasets.values()].map((d) => [d.name, d.resolvedKind]).sort(), [
    ['audit', 'streamingTable'], ['bronze', 'streamingTable'], ['cleaned', 'view'], ['gold', 'materializedView'], ['silver', 'streamingTable'],
  ]);
  assert.deepEqual(v.graph.flows.get('silver_cdc')!.inputs, ['cleaned']);
  assert.deepEqual(v.graph.flows.get('gold')!.inputs, ['silver']);

  await fs.writeFile(path.join(proj, 'landing', '1.json'), '{"id":1,"amount":10,"seq":1,"op":"U"}\n{"id":2,"amount":-5,"seq":2,"op":"U"}\n{"id":null,"amount":1,"seq":3,"op":"U"}\n');
  const r1 = await runPipeline({ floe, spec });
  ok(r1);
  assert.equal(r1.flows.silver_cdc!.droppedRecords, 1);
  assert.deepEqual(r1.flows.silver_cdc!.expectations.map((e) => [e.name, e.passed_records, e.failed_records]), [['has_id', 2, 1], ['positive', 1, 1]]);
  const wh = path.join(proj, 'wh');
  assert.deepEqual(await rows(wh, 'SELECT id, amount FROM silver ORDER BY id'), [{ id: 1, amount: 10 }, { id: 2, amount: -5 }]);
  assert.deepEqual(await rows(wh, 'SELECT n, total FROM gold'), [{ n: 2, total: 5 }]);

  await fs.writeFile(path.join(proj, 'landing', '2.json'), '{"id":2,"amount":0,"seq":4,"op":"D"}\n{"id":3,"amount":7,"seq":5,"op":"U"}\n');
  const r2 = await runPipeline({ floe, spec });
  ok(r2);
  assert.equal(r2.flows.bronze!.numOutputRows, 2, 'only the new file');
  assert.equal(r2.flows.audit_backfill!.note, 'once flow already ran');
  assert.deepEqual(await rows(wh, 'SELECT id, amount FROM silver ORDER BY id'), [{ id: 1, amount: 10 }, { id: 3, amount: 7 }]);
  assert.deepEqual(await rows(wh, 'SELECT n, total FROM gold'), [{ n: 2, total: 17 }]);
  assert.deepEqual(await rows(wh, 'SELECT origin, count(*) AS n FROM audit GROUP BY origin ORDER BY origin'), [{ origin: 'backfill', n: 1 }, { origin: 'stream', n: 4 }]);
});

test('ON VIOLATION FAIL UPDATE fails the flow naming the expectation', async () => {
  const wh = path.join(dir, 'wh-fail');
  const land = path.join(dir, 'land-fail');
  await fs.mkdir(land, { recursive: true });
  await fs.writeFile(path.join(land, 'a.json'), '{"id":1,"amount":-1}\n');
  const sql = await parseSqlLibrary(`CREATE OR REFRESH STREAMING TABLE strict (CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION FAIL UPDATE)
    AS SELECT * FROM STREAM read_files('${land}', format => 'json');`, 'strict.sql');
  const r = await runPipeline({ floe, name: 'fail', definitions: sql, warehouse: wh });
  assert.equal(r.state, 'FAILED');
  assert.match(r.flows.strict!.error!.message, /EXPECTATION_VIOLATION.*'positive' on 'strict'/);
});

test('floe pipelines init --sql: the SQL example runs and gives the same result as the JS example', async () => {
  const parent = path.join(dir, 'init');
  await fs.mkdir(parent, { recursive: true });
  const proj = await initProject('shop_sql', parent, { sql: true });
  assert.deepEqual(await fs.readdir(path.join(proj, 'transformations')), ['orders.sql']);
  ok(await runPipeline({ floe, spec: path.join(proj, 'pipeline.yml') }));
  const wh = path.join(proj, 'warehouse');
  assert.deepEqual(await rows(wh, 'SELECT status, orders, amount FROM gold_orders_by_status ORDER BY status'), [
    { status: 'NEW', orders: 1, amount: 7.25 },
    { status: 'SHIPPED', orders: 1, amount: 10.5 },
  ]);
  const js = await initProject('shop_js', parent);
  ok(await runPipeline({ floe, spec: path.join(js, 'pipeline.yml') }));
  assert.deepEqual(await rows(path.join(js, 'warehouse'), 'SELECT * FROM gold_orders_by_status ORDER BY status'), await rows(wh, 'SELECT * FROM gold_orders_by_status ORDER BY status'));
});

test('errors name the file, line and column', async () => {
  const bad = async (sql: string, re: RegExp): Promise<void> => {
    await assert.rejects(parseSqlLibrary(sql, '/p/bad.sql'), (e: Error & { details?: Record<string, unknown> }) => {
      assert.match(e.message, re);
      assert.equal(e.details?.file, '/p/bad.sql');
      return true;
    });
  };
  await bad('CREATE OR REFRESH STREAMING TABLE a;\n\nCREATE OR REFRESH STREAMNG TABLE b;', /^\[FLOE_SQL_PARSE_ERROR\] \/p\/bad\.sql:3:19: Expected STREAMING TABLE, MATERIALIZED VIEW, VIEW or FLOW after CREATE but found 'STREAMNG'/);
  await bad('CREATE FLOW f AS AUTO CDC INTO t FROM STREAM(s)\n  SEQUENCE BY seq;', /bad\.sql:2:18: AUTO CDC INTO t needs KEYS/);
  await bad('CREATE FLOW f AS AUTO CDC INTO t FROM STREAM(s) KEYS (id)\n  SEQUENCE BY seq STORED AS SCD TYPE 3;', /bad\.sql:2:38: SCD TYPE must be 1 or 2/);
  await bad('CREATE OR REFRESH STREAMING TABLE t AS\nSELECT * FROM src;', /FLOE_SQL_ANALYSIS_ERROR.*bad\.sql:1:37: The streaming table 't' reads no stream/);
  await bad('CREATE OR REFRESH STREAMING TABLE t;\nCREATE FLOW f AS INSERT INTO t BY NAME\n  SELECT * FROM src;', /bad\.sql:2:18: The flow into 't' reads no stream/);
  await bad("CREATE OR REFRESH STREAMING TABLE t (\n  CONSTRAINT c EXPECT (a > 0) ON VIOLATION EXPLODE\n) AS SELECT * FROM STREAM(s);", /bad\.sql:2:44: Expected DROP ROW or FAIL UPDATE/);
  await bad("CREATE OR REFRESH MATERIALIZED VIEW m AS SELECT 'unclosed FROM x;", /bad\.sql:1:49: Unclosed string literal/);
  await bad('CREATE OR REFRESH MATERIALIZED VIEW m AS\nSELECT a FROM t LATERAL VIEW explode(x) e;', /FLOE_SQL_ANALYSIS_ERROR.*bad\.sql:2:17: LATERAL VIEW is not supported/);
  await bad('CREATE OR REFRESH MATERIALIZED VIEW m AS SELECT * FROM read_files(\'/x\');', /bad\.sql:1:56: read_files\('\/x'\) needs format/);
  await bad('CREATE TABLE t (a INT);', /bad\.sql:1:8: CREATE TABLE is not a pipeline dataset/);
  await bad('CREATE FLOW f AS AUTO CDC INTO t FROM SNAPSHOT src KEYS (id) STORED AS SCD TYPE 2;', /bad\.sql:1:39: AUTO CDC … FROM SNAPSHOT .*createAutoCdcFromSnapshotFlow.* is not supported/);

  // Through the spec: graph errors name the SQL file too.
  const proj = path.join(dir, 'errs');
  await fs.mkdir(path.join(proj, 't'), { recursive: true });
  await fs.writeFile(path.join(proj, 'pipeline.yml'), 'name: errs\nwarehouse: ./wh\nlibraries:\n  - glob:\n      include: t/*.sql\n');
  await fs.writeFile(path.join(proj, 't', 'a.sql'), 'CREATE OR REFRESH MATERIALIZED VIEW m AS SELECT * FROM nowhere;\n');
  await assert.rejects(validatePipeline({ spec: path.join(proj, 'pipeline.yml'), floe }), /DATASET_NOT_FOUND.*'m' \(.*t\/a\.sql\) reads 'nowhere'/);
  await fs.writeFile(path.join(proj, 't', 'a.sql'), 'CREATE OR REFRESH MATERIALIZED VIEW m AS\n  SELECT * FROM STREAM(x);\nCREATE OR REFRESH STREAMING TABLE x AS SELECT * FROM STREAM read_files(\'/tmp/none\', format => \'csv\');\n');
  await assert.rejects(validatePipeline({ spec: path.join(proj, 'pipeline.yml'), floe }), /INVALID_STREAMING_READ.*materialized view 'm'.*a\.sql/);
  await fs.writeFile(path.join(proj, 't', 'a.sql'), 'CREATE OR REFRESH STREAMING TABLE x\n  AS SELECT * FROM STREAM(y) WHERE id > 0;\nCREATE OR REFRESH STREAMING TABLE y\n  AS SELECT * FROM STREAM(x);\n');
  await assert.rejects(validatePipeline({ spec: path.join(proj, 'pipeline.yml'), floe }), /CIRCULAR_DEPENDENCY.*'x', 'y'/);
  await fs.writeFile(path.join(proj, 't', 'a.sql'), 'CREATE OR REFRESH STREAMING TABLE x AS SELECT * FROM STREAM read_files(\'/tmp/none\', format => \'csv\');\n\n  CREATE OR REFRESH STREAMING TABLE x AS SELECT * FROM STREAM(x);\n');
  await assert.rejects(validatePipeline({ spec: path.join(proj, 'pipeline.yml'), floe }), /DUPLICATE_DATASET.*'x'.*t\/a\.sql.*t\/a\.sql/);

  // Query analysis: the queries are described over their inputs' schemas (here the landing files'), so
  // unknown columns are found by validate, before a run writes anything.
  const land = path.join(proj, 'landing');
  await fs.mkdir(land, { recursive: true });
  const lib = (silver: string, gold: string) => fs.writeFile(path.join(proj, 't', 'a.sql'), [
    `CREATE OR REFRESH STREAMING TABLE bronze AS SELECT * FROM STREAM read_files('${land}', format => 'json');`,
    'CREATE OR REFRESH STREAMING TABLE silver;',
    `CREATE FLOW f AS AUTO CDC INTO silver FROM STREAM(bronze) KEYS (id) ${silver} STORED AS SCD TYPE 2;`,
    `CREATE OR REFRESH MATERIALIZED VIEW gold AS ${gold};`,
  ].join('\n') + '\n');
  const spec = path.join(proj, 'pipeline.yml');
  await lib('SEQUENCE BY sequence_num', 'SELECT count(*) AS n FROM silver');
  // No files yet: bronze's schema is unknown, so nothing downstream is judged.
  await validatePipeline({ spec, floe });
  await fs.writeFile(path.join(land, 'a.json'), JSON.stringify({ id: 1, v: 'a', seq: 1, op: 'U' }) + '\n');
  await assert.rejects(validatePipeline({ spec, floe }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'AUTO_CDC_INVALID_OPTIONS');
    assert.match(e.message, /The AUTO CDC flow 'f' \(.*t\/a\.sql\): .*sequenceBy \(sequence_num\) is not a valid expression over the source's columns \(id, v, seq, op\)/);
    return true;
  });
  await lib("SEQUENCE BY seq APPLY AS DELETE WHEN operation = 'D'", 'SELECT count(*) AS n FROM silver');
  await assert.rejects(validatePipeline({ spec, floe }), /applyAsDeletes \(operation = 'D'\) is not a valid expression/);
  // The MV reads silver as the AUTO CDC flow would write it (with __START_AT / __END_AT).
  await lib("SEQUENCE BY seq APPLY AS DELETE WHEN op = 'D'", 'SELECT nosuch, count(*) AS n FROM silver GROUP BY ALL');
  await assert.rejects(validatePipeline({ spec, floe }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'PIPELINE_QUERY_ERROR');
    assert.match(e.message, /The query of 'gold' \(.*t\/a\.sql\): Binder Error: Referenced column "nosuch" not found/);
    assert.doesNotMatch(e.message, /LINE \d|__floe_/);
    return true;
  });
  await lib("SEQUENCE BY seq APPLY AS DELETE WHEN op = 'D' COLUMNS * EXCEPT (op)", 'SELECT v, max(`__START_AT`) AS s FROM silver GROUP BY ALL');
  const ok = await validatePipeline({ spec, floe });
  assert.equal(ok.graph.flows.size, 3);
  assert.equal(await fs.stat(path.join(proj, 'wh')).then(() => 'written', () => 'nothing written'), 'nothing written');
});

test('${key} substitution uses the configuration and leaves unknown keys', () => {
  assert.equal(substituteVariables("read_files('${a}/x', format => '${b.c}') ${nope}", { a: '/data', 'b.c': 'json' }), "read_files('/data/x', format => 'json') ${nope}");
});
