/**
 * Incremental reads of a Delta table, as Spark's Delta streaming source: each call returns the data
 * committed after the caller's checkpoint (the last version it processed) as one micro-batch, plus
 * the version the batch ends at. The caller stores the end version (with its output, e.g. as the
 * `txn` version of its commit) and passes it back next time.
 *
 * - `readStreamBatch` (append-only stream): the rows of new `add` actions with `dataChange = true`.
 *   A commit that removes data (DELETE, UPDATE, MERGE, overwrite) fails the stream with
 *   `DELTA_SOURCE_TABLE_IGNORE_CHANGES` (`DELTA_SOURCE_IGNORE_DELETE` for a commit that only deletes,
 *   which `ignoreDeletes` skips) unless `skipChangeCommits` is set, which skips such commits
 *   whole, as Spark does. Commits without data changes (OPTIMIZE, metadata) are skipped. Without a
 *   checkpoint and without `startingVersion`, the first batch is the table's latest snapshot.
 * - `readChangeFeedBatch` (`readChangeFeed`): the table's change data feed from the version after
 *   the checkpoint (or `startingVersion`), with `_change_type`, `_commit_version`, `_commit_timestamp`;
 *   with neither, the latest snapshot as inserts first, as Spark.
 * - `maxFilesPerTrigger` / `maxBytesPerTrigger` bound a batch but never split a commit: a batch
 *   always holds whole commits, and at least one.
 */
import type { ActionBatch, AddFile } from '../core/actions.js';
import { DataFrame } from '../dataframe.js';
import { planScan } from '../engine/scan.js';
import { FloeError, InvalidArgumentError } from '../errors.js';
import type { Floe } from '../floe.js';

export interface DeltaSourceOptions {
  /** The last version already processed (the checkpoint); undefined on the first run. */
  lastVersion?: number;
  /** First version to read when there is no checkpoint (otherwise the latest snapshot is the first batch). */
  startingVersion?: number;
  /** Skip commits that delete or update rows instead of failing (append-only stream only). */
  skipChangeCommits?: boolean;
  /** Skip commits that only delete rows (no rows added: DELETE, a dropped partition) instead of failing, as Spark's ignoreDeletes. */
  ignoreDeletes?: boolean;
  /** Upper bound of files per batch (whole commits; at least one commit). */
  maxFilesPerTrigger?: number;
  /** Upper bound of bytes per batch (whole commits; at least one commit). */
  maxBytesPerTrigger?: number;
  /** Do not read past this version. */
  endingVersion?: number;
}

export interface DeltaSourceBatch {
  /** The batch's rows (for the change feed, with the CDF metadata columns). */
  df: DataFrame;
  /** First and last version covered (inclusive); store `endVersion` as the new checkpoint. */
  startVersion: number;
  endVersion: number;
  numFiles: number;
  numBytes: number;
  /** Commits skipped because they changed existing rows (skipChangeCommits). */
  skippedChangeCommits: number[];
}

function checkOpts(o: DeltaSourceOptions): void {
  for (const k of ['lastVersion', 'startingVersion', 'endingVersion', 'maxFilesPerTrigger', 'maxBytesPerTrigger'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < (k.startsWith('max') ? 1 : k === 'lastVersion' ? -1 : 0))) throw new InvalidArgumentError(`${k} must be a ${k.startsWith('max') ? 'positive' : 'non-negative'} integer, got ${v}.`);
  }
}

interface CommitInfo { version: number; batch: ActionBatch }

/** Reads whole commits from `from` while within the limits (always at least one). */
async function takeCommits(floe: Floe, path: string, from: number, last: number, o: DeltaSourceOptions, size: (b: ActionBatch) => { files: number; bytes: number }): Promise<{ commits: CommitInfo[]; files: number; bytes: number }> {
  const log = floe.deltaLog(path);
  const out: CommitInfo[] = [];
  let files = 0;
  let bytes = 0;
  for (let v = from; v <= last; v++) {
    let batch: ActionBatch;
    try {
      batch = await log.readCommit(v);
    } catch (e) {
      throw new FloeError('DELTA_VERSION_NOT_CONTIGUOUS', `Cannot stream ${path} from version ${v}: its commit is missing (removed by log retention?). Restart the stream from a later startingVersion.`, { table: path, version: v }, { cause: e });
    }
    const s = size(batch);
    if (out.length && ((o.maxFilesPerTrigger !== undefined && files + s.files > o.maxFilesPerTrigger) || (o.maxBytesPerTrigger !== undefined && bytes + s.bytes > o.maxBytesPerTrigger))) break;
    out.push({ version: v, batch });
    files += s.files;
    bytes += s.bytes;
  }
  return { commits: out, files, bytes };
}

function isChangeCommit(b: ActionBatch): boolean {
  return b.removes.some((r) => r.dataChange);
}

/**
 * The next micro-batch of an append-only stream of a Delta table, or null when nothing new was
 * committed after `lastVersion`.
 */
