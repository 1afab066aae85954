/**
 * The warehouse catalog: a folder of schemas (sub-folders) holding managed tables
 * (`<warehouse>/<schema>/<table>`) and entries for every table, managed or external
 * (`<warehouse>/<schema>/.floe-catalog/<table>.json`).
 *
 * Safety across processes:
 * - a table name is claimed with an O_EXCL lock file (`<table>.lock`) while it is created or dropped,
 *   so two processes creating the same table give one table and one TABLE_OR_VIEW_ALREADY_EXISTS;
 * - the entry is written (temp file + rename) only after the Delta table's first commit, and removed
 *   before a managed table's files are deleted, so an entry never points at a half-created table;
 * - a lock left by a crashed process (dead pid on this host, or older than ten minutes) is taken over.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { FloeError } from '../errors.js';
import { resolveLocation } from '../storage/open.js';

export const DEFAULT_CATALOG = 'spark_catalog';
export const CATALOG_ALIASES = new Set(['spark_catalog', 'main', 'hive_metastore']);
export const DEFAULT_SCHEMA = 'default';
const ENTRIES = '.floe-catalog';
const SCHEMA_META = '.floe-schema.json';
const STALE_LOCK_MS = 10 * 60_000;
/** A stale-lock breaker is held for a few file operations; older than this, its holder died. */
const STALE_BREAKER_MS = 10_000;

export interface CatalogTable {
  schema: string;
  name: string;
  type: 'MANAGED' | 'EXTERNAL';
  /** Absolute location of the Delta table. */
  location: string;
  createdAt: string;
}

/** The warehouse folder: an explicit option, else `FLOE_WAREHOUSE`, else `./floe-warehouse`. */
export function resolveWarehouse(option?: string): string {
  return path.resolve(option ?? process.env.FLOE_WAREHOUSE ?? 'floe-warehouse');
}

const NAME = /^[a-z0-9_]+$/;

