/**
 * `floe ui` over HTTP: the JSON API after a pipeline run (graph, updates, flows, expectations,
 * events and their filters, the live stream, tables, preview, change feed), and its security:
 * GET only, no path outside the catalog (`..`, absolute, encoded variants), loopback Host only, no
 * CORS, the access token when required, a strict CSP, no SQL from the request.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { Floe } from '../floe.js';
import { runPipeline } from '../pipelines/runner.js';
import { startUiServer, type UiServer } from '../ui/server.js';
import { tempDir } from './helpers.js';
import { type ShopFixture, shopFixture } from './ui-fixture.js';

let floe: Floe;
let dir: string;
let fx: ShopFixture;
let ui: UiServer;

before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-ui-');
  fx = await shopFixture(floe, dir);
  ui = await startUiServer({ warehouse: fx.warehouse, port: 0, floe, pollMs: 100 });
});
after(async () => {
  await ui?.close();
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw request: the path is sent exactly as given (no normalisation), any method and headers. */
function request(port: number, rawPath: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: o.method ?? 'GET', headers: o.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (o.body) req.write(o.body);
    req.end();
  });
}
const get = (p: string, headers?: Record<string, string>) => request(ui.port, p, { headers });
const getJson = async <T = unknown>(p: string): Promise<T> => {
  const r = await get(p);
  assert.equal(r.status, 200, `${p}: ${r.body}`);
  assert.match(String(r.headers['content-type']), /application\/json/);
  return JSON.parse(r.body) as T;
};

test('api: pipelines, graph with kinds, edges, rows and the failed flow with its error', async () => {
  const ps = await getJson<Array<{ name: string; updates: number; last_update: { state: string; error: { code: string } } }>>('/api/pipelines');
  assert.deepEqual(ps.map((p) => [p.name, p.updates, p.last_update.state, p.last_update.error?.code]), [['shop', 2, 'FAILED', 'EXPECTATION_VIOLATION']]);
  const g = await getJson<{ update_id: string; nodes: Array<{ name: string; kind: string; state: string; rows_written: number | null; error: { code: string; message: string } | null }>; edges: Array<{ from: string; to: string }> }>('/api/pipelines/shop/graph');
  const r2 = fx.runs[1]!;
  assert.equal(g.update_id, r2.updateId);
  const byName = Object.fromEntries(g.nodes.map((n) => [n.name, n]));
  assert.deepEqual(Object.keys(byName).sort(), ['after_strict', 'bronze', 'gold', fx.source, 'silver', 'strict'].sort());
  assert.deepEqual(
    Object.fromEntries(g.nodes.map((n) => [n.name, [n.kind, n.state, n.rows_written]])),
    {
      bronze: ['streaming_table', 'COMPLETED', r2.flows.bronze!.numOutputRows],
      silver: ['streaming_table', 'COMPLETED', r2.flows.silver!.numOutputRows],
      gold: ['materialized_view', 'COMPLETED', 1],
      strict: ['streaming_table', 'FAILED', 0],
      after_strict: ['materialized_view', 'SKIPPED', 0],
      [fx.source]: ['source', 'SOURCE', null],
    },
  );
  assert.equal(byName.strict!.error!.code, 'EXPECTATION_VIOLATION');
  assert.match(byName.strict!.error!.message, /^Flow 'strict' failed: the expectation 'small_amount'/);
  assert.deepEqual(g.edges.map((e) => `${e.from}->${e.to}`).sort(), [`${fx.source}->bronze`, 'bronze->silver', 'silver->gold', `${fx.source}->strict`, 'strict->after_strict'].sort());
});

