/**
 * Row-level changes, copy-on-write: DELETE, UPDATE and MERGE rewrite only the files holding affected
 * rows (files are first pruned by partition values and stats), copy the untouched rows of those
 * files inside DuckDB, and, when the change data feed is on, write the changed rows to
 * `_change_data/` as `cdc` files in the same commit (Spark's UpdateCommand / DeleteCommand / MERGE).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type AddCDCFile, type AddFile, type DeletionVectorDescriptor, parseStats } from '../core/actions.js';
import { loadDeletionVector } from '../core/deletion-vectors.js';
import { buildDeletionVectorFileSorted, sortedDistinctRows } from '../core/deletion-vector-writer.js';
import { type DeltaLog, mapLimit } from '../core/delta-log.js';
import { parsePredicate } from '../core/predicate.js';
import { type StructType, duckType, quoteIdent, storeAssignmentCast } from '../core/schema.js';
import { partitionOnly } from '../core/skipping.js';
import type { Snapshot } from '../core/snapshot.js';
import { protocolHasFeature } from '../core/table-features.js';
import { Transaction } from '../core/transaction.js';
import { checkWriteSupport } from '../core/write-support.js';
import { NO_COLUMN_STATS, statsColumnSpec } from '../core/stats-columns.js';
import { FILE_ID, ROW_INDEX, dataFilePath, planPositionalScan, pruneFileList, pruneFiles } from '../engine/scan.js';
import { writeDataFiles, DEFAULT_TARGET_FILE_SIZE, parquetVersionOf } from '../engine/writer.js';
import { FloeError, commitOutcomeUnknown } from '../errors.js';
import type { Floe } from '../floe.js';

const idempotentTxn = new AsyncLocalStorage<{ appId: string; version: number }>();

/**
 * Runs `fn` with DELETE/UPDATE/MERGE made idempotent by (appId, version), as the session settings
 * txnAppId / txnVersion do, but scoped to this async call chain: concurrent callers sharing a session
 * (two pipelines, two flows) cannot see each other's pair, as they could through the shared config.
 */
export function withIdempotentTxn<T>(appId: string, version: number, fn: () => Promise<T>): Promise<T> {
  return idempotentTxn.run({ appId, version }, fn);
}
import { completeRow, constraintChecks, filesMatchingPartitionPredicate, maybeCheckpoint } from './write.js';

export type Metrics = Record<string, number>;

export interface DmlResult {
  version: number | null;
  metrics: Metrics;
}

/** Is the change data feed on for writes (PROTOCOL.md: property set and the feature supported)? */
export function cdfOnForWrites(s: Snapshot): boolean {
  return (s.configuration['delta.enableChangeDataFeed'] ?? '').toLowerCase() === 'true' && protocolHasFeature(s.protocol, 'changeDataFeed');
}

export function checkCanModify(s: Snapshot, op: string): void {
  checkWriteSupport(s.protocol, s.tablePath, s.schema);
  if ((s.configuration['delta.appendOnly'] ?? '').toLowerCase() === 'true') {
    throw new FloeError('DELTA_CANNOT_MODIFY_APPEND_ONLY', `${op} is not allowed: the table at ${s.tablePath} is append-only (delta.appendOnly = true).`, { table: s.tablePath });
  }
}

/** Materialises a query into a session table and returns its name. */
export async function materialize(floe: Floe, prefix: string, sql: string): Promise<string> {
  const t = floe.engine.uniqueName(prefix);
  await floe.engine.run(`CREATE TABLE ${t} AS ${sql}`);
  floe.track([t]);
  return t;
}

export async function count(floe: Floe, sql: string): Promise<number> {
  const r = await floe.engine.allJson(`SELECT count(*) AS n FROM (${sql})`);
  return Number(r[0]!.n);
}

/**
 * The rows of candidate files with a `__floe_hit` flag (the predicate is TRUE), materialised once, and
 * the files holding a hit: the shared first step of DELETE, UPDATE and replaceWhere on data
 * columns. Rows carry their file as an integer (the file's index in the scan, read_parquet's
 * file_index) and their row index, cheaper to store, group and filter on than the file name.
 * `inTouched` selects the rows of the touched files; `hits` counts the matching rows and `copied`
 * the other rows of those files; `fileId` and `rowIndex` are the SQL of a row's file (an index
 * in `paths`) and row index (for deletion vectors).
 */
