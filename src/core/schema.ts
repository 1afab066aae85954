/**
 * Delta table schemas (PROTOCOL.md "Schema Serialization Format"): parsing `schemaString`, the
 * mapping to DuckDB types, and column mapping (logical ↔ physical names, field ids).
 */
import { CorruptLogError, UnsupportedFeatureError } from '../errors.js';

export type PrimitiveTypeName =
  | 'string' | 'long' | 'integer' | 'short' | 'byte' | 'float' | 'double' | 'boolean' | 'binary'
  | 'date' | 'timestamp' | 'timestamp_ntz' | 'variant' | `decimal(${number},${number})` | 'decimal';

export interface StructField {
  name: string;
  type: DataType;
  nullable: boolean;
  metadata: Record<string, unknown>;
}
export interface StructType { type: 'struct'; fields: StructField[] }
export interface ArrayType { type: 'array'; elementType: DataType; containsNull: boolean }
export interface MapType { type: 'map'; keyType: DataType; valueType: DataType; valueContainsNull: boolean }
export type DataType = string | StructType | ArrayType | MapType;

export function parseSchema(schemaString: string): StructType {
  let s: unknown;
  try {
    s = JSON.parse(schemaString);
  } catch (e) {
    throw new CorruptLogError(`metaData.schemaString is not valid JSON: ${(e as Error).message}`);
  }
  const st = s as StructType;
  if (!st || st.type !== 'struct' || !Array.isArray(st.fields)) {
    throw new CorruptLogError('metaData.schemaString is not a struct type');
  }
  normalizeStruct(st);
  return st;
}

