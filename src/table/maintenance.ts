/**
 * Table maintenance: SET/UNSET TBLPROPERTIES (with the protocol upgrades a property needs), OPTIMIZE
 * (bin-packing compaction, dataChange = false), VACUUM (retention with the 7-day safety check, dry
 * run) and RESTORE (to a version or timestamp).
 */
import * as path from 'node:path';
import { type AddFile, type Protocol, fileKey } from '../core/actions.js';
import { type StructField, parseSchema, quoteIdent } from '../core/schema.js';
import { NUM_INDEXED_COLS_PROPERTY, STATS_COLUMNS_PROPERTY, forEachStatsLeaf, skippingEligible, statsColumnSpec, validateStatsProperties } from '../core/stats-columns.js';
import type { Snapshot } from '../core/snapshot.js';
import { withColumnMappingMode } from './alter.js';
import { parseInterval } from '../engine/checkpoint-writer.js';
import { dvRelativePath } from '../core/deletion-vectors.js';
import { Transaction } from '../core/transaction.js';
import { checkWriteSupport, mergeProtocols, protocolFor } from '../core/write-support.js';
import { planScan } from '../engine/scan.js';
import { resolveLogPath, tableKeyOf } from '../storage/paths.js';
import { readPath } from '../storage/open.js';
import { DEFAULT_TARGET_FILE_SIZE, validateParquetVersion } from '../engine/writer.js';
import { FloeError, InvalidArgumentError } from '../errors.js';
import type { DeltaReadOptions, Floe } from '../floe.js';
import { commitRewrite, count, type DmlResult, type Metrics } from './dml.js';
import { filesMatchingPartitionPredicate, maybeCheckpoint, validatePropertyValues } from './write.js';
import { storedExprToDuck } from '../sql/spark-expr.js';

const KNOWN_PROPERTIES = new Set([
  'delta.appendOnly', 'delta.enableChangeDataFeed', 'delta.checkpointInterval', 'delta.deletedFileRetentionDuration', 'delta.logRetentionDuration',
  'delta.dataSkippingNumIndexedCols', 'delta.dataSkippingStatsColumns', 'delta.targetFileSize', 'delta.isolationLevel', 'delta.enableDeletionVectors',
  'delta.enableInCommitTimestamps', 'delta.columnMapping.mode', 'delta.checkpoint.writeStatsAsJson', 'delta.checkpoint.writeStatsAsStruct',
  'delta.autoOptimize.optimizeWrite', 'delta.autoOptimize.autoCompact', 'delta.tuneFileSizesForRewrites', 'delta.randomizeFilePrefixes',
  'delta.setTransactionRetentionDuration', 'delta.checkpointPolicy', 'delta.enableTypeWidening', 'delta.minReaderVersion', 'delta.minWriterVersion',
]);