export interface MarkedRows {
  table: string;
  removed: AddFile[];
  inTouched: string;
  hits: number;
  copied: number;
  /** The scan's files: a row's file is `paths[fileId]`. */
  paths: string[];
  fileId: string;
  rowIndex: string;
}

export async function markRows(floe: Floe, s: Snapshot, files: AddFile[], predicate: string | undefined, prefix: string, alias?: string): Promise<MarkedRows> {
  const store = floe.deltaLog(s.tablePath).store;
  const plan = await planPositionalScan(floe.engine, store, s, files);
  floe.track(plan.tables);
  const paths = plan.paths;
  const table = await materialize(floe, prefix, `SELECT *, ${predicate ? `(${predicate}) IS TRUE` : 'true'} AS __floe_hit FROM (${plan.sql})${aliasSql(alias)}`);
  // One pass: the touched files, their matching rows and their other rows.
  const perFile = await floe.engine.allJson(`SELECT ${FILE_ID} AS f, count(*) FILTER (WHERE __floe_hit) AS h, count(*) AS n FROM ${table} GROUP BY ${FILE_ID} HAVING count(*) FILTER (WHERE __floe_hit) > 0`);
  const touched = new Set<number>();
  let hits = 0;
  let copied = 0;
  for (const r of perFile) {
    touched.add(Number(r.f));
    hits += Number(r.h);
    copied += Number(r.n) - Number(r.h);
  }
  const byPath = new Map(files.map((f) => [dataFilePath(store, f.path), f]));
  const removed = [...touched].sort((a, b) => a - b).map((i) => byPath.get(paths[i]!)!);
  const ids = [...touched].join(', ');
  return {
    table,
    removed,
    inTouched: touched.size ? `${FILE_ID} IN (${ids})` : 'false',
    hits,
    copied,
    paths,
    fileId: FILE_ID,
    rowIndex: ROW_INDEX,
  };
}

export interface Rewrite {
  snapshot: Snapshot;
  txn: Transaction;
  /** Files removed by this operation. */
  removed: AddFile[];
  /** Rows of the table's columns to write as new data files, or null. */
  newDataSql: string | null;
  /** Rows with `_change_type` for `_change_data/`, or null (when the feed is off or not needed). */
  cdcSql: string | null;
  operation: string;
  params: Record<string, unknown>;
  metrics: Metrics;
  /** Name of the metric counting added data files (Spark's names differ per operation). */
  addedFilesMetric: string;
  removedFilesMetric: string;
  /** When false, removed files carry dataChange=false. */
  dataChange?: boolean;
  /** The schema new files are written with (an evolved schema in MERGE WITH SCHEMA EVOLUTION). */
  schemaOverride?: StructType;
  /** Rows per new data file, in the source's order (OPTIMIZE ZORDER BY); default: by size. */
  maxRowsPerFile?: number;
  /** Size of the new data files (OPTIMIZE's option); default delta.targetFileSize or 128 MB. */
  targetFileSize?: number;
  /**
   * The deletion-vector variant, used when the table has them enabled: rows (`_file`, `_row_index`)
   * of the removed files to mark deleted, and the rows to write instead of `newDataSql`.
   */
  dv?: { deletedRowsSql: string; paths: string[]; newDataSql: string | null };
}

/** Are deletion vectors written for this table (property on and the feature supported)? */
export function dvWritesOn(s: Snapshot): boolean {
  return (s.configuration['delta.enableDeletionVectors'] ?? '').toLowerCase() === 'true' && protocolHasFeature(s.protocol, 'deletionVectors');
}

/** A file's stats once a DV hides some of its rows: min/max no longer tight (PROTOCOL.md "Per-file Statistics"). */
function looseBounds(stats: string | null | undefined): string | null {
  const st = parseStats(stats);
  if (!st) return stats ?? null;
  return JSON.stringify({ ...st, tightBounds: false });
}

/** Union of two sorted, distinct row-number arrays (sorted, distinct). */
function unionSorted(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    const x = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i++]! : b[j++]!;
    if (n === 0 || out[n - 1] !== x) out[n++] = x;
  }
  return out.subarray(0, n);
}

