/**
 * Continuous mode end to end: `floe pipelines run --continuous` in a child process keeps processing
 * files that land while it runs; a real SIGTERM (and SIGINT) stops it after the flow in progress,
 * the update is recorded CANCELED (after STOPPING) and the process exits 0; a rerun resumes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { readEvents } from '../pipelines/event-log.js';
import { tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('./fixtures/pipelines-cli.js', import.meta.url));

interface Ev { event_type: string; origin: { flow_name: string | null }; details: Record<string, { state?: string; status?: string; metrics?: { num_output_rows: number } }> }

/** Starts `run --continuous`; resolves lines as they come; `until` waits for a predicate over the events so far. */
function startContinuous(cwd: string) {
  const child = spawn(process.execPath, [CLI, 'run', '--continuous', '--format', 'json'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Ev[] = [];
  let buf = '';
  let stderr = '';
  const waiters: { pred: (e: Ev[]) => boolean; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) events.push(JSON.parse(line) as Ev);
    }
    for (const w of [...waiters]) if (w.pred(events)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const until = (pred: (e: Ev[]) => boolean, what: string, ms = 60_000): Promise<void> =>
    pred(events)
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr: ${stderr}`)), ms);
          waiters.push({ pred, resolve: () => (clearTimeout(t), resolve()) });
        });
  return { child, events, until, exited, stderr: () => stderr };
}

const completions = (evs: Ev[], flow: string): Ev[] => evs.filter((e) => e.event_type === 'flow_progress' && e.origin.flow_name === flow && e.details.flow_progress?.status === 'COMPLETED');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`pipelines run --continuous: picks up new files until ${signal}, then CANCELED and exit 0`, async () => {
    const dir = await tempDir('floe-cont-');
    try {
      const init = spawnSync(process.execPath, [CLI, 'init', 'live'], { cwd: dir, encoding: 'utf8' });
      assert.equal(init.status, 0, init.stderr);
      const proj = path.join(dir, 'live');
      const spec = path.join(proj, 'pipeline.yml');
      await fs.writeFile(spec, (await fs.readFile(spec, 'utf8')).replace('configuration:\n', "configuration:\n  pipelines.trigger.interval: '100 ms'\n"));
      const p = startContinuous(proj);
      // Round 1: the landed file flows through to gold.
      await p.until((e) => completions(e, 'gold_orders_by_status').length >= 1, 'the first round');
      // A file landing while it runs is processed by a later round.
      await fs.writeFile(path.join(proj, 'landing', 'orders-0002.json'), '{"order_id":77,"status":"SHIPPED","amount":7.25,"op":"UPSERT","seq":100}\n');
      await p.until((e) => completions(e, 'silver_orders').some((x) => (x.details.flow_progress?.metrics?.num_output_rows ?? 0) > 0 && completions(e, 'silver_orders').indexOf(x) > 0), 'the new file in silver');
      assert.equal(p.child.exitCode, null, 'still running');
      p.child.kill(signal);
      const code = await p.exited;
      assert.equal(code, 0, p.stderr());
      const states = p.events.filter((e) => e.event_type === 'update_progress').map((e) => e.details.update_progress!.state);
      assert.deepEqual(states.slice(-2), ['STOPPING', 'CANCELED']);
      assert.ok(!states.includes('COMPLETED') && !states.includes('FAILED'));
      // Recorded in the event log, and the data is in the tables.
      const floe = await Floe.create({ threads: 1 });
      try {
        const logged = await readEvents(floe, path.join(proj, 'warehouse', '_pipelines', 'live', 'event_log'));
        const last = logged.filter((e) => e.event_type === 'update_progress').at(-1)!;
        assert.equal(JSON.parse(String(last.details)).update_progress.state, 'CANCELED');
        const r = await floe.sql('SELECT status FROM silver_orders WHERE order_id = 77', { warehouse: path.join(proj, 'warehouse') });
        assert.deepEqual(r.kind === 'rows' ? await r.dataFrame.toJSON() : null, [{ status: 'SHIPPED' }]);
      } finally {
        await floe.close();
      }
      // A triggered rerun finds nothing new and completes.
      const again = spawnSync(process.execPath, [CLI, 'run', '--format', 'json'], { cwd: proj, encoding: 'utf8', timeout: 60_000 });
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /no new data/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}

test('pipelines events --follow: prints the events of a run happening meanwhile, stops on SIGINT with exit 0', async () => {
  const dir = await tempDir('floe-follow-');
  try {
    assert.equal(spawnSync(process.execPath, [CLI, 'init', 'tail'], { cwd: dir, encoding: 'utf8' }).status, 0);
    const proj = path.join(dir, 'tail');
    // Follows before the event log exists.
    const child = spawn(process.execPath, [CLI, 'events', '--follow', '--format', 'json'], { cwd: proj, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Events already in the log when it starts are not shown: the run starts once it follows.
    const readyBy = Date.now() + 30_000;
    while (!/Following the event log of 'tail'/.test(stderr) && Date.now() < readyBy) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /Following the event log of 'tail'.*Ctrl-C to stop/);
    const run = spawnSync(process.execPath, [CLI, 'run', '--format', 'json'], { cwd: proj, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    const ids = run.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    const deadline = Date.now() + 30_000;
    const printed = (): string[] => stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
    while (printed().length < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(child.exitCode, null, 'still following');
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    // Every event of the run, once each, in order.
    assert.deepEqual(printed(), ids);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
