/**
 * The bounded local file cache that gives DuckDB local files for objects in remote storage. Delta
 * data, change-data and checkpoint files are immutable once written, so a cached copy is valid as long
 * as its size (and, when the caller knows it, the remote modification time) matches. Files are
 * downloaded to a temporary name and renamed into place, so a reader never opens a half-written one.
 *
 * Eviction is least-recently-used when the cache holds more than `maxBytes`; files used within the
 * last `pinMs` are never evicted (a scan plans its files, then DuckDB opens them a moment later), so
 * the cache can exceed its limit while one query needs more than fits. Each process evicts only the
 * files it downloaded, wrote or used itself, and never one whose access time (set on every use) says
 * another process sharing the folder used it within `pinMs`.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';

export const DEFAULT_CACHE_BYTES = 2 * 1024 ** 3;
const DEFAULT_PIN_MS = 5 * 60_000;

interface Entry {
  size: number;
  used: number;
}

export class FileCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<void>>();
  private total = 0;

  constructor(readonly dir: string, readonly maxBytes: number = DEFAULT_CACHE_BYTES, readonly pinMs: number = DEFAULT_PIN_MS) {}

  /** Bytes this process holds in the cache. */
  get bytes(): number {
    return this.total;
  }

  /** Makes sure `file` holds the object; `fetch` downloads it into the temporary path it is given. */
  async ensure(file: string, expect: { size?: number; mtime?: number }, fetch: (tmp: string) => Promise<{ mtime?: number }>): Promise<void> {
    const running = this.inflight.get(file);
    if (running) return running;
    const p = (async () => {
      const st = await fs.stat(file).catch(() => null);
      const fresh = st && st.isFile() && (expect.size === undefined || st.size === expect.size) && (expect.mtime === undefined || Math.abs(st.mtimeMs - expect.mtime) < 1000);
      if (fresh) {
        // The access time tells other processes sharing the folder that the file is in use.
        await fs.utimes(file, new Date(), st.mtime).catch(() => undefined);
        this.touch(file, st.size);
        return;
      }
      await fs.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${randomUUID()}.part`;
      try {
        const { mtime } = await fetch(tmp);
        if (mtime !== undefined) await fs.utimes(tmp, new Date(), new Date(mtime));
        await fs.rename(tmp, file);
      } finally {
        await fs.rm(tmp, { force: true });
      }
      const size = (await fs.stat(file)).size;
      this.touch(file, size);
    })().finally(() => this.inflight.delete(file));
    this.inflight.set(file, p);
    await p;
    await this.evict();
  }

  /** Registers a file written into the cache (a staged upload) as a fresh cache entry. */
  async adopt(file: string): Promise<void> {
    const st = await fs.stat(file).catch(() => null);
    if (!st) return;
    this.touch(file, st.size);
    await this.evict();
  }

  /** Forgets and removes a cached file (its object was deleted). */
  async drop(file: string): Promise<void> {
    const e = this.entries.get(file);
    if (e) {
      this.total -= e.size;
      this.entries.delete(file);
    }
    await fs.rm(file, { force: true });
  }

  private touch(file: string, size: number): void {
    const old = this.entries.get(file);
    if (old) this.total -= old.size;
    this.entries.delete(file); // re-insert: Map order is the LRU order
    this.entries.set(file, { size, used: Date.now() });
    this.total += size;
  }

  private async evict(): Promise<void> {
    if (this.total <= this.maxBytes) return;
    const cutoff = Date.now() - this.pinMs;
    const pinned = (t: number): boolean => this.pinMs > 0 && t >= cutoff;
    for (const [file, e] of [...this.entries]) {
      if (this.total <= this.maxBytes) break;
      if (pinned(e.used)) break; // in LRU order: everything after is newer
      if (this.inflight.has(file)) continue;
      // Another process sharing the folder may have used it since: its access time says so.
      const st = await fs.stat(file).catch(() => null);
      if (st && pinned(st.atimeMs)) continue;
      this.entries.delete(file);
      this.total -= e.size;
      await fs.rm(file, { force: true }).catch(() => undefined);
    }
  }
}

const caches = new Map<string, FileCache>();

/** The process-wide cache for a folder (one per folder, so limits and LRU order are shared). */
export function cacheFor(dir: string | undefined, maxBytes?: number): FileCache {
  const d = path.resolve(dir ?? process.env.FLOE_CACHE_DIR ?? path.join(os.tmpdir(), `floe-cache-${os.userInfo().username}`));
  let c = caches.get(d);
  const max = maxBytes ?? (process.env.FLOE_CACHE_MAX_BYTES ? Number(process.env.FLOE_CACHE_MAX_BYTES) : DEFAULT_CACHE_BYTES);
  if (!c) caches.set(d, (c = new FileCache(d, max)));
  return c;
}
