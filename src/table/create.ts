/**
 * Creating tables: `DeltaTable.create(floe, { path, schema, partitionBy, properties, comment })` and
 * the delta-spark builder (`DeltaTable.createIfNotExists(floe).location(p).addColumn(...).execute()`).
 */
import type { StructField, StructType, DataType } from '../core/schema.js';
import { Transaction } from '../core/transaction.js';
import { checkWriteSupport, explicitFeatures, mergeProtocols, protocolFor, withoutFeatureProps } from '../core/write-support.js';
import { protocolHasFeature } from '../core/table-features.js';
import { FloeError, InvalidArgumentError } from '../errors.js';
import type { Floe } from '../floe.js';
import { CURRENT_DEFAULT, GENERATION_EXPRESSION, columnDefault, generationExpression, newMetadata } from './write.js';
import { duckType, quoteIdent } from '../core/schema.js';
import { storedExprToDuck } from '../sql/spark-expr.js';
import { CHAR_VARCHAR_TYPE, parseCharVarchar } from '../sql/types.js';

/** A column as users write it: `{ name: 'id', type: 'long', nullable: false, comment: '…' }`. */
export interface ColumnSpec {
  name: string;
  type: DataType;
  nullable?: boolean;
  comment?: string;
  /** Spark SQL expression over the other columns: a generated column (`GENERATED ALWAYS AS (expr)`). */
  generatedAlwaysAs?: string;
  /** Spark SQL expression: the column's DEFAULT (needs the table property delta.feature.allowColumnDefaults = supported). */
  default?: string;
  /**
   * A string column declared CHAR(n) or VARCHAR(n) (`'char(10)'`, `'varchar(255)'`): kept as Spark
   * keeps it (field metadata `__CHAR_VARCHAR_TYPE_STRING`); writes fail on a longer value, CHAR pads.
   */
  charVarchar?: string;
}

export interface CreateTableOptions {
  path: string;
  schema: StructType | ColumnSpec[];
  partitionBy?: string[];
  properties?: Record<string, string>;
  comment?: string;
  name?: string;
  /** 'create' fails when a table exists; 'ifNotExists' returns quietly; 'replace' replaces it (new version, same history). */
  mode?: 'create' | 'ifNotExists' | 'replace' | 'createOrReplace';
}

const PRIMITIVES = /^(string|long|integer|short|byte|float|double|boolean|binary|date|timestamp|timestamp_ntz|decimal\(\d+,\s*\d+\))$/;

function validateType(t: DataType, where: string): DataType {
  if (typeof t === 'string') {
    const norm = t.trim().toLowerCase().replace(/^int$/, 'integer').replace(/^bigint$/, 'long').replace(/^smallint$/, 'short').replace(/^tinyint$/, 'byte').replace(/\s+/g, '');
    if (!PRIMITIVES.test(norm)) throw new InvalidArgumentError(`Unknown data type '${t}' for ${where}. Use a Delta type: string, long, integer, short, byte, float, double, boolean, binary, date, timestamp, timestamp_ntz, decimal(p,s), or a struct/array/map object.`, {}, 'DELTA_UNSUPPORTED_DATA_TYPE');
    return norm;
  }
  if (t.type === 'struct') {
    checkDuplicateFields(t, where, false);
    return { type: 'struct', fields: t.fields.map((f) => ({ ...f, type: validateType(f.type, `${where}.${f.name}`), metadata: f.metadata ?? {}, nullable: f.nullable ?? true })) };
  }
  if (t.type === 'array') return { ...t, elementType: validateType(t.elementType, `${where}[]`) };
  return { ...t, keyType: validateType(t.keyType, `${where} key`), valueType: validateType(t.valueType, `${where} value`) };
}

/**
 * A struct's field names are unique, case-insensitively (Spark's DELTA_DUPLICATE_COLUMNS_FOUND);
 * `deep`: in the structs nested in it (in arrays and maps too) as well. `where` names the type.
 */
export function checkDuplicateFields(t: DataType, where: string, deep = true): void {
  if (typeof t === 'string') return;
  if (t.type === 'struct') {
    const seen = new Set<string>();
    for (const f of t.fields) {
      if (seen.has(f.name.toLowerCase())) throw new InvalidArgumentError(`Found duplicate column(s) in the data to save: ${where}.${f.name} (names are case-insensitive).`, { column: `${where.replace(/^column /, '')}.${f.name}` }, 'DELTA_DUPLICATE_COLUMNS_FOUND');
      seen.add(f.name.toLowerCase());
      if (deep) checkDuplicateFields(f.type, `${where}.${f.name}`);
    }
  } else if (deep && t.type === 'array') checkDuplicateFields(t.elementType, `${where}[]`);
  else if (deep && t.type === 'map') {
    checkDuplicateFields(t.keyType, `${where} key`);
    checkDuplicateFields(t.valueType, `${where} value`);
  }
}

