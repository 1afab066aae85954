/**
 * Table-level schema changes, as Spark's ALTER TABLE commits them: ADD COLUMNS, RENAME COLUMN and
 * DROP COLUMNS (column mapping), CHANGE COLUMN (nullability, comment, position, DEFAULT, type
 * widening), ADD / DROP
 * CONSTRAINT, enabling column mapping on an existing table, and CONVERT TO DELTA (a log over
 * Parquet files in place). Each change is one commit through a Transaction; the protocol is
 * upgraded (never downgraded) to what the new metadata needs.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { AddFile, Metadata } from '../core/actions.js';
import { encodePath } from '../core/actions.js';
import { type DataType, type StructField, type StructType, deltaTypeFromDuck, duckType, parseSchema, quoteIdent, quoteString } from '../core/schema.js';
import type { Snapshot } from '../core/snapshot.js';
import { storedExprToDuck } from '../sql/spark-expr.js';
import { CHAR_VARCHAR_TYPE, charVarcharOf, parseCharVarchar } from '../sql/types.js';
import { Transaction } from '../core/transaction.js';
import { checkWriteSupport, mergeProtocols, protocolFor } from '../core/write-support.js';
import { deltaStats } from '../engine/writer.js';
import { STATS_COLUMNS_PROPERTY, forEachStatsLeaf, statsColumnSpec, statsColumnsAfter } from '../core/stats-columns.js';
import { FloeError, InvalidArgumentError } from '../errors.js';
import type { Floe } from '../floe.js';
import { CURRENT_DEFAULT, GENERATION_EXPRESSION, maybeCheckpoint, newMetadata } from './write.js';
import { charVarcharMetadata, checkDuplicateFields, validateColumnExpressions } from './create.js';
import { protocolHasFeature } from '../core/table-features.js';
import { ensureLocal, readPath } from '../storage/open.js';

const MAPPING_ID = 'delta.columnMapping.id';
const MAPPING_PHYSICAL = 'delta.columnMapping.physicalName';
const MAX_COLUMN_ID = 'delta.columnMapping.maxColumnId';

/** A column added by ADD COLUMNS: `path` names a top-level column (`['c']`) or a struct field (`['s', 'x']`). */
export interface NewColumn {
  path: string[];
  type: DataType;
  nullable?: boolean;
  comment?: string;
  /** `FIRST` or `AFTER <sibling>`; appended when absent. */
  position?: { first: true } | { after: string };
  /** CHAR(n) / VARCHAR(n) of a string column: `'char(n)'` / `'varchar(n)'` (see ColumnSpec.charVarchar). */
  charVarchar?: string;
}

export interface ChangeColumn {
  /** Make the column nullable (DROP NOT NULL) or not (SET NOT NULL: existing rows are checked). */
  nullable?: boolean;
  comment?: string;
  position?: { first: true } | { after: string };
  /** A new type: a widening Delta allows with type widening (delta.enableTypeWidening), or the current type. */
  type?: DataType;
  /**
   * With `type: 'string'`: the new type is CHAR(n) / VARCHAR(n) (`'varchar(10)'`). A CHAR/VARCHAR
   * column may become STRING, or a VARCHAR of at least its length; nothing else changes to one.
   */
  charVarchar?: string;
  /** SET DEFAULT (Spark SQL text) or DROP DEFAULT (null); needs the allowColumnDefaults feature. */
  default?: string | null;
}

const INTEGRAL_DIGITS: Record<string, number> = { byte: 3, short: 5, integer: 10, long: 20 };
const INTEGRAL_ORDER = ['byte', 'short', 'integer', 'long'];

