/**
 * Crash safety of pipeline runs: a child process (dist/test/fixtures/pipeline-runner.js) runs an update
 * of the medallion pipeline (landing JSON → bronze_events → silver_customers (AUTO CDC SCD 1) → gold
 * materialized view, plus an SCD 2 history from the same events) and is SIGKILLed at varied points:
 * after a random delay, while a flow reads its sources, during the AUTO CDC target commit, the AUTO CDC
 * state commit, a checkpoint write, an event log write, right after the materialized view's commit.
 * After every kill the pipeline is rerun (in process) to completion and:
 * - every target equals the target of a reference warehouse that ran the same pipeline on the same
 *   input without interruption (and silver / gold equal a simple model of the events);
 * - bronze holds each landed event exactly once; no checkpoint is left pending;
 * - the event log has the rerun's update COMPLETED, and the killed update, when any of its events
 *   reached the log (the runner flushes the log at RUNNING and after each flow, not before), as a
 *   prefix of what the child emitted: never COMPLETED unless the child got that far.
 * Some trials land a new file between the kill and the rerun (data keeps arriving).
 *
 * The next update records an interrupted one as FAILED (PIPELINE_UPDATE_INTERRUPTED); an update killed
 * before its first event-log commit (right after taking the run lock) leaves no trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { listUpdates, readEvents } from '../pipelines/event-log.js';
import { type RunPipelineResult, runPipeline } from '../pipelines/runner.js';
import { PipelineState } from '../pipelines/state.js';
import { type CustomerEvent, generateEvents, model, writeLanding } from '../examples/medallion/generate.js';
import { PIPELINE_NAME, definitions } from './fixtures/pipeline-runner.js';
import { tempDir } from './helpers.js';

const RUNNER = fileURLToPath(new URL('./fixtures/pipeline-runner.js', import.meta.url));
const TRIALS = 24;
const EVENTS_PER_FILE = 600;
const KEYS = 250;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELED']);
const FLOWS = ['bronze_events', 'silver_customers', 'silver_customers_history', 'gold_customers_by_country'];

type Strategy = 'random' | 'read' | 'cdc-target' | 'cdc-state' | 'checkpoint' | 'event-log' | 'mv-commit' | 'scd2-commit';
const STRATEGIES: Strategy[] = ['random', 'cdc-target', 'checkpoint', 'read', 'cdc-state', 'event-log', 'mv-commit', 'scd2-commit'];

const COMMIT_TMP = /_delta_log\/\.\d{20}\.json\..+\.tmp$/;
const COMMIT = /_delta_log\/\d{20}\.json$/;

/** File k's events: sequence numbers even and disjoint per file; 15 late events per file (odd, older). */
function fileEvents(k: number): CustomerEvent[] {
  const first = 1 + k * EVENTS_PER_FILE;
  const evs = generateEvents(EVENTS_PER_FILE, KEYS, first, 1000 + k);
  for (const e of evs) e.seq *= 2;
  if (k > 0) for (const e of evs.slice(0, 15)) e.seq = e.seq - 2 * 400 + 1;
  return evs;
}

interface KillRun {
  lines: string[];
  trigger: string;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string;
}

