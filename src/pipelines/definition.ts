/**
 * The definition API of declarative pipelines, close to `pyspark.pipelines` / `dlt`:
 *
 * ```ts
 * export default definePipeline((p) => {
 *   p.table({ name: 'bronze', query: (ctx) => ctx.readStreamFiles(ctx.conf('landing')!, { format: 'json' }) });
 *   p.createStreamingTable('silver');
 *   p.createAutoCdcFlow({ target: 'silver', source: 'bronze', keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'D'" });
 *   p.materializedView({ name: 'gold', query: (ctx) => ctx.sql('SELECT country, count(*) AS n FROM silver GROUP BY ALL', { silver: ctx.read('silver') }) });
 * });
 * ```
 *
 * Definitions only record datasets and flows; nothing runs until the graph is resolved (graph.ts) and
 * executed (runner.ts). Query functions are called once with a recording context during analysis
 * (to find what they read) and once per batch during a run, so they must be free of side effects.
 */
import type { DataFrame } from '../dataframe.js';
import type { ApplyChangesOptions } from './auto-cdc.js';
import { duckType } from '../core/schema.js';
import { InvalidArgumentError } from '../errors.js';
import { Cursor } from '../sql/cursor.js';
import { tokenize } from '../sql/lexer.js';
import { parseType } from '../sql/types.js';
import type { Floe } from '../floe.js';

export type ExpectationAction = 'warn' | 'drop' | 'fail';

export interface Expectation {
  name: string;
  /** A SQL boolean (DuckDB syntax) over the flow's output columns; a row passes when it is TRUE. */
  condition: string;
  action: ExpectationAction;
}

function one(name: string, condition: string, action: ExpectationAction): Expectation {
  if (!name || typeof name !== 'string') throw new InvalidArgumentError('An expectation needs a name.', {}, 'INVALID_EXPECTATION');
  if (!condition || typeof condition !== 'string' || !condition.trim()) throw new InvalidArgumentError(`The expectation '${name}' needs a SQL condition.`, { name }, 'INVALID_EXPECTATION');
  return { name, condition, action };
}
const all = (m: Record<string, string>, action: ExpectationAction): Expectation[] => Object.entries(m).map(([n, c]) => one(n, c, action));

/** `@dp.expect`: rows failing the condition are kept and counted. */
export const expect = (name: string, condition: string): Expectation => one(name, condition, 'warn');
/** `@dp.expect_or_drop`: rows failing the condition are dropped and counted. */
export const expectOrDrop = (name: string, condition: string): Expectation => one(name, condition, 'drop');
/** `@dp.expect_or_fail`: a row failing the condition fails the flow. */
export const expectOrFail = (name: string, condition: string): Expectation => one(name, condition, 'fail');
export const expectAll = (m: Record<string, string>): Expectation[] => all(m, 'warn');
export const expectAllOrDrop = (m: Record<string, string>): Expectation[] => all(m, 'drop');
export const expectAllOrFail = (m: Record<string, string>): Expectation[] => all(m, 'fail');

export type Expectations = Array<Expectation | Expectation[]>;

export interface StreamReadOptions {
  /** Skip source commits that update or delete rows (instead of failing the stream). */
  skipChangeCommits?: boolean;
  /** Skip source commits that only delete rows (DELETE, a dropped partition) instead of failing the stream (Spark's ignoreDeletes). */
  ignoreDeletes?: boolean;
  /** Read the source's change data feed (with `_change_type`, `_commit_version`, `_commit_timestamp`). */
  readChangeFeed?: boolean;
  /**
   * First version read when the flow has no checkpoint. Default, as Spark: the latest snapshot (for
   * the change feed, its rows as `insert` changes of its version), then what is committed after it.
   */
  startingVersion?: number;
}

export type FileFormat = 'json' | 'csv' | 'parquet';

export interface FileReadOptions {
  format: FileFormat;
  /** CSV: first line is a header (default true). */
  header?: boolean;
  /** CSV delimiter. */
  delimiter?: string;
  /**
   * At most this many new files per batch (oldest first, by modification time then name); a run
   * processes everything available in as many batches as needed (Auto Loader's `maxFilesPerTrigger`).
   */
  maxFilesPerTrigger?: number;
  /**
   * Auto Loader's `maxFileAge`: files modified longer than this before the newest processed file are
   * no longer tracked by name (the checkpoint stays bounded) and a file landing with such an old
   * modification time is NOT picked up. Milliseconds, or a duration such as '7 days' / '12 hours'.
   * Default: none, every processed file is tracked and no file is ever skipped.
   */
  maxFileAge?: number | string;
}