function decimalOf(t: DataType): [number, number] | null {
  const m = typeof t === 'string' ? /^decimal\((\d+),\s*(\d+)\)$/.exec(t) : null;
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * The type changes Delta's type widening allows (PROTOCOL.md "Type Widening"): byte → short →
 * integer → long; float → double; byte/short/integer → double; date → timestamp_ntz; decimal(p, s)
 * → decimal(p + k1, s + k2) with k1 ≥ k2 ≥ 0; byte/short/integer/long → decimal with room for
 * every value.
 */
export function isTypeWidening(from: DataType, to: DataType): boolean {
  if (typeof from !== 'string' || typeof to !== 'string' || from === to) return false;
  const fi = INTEGRAL_ORDER.indexOf(from);
  const ti = INTEGRAL_ORDER.indexOf(to);
  if (fi >= 0 && ti > fi) return true;
  if (from === 'float' && to === 'double') return true;
  if (fi >= 0 && fi <= 2 && to === 'double') return true;
  if (from === 'date' && to === 'timestamp_ntz') return true;
  const dt = decimalOf(to);
  const df = decimalOf(from);
  if (df && dt) {
    const k1 = dt[0] - df[0];
    const k2 = dt[1] - df[1];
    return k1 >= k2 && k2 >= 0 && k1 > 0;
  }
  if (fi >= 0 && dt) return dt[0] - dt[1] >= INTEGRAL_DIGITS[from]!;
  return false;
}

// ---------------------------------------------------------------- schema helpers

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function fieldsOf(t: DataType): StructField[] | null {
  return typeof t !== 'string' && t.type === 'struct' ? t.fields : null;
}

function eqName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The struct holding the field at `path` (the table for a top-level column), and the field's index there. */
function locate(schema: StructType, colPath: string[], table: string, mustExist = true): { fields: StructField[]; index: number; canonical: string[] } {
  let fields = schema.fields;
  const canonical: string[] = [];
  for (let i = 0; i < colPath.length; i++) {
    const idx = fields.findIndex((f) => eqName(f.name, colPath[i]!));
    if (i === colPath.length - 1) {
      if (idx < 0 && mustExist) throw columnNotFound(colPath, schema, table);
      if (idx >= 0) canonical.push(fields[idx]!.name);
      return { fields, index: idx, canonical };
    }
    if (idx < 0) throw columnNotFound(colPath, schema, table);
    const inner = fieldsOf(fields[idx]!.type);
    if (!inner) throw new FloeError('DELTA_UNSUPPORTED_NESTED_COLUMN', `'${colPath.slice(0, i + 1).join('.')}' in ${table} is not a struct, so it has no field '${colPath[i + 1]}'.`, { table, column: colPath.join('.') });
    canonical.push(fields[idx]!.name);
    fields = inner;
  }
  throw new InvalidArgumentError('A column path needs at least one name.');
}

function columnNotFound(colPath: string[], schema: StructType, table: string): FloeError {
  return new FloeError('DELTA_COLUMN_NOT_FOUND', `Column '${colPath.join('.')}' does not exist in ${table}. Columns: ${schema.fields.map((f) => f.name).join(', ')}.`, { table, column: colPath.join('.') });
}

function walkFields(t: DataType, fn: (f: StructField) => void): void {
  if (typeof t === 'string') return;
  if (t.type === 'struct') {
    for (const f of t.fields) {
      fn(f);
      walkFields(f.type, fn);
    }
  } else if (t.type === 'array') walkFields(t.elementType, fn);
  else {
    walkFields(t.keyType, fn);
    walkFields(t.valueType, fn);
  }
}

function maxColumnId(schema: StructType, configuration: Record<string, string>): number {
  let max = Number(configuration[MAX_COLUMN_ID] ?? 0);
  if (!Number.isFinite(max)) max = 0;
  walkFields(schema, (f) => {
    const id = f.metadata[MAPPING_ID];
    if (typeof id === 'number' && id > max) max = id;
  });
  return max;
}

/**
 * Gives every field without one (nested fields too, parents before children, as Spark) a column
 * mapping id and a physical name: `existingNames` keeps the field's current name (enabling mapping
 * on an existing table, whose files use those names), otherwise `col-<uuid>` (new columns).
 * Returns the new maxColumnId.
 */
export function assignColumnMapping(t: DataType, startId: number, existingNames: boolean): number {
  let id = startId;
  walkFields(t, (f) => {
    f.metadata ??= {};
    if (typeof f.metadata[MAPPING_ID] !== 'number') f.metadata[MAPPING_ID] = ++id;
    if (typeof f.metadata[MAPPING_PHYSICAL] !== 'string') f.metadata[MAPPING_PHYSICAL] = existingNames ? f.name : `col-${randomUUID()}`;
  });
  return id;
}

/**
 * The metadata after a `delta.columnMapping.mode` change, done the way Spark does it: none → name
 * gives every existing field (nested too) an id and a physical name equal to its current name and
 * sets `delta.columnMapping.maxColumnId`; a table created with mode name or id (no files yet) gets
 * fresh `col-<uuid>` physical names. Other changes (to none, name ↔ id, none → id on an existing
 * table) throw DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE. The configuration's mode is set; the
 * caller adds the protocol (protocolFor / mergeProtocols give reader 2 / writer 5 or the feature).
 *
 * setProperties (maintenance.ts) calls this for a `delta.columnMapping.mode` property.
 */
export function withColumnMappingMode(metadata: Metadata, newMode: string, hasData = true): Metadata {
  const oldMode = (metadata.configuration['delta.columnMapping.mode'] ?? 'none').toLowerCase();
  const mode = newMode.toLowerCase();
  if (!['none', 'name', 'id'].includes(mode)) {
    throw new InvalidArgumentError(`Invalid delta.columnMapping.mode '${newMode}': use none, name or id.`, { mode: newMode }, 'DELTA_MODE_NOT_SUPPORTED');
  }
  if (mode === oldMode) return metadata;
  const allowed = (oldMode === 'none' && mode === 'name') || (oldMode === 'none' && mode === 'id' && !hasData);
  if (!allowed) {
    throw new FloeError('DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE', `Changing column mapping mode from '${oldMode}' to '${mode}' is not supported.${oldMode === 'none' ? ' Enable mode name instead.' : ''}`, { from: oldMode, to: mode });
  }
  const schema = parseSchema(metadata.schemaString);
  const max = assignColumnMapping(schema, maxColumnId(schema, metadata.configuration), hasData);
  return {
    ...metadata,
    schemaString: JSON.stringify(schema),
    configuration: { ...metadata.configuration, 'delta.columnMapping.mode': mode, [MAX_COLUMN_ID]: String(max) },
  };
}

// ---------------------------------------------------------------- committing

interface SchemaChange {
  schema: StructType;
  configuration?: Record<string, string>;
  partitionColumns?: string[];
}

async function commitMetadata(floe: Floe, s: Snapshot, change: SchemaChange, operation: string, params: Record<string, unknown>, readWhole = false): Promise<number> {
  const log = floe.deltaLog(s.tablePath);
  const configuration = change.configuration ?? s.configuration;
  const needed = mergeProtocols(s.protocol, protocolFor(change.schema, configuration));
  checkWriteSupport(needed, s.tablePath, change.schema);
  const txn = new Transaction(log, s);
  if (readWhole) txn.readWhole();
  if (JSON.stringify(needed) !== JSON.stringify(s.protocol)) txn.setProtocol(needed);
  txn.setMetadata({ ...s.metadata, schemaString: JSON.stringify(change.schema), configuration, partitionColumns: change.partitionColumns ?? s.metadata.partitionColumns });
  const r = await txn.commit(operation, params);
  await maybeCheckpoint(floe, log, r.version, configuration);
  return r.version;
}

async function openSnapshot(floe: Floe, location: string): Promise<Snapshot> {
  const s = await floe.deltaLog(location).snapshot();
  checkWriteSupport(s.protocol, s.tablePath, s.schema);
  return s;
}

function requireMapping(s: Snapshot, what: 'RENAME' | 'DROP'): void {
  if (s.columnMapping !== 'none') return;
  const verb = what === 'RENAME' ? 'rename' : 'drop';
  throw new FloeError(
    `DELTA_UNSUPPORTED_${what}_COLUMN`,
    `${what === 'RENAME' ? 'Column rename' : 'DROP COLUMN'} is not supported for your Delta table ${s.tablePath}: to ${verb} a column, enable column mapping first: ALTER TABLE … SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name'). This upgrades the protocol to reader version 2 / writer version 5.`,
    { table: s.tablePath },
  );
}

/** Names of the columns a SQL expression mentions (identifiers, case-insensitive), for dependency checks. */
function mentions(expr: string, name: string): boolean {
  const n = name.toLowerCase();
  const re = /`((?:[^`]|``)*)`|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([A-Za-z_][A-Za-z0-9_]*)/g;
  for (let m = re.exec(expr); m; m = re.exec(expr)) {
    const ident = m[1] !== undefined ? m[1].replace(/``/g, '`') : m[4];
    if (ident !== undefined && ident.toLowerCase() === n) return true;
  }
  return false;
}

