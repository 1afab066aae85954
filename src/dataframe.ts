/**
 * A lazy DataFrame: a query plan that becomes DuckDB SQL only when an action (toArray, count, show)
 * runs. A DataFrame over a Delta snapshot keeps its filters beside the scan so files are skipped by
 * partition values and stats before DuckDB opens them.
 */
import type { Snapshot } from './core/snapshot.js';
import { quoteIdent } from './core/schema.js';
import { InvalidArgumentError } from './errors.js';
import { guardExpression } from './expression-guard.js';
import type { Engine, JsonRow } from './engine/engine.js';
import { type ScanPlan, planScan } from './engine/scan.js';
import type { ObjectStore } from './storage/object-store.js';
import { type DeltaWriteOptions, type WriteResult, writeDelta } from './table/write.js';
import type { Floe } from './floe.js';

export type Plan =
  | { kind: 'delta'; snapshot: Snapshot; store: ObjectStore; filters: string[] }
  | { kind: 'sql'; sql: string }
  | { kind: 'filter'; child: Plan; condition: string }
  | { kind: 'select'; child: Plan; columns: string[] }
  | { kind: 'limit'; child: Plan; n: number }
  | { kind: 'orderBy'; child: Plan; keys: string[] };

/** What a query read: for tests and EXPLAIN-like output. */
export interface ScanMetrics {
  filesTotal: number;
  filesScanned: number;
}

export interface SessionLike {
  readonly engine: Engine;
  /** Registers engine tables to drop when the session closes. */
  track(tables: string[]): void;
}

export class DataFrame {
  readonly session: SessionLike;
  readonly plan: Plan;
  readonly aliasName?: string;
  /** Filled after the DataFrame's SQL is built: file skipping counts of its Delta scans. */
  lastScan: ScanMetrics[] = [];

  constructor(session: SessionLike, plan: Plan, aliasName?: string) {
    this.session = session;
    this.plan = plan;
    this.aliasName = aliasName;
  }

  /** Rows satisfying a SQL predicate (DuckDB / Spark SQL syntax), e.g. `"id > 5 AND letter = 'a'"`. */
  filter(condition: string): DataFrame {
    if (!condition.trim()) throw new InvalidArgumentError('filter() needs a non-empty SQL condition.');
    guardExpression(condition);
    if (this.plan.kind === 'delta') return new DataFrame(this.session, { ...this.plan, filters: [...this.plan.filters, condition] }, this.aliasName);
    return new DataFrame(this.session, { kind: 'filter', child: this.plan, condition }, this.aliasName);
  }

  /** Alias of `filter`. */
  where(condition: string): DataFrame {
    return this.filter(condition);
  }

  /** Columns or SQL expressions (`"id"`, `"price * qty AS total"`). */
  select(...columns: string[]): DataFrame {
    if (!columns.length) throw new InvalidArgumentError('select() needs at least one column.');
    guardExpression(...columns);
    return new DataFrame(this.session, { kind: 'select', child: this.plan, columns }, this.aliasName);
  }

  limit(n: number): DataFrame {
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`limit() needs a non-negative integer, got ${n}.`);
    return new DataFrame(this.session, { kind: 'limit', child: this.plan, n }, this.aliasName);
  }

  /** Sort keys as SQL (`"id DESC"`). */
  orderBy(...keys: string[]): DataFrame {
    guardExpression(...keys);
    return new DataFrame(this.session, { kind: 'orderBy', child: this.plan, keys }, this.aliasName);
  }

  /** Names this DataFrame for use in conditions (`target.id = source.id`), as PySpark's `alias`. */
  alias(name: string): DataFrame {
    return new DataFrame(this.session, this.plan, name);
  }

  /** The DuckDB SQL of this DataFrame. Builds the scan (loading deletion vectors) on first use. */
  async toSQL(): Promise<string> {
    this.lastScan = [];
    return this.build(this.plan);
  }

  private async build(p: Plan): Promise<string> {
    switch (p.kind) {
      case 'delta': {
        const scan: ScanPlan = await planScan(this.session.engine, p.store, p.snapshot, { filters: p.filters });
        this.session.track(scan.tables);
        this.lastScan.push({ filesTotal: scan.filesTotal, filesScanned: scan.filesScanned });
        if (!p.filters.length) return scan.sql;
        return `SELECT * FROM (${scan.sql}) WHERE ${p.filters.map((f) => `(${f})`).join(' AND ')}`;
      }
      case 'sql':
        return p.sql;
      case 'filter':
        return `SELECT * FROM (${await this.build(p.child)}) WHERE ${p.condition}`;
      case 'select':
        return `SELECT ${p.columns.join(', ')} FROM (${await this.build(p.child)})`;
      case 'limit':
        return `SELECT * FROM (${await this.build(p.child)}) LIMIT ${p.n}`;
      case 'orderBy':
        return `SELECT * FROM (${await this.build(p.child)}) ORDER BY ${p.keys.join(', ')}`;
    }
  }

  /** All rows as JS objects (bigint for 64-bit integers, Date for timestamps, Buffer for binary). */
  async toArray(): Promise<JsonRow[]> {
    return this.session.engine.allJs(await this.toSQL());
  }

  /** Alias of `toArray`, as PySpark's `collect`. */
  async collect(): Promise<JsonRow[]> {
    return this.toArray();
  }

  /** All rows with JSON-safe values: 64-bit integers, decimals and timestamps as strings DuckDB casts back. */
  async toJSON(): Promise<JsonRow[]> {
    return this.session.engine.allJson(await this.toSQL());
  }

  async count(): Promise<number> {
    const rows = await this.session.engine.allJson(`SELECT count(*) AS n FROM (${await this.toSQL()})`);
    return Number(rows[0]!.n);
  }

  /** Column names and DuckDB types. */
  async columns(): Promise<{ name: string; type: string }[]> {
    return this.session.engine.describe(await this.toSQL());
  }

  /** Writers, as PySpark's `df.write`: `await df.write.delta(path, { mode: 'append' })`. */
  get write(): { delta: (location: string, options?: DeltaWriteOptions) => Promise<WriteResult> } {
    return { delta: (location, options) => writeDelta(this.session as Floe, this, location, options) };
  }

  /** Prints the first `n` rows as a table, like PySpark's `show()`. */
  async show(n = 20): Promise<void> {
    process.stdout.write(await this.limit(n).tableText());
  }

  /**
   * All rows as an ASCII table, values shown as Spark shows them: timestamps in the session time
   * zone (UTC) without an offset suffix.
   */
  async tableText(): Promise<string> {
    const cols = await this.columns();
    const rows = await this.toJSON();
    const tz = cols.filter((c) => c.type === 'TIMESTAMP WITH TIME ZONE').map((c) => c.name);
    if (tz.length) {
      for (const r of rows) for (const c of tz) if (typeof r[c] === 'string') r[c] = (r[c] as string).replace(/\+00(:00)?$/, '');
    }
    return formatTable(cols.map((c) => c.name), rows);
  }
}

/** Renders rows as an ASCII table. */
export function formatTable(cols: string[], rows: JsonRow[]): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+\n';
  const fmt = (vals: string[]): string => '|' + vals.map((v, i) => ` ${v.padEnd(widths[i]!)} `).join('|') + '|\n';
  return line + fmt(cols) + line + rows.map((r) => fmt(cols.map((c) => cell(r[c])))).join('') + line;
}

export { quoteIdent };
