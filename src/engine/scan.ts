/**
 * Turns a snapshot's file list into one DuckDB query: partition values injected from the log,
 * deletion vectors applied (anti-join on file_row_number), column mapping resolved (physical →
 * logical names, nested too), types cast to the table schema, and files skipped by partition values
 * and stats before DuckDB opens them.
 */
import * as path from 'node:path';
import type { AddFile } from '../core/actions.js';
import { parseStats } from '../core/actions.js';
import { loadDeletionVector } from '../core/deletion-vectors.js';
import { mapLimit } from '../core/delta-log.js';
import { type Expr, parsePredicate } from '../core/predicate.js';
import { type DataType, type StructField, type StructType, duckType, physicalName, quoteIdent, quoteString } from '../core/schema.js';
import { fileMayMatch } from '../core/skipping.js';
import type { Snapshot } from '../core/snapshot.js';
import { FloeError, ObjectNotFoundError, missingDataFileError } from '../errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { ensureLocal, readPath } from '../storage/open.js';
import { resolveLogPath } from '../storage/paths.js';
import type { Engine } from './engine.js';

export interface ScanPlan {
  /** The SELECT producing the snapshot's logical rows (before the caller's filters). */
  sql: string;
  /** Engine tables the SQL reads; drop them when done. */
  tables: string[];
  filesTotal: number;
  filesScanned: number;
  /** With `withFileId`: the data file paths, indexed by `_file_id`. */
  paths?: string[];
}

/** Above this many (partition values × DV) groups, files are joined to a table of their values instead of UNION ALL. */
const MAX_UNION_GROUPS = 64;

/** Absolute local path of a data file named in the log (relative, URL-encoded, or an absolute URI: see storage/paths.ts). */
export function dataFilePath(store: ObjectStore, p: string): string {
  const r = resolveLogPath(store, p);
  const local = readPath(r.store, r.key);
  if (!local) throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', `Data file ${p} is not on the local filesystem.`, { file: p });
  return path.normalize(local);
}

/** Remote stores: downloads the data files a query will read into the local cache (absolute URIs from their own stores). */
export async function ensureFilesLocal(store: ObjectStore, files: { path: string; size?: number }[]): Promise<void> {
  const byStore = new Map<ObjectStore, { path: string; size?: number }[]>();
  for (const f of files) {
    const r = resolveLogPath(store, f.path);
    let list = byStore.get(r.store);
    if (!list) byStore.set(r.store, (list = []));
    list.push({ path: r.key, size: f.size });
  }
  for (const [s, list] of byStore) {
    await ensureLocal(s, list).catch((e: unknown) => {
      // A remote store has no such object: the typed error DuckDB's "no files found" gives for local files.
      throw e instanceof ObjectNotFoundError ? missingDataFileError(String(e.details.path), e) : e;
    });
  }
}

/** SQL literal of a partition value (PROTOCOL.md "Partition Value Serialization") typed as the column. */
export function partitionLiteral(value: string | null | undefined, type: DataType): string {
  const t = duckType(type);
  // An empty partition value is null for every type but string (Spark and the kernels read it so).
  if (value === null || value === undefined || (value === '' && type !== 'string')) return `NULL::${t}`;
  if (type === 'binary') return `encode(${quoteString(value)})`;
  if (type === 'string') return quoteString(value);
  return `CAST(${quoteString(value)} AS ${t})`;
}

/**
 * Expression converting a column read from Parquet (physical names, file types) to the logical
 * type: nested struct fields renamed, leaves cast when the file's type differs.
 */
function logicalExpr(expr: string, type: DataType, fileType: string | undefined, mapped: boolean): string {
  const target = duckType(type);
  if (typeof type === 'string') {
    if (fileType === undefined || fileType.toUpperCase() === target.toUpperCase()) return expr;
    return `CAST(${expr} AS ${target})`;
  }
  if (!mapped) {
    if (fileType === undefined || fileType.toUpperCase() === target.toUpperCase()) return expr;
    return `CAST(${expr} AS ${target})`;
  }
  if (type.type === 'struct') {
    const parts = type.fields.map((f) => `${quoteIdent(f.name)} := ${logicalExpr(`${expr}.${quoteIdent(physicalName(f))}`, f.type, undefined, true)}`);
    return `CASE WHEN ${expr} IS NULL THEN NULL ELSE struct_pack(${parts.join(', ')}) END`;
  }
  if (type.type === 'array') {
    return `list_transform(${expr}, __e -> ${logicalExpr('__e', type.elementType, undefined, true)})`;
  }
  return `map_from_entries(list_transform(map_entries(${expr}), __e -> struct_pack(key := ${logicalExpr('__e.key', type.keyType, undefined, true)}, value := ${logicalExpr('__e.value', type.valueType, undefined, true)})))`;
}

