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

test('README TypeScript snippets run', async () => {
  const readme = await fs.readFile(path.join(repo, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 2, 'README has the API and AUTO CDC snippets');
  const outputs: string[] = [];
  for (const block of blocks) {
    const dir = await tempDir('floe-readme-');
    await fs.writeFile(path.join(dir, 'new.csv'), 'id,name,country\n5,Eve,UK\n');
    await fs.writeFile(path.join(dir, 'snippet.mjs'), block.replace("from 'floe'", `from ${JSON.stringify(path.join(dist, 'index.js'))}`));
    outputs.push((await run(process.execPath, ['snippet.mjs'], { cwd: dir })).stdout);
  }
  assert.match(outputs[0]!, /Ada/);
  assert.match(outputs[0]!, /CREATE TABLE/);
  // AUTO CDC SCD 2: Isabel's history closes at 5 and 6 (deleted), Raul stays current.
  assert.match(outputs[1]!, /\| 123 +\| Isabel +\| Monterrey +\| 1 +\| 5 +\|/);
  assert.match(outputs[1]!, /\| 123 +\| Isabel +\| Chihuahua +\| 5 +\| 6 +\|/);
  assert.match(outputs[1]!, /\| 124 +\| Raul +\| Oaxaca +\| 1 +\| NULL +\|/);
});

test('npm run example:merge: a hand-written MERGE CDC job, idempotent on rerun', async () => {
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

test('Quick start demo (npm run demo): the medallion pipeline, two updates, the second reads only the new file', async () => {
  const dir = await tempDir('floe-medallion-demo-');
  const pkg = JSON.parse(await fs.readFile(path.join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.demo!, /dist\/examples\/medallion\/run\.js$/);
  const { stdout } = await run(process.execPath, [path.join(dist, 'examples', 'medallion', 'run.js'), dir]);
  assert.match(stdout, /update 1: COMPLETED\n  bronze_events: 1966 rows, 34 dropped/);
  // Update 2 reads only the second file (500 events, 12 without an id).
  assert.match(stdout, /update 2: COMPLETED\n  bronze_events: 488 rows, 12 dropped\n  silver_customers: 243 rows \(226 upserted, 17 deleted\)/);
  // Silver's change feed for update 2 agrees with the flow's counts and with the time-travel counts.
  assert.match(stdout, /\| delete +\| 17 +\|/);
  assert.match(stdout, /\| insert +\| 23 +\|/);
  assert.match(stdout, /\| version 0 +\| 269 +\|\n\| latest +\| 275 +\|/);
  assert.equal((stdout.match(/^  [0-9a-f]{8} COMPLETED /gm) ?? []).length, 2);
  // Gold sums to silver's row count.
  const gold = [...stdout.matchAll(/^\| (DE|FR|JP|UK|US) +\| (\d+) +\|$/gm)].reduce((a, m) => a + Number(m[2]), 0);
  assert.equal(gold, 275);
  // The README's commands "on the demo's output" run as written (the demo's folder for ./floe-demo).
  const readme = await fs.readFile(path.join(repo, 'README.md'), 'utf8');
  const block = /For example, on the demo's output:\n+```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  const commands = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l.startsWith('npx floe '));
  assert.ok(commands.length >= 5);
  for (const c of commands) {
    const args = c.slice('npx floe '.length).split(/\s+/).map((a) => a.replace(/^floe-demo\//, `${dir}/`));
    const out = await run(process.execPath, [path.join(dist, 'cli', 'main.js'), ...args]);
    assert.ok(out.stdout.length > 0, c);
    if (args[0] === 'changes') assert.equal(out.stdout.trim().split('\n').length, 17 + 23 + 203 * 2, 'update 2: 17 deletes, 23 inserts, 203 updates');
  }
});

test('README pipeline SQL runs verbatim through floe pipelines run (SCD 2 users)', async () => {
  const readme = await fs.readFile(path.join(repo, 'README.md'), 'utf8');
  const sql = /```sql\n([\s\S]*?)```/.exec(readme)![1]!;
  const dir = await tempDir('floe-readme-pipeline-');
  await fs.mkdir(path.join(dir, 'transformations'));
  await fs.mkdir(path.join(dir, 'landing'));
  await fs.writeFile(path.join(dir, 'transformations', 'users.sql'), sql);
  await fs.writeFile(path.join(dir, 'pipeline.yml'), 'name: users\nwarehouse: ./warehouse\nlibraries:\n  - glob:\n      include: transformations/**\nconfiguration:\n  landing: ./landing\n');
  await fs.writeFile(path.join(dir, 'landing', 'a.json'), [
    { userId: 124, name: 'Raul', city: 'Oaxaca', operation: 'INSERT', sequenceNum: 1 },
    { userId: 123, name: 'Isabel', city: 'Monterrey', operation: 'INSERT', sequenceNum: 1 },
    { userId: 123, name: null, city: null, operation: 'DELETE', sequenceNum: 6 },
    { userId: 123, name: 'Isabel', city: 'Chihuahua', operation: 'UPDATE', sequenceNum: 5 },
  ].map((r) => JSON.stringify(r)).join('\n'));
  const cli = path.join(dist, 'cli', 'main.js');
  await run(process.execPath, [cli, 'pipelines', 'run'], { cwd: dir });
  const { stdout } = await run(process.execPath, [cli, 'sql', '--warehouse', './warehouse', '--format', 'csv', '-e', 'SELECT * FROM users ORDER BY userId, __START_AT'], { cwd: dir });
  assert.equal(stdout.trim(), 'userId,name,city,__START_AT,__END_AT\n123,Isabel,Monterrey,1,5\n123,Isabel,Chihuahua,5,6\n124,Raul,Oaxaca,1,');
});