function normalizeStruct(st: StructType): void {
  for (const f of st.fields) {
    if (typeof f.name !== 'string') throw new CorruptLogError('schema field without a name');
    f.metadata ??= {};
    f.nullable ??= true;
    normalizeType(f.type);
  }
}
function normalizeType(t: DataType): void {
  if (typeof t === 'string') return;
  if (t.type === 'struct') normalizeStruct(t);
  else if (t.type === 'array') normalizeType(t.elementType);
  else if (t.type === 'map') {
    normalizeType(t.keyType);
    normalizeType(t.valueType);
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** DuckDB type for a Delta type. timestamp is UTC-adjusted (TIMESTAMPTZ), timestamp_ntz is not. */
export function duckType(t: DataType, physical = false): string {
  if (typeof t === 'string') {
    const dec = /^decimal\((\d+),\s*(\d+)\)$/.exec(t);
    if (dec) return `DECIMAL(${dec[1]},${dec[2]})`;
    switch (t) {
      case 'string': return 'VARCHAR';
      case 'long': return 'BIGINT';
      case 'integer': return 'INTEGER';
      case 'short': return 'SMALLINT';
      case 'byte': return 'TINYINT';
      case 'float': return 'FLOAT';
      case 'double': return 'DOUBLE';
      case 'boolean': return 'BOOLEAN';
      case 'binary': return 'BLOB';
      case 'date': return 'DATE';
      case 'timestamp': return 'TIMESTAMPTZ';
      case 'timestamp_ntz': return 'TIMESTAMP';
      case 'decimal': return 'DECIMAL(10,0)';
      case 'void': return 'INTEGER';
      default:
        throw new UnsupportedFeatureError(`Data type '${t}' is not supported by floe yet.`, { type: t });
    }
  }
  if (t.type === 'struct') {
    return `STRUCT(${t.fields.map((f) => `${quoteIdent(physical ? physicalName(f) : f.name)} ${duckType(f.type, physical)}`).join(', ')})`;
  }
  if (t.type === 'array') return `${duckType(t.elementType, physical)}[]`;
  if (t.type === 'map') return `MAP(${duckType(t.keyType, physical)}, ${duckType(t.valueType, physical)})`;
  throw new CorruptLogError(`Unknown data type ${JSON.stringify(t)}`);
}

const INTEGRAL_TYPES = new Set(['byte', 'short', 'integer', 'long']);

/** Is a DuckDB type (as DESCRIBE prints it) fractional: FLOAT, DOUBLE or DECIMAL? */
function fractionalDuck(t: string): boolean {
  return /^(FLOAT|REAL|DOUBLE|DECIMAL\b|NUMERIC\b)/i.test(t.trim());
}

/**
 * Store assignment's cast of `expr` to the Delta type `to`, given the DuckDB type of `expr` when
 * known (`from`): a fractional value written to an integral column is truncated toward zero, as
 * Spark's cast does (DuckDB's CAST rounds: -1.5 → -2); out-of-range values still fail the CAST.
 */
export function storeAssignmentCast(expr: string, to: DataType, from?: string): string {
  if (from !== undefined && typeof to === 'string' && INTEGRAL_TYPES.has(to) && fractionalDuck(from)) return `CAST(trunc(${expr}) AS ${duckType(to)})`;
  return `CAST(${expr} AS ${duckType(to)})`;
}

/**
 * `cols` cast to `schema`'s column types and named as they are, as SQL INSERT's store assignment
 * casts values to the table's types (a column the schema lacks stays as it is). `types` are the
 * DuckDB types of `cols` (by position), when known: fractional values to integral columns truncate.
 */
export function castToColumns(schema: StructType, cols: string[], types?: string[]): string {
  return cols.map((c, i) => {
    const f = schema.fields.find((x) => x.name === c);
    return f ? `${storeAssignmentCast(quoteIdent(c), f.type, types?.[i])} AS ${quoteIdent(c)}` : quoteIdent(c);
  }).join(', ');
}

/** Delta type for a DuckDB type name (as DESCRIBE prints it). */
export function deltaTypeFromDuck(t: string): DataType {
  const u = t.trim().toUpperCase();
  const dec = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(u);
  if (dec) return `decimal(${dec[1]},${dec[2]})`;
  if (u.endsWith('[]')) return { type: 'array', elementType: deltaTypeFromDuck(t.trim().slice(0, -2)), containsNull: true };
  if (u.startsWith('STRUCT(') && u.endsWith(')')) {
    const inner = t.trim().slice(7, -1);
    const fields: StructField[] = splitTopLevel(inner).map((part) => {
      const m = /^\s*("(?:[^"]|"")*"|[^\s]+)\s+([\s\S]+)$/.exec(part);
      if (!m) throw new UnsupportedFeatureError(`Cannot map DuckDB type ${t} to a Delta type`);
      const rawName = m[1]!;
      const name = rawName.startsWith('"') ? rawName.slice(1, -1).replace(/""/g, '"') : rawName;
      return { name, type: deltaTypeFromDuck(m[2]!), nullable: true, metadata: {} };
    });
    return { type: 'struct', fields };
  }
  if (u.startsWith('MAP(') && u.endsWith(')')) {
    const [k, v] = splitTopLevel(t.trim().slice(4, -1));
    return { type: 'map', keyType: deltaTypeFromDuck(k!), valueType: deltaTypeFromDuck(v!), valueContainsNull: true };
  }
  switch (u) {
    case 'VARCHAR': case 'UUID': case 'JSON': return 'string';
    case 'BIGINT': case 'UBIGINT': case 'HUGEINT': return 'long';
    case 'INTEGER': case 'UINTEGER': return 'integer';
    case 'SMALLINT': case 'USMALLINT': return 'short';
    case 'TINYINT': case 'UTINYINT': return 'byte';
    case 'FLOAT': return 'float';
    case 'DOUBLE': return 'double';
    case 'BOOLEAN': return 'boolean';
    case 'BLOB': return 'binary';
    case 'DATE': return 'date';
    case 'TIMESTAMP WITH TIME ZONE': case 'TIMESTAMPTZ': return 'timestamp';
    case 'TIMESTAMP': case 'TIMESTAMP_NS': case 'TIMESTAMP_MS': case 'TIMESTAMP_S': return 'timestamp_ntz';
    default:
      throw new UnsupportedFeatureError(`DuckDB type ${t} has no Delta equivalent; cast the column to a supported type first.`);
  }
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  let inQ = false;
  for (const ch of s) {
    if (ch === '"') inQ = !inQ;
    if (!inQ && (ch === '(' || ch === '[')) depth++;
    if (!inQ && (ch === ')' || ch === ']')) depth--;
    if (!inQ && ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

export type ColumnMappingMode = 'none' | 'name' | 'id';

export function columnMappingMode(configuration: Record<string, string>): ColumnMappingMode {
  const m = (configuration['delta.columnMapping.mode'] ?? 'none').toLowerCase();
  if (m === 'name' || m === 'id' || m === 'none') return m;
  throw new UnsupportedFeatureError(`Unknown delta.columnMapping.mode '${m}'.`);
}

/** The column's name in Parquet files: `delta.columnMapping.physicalName` when set, else its name. */
export function physicalName(f: StructField): string {
  const p = f.metadata['delta.columnMapping.physicalName'];
  return typeof p === 'string' && p.length > 0 ? p : f.name;
}

export function fieldId(f: StructField): number | undefined {
  const id = f.metadata['delta.columnMapping.id'];
  return typeof id === 'number' ? id : undefined;
}

/** Renders a schema as a compact one-line string, for messages. */
export function schemaToString(st: StructType): string {
  const t = (d: DataType): string =>
    typeof d === 'string' ? d : d.type === 'struct' ? `struct<${d.fields.map((f) => `${f.name}:${t(f.type)}`).join(',')}>` : d.type === 'array' ? `array<${t(d.elementType)}>` : `map<${t(d.keyType)},${t(d.valueType)}>`;
  return st.fields.map((f) => `${f.name}: ${t(f.type)}${f.nullable ? '' : ' NOT NULL'}`).join(', ');
}

/** DuckDB's integer types up to 128 bits signed (as `typeof` and DESCRIBE name them; not UHUGEINT). */
export const DUCK_INTEGER_TYPES: ReadonlySet<string> = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT']);