/** Does a nested type have fields whose physical name differs from the logical one? */
export function hasNestedMapping(t: DataType): boolean {
  if (typeof t === 'string') return false;
  if (t.type === 'struct') return t.fields.some((f) => physicalName(f) !== f.name || hasNestedMapping(f.type));
  if (t.type === 'array') return hasNestedMapping(t.elementType);
  return hasNestedMapping(t.keyType) || hasNestedMapping(t.valueType);
}

/**
 * `expr AS name` for each data column read from Parquet (alias `t`): physical → logical names,
 * casts to the table types, NULL for columns no file has (added by a later schema change).
 */
export function dataColumnSelect(dataFields: StructField[], fileCols: Map<string, string>, mapped: boolean): string[] {
  return dataFields.map((f) => {
    const phys = physicalName(f);
    const fileType = fileCols.get(phys);
    if (fileType === undefined) return `NULL::${duckType(f.type)} AS ${quoteIdent(f.name)}`;
    if (mapped && hasNestedMapping(f.type)) {
      // Nested fields are renamed by physical name: first cast the file's value to the table's type
      // spelled with physical names, which (by name) fills nested fields the file lacks (added later)
      // with NULL and widens leaves; then rename.
      const physType = duckType(f.type, true);
      const col = fileType.replace(/\s+/g, '') === physType.replace(/\s+/g, '') ? `t.${quoteIdent(phys)}` : `CAST(t.${quoteIdent(phys)} AS ${physType})`;
      return `${logicalExpr(col, f.type, undefined, true)} AS ${quoteIdent(f.name)}`;
    }
    return `${logicalExpr(`t.${quoteIdent(phys)}`, f.type, fileType, false)} AS ${quoteIdent(f.name)}`;
  });
}

/** Column names and types of the union of some Parquet files' schemas. */
export async function parquetColumns(engine: Engine, paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of await engine.describe(`SELECT * FROM read_parquet([${paths.map(quoteString).join(', ')}], union_by_name = true)`)) out.set(c.name, c.type);
  return out;
}

/**
 * Each data file's Parquet columns, per engine, by (size, path): data files are immutable, so a table
 * scanned again (every batch of a pipeline) asks DuckDB only about its new files. Bounded: cleared
 * when it grows past MAX_CACHED_FILES.
 */
const fileColumnsCache = new WeakMap<Engine, Map<string, [string, string][]>>();
const MAX_CACHED_FILES = 100_000;
/** Above this many files not in the cache, one DESCRIBE of their union (as before the cache) instead of one per file. */
const MAX_FILES_DESCRIBED_ONE_BY_ONE = 256;
/** Files described per statement (a UNION ALL of DESCRIBEs). */
const DESCRIBE_CHUNK = 64;
/** A data file's key in the cache (size and path: data files are immutable). */
const fileKey = (f: { path: string; size: number }): string => `${f.size}:${f.path}`;

/**
 * The union of some data files' columns (as `parquetColumns`), answered from the per-file cache when
 * every file is there with the same columns (the union of identical schemas is that schema); files
 * not yet seen are described one by one (a few statements) and cached. Files whose columns differ
 * (a schema change between them) take the union DESCRIBE, exactly as `parquetColumns`.
 */
async function dataFilesColumns(engine: Engine, files: { path: string; size: number }[]): Promise<Map<string, string>> {
  const cache = await describeNewFiles(engine, files);
  if (!cache) return parquetColumns(engine, files.map((f) => f.path));
  const first = cache.get(fileKey(files[0]!));
  const same = (c: [string, string][] | undefined): boolean => !!c && !!first && c.length === first.length && c.every(([n, t], i) => n === first[i]![0] && t === first[i]![1]);
  if (!first || !files.every((f) => same(cache.get(fileKey(f))))) return parquetColumns(engine, files.map((f) => f.path));
  return new Map(first);
}

