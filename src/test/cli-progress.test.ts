/**
 * Progress of long CLI work: structured lines on stderr when it is not a terminal (JSON with --json),
 * an animated line cleared at the end on a terminal, nothing with --quiet; stdout stays the result.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProgress } from '../cli/progress.js';
import { tempDir } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
let dir: string;
before(async () => {
  dir = await tempDir('floe-cli-progress-');
  await fs.writeFile(path.join(dir, 'a.csv'), 'id,name\n1,a\n2,b\n');
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

test('write, optimize, vacuum: structured progress lines on stderr when not a terminal; --json; --quiet', () => {
  const t = path.join(dir, 't');
  const w = cli('write', t, '--from', path.join(dir, 'a.csv'));
  assert.equal(w.status, 0, w.stderr);
  assert.match(w.stdout, /^wrote version 0: 2 rows in 1 files\n$/);
  const lines = w.stderr.trim().split('\n');
  assert.equal(lines.length, 2, w.stderr);
  assert.equal(lines[0], `floe: op=write table=${t} phase=start`);
  assert.match(lines[1]!, new RegExp(`^floe: op=write table=${t.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} phase=done elapsed_ms=\\d+ version=0 rows=2 files=1$`));

  const j = cli('write', t, '--from', path.join(dir, 'a.csv'), '--json');
  assert.equal(j.status, 0, j.stderr);
  assert.equal((JSON.parse(j.stdout) as { version: number }).version, 1, 'stdout is the JSON result');
  const prog = j.stderr.trim().split('\n').map((l) => JSON.parse(l) as { progress: Record<string, unknown> });
  assert.deepEqual(prog.map((p) => [p.progress.op, p.progress.phase]), [['write', 'start'], ['write', 'done']]);
  assert.equal(prog[1]!.progress.rows, 2);

  const q = cli('optimize', t, '--quiet');
  assert.deepEqual([q.status, q.stdout, q.stderr], [0, '', '']);
  const v = cli('vacuum', t, '--dry-run', '--retain', '200');
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stderr, /op=vacuum .*phase=done elapsed_ms=\d+ files=0 dry_run=true/);

  const bad = cli('write', path.join(dir, 'u'), '--from', path.join(dir, 'missing.csv'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /phase=failed/);
  assert.match(bad.stderr, /\nerror /);
  const conflict = cli('write', t, '--from', path.join(dir, 'a.csv'), '--json', '--format', 'table');
  assert.equal(conflict.status, 2);
});

test('progress on a terminal: an animated line with the elapsed time, cleared at the end', async () => {
  let written = '';
  const stream = { isTTY: true, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
  const p = startProgress('optimize', 'tbl', { stream, intervalMs: 5 });
  await new Promise((r) => setTimeout(r, 40));
  p.end(true);
  const frames = written.split('\r').filter(Boolean);
  assert.ok(frames.length >= 3, written);
  assert.match(frames[0]!, /^. optimize tbl … \d+\.\d s\x1b\[K$/);
  assert.equal(frames[frames.length - 1], '\x1b[K', 'cleared');
  let quiet = '';
  startProgress('x', 'y', { quiet: true, stream: { isTTY: true, write: (s: string) => ((quiet += s), true) } as unknown as NodeJS.WriteStream }).end(true);
  assert.equal(quiet, '');
});