/** ALTER TABLE … SET TBLPROPERTIES: new CHECK constraints are validated against existing rows first. */
export async function setProperties(floe: Floe, location: string, props: Record<string, string>): Promise<number> {
  const log = floe.deltaLog(location);
  const s = await log.snapshot();
  for (const k of Object.keys(props)) {
    if (k.startsWith('delta.') && !k.startsWith('delta.constraints.') && !k.startsWith('delta.feature.') && !KNOWN_PROPERTIES.has(k)) {
      throw new InvalidArgumentError(`Unknown Delta table property '${k}'. Check the spelling; custom properties must not start with 'delta.'.`, { key: k }, 'DELTA_UNKNOWN_CONFIGURATION');
    }
  }
  // Protocol versions set as properties (Spark's recipe) raise the protocol; they are not stored.
  const floor: Protocol = { minReaderVersion: Number(props['delta.minReaderVersion'] ?? 1), minWriterVersion: Number(props['delta.minWriterVersion'] ?? 1) };
  const rest = { ...props };
  delete rest['delta.minReaderVersion'];
  delete rest['delta.minWriterVersion'];
  // Enabling column mapping gives every field an id and a physical name (alter.ts).
  const meta = rest['delta.columnMapping.mode'] !== undefined ? withColumnMappingMode(s.metadata, rest['delta.columnMapping.mode'], s.files.length > 0 || s.version > 0) : s.metadata;
  const configuration: Record<string, string> = { ...meta.configuration, ...rest, ...(rest['delta.columnMapping.mode'] !== undefined ? { 'delta.columnMapping.mode': meta.configuration['delta.columnMapping.mode']! } : {}) };
  const schema = parseSchema(meta.schemaString);
  if (NUM_INDEXED_COLS_PROPERTY in rest || STATS_COLUMNS_PROPERTY in rest) validateStatsProperties(schema, meta.partitionColumns, configuration);
  validateParquetVersion(rest);
  validatePropertyValues(rest);
  const addsConstraint = Object.keys(props).some((k) => k.startsWith('delta.constraints.'));
  for (const [k, v] of Object.entries(props)) {
    if (!k.startsWith('delta.constraints.')) continue;
    const sql = await storedExprToDuck(v, { what: `CHECK constraint ${k.slice(18)}` }); // Spark SQL, as writers enforce it
    const df = await floe.read.delta(location);
    const bad = await count(floe, `SELECT 1 FROM (${await df.toSQL()}) WHERE (${sql}) IS NOT TRUE`);
    if (bad > 0) throw new FloeError('DELTA_NEW_CHECK_CONSTRAINT_VIOLATION', `${bad} row(s) in ${s.tablePath} violate the new CHECK constraint ${k.slice(18)} (${v}). Fix or delete them first.`, { table: s.tablePath, rows: bad });
  }
  const needed = mergeProtocols(mergeProtocols(s.protocol, protocolFor(schema, configuration)), floor);
  // delta.feature.<name> = 'supported' adds the feature to the protocol and is not stored (as Spark).
  for (const k of Object.keys(configuration)) if (k.startsWith('delta.feature.')) delete configuration[k];
  checkWriteSupport(needed, s.tablePath, schema);
  const txn = new Transaction(log, s);
  // A new CHECK constraint was validated against the rows read: rows added concurrently conflict.
  if (addsConstraint) txn.readWhole();
  if (JSON.stringify(needed) !== JSON.stringify(s.protocol)) txn.setProtocol(needed);
  txn.setMetadata({ ...meta, configuration });
  const r = await txn.commit('SET TBLPROPERTIES', { properties: JSON.stringify(props) });
  return r.version;
}

/** ALTER TABLE … UNSET TBLPROPERTIES. */
export async function unsetProperties(floe: Floe, location: string, keys: string[], ifExists = false): Promise<number> {
  const log = floe.deltaLog(location);
  const s = await log.snapshot();
  const configuration = { ...s.configuration };
  for (const k of keys) {
    if (!(k in configuration) && !ifExists) throw new InvalidArgumentError(`Table property '${k}' is not set on ${s.tablePath}.`, {}, 'DELTA_UNSET_NON_EXISTENT_PROPERTY');
    delete configuration[k];
  }
  const txn = new Transaction(log, s);
  txn.setMetadata({ ...s.metadata, configuration });
  return (await txn.commit('UNSET TBLPROPERTIES', { properties: JSON.stringify(keys), ifExists })).version;
}

export interface OptimizeOptions {
  /** Partition predicate limiting which partitions are compacted. */
  where?: string;
  /** Target size of compacted files in bytes (default delta.targetFileSize or 128 MB). */
  targetFileSize?: number;
  /**
   * Z-order: cluster the rows of every file in scope by the interleaved bits of these (data,
   * stats-collected) columns' ranks, so a selective filter on any of them skips files.
   */
  zOrderBy?: string[];
}

/** The top-level data columns that get min/max stats under the table's stats spec (stats-columns.ts). */
function statsColumns(fields: StructField[], configuration: Record<string, string>): Set<string> {
  const out = new Set<string>();
  forEachStatsLeaf(fields, statsColumnSpec(configuration), (p) => {
    if (p.length === 1 && skippingEligible(p[0]!.type)) out.add(p[0]!.name);
  });
  return out;
}

