/**
 * Which columns get per-file statistics (PROTOCOL.md "Per-file Statistics"; Spark's
 * StatisticsCollection):
 *
 * - `delta.dataSkippingStatsColumns` (a comma-separated list of column names, nested names with
 *   dots, backticks around names with special characters; matched case-insensitively on logical
 *   names) takes precedence: stats for exactly those columns, every leaf of a named struct.
 * - Otherwise `delta.dataSkippingNumIndexedCols` (default 32; -1 = all): the first N leaf columns of
 *   the data schema, depth first. Arrays and maps count as one leaf each, as in Spark, though no
 *   min/max is written for them.
 *
 * Partition columns are not part of the data schema and never get stats.
 */
import type { DataType, StructField, StructType } from './schema.js';
import { FloeError, InvalidArgumentError } from '../errors.js';

export const STATS_COLUMNS_PROPERTY = 'delta.dataSkippingStatsColumns';
export const NUM_INDEXED_COLS_PROPERTY = 'delta.dataSkippingNumIndexedCols';
export const DEFAULT_NUM_INDEXED_COLS = 32;

/** What a writer collects stats for: named columns (lower-cased paths), else the first N leaves (-1: all). */
export interface StatsColumnSpec {
  names: string[][] | null;
  numIndexedCols: number;
}

/** No column stats (change data files: only numRecords). */
export const NO_COLUMN_STATS: StatsColumnSpec = { names: null, numIndexedCols: 0 };

