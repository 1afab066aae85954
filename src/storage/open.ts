/**
 * Chooses the store for a table location: a local path or `file://` URL, Azure (`abfss://`, `abfs://`,
 * `az://`, `azure://`, `wasbs://`) or S3 (`s3://`, `s3a://`). Helpers here let the engine treat both
 * alike: `readPath` names the local file DuckDB reads for a key (the file itself, or its cached copy),
 * `ensureLocal` downloads what a query is about to read.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FloeError } from '../errors.js';
import { type AzureAuthOptions, AzureBlobStore, parseAzureUrl } from './azure.js';
import { LocalObjectStore } from './local.js';
import type { ObjectStore } from './object-store.js';
import { RemoteObjectStore, type RemoteStoreOptions } from './remote.js';
import { S3Store, parseS3Url } from './s3.js';

export { RemoteObjectStore };

/** Storage settings: credentials and endpoints (delta-rs names, e.g. `azure_storage_account_key`, `aws_endpoint_url`) and floe's cache options. */
export type StorageOptions = Record<string, string>;

export function isUrl(location: string): boolean {
  return /^[a-zA-Z][a-zA-Z0-9+.-]+:\/\//.test(location);
}

export function isCloudUrl(location: string): boolean {
  return /^(abfss?|az|azure|wasbs?|adl|s3a?):\/\//i.test(location);
}

function remoteOptions(o: StorageOptions): RemoteStoreOptions {
  const num = (k: string): number | undefined => (o[k] !== undefined && o[k] !== '' ? Number(o[k]) : undefined);
  return {
    cacheDir: o.cache_dir,
    cacheMaxBytes: num('cache_max_bytes'),
    maxAttempts: num('max_attempts'),
    requestTimeoutMs: num('request_timeout_ms'),
    backoffMs: num('backoff_ms'),
  };
}

/** Opens the store for a location. `auth` carries settings that are objects, not strings (an Azure `TokenCredential`). */
export function openStore(location: string, options: StorageOptions = {}, auth: AzureAuthOptions = {}): ObjectStore {
  const store = open(location, options, auth);
  openers.set(store, { open: (url) => open(url, options, auth), opened: new Map() });
  return store;
}

function open(location: string, options: StorageOptions, auth: AzureAuthOptions): ObjectStore {
  if (!isUrl(location)) return new LocalObjectStore(location);
  if (location.startsWith('file://')) return new LocalObjectStore(fileURLToPath(location));
  if (/^s3a?:\/\//i.test(location)) return new S3Store(parseS3Url(location), options, remoteOptions(options));
  if (isCloudUrl(location)) return new AzureBlobStore(parseAzureUrl(location), options, remoteOptions(options), auth);
  throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', `Cannot open ${location}: floe reads local paths, file://, abfss://, az://, azure:// and s3:// URLs.`, { location });
}

/** How each store opens other locations with its own settings (credentials, cache options). */
const openers = new WeakMap<ObjectStore, { open: (url: string) => ObjectStore; opened: Map<string, ObjectStore> }>();

/**
 * A store for another location (a container, bucket or folder that a table's log names files in),
 * opened with the settings `store` was opened with (the environment's for stores made directly) and
 * kept while `store` lives.
 */
export function siblingStore(store: ObjectStore, location: string): ObjectStore {
  let o = openers.get(store);
  if (!o) openers.set(store, (o = { open: (url) => open(url, {}, {}), opened: new Map() }));
  let s = o.opened.get(location);
  if (!s) o.opened.set(location, (s = o.open(location)));
  return s;
}

/** The store's remote side, or null for a local store. */
export function remoteOf(store: ObjectStore): RemoteObjectStore | null {
  return store instanceof RemoteObjectStore ? store : null;
}

/** The local file DuckDB reads for a key: the file itself, or (remote stores) its cached copy. */
export function readPath(store: ObjectStore, key: string): string | null {
  const local = store.localPath(key);
  if (local) return local;
  return remoteOf(store)?.cachePath(key) ?? null;
}

/** Makes the files local before DuckDB reads them (no-op for local stores). Sizes from the log skip a HEAD. */
export async function ensureLocal(store: ObjectStore, files: { path: string; size?: number }[]): Promise<void> {
  const r = remoteOf(store);
  if (r && files.length) await r.ensureLocal(files);
}

/** A table location as given: URLs unchanged, local paths made absolute. */
export function resolveLocation(location: string): string {
  return isUrl(location) ? location : path.resolve(location);
}
