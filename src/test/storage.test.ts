import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LocalObjectStore } from '../storage/local.js';
import { ObjectExistsError, ObjectNotFoundError } from '../errors.js';
import { tempDir } from './helpers.js';

test('local store: put, get, range, head, list in order, delete', async () => {
  const s = new LocalObjectStore(await tempDir());
  await s.put('_delta_log/00000000000000000001.json', 'b');
  await s.put('_delta_log/00000000000000000000.json', 'a');
  await s.put('_delta_log/_sidecars/x.parquet', 'c');
  await s.put('data/part-0.parquet', '0123456789');
  assert.equal(new TextDecoder().decode(await s.get('_delta_log/00000000000000000000.json')), 'a');
  assert.equal(new TextDecoder().decode(await s.getRange('data/part-0.parquet', 2, 5)), '234');
  assert.equal((await s.head('data/part-0.parquet'))?.size, 10);
  assert.equal(await s.head('nope'), null);
  const names = (await s.list('_delta_log/')).map((m) => m.path);
  assert.deepEqual(names, ['_delta_log/00000000000000000000.json', '_delta_log/00000000000000000001.json']);
  assert.deepEqual((await s.list('_delta_log/', { startAfter: '_delta_log/00000000000000000000.json' })).map((m) => m.path), ['_delta_log/00000000000000000001.json']);
  assert.deepEqual((await s.list('', { recursive: true })).map((m) => m.path), [
    '_delta_log/00000000000000000000.json', '_delta_log/00000000000000000001.json', '_delta_log/_sidecars/x.parquet', 'data/part-0.parquet',
  ]);
  await s.delete('data/part-0.parquet');
  await s.delete('data/part-0.parquet');
  await assert.rejects(s.get('data/part-0.parquet'), ObjectNotFoundError);
});

test('local store: putIfAbsent refuses the second writer and leaves the first content', async () => {
  const s = new LocalObjectStore(await tempDir());
  await s.putIfAbsent('_delta_log/00000000000000000000.json', 'first');
  await assert.rejects(s.putIfAbsent('_delta_log/00000000000000000000.json', 'second'), ObjectExistsError);
  assert.equal(new TextDecoder().decode(await s.get('_delta_log/00000000000000000000.json')), 'first');
  const leftovers = (await fs.readdir(path.join(s.root, '_delta_log'))).filter((n) => n.endsWith('.tmp'));
  assert.deepEqual(leftovers, []);
});

test('local store: putIfAbsent is exclusive across processes', async () => {
  const dir = await tempDir();
  const child = fileURLToPath(new URL('./fixtures/put-if-absent-child.js', import.meta.url));
  const procs = 4;
  const tries = 30;
  const results = await Promise.all(
    Array.from({ length: procs }, (_, i) =>
      new Promise<number>((resolve, reject) => {
        const p = fork(child, [dir, String(i), String(tries)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
        let out = '';
        p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`child exited ${code}`))));
      }),
    ),
  );
  // Each key was won by exactly one process, and the content is that winner's.
  assert.equal(results.reduce((a, b) => a + b, 0), tries);
  const s = new LocalObjectStore(dir);
  for (let k = 0; k < tries; k++) {
    const txt = new TextDecoder().decode(await s.get(`_delta_log/${String(k).padStart(20, '0')}.json`));
    assert.match(txt, /^writer \d+ key \d+$/);
  }
});

test('local store: keys may not leave the root', async () => {
  const s = new LocalObjectStore(await tempDir());
  await assert.rejects(s.get('../outside.parquet'), (e: unknown) => (e as { code?: string }).code === 'FLOE_PATH_OUTSIDE_TABLE');
  assert.throws(() => s.localPath('data/../../etc/passwd'), (e: unknown) => (e as { code?: string }).code === 'FLOE_PATH_OUTSIDE_TABLE');
});