/** What a query function receives. */
export interface QueryContext {
  /** The session (for `floe.sql`, `createDataFrame`, ...). */
  readonly floe: Floe;
  /** Batch read of a dataset of the pipeline, a `schema.table` of the warehouse, or a Delta path. */
  read(name: string): DataFrame;
  /** Incremental read: the data of a streaming table / Delta path committed since this flow's checkpoint. */
  readStream(name: string, options?: StreamReadOptions): DataFrame;
  /** Incremental read of files landing in a folder (each file once): the analogue of Auto Loader. */
  readStreamFiles(dir: string, options: FileReadOptions): DataFrame;
  /** Batch read of every file in a folder. */
  readFiles(dir: string, options: FileReadOptions): DataFrame;
  /** A DuckDB query in which the given DataFrames are visible by name (as CTEs). */
  sql(query: string, frames?: Record<string, DataFrame>): DataFrame;
  /**
   * A value of the spec's `configuration`; without a fallback a missing key is an error
   * (PIPELINE_CONFIGURATION_MISSING), as `spark.conf.get(key)` is.
   */
  conf(key: string): string;
  conf(key: string, fallback: string): string;
}

export type QueryFunction = (ctx: QueryContext) => DataFrame | Promise<DataFrame>;

/** A declared column: a Spark SQL type (`BIGINT`, `STRING`, `DECIMAL(10,2)`, `ARRAY<STRING>`, …). */
export interface SchemaColumn {
  name: string;
  type: string;
  /** false: NULL values fail the flow (NOT NULL). Default true. */
  nullable?: boolean;
}

/** A declared column, resolved: the DuckDB type the data is checked against and cast to. */
export interface DeclaredColumn {
  name: string;
  duckType: string;
  nullable: boolean;
}

export interface TableOptions {
  name: string;
  comment?: string;
  /**
   * The table's declared schema, a DDL string (`'id BIGINT NOT NULL, name STRING'`) or columns. Data
   * written by the table's flows must fit it: a column it does not declare, a value that does not
   * convert to the declared type, or a NULL in a NOT NULL column fails the flow naming the column.
   */
  schema?: string | SchemaColumn[];
  partitionBy?: string[];
  tableProperties?: Record<string, string>;
  expectations?: Expectations;
}

export interface TableDefinition extends TableOptions {
  /** The default flow (named like the table). Streaming if it reads a stream, else a materialized view. */
  query: QueryFunction;
}

export interface ViewDefinition {
  name: string;
  comment?: string;
  query: QueryFunction;
  expectations?: Expectations;
}

export interface AppendFlowDefinition {
  target: string;
  /** Default: `<target>_append_<n>`. */
  name?: string;
  query: QueryFunction;
  /** A batch backfill that runs once (and again after a full refresh). */
  once?: boolean;
  comment?: string;
  expectations?: Expectations;
}

/** The AUTO CDC semantics options, as `applyChanges` takes them. */
type AutoCdcSemantics = Pick<ApplyChangesOptions,
  'keys' | 'sequenceBy' | 'storedAsScdType' | 'applyAsDeletes' | 'applyAsTruncates' | 'columnList' | 'exceptColumnList'
  | 'ignoreNullUpdates' | 'trackHistoryColumnList' | 'trackHistoryExceptColumnList'>;

export interface AutoCdcFlowDefinition extends AutoCdcSemantics {
  target: string;
  /** A dataset (streaming table or view over a stream) or a Delta path, read as a stream. */
  source: string;
  /** Options of the stream read of `source`. */
  sourceOptions?: StreamReadOptions;
  /** Default: the target's name. */
  name?: string;
}

export interface SnapshotFunctionResult {
  df: DataFrame;
  version: number;
}

export interface AutoCdcFromSnapshotFlowDefinition {
  target: string;
  /**
   * A dataset / `schema.table` / Delta path whose current content is the snapshot (versioned by the
   * source table's version), or a function returning the snapshot after `lastVersion` (null: none).
   */
  source: string | ((lastVersion: number | null, ctx: QueryContext) => SnapshotFunctionResult | null | Promise<SnapshotFunctionResult | null>);
  name?: string;
  keys: string[];
  storedAsScdType?: 1 | 2;
  columnList?: string[];
  exceptColumnList?: string[];
  trackHistoryColumnList?: string[];
  trackHistoryExceptColumnList?: string[];
}

export type DatasetKind = 'table' | 'streamingTable' | 'materializedView' | 'view';

