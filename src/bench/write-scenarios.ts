/**
 * Write benchmarks (run by run.ts):
 *
 * - append-10m: `df.write.delta(path, { mode: 'append' })` of 10 million rows (5 columns from a
 *   DuckDB range() query) into a new table, against DuckDB's own `COPY (same query) TO dir (FORMAT
 *   parquet, FILE_SIZE_BYTES 134217728)` on the same engine: floe's default target file size and
 *   the same rotation rule, so both write the same number of files. A fresh folder per run, removed after.
 * - commit-latency: one-row appends to a table at version 9,999 (10,000 versions, see
 *   generate.ts COMMIT_PARAMS), timed one by one, against `LocalObjectStore.putIfAbsent` of a real
 *   floe commit's bytes to the same log name in an identical copy of the table. Each run copies the
 *   template table afresh (twice: one copy per side; see cloneTable) and opens a fresh session, so
 *   every run starts at v9999.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DeltaLog } from '../core/delta-log.js';
import { Floe } from '../floe.js';
import { LocalObjectStore } from '../storage/local.js';
import type { WriteResult } from '../table/write.js';
import { COMMIT_PARAMS, type CommitTableInfo, writeRowsSql } from './generate.js';
import { type Measured, PhaseTimer, collectGarbage, cpuMs, measure, nowMs, round, summarize } from './stats.js';

export interface WriteScenarioOptions {
  runs: number;
  profile: boolean;
  /** `.bench-data/`; scratch folders go to its `tmp/`. */
  dataDir: string;
}

export interface WriteScenarioOutput {
  floe: number[];
  base: number[];
  notes: string[];
  profile?: Record<string, Record<string, number>>;
}

/** floe's DEFAULT_TARGET_FILE_SIZE, which its writer passes as FILE_SIZE_BYTES for unpartitioned tables. */
export const TARGET_FILE_SIZE = 134_217_728;
export const APPEND_ROWS = 10_000_000;
export const COMMITS_PER_RUN = 50;

const pad20 = (v: number): string => String(v).padStart(20, '0');
const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export async function scratchDir(o: WriteScenarioOptions, prefix: string): Promise<string> {
  const dir = path.join(o.dataDir, 'tmp', `${prefix}-${randomUUID()}`);
  await fs.mkdir(path.dirname(dir), { recursive: true });
  return dir;
}

/** Removes scratch folders a crashed earlier run left behind. */
export async function cleanScratch(dataDir: string): Promise<void> {
  await fs.rm(path.join(dataDir, 'tmp'), { recursive: true, force: true });
}

async function parquetFiles(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith('.parquet')) continue;
    files++;
    bytes += (await fs.stat(path.join(dir, name))).size;
  }
  return { files, bytes };
}

/**
 * A copy of a `_delta_log`-only table: hard links for the log files (fs.cp of 10,000 files takes
 * tens of seconds), a real copy of `_last_checkpoint`. Safe because nothing changes a log file in
 * place: commits appear by link() of a temp file, checkpoints and `_last_checkpoint` by rename(),
 * which replace the name in the copy and leave the template's inode alone.
 */