test('api: updates timeline, per-flow rows and durations, expectations per update', async () => {
  const ups = await getJson<Array<{ update_id: string; state: string; duration_ms: number; error: { code: string } | null }>>('/api/pipelines/shop/updates');
  assert.deepEqual(ups.map((u) => [u.update_id, u.state, u.error?.code ?? null]), [[fx.runs[1]!.updateId, 'FAILED', 'EXPECTATION_VIOLATION'], [fx.runs[0]!.updateId, 'COMPLETED', null]]);
  assert.ok(ups.every((u) => typeof u.duration_ms === 'number' && u.duration_ms >= 0));
  const flows = await getJson<Array<{ update_id: string; flow: string; status: string; rows_written: number; dropped: number; duration_ms: number | null }>>('/api/pipelines/shop/flows');
  for (const [i, r] of fx.runs.entries()) {
    for (const f of Object.values(r.flows)) {
      const got = flows.find((x) => x.update_id === r.updateId && x.flow === f.flow);
      assert.ok(got, `flow ${f.flow} of update ${i + 1}`);
      assert.deepEqual([got.status, got.rows_written, got.dropped], [f.status, f.numOutputRows, f.droppedRecords], `${f.flow} in update ${i + 1}`);
    }
  }
  const ex = await getJson<Array<{ update_id: string; dataset: string; name: string; passed: number; failed: number; dropped: number; action: string }>>('/api/pipelines/shop/expectations');
  const first = ex.filter((e) => e.update_id === fx.runs[0]!.updateId && e.dataset === 'bronze').map((e) => [e.name, e.action, e.passed, e.failed, e.dropped]);
  assert.deepEqual(first, [['positive', 'warn', 4, 0, 0], ['has_id', 'drop', 3, 1, 1]]);
});

test('api: events with filters by level, type, flow and update; filter text is data, not SQL', async () => {
  const all = await getJson<Array<{ event_type: string; level: string; flow: string | null; update_id: string }>>('/api/pipelines/shop/events?limit=5000');
  assert.ok(all.length > 20);
  const errors = await getJson<typeof all>('/api/pipelines/shop/events?level=ERROR');
  assert.ok(errors.length >= 2 && errors.every((e) => e.level === 'ERROR'));
  const strict = await getJson<typeof all>(`/api/pipelines/shop/events?flow=strict&type=flow_progress&update=${fx.runs[1]!.updateId}`);
  assert.deepEqual(strict.map((e) => [e.flow, e.event_type, e.update_id]), [['strict', 'flow_progress', fx.runs[1]!.updateId], ['strict', 'flow_progress', fx.runs[1]!.updateId]]);
  const sqlish = await getJson<typeof all>(`/api/pipelines/shop/events?level=${encodeURIComponent("INFO' OR 1=1 --")}&flow=${encodeURIComponent("x'; DROP TABLE t; --")}`);
  assert.deepEqual(sqlish, []);
  assert.equal((await get('/api/pipelines/shop/events?limit=1;DROP')).status, 400);
  assert.equal((await get('/api/pipelines/nope/events')).status, 404);
  // limit=0 is at least 1 event (as the table endpoints), not every event
  assert.equal((await getJson<typeof all>('/api/pipelines/shop/events?limit=0')).length, 1);
  // the error's code has its own field: the message does not start with it
  const nf = await get('/api/pipelines/nope/events');
  const body = JSON.parse(nf.body) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'UI_NOT_FOUND');
  assert.doesNotMatch(body.error.message, /^\[/);
});

test('api: live event stream sends each new event once while a pipeline runs', async () => {
  const events: Array<{ id: string; event_type: string; update_id: string }> = [];
  const req = http.get({ host: '127.0.0.1', port: ui.port, path: '/api/pipelines/shop/events/stream' });
  const res = await new Promise<http.IncomingMessage>((r) => req.on('response', r));
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /text\/event-stream/);
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    buf += c;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const msg = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = msg.split('\n').find((l) => l.startsWith('data: '));
      if (data && msg.includes('event: pipeline_event')) events.push(JSON.parse(data.slice(6)));
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(events.length, 0, 'only events after the connection');
  const r3 = await fx.rerun();
  const deadline = Date.now() + 20_000;
  while (!events.some((e) => e.event_type === 'update_progress' && e.update_id === r3.updateId && JSON.stringify(e).includes('"FAILED"')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  req.destroy();
  const mine = events.filter((e) => e.update_id === r3.updateId);
  assert.ok(mine.length >= 5, JSON.stringify(events));
  assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'no event twice');
  assert.equal(mine[0]!.event_type, 'create_update');
});