function dependentConstraints(s: Snapshot, column: string): string[] {
  return Object.entries(s.configuration)
    .filter(([k, v]) => k.startsWith('delta.constraints.') && mentions(v, column))
    .map(([k, v]) => `${k.slice('delta.constraints.'.length)} -> ${v}`);
}

/** Generated columns whose expression mentions a top-level column (Spark refuses to rename, drop or retype it). */
function dependentGenerated(s: Snapshot, column: string): string[] {
  return s.schema.fields
    .filter((f) => typeof f.metadata[GENERATION_EXPRESSION] === 'string' && !eqName(f.name, column) && mentions(f.metadata[GENERATION_EXPRESSION] as string, column))
    .map((f) => `${f.name} -> ${f.metadata[GENERATION_EXPRESSION] as string}`);
}

function refuseGeneratedDependents(s: Snapshot, column: string, verb: string): void {
  const gen = dependentGenerated(s, column);
  if (gen.length) {
    throw new FloeError('DELTA_GENERATED_COLUMNS_DEPENDENT_COLUMN_CHANGE', `Cannot ${verb} column ${column} of ${s.tablePath} because this column is referenced by the following generated column(s):\n${gen.join('\n')}`, { table: s.tablePath, column });
  }
}

function insertAt(fields: StructField[], f: StructField, position: NewColumn['position'], table: string): void {
  if (!position) fields.push(f);
  else if ('first' in position) fields.unshift(f);
  else {
    const i = fields.findIndex((x) => eqName(x.name, position.after));
    if (i < 0) throw new FloeError('DELTA_COLUMN_NOT_FOUND', `AFTER ${position.after}: no such column in ${table}.`, { table, column: position.after });
    fields.splice(i + 1, 0, f);
  }
}

// ---------------------------------------------------------------- operations