export interface DatasetDef {
  name: string;
  /** 'table' (from p.table) becomes a streaming table or a materialized view once its query is analyzed. */
  kind: DatasetKind;
  comment?: string;
  partitionBy?: string[];
  tableProperties: Record<string, string>;
  expectations: Expectation[];
  /** The declared schema (resolved), if any. */
  schema?: DeclaredColumn[];
  /** Library file that defined it (for messages). */
  source?: string;
}

export type FlowKind = 'query' | 'append' | 'autoCdc' | 'snapshotCdc';

export interface FlowDef {
  name: string;
  target: string;
  kind: FlowKind;
  query?: QueryFunction;
  once: boolean;
  expectations: Expectation[];
  cdc?: AutoCdcFlowDefinition;
  snapshot?: AutoCdcFromSnapshotFlowDefinition;
  source?: string;
  comment?: string;
}

export interface PipelineDefinitions {
  datasets: DatasetDef[];
  flows: FlowDef[];
}

/** The builder passed to a definition function. */
export interface PipelineBuilder {
  table(def: TableDefinition): void;
  materializedView(def: TableDefinition): void;
  view(def: ViewDefinition): void;
  temporaryView(def: ViewDefinition): void;
  createStreamingTable(name: string, options?: Omit<TableOptions, 'name'>): void;
  appendFlow(def: AppendFlowDefinition): void;
  createAutoCdcFlow(def: AutoCdcFlowDefinition): void;
  /** Alias of createAutoCdcFlow (the `dlt.apply_changes` name). */
  applyChanges(def: AutoCdcFlowDefinition): void;
  createAutoCdcFromSnapshotFlow(def: AutoCdcFromSnapshotFlowDefinition): void;
  applyChangesFromSnapshot(def: AutoCdcFromSnapshotFlowDefinition): void;
}

export type DefineFunction = (p: PipelineBuilder) => void;

export interface PipelineModule {
  readonly __floePipeline: true;
  readonly define: DefineFunction;
}

/** Declares a pipeline's datasets and flows; a library file exports the result as its default export. */
export function definePipeline(define: DefineFunction): PipelineModule {
  if (typeof define !== 'function') throw new InvalidArgumentError('definePipeline() needs a function (p) => { p.table(...); ... }.');
  return { __floePipeline: true, define };
}

export function isPipelineModule(x: unknown): x is PipelineModule {
  return typeof x === 'object' && x !== null && (x as PipelineModule).__floePipeline === true && typeof (x as PipelineModule).define === 'function';
}

const flat = (e: Expectations | undefined): Expectation[] => (e ?? []).flatMap((x) => (Array.isArray(x) ? x : [x]));

function need(cond: unknown, what: string, msg: string): void {
  if (!cond) throw new InvalidArgumentError(`${what}: ${msg}`, {}, 'INVALID_PIPELINE_DEFINITION');
}

const TABLE_KEYS = ['name', 'comment', 'schema', 'partitionBy', 'tableProperties', 'expectations'];
const CDC_KEYS = ['keys', 'sequenceBy', 'storedAsScdType', 'applyAsDeletes', 'applyAsTruncates', 'columnList', 'exceptColumnList', 'ignoreNullUpdates', 'trackHistoryColumnList', 'trackHistoryExceptColumnList', 'target', 'source', 'sourceOptions', 'name'];
const KNOWN_KEYS: Record<string, string[]> = {
  table: [...TABLE_KEYS, 'query'],
  materializedView: [...TABLE_KEYS, 'query'],
  view: ['name', 'comment', 'query', 'expectations'],
  createStreamingTable: TABLE_KEYS.filter((k) => k !== 'name'),
  appendFlow: ['target', 'name', 'query', 'once', 'comment', 'expectations'],
  createAutoCdcFlow: CDC_KEYS,
  createAutoCdcFromSnapshotFlow: ['target', 'source', 'name', 'keys', 'storedAsScdType', 'columnList', 'exceptColumnList', 'trackHistoryColumnList', 'trackHistoryExceptColumnList'],
};

