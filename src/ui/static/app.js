// floe ui: one page over the read-only JSON API. Plain ES module, no dependencies; the DOM is built
// with createElement (never innerHTML with data), charts are hand-rolled SVG.
const SVGNS = 'http://www.w3.org/2000/svg';
const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
let cleanup = [];

// ------------------------------------------------------------------ helpers
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
async function api(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${r.status}`);
  return body;
}
const enc = encodeURIComponent;
const fmtN = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '–');
const short = (id) => (id ? id.slice(0, 8) : '');
const badge = (state) => h('span', { class: `badge s-${state}`, 'data-state': state }, state);
const cell = (v) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
function grid(columns, rows, rowAttrs) {
  return h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : '' }, c.label ?? c.key)))),
    h('tbody', {}, rows.map((r, i) => h('tr', rowAttrs ? rowAttrs(r, i) : {}, columns.map((c) => {
      const v = c.render ? c.render(r) : cell(r[c.key]);
      return h('td', { class: [c.num ? 'num' : '', c.wrap ? 'wrap' : ''].join(' ').trim() || null }, v);
    })))));
}
function errorBox(e) {
  return h('div', { class: 'panel error-text', role: 'alert' }, String(e?.message ?? e));
}
function setCrumbs(...parts) {
  crumbs.replaceChildren(...parts.flatMap((p, i) => [i ? h('span', { class: 'sep' }, '/') : null, p.href ? h('a', { href: p.href }, p.label) : h('span', {}, p.label)]).filter(Boolean));
}

// ------------------------------------------------------------------ theme
const root = document.documentElement;
function applyTheme(t) {
  if (t) root.setAttribute('data-theme', t);
  else root.removeAttribute('data-theme');
}
applyTheme(localStorage.getItem('floe-theme'));
document.getElementById('theme').addEventListener('click', () => {
  const dark = root.getAttribute('data-theme') ? root.getAttribute('data-theme') === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  const next = dark ? 'light' : 'dark';
  localStorage.setItem('floe-theme', next);
  applyTheme(next);
});

// ------------------------------------------------------------------ router
async function route() {
  for (const f of cleanup) f();
  cleanup = [];
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    if (parts[0] === 'p' && parts[1]) await pipelinePage(parts[1], parts[2] || 'graph', parts.slice(3));
    else if (parts[0] === 't' && parts[1] && parts[2]) await tablePage(parts[1], parts[2]);
    else await homePage();
  } catch (e) {
    main.replaceChildren(errorBox(e));
  }
}
window.addEventListener('hashchange', route);

// ------------------------------------------------------------------ home
async function homePage() {
  setCrumbs({ label: 'Overview' });
  const [pipelines, tables] = await Promise.all([api('/api/pipelines'), api('/api/tables')]);
  main.replaceChildren(
    h('h1', {}, 'Pipelines'),
    h('div', { class: 'panel' }, pipelines.length
      ? grid([
        { key: 'name', label: 'Pipeline', render: (p) => h('a', { href: `#/p/${enc(p.name)}`, 'data-pipeline': p.name }, p.name) },
        { key: 'state', label: 'Last update', render: (p) => (p.last_update ? badge(p.last_update.state) : '–') },
        { key: 'started', label: 'Started', render: (p) => fmtTime(p.last_update?.started) },
        { key: 'duration', label: 'Duration', num: true, render: (p) => fmtMs(p.last_update?.duration_ms) },
        { key: 'updates', label: 'Updates', num: true },
        { key: 'error', label: 'Error', wrap: true, render: (p) => h('span', { class: 'error-text' }, p.last_update?.error?.message ?? '') },
      ], pipelines)
      : h('p', { class: 'muted' }, 'No pipeline has run in this warehouse yet (floe pipelines run).')),
    h('h1', {}, 'Tables'),
    h('div', { class: 'panel' }, tables.length
      ? grid([
        { key: 'schema', label: 'Schema' },
        { key: 'name', label: 'Table', render: (t) => h('a', { href: `#/t/${enc(t.schema)}/${enc(t.name)}`, 'data-table': `${t.schema}.${t.name}` }, t.name) },
        { key: 'type', label: 'Type' },
      ], tables)
      : h('p', { class: 'muted' }, 'The catalog has no tables.')),
  );
}

