/**
 * Pipeline runs end to end: incremental runs, full refresh (and pipelines.reset.allowed = false),
 * expectations (warn / drop / fail), failure isolation, the event log, exactly-once replay of a
 * pending batch, and the catalog registration of datasets.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Catalog } from '../catalog/catalog.js';
import { Floe } from '../floe.js';
import { collectDefinitions, definePipeline, expect, expectOrDrop, expectOrFail } from '../pipelines/definition.js';
import { parseSqlLibrary } from '../pipelines/sql-library.js';
import { type PipelineEvent, readEvents, subscribePipelineEvents } from '../pipelines/event-log.js';
import { ProgressDisplay } from '../pipelines/progress.js';
import { runPipeline, validatePipeline } from '../pipelines/runner.js';
import { PipelineState } from '../pipelines/state.js';
import { tempDir } from './helpers.js';

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-pipe-');
});
after(async () => {
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const rows = async (warehouse: string, sql: string) => {
  const r = await floe.sql(sql, { warehouse });
  assert.equal(r.kind, 'rows');
  return r.kind === 'rows' ? r.dataFrame.toJSON() : [];
};
const append = (t: string, values: string) => floe.duckdbSql(`SELECT * FROM (VALUES ${values}) v(id, amount, seq, op)`).write.delta(t, { mode: 'append' });

function orders(src: string) {
  return definePipeline((p) => {
    p.table({
      name: 'bronze',
      query: (c) => c.readStream(src),
      expectations: [expect('positive', 'amount > 0'), expectOrDrop('has_id', 'id IS NOT NULL')],
    });
    p.createStreamingTable('silver');
    p.createAutoCdcFlow({ target: 'silver', source: 'bronze', keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'D'", exceptColumnList: ['op'] });
    p.materializedView({ name: 'gold', query: (c) => c.sql('SELECT count(*)::BIGINT AS n, sum(amount)::BIGINT AS total FROM s', { s: c.read('silver') }) });
  });
}

test('run: end to end, incremental second run, nothing new on a third, catalog tables', async () => {
  const src = path.join(dir, 'src1');
  const wh = path.join(dir, 'wh1');
  await append(src, "(1, 10, 1, 'U'), (2, -5, 2, 'U'), (NULL, 1, 3, 'U')");
  const opts = { floe, name: 'orders', definitions: orders(src), warehouse: wh };
  const r1 = await runPipeline(opts);
  assert.equal(r1.state, 'COMPLETED');
  assert.equal(r1.flows.bronze!.numOutputRows, 2);
  assert.equal(r1.flows.bronze!.droppedRecords, 1);
  // warn: kept and counted (the NULL-id row passes 'positive'); drop: removed and counted
  assert.deepEqual(r1.flows.bronze!.expectations, [
    { name: 'positive', dataset: 'bronze', passed_records: 2, failed_records: 1 },
    { name: 'has_id', dataset: 'bronze', passed_records: 2, failed_records: 1 },
  ]);
  assert.deepEqual(await rows(wh, 'SELECT id, amount FROM silver ORDER BY id'), [{ id: 1, amount: 10 }, { id: 2, amount: -5 }]);
  assert.deepEqual(await rows(wh, 'SELECT * FROM gold'), [{ n: '2', total: '5' }]);

  await append(src, "(1, 20, 4, 'U'), (2, 0, 5, 'D'), (3, 7, 6, 'U')");
  const r2 = await runPipeline(opts);
  assert.equal(r2.state, 'COMPLETED');
  assert.equal(r2.flows.bronze!.numOutputRows, 3, 'only the new commit');
  assert.equal(r2.flows.silver!.numDeletedRows, 1);
  assert.deepEqual(await rows(wh, 'SELECT id, amount FROM silver ORDER BY id'), [{ id: 1, amount: 20 }, { id: 3, amount: 7 }]);
  assert.deepEqual(await rows(wh, 'SELECT * FROM gold'), [{ n: '2', total: '27' }]);
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM bronze'), [{ n: 5 }]);

  const r3 = await runPipeline(opts);
  assert.equal(r3.flows.bronze!.note, 'no new data');
  assert.equal(r3.flows.silver!.note, 'no new data');
  assert.equal(r3.flows.gold!.note, 'inputs unchanged; up to date');
  // Checkpoints: batch ids and source versions.
  const cp = await new PipelineState(path.join(wh, '_pipelines', 'orders')).checkpoint('bronze');
  assert.equal(cp.batchId, 1);
  assert.deepEqual(Object.values(cp.sources), [{ version: 1 }]);
  // The target commits carry the txn of their batch.
  const snap = await floe.snapshot(path.join(wh, 'default', 'bronze'));
  assert.equal(snap.txnVersion('orders.bronze'), 1);
  assert.equal(snap.metadata.configuration['floe.pipeline.name'], 'orders');
  assert.deepEqual((await new Catalog(wh).listTables('default')).map((t) => [t.name, t.type]), [['bronze', 'MANAGED'], ['gold', 'MANAGED'], ['silver', 'MANAGED']]);
});

test('run: full refresh replays from the start; pipelines.reset.allowed = false keeps the table', async () => {
  const src = path.join(dir, 'src2');
  const wh = path.join(dir, 'wh2');
  await append(src, "(1, 10, 1, 'U'), (2, 5, 2, 'U')");
  const def = definePipeline((p) => {
    p.table({ name: 'copy', query: (c) => c.readStream(src) });
    p.table({ name: 'keep', query: (c) => c.readStream(src), tableProperties: { 'pipelines.reset.allowed': 'false' } });
    p.createStreamingTable('latest');
    p.createAutoCdcFlow({ target: 'latest', source: 'copy', keys: ['id'], sequenceBy: 'seq' });
  });
  const opts = { floe, name: 'fr', definitions: def, warehouse: wh };
  const ok = async (o: Parameters<typeof runPipeline>[0]) => {
    const r = await runPipeline(o);
    assert.equal(r.state, 'COMPLETED', JSON.stringify(Object.values(r.flows).map((f) => f.error?.message)));
    return r;
  };
  await ok(opts);
  await append(src, "(3, 1, 3, 'U')");
  await ok(opts);
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM copy'), [{ n: 3 }]);
  const r = await ok({ ...opts, fullRefresh: 'all' });
  assert.equal(r.flows.copy!.numOutputRows, 3, 'the whole source replayed');
  assert.deepEqual(await rows(wh, 'SELECT id FROM copy ORDER BY id'), [{ id: 1 }, { id: 2 }, { id: 3 }]);
  assert.equal(r.flows.keep!.note, 'no new data');
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM keep'), [{ n: 3 }]);
  assert.deepEqual(await rows(wh, 'SELECT id FROM latest ORDER BY id'), [{ id: 1 }, { id: 2 }, { id: 3 }]);
  // A selected full refresh excludes the other datasets.
  await append(src, "(4, 1, 4, 'U')");
  const r2 = await runPipeline({ ...opts, fullRefresh: ['copy'] });
  assert.equal(r2.flows.keep!.status, 'EXCLUDED');
  assert.equal(r2.flows.latest!.status, 'EXCLUDED');
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM copy'), [{ n: 4 }]);
  const r3 = await runPipeline({ ...opts, refresh: ['keep', 'latest'] });
  assert.equal(r3.flows.copy!.status, 'EXCLUDED');
  assert.equal(r3.flows.keep!.numOutputRows, 1);
  await assert.rejects(runPipeline({ ...opts, refresh: ['nope'] }), /DATASET_NOT_FOUND.*'nope'/);
});

test('run: definitions that change between updates: a full refresh rebuilds a table with the new schema (AUTO CDC SCD 1 to 2 and fewer columns, an append flow changing a type); changed KEYS are refused before any commit; an edited materialized view is recomputed', async () => {
  const src = path.join(dir, 'src-defs');
  const wh = path.join(dir, 'wh-defs');
  await append(src, "(1, 10, 1, 'U'), (2, 5, 2, 'U')");
  const defs = (o: { scd: 1 | 2; except: string[]; keys: string[]; cast: boolean; mv: string }) => definePipeline((p) => {
    p.table({ name: 'bronze', query: (c) => c.readStream(src) });
    p.createStreamingTable('silver');
    p.createAutoCdcFlow({ target: 'silver', source: 'bronze', keys: o.keys, sequenceBy: 'seq', applyAsDeletes: "op = 'D'", exceptColumnList: o.except, storedAsScdType: o.scd });
    p.table({ name: 'copy', query: (c) => c.sql(`SELECT id, ${o.cast ? 'CAST(amount AS VARCHAR)' : 'amount'} AS amount FROM s`, { s: c.readStream('bronze') }) });
    p.materializedView({ name: 'gold', query: (c) => c.sql(o.mv, { s: c.read('silver') }) });
  });
  const base = { scd: 1 as 1 | 2, except: ['op'], keys: ['id'], cast: false, mv: 'SELECT count(*)::INT AS n FROM s' };
  const run = (o: typeof base, extra: { fullRefresh?: string[] } = {}) => runPipeline({ floe, name: 'defs', definitions: defs(o), warehouse: wh, ...extra });
  assert.equal((await run(base)).state, 'COMPLETED');
  const cols = async (t: string) => (await floe.snapshot(path.join(wh, 'default', t))).schema.fields.map((f) => `${f.name}:${String(f.type)}`);
  assert.deepEqual(await cols('silver'), ['id:integer', 'amount:integer', 'seq:integer']);
  // An edited materialized view is recomputed although its input did not change.
  let r = await run({ ...base, mv: 'SELECT sum(amount)::INT AS total FROM s' });
  assert.equal(r.flows.gold!.note, undefined);
  assert.deepEqual(await rows(wh, 'SELECT * FROM gold'), [{ total: 15 }]);
  assert.equal((await run({ ...base, mv: 'SELECT sum(amount)::INT AS total FROM s' })).flows.gold!.note, 'inputs unchanged; up to date');
  // Changed keys: refused before anything is written to silver; with the old keys again, the batch applies.
  await append(src, "(3, 7, 3, 'U')");
  const before = (await floe.snapshot(path.join(wh, 'default', 'silver'))).version;
  r = await run({ ...base, keys: ['amount'] });
  assert.equal(r.state, 'FAILED');
  assert.equal((r.flows.silver!.error as unknown as { code: string }).code, 'AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE');
  assert.equal((await floe.snapshot(path.join(wh, 'default', 'silver'))).version, before);
  assert.equal((await run(base)).state, 'COMPLETED');
  assert.deepEqual(await rows(wh, 'SELECT id FROM silver ORDER BY id'), [{ id: 1 }, { id: 2 }, { id: 3 }]);
  // Full refresh after SCD 1 -> 2 without seq, and a type change in an append flow: the tables take the new schemas.
  const next = { ...base, scd: 2 as const, except: ['op', 'seq'], cast: true };
  r = await run(next, { fullRefresh: ['silver', 'copy'] });
  assert.equal(r.state, 'COMPLETED', JSON.stringify(Object.values(r.flows).map((f) => f.error)));
  assert.deepEqual(await cols('silver'), ['id:integer', 'amount:integer', '__START_AT:integer', '__END_AT:integer']);
  assert.deepEqual(await cols('copy'), ['id:integer', 'amount:string']);
  assert.deepEqual(await rows(wh, 'SELECT id, amount, `__START_AT` AS s FROM silver ORDER BY id'), [{ id: 1, amount: 10, s: 1 }, { id: 2, amount: 5, s: 2 }, { id: 3, amount: 7, s: 3 }]);
  // Later updates append as usual (the schema is replaced once, by the first rows after the refresh).
  await append(src, "(1, 11, 4, 'U')");
  assert.equal((await run(next)).state, 'COMPLETED');
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM silver'), [{ n: 4 }]);
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM copy'), [{ n: 4 }]);
  // A changed type without a full refresh: the flow fails, saying how to get out.
  await append(src, "(5, 1, 5, 'U')");
  r = await run({ ...next, cast: false });
  assert.equal(r.flows.silver!.status, 'COMPLETED');
  const err = r.flows.copy!.error as unknown as { code: string; message: string };
  assert.equal(err.code, 'DELTA_SCHEMA_MISMATCH');
  assert.match(err.message, /flow 'copy' cannot append to the streaming table 'copy': column 'amount' has type integer in the data but string in the table\. .*--full-refresh copy/);
});

test('run: expect_or_fail fails its flow naming the expectation and a row; independent flows still run; downstream skipped; event log', async () => {
  const src = path.join(dir, 'src3');
  const wh = path.join(dir, 'wh3');
  await append(src, "(1, 10, 1, 'U'), (2, -5, 2, 'U')");
  const def = definePipeline((p) => {
    p.table({ name: 'strict', query: (c) => c.readStream(src), expectations: [expectOrFail('positive_amount', 'amount > 0')] });
    p.materializedView({ name: 'after_strict', query: (c) => c.read('strict') });
    p.table({ name: 'lenient', query: (c) => c.readStream(src) });
  });
  const r = await runPipeline({ floe, name: 'q', definitions: def, warehouse: wh });
  assert.equal(r.state, 'FAILED');
  assert.equal(r.flows.strict!.status, 'FAILED');
  assert.match(r.flows.strict!.error!.message, /EXPECTATION_VIOLATION.*'positive_amount' on 'strict' \(amount > 0\) was violated by 1 of 2 rows.*"id":2/);
  assert.equal(r.flows.after_strict!.status, 'SKIPPED');
  assert.equal(r.flows.lenient!.status, 'COMPLETED');
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM lenient'), [{ n: 2 }]);

  const events = await readEvents(floe, r.eventLog);
  const types = events.map((e) => e.event_type);
  assert.equal(types[0], 'create_update');
  assert.ok(types.includes('flow_definition'));
  const states = events.filter((e) => e.event_type === 'update_progress').map((e) => (JSON.parse(String(e.details)) as { update_progress: { state: string } }).update_progress.state);
  assert.deepEqual(states, ['QUEUED', 'INITIALIZING', 'SETTING_UP_TABLES', 'RUNNING', 'FAILED'], JSON.stringify(events.map((e) => [e.event_type, e.message])));
  const failed = events.find((e) => e.event_type === 'flow_progress' && (e.origin as { flow_name: string }).flow_name === 'strict' && e.level === 'ERROR')!;
  assert.match(String(failed.error), /positive_amount/);
  const def2 = events.find((e) => e.event_type === 'flow_definition' && (e.origin as { flow_name: string }).flow_name === 'after_strict')!;
  assert.deepEqual((JSON.parse(String(def2.details)) as { flow_definition: { input_datasets: string[]; output_dataset: string } }).flow_definition.input_datasets, ['strict']);
  const done = events.find((e) => e.event_type === 'flow_progress' && (e.origin as { flow_name: string }).flow_name === 'lenient' && /COMPLETED/.test(String(e.message)))!;
  assert.equal((JSON.parse(String(done.details)) as { flow_progress: { metrics: { num_output_rows: number } } }).flow_progress.metrics.num_output_rows, 2);
  // events are buffered and committed per stage: setup, after each flow, the end. Independent flows
  // run concurrently, so two flows finishing together may share one commit: at most 1 + 1 + 3 + 1.
  const log = await floe.snapshot(r.eventLog);
  assert.ok(log.version + 1 >= 1 + 1 + 1 + 1 && log.version + 1 <= 1 + 1 + 3 + 1, `${log.version + 1} event-log commits`);
  assert.ok(log.version + 1 < events.length, 'events are batched, not one commit each');
});

test('run: a pending batch is replayed exactly (output committed, checkpoint not advanced)', async () => {
  const src = path.join(dir, 'src4');
  const wh = path.join(dir, 'wh4');
  await append(src, "(1, 10, 1, 'U')");
  const def = definePipeline((p) => p.table({ name: 'copy', query: (c) => c.readStream(src) }));
  const opts = { floe, name: 'crash', definitions: def, warehouse: wh };
  await runPipeline(opts);
  const state = new PipelineState(path.join(wh, '_pipelines', 'crash'));
  const before = await state.checkpoint('copy');
  await append(src, "(2, 10, 2, 'U')");
  await runPipeline(opts);
  // Simulate a crash after the output commit of batch 1 but before its checkpoint: restore the old
  // checkpoint with the batch pending; meanwhile the source moved on.
  await state.saveCheckpoint({ ...before, pending: { batchId: 1, sources: { [Object.keys(before.sources)[0]!]: { from: 0, to: 1 } } } });
  await append(src, "(3, 10, 3, 'U')");
  const r = await runPipeline(opts);
  assert.equal(r.flows.copy!.note, 'batch already written (replayed after an interruption)');
  // The same update then processes what arrived since (available-now: everything available).
  assert.equal(r.flows.copy!.numOutputRows, 1);
  const r2 = await runPipeline(opts);
  assert.equal(r2.flows.copy!.numOutputRows, 0);
  assert.deepEqual(await rows(wh, 'SELECT id FROM copy ORDER BY id'), [{ id: 1 }, { id: 2 }, { id: 3 }]);
});

test('run: append flows (streaming and once), views, files and the change feed of a CDC target', async () => {
  const land = path.join(dir, 'land5');
  const wh = path.join(dir, 'wh5');
  await fs.mkdir(land, { recursive: true });
  await fs.writeFile(path.join(land, 'a.json'), '{"id":1,"v":"a"}\n{"id":2,"v":"b"}\n');
  const def = definePipeline((p) => {
    p.createStreamingTable('all_rows');
    p.appendFlow({ target: 'all_rows', name: 'from_files', query: (c) => c.readStreamFiles(land, { format: 'json' }) });
    p.appendFlow({ target: 'all_rows', name: 'backfill', once: true, query: (c) => c.floe.duckdbSql("SELECT 100 AS id, 'old' AS v") });
    p.view({ name: 'upper', query: (c) => c.readStream('all_rows').select('id', 'upper(v) AS v') });
    p.createStreamingTable('current');
    p.createAutoCdcFlow({ target: 'current', source: 'upper', keys: ['id'], sequenceBy: 'id' });
    p.table({ name: 'changes', query: (c) => c.readStream('current', { readChangeFeed: true }).select('id', '_change_type') });
  });
  const opts = { floe, name: 'mix', definitions: def, warehouse: wh };
  const r1 = await runPipeline(opts);
  assert.equal(r1.state, 'COMPLETED', JSON.stringify(Object.values(r1.flows).map((f) => f.error?.message)));
  await fs.writeFile(path.join(land, 'b.json'), '{"id":3,"v":"c","extra":true}\n');
  const r2 = await runPipeline(opts);
  assert.equal(r2.state, 'COMPLETED', JSON.stringify(Object.values(r2.flows).map((f) => f.error?.message)));
  assert.equal(r2.flows.from_files!.numOutputRows, 1);
  assert.equal(r2.flows.backfill!.note, 'once flow already ran');
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id, v, extra FROM all_rows ORDER BY id'), [{ id: 1, v: 'a', extra: null }, { id: 2, v: 'b', extra: null }, { id: 3, v: 'c', extra: true }, { id: 100, v: 'old', extra: null }]);
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id, v FROM current ORDER BY id'), [{ id: 1, v: 'A' }, { id: 2, v: 'B' }, { id: 3, v: 'C' }, { id: 100, v: 'OLD' }]);
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id FROM changes ORDER BY id'), [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 100 }]);
});

test('run: every event-log record reaches onEvent listeners and subscribePipelineEvents subscribers; a throwing subscriber fails nothing', async () => {
  const src = path.join(dir, 'src-sub');
  const wh = path.join(dir, 'wh-sub');
  await append(src, "(1, 10, 1, 'U')");
  const seenA: string[] = [];
  const seenB: string[] = [];
  const seenSub: string[] = [];
  const off = subscribePipelineEvents((e) => seenSub.push(e.id));
  const offBad = subscribePipelineEvents(() => {
    throw new Error('subscriber bug');
  });
  try {
    const r = await runPipeline({ floe, name: 'subs', definitions: orders(src), warehouse: wh, onEvent: [(e) => seenA.push(e.id), (e) => seenB.push(e.id)] });
    assert.equal(r.state, 'COMPLETED');
  } finally {
    off();
    offBad();
  }
  const logged = (await readEvents(floe, r_eventLog(wh, 'subs'))).map((e) => String(e.id));
  assert.ok(logged.length > 5);
  assert.deepEqual([...seenA].sort(), [...logged].sort());
  assert.deepEqual(seenB, seenA);
  assert.deepEqual(seenSub, seenA);
  // Unsubscribed: a later run is not seen.
  await runPipeline({ floe, name: 'subs', definitions: orders(src), warehouse: wh });
  assert.equal(seenSub.length, seenA.length);
});

function r_eventLog(wh: string, name: string): string {
  return path.join(wh, '_pipelines', name, 'event_log');
}

test("SQL: event_log('pipeline') by name or path reads the event log as a table; SHOW SCHEMAS hides _pipelines; clear error otherwise", async () => {
  const src = path.join(dir, 'src-evsql');
  const wh = path.join(dir, 'wh-evsql');
  await append(src, "(1, 10, 1, 'U'), (2, 5, 2, 'U')");
  const r = await runPipeline({ floe, name: 'evsql', definitions: orders(src), warehouse: wh });
  const byName = await rows(wh, "SELECT event_type, count(*)::INT AS n FROM event_log('evsql') WHERE origin.update_id = '" + r.updateId + "' AND event_type IN ('create_update', 'flow_definition') GROUP BY ALL ORDER BY 1");
  assert.deepEqual(byName, [{ event_type: 'create_update', n: 1 }, { event_type: 'flow_definition', n: 3 }]);
  // DLT's usual query: flow progress metrics from the details JSON.
  const silver = await rows(wh, "SELECT CAST(get_json_object(details, '$.flow_progress.metrics.num_upserted_rows') AS INT) AS u FROM event_log('evsql') e WHERE e.event_type = 'flow_progress' AND e.origin.flow_name = 'silver' AND get_json_object(details, '$.flow_progress.status') = 'COMPLETED'");
  assert.deepEqual(silver, [{ u: 2 }]);
  // The Databricks documentation's data-quality query (from_json with a DDL schema, explode, the : path syntax).
  const quality = await rows(wh, `SELECT row_expectations.dataset AS dataset, row_expectations.name AS expectation,
      SUM(row_expectations.passed_records)::INT AS passing_records, SUM(row_expectations.failed_records)::INT AS failing_records
    FROM (SELECT explode(from_json(details:flow_progress:data_quality:expectations, "array<struct<name: string, dataset: string, passed_records: int, failed_records: int>>")) row_expectations
          FROM event_log('evsql') WHERE event_type = 'flow_progress' AND origin.update_id = '${r.updateId}')
    GROUP BY row_expectations.dataset, row_expectations.name ORDER BY 2`);
  assert.deepEqual(quality, [
    { dataset: 'bronze', expectation: 'has_id', passing_records: 2, failing_records: 0 },
    { dataset: 'bronze', expectation: 'positive', passing_records: 2, failing_records: 0 },
  ]);
  const storage = path.join(wh, '_pipelines', 'evsql');
  for (const p of [storage, path.join(storage, 'event_log')]) {
    const n = await rows(wh, `SELECT count(*)::INT AS n FROM event_log('${p}')`);
    assert.equal(n[0]!.n, (await readEvents(floe, path.join(storage, 'event_log'))).length);
  }
  const schemas = await floe.sql('SHOW SCHEMAS', { warehouse: wh });
  assert.deepEqual(schemas.kind === 'status' ? schemas.rows!.map((x) => x.databaseName) : null, ['default']);
  await assert.rejects(floe.sql("SELECT * FROM event_log('no_such_pipeline')", { warehouse: wh }), (e: Error & { code?: string }) => e.code === 'PIPELINE_EVENT_LOG_NOT_FOUND' && /no_such_pipeline/.test(e.message));
  await assert.rejects(floe.sql('SELECT * FROM event_log(1)', { warehouse: wh }), /event_log\(\) takes one string/);
});

test('declared schemas: AUTO CDC and append targets are cast to the declared types; a column that does not fit fails naming it (JS and SQL)', async () => {
  const src = path.join(dir, 'src-schema');
  await floe.duckdbSql("SELECT * FROM (VALUES (1, '10', 1, 'U'), (2, '5', 2, 'U')) v(id, amount, seq, op)").write.delta(src, { mode: 'append' });
  const cdc = (schema: string) => definePipeline((p) => {
    p.createStreamingTable('silver', { schema });
    p.createAutoCdcFlow({ target: 'silver', source: src, keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'D'", exceptColumnList: ['op'] });
    p.createStreamingTable('raw', { schema: [{ name: 'id', type: 'INT', nullable: false }, { name: 'amount', type: 'STRING' }, { name: 'seq', type: 'BIGINT' }, { name: 'op', type: 'STRING' }, { name: 'note', type: 'STRING' }] });
    p.appendFlow({ target: 'raw', query: (c) => c.readStream(src) });
  });
  // Fits: amount '10' becomes a DECIMAL; raw gets the undeclared-but-nullable note as NULL.
  const wh1 = path.join(dir, 'wh-schema1');
  const ok = await runPipeline({ floe, name: 'schema1', definitions: cdc('id INT NOT NULL, amount DECIMAL(10,2), seq BIGINT'), warehouse: wh1 });
  assert.equal(ok.state, 'COMPLETED', String(Object.values(ok.flows).find((x) => x.error)?.error));
  assert.deepEqual(await rows(wh1, 'SELECT id, amount, typeof(amount) AS t FROM silver ORDER BY id'), [{ id: 1, amount: '10.00', t: 'DECIMAL(10,2)' }, { id: 2, amount: '5.00', t: 'DECIMAL(10,2)' }]);
  assert.deepEqual(await rows(wh1, 'SELECT id, note FROM raw ORDER BY id'), [{ id: 1, note: null }, { id: 2, note: null }]);
  // A value that does not convert: the flow fails naming the column and the value.
  const src2 = path.join(dir, 'src-schema-bad');
  await floe.duckdbSql("SELECT * FROM (VALUES (1, 'ten', 1, 'U')) v(id, amount, seq, op)").write.delta(src2, { mode: 'append' });
  const bad = await runPipeline({ floe, name: 'schema2', warehouse: path.join(dir, 'wh-schema2'), definitions: definePipeline((p) => {
    p.createStreamingTable('silver', { schema: 'id INT, amount INT, seq BIGINT' });
    p.createAutoCdcFlow({ target: 'silver', source: src2, keys: ['id'], sequenceBy: 'seq', exceptColumnList: ['op'] });
  }) });
  assert.equal(bad.state, 'FAILED');
  const e = bad.flows.silver!.error as Error & { code?: string };
  assert.equal(e.code, 'PIPELINE_SCHEMA_MISMATCH');
  assert.match(e.message, /column 'amount' do not convert to its declared type INTEGER \(e\.g\. 'ten'\)/);
  // A column the schema does not declare (SQL: CREATE OR REFRESH STREAMING TABLE t (cols)).
  const sqlDefs = collectDefinitions([{ define: await parseSqlLibrary(`CREATE OR REFRESH STREAMING TABLE silver (id INT NOT NULL, seq BIGINT);
    CREATE FLOW f AS AUTO CDC INTO silver FROM STREAM(delta.\`${src}\`) KEYS (id) SEQUENCE BY seq COLUMNS * EXCEPT (op);`, 'lib.sql'), source: 'lib.sql' }]);
  const r3 = await runPipeline({ floe, name: 'schema3', warehouse: path.join(dir, 'wh-schema3'), definitions: sqlDefs });
  assert.equal(r3.state, 'FAILED');
  assert.match(String(r3.flows.f!.error?.message), /produces the column 'amount', which the declared schema does not have/);
  // A NULL in a NOT NULL column; and a bad declared type is an error at definition time.
  const src4 = path.join(dir, 'src-schema-null');
  await floe.duckdbSql("SELECT * FROM (VALUES (NULL::INT, 1, 'x')) v(id, seq, op)").write.delta(src4, { mode: 'append' });
  const r4 = await runPipeline({ floe, name: 'schema4', warehouse: path.join(dir, 'wh-schema4'), definitions: definePipeline((p) => {
    p.createStreamingTable('raw', { schema: 'id INT NOT NULL, seq INT, op STRING' });
    p.appendFlow({ target: 'raw', query: (c) => c.readStream(src4) });
  }) });
  assert.match(String(r4.flows.raw_append_1?.error?.message ?? Object.values(r4.flows)[0]!.error?.message), /NULL in the NOT NULL column 'id'/);
  assert.throws(() => collectDefinitions([{ define: (p) => p.createStreamingTable('x', { schema: 'id NOTATYPE' }) }]), /schema of 'x'.*Unknown data type 'NOTATYPE'/);
});

test('file ingestion: maxFilesPerTrigger splits a run into batches of at most N files (oldest first); every processed file stays tracked, so a late file with an old modification time is still read', async () => {
  const land = path.join(dir, 'land-max');
  const wh = path.join(dir, 'wh-max');
  await fs.mkdir(land, { recursive: true });
  const day = 24 * 3600 * 1000;
  const base = Math.floor(Date.now() / 1000) * 1000 - 10 * day; // whole seconds: exact on every file system
  // Five files; the two oldest are over a day older than the rest.
  const mt = [base, base + 1000, base + 3 * day, base + 3 * day + 1000, base + 3 * day + 2000];
  for (let i = 0; i < 5; i++) {
    const f = path.join(land, `f${i}.json`);
    await fs.writeFile(f, JSON.stringify({ id: i, v: `r${i}` }) + '\n');
    await fs.utimes(f, new Date(mt[i]!), new Date(mt[i]!));
  }
  const defs = definePipeline((p) => p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json', maxFilesPerTrigger: 2 }) }));
  const r = await runPipeline({ floe, name: 'maxf', definitions: defs, warehouse: wh });
  assert.equal(r.state, 'COMPLETED');
  assert.equal(r.flows.raw!.numOutputRows, 5);
  assert.equal(r.flows.raw!.batchId, 2, 'three batches: 2 + 2 + 1 files');
  // One commit per batch, each with at most 2 files' rows, oldest first.
  const hist = await floe.sql('DESCRIBE HISTORY raw', { warehouse: wh });
  const writes = (hist.kind === 'status' ? hist.rows! : (await hist.dataFrame.toJSON())).filter((h) => String(h.operation) === 'WRITE' || String(h.operation) === 'CREATE TABLE AS SELECT' || String(h.operation).includes('WRITE'));
  assert.equal(writes.length, 3);
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id FROM raw@v0 ORDER BY id'), [{ id: 0 }, { id: 1 }]);
  const cp = await new PipelineState(path.join(wh, '_pipelines', 'maxf')).checkpoint('raw');
  const off = Object.values(cp.sources)[0]!;
  assert.equal(off.hwm, mt[4]);
  assert.deepEqual(off.files!.map((f) => path.basename(f)).sort(), ['f0.json', 'f1.json', 'f2.json', 'f3.json', 'f4.json']);
  // Nothing is processed twice; a new file is picked up, and so is one copied in with an old
  // modification time (cp -p, rsync -a): no file is skipped unless maxFileAge says so.
  await fs.writeFile(path.join(land, 'f5.json'), JSON.stringify({ id: 5, v: 'r5' }) + '\n');
  const late = path.join(land, 'f6.json');
  await fs.writeFile(late, JSON.stringify({ id: 6, v: 'r6' }) + '\n');
  await fs.utimes(late, new Date(base - day), new Date(base - day));
  const r2 = await runPipeline({ floe, name: 'maxf', definitions: defs, warehouse: wh });
  assert.equal(r2.flows.raw!.numOutputRows, 2);
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n, count(DISTINCT id)::INT AS d FROM raw'), [{ n: 7, d: 7 }]);
});

test("file ingestion with maxFileAge: the checkpoint lists only files within that age of the high-water mark; older late files are skipped, as Auto Loader's maxFileAge", async () => {
  const land = path.join(dir, 'land-age');
  const wh = path.join(dir, 'wh-age');
  await fs.mkdir(land, { recursive: true });
  const day = 24 * 3600 * 1000;
  const base = Math.floor(Date.now() / 1000) * 1000 - 10 * day;
  const mt = [base, base + 1000, base + 3 * day, base + 3 * day + 1000];
  for (let i = 0; i < mt.length; i++) {
    const f = path.join(land, `f${i}.json`);
    await fs.writeFile(f, JSON.stringify({ id: i }) + '\n');
    await fs.utimes(f, new Date(mt[i]!), new Date(mt[i]!));
  }
  const defs = definePipeline((p) => p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json', maxFileAge: '1 day' }) }));
  const r = await runPipeline({ floe, name: 'agef', definitions: defs, warehouse: wh });
  assert.equal(r.flows.raw!.numOutputRows, 4);
  const off = Object.values((await new PipelineState(path.join(wh, '_pipelines', 'agef')).checkpoint('raw')).sources)[0]!;
  assert.deepEqual(off.files!.map((f) => path.basename(f)).sort(), ['f2.json', 'f3.json']);
  const late = path.join(land, 'f9.json');
  await fs.writeFile(late, JSON.stringify({ id: 9 }) + '\n');
  await fs.utimes(late, new Date(base), new Date(base));
  const r2 = await runPipeline({ floe, name: 'agef', definitions: defs, warehouse: wh });
  assert.equal(r2.flows.raw!.numOutputRows, 0, 'older than maxFileAge before the mark: not picked up');
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM raw'), [{ n: 4 }]);
  const bad = definePipeline((p) => p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json', maxFileAge: 'a while' }) }));
  const r3 = await runPipeline({ floe, name: 'agebad', definitions: bad, warehouse: `${wh}-bad` });
  assert.equal(r3.state, 'FAILED');
  const err = r3.flows.raw!.error as unknown as { code: string; message: string };
  assert.equal(err.code, 'PIPELINE_INVALID_OPTION');
  assert.match(err.message, /maxFileAge 'a while' is not a duration/);
});

test("file ingestion keeps the types of its first files (Auto Loader's stored schema): later files' integers, all-NULL columns and missing columns are read with them; a value that does not convert fails the flow", async () => {
  const land = path.join(dir, 'land-types');
  const wh = path.join(dir, 'wh-types');
  await fs.mkdir(land, { recursive: true });
  const put = (name: string, rows: object[]) => fs.writeFile(path.join(land, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  await put('f0.json', [{ id: 1, name: 'a', amount: 1.5, op: 'U', seq: 1 }]);
  const defs = definePipeline((p) => {
    p.table({ name: 'bronze', query: (c) => c.readStreamFiles(land, { format: 'json' }) });
    p.createStreamingTable('silver');
    p.createAutoCdcFlow({ target: 'silver', source: 'bronze', keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'D'", exceptColumnList: ['op', 'seq'] });
  });
  const run = () => runPipeline({ floe, name: 'types', definitions: defs, warehouse: wh });
  assert.equal((await run()).state, 'COMPLETED');
  // A delete whose other columns are NULL (DuckDB reads them as JSON), then an integer amount and no name.
  await put('f1.json', [{ id: 1, name: null, amount: null, op: 'D', seq: 2 }]);
  let r = await run();
  assert.equal(r.state, 'COMPLETED', JSON.stringify(r.flows.bronze?.error ?? r.flows.silver?.error));
  await put('f2.json', [{ id: 2, amount: 2, op: 'U', seq: 3, email: 'x@y' }]);
  r = await run();
  assert.equal(r.state, 'COMPLETED', JSON.stringify(r.flows.bronze?.error ?? r.flows.silver?.error));
  const types = (await floe.snapshot(path.join(wh, 'default', 'bronze'))).schema.fields.map((f) => `${f.name}:${String(f.type)}`);
  assert.deepEqual(types, ['id:long', 'name:string', 'amount:double', 'op:string', 'seq:long', 'email:string']);
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id, name, amount FROM bronze ORDER BY seq'), [{ id: 1, name: 'a', amount: 1.5 }, { id: 1, name: null, amount: null }, { id: 2, name: null, amount: 2 }]);
  // A fraction in an integer column or text in a number column is not changed: the flow fails, saying which.
  await put('f3.json', [{ id: 3.5, name: 'c', amount: 'abc', op: 'U', seq: 4 }]);
  r = await run();
  assert.equal(r.state, 'FAILED');
  const err = r.flows.bronze!.error as unknown as { code: string; message: string };
  assert.equal(err.code, 'FILE_SOURCE_SCHEMA_MISMATCH');
  assert.match(err.message, /value (3\.5 in column 'id' \(read as DOUBLE\), which does not convert to the column's type BIGINT|abc in column 'amount')/);
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM bronze'), [{ n: 3 }]);
  // Removing the bad file unblocks the flow: its pending batch is dropped (nothing of it was written).
  await fs.rm(path.join(land, 'f3.json'));
  r = await run();
  assert.equal(r.state, 'COMPLETED');
  assert.equal(r.flows.bronze!.note, 'no new data');
  assert.deepEqual(await rows(wh, 'SELECT count(*)::INT AS n FROM bronze'), [{ n: 3 }]);
  assert.deepEqual((await floe.snapshot(path.join(wh, 'default', 'bronze'))).schema.fields.map((f) => f.name), ['id', 'name', 'amount', 'op', 'seq', 'email']);
});

test('file ingestion: a column NULL in every row of the first files is a string column; later text and numbers are read into it', async () => {
  const land = path.join(dir, 'land-nullfirst');
  const wh = path.join(dir, 'wh-nullfirst');
  await fs.mkdir(land, { recursive: true });
  const defs = definePipeline((p) => p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json' }) }));
  const put = (i: number, row: object) => fs.writeFile(path.join(land, `f${i}.json`), JSON.stringify(row) + '\n');
  const rowsOf = [{ id: 1, v: null }, { id: 2, v: 'abc' }, { id: 3, v: 5 }];
  for (const [i, row] of rowsOf.entries()) {
    await put(i, row);
    const r = await runPipeline({ floe, name: 'nullfirst', definitions: defs, warehouse: wh });
    assert.equal(r.state, 'COMPLETED', r.flows.raw!.error?.message);
  }
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id, v FROM raw ORDER BY id'), [{ id: 1, v: null }, { id: 2, v: 'abc' }, { id: 3, v: '5' }]);
});

test('file ingestion after a crash between the output commit and the checkpoint, its file archived meanwhile: the batch id is not reused, so the next file is not taken for already written', async () => {
  const land = path.join(dir, 'land-archived');
  const wh = path.join(dir, 'wh-archived');
  await fs.mkdir(land, { recursive: true });
  await fs.writeFile(path.join(land, 'a.json'), '{"id":1,"v":"a"}\n');
  const defs = definePipeline((p) => p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json' }) }));
  const run = () => runPipeline({ floe, name: 'archived', definitions: defs, warehouse: wh });
  assert.equal((await run()).state, 'COMPLETED');
  // The state the crash leaves: the batch committed to raw, the checkpoint still pending.
  const state = new PipelineState(path.join(wh, '_pipelines', 'archived'));
  const cp = await state.checkpoint('raw');
  const [key, off] = Object.entries(cp.sources)[0]!;
  await state.saveCheckpoint({ flow: 'raw', batchId: -1, sources: {}, pending: { batchId: cp.batchId, sources: { [key]: { files: off.files!, mtimes: off.mtimes! } } } });
  await fs.rename(path.join(land, 'a.json'), path.join(dir, 'a.json.archived'));
  await fs.writeFile(path.join(land, 'b.json'), '{"id":2,"v":"b"}\n');
  const r2 = await run();
  assert.equal(r2.flows.raw!.note, 'no new data');
  const r3 = await run();
  assert.equal(r3.flows.raw!.numOutputRows, 1);
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id, v FROM raw ORDER BY id'), [{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
  // validate describes the source from its stored schema, not only from the files still there.
  await fs.rm(path.join(land, 'b.json'));
  const vdefs = definePipeline((p) => {
    p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json' }) });
    p.materializedView({ name: 'vs', query: (c) => c.sql('SELECT v FROM r', { r: c.read('raw') }) });
  });
  await validatePipeline({ floe, name: 'archived', definitions: vdefs, warehouse: wh });
});

test('file ingestion: nested JSON values evolve (a new struct field is kept, an empty list takes the stored element type); a column of JSON text stays text: strings unquoted, objects and arrays as JSON', async () => {
  const land = path.join(dir, 'land-nested');
  const wh = path.join(dir, 'wh-nested');
  await fs.mkdir(land, { recursive: true });
  const defs = definePipeline((p) => p.table({ name: 'raw', query: (c) => c.readStreamFiles(land, { format: 'json' }) }));
  const lines = [
    { id: 1, p: { a: 1 }, tags: [1, 2], j: null },
    { id: 2, p: { a: 2, b: 'x' }, tags: [], j: 'abc' },
    { id: 3, p: { a: 3 }, tags: [3], j: { k: 1 } },
    { id: 4, p: { a: 4 }, tags: [4], j: [1, 'q'] },
  ];
  for (const [i, l] of lines.entries()) {
    await fs.writeFile(path.join(land, `f${i}.json`), JSON.stringify(l) + '\n');
    const r = await runPipeline({ floe, name: 'nested', definitions: defs, warehouse: wh });
    assert.equal(r.state, 'COMPLETED', r.flows.raw!.error?.message);
  }
  assert.deepEqual(await rows(wh, 'SELECT id::INT AS id, p.a::INT AS a, p.b AS b, size(tags)::INT AS n, j FROM raw ORDER BY id'), [
    { id: 1, a: 1, b: null, n: 2, j: null },
    { id: 2, a: 2, b: 'x', n: 0, j: 'abc' },
    { id: 3, a: 3, b: null, n: 1, j: '{"k":1}' },
    { id: 4, a: 4, b: null, n: 1, j: '[1,"q"]' },
  ]);
});

test('a query function that returns no DataFrame fails its flow with PIPELINE_INVALID_QUERY naming it', async () => {
  const wh = path.join(dir, 'wh-badquery');
  const defs = definePipeline((p) => {
    p.table({ name: 'bad', query: () => 'SELECT 1' as never });
    p.materializedView({ name: 'ok', query: (c) => c.sql('SELECT 1 AS x') });
  });
  const r = await runPipeline({ floe, name: 'badquery', definitions: defs, warehouse: wh });
  assert.equal(r.state, 'FAILED');
  const err = r.flows.bad!.error as unknown as { code: string; message: string };
  assert.equal(err.code, 'PIPELINE_INVALID_QUERY');
  assert.match(err.message, /The query function of 'bad' returned a string \('SELECT 1'\); it must return a DataFrame/);
  assert.equal(r.flows.ok!.status, 'COMPLETED');
  // A query DuckDB cannot run: PIPELINE_QUERY_ERROR naming the dataset and file, without floe's generated SQL.
  const sqlDefs = collectDefinitions([{ define: (p) => p.materializedView({ name: 'mv', query: (c) => c.sql('SELECT nosuch FROM s', { s: c.read('ok') }) }), source: 'lib.js' }, { define: (p) => p.materializedView({ name: 'ok', query: (c) => c.sql('SELECT 1 AS x') }) }]);
  const r2 = await runPipeline({ floe, name: 'badquery2', definitions: sqlDefs, warehouse: `${wh}2` });
  const err2 = r2.flows.mv!.error as unknown as { code: string; message: string };
  assert.equal(err2.code, 'PIPELINE_QUERY_ERROR');
  assert.match(err2.message, /^\[PIPELINE_QUERY_ERROR\] The query of 'mv' \(lib\.js\) failed: Binder Error: Referenced column "nosuch" not found/);
  assert.doesNotMatch(err2.message, /LINE \d|__floe_/);
});

test('a .ts pipeline library loads without a compile step (types stripped by TypeScript), with its relative imports', async () => {
  const proj = path.join(dir, 'ts-proj');
  await fs.mkdir(path.join(proj, 'transformations'), { recursive: true });
  await fs.mkdir(path.join(proj, 'lib'), { recursive: true });
  await fs.writeFile(path.join(proj, 'pipeline.yml'), 'name: tsdemo\nwarehouse: ./warehouse\nlibraries:\n  - glob:\n      include: transformations/**\n');
  await fs.writeFile(path.join(proj, 'lib', 'helpers.mjs'), 'export const double = (n) => n * 2;\n');
  await fs.writeFile(path.join(proj, 'transformations', 'numbers.ts'), `import { double } from '../lib/helpers.mjs';
interface Builder { materializedView(def: { name: string; query: (c: { sql(q: string): unknown }) => unknown }): void }
type N = number;
const n: N = double(21);
export default function (p: Builder): void {
  p.materializedView({ name: 'answer', query: (c) => c.sql(\`SELECT \${n}::INT AS answer\`) });
}
`);
  const r = await runPipeline({ floe, spec: path.join(proj, 'pipeline.yml') });
  assert.equal(r.state, 'COMPLETED', String(Object.values(r.flows).find((x) => x.error)?.error));
  assert.deepEqual(await rows(path.join(proj, 'warehouse'), 'SELECT answer FROM answer'), [{ answer: 42 }]);
  // The hidden transpiled module is gone.
  assert.deepEqual((await fs.readdir(path.join(proj, 'transformations'))).sort(), ['numbers.ts']);
  // A syntax error names the file.
  await fs.writeFile(path.join(proj, 'transformations', 'numbers.ts'), 'export default function (p: { x: number ) {}\n');
  await assert.rejects(runPipeline({ floe, spec: path.join(proj, 'pipeline.yml') }), /PIPELINE_LIBRARY_LOAD_FAILED.*numbers\.ts/);
});

test('a .ts pipeline library when the typescript package cannot be loaded: a clear error, through the CLI', async () => {
  const proj = path.join(dir, 'ts-missing');
  await fs.mkdir(path.join(proj, 'transformations'), { recursive: true });
  await fs.writeFile(path.join(proj, 'pipeline.yml'), 'name: tsmissing\nwarehouse: ./warehouse\nlibraries:\n  - glob:\n      include: transformations/**\n');
  await fs.writeFile(path.join(proj, 'transformations', 'numbers.ts'), 'export default function (p: unknown): void {}\n');
  // A module resolution hook makes `typescript` (the bare name, or a file inside any typescript package) unresolvable.
  await fs.writeFile(path.join(proj, 'hide-ts-hooks.mjs'), `export async function resolve(specifier, context, next) {
  if (specifier === 'typescript' || specifier.startsWith('typescript/') || /[\\/]node_modules[\\/]typescript[\\/]/.test(specifier)) {
    throw Object.assign(new Error("Cannot find package 'typescript'"), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}
`);
  await fs.writeFile(path.join(proj, 'hide-ts.mjs'), "import { register } from 'node:module';\nregister('./hide-ts-hooks.mjs', import.meta.url);\n");
  const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(proj, 'hide-ts.mjs')).href, cli, 'pipelines', 'validate', '--spec', path.join(proj, 'pipeline.yml')], { encoding: 'utf8', timeout: 120_000, cwd: proj });
  const out = `${r.stdout}${r.stderr}`;
  assert.notEqual(r.status, 0, out);
  assert.match(out, /PIPELINE_LIBRARY_NEEDS_TYPESCRIPT/);
  assert.match(out, /numbers\.ts/);
  assert.match(out, /npm install --save-dev typescript/);
  // Nothing was left next to the library.
  assert.deepEqual(await fs.readdir(path.join(proj, 'transformations')), ['numbers.ts']);
});

test('progress display: one line per flow, redrawn in place from the events; failures print above the block', async () => {
  const src = path.join(dir, 'src-prog');
  const wh = path.join(dir, 'wh-prog');
  await append(src, "(1, 10, 1, 'U'), (2, 5, 2, 'U')");
  const events: PipelineEvent[] = [];
  await runPipeline({ floe, name: 'prog', definitions: orders(src), warehouse: wh, onEvent: (e) => events.push(e) });
  const d = new ProgressDisplay(() => 0);
  const outs = events.map((e) => d.render(e));
  const block = d.block();
  assert.equal(block.length, 3);
  assert.match(block[0]!, /^✓ bronze\s+COMPLETED\s+2 rows/);
  assert.match(block[1]!, /^✓ silver\s+COMPLETED\s+2 rows \(2 upserted, 0 deleted\)/);
  assert.match(block[2]!, /^✓ gold\s+COMPLETED\s+1 rows/);
  // Later renders move the cursor back over the 3 lines before redrawing them.
  assert.ok(outs.some((o) => o.startsWith('\x1b[3A\x1b[0J')));
  assert.match(outs.at(-1)!, /Update \w+ is COMPLETED/);
  // A failing flow: its error above the block, ✗ on its line.
  const failing = definePipeline((p) => p.materializedView({ name: 'bad', query: (c) => c.sql('SELECT no_such_column FROM s', { s: c.read(src) }) }));
  const evs: PipelineEvent[] = [];
  await runPipeline({ floe, name: 'prog2', definitions: failing, warehouse: wh, onEvent: (e) => evs.push(e) });
  const d2 = new ProgressDisplay(() => 0);
  const text = evs.map((e) => d2.render(e)).join('');
  assert.match(text, /✗ Flow 'bad' has FAILED: .*no_such_column/);
  assert.match(d2.block()[0]!, /^✗ bad\s+FAILED/);
});

test('independent flows run concurrently (pipelines.maxConcurrentFlows); a flow waits for its inputs; 1 runs them in order; the results are the same', async () => {
  const src = path.join(dir, 'conc-src');
  await floe.duckdbSql('SELECT range::INT AS id, range % 3 AS g FROM range(30)').write.delta(src);
  const defs = definePipeline((p) => {
    p.table({ name: 'left_t', query: (c) => c.readStream(src) });
    p.table({ name: 'right_t', query: (c) => c.sql('SELECT id, g * 10 AS g FROM s', { s: c.readStream(src) }) });
    p.materializedView({ name: 'both', query: (c) => c.sql('SELECT count(*)::INT AS n, sum(l.g + r.g)::INT AS s FROM l JOIN r USING (id)', { l: c.read('left_t'), r: c.read('right_t') }) });
  });
  const run = async (name: string, maxConcurrentFlows: number): Promise<{ order: string[]; rows: Record<string, unknown>[] }> => {
    const order: string[] = [];
    const onEvent = (e: PipelineEvent): void => {
      if (e.event_type !== 'flow_progress') return;
      const st = (JSON.parse(e.details) as { flow_progress?: { status?: string } }).flow_progress?.status;
      if (st === 'RUNNING' || st === 'COMPLETED') order.push(`${e.origin.flow_name} ${st}`);
    };
    const wh = path.join(dir, `wh-${name}`);
    const r = await runPipeline({ floe, name, definitions: defs, warehouse: wh, maxConcurrentFlows, onEvent });
    assert.equal(r.state, 'COMPLETED');
    const res = await floe.sql('SELECT * FROM both', { warehouse: wh });
    return { order, rows: res.kind === 'rows' ? await res.dataFrame.toJSON() : [] };
  };
  const conc = await run('conc2', 2);
  // Both independent flows start before either completes; the view starts after both.
  assert.deepEqual(conc.order.slice(0, 2).sort(), ['left_t RUNNING', 'right_t RUNNING']);
  const bothStart = conc.order.indexOf('both RUNNING');
  assert.ok(bothStart > conc.order.indexOf('left_t COMPLETED') && bothStart > conc.order.indexOf('right_t COMPLETED'), conc.order.join(', '));
  const seq = await run('conc1', 1);
  assert.deepEqual(seq.order, ['left_t RUNNING', 'left_t COMPLETED', 'right_t RUNNING', 'right_t COMPLETED', 'both RUNNING', 'both COMPLETED']);
  assert.deepEqual(conc.rows, [{ n: 30, s: 330 }]);
  assert.deepEqual(seq.rows, conc.rows);
  const bad = await runPipeline({ floe, name: 'conc0', definitions: defs, warehouse: path.join(dir, 'wh-conc0'), configuration: { 'pipelines.maxConcurrentFlows': 'many' } }).catch((e: unknown) => e);
  assert.ok(bad instanceof Error && /maxConcurrentFlows must be a positive integer/.test(bad.message), String(bad));
});
