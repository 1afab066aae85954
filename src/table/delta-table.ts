/**
 * DeltaTable: the delta-spark `DeltaTable` idiom in TypeScript (`DeltaTable.forPath(floe, path)`).
 */
import type { CommitInfo } from '../core/actions.js';
import type { Snapshot } from '../core/snapshot.js';
import { schemaToString } from '../core/schema.js';
import { protocolHasFeature } from '../core/table-features.js';

const LEGACY_FEATURES = ['appendOnly', 'invariants', 'checkConstraints', 'changeDataFeed', 'generatedColumns', 'columnMapping', 'identityColumns'];
import type { DataFrame } from '../dataframe.js';
import { InvalidArgumentError, TableNotFoundError } from '../errors.js';
import { guardExpression } from '../expression-guard.js';
import { type DmlResult, type UpdateOptions, deleteRows, updateRows } from './dml.js';
import { MergeBuilder } from './merge.js';
import { type OptimizeOptions, type VacuumOptions, type VacuumResult, optimize, restore, setProperties, unsetProperties, vacuum } from './maintenance.js';
import type { DeltaReadOptions, Floe } from '../floe.js';
import { type CreateTableOptions, DeltaTableBuilder, createTable } from './create.js';
import { writeCheckpoint } from '../engine/checkpoint-writer.js';
import { checkWriteSupport } from '../core/write-support.js';

/** One row of DESCRIBE HISTORY (Spark's column names). */
export interface HistoryEntry {
  version: number;
  timestamp: string;
  userId: string | null;
  userName: string | null;
  operation: string | null;
  operationParameters: Record<string, unknown>;
  job: unknown;
  notebook: unknown;
  clusterId: string | null;
  readVersion: number | null;
  isolationLevel: string | null;
  isBlindAppend: boolean | null;
  operationMetrics: Record<string, unknown>;
  userMetadata: string | null;
  engineInfo: string | null;
}

/** DESCRIBE DETAIL (Spark's field names) plus protocol details. */
export interface TableDetail {
  format: 'delta';
  id: string;
  name: string | null;
  description: string | null;
  location: string;
  createdAt: string | null;
  lastModified: string;
  version: number;
  partitionColumns: string[];
  clusteringColumns: string[];
  numFiles: number;
  sizeInBytes: number;
  properties: Record<string, string>;
  minReaderVersion: number;
  minWriterVersion: number;
  tableFeatures: string[];
  schema: string;
}

export class DeltaTable {
  readonly floe: Floe;
  readonly location: string;
  /** Name for the target in merge conditions (`target.id = source.id`; 'target' by default) and in delete / update conditions. */
  readonly aliasName?: string;

  private constructor(floe: Floe, location: string, aliasName?: string) {
    this.floe = floe;
    this.location = location;
    this.aliasName = aliasName;
  }

  /** This table under a name for merge, delete and update conditions, as delta-spark's `alias`. */
  alias(name: string): DeltaTable {
    return new DeltaTable(this.floe, this.location, name);
  }

  /** Deletes the rows matching a SQL predicate (all rows when absent). */
  delete(predicate?: string): Promise<DmlResult> {
    guardExpression(predicate);
    return this.scoped(() => deleteRows(this.floe, this.location, predicate, this.aliasName));
  }

  /** Runs a row-level operation and drops the engine tables it created. */
  private scoped<T>(fn: () => Promise<T>): Promise<T> {
    return this.floe.withTempScope(fn);
  }

  /** Updates rows: `update({ condition: "id = 3", set: { name: "'x'", n: 'n + 1' } })` (values are SQL). */
  update(options: UpdateOptions): Promise<DmlResult> {
    guardExpression(options.condition, ...Object.values(options.set ?? {}));
    return this.scoped(() => updateRows(this.floe, this.location, { alias: this.aliasName, ...options }));
  }