/**
 * Deletion vectors for the changed rows of the touched files (`rowsSql`: columns `f`, the file's
 * index in `paths`, and `r`, the row index), built in bulk: DuckDB sorts the
 * (file id, row number) pairs and hands them over as two numeric columns; each file's run of row
 * numbers (united with its old DV's) is serialised straight into Roaring containers, with no per-row
 * objects. Returns the files to re-add with their new DVs (a file whose every row is gone is just
 * removed) and the DV files written.
 */
export async function writeDeletionVectors(floe: Floe, log: DeltaLog, removed: AddFile[], paths: string[], rowsSql: string): Promise<{ readded: AddFile[]; written: string[] }> {
  const [fid, row] = (await floe.engine.numericColumns(`SELECT f::UINTEGER AS f, r::DOUBLE AS r FROM (${rowsSql}) ORDER BY f, r`)) as [Float64Array, Float64Array];
  const runs = new Map<number, [number, number]>();
  for (let i = 0; i < fid.length; ) {
    let j = i + 1;
    while (j < fid.length && fid[j] === fid[i]) j++;
    runs.set(fid[i]!, [i, j]);
    i = j;
  }
  const idOf = new Map(paths.map((p, i) => [p, i]));
  return writeDvFiles(log, removed, async (f) => {
    const run = runs.get(idOf.get(dataFilePath(log.store, f.path)) ?? -1);
    let rows = sortedDistinctRowsOfRun(run ? row.subarray(run[0], run[1]) : new Float64Array(0));
    if (f.deletionVector) rows = unionSorted(rows, sortedDistinctRows(await loadDeletionVector(log.store, f.deletionVector)));
    return buildDeletionVectorFileSorted(rows);
  });
}

/**
 * Writes each touched file's new DV (`build`: its rows, old DV included) and returns the files to
 * re-add with it (a file whose every row is gone is just removed) and the DV files written; on
 * failure removes those written.
 */
export async function writeDvFiles(log: DeltaLog, removed: AddFile[], build: (f: AddFile) => Promise<{ relativePath: string; bytes: Uint8Array; descriptor: DeletionVectorDescriptor }>): Promise<{ readded: AddFile[]; written: string[] }> {
  const written: string[] = [];
  try {
    const out = await mapLimit(removed, 8, async (f) => {
      const dvf = await build(f);
      const total = parseStats(f.stats)?.numRecords;
      if (total !== undefined && dvf.descriptor.cardinality >= total) return null; // every row gone: just remove the file
      await log.store.putIfAbsent(dvf.relativePath, dvf.bytes);
      written.push(dvf.relativePath);
      return { ...f, dataChange: true, deletionVector: dvf.descriptor, stats: looseBounds(f.stats) } as AddFile;
    });
    return { readded: out.filter((f): f is AddFile => f !== null), written };
  } catch (e) {
    await Promise.all(written.map((p) => log.store.delete(p).catch(() => undefined)));
    throw e;
  }
}

/** A sorted run with any repeated value dropped (the changed rows are distinct; this keeps it so). */
function sortedDistinctRowsOfRun(a: Float64Array): Float64Array {
  for (let i = 1; i < a.length; i++) if (a[i] === a[i - 1]) return sortedDistinctRows(a);
  return a;
}