/** Checks and resolves ZORDER BY columns (Spark's errors: partition column, unknown column, no stats). */
function zOrderColumns(floe: Floe, s: Snapshot, cols: string[]): string[] {
  if (!cols.length) throw new InvalidArgumentError('zOrderBy needs at least one column.');
  const resolved = cols.map((c) => {
    const part = s.partitionColumns.find((p) => p.toLowerCase() === c.toLowerCase());
    if (part) throw new FloeError('DELTA_ZORDERING_ON_PARTITION_COLUMN', `${part} is a partition column of ${s.tablePath}. Z-Ordering can only be performed on data columns; drop it from ZORDER BY (partitions already cluster by it).`, { column: part });
    const f = s.schema.fields.find((x) => x.name.toLowerCase() === c.toLowerCase());
    if (!f) throw new FloeError('DELTA_ZORDERING_COLUMN_DOES_NOT_EXIST', `Z-Ordering column ${c} does not exist in the data schema of ${s.tablePath} (columns: ${s.schema.fields.map((x) => x.name).join(', ')}).`, { column: c });
    return f.name;
  });
  if (new Set(resolved).size !== resolved.length) throw new InvalidArgumentError(`ZORDER BY names a column twice: ${cols.join(', ')}.`);
  const check = (floe.config.get('spark.databricks.delta.optimize.zorder.checkStatsCollection.enabled') ?? 'true').toLowerCase() !== 'false';
  if (check) {
    const withStats = statsColumns(s.schema.fields.filter((f) => !s.partitionColumns.includes(f.name)), s.configuration);
    const without = resolved.filter((c) => !withStats.has(c));
    if (without.length) {
      throw new FloeError(
        'DELTA_ZORDERING_ON_COLUMN_WITHOUT_STATS',
        `Z-Ordering on [${without.join(', ')}] will be ineffective, because no min/max statistics are collected for these columns of ${s.tablePath} (only the columns in delta.dataSkippingStatsColumns, else the first delta.dataSkippingNumIndexedCols columns, of types with an order are indexed). Add them to delta.dataSkippingStatsColumns, move them among the first indexed columns or raise delta.dataSkippingNumIndexedCols, or disable this check with SET spark.databricks.delta.optimize.zorder.checkStatsCollection.enabled = false.`,
        { columns: without },
      );
    }
  }
  return resolved;
}

/**
 * The Z-value of a row: each column's rank among the rows, scaled to `bits` bits (nulls first),
 * then the bits of all columns interleaved, most significant first (as Delta's interleave_bits of
 * range ids). Sorting by it keeps rows close in every column close together.
 */
function zValueSql(cols: string[]): { ranks: string; z: string } {
  const bits = Math.min(20, Math.floor(62 / cols.length));
  const max = 2 ** bits - 1;
  const ranks = cols.map((c, i) => `floor(percent_rank() OVER (ORDER BY ${quoteIdent(c)} NULLS FIRST) * ${max})::BIGINT AS __r${i}`).join(', ');
  const terms: string[] = [];
  for (let b = bits - 1; b >= 0; b--) {
    cols.forEach((_, i) => {
      const pos = b * cols.length + (cols.length - 1 - i);
      terms.push(`(((__r${i} >> ${b}) & 1) << ${pos})`);
    });
  }
  return { ranks, z: terms.join(' | ') };
}

