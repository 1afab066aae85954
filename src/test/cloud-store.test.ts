/**
 * Cloud storage units: URL parsing and store selection, the bounded LRU file cache, and the retry
 * rules of RemoteObjectStore (put-if-absent resolving an unknown outcome; typed errors that say
 * whether retrying is safe), on a scripted in-memory store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FloeError, ObjectExistsError, ObjectNotFoundError, StorageError } from '../errors.js';
import { FileCache } from '../storage/cache.js';
import { AzureBlobStore, parseAzureUrl } from '../storage/azure.js';
import { LocalObjectStore } from '../storage/local.js';
import type { ObjectMeta } from '../storage/object-store.js';
import { isCloudUrl, openStore, readPath, resolveLocation } from '../storage/open.js';
import { type Failure, type RawCall, RemoteObjectStore } from '../storage/remote.js';
import { parseS3Url } from '../storage/s3.js';
import { tempDir } from './helpers.js';

test('cloud URLs parse into account, container or bucket, and prefix', () => {
  assert.deepEqual(parseAzureUrl('abfss://data@acct.dfs.core.windows.net/lake/t1'), { account: 'acct', container: 'data', prefix: 'lake/t1', url: 'abfss://data@acct.dfs.core.windows.net/lake/t1' });
  assert.deepEqual(parseAzureUrl('az://data/lake/t1/'), { account: null, container: 'data', prefix: 'lake/t1', url: 'az://data/lake/t1/' });
  assert.equal(parseAzureUrl('azure://data/t').container, 'data');
  assert.deepEqual(parseS3Url('s3://bucket/a/b'), { bucket: 'bucket', prefix: 'a/b', url: 's3://bucket/a/b' });
  assert.equal(parseS3Url('s3a://bucket').prefix, '');
  assert.ok(isCloudUrl('abfss://x@y.dfs.core.windows.net/p') && isCloudUrl('s3a://b/p') && !isCloudUrl('/tmp/t') && !isCloudUrl('file:///tmp/t'));
  assert.equal(resolveLocation('s3://b/p'), 's3://b/p');
  assert.equal(resolveLocation('rel/t'), path.resolve('rel/t'));
  assert.throws(() => openStore('gs://bucket/t'), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_REMOTE_NOT_SUPPORTED');
  assert.ok(openStore('/tmp/x') instanceof LocalObjectStore);
});

test('Azure without credentials fails saying which settings to give', () => {
  const saved = { ...process.env };
  for (const k of ['AZURE_STORAGE_CONNECTION_STRING', 'AZURE_STORAGE_ACCOUNT_KEY', 'AZURE_STORAGE_SAS_TOKEN', 'AZURE_STORAGE_ACCOUNT_NAME']) delete process.env[k];
  try {
    assert.throws(() => openStore('az://data/t'), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_STORAGE_CREDENTIALS' && /AZURE_STORAGE_ACCOUNT_NAME/.test(e.message));
    // An account with no key, SAS or connection string authenticates with Azure AD (DefaultAzureCredential, azure-identity.test.ts).
    assert.equal((openStore('abfss://data@acct.dfs.core.windows.net/t') as AzureBlobStore).authSource, 'DefaultAzureCredential');
    assert.ok(openStore('abfss://data@acct.dfs.core.windows.net/t', { azure_storage_account_key: Buffer.from('k').toString('base64') }).root.startsWith('abfss://data@acct'));
  } finally {
    process.env = saved;
  }
});

test('the file cache evicts least-recently-used files over its limit, keeps pinned ones, refetches changed sizes', async () => {
  const dir = await tempDir();
  const cache = new FileCache(dir, 250, 0);
  let fetches = 0;
  const fetch = (n: number) => async (tmp: string) => {
    fetches++;
    await fs.writeFile(tmp, Buffer.alloc(n));
    return {};
  };
  const f = (k: string): string => path.join(dir, k);
  await cache.ensure(f('a'), { size: 100 }, fetch(100));
  await cache.ensure(f('b'), { size: 100 }, fetch(100));
  await cache.ensure(f('a'), { size: 100 }, fetch(100)); // hit: a is now the most recent
  assert.equal(fetches, 2);
  await cache.ensure(f('c'), { size: 100 }, fetch(100)); // 300 > 250: evicts b (least recently used)
  assert.equal(cache.bytes, 200);
  assert.ok(await fs.stat(f('a')).catch(() => null));
  assert.equal(await fs.stat(f('b')).catch(() => null), null);
  await cache.ensure(f('c'), { size: 120 }, fetch(120)); // a different size: stale copy, refetched
  assert.equal(fetches, 4);
  assert.equal((await fs.stat(f('c'))).size, 120);
  // Pinned (recently used) files are not evicted even over the limit.
  const pinned = new FileCache(await tempDir(), 50, 60_000);
  await pinned.ensure(path.join(pinned.dir, 'x'), { size: 100 }, fetch(100));
  await pinned.ensure(path.join(pinned.dir, 'y'), { size: 100 }, fetch(100));
  assert.equal(pinned.bytes, 200);
});

/** An in-memory remote store whose requests fail as scripted. */
class ScriptedStore extends RemoteObjectStore {
  readonly root = 'mem://t';
  protected readonly identity = `mem-${Math.random()}`;
  readonly objects = new Map<string, Buffer>();
  /** Per put-if-absent attempt: 'ok', 'applied-then-lost' (written, answer lost), 'lost' (not written, error), 'busy' (503). */
  script: ('ok' | 'applied-then-lost' | 'lost' | 'busy')[] = [];
  constructor(cacheDir: string, attempts = 3) {
    super({ cacheDir, maxAttempts: attempts, backoffMs: 1 });
  }
  protected classify(e: unknown): Failure {
    return (e as { kind: Failure }).kind ?? 'fatal';
  }
  protected async rawGet(key: string): Promise<Uint8Array> {
    const o = this.objects.get(key);
    if (!o) throw Object.assign(new Error('404'), { kind: 'notFound' });
    return o;
  }
  protected async rawPut(key: string, data: Uint8Array, ifAbsent: boolean): Promise<void> {
    const step = ifAbsent ? (this.script.shift() ?? 'ok') : 'ok';
    if (step === 'busy') throw Object.assign(new Error('503 ServerBusy'), { kind: 'throttled' });
    if (step === 'lost') throw Object.assign(new Error('ECONNRESET'), { kind: 'transient' });
    if (ifAbsent && this.objects.has(key)) throw Object.assign(new Error('412'), { kind: 'exists' });
    this.objects.set(key, Buffer.from(data));
    if (step === 'applied-then-lost') throw Object.assign(new Error('socket hang up'), { kind: 'transient' });
  }
  protected async rawHead(key: string): Promise<ObjectMeta | null> {
    const o = this.objects.get(key);
    return o ? { path: key, size: o.length, lastModified: 0 } : null;
  }
  protected async rawList(prefix: string, delimited: boolean): Promise<ObjectMeta[]> {
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix) && (!delimited || !k.slice(prefix.length).includes('/')))
      .map(([k, v]) => ({ path: k, size: v.length, lastModified: Date.now() }));
  }
  protected async rawDelete(key: string): Promise<void> {
    this.objects.delete(key);
  }
  protected async rawDownload(key: string, file: string): Promise<{ mtime?: number }> {
    await fs.writeFile(file, await this.rawGet(key));
    return {};
  }
  protected async rawUpload(key: string, file: string): Promise<void> {
    this.objects.set(key, await fs.readFile(file));
  }
  call2<T>(fn: (c: RawCall) => Promise<T>): Promise<T> {
    return this.call('op k', fn);
  }
}

