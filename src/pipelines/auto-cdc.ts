/**
 * AUTO CDC (formerly APPLY CHANGES): applies one batch of change events to a keyed Delta target with
 * Lakeflow / DLT semantics, stored as SCD type 1 or type 2.
 *
 * Semantics
 * - Per key, events are applied in `sequenceBy` order (any orderable DuckDB type, a STRUCT for tie
 *   breaks), whatever their arrival order, within a batch and across batches. The target after any
 *   split of an event history into batches equals the target after one batch.
 * - The same key and sequence twice in one batch is an error naming the key (`AUTO_CDC_DUPLICATE_SEQUENCE`);
 *   byte-identical rows (the same event delivered twice) collapse first. An event whose (key, sequence)
 *   was already applied in an earlier batch is a re-delivery and changes nothing. NULL keys and NULL
 *   sequence values are errors, as in DLT.
 * - Events matching `applyAsDeletes` delete the key; everything else is an upsert. Events matching
 *   `applyAsTruncates` (type 1 only) delete every key whose latest event is older (sequence <= the
 *   truncate's sequence).
 * - Type 1: the target holds the latest upsert of each live key. A late event older than what the
 *   state already reflects changes nothing; a delete leaves a tombstone (key, sequence) in the state so
 *   a late older upsert cannot resurrect the row. Tombstones are garbage-collected once older than
 *   `pipelines.cdc.tombstoneGCThresholdInSeconds` (option, target table property, or floe config;
 *   default 2 days): after that a late older event for that key is applied as new, as in DLT. An
 *   expired tombstone of a key the batch touches is collected before the batch applies (the result
 *   depends on `now` only); those of untouched keys every FULL_GC_EVERY batches (storage only).
 *   With `ignoreNullUpdates`, a NULL in an upsert keeps the column's current value; the state then
 *   keeps a sequence per column so that the result is still independent of arrival order (each
 *   column holds the latest non-null value since the key's last delete).
 * - Type 2: each version of a key is a row with `__START_AT` (the sequence at which it became current)
 *   and `__END_AT` (the sequence at which it stopped being current, NULL for the current version),
 *   typed like the sequence. A new version opens when a tracked column changes
 *   (`trackHistoryColumnList` / `trackHistoryExceptColumnList`; all non-key columns by default);
 *   changes in untracked columns update the current version in place; a delete closes the current
 *   version; an upsert identical in tracked columns opens nothing. A late event is placed into the
 *   history where its sequence falls (the affected versions are rewritten), as DLT does for
 *   out-of-order data, so history does not depend on arrival order.
 * - `columnList` / `exceptColumnList` pick the target's columns (keys always kept). The target is
 *   created on first use as an ordinary Delta table with `delta.enableChangeDataFeed = true` (source
 *   schema minus dropped columns, plus `__START_AT` / `__END_AT` for type 2), so downstream flows can
 *   read its change feed.
 *
 * State and exactly-once
 * - Per-target state lives in a small Delta table at `<target>/_floe_apply_changes_state/` (folders
 *   starting with `_` are ignored by Delta readers and by VACUUM). Type 1 keeps one row per key: last
 *   upsert sequence, last delete sequence (a tombstone when it is the newer), per-column sequences
 *   with `ignoreNullUpdates`, and when the tombstone was written; plus one row per truncate. Type 2
 *   keeps the key's applied events (projected columns, sequence, kind), which is what placing a late
 *   event into history exactly needs; a deleted key's events are dropped after the tombstone
 *   threshold (a later event for it then starts a fresh history, earlier history rows stay). A type 2
 *   batch reads only the state rows of its own keys (with every column tracked, first one summary
 *   row per key, then the rows of only those keys with a late event or an expired tombstone); a key
 *   of the batch whose latest event is a delete older than the threshold is collected before the
 *   batch applies, so the result depends on `now` only, not on when collection ran; expired keys no
 *   batch touches are removed by a pass over the whole state every FULL_GC_EVERY batches (storage
 *   only). A type 2 state commit that collects nothing is an append; other state commits mark the
 *   rows they replace or collect in deletion vectors, located in the scan the batch read, and append
 *   the new rows (no MERGE).
 * - A batch is identified by (flowName, batchId). The target commit and the state commit both carry a
 *   Delta `txn` action (appId = flowName, version = batchId). Order: the target commits first, then
 *   the state. Everything is computed from the state as of before the batch plus the batch itself,
 *   so a rerun of the same batch after a crash recomputes the same result: if the state already has
 *   the txn the batch is skipped; if only the target has it (crash between the two commits) the
 *   target commit is skipped and the state is still updated from the same input. The caller must
 *   replay the same input for the same batchId (as a streaming checkpoint does).
 * - All heavy work runs in DuckDB SQL: window functions over the batch and the state, joins with the
 *   target. A target with deletion vectors (as AUTO CDC creates it) is committed by position: the
 *   diff reads its rows with their file and row index, and the commit marks the replaced and deleted
 *   ones in deletion vectors and appends the new rows, writing the change feed as MERGE does
 *   (commitByPosition); other targets take floe's MERGE (copy-on-write, change data feed written).
 *   SCD 2 keys whose new events all follow their applied ones read only their current target row.
 */
import { DUCK_INTEGER_TYPES, type DataType, castToColumns, deltaTypeFromDuck, duckType, quoteIdent } from '../core/schema.js';
import { canUpcast } from '../table/schema-evolution.js';
import { addColumns } from '../table/alter.js';
import { type AddFile, parseStats } from '../core/actions.js';
import type { DeltaLog } from '../core/delta-log.js';
import type { Snapshot } from '../core/snapshot.js';
import type { DataFrame } from '../dataframe.js';
import { FloeError, InvalidArgumentError, TableNotFoundError, engineMessage } from '../errors.js';
import { guardExpression } from '../expression-guard.js';
import type { Floe } from '../floe.js';
import { checkCanModify, commitRewrite, dvWritesOn, cdfOnForWrites, withIdempotentTxn } from '../table/dml.js';
import { constraintChecks } from '../table/write.js';
import { FILE_ID, ROW_INDEX, dataFilePath, planPositionalScan, planScan, prefetchDataFileColumns } from '../engine/scan.js';
import { PARQUET_VERSION_PROPERTY } from '../engine/writer.js';
import { Transaction } from '../core/transaction.js';
import { DeltaTable } from '../table/delta-table.js';

export const STATE_DIR = '_floe_apply_changes_state';
export const TOMBSTONE_GC_PROPERTY = 'pipelines.cdc.tombstoneGCThresholdInSeconds';
/** Default tombstone retention (2 days). */
export const DEFAULT_TOMBSTONE_GC_SECONDS = 2 * 24 * 3600;
/** State table property: the flow's keys (JSON), checked by every batch. */
export const STATE_KEYS_PROPERTY = 'floe.autoCdc.keys';

export interface ApplyChangesOptions {
  /** Path of the target Delta table (created on first use). */
  target: string;
  /** One batch of change events. */
  source: DataFrame;
  keys: string[];
  /** A column or SQL expression (DuckDB syntax); a STRUCT orders by its fields in turn. */
  sequenceBy: string;
  storedAsScdType?: 1 | 2;
  /** SQL predicate marking delete events. */
  applyAsDeletes?: string;
  /** SQL predicate marking truncate events (type 1 only). */
  applyAsTruncates?: string;
  columnList?: string[];
  exceptColumnList?: string[];
  ignoreNullUpdates?: boolean;
  trackHistoryColumnList?: string[];
  trackHistoryExceptColumnList?: string[];
  /** The flow's name: the `txn` appId of its commits. */
  flowName: string;
  /** Monotonic batch number: the `txn` version of its commits. */
  batchId: number;
  /** Overrides the tombstone retention (seconds). */
  tombstoneGCThresholdInSeconds?: number;
  /** Properties for a target this call creates. */
  tableProperties?: Record<string, string>;
  /** Partition columns of a target this call creates. */
  partitionBy?: string[];
  /** The description (comment) of a target this call creates. */
  comment?: string;
  /** Clock (epoch ms) for tombstone times; tests use it to exercise GC. */
  now?: number;
  /**
   * A target with no rows is replaced rather than written to: its schema becomes the batch's (the
   * first batch after a pipeline's full refresh, which rebuilds the table from the current definition).
   */
  replaceEmptyTarget?: boolean;
}

export interface ApplyChangesResult {
  /** The batch was already fully applied (state has the txn): nothing done. */
  skipped: boolean;
  /** The target already had this batch's txn (a rerun after a crash): only the state was committed. */
  targetSkipped: boolean;
  targetVersion: number | null;
  stateVersion: number | null;
  numSourceRows: number;
  numUpsertedRows: number;
  numDeletedRows: number;
}

/** Everything prepared for one batch (exported for crash tests: run the steps one by one). */
export interface PreparedBatch {
  opts: ApplyChangesOptions;
  scd: 1 | 2;
  statePath: string;
  alreadyApplied: boolean;
  targetAlreadyCommitted: boolean;
  stateExists: boolean;
  keys: string[];
  /** Target data columns (keys first). */
  columns: string[];
  nonKeys: string[];
  /** Session tables: target changes (`tch`, with `__op`) and state changes (`sch`, with `__op`). */
  tch: string;
  sch: string;
  /** State columns, in order, without `__op`. */
  stateColumns: string[];
  numSourceRows: number;
  temps: string[];
  /**
   * Set when the target's changed rows were located by position (file, row) while computing `tch`:
   * the target commit then marks them deleted in deletion vectors and appends the new rows, with no
   * second join of the target (see commitByPosition). `tch` then also has `__tf` / `__tr` (the old
   * row's file index in `paths` and row index, NULL for a new row) and `__o<i>` (the old row's value
   * of the i-th output column).
   */
  positional?: { snapshot: Snapshot; paths: string[]; scan: string };
  /**
   * The state as the batch read it (when it exists): its snapshot, and `scan`, its rows with
   * `__floe_file_id` (an index in `paths`) and `__floe_row_index`; the state commit marks the rows it
   * replaces or deletes in deletion vectors by these positions (see commitStateByPosition).
   */
  statePositional?: { snapshot: Snapshot; paths: string[]; scan: string };
  /** The target does not exist: the target commit creates it, with these table properties, partitioning and description. */
  createTarget?: { properties: Record<string, string>; partitionBy?: string[]; description?: string; replace?: boolean };
  /**
   * `sch` has `__sf` / `__sr`: the position (file index in statePositional.paths, row index) of the
   * state row each change replaces or deletes (NULL for a new key), found while computing it.
   */
  stateCarried?: boolean;
  /** A query of the target changes' counts (columns u, d) cheaper than counting `tch` (whose rows may be a join run as they are written). */
  counts?: string;
}

const q = quoteIdent;
const sqlStr = (s: string): string => `'${s.replace(/'/g, "''")}'`;
/** A value for messages: scalars as they are, structs as JSON. */
const show = (v: unknown): string => (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v));

/** Applies one batch of change events (see the module comment). */
export async function applyChanges(floe: Floe, opts: ApplyChangesOptions): Promise<ApplyChangesResult> {
  const p = await prepareApplyChanges(floe, opts);
  try {
    if (p.alreadyApplied) {
      return { skipped: true, targetSkipped: true, targetVersion: null, stateVersion: null, numSourceRows: p.numSourceRows, numUpsertedRows: 0, numDeletedRows: 0 };
    }
    const t = await commitTargetStep(floe, p);
    const s = await commitStateStep(floe, p);
    return { skipped: false, targetSkipped: t.skipped, targetVersion: t.version, stateVersion: s, numSourceRows: p.numSourceRows, numUpsertedRows: t.upserted, numDeletedRows: t.deleted };
  } finally {
    await dropTemps(floe, p);
  }
}

export async function dropTemps(floe: Floe, p: PreparedBatch): Promise<void> {
  const temps = p.temps.reverse();
  p.temps = [];
  if (!temps.length) return;
  // One round trip for all; should it fail, one by one (dropping what can be dropped).
  await floe.engine.run(temps.map((t) => `DROP TABLE IF EXISTS ${t};`).join('\n')).catch(async () => {
    for (const t of temps) await floe.engine.run(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
  });
}

/** The latest snapshot, or null when there is no table at the log's location. */
async function snapshotOrNull(log: DeltaLog): Promise<Snapshot | null> {
  try {
    return await log.snapshot();
  } catch (e) {
    if (e instanceof TableNotFoundError) return null;
    throw e;
  }
}

function statePathOf(target: string): string {
  return `${target.replace(/[\\/]+$/, '')}/${STATE_DIR}`;
}

/** The target's columns in order: the data columns, then SCD 2's __START_AT / __END_AT. */
function targetColumns(columns: string[], scd: 1 | 2): string[] {
  return [...columns, ...(scd === 2 ? ['__START_AT', '__END_AT'] : [])];
}

/**
 * Whether a commit may change this table by position (mark rows in deletion vectors, append the new
 * ones) rather than through MERGE: deletion vectors on, exactly the columns the flow writes (nothing
 * a MERGE would fill in, such as generated columns), and no constraints to check.
 */
async function changeableByPosition(snap: Snapshot, cols: string[]): Promise<boolean> {
  const names = snap.schema.fields.map((f) => f.name);
  return dvWritesOn(snap) && names.length === cols.length && cols.every((c) => names.includes(c))
    && !(await constraintChecks(snap.tablePath, snap.schema, snap.configuration)).length;
}

function eqOn(keys: string[], a: string, b: string): string {
  return keys.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');
}

function resolveName(cols: string[], name: string, what: string): string {
  const exact = cols.find((c) => c === name) ?? cols.find((c) => c.toLowerCase() === name.toLowerCase());
  if (!exact) throw new InvalidArgumentError(`AUTO CDC ${what} names column '${name}', which the source does not have (source columns: ${cols.join(', ')}).`, { column: name }, 'AUTO_CDC_COLUMN_NOT_FOUND');
  return exact;
}

/** A list option: an array of strings (or absent). */
function stringList(v: unknown, name: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new InvalidArgumentError(`AUTO CDC ${name} must be an array of column names, got ${describeValue(v)}.`, { option: name }, 'AUTO_CDC_INVALID_OPTIONS');
  }
}