/** ALTER TABLE … ADD COLUMNS: nullable columns (or struct fields) appended, ids assigned with column mapping. */
export async function addColumns(floe: Floe, location: string, columns: NewColumn[]): Promise<number> {
  const s = await openSnapshot(floe, location);
  if (!columns.length) throw new InvalidArgumentError('ADD COLUMNS needs at least one column.');
  const schema = clone(s.schema);
  let max = maxColumnId(schema, s.configuration);
  const mapped = s.columnMapping !== 'none';
  const added: StructField[] = [];
  for (const c of columns) {
    if (!c.path.length || c.path.some((p) => !p)) throw new InvalidArgumentError('A new column needs a name.');
    if (c.nullable === false) {
      throw new FloeError('DELTA_OPERATION_NOT_ALLOWED', `Operation not allowed: ADD COLUMNS with NOT NULL (column ${c.path.join('.')} of ${s.tablePath}). Existing rows have no value for an added column; add it nullable, fill it, then ALTER COLUMN … SET NOT NULL.`, { table: s.tablePath, column: c.path.join('.') });
    }
    const { fields, index } = locate(schema, c.path, s.tablePath, false);
    const name = c.path[c.path.length - 1]!;
    if (index >= 0) throw new FloeError('FIELD_ALREADY_EXISTS', `Cannot add column ${c.path.join('.')} to ${s.tablePath}: it already exists.`, { table: s.tablePath, column: c.path.join('.') });
    checkDuplicateFields(c.type, `column ${c.path.join('.')}`);
    const f: StructField = { name, type: clone(c.type), nullable: true, metadata: { ...(c.comment !== undefined ? { comment: c.comment } : {}), ...charVarcharMetadata(c.charVarchar, c.type, c.path.join('.')) } };
    if (mapped) max = assignColumnMapping({ type: 'struct', fields: [f] }, max, false);
    insertAt(fields, f, c.position, s.tablePath);
    added.push(f);
  }
  const configuration = mapped ? { ...s.configuration, [MAX_COLUMN_ID]: String(max) } : s.configuration;
  const params = { columns: JSON.stringify(columns.map((c, i) => ({ column: added[i], ...(c.position ? { position: 'first' in c.position ? 'FIRST' : `AFTER ${c.position.after}` } : {}) }))) };
  return commitMetadata(floe, s, { schema, configuration }, 'ADD COLUMNS', params);
}

/** ALTER TABLE … RENAME COLUMN a TO b: the logical name changes; files keep the physical name. Needs column mapping. */
export async function renameColumn(floe: Floe, location: string, from: string[], to: string): Promise<number> {
  const s = await openSnapshot(floe, location);
  requireMapping(s, 'RENAME');
  if (!to) throw new InvalidArgumentError('RENAME COLUMN needs a new name.');
  const schema = clone(s.schema);
  const { fields, index, canonical } = locate(schema, from, s.tablePath);
  const clash = fields.findIndex((f) => eqName(f.name, to));
  if (clash >= 0 && clash !== index) throw new FloeError('FIELD_ALREADY_EXISTS', `Cannot rename ${from.join('.')} to ${to} in ${s.tablePath}: a column named ${fields[clash]!.name} exists.`, { table: s.tablePath, column: to });
  if (from.length === 1) refuseGeneratedDependents(s, canonical[0]!, 'rename');
  const deps = from.length === 1 ? dependentConstraints(s, canonical[0]!) : [];
  if (deps.length) {
    throw new FloeError('DELTA_CONSTRAINT_DEPENDENT_COLUMN_CHANGE', `Cannot rename column ${canonical.join('.')} of ${s.tablePath} because this column is referenced by the following check constraint(s):\n${deps.join('\n')}\nDrop them first.`, { table: s.tablePath, column: canonical.join('.') });
  }
  const old = fields[index]!.name;
  fields[index] = { ...fields[index]!, name: to };
  const partitionColumns = from.length === 1 ? s.partitionColumns.map((p) => (p === old ? to : p)) : s.partitionColumns;
  const newPath = [...canonical.slice(0, -1), to];
  const renamedStats = statsColumnsAfter(s.configuration, { rename: { from: canonical, to: newPath } });
  const configuration = renamedStats === null ? undefined : { ...s.configuration, [STATS_COLUMNS_PROPERTY]: renamedStats };
  return commitMetadata(floe, s, { schema, partitionColumns, configuration }, 'RENAME COLUMN', { oldColumnPath: canonical.join('.'), newColumnPath: newPath.join('.') });
}

