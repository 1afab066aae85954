/**
 * Reading the change data feed: `floe.read.changes(path, { startingVersion | startingTimestamp,
 * endingVersion | endingTimestamp })`, as Spark's `readChangeFeed` / `table_changes`.
 */
import { type ChangeFeedOptions, type FileChange, checkRange, resolveRange, versionChanges } from '../core/cdf.js';
import { type DeltaLog, commitTimestamp, ictEnablementVersion, mapLimit } from '../core/delta-log.js';
import { resolveLogPath } from '../storage/paths.js';
import { LocalObjectStore } from '../storage/local.js';
import { promises as fs } from 'node:fs';
import { FloeError } from '../errors.js';
import type { Floe } from '../floe.js';
import { parseTimestamp } from '../floe.js';
import { emptyChangesSql, planChanges } from '../engine/changes-scan.js';
import { remoteOf } from '../storage/open.js';
import type { ActionBatch, Metadata, Protocol } from '../core/actions.js';
import { type StructType, columnMappingMode, parseSchema } from '../core/schema.js';
import { checkReadSupport } from '../core/table-features.js';

/** Commit timestamps (in-commit timestamps when enabled, else commitInfo.timestamp) of every commit file. */
async function commitTimestamps(log: DeltaLog, conf: Record<string, string>): Promise<{ version: number; timestamp: number }[]> {
  const files = (await log.listLogFiles()).filter((f) => f.kind === 'commit');
  const batches = await mapLimit(files, 16, (f) => log.readCommit(f.version, f.path));
  return monotonic(files.map((f, i) => ({ version: f.version, timestamp: commitTimestamp(conf, f.version, batches[i]!.commitInfo ?? null, f.lastModified), ict: isIct(conf, f.version, batches[i]!) })));
}

/** The version's timestamp is its in-commit timestamp (increasing by the protocol: never adjusted). */
function isIct(conf: Record<string, string>, version: number, b: ActionBatch): boolean {
  const from = ictEnablementVersion(conf);
  return from !== null && version >= from && typeof b.commitInfo?.inCommitTimestamp === 'number';
}

/**
 * Commit timestamps made increasing, as Spark does before it resolves timestamps to versions (a
 * commit timestamped at or before its predecessor counts as 1 ms after it: clock skew between
 * writers); in version order. In-commit timestamps are kept as they are (writers keep them increasing;
 * a log that breaks that is read as delta-rs does, version by version).
 */
function monotonic<T extends { timestamp: number; ict?: boolean }>(xs: T[]): T[] {
  let prev = -Infinity;
  return xs.map((x) => {
    const timestamp = !x.ict && x.timestamp <= prev ? prev + 1 : x.timestamp;
    prev = timestamp;
    return timestamp === x.timestamp ? x : { ...x, timestamp };
  });
}

export interface ChangesQuery {
  sql: string;
  tables: string[];
  start: number | null;
  end: number | null;
}

/** The table's state a change feed read needs: the latest version and the metadata in effect at the range's ends. */
interface RangeState {
  latestVersion: number;
  /** Metadata at the end of the range (the latest version's when no range): schema, partitioning, configuration. */
  endMetadata: Metadata;
  /** Metadata at a version: the start version's, when the range is known. */
  metadataAt: (version: number) => Promise<Metadata>;
}

/**
 * With version bounds (the end optional), the state comes from the commits alone: the latest version
 * from a listing from `_last_checkpoint` on, the protocol and metadata by walking the commits back
 * from the range's end (the range's own commits are read anyway). No snapshot (checkpoint read,
 * file list) is built. Null when that does not work out (a start after the latest version, commits
 * cleaned up, metadata too far back): the caller then loads snapshots, which report errors precisely.
 */