/** Catalog names are case-insensitive (stored lower-case) and limited to letters, digits and `_`. */
export function normalizeName(name: string, what: 'schema' | 'table'): string {
  const n = name.toLowerCase();
  if (!NAME.test(n) || n.length > 128) {
    throw new FloeError('INVALID_IDENTIFIER', `Invalid ${what} name '${name}': use letters, digits and underscores (at most 128 characters).`, { name });
  }
  return n;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

export class Catalog {
  readonly root: string;

  constructor(warehouse?: string) {
    this.root = resolveWarehouse(warehouse);
  }

  schemaDir(schema: string): string {
    return path.join(this.root, normalizeName(schema, 'schema'));
  }
  private entriesDir(schema: string): string {
    return path.join(this.schemaDir(schema), ENTRIES);
  }
  private entryPath(schema: string, table: string): string {
    return path.join(this.entriesDir(schema), `${normalizeName(table, 'table')}.json`);
  }
  managedLocation(schema: string, table: string): string {
    return path.join(this.schemaDir(schema), normalizeName(table, 'table'));
  }

  /** Creates the warehouse and the `default` schema when missing. */
  async ensure(): Promise<void> {
    await fs.mkdir(path.join(this.root, DEFAULT_SCHEMA, ENTRIES), { recursive: true });
  }

  async schemaExists(schema: string): Promise<boolean> {
    try {
      return (await fs.stat(this.schemaDir(schema))).isDirectory();
    } catch {
      return false;
    }
  }

  async requireSchema(schema: string): Promise<void> {
    if (normalizeName(schema, 'schema') === DEFAULT_SCHEMA) return this.ensure();
    if (!(await this.schemaExists(schema))) throw new FloeError('SCHEMA_NOT_FOUND', `The schema '${schema}' cannot be found in ${this.root}. Create it with CREATE SCHEMA ${schema}.`, { schema });
  }

  async createSchema(schema: string, options: { ifNotExists?: boolean; comment?: string } = {}): Promise<boolean> {
    const dir = this.schemaDir(schema);
    await fs.mkdir(this.root, { recursive: true });
    try {
      await fs.mkdir(dir);
    } catch (e) {
      if (errno(e) === 'EEXIST') {
        if (options.ifNotExists) return false;
        throw new FloeError('SCHEMA_ALREADY_EXISTS', `Cannot create schema '${schema}': it already exists.`, { schema });
      }
      throw e;
    }
    await fs.mkdir(path.join(dir, ENTRIES), { recursive: true });
    await this.writeAtomic(path.join(dir, SCHEMA_META), JSON.stringify({ name: normalizeName(schema, 'schema'), comment: options.comment ?? null, createdAt: new Date().toISOString() }));
    return true;
  }

  async schemaComment(schema: string): Promise<string | null> {
    try {
      return (JSON.parse(await fs.readFile(path.join(this.schemaDir(schema), SCHEMA_META), 'utf8')) as { comment?: string | null }).comment ?? null;
    } catch {
      return null;
    }
  }

  async listSchemas(): Promise<string[]> {
    await this.ensure();
    const out: string[] = [];
    for (const d of await fs.readdir(this.root, { withFileTypes: true })) {
      if (d.isDirectory() && NAME.test(d.name)) out.push(d.name);
    }
    return out.sort();
  }

  async dropSchema(schema: string, options: { ifExists?: boolean; cascade?: boolean } = {}): Promise<boolean> {
    const name = normalizeName(schema, 'schema');
    if (name === DEFAULT_SCHEMA) throw new FloeError('FLOE_CANNOT_DROP_DEFAULT_SCHEMA', 'The default schema cannot be dropped.');
    if (!(await this.schemaExists(name))) {
      if (options.ifExists) return false;
      throw new FloeError('SCHEMA_NOT_FOUND', `The schema '${schema}' cannot be found.`, { schema });
    }
    const tables = await this.listTables(name);
    if (tables.length && !options.cascade) {
      throw new FloeError('SCHEMA_NOT_EMPTY', `Cannot drop schema '${schema}': it holds ${tables.length} table(s) (${tables.slice(0, 5).map((t) => t.name).join(', ')}). Drop them first or use DROP SCHEMA ${schema} CASCADE.`, { schema });
    }
    for (const t of tables) await this.dropTable(name, t.name, { ifExists: true });
    await fs.rm(this.schemaDir(name), { recursive: true, force: true });
    return true;
  }

  async listTables(schema: string): Promise<CatalogTable[]> {
    await this.requireSchema(schema);
    let files: string[] = [];
    try {
      files = await fs.readdir(this.entriesDir(schema));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    const out: CatalogTable[] = [];
    for (const f of files.filter((x) => x.endsWith('.json')).sort()) {
      const t = await this.getTable(schema, f.slice(0, -5)).catch(() => null);
      if (t) out.push(t);
    }
    return out;
  }

  async getTable(schema: string, table: string): Promise<CatalogTable | null> {
    let text: string;
    try {
      text = await fs.readFile(this.entryPath(schema, table), 'utf8');
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
      throw e;
    }
    try {
      const e = JSON.parse(text) as CatalogTable;
      return { ...e, schema: normalizeName(schema, 'schema'), name: normalizeName(table, 'table') };
    } catch {
      throw new FloeError('FLOE_CATALOG_CORRUPT', `The catalog entry ${this.entryPath(schema, table)} is not valid JSON.`);
    }
  }

  /**
   * Creates a table under its name lock: `create(location)` makes the Delta table (its first commit),
   * then the entry is written. Returns 'created', or 'exists' when the table existed and ifNotExists
   * was given. With orReplace and an existing entry, `create` runs against the existing location.
   */
  async createTable(
    schema: string,
    table: string,
    options: { location?: string; ifNotExists?: boolean; orReplace?: boolean },
    create: (location: string, existing: CatalogTable | null) => Promise<void>,
  ): Promise<'created' | 'replaced' | 'exists'> {
    await this.requireSchema(schema);
    const s = normalizeName(schema, 'schema');
    const t = normalizeName(table, 'table');
    return this.withLock(s, t, async () => {
      const existing = await this.getTable(s, t);
      if (existing) {
        if (options.ifNotExists) return 'exists';
        if (!options.orReplace) throw new FloeError('TABLE_OR_VIEW_ALREADY_EXISTS', `Cannot create table ${s}.${t}: it already exists.`, { table: `${s}.${t}` });
        if (options.location && resolveLocation(options.location) !== existing.location) {
          throw new FloeError('FLOE_UNSUPPORTED_OPERATION', `CREATE OR REPLACE cannot move ${s}.${t} from ${existing.location} to ${resolveLocation(options.location)}; drop it first.`);
        }
        await create(existing.location, existing);
        return 'replaced';
      }
      const managed = !options.location;
      const location = managed ? this.managedLocation(s, t) : resolveLocation(options.location!);
      if (managed) {
        // An unregistered managed folder is a leftover of a crashed create or drop: nothing points at it.
        await fs.rm(location, { recursive: true, force: true });
      }
      try {
        await create(location, null);
      } catch (e) {
        if (managed) await fs.rm(location, { recursive: true, force: true }).catch(() => undefined);
        throw e;
      }
      const entry: CatalogTable = { schema: s, name: t, type: managed ? 'MANAGED' : 'EXTERNAL', location, createdAt: new Date().toISOString() };
      await this.writeAtomic(this.entryPath(s, t), JSON.stringify(entry, null, 2));
      return 'created';
    });
  }

  /** Drops a table: removes its entry, then (managed tables only) its files. */
  async dropTable(schema: string, table: string, options: { ifExists?: boolean } = {}): Promise<CatalogTable | null> {
    await this.requireSchema(schema);
    const s = normalizeName(schema, 'schema');
    const t = normalizeName(table, 'table');
    return this.withLock(s, t, async () => {
      const entry = await this.getTable(s, t);
      if (!entry) {
        if (options.ifExists) return null;
        throw new FloeError('TABLE_OR_VIEW_NOT_FOUND', `The table ${s}.${t} cannot be found.`, { table: `${s}.${t}` });
      }
      await fs.rm(this.entryPath(s, t), { force: true });
      if (entry.type === 'MANAGED') await fs.rm(entry.location, { recursive: true, force: true });
      return entry;
    });
  }

  private async writeAtomic(file: string, text: string): Promise<void> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = path.join(path.dirname(file), `.tmp-${randomUUID()}`);
    await fs.writeFile(tmp, text);
    try {
      await fs.rename(tmp, file);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /** Runs `fn` holding the name lock of schema.table (O_EXCL file), waiting up to `waitMs` for another holder. */
  private async withLock<T>(schema: string, table: string, fn: () => Promise<T>, waitMs = 30_000): Promise<T> {
    const dir = this.entriesDir(schema);
    await fs.mkdir(dir, { recursive: true });
    const lock = path.join(dir, `${table}.lock`);
    const started = Date.now();
    let delay = 10;
    for (;;) {
      // Written whole to a temp file, then linked into place: a lock is never seen half-written.
      const tmp = `${lock}.${process.pid}.${Date.now()}.tmp`;
      await fs.writeFile(tmp, JSON.stringify({ pid: process.pid, host: os.hostname(), at: Date.now() }));
      try {
        await fs.link(tmp, lock);
        break;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
        if ((await this.staleLock(lock)) && (await this.breakStaleLock(lock))) continue;
        if (Date.now() - started > waitMs) {
          throw new FloeError('FLOE_CATALOG_BUSY', `The table ${schema}.${table} is being changed by another process (lock ${lock}). Retry later; if no floe process is running, delete the lock file.`, { lock });
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 200);
      } finally {
        await fs.rm(tmp, { force: true });
      }
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  /**
   * Removes a stale lock under a second, short-lived lock (`<lock>.break`), judging it stale again
   * there: two sessions that both found the dead holder's lock cannot both remove a lock, so the
   * later one never deletes the fresh lock the earlier one took meanwhile. A breaker left by a
   * crash (it is held for a few file operations) is removed once older than STALE_BREAKER_MS.
   * Returns whether this call removed the lock.
   */
  private async breakStaleLock(lock: string): Promise<boolean> {
    const breaker = `${lock}.break`;
    try {
      await fs.writeFile(breaker, JSON.stringify({ pid: process.pid, host: os.hostname(), at: Date.now() }), { flag: 'wx' });
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
      const st = await fs.stat(breaker).catch(() => null);
      if (st && Date.now() - st.mtimeMs > STALE_BREAKER_MS) await fs.rm(breaker, { force: true });
      return false;
    }
    try {
      if (!(await this.staleLock(lock))) return false;
      await fs.rm(lock, { force: true });
      return true;
    } finally {
      await fs.rm(breaker, { force: true });
    }
  }

  private async staleLock(lock: string): Promise<boolean> {
    try {
      const info = JSON.parse(await fs.readFile(lock, 'utf8')) as { pid?: number; host?: string; at?: number };
      if (typeof info.at === 'number' && Date.now() - info.at > STALE_LOCK_MS) return true;
      if (info.host === os.hostname() && typeof info.pid === 'number' && info.pid !== process.pid) {
        try {
          process.kill(info.pid, 0);
          return false;
        } catch (e) {
          return errno(e) === 'ESRCH';
        }
      }
      return false;
    } catch (e) {
      // Being written right now (empty) or already gone: not stale; a vanished lock lets the next try win.
      if (errno(e) === 'ENOENT') return false;
      try {
        const st = await fs.stat(lock);
        return Date.now() - st.mtimeMs > STALE_LOCK_MS;
      } catch {
        return false;
      }
    }
  }
}