/** ALTER TABLE … DROP COLUMN[S]: the fields leave the schema; data files keep the values. Needs column mapping. */
export async function dropColumns(floe: Floe, location: string, columns: string[][], options: { ifExists?: boolean } = {}): Promise<number | null> {
  const s = await openSnapshot(floe, location);
  requireMapping(s, 'DROP');
  const schema = clone(s.schema);
  const dropped: string[] = [];
  const droppedPaths: string[][] = [];
  for (const c of columns) {
    const { fields, index, canonical } = locate(schema, c, s.tablePath, !options.ifExists);
    if (index < 0) continue;
    const name = canonical.join('.');
    if (c.length === 1 && s.partitionColumns.includes(canonical[0]!)) {
      throw new FloeError('DELTA_UNSUPPORTED_DROP_PARTITION_COLUMN', `Dropping partition columns (${name}) is not allowed (table ${s.tablePath}).`, { table: s.tablePath, column: name });
    }
    if (c.length === 1) refuseGeneratedDependents(s, canonical[0]!, 'drop');
    const deps = c.length === 1 ? dependentConstraints(s, canonical[0]!) : [];
    if (deps.length) {
      throw new FloeError('DELTA_CONSTRAINT_DEPENDENT_COLUMN_CHANGE', `Cannot drop column ${name} of ${s.tablePath} because this column is referenced by the following check constraint(s):\n${deps.join('\n')}\nDrop them first.`, { table: s.tablePath, column: name });
    }
    if (fields.length === 1) {
      throw new FloeError('DELTA_DROP_COLUMN_ON_SINGLE_FIELD_SCHEMA', `Cannot drop ${name}: a ${c.length === 1 ? 'table' : 'struct'} needs at least one column (table ${s.tablePath}).`, { table: s.tablePath, column: name });
    }
    fields.splice(index, 1);
    dropped.push(name);
    droppedPaths.push(canonical);
  }
  if (!dropped.length) return null;
  const keptStats = statsColumnsAfter(s.configuration, { drop: droppedPaths });
  const configuration = keptStats === null ? undefined : { ...s.configuration, [STATS_COLUMNS_PROPERTY]: keptStats };
  return commitMetadata(floe, s, { schema, configuration }, 'DROP COLUMNS', { columns: JSON.stringify(dropped) });
}

/**
 * ALTER TABLE … ALTER / CHANGE COLUMN: nullability (SET NOT NULL is checked against the rows:
 * DELTA_NOT_NULL_CONSTRAINT_VIOLATED), comment, position, SET / DROP DEFAULT (allowColumnDefaults),
 * TYPE (type widening with delta.enableTypeWidening, recorded in the field's delta.typeChanges; no
 * data is rewritten: readers cast old files). Top-level columns for SET NOT NULL and DEFAULT.
 */
export async function changeColumn(floe: Floe, location: string, column: string[], change: ChangeColumn): Promise<number> {
  const s = await openSnapshot(floe, location);
  const schema = clone(s.schema);
  const { fields, index, canonical } = locate(schema, column, s.tablePath);
  const f = { ...fields[index]!, metadata: { ...fields[index]!.metadata } };
  const name = canonical.join('.');
  const params: Record<string, unknown> = {};
  if (change.type === 'string' && f.type === 'string') {
    // CHAR/VARCHAR ↔ STRING: metadata only. Widening (to STRING, or to a longer VARCHAR) is allowed;
    // a length on a column without one, a shorter one, or CHAR ↔ VARCHAR would have to check or pad
    // the rows already written.
    const from = charVarcharOf(f);
    const to = change.charVarchar !== undefined ? parseCharVarchar(charVarcharMetadata(change.charVarchar, 'string', name)[CHAR_VARCHAR_TYPE]) : undefined;
    if (to && !(from?.kind === 'varchar' && to.kind === 'varchar' && to.length >= from.length) && !(from && from.text === to.text)) {
      throw new FloeError('DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', `ALTER TABLE CHANGE COLUMN is not supported for changing column ${name} of ${s.tablePath} from ${from?.text ?? 'string'} to ${to.text}: only a VARCHAR may grow (or any CHAR/VARCHAR become STRING); rows already written are not checked again.`, { table: s.tablePath, column: name, from: from?.text ?? 'string', to: to.text });
    }
    if (from && from.text !== (to?.text ?? 'string')) {
      if (to) f.metadata[CHAR_VARCHAR_TYPE] = to.text;
      else delete f.metadata[CHAR_VARCHAR_TYPE];
      params.newType = to?.text ?? 'string';
    }
  } else if (change.charVarchar !== undefined) {
    throw new FloeError('DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', `ALTER TABLE CHANGE COLUMN is not supported for changing column ${name} of ${s.tablePath} from ${typeof f.type === 'string' ? f.type : f.type.type} to ${change.charVarchar}.`, { table: s.tablePath, column: name });
  }
  if (change.type !== undefined && JSON.stringify(change.type) !== JSON.stringify(f.type)) {
    const shown = (t: DataType): string => (typeof t === 'string' ? t : JSON.stringify(t));
    if (column.length === 1) refuseGeneratedDependents(s, canonical[0]!, 'change the type of');
    const widening = isTypeWidening(f.type, change.type);
    if (!widening || s.configuration['delta.enableTypeWidening'] !== 'true') {
      const hint = widening
        ? ` This widening needs type widening: ALTER TABLE … SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true') first.`
        : ' Delta allows only widening type changes (byte → short → int → long, float → double, date → timestamp_ntz, decimal precision increases); overwrite the table with the new type instead (overwriteSchema).';
      throw new FloeError('DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', `ALTER TABLE CHANGE COLUMN is not supported for changing column ${name} of ${s.tablePath} from ${shown(f.type)} to ${shown(change.type)}.${hint}`, { table: s.tablePath, column: name, from: f.type, to: change.type });
    }
    // The protocol's record of the change (the preview feature also records the table version).
    const preview = s.protocol.writerFeatures?.includes('typeWidening-preview') && !s.protocol.writerFeatures?.includes('typeWidening');
    const prior = Array.isArray(f.metadata['delta.typeChanges']) ? (f.metadata['delta.typeChanges'] as unknown[]) : [];
    f.metadata['delta.typeChanges'] = [...prior, { ...(preview ? { tableVersion: s.version + 1 } : {}), fromType: f.type, toType: change.type }];
    params.newType = shown(change.type);
    f.type = change.type;
  }
  if (change.default !== undefined) {
    if (change.default === null) delete f.metadata[CURRENT_DEFAULT];
    else {
      if (!protocolHasFeature(s.protocol, 'allowColumnDefaults')) {
        throw new FloeError('WRONG_COLUMN_DEFAULTS_FOR_DELTA_FEATURE_NOT_ENABLED', `Failed to set a DEFAULT on column ${name} of ${s.tablePath}: the table feature allowColumnDefaults is not enabled. Run ALTER TABLE … SET TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported') first.`, { table: s.tablePath, column: name });
      }
      if (column.length !== 1) throw new FloeError('DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', `A DEFAULT on the nested field ${name} is not supported; only top-level columns.`, { table: s.tablePath, column: name });
      if (f.metadata[GENERATION_EXPRESSION] !== undefined) throw new FloeError('DELTA_INVALID_DEFAULT_VALUE', `Column ${name} is a generated column; it cannot have a DEFAULT.`, { column: name });
      f.metadata[CURRENT_DEFAULT] = change.default;
      await validateColumnExpressions(floe, { type: 'struct', fields: [f] });
    }
  }
  if (change.nullable === false && f.nullable) {
    if (column.length !== 1) throw new FloeError('DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP', `SET NOT NULL on the nested field ${name} is not supported by floe; only top-level columns.`, { table: s.tablePath, column: name });
    const df = await floe.read.delta(location);
    const rows = await floe.engine.allJson(`SELECT count(*) AS n FROM (${await df.toSQL()}) WHERE ${quoteIdent(f.name)} IS NULL`);
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) throw new FloeError('DELTA_NOT_NULL_CONSTRAINT_VIOLATED', `NOT NULL constraint violated for column: ${name}. ${n} existing row(s) of ${s.tablePath} have a null there; update or delete them first.`, { table: s.tablePath, column: name, rows: n });
    f.nullable = false;
  } else if (change.nullable === true) f.nullable = true;
  if (change.comment !== undefined) f.metadata.comment = change.comment;
  fields.splice(index, 1);
  if (change.position) insertAt(fields, f, change.position, s.tablePath);
  else fields.splice(index, 0, f);
  params.column = JSON.stringify({ name: f.name, type: f.type, nullable: f.nullable, metadata: f.metadata });
  if (change.position) params.position = 'first' in change.position ? 'FIRST' : `AFTER ${change.position.after}`;
  // SET NOT NULL read the rows: a concurrent write of a null must conflict.
  return commitMetadata(floe, s, { schema }, 'CHANGE COLUMN', params, change.nullable === false);
}

