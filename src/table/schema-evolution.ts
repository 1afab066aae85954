/**
 * Schema enforcement and evolution for writes: matching a source's columns to the table's (by name,
 * case-insensitively, as Spark does), the implicit widenings a write may apply, and `mergeSchema`.
 */
import { type DataType, type StructField, type StructType, schemaToString } from '../core/schema.js';
import { FloeError } from '../errors.js';

const INT_RANK: Record<string, number> = { byte: 1, short: 2, integer: 3, long: 4 };

/** Delta's session setting that turns schema evolution on for every write and MERGE (as mergeSchema / WITH SCHEMA EVOLUTION). */
export const AUTO_MERGE_CONF = 'spark.databricks.delta.schema.autoMerge.enabled';

/** Is `spark.databricks.delta.schema.autoMerge.enabled` true in the session? */
export function autoMergeOn(config: { get(key: string): string | undefined }): boolean {
  return (config.get(AUTO_MERGE_CONF) ?? '').trim().toLowerCase() === 'true';
}

function typeKey(t: DataType): string {
  return typeof t === 'string' ? t : JSON.stringify(t);
}

/** Can a value of type `from` be stored in a column of type `to` without loss? */
export function canUpcast(from: DataType, to: DataType): boolean {
  if (typeKey(from) === typeKey(to)) return true;
  if (typeof from === 'string' && typeof to === 'string') {
    if (INT_RANK[from] && INT_RANK[to]) return INT_RANK[from]! <= INT_RANK[to]!;
    if (INT_RANK[from] && (to === 'double' || to === 'float')) return INT_RANK[from]! <= (to === 'double' ? 3 : 2);
    if (from === 'float' && to === 'double') return true;
    const df = /^decimal\((\d+),(\d+)\)$/.exec(from);
    const dt = /^decimal\((\d+),(\d+)\)$/.exec(to);
    if (df && dt) return Number(dt[2]) >= Number(df[2]) && Number(dt[1]) - Number(dt[2]) >= Number(df[1]) - Number(df[2]);
    if (INT_RANK[from] && dt) return Number(dt[1]) - Number(dt[2]) >= [0, 3, 5, 10, 20][INT_RANK[from]!]!;
    if (from === 'date' && (to === 'timestamp' || to === 'timestamp_ntz')) return true;
    if (from === 'timestamp_ntz' && to === 'timestamp') return false;
    return false;
  }
  if (typeof from !== 'string' && typeof to !== 'string') {
    if (from.type === 'struct' && to.type === 'struct') {
      return from.fields.every((f) => {
        const t = to.fields.find((x) => x.name.toLowerCase() === f.name.toLowerCase());
        return t !== undefined && canUpcast(f.type, t.type);
      });
    }
    if (from.type === 'array' && to.type === 'array') return canUpcast(from.elementType, to.elementType);
    if (from.type === 'map' && to.type === 'map') return canUpcast(from.keyType, to.keyType) && canUpcast(from.valueType, to.valueType);
  }
  return false;
}

function mismatch(table: string, tableSchema: StructType, source: StructType, reason: string): FloeError {
  return new FloeError(
    'DELTA_SCHEMA_MISMATCH',
    `A schema mismatch was detected when writing to the Delta table at ${table}: ${reason}.\nTable schema:  ${schemaToString(tableSchema)}\nData schema:   ${schemaToString(source)}\nTo add new columns, write with mergeSchema: true; to replace the schema, overwrite with overwriteSchema: true.`,
    { table, reason },
  );
}

/**
 * The schema to write with: the table's own, or (with mergeSchema) the table's plus the source's
 * new columns (nullable) and struct fields. Throws DELTA_SCHEMA_MISMATCH otherwise.
 */
export function reconcileSchema(table: string, tableSchema: StructType, source: StructType, mergeSchema: boolean): { schema: StructType; changed: boolean } {
  let changed = false;
  const fields: StructField[] = tableSchema.fields.map((f) => ({ ...f }));
  for (const s of source.fields) {
    const i = fields.findIndex((f) => f.name.toLowerCase() === s.name.toLowerCase());
    if (i < 0) {
      if (!mergeSchema) throw mismatch(table, tableSchema, source, `column '${s.name}' is not in the table`);
      fields.push({ name: s.name, type: s.type, nullable: true, metadata: {} });
      changed = true;
      continue;
    }
    const t = fields[i]!;
    if (canUpcast(s.type, t.type)) continue;
    if (mergeSchema && typeof s.type !== 'string' && typeof t.type !== 'string' && s.type.type === 'struct' && t.type.type === 'struct') {
      const inner = reconcileSchema(table, t.type, s.type, true);
      fields[i] = { ...t, type: inner.schema };
      changed ||= inner.changed;
      continue;
    }
    throw mismatch(table, tableSchema, source, `column '${s.name}' has type ${typeKey(s.type)} in the data but ${typeKey(t.type)} in the table`);
  }
  return { schema: { type: 'struct', fields }, changed };
}