/** An option name the method does not know (a misspelling would otherwise be ignored): an error naming the closest known one. */
function onlyKnown(method: string, def: unknown, what: string): void {
  if (!def || typeof def !== 'object') return;
  const known = KNOWN_KEYS[method]!;
  for (const k of Object.keys(def)) {
    if (known.includes(k) || (def as Record<string, unknown>)[k] === undefined) continue;
    const near = known.map((x) => [x, editDistance(k.toLowerCase(), x.toLowerCase())] as const).sort((a, b) => a[1] - b[1])[0]!;
    throw new InvalidArgumentError(`${what}: unknown option '${k}'${near[1] <= 3 ? ` (did you mean '${near[0]}'?)` : ''}. Options: ${known.join(', ')}.`, { option: k }, 'INVALID_PIPELINE_DEFINITION');
  }
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Runs definition functions into plain definitions (`source` names the library file for messages). */
export function collectDefinitions(modules: Array<{ define: DefineFunction; source?: string }>): PipelineDefinitions {
  const out: PipelineDefinitions = { datasets: [], flows: [] };
  for (const m of modules) {
    let appendN = 0;
    const source = m.source;
    const addTable = (kind: DatasetKind, def: TableDefinition): void => {
      need(def && typeof def.name === 'string' && def.name, `${kind} definition${source ? ` in ${source}` : ''}`, 'needs a name');
      onlyKnown(kind === 'materializedView' ? 'materializedView' : 'table', def, `${kind === 'materializedView' ? 'materializedView' : 'table'} '${def.name}'${source ? ` in ${source}` : ''}`);
      need(typeof def.query === 'function', `${kind} '${def.name}'`, 'needs a query function (ctx) => DataFrame');
      out.datasets.push({ name: def.name, kind, comment: def.comment, partitionBy: def.partitionBy, tableProperties: { ...(def.tableProperties ?? {}) }, expectations: flat(def.expectations), schema: declaredSchema(def.name, def.schema), source });
      out.flows.push({ name: def.name, target: def.name, kind: 'query', query: def.query, once: false, expectations: [], comment: def.comment, source });
    };
    const addView = (def: ViewDefinition): void => {
      need(def && typeof def.name === 'string' && def.name, `view definition${source ? ` in ${source}` : ''}`, 'needs a name');
      need(typeof def.query === 'function', `view '${def.name}'`, 'needs a query function');
      onlyKnown('view', def, `view '${def.name}'${source ? ` in ${source}` : ''}`);
      out.datasets.push({ name: def.name, kind: 'view', comment: def.comment, tableProperties: {}, expectations: flat(def.expectations), source });
      out.flows.push({ name: def.name, target: def.name, kind: 'query', query: def.query, once: false, expectations: [], source });
    };
    const addCdc = (def: AutoCdcFlowDefinition): void => {
      need(def && def.target, 'createAutoCdcFlow', 'needs a target');
      onlyKnown('createAutoCdcFlow', def, `createAutoCdcFlow into '${def.target}'${source ? ` in ${source}` : ''}`);
      need(typeof def.source === 'string' && def.source, `createAutoCdcFlow into '${def.target}'`, 'needs a source dataset name or Delta path');
      need(Array.isArray(def.keys) && def.keys.length, `createAutoCdcFlow into '${def.target}'`, 'needs keys');
      need(typeof def.sequenceBy === 'string' && def.sequenceBy, `createAutoCdcFlow into '${def.target}'`, 'needs sequenceBy');
      need(def.storedAsScdType === undefined || def.storedAsScdType === 1 || def.storedAsScdType === 2, `createAutoCdcFlow into '${def.target}'`, 'storedAsScdType must be 1 or 2');
      need(!(def.applyAsTruncates && def.storedAsScdType === 2), `createAutoCdcFlow into '${def.target}'${source ? ` in ${source}` : ''}`, 'applyAsTruncates (APPLY AS TRUNCATE WHEN) is supported for SCD type 1 only');
      need(!((def.trackHistoryColumnList || def.trackHistoryExceptColumnList) && (def.storedAsScdType ?? 1) === 1), `createAutoCdcFlow into '${def.target}'${source ? ` in ${source}` : ''}`, 'trackHistoryColumnList / trackHistoryExceptColumnList (TRACK HISTORY ON) apply to SCD type 2 only');
      out.flows.push({ name: def.name ?? def.target, target: def.target, kind: 'autoCdc', once: false, expectations: [], cdc: def, source });
    };
    const addSnap = (def: AutoCdcFromSnapshotFlowDefinition): void => {
      need(def && def.target, 'createAutoCdcFromSnapshotFlow', 'needs a target');
      onlyKnown('createAutoCdcFromSnapshotFlow', def, `createAutoCdcFromSnapshotFlow into '${def.target}'${source ? ` in ${source}` : ''}`);
      need(typeof def.source === 'string' || typeof def.source === 'function', `createAutoCdcFromSnapshotFlow into '${def.target}'`, 'needs a source (dataset name, path or function)');
      need(Array.isArray(def.keys) && def.keys.length, `createAutoCdcFromSnapshotFlow into '${def.target}'`, 'needs keys');
      out.flows.push({ name: def.name ?? def.target, target: def.target, kind: 'snapshotCdc', once: false, expectations: [], snapshot: def, source });
    };
    const builder: PipelineBuilder = {
      table: (d) => addTable('table', d),
      materializedView: (d) => addTable('materializedView', d),
      view: addView,
      temporaryView: addView,
      createStreamingTable: (name, o = {}) => {
        need(typeof name === 'string' && name, 'createStreamingTable', 'needs a name');
        onlyKnown('createStreamingTable', o, `createStreamingTable '${name}'${source ? ` in ${source}` : ''}`);
        out.datasets.push({ name, kind: 'streamingTable', comment: o.comment, partitionBy: o.partitionBy, tableProperties: { ...(o.tableProperties ?? {}) }, expectations: flat(o.expectations), schema: declaredSchema(name, o.schema), source });
      },
      appendFlow: (d) => {
        need(d && d.target, 'appendFlow', 'needs a target');
        onlyKnown('appendFlow', d, `appendFlow into '${d.target}'${source ? ` in ${source}` : ''}`);
        need(typeof d.query === 'function', `appendFlow into '${d.target}'`, 'needs a query function');
        out.flows.push({ name: d.name ?? `${d.target}_append_${++appendN}`, target: d.target, kind: 'append', query: d.query, once: !!d.once, expectations: flat(d.expectations), comment: d.comment, source });
      },
      createAutoCdcFlow: addCdc,
      applyChanges: addCdc,
      createAutoCdcFromSnapshotFlow: addSnap,
      applyChangesFromSnapshot: addSnap,
    };
    m.define(builder);
  }
  return out;
}

/** Resolves a declared schema (DDL string or columns) to DuckDB types; clear errors for bad input. */
export function declaredSchema(dataset: string, schema: TableOptions['schema']): DeclaredColumn[] | undefined {
  if (schema === undefined || schema === null) return undefined;
  const cols: SchemaColumn[] = typeof schema === 'string' ? parseDdlColumns(dataset, schema) : schema;
  if (!Array.isArray(cols) || !cols.length) throw new InvalidArgumentError(`The schema of '${dataset}' must be a DDL string ('id BIGINT, name STRING') or a non-empty list of { name, type } columns.`, { dataset }, 'INVALID_SCHEMA');
  const seen = new Set<string>();
  return cols.map((c) => {
    if (!c || typeof c.name !== 'string' || !c.name || typeof c.type !== 'string') throw new InvalidArgumentError(`The schema of '${dataset}' has a column without a name or type: ${JSON.stringify(c)}.`, { dataset }, 'INVALID_SCHEMA');
    if (seen.has(c.name.toLowerCase())) throw new InvalidArgumentError(`The schema of '${dataset}' declares the column '${c.name}' twice.`, { dataset, column: c.name }, 'INVALID_SCHEMA');
    seen.add(c.name.toLowerCase());
    return { name: c.name, duckType: sparkTypeToDuck(dataset, c.name, c.type), nullable: c.nullable !== false };
  });
}

function sparkTypeToDuck(dataset: string, column: string, type: string): string {
  try {
    const c = new Cursor(tokenize(type));
    const t = parseType(c);
    c.expectEnd();
    return duckType(t);
  } catch (e) {
    throw new InvalidArgumentError(`The schema of '${dataset}': column '${column}' has the type '${type}', which is not a Spark SQL type (${(e as Error).message}).`, { dataset, column }, 'INVALID_SCHEMA');
  }
}

/** `name TYPE [NOT NULL] [COMMENT '…'], …` */
function parseDdlColumns(dataset: string, ddl: string): SchemaColumn[] {
  const out: SchemaColumn[] = [];
  let c: Cursor;
  try {
    c = new Cursor(tokenize(ddl));
  } catch (e) {
    throw new InvalidArgumentError(`The schema of '${dataset}' is not a column list: ${(e as Error).message}`, { dataset }, 'INVALID_SCHEMA');
  }
  try {
    while (!c.atEnd()) {
      const name = c.ident('a column name').value;
      const start = c.i;
      parseType(c);
      const type = c.tokens.slice(start, c.i).map((t) => t.text).join(' ');
      let nullable = true;
      for (;;) {
        if (c.acceptKw('NOT', 'NULL')) nullable = false;
        else if (c.acceptKw('NULL')) nullable = true;
        else if (c.acceptKw('COMMENT')) c.string('a comment string');
        else break;
      }
      out.push({ name, type, nullable });
      if (!c.acceptOp(',')) c.expectEnd();
    }
  } catch (e) {
    throw new InvalidArgumentError(`The schema of '${dataset}' is not a column list ('id BIGINT NOT NULL, name STRING'): ${(e as Error).message}`, { dataset }, 'INVALID_SCHEMA');
  }
  return out;
}
