/**
 * Operating pipelines: data-quality metrics of concurrent flows and of runs of several batches, the
 * UI's per-flow sums over continuous rounds and view expectations' actions, updates that fail before
 * any flow runs (bad options, a library that does not load) recorded as FAILED, a first run without
 * data, a stopped update's skipped flows, notification commands that leave a process behind, missing
 * configuration keys and landing folders.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { definePipeline, expect, expectOrDrop } from '../pipelines/definition.js';
import { type PipelineEvent, listUpdates, readEvents } from '../pipelines/event-log.js';
import { runPipeline, validatePipeline } from '../pipelines/runner.js';
import { expectationsOf, flowsOf, type UiEvent } from '../ui/data.js';
import { tempDir } from './helpers.js';

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-pipe-ops-');
});
after(async () => {
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const jsonLines = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const dq = (e: PipelineEvent): { dropped_records: number; expectations: Array<{ name: string; dataset: string; passed_records: number; failed_records: number }> } | undefined =>
  (JSON.parse(e.details) as { flow_progress?: { data_quality?: ReturnType<typeof dq> } }).flow_progress?.data_quality;

test('flows running at once keep their own view expectations and dropped counts', async () => {
  const base = path.join(dir, 'views');
  await fs.mkdir(path.join(base, 'la'), { recursive: true });
  await fs.mkdir(path.join(base, 'lb'), { recursive: true });
  await fs.writeFile(path.join(base, 'la', 'a.json'), jsonLines([{ x: 1 }, { x: 2 }, { x: 3 }, { x: -1 }]));
  await fs.writeFile(path.join(base, 'lb', 'b.json'), jsonLines([{ x: 1 }, { x: 2 }, { x: -5 }, { x: -6 }]));
  const defs = definePipeline((p) => {
    p.temporaryView({ name: 'va', query: (c) => c.readStreamFiles('la', { format: 'json' }), expectations: [expect('a_pos', 'x > 0')] });
    p.temporaryView({ name: 'vb', query: (c) => c.readStreamFiles('lb', { format: 'json' }), expectations: [expectOrDrop('b_pos', 'x > 0')] });
    p.table({ name: 'ta', query: (c) => c.readStream('va') });
    p.table({ name: 'tb', query: (c) => c.readStream('vb') });
  });
  const events: PipelineEvent[] = [];
  const r = await runPipeline({ floe, name: 'views', definitions: defs, warehouse: path.join(base, 'wh'), baseDir: base, maxConcurrentFlows: 2, onEvent: (e) => events.push(e) });
  assert.equal(r.state, 'COMPLETED');
  assert.equal(r.flows.ta!.numOutputRows, 4);
  assert.equal(r.flows.ta!.droppedRecords, 0);
  assert.deepEqual(r.flows.ta!.expectations, [{ name: 'a_pos', dataset: 'va', passed_records: 3, failed_records: 1 }]);
  assert.equal(r.flows.tb!.numOutputRows, 2);
  assert.equal(r.flows.tb!.droppedRecords, 2);
  assert.deepEqual(r.flows.tb!.expectations, [{ name: 'b_pos', dataset: 'vb', passed_records: 2, failed_records: 2 }]);
  const done = events.filter((e) => e.event_type === 'flow_progress' && e.origin.flow_name === 'tb' && dq(e));
  assert.deepEqual(dq(done[0]!)?.expectations.map((x) => x.name), ['b_pos']);
  // The lineage event lists the view's expectations with their actions, so the UI shows 'drop'.
  const ui = events.map((e): UiEvent => ({ id: e.id, seq: e.sequence.seq_no, update_id: e.origin.update_id, flow: e.origin.flow_name, dataset: e.origin.dataset_name, batch_id: e.origin.batch_id, timestamp: e.timestamp, level: e.level, event_type: e.event_type, message: e.message, details: (JSON.parse(e.details) as Record<string, Record<string, unknown>>)[e.event_type] ?? {}, error: null }));
  const exps = expectationsOf(ui);
  assert.deepEqual(exps.map((x) => [x.flow, x.name, x.action, x.failed, x.dropped]).sort(), [['ta', 'a_pos', 'warn', 1, 0], ['tb', 'b_pos', 'drop', 2, 2]]);
});

test('a run of several batches (maxFilesPerTrigger) reports the expectations of every batch', async () => {
  const base = path.join(dir, 'mfpt');
  const landing = path.join(base, 'landing');
  await fs.mkdir(landing, { recursive: true });
  await fs.writeFile(path.join(landing, 'f1.json'), jsonLines([{ x: 1 }]));
  await fs.utimes(path.join(landing, 'f1.json'), new Date(1_000_000), new Date(1_000_000));
  await fs.writeFile(path.join(landing, 'f2.json'), jsonLines([{ x: -1 }, { x: -2 }]));
  const defs = definePipeline((p) => {
    p.table({ name: 't', query: (c) => c.readStreamFiles(landing, { format: 'json', maxFilesPerTrigger: 1 }), expectations: [expectOrDrop('pos', 'x > 0')] });
  });
  const r = await runPipeline({ floe, name: 'mfpt', definitions: defs, warehouse: path.join(base, 'wh') });
  assert.equal(r.state, 'COMPLETED');
  assert.equal(r.flows.t!.numOutputRows, 1);
  assert.equal(r.flows.t!.droppedRecords, 2);
  assert.equal(r.flows.t!.batchId, 1, 'two batches');
  assert.deepEqual(r.flows.t!.expectations, [{ name: 'pos', dataset: 't', passed_records: 1, failed_records: 2 }]);
});

test('UI: a continuous update\'s flow counts add up over its rounds', () => {
  const ev = (flow: string, status: string, rows: number, note: string | null = null): UiEvent => ({ id: `${flow}${status}${rows}${Math.random()}`, seq: 0, update_id: 'u1', flow, dataset: flow, batch_id: null, timestamp: '2026-01-01T00:00:00Z', level: 'INFO', event_type: 'flow_progress', message: '', details: { status, note, ...(status === 'RUNNING' ? {} : { duration_ms: 10 }), metrics: { num_output_rows: rows }, ...(rows ? { data_quality: { dropped_records: 1 } } : {}) }, error: null });
  const f = flowsOf([ev('b', 'RUNNING', 0), ev('b', 'COMPLETED', 5), ev('b', 'RUNNING', 0), ev('b', 'COMPLETED', 1), ev('b', 'RUNNING', 0), ev('b', 'COMPLETED', 0, 'no new data')]);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.status, 'COMPLETED');
  assert.equal(f[0]!.rows_written, 6);
  assert.equal(f[0]!.dropped, 2);
  assert.equal(f[0]!.duration_ms, 30);
  assert.equal(f[0]!.note, null, 'a last round without data does not say "no new data" for the update');
});

test('bad pipeline options fail validate, and a run records the update as FAILED before any flow runs', async () => {
  const base = path.join(dir, 'badopts');
  const src = path.join(base, 'src');
  await floe.duckdbSql('SELECT 1 AS id').write.delta(src);
  const defs = definePipeline((p) => p.table({ name: 't', query: (c) => c.readStream(src) }));
  for (const [configuration, code] of [[{ 'pipelines.trigger.interval': 'soon' }, 'PIPELINE_SPEC_INVALID_FIELD'], [{ 'pipelines.maxConcurrentFlows': '0' }, 'PIPELINE_INVALID_OPTION']] as Array<[Record<string, string>, string]>) {
    const o = { floe, name: 'badopts', definitions: defs, warehouse: path.join(base, 'wh'), configuration };
    await assert.rejects(validatePipeline(o), (e: Error & { code?: string }) => e.code === code);
    await assert.rejects(runPipeline(o), (e: Error & { code?: string }) => e.code === code);
    const [u] = await listUpdates(floe, path.join(base, 'wh', '_pipelines', 'badopts', 'event_log'), 1);
    assert.equal(u!.state, 'FAILED');
    assert.match(String(u!.error), new RegExp(code));
  }
  assert.equal(await floe.deltaLog(path.join(base, 'wh', 'default', 't')).exists(), false, 'no flow ran');
});

test('a library that does not load is a FAILED update in the event log (and status)', async () => {
  const base = path.join(dir, 'badlib');
  await fs.mkdir(path.join(base, 'transformations'), { recursive: true });
  await fs.writeFile(path.join(base, 'pipeline.yml'), 'name: badlib\nwarehouse: ./wh\nlibraries:\n  - glob:\n      include: transformations/**\n');
  await fs.writeFile(path.join(base, 'transformations', 'a.sql'), 'CREATE OR REFRESH MATERIALIZED VIEW one AS SELECT 1 AS x;\n');
  const spec = path.join(base, 'pipeline.yml');
  assert.equal((await runPipeline({ floe, spec })).state, 'COMPLETED');
  await fs.appendFile(path.join(base, 'transformations', 'a.sql'), 'CREATE OR REFRESH MATERIALIZED VIEW broken AS SELEC 1;\n');
  await assert.rejects(runPipeline({ floe, spec }), (e: Error & { code?: string }) => e.code === 'FLOE_SQL_PARSE_ERROR');
  const ups = await listUpdates(floe, path.join(base, 'wh', '_pipelines', 'badlib', 'event_log'), 5);
  assert.deepEqual(ups.map((u) => u.state), ['FAILED', 'COMPLETED']);
  assert.match(String(ups[0]!.error), /a\.sql:2:.*SELEC/);
  // validate still throws the library's error as it is
  await assert.rejects(validatePipeline({ floe, spec }), (e: Error & { code?: string }) => e.code === 'FLOE_SQL_PARSE_ERROR');
});

test('a first run without any data completes; the materialized view waits for its input', async () => {
  const base = path.join(dir, 'empty');
  const landing = path.join(base, 'landing');
  const defs = definePipeline((p) => {
    p.table({ name: 'bronze', query: (c) => c.readStreamFiles(landing, { format: 'json' }) });
    p.createStreamingTable('silver');
    p.createAutoCdcFlow({ target: 'silver', source: 'bronze', keys: ['id'], sequenceBy: 'seq' });
    p.materializedView({ name: 'gold', query: (c) => c.sql('SELECT count(*) AS n FROM s', { s: c.read('silver') }) });
  });
  const events: PipelineEvent[] = [];
  const o = { floe, name: 'empty', definitions: defs, warehouse: path.join(base, 'wh'), onEvent: (e: PipelineEvent) => events.push(e) };
  const r = await runPipeline(o);
  assert.equal(r.state, 'COMPLETED');
  assert.equal(r.flows.bronze!.note, 'no new data');
  assert.match(r.flows.gold!.note ?? '', /no data yet: 'silver' has no table yet/);
  // The landing folder does not exist: said once, as a warning.
  const warns = events.filter((e) => e.event_type === 'planning_information' && e.level === 'WARN');
  assert.equal(warns.length, 1);
  assert.match(warns[0]!.message, /folder .*landing does not exist/);
  // Data arrives: everything runs.
  await fs.mkdir(landing);
  await fs.writeFile(path.join(landing, 'a.json'), jsonLines([{ id: 1, seq: 1 }, { id: 2, seq: 2 }]));
  const r2 = await runPipeline(o);
  assert.equal(r2.state, 'COMPLETED');
  const g = await floe.sql('SELECT n FROM gold', { warehouse: path.join(base, 'wh') });
  assert.deepEqual(g.kind === 'rows' ? await g.dataFrame.toJSON() : null, [{ n: '2' }]);
});

test('a stopped update records its skipped flows', async () => {
  const base = path.join(dir, 'stopped');
  const src = path.join(base, 'src');
  await floe.duckdbSql('SELECT 1 AS id').write.delta(src);
  const defs = definePipeline((p) => {
    p.table({ name: 'a', query: (c) => c.readStream(src) });
    p.table({ name: 'b', query: (c) => c.readStream('a') });
  });
  const stop = new AbortController();
  const events: PipelineEvent[] = [];
  const r = await runPipeline({
    floe, name: 'stopped', definitions: defs, warehouse: path.join(base, 'wh'), continuous: true, signal: stop.signal, maxConcurrentFlows: 1,
    onEvent: (e) => {
      events.push(e);
      if (e.event_type === 'flow_progress' && e.origin.flow_name === 'a' && e.message.includes('COMPLETED')) stop.abort();
    },
  });
  assert.equal(r.state, 'CANCELED');
  assert.equal(r.flows.b!.status, 'SKIPPED');
  const skipped = events.filter((e) => e.event_type === 'flow_progress' && e.origin.flow_name === 'b');
  assert.equal(skipped.length, 1);
  assert.match(skipped[0]!.message, /SKIPPED: the update was stopped/);
  const logged = await readEvents(floe, r.eventLog);
  assert.ok(logged.some((e) => (e.origin as { flow_name: string }).flow_name === 'b' && String(e.message).includes('SKIPPED')));
});

test('a notification command that leaves a process running does not hold the update', async () => {
  const base = path.join(dir, 'notify');
  const src = path.join(base, 'src');
  await floe.duckdbSql('SELECT 1 AS id').write.delta(src);
  const defs = definePipeline((p) => p.table({ name: 't', query: (c) => c.readStream(src) }));
  const marker = path.join(base, 'done');
  const started = Date.now();
  const events: PipelineEvent[] = [];
  const r = await runPipeline({
    floe, name: 'notify', definitions: defs, warehouse: path.join(base, 'wh'), onEvent: (e) => events.push(e),
    notifications: [
      { alerts: ['on-update-duration'], command: `(sleep 30; touch ${marker}) & echo queued`, maxDurationSeconds: 0, timeoutMs: 2000, retries: 0, backoffMs: 0 },
      { alerts: ['on-update-duration'], command: `sleep 30; touch ${marker}`, maxDurationSeconds: 0, timeoutMs: 1000, retries: 0, backoffMs: 0 },
    ],
  });
  assert.equal(r.state, 'COMPLETED');
  // Not a timing measurement: the update must not wait for the 30 s commands (it did, for the first).
  assert.ok(Date.now() - started < 20_000, `the update took ${Date.now() - started} ms`);
  const notes = events.filter((e) => e.event_type === 'notification').map((e) => [e.level, e.message]);
  assert.equal(notes.length, 2);
  assert.ok(notes.some(([l, m]) => l === 'INFO' && /delivered/.test(m!)), JSON.stringify(notes));
  assert.ok(notes.some(([l, m]) => l === 'WARN' && /no exit within 1000 ms/.test(m!)), JSON.stringify(notes));
});

test('a missing configuration key is a clear error (TypeScript ctx.conf and SQL ${key})', async () => {
  const base = path.join(dir, 'conf');
  const defs = definePipeline((p) => {
    p.table({ name: 'bronze', query: (c) => c.readStreamFiles(c.conf('landing'), { format: 'json' }) });
    p.table({ name: 'silver', query: (c) => c.readStream('bronze') });
  });
  await assert.rejects(validatePipeline({ floe, name: 'conf', definitions: defs, warehouse: path.join(base, 'wh'), configuration: { other: 'x' } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'PIPELINE_CONFIGURATION_MISSING');
    assert.match(e.message, /no key 'landing' \(its keys: other\)/);
    assert.doesNotMatch(e.message, /materialized view/, 'no second, false issue about bronze');
    return true;
  });
  await fs.mkdir(path.join(base, 't'), { recursive: true });
  await fs.writeFile(path.join(base, 'pipeline.yml'), 'name: confsql\nwarehouse: ./wh\nlibraries:\n  - glob:\n      include: t/**\nconfiguration:\n  landing: ./landing\n');
  await fs.writeFile(path.join(base, 't', 'p.sql'), "CREATE OR REFRESH STREAMING TABLE b AS SELECT * FROM STREAM read_files('${landng}', format => 'json');\n");
  await assert.rejects(validatePipeline({ floe, spec: path.join(base, 'pipeline.yml') }), /p\.sql:1:.*\$\{landng\} is not a key of the pipeline's configuration/);
});
