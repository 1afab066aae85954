/**
 * What every remote object store shares: retries with jittered exponential backoff on throttling
 * (429, 503) and transient network errors, a timeout per attempt, put-if-absent whose outcome is
 * resolved when a retry meets the object (the same bytes: it was ours), typed errors that say
 * whether retrying is safe, and the local file cache and staging that give DuckDB local files.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { FloeError, ObjectExistsError, ObjectNotFoundError, StorageError } from '../errors.js';
import { type FileCache, cacheFor } from './cache.js';
import type { ObjectMeta, ObjectStore } from './object-store.js';

export interface RemoteStoreOptions {
  /** Attempts per request (1 = no retry). Default 6. */
  maxAttempts?: number;
  /** Timeout of one attempt of a small request, ms. Default 30 000 (file transfers get 1 s more per MiB). */
  requestTimeoutMs?: number;
  /** First backoff delay, ms (doubles per attempt, jittered, capped at 10 s). Default 100. */
  backoffMs?: number;
  /** Local cache folder; default `$FLOE_CACHE_DIR` or `<tmp>/floe-cache-<user>`. */
  cacheDir?: string;
  /** Cache size limit in bytes; default `$FLOE_CACHE_MAX_BYTES` or 2 GiB. */
  cacheMaxBytes?: number;
}

/** Why a raw request failed, as the subclass classifies it. */
export type Failure =
  | 'notFound' // 404
  | 'exists' // put-if-absent lost (409 / 412)
  | 'throttled' // 429 / 503: the service did not process the request
  | 'transient' // network error, timeout, 5xx: the request may or may not have been processed
  | 'fatal'; // auth, bad request, ...: retrying will not help

export interface RawCall {
  signal: AbortSignal;
}

export abstract class RemoteObjectStore implements ObjectStore {
  abstract readonly root: string;
  /** What names the store's objects uniquely (endpoint, bucket, prefix): the cache's namespace. */
  protected abstract readonly identity: string;
  readonly cache: FileCache;
  protected readonly maxAttempts: number;
  protected readonly timeoutMs: number;
  protected readonly backoffMs: number;
  private ns: string | null = null;

