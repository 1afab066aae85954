/**
 * Durable pipeline state under the pipeline's storage root (`<warehouse>/_pipelines/<pipeline>/` by
 * default), each file replaced atomically (temp file + rename):
 * - `pipeline.json`: the pipeline's id and name;
 * - `checkpoints/<flow>.json`: a flow's checkpoint (the source offsets processed, the last batch id,
 *   and the batch being processed, `pending`, written before its output commit so a rerun after a
 *   crash replays exactly the same input under the same batch id; the output commit carries the txn
 *   `<pipeline>.<flow>` / batch id, so a replayed batch whose output was committed is not written twice);
 * - `tables/<dataset>.json`: a full refresh in progress (`resetPending`), redone after a crash;
 * - `run.lock`: one update at a time per pipeline (taken over when its process is gone).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { FloeError } from '../errors.js';

/** Offsets of one source: the last Delta version processed, or the files processed. */
export interface SourceOffset {
  version?: number;
  /**
   * Files: the processed files (with `maxFileAge`, only those modified within that age of the
   * high-water mark: older ones are covered by the mark alone, so the list stays bounded).
   */
  files?: string[];
  /** Files: the newest processed file's modification time (epoch ms). */
  hwm?: number;
  /** Files: modification times of `files` (same order). */
  mtimes?: number[];
  /**
   * Files: the source's schema (column, DuckDB type), as first inferred and then extended by new
   * columns: later files are read with these types (Auto Loader's stored schema), so a batch's
   * inference (a number without a fraction, a column NULL in every row) cannot change them.
   */
  schema?: Array<[string, string]>;
}

/** A `maxFileAge` in milliseconds: a number as is, or `<n> <unit>` (seconds … weeks); Infinity when absent. */
export function fileAgeMs(v: number | string | undefined): number {
  if (v === undefined) return Number.POSITIVE_INFINITY;
  if (typeof v === 'number') {
    if (!(v > 0)) throw new FloeError('PIPELINE_INVALID_OPTION', `maxFileAge must be a positive number of milliseconds, got ${v}.`, { option: 'maxFileAge' });
    return v;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?|w|weeks?)\s*$/i.exec(v);
  if (!m) throw new FloeError('PIPELINE_INVALID_OPTION', `maxFileAge '${v}' is not a duration: use e.g. '7 days', '12 hours' or a number of milliseconds.`, { option: 'maxFileAge' });
  const unit = m[2]!.toLowerCase();
  const ms = unit.startsWith('ms') || unit.startsWith('milli') ? 1 : unit.startsWith('s') ? 1000 : unit.startsWith('m') ? 60_000 : unit.startsWith('h') ? 3_600_000 : unit.startsWith('d') ? 86_400_000 : 604_800_000;
  return Number(m[1]) * ms;
}

/** What a pending batch reads from one stream source. */
export interface SourceRange {
  /** Delta: last version already processed (undefined: start from the snapshot at `to` or at `startingVersion`). */
  from?: number;
  to?: number;
  /** Files: the new files of this batch. */
  files?: string[];
  /** Files: their modification times (same order). */
  mtimes?: number[];
  /** Files: more new files were left for the next batch (maxFilesPerTrigger). */
  more?: boolean;
  /** Files: the source's schema after this batch (set when the batch is read; see SourceOffset.schema). */
  schema?: Array<[string, string]>;
}