test('put-if-absent: an attempt that landed but lost its answer is recognised on retry (our bytes); another writer\'s bytes are a conflict', async () => {
  const s = new ScriptedStore(await tempDir());
  s.script = ['applied-then-lost'];
  await s.putIfAbsent('_delta_log/0.json', 'mine');
  assert.equal(s.objects.get('_delta_log/0.json')!.toString(), 'mine');

  s.objects.set('_delta_log/1.json', Buffer.from('theirs'));
  s.script = ['lost'];
  await assert.rejects(s.putIfAbsent('_delta_log/1.json', 'mine'), ObjectExistsError);
  // Without an unknown outcome, "exists" is a plain conflict even if the bytes match.
  s.objects.set('_delta_log/2.json', Buffer.from('same'));
  await assert.rejects(s.putIfAbsent('_delta_log/2.json', 'same'), ObjectExistsError);
});

test('put-if-absent failures say whether retrying is safe', async () => {
  const s = new ScriptedStore(await tempDir(), 2);
  s.script = ['busy', 'busy'];
  await assert.rejects(s.putIfAbsent('_delta_log/5.json', 'x'), (e: unknown) => e instanceof StorageError && e.retrySafe && e.code === 'FLOE_STORAGE_UNAVAILABLE' && /retrying the operation is safe/.test(e.message));
  s.script = ['lost', 'lost'];
  await assert.rejects(s.putIfAbsent('_delta_log/6.json', 'x'), (e: unknown) => e instanceof StorageError && !e.retrySafe && e.code === 'FLOE_STORAGE_COMMIT_UNKNOWN' && /DESCRIBE HISTORY/.test(e.message));
  s.script = ['applied-then-lost', 'lost'];
  await s.putIfAbsent('_delta_log/7.json', 'x'); // the final read finds our bytes: it landed
  // Reads: not found is typed; fatal errors are not retried.
  await assert.rejects(s.get('nope'), ObjectNotFoundError);
  let n = 0;
  await assert.rejects(s.call2(async () => {
    n++;
    throw Object.assign(new Error('403 AuthorizationFailure'), { kind: 'fatal' });
  }), (e: unknown) => e instanceof StorageError && e.code === 'FLOE_STORAGE_REQUEST_FAILED');
  assert.equal(n, 1);
});

