/**
 * Reading the change data feed: `floe.read.changes(path, { startingVersion | startingTimestamp,
 * endingVersion | endingTimestamp })`, as Spark's `readChangeFeed` / `table_changes`.
 */
import { type ChangeFeedOptions, type FileChange, checkRange, resolveRange, versionChanges } from '../core/cdf.js';
import { type DeltaLog, commitTimestamp, mapLimit } from '../core/delta-log.js';
import { decodePath } from '../core/actions.js';
import { FloeError } from '../errors.js';
import type { Floe } from '../floe.js';
import { parseTimestamp } from '../floe.js';
import { emptyChangesSql, planChanges } from '../engine/changes-scan.js';
import type { ActionBatch } from '../core/actions.js';

/** Commit timestamps (in-commit timestamps when enabled, else commitInfo.timestamp) of every commit file. */
async function commitTimestamps(log: DeltaLog, conf: Record<string, string>): Promise<{ version: number; timestamp: number }[]> {
  const files = (await log.listLogFiles()).filter((f) => f.kind === 'commit');
  const batches = await mapLimit(files, 16, (f) => log.readCommit(f.version, f.path));
  return files.map((f, i) => ({ version: f.version, timestamp: commitTimestamp(conf, f.version, batches[i]!.commitInfo ?? null, f.lastModified) }));
}

export interface ChangesQuery {
  sql: string;
  tables: string[];
  start: number | null;
  end: number | null;
}

export async function changesQuery(floe: Floe, location: string, options: ChangeFeedOptions): Promise<ChangesQuery> {
  const log = floe.deltaLog(location);
  // With both bounds given as versions, the range's commits are read while the snapshot loads (into
  // the log's commit cache; a failure here is ignored: the read below reports it).
  const { startingVersion: sv, endingVersion: ev } = options;
  const prefetch = typeof sv === 'number' && typeof ev === 'number' && Number.isInteger(sv) && Number.isInteger(ev) && sv >= 0 && ev >= sv && ev - sv < 1000
    ? mapLimit(Array.from({ length: ev - sv + 1 }, (_, i) => sv + i), 16, (v) => log.readCommit(v).catch(() => null))
    : null;
  const [latest] = await Promise.all([log.snapshot(), prefetch]);
  const needTs = options.startingTimestamp !== undefined || options.endingTimestamp !== undefined;
  const timestamps = needTs ? await commitTimestamps(log, latest.configuration) : null;
  const ps = options.startingTimestamp !== undefined ? parseTimestamp(options.startingTimestamp) : undefined;
  const pe = options.endingTimestamp !== undefined ? parseTimestamp(options.endingTimestamp) : undefined;
  const range = resolveRange(log.tablePath, latest.version, options, ps, pe, timestamps);
  if (!range) return { sql: emptyChangesSql(latest.schema), tables: [], start: null, end: null };

  const versions = Array.from({ length: range.end - range.start + 1 }, (_, i) => range.start + i);
  // Commits are read by name (no listing): the log cache usually has them; a missing one was
  // removed by log retention. The file's mtime is looked up only for a commit without a timestamp.
  const batches: { version: number; batch: ActionBatch; ts: number }[] = await mapLimit(versions, 16, async (v) => {
    let batch: ActionBatch;
    try {
      batch = await log.readCommit(v);
    } catch (e) {
      if (!(e instanceof FloeError && e.code === 'DELTA_VERSION_NOT_FOUND')) throw e;
      throw new FloeError('DELTA_MISSING_CHANGE_DATA', `Cannot read the change data feed of ${log.tablePath} at version ${v}: its commit file was removed by log retention (delta.logRetentionDuration). Read from a later version.`, { table: log.tablePath, version: v });
    }
    const ci = batch.commitInfo ?? null;
    const mtime = typeof ci?.timestamp === 'number' || typeof ci?.inCommitTimestamp === 'number' ? 0 : ((await log.store.head(commitKey(v)))?.lastModified ?? 0);
    return { version: v, batch, ts: commitTimestamp(latest.configuration, v, ci, mtime) };
  });
  // The start version's metadata: the latest's when no later commit changed it (saves a replay).
  const unchangedSinceStart = range.end === latest.version && !batches.some((b) => b.version > range.start && b.batch.metaData);
  const startSnap = range.start === latest.version || unchangedSinceStart ? latest : await log.snapshot(range.start);
  const endSnap = range.end === latest.version ? latest : await log.snapshot(range.end);
  checkRange(log.tablePath, startSnap.metadata, batches, endSnap.schema);

  // With monotonic commit timestamps this keeps every version of the range; with out-of-order ones
  // (a tampered or clock-skewed log) a version outside the requested instants is left out, as delta-rs does.
  const inWindow = (ts: number): boolean => (ps === undefined || ts >= ps) && (pe === undefined || ts <= pe);
  const changes: FileChange[] = batches.filter((b) => inWindow(b.ts)).flatMap((b) => versionChanges(b.version, b.ts, b.batch));
  // Planning opens every file (their Parquet schemas); only when that fails are the files checked
  // one by one, to name a change file VACUUM removed, its version and the retention that removed it.
  let plan;
  try {
    plan = await planChanges(floe.engine, log.store, endSnap.schema, endSnap.partitionColumns, changes, endSnap.columnMapping !== 'none');
  } catch (e) {
    const missing = await mapLimit(changes, 32, async (c) => ((await log.store.head(decodePath(c.path))) ? null : c));
    const gone = missing.find((c) => c !== null);
    if (!gone) throw e;
    const retention = latest.configuration['delta.deletedFileRetentionDuration'] ?? 'interval 7 days (the default)';
    throw new FloeError(
      'DELTA_CHANGE_DATA_FILE_NOT_FOUND',
      `Change data for version ${gone.version} of ${log.tablePath} is gone: ${gone.path} no longer exists (VACUUM removes files older than delta.deletedFileRetentionDuration = ${retention}). Read the feed from a later version.`,
      { table: log.tablePath, version: gone.version, file: gone.path },
    );
  }
  return { ...plan, start: range.start, end: range.end };
}

const commitKey = (v: number): string => `_delta_log/${String(v).padStart(20, '0')}.json`;