/** OPTIMIZE: compacts each partition's small files into files near the target size. */
export async function optimize(floe: Floe, location: string, options: OptimizeOptions = {}): Promise<DmlResult> {
  const started = Date.now();
  const log = floe.deltaLog(location);
  const s = await log.snapshot();
  checkWriteSupport(s.protocol, s.tablePath, s.schema);
  const target = options.targetFileSize ?? Number(s.configuration['delta.targetFileSize'] ?? DEFAULT_TARGET_FILE_SIZE);
  if (options.zOrderBy !== undefined) return zOrder(floe, s, options, target, started);
  const scope = options.where ? await filesMatchingPartitionPredicate(floe, s, options.where) : s.files;
  // Small files (or files with deletion vectors, which compaction purges), grouped by partition.
  const groups = new Map<string, AddFile[]>();
  for (const f of scope) {
    if (f.size >= target * 0.75 && !f.deletionVector) continue;
    const k = JSON.stringify(s.partitionColumns.map((c) => f.partitionValues[c] ?? null));
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  const chosen = [...groups.values()].filter((g) => g.length > 1 || g.some((f) => f.deletionVector)).flat();
  const metrics: Metrics = { numFilesRemoved: chosen.length, numFilesAdded: 0, partitionsOptimized: [...groups.values()].filter((g) => g.length > 1).length, numBatches: 1, totalConsideredFiles: scope.length, totalFilesSkipped: scope.length - chosen.length };
  if (!chosen.length) return { version: null, metrics: { ...metrics, numFilesRemoved: 0 } };
  const scan = await planScan(floe.engine, log.store, s, { files: chosen });
  floe.track(scan.tables);
  const txn = new Transaction(log, s);
  for (const f of chosen) txn.read.readFiles.add(f.path);
  metrics.executionTimeMs = Date.now() - started;
  return commitRewrite(floe, {
    snapshot: s, txn, removed: chosen, newDataSql: `SELECT * FROM (${scan.sql})`, cdcSql: null, operation: 'OPTIMIZE',
    params: { predicate: JSON.stringify(options.where ? [options.where] : []), zOrderBy: '[]' }, metrics, addedFilesMetric: 'numFilesAdded', removedFilesMetric: 'numFilesRemoved',
    dataChange: false, targetFileSize: target,
  });
}

/** OPTIMIZE … ZORDER BY: rewrites every file in scope, its rows ordered by Z-value into files of the target size. */
async function zOrder(floe: Floe, s: Snapshot, options: OptimizeOptions, target: number, started: number): Promise<DmlResult> {
  const log = floe.deltaLog(s.tablePath);
  const cols = zOrderColumns(floe, s, options.zOrderBy!);
  const scope = options.where ? await filesMatchingPartitionPredicate(floe, s, options.where) : s.files;
  const params = { predicate: JSON.stringify(options.where ? [options.where] : []), zOrderBy: JSON.stringify(cols) };
  const metrics: Metrics = { numFilesRemoved: scope.length, numFilesAdded: 0, numBatches: 1, totalConsideredFiles: scope.length, totalFilesSkipped: 0 };
  if (!scope.length) return { version: null, metrics };
  const scan = await planScan(floe.engine, log.store, s, { files: scope });
  floe.track(scan.tables);
  const txn = new Transaction(log, s);
  for (const f of scope) txn.read.readFiles.add(f.path);
  // Ranks within each partition (partitions are written apart), Z-value order inside the COPY.
  const { ranks, z } = zValueSql(cols);
  const parts = s.partitionColumns.map(quoteIdent).join(', ');
  const ranked = s.partitionColumns.length ? ranks.replace(/OVER \(ORDER BY/g, `OVER (PARTITION BY ${parts} ORDER BY`) : ranks;
  const names = s.schema.fields.map((f) => quoteIdent(f.name)).join(', ');
  const sql = `SELECT ${names} FROM (SELECT *, ${z} AS __z FROM (SELECT *, ${ranked} FROM (${scan.sql}))) ORDER BY ${parts ? `${parts}, ` : ''}__z`;
  // As many files as the data needs at the target size (Spark's approxNumPartitions), equal in rows.
  const bytes = scope.reduce((n, f) => n + f.size, 0);
  const files = Math.max(1, Math.ceil(bytes / target));
  const rows = await count(floe, `SELECT 1 FROM (${scan.sql})`);
  metrics.executionTimeMs = Date.now() - started;
  return commitRewrite(floe, {
    snapshot: s, txn, removed: scope, newDataSql: sql, cdcSql: null, operation: 'OPTIMIZE', params, metrics,
    addedFilesMetric: 'numFilesAdded', removedFilesMetric: 'numFilesRemoved', dataChange: false, targetFileSize: target,
    maxRowsPerFile: s.partitionColumns.length ? undefined : Math.max(1, Math.ceil(rows / files)),
  });
}

export interface VacuumOptions {
  /** Keep files needed by versions of the last N hours (default delta.deletedFileRetentionDuration, 7 days). */
  retentionHours?: number;
  /** List what would be deleted without deleting. */
  dryRun?: boolean;
  /** Allow a retention under 168 hours (Spark's spark.databricks.delta.retentionDurationCheck.enabled = false). */
  allowShortRetention?: boolean;
}

export interface VacuumResult {
  filesDeleted: string[];
  dryRun: boolean;
  retentionHours: number;
}

/**
 * VACUUM: deletes data, change-data and deletion-vector files that the latest snapshot does not
 * reference and that became unreferenced (or were written) before the retention cutoff. A file a
 * version inside the retention window still reads is never deleted.
 */
export async function vacuum(floe: Floe, location: string, options: VacuumOptions = {}): Promise<VacuumResult> {
  const log = floe.deltaLog(location);
  const s = await log.snapshot();
  const defaultMs = parseInterval(s.configuration['delta.deletedFileRetentionDuration'], 7 * 864e5);
  const retentionMs = options.retentionHours !== undefined ? options.retentionHours * 36e5 : defaultMs;
  if (options.retentionHours !== undefined && (!Number.isFinite(options.retentionHours) || options.retentionHours < 0)) throw new InvalidArgumentError('retentionHours must be a non-negative number.');
  const checkOn = (floe.config.get('spark.databricks.delta.retentionDurationCheck.enabled') ?? 'true') !== 'false';
  const minimum = Math.max(168 * 36e5, defaultMs); // the table's own retention, never under 7 days
  if (retentionMs < minimum && checkOn && !options.allowShortRetention) {
    throw new FloeError('DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT', `VACUUM with a retention of ${retentionMs / 36e5} hours could delete files that running readers or time travel within the table's retention (${minimum / 36e5} hours: delta.deletedFileRetentionDuration, at least 7 days) still need. Use at least ${minimum / 36e5} hours, or pass allowShortRetention (SQL: SET spark.databricks.delta.retentionDurationCheck.enabled = false) if you are sure.`, { retentionHours: retentionMs / 36e5 });
  }
  const cutoff = Date.now() - retentionMs;
  // Everything still referenced, as absolute local paths (log paths may be relative, URL-encoded or
  // absolute URIs; DVs may be table-relative or absolute).
  const keep = new Set<string>();
  const ref = (p: string): void => {
    try {
      // Outside the table (null: a shallow clone's source) is never listed below, so never deleted.
      const key = tableKeyOf(log.store, p);
      if (key !== null) keep.add(path.normalize(readPath(log.store, key) ?? key));
    } catch {
      // a scheme floe cannot open, or a path leaving the table: nothing in this table to protect
    }
  };
  const dv = (f: { deletionVector?: AddFile['deletionVector'] }): void => {
    const d = f.deletionVector;
    if (d && d.storageType !== 'i') ref(dvRelativePath(d)); // 'u': table-relative, 'p': absolute
  };
  for (const f of s.files) {
    ref(f.path);
    dv(f);
  }
  // Files removed after the cutoff are still read by versions inside the retention window.
  for (const r of s.state.tombstones) {
    if ((r.deletionTimestamp ?? 0) >= cutoff) {
      ref(r.path);
      dv(r);
    }
  }
  // Change files of commits inside the window are still needed by the feed.
  const commits = await log.commits(s.configuration);
  for (const c of commits) {
    if (c.timestamp < cutoff) continue;
    for (const cdc of (await log.readCommit(c.version)).cdcs) ref(cdc.path);
  }
  const all = await log.store.list('', { recursive: true });
  const victims = all.filter((m) => {
    const top = m.path.split('/')[0]!;
    if (m.path.startsWith('_delta_log/')) return false;
    if ((top.startsWith('_') && top !== '_change_data') || top.startsWith('.')) return false;
    if (path.basename(m.path).startsWith('.') || path.basename(m.path).startsWith('_')) return false;
    return !keep.has(path.normalize(readPath(log.store, m.path) ?? m.path)) && m.lastModified < cutoff;
  }).map((m) => m.path);
  if (!options.dryRun) {
    for (const v of victims) await log.store.delete(v);
  }
  return { filesDeleted: victims, dryRun: options.dryRun === true, retentionHours: retentionMs / 36e5 };
}

/** RESTORE TABLE … TO VERSION AS OF n / TIMESTAMP AS OF t. */
export async function restore(floe: Floe, location: string, to: DeltaReadOptions): Promise<DmlResult> {
  const log = floe.deltaLog(location);
  const s = await log.snapshot();
  checkWriteSupport(s.protocol, s.tablePath, s.schema);
  const target = await floe.snapshot(location, to);
  const current = new Map(s.files.map((f) => [fileKey(f.path, f.deletionVector), f]));
  const wanted = new Map(target.files.map((f) => [fileKey(f.path, f.deletionVector), f]));
  const toAdd = [...wanted.entries()].filter(([k]) => !current.has(k)).map(([, f]) => f);
  const toRemove = [...current.entries()].filter(([k]) => !wanted.has(k)).map(([, f]) => f);
  const missing: string[] = [];
  for (const f of toAdd) {
    const at = resolveLogPath(log.store, f.path); // absolute URIs (shallow clones) live in their own store
    if (!(await at.store.head(at.key))) missing.push(f.path);
    // A restored file's deletion vector must still be there too.
    if (f.deletionVector?.storageType === 'u' && !(await log.store.head(dvRelativePath(f.deletionVector)))) missing.push(dvRelativePath(f.deletionVector));
  }
  if (missing.length) {
    throw new FloeError('DELTA_CANNOT_RESTORE_MISSING_FILES', `Cannot restore ${s.tablePath} to version ${target.version}: ${missing.length} of its data files were deleted (by VACUUM?), e.g. ${missing[0]}. Restore to a later version.`, { table: s.tablePath, version: target.version, missing: missing.slice(0, 10) });
  }
  const txn = new Transaction(log, s);
  txn.readWhole();
  for (const f of toRemove) txn.remove(f);
  txn.adds.push(...toAdd.map((f) => ({ ...f, dataChange: true, modificationTime: f.modificationTime })));
  if (target.metadata.schemaString !== s.metadata.schemaString || JSON.stringify(target.metadata.configuration) !== JSON.stringify(s.metadata.configuration) || JSON.stringify(target.metadata.partitionColumns) !== JSON.stringify(s.metadata.partitionColumns)) {
    txn.setMetadata({ ...target.metadata });
  }
  const merged = mergeProtocols(s.protocol, target.protocol);
  if (JSON.stringify(merged) !== JSON.stringify(s.protocol)) txn.setProtocol(merged);
  const size = (fs: AddFile[]): number => fs.reduce((n, f) => n + f.size, 0);
  const metrics: Metrics = {
    tableSizeAfterRestore: size(target.files), numOfFilesAfterRestore: target.files.length, numRemovedFiles: toRemove.length,
    numRestoredFiles: toAdd.length, removedFilesSize: size(toRemove), restoredFilesSize: size(toAdd),
  };
  const params: Record<string, unknown> = to.timestampAsOf !== undefined ? { timestamp: String(to.timestampAsOf) } : { version: target.version };
  const r = await txn.commit('RESTORE', params, metrics);
  await maybeCheckpoint(floe, log, r.version, s.configuration);
  return { version: r.version, metrics };
}