/** The field metadata of a CHAR(n)/VARCHAR(n) declaration (checked: a string column, a positive length). */
export function charVarcharMetadata(text: string | undefined, type: DataType, column: string): Record<string, string> {
  if (text === undefined) return {};
  const cv = parseCharVarchar(text);
  if (!cv) throw new InvalidArgumentError(`Column ${column}: '${text}' is not a CHAR or VARCHAR type; write 'char(n)' or 'varchar(n)' with n > 0.`, { column, charVarchar: text });
  if (type !== 'string') throw new InvalidArgumentError(`Column ${column} is declared ${text} but typed ${typeof type === 'string' ? type : type.type}; CHAR and VARCHAR columns are strings.`, { column, charVarchar: text });
  return { [CHAR_VARCHAR_TYPE]: cv.text };
}

export function toStructType(schema: StructType | ColumnSpec[]): StructType {
  const cols: StructField[] = Array.isArray(schema)
    ? schema.map((c) => ({
      name: c.name, type: c.type, nullable: c.nullable ?? true,
      metadata: { ...(c.comment ? { comment: c.comment } : {}), ...(c.generatedAlwaysAs !== undefined ? { [GENERATION_EXPRESSION]: c.generatedAlwaysAs } : {}), ...(c.default !== undefined ? { [CURRENT_DEFAULT]: c.default } : {}), ...charVarcharMetadata(c.charVarchar, c.type, c.name) },
    }))
    : schema.fields;
  const seen = new Set<string>();
  const fields = cols.map((f) => {
    if (!f.name) throw new InvalidArgumentError('A column needs a name.');
    if (seen.has(f.name.toLowerCase())) throw new InvalidArgumentError(`Column '${f.name}' appears twice (names are case-insensitive).`, {}, 'DELTA_DUPLICATE_COLUMNS_FOUND');
    seen.add(f.name.toLowerCase());
    return { name: f.name, type: validateType(f.type, `column ${f.name}`), nullable: f.nullable ?? true, metadata: f.metadata ?? {} };
  });
  if (!fields.length) throw new InvalidArgumentError('A table needs at least one column.');
  return { type: 'struct', fields };
}

/**
 * Checks generation expressions and defaults when a table is created: a generated column uses only
 * the table's other, non-generated columns (Spark's DELTA_INVALID_GENERATED_COLUMN_REFERENCES), a
 * partition-free, deterministic row expression that can be cast to the column's type; a DEFAULT is
 * a constant expression of the column's type.
 */