/** A value and its type, for messages about options of the wrong type. */
function describeValue(v: unknown): string {
  return `${typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v)} (${Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`})`;
}

function validate(opts: ApplyChangesOptions): 1 | 2 {
  if (!opts.source || typeof (opts.source as { toSQL?: unknown }).toSQL !== 'function') {
    throw new InvalidArgumentError(`AUTO CDC source must be a DataFrame (floe.read.delta(...), floe.sql(...), floe.duckdbSql(...)), got ${describeValue(opts.source)}.`, { option: 'source' }, 'AUTO_CDC_INVALID_OPTIONS');
  }
  for (const k of ['keys', 'columnList', 'exceptColumnList', 'trackHistoryColumnList', 'trackHistoryExceptColumnList'] as const) stringList(opts[k], k);
  for (const k of ['sequenceBy', 'applyAsDeletes', 'applyAsTruncates', 'target', 'flowName'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'string') throw new InvalidArgumentError(`AUTO CDC ${k} must be a string, got ${describeValue(opts[k])}.`, { option: k }, 'AUTO_CDC_INVALID_OPTIONS');
  }
  const scd = opts.storedAsScdType ?? 1;
  if (scd !== 1 && scd !== 2) throw new InvalidArgumentError(`storedAsScdType must be 1 or 2, got ${String(scd)}.`);
  if (!opts.target) throw new InvalidArgumentError('AUTO CDC needs a target path.');
  if (!opts.keys?.length) throw new InvalidArgumentError('AUTO CDC needs at least one key column (keys).');
  if (!opts.sequenceBy?.trim()) throw new InvalidArgumentError('AUTO CDC needs sequenceBy (a column or SQL expression).');
  if (!opts.flowName) throw new InvalidArgumentError('AUTO CDC needs a flowName (the txn appId of its commits).');
  if (!Number.isInteger(opts.batchId) || opts.batchId < 0) throw new InvalidArgumentError(`batchId must be a non-negative integer, got ${describeValue(opts.batchId)}.`);
  if (opts.columnList && opts.exceptColumnList) throw new InvalidArgumentError('columnList and exceptColumnList are mutually exclusive.', {}, 'AUTO_CDC_INVALID_OPTIONS');
  if (opts.trackHistoryColumnList && opts.trackHistoryExceptColumnList) throw new InvalidArgumentError('trackHistoryColumnList and trackHistoryExceptColumnList are mutually exclusive.', {}, 'AUTO_CDC_INVALID_OPTIONS');
  if (scd === 1 && (opts.trackHistoryColumnList || opts.trackHistoryExceptColumnList)) throw new InvalidArgumentError('trackHistoryColumnList / trackHistoryExceptColumnList apply to SCD type 2 only.', {}, 'AUTO_CDC_INVALID_OPTIONS');
  if (scd === 2 && opts.applyAsTruncates) throw new InvalidArgumentError('applyAsTruncates is supported for SCD type 1 only.', {}, 'AUTO_CDC_INVALID_OPTIONS');
  guardExpression(opts.sequenceBy, opts.applyAsDeletes, opts.applyAsTruncates);
  return scd;
}

/**
 * The source's columns and DuckDB types, and the sequence's type, from one DESCRIBE that also checks
 * the option expressions (sequenceBy, applyAsDeletes, applyAsTruncates): one that does not bind over
 * the source's columns, or a condition that is not boolean, is AUTO_CDC_INVALID_OPTIONS naming it.
 */
async function describeBatch(floe: Floe, srcSql: string, opts: ApplyChangesOptions): Promise<{ srcTypes: Map<string, string>; seqType: string }> {
  const eng = floe.engine;
  const all: Array<[string, string | undefined]> = [['sequenceBy', opts.sequenceBy], ['applyAsDeletes', opts.applyAsDeletes], ['applyAsTruncates', opts.applyAsTruncates]];
  const exprs = all.filter((x): x is [string, string] => typeof x[1] === 'string');
  const sel = (list: ReadonlyArray<readonly [string, string]>): string => `SELECT *${list.map(([, e], i) => `, (${e}) AS __floe_opt_${i}`).join('')} FROM (${srcSql}) AS __src`;
  let cols: { name: string; type: string }[];
  try {
    cols = await eng.describe(sel(exprs));
  } catch (e) {
    // (A source that does not bind fails here, with its own error.)
    const src = await eng.describe(srcSql);
    for (const x of exprs) {
      try {
        await eng.describe(sel([x]));
      } catch (err) {
        throw new InvalidArgumentError(`AUTO CDC into ${opts.target}: ${x[0]} (${x[1]}) is not a valid expression over the source's columns (${src.map((c) => c.name).join(', ')}): ${engineMessage(err)}`, { option: x[0] }, 'AUTO_CDC_INVALID_OPTIONS');
      }
    }
    throw e;
  }
  const n = cols.length - exprs.length;
  exprs.forEach(([name, e], i) => {
    const t = cols[n + i]!.type;
    if (name !== 'sequenceBy' && t !== 'BOOLEAN') throw new InvalidArgumentError(`AUTO CDC into ${opts.target}: ${name} must be a boolean condition, but (${e}) is of type ${t}.`, { option: name }, 'AUTO_CDC_INVALID_OPTIONS');
  });
  return { srcTypes: new Map(cols.slice(0, n).map((c) => [c.name, c.type])), seqType: cols[n]!.type };
}

/**
 * Every value of the batch must fit the column types of the target and of the state before either
 * commits: both commits cast to their table's types, and a cast failing in the second after the
 * first committed would leave them out of step. A column whose type does not widen into the table's
 * is checked value by value; one that does not fit is AUTO_CDC_SCHEMA_MISMATCH, before any commit.
 * `pairs`: (batch column of `ev`, its DuckDB type, the table column it is written to).
 */