/**
 * ALTER TABLE … ADD CONSTRAINT name CHECK (expr): `expr` is stored as written (`delta.constraints.<name>`,
 * name lower-cased as Spark) in Spark SQL; `checkSql` is its DuckDB form (translated when absent), used to validate existing rows
 * (DELTA_NEW_CHECK_CONSTRAINT_VIOLATION). Writer version 3 at least.
 */
export async function addConstraint(floe: Floe, location: string, name: string, expr: string, checkSql?: string): Promise<number> {
  const s = await openSnapshot(floe, location);
  checkSql ??= await storedExprToDuck(expr, { what: `CHECK constraint ${name}` });
  const key = `delta.constraints.${name.toLowerCase()}`;
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new InvalidArgumentError(`Invalid constraint name '${name}': use letters, digits and underscores.`, { name });
  if (s.configuration[key] !== undefined) {
    throw new FloeError('DELTA_CONSTRAINT_ALREADY_EXISTS', `Constraint '${name.toLowerCase()}' already exists on ${s.tablePath}. Please delete the old constraint first.\nOld constraint:\n${s.configuration[key]}`, { table: s.tablePath, name });
  }
  const df = await floe.read.delta(location);
  const rows = await floe.engine.allJson(`SELECT count(*) AS n FROM (${await df.toSQL()}) WHERE (${checkSql}) IS NOT TRUE`);
  const n = Number(rows[0]?.n ?? 0);
  if (n > 0) {
    throw new FloeError('DELTA_NEW_CHECK_CONSTRAINT_VIOLATION', `${n} rows in ${s.tablePath} violate the new CHECK constraint (${expr}). Fix or delete them first.`, { table: s.tablePath, name, rows: n });
  }
  const configuration = { ...s.configuration, [key]: expr };
  const log = floe.deltaLog(location);
  const needed = mergeProtocols(s.protocol, protocolFor(s.schema, configuration));
  checkWriteSupport(needed, s.tablePath, s.schema);
  const txn = new Transaction(log, s);
  txn.readWhole(); // the rows were checked: a concurrent write conflicts
  if (JSON.stringify(needed) !== JSON.stringify(s.protocol)) txn.setProtocol(needed);
  txn.setMetadata({ ...s.metadata, configuration });
  const r = await txn.commit('ADD CONSTRAINT', { name: name.toLowerCase(), expr });
  return r.version;
}

