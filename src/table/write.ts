/**
 * `df.write.delta(path, options)`: create, append, overwrite (whole table or `replaceWhere` on
 * partition columns), schema enforcement and `mergeSchema`, NOT NULL and CHECK constraints,
 * idempotent writes through `txn`, then the commit and the checkpoint it may trigger. Also the row
 * preparation every write path shares (`completeRow`: generated and DEFAULT values;
 * `constraintChecks`: NOT NULL, CHECK, invariants, generated-column checks).
 */
import { randomUUID } from 'node:crypto';
import type { AddCDCFile, AddFile, Metadata } from '../core/actions.js';
import { parsePredicate } from '../core/predicate.js';
import { partitionOnly } from '../core/skipping.js';
import type { DeltaLog } from '../core/delta-log.js';
import { type StructField, type StructType, columnMappingMode, physicalName, deltaTypeFromDuck, duckType, parseSchema, quoteIdent, quoteString } from '../core/schema.js';
import type { Snapshot } from '../core/snapshot.js';
import { Transaction } from '../core/transaction.js';
import { checkWriteSupport, mergeProtocols, protocolFor, withoutFeatureProps } from '../core/write-support.js';
import { NO_COLUMN_STATS, statsColumnSpec, validateStatsProperties } from '../core/stats-columns.js';
import type { DataFrame } from '../dataframe.js';
import { writeCheckpoint } from '../engine/checkpoint-writer.js';
import { partitionLiteral, pruneFiles } from '../engine/scan.js';
import { cdfOnForWrites, count, fileCouldMatch, markRows, materialize } from './dml.js';
import { DEFAULT_TARGET_FILE_SIZE, parquetVersionOf, validateParquetVersion, writeDataFiles } from '../engine/writer.js';
import { FloeError, InvalidArgumentError, TableNotFoundError, commitOutcomeUnknown } from '../errors.js';
import { guardExpression } from '../expression-guard.js';
import { storedExprToDuck } from '../sql/spark-expr.js';
import { charVarcharOf } from '../sql/types.js';
import type { Floe } from '../floe.js';
import { autoMergeOn, reconcileSchema } from './schema-evolution.js';
import { assignColumnMapping } from './alter.js';

/** Spark's session setting for INSERT OVERWRITE / overwrite writes on partitioned tables: static (default) or dynamic. */
export const PARTITION_OVERWRITE_MODE_CONF = 'spark.sql.sources.partitionOverwriteMode';

export type SaveMode = 'append' | 'overwrite' | 'error' | 'errorifexists' | 'ignore';

export interface DeltaWriteOptions {
  mode?: SaveMode;
  partitionBy?: string[];
  /** Add the data's new columns to the table schema (default: the session's spark.databricks.delta.schema.autoMerge.enabled). */
  mergeSchema?: boolean;
  /**
   * With mode overwrite on a partitioned table: 'dynamic' replaces only the partitions the data has
   * rows in (Delta's dynamic partition overwrite); 'static' (the default) the whole table. Default:
   * the session's spark.sql.sources.partitionOverwriteMode.
   */
  partitionOverwriteMode?: 'static' | 'dynamic';
  /** With mode overwrite: replace the table's schema and partitioning with the data's. */
  overwriteSchema?: boolean;
  /** With mode overwrite: replace only the rows matching this predicate on partition columns. */
  replaceWhere?: string;
  /** Idempotent writes: a write whose (txnAppId, txnVersion) the table has seen is skipped. */
  txnAppId?: string;
  txnVersion?: number;
  /** Table properties for a table this write creates. */
  properties?: Record<string, string>;
  /** Description of a table this write creates. */
  description?: string;
  userMetadata?: string;
  /** Columns the data lacks take their DEFAULT values (SQL INSERT with a column list). */
  columnDefaults?: boolean;
  /**
   * The commit's operation, as Spark records SQL CTAS / RTAS: 'CREATE TABLE AS SELECT',
   * 'REPLACE TABLE AS SELECT' or 'CREATE OR REPLACE TABLE AS SELECT' (with Spark's parameters:
   * partitionBy, description, properties); default WRITE (with the save mode).
   */
  operation?: 'CREATE TABLE AS SELECT' | 'REPLACE TABLE AS SELECT' | 'CREATE OR REPLACE TABLE AS SELECT';
}

