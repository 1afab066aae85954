/**
 * The store switch for table tests. `FLOE_TEST_STORE` chooses where test tables live:
 *  - `local` (default): a fresh temp folder;
 *  - `azurite`: `abfss://tables@devstoreaccount1.dfs.core.windows.net/…` in an Azurite started once per test file on loopback (in memory);
 *  - `s3`: `s3://tables/…` in the in-test S3 server (cloud-helpers.ts), started once per test file.
 * Credentials go into the environment variables the stores read (`AZURE_STORAGE_CONNECTION_STRING`,
 * `AWS_ENDPOINT_URL`, …), so a plain `Floe.create()` and CLI child processes reach the store too.
 * The helpers below peek at a table's objects (`_delta_log/` JSON, `_change_data/`, data and
 * deletion-vector files) through the store, so tests do not use `fs` on table paths.
 */
import { after, type TestContext } from 'node:test';
import { existsSync, promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/object-store.js';
import { AZURITE_ACCOUNT, type Azurite, type S3Server, startAzurite, startS3Server } from './cloud-helpers.js';
import { copyTable, corpusTable, tempDir } from './helpers.js';

export type TestStoreName = 'local' | 'azurite' | 's3';

function storeFromEnv(): TestStoreName {
  const v = (process.env.FLOE_TEST_STORE ?? 'local').toLowerCase();
  if (v === '' || v === 'local') return 'local';
  if (v === 'azurite' || v === 'azure') return 'azurite';
  if (v === 's3') return 's3';
  throw new Error(`FLOE_TEST_STORE=${v}: use local, azurite or s3`);
}

/** Where this run's test tables live. */
export const TEST_STORE: TestStoreName = storeFromEnv();
export const isRemoteStore = TEST_STORE !== 'local';

const CONTAINER = 'tables';
let azurite: Azurite | null = null;
let s3: S3Server | null = null;
let starting: Promise<void> | null = null;
let cacheRoot: string | null = null;

if (isRemoteStore) {
  after(async () => {
    await azurite?.stop();
    await s3?.stop();
    azurite = null;
    s3 = null;
  });
  process.on('exit', () => {
    if (cacheRoot) rmSync(cacheRoot, { recursive: true, force: true });
  });
}

/** Starts the store once per process (no-op for local files) and points the environment at it. */
export async function startTestStore(): Promise<void> {
  if (!isRemoteStore) return;
  starting ??= (async () => {
    cacheRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'floe-test-cache-'));
    process.env.FLOE_CACHE_DIR = cacheRoot;
    if (TEST_STORE === 'azurite') {
      azurite = await startAzurite([CONTAINER]);
      if (!azurite) throw new Error('FLOE_TEST_STORE=azurite but the azurite dev dependency is not installed (npm install)');
      process.env.AZURE_STORAGE_CONNECTION_STRING = azurite.connectionString;
    } else {
      s3 = await startS3Server();
      process.env.AWS_ENDPOINT_URL = s3.endpoint;
      process.env.AWS_ACCESS_KEY_ID = 'test';
      process.env.AWS_SECRET_ACCESS_KEY = 'test';
      process.env.AWS_REGION = 'us-east-1';
    }
  })();
  await starting;
}

/**
 * A fresh, not yet existing table location: `<temp dir>/<name>` on local files, or a unique
 * `az://tables/<uuid>/<name>` (`s3://…`) on a remote store.
 */
export async function newLocation(name = 't', prefix = 'floe-test-'): Promise<string> {
  if (!isRemoteStore) return path.join(await tempDir(prefix), name);
  await startTestStore();
  return `${remoteRoot()}/${prefix.replace(/[^a-zA-Z0-9-]/g, '')}${randomUUID()}/${encodeKeySegment(name)}`;
}

/** A fresh folder-like location under which tests create several tables with `locJoin`. */
export async function newRoot(prefix = 'floe-test-'): Promise<string> {
  if (!isRemoteStore) return tempDir(prefix);
  await startTestStore();
  return `${remoteRoot()}/${prefix.replace(/[^a-zA-Z0-9-]/g, '')}${randomUUID()}`;
}

/** The canonical URL form (floe reports Azure locations as abfss://container@account.dfs.core.windows.net/…). */
function remoteRoot(): string {
  return TEST_STORE === 'azurite' ? `abfss://${CONTAINER}@${AZURITE_ACCOUNT}.dfs.core.windows.net` : `s3://${CONTAINER}`;
}

function encodeKeySegment(s: string): string {
  // Object keys take any characters; URLs need `%`, `#`, `?` and spaces escaped.
  return s.replace(/[%#? ]/g, (c) => encodeURIComponent(c));
}

/** `path.join` for local paths, `/`-join for URLs. */
export function locJoin(base: string, ...parts: string[]): string {
  if (!/^[a-z0-9]+:\/\//i.test(base)) return path.join(base, ...parts);
  return [base.replace(/\/+$/, ''), ...parts.map(encodeKeySegment)].join('/');
}

/** The session storage options for the test store (credentials also sit in the environment). */
export function testStorageOptions(): Record<string, string> {
  if (TEST_STORE === 'azurite' && azurite) return { azure_storage_connection_string: azurite.connectionString };
  if (TEST_STORE === 's3' && s3) return { aws_endpoint_url: s3.endpoint, aws_access_key_id: 'test', aws_secret_access_key: 'test', aws_region: 'us-east-1' };
  return {};
}

const stores = new Map<string, ObjectStore>();

/** The ObjectStore of a table location (one per location and process). */
export function storeAt(location: string): ObjectStore {
  let s = stores.get(location);
  if (!s) stores.set(location, (s = openStore(location, testStorageOptions())));
  return s;
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function eachLimit<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(n, queue.length) }, async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  }));
}