// ------------------------------------------------------------------ pipeline
const TABS = [['graph', 'Graph'], ['updates', 'Updates'], ['flows', 'Flows'], ['quality', 'Data quality'], ['events', 'Event log']];

async function pipelinePage(name, tab, rest) {
  setCrumbs({ label: 'Overview', href: '#/' }, { label: name, href: `#/p/${enc(name)}` }, { label: (TABS.find((t) => t[0] === tab) ?? [, tab])[1] });
  const body = h('div', { id: 'view' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    h('h1', {}, `Pipeline ${name}`),
    h('nav', { class: 'tabs' }, TABS.map(([k, label]) => h('a', { href: `#/p/${enc(name)}/${k}`, class: k === tab ? 'active' : '', 'data-tab': k }, label))),
    body,
  );
  const views = { graph: graphView, updates: updatesView, flows: flowsView, quality: qualityView, events: eventsView };
  const v = views[tab];
  if (!v) throw new Error(`Unknown view '${tab}'.`);
  body.replaceChildren(...[await v(name, rest)].flat());
  // Refresh the summaries while an update runs.
  if (tab !== 'events') {
    const timer = setInterval(async () => {
      try {
        const ups = await api(`/api/pipelines/${enc(name)}/updates`);
        const running = ups[0] && !['COMPLETED', 'FAILED', 'CANCELED'].includes(ups[0].state);
        if (running || body.dataset.running === 'true') body.replaceChildren(...[await v(name, rest)].flat());
        body.dataset.running = running ? 'true' : 'false';
      } catch { /* keep the last view */ }
    }, 3000);
    cleanup.push(() => clearInterval(timer));
  }
}

/** Columns by depth (longest path from a source), rows in order of appearance. */
function layout(g) {
  const depth = new Map(g.nodes.map((n) => [n.name, 0]));
  for (let i = 0; i < g.nodes.length; i++) for (const e of g.edges) depth.set(e.to, Math.max(depth.get(e.to), depth.get(e.from) + 1));
  const cols = new Map();
  for (const n of g.nodes) {
    const d = depth.get(n.name);
    if (!cols.has(d)) cols.set(d, []);
    cols.get(d).push(n);
  }
  const W = 220, H = 74, GX = 80, GY = 34;
  const pos = new Map();
  let maxRows = 0;
  for (const [d, ns] of cols) {
    ns.forEach((n, i) => pos.set(n.name, { x: 20 + d * (W + GX), y: 20 + i * (H + GY), w: W, h: H }));
    maxRows = Math.max(maxRows, ns.length);
  }
  return { pos, width: 40 + cols.size * (W + GX) - GX, height: 40 + maxRows * (H + GY) - GY };
}

const KIND = { streaming_table: 'streaming table', materialized_view: 'materialized view', view: 'view', source: 'source' };

async function graphView(name) {
  const g = await api(`/api/pipelines/${enc(name)}/graph`);
  if (!g.nodes.length) return h('p', { class: 'muted' }, 'No flow definitions in the event log yet.');
  const { pos, width, height } = layout(g);
  const clip = (t, n) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Graph of pipeline ${name}`, id: 'graph' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z' }))),
    g.edges.map((e) => {
      const a = pos.get(e.from), b = pos.get(e.to);
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2, mx = (x1 + x2) / 2;
      return s('path', { class: 'edge', d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`, 'marker-end': 'url(#arrow)', 'data-edge': `${e.from}->${e.to}` }, s('title', {}, `${e.from} → ${e.to} (flow ${e.flow})`));
    }),
    g.nodes.map((n) => {
      const p = pos.get(n.name);
      const label = n.kind === 'source' ? clip(n.name.split('/').filter(Boolean).pop() || n.name, 28) : clip(n.name, 28);
      const sub = `${KIND[n.kind]}${n.rows_written !== null ? ` · ${fmtN(n.rows_written)} rows` : ''}`;
      const node = s('g', {
        class: `node k-${n.kind} st-${n.state}`, transform: `translate(${p.x},${p.y})`, tabindex: 0,
        'data-node': n.name, 'data-kind': n.kind, 'data-state': n.state, 'data-rows': n.rows_written ?? '',
        onclick: () => { if (n.table) location.hash = `#/t/${enc(n.table.schema)}/${enc(n.table.name)}`; },
      },
      s('title', {}, `${n.name}\n${KIND[n.kind]} · ${n.state}${n.error ? `\n${n.error.message}` : ''}`),
      s('rect', { width: p.w, height: p.h }),
      s('text', { class: 'title', x: 10, y: 20 }, label),
      s('text', { class: 'small', x: 10, y: 37 }, sub),
      s('text', { class: 'small', x: 10, y: 52 }, n.state),
      n.error ? s('text', { class: 'err', x: 10, y: 67, 'data-error': '' }, clip(n.error.message ?? 'failed', 34)) : null);
      return node;
    }));
  const failed = g.nodes.filter((n) => n.error);
  return [
    h('p', { class: 'muted' }, 'Update ', h('code', {}, short(g.update_id)), ' ', g.update_state ? badge(g.update_state) : '', ' · nodes by kind (square: streaming table, rounded: materialized view, dashed: source or view), coloured by health; click a table to browse it.'),
    h('div', { class: 'panel' }, svg),
    failed.length ? h('div', { class: 'panel' }, h('h2', {}, 'Errors'), failed.map((n) => h('div', { 'data-failed': n.name }, h('strong', {}, n.name), ': ', h('span', { class: 'error-text' }, `${n.error.code ? `[${n.error.code}] ` : ''}${n.error.message}`)))) : null,
  ].filter(Boolean);
}

