/**
 * Which files of `_delta_log/` make up a snapshot at a version: the newest complete checkpoint at or
 * before it, the commits after it, and (optionally) compaction files that replace runs of commits.
 * Pure over a listing, so it is tested without a disk.
 */
import { CorruptLogError, FloeError, TableNotFoundError } from '../errors.js';
import type { LogFile } from './log-files.js';

export type CommitFile = Extract<LogFile, { kind: 'commit' }>;
export type CheckpointFile = Extract<LogFile, { kind: 'checkpoint' }>;
export type CompactionFile = Extract<LogFile, { kind: 'compaction' }>;

/** A checkpoint at one version: one file, or all parts of a multi-part checkpoint. */
export interface CheckpointSet {
  version: number;
  files: CheckpointFile[];
  /** 'classic' = single parquet, 'multipart', 'uuid' = V2 UUID-named */
  kind: 'classic' | 'multipart' | 'uuid';
}

export interface LogSegment {
  version: number;
  checkpoint: CheckpointSet | null;
  /** Commits after the checkpoint up to `version`, ascending. Replaced ranges are absent when compactions are used. */
  commits: CommitFile[];
  compactions: CompactionFile[];
  /** The commit file of `version` itself (for its commitInfo), when it is still in the log. */
  latestCommit: CommitFile | null;
}

/** Identity of a checkpoint set across listings. */
export function checkpointId(c: CheckpointSet): string {
  return c.files.map((f) => f.path).join('|');
}

/** Groups checkpoint files into complete sets by version, newest first. Incomplete multi-part sets are dropped. */
export function completeCheckpoints(files: LogFile[]): CheckpointSet[] {
  const byVersion = new Map<number, CheckpointFile[]>();
  for (const f of files) {
    if (f.kind !== 'checkpoint') continue;
    const arr = byVersion.get(f.version) ?? [];
    arr.push(f);
    byVersion.set(f.version, arr);
  }
  const out: CheckpointSet[] = [];
  for (const [version, fs] of byVersion) {
    const options: CheckpointSet[] = [];
    for (const f of fs) {
      if (f.uuid) options.push({ version, files: [f], kind: 'uuid' });
      else if (f.parts === undefined) options.push({ version, files: [f], kind: 'classic' });
    }
    const multi = new Map<number, CheckpointFile[]>();
    for (const f of fs) if (f.parts !== undefined) multi.set(f.parts, [...(multi.get(f.parts) ?? []), f]);
    for (const [parts, set] of multi) {
      const seen = new Set(set.map((f) => f.part));
      if (seen.size === parts && [...seen].every((p) => p !== undefined && p >= 1 && p <= parts)) {
        options.push({ version, files: [...set].sort((a, b) => (a.part ?? 0) - (b.part ?? 0)), kind: 'multipart' });
      }
    }
    // Prefer V2 UUID checkpoints, then classic, then multi-part: all are equivalent by the protocol.
    const rank = { uuid: 0, classic: 1, multipart: 2 } as const;
    options.sort((a, b) => rank[a.kind] - rank[b.kind]);
    out.push(...options);
  }
  out.sort((a, b) => b.version - a.version);
  return out;
}

/**
 * Builds the segment for `target` (latest when undefined) from a listing of `_delta_log/`.
 * `skipCheckpoints` lists (by checkpointId) checkpoints that proved unreadable, to fall back to older ones.
 */
export function buildLogSegment(
  tablePath: string,
  files: LogFile[],
  target?: number,
  options: { skipCheckpoints?: Set<string>; useCompactions?: boolean } = {},
): LogSegment {
  const commits = files.filter((f): f is CommitFile => f.kind === 'commit').sort((a, b) => a.version - b.version);
  const checkpoints = completeCheckpoints(files).filter((c) => !options.skipCheckpoints?.has(checkpointId(c)));
  const commitVersions = new Map(commits.map((c) => [c.version, c]));
  const maxCommit = commits.length ? commits[commits.length - 1]!.version : -1;
  const maxCheckpoint = checkpoints.length ? checkpoints[0]!.version : -1;
  const latest = Math.max(maxCommit, maxCheckpoint);
  if (latest < 0) throw new TableNotFoundError(tablePath);
  const version = target ?? latest;
  if (version > latest) {
    throw new FloeError('DELTA_VERSION_NOT_FOUND', `Cannot time travel ${tablePath} to version ${version}: the latest version is ${latest}.`, { path: tablePath, version, latest });
  }
  if (version < 0) throw new FloeError('DELTA_VERSION_NOT_FOUND', `Version ${version} is not valid; versions start at 0.`, { path: tablePath, version });

  const cp = checkpoints.find((c) => c.version <= version) ?? null;
  const start = cp ? cp.version + 1 : 0;
  // Every commit in (checkpoint, version] must exist, contiguous.
  const needed: CommitFile[] = [];
  for (let v = start; v <= version; v++) {
    const c = commitVersions.get(v);
    if (!c) {
      const earliest = earliestRecoverableVersion(files);
      if (v === 0 || (cp === null && !commitVersions.has(0))) {
        throw new FloeError('DELTA_VERSION_NOT_FOUND', `Cannot reconstruct ${tablePath} at version ${version}: its log has no checkpoint at or before it and commit ${v} is missing (log cleaned up?). The earliest version that can be read is ${earliest ?? 'none'}.`, { path: tablePath, version, earliest });
      }
      throw new CorruptLogError(`The log of ${tablePath} has a gap: commit ${v} is missing between checkpoint ${cp?.version ?? 'none'} and version ${version}. Versions must be contiguous.`, { path: tablePath, missing: v });
    }
    needed.push(c);
  }
  let compactions: CompactionFile[] = [];
  let remaining = needed;
  if (options.useCompactions) {
    const comps = files.filter((f): f is CompactionFile => f.kind === 'compaction' && f.version >= start && f.endVersion <= version && f.endVersion > f.version);
    if (comps.length) {
      const picked: CompactionFile[] = [];
      remaining = [];
      let v = start;
      while (v <= version) {
        const best = comps.filter((c) => c.version === v).sort((a, b) => b.endVersion - a.endVersion)[0];
        if (best) {
          picked.push(best);
          v = best.endVersion + 1;
        } else {
          remaining.push(commitVersions.get(v)!);
          v++;
        }
      }
      compactions = picked;
    }
  }
  return { version, checkpoint: cp, commits: remaining, compactions, latestCommit: commitVersions.get(version) ?? null };
}

/** The smallest version a snapshot can be built at: the oldest complete checkpoint, or 0 with commit 0 present. */
export function earliestRecoverableVersion(files: LogFile[]): number | null {
  const commits = new Set(files.filter((f) => f.kind === 'commit').map((f) => f.version));
  if (commits.has(0)) return 0;
  const cps = completeCheckpoints(files).map((c) => c.version).sort((a, b) => a - b);
  return cps.length ? cps[0]! : null;
}