export interface WriteResult {
  /** The committed version, or null when nothing was committed (ignore mode, or an idempotent retry). */
  version: number | null;
  skipped: boolean;
  numFiles: number;
  numOutputRows: number;
  numOutputBytes: number;
  numRemovedFiles: number;
  attempts: number;
}

const MODE_NAMES: Record<SaveMode, string> = { append: 'Append', overwrite: 'Overwrite', error: 'ErrorIfExists', errorifexists: 'ErrorIfExists', ignore: 'Ignore' };

/**
 * Sets up a table's metadata from a schema (used by create and by writes that create or replace).
 * The session's table defaults apply only to tables being created, as on Spark.
 */
export function newMetadata(floe: Floe, schema: StructType, partitionColumns: string[], properties: Record<string, string>, description?: string, name?: string, creating = true): Metadata {
  for (const c of partitionColumns) {
    const f = schema.fields.find((x) => x.name === c);
    if (!f) throw new InvalidArgumentError(`Partition column '${c}' is not in the schema (${schema.fields.map((x) => x.name).join(', ')}).`, {}, 'DELTA_PARTITION_COLUMN_NOT_FOUND');
    if (typeof f.type !== 'string') throw new InvalidArgumentError(`Partition column '${c}' has a nested type; partition columns must be of a primitive type.`);
  }
  if (partitionColumns.length && new Set(partitionColumns).size >= schema.fields.length) {
    throw new InvalidArgumentError(`Cannot use all columns for partition columns: a table partitioned by every column (${partitionColumns.join(', ')}) has no column left to write in its data files. Leave at least one column out of the partitioning.`, { partitionColumns }, 'DELTA_CANNOT_USE_ALL_COLUMNS_FOR_PARTITION');
  }
  const configuration = { ...(creating ? floe.tableDefaults() : {}), ...properties };
  validatePropertyValues(configuration);
  if (creating) validateStatsProperties(schema, partitionColumns, configuration);
  validateParquetVersion(configuration);
  return {
    id: randomUUID(),
    name: name ?? null,
    description: description ?? null,
    format: { provider: 'parquet', options: {} },
    schemaString: JSON.stringify(withColumnMapping(schema, configuration)),
    partitionColumns,
    configuration,
    createdTime: Date.now(),
  };
}

/** Table properties whose value is a boolean, and those whose value is an interval (`interval 7 days`). */
const BOOLEAN_PROPERTIES = ['delta.appendOnly'];
const INTERVAL_PROPERTIES = ['delta.logRetentionDuration', 'delta.deletedFileRetentionDuration'];

/**
 * Checks the values of table properties floe acts on, as Delta does when they are set (at CREATE
 * and ALTER TABLE … SET TBLPROPERTIES): a boolean is true or false; a duration is `interval N unit`
 * (one unit: millisecond, second, minute, hour, day or week; the word interval optional).
 */
export function validatePropertyValues(props: Record<string, string>): void {
  for (const k of BOOLEAN_PROPERTIES) {
    const v = props[k];
    if (v !== undefined && !/^\s*(true|false)\s*$/i.test(v)) throw new InvalidArgumentError(`${k} needs to be a boolean ('true' or 'false'), got '${v}'.`, { key: k, value: v });
  }
  for (const k of INTERVAL_PROPERTIES) {
    const v = props[k];
    if (v !== undefined && !/^\s*(?:interval\s+)?\d+\s*(?:millisecond|second|minute|hour|day|week)s?\s*$/i.test(v)) {
      throw new InvalidArgumentError(`${k} needs to be a duration such as 'interval 30 days' (a number and one unit: millisecond, second, minute, hour, day or week), got '${v}'.`, { key: k, value: v });
    }
  }
}

/**
 * A new table with `delta.columnMapping.mode` name or id: every field (nested too) gets a column id
 * and a fresh `col-<uuid>` physical name (PROTOCOL.md "Column Mapping"), and
 * `delta.columnMapping.maxColumnId` records the highest id. Mutates `configuration` for maxColumnId.
 */
export function withColumnMapping(schema: StructType, configuration: Record<string, string>): StructType {
  const mode = configuration['delta.columnMapping.mode'];
  if (mode !== 'name' && mode !== 'id') return schema;
  const out = JSON.parse(JSON.stringify(schema)) as StructType;
  configuration['delta.columnMapping.maxColumnId'] = String(assignColumnMapping(out, Number(configuration['delta.columnMapping.maxColumnId'] ?? 0), false));
  return out;
}

