/**
 * DeltaLog: reading a table's `_delta_log/` through an ObjectStore. Listing, `_last_checkpoint`,
 * checkpoint reading (classic, multi-part, V2 with sidecars), commit parsing, snapshot loading,
 * commit timestamps (in-commit timestamps when enabled), history and timestamp → version.
 * Parquet decoding is delegated to the engine through `ParquetRowReader` so this module stays free of DuckDB.
 */
import { CorruptLogError, FloeError, InvalidArgumentError, ObjectNotFoundError, TableNotFoundError } from '../errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { type ActionBatch, type CommitInfo, addActionToBatch, emptyBatch, parseCommit } from './actions.js';
import { LAST_CHECKPOINT, LOG_DIR, type LogFile, commitPath, crcPath, parseLogFile } from './log-files.js';
import { type CheckpointSet, type LogSegment, buildLogSegment, checkpointId, earliestRecoverableVersion } from './log-segment.js';
import { Replayer, Snapshot } from './snapshot.js';
import { checkReadSupport } from './table-features.js';

/** Reads Parquet files (checkpoints, sidecars) as rows of plain objects: one key per top-level column. */
export interface ParquetRowReader {
  readRows(store: ObjectStore, keys: string[], columns?: string[]): Promise<Record<string, unknown>[]>;
}

export interface CommitRecord {
  version: number;
  timestamp: number;
  commitInfo: CommitInfo | null;
}

export interface LastCheckpointHint {
  version: number;
  size?: number;
  parts?: number;
}

const decoder = new TextDecoder();

export class DeltaLog {
  readonly store: ObjectStore;
  readonly tablePath: string;
  private readonly parquet: ParquetRowReader;
  private readonly commitCache = new Map<number, ActionBatch>();
  /** The newest snapshot built, advanced incrementally by later calls. */
  private cached?: Snapshot;
  /** The cached snapshot's commit file as stored (size, time): a table re-created at the path has another. */
  private cachedCommit?: { size: number; lastModified: number } | null;

  constructor(store: ObjectStore, parquet: ParquetRowReader) {
    this.store = store;
    this.tablePath = store.root;
    this.parquet = parquet;
  }

  /** Parsed `_last_checkpoint`, or null when absent or unreadable (readers then fall back to listing). */
  async lastCheckpoint(): Promise<LastCheckpointHint | null> {
    try {
      const j = JSON.parse(decoder.decode(await this.store.get(LAST_CHECKPOINT))) as LastCheckpointHint;
      return typeof j.version === 'number' ? j : null;
    } catch {
      return null;
    }
  }

  /** Every recognised file of `_delta_log/` (from a version on, when given), ascending by name. */
  async listLogFiles(fromVersion?: number): Promise<LogFile[]> {
    const startAfter = fromVersion !== undefined && fromVersion > 0 ? `${LOG_DIR}/${String(fromVersion).padStart(20, '0')}` : undefined;
    const metas = await this.store.list(`${LOG_DIR}/`, { startAfter });
    const out: LogFile[] = [];
    for (const m of metas) {
      const f = parseLogFile(m.path, m.lastModified, m.size);
      if (f) out.push(f);
    }
    return out;
  }

  async exists(): Promise<boolean> {
    // A table this log has loaded: its latest known commit, still there, answers without a listing
    // (a listing of `_delta_log/` grows with the table's history).
    if (this.cached && (await this.store.head(commitPath(this.cached.version)))) return true;
    const files = await this.listLogFiles();
    return files.some((f) => f.kind === 'commit' || f.kind === 'checkpoint');
  }

  /** Reads and parses one commit file (cached: commits are immutable). */
  async readCommit(version: number, path?: string): Promise<ActionBatch> {
    const cached = this.commitCache.get(version);
    if (cached) return cached;
    const key = path ?? `${LOG_DIR}/${String(version).padStart(20, '0')}.json`;
    let bytes: Uint8Array;
    try {
      bytes = await this.store.get(key);
    } catch (e) {
      if (e instanceof ObjectNotFoundError) {
        throw new FloeError('DELTA_VERSION_NOT_FOUND', `Commit ${version} of ${this.tablePath} does not exist (it may have been cleaned up by log retention).`, { path: this.tablePath, version });
      }
      throw e;
    }
    const batch = parseCommit(decoder.decode(bytes), key);
    if (this.commitCache.size > 4096) this.commitCache.clear();
    this.commitCache.set(version, batch);
    return batch;
  }

