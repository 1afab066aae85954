/**
 * The change data feed, read side (PROTOCOL.md "Change Data Files", Spark's CDCReader): which
 * versions a request covers, whether the feed was recorded for all of them, and which file changes
 * each version contributes. Pure over commit batches; the engine turns the plan into a query.
 */
import { FloeError, InvalidArgumentError } from '../errors.js';
import type { ActionBatch, DeletionVectorDescriptor, Metadata } from './actions.js';
import { type DataType, parseSchema, physicalName, type StructType } from './schema.js';
import { canUpcast } from '../table/schema-evolution.js';

export interface ChangeFeedOptions {
  startingVersion?: number;
  /** Inclusive: the first version committed at or after this instant. */
  startingTimestamp?: Date | number | string;
  endingVersion?: number;
  /** Inclusive: the last version committed at or before this instant. */
  endingTimestamp?: Date | number | string;
  /** Out-of-range bounds give an empty feed instead of an error (Spark's timestampOutOfRange setting). */
  allowOutOfRange?: boolean;
}

/** How one file contributes rows to a version's changes. */
export type ChangeMode =
  /** a `cdc` file: every row, change type from its `_change_type` column */
  | 'cdc'
  /** an added file: rows not in its deletion vector are inserts */
  | 'insert'
  /** a removed file: rows not in its deletion vector (at removal) are deletes */
  | 'delete'
  /** the same path removed and re-added with another DV: rows newly in the DV are deletes, rows leaving it are inserts */
  | 'dv-diff';

export interface FileChange {
  version: number;
  timestamp: number;
  mode: ChangeMode;
  path: string;
  partitionValues: Record<string, string | null>;
  /** DV of the added file (insert, dv-diff). */
  addDv?: DeletionVectorDescriptor | null;
  /** DV of the removed file (delete, dv-diff). */
  removeDv?: DeletionVectorDescriptor | null;
}

/** Spark's rule: a version with cdc actions contributes only them; else dataChange adds and removes. */
export function versionChanges(version: number, timestamp: number, batch: ActionBatch): FileChange[] {
  if (batch.cdcs.length) {
    return batch.cdcs.map((c) => ({ version, timestamp, mode: 'cdc' as const, path: c.path, partitionValues: c.partitionValues ?? {} }));
  }
  // A MERGE that changed no row (Spark may still rewrite files, with dataChange) has no changes:
  // Spark skips such a commit by its metrics (CDCReader shouldSkipFileActionsInCommit).
  const ci = batch.commitInfo;
  if (ci?.operation === 'MERGE' && ci.operationMetrics && typeof ci.operationMetrics === 'object') {
    const m = ci.operationMetrics as Record<string, unknown>;
    const zero = (k: string): boolean => m[k] !== undefined && Number(m[k]) === 0;
    if (zero('numTargetRowsInserted') && zero('numTargetRowsUpdated') && zero('numTargetRowsDeleted')) return [];
  }
  const out: FileChange[] = [];
  const adds = batch.adds.filter((a) => a.dataChange !== false);
  const removes = batch.removes.filter((r) => r.dataChange !== false);
  const removedByPath = new Map(removes.map((r) => [r.path, r]));
  const paired = new Set<string>();
  for (const a of adds) {
    const r = removedByPath.get(a.path);
    if (r) {
      paired.add(a.path);
      out.push({ version, timestamp, mode: 'dv-diff', path: a.path, partitionValues: a.partitionValues, addDv: a.deletionVector ?? null, removeDv: r.deletionVector ?? null });
    } else {
      out.push({ version, timestamp, mode: 'insert', path: a.path, partitionValues: a.partitionValues, addDv: a.deletionVector ?? null });
    }
  }
  for (const r of removes) {
    if (paired.has(r.path)) continue;
    out.push({ version, timestamp, mode: 'delete', path: r.path, partitionValues: r.partitionValues ?? partitionValuesFromPath(r.path), removeDv: r.deletionVector ?? null });
  }
  return out;
}

/** Hive-style `col=value/` folders, for removes written without partitionValues. */
export function partitionValuesFromPath(p: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const seg of p.split('/').slice(0, -1)) {
    const i = seg.indexOf('=');
    if (i <= 0) continue;
    const v = decodeURIComponent(decodeURIComponent(seg.slice(i + 1)));
    out[decodeURIComponent(seg.slice(0, i))] = v === '__HIVE_DEFAULT_PARTITION__' ? null : v;
  }
  return out;
}

/** The columns the change data feed adds to its rows; a table with the feed on cannot have columns so named (case-insensitive). */
export const CDF_COLUMNS = ['_change_type', '_commit_version', '_commit_timestamp'] as const;

/** Is `name` one of CDF_COLUMNS (case-insensitive)? */
export function isCdfColumn(name: string): boolean {
  return (CDF_COLUMNS as readonly string[]).includes(name.toLowerCase());
}

export function cdfEnabled(m: Metadata): boolean {
  return (m.configuration['delta.enableChangeDataFeed'] ?? '').toLowerCase() === 'true';
}

export function missingChangeData(table: string, version: number): FloeError {
  return new FloeError(
    'DELTA_MISSING_CHANGE_DATA',
    `Error getting change data for range [${version}] of ${table}: change data was not recorded for version ${version}. Enable the change data feed with ALTER TABLE … SET TBLPROPERTIES (delta.enableChangeDataFeed = true); only changes made after that are recorded, so read from a later version.`,
    { table, version },
  );
}

/**
 * Checks that the feed can be read across [start, end]: recorded at the start version and by every
 * metaData in the range, and every schema in the range readable as the end's (Spark's
 * isReadCompatible, for every table): between one schema and the next, no column dropped (with column
 * mapping, none renamed) and no type changed other than by widening. Files are read with the end's
 * schema, so such a change would silently drop or convert values.
 */