const stateBar = (st) => (st === 'COMPLETED' ? 'bar-ok' : st === 'FAILED' || st === 'CANCELED' ? 'bar-bad' : ['RUNNING', 'QUEUED', 'INITIALIZING', 'SETTING_UP_TABLES'].includes(st) ? 'bar-run' : 'bar-idle');

async function updatesView(name) {
  const ups = await api(`/api/pipelines/${enc(name)}/updates`);
  if (!ups.length) return h('p', { class: 'muted' }, 'No updates yet.');
  const chron = [...ups].reverse();
  const t0 = Date.parse(chron[0].started);
  const t1 = Math.max(...chron.map((u) => Date.parse(u.started) + (u.duration_ms ?? 0)));
  const W = 900, rowH = 22, left = 90;
  const span = Math.max(t1 - t0, 1);
  const x = (t) => left + ((t - t0) / span) * (W - left - 20);
  const svg = s('svg', { width: W, height: chron.length * rowH + 30, role: 'img', 'aria-label': 'Updates timeline', id: 'timeline' },
    s('line', { class: 'axis', x1: left, x2: W - 20, y1: chron.length * rowH + 8, y2: chron.length * rowH + 8 }),
    s('text', { class: 'small', x: left, y: chron.length * rowH + 24 }, fmtTime(chron[0].started)),
    s('text', { class: 'small', x: W - 20, y: chron.length * rowH + 24, 'text-anchor': 'end' }, fmtTime(new Date(t1).toISOString())),
    chron.map((u, i) => {
      const a = x(Date.parse(u.started));
      const w = Math.max(x(Date.parse(u.started) + (u.duration_ms ?? 0)) - a, 4);
      return s('g', { 'data-update': u.update_id },
        s('text', { class: 'small', x: 4, y: i * rowH + 15 }, short(u.update_id)),
        s('rect', { class: stateBar(u.state), x: a, y: i * rowH + 4, width: w, height: rowH - 8, rx: 3 }, s('title', {}, `${u.state} · ${fmtMs(u.duration_ms)}${u.error ? `\n${u.error.message}` : ''}`)));
    }));
  return [
    h('div', { class: 'panel' }, h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'i-ok' }), 'completed'), h('span', {}, h('i', { class: 'i-bad' }), 'failed'), h('span', {}, h('i', { class: 'i-run' }), 'running')), svg),
    h('div', { class: 'panel' }, grid([
      { key: 'update_id', label: 'Update', render: (u) => h('a', { href: `#/p/${enc(name)}/events/${enc(u.update_id)}` }, short(u.update_id)) },
      { key: 'state', label: 'State', render: (u) => badge(u.state) },
      { key: 'started', label: 'Started', render: (u) => fmtTime(u.started) },
      { key: 'duration_ms', label: 'Duration', num: true, render: (u) => fmtMs(u.duration_ms) },
      { key: 'full_refresh', label: 'Full refresh', render: (u) => (u.full_refresh ? 'yes' : '') },
      { key: 'error', label: 'Error', wrap: true, render: (u) => h('span', { class: 'error-text' }, u.error ? `${u.error.code ? `[${u.error.code}] ` : ''}${u.error.message}` : '') },
    ], ups, (u) => ({ 'data-update': u.update_id }))),
  ];
}