/** Writes the new files of a rewrite and commits it in one transaction. */
export async function commitRewrite(floe: Floe, r: Rewrite): Promise<DmlResult> {
  const log = floe.deltaLog(r.snapshot.tablePath);
  const s = r.snapshot;
  const common = {
    schema: r.schemaOverride ?? s.schema, partitionColumns: s.partitionColumns, columnMapping: s.columnMapping,
    targetFileSize: r.targetFileSize ?? Number(s.configuration['delta.targetFileSize'] ?? DEFAULT_TARGET_FILE_SIZE),
    statsColumns: statsColumnSpec(s.configuration), parquetVersion: parquetVersionOf(s.configuration),
  };
  // Idempotent DML as Spark's session settings spark.databricks.delta.write.txnAppId / txnVersion, or
  // the pair given to withIdempotentTxn for this async call chain (which wins).
  const scoped = idempotentTxn.getStore();
  const appId = scoped?.appId ?? floe.config.get('spark.databricks.delta.write.txnAppId');
  const appVersion = scoped ? String(scoped.version) : floe.config.get('spark.databricks.delta.write.txnVersion');
  if (appId !== undefined && appVersion !== undefined) {
    const v = Number(appVersion);
    if (!Number.isInteger(v)) throw new FloeError('DELTA_INVALID_IDEMPOTENT_WRITES_OPTIONS', `spark.databricks.delta.write.txnVersion must be an integer, got '${appVersion}'.`);
    if ((s.txnVersion(appId) ?? -1) >= v) return { version: null, metrics: { ...r.metrics, skipped: 1 } };
    r.txn.addTxn(appId, v);
  }
  const written: string[] = [];
  try {
    // With deletion vectors on, touched files stay: their changed rows are marked deleted in a DV and
    // only the changed rows are written anew (no copying of untouched rows).
    let newDataSql = r.newDataSql;
    const readded: AddFile[] = [];
    if (r.dv && dvWritesOn(s)) {
      newDataSql = r.dv.newDataSql;
      const dv = await writeDeletionVectors(floe, log, r.removed, r.dv.paths, r.dv.deletedRowsSql);
      written.push(...dv.written);
      readded.push(...dv.readded);
      r.metrics.numDeletionVectorsAdded = readded.filter((f) => !r.removed.find((x) => x.path === f.path)?.deletionVector).length;
      r.metrics.numDeletionVectorsUpdated = readded.length - r.metrics.numDeletionVectorsAdded;
      r.metrics.numCopiedRows = 0;
      if ('numTargetRowsCopied' in r.metrics) r.metrics.numTargetRowsCopied = 0;
    }
    const adds = newDataSql ? await writeDataFiles(floe.engine, log.store, newDataSql, { ...common, maxRowsPerFile: r.maxRowsPerFile }) : [];
    written.push(...adds.map((a) => a.path));
    if (r.dataChange === false) for (const a of adds) a.dataChange = false;
    let cdcs: AddCDCFile[] = [];
    if (r.cdcSql) {
      const files = await writeDataFiles(floe.engine, log.store, r.cdcSql, { ...common, subdir: '_change_data', extraColumns: ['_change_type'], filePrefix: 'cdc', statsColumns: NO_COLUMN_STATS });
      cdcs = files.map((f) => ({ path: f.path, partitionValues: f.partitionValues, size: f.size, dataChange: false }));
      written.push(...cdcs.map((c) => c.path));
    }
    for (const f of r.removed) r.txn.remove(f, r.dataChange !== false);
    r.txn.adds.push(...readded, ...adds);
    r.txn.cdcs.push(...cdcs);
    r.metrics[r.addedFilesMetric] = adds.length;
    r.metrics[r.removedFilesMetric] = r.removed.length;
    if (cdcs.length) r.metrics.numAddedChangeFiles = cdcs.length;
    if (!adds.length && !r.removed.length && !cdcs.length) return { version: null, metrics: r.metrics };
    const res = await r.txn.commit(r.operation, r.params, r.metrics);
    await maybeCheckpoint(floe, log, res.version, s.configuration);
    return { version: res.version, metrics: r.metrics };
  } catch (e) {
    if (!commitOutcomeUnknown(e)) await Promise.all(written.map((p) => log.store.delete(decodeURIComponent(p)).catch(() => undefined)));
    throw e;
  }
}

function columnList(schema: StructType, prefix = ''): string {
  return schema.fields.map((f) => `${prefix}${quoteIdent(f.name)}`).join(', ');
}

/** Files holding rows a predicate may match, and a transaction that read them. */
function candidates(s: Snapshot, predicate: string | undefined): AddFile[] {
  return predicate ? pruneFiles(s, [predicate]) : s.files;
}

/** ` AS "alias"`: the table's rows under the name a predicate's subqueries use for it (`t.id` in `EXISTS (… WHERE k.id = t.id)`). */
function aliasSql(alias: string | undefined): string {
  return alias ? ` AS ${quoteIdent(alias)}` : '';
}