/** Runs the child and SIGKILLs it as `strategy` says. */
async function runAndKill(wh: string, landing: string, strategy: Strategy, estMs: number): Promise<KillRun> {
  const child = fork(RUNNER, [wh, landing], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const watchers: FSWatcher[] = [];
  let trigger = 'none (ran to completion)';
  let armed = false;
  let killing = false;
  const kill = (why: string, jitterMs = 0): void => {
    if (killing) return;
    killing = true;
    const doKill = (): void => {
      trigger = why;
      child.kill('SIGKILL');
    };
    if (jitterMs > 0) setTimeout(doKill, jitterMs);
    else doKill();
  };
  const onFile = (test: (rel: string) => boolean, why: string, jitter: () => number): void => {
    // Recursive: the tables may not exist yet when the child starts.
    watchers.push(
      watch(wh, { recursive: true }, (_ev, f) => {
        if (f && test(String(f).split(path.sep).join('/'))) kill(why, jitter());
      }),
    );
  };
  const storage = `_pipelines/${PIPELINE_NAME}`;
  const arm = (): void => {
    armed = true;
    switch (strategy) {
      case 'random':
        setTimeout(() => kill('random delay'), Math.random() * 1.2 * estMs);
        break;
      case 'read':
        break; // on the child's flow RUNNING lines, below
      case 'cdc-target':
        onFile((r) => r.startsWith('default/silver_customers/_delta_log/') && (COMMIT_TMP.test(r) || COMMIT.test(r)), 'silver target commit', () => Math.random() * 3);
        break;
      case 'cdc-state':
        onFile((r) => /^default\/silver_customers(_history)?\/_floe_apply_changes_state\//.test(r), 'AUTO CDC state write', () => Math.random() * 4);
        break;
      case 'checkpoint':
        onFile((r) => r.startsWith(`${storage}/checkpoints/`) && Math.random() < 0.35, 'checkpoint file write', () => Math.random() * 2);
        break;
      case 'event-log':
        onFile((r) => r.startsWith(`${storage}/event_log/`) && Math.random() < 0.5, 'event log write', () => Math.random() * 3);
        break;
      case 'mv-commit':
        onFile((r) => r.startsWith('default/gold_customers_by_country/_delta_log/') && COMMIT.test(r), 'materialized view commit', () => 0);
        break;
      case 'scd2-commit':
        onFile((r) => r.startsWith('default/silver_customers_history/') && !r.includes('_floe_apply_changes_state') && (COMMIT_TMP.test(r) || COMMIT.test(r) || r.endsWith('.parquet')), 'SCD 2 target write', () => Math.random() * 5);
        break;
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (!armed && /^ready /m.test(out)) arm();
    if (strategy === 'read' && !killing) {
      const m = /^event flow_progress (\S+) RUNNING$/m.exec(out.split('\n').slice(-4).join('\n'));
      // A flow started: it plans and reads its sources first.
      if (m && Math.random() < 0.5) kill(`${m[1]} reading`, Math.random() * 40);
    }
  });
  const safety = setTimeout(() => kill('safety timeout'), 20_000);
  const exit = await closed;
  clearTimeout(safety);
  for (const w of watchers) w.close();
  return { lines: out.split('\n').filter(Boolean), trigger, exit, stderr: err };
}

test(`a pipeline update SIGKILLed at random points (${TRIALS} trials): reruns equal an uninterrupted run; the event log records both`, { timeout: 400_000 }, async (t) => {
  const dir = await tempDir('floe-pkill-');
  const landing = path.join(dir, 'landing');
  const wh = path.join(dir, 'wh');
  const refWh = path.join(dir, 'ref');
  const floe = await Floe.create({ threads: 2 });
  const t0 = Date.now();
  const landed: CustomerEvent[] = [];
  let nextFile = 0;
  const land = async (): Promise<void> => {
    const evs = fileEvents(nextFile);
    await writeLanding(landing, `events-${String(nextFile).padStart(4, '0')}.json`, evs);
    landed.push(...evs);
    nextFile++;
  };
  const q = async (warehouse: string, sql: string): Promise<Record<string, unknown>[]> => {
    const r = await floe.sql(sql, { warehouse });
    assert.equal(r.kind, 'rows');
    return r.kind === 'rows' ? r.dataFrame.toJSON() : [];
  };
  const TABLES: Record<string, string> = {
    bronze_events: 'SELECT id::INT AS id, name, country, op, seq::BIGINT AS seq FROM bronze_events ORDER BY seq',
    silver_customers: 'SELECT id::INT AS id, name, country FROM silver_customers ORDER BY id',
    silver_customers_history: 'SELECT id::INT AS id, name, country, `__START_AT`::BIGINT AS s, `__END_AT`::BIGINT AS e FROM silver_customers_history ORDER BY id, s',
    gold_customers_by_country: 'SELECT country, customers::INT AS customers FROM gold_customers_by_country ORDER BY country',
  };
  const opts = (warehouse: string) => ({ floe, name: PIPELINE_NAME, definitions, warehouse, configuration: { landing } });
  const state = new PipelineState(path.join(wh, '_pipelines', PIPELINE_NAME));
  const eventLog = path.join(wh, '_pipelines', PIPELINE_NAME, 'event_log');

  const triggers = new Map<string, number>();
  const lastEvents = new Map<string, number>();
  const logOfKilled = new Map<string, number>();
  const note = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
  const replays = new Map<string, number>();
  const killedUpdates: string[] = [];
  const lagging: string[] = [];
  const diverged: string[] = [];
  let completedBeforeKill = 0;
  let estMs = 2500;
  try {
    for (let trial = 0; trial < TRIALS; trial++) {
      const strategy = STRATEGIES[trial % STRATEGIES.length]!;
      await land();
      const run = await runAndKill(wh, landing, strategy, estMs);
      const updLine = run.lines.find((l) => l.startsWith('update '));
      const killedId = updLine?.split(' ')[1];
      const done = run.lines.find((l) => l.startsWith('done '));
      if (done) {
        assert.ok(run.exit.code === 0 || run.exit.signal === 'SIGKILL', `trial ${trial}: the child completed cleanly or was killed: ${JSON.stringify(run.exit)} ${run.stderr}`);
        assert.equal(done.split(' ')[1], 'COMPLETED', `trial ${trial}: an unkilled child's update completes`);
        completedBeforeKill++;
      } else {
        assert.equal(run.exit.signal, 'SIGKILL', `trial ${trial} (${strategy}): the child died by SIGKILL, not an error: code ${run.exit.code}, stderr: ${run.stderr}`);
      }
      note(triggers, `${strategy}: ${run.trigger}`);
      const emitted = run.lines.filter((l) => l.startsWith('event '));
      note(lastEvents, done ? 'after done' : emitted.length ? emitted[emitted.length - 1]!.slice(6) : updLine ? 'create_update emitted' : run.lines.some((l) => l.startsWith('ready')) ? 'before the first event' : 'startup');

      // Data keeps arriving: every third trial lands a new file before the rerun.
      if (trial % 3 === 2) await land();

      // The rerun completes; the reference runs the same input uninterrupted.
      const rs = Date.now();
      const r = await runPipeline(opts(wh));
      estMs = 0.6 * estMs + 0.4 * Math.max(800, 1.6 * (Date.now() - rs));
      assert.equal(r.state, 'COMPLETED', `trial ${trial}: the rerun completes: ${Object.values(r.flows).map((f) => `${f.flow} ${f.status} ${f.error?.message ?? ''}`).join('; ')}`);
      for (const f of Object.values(r.flows)) if (f.note && /replayed|already/.test(f.note)) note(replays, `${f.flow}: ${f.note}`);
      const ref = await runPipeline(opts(refWh));
      assert.equal(ref.state, 'COMPLETED', `trial ${trial}: the reference completes: ${Object.values(ref.flows).map((f) => `${f.flow} ${f.status} ${f.error?.message ?? ''}`).join('; ')}`);

      // Targets: equal to the reference's (an available-now update processes everything there is).
      const differing = async (): Promise<string[]> => {
        const out: string[] = [];
        for (const [name, sql] of Object.entries(TABLES)) if (!isDeepStrictEqual(await q(wh, sql), await q(refWh, sql))) out.push(name);
        return out;
      };
      const diff1 = await differing();
      let caughtUp: RunPipelineResult | null = null;
      if (diff1.length) {
        lagging.push(`trial ${trial} (${strategy}, ${run.trigger}; new file before the rerun: ${trial % 3 === 2}): ${diff1.join(', ')} behind; rerun notes: ${Object.values(r.flows).map((f) => `${f.flow}=${f.note ?? f.numOutputRows}`).join(', ')}`);
        // Nothing lost or duplicated either way: one more update catches up.
        caughtUp = await runPipeline(opts(wh));
        assert.equal(caughtUp.state, 'COMPLETED');
      }
      // Correct behaviour: equal now. A table still different is a divergence the next updates do not
      // repair (recorded, asserted at the end); a full refresh of it re-syncs so the trials go on.
      const diff2 = caughtUp ? await differing() : [];
      if (diff2.length) {
        const cps = Object.fromEntries(await Promise.all(diff2.map(async (n) => [n, await state.checkpoint(n)] as const)));
        diverged.push(`trial ${trial} (${strategy}, ${run.trigger}; new file before the rerun: ${trial % 3 === 2}): ${diff2.join(', ')} still differ after a catch-up update (rerun notes: ${Object.values(r.flows).map((f) => `${f.flow}=${f.note ?? f.numOutputRows}`).join(', ')}; catch-up notes: ${Object.values(caughtUp!.flows).map((f) => `${f.flow}=${f.note ?? f.numOutputRows}`).join(', ')}; checkpoints ${JSON.stringify(cps)})`);
        const fr = await runPipeline({ ...opts(wh), fullRefresh: diff2 });
        assert.equal(fr.state, 'COMPLETED');
      }
      for (const [name, sql] of Object.entries(TABLES)) {
        assert.deepEqual(await q(wh, sql), await q(refWh, sql), `trial ${trial} (${strategy}, ${run.trigger}): ${name} equals the uninterrupted run's${caughtUp ? ' (after a catch-up update)' : ''}${diff2.length ? ' (after a full refresh)' : ''}`);
      }
      const expected = model(landed);
      assert.deepEqual(await q(wh, TABLES.silver_customers!), [...expected.entries()].sort((a, b) => a[0] - b[0]).map(([id, v]) => ({ id, ...v })), `trial ${trial}: silver matches the model`);
      const byCountry = new Map<string, number>();
      for (const v of expected.values()) byCountry.set(v.country, (byCountry.get(v.country) ?? 0) + 1);
      assert.deepEqual(await q(wh, TABLES.gold_customers_by_country!), [...byCountry.entries()].sort().map(([country, customers]) => ({ country, customers })), `trial ${trial} (${strategy}, ${run.trigger}): gold matches the model`);
      const nonNull = landed.filter((e) => e.id !== null);
      assert.deepEqual(await q(wh, 'SELECT count(*)::INT AS n, count(DISTINCT seq)::INT AS d FROM bronze_events'), [{ n: nonNull.length, d: nonNull.length }], `trial ${trial}: bronze holds each event once`);
      for (const f of FLOWS) assert.equal((await state.checkpoint(f)).pending, undefined, `trial ${trial}: ${f} has no pending batch after the rerun`);

      // The event log: the rerun COMPLETED; the killed update as far as it flushed, never beyond.
      const evs = await readEvents(floe, eventLog);
      const of = (id: string) => evs.filter((e) => (e.origin as { update_id: string }).update_id === id);
      const states = (id: string) => of(id).filter((e) => e.event_type === 'update_progress').map((e) => (JSON.parse(String(e.details)) as { update_progress: { state: string } }).update_progress.state);
      for (const u of [r, ...(caughtUp ? [caughtUp] : [])]) {
        assert.equal(states(u.updateId).at(-1), 'COMPLETED', `trial ${trial}: the rerun's update is COMPLETED in the event log`);
        assert.equal(of(u.updateId)[0]?.event_type, 'create_update');
      }
      if (killedId && !done) {
        killedUpdates.push(killedId);
        // Its own events, then the FAILED the next update records for it.
        const logged = of(killedId).filter((e) => !String(e.message).includes('was interrupted'));
        assert.ok(logged.length <= emitted.length + 1, `trial ${trial}: the killed update logged no more events than it emitted`);
        const all = states(killedId);
        const st = all.at(-1) === 'FAILED' && of(killedId).some((e) => String(e.message).includes('was interrupted')) ? all.slice(0, -1) : all;
        const emittedStates = emitted.filter((l) => l.startsWith('event update_progress')).map((l) => l.split(' ')[3]);
        assert.deepEqual(st, emittedStates.slice(0, st.length), `trial ${trial}: the killed update's logged states are a prefix of what it emitted`);
        if (all.length) assert.equal(all.at(-1), 'FAILED', `trial ${trial}: the next update recorded the killed one as FAILED`);
        if (!emittedStates.includes('COMPLETED')) assert.ok(!st.includes('COMPLETED'), `trial ${trial}: a killed update is never COMPLETED in the log`);
        if (logged.length) assert.equal(logged[0]!.event_type, 'create_update', `trial ${trial}: the killed update's first logged event is create_update`);
        note(logOfKilled, logged.length ? `in the log, last state ${st.at(-1) ?? '(none)'}, ${logged.length} events` : 'not in the log (killed before the first flush)');
      }
      // Every update, in order: no two ends; all but killed ones terminal.
      const summaries = await listUpdates(floe, eventLog, 1000);
      for (const u of summaries) {
        if (!killedUpdates.includes(u.update_id)) assert.equal(u.state, 'COMPLETED', `trial ${trial}: update ${u.update_id} (not killed) is COMPLETED`);
      }
    }

    // Final: the same tables once more through a fresh session (nothing cached).
    const fresh = await Floe.create({ threads: 1 });
    try {
      for (const [name, sql] of Object.entries(TABLES)) {
        const a = await fresh.sql(sql, { warehouse: wh });
        const b = await fresh.sql(sql, { warehouse: refWh });
        assert.deepEqual(a.kind === 'rows' ? await a.dataFrame.toJSON() : null, b.kind === 'rows' ? await b.dataFrame.toJSON() : null, `final ${name}`);
      }
    } finally {
      await fresh.close();
    }
    const summaries = await listUpdates(floe, eventLog, 1000);
    const killedStates = new Map<string, number>();
    for (const id of killedUpdates) note(killedStates, summaries.find((u) => u.update_id === id)?.state ?? 'absent');
    t.diagnostic(`${TRIALS} trials in ${Date.now() - t0} ms; ${nextFile} files, ${landed.length} events; ${killedUpdates.length} updates killed, ${completedBeforeKill} completed before the kill`);
    t.diagnostic(`triggers: ${[...triggers].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    t.diagnostic(`last event the child emitted: ${[...lastEvents].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    t.diagnostic(`rerun replays: ${[...replays].map(([k, n]) => `${k} ×${n}`).join('; ') || 'none'}`);
    t.diagnostic(`killed updates in the event log: ${[...logOfKilled].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    t.diagnostic(`killed updates as listUpdates shows them after the reruns: ${[...killedStates].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    t.diagnostic(`reruns that left available data unprocessed: ${lagging.length}`);
    assert.ok(killedUpdates.length >= TRIALS / 2, `most trials killed an update (${killedUpdates.length})`);

    assert.deepEqual(diverged, [], `after a kill, every table converges to the uninterrupted run's without a full refresh (${diverged.length} trials diverged)`);
    // An available-now update processes everything available when it starts, also after replaying
    // a batch an interrupted update left pending (see the report: runner.ts Update.execute).
    assert.deepEqual(lagging, [], `the update after a kill processed everything available (${lagging.length} of ${TRIALS} did not)`);

    // The next update records an interrupted one as FAILED; one killed before its first log commit is absent.
    const unmarked = killedUpdates.filter((id) => {
      const st = summaries.find((u) => u.update_id === id)?.state;
      return st !== undefined && !TERMINAL.has(st);
    });
    assert.deepEqual(unmarked, [], `${unmarked.length} of ${killedUpdates.length} killed updates are on record but not as ended`);
  } finally {
    await floe.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