/** A small bar chart (values per update) with an optional line (second series, own scale). */
function miniChart({ labels, bars, barClass, line, title, lineLabel }) {
  const W = 340, H = 150, L = 44, B = 22, T = 10;
  const n = labels.length;
  const bw = Math.max(Math.min((W - L - 10) / Math.max(n, 1) - 4, 40), 3);
  const maxB = Math.max(1, ...bars);
  const maxL = line ? Math.max(1, ...line.filter((v) => v !== null)) : 1;
  const xs = (i) => L + 4 + i * ((W - L - 10) / Math.max(n, 1));
  const yB = (v) => T + (H - T - B) * (1 - v / maxB);
  const yL = (v) => T + (H - T - B) * (1 - v / maxL);
  const pts = line ? line.map((v, i) => (v === null ? null : [xs(i) + bw / 2, yL(v)])).filter(Boolean) : [];
  return s('svg', { width: W, height: H, role: 'img', 'aria-label': title },
    s('line', { class: 'axis', x1: L, x2: W - 4, y1: H - B, y2: H - B }),
    s('text', { class: 'small', x: L - 4, y: T + 8, 'text-anchor': 'end' }, fmtN(maxB)),
    s('text', { class: 'small', x: L - 4, y: H - B, 'text-anchor': 'end' }, '0'),
    bars.map((v, i) => s('rect', { class: barClass[i] ?? 'bar-ok', x: xs(i), y: v > 0 ? yB(v) : H - B - (barClass[i] === 'bar-bad' || barClass[i] === 'bar-warn' ? 4 : 0), width: bw, height: v > 0 ? Math.max(H - B - yB(v), 1) : barClass[i] === 'bar-bad' || barClass[i] === 'bar-warn' ? 4 : 0 }, s('title', {}, `${labels[i]}: ${fmtN(v)}${line && line[i] !== null ? ` · ${lineLabel} ${fmtMs(line[i])}` : ''}`))),
    pts.length > 1 ? s('polyline', { class: 'line', points: pts.map((p) => p.join(',')).join(' ') }) : null,
    pts.map((p) => s('circle', { class: 'dotp', cx: p[0], cy: p[1], r: 2.5 })),
    line ? s('text', { class: 'small', x: W - 4, y: T + 8, 'text-anchor': 'end' }, `${lineLabel} max ${fmtMs(maxL)}`) : null,
    n ? s('text', { class: 'small', x: L, y: H - 6 }, labels[0]) : null,
    n > 1 ? s('text', { class: 'small', x: W - 4, y: H - 6, 'text-anchor': 'end' }, labels[n - 1]) : null);
}

async function flowsView(name) {
  const flows = await api(`/api/pipelines/${enc(name)}/flows`);
  if (!flows.length) return h('p', { class: 'muted' }, 'No flow has run yet.');
  const byFlow = new Map();
  for (const f of flows) {
    if (!byFlow.has(f.flow)) byFlow.set(f.flow, []);
    byFlow.get(f.flow).push(f);
  }
  const cls = (st) => (st === 'FAILED' ? 'bar-bad' : st === 'SKIPPED' ? 'bar-warn' : st === 'RUNNING' ? 'bar-run' : st === 'EXCLUDED' ? 'bar-idle' : 'bar-ok');
  return [
    h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'i-ok' }), 'rows written per update'), h('span', {}, h('i', { class: 'i-bad' }), 'failed'), h('span', {}, h('i', { class: 'i-line' }), 'duration')),
    h('div', { class: 'cards' }, [...byFlow].map(([flow, rs]) => h('div', { class: 'panel', 'data-flow': flow },
      h('h3', {}, flow, ' ', badge(rs[rs.length - 1].status)),
      miniChart({ title: `Rows and duration of flow ${flow}`, labels: rs.map((r) => short(r.update_id)), bars: rs.map((r) => r.rows_written), barClass: rs.map((r) => cls(r.status)), line: rs.map((r) => r.duration_ms), lineLabel: 'duration' }),
      rs[rs.length - 1].error ? h('div', { class: 'error-text' }, rs[rs.length - 1].error.message) : null))),
    h('h2', {}, 'Per update'),
    h('div', { class: 'panel' }, grid([
      { key: 'update_id', label: 'Update', render: (r) => short(r.update_id) },
      { key: 'flow', label: 'Flow' },
      { key: 'status', label: 'Status', render: (r) => badge(r.status) },
      { key: 'rows_written', label: 'Rows written', num: true, render: (r) => fmtN(r.rows_written) },
      { key: 'upserted', label: 'Upserted', num: true, render: (r) => fmtN(r.upserted) },
      { key: 'deleted', label: 'Deleted', num: true, render: (r) => fmtN(r.deleted) },
      { key: 'dropped', label: 'Dropped', num: true, render: (r) => fmtN(r.dropped) },
      { key: 'duration_ms', label: 'Duration', num: true, render: (r) => fmtMs(r.duration_ms) },
      { key: 'note', label: 'Note / error', wrap: true, render: (r) => (r.error ? h('span', { class: 'error-text' }, r.error.message) : r.note ?? '') },
    ], [...flows].reverse())),
  ];
}

