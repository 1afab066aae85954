/**
 * `floe changes PATH --from V|TS [--to V|TS] [--where SQL] [--limit N] --format table|csv|json`:
 * version and timestamp bounds, the three output formats, ordering, and errors (exit 1 with
 * `error [CODE] …` on stderr; usage errors such as a missing --from exit 2).
 * Spawns the compiled CLI next to this compiled test file.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { isRemoteStore, locJoin, newRoot } from './store.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function floe(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await floe(...args);
  assert.equal(r.code, 0, `floe ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, '', 'no stderr on success');
  return r.stdout;
}

async function fails(code: string, ...args: string[]): Promise<void> {
  const r = await floe(...args);
  assert.equal(r.code, 1, `floe ${args.join(' ')} should exit 1: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`(^|\\n)error \\[${code}\\] `), r.stderr);
}

async function usage(...args: string[]): Promise<string> {
  const r = await floe(...args);
  assert.equal(r.code, 2, `floe ${args.join(' ')} should exit 2: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, /Usage:/);
  return r.stderr;
}

type Row = Record<string, unknown>;

function jsonLines(out: string): Row[] {
  assert.ok(out === '' || out.endsWith('\n'), 'output ends with a newline');
  return out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row);
}

const RANK: Record<string, number> = { delete: 0, update_preimage: 1, update_postimage: 2, insert: 3 };
/** Rows come ordered by version, then delete < update_preimage < update_postimage < insert. */
function assertOrdered(rows: Row[]): void {
  const k = (r: Row): number => Number(r._commit_version) * 10 + RANK[String(r._change_type)]!;
  for (let i = 1; i < rows.length; i++) assert.ok(k(rows[i - 1]!) <= k(rows[i]!), `row ${i} out of order: ${JSON.stringify(rows)}`);
}

const brief = (rows: Row[]): string[] => rows.map((r) => `${String(r._commit_version)}:${String(r._change_type)}:${String(r.id)}:${String(r.v)}`).sort();

let dir: string;
let table: string;
let noFeed: string;
const ts: number[] = [];

/** v0 create ids 0..2, v1 update id 1, v2 delete id 0, v3 append id 3; commits ≥ 25 ms apart. */
before(async () => {
  dir = await newRoot('floe-cli-changes-');
  table = locJoin(dir, 'feed');
  noFeed = locJoin(dir, 'plain');
  const s = await Floe.create({ threads: 2 });
  try {
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 25));
    await s.duckdbSql("SELECT range::BIGINT AS id, range::INTEGER AS v, 'x,\"y\"' AS note FROM range(3)").write.delta(table, { properties: { 'delta.enableChangeDataFeed': 'true' } });
    await pause();
    const t = await DeltaTable.forPath(s, table);
    await t.update({ condition: 'id = 1', set: { v: '10' } });
    await pause();
    await t.delete('id = 0');
    await pause();
    await s.duckdbSql("SELECT 3::BIGINT AS id, 3::INTEGER AS v, 'z' AS note").write.delta(table, { mode: 'append' });
    for (const h of (await t.history()).reverse()) ts.push(Date.parse(h.timestamp));
    await s.duckdbSql('SELECT 1::BIGINT AS id').write.delta(noFeed);
  } finally {
    await s.close();
  }
  assert.equal(ts.length, 4);
});

after(async () => {
  if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
});

test('changes --from/--to versions, --format json', async () => {
  const all = jsonLines(await ok('changes', table, '--from', '0', '--format', 'json'));
  assertOrdered(all);
  assert.deepEqual(brief(all), ['0:insert:0:0', '0:insert:1:1', '0:insert:2:2', '1:update_postimage:1:10', '1:update_preimage:1:1', '2:delete:0:0', '3:insert:3:3'].sort());
  assert.deepEqual(Object.keys(all[0]!), ['id', 'v', 'note', '_change_type', '_commit_version', '_commit_timestamp']);
  assert.equal(all[0]!.note, 'x,"y"');
  for (const r of all) assert.equal(Date.parse(String(r._commit_timestamp).replace(' ', 'T').replace(/\+00$/, 'Z')), ts[Number(r._commit_version)], 'commit timestamp');

  const mid = jsonLines(await ok('changes', table, '--from', '1', '--to', '2', '--format', 'json'));
  assertOrdered(mid);
  assert.deepEqual(brief(mid), ['1:update_preimage:1:1', '1:update_postimage:1:10', '2:delete:0:0'].sort());
  assert.deepEqual(mid.map((r) => r._change_type), ['update_preimage', 'update_postimage', 'delete']);
  const one = jsonLines(await ok('changes', table, '--from', '3', '--to', '3', '--format', 'json'));
  assert.deepEqual(brief(one), ['3:insert:3:3']);
  // --to past the latest version is clamped; --where and --limit apply to the feed.
  assert.equal(jsonLines(await ok('changes', table, '--from', '2', '--to', '99', '--format', 'json')).length, 2);
  const filtered = jsonLines(await ok('changes', table, '--from', '0', '--where', "_change_type = 'insert'", '--limit', '2', '--format', 'json'));
  assert.equal(filtered.length, 2);
  assert.ok(filtered.every((r) => r._change_type === 'insert' && r._commit_version === '0'));
});