async function checkBatchFits(floe: Floe, target: string, ev: string, tables: { what: string; snap: Snapshot; pairs: [string, string, string][] }[]): Promise<Map<string, string>> {
  const casts = new Map<string, string>();
  for (const { what, snap, pairs } of tables) {
    for (const [col, batchType, tableCol] of pairs) {
      const f = snap.schema.fields.find((x) => x.name === tableCol);
      if (!f) continue;
      const tableType = duckType(f.type);
      if (batchType === tableType) continue;
      // (The first table's type wins: the target's, else the state's.)
      if (!casts.has(col)) casts.set(col, tableType);
      let widens = false;
      try {
        // (Unsigned and 128-bit integers map to Delta types narrower than their range: always checked.)
        widens = !/^(U(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|HUGEINT)$/.test(batchType) && canUpcast(deltaTypeFromDuck(batchType), f.type);
      } catch {
        widens = false;
      }
      if (widens) continue;
      const fail = (why: string): FloeError => new FloeError(
        'AUTO_CDC_SCHEMA_MISMATCH',
        `AUTO CDC into ${target}: the source's ${col === '__seq' ? 'sequence' : `column '${col}'`} is ${batchType}, but the ${what}'s column '${tableCol}' is ${tableType}, and ${why}. Nothing was committed. Cast the source's ${col === '__seq' ? 'sequence' : 'column'} to ${tableType}, or run a full refresh of the target to take the new type.`,
        { column: col, sourceType: batchType, tableType, table: what },
      );
      // A value fits when it converts and (but for text) converts back to itself: 2.2 into an INTEGER
      // sequence (2), 12.7 into an INTEGER column, a TIMESTAMP into a DATE lose information; two such
      // sequences could even become equal, and the later event be taken for a re-delivery.
      const conv = `TRY_CAST(${q(col)} AS ${tableType})`;
      const lossy = batchType === 'VARCHAR' ? 'false' : `TRY_CAST(${conv} AS ${batchType}) IS DISTINCT FROM ${q(col)}`;
      let bad: Record<string, unknown>[];
      try {
        bad = await floe.engine.allJson(`SELECT CAST(${q(col)} AS VARCHAR) AS v, CAST(${conv} AS VARCHAR) AS c FROM ${ev} WHERE ${q(col)} IS NOT NULL AND (${conv} IS NULL OR ${lossy}) LIMIT 1`);
      } catch (e) {
        throw fail(`it cannot be converted (${engineMessage(e)})`);
      }
      if (bad.length) throw fail(bad[0]!.c === null ? `the value ${show(bad[0]!.v)} does not fit it` : `the value ${show(bad[0]!.v)} would change (to ${show(bad[0]!.c)})`);
    }
  }
  return casts;
}

async function tombstoneThreshold(floe: Floe, opts: ApplyChangesOptions, targetSnap: Snapshot | null): Promise<number> {
  // (A target this batch creates takes the flow's table properties.)
  const raw = opts.tombstoneGCThresholdInSeconds ?? (targetSnap ? targetSnap.configuration[TOMBSTONE_GC_PROPERTY] : opts.tableProperties?.[TOMBSTONE_GC_PROPERTY]) ?? floe.config.get(TOMBSTONE_GC_PROPERTY);
  if (raw === undefined) return DEFAULT_TOMBSTONE_GC_SECONDS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${TOMBSTONE_GC_PROPERTY} must be a non-negative number of seconds, got '${raw}'.`);
  return n;
}

/**
 * The batch's keys and target columns from the source's columns and the options (keys first; the
 * SCD 2 tracked columns): names resolved case-insensitively, AUTO_CDC_COLUMN_NOT_FOUND otherwise.
 */
function resolveColumns(srcCols: string[], opts: Pick<ApplyChangesOptions, 'keys' | 'columnList' | 'exceptColumnList' | 'trackHistoryColumnList' | 'trackHistoryExceptColumnList'>): { keys: string[]; columns: string[]; nonKeys: string[]; tracked: string[] } {
  const keys = opts.keys.map((k) => resolveName(srcCols, k, 'keys'));
  let columns: string[];
  if (opts.columnList) {
    const listed = opts.columnList.map((c) => resolveName(srcCols, c, 'columnList'));
    columns = [...keys, ...listed.filter((c) => !keys.includes(c))];
  } else {
    const except = (opts.exceptColumnList ?? []).map((c) => resolveName(srcCols, c, 'exceptColumnList'));
    for (const k of keys) if (except.includes(k)) throw new InvalidArgumentError(`exceptColumnList cannot drop the key column '${k}'.`, {}, 'AUTO_CDC_INVALID_OPTIONS');
    columns = [...keys, ...srcCols.filter((c) => !keys.includes(c) && !except.includes(c))];
  }
  for (const c of columns) if (c === '__START_AT' || c === '__END_AT') throw new InvalidArgumentError(`The source column '${c}' clashes with AUTO CDC's SCD type 2 columns; drop it with exceptColumnList.`, {}, 'AUTO_CDC_INVALID_OPTIONS');
  const nonKeys = columns.filter((c) => !keys.includes(c));
  // A tracked column must be a target column that is not a key: say which it is when it is not.
  const trackedName = (c: string, what: string): string => {
    const src = resolveName(srcCols, c, what);
    if (keys.includes(src)) throw new InvalidArgumentError(`AUTO CDC ${what} names the key column '${src}': keys are not tracked (a key's history is its versions); list only non-key columns.`, { column: src }, 'AUTO_CDC_INVALID_OPTIONS');
    if (!columns.includes(src)) throw new InvalidArgumentError(`AUTO CDC ${what} names column '${src}', which ${opts.columnList ? 'columnList does not include' : 'exceptColumnList leaves out of the target'}; list only the target's columns.`, { column: src }, 'AUTO_CDC_INVALID_OPTIONS');
    return src;
  };
  let tracked = nonKeys;
  if (opts.trackHistoryColumnList) tracked = opts.trackHistoryColumnList.map((c) => trackedName(c, 'trackHistoryColumnList'));
  if (opts.trackHistoryExceptColumnList) {
    const ex = opts.trackHistoryExceptColumnList.map((c) => resolveName(columns, c, 'trackHistoryExceptColumnList'));
    tracked = nonKeys.filter((c) => !ex.includes(c));
  }
  return { keys, columns, nonKeys, tracked };
}

/**
 * Analysis without data (a pipeline's validate): the options checked against a source query's
 * columns as a batch would check them (names, expressions, conditions), and the target's columns
 * with their DuckDB types.
 */
export async function autoCdcTargetColumns(floe: Floe, srcSql: string, opts: Omit<ApplyChangesOptions, 'source' | 'flowName' | 'batchId'>): Promise<Array<[string, string]>> {
  const scd = validate({ ...opts, source: floe.duckdbSql(srcSql), flowName: 'analysis', batchId: 0 });
  const { srcTypes, seqType } = await describeBatch(floe, srcSql, opts as ApplyChangesOptions);
  const { columns } = resolveColumns([...srcTypes.keys()], opts);
  return [...columns.map((c): [string, string] => [c, srcTypes.get(c)!]), ...(scd === 2 ? [['__START_AT', seqType], ['__END_AT', seqType]] as Array<[string, string]> : [])];
}

/** Step 1: validates, materialises the batch, ensures the target exists, computes target and state changes. */
export async function prepareApplyChanges(floe: Floe, opts: ApplyChangesOptions): Promise<PreparedBatch> {
  const scd = validate(opts);
  const eng = floe.engine;
  const temps: string[] = [];
  const tmp = async (prefix: string, sql: string, settings?: Record<string, number>): Promise<string> => (await tmpCounted(prefix, sql, settings))[0];
  /**
   * A session table of `sql`'s rows, and how many (CREATE TABLE AS reports it: no count query);
   * `settings`: DuckDB settings for that one statement.
   */
  const tmpCounted = async (prefix: string, sql: string, settings?: Record<string, number>): Promise<[string, number]> => {
    const t = eng.uniqueName(prefix);
    const create = `CREATE TEMP TABLE ${t} AS ${sql}`;
    const [r] = await eng.allJson(create, settings);
    temps.push(t);
    return [t, Number(r?.Count ?? 0)];
  };
  const statePath = statePathOf(opts.target);
  const srcSql = await opts.source.toSQL();
  const { srcTypes, seqType } = await describeBatch(floe, srcSql, opts);
  const srcCols = [...srcTypes.keys()];
  const resolved = resolveColumns(srcCols, opts);
  const { keys, nonKeys, tracked } = resolved;
  let columns = resolved.columns;

  // The batch: projected columns, sequence, kind; identical duplicates collapse.
  const whens = `${opts.applyAsTruncates ? `WHEN (${opts.applyAsTruncates}) THEN 'truncate' ` : ''}${opts.applyAsDeletes ? `WHEN (${opts.applyAsDeletes}) THEN 'delete' ` : ''}`;
  const kind = whens ? `CASE ${whens}ELSE 'upsert' END` : `'upsert'`;
  // The batch is read in place (no copy) when its (key, sequence) pairs are unique, the common case;
  // only when some pair repeats is it copied with identical rows collapsed, then checked exactly.
  // (Once the target and state are known, a column typed unlike its table column is cast to it.)
  const evOf = (cast: Map<string, string>): string => {
    const col = (c: string, e: string): string => (cast.has(c) ? `CAST(${e} AS ${cast.get(c)})` : e);
    return `SELECT ${columns.map((c) => `${col(c, q(c))} AS ${q(c)}`).join(', ')}, ${col('__seq', `(${opts.sequenceBy})`)} AS __seq, ${kind} AS __kind FROM (${srcSql}) AS __src`;
  };
  let evSql = evOf(new Map());
  const K0 = keys.map(q).join(', ');
  const keyText = (r: Record<string, unknown>): string => keys.map((k) => `${k}=${show(r[k])}`).join(', ');

  // State and target snapshots: each loaded once per batch (the session's DeltaLog moves its last
  // snapshot forward by the commits written since, no listing) and passed along to the commits.
  const stateLog = floe.deltaLog(statePath);
  let stateSnap = await snapshotOrNull(stateLog);
  const stateExists = stateSnap !== null;
  if (stateSnap && (stateSnap.txnVersion(opts.flowName) ?? -1) >= opts.batchId) {
    const numSourceRows = Number((await eng.allJson(`SELECT count(*) AS n FROM (${srcSql})`))[0]!.n);
    return { opts, scd, statePath, stateExists, keys, columns, nonKeys, numSourceRows, temps, alreadyApplied: true, targetAlreadyCommitted: true, tch: '', sch: '', stateColumns: [] };
  }
  const targetLog = floe.deltaLog(opts.target);
  if (stateSnap) {
    // The keys cannot change between batches (the state is by key): as DLT, that takes a full refresh.
    const recorded = stateSnap.configuration[STATE_KEYS_PROPERTY];
    const prev = recorded ? (JSON.parse(recorded) as string[]) : null;
    const stateCols = new Set(stateSnap.schema.fields.map((f) => f.name.toLowerCase()));
    const lower = (xs: string[]): string => xs.map((k) => k.toLowerCase()).sort().join('\u0000');
    if (prev ? lower(prev) !== lower(keys) : !keys.every((k) => stateCols.has(k.toLowerCase()))) {
      throw new FloeError(
        'AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE',
        `AUTO CDC into ${opts.target}: the keys changed from (${prev ? prev.join(', ') : 'other columns'}) to (${keys.join(', ')}). Nothing was committed. Keys cannot change between batches: restore them, or run a full refresh of the target.`,
        { keys, previousKeys: prev },
      );
    }
  }
  let existingTarget = await snapshotOrNull(targetLog);
  // (Replaced: read as no target; the target commit overwrites it with the batch's schema.)
  const replacing = !!opts.replaceEmptyTarget && !!existingTarget && existingTarget.files.length === 0 && !stateSnap;
  if (replacing) existingTarget = null;
  // The batch's values must fit the target's and the state's column types (checked only for a column
  // whose type differs from its table's and does not widen into it).
  const seqCols = scd === 2 ? ['__seq'] : ['__upsert_seq', '__delete_seq', ...(opts.ignoreNullUpdates ? nonKeys.map((_, i) => `__cs_${i}`) : [])];
  const dataPairs = columns.map((c): [string, string, string] => [c, srcTypes.get(c)!, c]);
  const casts = await checkBatchFits(floe, opts.target, `(${evSql})`, [
    ...(existingTarget ? [{ what: 'target', snap: existingTarget, pairs: [...dataPairs, ...(scd === 2 ? [['__seq', seqType, '__START_AT'] as [string, string, string]] : [])] }] : []),
    ...(stateSnap ? [{ what: 'AUTO CDC state', snap: stateSnap, pairs: [...dataPairs, ...seqCols.map((x): [string, string, string] => ['__seq', seqType, x])] }] : []),
  ]);
  // (Checked before the schema changes below: nothing is committed for a batch that does not fit.)
  if (existingTarget) {
    // The batch's columns in the target's order, new ones last in the source's: SCD 1's per-column
    // state (__cs_<i>) follows this order, so it must not depend on how a batch orders its columns.
    const pos = new Map(existingTarget.schema.fields.map((f, i) => [f.name.toLowerCase(), i]));
    const rank = (c: string): number => pos.get(c.toLowerCase()) ?? existingTarget!.schema.fields.length;
    nonKeys.sort((a, b) => rank(a) - rank(b));
    columns = [...keys, ...nonKeys];
    // Source columns the target lacks are added to it (nullable; its rows read NULL for them), as
    // DLT evolves an AUTO CDC target with its source, and to a state that keeps data columns.
    const missing = nonKeys.filter((c) => !pos.has(c.toLowerCase()));
    // ignoreNullUpdates keeps one state column per data column by its place among them
    // (`__cs_<i>`): a batch without one of the target's columns would shift them.
    const lacking = existingTarget.schema.fields.map((f) => f.name).filter((n) => n !== '__START_AT' && n !== '__END_AT' && !columns.some((c) => c.toLowerCase() === n.toLowerCase()));
    if (lacking.length && opts.ignoreNullUpdates && stateSnap?.schema.fields.some((f) => f.name === '__cs_0')) {
      throw new FloeError(
        'AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE',
        `AUTO CDC into ${opts.target}: the source no longer has the target's column(s) ${lacking.map((c) => `'${c}'`).join(', ')}, which ignoreNullUpdates keeps state for. Nothing was committed. Restore the column(s) in the source (NULL is fine), or run a full refresh of the target.`,
        { columns: lacking },
      );
    }
    // A type 2 state kept without data columns (every column tracked) cannot take an untracked one:
    // its events' values would have to be rebuilt. As DLT: an incompatible change, full refresh.
    const stateHasData = !!stateSnap && nonKeys.some((c) => stateSnap!.schema.fields.some((f) => f.name === c));
    if (missing.length && scd === 2 && stateSnap && !stateHasData && (tracked.length !== nonKeys.length || opts.ignoreNullUpdates)) {
      throw new FloeError(
        'AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE',
        `AUTO CDC into ${opts.target}: the source's new column(s) ${missing.map((c) => `'${c}'`).join(', ')} would not be tracked (trackHistoryColumnList), but the target's history so far tracks every column. Nothing was committed. Add them to trackHistoryColumnList, or run a full refresh of the target.`,
        { columns: missing },
      );
    }
    if (missing.length) {
      const data = existingTarget.schema.fields.filter((f) => f.name !== '__START_AT' && f.name !== '__END_AT');
      let after = data[data.length - 1]?.name;
      const add = missing.map((c) => {
        const col = { path: [c], type: deltaTypeFromDuck(srcTypes.get(c)!), ...(scd === 2 && after ? { position: { after } } : {}) };
        after = c;
        return col;
      });
      await addColumns(floe, opts.target, add);
      existingTarget = await snapshotOrNull(targetLog);
    }
    // The state's own missing columns (not the target's: a run that died between the two commits, or
    // a column added to the target by hand, leaves only the state behind).
    if (stateSnap) {
      const has = new Set(stateSnap.schema.fields.map((f) => f.name));
      const stateSeqType = stateSnap.schema.fields.find((f) => f.name === (scd === 2 ? '__seq' : '__upsert_seq'))!.type;
      const typeOf = (c: string): DataType => existingTarget!.schema.fields.find((f) => f.name.toLowerCase() === c.toLowerCase())?.type ?? deltaTypeFromDuck(srcTypes.get(c)!);
      const stateAdd = [
        ...(stateHasData ? nonKeys.filter((c) => !has.has(c)).map((c) => ({ path: [c], type: typeOf(c) })) : []),
        ...(has.has('__cs_0') ? nonKeys.map((_, i) => `__cs_${i}`).filter((x) => !has.has(x)).map((x) => ({ path: [x], type: stateSeqType })) : []),
      ];
      if (stateAdd.length) {
        await addColumns(floe, statePath, stateAdd);
        stateSnap = await snapshotOrNull(stateLog);
      }
    }
  }
  // Every later read of the batch sees the tables' types (its rows meet the target's in joins and unions).
  evSql = evOf(casts);
  const targetExists = existingTarget !== null && !replacing;
  // SCD 2's first batch (every column tracked) sorts the batch by (key, sequence) for its history
  // anyway: that pass also flags repeated pairs, instead of a separate grouping of the batch.
  const allTracked = tracked.length === nonKeys.length && !opts.ignoreNullUpdates;
  let foldDup = scd === 2 && !stateSnap && allTracked && (!existingTarget || existingTarget.files.length === 0);

  // One pass over the batch for the row count, NULL keys or sequences, and (unless folded) repeated (key, sequence) pairs.
  // Without truncates the pairs are counted by one 64-bit hash: as many distinct hashes as rows
  // proves every pair unique (a cheaper pass than grouping by the pairs themselves); fewer (a
  // repeated pair, or a hash collision) runs the exact grouping below.
  const nullKeyExpr = keys.map((k) => `${q(k)} IS NULL`).join(' OR ');
  let hashChk: Record<string, unknown> | null = null;
  /** Every sequence of the batch is an integer within ±2^61 (it packs with a flag into a BIGINT). */
  let seqPacks = false;
  /** Every sequence of the batch is distinct (proven by the bitmap): an event is identified by its sequence alone. */
  let seqUnique = false;
  /** Bits of a perfect hash table over the batch's (one, integer) key, when its range is small next to the batch. */
  let perfectHtBits: number | null = null;
  // Integer sequences (offsets, LSNs, versions with a row number) are often unique over the whole
  // batch: a bitmap over their range proves it (one bit per value; as many bits set as rows), far
  // cheaper than hashing every pair. Tried when the range could hold every row distinctly and is at
  // most a small multiple of the rows (the bitmap's cost grows with the range); otherwise, or when
  // some value repeats (then a pair still may not), the pairs are hashed as below.
  const batchSeqType = (casts.get('__seq') ?? seqType).toUpperCase();
  if (!foldDup && !opts.applyAsTruncates && DUCK_INTEGER_TYPES.has(batchSeqType)) {
    // (With one integer key, its range too: see perfectHtBits.)
    const intKey = keys.length === 1 && DUCK_INTEGER_TYPES.has((casts.get(keys[0]!) ?? srcTypes.get(keys[0]!) ?? '').toUpperCase());
    const [m] = await eng.allJson(`SELECT count(*)::BIGINT AS n, CAST(min(__seq) AS VARCHAR) AS lo, CAST(max(__seq) AS VARCHAR) AS hi, coalesce(bool_or(__seq IS NULL), false) AS nseq,
        coalesce(bool_or(${nullKeyExpr}), false) AS nkey${intKey ? `, CAST(min(${K0}) AS VARCHAR) AS klo, CAST(max(${K0}) AS VARCHAR) AS khi` : ''} FROM (${evSql})`);
    const n = BigInt(String(m!.n));
    if (intKey && m!.klo !== null && m!.khi !== null) {
      // A key range small next to the batch: DuckDB's perfect hash aggregation (an array indexed by
      // the key, no hashing) for the per-key aggregation, which DuckDB uses only up to 2^12 keys by default.
      const range = BigInt(String(m!.khi)) - BigInt(String(m!.klo)) + 1n;
      if (range <= 1n << 20n && range * 2n <= n) perfectHtBits = range.toString(2).length + 1;
    }
    if (n === 0n) hashChk = { n: 0, rep: false, nseq: false, nkey: false };
    else if (m!.nseq !== true && m!.lo !== null && m!.hi !== null) {
      const lo = BigInt(String(m!.lo));
      const limit = 1n << 61n;
      seqPacks = lo > -limit && BigInt(String(m!.hi)) < limit;
      const range = BigInt(String(m!.hi)) - lo + 1n;
      if (n === 1n) hashChk = { n: m!.n, rep: false, nseq: false, nkey: m!.nkey };
      else if (range >= n && range <= 16n * n + 65536n && range <= 268_435_456n) {
        const [b] = await eng.allJson(`SELECT bit_count(bitstring_agg(CAST(CAST(__seq AS HUGEINT) - ${lo} AS BIGINT), 0, ${range - 1n}))::BIGINT AS b FROM (${evSql})`);
        if (BigInt(String(b!.b)) === n) {
          hashChk = { n: m!.n, rep: false, nseq: false, nkey: m!.nkey };
          seqUnique = true;
        }
      }
    }
  }
  if (!hashChk && !foldDup && !opts.applyAsTruncates) {
    const [h] = await eng.allJson(`SELECT count(*)::BIGINT AS n, count(DISTINCT hash(${K0}, __seq))::BIGINT AS d, coalesce(bool_or(__seq IS NULL), false) AS nseq,
        coalesce(bool_or(${nullKeyExpr}), false) AS nkey FROM (${evSql})`);
    if (h!.n === h!.d) hashChk = { n: h!.n, rep: false, nseq: h!.nseq, nkey: h!.nkey };
  }
  const [chk] = hashChk ? [hashChk] : foldDup
    ? await eng.allJson(`SELECT count(*)::BIGINT AS n, false AS rep, coalesce(bool_or(__seq IS NULL), false) AS nseq,
        coalesce(bool_or(__kind <> 'truncate' AND (${nullKeyExpr})), false) AS nkey FROM (${evSql})`)
    : await eng.allJson(`SELECT coalesce(sum(__c), 0)::BIGINT AS n, coalesce(bool_or(__c > 1 AND NOT __tr), false) AS rep, coalesce(bool_or(__seq IS NULL), false) AS nseq,
        coalesce(bool_or(NOT __tr AND (${nullKeyExpr})), false) AS nkey
      FROM (SELECT ${K0}, __seq, __kind = 'truncate' AS __tr, count(*) AS __c FROM (${evSql}) GROUP BY ALL)`);
  const numSourceRows = Number(chk!.n);
  /** The exact check of repeated pairs: identical rows collapse (a copy of the batch), different ones are an error. */
  const dedupe = async (): Promise<string> => {
    const evAll = await tmp('cdc_ev_all', `SELECT DISTINCT * FROM (${evSql})`);
    const dup = await eng.allJson(`SELECT ${K0}, __seq, count(*) AS n FROM ${evAll} WHERE __kind <> 'truncate' GROUP BY ALL HAVING count(*) > 1 LIMIT 1`);
    if (dup.length) {
      const r = dup[0]!;
      throw new FloeError(
        'AUTO_CDC_DUPLICATE_SEQUENCE',
        `AUTO CDC into ${opts.target}: key (${keyText(r)}) has ${String(r.n)} different events at the same sequence ${show(r.__seq)}; there must be one distinct update per key at each sequence value.`,
        { key: Object.fromEntries(keys.map((k) => [k, r[k]])), sequence: r.__seq },
      );
    }
    return evAll;
  };
  let evAll: string;
  if (chk!.rep === true) evAll = '';
  // ignoreNullUpdates reads the batch several times: one plain copy.
  else if (opts.ignoreNullUpdates) evAll = await tmp('cdc_ev_all', evSql);
  else evAll = `(${evSql})`;
  const firstRead = evAll || `(${evSql})`;
  const nullSeq = chk!.nseq === true ? await eng.allJson(`SELECT ${K0} FROM ${firstRead} WHERE __seq IS NULL LIMIT 1`) : [];
  if (nullSeq.length) throw new FloeError('AUTO_CDC_NULL_SEQUENCE', `AUTO CDC into ${opts.target}: an event for key (${keyText(nullSeq[0]!)}) has a NULL sequenceBy value (${opts.sequenceBy}); NULL sequence values are not supported.`, { key: nullSeq[0] });
  const nullKey = chk!.nkey === true ? await eng.allJson(`SELECT __seq FROM ${firstRead} WHERE __kind <> 'truncate' AND (${nullKeyExpr}) LIMIT 1`) : [];
  if (nullKey.length) throw new FloeError('AUTO_CDC_NULL_KEY', `AUTO CDC into ${opts.target}: an event (sequence ${show(nullKey[0]!.__seq)}) has a NULL key column (${keys.join(', ')}).`, {});
  if (!evAll) evAll = await dedupe();

  const base = { opts, scd, statePath, stateExists, keys, columns, nonKeys, numSourceRows, temps } as const;
  // A new target is created by the batch's target commit, with its first rows (one commit). Deletion
  // vectors on, as DLT's targets: a batch changing a few keys writes those rows and a DV, not a copy
  // of every file it touches (`delta.enableDeletionVectors = false` in tableProperties to opt out).
  const createTarget: PreparedBatch['createTarget'] = targetExists ? undefined : {
    ...(replacing ? { replace: true } : {}),
    properties: { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true', ...(opts.tableProperties ?? {}) },
    ...(opts.partitionBy?.length ? { partitionBy: opts.partitionBy.map((c) => resolveName(targetColumns(columns, scd), c, 'partitionBy')) } : {}),
    ...(opts.comment !== undefined ? { description: opts.comment } : {}),
  };
  const targetSnap = existingTarget;
  if (targetSnap) {
    const tcols = new Set(targetSnap.schema.fields.map((f) => f.name));
    for (const c of [...keys, ...(scd === 2 ? ['__START_AT', '__END_AT'] : [])]) {
      if (!tcols.has(c)) throw new FloeError('AUTO_CDC_TARGET_SCHEMA', `The AUTO CDC target ${opts.target} has no column '${c}'${c.startsWith('__') ? ' (an SCD type 2 target needs __START_AT and __END_AT typed like the sequence)' : ''}.`, { column: c });
    }
  }
  const targetAlreadyCommitted = (targetSnap?.txnVersion(opts.flowName) ?? -1) >= opts.batchId;
  // A target with deletion vectors, no columns besides the flow's own and no constraints is changed
  // by position: its rows are read with their file and row index, so the commit needs no MERGE join.
  const outCols = targetColumns(columns, scd);
  // The target's and the state's files not described yet (their new files): one statement for both.
  await prefetchDataFileColumns(floe.engine, [...(targetSnap ? [{ store: targetLog.store, files: targetSnap.files }] : []), ...(stateSnap ? [{ store: stateLog.store, files: stateSnap.files }] : [])]);
  let positional: PreparedBatch['positional'];
  let targetPos: string | null = null;
  if (targetSnap?.files.length && !targetAlreadyCommitted && (await changeableByPosition(targetSnap, outCols))) {
    const plan = await planPositionalScan(floe.engine, targetLog.store, targetSnap, targetSnap.files);
    temps.push(...plan.tables);
    targetPos = plan.sql;
    positional = { snapshot: targetSnap, paths: plan.paths, scan: plan.sql };
  }
  // The target's rows: from the positional scan when there is one (one plan of the target per batch).
  let targetSql: string;
  if (targetPos) targetSql = `SELECT ${targetSnap!.schema.fields.map((f) => q(f.name)).join(', ')} FROM (${targetPos})`;
  else if (!targetSnap) targetSql = `SELECT ${columns.map(q).join(', ')}${scd === 2 ? ', __seq AS "__START_AT", __seq AS "__END_AT"' : ''} FROM (${evSql}) WHERE false`;
  else {
    const plan = await planScan(floe.engine, targetLog.store, targetSnap);
    temps.push(...plan.tables);
    targetSql = plan.sql;
  }
  // The state's rows, read with each row's file and row index: the same scan serves the batch's
  // computation (without them) and the state commit, which marks replaced rows by position.
  let stateSql: string | null = null;
  let statePositional: PreparedBatch['statePositional'];
  if (stateSnap) {
    const plan = await planPositionalScan(floe.engine, stateLog.store, stateSnap, stateSnap.files);
    temps.push(...plan.tables);
    stateSql = `SELECT ${stateSnap.schema.fields.map((f) => q(f.name)).join(', ')} FROM (${plan.sql})`;
    statePositional = { snapshot: stateSnap, paths: plan.paths, scan: plan.sql };
  }
  const thresholdMs = (await tombstoneThreshold(floe, opts, targetSnap)) * 1000;
  const now = opts.now ?? Date.now();
  const targetEmpty = !targetSnap || targetSnap.files.length === 0;
  foldDup &&= targetEmpty;
  const ctx: Ctx = { floe, keys, columns, nonKeys, tracked, evAll, seqPacks, seqUnique, seqType: batchSeqType, perfectHtBits, targetSql, targetPos, outCols, stateSql, statePos: statePositional?.scan ?? null, stateColumns: stateSnap ? stateSnap.schema.fields.map((f) => f.name) : null, hasTruncates: !!opts.applyAsTruncates, stateHasNoTruncate: !stateSnap || stateSnap.files.every((f) => Number(parseStats(f.stats)?.maxValues?.['__slot'] ?? 1) <= 0), targetEmpty, ignoreNull: !!opts.ignoreNullUpdates, now, cutoff: now - thresholdMs, fullGc: opts.batchId % FULL_GC_EVERY === 0, foldDup, tmp, tmpCounted };
  let r = scd === 1 ? await computeScd1(ctx) : await computeScd2(ctx);
  if (!r) {
    // The folded check saw a repeated (key, sequence): the exact check, then the batch again.
    r = await computeScd2({ ...ctx, evAll: await dedupe(), foldDup: false });
    if (!r) throw new Error('AUTO CDC: repeated (key, sequence) pairs after deduplication');
  }
  return { ...base, alreadyApplied: false, targetAlreadyCommitted, tch: r.tch, sch: r.sch, stateColumns: r.stateColumns, ...(r.counts ? { counts: r.counts } : {}), ...(r.stateCarried ? { stateCarried: true } : {}), ...(createTarget ? { createTarget } : {}), ...(targetPos ? { positional } : {}), ...(statePositional ? { statePositional } : {}) };
}

interface Ctx {
  floe: Floe;
  keys: string[];
  columns: string[];
  nonKeys: string[];
  tracked: string[];
  evAll: string;
  /** The batch's sequences are integers within ±2^61 (see prepareApplyChanges), of DuckDB type `seqType`. */
  seqPacks: boolean;
  /** Every sequence of the batch is distinct (not only per key): an event is found by its sequence alone. */
  seqUnique: boolean;
  seqType: string;
  /** DuckDB's perfect_ht_threshold for the batch's per-key aggregation (its integer key's range is small), or null. */
  perfectHtBits: number | null;
  targetSql: string;
  /**
   * The target with `__floe_file_id` / `__floe_row_index` columns when it is changed by position
   * (PreparedBatch.positional), else null.
   */
  targetPos: string | null;
  /** The target's columns in order (data columns, then SCD 2's __START_AT / __END_AT). */
  outCols: string[];
  stateSql: string | null;
  /** The state's rows with FILE_ID / ROW_INDEX (its positional scan), when it exists. */
  statePos: string | null;
  /** The state table's columns (from its Delta schema), when it exists. */
  stateColumns: string[] | null;
  /** applyAsTruncates is set. */
  hasTruncates: boolean;
  /** The state has no truncate row (SCD 1's slot 1): no state, or every file's statistics say __slot <= 0. */
  stateHasNoTruncate: boolean;
  /** The target has no data files (its first batch, or after a truncate). */
  targetEmpty: boolean;
  ignoreNull: boolean;
  now: number;
  cutoff: number;
  /** This batch also collects expired tombstones of keys it does not touch (SCD 2). */
  fullGc: boolean;
  /** SCD 2 first batch: repeated (key, sequence) pairs are flagged by the history's sort; compute returns null when it sees one. */
  foldDup: boolean;
  tmp: (prefix: string, sql: string, settings?: Record<string, number>) => Promise<string>;
  tmpCounted: (prefix: string, sql: string) => Promise<[string, number]>;
}

/**
 * Per key of the events `ev`: the latest upsert and delete sequences (columns `ups`, `del`) and
 * `row`, a select list over the latest upsert's event `e` (fetched back by key and sequence, unique
 * once checked: cheaper than carrying every row through an arg_max).
 */
function latestByKind(keys: string[], nonKeys: string[], ev: string, ups: string, del: string, row: string): string {
  return `SELECT ${keys.map((k) => `a.${q(k)}`).join(', ')}, a.${ups}, a.${del}${row}
    FROM (SELECT ${keys.map(q).join(', ')}, max(__seq) FILTER (WHERE __kind = 'upsert') AS ${ups}, max(__seq) FILTER (WHERE __kind = 'delete') AS ${del} FROM ${ev} GROUP BY ALL) a
    ${nonKeys.length ? `LEFT JOIN ${ev} e ON ${eqOn(keys, 'a', 'e')} AND e.__seq = a.${ups} AND e.__kind = 'upsert'` : ''}`;
}

/**
 * SCD type 1. State rows: keys, __upsert_seq, __delete_seq, [__cs_<i> per non-key column with
 * ignoreNullUpdates], __ts (epoch ms of the last delete-sequence change), __slot (0 key row, 1 truncate).
 */
async function computeScd1(c: Ctx): Promise<{ tch: string; sch: string; stateColumns: string[]; counts?: string; stateCarried?: boolean }> {
  const { keys, nonKeys, evAll, tmp } = c;
  const K = keys.map(q);
  const cs = (i: number): string => `__cs_${i}`;
  const csCols = c.ignoreNull ? nonKeys.map((_, i) => cs(i)) : [];
  const stateColumns = [...keys, '__upsert_seq', '__delete_seq', ...csCols, '__ts', '__slot'];
  if (!c.stateSql && c.targetEmpty && !c.ignoreNull && !c.hasTruncates) {
    // The first batch (no state, empty target): one aggregation of the batch per key, materialised
    // narrow (key, latest sequence, latest delete sequence). The state rows are read from it; the
    // target rows (live keys) are fetched back from the batch by key and sequence as the target file
    // is written (streamed: materialising the wide rows cost more than the join).
    // Each key's latest event alone decides: a key whose latest event is an upsert is live whatever
    // deletes came before it, and one whose latest is a delete is a tombstone whatever upserts came
    // before; later batches decide the same with the other sequence NULL as with it set (both are
    // only ever compared through greatest() with newer events).
    // (Integer sequences within ±2^61: one max over sequence * 2 + is-delete gives both, the latest
    // sequence and whether its event is a delete, cheaper than a second, filtered max.)
    const kd = await tmp('cdc_kd', c.seqPacks
      ? `SELECT ${K.join(', ')}, CASE WHEN __m & 1 = 0 THEN CAST(__m >> 1 AS ${c.seqType}) END AS u_key, CASE WHEN __m & 1 = 1 THEN CAST(__m >> 1 AS ${c.seqType}) END AS d_key
      FROM (SELECT ${K.join(', ')}, max(CAST(__seq AS BIGINT) * 2 + CASE WHEN __kind = 'delete' THEN 1 ELSE 0 END) AS __m FROM ${evAll} GROUP BY ALL)`
      : `SELECT ${K.join(', ')}, CASE WHEN __d IS NULL OR __s > __d THEN __s END AS u_key, CASE WHEN __s = __d THEN __d END AS d_key
      FROM (SELECT ${K.join(', ')}, max(__seq) AS __s, max(__seq) FILTER (WHERE __kind = 'delete') AS __d FROM ${evAll} GROUP BY ALL)`,
      c.perfectHtBits && c.perfectHtBits > 12 ? { perfect_ht_threshold: c.perfectHtBits } : undefined);
    const tch = nonKeys.length
      ? `(SELECT ${keys.map((k) => `e.${q(k)}`).join(', ')}${nonKeys.map((n) => `, e.${q(n)}`).join('')}, 'upsert' AS __op
        FROM ${kd} a JOIN ${evAll} e ON ${c.seqUnique ? '' : `${eqOn(keys, 'a', 'e')} AND `}e.__seq = a.u_key)`
      : `(SELECT ${K.join(', ')}, 'upsert' AS __op FROM ${kd} WHERE u_key IS NOT NULL)`;
    const sch = `(SELECT ${K.join(', ')}, u_key AS __upsert_seq, d_key AS __delete_seq, ${c.now}::BIGINT AS __ts, 0::INTEGER AS __slot, 'upsert' AS __op FROM ${kd})`;
    // The target commit's counts, from the narrow table rather than by running the join again.
    const counts = `SELECT count(u_key) AS u, 0 AS d FROM ${kd}`;
    return { tch, sch, stateColumns, counts };
  }
  const emptyState = `SELECT ${K.join(', ')}, __seq AS __upsert_seq, __seq AS __delete_seq${csCols.map((x) => `, __seq AS ${x}`).join('')}, 0::BIGINT AS __ts, 0::INTEGER AS __slot FROM ${evAll} WHERE false`;
  // No copy of the state: it is read in place (empty on the first batch).
  const st = c.stateSql ? `(SELECT ${stateColumns.map(q).join(', ')} FROM (${c.stateSql}))` : `(${emptyState})`;
  // The truncate point: the latest truncate, applied (the state's slot-1 row) or in the batch. When
  // the flow has no truncates and the state's file statistics show no slot-1 row, there is none
  // (no query: it would scan the whole state).
  let tv = '';
  let newTrunc = false;
  // Without any truncate (the common case) the truncate terms drop out of every expression: DuckDB
  // would otherwise plan each `(SELECT t FROM tv)` as a join.
  let noTrunc = true;
  if (c.hasTruncates || !c.stateHasNoTruncate) {
    tv = await tmp('cdc_tv', `SELECT t0, tb, greatest(t0, tb) AS t, (tb IS NOT NULL AND (t0 IS NULL OR tb > t0)) AS newtrunc FROM
      (SELECT ${c.stateSql ? `(SELECT max(__delete_seq) FROM ${st} WHERE __slot = 1)` : `(SELECT max(__seq) FROM ${evAll} WHERE false)`} AS t0,
        (SELECT max(__seq) FROM ${evAll} WHERE ${c.hasTruncates ? `__kind = 'truncate'` : 'false'}) AS tb)`);
    const [tvRow] = await c.floe.engine.allJson(`SELECT newtrunc, t IS NULL AS tnull FROM ${tv}`);
    newTrunc = tvRow!.newtrunc === true;
    noTrunc = tvRow!.tnull === true;
  }
  const ev = c.hasTruncates ? `(SELECT * FROM ${evAll} WHERE __kind <> 'truncate')` : evAll;
  const rowPack = nonKeys.length ? `, struct_pack(${nonKeys.map((n) => `${q(n)} := e.${q(n)}`).join(', ')}) AS e_row` : '';
  // One aggregation of the batch per key: latest upsert (its row), latest delete.
  const batchAgg = latestByKind(keys, nonKeys, ev, 'e_ups', 'e_del', rowPack);
  // A key of the batch whose state is a tombstone older than the threshold is collected before the
  // batch applies (the batch sees no state for it), so the result depends on `now` only, not on
  // when collection ran; expired tombstones of keys no batch touches are removed by a pass over the
  // whole state every FULL_GC_EVERY batches (storage only), as for type 2.
  const expired = `NOT (__upsert_seq IS NOT NULL AND (__delete_seq IS NULL OR __upsert_seq > __delete_seq)) AND __ts < ${c.cutoff}`;
  // The state rows of the batch's keys carry their position (file, row) through to the state
  // changes when those are all the state commit marks (no new truncate, no full collection pass,
  // whose rows come from other reads of the state): the commit then needs no second scan of the
  // state. An expired tombstone is then read as no state (every value NULL) but keeps its place.
  const carry = !!c.statePos && !newTrunc && !c.fullGc;
  const liveState = carry
    ? `(SELECT ${K.join(', ')}${stateColumns.filter((x) => !keys.includes(x)).map((x) => `, CASE WHEN ${expired} THEN NULL ELSE ${q(x)} END AS ${q(x)}`).join('')}, ${FILE_ID} AS __sf, ${ROW_INDEX} AS __sr
      FROM (${c.statePos}) WHERE __slot = 0)`
    : `(SELECT * FROM ${st} WHERE __slot = 0 AND NOT (${expired}))`;
  // The affected keys: the batch's, plus every key of the state when a new truncate covers them.
  const ak = newTrunc ? await tmp('cdc_ak', `SELECT DISTINCT ${K.join(', ')} FROM ${ev} UNION SELECT ${K.join(', ')} FROM ${st} WHERE __slot = 0`) : null;
  const stCols = `s.__upsert_seq AS s_ups, s.__delete_seq AS s_del, s.__ts AS s_ts, (s.__slot IS NOT NULL) AS s_present${csCols.map((x) => `, s.${x} AS s_${x}`).join('')}${carry ? ', s.__sf, s.__sr' : ''}`;
  const kdCols = `e.e_ups, e.e_del${nonKeys.length ? ', e.e_row' : ''},
      greatest(s.__delete_seq, e.e_del${noTrunc ? '' : ', tv.t'}) AS d_eff,
      greatest(s.__delete_seq, e.e_del) AS d_key,
      greatest(s.__upsert_seq, e.e_ups) AS u_key`;
  const stJoin = c.stateSql ? `LEFT JOIN ${liveState} s ON ${eqOn(keys, 'e', 's')}` : `LEFT JOIN (SELECT * FROM ${st}) s ON false`;
  // The per-key table is read once, by the join with the target (nw), unless ignoreNullUpdates or a
  // collection pass reads it again: then it is materialised. Each table a batch materialises costs
  // in proportion to its rows times its columns, which is most of a small batch's cost.
  const kdOf = async (sql: string): Promise<string> => (c.ignoreNull || c.fullGc || newTrunc ? tmp('cdc_kd', sql) : `(${sql})`);
  const kd = ak
    ? await tmp('cdc_kd', `SELECT ${keys.map((k) => `ak.${q(k)}`).join(', ')}, ${stCols}, ${kdCols}
    FROM ${ak} ak
    LEFT JOIN ${liveState} s ON ${eqOn(keys, 'ak', 's')}
    LEFT JOIN (${batchAgg}) e ON ${eqOn(keys, 'ak', 'e')}
    ${noTrunc ? '' : `CROSS JOIN ${tv} tv`}`)
    : await kdOf(`SELECT ${keys.map((k) => `e.${q(k)}`).join(', ')}, ${stCols}, ${kdCols}
    FROM (${batchAgg}) e
    ${stJoin}
    ${noTrunc ? '' : `CROSS JOIN ${tv} tv`}`);
  // ignoreNullUpdates: per column, the latest non-null value of the batch after the key's effective delete.
  let cand = '';
  if (c.ignoreNull && nonKeys.length) {
    const after = `ev.__kind = 'upsert' AND (kd.d_eff IS NULL OR ev.__seq > kd.d_eff)`;
    cand = await tmp('cdc_cand', `SELECT ${keys.map((k) => `ev.${q(k)}`).join(', ')}, ${nonKeys
      .map((n, i) => `arg_max(ev.${q(n)}, ev.__seq) FILTER (WHERE ${after} AND ev.${q(n)} IS NOT NULL) AS v_${i}, max(ev.__seq) FILTER (WHERE ${after} AND ev.${q(n)} IS NOT NULL) AS s_${i}`)
      .join(', ')}
      FROM ${ev} ev JOIN ${kd} kd ON ${eqOn(keys, 'ev', 'kd')} GROUP BY ALL`);
  }
  const valueExprs: string[] = [];
  const csExprs: string[] = [];
  nonKeys.forEach((n, i) => {
    if (c.ignoreNull) {
      const oldValid = `(kd.s_${cs(i)} IS NOT NULL AND (kd.d_eff IS NULL OR kd.s_${cs(i)} > kd.d_eff))`;
      const fromBatch = `(cd.s_${i} IS NOT NULL AND (NOT ${oldValid} OR cd.s_${i} > kd.s_${cs(i)}))`;
      valueExprs.push(`CASE WHEN ${fromBatch} THEN cd.v_${i} WHEN ${oldValid} THEN t.${q(n)} ELSE NULL END AS ${q(n)}`);
      csExprs.push(`CASE WHEN ${fromBatch} THEN cd.s_${i} WHEN ${oldValid} THEN kd.s_${cs(i)} ELSE NULL END AS ${cs(i)}`);
    } else {
      valueExprs.push(`CASE WHEN kd.e_ups IS NOT NULL AND (kd.s_ups IS NULL OR kd.e_ups > kd.s_ups) THEN struct_extract(kd.e_row, ${sqlStr(n)}) ELSE t.${q(n)} END AS ${q(n)}`);
    }
  });
  const nw = await tmp('cdc_nw', `SELECT ${keys.map((k) => `kd.${q(k)}`).join(', ')},
      (kd.u_key IS NOT NULL AND (kd.d_eff IS NULL OR kd.u_key > kd.d_eff)) AS live,
      coalesce(t.__present, false) AS old_present,
      kd.u_key, kd.d_key, CASE WHEN kd.d_key IS DISTINCT FROM kd.s_del THEN ${c.now}::BIGINT ELSE coalesce(kd.s_ts, ${c.now}::BIGINT) END AS __nts
      ${valueExprs.map((v) => `, ${v}`).join('')}${csExprs.map((v) => `, ${v}`).join('')}${nonKeys.map((n, i) => `, t.${q(n)} AS __old_${i}`).join('')}
      ${c.targetPos ? `, t.${FILE_ID} AS __tf, t.${ROW_INDEX} AS __tr` : ''}${carry ? ', kd.__sf, kd.__sr' : ''}
    FROM ${kd} kd
    ${cand ? `LEFT JOIN ${cand} cd ON ${eqOn(keys, 'kd', 'cd')}` : ''}
    LEFT JOIN (SELECT *, true AS __present FROM (${c.targetPos ?? c.targetSql})) t ON ${eqOn(keys, 'kd', 't')}`);
  const changed = nonKeys.length ? nonKeys.map((n, i) => `${q(n)} IS DISTINCT FROM __old_${i}`).join(' OR ') : 'false';
  // By position: the old row's place and values (a key's old value is the key).
  const pos = c.targetPos ? `, __tf, __tr${c.outCols.map((n, i) => `, ${keys.includes(n) ? q(n) : `__old_${nonKeys.indexOf(n)}`} AS __o${i}`).join('')}` : '';
  const cols = c.columns.map(q).join(', ');
  // The target and state changes are views over nw (a filter and a projection, re-read by each use)
  // rather than tables: materialising them cost more than reading nw again.
  const tch = `(SELECT ${cols}, 'upsert' AS __op${pos} FROM ${nw} WHERE live AND (NOT old_present OR ${changed})
    UNION ALL SELECT ${cols}, 'delete' AS __op${pos} FROM ${nw} WHERE NOT live AND old_present)`;
  // State: affected keys, truncate-covered and expired tombstones dropped; a new truncate row.
  const tval = `(SELECT t FROM ${tv})`;
  const covered = (u: string, d: string): string => (noTrunc ? 'false' : `(${tval} IS NOT NULL AND (${u} IS NULL OR ${u} <= ${tval}) AND (${d} IS NULL OR ${d} <= ${tval}))`);
  const withTrunc = (d: string): string => (noTrunc ? d : `greatest(${d}, ${tval})`);
  // (nw's __nts: the state row's __ts, when its delete sequence last changed.)
  const schSql = `
    SELECT ${K.join(', ')}, u_key AS __upsert_seq, d_key AS __delete_seq${csCols.map((x) => `, ${x}`).join('')}, __nts AS __ts, 0::INTEGER AS __slot,
      CASE WHEN ${covered('u_key', 'd_key')} OR (NOT live AND __nts < ${c.cutoff}) THEN 'delete' ELSE 'upsert' END AS __op${carry ? ', __sf, __sr' : ''}
    FROM ${nw}
    ${c.fullGc || newTrunc ? `UNION ALL
    SELECT ${stateColumns.map((x) => `s.${q(x)}`).join(', ')}, 'delete' AS __op FROM ${st} s
    WHERE s.__slot = 0 AND NOT EXISTS (SELECT 1 FROM ${kd} ak WHERE ${eqOn(keys, 'ak', 's')})
      AND (${covered('s.__upsert_seq', 's.__delete_seq')}
           OR (NOT (s.__upsert_seq IS NOT NULL AND (${withTrunc('s.__delete_seq')} IS NULL OR s.__upsert_seq > ${withTrunc('s.__delete_seq')})) AND s.__ts < ${c.cutoff}))` : ''}
    ${newTrunc ? `UNION ALL SELECT ${keys.map(() => 'NULL').join(', ')}, NULL, tb${csCols.map(() => ', NULL').join('')}, ${c.now}::BIGINT, 1::INTEGER, 'upsert' FROM ${tv}` : ''}`;
  const sch = c.fullGc || newTrunc ? await tmp('cdc_sch', schSql) : `(${schSql})`;
  return { tch, sch, stateColumns, ...(carry ? { stateCarried: true } : {}) };
}

/** SCD type 2. State rows: the applied events: keys, non-key columns, __seq, __kind, __ts (epoch ms applied). */
async function computeScd2(c: Ctx): Promise<{ tch: string; sch: string; stateColumns: string[]; counts?: string; stateCarried?: boolean } | null> {
  const { keys, nonKeys, evAll, tmp } = c;
  const K = keys.map(q);
  // With every column tracked (and no ignoreNullUpdates) the upserts of one version all carry the
  // version's values, so the state keeps only (keys, __seq, __kind, __ts): an event's values are
  // those of the target version holding its sequence. A state created with data columns keeps them.
  // The state's columns from its Delta schema (no scan).
  const stateHas = c.stateColumns ? new Set(c.stateColumns) : null;
  const allTracked = c.tracked.length === nonKeys.length && !c.ignoreNull;
  const slim = allTracked && (!stateHas || nonKeys.every((n) => !stateHas.has(n)));
  const stateColumns = [...keys, ...(slim ? [] : nonKeys), '__seq', '__kind', '__ts'];
  // Only the batch's keys are read from the state (a semi-join on them), so a batch costs in
  // proportion to its keys, not to the state. A key whose latest applied event is a delete older
  // than the tombstone threshold is collected before the batch applies (its state rows are
  // dropped, the batch starts a fresh history for it), whatever batch touches it first; untouched
  // expired keys are removed by a whole-state pass every FULL_GC_EVERY batches (storage only: the
  // result of a batch never depends on when that pass ran).
  let st: string | null = null;
  let stAll: string | null = null;
  // With every column tracked and a target to read current rows from, a key whose new events all
  // follow its applied ones needs none of its state rows (scd2Extend): the state is then first read
  // as one row per batch key, of which only the keys that need their rows are kept (stk: collected,
  // or with an event at or before their latest applied one, a late or re-delivered event; none in
  // the in-order case), and only their rows are read. Otherwise every state row of the batch's keys is read.
  const keyed = !!c.stateSql && slim && !c.targetEmpty;
  // (Null when no key needs its rows.)
  let stk: string | null = null;
  if (c.stateSql) {
    const stCols = stateColumns.map((x) => `s.${q(x)}`).join(', ');
    if (keyed) {
      const [t, n] = await c.tmpCounted('cdc_stk', `SELECT * FROM (
          SELECT ${keys.map((k) => `s.${q(k)}`).join(', ')}, max(s.__seq) AS __mx, any_value(b.__mn) AS __mn, ${expiredKey('s.', c.cutoff)} AS __gc
          FROM (${c.stateSql}) s JOIN (SELECT ${K.join(', ')}, min(__seq) AS __mn FROM ${evAll} WHERE __kind <> 'truncate' GROUP BY ALL) b ON ${eqOn(keys, 'b', 's')} GROUP BY ALL)
        WHERE __gc OR __mn <= __mx`);
      if (n) stk = t;
    }
    if (!keyed) {
      // (The batch's keys: read once, not materialised.)
      const bk = `(SELECT DISTINCT ${K.join(', ')} FROM ${evAll} WHERE __kind <> 'truncate')`;
      stAll = await tmp('cdc_st', `WITH s AS (SELECT ${stCols} FROM (${c.stateSql}) s JOIN ${bk} bk ON ${eqOn(keys, 'bk', 's')}),
        g AS (SELECT ${K.join(', ')} FROM s GROUP BY ALL HAVING ${expiredKey('', c.cutoff)})
        SELECT s.*, EXISTS (SELECT 1 FROM g WHERE ${eqOn(keys, 'g', 's')}) AS __gc FROM s`);
    } else if (stk) stAll = await tmp('cdc_st', `SELECT ${stCols}, k.__gc FROM (${c.stateSql}) s JOIN ${stk} k ON ${eqOn(keys, 'k', 's')}`);
    if (stAll) st = `(SELECT ${stateColumns.map(q).join(', ')} FROM ${stAll} WHERE NOT __gc)`;
  }
  // New events: not applied before (re-deliveries of a (key, sequence) change nothing).
  // (Type 2 has no truncates; without a state every event is new and the batch is read in place.)
  const nev = st
    ? await tmp('cdc_nev', `SELECT e.* FROM ${evAll} e WHERE e.__kind <> 'truncate'
    AND NOT EXISTS (SELECT 1 FROM ${st} s WHERE ${eqOn(keys, 'e', 's')} AND s.__seq = e.__seq)`)
    : keyed ? await tmp('cdc_nev', `SELECT * FROM ${evAll} WHERE __kind <> 'truncate'`) : evAll;
  const ak = st || !c.targetEmpty ? await tmp('cdc_ak', `SELECT DISTINCT ${K.join(', ')} FROM ${nev}`) : null;
  let tch: string | null;
  // No key needs its state rows: every new event follows its key's applied ones.
  if (ak && keyed && !stAll) tch = await scd2Extend(c, ak, nev);
  else if (ak && keyed) {
    // Keys whose new events all come after every applied event of theirs (the common, in-order
    // case) only extend their history: their current target row is all they read (scd2Extend).
    // The other keys (a late event falls inside their history) are recomputed in full.
    // (stk holds only keys that need their state rows; a key it does not hold is in order. A
    // re-delivered event is not in nev: a key whose only early event was one is in order too.)
    const [fk, nf] = await c.tmpCounted('cdc_fk', `SELECT ${keys.map((k) => `n.${q(k)}`).join(', ')} FROM (SELECT ${K.join(', ')}, min(__seq) AS __mn FROM ${nev} GROUP BY ALL) n
      LEFT JOIN ${stk} s ON ${eqOn(keys, 'n', 's')} WHERE s.__mx IS NULL OR s.__gc OR n.__mn > s.__mx`);
    const [sk, ns] = await c.tmpCounted('cdc_sk', `SELECT * FROM ${ak} EXCEPT SELECT * FROM ${fk}`);
    const nevOf = (keySet: string): string => `(SELECT e.* FROM ${nev} e SEMI JOIN ${keySet} k ON ${eqOn(keys, 'e', 'k')})`;
    const fast = nf ? await scd2Extend(c, fk, ns ? nevOf(fk) : nev) : null;
    const slow = ns ? await scd2Diff(c, sk, st, nf ? nevOf(sk) : nev, slim, allTracked) : null;
    tch = fast && slow ? await tmp('cdc_tch', `SELECT * FROM ${fast} UNION ALL SELECT * FROM ${slow}`) : (fast ?? slow ?? (await scd2Diff(c, ak, st, nev, slim, allTracked)));
  } else tch = await scd2Diff(c, ak, st, nev, slim, allTracked);
  if (tch === null) return null;
  return { tch, sch: await scd2State(c, stAll, nev, stateColumns, slim), stateColumns };
}

/** Every FULL_GC_EVERY-th batch (by batchId) also collects the expired tombstones of keys it does not touch. */
export const FULL_GC_EVERY = 16;

/** Per key of SCD 2 state rows (columns prefixed `a`): the key is collected, its latest applied event a delete older than `cutoff`. */
const expiredKey = (a: string, cutoff: number): string => `(arg_max(${a}__kind, ${a}__seq) = 'delete' AND arg_max(${a}__ts, ${a}__seq) < ${cutoff})`;

/**
 * The history of the events `all` (data columns, __seq, __kind, then the `extra` columns, carried
 * from each version's first event), materialised as `wrap(history)`. Columns: data columns,
 * __START_AT, __END_AT, [__dup with foldDup], [__drop], `extra`.
 */
async function scd2History(c: Ctx, all: string, extra: string[], allTracked: boolean, prefix: string, wrap: (h: string) => string): Promise<string> {
  const { keys, nonKeys, tmp } = c;
  const K = keys.map(q);
  const dataCols = [...keys, ...nonKeys].map(q).join(', ');
  const ex = extra.map((x) => `, ${q(x)}`).join('');
  const part = `PARTITION BY ${K.join(', ')}`;
  let histSql: string;
  /**
   * With every column tracked, the history in one window pass: each upsert starts a version that
   * ends at the next event. That is the history when no upsert repeats the values of the upsert
   * before it (which starts no version, so the version before it must end later): such an upsert is
   * flagged `__drop` by a hash of its values (equal values, equal hashes: no flag, no such upsert),
   * and any flag makes the caller recompute with histSql's two passes.
   */
  let oneSql: string | null = null;
  if (allTracked && nonKeys.length) {
    oneSql = `SELECT ${dataCols}, __seq AS "__START_AT", __next AS "__END_AT"${c.foldDup ? ', __dup' : ''}, __drop${ex} FROM (
        SELECT *, lead(__seq) OVER w AS __next, (__kind = 'upsert' AND lag(__kind) OVER w = 'upsert' AND lag(__h) OVER w = __h) AS __drop${c.foldDup ? ', coalesce(lag(__seq) OVER w = __seq, false) AS __dup' : ''}
        FROM (SELECT *, hash(${nonKeys.map(q).join(', ')}) AS __h FROM (${all})) WINDOW w AS (${part} ORDER BY __seq))
      WHERE __kind = 'upsert'${c.foldDup ? ' OR __dup' : ''}`;
  }
  if (allTracked) {
    // A version starts at an upsert after nothing, after a delete, or with different values; it ends
    // at the next such boundary (the next version or a delete).
    const differs = nonKeys.length ? nonKeys.map((n, i) => `${q(n)} IS DISTINCT FROM __p${i}`).join(' OR ') : 'false';
    // foldDup: a row whose sequence equals the previous row's is a repeated (key, sequence); it is
    // kept through both filters, flagged, and the caller discards this result when any is flagged.
    const dupSel = c.foldDup ? ', __dup' : '';
    histSql = `SELECT ${dataCols}, "__START_AT", "__END_AT"${dupSel}${ex} FROM (
        SELECT *, __seq AS "__START_AT", lead(__seq) OVER (${part} ORDER BY __seq) AS "__END_AT" FROM (
          SELECT * FROM (SELECT *, lag(__kind) OVER w AS __pk${nonKeys.map((n, i) => `, lag(${q(n)}) OVER w AS __p${i}`).join('')}${c.foldDup ? ', coalesce(lag(__seq) OVER w = __seq, false) AS __dup' : ''} FROM (${all}) WINDOW w AS (${part} ORDER BY __seq))
          WHERE __kind = 'delete' OR __pk IS NULL OR __pk = 'delete' OR ${differs}${c.foldDup ? ' OR __dup' : ''}))
      WHERE __kind = 'upsert'${c.foldDup ? ' OR __dup' : ''}`;
  } else {
    if (extra.length) throw new Error('AUTO CDC: extra history columns need every column tracked');
    const eff = nonKeys.map((n) =>
      c.ignoreNull
        ? `last_value(CASE WHEN __kind = 'upsert' THEN ${q(n)} END IGNORE NULLS) OVER (${part}, __seg ORDER BY __seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ${q(n)}`
        : q(n),
    );
    const trackedPack = c.tracked.length ? `struct_pack(${c.tracked.map((n) => `${q(n)} := ${q(n)}`).join(', ')})` : 'NULL::INTEGER';
    const lastPack = `struct_pack(__n := __next${nonKeys.map((n) => `, ${q(n)} := ${q(n)}`).join('')})`;
    histSql = `
    WITH a1 AS (SELECT *, sum(CASE WHEN __kind = 'delete' THEN 1 ELSE 0 END) OVER (${part} ORDER BY __seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __seg FROM (${all})),
    a2 AS (SELECT ${K.join(', ')}, __seq, __kind, __seg${eff.map((e) => `, ${e}`).join('')} FROM a1),
    a3 AS (SELECT *, ${trackedPack} AS __tp FROM a2),
    a4 AS (SELECT *, lag(__kind) OVER w AS __pk, lag(__tp) OVER w AS __ptp, lead(__seq) OVER w AS __next FROM a3 WINDOW w AS (${part} ORDER BY __seq)),
    a5 AS (SELECT *, CASE WHEN __kind = 'upsert' AND (__pk IS NULL OR __pk = 'delete' OR __tp IS DISTINCT FROM __ptp) THEN 1 ELSE 0 END AS __new FROM a4),
    a6 AS (SELECT *, sum(__new) OVER (${part} ORDER BY __seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __ver FROM a5),
    v AS (SELECT ${K.join(', ')}, __ver, min(__seq) AS __start, arg_max(${lastPack}, __seq) AS __last FROM a6 WHERE __kind = 'upsert' GROUP BY ${[...K, '__ver'].join(', ')})
    SELECT ${K.join(', ')}${nonKeys.map((n) => `, struct_extract(__last, ${sqlStr(n)}) AS ${q(n)}`).join('')}, __start AS "__START_AT", struct_extract(__last, '__n') AS "__END_AT" FROM v`;
  }
  // The one-pass history, unless an upsert repeated its predecessor's values.
  if (oneSql) {
    const t = await tmp(prefix, wrap(oneSql));
    if (!(await c.floe.engine.allJson(`SELECT 1 AS x FROM ${t} WHERE __drop LIMIT 1`)).length) return t;
  }
  return tmp(prefix, wrap(histSql));
}

/**
 * (Re)computes the history of the affected keys `ak` from their applied events (state) and new
 * events `nev`, then diffs it with their target rows.
 */
async function scd2Diff(c: Ctx, ak: string | null, st: string | null, nev: string, slim: boolean, allTracked: boolean): Promise<string | null> {
  const { keys, nonKeys } = c;
  const K = keys.map(q);
  const dataCols = [...keys, ...nonKeys].map(q).join(', ');
  // An inner join with the (distinct) affected keys, not EXISTS: DuckDB then pushes the keys' range
  // into the target scan (row groups outside it are skipped).
  const old = ak && !c.targetEmpty ? await c.tmp('cdc_old', `SELECT t.* FROM (${c.targetPos ?? c.targetSql}) t JOIN ${ak} ak ON ${eqOn(keys, 'ak', 't')}`) : null;
  let stateEvents = '';
  if (st && ak) {
    const inAk = `EXISTS (SELECT 1 FROM ${ak} ak WHERE ${eqOn(keys, 'ak', 's')})`;
    if (slim && old) {
      // Each state event's values: those of the target version holding its sequence, the latest
      // version starting at or before it (an ASOF join; a delete's values are never read).
      stateEvents = 'SELECT * FROM ' + await c.tmp('cdc_sev', `SELECT ${keys.map((k) => `s.${q(k)}`).join(', ')}${nonKeys.map((n) => `, o.${q(n)}`).join('')}, s.__seq, s.__kind
            FROM (SELECT * FROM ${st} s WHERE ${inAk}) s ASOF LEFT JOIN ${old} o ON ${eqOn(keys, 's', 'o')} AND s.__seq >= o."__START_AT"`);
    } else if (slim) stateEvents = `SELECT ${keys.map((k) => `s.${q(k)}`).join(', ')}${nonKeys.map((n) => `, NULL AS ${q(n)}`).join('')}, s.__seq, s.__kind FROM ${st} s WHERE ${inAk}`;
    else stateEvents = `SELECT ${dataCols}, __seq, __kind FROM ${st} s WHERE ${inAk}`;
  }
  const all = stateEvents ? `SELECT ${dataCols}, __seq, __kind FROM (${stateEvents}) UNION ALL SELECT ${dataCols}, __seq, __kind FROM ${nev}` : `SELECT ${dataCols}, __seq, __kind FROM ${nev}`;
  const outCols = c.outCols;
  // An empty target: the history is the change.
  if (!old) {
    // (__op, a constant, is added by the view: each materialised column costs per row.)
    const tch = await scd2History(c, all, [], allTracked, 'cdc_tch', (h) => h);
    if (c.foldDup && allTracked && (await c.floe.engine.allJson(`SELECT 1 AS x FROM ${tch} WHERE __dup LIMIT 1`)).length) return null;
    return `(SELECT ${outCols.map(q).join(', ')}, 'upsert' AS __op FROM ${tch})`;
  }
  const hist = await scd2History(c, all, [], allTracked, 'cdc_hist', (h) => h);
  // The earliest known event per key: target rows that start before it (history kept after a
  // tombstone GC) are left alone.
  const floor = `(SELECT ${K.join(', ')}, min(__seq) AS __floor FROM (${all}) GROUP BY ALL)`;
  const changed = [...nonKeys, '__END_AT'].map((n) => `h.${q(n)} IS DISTINCT FROM o.${q(n)}`).join(' OR ');
  // By position: the old row's place and values.
  const pos = c.targetPos ? `, o.${FILE_ID} AS __tf, o.${ROW_INDEX} AS __tr${outCols.map((n, i) => `, o.${q(n)} AS __o${i}`).join('')}` : '';
  return c.tmp('cdc_tch', `
    SELECT ${outCols.map((n) => `h.${q(n)}`).join(', ')}, 'upsert' AS __op${pos}
    FROM ${hist} h LEFT JOIN ${old} o ON ${eqOn(keys, 'h', 'o')} AND o."__START_AT" = h."__START_AT"
    WHERE o."__START_AT" IS NULL OR ${changed}
    UNION ALL
    SELECT ${outCols.map((n) => `o.${q(n)}`).join(', ')}, 'delete' AS __op${pos}
    FROM ${old} o JOIN ${floor} f ON ${eqOn(keys, 'o', 'f')}
    WHERE o."__START_AT" >= f.__floor
      AND NOT EXISTS (SELECT 1 FROM ${hist} h WHERE ${eqOn(keys, 'h', 'o')} AND h."__START_AT" = o."__START_AT")`);
}

/**
 * The target changes of keys `ak` whose new events `nev` all come after every applied event of
 * theirs (every column tracked). The versions before a key's current one cannot change, so its
 * current target row (if any) is all that is read: it stands in for the events that made it (an
 * upsert at its __START_AT with its values), flagged `__old` and carrying its position, and the new
 * events are placed after it in one history pass. That history is the change: every version not
 * `__old` is new, and the old row changes only when a new event closes it (its __END_AT set; its
 * values and __START_AT stay, so its pre-image is itself with __END_AT NULL). Nothing is deleted.
 */
async function scd2Extend(c: Ctx, ak: string, nev: string): Promise<string> {
  const { keys, nonKeys, outCols } = c;
  const dataCols = [...keys, ...nonKeys].map(q);
  const byPos = !!c.targetPos;
  const cur = `SELECT ${dataCols.map((n) => `t.${n}`).join(', ')}, t."__START_AT" AS __seq, 'upsert' AS __kind, true AS __old${byPos ? `, t.${FILE_ID} AS __tf, t.${ROW_INDEX} AS __tr` : ''}
    FROM (${c.targetPos ?? c.targetSql}) t JOIN ${ak} ak ON ${eqOn(keys, 'ak', 't')} WHERE t."__END_AT" IS NULL`;
  const all = `${cur} UNION ALL SELECT ${dataCols.join(', ')}, __seq, __kind, false${byPos ? ', NULL, NULL' : ''} FROM ${nev}`;
  const t = await scd2History(c, all, ['__old', ...(byPos ? ['__tf', '__tr'] : [])], true, 'cdc_tch', (h) => `SELECT * EXCLUDE (__old) FROM (${h}) WHERE NOT __old OR "__END_AT" IS NOT NULL`);
  // (The old row's values as the commit reads them: __o<i>, see PreparedBatch.positional.)
  const pre = byPos ? `, __tf, __tr${outCols.map((n, i) => `, ${n === '__END_AT' ? 'CASE WHEN false THEN "__END_AT" END' : q(n)} AS __o${i}`).join('')}` : '';
  return `(SELECT ${outCols.map(q).join(', ')}, 'upsert' AS __op${pre} FROM ${t})`;
}

async function scd2State(c: Ctx, stAll: string | null, nev: string, stateColumns: string[], slim: boolean): Promise<string> {
  const { keys, nonKeys, tmp } = c;
  const K = keys.map(q);
  const dataCols = [...keys, ...(slim ? [] : nonKeys)].map(q).join(', ');
  const added = `SELECT ${dataCols}, __seq, __kind, ${c.now}::BIGINT AS __ts, 'upsert' AS __op FROM ${nev}`;
  const full = c.fullGc && !!c.stateSql;
  // Read once, by the state's creating write or the append: no copy.
  if (!stAll && !full) return `(${added})`;
  const cols = stateColumns.map((x) => `s.${q(x)}`).join(', ');
  // The batch's expired keys (collected before the batch applied: stAll's __gc rows), and on a
  // full-GC batch every key not in the batch whose latest event is a delete applied before the
  // cutoff (the batch's own keys are collected through stAll or not expired).
  const others = full
    ? `UNION ALL SELECT ${cols}, 'delete' AS __op FROM (${c.stateSql}) s
       WHERE NOT EXISTS (SELECT 1 FROM ${c.evAll} b WHERE ${eqOn(keys, 'b', 's')})
         AND EXISTS (SELECT 1 FROM (SELECT ${K.join(', ')} FROM (${c.stateSql}) GROUP BY ALL
                                    HAVING ${expiredKey('', c.cutoff)}) g WHERE ${eqOn(keys, 'g', 's')})`
    : '';
  return tmp('cdc_sch', `${added}
    ${stAll ? `UNION ALL SELECT ${cols}, 'delete' AS __op FROM ${stAll} s WHERE __gc` : ''}
    ${others}`);
}

/** Step 2: the target commit (MERGE with txn (flowName, batchId)); skipped when the target already has the txn. */
export async function commitTargetStep(floe: Floe, p: PreparedBatch): Promise<{ skipped: boolean; version: number | null; upserted: number; deleted: number }> {
  const outCols = targetColumns(p.columns, p.scd);
  if (p.positional && !p.targetAlreadyCommitted) {
    // (Counts the changes in its own pass over them.)
    const r = await commitByPosition(floe, p, outCols);
    if (r) return r;
  }
  const counts = (await floe.engine.allJson(p.counts ?? `SELECT count(*) FILTER (WHERE __op = 'upsert') AS u, count(*) FILTER (WHERE __op = 'delete') AS d FROM ${p.tch}`))[0]!;
  const upserted = Number(counts.u);
  const deleted = Number(counts.d);
  if (p.targetAlreadyCommitted) return { skipped: true, version: null, upserted, deleted };
  // A new or empty target (the first batch, or after a truncate) takes a plain append: nothing to match.
  const existing = p.createTarget ? null : await floe.snapshot(p.opts.target);
  if (!existing || !existing.files.length) {
    const rows = upsertRows(p, outCols.map(q).join(', '));
    const { replace, ...create } = p.createTarget ?? {};
    const w = await floe.duckdbSql(existing ? `SELECT ${castToColumns(existing.schema, outCols)} FROM (${rows})` : rows)
      .write.delta(p.opts.target, { mode: replace ? 'overwrite' : 'append', ...(replace ? { overwriteSchema: true } : {}), txnAppId: p.opts.flowName, txnVersion: p.opts.batchId, ...create });
    return { skipped: w.skipped, version: w.version, upserted, deleted };
  }
  const on = targetMergeOn(p);
  const table = (await DeltaTable.forPath(floe, p.opts.target)).alias('t');
  const setCols = outCols.filter((c) => !p.keys.includes(c) && !(p.scd === 2 && c === '__START_AT'));
  const builder = table
    .merge(floe.duckdbSql(`SELECT * FROM ${p.tch}`).alias('s'), on)
    .whenMatchedDelete({ condition: "s.__op = 'delete'" });
  if (setCols.length) builder.whenMatchedUpdate({ set: Object.fromEntries(setCols.map((c) => [c, `s.${q(c)}`])) });
  builder.whenNotMatchedInsert({ condition: "s.__op = 'upsert'", values: Object.fromEntries(outCols.map((c) => [c, `s.${q(c)}`])) });
  const r = await withIdempotentTxn(p.opts.flowName, p.opts.batchId, () => builder.execute());
  return { skipped: r.version === null, version: r.version, upserted, deleted };
}

/** The target MERGE's condition: by key (and __START_AT for type 2). */
function targetMergeOn(p: PreparedBatch): string {
  return [...p.keys, ...(p.scd === 2 ? ['__START_AT'] : [])].map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ');
}

/**
 * The files a by-position commit removes and the rows it marks deleted: the touched files (ids in
 * `paths`) and `changed`'s positions (`SELECT f, r`). Each batch adds a small file; once
 * STATE_FOLD_FILES of them have piled up (smallFilesToFold) they are folded into the batch's new
 * file: every row of theirs is marked deleted (so each is removed whole) and `kept`, their rows the
 * batch does not change, is written again (null: no fold). So a flow's target and state keep few
 * files however many batches ran.
 */
function positionalRewrite(log: DeltaLog, snap: Snapshot, paths: string[], scan: string, cols: string, changed: string, touched: unknown[]): { removed: AddFile[]; deletedRows: string; kept: string | null } {
  const byPath = new Map(snap.files.map((f) => [dataFilePath(log.store, f.path), f]));
  const removed = touched.map((i) => byPath.get(paths[Number(i)]!)!);
  const idOf = new Map(paths.map((x, i) => [x, i]));
  const fold = smallFilesToFold(snap);
  const foldIds = fold.map((f) => idOf.get(dataFilePath(log.store, f.path))).filter((i) => i !== undefined);
  if (!foldIds.length) return { removed, deletedRows: changed, kept: null };
  for (const f of fold) if (!removed.some((x) => x.path === f.path)) removed.push(f);
  const inFold = `${FILE_ID} IN (${foldIds.join(', ')})`;
  return {
    removed,
    deletedRows: `${changed} UNION SELECT ${FILE_ID} AS f, ${ROW_INDEX} AS r FROM (${scan}) WHERE ${inFold}`,
    kept: `SELECT ${cols} FROM (${scan}) t WHERE ${inFold} AND NOT EXISTS (SELECT 1 FROM (${changed}) c WHERE c.f = t.${FILE_ID} AND c.r = t.${ROW_INDEX})`,
  };
}

/**
 * The operation metrics and parameters of a by-position commit, as the MERGE it stands for records
 * them (matched: delete when `s.__op = 'delete'`, else update; not matched: insert upserts).
 */
function mergeRecord(on: string, sourceRows: number, ins: number, upd: number, del: number, files: number): { metrics: Record<string, number>; params: Record<string, unknown> } {
  const metrics: Record<string, number> = {
    numSourceRows: sourceRows, numTargetRowsInserted: ins, numTargetRowsUpdated: upd, numTargetRowsMatchedUpdated: upd,
    numTargetRowsNotMatchedBySourceUpdated: 0, numTargetRowsDeleted: del, numTargetRowsMatchedDeleted: del, numTargetRowsNotMatchedBySourceDeleted: 0,
    numTargetRowsCopied: 0, numOutputRows: ins + upd, numTargetFilesScanned: files, numTargetFilesTotal: files,
  };
  const params = {
    predicate: on,
    matchedPredicates: JSON.stringify([{ predicate: "s.__op = 'delete'", actionType: 'delete' }, { actionType: 'update' }]),
    notMatchedPredicates: JSON.stringify([{ predicate: "s.__op = 'upsert'", actionType: 'insert' }]),
    notMatchedBySourcePredicates: '[]',
  };
  return { metrics, params };
}

/**
 * The target commit when `tch` located the old rows by position (PreparedBatch.positional): the
 * replaced and deleted rows are marked in deletion vectors, the new rows appended, and the change
 * feed written as floe's MERGE writes it (update pre/post images, inserts, deletes), in one commit
 * on the snapshot the rows were located in, recorded as a MERGE. Returns null (the caller MERGEs)
 * when one old row would be changed twice (a target written to outside the flow).
 */
async function commitByPosition(floe: Floe, p: PreparedBatch, outCols: string[]): Promise<{ skipped: boolean; version: number | null; upserted: number; deleted: number } | null> {
  const { snapshot: snap, paths, scan } = p.positional!;
  const eng = floe.engine;
  const [st] = await eng.allJson(`SELECT count(*) FILTER (WHERE __tf IS NOT NULL) AS n, count(DISTINCT (__tf, __tr)) FILTER (WHERE __tf IS NOT NULL) AS d,
      coalesce(list(DISTINCT __tf) FILTER (WHERE __tf IS NOT NULL), []) AS files,
      count(*) FILTER (WHERE __op = 'upsert' AND __tf IS NULL) AS ins, count(*) FILTER (WHERE __op = 'upsert' AND __tf IS NOT NULL) AS upd,
      count(*) FILTER (WHERE __op = 'delete') AS del FROM ${p.tch}`);
  if (Number(st!.n) !== Number(st!.d)) return null;
  const [ins, upd, del] = [Number(st!.ins), Number(st!.upd), Number(st!.del)];
  if (!ins && !upd && !del) return { skipped: false, version: null, upserted: 0, deleted: 0 };
  const log = floe.deltaLog(p.opts.target);
  const txn = new Transaction(log, snap);
  txn.readWhole();
  const cols = outCols.map(q).join(', ');
  const olds = outCols.map((n, i) => `__o${i} AS ${q(n)}`).join(', ');
  const { metrics, params } = mergeRecord(targetMergeOn(p), ins + upd + del, ins, upd, del, snap.files.length);
  // The change feed is the batch's alone (its cdc files), folded files or not.
  const { removed, deletedRows, kept } = positionalRewrite(log, snap, paths, scan, cols, `SELECT __tf AS f, __tr AS r FROM ${p.tch} WHERE __tf IS NOT NULL`, st!.files as unknown[]);
  if (kept) {
    metrics.numTargetRowsCopied = Number((await eng.allJson(`SELECT count(*) AS n FROM (${kept})`))[0]!.n);
    metrics.numOutputRows! += metrics.numTargetRowsCopied;
  }
  // (Change data files whenever files are removed: a commit removing files without them would read,
  // in the feed, as deleting and inserting their rows.)
  const cdcSql = cdfOnForWrites(snap) && removed.length
    ? `SELECT ${olds}, 'update_preimage' AS _change_type FROM ${p.tch} WHERE __op = 'upsert' AND __tf IS NOT NULL
      UNION ALL SELECT ${cols}, 'update_postimage' AS _change_type FROM ${p.tch} WHERE __op = 'upsert' AND __tf IS NOT NULL
      UNION ALL SELECT ${olds}, 'delete' AS _change_type FROM ${p.tch} WHERE __op = 'delete'
      UNION ALL SELECT ${cols}, 'insert' AS _change_type FROM ${p.tch} WHERE __op = 'upsert' AND __tf IS NULL`
    : null;
  // (Kept rows too are written closed versions first, current last: see upsertRows.)
  const newRows = upsertRows(p, cols, kept);
  // (Targets with constraints take the MERGE: see prepareApplyChanges.)
  const res = await withIdempotentTxn(p.opts.flowName, p.opts.batchId, () => commitRewrite(floe, {
    snapshot: snap, txn, removed, newDataSql: null, cdcSql, operation: 'MERGE', params, metrics,
    addedFilesMetric: 'numTargetFilesAdded', removedFilesMetric: 'numTargetFilesRemoved',
    dv: { deletedRowsSql: deletedRows, paths, newDataSql: newRows },
  }));
  return { skipped: res.version === null, version: res.version, upserted: ins + upd, deleted: del };
}

/**
 * The rows a batch writes to the target (with `kept`, rows of folded files written again). SCD 2
 * writes closed versions first and current ones last,
 * so current rows gather in the last row groups: a later batch's lookup of current rows
 * (`__END_AT IS NULL`) skips the row groups whose statistics say they have none.
 */
function upsertRows(p: PreparedBatch, cols: string, kept: string | null = null): string {
  const rows = kept ? `(SELECT ${cols} FROM ${p.tch} WHERE __op = 'upsert' UNION ALL ${kept})` : `(SELECT ${cols} FROM ${p.tch} WHERE __op = 'upsert')`;
  if (p.scd === 1) return `SELECT ${cols} FROM ${rows}`;
  return `SELECT ${cols} FROM ${rows} WHERE "__END_AT" IS NOT NULL UNION ALL SELECT ${cols} FROM ${rows} WHERE "__END_AT" IS NULL`;
}

/** Step 3: the state commit (by position, an append, or a MERGE; the creating write on the first batch; with txn (flowName, batchId)). */
export async function commitStateStep(floe: Floe, p: PreparedBatch): Promise<number | null> {
  const cols = p.stateColumns.map(q).join(', ');
  if (!(await floe.deltaLog(p.statePath).exists())) {
    // Deletion vectors: a batch's state changes are written alone, not by rewriting the state's files.
    const r = await floe.duckdbSql(`SELECT ${cols} FROM ${p.sch} WHERE __op = 'upsert'`).write.delta(p.statePath, { mode: 'append', txnAppId: p.opts.flowName, txnVersion: p.opts.batchId, properties: { 'delta.enableDeletionVectors': 'true', [PARQUET_VERSION_PROPERTY]: 'v2', [STATE_KEYS_PROPERTY]: JSON.stringify(p.keys) } });
    return r.version;
  }
  if (p.scd === 2 && !stateFilesToFold(p).length && !(await floe.engine.allJson(`SELECT 1 AS x FROM ${p.sch} WHERE __op = 'delete' LIMIT 1`)).length) {
    // Type 2 state rows are only ever added (new events) or collected: without collected rows the
    // commit is an append, which reads nothing of the state.
    // (Cast to the state's types, as the target commit casts to the target's: see checkBatchFits.)
    const r = await floe.duckdbSql(`SELECT ${castToColumns((p.statePositional?.snapshot ?? (await floe.snapshot(p.statePath))).schema, p.stateColumns)} FROM ${p.sch} WHERE __op = 'upsert'`).write.delta(p.statePath, { mode: 'append', txnAppId: p.opts.flowName, txnVersion: p.opts.batchId });
    return r.version;
  }
  const byPos = await commitStateByPosition(floe, p);
  if (byPos) return byPos.version;
  const src = floe.duckdbSql(`SELECT * FROM ${p.sch} WHERE __op <> 'skip'`).alias('s');
  const table = (await DeltaTable.forPath(floe, p.statePath)).alias('t');
  let builder;
  if (p.scd === 1) {
    // Key rows match by key (keys are never NULL there); truncate rows (slot 1, NULL keys) never
    // match, so they are inserted. Equalities only: the join stays a hash join.
    const on = `${p.keys.map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ')} AND t.__slot = s.__slot`;
    builder = table
      .merge(src, on)
      .whenMatchedDelete({ condition: "s.__op = 'delete'" })
      .whenMatchedUpdate({ set: Object.fromEntries(p.stateColumns.filter((c) => !p.keys.includes(c)).map((c) => [c, `s.${q(c)}`])) })
      .whenNotMatchedInsert({ condition: "s.__op = 'upsert'", values: Object.fromEntries(p.stateColumns.map((c) => [c, `s.${q(c)}`])) });
  } else {
    const on = `${p.keys.map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ')} AND t.__seq = s.__seq`;
    builder = table
      .merge(src, on)
      .whenMatchedDelete({ condition: "s.__op = 'delete'" })
      .whenNotMatchedInsert({ condition: "s.__op = 'upsert'", values: Object.fromEntries(p.stateColumns.map((c) => [c, `s.${q(c)}`])) });
  }
  const r = await withIdempotentTxn(p.opts.flowName, p.opts.batchId, () => builder.execute());
  return r.version;
}

/**
 * Small files (each batch appends one to the target and one to the state) are folded into a batch's
 * new file once there are STATE_FOLD_FILES of them, so the target and the state, read by every
 * batch, keep few files however many batches ran. Files under STATE_SMALL_FILE_BYTES count as small.
 */
export const STATE_FOLD_FILES = 32;
const STATE_SMALL_FILE_BYTES = 1024 * 1024;

/** The state files the state commit folds into its new file (none until there are STATE_FOLD_FILES small ones). */
function stateFilesToFold(p: PreparedBatch): AddFile[] {
  const snap = p.statePositional?.snapshot;
  return snap ? smallFilesToFold(snap) : [];
}

/** A by-position commit's files to fold (see STATE_FOLD_FILES): none until there are enough small ones. */
function smallFilesToFold(snap: Snapshot): AddFile[] {
  if (!dvWritesOn(snap) || snap.partitionColumns.length) return [];
  const files = snap.files;
  // Only files whose row count is known: they are removed as fully deleted (see commitStateByPosition).
  const small = files.filter((f) => f.size < STATE_SMALL_FILE_BYTES && parseStats(f.stats)?.numRecords !== undefined);
  return small.length >= STATE_FOLD_FILES ? small : [];
}

/**
 * The state commit by position (a state with deletion vectors, as AUTO CDC creates it): the state
 * rows the batch replaces or deletes (matched as the MERGE matches them: by key and slot for type 1,
 * by key and sequence for type 2) are located in the scan the batch read (PreparedBatch.statePositional)
 * and marked deleted in deletion vectors, and the batch's upserted rows are appended: the MERGE's
 * result (matched: delete or replace; not matched: insert the upserts) in one commit on the snapshot
 * the batch was computed from, with no copy of the changes and no second pass over them. Returns null
 * (the caller MERGEs) when the state has no deletion vectors, a change feed or constraints, or when a
 * state row would be matched twice or a change would match several rows (a state written outside AUTO CDC).
 * When small files have piled up (stateFilesToFold) it also folds them into its new file.
 */
async function commitStateByPosition(floe: Floe, p: PreparedBatch): Promise<{ version: number | null } | null> {
  const sp = p.statePositional;
  if (!sp) return null;
  const snap = sp.snapshot;
  if (cdfOnForWrites(snap) || snap.partitionColumns.length || !(await changeableByPosition(snap, p.stateColumns))) return null;
  checkCanModify(snap, 'MERGE');
  const eng = floe.engine;
  const on = [...p.keys.map((k) => `t.${q(k)} = s.${q(k)}`), p.scd === 1 ? 't.__slot = s.__slot' : 't.__seq = s.__seq'].join(' AND ');
  // The matched rows' positions (few: one per changed key), with the change each meets.
  // Positions found while computing the changes (PreparedBatch.stateCarried: a view of them, one
  // change per row), or by a join of the state with the changes (materialised, numbered).
  let m: string;
  if (p.stateCarried) m = `(SELECT __sf AS f, __sr AS r, __op AS op FROM ${p.sch} WHERE __op <> 'skip' AND __sf IS NOT NULL)`;
  else {
    m = eng.uniqueName('cdc_spos');
    await eng.run(`CREATE TEMP TABLE ${m} AS SELECT t.${FILE_ID} AS f, t.${ROW_INDEX} AS r, s.__sid AS sid, s.__op AS op
    FROM (${sp.scan}) t JOIN (SELECT *, row_number() OVER () AS __sid FROM ${p.sch} WHERE __op <> 'skip') s ON ${on}`);
    p.temps.push(m);
  }
  // (Carried positions: a key with two changes means two state rows for it, which AUTO CDC never writes.)
  const keyReps = p.stateCarried ? `(SELECT count(*) - count(DISTINCT (${p.keys.map(q).join(', ')})) FROM ${p.sch})` : '0';
  const [st] = await eng.allJson(`SELECT count(*) AS n, count(DISTINCT (f, r)) AS dr, ${p.stateCarried ? 'count(*)' : 'count(DISTINCT sid)'} AS ds,
      coalesce(list(DISTINCT f), []) AS files, count(*) FILTER (WHERE op = 'upsert') AS upd, count(*) FILTER (WHERE op = 'delete') AS del,
      (SELECT count(*) FROM ${p.sch} WHERE __op = 'upsert') AS ups, ${keyReps} AS kr FROM ${m}`);
  const [n, upd, del, ups] = [Number(st!.n), Number(st!.upd), Number(st!.del), Number(st!.ups)];
  if (n !== Number(st!.dr) || n !== Number(st!.ds) || Number(st!.kr) !== 0) return null;
  const ins = ups - upd;
  if (!ins && !upd && !del) return { version: null };
  const log = floe.deltaLog(p.statePath);
  const cols = p.stateColumns.map(q).join(', ');
  const { removed, deletedRows, kept } = positionalRewrite(log, snap, sp.paths, sp.scan, cols, `SELECT f, r FROM ${m}`, st!.files as unknown[]);
  const txn = new Transaction(log, snap);
  txn.readWhole();
  const { metrics, params } = mergeRecord(on, ups + del, ins, upd, del, snap.files.length);
  const upserts = `SELECT ${cols} FROM ${p.sch} WHERE __op = 'upsert'`;
  const newRows = kept ? `${upserts} UNION ALL ${kept}` : ups ? upserts : null;
  const res = await withIdempotentTxn(p.opts.flowName, p.opts.batchId, () => commitRewrite(floe, {
    snapshot: snap, txn, removed, newDataSql: newRows, cdcSql: null, operation: 'MERGE', params, metrics,
    addedFilesMetric: 'numTargetFilesAdded', removedFilesMetric: 'numTargetFilesRemoved',
    ...(removed.length ? { dv: { deletedRowsSql: deletedRows, paths: sp.paths, newDataSql: newRows } } : {}),
  }));
  return { version: res.version };
}

export interface ApplyChangesFromSnapshotOptions {
  target: string;
  /** The full snapshot: one row per key. */
  snapshot: DataFrame;
  /** The snapshot's version: increasing from one snapshot to the next; the sequence of its changes. */
  snapshotVersion: number | bigint | string | Date;
  keys: string[];
  storedAsScdType?: 1 | 2;
  trackHistoryColumnList?: string[];
  trackHistoryExceptColumnList?: string[];
  columnList?: string[];
  exceptColumnList?: string[];
  flowName: string;
  /** The txn version of this snapshot's commits; defaults to snapshotVersion when it is an integer. */
  batchId?: number;
  tableProperties?: Record<string, string>;
  /** Partition columns of a target this call creates. */
  partitionBy?: string[];
  /** The description (comment) of a target this call creates. */
  comment?: string;
}

function versionLiteral(v: number | bigint | string | Date): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new InvalidArgumentError(`snapshotVersion must be finite, got ${v}.`, {}, 'INVALID_SNAPSHOT_VERSION');
    return Number.isInteger(v) ? `${v}::BIGINT` : `${v}::DOUBLE`;
  }
  if (typeof v === 'bigint') return `${v}::BIGINT`;
  if (v instanceof Date) return `TIMESTAMPTZ ${sqlStr(v.toISOString())}`;
  return sqlStr(v);
}