async function qualityView(name) {
  const ex = await api(`/api/pipelines/${enc(name)}/expectations`);
  if (!ex.length) return h('p', { class: 'muted' }, 'No expectation results yet.');
  const by = new Map();
  for (const e of ex) {
    const k = `${e.dataset}.${e.name}`;
    if (!by.has(k)) by.set(k, []);
    by.get(k).push(e);
  }
  const chart = (rs) => {
    const W = 340, H = 130, L = 10, B = 20;
    const bw = Math.max(Math.min((W - 20) / rs.length - 4, 40), 3);
    return s('svg', { width: W, height: H, role: 'img', 'aria-label': 'passed and failed records per update' },
      s('line', { class: 'axis', x1: L, x2: W - 4, y1: H - B, y2: H - B }),
      rs.map((r, i) => {
        const tot = Math.max(r.passed + r.failed, 1);
        const x = L + i * ((W - 20) / rs.length);
        const hp = (H - B - 10) * (r.passed / tot), hf = (H - B - 10) * (r.failed / tot);
        return s('g', {}, s('title', {}, `${short(r.update_id)}: ${fmtN(r.passed)} passed, ${fmtN(r.failed)} failed${r.dropped ? `, ${fmtN(r.dropped)} dropped` : ''}`),
          s('rect', { class: 'bar-ok', x, y: H - B - hp, width: bw, height: hp }),
          s('rect', { class: r.action === 'drop' ? 'bar-warn' : 'bar-bad', x, y: H - B - hp - hf, width: bw, height: hf }));
      }));
  };
  return [
    h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'i-ok' }), 'passed'), h('span', {}, h('i', { class: 'i-bad' }), 'failed (kept)'), h('span', {}, h('i', { class: 'i-warn' }), 'failed (dropped)')),
    h('div', { class: 'cards' }, [...by].map(([k, rs]) => {
      const last = rs[rs.length - 1];
      const rate = last.passed + last.failed ? (100 * last.failed) / (last.passed + last.failed) : 0;
      return h('div', { class: 'panel', 'data-expectation': k }, h('h3', {}, k, ' ', h('span', { class: 'muted' }, last.action ?? '')),
        h('div', {}, h('span', { class: `badge ${last.failed ? (last.action === 'drop' ? 's-WARN' : 's-FAILED') : 's-ok'}` }, `${rate.toFixed(2)}% failed`), ` in the last update (${fmtN(last.failed)} of ${fmtN(last.passed + last.failed)})`),
        chart(rs));
    })),
    h('h2', {}, 'Per update'),
    h('div', { class: 'panel' }, grid([
      { key: 'update_id', label: 'Update', render: (r) => short(r.update_id) },
      { key: 'dataset', label: 'Dataset' }, { key: 'name', label: 'Expectation' }, { key: 'action', label: 'On violation' },
      { key: 'passed', label: 'Passed', num: true, render: (r) => fmtN(r.passed) },
      { key: 'failed', label: 'Failed', num: true, render: (r) => fmtN(r.failed) },
      { key: 'dropped', label: 'Dropped', num: true, render: (r) => fmtN(r.dropped) },
    ], [...ex].reverse())),
  ];
}

