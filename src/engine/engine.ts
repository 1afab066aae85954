/**
 * The execution engine: one embedded DuckDB instance. Extension autoinstall and autoload are off
 * (nothing downloads at run time); the session time zone is UTC so Delta timestamps, which are UTC
 * instants, round-trip exactly. Also reads checkpoint Parquet files for the protocol layer.
 */
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { FloeError, missingDataFileError } from '../errors.js';
import type { ParquetRowReader } from '../core/delta-log.js';
import { quoteIdent, quoteString } from '../core/schema.js';
import type { ObjectStore } from '../storage/object-store.js';
import { ensureLocal, readPath } from '../storage/open.js';

export type JsonRow = Record<string, unknown>;

export interface EngineOptions {
  /** DuckDB threads (default: DuckDB's own default, the core count). */
  threads?: number;
  memoryLimit?: string;
}

export class Engine implements ParquetRowReader {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}
  private counter = 0;
  private closed = false;

  static async create(options: EngineOptions = {}): Promise<Engine> {
    const config: Record<string, string> = {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    };
    if (options.threads) config.threads = String(options.threads);
    if (options.memoryLimit) config.memory_limit = options.memoryLimit;
    const instance = await DuckDBInstance.create(':memory:', config);
    const conn = await instance.connect();
    await conn.run("SET TimeZone = 'UTC'");
    await conn.run('SET parquet_metadata_cache = true');
    return new Engine(instance, conn);
  }

  /** A fresh identifier for an engine-side table owned by the caller. */
  uniqueName(prefix: string): string {
    return `__floe_${prefix}_${++this.counter}`;
  }

  get connection(): DuckDBConnection {
    if (this.closed) throw new FloeError('FLOE_SESSION_CLOSED', 'This floe session is closed; create a new one with Floe.create().');
    return this.conn;
  }

  /**
   * One statement at a time on the connection: DuckDB runs each statement on its own threads, but a
   * connection must not be given a second statement while one is pending, and a session may be used by
   * concurrent operations (pipeline flows, Promise.all in user code). Their other work (log reads,
   * commits, uploads) still overlaps.
   */
  private queue: Promise<unknown> = Promise.resolve();
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async run(sql: string): Promise<void> {
    try {
      await this.serial(() => this.connection.run(sql));
    } catch (e) {
      throw translateError(e, sql);
    }
  }

  /**
   * Rows as JSON-safe values: BIGINT/DECIMAL/timestamps as strings DuckDB can cast back. `settings`:
   * DuckDB settings in force for this one statement only (SET before, RESET after, in the same turn
   * of the connection: no other statement of the session runs in between).
   */
  async allJson(sql: string, settings: Record<string, string | number> = {}): Promise<JsonRow[]> {
    const names = Object.keys(settings);
    try {
      const r = await this.serial(async () => {
        for (const k of names) await this.connection.run(`SET ${k} = ${typeof settings[k] === 'number' ? settings[k] : `'${String(settings[k]).replace(/'/g, "''")}'`}`);
        try {
          return await this.connection.runAndReadAll(sql);
        } finally {
          for (const k of names) await this.connection.run(`RESET ${k}`);
        }
      });
      return r.getRowObjectsJson() as JsonRow[];
    } catch (e) {
      throw translateError(e, sql);
    }
  }

  /** Rows as JS values: bigint for BIGINT, Date for timestamps, Buffer for BLOB. */
  async allJs(sql: string): Promise<JsonRow[]> {
    try {
      const r = await this.serial(() => this.connection.runAndReadAll(sql));
      return r.getRowObjectsJS() as JsonRow[];
    } catch (e) {
      throw translateError(e, sql);
    }
  }

  /**
   * A query's columns as Float64Arrays, for bulk numeric results (row numbers of deletion vectors):
   * no row objects. Every column must be of a type DuckDB hands over as a JS number (INTEGER,
   * UINTEGER, DOUBLE, …; cast BIGINT to DOUBLE, exact up to 2^53); NULL reads as NaN.
   */
  async numericColumns(sql: string): Promise<Float64Array[]> {
    try {
      return await this.serial(async () => {
        const r = await this.connection.run(sql);
        const cols = Array.from({ length: r.columnCount }, () => new Float64Array(r.rowCount));
        let at = 0;
        for (let c = 0; c < r.chunkCount; c++) {
          const chunk = r.getChunk(c);
          const n = chunk.rowCount;
          cols.forEach((col, k) => {
            const v = chunk.getColumnVector(k);
            for (let i = 0; i < n; i++) {
              const x = v.getItem(i);
              col[at + i] = x === null ? NaN : (x as number);
            }
          });
          at += n;
        }
        return cols;
      });
    } catch (e) {
      throw translateError(e, sql);
    }
  }

  /** Column names and DuckDB types of a query's result, without running it. */
  async describe(sql: string): Promise<{ name: string; type: string }[]> {
    const rows = await this.allJson(`DESCRIBE ${sql}`);
    return rows.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
  }

  /** Appends (integer id, row index) pairs into a (BIGINT, BIGINT) table: deletion-vector rows keyed by a file id. */
  appendIdRows(table: string, rows: Array<[number, ArrayLike<number>]>): Promise<void> {
    return this.serial(async () => {
      const app = await this.connection.createAppender(table);
      try {
        for (const [id, values] of rows) {
          const key = BigInt(id);
          for (let i = 0; i < values.length; i++) {
            app.appendBigInt(key);
            app.appendBigInt(BigInt(values[i]!));
            app.endRow();
          }
        }
        app.flushSync();
      } finally {
        app.closeSync();
      }
    });
  }

  /**
   * ParquetRowReader: reads checkpoint or sidecar files. Struct-valued action columns come back as
   * objects (via DuckDB's to_json, so MAP columns become JSON objects, as in JSON commits).
   */
  async readRows(store: ObjectStore, keys: string[], columns?: string[]): Promise<Record<string, unknown>[]> {
    await ensureLocal(store, keys.map((k) => ({ path: k })));
    const paths = keys.map((k) => {
      const p = readPath(store, k);
      if (!p) throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', `Cannot read ${k}: remote stores are not supported yet.`);
      return p;
    });
    const src = `read_parquet([${paths.map(quoteString).join(', ')}], union_by_name = true)`;
    const cols = (await this.describe(`SELECT * FROM ${src}`)).map((c) => c.name);
    const wanted = cols.filter((c) => !columns || columns.includes(c));
    if (!wanted.length) return [];
    const sel = wanted.map((c) => `to_json(${quoteIdent(c)}) AS ${quoteIdent(c)}`).join(', ');
    const r = await this.serial(() => this.connection.runAndReadAll(`SELECT ${sel} FROM ${src}`)).catch((e) => {
      throw translateError(e, src);
    });
    const names = r.columnNames();
    const out: Record<string, unknown>[] = [];
    for (const row of r.getRows()) {
      const o: Record<string, unknown> = {};
      let any = false;
      for (let i = 0; i < names.length; i++) {
        const v = row[i];
        if (v === null || v === undefined) continue;
        o[names[i]!] = JSON.parse(String(v));
        any = true;
      }
      if (any) out.push(o);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

/** Turns DuckDB errors into typed floe errors where we know what they mean. */
export function translateError(e: unknown, sql: string): Error {
  if (e instanceof FloeError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const missing = /No files found that match the pattern "([^"]+)"|Cannot open file "([^"]+)": No such file/.exec(msg);
  if (missing) {
    const file = missing[1] ?? missing[2];
    return missingDataFileError(file!, e);
  }
  // A data file that is not (or no longer) valid Parquet: truncated, overwritten, not Parquet at all.
  const corrupt = /No magic bytes found at (?:the )?end of file '([^']+)'|(?:File|file) '([^']+)' (?:too small to be a Parquet file|is not a valid Parquet file)|Invalid Input Error: .*?(?:Parquet|parquet).*?'([^']+\.parquet)'/.exec(msg);
  if (corrupt) {
    const file = corrupt[1] ?? corrupt[2] ?? corrupt[3]!;
    return new FloeError('DELTA_DATA_FILE_CORRUPT', `A data file referenced by the Delta log is not readable Parquet (truncated or damaged): ${file}. Nothing was changed. Restore the file from a backup, or time travel to a version that does not need it (DESCRIBE HISTORY shows which commit added it).`, { file }, { cause: e });
  }
  // DuckDB's first line only: the rest quotes floe's generated SQL (LINE 1: … ^), lists DuckDB's
  // function signatures or suggests DuckDB settings (Use "SET …"), none of which the user wrote.
  const first = msg.split('\n')[0]!.trim();
  if (/Parser Error|Binder Error|Catalog Error/.test(msg)) {
    return new FloeError('FLOE_SQL_ERROR', first, { sql: sql.length > 2000 ? sql.slice(0, 2000) + '…' : sql }, { cause: e });
  }
  return new FloeError('FLOE_ENGINE_ERROR', first, {}, { cause: e });
}