/** DELETE FROM t [WHERE predicate]; `alias` names the table's rows in the predicate (for correlated subqueries). */
export async function deleteRows(floe: Floe, location: string, predicate?: string, alias?: string): Promise<DmlResult> {
  const started = Date.now();
  const s = await floe.deltaLog(location).snapshot();
  checkCanModify(s, 'DELETE');
  const txn = new Transaction(floe.deltaLog(location), s);
  const params = { predicate: JSON.stringify(predicate ? [predicate] : []) };
  const metrics: Metrics = {};
  const expr = predicate ? parsePredicate(predicate) : null;
  // Whole table or whole partitions: metadata-only, no rows read, no change files (as Spark does).
  if (!predicate || (expr && partitionOnly(expr, s.partitionColumns))) {
    const removed = predicate ? await filesMatchingPartitionPredicate(floe, s, predicate) : s.files;
    txn.readWhole(undefined, removed);
    metrics.numDeletedRows = removed.reduce((n, f) => n + (statsRows(f) ?? 0), 0);
    metrics.numCopiedRows = 0;
    metrics.executionTimeMs = Date.now() - started;
    return commitRewrite(floe, { snapshot: s, txn, removed, newDataSql: null, cdcSql: null, operation: 'DELETE', params, metrics, addedFilesMetric: 'numAddedFiles', removedFilesMetric: 'numRemovedFiles' });
  }
  const cand = candidates(s, predicate);
  txn.readWhole((a) => fileCouldMatch(s, a, predicate), cand);
  if (!cand.length) return { version: null, metrics: { numDeletedRows: 0, numCopiedRows: 0, numRemovedFiles: 0, numAddedFiles: 0 } };
  const { table: d, removed, inTouched, hits, copied, paths, fileId, rowIndex } = await markRows(floe, s, cand, predicate, 'del', alias);
  metrics.numDeletedRows = hits;
  metrics.numCopiedRows = copied;
  metrics.executionTimeMs = Date.now() - started;
  const cols = columnList(s.schema);
  return commitRewrite(floe, {
    snapshot: s, txn, removed,
    newDataSql: `SELECT ${cols} FROM ${d} WHERE ${inTouched} AND NOT __floe_hit`,
    dv: { deletedRowsSql: `SELECT ${fileId} AS f, ${rowIndex} AS r FROM ${d} WHERE __floe_hit`, paths, newDataSql: null },
    cdcSql: cdfOnForWrites(s) ? `SELECT ${cols}, 'delete' AS _change_type FROM ${d} WHERE __floe_hit` : null,
    operation: 'DELETE', params, metrics, addedFilesMetric: 'numAddedFiles', removedFilesMetric: 'numRemovedFiles',
  });
}

export interface UpdateOptions {
  /** SQL predicate choosing the rows to update; all rows when absent. */
  condition?: string;
  /** Column → SQL expression over the row's current values. */
  set: Record<string, string>;
  /** The name the condition and values use for the table's rows (`t.id` in a correlated subquery). */
  alias?: string;
}

/** Resolves user column names (case-insensitive, as Spark) to schema names. */
export function resolveColumn(schema: StructType, name: string, table: string): string {
  const f = schema.fields.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!f) throw new FloeError('DELTA_COLUMN_NOT_FOUND', `Column '${name}' does not exist in ${table} (columns: ${schema.fields.map((x) => x.name).join(', ')}).`, { table, column: name });
  return f.name;
}

