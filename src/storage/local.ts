import { promises as fs, constants as fsc, readFile, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, ObjectExistsError, ObjectNotFoundError } from '../errors.js';
import type { ObjectMeta, ObjectStore } from './object-store.js';

/** The callback readFile, promisified: for small files (log entries) it is faster than fs.promises.readFile. */
const readWhole = promisify(readFile);

function isCode(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === code;
}

/**
 * Local filesystem store. put-if-absent writes a temporary file, fsyncs it, then `link()`s it to the
 * final name: link fails with EEXIST if the name exists, atomically, across processes, and the final
 * name appears with its whole content at once (a reader never sees a half-written log entry).
 */
export class LocalObjectStore implements ObjectStore {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private abs(key: string): string {
    // Keys are relative to the root; a `..` segment (from a crafted log, say) must not escape it.
    if (key.split('/').includes('..')) throw new InvalidArgumentError(`Path '${key}' leaves the table folder ${this.root}; a Delta log may only name files inside its table (or absolute URIs).`, { key }, 'FLOE_PATH_OUTSIDE_TABLE');
    return path.join(this.root, ...key.split('/'));
  }

  localPath(key: string): string {
    return this.abs(key);
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      // Log entries (commits, checksums) are small and read by the hundred when a table or a range
      // of its changes is loaded: a synchronous read is 2-3x faster than going through libuv's pool.
      if (/(^|\/)_delta_log\/[^/]+\.(json|crc)$/.test(key)) return readFileSync(this.abs(key));
      return await readWhole(this.abs(key));
    } catch (e) {
      if (isCode(e, 'ENOENT') || isCode(e, 'EISDIR')) throw new ObjectNotFoundError(this.abs(key));
      throw e;
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    let fh;
    try {
      fh = await fs.open(this.abs(key), 'r');
    } catch (e) {
      if (isCode(e, 'ENOENT')) throw new ObjectNotFoundError(this.abs(key));
      throw e;
    }
    try {
      const buf = Buffer.alloc(Math.max(0, end - start));
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, start + off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return buf.subarray(0, off);
    } finally {
      await fh.close();
    }
  }

  private async writeTemp(key: string, data: Uint8Array | string): Promise<string> {
    const dest = this.abs(key);
    const dir = path.dirname(dest);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(dest)}.${randomUUID()}.tmp`);
    const fh = await fs.open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const tmp = await this.writeTemp(key, data);
    try {
      await fs.rename(tmp, this.abs(key));
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  async putIfAbsent(key: string, data: Uint8Array | string): Promise<void> {
    const tmp = await this.writeTemp(key, data);
    try {
      await fs.link(tmp, this.abs(key));
    } catch (e) {
      if (isCode(e, 'EEXIST')) throw new ObjectExistsError(this.abs(key));
      throw e;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async head(key: string): Promise<ObjectMeta | null> {
    try {
      const st = await fs.stat(this.abs(key));
      if (!st.isFile()) return null;
      return { path: key, size: st.size, lastModified: st.mtimeMs };
    } catch (e) {
      if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return null;
      throw e;
    }
  }

  async list(prefix: string, options: { startAfter?: string; recursive?: boolean } = {}): Promise<ObjectMeta[]> {
    // The directory part of the prefix is listed; the rest filters names.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: ObjectMeta[] = [];
    const walk = async (key: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(this.abs(key), { withFileTypes: true });
      } catch (e) {
        if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return;
        throw e;
      }
      for (const ent of entries) {
        const child = key ? `${key}/${ent.name}` : ent.name;
        if (ent.isDirectory()) {
          if (options.recursive && (child + '/').startsWith(prefix.slice(0, child.length + 1)) ) await walk(child);
          continue;
        }
        if (!ent.isFile() || !child.startsWith(prefix)) continue;
        if (ent.name.endsWith('.tmp') && ent.name.startsWith('.')) continue; // in-flight temp files
        if (options.startAfter !== undefined && child <= options.startAfter) continue;
        out.push({ path: child, size: 0, lastModified: 0 });
      }
    };
    await walk(dirKey);
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    await Promise.all(
      out.map(async (m) => {
        try {
          const st = await fs.stat(this.abs(m.path));
          m.size = st.size;
          m.lastModified = st.mtimeMs;
        } catch {
          m.size = -1; // vanished between listing and stat (a concurrent vacuum); callers treat as absent
        }
      }),
    );
    return out.filter((m) => m.size >= 0);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.abs(key), { force: true });
  }
}