async function eventsView(name, rest) {
  const [ups, graph] = await Promise.all([api(`/api/pipelines/${enc(name)}/updates`), api(`/api/pipelines/${enc(name)}/graph`).catch(() => ({ nodes: [] }))]);
  const flows = [...new Set(graph.nodes.flatMap((n) => n.flows))];
  const sel = (id, label, opts, value) => h('label', {}, `${label} `, h('select', { id }, h('option', { value: '' }, 'all'), opts.map(([v, l]) => h('option', { value: v, selected: v === value ? true : null }, l))));
  const filters = h('div', { class: 'filters' },
    sel('f-level', 'Level', ['INFO', 'WARN', 'ERROR', 'METRICS'].map((l) => [l, l])),
    sel('f-type', 'Type', ['create_update', 'update_progress', 'flow_definition', 'flow_progress', 'planning_information', 'notification'].map((l) => [l, l])),
    sel('f-flow', 'Flow', flows.map((f) => [f, f])),
    sel('f-update', 'Update', ups.map((u) => [u.update_id, `${short(u.update_id)} ${u.state}`]), rest[0] ?? ''),
    h('span', { class: 'live', id: 'live' }, h('span', { class: 'dot' }), 'live'));
  const tbody = h('tbody', {});
  const table = h('table', { class: 'grid', id: 'events' }, h('thead', {}, h('tr', {}, ['Time', 'Level', 'Type', 'Update', 'Flow', 'Message'].map((c) => h('th', {}, c)))), tbody);
  const val = (id) => filters.querySelector(`#${id}`).value;
  const matches = (e) => (!val('f-level') || e.level === val('f-level')) && (!val('f-type') || e.event_type === val('f-type')) && (!val('f-flow') || e.flow === val('f-flow')) && (!val('f-update') || e.update_id === val('f-update'));
  const row = (e, isNew) => h('tr', { class: isNew ? 'new' : null, 'data-event': e.id, 'data-level': e.level, 'data-type': e.event_type, 'data-update': e.update_id },
    h('td', {}, fmtTime(e.timestamp)), h('td', {}, badge(e.level)), h('td', {}, e.event_type), h('td', {}, short(e.update_id)), h('td', {}, e.flow ?? ''),
    h('td', { class: 'wrap' }, e.message, e.error && !e.message.includes(e.error.message) ? h('div', { class: 'error-text' }, `${e.error.code ? `[${e.error.code}] ` : ''}${e.error.message}`) : null));
  let lastId = null;
  async function load() {
    const q = new URLSearchParams();
    for (const [k, id] of [['level', 'f-level'], ['type', 'f-type'], ['flow', 'f-flow'], ['update', 'f-update']]) if (val(id)) q.set(k, val(id));
    q.set('limit', '1000');
    const evs = await api(`/api/pipelines/${enc(name)}/events?${q}`);
    tbody.replaceChildren(...evs.reverse().map((e) => row(e, false)));
    // Live events that arrived while this list was being fetched are not in it: put them back on top.
    const have = new Set(evs.map((e) => e.id));
    for (const e of recent) if (!have.has(e.id) && matches(e)) tbody.prepend(row(e, true));
  }
  const recent = [];
  filters.addEventListener('change', () => void load().catch((e) => tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6 }, errorBox(e))))));
  await load();
  const all = await api(`/api/pipelines/${enc(name)}/events?limit=1`);
  lastId = all.length ? all[all.length - 1].id : null;
  const es = new EventSource(`/api/pipelines/${enc(name)}/events/stream${lastId ? `?after=${enc(lastId)}` : ''}`);
  const live = filters.querySelector('#live');
  es.addEventListener('open', () => live.classList.add('on'));
  es.addEventListener('error', () => live.classList.remove('on'));
  es.addEventListener('pipeline_event', (m) => {
    const e = JSON.parse(m.data);
    recent.push(e);
    if (recent.length > 1000) recent.shift();
    if (matches(e)) tbody.prepend(row(e, true));
  });
  cleanup.push(() => es.close());
  return [filters, h('div', { class: 'panel' }, table)];
}