/** UPDATE t SET … [WHERE condition]. */
export async function updateRows(floe: Floe, location: string, options: UpdateOptions): Promise<DmlResult> {
  const started = Date.now();
  const s = await floe.deltaLog(location).snapshot();
  checkCanModify(s, 'UPDATE');
  if (!options.set || !Object.keys(options.set).length) throw new FloeError('FLOE_INVALID_ARGUMENT', 'update() needs at least one column in set.');
  const set = new Map(Object.entries(options.set).map(([k, v]) => [resolveColumn(s.schema, k, s.tablePath), v]));
  // Generated columns the SET list leaves out are recomputed from the row's new values.
  await completeRow(s.schema, set, (c) => quoteIdent(c));
  // Partition columns may be updated too: rewritten rows are written under their new partition values.
  const txn = new Transaction(floe.deltaLog(location), s);
  const cand = candidates(s, options.condition);
  txn.readWhole((a) => fileCouldMatch(s, a, options.condition), cand);
  const params = { predicate: JSON.stringify(options.condition ? [options.condition] : []) };
  if (!cand.length) return { version: null, metrics: { numUpdatedRows: 0, numCopiedRows: 0 } };
  const { table: u, removed, inTouched, hits, copied, paths, fileId, rowIndex } = await markRows(floe, s, cand, options.condition, 'upd', options.alias);
  const from = `${u}${aliasSql(options.alias)}`;
  const types = await valueTypes(floe, s.schema, set, from);
  const newCols = s.schema.fields.map((f) => {
    const e = set.get(f.name);
    return e === undefined ? quoteIdent(f.name) : `CASE WHEN __floe_hit THEN ${storeAssignmentCast(`(${e})`, f.type, types.get(f.name))} ELSE ${quoteIdent(f.name)} END AS ${quoteIdent(f.name)}`;
  });
  const checks = await constraintChecks(s.tablePath, s.schema, s.configuration);
  const checked = (q: string): string => (checks.length ? `SELECT * FROM (${q}) WHERE ${checks.join(' AND ')}` : q);
  const newData = checked(`SELECT ${newCols.join(', ')} FROM ${from} WHERE ${inTouched}`);
  const updatedOnly = checked(`SELECT ${newCols.join(', ')} FROM ${from} WHERE __floe_hit`);
  const metrics: Metrics = {
    numUpdatedRows: hits,
    numCopiedRows: copied,
  };
  metrics.executionTimeMs = Date.now() - started;
  const cols = columnList(s.schema);
  const cdcSql = cdfOnForWrites(s)
    ? `SELECT ${cols}, 'update_preimage' AS _change_type FROM ${u} WHERE __floe_hit
       UNION ALL SELECT ${cols}, 'update_postimage' AS _change_type FROM (SELECT ${newCols.join(', ')} FROM ${from} WHERE __floe_hit)`
    : null;
  try {
    return await commitRewrite(floe, {
      snapshot: s, txn, removed, newDataSql: newData, cdcSql, operation: 'UPDATE', params, metrics, addedFilesMetric: 'numAddedFiles', removedFilesMetric: 'numRemovedFiles',
      dv: { deletedRowsSql: `SELECT ${fileId} AS f, ${rowIndex} AS r FROM ${u} WHERE __floe_hit`, paths, newDataSql: updatedOnly },
    });
  } catch (e) {
    throw constraintFailure(e);
  }
}

/**
 * The DuckDB types of the values set to integral columns (over `from`), for store assignment's
 * truncation of fractional values; none when they do not bind (the write then reports why).
 */
export async function valueTypes(floe: Floe, schema: StructType, set: Map<string, string>, from: string): Promise<Map<string, string>> {
  const cols = schema.fields.filter((f) => set.has(f.name) && typeof f.type === 'string' && ['byte', 'short', 'integer', 'long'].includes(f.type));
  if (!cols.length) return new Map();
  try {
    const d = await floe.engine.describe(`SELECT ${cols.map((f, i) => `(${set.get(f.name)}) AS __v${i}`).join(', ')} FROM ${from}`);
    return new Map(cols.map((f, i) => [f.name, d[i]!.type]));
  } catch {
    return new Map();
  }
}

export function constraintFailure(e: unknown): unknown {
  const m = /\[(EXCEED_LIMIT_LENGTH|DELTA_NOT_NULL_CONSTRAINT_VIOLATED|DELTA_VIOLATE_CONSTRAINT_WITH_VALUES)\] ([^\n]*)/.exec((e as Error)?.message ?? '');
  return m ? new FloeError(m[1]!, m[2]!) : e;
}

function statsRows(f: AddFile): number | undefined {
  try {
    const n = (JSON.parse(f.stats ?? '{}') as { numRecords?: number }).numRecords;
    return n === undefined ? undefined : n - (f.deletionVector?.cardinality ?? 0);
  } catch {
    return undefined;
  }
}

/** Conflict predicate: could a file added concurrently hold rows this operation's predicate reads? */
export function fileCouldMatch(s: Snapshot, a: AddFile, predicate: string | undefined): boolean {
  if (!predicate) return true;
  return pruneFileList([a], s.schema, s.partitionColumns, [predicate]).length > 0;
}