  /** Reads a checkpoint (all parts; V2 sidecars followed) into one batch. */
  async readCheckpoint(cp: CheckpointSet): Promise<ActionBatch> {
    const batch = emptyBatch();
    const jsonParts = cp.files.filter((f) => f.format === 'json');
    const parquetParts = cp.files.filter((f) => f.format === 'parquet');
    for (const f of jsonParts) {
      const b = parseCommit(decoder.decode(await this.store.get(f.path)), f.path);
      mergeBatch(batch, b);
    }
    if (parquetParts.length) {
      const rows = await this.readParquetChecked(parquetParts.map((f) => f.path), cp.version);
      rowsIntoBatch(rows, batch, parquetParts[0]!.path);
    }
    if (batch.sidecars.length) {
      const keys = batch.sidecars.map((s) => (s.path.includes('/') && !s.path.startsWith('_sidecars') ? s.path : `${LOG_DIR}/_sidecars/${decodeURIComponent(s.path)}`));
      const rows = await this.readParquetChecked(keys, cp.version);
      rowsIntoBatch(rows, batch, keys[0]!);
    }
    return batch;
  }

  private async readParquetChecked(keys: string[], version: number): Promise<Record<string, unknown>[]> {
    try {
      return await this.parquet.readRows(this.store, keys);
    } catch (e) {
      if (e instanceof FloeError && e.code !== 'FLOE_ENGINE_ERROR' && e.code !== 'DELTA_DATA_FILE_CORRUPT') throw e;
      // (A damaged checkpoint file: DuckDB's own words, not the data-file advice.)
      const why = e instanceof FloeError && e.code === 'DELTA_DATA_FILE_CORRUPT' && e.cause instanceof Error ? e.cause.message : (e as Error).message;
      throw new CorruptLogError(`Checkpoint ${version} of ${this.tablePath} cannot be read (${why.split('\n')[0]}).`, { path: this.tablePath, version, files: keys }, { cause: e });
    }
  }

  /** The segment for a version (latest when undefined). */
  async segment(version?: number, skip?: Set<string>): Promise<LogSegment> {
    // The latest snapshot only needs the log from the last checkpoint on: list from there when
    // `_last_checkpoint` names a checkpoint that the listing confirms, else list everything.
    if (version === undefined && !skip?.size) {
      const hint = await this.lastCheckpoint();
      if (hint && hint.version > 0) {
        const files = await this.listLogFiles(hint.version);
        try {
          const seg = buildLogSegment(this.tablePath, files, undefined, { useCompactions: true });
          if (seg.checkpoint && seg.checkpoint.version >= hint.version) return seg;
        } catch {
          // fall through to a full listing
        }
      }
    }
    const files = await this.listLogFiles();
    if (!files.some((f) => f.kind === 'commit' || f.kind === 'checkpoint')) throw new TableNotFoundError(this.tablePath);
    return buildLogSegment(this.tablePath, files, version, { skipCheckpoints: skip, useCompactions: true });
  }

  /**
   * Loads the snapshot at `version` (latest when undefined). An unreadable checkpoint falls back to
   * an older one when the commits after it are still in the log.
   */
  async snapshot(version?: number): Promise<Snapshot> {
    const advanced = await this.advanceCached(version);
    if (advanced) return advanced;
    const snap = await this.loadSnapshot(version);
    if (!this.cached || snap.version >= this.cached.version) {
      this.cached = snap;
      this.cachedCommit = await this.store.head(commitPath(snap.version));
    }
    return snap;
  }