export async function validateColumnExpressions(floe: Floe, schema: StructType): Promise<void> {
  const gen = schema.fields.filter((f) => generationExpression(f) !== undefined);
  const defaults = schema.fields.filter((f) => columnDefault(f) !== undefined);
  if (!gen.length && !defaults.length) return;
  const base = schema.fields.filter((f) => generationExpression(f) === undefined);
  const row = `SELECT ${base.map((f) => `NULL::${duckType(f.type)} AS ${quoteIdent(f.name)}`).join(', ') || '1 AS __none'}`;
  for (const f of gen) {
    if (columnDefault(f) !== undefined) throw new FloeError('DELTA_INVALID_DEFAULT_VALUE', `Column ${f.name} cannot have both a DEFAULT and GENERATED ALWAYS AS.`);
    const g = generationExpression(f)!;
    if (/\b(rand|random|randn|uuid|current_timestamp|current_date|now|monotonically_increasing_id)\s*\(|\bcurrent_(timestamp|date)\b/i.test(g)) {
      throw new FloeError('DELTA_NON_DETERMINISTIC_EXPRESSION_IN_GENERATED_COLUMN', `The generation expression of column ${f.name} (${g}) is not deterministic; a generated column needs the same value every time it is computed.`, { column: f.name });
    }
    const sql = await storedExprToDuck(g, { what: `the generation expression of column ${f.name}` });
    try {
      await floe.engine.describe(`SELECT CAST((${sql}) AS ${duckType(f.type)}) AS v FROM (${row})`);
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      if (/not found|does not exist|Referenced column/i.test(msg)) {
        throw new FloeError('DELTA_INVALID_GENERATED_COLUMN_REFERENCES', `A generated column cannot use a non-existent column or another generated column: ${f.name} GENERATED ALWAYS AS (${g}) (${msg}).`, { column: f.name });
      }
      throw new FloeError('DELTA_UNSUPPORTED_EXPRESSION_GENERATED_COLUMN', `The generation expression of column ${f.name} (${g}) cannot be used: ${msg}.`, { column: f.name });
    }
  }
  for (const f of defaults) {
    const d = columnDefault(f)!;
    const sql = await storedExprToDuck(d, { what: `the DEFAULT of column ${f.name}` });
    try {
      await floe.engine.allJson(`SELECT CAST((${sql}) AS ${duckType(f.type)}) AS v`);
    } catch (e) {
      throw new FloeError('INVALID_DEFAULT_VALUE', `The DEFAULT of column ${f.name} (${d}) is not a constant expression of type ${typeof f.type === 'string' ? f.type : f.type.type}: ${(e as Error).message.split('\n')[0]}.`, { column: f.name });
    }
  }
}

/** Creates (or replaces) a table; returns the committed version, or null when it existed and mode is ifNotExists. */
export async function createTable(floe: Floe, opts: CreateTableOptions): Promise<number | null> {
  const mode = opts.mode ?? 'create';
  const log = floe.deltaLog(opts.path);
  const exists = await log.exists();
  if (exists && mode === 'ifNotExists') return null;
  if (exists && mode === 'create') throw new FloeError('DELTA_TABLE_ALREADY_EXISTS', `A Delta table already exists at ${log.tablePath}. Use createIfNotExists or createOrReplace.`, { path: log.tablePath });
  if (!exists && mode === 'replace') throw new FloeError('DELTA_TABLE_NOT_FOUND', `Cannot replace: no Delta table at ${log.tablePath}. Use create or createOrReplace.`, { path: log.tablePath });
  const schema = toStructType(opts.schema);
  const snapshot = exists ? await log.snapshot() : null;
  if (snapshot) checkWriteSupport(snapshot.protocol, log.tablePath, snapshot.schema);
  const meta = newMetadata(floe, schema, opts.partitionBy ?? [], opts.properties ?? {}, opts.comment, opts.name, !snapshot);
  if (schema.fields.some((f) => columnDefault(f) !== undefined) && !explicitFeatures(meta.configuration).includes('allowColumnDefaults') && !(snapshot && protocolHasFeature(snapshot.protocol, 'allowColumnDefaults'))) {
    throw new FloeError('WRONG_COLUMN_DEFAULTS_FOR_DELTA_FEATURE_NOT_ENABLED', `Failed to create ${log.tablePath}: it assigns a column DEFAULT value, but the table feature allowColumnDefaults is not enabled. Add the table property 'delta.feature.allowColumnDefaults' = 'supported' (TBLPROPERTIES or properties).`, { path: log.tablePath });
  }
  await validateColumnExpressions(floe, schema);
  const required = protocolFor(schema, meta.configuration);
  meta.configuration = withoutFeatureProps(meta.configuration);
  const protocol = snapshot ? mergeProtocols(snapshot.protocol, required) : required;
  checkWriteSupport(protocol, log.tablePath, schema);
  const txn = new Transaction(log, snapshot);
  if (!snapshot || JSON.stringify(protocol) !== JSON.stringify(snapshot.protocol)) txn.setProtocol(protocol);
  txn.setMetadata(meta);
  if (snapshot) {
    txn.readWhole();
    for (const f of snapshot.files) txn.remove(f);
  }
  const params: Record<string, unknown> = { partitionBy: JSON.stringify(meta.partitionColumns), description: opts.comment, properties: JSON.stringify(meta.configuration) };
  const res = await txn.commit(!snapshot ? 'CREATE TABLE' : mode === 'replace' ? 'REPLACE TABLE' : 'CREATE OR REPLACE TABLE', params);
  return res.version;
}

/** The delta-spark builder: `DeltaTable.create(floe).location(p).addColumn('id', 'long').execute()`. */
export class DeltaTableBuilder<T = unknown> {
  private readonly cols: ColumnSpec[] = [];
  private loc?: string;
  private parts: string[] = [];
  private props: Record<string, string> = {};
  private desc?: string;
  private tableName?: string;

  constructor(
    private readonly floe: Floe,
    private readonly mode: CreateTableOptions['mode'],
    private readonly open: (floe: Floe, path: string) => Promise<T>,
  ) {}

  location(path: string): this {
    this.loc = path;
    return this;
  }
  tableNameIs(name: string): this {
    this.tableName = name;
    return this;
  }
  addColumn(name: string, type: DataType, options: { nullable?: boolean; comment?: string; generatedAlwaysAs?: string; default?: string } = {}): this {
    this.cols.push({ name, type, ...options });
    return this;
  }
  addColumns(cols: ColumnSpec[]): this {
    this.cols.push(...cols);
    return this;
  }
  partitionedBy(...cols: string[]): this {
    this.parts = cols;
    return this;
  }
  property(key: string, value: string): this {
    this.props[key] = value;
    return this;
  }
  comment(text: string): this {
    this.desc = text;
    return this;
  }
  /** Creates the table and returns it opened. */
  async execute(): Promise<T> {
    if (!this.loc) throw new InvalidArgumentError('The table builder needs a location(path).');
    await createTable(this.floe, { path: this.loc, schema: this.cols, partitionBy: this.parts, properties: this.props, comment: this.desc, name: this.tableName, mode: this.mode });
    return this.open(this.floe, this.loc);
  }
}