/** Keys under `prefix` (e.g. `_delta_log/`), sorted; recursive unless told otherwise. */
export async function listKeys(location: string, prefix = '', recursive = true): Promise<string[]> {
  return (await storeAt(location).list(prefix, { recursive })).map((m) => m.path).sort();
}

/** Names directly in a table folder (`_delta_log`, `_change_data`, or '' for the root), like `fs.readdir`; object stores have no empty folders. */
export async function listNames(location: string, dir: string): Promise<string[]> {
  const d = dir.replace(/\/+$/, '');
  const prefix = d ? `${d}/` : '';
  const keys = await listKeys(location, prefix, true);
  return [...new Set(keys.map((k) => k.slice(prefix.length).split('/')[0]!))].sort();
}

export async function readText(location: string, key: string): Promise<string> {
  return Buffer.from(await storeAt(location).get(key)).toString('utf8');
}

export async function readBytes(location: string, key: string): Promise<Uint8Array> {
  return storeAt(location).get(key);
}

export async function readJson<T = unknown>(location: string, key: string): Promise<T> {
  return JSON.parse(await readText(location, key)) as T;
}

/** The actions (parsed lines) of one commit file. */
export async function commitJson(location: string, version: number): Promise<Record<string, any>[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await readText(location, `_delta_log/${String(version).padStart(20, '0')}.json`);
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * True when nothing is at `key` ('' = the location itself): no file or folder on local files, no
 * object at or under it in a remote store.
 */
export async function absent(location: string, key = ''): Promise<boolean> {
  if (!/^[a-z0-9]+:\/\//i.test(location)) return !existsSync(key ? path.join(location, ...key.split('/')) : location);
  const store = storeAt(location);
  if (key && (await store.head(key))) return false;
  return (await store.list(key ? `${key.replace(/\/+$/, '')}/` : '', { recursive: true })).length === 0;
}

export async function exists(location: string, key: string): Promise<boolean> {
  return (await storeAt(location).head(key)) !== null;
}

export async function removeKey(location: string, key: string): Promise<void> {
  await storeAt(location).delete(key);
}

/** Writes an object as is (tests that plant foreign or damaged log entries). */
export async function writeRaw(location: string, key: string, data: Uint8Array | string): Promise<void> {
  await storeAt(location).put(key, data);
}

/** Creates an object only if absent (put-if-absent: a hand-written commit that must not overwrite one). */
export async function writeRawIfAbsent(location: string, key: string, data: Uint8Array | string): Promise<void> {
  await storeAt(location).putIfAbsent(key, data);
}

/** Copies every object of a table to another location (e.g. a fresh `newLocation()`). */
export async function copyLocation(from: string, to: string): Promise<void> {
  const src = storeAt(from);
  const dst = storeAt(to);
  await eachLimit(await listKeys(from), 8, async (k) => dst.put(k, await src.get(k)));
}

/**
 * A local folder with the table's files, for readers that only take local paths (the protocol
 * checker, raw DuckDB `read_parquet`): the location itself on local files, a fresh download otherwise
 * (of the keys under `prefix` only, when given).
 */
export async function localCopy(location: string, prefix = ''): Promise<string> {
  if (!/^[a-z0-9]+:\/\//i.test(location)) return location;
  const dir = await tempDir('floe-mirror-');
  const src = storeAt(location);
  await eachLimit(await listKeys(location, prefix), 8, async (k) => {
    const file = path.join(dir, ...k.split('/'));
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, await src.get(k));
  });
  return dir;
}

/**
 * Skips a test that only makes sense on local files, printing why; returns true when skipped.
 * `if (localOnly(t, 'kill -9 of a local writer')) return;`
 */
export function localOnly(t: TestContext, reason: string): boolean {
  if (!isRemoteStore) return false;
  console.log(`local-only (${TEST_STORE} store): ${t.name}: ${reason}`);
  t.skip(`local-only: ${reason}`);
  return true;
}

/** A label for test output. */
export function storeLabel(): string {
  return `[store: ${TEST_STORE}]`;
}

/** Uploads a local table folder's files to a fresh location in the test store (keys = relative file paths). */
export async function uploadTable(dir: string, name = 't'): Promise<string> {
  const loc = await newLocation(name, 'floe-up-');
  const dst = storeAt(loc);
  const files: [string, string][] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), key);
      else if (e.isFile()) files.push([key, path.join(d, e.name)]);
    }
  };
  await walk(dir, '');
  await eachLimit(files, 8, async ([key, file]) => dst.put(key, await fs.readFile(file)));
  return loc;
}

const uploaded = new Map<string, Promise<string>>();

/**
 * A read-only table from the local corpus (or any local folder) where the test store can read it:
 * the folder itself on local files, an upload made once per process otherwise. Never write to it.
 */
export async function readOnlyTable(dir: string): Promise<string> {
  if (!isRemoteStore) return dir;
  let p = uploaded.get(dir);
  if (!p) uploaded.set(dir, (p = uploadTable(dir)));
  return p;
}

/** `corpusTable` (skips when the corpus is absent) placed in the test store, read-only. */
export async function corpusTableIn(t: TestContext, rel: string): Promise<string | null> {
  const dir = corpusTable(t, rel);
  return dir ? readOnlyTable(dir) : null;
}

/** A local folder of files (e.g. Parquet to CONVERT) where the test store has it: in place, or an upload. */
export async function placeFolder(dir: string): Promise<string> {
  return isRemoteStore ? uploadTable(dir) : dir;
}

/** A writable copy of a local table folder in the test store (`copyTable` on local files). */
export async function copyTableIn(dir: string): Promise<string> {
  return isRemoteStore ? uploadTable(dir) : copyTable(dir);
}