/** Field metadata keys of the column features writers honour. */
export const GENERATION_EXPRESSION = 'delta.generationExpression';
export const CURRENT_DEFAULT = 'CURRENT_DEFAULT';
export const INVARIANTS = 'delta.invariants';

export function generationExpression(f: StructField): string | undefined {
  const g = f.metadata?.[GENERATION_EXPRESSION];
  return typeof g === 'string' ? g : undefined;
}

export function columnDefault(f: StructField): string | undefined {
  const d = f.metadata?.[CURRENT_DEFAULT];
  return typeof d === 'string' ? d : undefined;
}

/**
 * Completes the values a write gives a table's columns (column name → DuckDB SQL for the new value),
 * in place: with `defaults`, a column the write does not set takes its DEFAULT (INSERT with a column
 * list, MERGE's INSERT); a generated column the write does not set is computed from its generation
 * expression over the row's new values (`fallback(column)` for the columns the write leaves as they
 * are: the old value on UPDATE, NULL on INSERT). A generated column the write does set is checked by
 * `constraintChecks`. This is the one place writes prepare generated and default values.
 */
export async function completeRow(schema: StructType, values: Map<string, string>, fallback: (column: string) => string, opts: { defaults?: boolean } = {}): Promise<void> {
  const byLower = new Map(schema.fields.map((f) => [f.name.toLowerCase(), f.name]));
  if (opts.defaults) {
    for (const f of schema.fields) {
      const d = columnDefault(f);
      if (d === undefined || values.has(f.name) || generationExpression(f) !== undefined) continue;
      values.set(f.name, `CAST((${await storedExprToDuck(d, { what: `the DEFAULT of column ${f.name}` })}) AS ${duckType(f.type)})`);
    }
  }
  const base = new Map(values);
  for (const f of schema.fields) {
    const g = generationExpression(f);
    if (g === undefined || values.has(f.name)) continue;
    const e = await storedExprToDuck(g, {
      what: `the generation expression of column ${f.name}`,
      column: (n) => {
        const c = byLower.get(n.toLowerCase());
        return c === undefined ? undefined : `(${base.get(c) ?? fallback(c)})`;
      },
    });
    values.set(f.name, `CAST((${e}) AS ${duckType(f.type)})`);
  }
  // CHAR(n) / VARCHAR(n) columns, as Spark's write-side check: a longer value loses trailing spaces
  // down to n, and fails when that is not enough (EXCEED_LIMIT_LENGTH); CHAR pads to n with spaces.
  for (const f of schema.fields) {
    const cv = charVarcharOf(f);
    const v = values.get(f.name);
    if (!cv || v === undefined) continue;
    const msg = `[EXCEED_LIMIT_LENGTH] Exceeds char/varchar type length limitation: ${cv.length}. Column ${f.name} is ${cv.text}; a value written is longer.`;
    values.set(f.name, `floe_${cv.kind}(${v}, ${cv.length}, ${quoteString(msg)})`);
  }
}

/** Legacy column invariants (`delta.invariants` field metadata: `{"expression":{"expression":"…"}}`), nested fields included. */
function invariants(schema: StructType): Array<{ column: string; expr: string }> {
  const out: Array<{ column: string; expr: string }> = [];
  const walk = (fields: StructField[], prefix: string): void => {
    for (const f of fields) {
      const raw = f.metadata?.[INVARIANTS];
      if (typeof raw === 'string') {
        let expr: unknown;
        try {
          expr = (JSON.parse(raw) as { expression?: { expression?: unknown } }).expression?.expression;
        } catch {
          expr = undefined;
        }
        if (typeof expr !== 'string') throw new FloeError('DELTA_INVALID_STORED_EXPRESSION', `The invariant of column ${prefix}${f.name} is not of the form {"expression":{"expression":"…"}}: ${raw}`);
        out.push({ column: prefix + f.name, expr });
      }
      if (typeof f.type !== 'string' && f.type.type === 'struct') walk(f.type.fields, `${prefix}${f.name}.`);
    }
  };
  walk(schema.fields, '');
  return out;
}

/**
 * SQL conditions over a written row (the table's columns by name) that raise an error for rows
 * violating NOT NULL, CHECK constraints, legacy invariants, or a generated column whose value differs
 * from its expression (Spark's check `col <=> expr`, reported as a CHECK constraint "Generated
 * Column"; `computed` names generated columns the write itself computed, which need no check).
 * Constraint and generation expressions are Spark SQL, translated here.
 */