/**
 * Puts the columns of the files not yet in the cache into it (one statement per DESCRIBE_CHUNK
 * files) and returns the cache; null when too many files are new (the caller describes their union).
 */
async function describeNewFiles(engine: Engine, files: { path: string; size: number }[]): Promise<Map<string, [string, string][]> | null> {
  let cache = fileColumnsCache.get(engine);
  if (!cache) fileColumnsCache.set(engine, (cache = new Map()));
  const missing = [...new Map(files.filter((f) => !cache.has(fileKey(f))).map((f) => [fileKey(f), f])).values()];
  if (missing.length > MAX_FILES_DESCRIBED_ONE_BY_ONE) return null;
  if (cache.size + missing.length > MAX_CACHED_FILES) cache.clear();
  for (let i = 0; i < missing.length; i += DESCRIBE_CHUNK) {
    const chunk = missing.slice(i, i + DESCRIBE_CHUNK);
    // row_number() keeps each file's column order (DESCRIBE lists them in order).
    const sql = chunk
      .map((f, j) => `SELECT ${j} AS __i, row_number() OVER () AS __k, column_name AS __n, column_type AS __t FROM (DESCRIBE SELECT * FROM read_parquet([${quoteString(f.path)}], union_by_name = true))`)
      .join(' UNION ALL ');
    const cols: [string, string][][] = chunk.map(() => []);
    for (const r of await engine.allJson(`SELECT * FROM (${sql}) ORDER BY __i, __k`)) cols[Number(r.__i)]!.push([String(r.__n), String(r.__t)]);
    chunk.forEach((f, j) => cache.set(fileKey(f), cols[j]!));
  }
  return cache;
}

/**
 * Describes, in one statement, the data files of several snapshots that this engine has not seen
 * yet, so that the scans planned next (one per table) ask DuckDB nothing: e.g. the new files of a
 * flow's target and state before a batch plans both.
 */
export async function prefetchDataFileColumns(engine: Engine, tables: { store: ObjectStore; files: AddFile[] }[]): Promise<void> {
  for (const t of tables) await ensureFilesLocal(t.store, t.files);
  await describeNewFiles(engine, tables.flatMap((t) => t.files.map((f) => ({ path: dataFilePath(t.store, f.path), size: f.size }))));
}

/** The file index and row index columns of a positional scan (names no table column has). */
export const FILE_ID = '__floe_file_id';
export const ROW_INDEX = '__floe_row_index';

/**
 * A scan of some files of a snapshot whose rows carry their position: the table's columns, then
 * FILE_ID (an index in `paths`) and ROW_INDEX. The columns are renamed by position, so a table
 * column called `_file_id` or `_row_index` does not clash. For row-level changes that mark rows in
 * deletion vectors or find them again.
 */
export async function planPositionalScan(engine: Engine, store: ObjectStore, snapshot: Snapshot, files: AddFile[]): Promise<{ sql: string; paths: string[]; tables: string[] }> {
  const plan = await planScan(engine, store, snapshot, { files, withFileId: true });
  const names = [...snapshot.schema.fields.map((f) => quoteIdent(f.name)), FILE_ID, ROW_INDEX].join(', ');
  return { sql: `SELECT * FROM (${plan.sql}) AS __scan(${names})`, paths: plan.paths ?? [], tables: plan.tables };
}

export interface ScanOptions {
  /** SQL predicates the caller will apply; used here only to skip files. */
  filters?: string[];
  /** Extra columns: `_file` (data file path) and `_row_index` (row position in the file). */
  withFileInfo?: boolean;
  /** Scan only these files (a subset of the snapshot's), instead of pruning by `filters`. */
  files?: AddFile[];
  /**
   * Extra column `_file_id`: the file's position in the plan's `paths` (an integer, cheaper to join
   * and group on than the file name), and `_row_index` (row position in the file).
   */
  withFileId?: boolean;
}