  /**
   * The newest snapshot this log has built, moved forward by replaying only the commits written since
   * (probed by name, so no listing). Null when there is none, or the request is for an older version,
   * or the log changed underneath (the cached commit vanished, or is another file: the table was
   * deleted and created again at this path), so the caller rebuilds from the log (no cached commit
   * is trusted then).
   */
  private async advanceCached(version?: number): Promise<Snapshot | null> {
    const c = this.cached;
    if (!c || (version !== undefined && version < c.version)) return null;
    const head = await this.store.head(commitPath(c.version));
    const known = this.cachedCommit;
    if (!head || (known && (head.size !== known.size || head.lastModified !== known.lastModified))) {
      this.cached = undefined;
      this.cachedCommit = undefined;
      this.commitCache.clear();
      return null;
    }
    const batches: { version: number; batch: ActionBatch; mtime: number; size: number }[] = [];
    for (let v = c.version + 1; version === undefined || v <= version; v++) {
      const meta = await this.store.head(commitPath(v));
      if (!meta) break;
      batches.push({ version: v, batch: await this.readCommit(v), mtime: meta.lastModified, size: meta.size });
    }
    if (version !== undefined && c.version + batches.length < version) return null; // let the full path report it
    if (!batches.length) return c;
    const replayer = Replayer.from(c.state);
    for (const b of batches) replayer.apply(b.batch);
    const last = batches[batches.length - 1]!;
    const state = replayer.finish(this.tablePath, last.version, last.batch.commitInfo ?? null, 0);
    checkReadSupport(state.protocol, this.tablePath, state.metadata);
    state.timestamp = commitTimestamp(state.metadata.configuration, last.version, state.commitInfo, last.mtime);
    const snap = new Snapshot(this.tablePath, state);
    this.cached = snap;
    this.cachedCommit = { size: last.size, lastModified: last.mtime };
    return snap;
  }

  private async loadSnapshot(version?: number): Promise<Snapshot> {
    const skip = new Set<string>();
    for (;;) {
      const seg = await this.segment(version, skip);
      try {
        return await this.replay(seg);
      } catch (e) {
        if (!(e instanceof CorruptLogError) || !seg.checkpoint || !(e.details as { checkpoint?: boolean }).checkpoint) throw e;
        skip.add(checkpointId(seg.checkpoint));
        try {
          await this.segment(version, skip);
        } catch {
          throw e; // no older checkpoint covers this version: report the original problem
        }
      }
    }
  }

  private async replay(seg: LogSegment): Promise<Snapshot> {
    const replayer = new Replayer();
    if (seg.checkpoint) {
      let cpBatch: ActionBatch;
      try {
        cpBatch = await this.readCheckpoint(seg.checkpoint);
      } catch (e) {
        if (e instanceof CorruptLogError || e instanceof ObjectNotFoundError) {
          throw new CorruptLogError(`Checkpoint ${seg.checkpoint.version} of ${this.tablePath} is unreadable: ${(e as Error).message}`, { path: this.tablePath, version: seg.checkpoint.version, checkpoint: true }, { cause: e });
        }
        throw e;
      }
      if (!cpBatch.protocol || !cpBatch.metaData) {
        throw new CorruptLogError(`Checkpoint ${seg.checkpoint.version} of ${this.tablePath} lacks its protocol or metaData action.`, { path: this.tablePath, version: seg.checkpoint.version, checkpoint: true });
      }
      replayer.apply(cpBatch);
    }
    // Read commits concurrently (bounded), apply in order.
    const batches = await mapLimit(
      [...seg.compactions.map((c) => ({ v: c.version, p: c.path, compaction: true })), ...seg.commits.map((c) => ({ v: c.version, p: c.path, compaction: false }))].sort((a, b) => a.v - b.v),
      16,
      async (x) => (x.compaction ? parseCommit(decoder.decode(await this.store.get(x.p)), x.p) : this.readCommit(x.v, x.p)),
    );
    for (const b of batches) replayer.apply(b);
    let commitInfo: CommitInfo | null = null;
    if (seg.latestCommit) commitInfo = (await this.readCommit(seg.version, seg.latestCommit.path)).commitInfo ?? null;
    const tmp = replayer.finish(this.tablePath, seg.version, commitInfo, 0);
    checkReadSupport(tmp.protocol, this.tablePath, tmp.metadata);
    tmp.timestamp = commitTimestamp(tmp.metadata.configuration, seg.version, commitInfo, seg.latestCommit?.lastModified ?? 0);
    const snap = new Snapshot(this.tablePath, tmp);
    await this.checkVersionChecksum(snap);
    return snap;
  }

