/**
 * The monitoring page in headless Chromium (Debian's `chromium`, driven by playwright-core), after
 * a pipeline run: the graph shows every dataset with the right edges and row counts, the failed flow
 * is red with its error, the change-feed view shows the right rows with their change types, the event
 * log filters and updates live, and no page breaks the Content-Security-Policy. Screenshots of the
 * main pages go to `test-artifacts/ui/` (gitignored). Skips with a notice when no Chromium is found
 * (`FLOE_CHROMIUM`, else `/usr/bin/chromium`).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { Floe } from '../floe.js';
import { startUiServer, type UiServer } from '../ui/server.js';
import { tempDir } from './helpers.js';
import { type ShopFixture, shopFixture } from './ui-fixture.js';

// Page-side code in $eval / waitForFunction runs in the browser (the project compiles without the DOM lib).
declare const document: { querySelectorAll(s: string): ArrayLike<{ getAttribute(n: string): string | null }> & Iterable<{ getAttribute(n: string): string | null }>; documentElement: { getAttribute(n: string): string | null } };
declare function getComputedStyle(e: unknown): { stroke: string; backgroundColor: string };

// FLOE_CHROMIUM names the browser (set it empty to skip these tests); else Debian's chromium.
const CHROMIUM = (process.env.FLOE_CHROMIUM !== undefined ? [process.env.FLOE_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser']).find((p) => p && existsSync(p));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/ui', import.meta.url));
if (!CHROMIUM) console.log('# skipping the browser tests of floe ui: no Chromium found (apt-get install chromium, or set FLOE_CHROMIUM)');

let floe: Floe;
let dir: string;
let fx: ShopFixture;
let ui: UiServer;
let browser: Browser;
const problems: string[] = [];

before(async () => {
  if (!CHROMIUM) return;
  const { chromium } = await import('playwright-core');
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-ui-browser-');
  fx = await shopFixture(floe, dir);
  ui = await startUiServer({ warehouse: fx.warehouse, port: 0, floe, pollMs: 150 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  await fs.mkdir(ARTIFACTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await ui?.close();
  await floe?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function open(hash: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, colorScheme });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${hash}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${hash}: ${e.message}`));
  await page.goto(`${ui.url}${hash}`);
  return page;
}
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

test('browser: the graph shows every dataset with its kind, edges and row counts; the failed flow is red with its error', { skip: !CHROMIUM }, async () => {
  const page = await open('#/p/shop/graph');
  await page.waitForSelector('g.node[data-node="strict"]');
  const nodes = await page.$$eval('g.node', (els) => els.map((e) => ({ name: e.getAttribute('data-node'), kind: e.getAttribute('data-kind'), state: e.getAttribute('data-state'), rows: e.getAttribute('data-rows'), text: e.textContent })));
  const r2 = fx.runs[1]!;
  const by = Object.fromEntries(nodes.map((n) => [n.name, n]));
  assert.deepEqual(Object.keys(by).sort(), ['after_strict', 'bronze', 'gold', fx.source, 'silver', 'strict'].sort());
  for (const name of ['bronze', 'silver', 'gold', 'strict', 'after_strict']) {
    assert.equal(by[name]!.rows, String(r2.flows[name]!.numOutputRows), name);
    assert.match(by[name]!.text!, new RegExp(`${r2.flows[name]!.numOutputRows} rows`), name);
  }
  assert.deepEqual([by.bronze!.kind, by.silver!.kind, by.gold!.kind, by.after_strict!.kind, by[fx.source]!.kind], ['streaming_table', 'streaming_table', 'materialized_view', 'materialized_view', 'source']);
  const edges = await page.$$eval('path.edge', (els) => els.map((e) => e.getAttribute('data-edge')).sort());
  assert.deepEqual(edges, [`${fx.source}->bronze`, 'bronze->silver', 'silver->gold', `${fx.source}->strict`, 'strict->after_strict'].sort());
  // Colours by health (light theme): the failed flow red, completed ones green, the skipped one amber.
  const stroke = (n: string) => page.$eval(`g.node[data-node="${n}"] rect`, (r) => getComputedStyle(r).stroke);
  assert.equal(by.strict!.state, 'FAILED');
  assert.equal(await stroke('strict'), 'rgb(198, 40, 40)');
  assert.equal(await stroke('silver'), 'rgb(31, 138, 76)');
  assert.equal(await stroke('after_strict'), 'rgb(168, 100, 0)');
  assert.match(await page.$eval('g.node[data-node="strict"] text.err', (e) => e.textContent ?? ''), /Flow 'strict' failed/);
  const errText = await page.$eval('[data-failed="strict"]', (e) => e.textContent ?? '');
  assert.match(errText, /\[EXPECTATION_VIOLATION\] Flow 'strict' failed: the expectation 'small_amount' on 'strict' \(amount < 100\) was violated by 1 of 3 rows/);
  await shot(page, 'graph-light');
  // The theme toggle switches to dark (and is remembered).
  await page.click('#theme');
  assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'dark');
  assert.equal(await stroke('strict'), 'rgb(255, 123, 123)');
  await shot(page, 'graph-dark');
  await page.close();
  const dark = await open('#/p/shop/graph', 'dark');
  await dark.waitForSelector('g.node[data-node="strict"]');
  assert.equal(await dark.$eval('g.node[data-node="strict"] rect', (r) => getComputedStyle(r).stroke), 'rgb(255, 123, 123)', 'prefers-color-scheme: dark');
  await dark.close();
});

test('browser: clicking a node opens the table; the change feed shows the right rows with change types highlighted', { skip: !CHROMIUM }, async () => {
  const page = await open('#/p/shop/graph');
  await page.click('g.node[data-node="silver"]');
  await page.waitForSelector('#changes tbody tr');
  assert.match(page.url(), /#\/t\/default\/silver$/);
  // A table without a description shows none (not the word "null").
  assert.doesNotMatch(await page.$eval('main', (m) => m.textContent ?? ''), /^Table default\.silver version \d+null/);
  const v = Number(await page.inputValue('#cdf-to'));
  await page.fill('#cdf-from', String(v));
  await page.click('#cdf-go');
  await page.waitForFunction(() => document.querySelectorAll('#changes tbody tr').length === 4);
  const rows = await page.$$eval('#changes tbody tr', (trs) => trs.map((tr) => ({ type: tr.getAttribute('data-change-type'), cls: tr.className, cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })));
  const got = rows.map((r) => [r.type, r.cells[0], r.cells[1], r.cls]).sort();
  assert.deepEqual(got, [
    ['delete', '2', '20', 'ct-delete'],
    ['insert', '4', '150', 'ct-insert'],
    ['update_postimage', '1', '15', 'ct-update_postimage'],
    ['update_preimage', '1', '10', 'ct-update_preimage'],
  ]);
  const bg = await page.$eval('#changes tr.ct-delete td', (td) => getComputedStyle(td).backgroundColor);
  assert.equal(bg, 'rgb(253, 230, 230)', 'deletes highlighted');
  // A preview of an older version.
  // (Version 0: silver as the first update created it.)
  await page.fill('#preview-version', '0');
  await page.click('#preview-go');
  // The box first shows the latest version (also 3 rows): wait for version 0's row of id 2.
  await page.waitForFunction(() => [...document.querySelectorAll('#preview tbody tr')].some((tr) => (tr as unknown as { textContent: string }).textContent === '220'));
  const preview = await page.$$eval('#preview tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent).join(',')).sort());
  assert.deepEqual(preview, ['1,10', '2,20', '3,30']);
  await shot(page, 'table-silver');
  await page.close();
});

test('browser: updates timeline, flows, data quality, event log with filters and live updates', { skip: !CHROMIUM }, async () => {
  const page = await open('#/');
  await page.waitForSelector('[data-pipeline="shop"]');
  await shot(page, 'overview');
  await page.goto(`${ui.url}#/p/shop/updates`);
  await page.waitForSelector('#timeline g[data-update]');
  assert.equal(await page.$$eval('#timeline g[data-update]', (g) => g.length), 2);
  assert.equal(await page.$eval(`tr[data-update="${fx.runs[1]!.updateId}"] .badge`, (e) => e.textContent), 'FAILED');
  await shot(page, 'updates');
  await page.goto(`${ui.url}#/p/shop/flows`);
  await page.waitForSelector('[data-flow="bronze"] svg rect');
  assert.equal(await page.$$eval('[data-flow="bronze"] svg rect', (r) => r.length), 2, 'one bar per update');
  await shot(page, 'flows');
  await page.goto(`${ui.url}#/p/shop/quality`);
  await page.waitForSelector('[data-expectation="bronze.has_id"]');
  assert.match(await page.$eval('[data-expectation="bronze.has_id"]', (e) => e.textContent ?? ''), /drop/);
  await shot(page, 'quality');
  // The link a notification carries: the update's events.
  const u1 = fx.runs[0]!.updateId;
  await page.goto(`${ui.url}#/p/shop/events/${u1}`);
  await page.waitForFunction((u) => {
    const trs = [...document.querySelectorAll('#events tbody tr')];
    return trs.length > 5 && trs.every((tr) => tr.getAttribute('data-update') === u);
  }, u1);
  await page.goto(`${ui.url}#/p/shop/events`);
  await page.waitForFunction((u) => [...document.querySelectorAll('#events tbody tr')].some((tr) => tr.getAttribute('data-update') !== u), u1);
  await page.waitForSelector('#events tbody tr');
  await page.selectOption('#f-level', 'ERROR');
  await page.waitForFunction(() => {
    const trs = [...document.querySelectorAll('#events tbody tr')];
    return trs.length > 0 && trs.every((tr) => tr.getAttribute('data-level') === 'ERROR');
  });
  assert.ok((await page.$$('#events tbody tr')).length >= 2);
  await page.selectOption('#f-level', '');
  // The unfiltered list has reloaded (else the count below is the ERROR rows' and the reload alone passes).
  await page.waitForFunction(() => [...document.querySelectorAll('#events tbody tr')].some((tr) => tr.getAttribute('data-level') !== 'ERROR'));
  await page.waitForSelector('#live.on');
  const before = (await page.$$('#events tbody tr')).length;
  const r3 = await fx.rerun();
  await page.waitForFunction((n) => document.querySelectorAll('#events tbody tr').length > n + 5, before, { timeout: 20_000 });
  assert.ok(await page.$('#events tbody tr.new'), 'new events flagged');
  assert.ok(r3.updateId);
  await shot(page, 'events');
  await page.close();
  assert.deepEqual(problems, [], 'no console error, no CSP violation');
});