export function checkRange(table: string, startMetadata: Metadata, batches: { version: number; batch: ActionBatch }[], _endSchema: StructType): void {
  if (!cdfEnabled(startMetadata)) throw missingChangeData(table, batches[0]?.version ?? 0);
  const startVersion = batches[0]?.version ?? 0;
  let prev = parseSchema(startMetadata.schemaString);
  for (const { version, batch } of batches) {
    if (!batch.metaData) continue;
    if (!cdfEnabled(batch.metaData)) throw missingChangeData(table, version);
    if (version === startVersion) continue; // (its schema is the start's)
    const next = parseSchema(batch.metaData.schemaString);
    const byPhysical = new Map(next.fields.map((f) => [physicalName(f).toLowerCase(), f]));
    for (const f of prev.fields) {
      const now = byPhysical.get(physicalName(f).toLowerCase());
      const what = now === undefined ? 'dropped'
        : now.name.toLowerCase() !== f.name.toLowerCase() ? `renamed to '${now.name}'`
          : !canUpcast(f.type, now.type) ? `changed from ${typeText(f.type)} to ${typeText(now.type)}`
            : null;
      if (what) {
        throw new FloeError(
          'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE',
          `Cannot read the change data feed of ${table} across version ${version}: column '${f.name}' was ${what} there, and the feed is read with one schema. Read versions up to ${version - 1} and from ${version} on as two reads.`,
          { table, version, column: f.name },
        );
      }
    }
    prev = next;
  }
}

const typeText = (t: DataType): string => (typeof t === 'string' ? t : t.type);

/** Resolved version range, or null for an empty feed. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/**
 * Resolves options to versions. `timestamps` maps every version in the log to its commit timestamp
 * (needed only when a bound is a timestamp).
 */
export function resolveRange(
  table: string,
  latest: number,
  options: ChangeFeedOptions,
  parsedStart: number | undefined,
  parsedEnd: number | undefined,
  timestamps: { version: number; timestamp: number }[] | null,
): ResolvedRange | null {
  const { startingVersion, endingVersion } = options;
  if (startingVersion !== undefined && options.startingTimestamp !== undefined) throw new InvalidArgumentError('Give startingVersion or startingTimestamp, not both.', {}, 'DELTA_MULTIPLE_CDC_BOUNDARY');
  if (endingVersion !== undefined && options.endingTimestamp !== undefined) throw new InvalidArgumentError('Give endingVersion or endingTimestamp, not both.', {}, 'DELTA_MULTIPLE_CDC_BOUNDARY');
  if (startingVersion === undefined && options.startingTimestamp === undefined) {
    throw new InvalidArgumentError('Reading the change data feed needs a start: startingVersion or startingTimestamp.', {}, 'DELTA_NO_START_FOR_CDC_READ');
  }
  for (const [n, v] of [['startingVersion', startingVersion], ['endingVersion', endingVersion]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new InvalidArgumentError(`${n} must be a non-negative integer, got ${typeof v === 'string' ? `'${v}'` : String(v)}${typeof v !== 'number' && typeof v !== 'string' ? ` (${typeof v})` : ''}.`);
  }
  let start: number;
  if (startingVersion !== undefined) {
    start = startingVersion;
    if (start > latest) {
      if (options.allowOutOfRange) return null;
      throw new FloeError('DELTA_CDC_START_VERSION_AFTER_LATEST', `startingVersion ${start} is after the latest version ${latest} of ${table}. Start at or before ${latest}.`, { table, start, latest });
    }
  } else {
    const ts = parsedStart!;
    const after = timestamps!.find((c) => c.timestamp >= ts);
    if (!after) {
      if (options.allowOutOfRange) return null;
      const last = timestamps![timestamps!.length - 1];
      throw new FloeError('DELTA_TIMESTAMP_GREATER_THAN_COMMIT', `startingTimestamp ${new Date(ts).toISOString()} is after the last commit of ${table}${last ? ` (version ${last.version} at ${new Date(last.timestamp).toISOString()})` : ''}.`, { table, timestamp: ts });
    }
    start = after.version;
  }
  let end = latest;
  if (endingVersion !== undefined) end = Math.min(endingVersion, latest);
  else if (options.endingTimestamp !== undefined) {
    const ts = parsedEnd!;
    const last = timestamps![timestamps!.length - 1];
    if (last && ts > last.timestamp && !options.allowOutOfRange) {
      throw new FloeError('DELTA_TIMESTAMP_GREATER_THAN_COMMIT', `endingTimestamp ${new Date(ts).toISOString()} is after the last commit of ${table} (version ${last.version} at ${new Date(last.timestamp).toISOString()}). Use a timestamp at or before it, or allowOutOfRange to read up to the latest version.`, { table, timestamp: ts });
    }
    const before = [...timestamps!].reverse().find((c) => c.timestamp <= ts);
    if (!before) {
      if (options.allowOutOfRange) return null;
      throw new FloeError('DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION', `endingTimestamp ${new Date(ts).toISOString()} is before the first available commit of ${table}.`, { table, timestamp: ts });
    }
    end = before.version;
    // Both timestamps between the same two commits: an empty feed, as Spark gives (a start after the
    // end is an error below, as in Spark).
    if (options.startingTimestamp !== undefined && end < start && parsedStart! <= ts) return null;
  }
  if (end < start) {
    throw new FloeError('DELTA_INVALID_CDC_RANGE', `The change data feed range of ${table} ends (${end}) before it starts (${start}). Give an end at or after the start.`, { table, start, end });
  }
  return { start, end };
}