  /**
   * Cross-checks a snapshot against the version's `.crc` file when there is one (PROTOCOL.md
   * "Version Checksum File"). Readers must work without it, so an absent or unparseable file is
   * ignored; a readable one that disagrees means the log or a checkpoint lies: refuse the table
   * rather than return wrong rows.
   */
  private async checkVersionChecksum(snap: Snapshot): Promise<void> {
    let crc: { numFiles?: unknown; tableSizeBytes?: unknown; metadata?: { id?: unknown }; protocol?: { minReaderVersion?: unknown; minWriterVersion?: unknown } };
    try {
      crc = JSON.parse(decoder.decode(await this.store.get(crcPath(snap.version))));
    } catch {
      return;
    }
    const problems: string[] = [];
    if (typeof crc.numFiles === 'number' && crc.numFiles !== snap.files.length) problems.push(`${snap.files.length} live files, the checksum says ${crc.numFiles}`);
    if (typeof crc.tableSizeBytes === 'number' && crc.tableSizeBytes !== snap.sizeInBytes) problems.push(`${snap.sizeInBytes} bytes, the checksum says ${crc.tableSizeBytes}`);
    if (typeof crc.metadata?.id === 'string' && crc.metadata.id !== snap.metadata.id) problems.push(`table id ${snap.metadata.id}, the checksum says ${crc.metadata.id}`);
    if (typeof crc.protocol?.minReaderVersion === 'number' && crc.protocol.minReaderVersion !== snap.protocol.minReaderVersion) problems.push(`reader version ${snap.protocol.minReaderVersion}, the checksum says ${crc.protocol.minReaderVersion}`);
    if (problems.length) {
      throw new CorruptLogError(`The log of ${this.tablePath} at version ${snap.version} disagrees with its version checksum (${crcPath(snap.version)}): ${problems.join('; ')}. A commit or checkpoint is damaged; restore it or time travel to an earlier version.`, { path: this.tablePath, version: snap.version, problems });
    }
  }

  /**
   * Commit records (version, timestamp, commitInfo) for every commit file still in the log, ascending.
   * Timestamps follow Delta: in-commit timestamps from their enablement version, otherwise
   * commitInfo.timestamp (file modification time when absent), made strictly increasing as Spark does.
   */
  async commits(configuration?: Record<string, string>): Promise<CommitRecord[]> {
    const files = (await this.listLogFiles()).filter((f) => f.kind === 'commit');
    if (!files.length) {
      if (!(await this.exists())) throw new TableNotFoundError(this.tablePath);
      return [];
    }
    const conf = configuration ?? (await this.snapshot()).configuration;
    const batches = await mapLimit(files, 16, (f) => this.readCommit(f.version, f.path));
    const out: CommitRecord[] = [];
    let prev = -Infinity;
    const ictFrom = ictEnablementVersion(conf);
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      const ci = batches[i]!.commitInfo ?? null;
      let ts = commitTimestamp(conf, f.version, ci, f.lastModified);
      if (ictFrom === null || f.version < ictFrom) {
        if (ts <= prev) ts = prev + 1; // Spark monotonizes non-ICT commit timestamps
      }
      prev = ts;
      out.push({ version: f.version, timestamp: ts, commitInfo: ci });
    }
    return out;
  }

  /**
   * The version a timestamp resolves to: the latest commit at or before it (Spark's timestampAsOf).
   * Errors when it is before the earliest commit or after the latest, as Spark does.
   */
  async versionAtTimestamp(ts: number): Promise<number> {
    if (!Number.isFinite(ts)) throw new InvalidArgumentError(`Invalid timestamp for time travel.`);
    const files = await this.listLogFiles();
    const earliest = earliestRecoverableVersion(files);
    const commits = (await this.commits()).filter((c) => earliest === null || c.version >= earliest);
    if (!commits.length) throw new TableNotFoundError(this.tablePath);
    const last = commits[commits.length - 1]!;
    if (ts > last.timestamp) {
      throw new FloeError('DELTA_TIMESTAMP_GREATER_THAN_COMMIT', `The provided timestamp (${new Date(ts).toISOString()}) is after the latest version available to ${this.tablePath} (${new Date(last.timestamp).toISOString()}, version ${last.version}). Use a timestamp before or at ${new Date(last.timestamp).toISOString()}.`, { path: this.tablePath, timestamp: ts, latestVersion: last.version, latestTimestamp: last.timestamp });
    }
    let found: CommitRecord | null = null;
    for (const c of commits) {
      if (c.timestamp <= ts) found = c;
      else break;
    }
    if (!found) {
      const first = commits[0]!;
      throw new FloeError('DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION', `The provided timestamp (${new Date(ts).toISOString()}) is before the earliest version available to ${this.tablePath} (${new Date(first.timestamp).toISOString()}, version ${first.version}). Use a timestamp after ${new Date(first.timestamp).toISOString()}.`, { path: this.tablePath, timestamp: ts, earliestVersion: first.version });
    }
    return found.version;
  }
}

