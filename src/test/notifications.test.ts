/**
 * Pipeline notifications: an in-test webhook receiver gets exactly one notification per failure
 * (update failure, flow failure, expectation above the threshold, update over its time limit) with
 * the documented body; commands get the same body on stdin; retries with backoff; a failed delivery
 * is recorded in the event log and never fails the pipeline; the spec's `notifications` is validated.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { readEvents } from '../pipelines/event-log.js';
import { type NotificationBody, parseNotifications } from '../pipelines/notifications.js';
import { runPipeline } from '../pipelines/runner.js';
import { loadSpec } from '../pipelines/spec.js';
import { tempDir } from './helpers.js';

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-notify-');
});
after(async () => {
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

interface Receiver {
  url: string;
  got: Array<{ method: string; path: string; headers: http.IncomingHttpHeaders; body: NotificationBody }>;
  /** Status codes to answer, in order (then 200). */
  statuses: number[];
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const r: Omit<Receiver, 'url' | 'close'> = { got: [], statuses: [] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      r.got.push({ method: req.method!, path: req.url!, headers: req.headers, body: JSON.parse(body) as NotificationBody });
      res.writeHead(r.statuses.shift() ?? 200);
      res.end('ok');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { ...r, get got() { return r.got; }, get statuses() { return r.statuses; }, set statuses(v) { r.statuses = v; }, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, close: () => new Promise((ok) => server.close(() => ok())) } as Receiver;
}

const append = (t: string, values: string) => floe.duckdbSql(`SELECT * FROM (VALUES ${values}) v(id, amount)`).write.delta(t, { mode: 'append' });

const LIBRARY = `export default (p) => {
  p.table({ name: 'bronze', query: (c) => c.readStream(c.conf('source')), expectations: [{ name: 'positive', condition: 'amount > 0', action: 'warn' }] });
  p.table({ name: 'strict', query: (c) => c.readStream(c.conf('source')), expectations: [{ name: 'small', condition: 'amount < 100', action: 'fail' }] });
};
`;