/** Keeps the files that may hold rows matching every filter. */
export function pruneFiles(snapshot: Snapshot, filters: string[]): AddFile[] {
  return pruneFileList(snapshot.files, snapshot.schema, snapshot.partitionColumns, filters);
}

/** Keeps the files whose partition values and stats allow a row matching every filter. */
export function pruneFileList(files: AddFile[], schema: StructType, partitionColumns: string[], filters: string[]): AddFile[] {
  const exprs: Expr[] = [];
  for (const f of filters) {
    const e = parsePredicate(f);
    if (e) exprs.push(e);
  }
  if (!exprs.length) return files;
  return files.filter((file) => {
    const stats = parseStats(file.stats);
    return exprs.every((e) => fileMayMatch(e, { partitionValues: file.partitionValues, stats }, schema, partitionColumns, { naiveTimestampsAreUtc: true }));
  });
}

export async function planScan(engine: Engine, store: ObjectStore, snapshot: Snapshot, options: ScanOptions = {}): Promise<ScanPlan> {
  const schema: StructType = snapshot.schema;
  const partCols = new Set(snapshot.partitionColumns);
  const mapped = snapshot.columnMapping !== 'none';
  const files = options.files ?? pruneFiles(snapshot, options.filters ?? []);
  const fieldsByName = new Map(schema.fields.map((f) => [f.name, f]));
  const partFields: StructField[] = snapshot.partitionColumns.map((c) => {
    const f = fieldsByName.get(c);
    if (!f) throw new FloeError('DELTA_LOG_CORRUPT', `Partition column ${c} of ${snapshot.tablePath} is not in the table schema.`);
    return f;
  });
  const dataFields = schema.fields.filter((f) => !partCols.has(f.name));

  if (!files.length) {
    const cols = schema.fields.map((f) => `NULL::${duckType(f.type)} AS ${quoteIdent(f.name)}`);
    if (options.withFileInfo) cols.push('NULL::VARCHAR AS _file', 'NULL::BIGINT AS _row_index');
    if (options.withFileId) cols.push('NULL::BIGINT AS _file_id', ...(options.withFileInfo ? [] : ['NULL::BIGINT AS _row_index']));
    return { sql: `SELECT ${cols.join(', ')} WHERE false`, tables: [], filesTotal: snapshot.files.length, filesScanned: 0, ...(options.withFileId ? { paths: [] } : {}) };
  }

  await ensureFilesLocal(store, files);
  const tables: string[] = [];
  const dvFiles = files.filter((f) => f.deletionVector);

  // Group files by (partition values, has DV).
  const groups = new Map<string, { values: (string | null)[]; dv: boolean; paths: string[]; files: { path: string; size: number }[] }>();
  for (const f of files) {
    const values = partFields.map((pf) => {
      const pv = f.partitionValues[physicalName(pf)] ?? f.partitionValues[pf.name];
      return pv === undefined ? null : pv;
    });
    const dv = !!f.deletionVector;
    const key = JSON.stringify([values, dv]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { values, dv, paths: [], files: [] }));
    const p = dataFilePath(store, f.path);
    g.paths.push(p);
    g.files.push({ path: p, size: f.size });
  }

  const allPaths = [...groups.values()].flatMap((g) => g.paths);
  // Deletion vectors: (file id, row index) pairs in one engine table; the file id is the file's
  // position in allPaths (as `_file_id`), an integer join key instead of the file name.
  let dvTable: string | null = null;
  if (dvFiles.length) {
    dvTable = engine.uniqueName('dv');
    await engine.run(`CREATE TABLE ${dvTable} (file_id BIGINT, row_index BIGINT)`);
    tables.push(dvTable);
    const idOf = new Map(allPaths.map((p, i) => [p, i]));
    const loaded = await mapLimit(dvFiles, 8, async (f) => [idOf.get(dataFilePath(store, f.path))!, await loadDeletionVector(store, f.deletionVector!)] as [number, number[]]);
    await engine.appendIdRows(dvTable, loaded);
  }
  const needInfo = options.withFileInfo || options.withFileId || dvFiles.length > 0;
  const readArgs = `union_by_name = true${needInfo ? ', filename = true, file_row_number = true' : ''}`;

  // Output columns in schema order; data columns as the files being read have them (a column added
  // later is NULL in files written before, so each read_parquet resolves its own files' columns).
  const order = (partExprs: Map<string, string>, fileCols: Map<string, string>): string => {
    const dataSelect = dataColumnSelect(dataFields, fileCols, mapped);
    return schema.fields.map((f) => (partCols.has(f.name) ? `${partExprs.get(f.name)} AS ${quoteIdent(f.name)}` : dataSelect[dataFields.indexOf(f)]!)).join(', ');
  };
  const infoCols = options.withFileInfo ? ', t.filename AS _file, t.file_row_number AS _row_index' : '';
  // read_parquet's file_index is the file's position in its list: offset by the earlier groups' files.
  // A data column named file_index would shadow the virtual column: then the file name is looked up.
  const fileId = (offset: number, paths: string[], cols: Map<string, string>): string => {
    const index = cols.has('file_index') ? `list_position([${paths.map(quoteString).join(', ')}], t.filename) - 1` : 't.file_index';
    return `(${index} + ${offset})::BIGINT`;
  };
  const dvJoin = (offset: number, paths: string[], cols: Map<string, string>): string =>
    dvTable ? ` ANTI JOIN ${dvTable} d ON d.file_id = ${fileId(offset, paths, cols)} AND d.row_index = t.file_row_number` : '';
  const idCols = (offset: number, paths: string[], cols: Map<string, string>): string => {
    if (!options.withFileId) return '';
    return `, ${fileId(offset, paths, cols)} AS _file_id${options.withFileInfo ? '' : ', t.file_row_number AS _row_index'}`;
  };
  const offsets: number[] = [];
  let seen = 0;
  for (const g of groups.values()) {
    offsets.push(seen);
    seen += g.paths.length;
  }
  let sql: string;
  if (groups.size <= MAX_UNION_GROUPS) {
    const branches = await Promise.all([...groups.values()].map(async (g, gi) => {
      const partExprs = new Map(partFields.map((pf, i) => [pf.name, partitionLiteral(g.values[i], pf.type)]));
      const src = `read_parquet([${g.paths.map(quoteString).join(', ')}], ${readArgs})`;
      const cols = await dataFilesColumns(engine, g.files);
      return `SELECT ${order(partExprs, cols)}${infoCols}${idCols(offsets[gi]!, g.paths, cols)} FROM ${src} t${g.dv ? dvJoin(offsets[gi]!, g.paths, cols) : ''}`;
    }));
    sql = branches.length === 1 ? branches[0]! : branches.map((b) => `(${b})`).join(' UNION ALL ');
  } else {
    // Many partitions: a table of (path, typed partition values) joined on the file name.
    const ft = engine.uniqueName('files');
    tables.push(ft);
    const colsDef = partFields.map((pf, i) => `p${i} ${duckType(pf.type)}`).join(', ');
    await engine.run(`CREATE TABLE ${ft} (path VARCHAR${colsDef ? ', ' + colsDef : ''})`);
    const rows = [...groups.values()].flatMap((g) => g.paths.map((p) => `(${[quoteString(p), ...partFields.map((pf, i) => partitionLiteral(g.values[i], pf.type))].join(', ')})`));
    for (let i = 0; i < rows.length; i += 1000) await engine.run(`INSERT INTO ${ft} VALUES ${rows.slice(i, i + 1000).join(', ')}`);
    const partExprs = new Map(partFields.map((pf, i) => [pf.name, `p.p${i}`]));
    const src = `read_parquet([${allPaths.map(quoteString).join(', ')}], union_by_name = true, filename = true, file_row_number = true)`;
    const cols = await dataFilesColumns(engine, [...groups.values()].flatMap((g) => g.files));
    sql = `SELECT ${order(partExprs, cols)}${infoCols}${idCols(0, allPaths, cols)} FROM ${src} t JOIN ${ft} p ON p.path = t.filename${dvJoin(0, allPaths, cols)}`;
  }
  return { sql, tables, filesTotal: snapshot.files.length, filesScanned: files.length, ...(options.withFileId ? { paths: allPaths } : {}) };
}