async function stateFromCommits(
  log: DeltaLog, sv: number, ev: number | undefined, prefetch: Promise<unknown> | null, read: (from: number, to: number) => Promise<unknown>,
): Promise<{ latestVersion: number; start: Metadata; end: Metadata } | null> {
  const listing = log.lastCheckpoint().then((hint) => log.listLogFiles(hint?.version));
  const [files] = await Promise.all([listing, prefetch]);
  let latest = -1;
  let latestCheckpoint = -1;
  for (const f of files) {
    if (f.kind === 'commit') latest = Math.max(latest, f.version);
    else if (f.kind === 'checkpoint') latestCheckpoint = Math.max(latestCheckpoint, f.version);
  }
  if (latest < 0 || latestCheckpoint > latest || sv > latest) return null;
  const end = Math.min(ev ?? latest, latest);
  // Without an end bound the range's commits are read once the latest version is known.
  if (!prefetch) {
    if (end - sv >= MAX_PREFETCH) return null;
    await read(sv, end);
  }
  let protocol: Protocol | undefined;
  let endMeta: Metadata | undefined;
  let startMeta: Metadata | undefined;
  // Beyond the range, at most this many more commits are read before giving up for a snapshot.
  const floor = Math.max(0, sv - 64);
  for (let hi = end; hi >= floor && !(protocol && endMeta && startMeta); hi -= 16) {
    const vs = Array.from({ length: Math.min(16, hi - floor + 1) }, (_, i) => hi - i);
    let batches: ActionBatch[];
    try {
      batches = await mapLimit(vs, 16, (v) => log.readCommit(v));
    } catch {
      return null;
    }
    for (let i = 0; i < vs.length; i++) {
      const b = batches[i]!;
      protocol ??= b.protocol;
      if (b.metaData) {
        endMeta ??= b.metaData;
        if (vs[i]! <= sv) startMeta ??= b.metaData;
      }
    }
  }
  if (!protocol || !endMeta || !startMeta) return null;
  checkReadSupport(protocol, log.tablePath, endMeta);
  return { latestVersion: latest, start: startMeta, end: endMeta };
}

/** Above this many versions the range's commits are not read ahead. */
const MAX_PREFETCH = 1000;

/** Commit operations whose added files may have been written with another schema (old files re-added, foreign Parquet adopted). */
const FOREIGN_FILES = /RESTORE|CONVERT|CLONE/i;