test('remote keys map to cache paths; ensureLocal downloads once and readPath names the copy', async () => {
  const s = new ScriptedStore(await tempDir());
  s.objects.set('part-1.parquet', Buffer.from('data'));
  const p = readPath(s, 'part-1.parquet')!;
  assert.ok(p.startsWith(s.cache.dir));
  await s.ensureLocal([{ path: 'part-1.parquet', size: 4 }]);
  assert.equal(await fs.readFile(p, 'utf8'), 'data');
  await s.delete('part-1.parquet');
  assert.equal(await fs.stat(p).catch(() => null), null, 'deleting the object drops its cached copy');
  assert.throws(() => s.cachePath('../escape'), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_PATH_OUTSIDE_TABLE');
});

test('a commit whose outcome is unknown keeps its data files (the commit may reference them); one that landed succeeds', async () => {
  const { Floe } = await import('../floe.js');
  const floe = await Floe.create();
  try {
    const s = new ScriptedStore(await tempDir(), 2);
    (floe as unknown as { storeFor: () => ScriptedStore }).storeFor = () => s;
    await (await floe.createDataFrame([{ id: 1 }])).write.delta('mem://t');
    const dataFiles = (): string[] => [...s.objects.keys()].filter((k) => k.endsWith('.parquet'));
    assert.equal(dataFiles().length, 1);
    // Every attempt of the commit is lost: outcome unknown, not safe to retry, files kept.
    s.script = ['lost', 'lost'];
    await assert.rejects((await floe.createDataFrame([{ id: 2 }])).write.delta('mem://t', { mode: 'append' }), (e: unknown) => e instanceof StorageError && !e.retrySafe && e.code === 'FLOE_STORAGE_COMMIT_UNKNOWN');
    assert.equal(dataFiles().length, 2, 'the staged data file was not deleted');
    floe.forgetLog('mem://t');
    assert.equal((await floe.snapshot('mem://t')).version, 0);
    // The first attempt landed but its answer was lost: the retry recognises the commit.
    s.script = ['applied-then-lost'];
    const r = await (await floe.createDataFrame([{ id: 3 }])).write.delta('mem://t', { mode: 'append' });
    assert.equal(r.version, 1);
    floe.forgetLog('mem://t');
    assert.deepEqual((await (await floe.read.delta('mem://t')).toArray()).map((x) => Number(x.id)).sort(), [1, 3]);
    // A plain failure before the commit (every upload attempt busy) is safe to retry and leaves no files.
    const before = dataFiles().length;
    const upload = (s as unknown as { rawUpload: (...a: unknown[]) => Promise<void> }).rawUpload;
    (s as unknown as { rawUpload: () => Promise<void> }).rawUpload = async () => {
      throw Object.assign(new Error('503'), { kind: 'throttled' });
    };
    await assert.rejects((await floe.createDataFrame([{ id: 4 }])).write.delta('mem://t', { mode: 'append' }), (e: unknown) => e instanceof StorageError && e.retrySafe);
    (s as unknown as { rawUpload: unknown }).rawUpload = upload;
    assert.equal(dataFiles().length, before);
  } finally {
    await floe.close();
  }
});