  constructor(options: RemoteStoreOptions = {}) {
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 6);
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.backoffMs = options.backoffMs ?? 100;
    this.cache = cacheFor(options.cacheDir, options.cacheMaxBytes);
  }

  protected abstract rawGet(key: string, range: [number, number] | null, c: RawCall): Promise<Uint8Array>;
  protected abstract rawPut(key: string, data: Uint8Array, ifAbsent: boolean, c: RawCall): Promise<void>;
  protected abstract rawHead(key: string, c: RawCall): Promise<ObjectMeta | null>;
  /** Every object under `prefix` (keys relative to the root), optionally stopping at `/` after the prefix. */
  protected abstract rawList(prefix: string, delimited: boolean, startAfter: string | undefined, c: RawCall): Promise<ObjectMeta[]>;
  protected abstract rawDelete(key: string, c: RawCall): Promise<void>;
  /** Streams the object into a local file; returns its modification time. */
  protected abstract rawDownload(key: string, file: string, c: RawCall): Promise<{ mtime?: number }>;
  /** Streams a local file into the object (multipart / blocks when large). */
  protected abstract rawUpload(key: string, file: string, size: number, c: RawCall): Promise<void>;
  protected abstract classify(e: unknown): Failure;

  /** What to check after a request the service refused (auth, permissions, a bad request). */
  protected fatalHint(): string {
    return 'Check the credentials, the URL and the permissions.';
  }

  /** Where the cached copy of a key lives (whether or not it is there yet). */
  cachePath(key: string): string {
    if (key.split('/').includes('..')) throw new StorageError('FLOE_PATH_OUTSIDE_TABLE', `Path '${key}' leaves the table folder ${this.root}.`, true, { key });
    this.ns ??= createHash('sha256').update(this.identity).digest('hex').slice(0, 16);
    return path.join(this.cache.dir, this.ns, ...key.split('/').filter((p) => p.length > 0));
  }

  localPath(): string | null {
    return null;
  }

  /** Downloads the keys not already cached (size from the log when known, else from a HEAD). */
  async ensureLocal(files: { path: string; size?: number }[]): Promise<void> {
    const queue = [...new Map(files.map((f) => [f.path, f])).values()];
    const worker = async (): Promise<void> => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const file = this.cachePath(f.path);
        let expect: { size?: number; mtime?: number } = { size: f.size };
        if (f.size === undefined || f.size < 0) {
          const meta = await this.head(f.path);
          if (!meta) throw new ObjectNotFoundError(`${this.root}/${f.path}`);
          expect = { size: meta.size, mtime: meta.lastModified };
        }
        const key = f.path;
        await this.cache.ensure(file, expect, (tmp) => this.call(`download ${key}`, (c) => this.rawDownload(key, tmp, c), true, expect.size));
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
  }

  /** Uploads a local file (a staged write) as `key`; the file stays in the cache as that key's copy. */
  async uploadFile(file: string, key: string, size: number): Promise<void> {
    await this.call(`upload ${key}`, (c) => this.rawUpload(key, file, size, c), true, size);
    if (path.resolve(file) === this.cachePath(key)) await this.cache.adopt(file);
  }

  private async delay(attempt: number): Promise<void> {
    const ms = Math.min(10_000, this.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
    await new Promise((r) => setTimeout(r, ms));
  }

  private async attempt<T>(fn: (c: RawCall) => Promise<T>, bytes?: number): Promise<T> {
    const ms = this.timeoutMs + (bytes ? Math.ceil(bytes / 1048576) * 1000 : 0);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`timed out after ${ms} ms`)), ms);
    try {
      return await Promise.race([
        fn({ signal: ac.signal }),
        new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(Object.assign(new Error(`Request timed out after ${ms} ms`), { floeTimeout: true })), { once: true })),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private kind(e: unknown): Failure {
    if (e && typeof e === 'object' && (e as { floeTimeout?: boolean }).floeTimeout) return 'transient';
    if (e instanceof ObjectExistsError) return 'exists';
    if (e instanceof ObjectNotFoundError) return 'notFound';
    if (e instanceof FloeError) return 'fatal';
    return this.classify(e);
  }

  /** One request with retries. Throws ObjectNotFoundError / ObjectExistsError, or a StorageError. */
  protected async call<T>(what: string, fn: (c: RawCall) => Promise<T>, retrySafe = true, bytes?: number): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.maxAttempts; i++) {
      try {
        return await this.attempt(fn, bytes);
      } catch (e) {
        const k = this.kind(e);
        if (k === 'notFound') throw new ObjectNotFoundError(`${this.root}/${what.replace(/^\S+ /, '')}`);
        if (k === 'exists') throw new ObjectExistsError(`${this.root}/${what.replace(/^\S+ /, '')}`);
        if (k === 'fatal' && e instanceof FloeError) throw e;
        if (k === 'fatal') throw new StorageError('FLOE_STORAGE_REQUEST_FAILED', `${what} on ${this.root} failed: ${message(e)}. ${this.fatalHint()}`, retrySafe, { root: this.root }, { cause: e });
        last = e;
        if (i + 1 < this.maxAttempts) await this.delay(i);
      }
    }
    throw new StorageError('FLOE_STORAGE_UNAVAILABLE', `${what} on ${this.root} failed after ${this.maxAttempts} attempts: ${message(last)}.`, retrySafe, { root: this.root }, { cause: last });
  }

  async get(key: string): Promise<Uint8Array> {
    return this.call(`get ${key}`, (c) => this.rawGet(key, null, c));
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    return this.call(`get ${key}`, (c) => this.rawGet(key, [start, end], c));
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    await this.call(`put ${key}`, (c) => this.rawPut(key, bytes, false, c), true, bytes.length);
  }

  /**
   * Create-only put. A retry after a failure whose outcome is unknown (a timeout, a reset connection)
   * may find the object: when it holds exactly these bytes, the earlier attempt landed and this put
   * succeeded; other bytes mean another writer won. When every attempt fails and a final read cannot
   * tell, the error says the outcome is unknown (not safe to retry blindly).
   */
  async putIfAbsent(key: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let ambiguous = false;
    let last: unknown;
    const ours = async (): Promise<boolean> => {
      const got = await this.get(key);
      return Buffer.compare(Buffer.from(got), Buffer.from(bytes)) === 0;
    };
    for (let i = 0; i < this.maxAttempts; i++) {
      try {
        await this.attempt((c) => this.rawPut(key, bytes, true, c), bytes.length);
        return;
      } catch (e) {
        const k = this.kind(e);
        if (k === 'exists') {
          if (ambiguous && (await ours().catch(() => false))) return;
          throw new ObjectExistsError(`${this.root}/${key}`);
        }
        if (e instanceof FloeError && k === 'fatal') throw e;
        if (k === 'notFound' || k === 'fatal') {
          throw new StorageError('FLOE_STORAGE_REQUEST_FAILED', `put ${key} on ${this.root} failed: ${message(e)}. ${this.fatalHint()}`, !ambiguous, { root: this.root, key }, { cause: e });
        }
        if (k === 'transient') ambiguous = true;
        last = e;
        if (i + 1 < this.maxAttempts) await this.delay(i);
      }
    }
    if (ambiguous) {
      try {
        if (await ours()) return;
        throw new ObjectExistsError(`${this.root}/${key}`); // another writer's bytes: ours cannot land any more
      } catch (e) {
        if (e instanceof ObjectExistsError) throw e;
        // absent or unreadable: a delayed attempt may still land
      }
    }
    throw new StorageError(ambiguous ? 'FLOE_STORAGE_COMMIT_UNKNOWN' : 'FLOE_STORAGE_UNAVAILABLE', `Creating ${key} on ${this.root} failed after ${this.maxAttempts} attempts: ${message(last)}.`, !ambiguous, { root: this.root, key }, { cause: last });
  }

  async head(key: string): Promise<ObjectMeta | null> {
    return this.call(`head ${key}`, (c) => this.rawHead(key, c));
  }

  async list(prefix: string, options: { startAfter?: string; recursive?: boolean } = {}): Promise<ObjectMeta[]> {
    const delimited = prefix.endsWith('/') && !options.recursive;
    const all = await this.call(`list ${prefix}`, (c) => this.rawList(prefix, delimited && prefix.endsWith('/'), options.startAfter, c));
    const out = all.filter((m) => m.path.startsWith(prefix) && (options.startAfter === undefined || m.path > options.startAfter));
    if (!options.recursive && !prefix.endsWith('/')) {
      // Not recursive past the prefix's folder.
      const depth = prefix.split('/').length;
      return sortMeta(out.filter((m) => m.path.split('/').length === depth));
    }
    return sortMeta(out);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call(`delete ${key}`, (c) => this.rawDelete(key, c));
    } catch (e) {
      if (!(e instanceof ObjectNotFoundError)) throw e;
    }
    await this.cache.drop(this.cachePath(key)).catch(() => undefined);
  }
}