export function ictEnablementVersion(conf: Record<string, string>): number | null {
  if (conf['delta.enableInCommitTimestamps'] !== 'true') return null;
  const v = conf['delta.inCommitTimestampEnablementVersion'];
  return v === undefined ? 0 : Number(v);
}

/** Commit timestamp of one version (PROTOCOL.md "In-Commit Timestamps"). */
export function commitTimestamp(conf: Record<string, string>, version: number, ci: CommitInfo | null, fileMtime: number): number {
  const ictFrom = ictEnablementVersion(conf);
  if (ictFrom !== null && version >= ictFrom && typeof ci?.inCommitTimestamp === 'number') return ci.inCommitTimestamp;
  if (typeof ci?.timestamp === 'number') return ci.timestamp;
  return fileMtime;
}

function mergeBatch(into: ActionBatch, b: ActionBatch): void {
  if (b.protocol) into.protocol = b.protocol;
  if (b.metaData) into.metaData = b.metaData;
  if (b.checkpointMetadata) into.checkpointMetadata = b.checkpointMetadata;
  into.adds.push(...b.adds);
  into.removes.push(...b.removes);
  into.txns.push(...b.txns);
  into.domains.push(...b.domains);
  into.sidecars.push(...b.sidecars);
}

/** Checkpoint rows carry several nullable action columns; each non-null one is an action. */
function rowsIntoBatch(rows: Record<string, unknown>[], batch: ActionBatch, file: string): void {
  const seenMeta = batch.metaData !== undefined;
  const seenProto = batch.protocol !== undefined;
  // A checkpoint may legitimately repeat nothing; multiple metaData rows across parts is corruption.
  let metaCount = 0;
  let protoCount = 0;
  for (const row of rows) {
    // Each checkpoint row holds one action; metaData/protocol go through a scratch batch so that
    // duplicates are counted rather than rejected as "two in one commit".
    if (row.metaData || row.protocol) {
      const b = emptyBatch();
      addActionToBatch(row, b, { file });
      if (b.metaData) metaCount++;
      if (b.protocol) protoCount++;
      mergeBatch(batch, b);
    } else {
      addActionToBatch(row, batch, { file });
    }
  }
  if ((!seenMeta && metaCount > 1) || (!seenProto && protoCount > 1)) {
    throw new CorruptLogError(`Checkpoint ${file} holds ${metaCount} metaData and ${protoCount} protocol actions; a checkpoint holds exactly one of each.`, { file, checkpoint: true });
  }
}

/** Maps with bounded concurrency, keeping order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
