/** `floe pipelines` through the fixture: init, validate, run (JSON lines), status, events, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('./fixtures/pipelines-cli.js', import.meta.url));
const run = (cwd: string, args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

test('floe pipelines: init, validate, run twice, status, events, failures', async () => {
  const dir = await tempDir('floe-plcli-');
  try {
    assert.equal(run(dir, ['init', 'shop']).code, 0);
    const proj = path.join(dir, 'shop');
    const v = run(proj, ['validate']);
    assert.equal(v.code, 0, v.stderr);
    const vj = JSON.parse(v.stdout) as { valid: boolean; datasets: { name: string; type: string }[] };
    assert.deepEqual(vj.datasets.map((d) => [d.name, d.type]).sort(), [['bronze_orders', 'streamingTable'], ['gold_orders_by_status', 'materializedView'], ['silver_orders', 'streamingTable']]);
    // Before any run: status says so (JSON: nothing on stdout, the notice on stderr), exit 0.
    const st0 = run(proj, ['status', '--format', 'json']);
    assert.equal(st0.code, 0, st0.stderr);
    assert.equal(st0.stdout, '');
    assert.match(st0.stderr, /Pipeline 'shop' has no updates yet/);
    assert.match(run(proj, ['status', '--format', 'text']).stdout, /has no updates yet/);
    const r1 = run(proj, ['run']);
    assert.equal(r1.code, 0, r1.stderr);
    const events = r1.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_type: string; details: Record<string, { state?: string }> });
    assert.equal(events[0]!.event_type, 'create_update');
    assert.equal(events.at(-1)!.details.update_progress!.state, 'COMPLETED');
    await fs.writeFile(path.join(proj, 'landing', 'orders-0002.json'), '{"order_id":3,"status":"SHIPPED","amount":7.25,"op":"UPSERT","seq":7}\n');
    assert.equal(run(proj, ['run', '--refresh', 'bronze_orders,silver_orders,gold_orders_by_status']).code, 0);
    const st = run(proj, ['status']);
    assert.equal(st.code, 0);
    assert.equal(st.stdout.trim().split('\n').length, 2);
    const ev = run(proj, ['events', '--limit', '5', '--format', 'json']);
    assert.equal(ev.stdout.trim().split('\n').length, 5);
    // The JSON shape of `run --format json`: numbers, ISO timestamps, details and error as objects.
    const e0 = JSON.parse(ev.stdout.trim().split('\n')[0]!) as { sequence: { seq_no: unknown; update_id: string }; timestamp: string; details: unknown };
    assert.equal(typeof e0.sequence.seq_no, 'number');
    assert.match(e0.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof e0.details, 'object');
    const s0 = JSON.parse(run(proj, ['status', '--format', 'json']).stdout.trim().split('\n')[0]!) as { full_refresh: unknown; started: string; error: unknown };
    assert.equal(s0.full_refresh, false);
    assert.match(s0.started, /T.*Z$/);
    assert.equal(s0.error, null);
    // --update takes the 8 characters the messages show.
    const byPrefix = run(proj, ['events', '--update', e0.sequence.update_id.slice(0, 8), '--format', 'json']).stdout.trim().split('\n');
    assert.ok(byPrefix.length > 3);
    assert.ok(byPrefix.every((l) => (JSON.parse(l) as { origin: { update_id: string } }).origin.update_id === e0.sequence.update_id));
    // --follow shows the --limit last events, then only new ones (none here) until stopped.
    const fol = spawnSync(process.execPath, [CLI, 'events', '--limit', '1', '--follow', '--format', 'json'], { cwd: proj, encoding: 'utf8', timeout: 3000, killSignal: 'SIGTERM' });
    assert.equal(fol.stdout.trim().split('\n').length, 1, fol.stdout);
    assert.doesNotMatch(fol.stderr, /MaxListenersExceeded/);
    // The event log as a table in floe sql.
    const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
    const q = spawnSync(process.execPath, [MAIN, 'sql', '--warehouse', 'warehouse', '--format', 'json', '-e', "SELECT count(*)::INT AS n FROM event_log('shop') WHERE event_type = 'create_update'"], { cwd: proj, encoding: 'utf8', timeout: 60_000 });
    assert.equal(q.status, 0, q.stderr);
    assert.match(q.stdout, /"n":\s*2/);
    const txt = run(proj, ['events', '--limit', '2', '--format', 'text']);
    assert.match(txt.stdout, /update_progress\s+Update \w+ is COMPLETED/);

    // A failing flow: exit 1, and status exits 1.
    await fs.writeFile(path.join(proj, 'transformations', 'bad.mjs'), "export default (p) => p.table({ name: 'bad', query: (c) => c.sql('SELECT no_such_column FROM b', { b: c.read('bronze_orders') }) });\n");
    const bad = run(proj, ['run']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error in flow bad/);
    assert.equal(run(proj, ['status']).code, 1);
    // Validation errors and usage errors.
    await fs.writeFile(path.join(proj, 'transformations', 'bad.mjs'), "export default (p) => p.materializedView({ name: 'bad', query: (c) => c.read('nope') });\n");
    const inv = run(proj, ['validate']);
    assert.equal(inv.code, 1);
    assert.match(inv.stderr, /error \[DATASET_NOT_FOUND\].*'bad'.*'nope'/);
    assert.equal(run(proj, ['run', '--full-refresh-all', '--refresh', 'x']).code, 2);
    assert.equal(run(dir, ['status']).code, 1); // no spec here
    assert.match(run(dir, ['status']).stderr, /PIPELINE_SPEC_NOT_FOUND/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
