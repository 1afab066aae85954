/**
 * Writing data files: DuckDB's `COPY … TO … (FORMAT parquet, RETURN_STATS)` writes Parquet into the
 * table folder (Hive-style folders for partitions, uuid file names, a target file size) and reports
 * each file's row count and column statistics, which become the `add` actions' Delta stats
 * (PROTOCOL.md "Per-file Statistics"). Rows never pass through JavaScript.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import type { AddFile } from '../core/actions.js';
import { decodePath, encodePath } from '../core/actions.js';
import { type DataType, type StructField, type StructType, duckType, fieldId, physicalName, quoteIdent, quoteString } from '../core/schema.js';
import { FloeError, InvalidArgumentError, StorageError } from '../errors.js';
import { LocalObjectStore } from '../storage/local.js';
import { readPath, remoteOf } from '../storage/open.js';
import type { RemoteObjectStore } from '../storage/remote.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Engine } from './engine.js';
import { hasNestedMapping } from './scan.js';
import { type StatsColumnSpec, forEachStatsLeaf, statsColumnSpec } from '../core/stats-columns.js';

/** Spark's default: string min/max stats are cut to 32 characters. */
const STRING_STATS_PREFIX = 32;
export const DEFAULT_TARGET_FILE_SIZE = 128 * 1024 * 1024;

export interface WriteFilesOptions {
  /** Logical table schema; the source must have these columns (by name) in castable types. */
  schema: StructType;
  partitionColumns: string[];
  /** Write physical column names (column mapping) and Parquet field ids (id mode). */
  columnMapping: 'none' | 'name' | 'id';
  targetFileSize?: number;
  /** Subfolder for the files (e.g. `_change_data` for CDC files). */
  subdir?: string;
  /** Which columns get stats (`statsColumnSpec(configuration)`; default: the first 32 leaves). */
  statsColumns?: StatsColumnSpec;
  /** Source columns written as they are after the table's columns (e.g. `_change_type` in CDC files). */
  extraColumns?: string[];
  /** File name prefix (`part` for data files, `cdc` for change data files). */
  filePrefix?: string;
  /**
   * Rotate files by row count instead of size, keeping the source's order across files (Z-order
   * clustering); unpartitioned writes only.
   */
  maxRowsPerFile?: number;
  /** Parquet format version of the files (parquetVersionOf the table's configuration; default 1). */
  parquetVersion?: 1 | 2;
}

/** The table property choosing the Parquet format version of a table's new files (see parquetVersionOf). */
export const PARQUET_VERSION_PROPERTY = 'floe.parquet.version';

/**
 * The Parquet format version a table's new files are written in: 2 when its configuration sets
 * `floe.parquet.version = v2` (data page V2 with DELTA encodings: integer columns about 2.5 times
 * smaller, faster to write and scan; readers need DataPageV2 support, as DuckDB, delta-rs and Spark
 * 3.3+ have), else 1, the format every Delta reader takes. floe sets it on its internal AUTO CDC
 * state tables, which only floe reads.
 */
export function parquetVersionOf(configuration: Record<string, string>): 1 | 2 {
  return configuration[PARQUET_VERSION_PROPERTY]?.toLowerCase() === 'v2' ? 2 : 1;
}

/** Checks a `floe.parquet.version` value being set (v1 or v2). */
export function validateParquetVersion(configuration: Record<string, string>): void {
  const v = configuration[PARQUET_VERSION_PROPERTY];
  if (v !== undefined && !/^v[12]$/i.test(v)) {
    throw new InvalidArgumentError(`${PARQUET_VERSION_PROPERTY} must be 'v1' or 'v2' (got '${v}').`, { key: PARQUET_VERSION_PROPERTY, value: v }, 'DELTA_INVALID_TABLE_PROPERTY_VALUE');
  }
}

/** SQL expression serialising a partition column's value as the log stores it (PROTOCOL.md "Partition Value Serialization"). */
export function partitionValueSql(expr: string, type: DataType): string {
  switch (type) {
    case 'string': return `NULLIF(${expr}, '')`; // Spark stores empty-string partition values as null
    case 'date': return `strftime(${expr}, '%Y-%m-%d')`;
    case 'timestamp': case 'timestamp_ntz': return `strftime(${expr}, '%Y-%m-%d %H:%M:%S.%f')`;
    case 'boolean': return `CASE WHEN ${expr} IS NULL THEN NULL WHEN ${expr} THEN 'true' ELSE 'false' END`;
    case 'binary': return `decode(${expr})`;
    default: return `CAST(${expr} AS VARCHAR)`;
  }
}

type StatEntry = { min?: string; max?: string; nullCount?: number; hasNan?: boolean };