function sortMeta(m: ObjectMeta[]): ObjectMeta[] {
  return m.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function message(e: unknown): string {
  const status = statusOf(e);
  const code = e && typeof e === 'object' ? (e as { code?: unknown; name?: string }).code ?? (e as { name?: string }).name : undefined;
  const text = e instanceof Error ? e.message.split('\n')[0]!.trim() : String(e);
  return [status !== undefined ? `HTTP ${status}` : '', typeof code === 'string' && !text.includes(code) ? code : '', text].filter(Boolean).join(' ') || 'unknown error';
}

/** The HTTP status of an SDK error, when it has one. */
export function statusOf(e: unknown): number | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const o = e as { statusCode?: number; $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } };
  return o.statusCode ?? o.$metadata?.httpStatusCode ?? o.$response?.statusCode;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'REQUEST_SEND_ERROR', 'TimeoutError', 'RequestTimeout', 'ABORT_ERR']);

/** Network-level failures and aborted requests (the request may have been processed). */
export function isNetworkError(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const o = e as { code?: string; name?: string; cause?: unknown; message?: string };
  if ((o.code && NETWORK_CODES.has(o.code)) || o.name === 'AbortError' || o.name === 'TimeoutError') return true;
  if (/socket hang up|ECONNRESET|network|aborted|timed out|premature close/i.test(o.message ?? '')) return true;
  return o.cause !== undefined && o.cause !== e && isNetworkError(o.cause);
}