export async function constraintChecks(table: string, schema: StructType, configuration: Record<string, string>, computed: ReadonlySet<string> = new Set()): Promise<string[]> {
  const checks: string[] = [];
  // NOT NULL, nested struct fields too (not inside arrays or maps), as Spark's invariant checker:
  // a field is checked where its parent structs are not NULL.
  const notNull = (fields: StructField[], path: string[], sql: string | null, parentsNotNull: string[]): void => {
    for (const f of fields) {
      const at = [...path, f.name];
      const col = sql === null ? quoteIdent(f.name) : `struct_extract(${sql}, ${quoteString(f.name)})`;
      if (!f.nullable) {
        const msg = `[DELTA_NOT_NULL_CONSTRAINT_VIOLATED] NOT NULL constraint violated for column: ${at.join('.')} (table ${table}).`;
        checks.push(`CASE WHEN ${[...parentsNotNull, `${col} IS NULL`].join(' AND ')} THEN error(${quoteString(msg)}) ELSE true END`);
      }
      if (typeof f.type !== 'string' && f.type.type === 'struct') notNull(f.type.fields, at, col, [...parentsNotNull, `${col} IS NOT NULL`]);
    }
  };
  notNull(schema.fields, [], null, []);
  for (const [k, v] of Object.entries(configuration)) {
    if (!k.startsWith('delta.constraints.')) continue;
    const name = k.slice('delta.constraints.'.length);
    const sql = await storedExprToDuck(v, { what: `CHECK constraint ${name}` });
    const msg = `[DELTA_VIOLATE_CONSTRAINT_WITH_VALUES] CHECK constraint ${name} (${v}) violated by a row of the data written to ${table}.`;
    checks.push(`CASE WHEN (${sql}) IS NOT TRUE THEN error(${quoteString(msg)}) ELSE true END`);
  }
  for (const inv of invariants(schema)) {
    const sql = await storedExprToDuck(inv.expr, { what: `the invariant of column ${inv.column}` });
    const msg = `[DELTA_VIOLATE_CONSTRAINT_WITH_VALUES] CHECK constraint EXPRESSION(${inv.expr}) (invariant of column ${inv.column}) violated by a row of the data written to ${table}.`;
    // Invariants fail only on false (a NULL result passes), as Spark's InvariantChecker.
    checks.push(`CASE WHEN (${sql}) = false THEN error(${quoteString(msg)}) ELSE true END`);
  }
  for (const f of schema.fields) {
    const g = generationExpression(f);
    if (g === undefined || computed.has(f.name)) continue; // computed by this write: equal by construction
    const sql = await storedExprToDuck(g, { what: `the generation expression of column ${f.name}` });
    const col = quoteIdent(f.name);
    const msg = `[DELTA_VIOLATE_CONSTRAINT_WITH_VALUES] CHECK constraint Generated Column (${f.name} <=> ${g}) violated by row with values: ${f.name} : `;
    checks.push(`CASE WHEN ${col} IS NOT DISTINCT FROM CAST((${sql}) AS ${duckType(f.type)}) THEN true ELSE error(${quoteString(msg)} || coalesce(CAST(${col} AS VARCHAR), 'null') || ${quoteString(` (the expression gives `)} || coalesce(CAST(CAST((${sql}) AS ${duckType(f.type)}) AS VARCHAR), 'null') || ${quoteString(`; leave ${f.name} out of the write to have it computed).`)}) END`);
  }
  return checks;
}

/** Turns a DuckDB error raised by a constraint check into its floe error. */
function constraintError(e: unknown): unknown {
  const m = /\[(EXCEED_LIMIT_LENGTH|DELTA_NOT_NULL_CONSTRAINT_VIOLATED|DELTA_VIOLATE_CONSTRAINT_WITH_VALUES|DELTA_REPLACE_WHERE_MISMATCH)\] ([^\n]*)/.exec((e as Error)?.message ?? '');
  return m ? new FloeError(m[1]!, m[2]!) : e;
}