/** ALTER TABLE … DROP CONSTRAINT [IF EXISTS] name. Returns null when it did not exist (with ifExists). */
export async function dropConstraint(floe: Floe, location: string, name: string, options: { ifExists?: boolean } = {}): Promise<number | null> {
  const s = await openSnapshot(floe, location);
  const key = `delta.constraints.${name.toLowerCase()}`;
  const old = s.configuration[key];
  if (old === undefined) {
    if (options.ifExists) return null;
    throw new FloeError('DELTA_CONSTRAINT_DOES_NOT_EXIST', `Cannot drop nonexistent constraint ${name.toLowerCase()} from table ${s.tablePath}. To ignore this error, use DROP CONSTRAINT IF EXISTS.`, { table: s.tablePath, name });
  }
  const configuration = { ...s.configuration };
  delete configuration[key];
  const txn = new Transaction(floe.deltaLog(location), s);
  txn.setMetadata({ ...s.metadata, configuration });
  const r = await txn.commit('DROP CONSTRAINT', { name: name.toLowerCase(), expr: old, existed: 'true' });
  return r.version;
}

// ---------------------------------------------------------------- CONVERT TO DELTA

export interface ConvertOptions {
  /** Partition columns and their types, in folder order (`PARTITIONED BY (year INT, month INT)`). */
  partitionSchema?: { name: string; type: DataType }[];
}

export interface ConvertResult {
  version: number;
  numFiles: number;
}

const PRIMITIVE_PARTITION = /^(string|long|integer|short|byte|float|double|boolean|date|timestamp|timestamp_ntz|decimal\(\d+,\d+\))$/;