async function cloneTable(src: string, dst: string): Promise<void> {
  const from = path.join(src, '_delta_log');
  const to = path.join(dst, '_delta_log');
  await fs.mkdir(to, { recursive: true });
  const names = await fs.readdir(from);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const n = names[next++]!;
      if (n === '_last_checkpoint') await fs.copyFile(path.join(from, n), path.join(to, n));
      else await fs.link(path.join(from, n), path.join(to, n));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

export const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MB`;

/** A note comparing CPU-time medians (process user + system, all threads). */
export function cpuNote(floe: number[], base: number[], unit: string): string {
  const f = summarize(floe).median;
  const b = summarize(base).median;
  return `CPU time ${unit}: floe ${round(f)} ms, baseline ${round(b)} ms (${(f / b).toFixed(2)}x)`;
}

// ------------------------------------------------------------------------------- instrumentation

/**
 * Times floe's public calls made during one write by wrapping them on the instances (own properties
 * shadowing the prototype methods; removed by `restore`). Nested wrapped calls count to the outermost.
 */
export class CallTimer {
  private depth = 0;
  private readonly restores: (() => void)[] = [];
  sums = new Map<string, number>();
  /** The last data-file COPY statement seen (to replay its variants). */
  lastCopySql = '';

  wrap(obj: object, key: string, label: (args: unknown[]) => string): void {
    const target = obj as Record<string, unknown>;
    const orig = target[key] as (...a: unknown[]) => Promise<unknown>;
    if (Object.prototype.hasOwnProperty.call(target, key)) throw new Error(`CallTimer: ${key} is already wrapped`);
    const self = this;
    target[key] = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      if (self.depth > 0) return orig.apply(this, args);
      self.depth++;
      const t0 = nowMs();
      try {
        return await orig.apply(this, args);
      } finally {
        self.depth--;
        const l = label(args);
        self.sums.set(l, (self.sums.get(l) ?? 0) + nowMs() - t0);
      }
    };
    this.restores.push(() => void delete target[key]);
  }

  /** Wraps the calls writeDelta makes: log listing and snapshots, DESCRIBE, the data COPY, the commit, the checkpoint. */
  static forWrite(floe: Floe, log: DeltaLog): CallTimer {
    const t = new CallTimer();
    const sqlOf = (args: unknown[]): string => String(args[0]).trimStart().slice(0, 16).toUpperCase();
    t.wrap(log, 'exists', () => 'exists (full log listing)');
    t.wrap(log, 'snapshot', (a) => (a[0] === undefined ? 'snapshot (latest)' : 'checkpoint: snapshot at version'));
    t.wrap(floe.engine, 'describe', () => 'schema (DESCRIBE)');
    t.wrap(floe.engine, 'allJson', (a) => {
      if (!sqlOf(a).startsWith('COPY')) return 'other engine queries';
      t.lastCopySql = String(a[0]);
      return 'data files (COPY … RETURN_STATS)';
    });
    t.wrap(floe.engine, 'run', (a) => (sqlOf(a).startsWith('COPY') ? 'checkpoint: write parquet' : 'other engine queries'));
    t.wrap(log.store, 'putIfAbsent', () => 'commit (putIfAbsent)');
    t.wrap(log.store, 'put', () => 'checkpoint: _last_checkpoint');
    return t;
  }

  /** The log reads inside exists() and snapshot(): listing, `_last_checkpoint`, the checkpoint read. */
  static logDetail(log: DeltaLog): CallTimer {
    const t = new CallTimer();
    t.wrap(log, 'lastCheckpoint', () => 'lastCheckpoint');
    t.wrap(log, 'listLogFiles', (a) => (a[0] === undefined ? 'listLogFiles (all)' : 'listLogFiles (from checkpoint)'));
    t.wrap(log, 'readCheckpoint', () => 'readCheckpoint');
    return t;
  }

  /** This write's phases (ms), plus `other (JS)` = total − phases; resets for the next write. */
  take(totalMs: number): Record<string, number> {
    const out: Record<string, number> = {};
    let sum = 0;
    for (const [k, v] of this.sums) {
      out[k] = v;
      sum += v;
    }
    out['other (JS: stats, commit JSON, replay bookkeeping)'] = Math.max(0, totalMs - sum);
    out.total = totalMs;
    this.sums = new Map();
    return out;
  }

  restore(): void {
    for (const r of this.restores.splice(0)) r();
  }
}

function recordAll(timer: PhaseTimer, phases: Record<string, number>): void {
  for (const [k, v] of Object.entries(phases)) timer.record(k, v);
}

// ------------------------------------------------------------------------------------ append-10m

export async function append10m(o: WriteScenarioOptions): Promise<WriteScenarioOutput> {
  const notes: string[] = [];
  const rowsSql = writeRowsSql(APPEND_ROWS);
  const floe = await Floe.create();
  try {
    let floeOut: { r: WriteResult; files: number; bytes: number } | null = null;
    let baseOut: { files: number; bytes: number } | null = null;
    const floeCpu: number[] = [];
    const baseCpu: number[] = [];
    const floeRun: Measured = async () => {
      const dir = await scratchDir(o, 'append-floe');
      await fs.mkdir(dir);
      try {
        const df = floe.duckdbSql(rowsSql);
        const c0 = cpuMs();
        const t0 = nowMs();
        const r = await df.write.delta(dir, { mode: 'append' });
        const ms = nowMs() - t0;
        floeCpu.push(cpuMs() - c0);
        if (r.numOutputRows !== APPEND_ROWS || r.version !== 0) throw new Error(`append-10m: floe wrote ${r.numOutputRows} rows at version ${r.version}, expected ${APPEND_ROWS} at 0`);
        floeOut = { r, ...(await parquetFiles(dir)) };
        return ms;
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    };
    const baseRun: Measured = async () => {
      const dir = await scratchDir(o, 'append-base');
      await fs.mkdir(dir);
      try {
        const c0 = cpuMs();
        const t0 = nowMs();
        await floe.engine.run(`COPY (${rowsSql}) TO ${sqlString(dir)} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE})`);
        const ms = nowMs() - t0;
        baseCpu.push(cpuMs() - c0);
        const n = Number((await floe.engine.allJson(`SELECT count(*) AS n FROM read_parquet(${sqlString(path.join(dir, '*.parquet'))})`))[0]!.n);
        if (n !== APPEND_ROWS) throw new Error(`append-10m: baseline wrote ${n} rows, expected ${APPEND_ROWS}`);
        baseOut = await parquetFiles(dir);
        return ms;
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    };
    const m = await measure(o.runs, floeRun, baseRun);
    const f = floeOut as { r: WriteResult; files: number; bytes: number } | null;
    const b = baseOut as { files: number; bytes: number } | null;
    notes.push(`${APPEND_ROWS} rows x 5 cols; FILE_SIZE_BYTES ${TARGET_FILE_SIZE} on both`);
    if (f && b) notes.push(`floe ${f.r.numFiles} files ${mb(f.bytes)}, baseline ${b.files} files ${mb(b.bytes)}`);
    // The first sample of each is the warm-up.
    notes.push(cpuNote(floeCpu.slice(1), baseCpu.slice(1), 'per write (median)'));
    const out: WriteScenarioOutput = { ...m, notes };
    if (o.profile) out.profile = await profileAppend(o, floe, rowsSql);
    return out;
  } finally {
    await floe.close();
  }
}

/** One instrumented floe append, then the baseline COPY with floe's COPY options added one at a time. */
async function profileAppend(o: WriteScenarioOptions, floe: Floe, rowsSql: string): Promise<Record<string, Record<string, number>>> {
  const dir = await scratchDir(o, 'append-prof');
  await fs.mkdir(dir);
  let phases: Record<string, number>;
  let copySql = '';
  try {
    const t = CallTimer.forWrite(floe, floe.deltaLog(dir));
    try {
      collectGarbage();
      const t0 = nowMs();
      await floe.duckdbSql(rowsSql).write.delta(dir, { mode: 'append' });
      phases = t.take(nowMs() - t0);
      copySql = t.lastCopySql;
    } finally {
      t.restore();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  // The same rows through COPY variants (one run each, after a GC): what each of floe's additions costs.
  const variants: [string, (d: string) => string][] = [
    ['baseline COPY', (d) => `COPY (${rowsSql}) TO ${sqlString(d)} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE})`],
    ['+ RETURN_STATS', (d) => `COPY (${rowsSql}) TO ${sqlString(d)} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE}, RETURN_STATS)`],
  ];
  if (copySql) {
    const m = /^COPY \(([\s\S]*)\) TO '((?:[^']|'')*)' \(([\s\S]*)\)$/.exec(copySql.trim());
    if (m) {
      const [, query, , opts] = m;
      variants.push(['floe COPY statement verbatim', (d) => `COPY (${query}) TO ${sqlString(d)} (${opts})`]);
      variants.push(['floe SELECT (CASTs), baseline options', (d) => `COPY (${query}) TO ${sqlString(d)} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE})`]);
    }
  }
  const copyT: Record<string, number> = {};
  for (const [name, sql] of variants) {
    const d = await scratchDir(o, 'append-var');
    await fs.mkdir(d);
    try {
      collectGarbage();
      const t0 = nowMs();
      await floe.engine.allJson(sql(d));
      copyT[name] = round(nowMs() - t0);
    } finally {
      await fs.rm(d, { recursive: true, force: true });
    }
  }
  const rounded = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(v)]));
  return { 'floe phases (1 instrumented write)': rounded, 'COPY variants (1 run each)': copyT };
}

// -------------------------------------------------------------------------------- commit-latency

/** One row of the commit-latency table's schema. */
export function oneRowSql(i: number): string {
  return `SELECT ${i}::BIGINT AS id, ${(i % 1000) / 8}::DOUBLE AS v, 'str-${i}' AS s, DATE '2024-01-01' AS d, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS ts`;
}

interface CommitRun {
  floe: number[];
  base: number[];
  floeCpu: number[];
  baseCpu: number[];
  /** Whether floe's i-th commit also wrote a checkpoint (version % checkpointInterval == 0). */
  checkpointed: boolean[];
  copyMs: number;
  commitBytes: Uint8Array | null;
  phases: Record<string, number>[];
}

/**
 * One run: two fresh copies of the table and a fresh floe session; `n` one-row appends through floe
 * and `n` putIfAbsent of `payload` to the same log names in the other copy, interleaved one by one
 * (alternating which goes first), a GC before each.
 */
async function commitRun(o: WriteScenarioOptions, info: CommitTableInfo, n: number, payload: Uint8Array | null, instrument: boolean): Promise<CommitRun> {
  const floeDir = await scratchDir(o, 'commit-floe');
  const baseDir = await scratchDir(o, 'commit-base');
  const interval = Number(COMMIT_PARAMS.configuration['delta.checkpointInterval']);
  const t0 = nowMs();
  await Promise.all([cloneTable(info.path, floeDir), cloneTable(info.path, baseDir)]);
  const copyMs = nowMs() - t0;
  const floe = await Floe.create();
  const out: CommitRun = { floe: [], base: [], floeCpu: [], baseCpu: [], checkpointed: [], copyMs, commitBytes: null, phases: [] };
  const timer = instrument ? CallTimer.forWrite(floe, floe.deltaLog(floeDir)) : null;
  const detail = instrument ? CallTimer.logDetail(floe.deltaLog(floeDir)) : null;
  try {
    const store = new LocalObjectStore(baseDir);
    let bytes = payload;
    const floeOne = async (i: number): Promise<void> => {
      collectGarbage();
      const df = floe.duckdbSql(oneRowSql(info.version + 1 + i));
      const c0 = cpuMs();
      const s = nowMs();
      const r = await df.write.delta(floeDir, { mode: 'append' });
      const ms = nowMs() - s;
      out.floeCpu.push(cpuMs() - c0);
      const expected = info.version + 1 + i;
      if (r.version !== expected || r.numOutputRows !== 1) throw new Error(`commit-latency: floe committed version ${r.version} (${r.numOutputRows} rows), expected ${expected} (1 row)`);
      out.floe.push(ms);
      out.checkpointed.push(expected % interval === 0);
      if (timer && detail) {
        const p = timer.take(ms);
        const d = detail.take(0);
        delete d.total;
        delete d['other (JS: stats, commit JSON, replay bookkeeping)'];
        for (const [k, v] of Object.entries(d)) p[`  within: ${k}`] = v;
        out.phases.push(p);
      }
      if (!bytes) bytes = out.commitBytes = await fs.readFile(path.join(floeDir, '_delta_log', `${pad20(expected)}.json`));
    };
    const baseOne = async (i: number): Promise<void> => {
      if (!bytes) throw new Error('commit-latency: no commit payload yet');
      collectGarbage();
      const c0 = cpuMs();
      const s = nowMs();
      await store.putIfAbsent(`_delta_log/${pad20(info.version + 1 + i)}.json`, bytes);
      out.base.push(nowMs() - s);
      out.baseCpu.push(cpuMs() - c0);
    };
    for (let i = 0; i < n; i++) {
      // The first baseline put needs a floe commit's bytes when none were given.
      if (i % 2 === 0 || !bytes) {
        await floeOne(i);
        await baseOne(i);
      } else {
        await baseOne(i);
        await floeOne(i);
      }
    }
  } finally {
    timer?.restore();
    detail?.restore();
    await floe.close();
    await Promise.all([fs.rm(floeDir, { recursive: true, force: true }), fs.rm(baseDir, { recursive: true, force: true })]);
  }
  return out;
}

export async function commitLatency(o: WriteScenarioOptions, info: CommitTableInfo): Promise<WriteScenarioOutput> {
  const notes: string[] = [];
  // Warm-up (discarded): JIT, DuckDB, page cache; and the bytes of a real floe commit for the baseline.
  const warm = await commitRun(o, info, 5, null, false);
  const payload = warm.commitBytes!;
  const floe: number[] = [];
  const base: number[] = [];
  const cpMs: number[] = [];
  const steadyMs: number[] = [];
  const floeCpu: number[] = [];
  const baseCpu: number[] = [];
  const copyMs: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    const run = await commitRun(o, info, COMMITS_PER_RUN, payload, false);
    floe.push(...run.floe);
    base.push(...run.base);
    floeCpu.push(...run.floeCpu);
    baseCpu.push(...run.baseCpu);
    copyMs.push(run.copyMs);
    run.floe.forEach((ms, i) => (run.checkpointed[i] ? cpMs : steadyMs).push(ms));
  }
  const f = summarize(floe);
  const b = summarize(base);
  const steady = summarize(steadyMs);
  notes.push(`${o.runs} runs x ${COMMITS_PER_RUN} commits from v${info.version} (table copied fresh per run, ${Math.round(summarize(copyMs).median)} ms, untimed); delta.checkpointInterval ${COMMIT_PARAMS.configuration['delta.checkpointInterval']}`);
  notes.push(`per commit p99: floe ${round(f.p99)} ms, baseline ${round(b.p99)} ms`);
  if (cpMs.length) notes.push(`commits that also checkpoint (v${info.version + 1}, 1st of each run): median ${round(summarize(cpMs).median)} ms; the others: median ${round(steady.median)}, p99 ${round(steady.p99)} ms`);
  notes.push(cpuNote(floeCpu, baseCpu, 'per commit (median)'));
  notes.push(`commit file ${payload.length} B`);
  const out: WriteScenarioOutput = { floe, base, notes };
  if (o.profile) {
    const run = await commitRun(o, info, COMMITS_PER_RUN, payload, true);
    const plain = new PhaseTimer();
    const cp = new PhaseTimer();
    run.phases.forEach((p, i) => recordAll(run.checkpointed[i] ? cp : plain, p));
    out.profile = { 'floe phases per commit (1 instrumented run, non-checkpointing commits)': plain.medians() };
    if (run.checkpointed.some(Boolean)) out.profile['the checkpointing commit'] = cp.medians();
  }
  return out;
}