/** Files whose partition values satisfy a predicate on partition columns, evaluated by DuckDB. */
export async function filesMatchingPartitionPredicate(floe: Floe, snapshot: Snapshot, predicate: string): Promise<AddFile[]> {
  const parts = snapshot.partitionColumns;
  if (!snapshot.files.length) return [];
  const fields = new Map(snapshot.schema.fields.map((f) => [f.name, f]));
  const rows = snapshot.files.map((f, i) => `(${[String(i), ...parts.map((p) => partitionLiteral(f.partitionValues[physicalName(fields.get(p)!)] ?? f.partitionValues[p], fields.get(p)!.type))].join(', ')})`);
  const cols = ['__i', ...parts.map((p) => quoteIdent(p))].join(', ');
  const idx = new Set<number>();
  for (let i = 0; i < rows.length; i += 5000) {
    const sql = `SELECT __i FROM (VALUES ${rows.slice(i, i + 5000).join(', ')}) AS t(${cols}) WHERE ${predicate}`;
    try {
      for (const r of await floe.engine.allJson(sql)) idx.add(Number(r.__i));
    } catch (e) {
      throw new FloeError('DELTA_REPLACE_WHERE_IN_OVERWRITE', `replaceWhere '${predicate}' must reference only partition columns (${parts.join(', ') || 'none'}) of ${snapshot.tablePath}: ${(e as Error).message.split('\n')[0]}`, { predicate });
    }
  }
  return snapshot.files.filter((_, i) => idx.has(i));
}


/** The Delta schema of a DataFrame's result. */
export async function dataFrameSchema(df: DataFrame): Promise<{ sql: string; schema: StructType }> {
  const sql = await df.toSQL();
  const cols = await df.session.engine.describe(sql);
  const seen = new Set<string>();
  for (const c of cols) {
    const k = c.name.toLowerCase();
    if (seen.has(k)) throw new InvalidArgumentError(`The data has two columns named '${c.name}' (column names are case-insensitive in Delta).`, {}, 'DELTA_DUPLICATE_COLUMNS_FOUND');
    seen.add(k);
  }
  return { sql, schema: { type: 'struct', fields: cols.map((c) => ({ name: c.name, type: deltaTypeFromDuck(c.type), nullable: true, metadata: {} })) } };
}

/** Writes a DataFrame to a Delta table (the engine tables it creates are dropped when it is done). */
export function writeDelta(floe: Floe, df: DataFrame, location: string, options: DeltaWriteOptions = {}): Promise<WriteResult> {
  return floe.withTempScope(() => writeDeltaScoped(floe, df, location, options));
}