/** A raw JSON fragment (numbers kept exact as text). */
class Raw {
  constructor(readonly text: string) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  return JSON.stringify(v);
}

function statValue(type: DataType, s: string, kind: 'min' | 'max'): unknown {
  if (typeof type !== 'string') return undefined;
  if (/^(long|integer|short|byte)$/.test(type) || type.startsWith('decimal')) return /^-?\d+(\.\d+)?$/.test(s) ? new Raw(s) : undefined;
  if (type === 'double' || type === 'float') {
    const n = Number(s);
    return Number.isFinite(n) ? new Raw(s.includes('e') || s.includes('E') ? String(n) : s) : undefined;
  }
  if (type === 'date') return s;
  if (type === 'string') {
    const cps = [...s];
    if (cps.length <= STRING_STATS_PREFIX) return s;
    return kind === 'min' ? cps.slice(0, STRING_STATS_PREFIX).join('') : undefined; // a cut max would not bound the values
  }
  if (type === 'timestamp' || type === 'timestamp_ntz') {
    const m = /^(\d{4,}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?/.exec(s);
    if (!m) return undefined;
    const ms = (m[3] ?? '.000').slice(1, 4).padEnd(3, '0'); // truncated to milliseconds, as Spark writes them
    return `${m[1]}T${m[2]}.${ms}${type === 'timestamp' ? 'Z' : ''}`;
  }
  return undefined; // boolean, binary: no min/max
}

/**
 * Builds Delta stats JSON from DuckDB's column statistics for the leaf columns the table's stats
 * spec selects (stats-columns.ts: `delta.dataSkippingStatsColumns`, else the first
 * `delta.dataSkippingNumIndexedCols` leaves, structs walked depth first).
 */
export function deltaStats(numRecords: number, columnStats: Map<string, StatEntry>, fields: StructField[], spec: StatsColumnSpec): string {
  const minValues: Record<string, unknown> = {};
  const maxValues: Record<string, unknown> = {};
  const nullCount: Record<string, unknown> = {};
  const put = (root: Record<string, unknown>, keys: string[], v: unknown): void => {
    let o = root;
    for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
    o[keys[keys.length - 1]!] = v;
  };
  forEachStatsLeaf(fields, spec, (fieldPath) => {
    const f = fieldPath[fieldPath.length - 1]!;
    if (typeof f.type !== 'string') return; // arrays and maps count as indexed columns but get no stats
    const keyPath = fieldPath.map(physicalName);
    const st = columnStats.get(keyPath.map((k) => `"${k.replace(/"/g, '""')}"`).join('.'));
    if (!st) return;
    if (st.nullCount !== undefined) put(nullCount, keyPath, new Raw(String(st.nullCount)));
    if (st.hasNan) return;
    if (st.min !== undefined) {
      const v = statValue(f.type, st.min, 'min');
      if (v !== undefined) put(minValues, keyPath, v);
    }
    if (st.max !== undefined) {
      const v = statValue(f.type, st.max, 'max');
      if (v !== undefined) put(maxValues, keyPath, v);
    }
  });
  return toJson({ numRecords: new Raw(String(numRecords)), minValues, maxValues, nullCount });
}

function mapEntries(v: unknown): [string, unknown][] {
  if (Array.isArray(v)) return v.map((e) => [String((e as { key: unknown }).key), (e as { value: unknown }).value]);
  if (v && typeof v === 'object') return Object.entries(v);
  return [];
}

/**
 * A value of a logical type as the files store it: cast to the table type, nested fields renamed to
 * their physical names (column mapping) — the inverse of the scan's logical expression.
 */
function physicalExpr(expr: string, type: DataType, mapped: boolean): string {
  if (!mapped || typeof type === 'string' || !hasNestedMapping(type)) return `CAST(${expr} AS ${duckType(type)})`;
  if (type.type === 'struct') {
    const parts = type.fields.map((f) => `${quoteIdent(physicalName(f))} := ${physicalExpr(`${expr}.${quoteIdent(f.name)}`, f.type, true)}`);
    return `CASE WHEN ${expr} IS NULL THEN NULL ELSE struct_pack(${parts.join(', ')}) END`;
  }
  if (type.type === 'array') return `list_transform(${expr}, __e -> ${physicalExpr('__e', type.elementType, true)})`;
  return `map_from_entries(list_transform(map_entries(${expr}), __e -> struct_pack(key := ${physicalExpr('__e.key', type.keyType, true)}, value := ${physicalExpr('__e.value', type.valueType, true)})))`;
}

/**
 * Writes the rows of `sourceSql` as Parquet data files of the table and returns their `add` actions
 * (dataChange = true). The source's columns are matched by logical name and cast to the table types.
 */
export async function writeDataFiles(engine: Engine, store: ObjectStore, sourceSql: string, opts: WriteFilesOptions): Promise<AddFile[]> {
  // Remote stores: DuckDB writes into the table's folder in the local cache (the staging area), and
  // the files are uploaded before this returns, so no `add` names a file whose upload did not finish.
  const remote = remoteOf(store);
  const root = readPath(store, '');
  if (!root) throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', 'This store cannot stage written files locally.');
  const dir = opts.subdir ? path.join(root, opts.subdir) : root;
  // Names this write's files (Spark's task-number slot), so a failed write can find and remove them.
  const writeId = randomBytes(4).toString('hex');
  const parts = new Set(opts.partitionColumns);
  const byName = new Map(opts.schema.fields.map((f) => [f.name, f]));
  const dataFields = opts.schema.fields.filter((f) => !parts.has(f.name));
  const partFields = opts.partitionColumns.map((c) => byName.get(c)!);
  const select = [
    ...dataFields.map((f) => `${physicalExpr(`s.${quoteIdent(f.name)}`, f.type, opts.columnMapping !== 'none')} AS ${quoteIdent(physicalName(f))}`),
    ...(opts.extraColumns ?? []).map((c) => `s.${quoteIdent(c)}`),
    ...partFields.map((f) => `${partitionValueSql(`s.${quoteIdent(f.name)}`, f.type)} AS ${quoteIdent(physicalName(f))}`),
  ];
  const copyOpts = [
    'FORMAT parquet',
    'RETURN_STATS',
    'APPEND',
    `FILENAME_PATTERN '${opts.filePrefix ?? 'part'}-${writeId}-{uuid}-c000.snappy'`,
  ];
  // DuckDB cannot rotate files within partitioned output: one file per partition per write (files
  // far over the target are split afterwards, below).
  const targetSize = Math.max(1024 * 1024, opts.targetFileSize ?? DEFAULT_TARGET_FILE_SIZE);
  if (partFields.length) copyOpts.push(`PARTITION_BY (${partFields.map((f) => quoteIdent(physicalName(f))).join(', ')})`);
  else if (opts.maxRowsPerFile) {
    const rg = Math.max(2048, Math.min(122_880, opts.maxRowsPerFile));
    copyOpts.push(`ROW_GROUP_SIZE ${rg}`, `ROW_GROUPS_PER_FILE ${Math.max(1, Math.round(opts.maxRowsPerFile / rg))}`);
  } else copyOpts.push(`FILE_SIZE_BYTES ${targetSize}`);
  const fieldIds: string[] = [];
  if (opts.columnMapping === 'id') {
    const ids = dataFields.filter((f) => fieldId(f) !== undefined).map((f) => `${quoteIdent(physicalName(f))}: ${fieldId(f)}`);
    if (ids.length) fieldIds.push(`FIELD_IDS {${ids.join(', ')}}`);
  }
  // (Also the options of the copies that split over-large files.)
  const formatOpts = [...fieldIds, ...(opts.parquetVersion === 2 ? ['PARQUET_VERSION V2'] : [])];
  copyOpts.push(...formatOpts);
  // This write's files, removed when the write fails part way.
  const removeMine = async (): Promise<void> => {
    const rel = path.relative(root, dir).split(path.sep).join('/');
    const local = remote ? new LocalObjectStore(root) : store;
    const mine = await local.list(rel ? `${rel}/` : '', { recursive: true }).catch(() => []);
    await Promise.all(mine.filter((m) => m.path.includes(`-${writeId}-`)).map((m) => local.delete(m.path).catch(() => undefined)));
  };
  const sql = `COPY (SELECT ${select.join(', ')} FROM (${sourceSql}) s) TO ${quoteString(dir)} (${copyOpts.join(', ')})`;
  await fs.mkdir(dir, { recursive: true }); // DuckDB creates the last folder only
  // DuckDB 1.5's partitioned COPY drops non-ASCII characters from the target folder's path (it would
  // write beside the table): write through an ASCII symlink to the folder and map the names back.
  let link: string | null = null;
  let target = dir;
  if (partFields.length && /[^\x20-\x7e]/.test(dir)) {
    link = path.join(os.tmpdir(), `floe-write-${writeId}-${process.pid}`);
    await fs.symlink(dir, link, 'dir');
    target = link;
  }
  let rows;
  try {
    rows = await engine.allJson(sql.replace(`TO ${quoteString(dir)} (`, `TO ${quoteString(target)} (`));
    if (link) for (const r of rows) r.filename = path.join(dir, path.relative(link, String(r.filename)));
  } catch (e) {
    // A failed COPY (e.g. a constraint's error()) may have created files already: remove this write's.
    await removeMine();
    throw e;
  } finally {
    if (link) await fs.rm(link, { force: true });
  }
  if (partFields.length && rows.some((r) => Number(r.file_size_bytes) > 1.5 * targetSize)) {
    try {
      rows = await splitLargeFiles(engine, rows, targetSize, formatOpts, `${opts.filePrefix ?? 'part'}-${writeId}`);
    } catch (e) {
      await removeMine();
      throw e;
    }
  }
  const now = Date.now();
  const out: AddFile[] = [];
  for (const r of rows) {
    const count = Number(r.count);
    const file = String(r.filename);
    if (count === 0) {
      if (remote) await fs.rm(file, { force: true });
      else await store.delete(path.relative(root, file).split(path.sep).join('/'));
      continue;
    }
    const colStats = new Map<string, StatEntry>();
    for (const [col, statsV] of mapEntries(r.column_statistics)) {
      const e: StatEntry = {};
      for (const [k, v] of mapEntries(statsV)) {
        if (k === 'min' && v !== null) e.min = String(v);
        else if (k === 'max' && v !== null) e.max = String(v);
        else if (k === 'null_count' && v !== null) e.nullCount = Number(v);
        else if (k === 'has_nan') e.hasNan = String(v) === 'true';
      }
      colStats.set(col, e);
    }
    const partitionValues: Record<string, string | null> = {};
    const keys = new Map(mapEntries(r.partition_keys));
    for (const f of partFields) {
      const v = keys.get(physicalName(f));
      partitionValues[physicalName(f)] = v === null || v === undefined || v === '__HIVE_DEFAULT_PARTITION__' ? null : String(v);
    }
    const rel = path.relative(root, file).split(path.sep).join('/');
    out.push({
      path: encodePath(rel),
      partitionValues,
      size: Number(r.file_size_bytes),
      modificationTime: now,
      dataChange: true,
      stats: deltaStats(count, colStats, dataFields, opts.statsColumns ?? statsColumnSpec({})),
    });
  }
  if (remote) await uploadStaged(remote, root, out.map((a) => ({ key: decodePath(a.path), size: a.size })));
  return out;
}

/**
 * Splits the files of a partitioned COPY that are far over the target size (DuckDB writes one file
 * per partition) into files of the target size: each is copied again, unpartitioned, into its own
 * partition folder with file rotation, then removed. Returns the COPY's stats rows with the split
 * files' rows in place of the originals (partition keys carried over).
 */
async function splitLargeFiles(engine: Engine, rows: Record<string, unknown>[], targetSize: number, formatOpts: string[], prefix: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const r of rows) {
    if (Number(r.file_size_bytes) <= 1.5 * targetSize) {
      out.push(r);
      continue;
    }
    const file = String(r.filename);
    // Files rotate at the first row-group boundary past the target: row groups of half the target (from the file's bytes per row).
    const rowGroup = Math.max(2048, Math.min(122_880, Math.floor(targetSize / 2 / (Number(r.file_size_bytes) / Math.max(1, Number(r.count))))));
    const opts = ['FORMAT parquet', 'RETURN_STATS', 'APPEND', `FILENAME_PATTERN '${prefix}-{uuid}-c000.snappy'`, `FILE_SIZE_BYTES ${targetSize}`, `ROW_GROUP_SIZE ${rowGroup}`, ...formatOpts];
    const parts = await engine.allJson(`COPY (SELECT * FROM read_parquet(${quoteString(file)}, hive_partitioning = false)) TO ${quoteString(path.dirname(file))} (${opts.join(', ')})`);
    await fs.rm(file, { force: true });
    for (const p of parts) out.push({ ...p, partition_keys: r.partition_keys });
  }
  return out;
}

/**
 * Uploads staged files (4 at a time). On failure, removes what was uploaded and the staged copies and
 * throws a StorageError saying that retrying is safe (nothing was committed).
 */
export async function uploadStaged(remote: RemoteObjectStore, root: string, files: { key: string; size: number }[]): Promise<void> {
  const queue = [...files];
  const done: string[] = [];
  let failure: unknown;
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f && failure === undefined; f = queue.shift()) {
      try {
        await remote.uploadFile(path.join(root, ...f.key.split('/')), f.key, f.size);
        done.push(f.key);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, files.length) }, worker));
  if (failure === undefined) return;
  await Promise.all(done.map((k) => remote.delete(k).catch(() => undefined)));
  await Promise.all(files.map((f) => fs.rm(path.join(root, ...f.key.split('/')), { force: true })));
  if (failure instanceof StorageError) throw failure;
  throw new StorageError('FLOE_STORAGE_UPLOAD_FAILED', `Uploading data files to ${remote.root} failed: ${(failure as Error).message}.`, true, { root: remote.root }, { cause: failure });
}