  /** TRUNCATE TABLE: removes every row (metadata-only; the change feed reports them deleted). */
  async truncate(): Promise<DmlResult> {
    return deleteRows(this.floe, this.location);
  }

  /** ALTER TABLE SET TBLPROPERTIES; upgrades the protocol when a property needs it (e.g. the change data feed). */
  setProperties(properties: Record<string, string>): Promise<number> {
    return setProperties(this.floe, this.location, properties);
  }

  /** ALTER TABLE UNSET TBLPROPERTIES [IF EXISTS]. */
  unsetProperties(keys: string[], options: { ifExists?: boolean } = {}): Promise<number> {
    return unsetProperties(this.floe, this.location, keys, options.ifExists);
  }

  /** OPTIMIZE: bin-packing compaction of small files (dataChange = false, so the change feed is unaffected). */
  optimize(options: OptimizeOptions = {}): Promise<DmlResult> {
    guardExpression(options.where);
    return optimize(this.floe, this.location, options);
  }

  /** VACUUM [RETAIN n HOURS] [DRY RUN]. */
  vacuum(retentionHours?: number, options: Omit<VacuumOptions, 'retentionHours'> = {}): Promise<VacuumResult> {
    return vacuum(this.floe, this.location, { ...options, retentionHours });
  }

  restoreToVersion(version: number): Promise<DmlResult> {
    return restore(this.floe, this.location, { versionAsOf: version });
  }

  restoreToTimestamp(timestamp: Date | number | string): Promise<DmlResult> {
    return restore(this.floe, this.location, { timestampAsOf: timestamp });
  }

  /**
   * Starts a MERGE: `table.alias('target').merge(df.alias('source'), 'target.id = source.id')
   * .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()`.
   */
  merge(source: DataFrame, condition: string): MergeBuilder {
    if (!condition?.trim()) throw new InvalidArgumentError('merge() needs a join condition, e.g. "target.id = source.id".');
    guardExpression(condition);
    return new MergeBuilder(this.floe, this.location, this.aliasName ?? 'target', source, condition);
  }

  /** Opens an existing table; throws DELTA_TABLE_NOT_FOUND when there is none. */
  static async forPath(floe: Floe, location: string): Promise<DeltaTable> {
    if (!(await floe.deltaLog(location).exists())) throw new TableNotFoundError(floe.storeFor(location).root);
    return new DeltaTable(floe, location);
  }

  /**
   * Creates a table: `DeltaTable.create(floe, { path, schema, partitionBy, properties, comment })`,
   * or with no options, the builder (`DeltaTable.create(floe).location(p).addColumn('id', 'long').execute()`).
   */
  static create(floe: Floe): DeltaTableBuilder<DeltaTable>;
  static create(floe: Floe, options: Omit<CreateTableOptions, 'mode'>): Promise<DeltaTable>;
  static create(floe: Floe, options?: Omit<CreateTableOptions, 'mode'>): DeltaTableBuilder<DeltaTable> | Promise<DeltaTable> {
    if (!options) return new DeltaTableBuilder(floe, 'create', DeltaTable.forPath);
    return createTable(floe, { ...options, mode: 'create' }).then(() => DeltaTable.forPath(floe, options.path));
  }

  static createIfNotExists(floe: Floe): DeltaTableBuilder<DeltaTable> {
    return new DeltaTableBuilder(floe, 'ifNotExists', DeltaTable.forPath);
  }

  static createOrReplace(floe: Floe): DeltaTableBuilder<DeltaTable> {
    return new DeltaTableBuilder(floe, 'createOrReplace', DeltaTable.forPath);
  }

  static replace(floe: Floe): DeltaTableBuilder<DeltaTable> {
    return new DeltaTableBuilder(floe, 'replace', DeltaTable.forPath);
  }

