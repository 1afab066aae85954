/** The README's TypeScript snippet and Quick start demo run as written. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const dist = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const repo = path.dirname(dist);

test('README TypeScript snippet runs', async () => {
  const readme = await fs.readFile(path.join(repo, 'README.md'), 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a ts snippet');
  const dir = await tempDir('floe-readme-');
  await fs.writeFile(path.join(dir, 'new.csv'), 'id,name,country\n5,Eve,UK\n');
  const code = m[1]!.replace("from 'floe'", `from ${JSON.stringify(path.join(dist, 'index.js'))}`);
  await fs.writeFile(path.join(dir, 'snippet.mjs'), code);
  const { stdout } = await run(process.execPath, ['snippet.mjs'], { cwd: dir });
  assert.match(stdout, /Ada/);
  assert.match(stdout, /CREATE TABLE/);
});

test('Quick start demo: a CDC job, idempotent on rerun', async () => {
  const dir = await tempDir('floe-demo-');
  const script = path.join(dist, 'examples', 'cdc-demo.js');
  const first = await run(process.execPath, [script, dir]);
  assert.match(first.stdout, /changes-2\.json: bronze v1 \(\+3 events\), silver v2 \(1 inserted, 1 updated, 1 deleted\)/);
  assert.match(first.stdout, /changes-3\.json: bronze v2 \(\+3 events\), silver v3 \(1 inserted, 1 updated, 0 deleted\)/);
  // The change feed shows the batch-2 delete of id 3 and the update of id 2 to its highest seq.
  assert.match(first.stdout, /\| 2 +\| delete +\| 3 +\| Linus/);
  assert.match(first.stdout, /\| 3 +\| update_postimage +\| 2 +\| Grace +\| Arlington/);
  // The silver table holds exactly the latest state per key (id 3 deleted; id 2 at seq 9 despite file order).
  assert.match(first.stdout, /\| 2 +\| Grace +\| Arlington +\| 9 +\|/);
  assert.doesNotMatch(first.stdout.split('as of version 1')[0]!, /Linus/);
  const second = await run(process.execPath, [script, dir]);
  assert.equal((second.stdout.match(/already applied, skipped/g) ?? []).length, 3);
});