export interface FlowCheckpoint {
  flow: string;
  /** Last committed batch (-1: none). Monotonic across full refreshes (txn versions only grow). */
  batchId: number;
  sources: Record<string, SourceOffset>;
  pending?: { batchId: number; sources: Record<string, SourceRange>; snapshotVersion?: number };
  /** `once` flows: the backfill ran. */
  onceDone?: boolean;
  /** Snapshot CDC: the last snapshot version applied. */
  snapshotVersion?: number | null;
  /** Materialized views: the input versions of the last refresh (skip when unchanged). */
  inputVersions?: Record<string, number>;
  /** Materialized views: a hash of the query's SQL at the last refresh (skip only when unchanged too). */
  definition?: string;
  updatedAt?: string;
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.tmp-${randomUUID()}`);
  await fs.writeFile(tmp, JSON.stringify(value, null, 2));
  await fs.rename(tmp, file);
}

export async function readJson<T>(file: string): Promise<T | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new FloeError('PIPELINE_STATE_CORRUPT', `The pipeline state file ${file} is not valid JSON.`, { file });
  }
}

const safe = (n: string): string => n.replace(/[^A-Za-z0-9_.-]/g, '_');

export class PipelineState {
  constructor(readonly root: string) {}

  checkpointFile(flow: string): string {
    return path.join(this.root, 'checkpoints', `${safe(flow)}.json`);
  }
  async checkpoint(flow: string): Promise<FlowCheckpoint> {
    return (await readJson<FlowCheckpoint>(this.checkpointFile(flow))) ?? { flow, batchId: -1, sources: {} };
  }
  async saveCheckpoint(cp: FlowCheckpoint): Promise<void> {
    await writeJsonAtomic(this.checkpointFile(cp.flow), { ...cp, updatedAt: new Date().toISOString() });
  }
  /** Forgets a flow's progress (full refresh); the batch id keeps growing. */
  async resetCheckpoint(flow: string): Promise<void> {
    const cp = await this.checkpoint(flow);
    await this.saveCheckpoint({ flow, batchId: Math.max(cp.batchId, cp.pending?.batchId ?? -1), sources: {} });
  }

  tableFile(dataset: string): string {
    return path.join(this.root, 'tables', `${safe(dataset)}.json`);
  }
  async resetPending(dataset: string): Promise<boolean> {
    return (await readJson<{ resetPending?: boolean }>(this.tableFile(dataset)))?.resetPending === true;
  }
  async setResetPending(dataset: string, v: boolean, schemaReset?: boolean): Promise<void> {
    await this.updateTableFile(dataset, { resetPending: v, ...(schemaReset !== undefined ? { schemaReset } : {}) });
  }
  /**
   * The dataset was fully refreshed and has had no rows since: its next write replaces the table's
   * schema with what the flows now produce (a full refresh rebuilds the table from the current
   * definitions), rather than appending to the old schema.
   */
  async schemaReset(dataset: string): Promise<boolean> {
    return (await readJson<{ schemaReset?: boolean }>(this.tableFile(dataset)))?.schemaReset === true;
  }
  async clearSchemaReset(dataset: string): Promise<void> {
    await this.updateTableFile(dataset, { schemaReset: false });
  }
  private async updateTableFile(dataset: string, patch: { resetPending?: boolean; schemaReset?: boolean }): Promise<void> {
    const cur = await readJson<{ resetPending?: boolean; schemaReset?: boolean }>(this.tableFile(dataset));
    await writeJsonAtomic(this.tableFile(dataset), { dataset, resetPending: cur?.resetPending === true, schemaReset: cur?.schemaReset === true, ...patch, at: new Date().toISOString() });
  }

  /** The pipeline's id (created on first use). */
  async pipelineId(name: string): Promise<string> {
    const f = path.join(this.root, 'pipeline.json');
    const cur = await readJson<{ id: string }>(f);
    if (cur?.id) return cur.id;
    const id = randomUUID();
    await writeJsonAtomic(f, { id, name, createdAt: new Date().toISOString() });
    return id;
  }

  /** Takes the run lock; returns its release function. */
  async lock(pipeline: string): Promise<() => Promise<void>> {
    await fs.mkdir(this.root, { recursive: true });
    const file = path.join(this.root, 'run.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      // Written whole to a temp file, then linked into place: the lock never exists half-written (a
      // process killed in between leaves only a temp file, not an empty lock that blocks every run).
      const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
      await fs.writeFile(tmp, JSON.stringify({ pid: process.pid, host: os.hostname(), at: Date.now() }));
      try {
        await fs.link(tmp, file);
        return async () => void (await fs.rm(file, { force: true }));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const info = await readJson<{ pid?: number; host?: string }>(file).catch(() => null);
        let alive = true;
        if (info?.host === os.hostname() && typeof info.pid === 'number') {
          try {
            process.kill(info.pid, 0);
          } catch {
            alive = false;
          }
        }
        if (alive) throw new FloeError('PIPELINE_UPDATE_RUNNING', `Another update of pipeline '${pipeline}' is running (pid ${info?.pid ?? '?'}, lock ${file}). Wait for it, or delete the lock if no floe process is running.`, { lock: file });
        await fs.rm(file, { force: true });
      } finally {
        await fs.rm(tmp, { force: true });
      }
    }
    throw new FloeError('PIPELINE_UPDATE_RUNNING', `Cannot take the run lock ${file}.`);
  }
}