test('notifications from pipeline.yml: exactly one per failure, with the documented body, by webhook and by command', async () => {
  const hook = await receiver();
  try {
    const proj = path.join(dir, 'p1');
    const source = path.join(proj, 'source');
    await fs.mkdir(path.join(proj, 'transformations'), { recursive: true });
    await fs.writeFile(path.join(proj, 'transformations', 'flows.mjs'), LIBRARY);
    await fs.writeFile(path.join(proj, 'pipeline.yml'), `name: alerts
warehouse: ./warehouse
libraries:
  - glob: { include: transformations/** }
configuration:
  source: ${source}
notifications:
  - alerts: [on-update-failure, on-flow-failure, on-expectation-violation]
    webhook: ${hook.url}
    headers: { X-Floe-Secret: s3cret }
    expectation_threshold: 20%
    ui_url: http://ui.example:4949
    backoff_ms: 10
  - alerts: [on-flow-failure]
    command: cat >> notified.jsonl && echo >> notified.jsonl
`);
    await append(source, '(1, 10), (2, -5), (3, 150)');
    const r = await runPipeline({ floe, spec: path.join(proj, 'pipeline.yml') });
    assert.equal(r.state, 'FAILED');
    assert.equal(r.flows.strict!.status, 'FAILED');
    const byAlert = Object.fromEntries(hook.got.map((g) => [g.body.alert, g]));
    assert.deepEqual(hook.got.map((g) => g.body.alert).sort(), ['on-expectation-violation', 'on-flow-failure', 'on-update-failure'], 'exactly one per failure');
    for (const g of hook.got) {
      assert.equal(g.method, 'POST');
      assert.match(String(g.headers['content-type']), /application\/json/);
      assert.equal(g.headers['x-floe-secret'], 's3cret');
      assert.deepEqual(Object.keys(g.body).sort(), ['alert', 'dataset', 'duration_ms', 'error', 'expectation', 'flow', 'link', 'message', 'pipeline', 'pipeline_id', 'timestamp', 'update', 'update_state'].sort());
      assert.equal(g.body.pipeline, 'alerts');
      assert.equal(g.body.update, r.updateId);
      assert.equal(g.body.link, `http://ui.example:4949/#/p/alerts/events/${r.updateId}`);
    }
    const flow = byAlert['on-flow-failure']!.body;
    assert.deepEqual([flow.flow, flow.dataset, flow.error?.code], ['strict', 'strict', 'EXPECTATION_VIOLATION']);
    assert.match(flow.error!.message, /^Flow 'strict' failed: the expectation 'small'/);
    const upd = byAlert['on-update-failure']!.body;
    assert.deepEqual([upd.flow, upd.update_state, upd.error?.code], [null, 'FAILED', 'EXPECTATION_VIOLATION']);
    const exp = byAlert['on-expectation-violation']!.body;
    assert.deepEqual([exp.flow, exp.expectation], ['bronze', { name: 'positive', dataset: 'bronze', passed: 2, failed: 1, failure_rate: 1 / 3, threshold: 0.2 }]);
    // The command got the same body on stdin, once.
    const lines = (await fs.readFile(path.join(proj, 'notified.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 1);
    const cmdBody = JSON.parse(lines[0]!) as NotificationBody;
    assert.deepEqual([cmdBody.alert, cmdBody.flow, cmdBody.update], ['on-flow-failure', 'strict', r.updateId]);
    // Each delivery is on record in the event log.
    const notes = (await readEvents(floe, r.eventLog)).filter((e) => e.event_type === 'notification');
    assert.equal(notes.length, 4);
    assert.ok(notes.every((e) => e.level === 'INFO' && /delivered/.test(String(e.message))), JSON.stringify(notes.map((e) => e.message)));
    assert.ok(notes.every((e) => !String(e.message).includes('/hook')), 'webhook paths (often secret) are not logged');
  } finally {
    await hook.close();
  }
});

const okPipeline = (src: string) => (p: { table: (d: unknown) => void }) => {
  p.table({ name: 't', query: (c: { readStream: (s: string) => unknown }) => c.readStream(src), expectations: [{ name: 'positive', condition: 'amount > 0', action: 'warn' }] });
};

test('notifications: retries with backoff; a failed delivery is logged and never fails the pipeline', async () => {
  const hook = await receiver();
  try {
    const src = path.join(dir, 'src2');
    await append(src, '(1, 10), (2, -5)');
    hook.statuses = [500, 503];
    const deadPort = await new Promise<number>((ok) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => ok(p));
      });
    });
    const notifications = parseNotifications([
      { alerts: ['on-expectation-violation'], webhook: hook.url, expectation_threshold: 0, backoff_ms: 20, retries: 3 },
      { alerts: ['on-expectation-violation'], webhook: `http://127.0.0.1:${deadPort}/secret-path`, expectation_threshold: 0, backoff_ms: 5, retries: 1 },
      { alerts: ['on-expectation-violation'], command: 'echo oops >&2; exit 3', expectation_threshold: 0, backoff_ms: 5, retries: 0 },
    ], 'test')!;
    const r = await runPipeline({ floe, name: 'retry', definitions: okPipeline(src) as never, warehouse: path.join(dir, 'wh2'), notifications });
    assert.equal(r.state, 'COMPLETED', 'failed deliveries never fail the pipeline');
    assert.equal(hook.got.length, 3, 'two failures, then delivered');
    assert.ok(hook.got.every((g) => g.body.alert === 'on-expectation-violation' && g.body.update === r.updateId));
    const notes = (await readEvents(floe, r.eventLog)).filter((e) => e.event_type === 'notification').map((e) => [e.level, e.message]);
    assert.equal(notes.length, 3);
    assert.ok(notes.some(([l, m]) => l === 'INFO' && /delivered by webhook http:\/\/127\.0\.0\.1:\d+ after 3 attempts/.test(String(m))), JSON.stringify(notes));
    assert.ok(notes.some(([l, m]) => l === 'WARN' && /FAILED after 2 attempt\(s\)/.test(String(m)) && !String(m).includes('secret-path')), JSON.stringify(notes));
    assert.ok(notes.some(([l, m]) => l === 'WARN' && /by command FAILED after 1 attempt\(s\): exit status 3: oops/.test(String(m))), JSON.stringify(notes));
  } finally {
    await hook.close();
  }
});