  /** Writes a checkpoint at the latest version now (as `floe checkpoint`). */
  async checkpoint(): Promise<{ version: number; path: string }> {
    const snap = await this.snapshot();
    checkWriteSupport(snap.protocol, snap.tablePath, snap.schema);
    const r = await writeCheckpoint(this.floe.engine, this.floe.deltaLog(this.location).store, snap);
    return { version: snap.version, path: r.path };
  }

  static async isDeltaTable(floe: Floe, location: string): Promise<boolean> {
    return floe.deltaLog(location).exists();
  }

  async snapshot(options: DeltaReadOptions = {}): Promise<Snapshot> {
    return this.floe.snapshot(this.location, options);
  }

  /** The table's latest version. */
  async version(): Promise<number> {
    return (await this.snapshot()).version;
  }

  toDF(options: DeltaReadOptions = {}): Promise<DataFrame> {
    return this.floe.read.delta(this.location, options);
  }

  /** Commit history, newest first (DESCRIBE HISTORY), optionally the latest `limit` entries. */
  async history(limit?: number): Promise<HistoryEntry[]> {
    const log = this.floe.deltaLog(this.location);
    const commits = await log.commits();
    const out = commits.reverse().map((c) => historyEntry(c.version, c.timestamp, c.commitInfo));
    return limit !== undefined ? out.slice(0, limit) : out;
  }

  /** DESCRIBE DETAIL. */
  async detail(options: DeltaReadOptions = {}): Promise<TableDetail> {
    const s = await this.snapshot(options);
    // Spark lists the features a legacy protocol implies (e.g. (1,2) → appendOnly, invariants) too.
    const implied = s.protocol.minWriterVersion < 7 ? LEGACY_FEATURES.filter((f) => protocolHasFeature(s.protocol, f)) : [];
    const features = [...new Set([...implied, ...(s.protocol.readerFeatures ?? []), ...(s.protocol.writerFeatures ?? [])])].sort();
    const clustering = s.state.domains.get('delta.clustering');
    let clusteringColumns: string[] = [];
    if (clustering) {
      try {
        clusteringColumns = ((JSON.parse(clustering.configuration) as { clusteringColumns?: string[][] }).clusteringColumns ?? []).map((c) => c.join('.'));
      } catch {
        clusteringColumns = [];
      }
    }
    return {
      format: 'delta',
      id: s.metadata.id,
      name: s.metadata.name ?? null,
      description: s.metadata.description ?? null,
      location: s.tablePath,
      createdAt: s.metadata.createdTime ? new Date(s.metadata.createdTime).toISOString() : null,
      lastModified: new Date(s.timestamp).toISOString(),
      version: s.version,
      partitionColumns: s.partitionColumns,
      clusteringColumns,
      numFiles: s.files.length,
      sizeInBytes: s.sizeInBytes,
      properties: s.configuration,
      minReaderVersion: s.protocol.minReaderVersion,
      minWriterVersion: s.protocol.minWriterVersion,
      tableFeatures: features,
      schema: schemaToString(s.schema),
    };
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : v === undefined || v === null ? null : String(v);
}

function historyEntry(version: number, timestamp: number, ci: CommitInfo | null): HistoryEntry {
  const c = (ci ?? {}) as Record<string, unknown>;
  return {
    version,
    timestamp: new Date(timestamp).toISOString(),
    userId: str(c.userId),
    userName: str(c.userName),
    operation: str(c.operation),
    operationParameters: (c.operationParameters as Record<string, unknown>) ?? {},
    job: c.job ?? null,
    notebook: c.notebook ?? null,
    clusterId: str(c.clusterId),
    readVersion: typeof c.readVersion === 'number' ? c.readVersion : null,
    isolationLevel: str(c.isolationLevel),
    isBlindAppend: typeof c.isBlindAppend === 'boolean' ? c.isBlindAppend : null,
    operationMetrics: (c.operationMetrics as Record<string, unknown>) ?? {},
    userMetadata: str(c.userMetadata),
    engineInfo: str(c.engineInfo),
  };
}