test('api: tables, schema, properties, history, bounded preview of any version, change feed', async () => {
  const tables = await getJson<Array<{ schema: string; name: string }>>('/api/tables');
  assert.deepEqual(tables.map((t) => t.name).sort(), ['after_strict', 'bronze', 'gold', 'silver', 'strict']);
  const info = await getJson<{ version: number; columns: Array<{ name: string }>; properties: Record<string, string> }>('/api/tables/default/silver');
  assert.deepEqual(info.columns.map((c) => c.name), ['id', 'amount']);
  assert.equal(info.properties['delta.enableChangeDataFeed'], 'true');
  const hist = await getJson<Array<{ version: number }>>('/api/tables/default/silver/history');
  assert.equal(hist[0]!.version, info.version);
  // Version 0: silver as the first update created it.
  const p1 = await getJson<{ version: number; rows: Array<{ id: number; amount: number }> }>('/api/tables/default/silver/preview?version=0');
  assert.deepEqual(p1.rows.map((r) => [r.id, r.amount]).sort(), [[1, 10], [2, 20], [3, 30]]);
  const lim = await getJson<{ rows: unknown[]; limit: number }>('/api/tables/default/bronze/preview?limit=100000');
  assert.equal(lim.limit, 500, 'bounded');
  const v = info.version;
  const c = await getJson<{ rows: Array<{ id: number; amount: number; _change_type: string }>; counts: Record<string, number> }>(`/api/tables/default/silver/changes?from=${v}&to=${v}`);
  assert.deepEqual(c.rows.map((r) => [r._change_type, r.id, r.amount]).sort(), [['delete', 2, 20], ['insert', 4, 150], ['update_postimage', 1, 15], ['update_preimage', 1, 10]]);
  assert.deepEqual(c.counts, { delete: 1, insert: 1, update_postimage: 1, update_preimage: 1 });
  const v99 = await get('/api/tables/default/silver/preview?version=99');
  assert.equal(v99.status, 404, v99.body);
  assert.match(v99.body, /"code":"[A-Z_]+"/);
  assert.equal((await get('/api/tables/default/silver/changes')).status, 400);
  assert.equal((await get('/api/tables/default/nope')).status, 404);
});

test('security: GET only (405 with Allow), nothing written', async () => {
  const before = await getJson<{ version: number }>('/api/tables/default/silver');
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']) {
    for (const p of ['/', '/api/tables/default/silver', '/api/pipelines/shop/events']) {
      const r = await request(ui.port, p, { method, body: method === 'POST' ? '{"sql":"DROP TABLE silver"}' : undefined, headers: { 'Content-Type': 'application/json', Origin: `http://127.0.0.1:${ui.port}` } });
      assert.equal(r.status, 405, `${method} ${p}`);
      assert.equal(r.headers.allow, 'GET, HEAD');
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }
  }
  const after = await getJson<{ version: number }>('/api/tables/default/silver');
  assert.equal(after.version, before.version);
  assert.equal((await request(ui.port, '/api/tables', { method: 'HEAD' })).status, 200);
});

test('security: paths outside the catalog are refused (.., absolute, encoded variants)', async () => {
  const secret = path.join(dir, 'secret.txt');
  await fs.writeFile(secret, 'TOP-SECRET');
  const bad = [
    '/../secret.txt', '/api/tables/../../secret.txt', '/api/tables/default/..', '/api/tables/%2e%2e/%2e%2e/secret.txt', '/api/tables/%2E%2E%2Fsecret',
    '/api/tables/default/%2fetc%2fpasswd', '/api/tables/default/..%2f..%2fsecret', '/api/tables//etc/passwd', '//etc/passwd', '/api/tables/default/a%5c..%5csecret',
    '/api/tables/default/x%00', '/api/tables/default/.%2e', '/app.js/..', '/api/pipelines/..%2f..%2f', '/api/pipelines/%2e%2e/graph', '/..\\secret.txt',
    `/api/tables/default/${encodeURIComponent(secret)}`, '/api/tables/default/..%252f..%252fsecret', '/api/tables/main.default/silver', '/api/pipelines/shop%252f..%252f/graph',
  ];
  for (const p of bad) {
    const r = await get(p);
    assert.ok([400, 404].includes(r.status), `${p}: ${r.status} ${r.body}`);
    assert.doesNotMatch(r.body, /TOP-SECRET|root:/, p);
  }
  assert.equal((await get('/api/tables/%2e%2e/x')).status, 400);
  assert.equal((await get('/api/tables/default/..%2f..%2fsecret')).status, 400);
});

