/**
 * The floe session: owns the DuckDB engine and the configuration, opens tables and files.
 * `await using`-free by design (Node 20): call `close()` when done.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { DeltaLog } from './core/delta-log.js';
import { quoteString } from './core/schema.js';
import type { Snapshot } from './core/snapshot.js';
import { DataFrame } from './dataframe.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import { SESSION_MACROS } from './sql/functions.js';
import { FloeError, InvalidArgumentError } from './errors.js';
import { isCloudUrl, openStore } from './storage/open.js';
import type { ChangeFeedOptions } from './core/cdf.js';
import { changesQuery } from './table/changes.js';
import { type SqlResult, executeSql } from './sql/executor.js';
import type { ObjectStore } from './storage/object-store.js';
import type { TokenCredential } from './storage/azure.js';

/** Session configuration keys for new-table defaults, as Delta on Spark reads them. */
export const TABLE_DEFAULTS_PREFIX = 'spark.databricks.delta.properties.defaults.';

export interface FloeOptions extends EngineOptions {
  /** Spark-style configuration, e.g. `{ 'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true' }`. */
  config?: Record<string, string>;
  /**
   * Cloud storage settings (delta-rs names; unset ones come from the environment variables of the
   * same name in upper case): `azure_storage_connection_string`, `azure_storage_account_name`,
   * `azure_storage_account_key`, `azure_storage_sas_token`, `aws_access_key_id`,
   * `aws_secret_access_key`, `aws_session_token`, `aws_region`, `aws_endpoint_url`,
   * `aws_s3_allow_unsafe_rename` (single-writer mode), and floe's `cache_dir`, `cache_max_bytes`,
   * `max_attempts`, `request_timeout_ms`. Azure AD: `azure_storage_endpoint`, `azure_use_azure_cli`,
   * `azure_use_default_credential`, `azure_storage_token`, `azure_client_id`, `azure_client_secret`,
   * `azure_tenant_id`; an account name alone means DefaultAzureCredential.
   */
  storageOptions?: Record<string, string>;
  /** An Azure AD credential for Azure locations (e.g. `new DefaultAzureCredential()` or any `TokenCredential`); overrides keys, SAS and connection strings. */
  azureCredential?: TokenCredential;
}

export interface DeltaReadOptions {
  /** Time travel to a version. */
  versionAsOf?: number;
  /** Time travel to a timestamp: a Date, epoch milliseconds, or a string such as `2024-01-01 12:00:00` (UTC) or ISO 8601. */
  timestampAsOf?: Date | number | string;
}

/** Parses a user timestamp (UTC unless it names a zone) into epoch milliseconds. */
export function parseTimestamp(t: Date | number | string): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t;
  const s = t.trim();
  // (An offset may be +HH:MM, +HHMM or +HH: DuckDB prints a TIMESTAMPTZ as '2024-01-31 12:00:00+00'.)
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(s) ? s.replace(' ', 'T') : /[+-]\d{2}$/.test(s) ? `${s.replace(' ', 'T')}:00` : `${s.replace(' ', 'T')}Z`;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new InvalidArgumentError(`Cannot parse timestamp '${t}'. Use ISO 8601 (2024-01-31T12:00:00Z) or 'YYYY-MM-DD HH:MM:SS' (UTC).`);
  return ms;
}

/** A timestamp's text (as DuckDB prints it, '2026-01-01 10:00:00.5+00', or as parseTimestamp reads it) in ISO 8601 UTC; other text as it is. */
export function isoTimestamp(t: string): string {
  try {
    return new Date(parseTimestamp(t)).toISOString();
  } catch {
    return t;
  }
}

export class Floe {
  readonly engine: Engine;
  private readonly conf: Map<string, string>;
  private readonly tracked = new Set<string>();
  private readonly logs = new Map<string, DeltaLog>();

  private readonly stores = new Map<string, ObjectStore>();
  private readonly storageOptions: Record<string, string>;

  private readonly azureCredential: TokenCredential | undefined;