export async function changesQuery(floe: Floe, location: string, given: ChangeFeedOptions): Promise<ChangesQuery> {
  const log = floe.deltaLog(location);
  // (A version given as a numeric string, as Spark's string-valued options, reads as the number.)
  const num = (v: unknown): number | undefined => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : (v as number | undefined));
  const options: ChangeFeedOptions = { ...given, startingVersion: num(given.startingVersion), endingVersion: num(given.endingVersion) };
  if (options.startingVersion === undefined) delete options.startingVersion;
  if (options.endingVersion === undefined) delete options.endingVersion;
  // With version bounds the state comes from the commits; with an end bound too, the range's commits
  // are read while the log is listed (into the log's commit cache; a failure here is ignored: the
  // read below reports it).
  const { startingVersion: sv, endingVersion: ev } = options;
  const versionBounds = typeof sv === 'number' && Number.isInteger(sv) && sv >= 0 && (ev === undefined || (typeof ev === 'number' && Number.isInteger(ev) && ev >= sv))
    && options.startingTimestamp === undefined && options.endingTimestamp === undefined;
  // Each commit's files are looked up as soon as it is read (to name a file VACUUM removed), so
  // those lookups overlap the reading of the other commits. Remote stores download the files before
  // the query (a missing one fails there), so they are looked up only then.
  const eager = remoteOf(log.store) === null;
  const heads = new Map<string, Promise<unknown>>();
  // Local files: one readdir per folder instead of a stat per file (a range has many files in few folders).
  const folders = new Map<string, Promise<Set<string> | null>>();
  const listedLocally = async (store: LocalObjectStore, key: string): Promise<boolean> => {
    const cut = key.lastIndexOf('/');
    const dir = cut < 0 ? '' : key.slice(0, cut);
    let names = folders.get(`${store.root}\0${dir}`);
    if (!names) folders.set(`${store.root}\0${dir}`, (names = fs.readdir(store.localPath(dir || '.')).then((n) => new Set(n), () => null)));
    return (await names)?.has(key.slice(cut + 1)) ?? false;
  };
  const head = (p: string): Promise<unknown> => {
    let h = heads.get(p);
    if (!h) {
      // Absolute URIs (shallow clones) are looked up where they point.
      h = Promise.resolve().then((): Promise<unknown> => {
        const r = resolveLogPath(log.store, p);
        return r.store instanceof LocalObjectStore ? listedLocally(r.store, r.key) : r.store.head(r.key);
      }).catch(() => null);
      heads.set(p, h);
    }
    return h;
  };
  const read = (from: number, to: number): Promise<unknown> => mapLimit(Array.from({ length: to - from + 1 }, (_, i) => from + i), 16, async (v) => {
    const b = await log.readCommit(v).catch(() => null);
    if (b && eager) for (const c of versionChanges(v, 0, b)) void head(c.path);
  });
  const prefetch = versionBounds && ev !== undefined && ev - sv! < MAX_PREFETCH ? read(sv!, ev) : null;
  const light = versionBounds ? await stateFromCommits(log, sv!, ev, prefetch, read).catch(() => null) : null;
  let state: RangeState;
  if (light) {
    state = { latestVersion: light.latestVersion, endMetadata: light.end, metadataAt: async () => light.start };
  } else {
    const [latest] = await Promise.all([log.snapshot(), prefetch]);
    state = {
      latestVersion: latest.version,
      endMetadata: latest.metadata,
      metadataAt: async (v) => (v === latest.version ? latest.metadata : (await log.snapshot(v)).metadata),
    };
  }
  const needTs = options.startingTimestamp !== undefined || options.endingTimestamp !== undefined;
  const timestamps = needTs ? await commitTimestamps(log, state.endMetadata.configuration) : null;
  const ps = options.startingTimestamp !== undefined ? parseTimestamp(options.startingTimestamp) : undefined;
  const pe = options.endingTimestamp !== undefined ? parseTimestamp(options.endingTimestamp) : undefined;
  const range = resolveRange(log.tablePath, state.latestVersion, options, ps, pe, timestamps);
  if (!range) return { sql: emptyChangesSql(parseSchema(state.endMetadata.schemaString)), tables: [], start: null, end: null };

  const versions = Array.from({ length: range.end - range.start + 1 }, (_, i) => range.start + i);
  // Commits are read by name (no listing): the log cache usually has them; a missing one was
  // removed by log retention. The file's mtime is looked up only for a commit without a timestamp.
  const conf = state.endMetadata.configuration;
  const commits = await mapLimit(versions, 16, async (v) => {
    let batch: ActionBatch;
    try {
      batch = await log.readCommit(v);
    } catch (e) {
      if (!(e instanceof FloeError && e.code === 'DELTA_VERSION_NOT_FOUND')) throw e;
      throw new FloeError('DELTA_MISSING_CHANGE_DATA', `Cannot read the change data feed of ${log.tablePath} at version ${v}: its commit file was removed by log retention (delta.logRetentionDuration). Read from a later version.`, { table: log.tablePath, version: v });
    }
    const ci = batch.commitInfo ?? null;
    const mtime = typeof ci?.timestamp === 'number' || typeof ci?.inCommitTimestamp === 'number' ? 0 : ((await log.store.head(commitKey(v)))?.lastModified ?? 0);
    return { version: v, batch, timestamp: commitTimestamp(conf, v, ci, mtime), ict: isIct(conf, v, batch) };
  });
  // _commit_timestamp as the bounds were resolved: increasing (from the whole log when timestamps
  // were read, else within the range).
  const at = timestamps ? new Map(timestamps.map((t) => [t.version, t.timestamp])) : null;
  const batches = at ? commits.map((b) => ({ ...b, timestamp: at.get(b.version) ?? b.timestamp })) : monotonic(commits);
  // The start version's metadata: the end's when no later commit in the range changed it.
  const endMeta = range.end === state.latestVersion || light ? state.endMetadata : await state.metadataAt(range.end);
  const unchangedSinceStart = !batches.some((b) => b.version > range.start && b.batch.metaData);
  const startMeta = unchangedSinceStart ? endMeta : await state.metadataAt(range.start);
  const endSchema = parseSchema(endMeta.schemaString);
  checkRange(log.tablePath, startMeta, batches, endSchema);

  // Each file's layout: the schema in effect at the commit that wrote it (unknown for re-added or
  // adopted files, and for removed files, written by some earlier commit).
  // Timestamps made increasing (above) put every version of the resolved range inside the requested
  // instants; only a log whose in-commit timestamps go backwards has versions outside them, left out
  // as delta-rs does.
  const inWindow = (ts: number): boolean => (ps === undefined || ts >= ps) && (pe === undefined || ts <= pe);
  const changes: FileChange[] = [];
  const layouts: (StructType | null)[] = [];
  const schemas = new Map<string, StructType>([[endMeta.schemaString, endSchema]]);
  let current = startMeta.schemaString;
  for (const b of batches) {
    if (b.batch.metaData) current = b.batch.metaData.schemaString;
    if (!inWindow(b.timestamp)) continue;
    const op = b.batch.commitInfo?.operation;
    let layout: StructType | null = null;
    if (typeof op === 'string' && !FOREIGN_FILES.test(op)) {
      layout = schemas.get(current) ?? null;
      if (!layout) schemas.set(current, (layout = parseSchema(current)));
    }
    for (const c of versionChanges(b.version, b.timestamp, b.batch)) {
      changes.push(c);
      layouts.push(c.mode === 'cdc' || c.mode === 'insert' ? layout : null);
    }
  }
  // A change file removed by VACUUM is named with its version and the retention that removed it.
  const vacuumed = async (): Promise<FloeError | null> => {
    const missing = await mapLimit(changes, 32, async (c) => ((await head(c.path)) ? null : c));
    const gone = missing.find((c) => c !== null);
    if (!gone) return null;
    const retention = conf['delta.deletedFileRetentionDuration'] ?? 'interval 7 days (the default)';
    return new FloeError(
      'DELTA_CHANGE_DATA_FILE_NOT_FOUND',
      `Change data for version ${gone.version} of ${log.tablePath} is gone: ${gone.path} no longer exists (VACUUM removes files older than delta.deletedFileRetentionDuration = ${retention}). Read the feed from a later version.`,
      { table: log.tablePath, version: gone.version, file: gone.path },
    );
  };
  // Planning either takes the files' columns from the log (then DuckDB opens the files only when the
  // query runs, so they are checked here, concurrently) or opens every file (their Parquet schemas);
  // only when that fails are the files checked one by one.
  let plan;
  const mapped = columnMappingMode(endMeta.configuration) !== 'none';
  try {
    const [p, gone] = await Promise.all([
      planChanges(floe.engine, log.store, endSchema, endMeta.partitionColumns, changes, mapped, layouts),
      eager && layouts.every((l) => l !== null) ? vacuumed() : null,
    ]);
    if (gone) throw gone;
    plan = p;
  } catch (e) {
    if (e instanceof FloeError && e.code === 'DELTA_CHANGE_DATA_FILE_NOT_FOUND') throw e;
    const gone = await vacuumed();
    throw gone ?? e;
  }
  return { ...plan, start: range.start, end: range.end };
}

const commitKey = (v: number): string => `_delta_log/${String(v).padStart(20, '0')}.json`;