test('security: no CORS, loopback Host only, strict CSP and headers', async () => {
  const own = await get('/api/tables', { Origin: `http://127.0.0.1:${ui.port}` });
  assert.equal(own.status, 200);
  for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${ui.port + 1}`, `https://127.0.0.1:${ui.port}`]) {
    const r = await get('/api/tables', { Origin: origin });
    assert.equal(r.status, 403, origin);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  }
  assert.equal((await get('/api/tables', { 'Sec-Fetch-Site': 'cross-site' })).status, 403);
  assert.equal((await get('/api/tables', { Host: 'attacker.example' })).status, 403, 'DNS rebinding');
  assert.equal((await get('/api/tables', { Host: `localhost:${ui.port}` })).status, 200);
  const page = await get('/');
  assert.equal(page.status, 200);
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.equal(page.headers['access-control-allow-origin'], undefined);
  // The page itself needs no inline script or style (the CSP would block them).
  assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=/i);
  assert.match(String((await get('/api/tables')).headers['content-security-policy']), /default-src 'none'/);
});

test('security: the access token (Bearer header or a cookie set from ?token=) on every request', async () => {
  const token = 'test-token-0123456789abcdef';
  const s = await startUiServer({ warehouse: fx.warehouse, port: 0, floe, token });
  try {
    const g = (p: string, headers?: Record<string, string>) => request(s.port, p, { headers });
    for (const p of ['/', '/app.js', '/api/tables', '/api/pipelines/shop/graph', '/api/pipelines/shop/events/stream']) {
      const r = await g(p);
      assert.equal(r.status, 401, p);
      assert.doesNotMatch(r.body, /silver|shop/);
    }
    assert.equal((await g('/api/tables', { Authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    assert.equal((await g('/api/tables', { Authorization: `Bearer ${token}` })).status, 200);
    assert.equal((await g('/?token=nope')).status, 401);
    const link = await g(`/?token=${token}`);
    assert.equal(link.status, 303);
    assert.equal(link.headers.location, '/');
    const setCookie = String(link.headers['set-cookie']);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    assert.equal((await g('/api/tables', { Cookie: cookie })).status, 200);
    assert.equal((await g('/api/tables', { Cookie: 'floe_ui_token=wrong' })).status, 401);
    // With the token, cross-origin and writes are still refused.
    assert.equal((await g('/api/tables', { Cookie: cookie, Origin: 'http://evil.example' })).status, 403);
    assert.equal((await request(s.port, '/api/tables', { method: 'POST', headers: { Cookie: cookie } })).status, 405);
  } finally {
    await s.close();
  }
  // Exposed beyond loopback: a token is generated when none is given.
  const exposed = await startUiServer({ warehouse: fx.warehouse, host: '0.0.0.0', port: 0, floe });
  try {
    assert.ok(exposed.token && exposed.token.length >= 24);
    assert.match(exposed.openUrl, /\?token=/);
    assert.equal((await request(exposed.port, '/api/tables')).status, 401);
    assert.equal((await request(exposed.port, '/api/tables', { headers: { Authorization: `Bearer ${exposed.token}` } })).status, 200);
  } finally {
    await exposed.close();
  }
  await assert.rejects(startUiServer({ warehouse: fx.warehouse, port: 0, floe, token: 'short' }), /UI_TOKEN_TOO_SHORT/);
  await assert.rejects(startUiServer({ warehouse: fx.warehouse, port: ui.port, floe }), /UI_PORT_IN_USE.*--port N/);
});

test('cli: floe ui prints the link, serves the API, needs the token when exposed, stops on SIGTERM', async () => {
  const bin = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'ui', '--warehouse', fx.warehouse, '--port', '0', '--host', '0.0.0.0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOE_UI_TOKEN: 'cli-token-0123456789abcdef' } });
  let outText = '';
  child.stdout.on('data', (c: Buffer) => (outText += c.toString()));
  const deadline = Date.now() + 30_000;
  while (!/open http:\/\/\S+/.test(outText) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  const url = /open (http:\/\/\S+)/.exec(outText)?.[1];
  assert.ok(url, outText);
  assert.match(url, /\?token=cli-token-0123456789abcdef$/);
  const port = Number(new URL(url).port);
  assert.equal((await request(port, '/api/pipelines')).status, 401);
  const r = await request(port, '/api/pipelines', { headers: { Authorization: 'Bearer cli-token-0123456789abcdef' } });
  assert.equal(r.status, 200);
  assert.equal((JSON.parse(r.body) as Array<{ name: string }>)[0]!.name, 'shop');
  const code = await new Promise<number | null>((res) => {
    child.on('exit', (c) => res(c));
    child.kill('SIGTERM');
  });
  assert.equal(code, 0);
  const bad = spawn(process.execPath, [bin, 'ui', '--port', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (c: Buffer) => (err += c.toString()));
  assert.equal(await new Promise((res) => bad.on('exit', res)), 2);
  assert.match(err, /--port needs a port number/);
});

test('api: a table dropped and created again by another process shows its new content', async () => {
  const other = await Floe.create({ threads: 1 });
  try {
    await other.sql('CREATE TABLE recreated (a INT) USING delta; INSERT INTO recreated VALUES (1); INSERT INTO recreated VALUES (2)', { warehouse: fx.warehouse });
    const first = await getJson<{ version: number; columns: Array<{ name: string }> }>('/api/tables/default/recreated');
    assert.deepEqual([first.version, first.columns.map((c) => c.name)], [2, ['a']]);
    await other.sql("DROP TABLE recreated; CREATE TABLE recreated (b STRING) USING delta; INSERT INTO recreated VALUES ('x')", { warehouse: fx.warehouse });
    const second = await getJson<{ version: number; columns: Array<{ name: string }> }>('/api/tables/default/recreated');
    assert.deepEqual([second.version, second.columns.map((c) => c.name)], [1, ['b']]);
    const rows = await getJson<{ rows: unknown[] }>('/api/tables/default/recreated/preview');
    assert.deepEqual(rows.rows, [{ b: 'x' }]);
  } finally {
    await other.close();
  }
});

test('api: the live stream of an unknown pipeline is a 404; HEAD does not open a stream', async () => {
  assert.equal((await get('/api/pipelines/nope/events/stream')).status, 404);
  const h = await request(ui.port, '/api/pipelines/shop/events/stream', { method: 'HEAD' });
  assert.equal(h.status, 200);
  assert.match(String(h.headers['content-type']), /text\/event-stream/);
});

test('api: views appear in the graph between their sources and their readers', async () => {
  const src = path.join(dir, 'viewsrc');
  await floe.duckdbSql('SELECT 1 AS id, 5 AS amount UNION ALL SELECT 2, -1').write.delta(src);
  const r = await runPipeline({
    floe, name: 'viewed', warehouse: fx.warehouse,
    definitions: (p) => {
      p.table({ name: 'vbronze', query: (c) => c.readStream(src) });
      p.view({ name: 'positive_rows', query: (c) => c.sql('SELECT * FROM b WHERE amount > 0', { b: c.readStream('vbronze') }) });
      p.table({ name: 'vsilver', query: (c) => c.readStream('positive_rows') });
    },
  });
  assert.equal(r.state, 'COMPLETED');
  const g = await getJson<{ nodes: Array<{ name: string; kind: string; rows_written: number | null }>; edges: Array<{ from: string; to: string }> }>('/api/pipelines/viewed/graph');
  assert.deepEqual(Object.fromEntries(g.nodes.map((n) => [n.name, [n.kind, n.rows_written]])), { vbronze: ['streaming_table', 2], vsilver: ['streaming_table', 1], positive_rows: ['view', null], [src]: ['source', null] });
  assert.deepEqual(g.edges.map((e) => `${e.from}->${e.to}`).sort(), [`${src}->vbronze`, 'positive_rows->vsilver', 'vbronze->positive_rows'].sort());
});

test('api: an empty or missing warehouse shows nothing and is not created', async () => {
  const missing = path.join(dir, 'no-such-warehouse');
  const s = await startUiServer({ warehouse: missing, port: 0, floe });
  try {
    assert.equal((await request(s.port, '/api/pipelines')).body, '[]');
    assert.equal((await request(s.port, '/api/tables')).body, '[]');
    assert.equal((await request(s.port, '/api/pipelines/x/graph')).status, 404);
    await assert.rejects(fs.access(missing), 'the server writes nothing');
  } finally {
    await s.close();
  }
});