// ------------------------------------------------------------------ tables
async function tablePage(schema, name) {
  setCrumbs({ label: 'Overview', href: '#/' }, { label: `${schema}.${name}` });
  const base = `/api/tables/${enc(schema)}/${enc(name)}`;
  const [info, history] = await Promise.all([api(base), api(`${base}/history`)]);
  const previewBox = h('div', { id: 'preview' });
  const changesBox = h('div', { id: 'changes' });
  const vInput = h('input', { id: 'preview-version', type: 'number', min: 0, max: info.version, value: info.version });
  const fromInput = h('input', { id: 'cdf-from', type: 'number', min: 0, max: info.version, value: Math.max(info.version - 1, 0) });
  const toInput = h('input', { id: 'cdf-to', type: 'number', min: 0, max: info.version, value: info.version });
  const showRows = (box, r, attrs) => box.replaceChildren(
    h('p', { class: 'muted' }, `${r.rows.length} row(s)${r.rows.length >= r.limit ? ` (first ${r.limit})` : ''}`),
    r.rows.length ? grid(r.columns.map((c) => ({ key: c })), r.rows, attrs) : h('p', { class: 'muted' }, 'No rows.'));
  async function preview() {
    try {
      showRows(previewBox, await api(`${base}/preview?version=${enc(vInput.value)}&limit=100`));
    } catch (e) { previewBox.replaceChildren(errorBox(e)); }
  }
  async function changes() {
    try {
      const r = await api(`${base}/changes?from=${enc(fromInput.value)}&to=${enc(toInput.value)}&limit=500`);
      showRows(changesBox, r, (row) => ({ class: `ct-${row._change_type}`, 'data-change-type': row._change_type }));
      changesBox.prepend(h('div', { class: 'legend', id: 'cdf-counts' }, Object.entries(r.counts).map(([k, v]) => h('span', { 'data-count': k }, h('i', { class: `ct-${k}` }), `${k}: ${fmtN(v)}`))));
    } catch (e) { changesBox.replaceChildren(errorBox(e)); }
  }
  main.replaceChildren(
    h('h1', {}, `Table ${schema}.${name}`, ' ', h('span', { class: 'muted' }, `version ${info.version}`)),
    ...(info.description ? [h('p', {}, info.description)] : []),
    h('div', { class: 'cards' },
      h('div', { class: 'panel' }, h('h2', {}, 'Schema'), grid([{ key: 'name', label: 'Column' }, { key: 'type', label: 'Type' }, { key: 'nullable', label: 'Nullable' }], info.columns)),
      h('div', { class: 'panel' }, h('h2', {}, 'Properties'), grid([{ key: 'k', label: 'Property' }, { key: 'v', label: 'Value', wrap: true }], [
        { k: 'files', v: fmtN(info.num_files) }, { k: 'size', v: `${fmtN(info.size_bytes)} bytes` }, { k: 'partition columns', v: info.partition_columns.join(', ') || '–' },
        { k: 'table features', v: info.table_features.join(', ') || '–' }, ...Object.entries(info.properties).map(([k, v]) => ({ k, v })),
      ]))),
    h('h2', {}, 'History'),
    h('div', { class: 'panel' }, grid([
      { key: 'version', label: 'Version', num: true }, { key: 'timestamp', label: 'Time', render: (r) => fmtTime(r.timestamp) }, { key: 'operation', label: 'Operation' },
      { key: 'operationParameters', label: 'Parameters', wrap: true }, { key: 'operationMetrics', label: 'Metrics', wrap: true },
    ], history)),
    h('h2', {}, 'Preview'),
    h('div', { class: 'panel' }, h('div', { class: 'filters' }, h('label', {}, 'Version ', vInput), h('button', { type: 'button', id: 'preview-go', onclick: preview }, 'Show')), previewBox),
    h('h2', {}, 'Change feed'),
    h('div', { class: 'panel' }, h('div', { class: 'filters' }, h('label', {}, 'From version ', fromInput), h('label', {}, 'to ', toInput), h('button', { type: 'button', id: 'cdf-go', onclick: changes }, 'Show changes'),
      h('span', { class: 'legend' }, ['insert', 'update_preimage', 'update_postimage', 'delete'].map((k) => h('span', {}, h('i', { class: `ct-${k}` }), k)))), changesBox),
  );
  await preview();
  if (info.properties['delta.enableChangeDataFeed'] === 'true') await changes();
  else changesBox.replaceChildren(h('p', { class: 'muted' }, 'The change data feed is off for this table (delta.enableChangeDataFeed).'));
}

route();