  private constructor(engine: Engine, config: Record<string, string>, storageOptions: Record<string, string>, azureCredential?: TokenCredential) {
    this.engine = engine;
    this.conf = new Map(Object.entries(config));
    this.storageOptions = storageOptions;
    this.azureCredential = azureCredential;
  }

  static async create(options: FloeOptions = {}): Promise<Floe> {
    const engine = await Engine.create(options);
    // Helper macros that translated Spark SQL uses (SQL statements, pipeline SQL, stored CHECK
    // constraints and expectations all run on this engine).
    for (const m of SESSION_MACROS) await engine.run(m);
    return new Floe(engine, options.config ?? {}, options.storageOptions ?? {}, options.azureCredential);
  }

  /** Reads and sets Spark-style configuration. */
  readonly config = {
    get: (key: string): string | undefined => this.conf.get(key),
    set: (key: string, value: string): void => void this.conf.set(key, value),
    unset: (key: string): void => void this.conf.delete(key),
    all: (): Record<string, string> => Object.fromEntries(this.conf),
  };

  /** Table properties that new tables get from `spark.databricks.delta.properties.defaults.*`. */
  tableDefaults(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.conf) if (k.startsWith(TABLE_DEFAULTS_PREFIX)) out[`delta.${k.slice(TABLE_DEFAULTS_PREFIX.length)}`] = v;
    return out;
  }

  /**
   * The object store for a table path, `file://` URL or cloud URL (`abfss://`, `az://`, `azure://`,
   * `s3://`, `s3a://`); cloud stores are kept per location (their clients and cache are reused).
   */
  storeFor(location: string): ObjectStore {
    // Local tables get the session's settings too: their logs may name cloud files by absolute URI (shallow clones).
    if (!isCloudUrl(location)) return openStore(location, this.storageOptions, { azureCredential: this.azureCredential });
    const key = location.replace(/\/+$/, '');
    let s = this.stores.get(key);
    if (!s) this.stores.set(key, (s = openStore(key, this.storageOptions, { azureCredential: this.azureCredential })));
    return s;
  }

  /** The DeltaLog for a table location (cached per session: commits are immutable). */
  deltaLog(location: string): DeltaLog {
    const store = this.storeFor(location);
    let log = this.logs.get(store.root);
    if (!log) {
      log = new DeltaLog(store, this.engine);
      this.logs.set(store.root, log);
    }
    return log;
  }

  /**
   * Forgets what this session cached about a table's log. Commits are immutable, so the cache is
   * safe, unless a table is dropped and another created at the same location (SQL DROP TABLE does this).
   */
  forgetLog(location: string): void {
    this.logs.delete(this.storeFor(location).root);
  }

  /**
   * Runs Databricks SQL (one or several statements separated by `;`, in order) against the catalog in
   * the warehouse folder; returns the last statement's result: rows as a DataFrame, or a status.
   */
  async sql(text: string, options: { warehouse?: string } = {}): Promise<SqlResult> {
    return executeSql(this, text, options);
  }

  /** The snapshot of a table at a version or timestamp (latest by default). */
  async snapshot(location: string, options: DeltaReadOptions = {}): Promise<Snapshot> {
    const log = this.deltaLog(location);
    if (options.versionAsOf !== undefined && options.timestampAsOf !== undefined) {
      throw new InvalidArgumentError('Give either versionAsOf or timestampAsOf, not both.', {}, 'DELTA_INVALID_TIME_TRAVEL_SPEC');
    }
    let version = options.versionAsOf;
    if (version !== undefined && (!Number.isInteger(version) || version < 0)) throw new InvalidArgumentError(`versionAsOf must be a non-negative integer, got ${version}.`);
    if (options.timestampAsOf !== undefined) version = await log.versionAtTimestamp(parseTimestamp(options.timestampAsOf));
    return log.snapshot(version);
  }

  /** Readers of tables and files, as PySpark's `spark.read`. */
  readonly read = {
    delta: async (location: string, options: DeltaReadOptions = {}): Promise<DataFrame> => {
      const snap = await this.snapshot(location, options);
      return new DataFrame(this, { kind: 'delta', snapshot: snap, store: this.deltaLog(location).store, filters: [] });
    },
    /**
     * The change data feed between two versions or timestamps (bounds inclusive): the table's columns
     * plus `_change_type`, `_commit_version`, `_commit_timestamp`, as Spark's `readChangeFeed`.
     */
    changes: async (location: string, options: ChangeFeedOptions): Promise<DataFrame> => {
      const q = await changesQuery(this, location, options);
      this.track(q.tables);
      return new DataFrame(this, { kind: 'sql', sql: q.sql });
    },
    parquet: (file: string | string[]): DataFrame => this.fileFrame('read_parquet', file),
    csv: (file: string | string[], options: { header?: boolean; delimiter?: string } = {}): DataFrame =>
      this.fileFrame('read_csv', file, `header = ${options.header ?? true}${options.delimiter ? `, delim = ${quoteString(options.delimiter)}` : ''}`),
    json: (file: string | string[]): DataFrame => this.fileFrame('read_json_auto', file),
  };

  private fileFrame(fn: string, file: string | string[], args = ''): DataFrame {
    const files = (Array.isArray(file) ? file : [file]).map((f) => path.resolve(f));
    const list = `[${files.map(quoteString).join(', ')}]`;
    return new DataFrame(this, { kind: 'sql', sql: `SELECT * FROM ${fn}(${list}${args ? ', ' + args : ''})` });
  }

  /**
   * A DataFrame over a query in DuckDB's own SQL dialect, run as written (no Spark translation, no
   * catalog). For Databricks SQL over the warehouse's catalog use `sql()`.
   */
  duckdbSql(query: string): DataFrame {
    return new DataFrame(this, { kind: 'sql', sql: query });
  }

  /** A DataFrame from JS rows (types inferred as DuckDB's JSON reader infers them). */
  async createDataFrame(rows: Record<string, unknown>[]): Promise<DataFrame> {
    if (!rows.length) throw new InvalidArgumentError('createDataFrame() needs at least one row to infer a schema.');
    const tmp = path.join(os.tmpdir(), `floe-rows-${randomUUID()}.json`);
    const table = this.engine.uniqueName('rows');
    // bigint values go out as bare JSON numbers (exact), not strings.
    const mark = '\u0000BIGINT';
    const line = (r: Record<string, unknown>): string =>
      JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${mark}${v.toString()}${mark}` : v)).replace(/"\\u0000BIGINT(-?\d+)\\u0000BIGINT"/g, '$1');
    await fs.writeFile(tmp, rows.map(line).join('\n'));
    try {
      await this.engine.run(`CREATE TABLE ${table} AS SELECT * FROM read_json(${quoteString(tmp)}, format = 'newline_delimited')`);
    } finally {
      await fs.rm(tmp, { force: true });
    }
    this.track([table]);
    return new DataFrame(this, { kind: 'sql', sql: `SELECT * FROM ${table}` });
  }

  private readonly tempScope = new AsyncLocalStorage<Set<string>>();

  track(tables: string[]): void {
    const scope = this.tempScope.getStore();
    for (const t of tables) {
      this.tracked.add(t);
      scope?.add(t);
    }
  }

  /**
   * Runs an operation and then drops the engine tables tracked within its own async call chain (not
   * those of operations running concurrently on this session).
   */
  async withTempScope<T>(fn: () => Promise<T>): Promise<T> {
    const mine = new Set<string>();
    try {
      return await this.tempScope.run(mine, fn);
    } finally {
      await this.release([...mine]);
    }
  }

  /** Names of the engine tables this session holds (intermediate results). */
  trackedTables(): string[] {
    return [...this.tracked];
  }

  /** Drops engine tables an operation no longer needs (intermediate results of DML). */
  async release(tables: string[]): Promise<void> {
    for (const t of tables) {
      if (!this.tracked.delete(t)) continue;
      await this.engine.run(`DROP TABLE IF EXISTS ${t}`);
    }
  }

  async close(): Promise<void> {
    this.logs.clear();
    for (const s of this.stores.values()) (s as { close?: () => void }).close?.();
    this.stores.clear();
    await this.engine.close();
  }
}