/** Parses a comma-separated list of multi-part identifiers (`a, b.c, \`x.y\`.z`); null when malformed. */
export function parseStatsColumnNames(text: string): string[][] | null {
  const out: string[][] = [];
  if (!text.trim()) return out;
  let parts: string[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = (): void => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    let part = '';
    if (text[i] === '`') {
      i++;
      for (;;) {
        if (i >= n) return null; // unterminated quote
        if (text[i] === '`') {
          if (text[i + 1] === '`') {
            part += '`';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += text[i++];
      }
      if (!part) return null;
    } else {
      while (i < n && /[A-Za-z0-9_]/.test(text[i]!)) part += text[i++];
      if (!part) return null;
    }
    parts.push(part);
    skipSpace();
    if (i >= n) {
      out.push(parts);
      return out;
    }
    if (text[i] === '.') {
      i++;
      continue;
    }
    if (text[i] === ',') {
      i++;
      out.push(parts);
      parts = [];
      continue;
    }
    return null;
  }
}

function numIndexedCols(configuration: Record<string, string>): number {
  const raw = configuration[NUM_INDEXED_COLS_PROPERTY];
  if (raw === undefined) return DEFAULT_NUM_INDEXED_COLS;
  const v = Number(raw.trim());
  return Number.isInteger(v) && v >= -1 ? v : DEFAULT_NUM_INDEXED_COLS;
}

/** The stats spec of a table's configuration (values are validated when set; see validateStatsProperties). */
export function statsColumnSpec(configuration: Record<string, string>): StatsColumnSpec {
  const listed = configuration[STATS_COLUMNS_PROPERTY];
  const names = listed === undefined ? null : parseStatsColumnNames(listed);
  if (names) return { names: names.map((p) => p.map((x) => x.toLowerCase())), numIndexedCols: -1 };
  return { names: null, numIndexedCols: numIndexedCols(configuration) };
}

/**
 * Walks the data fields depth first and calls `leaf` for every leaf that gets stats, with its
 * logical path and its fields along the way. Used by the writer (stats JSON) and by OPTIMIZE's
 * Z-order check.
 */
export function forEachStatsLeaf(fields: StructField[], spec: StatsColumnSpec, leaf: (path: StructField[]) => void): void {
  let count = 0;
  const limit = spec.names ? Infinity : spec.numIndexedCols < 0 ? Infinity : spec.numIndexedCols;
  const selected = (path: StructField[]): boolean => {
    if (!spec.names) return true;
    const lower = path.map((f) => f.name.toLowerCase());
    return spec.names.some((nm) => nm.length <= lower.length && nm.every((p, k) => p === lower[k]));
  };
  const walk = (fs: StructField[], prefix: StructField[]): void => {
    for (const f of fs) {
      if (count >= limit) return;
      const p = [...prefix, f];
      if (typeof f.type !== 'string' && f.type.type === 'struct') {
        walk(f.type.fields, p);
        continue;
      }
      if (!selected(p)) continue;
      count++;
      leaf(p);
    }
  };
  walk(fields, []);
}

/** Types that carry min/max stats (Spark's SkippingEligibleDataType). */
export function skippingEligible(t: DataType): boolean {
  return typeof t === 'string' && /^(long|integer|short|byte|double|float|date|string|timestamp|timestamp_ntz|decimal.*)$/.test(t);
}

function typeName(t: DataType): string {
  return typeof t === 'string' ? t : t.type;
}

/**
 * Checks the stats properties of a table being created or altered, with Spark's errors: the
 * number of indexed columns is an integer ≥ -1; listed columns parse, exist, are not partition
 * columns, have types with min/max stats (every leaf of a named struct), and are not listed twice.
 */
export function validateStatsProperties(schema: StructType, partitionColumns: string[], configuration: Record<string, string>): void {
  const nic = configuration[NUM_INDEXED_COLS_PROPERTY];
  if (nic !== undefined && !(/^\s*-?\d+\s*$/.test(nic) && Number(nic) >= -1)) {
    throw new InvalidArgumentError(`${NUM_INDEXED_COLS_PROPERTY} needs to be larger than or equal to -1 (got '${nic}').`, { key: NUM_INDEXED_COLS_PROPERTY, value: nic }, 'DELTA_INVALID_TABLE_PROPERTY_VALUE');
  }
  const listed = configuration[STATS_COLUMNS_PROPERTY];
  if (listed === undefined) return;
  const names = parseStatsColumnNames(listed);
  if (!names) {
    throw new InvalidArgumentError(`${STATS_COLUMNS_PROPERTY} needs to be a comma-separated list of column names (nested names with dots, special characters in backticks); got '${listed}'.`, { key: STATS_COLUMNS_PROPERTY, value: listed }, 'DELTA_INVALID_TABLE_PROPERTY_VALUE');
  }
  const parts = new Set(partitionColumns.map((p) => p.toLowerCase()));
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const name of names) {
    const shown = renderPath(name);
    if (name.length === 1 && parts.has(name[0]!.toLowerCase())) {
      throw new FloeError('DELTA_COLUMN_DATA_SKIPPING_NOT_SUPPORTED_PARTITIONED_COLUMN', `Data skipping is not supported for partition column '${shown}': partition values already prune files. Remove it from ${STATS_COLUMNS_PROPERTY}.`, { column: shown });
    }
    let fields = schema.fields;
    let field: StructField | undefined;
    for (let k = 0; k < name.length; k++) {
      field = fields.find((f) => f.name.toLowerCase() === name[k]!.toLowerCase());
      if (!field) throw new FloeError('DELTA_COLUMN_NOT_FOUND', `Column '${shown}' in ${STATS_COLUMNS_PROPERTY} does not exist. Columns: ${schema.fields.map((f) => f.name).join(', ')}.`, { column: shown });
      if (k < name.length - 1) {
        if (typeof field.type === 'string' || field.type.type !== 'struct') {
          throw new FloeError('DELTA_COLUMN_NOT_FOUND', `Column '${shown}' in ${STATS_COLUMNS_PROPERTY} does not exist: '${name.slice(0, k + 1).join('.')}' is not a struct.`, { column: shown });
        }
        fields = field.type.fields;
      }
    }
    const check = (label: string, t: DataType): void => {
      if (typeof t !== 'string' && t.type === 'struct') {
        for (const f of t.fields) check(`${label}.${f.name}`, f.type);
        return;
      }
      if (!skippingEligible(t)) {
        throw new FloeError('DELTA_COLUMN_DATA_SKIPPING_NOT_SUPPORTED_TYPE', `Data skipping is not supported for column '${label}' of type ${typeName(t)} (no min/max statistics for this type). Remove it from ${STATS_COLUMNS_PROPERTY}.`, { column: label, type: typeName(t) });
      }
      const key = label.toLowerCase();
      if (seen.has(key)) dup.add(label);
      seen.add(key);
    };
    check(shown, field!.type);
  }
  if (dup.size) {
    throw new FloeError('DELTA_DUPLICATE_DATA_SKIPPING_COLUMNS', `Duplicated data skipping columns found: ${[...dup].join(', ')}. List each column once in ${STATS_COLUMNS_PROPERTY}.`, { columns: [...dup] });
  }
}

/** A name path in the property's syntax (backticks where a part needs them). */
function renderPath(p: string[]): string {
  return p.map((x) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(x) ? x : `\`${x.replace(/`/g, '``')}\``)).join('.');
}

/**
 * The stats-columns property after RENAME COLUMN (paths under the old name move to the new one) or
 * DROP COLUMN (paths under a dropped column leave), as Spark rewrites it. Null: no change needed.
 */
export function statsColumnsAfter(configuration: Record<string, string>, change: { rename: { from: string[]; to: string[] } } | { drop: string[][] }): string | null {
  const listed = configuration[STATS_COLUMNS_PROPERTY];
  if (listed === undefined) return null;
  const names = parseStatsColumnNames(listed);
  if (!names) return null;
  const under = (prefix: string[], p: string[]): boolean => prefix.length <= p.length && prefix.every((x, k) => x.toLowerCase() === p[k]!.toLowerCase());
  let next: string[][];
  if ('rename' in change) {
    const { from, to } = change.rename;
    next = names.map((p) => (under(from, p) ? [...to, ...p.slice(from.length)] : p));
  } else {
    next = names.filter((p) => !change.drop.some((d) => under(d, p)));
  }
  const out = next.map(renderPath).join(',');
  return out === listed ? null : out;
}