async function writeDeltaScoped(floe: Floe, df: DataFrame, location: string, options: DeltaWriteOptions): Promise<WriteResult> {
  const mode: SaveMode = options.mode ?? 'errorifexists';
  if (!['append', 'overwrite', 'error', 'errorifexists', 'ignore'].includes(mode)) throw new InvalidArgumentError(`Unknown save mode '${mode}'. Use append, overwrite, error/errorifexists or ignore.`);
  if (options.replaceWhere && mode !== 'overwrite') throw new InvalidArgumentError('replaceWhere applies to mode overwrite only.');
  guardExpression(options.replaceWhere);
  if ((options.txnAppId === undefined) !== (options.txnVersion === undefined)) throw new InvalidArgumentError('txnAppId and txnVersion go together.', {}, 'DELTA_INVALID_IDEMPOTENT_WRITES_OPTIONS');
  const log = floe.deltaLog(location);
  const snapshot = await log.snapshot().catch((e: unknown) => {
    if (e instanceof TableNotFoundError) return null;
    throw e;
  });
  const noop: WriteResult = { version: null, skipped: true, numFiles: 0, numOutputRows: 0, numOutputBytes: 0, numRemovedFiles: 0, attempts: 0 };
  if (snapshot && (mode === 'error' || mode === 'errorifexists')) {
    throw new FloeError('DELTA_PATH_EXISTS', `A Delta table already exists at ${log.tablePath}. Write with mode 'append' or 'overwrite', or choose another path.`, { path: log.tablePath });
  }
  if (snapshot && mode === 'ignore') return noop;
  if (snapshot && options.txnAppId !== undefined) {
    const seen = snapshot.txnVersion(options.txnAppId);
    if (seen !== undefined && seen >= options.txnVersion!) return noop;
  }
  const pomOption = options.partitionOverwriteMode === undefined ? undefined : String(options.partitionOverwriteMode).toLowerCase();
  const pom = pomOption ?? (floe.config.get(PARTITION_OVERWRITE_MODE_CONF) ?? 'static').trim().toLowerCase();
  if (pom !== 'static' && pom !== 'dynamic') throw new InvalidArgumentError(`partitionOverwriteMode must be 'static' or 'dynamic', got '${pomOption ?? floe.config.get(PARTITION_OVERWRITE_MODE_CONF)}'.`, {}, 'DELTA_ILLEGAL_OPTION');
  // As Delta: the option with replaceWhere or overwriteSchema is an error; the session setting gives way to them.
  if (pomOption === 'dynamic' && mode === 'overwrite' && options.replaceWhere) throw new InvalidArgumentError(`A 'replaceWhere' expression and 'partitionOverwriteMode'='dynamic' cannot both be set.`, {}, 'DELTA_REPLACE_WHERE_WITH_DYNAMIC_PARTITION_OVERWRITE');
  if (pomOption === 'dynamic' && mode === 'overwrite' && options.overwriteSchema) throw new InvalidArgumentError(`'overwriteSchema' cannot be used in dynamic partition overwrite mode.`, {}, 'DELTA_OVERWRITE_SCHEMA_WITH_DYNAMIC_PARTITION_OVERWRITE');
  const dynamicOverwrite = pom === 'dynamic' && mode === 'overwrite' && !options.replaceWhere && !options.overwriteSchema && snapshot !== null && snapshot.partitionColumns.length > 0;
  const mergeSchema = options.mergeSchema ?? autoMergeOn(floe.config);
  const { sql: sourceSql, schema: sourceSchema } = await dataFrameSchema(df);
  const txn = new Transaction(log, snapshot);
  let schema: StructType;
  let partitionColumns: string[];
  let configuration: Record<string, string>;
  let operation: string;
  const params: Record<string, unknown> = { mode: MODE_NAMES[mode] };
  if (!snapshot || (mode === 'overwrite' && options.overwriteSchema)) {
    if (snapshot) {
      // The existing table's writer duties bind the replacement too; its features are never dropped.
      checkWriteSupport(snapshot.protocol, log.tablePath, snapshot.schema);
      if (snapshot.columnMapping !== 'none') throw new FloeError('FLOE_UNSUPPORTED_OPERATION', `overwriteSchema on a column-mapped table (${log.tablePath}) is not supported yet.`);
    }
    schema = sourceSchema;
    partitionColumns = options.partitionBy ?? (snapshot && !options.overwriteSchema ? snapshot.partitionColumns : []);
    const meta = newMetadata(floe, schema, partitionColumns, { ...(snapshot?.configuration ?? {}), ...(options.properties ?? {}) }, options.description ?? snapshot?.metadata.description ?? undefined, undefined, !snapshot);
    if (snapshot) meta.id = snapshot.metadata.id;
    configuration = meta.configuration;
    schema = parseSchema(meta.schemaString);
    const required = protocolFor(schema, configuration);
    configuration = meta.configuration = withoutFeatureProps(configuration);
    const protocol = snapshot ? mergeProtocols(snapshot.protocol, required) : required;
    checkWriteSupport(protocol, log.tablePath, schema);
    if (!snapshot || JSON.stringify(protocol) !== JSON.stringify(snapshot.protocol)) txn.setProtocol(protocol);
    txn.setMetadata(meta);
    operation = 'WRITE';
  } else {
    checkWriteSupport(snapshot.protocol, log.tablePath, snapshot.schema);
    if (options.partitionBy && JSON.stringify(options.partitionBy) !== JSON.stringify(snapshot.partitionColumns)) {
      throw new FloeError('DELTA_PARTITION_COLUMNS_MISMATCH', `The table at ${log.tablePath} is partitioned by [${snapshot.partitionColumns.join(', ')}], but the write asks for [${options.partitionBy.join(', ')}]. Omit partitionBy, or overwrite with overwriteSchema: true to change the partitioning.`);
    }
    if (mode === 'overwrite' && (snapshot.configuration['delta.appendOnly'] ?? '').trim().toLowerCase() === 'true') {
      throw new FloeError('DELTA_CANNOT_MODIFY_APPEND_ONLY', `The table at ${log.tablePath} is append-only (delta.appendOnly = true); overwrite is not allowed. Append instead, or unset the property.`);
    }
    const r = reconcileSchema(log.tablePath, snapshot.schema, sourceSchema, mergeSchema === true);
    schema = r.schema;
    partitionColumns = snapshot.partitionColumns;
    configuration = snapshot.configuration;
    if (r.changed) {
      // New columns of a column-mapped table get ids and physical names, as at creation.
      configuration = { ...snapshot.configuration };
      schema = withColumnMapping(schema, configuration);
      txn.setMetadata({ ...snapshot.metadata, schemaString: JSON.stringify(schema), configuration });
    }
    operation = 'WRITE';
  }
  params.partitionBy = JSON.stringify(partitionColumns);
  if (options.replaceWhere) params.predicate = JSON.stringify([options.replaceWhere]);
  if (options.operation) {
    operation = options.operation;
    delete params.mode;
    const description = txn.metadata?.description;
    if (description) params.description = description;
    params.properties = JSON.stringify(txn.metadata?.configuration ?? configuration);
  }
  if (dynamicOverwrite) params.dynamicPartitionOverwrite = true;

  // Rows of the table's shape: source columns by name (case-insensitive), absent ones NULL.
  // Generated columns the data lacks are computed; with columnDefaults (SQL INSERT), DEFAULTs fill the rest.
  const srcByLower = new Map(sourceSchema.fields.map((f) => [f.name.toLowerCase(), f.name]));
  const values = new Map<string, string>();
  for (const f of schema.fields) {
    const s = srcByLower.get(f.name.toLowerCase());
    if (s !== undefined) values.set(f.name, `CAST(${quoteIdent(s)} AS ${duckType(f.type)})`);
  }
  const given = new Set(values.keys());
  await completeRow(schema, values, (c) => `NULL::${duckType(schema.fields.find((f) => f.name === c)!.type)}`, { defaults: options.columnDefaults === true });
  const shaped = schema.fields.map((f) => `${values.get(f.name) ?? `NULL::${duckType(f.type)}`} AS ${quoteIdent(f.name)}`);
  const computed = new Set(schema.fields.filter((f) => generationExpression(f) !== undefined && !given.has(f.name)).map((f) => f.name));
  const checks = await constraintChecks(log.tablePath, schema, configuration, computed);
  if (options.replaceWhere) {
    const msg = `[DELTA_REPLACE_WHERE_MISMATCH] Data written with replaceWhere must all satisfy '${options.replaceWhere}'; a row does not.`;
    checks.push(`CASE WHEN (${options.replaceWhere}) IS NOT TRUE THEN error(${quoteString(msg)}) ELSE true END`);
  }
  let rowsSql = `SELECT ${shaped.join(', ')} FROM (${sourceSql})`;
  if (checks.length) rowsSql = `SELECT * FROM (${rowsSql}) WHERE ${checks.join(' AND ')}`;

  const target = Number(configuration['delta.targetFileSize'] ?? floe.config.get('floe.write.targetFileSize') ?? DEFAULT_TARGET_FILE_SIZE);
  const cols = schema.fields.map((f) => quoteIdent(f.name)).join(', ');

  // What an overwrite replaces: the whole table, whole partitions, or (replaceWhere on data columns)
  // the matching rows, whose files are rewritten with their other rows copied (Spark's
  // replaceWhere.dataColumns): then, with the change data feed on, the deletes and inserts go to
  // `_change_data/` in the same commit.
  let removed: AddFile[] = [];
  let copySql: string | null = null;
  let cdcSql: string | null = null;
  const metrics: Record<string, unknown> = {};
  if (snapshot && mode === 'overwrite') {
    const pred = options.overwriteSchema ? undefined : options.replaceWhere;
    const expr = pred ? parsePredicate(pred) : null;
    if (dynamicOverwrite) {
      // Dynamic partition overwrite: the files of the partitions the new rows fall in (NULL matching NULL).
      // The rows are computed once (the partitions they fall in are those written).
      rowsSql = `SELECT * FROM ${await materialize(floe, 'dporows', rowsSql).catch((e: unknown) => {
        throw constraintError(e);
      })}`;
      const parts = await materialize(floe, 'dpo', `SELECT DISTINCT ${partitionColumns.map((c, i) => `${quoteIdent(c)} AS __floe_p${i}`).join(', ')} FROM (${rowsSql})`);
      const inData = `EXISTS (SELECT 1 FROM ${parts} WHERE ${partitionColumns.map((c, i) => `__floe_p${i} IS NOT DISTINCT FROM ${quoteIdent(c)}`).join(' AND ')})`;
      removed = await filesMatchingPartitionPredicate(floe, snapshot, inData);
      txn.readWhole(undefined, removed);
    } else if (pred && expr && partitionOnly(expr, snapshot.partitionColumns)) {
      removed = await filesMatchingPartitionPredicate(floe, snapshot, pred);
      // A concurrent append into the replaced range conflicts; elsewhere it does not.
      txn.readWhole((a) => fileCouldMatch(snapshot, a, pred), removed);
    } else if (pred) {
      const cand = pruneFiles(snapshot, [pred]);
      txn.readWhole((a) => fileCouldMatch(snapshot, a, pred), cand);
      if (cand.length) {
        const m = await markRows(floe, snapshot, cand, pred, 'rw');
        const d = m.table;
        removed = m.removed;
        copySql = `SELECT ${cols} FROM ${d} WHERE ${m.inTouched} AND NOT __floe_hit`;
        metrics.numDeletedRows = m.hits;
        metrics.numCopiedRows = await count(floe, copySql);
        if (cdfOnForWrites(snapshot)) cdcSql = `SELECT ${cols}, 'delete' AS _change_type FROM ${d} WHERE __floe_hit UNION ALL SELECT ${cols}, 'insert' AS _change_type FROM (${rowsSql})`;
      }
    } else {
      removed = snapshot.files;
      txn.readWhole(undefined, removed);
    }
    for (const f of removed) txn.remove(f);
  }

  const common = {
    schema, partitionColumns, columnMapping: columnMappingMode(configuration), targetFileSize: target,
    statsColumns: statsColumnSpec(configuration), parquetVersion: parquetVersionOf(configuration),
  } as const;
  let adds: AddFile[] = [];
  const cdcs: AddCDCFile[] = [];
  try {
    adds = await writeDataFiles(floe.engine, log.store, copySql ? `${rowsSql} UNION ALL ${copySql}` : rowsSql, common);
    if (cdcSql) {
      for (const f of await writeDataFiles(floe.engine, log.store, cdcSql, { ...common, subdir: '_change_data', extraColumns: ['_change_type'], filePrefix: 'cdc', statsColumns: NO_COLUMN_STATS })) {
        cdcs.push({ path: f.path, partitionValues: f.partitionValues, size: f.size, dataChange: false });
      }
    }
  } catch (e) {
    await Promise.all(adds.map((a) => log.store.delete(decodeURIComponent(a.path)).catch(() => undefined)));
    throw constraintError(e);
  }
  txn.adds.push(...adds);
  txn.cdcs.push(...cdcs);
  if (options.txnAppId !== undefined) txn.addTxn(options.txnAppId, options.txnVersion!);

  const numOutputRows = adds.reduce((n, a) => n + (JSON.parse(a.stats ?? '{}') as { numRecords?: number }).numRecords! , 0);
  const numOutputBytes = adds.reduce((n, a) => n + a.size, 0);
  Object.assign(metrics, { numFiles: adds.length, numOutputRows, numOutputBytes });
  if (removed.length) metrics.numRemovedFiles = removed.length;
  if (cdcs.length) metrics.numAddedChangeFiles = cdcs.length;
  let result;
  try {
    result = await txn.commit(operation, params, metrics, options.userMetadata);
  } catch (e) {
    // Nothing references the files just written; remove them so a failed write leaves no litter
    // (unless the commit's outcome is unknown: it may reference them).
    if (!commitOutcomeUnknown(e)) await Promise.all([...adds, ...cdcs].map((a) => log.store.delete(decodeURIComponent(a.path)).catch(() => undefined)));
    throw e;
  }
  await maybeCheckpoint(floe, log, result.version, { ...configuration, ...(txn.metadata?.configuration ?? {}) });
  return { version: result.version, skipped: false, numFiles: adds.length, numOutputRows, numOutputBytes, numRemovedFiles: removed.length, attempts: result.attempts };
}

/** Writes a checkpoint when the version is a multiple of delta.checkpointInterval (default 10). */
export async function maybeCheckpoint(floe: Floe, log: DeltaLog, version: number, configuration: Record<string, string>): Promise<void> {
  const interval = Number(configuration['delta.checkpointInterval'] ?? 10);
  if (!(interval > 0) || version === 0 || version % interval !== 0) return;
  try {
    const snap = await log.snapshot(version);
    await writeCheckpoint(floe.engine, log.store, snap);
  } catch (e) {
    // The commit is durable; a checkpoint is an optimisation. Report and go on.
    if (!(e instanceof FloeError && e.code === 'FLOE_UNSUPPORTED_OPERATION')) process.emitWarning(`floe: checkpoint at version ${version} of ${log.tablePath} failed: ${(e as Error).message}`);
  }
}