function unescapePathName(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * CONVERT TO DELTA parquet.`path`: writes a first commit over the Parquet files under `location`
 * (in place, nothing is copied): the schema from the files, one `add` per file with its stats, and
 * partition values parsed from Hive-style folders (`col=value`) typed by `partitionSchema`.
 * Refuses a folder whose `_delta_log` already has commits.
 */
export async function convertToDelta(floe: Floe, location: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const log = floe.deltaLog(location);
  if (await log.exists()) {
    throw new FloeError('DELTA_TABLE_ALREADY_EXISTS', `Cannot convert ${log.tablePath}: it is already a Delta table (its _delta_log has commits).`, { path: log.tablePath });
  }
  const root = readPath(log.store, '');
  if (!root) throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', 'CONVERT TO DELTA cannot read this store\'s files locally.');
  const listed = await log.store.list('', { recursive: true }).catch(() => []);
  const files = listed.filter((e) => {
    const parts = e.path.split('/');
    return !parts.some((p) => p.startsWith('_') || p.startsWith('.')) && e.path.endsWith('.parquet');
  }).sort((a, b) => a.path.localeCompare(b.path));
  if (!files.length) throw new FloeError('DELTA_EMPTY_DIRECTORY', `No Parquet files found under ${log.tablePath} to convert.`, { path: log.tablePath });
  const partSchema = (options.partitionSchema ?? []).map((p) => {
    if (typeof p.type !== 'string' || !PRIMITIVE_PARTITION.test(p.type)) throw new InvalidArgumentError(`Partition column ${p.name} must have a primitive type, not ${JSON.stringify(p.type)}.`, {}, 'DELTA_INVALID_PARTITION_COLUMN_TYPE');
    return p;
  });
  // Partition values from the folder names.
  const perFile = files.map((f) => {
    const dirs = f.path.split('/').slice(0, -1);
    const kv = dirs.filter((d) => d.includes('='));
    if (kv.length !== partSchema.length) {
      throw new FloeError('DELTA_UNEXPECTED_NUM_PARTITION_COLUMNS_FROM_FILE_NAME', `Expecting ${partSchema.length} partition column(s): [${partSchema.map((p) => p.name).join(', ')}], but found ${kv.length} partition column(s) from parsing the file name: ${f.path}.${kv.length && !partSchema.length ? ' Give them with PARTITIONED BY (col type, …).' : ''}`, { file: f.path });
    }
    const values: Record<string, string | null> = {};
    kv.forEach((d, i) => {
      const eq = d.indexOf('=');
      const key = unescapePathName(d.slice(0, eq));
      const p = partSchema[i]!;
      if (!eqName(key, p.name)) throw new FloeError('DELTA_UNEXPECTED_PARTITION_COLUMN_FROM_FILE_NAME', `Expecting partition column ${p.name}, but found partition column ${key} from parsing the file name: ${f.path}.`, { file: f.path });
      const raw = unescapePathName(d.slice(eq + 1));
      values[p.name] = raw === '__HIVE_DEFAULT_PARTITION__' ? null : raw;
    });
    return { file: f, values, abs: path.join(root, ...f.path.split('/')) };
  });
  await ensureLocal(log.store, files); // remote stores: into the local cache
  // Values must cast to the declared types.
  for (const p of partSchema) {
    const distinct = [...new Set(perFile.map((x) => x.values[p.name]).filter((v): v is string => v !== null))];
    if (!distinct.length) continue;
    const rows = await floe.engine.allJson(`SELECT v FROM (VALUES ${distinct.map((v) => `(${quoteString(v)})`).join(', ')}) t(v) WHERE TRY_CAST(v AS ${duckType(p.type)}) IS NULL`);
    if (rows.length) throw new FloeError('DELTA_FAILED_CAST_PARTITION_VALUE', `Failed to cast partition value '${String(rows[0]!.v)}' to ${String(p.type)} for partition column ${p.name}.`, { column: p.name, value: rows[0]!.v });
  }
  // Schema: the union of the files' columns; partition columns appended.
  const src = `read_parquet([${perFile.map((x) => quoteString(x.abs)).join(', ')}], union_by_name = true, hive_partitioning = false)`;
  const cols = await floe.engine.describe(`SELECT * FROM ${src}`);
  const dataFields: StructField[] = cols.map((c) => ({ name: c.name, type: deltaTypeFromDuck(c.type), nullable: true, metadata: {} }));
  for (const p of partSchema) {
    if (dataFields.some((f) => eqName(f.name, p.name))) throw new FloeError('DELTA_DUPLICATE_COLUMNS_FOUND', `Partition column ${p.name} is also a column in the data files of ${log.tablePath}.`, { column: p.name });
  }
  const schema: StructType = { type: 'struct', fields: [...dataFields, ...partSchema.map((p) => ({ name: p.name, type: p.type, nullable: true, metadata: {} }))] };
  const meta = newMetadata(floe, schema, partSchema.map((p) => p.name), {}, undefined, undefined, true);
  const statsSpec = statsColumnSpec(meta.configuration);
  // Stats per file: numRecords, min / max / null count of primitive top-level columns.
  const statCols: StructField[] = [];
  forEachStatsLeaf(dataFields, statsSpec, (p) => {
    if (p.length === 1 && typeof p[0]!.type === 'string' && !['binary', 'boolean'].includes(p[0]!.type)) statCols.push(p[0]!);
  });
  const adds: AddFile[] = [];
  for (const x of perFile) {
    const fileCols = new Set((await floe.engine.describe(`SELECT * FROM read_parquet(${quoteString(x.abs)}, hive_partitioning = false)`)).map((c) => c.name));
    const present = statCols.filter((f) => fileCols.has(f.name));
    const sel = ['count(*) AS n', ...present.flatMap((f, i) => [
      `CAST(min(${quoteIdent(f.name)}) AS VARCHAR) AS min${i}`, `CAST(max(${quoteIdent(f.name)}) AS VARCHAR) AS max${i}`, `count(*) - count(${quoteIdent(f.name)}) AS nulls${i}`,
      ...(f.type === 'double' || f.type === 'float' ? [`bool_or(isnan(${quoteIdent(f.name)})) AS nan${i}`] : []),
    ])];
    const r = (await floe.engine.allJson(`SELECT ${sel.join(', ')} FROM read_parquet(${quoteString(x.abs)}, hive_partitioning = false)`))[0]!;
    const colStats = new Map<string, { min?: string; max?: string; nullCount?: number; hasNan?: boolean }>();
    present.forEach((f, i) => {
      colStats.set(quoteIdent(f.name), {
        ...(r[`min${i}`] !== null ? { min: String(r[`min${i}`]) } : {}),
        ...(r[`max${i}`] !== null ? { max: String(r[`max${i}`]) } : {}),
        nullCount: Number(r[`nulls${i}`]),
        hasNan: r[`nan${i}`] === true,
      });
    });
    // Columns missing from this file are all null there.
    for (const f of statCols) if (!fileCols.has(f.name)) colStats.set(quoteIdent(f.name), { nullCount: Number(r.n) });
    adds.push({
      path: encodePath(x.file.path),
      partitionValues: x.values,
      size: x.file.size,
      modificationTime: Math.floor(x.file.lastModified || Date.now()),
      dataChange: true,
      stats: deltaStats(Number(r.n), colStats, dataFields, statsSpec),
    });
  }
  const protocol = protocolFor(schema, meta.configuration);
  checkWriteSupport(protocol, log.tablePath, schema);
  const txn = new Transaction(log, null);
  txn.setProtocol(protocol);
  txn.setMetadata(meta);
  txn.adds.push(...adds);
  const res = await txn.commit('CONVERT', { numFiles: adds.length, partitionedBy: JSON.stringify(partSchema.map((p) => p.name)), collectStats: true }, { numConvertedFiles: adds.length });
  floe.forgetLog(location);
  return { version: res.version, numFiles: adds.length };
}