export async function readStreamBatch(floe: Floe, path: string, options: DeltaSourceOptions = {}): Promise<DeltaSourceBatch | null> {
  checkOpts(options);
  const log = floe.deltaLog(path);
  const latest = await log.snapshot();
  const last = Math.min(latest.version, options.endingVersion ?? Infinity);
  if (options.lastVersion === undefined && options.startingVersion === undefined) {
    // First run without a starting version: the snapshot at the latest version.
    const plan = await planScan(floe.engine, log.store, latest, { files: latest.files });
    floe.track(plan.tables);
    return { df: new DataFrame(floe, { kind: 'sql', sql: plan.sql }), startVersion: 0, endVersion: latest.version, numFiles: latest.files.length, numBytes: latest.sizeInBytes, skippedChangeCommits: [] };
  }
  const from = options.lastVersion !== undefined ? options.lastVersion + 1 : options.startingVersion!;
  if (from > last) return null;
  const { commits } = await takeCommits(floe, path, from, last, options, (b) => {
    const adds = b.adds.filter((a) => a.dataChange);
    return { files: adds.length, bytes: adds.reduce((s, a) => s + a.size, 0) };
  });
  const adds: AddFile[] = [];
  const skipped: number[] = [];
  for (const c of commits) {
    if (isChangeCommit(c.batch)) {
      // (A commit that only deletes is Spark's DELTA_SOURCE_IGNORE_DELETE case; ignoreDeletes skips it.)
      const onlyDeletes = !c.batch.adds.some((a) => a.dataChange);
      if (options.skipChangeCommits || (onlyDeletes && options.ignoreDeletes)) {
        skipped.push(c.version);
        continue;
      }
      const op = c.batch.commitInfo?.operation ?? 'a data change';
      if (onlyDeletes) {
        const removed = c.batch.removes.find((r) => r.dataChange)!.path;
        throw new FloeError(
          'DELTA_SOURCE_IGNORE_DELETE',
          `Detected deleted data (${op}, for example ${removed}) in the source table ${path} at version ${c.version}. A Delta stream reads only appends; to ignore commits that only delete, set ignoreDeletes (or skipChangeCommits to ignore updates too), or read the change data feed instead.`,
          { table: path, version: c.version, operation: op, file: removed },
        );
      }
      throw new FloeError(
        'DELTA_SOURCE_TABLE_IGNORE_CHANGES',
        `Detected a data update (${op}) in the source table ${path} at version ${c.version}. A Delta stream reads only appends; to ignore commits that update or delete rows, set skipChangeCommits, or read the change data feed instead.`,
        { table: path, version: c.version, operation: op },
      );
    }
    adds.push(...c.batch.adds.filter((a) => a.dataChange));
  }
  const endVersion = commits[commits.length - 1]!.version;
  const snap = await log.snapshot(endVersion);
  const plan = await planScan(floe.engine, log.store, snap, { files: adds });
  floe.track(plan.tables);
  // (The files read: a skipped change commit's are not.)
  return { df: new DataFrame(floe, { kind: 'sql', sql: plan.sql }), startVersion: from, endVersion, numFiles: adds.length, numBytes: adds.reduce((s, a) => s + a.size, 0), skippedChangeCommits: skipped };
}

/**
 * The next micro-batch of a table's change data feed (`readChangeFeed`), or null when nothing new was
 * committed after `lastVersion`. Without a checkpoint it starts at `startingVersion`; without either,
 * as Spark, the first batch is the latest snapshot as `insert` rows of its version (whole: the
 * trigger limits apply to the changes after it).
 */
export async function readChangeFeedBatch(floe: Floe, path: string, options: DeltaSourceOptions = {}): Promise<DeltaSourceBatch | null> {
  checkOpts(options);
  const log = floe.deltaLog(path);
  const latest = await log.snapshot();
  const last = Math.min(latest.version, options.endingVersion ?? Infinity);
  if (options.lastVersion === undefined && options.startingVersion === undefined) {
    // As Spark: without a starting version, the first batch is the table's snapshot (at the latest
    // version) as inserts of that version; later batches are the changes after it.
    const snap = await log.snapshot(last);
    const rows = await (await floe.read.delta(path, { versionAsOf: last })).toSQL();
    const sql = `SELECT *, 'insert' AS _change_type, ${last}::BIGINT AS _commit_version, CAST(epoch_ms(${snap.timestamp}::BIGINT) AS TIMESTAMPTZ) AS _commit_timestamp FROM (${rows})`;
    return { df: new DataFrame(floe, { kind: 'sql', sql }), startVersion: last, endVersion: last, numFiles: snap.files.length, numBytes: snap.files.reduce((x, f) => x + f.size, 0), skippedChangeCommits: [] };
  }
  const from = options.lastVersion !== undefined ? options.lastVersion + 1 : options.startingVersion!;
  if (from > last) return null;
  const { commits, files, bytes } = await takeCommits(floe, path, from, last, options, (b) => {
    const list = b.cdcs.length ? b.cdcs : [...b.adds.filter((a) => a.dataChange), ...b.removes.filter((r) => r.dataChange)];
    return { files: list.length, bytes: list.reduce((s, a) => s + (a.size ?? 0), 0) };
  });
  const endVersion = commits[commits.length - 1]!.version;
  const df = await floe.read.changes(path, { startingVersion: from, endingVersion: endVersion });
  return { df, startVersion: from, endVersion, numFiles: files, numBytes: bytes, skippedChangeCommits: [] };
}