test('notifications: an update longer than its limit notifies once; below the threshold nothing is sent', async () => {
  const hook = await receiver();
  try {
    const src = path.join(dir, 'src3');
    await append(src, '(1, 10), (2, -5), (3, 7), (4, 8)');
    const notifications = parseNotifications([
      { alerts: ['on-update-duration', 'on-expectation-violation', 'on-update-failure', 'on-flow-failure'], webhook: hook.url, max_duration_seconds: 0.001, expectation_threshold: 0.5 },
    ], 'test')!;
    const r = await runPipeline({ floe, name: 'slow', definitions: okPipeline(src) as never, warehouse: path.join(dir, 'wh3'), notifications });
    assert.equal(r.state, 'COMPLETED');
    assert.deepEqual(hook.got.map((g) => g.body.alert), ['on-update-duration'], '1 of 4 failing is below 50%; no failure');
    const b = hook.got[0]!.body;
    assert.ok(b.duration_ms! > 1);
    assert.match(b.message, /longer than the limit of 0\.001 s/);
  } finally {
    await hook.close();
  }
});

test('notifications: the spec is validated with clear errors', async () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ alerts: ['on-update-failure'] }, /give 'webhook: URL' and\/or 'command: CMD'/],
    [{ alerts: ['on-fire'], webhook: 'http://x' }, /unknown alert 'on-fire'/],
    [{ alerts: ['on-expectation-violation'], webhook: 'http://x' }, /needs 'expectation_threshold'/],
    [{ alerts: ['on-update-duration'], webhook: 'http://x' }, /needs 'max_duration_seconds'/],
    [{ alerts: ['on-update-failure'], webhook: 'ftp://x' }, /http:\/\/ or https:\/\/ URL/],
    [{ alerts: ['on-update-failure'], email_recipients: ['a@b.c'] }, /email_recipients is not supported/],
    [{ alerts: ['on-update-failure'], webhook: 'http://x', retry: 2 }, /unknown field 'retry'/],
    [{ alerts: ['on-expectation-violation'], webhook: 'http://x', expectation_threshold: 2 }, /'expectation_threshold' must be a number from 0 to 1/],
    [{ alerts: [], webhook: 'http://x' }, /'alerts' must list at least one/],
  ];
  for (const [n, re] of bad) assert.throws(() => parseNotifications([n], 'p.yml'), (e: Error & { code?: string }) => e.code === 'PIPELINE_SPEC_INVALID_FIELD' && re.test(e.message), JSON.stringify(n));
  assert.throws(() => parseNotifications({ alerts: [] }, 'p.yml'), /must be a list/);
  const f = path.join(dir, 'bad.yml');
  await fs.writeFile(f, 'name: x\nlibraries:\n  - glob: { include: a.sql }\nnotifications:\n  - alerts: [on-update-failure]\n');
  await assert.rejects(loadSpec(f), /bad\.yml: notifications\[0\]: give 'webhook: URL'/);
});

test("the README's notifications example is a valid spec", async () => {
  const readme = await fs.readFile(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const yaml = /## Monitoring[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(yaml, 'README has the notifications example');
  const f = path.join(dir, 'readme-pipeline.yml');
  await fs.writeFile(f, `name: readme\nlibraries:\n  - glob: { include: a.sql }\n${yaml}`);
  const spec = await loadSpec(f);
  assert.deepEqual(spec.notifications?.map((n) => [n.alerts.length, n.webhook, n.command, n.expectationThreshold, n.maxDurationSeconds, n.retries]), [[4, 'https://hooks.example.com/floe', './notify.sh', 0.05, 900, 3]]);
});