/**
 * AUTO CDC FROM SNAPSHOT (`create_auto_cdc_from_snapshot_flow`): diffs a full snapshot against the
 * target by key. Keys new in the snapshot are inserted, keys whose values changed are updated (SCD 2:
 * a new version when a tracked column changed, in place otherwise), keys present in the target but
 * absent from the snapshot are deleted (SCD 2: their current version closes at the snapshot version).
 * Rows are sequenced by the snapshot version (`__START_AT` / `__END_AT` take its type).
 */
export async function applyChangesFromSnapshot(floe: Floe, opts: ApplyChangesFromSnapshotOptions): Promise<ApplyChangesResult> {
  // The target's scan (its deletion vectors loaded into engine tables) lives as long as the call.
  return floe.withTempScope(() => applySnapshot(floe, opts));
}

async function applySnapshot(floe: Floe, opts: ApplyChangesFromSnapshotOptions): Promise<ApplyChangesResult> {
  if (opts.snapshotVersion === null || opts.snapshotVersion === undefined) throw new InvalidArgumentError('snapshotVersion is required.', {}, 'NULL_SNAPSHOT_VERSION');
  const scd = opts.storedAsScdType ?? 1;
  const batchId = opts.batchId ?? (typeof opts.snapshotVersion === 'number' && Number.isInteger(opts.snapshotVersion) ? opts.snapshotVersion : typeof opts.snapshotVersion === 'bigint' ? Number(opts.snapshotVersion) : undefined);
  if (batchId === undefined) throw new InvalidArgumentError('batchId is required when snapshotVersion is not an integer.');
  const snapSql = await opts.snapshot.toSQL();
  const srcCols = (await floe.engine.describe(snapSql)).map((c) => c.name);
  const keys = opts.keys.map((k) => resolveName(srcCols, k, 'keys'));
  for (const c of ['__snapshot_version', '__snapshot_delete']) if (srcCols.includes(c)) throw new InvalidArgumentError(`The snapshot has a reserved column '${c}'.`);
  const K = keys.map(q).join(', ');
  const dupRows = await floe.engine.allJson(`SELECT ${K}, count(*) AS n FROM (${snapSql}) GROUP BY ALL HAVING count(*) > 1 LIMIT 1`);
  if (dupRows.length) {
    throw new FloeError('DUPLICATE_KEY_VIOLATION', `The snapshot for ${opts.target} (version ${String(opts.snapshotVersion)}) has ${String(dupRows[0]!.n)} rows for key (${keys.map((k) => `${k}=${JSON.stringify(dupRows[0]![k])}`).join(', ')}); a snapshot must have at most one row per key.`, { key: dupRows[0] });
  }
  const ver = versionLiteral(opts.snapshotVersion);
  // Snapshots come in increasing versions: one at or before the last applied (that is not a rerun of
  // an applied batch, which applyChanges skips) would rewrite history out of order.
  const stateLog = floe.deltaLog(statePathOf(opts.target));
  const stateSnap = await snapshotOrNull(stateLog);
  if (stateSnap && (stateSnap.txnVersion(opts.flowName) ?? -1) < batchId) {
    const cols = stateSnap.schema.fields.map((f) => f.name).filter((n) => ['__seq', '__upsert_seq', '__delete_seq'].includes(n));
    if (cols.length) {
      const plan = await planScan(floe.engine, stateLog.store, stateSnap);
      floe.track(plan.tables);
      const latest = cols.length === 1 ? `max(${q(cols[0]!)})` : `greatest(${cols.map((c) => `max(${q(c)})`).join(', ')})`;
      const [r] = await floe.engine.allJson(`SELECT CAST(l AS VARCHAR) AS last, coalesce(l >= ${ver}, false) AS stale FROM (SELECT ${latest} AS l FROM (${plan.sql}))`);
      if (r?.stale === true) {
        throw new FloeError('INVALID_SNAPSHOT_VERSION', `The snapshot for ${opts.target} has version ${String(opts.snapshotVersion instanceof Date ? opts.snapshotVersion.toISOString() : opts.snapshotVersion)}, not after the last applied version ${String(r.last)}. Snapshots must come in increasing versions; nothing was committed.`, { target: opts.target, version: String(opts.snapshotVersion), last: r.last });
      }
    }
  }
  // Live keys of the target that the snapshot lacks become delete events.
  let deletes = '';
  if (await floe.deltaLog(opts.target).exists()) {
    const tsql = await (await floe.read.delta(opts.target)).toSQL();
    const live = scd === 2 ? `SELECT ${K} FROM (${tsql}) WHERE "__END_AT" IS NULL` : `SELECT DISTINCT ${K} FROM (${tsql})`;
    deletes = ` UNION ALL BY NAME SELECT ${keys.map((k) => `l.${q(k)}`).join(', ')}, ${ver} AS __snapshot_version, true AS __snapshot_delete FROM (${live}) l
      WHERE NOT EXISTS (SELECT 1 FROM (${snapSql}) s WHERE ${eqOn(keys, 's', 'l')})`;
  }
  const events = floe.duckdbSql(`SELECT *, ${ver} AS __snapshot_version, false AS __snapshot_delete FROM (${snapSql})${deletes}`);
  const except = [...(opts.exceptColumnList ?? []), '__snapshot_version', '__snapshot_delete'];
  return applyChanges(floe, {
    target: opts.target,
    source: events,
    keys,
    sequenceBy: '__snapshot_version',
    storedAsScdType: scd,
    applyAsDeletes: '__snapshot_delete',
    columnList: opts.columnList,
    exceptColumnList: opts.columnList ? undefined : except,
    trackHistoryColumnList: opts.trackHistoryColumnList,
    trackHistoryExceptColumnList: opts.trackHistoryExceptColumnList,
    flowName: opts.flowName,
    batchId,
    tableProperties: opts.tableProperties,
    partitionBy: opts.partitionBy,
    comment: opts.comment,
  });
}