test('changes --from/--to timestamps (exact instants inclusive, instants between commits)', async () => {
  const iso = (ms: number): string => new Date(ms).toISOString();
  const exact = jsonLines(await ok('changes', table, '--from', iso(ts[1]!), '--to', iso(ts[2]!), '--format', 'json'));
  assert.deepEqual([...new Set(exact.map((r) => r._commit_version))], ['1', '2']);
  // 'YYYY-MM-DD HH:MM:SS.mmm' is UTC; one instant after v1 and one before v3 give version 2 only.
  const spaced = (ms: number): string => iso(ms).replace('T', ' ').replace('Z', '');
  const between = jsonLines(await ok('changes', table, '--from', spaced(ts[1]! + 1), '--to', spaced(ts[3]! - 1), '--format', 'json'));
  assert.deepEqual(brief(between), ['2:delete:0:0']);
  // A version start with a timestamp end.
  const mixed = jsonLines(await ok('changes', table, '--from', '0', '--to', iso(ts[0]!), '--format', 'json'));
  assert.deepEqual([...new Set(mixed.map((r) => r._commit_version))], ['0']);
  // Both bounds between the same two commits: nothing, no error.
  assert.equal(await ok('changes', table, '--from', iso(ts[1]! + 1), '--to', iso(ts[2]! - 1), '--format', 'json'), '');
});

test('changes --format csv and table', async () => {
  const csv = await ok('changes', table, '--from', '1', '--to', '2', '--format', 'csv');
  const lines = csv.trimEnd().split('\n');
  assert.equal(lines[0], 'id,v,note,_change_type,_commit_version,_commit_timestamp');
  assert.equal(lines.length, 4);
  const stamp = (v: number): string => new Date(ts[v]!).toISOString().replace('T', ' ').replace(/\.?0*Z$/, '');
  assert.ok(lines[1]!.startsWith('1,1,"x,""y""",update_preimage,1,'), lines[1]);
  assert.ok(lines[2]!.startsWith('1,10,"x,""y""",update_postimage,1,'), lines[2]);
  assert.ok(lines[3]!.startsWith('0,0,"x,""y""",delete,2,'), lines[3]);
  assert.ok(lines[1]!.includes(stamp(1)), `${lines[1]} has ${stamp(1)}`);

  const tbl = await ok('changes', table, '--from', '0');
  const rows = tbl.trimEnd().split('\n');
  assert.match(rows[0]!, /^\+-+\+/);
  assert.match(rows[1]!, /^\| id +\| v +\| note +\| _change_type +\| _commit_version +\| _commit_timestamp +\|$/);
  assert.equal(rows.length, 4 + 7, 'borders, header and 7 change rows');
  assert.ok(rows.slice(3, -1).every((l) => /^\| \d+ +\| \d+ +\| (x,"y"|z) +\|/.test(l)));
  // The default table output stops at 20 rows; --limit overrides it.
  const limited = (await ok('changes', table, '--from', '0', '--limit', '3', '--format', 'table')).trimEnd().split('\n');
  assert.equal(limited.length, 4 + 3);
});

test('changes errors exit 1 with the code on stderr', async () => {
  await Promise.all([
    fails('DELTA_CDC_START_VERSION_AFTER_LATEST', 'changes', table, '--from', '9'),
    fails('DELTA_INVALID_CDC_RANGE', 'changes', table, '--from', '2', '--to', '1'),
    fails('DELTA_MISSING_CHANGE_DATA', 'changes', noFeed, '--from', '0'),
    fails('DELTA_TABLE_NOT_FOUND', 'changes', locJoin(dir, 'nothing'), '--from', '0'),
    fails('DELTA_TIMESTAMP_GREATER_THAN_COMMIT', 'changes', table, '--from', new Date(ts[3]! + 60_000).toISOString()),
    fails('FLOE_INVALID_ARGUMENT', 'changes', table, '--from', 'yesterday-ish'),
  ]);
  const r = await floe('changes', table, '--from', '9', '--format', 'json');
  assert.match(r.stderr, /startingVersion 9 is after the latest version 3/);
});

test('changes usage errors exit 2: missing --from, missing PATH, bad --format', async () => {
  const [a] = await Promise.all([
    usage('changes', table),
    usage('changes', '--from', '0'),
    usage('changes', table, '--from', '0', '--format', 'xml'),
    usage('changes', table, '--from', '0', '--limit', 'many'),
  ]);
  assert.match(a, /--from/);
});
