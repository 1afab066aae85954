/**
 * MERGE and change-data-feed benchmarks (run by run.ts):
 *
 * - merge-1m-into-10m: a MERGE (whenMatchedUpdateAll + whenNotMatchedInsertAll) of a 1-million-row
 *   source (500,000 existing ids, 500,000 new ids >= 10M) into a 10-million-row table with the
 *   change data feed on (20 files by id range, see MERGE_TABLE_PARAMS), in two variants: `random`
 *   (updated ids spread over the whole range: every file is touched) and `clustered` (updated ids in
 *   2 files). Each floe run gets a fresh copy of the pristine table (hard links for the data files,
 *   copies of the log) and a fresh session. Baselines measured in the same rounds, fresh sessions:
 *   (a) DuckDB's own `MERGE INTO` on an in-memory DuckDB table holding the same 10M rows (loaded
 *   before timing); (b) DuckDB rewriting just the touched files: `COPY (touched Parquet files FULL
 *   OUTER JOIN source) TO dir (FORMAT parquet)`, the least floe must do (no stats, no change data,
 *   no log). The source is a DuckDB table in the session (created before timing) on every side.
 *   Extra rows, not targeted: floe with `delta.enableDeletionVectors=true` (set on the copy before
 *   timing; only new rows are written) against (a); and floe against DuckDB's MERGE into a table of a
 *   file-backed DuckDB database followed by `CHECKPOINT` (durable, as floe's commit is).
 * - merge-1pct: the same MERGE with a source of 100,000 existing ids (1% of the keys, every 10th id
 *   of [4.5M, 5.5M): 2 of the 20 files), no inserts. Checks that only those files are rewritten.
 * - dml-update / dml-delete: `DeltaTable.update` / `delete` of 10% of the MERGE target's rows (every
 *   file touched) against DuckDB's own UPDATE / DELETE on an in-memory table of the same rows, and
 *   against DuckDB rewriting the touched files with the change applied (plus the change rows).
 * - cdf-read-100: `floe.read.changes(p, { startingVersion: 1, endingVersion: 100 })` and one
 *   aggregate over it, on a table whose versions 1..100 (UPDATEs, MERGEs, DELETEs and appends, written
 *   by floe; see CDF_PARAMS) changed 1,000,000 rows in all; a fresh session per run, so the time
 *   includes loading the log and planning. Baseline: the same aggregate over `read_parquet` of the
 *   same `_change_data` files plus the add files of the versions without change files (appends).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import type { MergeMetrics } from '../table/merge.js';
import { allExist, createCommit, readMarker, writeIdRangeFiles, writeMarker } from './generate.js';
import { type Measured, PhaseTimer, collectGarbage, cpuMs, measureEach, nowMs, round, sameResult } from './stats.js';
import { CallTimer, TARGET_FILE_SIZE, cpuNote, mb, scratchDir } from './write-scenarios.js';

export interface MergeScenarioOptions {
  runs: number;
  profile: boolean;
  /** `.bench-data/`; scratch folders go to its `tmp/`. */
  dataDir: string;
  regenerate: boolean;
}

/** One row of the results table: floe against one baseline. */
export interface ComparisonRow {
  label: string;
  /** Whether the scenario's target ratio applies to this row (it is against the baseline the target names). */
  targeted: boolean;
  floe: number[];
  base: number[];
  notes: string[];
  profile?: Record<string, Record<string, number>>;
}

const pad20 = (v: number): string => String(v).padStart(20, '0');
const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const sqlList = (files: string[]): string => `[${files.map(sqlString).join(', ')}]`;
/** The aggregate every check compares (as the scan scenarios). */
const AGG = 'count(*) AS n, sum(id) AS sum_id, sum(v) AS sum_v, sum(length(s)) AS sum_len_s, max(d) AS max_d';

// ------------------------------------------------------------------------------------ the tables

/** The MERGE target template: 10M rows (id, v, s, d) in 20 files of 500,000 ids each, the change data feed on. */
export const MERGE_TABLE_PARAMS = {
  kind: 'merge-target',
  format: 1,
  rows: 10_000_000,
  files: 20,
  protocol: { minReaderVersion: 1, minWriterVersion: 4 },
  configuration: { 'delta.enableChangeDataFeed': 'true' },
} as const;

export interface MergeTableInfo {
  path: string;
  rows: number;
  /** Rows per file: file k holds ids [k * perFile, (k + 1) * perFile). */
  perFile: number;
  /** Absolute paths, ascending by id range. */
  dataFiles: string[];
  generatedInMs?: number;
}

export async function ensureMergeTable(root: string, regenerate: boolean): Promise<MergeTableInfo> {
  const P = MERGE_TABLE_PARAMS;
  const marker = path.join(root, 'merge-target.json');
  const table = path.join(root, 'merge-target');
  if (!regenerate) {
    const info = await readMarker<MergeTableInfo>(marker, P);
    if (info && (await allExist([...info.dataFiles, path.join(info.path, '_delta_log', `${pad20(0)}.json`)]))) return { ...info, generatedInMs: undefined };
  }
  const t0 = nowMs();
  await fs.rm(table, { recursive: true, force: true });
  await fs.mkdir(path.join(table, '_delta_log'), { recursive: true });
  const files = await writeIdRangeFiles(table, P.rows, P.files);
  await fs.writeFile(path.join(table, '_delta_log', `${pad20(0)}.json`), createCommit(files, P.rows, { ...P.protocol }, { ...P.configuration }));
  const info: MergeTableInfo = { path: table, rows: P.rows, perFile: Math.ceil(P.rows / P.files), dataFiles: files.dataFiles, generatedInMs: Math.round(nowMs() - t0) };
  await writeMarker(marker, P, info);
  return info;
}

/**
 * A writable copy of a table: hard links for the data files (never modified in place: floe writes
 * new files under new names and removes old ones only logically), real copies of the log files.
 */
async function cloneDeltaTable(src: string, dst: string): Promise<void> {
  await fs.mkdir(path.join(dst, '_delta_log'), { recursive: true });
  const names = await fs.readdir(src);
  await Promise.all(names.filter((n) => n.endsWith('.parquet')).map((n) => fs.link(path.join(src, n), path.join(dst, n))));
  const logNames = await fs.readdir(path.join(src, '_delta_log'));
  await Promise.all(logNames.map((n) => fs.copyFile(path.join(src, '_delta_log', n), path.join(dst, '_delta_log', n))));
}

/**
 * The change-feed table: version 0 writes 200,000 rows (ids 0..199,999) with the feed on; versions
 * 1..100 each change 10,000 rows: v % 10 == 0 appends 10,000 new rows (no change files: the add is
 * the change), v % 10 == 5 DELETEs 10,000 rows (ids from 100,000 up), v % 10 == 3 MERGEs 2,500
 * updates and 5,000 inserts, every other version UPDATEs 5,000 rows (ids below 100,000). Checkpoints
 * every 10 versions (the default). Written by floe itself.
 */
export const CDF_PARAMS = {
  kind: 'cdf-read-100',
  format: 1,
  baseRows: 200_000,
  versions: 100,
  changedRowsPerVersion: 10_000,
} as const;

export interface CdfTableInfo {
  path: string;
  version: number;
  /** Absolute paths of the versions' `_change_data` files. */
  cdcFiles: string[];
  /** Add files (dataChange) of the versions without change files: every row an insert. */
  insertFiles: string[];
  /** Remove files (dataChange) of the versions without change files: every row a delete. */
  deleteFiles: string[];
  generatedInMs?: number;
}

function cdfRowsSql(from: number, n: number, tag: string): string {
  return `SELECT range AS id, ((range * 2654435761) % 1000003)::DOUBLE / 100.0 AS v, '${tag}-' || (hash(range) % 100000)::VARCHAR AS s, (DATE '2020-01-01' + (range // 10000)::INTEGER) AS d FROM range(${from}, ${from + n})`;
}

async function generateCdfTable(root: string): Promise<CdfTableInfo> {
  const P = CDF_PARAMS;
  const t0 = nowMs();
  const table = path.join(root, 'cdf-read-100');
  await fs.rm(table, { recursive: true, force: true });
  const floe = await Floe.create();
  try {
    const r0 = await floe.duckdbSql(cdfRowsSql(0, P.baseRows, 'str')).write.delta(table, { mode: 'error', properties: { 'delta.enableChangeDataFeed': 'true' } });
    if (r0.version !== 0) throw new Error(`cdf-read-100: create committed version ${r0.version}`);
    let next = 1_000_000;
    const half = P.changedRowsPerVersion / 2;
    for (let v = 1; v <= P.versions; v++) {
      const t = await DeltaTable.forPath(floe, table);
      let version: number | null;
      if (v % 10 === 0) {
        version = (await floe.duckdbSql(cdfRowsSql(next, P.changedRowsPerVersion, 'app')).write.delta(table, { mode: 'append' })).version;
        next += P.changedRowsPerVersion;
      } else if (v % 10 === 5) {
        const lo = P.baseRows / 2 + ((v - 5) / 10) * P.changedRowsPerVersion;
        version = (await t.delete(`id >= ${lo} AND id < ${lo + P.changedRowsPerVersion}`)).version;
      } else if (v % 10 === 3) {
        const lo = (v * half) % (P.baseRows / 2);
        const src = floe.duckdbSql(`SELECT id, -v AS v, 'mrg-${v}' AS s, d FROM (${cdfRowsSql(lo, half / 2, 'x')}) UNION ALL ${cdfRowsSql(next, half, 'new')}`);
        next += half;
        version = (await t.alias('target').merge(src.alias('source'), 'target.id = source.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()).version;
      } else {
        const lo = (v * half) % (P.baseRows / 2);
        version = (await t.update({ condition: `id >= ${lo} AND id < ${lo + half}`, set: { v: 'v + 1', s: `s || '-u${v}'` } })).version;
      }
      if (version !== v) throw new Error(`cdf-read-100: step ${v} committed version ${version}`);
    }
  } finally {
    await floe.close();
  }
  // The baseline's file lists, straight from the commit JSON (not through floe's reader).
  const cdcFiles: string[] = [];
  const insertFiles: string[] = [];
  const deleteFiles: string[] = [];
  const abs = (p: string): string => path.join(table, decodeURIComponent(p));
  for (let v = 1; v <= P.versions; v++) {
    const text = await fs.readFile(path.join(table, '_delta_log', `${pad20(v)}.json`), 'utf8');
    const actions = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, { path: string; dataChange?: boolean }>);
    const cdc = actions.filter((a) => a.cdc).map((a) => abs(a.cdc!.path));
    if (cdc.length) {
      cdcFiles.push(...cdc);
      continue;
    }
    insertFiles.push(...actions.filter((a) => a.add && a.add.dataChange !== false).map((a) => abs(a.add!.path)));
    deleteFiles.push(...actions.filter((a) => a.remove && a.remove.dataChange !== false).map((a) => abs(a.remove!.path)));
  }
  const info: CdfTableInfo = { path: table, version: P.versions, cdcFiles, insertFiles, deleteFiles, generatedInMs: Math.round(nowMs() - t0) };
  await writeMarker(path.join(root, 'cdf-read-100.json'), P, info);
  return info;
}

export async function ensureCdfTable(root: string, regenerate: boolean): Promise<CdfTableInfo> {
  if (!regenerate) {
    const info = await readMarker<CdfTableInfo>(path.join(root, 'cdf-read-100.json'), CDF_PARAMS);
    if (info && (await allExist([...info.cdcFiles, ...info.insertFiles, ...info.deleteFiles, path.join(info.path, '_delta_log', `${pad20(info.version)}.json`)]))) return { ...info, generatedInMs: undefined };
  }
  return generateCdfTable(root);
}

// ------------------------------------------------------------------------------------ instrumentation

/** What one of floe's SQL statements inside a MERGE does (by its text). */
function mergeStatement(sql: string): string {
  const q = sql.trimStart();
  if (/^COPY/i.test(q)) return /_change_data'/.test(q) ? 'write change data files (COPY)' : 'write data files (COPY)';
  if (/^CREATE TABLE __floe_msrc_/.test(q)) return 'materialize source';
  if (/^CREATE TABLE __floe_mjoin_/.test(q)) return /NOT coalesce\(/.test(q) ? 'join target x in-range source (LEFT JOIN, CREATE TABLE mjoin)' : 'join target x source (CREATE TABLE mjoin)';
  if (/^SELECT bool_or\(/.test(q)) return 'prune files by source keys (bool_or per file)';
  if (/^SELECT (0 AS )?dup/.test(q)) return 'metrics and touched files';
  if (/^INSERT INTO __floe_mjoin_/.test(q)) return 'unmatched source rows (INSERT INTO mjoin)';
  if (/HAVING count\(\*\) > 1/.test(q)) return 'duplicate-match check';
  if (/^SELECT min\(/.test(q)) return 'source key range';
  if (/^SELECT DISTINCT __file/.test(q)) return 'touched files';
  if (/^SELECT count\(\*\)/.test(q)) return q.includes('QUALIFY') ? 'count copied rows (QUALIFY window)' : 'row counts (metrics)';
  if (/^DESCRIBE/i.test(q)) return 'DESCRIBE';
  return 'other engine queries';
}

/** Wraps a session's engine and a table's log/store to time a MERGE's statements; keeps their SQL. */
function instrumentMerge(floe: Floe, dir: string): { timer: CallTimer; statements: { label: string; sql: string }[] } {
  const timer = new CallTimer();
  const statements: { label: string; sql: string }[] = [];
  const log = floe.deltaLog(dir);
  const label = (a: unknown[]): string => {
    const sql = String(a[0]);
    const l = mergeStatement(sql);
    statements.push({ label: l, sql });
    return l;
  };
  timer.wrap(floe.engine, 'run', label);
  timer.wrap(floe.engine, 'allJson', label);
  timer.wrap(floe.engine, 'describe', () => 'DESCRIBE');
  timer.wrap(floe.engine, 'numericColumns', () => 'matched and changed target rows (duplicate check, DV rows)');
  timer.wrap(log, 'exists', () => 'log: exists');
  timer.wrap(log, 'snapshot', () => 'log: snapshot');
  timer.wrap(log.store, 'putIfAbsent', () => 'log: commit and DV files (putIfAbsent)');
  return { timer, statements };
}

/**
 * Wall time per label of overlapping async calls (the union of each label's in-flight intervals),
 * for phases that run many calls concurrently (readCommit x 100 under mapLimit). Labels may nest.
 */
class IntervalTimer {
  private readonly restores: (() => void)[] = [];
  private readonly active = new Map<string, { n: number; since: number }>();
  sums = new Map<string, number>();

  wrap(obj: object, key: string, label: string): void {
    const target = obj as Record<string, unknown>;
    const orig = target[key] as (...a: unknown[]) => Promise<unknown>;
    const self = this;
    target[key] = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const a = self.active.get(label) ?? { n: 0, since: 0 };
      if (a.n++ === 0) a.since = nowMs();
      self.active.set(label, a);
      try {
        return await orig.apply(this, args);
      } finally {
        if (--a.n === 0) self.sums.set(label, (self.sums.get(label) ?? 0) + nowMs() - a.since);
      }
    };
    this.restores.push(() => void delete target[key]);
  }

  take(): Record<string, number> {
    const out = Object.fromEntries(this.sums);
    this.sums = new Map();
    return out;
  }

  restore(): void {
    for (const r of this.restores.splice(0)) r();
  }
}

/** MB of DuckDB memory held by in-memory tables (the session's own and floe's engine-side tables). */
async function sessionTableMb(floe: Floe): Promise<number> {
  const r = await floe.engine.allJson(`SELECT coalesce(sum(memory_usage_bytes), 0) AS b FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'`);
  return Number(r[0]!.b) / 1048576;
}

// ------------------------------------------------------------------------------------------ MERGE

interface MergeCase {
  /** Row label suffix, e.g. `random`. */
  name: string;
  /** SQL of the updated ids (one BIGINT column `id`, distinct, all < table rows). */
  updatedIdsSql: string;
  updates: number;
  inserts: number;
}

/** The source rows: new values for the updated ids, then `inserts` new ids from 10M; shuffled. */
function sourceSql(c: MergeCase, rows: number): string {
  const upd = `SELECT id::BIGINT AS id, -(id::DOUBLE) / 3 AS v, 'upd-' || id::VARCHAR AS s, DATE '2030-01-01' + (id % 100)::INTEGER AS d FROM (${c.updatedIdsSql})`;
  const ins = `SELECT range AS id, range::DOUBLE / 7 AS v, 'ins-' || range::VARCHAR AS s, DATE '2031-01-01' AS d FROM range(${rows}, ${rows + c.inserts})`;
  return `SELECT * FROM (${upd} UNION ALL ${ins}) ORDER BY hash(id)`;
}

const SRC = 'bench_merge_source';
const MERGE_CONDITION = 'target.id = source.id';

async function floeMerge(floe: Floe, dir: string): Promise<{ version: number | null; metrics: MergeMetrics }> {
  const t = await DeltaTable.forPath(floe, dir);
  return t.alias('target').merge(floe.duckdbSql(`SELECT * FROM ${SRC}`).alias('source'), MERGE_CONDITION).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
}

const DUCKDB_MERGE = (tgt: string): string => `MERGE INTO ${tgt} USING ${SRC} ON ${tgt}.id = ${SRC}.id
  WHEN MATCHED THEN UPDATE SET v = ${SRC}.v, s = ${SRC}.s, d = ${SRC}.d
  WHEN NOT MATCHED THEN INSERT (id, v, s, d) VALUES (${SRC}.id, ${SRC}.v, ${SRC}.s, ${SRC}.d)`;

/** Baseline (b): the touched files joined with the source, written as new Parquet files (floe's file size rule). */
function rewriteSql(touched: string[], dir: string, withCdc: boolean): string {
  const pick = (c: string): string => `CASE WHEN s.id IS NOT NULL THEN s.${c} ELSE t.${c} END AS ${c}`;
  const data = `COPY (SELECT ${['id', 'v', 's', 'd'].map(pick).join(', ')} FROM read_parquet(${sqlList(touched)}) t FULL OUTER JOIN ${SRC} s ON t.id = s.id) TO ${sqlString(dir)} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE})`;
  if (!withCdc) return data;
  // The change rows floe writes too: pre- and post-images of the updates, the inserts.
  return `${data}; COPY (
    SELECT t.id, t.v, t.s, t.d, 'update_preimage' AS _change_type FROM read_parquet(${sqlList(touched)}) t SEMI JOIN ${SRC} s ON t.id = s.id
    UNION ALL SELECT s.id, s.v, s.s, s.d, CASE WHEN t.id IS NULL THEN 'insert' ELSE 'update_postimage' END FROM ${SRC} s LEFT JOIN read_parquet(${sqlList(touched)}) t ON t.id = s.id
  ) TO ${sqlString(path.join(dir, '_change_data'))} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE})`;
}

async function mergeCase(o: MergeScenarioOptions, info: MergeTableInfo, scenario: string, c: MergeCase): Promise<ComparisonRow[]> {
  const srcSql = sourceSql(c, info.rows);
  // Which files hold updated ids (what a MERGE must rewrite), from the generator's layout.
  const touchedIdx = new Set<number>();
  await withSession(async (floe) => {
    for (const r of await floe.engine.allJson(`SELECT DISTINCT (id // ${info.perFile})::INTEGER AS k FROM (${c.updatedIdsSql})`)) touchedIdx.add(Number(r.k));
  });
  const touched = info.dataFiles.filter((_, k) => touchedIdx.has(k));
  const expectedRows = info.rows + c.inserts;

  let floeMetrics: MergeMetrics | null = null;
  let floeAgg: Record<string, unknown> | null = null;
  let floeCdf: Record<string, unknown> | null = null;
  let floeMemMb = 0;
  let mergeAgg: Record<string, unknown> | null = null;
  let rewriteOut: { rows: number; files: number; bytes: number } | null = null;
  const cpu: number[][] = [[], [], []];
  let dvMetrics: MergeMetrics | null = null;
  let dvAgg: Record<string, unknown> | null = null;
  let fileAgg: Record<string, unknown> | null = null;

  // floe's MERGE with deletion vectors on (enabled on the copy before timing): only new rows are written.
  const floeDvRun: Measured = async () => {
    const dir = await scratchDir(o, 'merge-floe-dv');
    await cloneDeltaTable(info.path, dir);
    const floe = await Floe.create();
    try {
      await (await DeltaTable.forPath(floe, dir)).setProperties({ 'delta.enableDeletionVectors': 'true' });
      floe.forgetLog(dir);
      await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
      collectGarbage();
      const t0 = nowMs();
      const r = await floeMerge(floe, dir);
      const ms = nowMs() - t0;
      if (r.version !== 2 || r.metrics.numTargetRowsUpdated !== c.updates || r.metrics.numTargetRowsInserted !== c.inserts) {
        throw new Error(`${scenario} ${c.name} (DVs): floe committed version ${r.version}, ${r.metrics.numTargetRowsUpdated} updated, ${r.metrics.numTargetRowsInserted} inserted; expected 2, ${c.updates}, ${c.inserts}`);
      }
      dvMetrics = r.metrics;
      if (!dvAgg) dvAgg = (await floe.engine.allJson(`SELECT ${AGG} FROM (${await (await floe.read.delta(dir)).toSQL()})`))[0]!;
      return ms;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  // DuckDB's MERGE on a file-backed DuckDB database, made durable by CHECKPOINT (timed with the MERGE).
  const mergeFileRun: Measured = async () => {
    const dir = await scratchDir(o, 'merge-duckdb-file');
    await fs.mkdir(dir);
    const floe = await Floe.create();
    try {
      await floe.engine.run(`ATTACH ${sqlString(path.join(dir, 'bench.duckdb'))} AS fb`);
      await floe.engine.run(`CREATE TABLE fb.bench_target AS SELECT * FROM read_parquet(${sqlList(info.dataFiles)})`);
      await floe.engine.run('CHECKPOINT fb');
      await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
      collectGarbage();
      const t0 = nowMs();
      await floe.engine.allJson(`MERGE INTO fb.bench_target AS t USING ${SRC} AS s ON t.id = s.id
        WHEN MATCHED THEN UPDATE SET v = s.v, s = s.s, d = s.d
        WHEN NOT MATCHED THEN INSERT (id, v, s, d) VALUES (s.id, s.v, s.s, s.d)`);
      await floe.engine.run('CHECKPOINT fb');
      const ms = nowMs() - t0;
      if (!fileAgg) fileAgg = (await floe.engine.allJson(`SELECT ${AGG} FROM fb.bench_target`))[0]!;
      return ms;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };

  const floeRun: Measured = async () => {
    const dir = await scratchDir(o, 'merge-floe');
    await cloneDeltaTable(info.path, dir);
    const floe = await Floe.create();
    try {
      await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
      collectGarbage();
      const c0 = cpuMs();
      const t0 = nowMs();
      const r = await floeMerge(floe, dir);
      const ms = nowMs() - t0;
      cpu[0]!.push(cpuMs() - c0);
      if (r.version !== 1 || r.metrics.numTargetRowsUpdated !== c.updates || r.metrics.numTargetRowsInserted !== c.inserts) {
        throw new Error(`${scenario} ${c.name}: floe committed version ${r.version}, ${r.metrics.numTargetRowsUpdated} updated, ${r.metrics.numTargetRowsInserted} inserted; expected 1, ${c.updates}, ${c.inserts}`);
      }
      floeMetrics = r.metrics;
      if (!floeAgg) {
        floeMemMb = await sessionTableMb(floe);
        floeAgg = (await floe.engine.allJson(`SELECT ${AGG} FROM (${await (await floe.read.delta(dir)).toSQL()})`))[0]!;
        const ch = await floe.read.changes(dir, { startingVersion: 1, endingVersion: 1 });
        floeCdf = (await floe.engine.allJson(`SELECT count(*) FILTER (WHERE _change_type = 'update_preimage') AS pre, count(*) FILTER (WHERE _change_type = 'update_postimage') AS post, count(*) FILTER (WHERE _change_type = 'insert') AS ins, count(*) FILTER (WHERE _change_type = 'delete') AS del FROM (${await ch.toSQL()})`))[0]!;
      }
      return ms;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  const mergeRun: Measured = async () => {
    const floe = await Floe.create();
    try {
      await floe.engine.run(`CREATE TABLE bench_target AS SELECT * FROM read_parquet(${sqlList(info.dataFiles)})`);
      await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
      collectGarbage();
      const c0 = cpuMs();
      const t0 = nowMs();
      const r = await floe.engine.allJson(DUCKDB_MERGE('bench_target'));
      const ms = nowMs() - t0;
      cpu[1]!.push(cpuMs() - c0);
      const n = Number(Object.values(r[0] ?? {})[0]);
      if (n !== c.updates + c.inserts) throw new Error(`${scenario} ${c.name}: DuckDB MERGE changed ${n} rows, expected ${c.updates + c.inserts}`);
      if (!mergeAgg) mergeAgg = (await floe.engine.allJson(`SELECT ${AGG} FROM bench_target`))[0]!;
      return ms;
    } finally {
      await floe.close();
    }
  };
  const rewriteRun: Measured = async () => {
    const dir = await scratchDir(o, 'merge-rewrite');
    await fs.mkdir(dir);
    const floe = await Floe.create();
    try {
      await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
      collectGarbage();
      const c0 = cpuMs();
      const t0 = nowMs();
      await floe.engine.run(rewriteSql(touched, dir, false));
      const ms = nowMs() - t0;
      cpu[2]!.push(cpuMs() - c0);
      if (!rewriteOut) {
        const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.parquet'));
        const bytes = (await Promise.all(names.map((n) => fs.stat(path.join(dir, n))))).reduce((s, st) => s + st.size, 0);
        const rows = Number((await floe.engine.allJson(`SELECT count(*) AS n FROM read_parquet(${sqlString(path.join(dir, '*.parquet'))})`))[0]!.n);
        rewriteOut = { rows, files: names.length, bytes };
        const expect = touched.length * info.perFile + c.inserts;
        if (rows !== expect) throw new Error(`${scenario} ${c.name}: rewrite baseline wrote ${rows} rows, expected ${expect}`);
      }
      return ms;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };

  const [f, a, b, fdv, af] = await measureEach(o.runs, [floeRun, mergeRun, rewriteRun, floeDvRun, mergeFileRun]);
  const m = floeMetrics as MergeMetrics | null;
  const notes: string[] = [];
  notes.push(`source ${c.updates + c.inserts} rows (${c.updates} updates, ${c.inserts} inserts)`);
  if (m) {
    notes.push(`files removed ${m.numTargetFilesRemoved}/${m.numTargetFilesTotal} (expected ${touched.length}${m.numTargetFilesRemoved === touched.length ? ', ok' : ' MISMATCH'}), scanned ${m.numTargetFilesScanned}, added ${m.numTargetFilesAdded} + ${m.numAddedChangeFiles ?? 0} change files`);
    notes.push(`rows updated ${m.numTargetRowsUpdated}, inserted ${m.numTargetRowsInserted}, copied ${m.numTargetRowsCopied}`);
  }
  const fa = floeAgg as Record<string, unknown> | null;
  const ma = mergeAgg as Record<string, unknown> | null;
  if (!fa || !ma || !sameResult(fa, ma) || Number(fa.n) !== expectedRows) {
    const msg = `WARNING: table contents differ: floe ${JSON.stringify(fa)} vs DuckDB MERGE ${JSON.stringify(ma)}`;
    notes.push(msg);
    console.warn(msg);
  } else {
    notes.push(`result ${expectedRows} rows, same aggregate as DuckDB's MERGE`);
  }
  const cdf = floeCdf as Record<string, unknown> | null;
  if (cdf) {
    notes.push(`change feed of the MERGE: ${cdf.pre} pre, ${cdf.post} post, ${cdf.ins} insert`);
    if (Number(cdf.pre) !== c.updates || Number(cdf.post) !== c.updates || Number(cdf.ins) !== c.inserts || Number(cdf.del) !== 0) {
      const msg = `WARNING: MERGE change feed counts ${JSON.stringify(cdf)}, expected ${c.updates} pre/post and ${c.inserts} inserts`;
      notes.push(msg);
      console.warn(msg);
    }
  }
  notes.push(`DuckDB in-memory tables after the MERGE: ${round(floeMemMb)} MB (the source table included; floe's tables stay until close())`);
  const rw = rewriteOut as { rows: number; files: number; bytes: number } | null;
  const rows: ComparisonRow[] = [
    { label: `${scenario} ${c.name} vs DuckDB MERGE`, targeted: true, floe: f!, base: a!, notes: [...notes, 'baseline: MERGE INTO an in-memory DuckDB table (loaded untimed)', cpuNote(cpu[0]!.slice(1), cpu[1]!.slice(1), 'per MERGE (median)')] },
    {
      label: `${scenario} ${c.name} vs rewrite`,
      targeted: false,
      floe: f!,
      base: b!,
      notes: [`baseline: COPY (${touched.length} touched files FULL OUTER JOIN source) TO parquet${rw ? `: ${rw.rows} rows, ${rw.files} files, ${mb(rw.bytes)}` : ''}; no stats, change data or log`, cpuNote(cpu[0]!.slice(1), cpu[2]!.slice(1), 'per MERGE (median)')],
    },
  ];
  const dm = dvMetrics as MergeMetrics | null;
  const same = (x: Record<string, unknown> | null): string => (x && ma && sameResult(x, ma) ? 'same aggregate as DuckDB\'s MERGE' : `WARNING: aggregate differs: ${JSON.stringify(x)} vs ${JSON.stringify(ma)}`);
  rows.push(
    {
      label: `${scenario} ${c.name} with deletion vectors vs DuckDB MERGE`,
      targeted: false,
      floe: fdv!,
      base: a!,
      notes: [
        'floe: delta.enableDeletionVectors=true (set before timing): touched files get DVs, only updated and inserted rows are written',
        dm ? `DVs added ${dm.numDeletionVectorsAdded ?? 0}, files added ${dm.numTargetFilesAdded} + ${dm.numAddedChangeFiles ?? 0} change files, copied ${dm.numTargetRowsCopied}` : '',
        same(dvAgg as Record<string, unknown> | null),
        'baseline: MERGE INTO an in-memory DuckDB table',
      ].filter(Boolean),
    },
    {
      label: `${scenario} ${c.name} vs DuckDB MERGE, file-backed + CHECKPOINT`,
      targeted: false,
      floe: f!,
      base: af!,
      notes: ['baseline: MERGE INTO a table of a file-backed DuckDB database, then CHECKPOINT (durable, as floe\'s commit); loaded and checkpointed untimed', same(fileAgg as Record<string, unknown> | null)],
    },
  );
  if (o.profile) rows[0]!.profile = await profileMerge(o, info, srcSql, touched);
  return rows;
}

async function withSession<T>(fn: (floe: Floe) => Promise<T>): Promise<T> {
  const floe = await Floe.create();
  try {
    return await fn(floe);
  } finally {
    await floe.close();
  }
}

/** Two instrumented floe MERGEs (phases by statement; copy-on-write, then with deletion vectors), then the rewrite baseline with the change rows added (1 run each). */
async function profileMerge(o: MergeScenarioOptions, info: MergeTableInfo, srcSql: string, touched: string[]): Promise<Record<string, Record<string, number>>> {
  // One instrumented MERGE copy-on-write, one with deletion vectors (enabled before timing).
  const instrumented = async (dv: boolean): Promise<Record<string, number>> => {
    const dir = await scratchDir(o, 'merge-prof');
    await cloneDeltaTable(info.path, dir);
    try {
      return await withSession(async (floe) => {
        if (dv) {
          await (await DeltaTable.forPath(floe, dir)).setProperties({ 'delta.enableDeletionVectors': 'true' });
          floe.forgetLog(dir);
        }
        await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
        const { timer } = instrumentMerge(floe, dir);
        try {
          collectGarbage();
          const t0 = nowMs();
          await floeMerge(floe, dir);
          return timer.take(nowMs() - t0);
        } finally {
          timer.restore();
        }
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  const phases = await instrumented(false);
  const dvPhases = await instrumented(true);
  const variants: Record<string, number> = {};
  for (const [name, withCdc] of [['rewrite touched files', false], ['rewrite + change data files (pre/post/insert)', true]] as const) {
    const out = await scratchDir(o, 'merge-prof-rw');
    await fs.mkdir(out);
    try {
      await withSession(async (floe) => {
        await floe.engine.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
        collectGarbage();
        const t0 = nowMs();
        for (const stmt of rewriteSql(touched, out, withCdc).split('; ')) await floe.engine.run(stmt);
        variants[name] = round(nowMs() - t0);
      });
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  }
  const rounded = (p: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(p).map(([k, v]) => [k.startsWith('other (JS') ? 'other (JS, commit JSON, …)' : k, round(v)]));
  const proposed = await proposedMergePlan(o, info, srcSql);
  return { 'floe phases (1 instrumented MERGE)': rounded(phases), 'floe phases with deletion vectors (1 instrumented MERGE)': rounded(dvPhases), 'baseline variants (1 run each)': variants, 'proposed plan, SQL prototype (1 run)': proposed };
}

/**
 * The MERGE plan proposed in the findings, as plain SQL on this benchmark's schema (not floe code):
 * prune by a per-file test of the source keys against each file's [min, max]; materialise only the
 * matched (target row, source row) pairs; rewrite the touched files as their unmatched rows (ANTI
 * JOIN on file and row number) + updated rows + inserts; change rows from the matched pairs and the
 * inserts. No window functions, no materialised copy of the target.
 */
async function proposedMergePlan(o: MergeScenarioOptions, info: MergeTableInfo, srcSql: string): Promise<Record<string, number>> {
  const out = await scratchDir(o, 'merge-prof-proposed');
  await fs.mkdir(path.join(out, '_change_data'), { recursive: true });
  try {
    return await withSession(async (floe) => {
      const e = floe.engine;
      await e.run(`CREATE TABLE ${SRC} AS ${srcSql}`);
      const t = new PhaseTimer();
      collectGarbage();
      const t0 = nowMs();
      t.start();
      const snap = await floe.deltaLog(info.path).snapshot();
      t.mark('snapshot');
      await e.run(`CREATE TABLE p_src AS SELECT *, row_number() OVER () AS __sid FROM ${SRC}`);
      t.mark('materialize source');
      const ranges = snap.files.map((f) => JSON.parse(f.stats ?? '{}') as { minValues?: { id?: number }; maxValues?: { id?: number } });
      const [hit] = await e.allJson(`SELECT ${ranges.map((r, k) => `bool_or(id BETWEEN ${r.minValues?.id} AND ${r.maxValues?.id}) AS f${k}`).join(', ')} FROM p_src`);
      const cand = snap.files.filter((_, k) => hit![`f${k}`] === true).map((f) => path.join(info.path, decodeURIComponent(f.path)));
      t.mark('prune (one pass: bool_or per file)');
      await e.run(`CREATE TABLE p_m AS SELECT "target", "source", "target".filename AS __file, "target".file_row_number AS __row, "source".__sid AS __sid
        FROM read_parquet(${sqlList(cand)}, filename = true, file_row_number = true) "target" JOIN p_src "source" ON "target".id = "source".id`);
      t.mark('matched pairs (inner join, materialized)');
      const [m] = await e.allJson(`SELECT count(*) AS matched, count(DISTINCT (__file, __row)) AS distinct_rows, (SELECT count(*) FROM p_src ANTI JOIN p_m USING (__sid)) AS inserts FROM p_m`);
      const touched = (await e.allJson('SELECT DISTINCT __file AS f FROM p_m')).map((r) => String(r.f));
      t.mark('duplicate check + metrics + touched files');
      const data = `SELECT tt.id, tt.v, tt.s, tt.d FROM read_parquet(${sqlList(touched)}, filename = true, file_row_number = true) tt ANTI JOIN p_m ON p_m.__file = tt.filename AND p_m.__row = tt.file_row_number
        UNION ALL SELECT "source".id, "source".v, "source".s, "source".d FROM p_m
        UNION ALL SELECT ss.id, ss.v, ss.s, ss.d FROM p_src ss ANTI JOIN p_m USING (__sid)`;
      const opts = `FORMAT parquet, RETURN_STATS, FILE_SIZE_BYTES ${TARGET_FILE_SIZE}`;
      await e.allJson(`COPY (${data}) TO ${sqlString(out)} (${opts}, FILENAME_PATTERN 'part-{uuid}')`);
      t.mark('write data files');
      const cdc = `SELECT "target".id, "target".v, "target".s, "target".d, 'update_preimage' AS _change_type FROM p_m
        UNION ALL SELECT "source".id, "source".v, "source".s, "source".d, 'update_postimage' FROM p_m
        UNION ALL SELECT ss.id, ss.v, ss.s, ss.d, 'insert' FROM p_src ss ANTI JOIN p_m USING (__sid)`;
      await e.allJson(`COPY (${cdc}) TO ${sqlString(path.join(out, '_change_data'))} (${opts}, FILENAME_PATTERN 'cdc-{uuid}')`);
      t.mark('write change data files');
      t.record('total', nowMs() - t0);
      if (Number(m!.matched) !== Number(m!.distinct_rows)) throw new Error('proposed plan: duplicate matches');
      return t.medians();
    });
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
}

export async function merge1mInto10m(o: MergeScenarioOptions): Promise<ComparisonRow[]> {
  const t0 = nowMs();
  const info = await ensureMergeTable(o.dataDir, o.regenerate);
  console.log(info.generatedInMs !== undefined ? `generated merge target (${info.rows} rows, ${info.dataFiles.length} files) in ${(info.generatedInMs / 1000).toFixed(1)} s` : `reusing merge target (${Math.round(nowMs() - t0)} ms to check)`);
  const half = 500_000;
  const cases: MergeCase[] = [
    // Every 20th id, offset pseudo-randomly within its block of 20: spread over all 20 files.
    { name: 'random', updatedIdsSql: `SELECT range * 20 + (hash(range) % 20)::BIGINT AS id FROM range(0, ${half})`, updates: half, inserts: half },
    // Every other id of [3M, 4M): files 6 and 7.
    { name: 'clustered', updatedIdsSql: `SELECT 3000000 + range * 2 AS id FROM range(0, ${half})`, updates: half, inserts: half },
  ];
  const rows: ComparisonRow[] = [];
  for (const c of cases) {
    console.log(`running merge-1m-into-10m ${c.name} (${o.runs} runs) …`);
    rows.push(...(await mergeCase(o, info, 'merge-1m-into-10m', c)));
  }
  return rows;
}

export async function merge1pct(o: MergeScenarioOptions): Promise<ComparisonRow[]> {
  const info = await ensureMergeTable(o.dataDir, o.regenerate);
  console.log(`running merge-1pct (${o.runs} runs) …`);
  // Every 10th id of [4.5M, 5.5M): 100,000 keys (1%) in files 9 and 10.
  const c: MergeCase = { name: '100k keys in 2 files', updatedIdsSql: 'SELECT 4500000 + range * 10 AS id FROM range(0, 100000)', updates: 100_000, inserts: 0 };
  return mergeCase(o, info, 'merge-1pct', c);
}

// ------------------------------------------------------------------------- dml-update / dml-delete

/** Every 10th id: 1,000,000 rows (10%) spread over all 20 files of the MERGE target. */
const DML_CONDITION = 'id % 10 = 0';

/**
 * `DeltaTable.update` (v = v + 1) or `delete` of 10% of the rows of the 10-million-row MERGE target
 * (change data feed on: change files written), every file touched, on a fresh copy of the table in a
 * fresh session per run; against DuckDB's own UPDATE / DELETE with the same condition on an
 * in-memory DuckDB table holding the same rows (loaded before timing), fresh session too.
 */
export async function dmlScenario(o: MergeScenarioOptions, kind: 'update' | 'delete'): Promise<ComparisonRow[]> {
  const info = await ensureMergeTable(o.dataDir, o.regenerate);
  const label = `dml-${kind}`;
  console.log(`running ${label} (${o.runs} runs) …`);
  const expected = info.rows / 10;
  let floeAgg: Record<string, unknown> | null = null;
  let baseAgg: Record<string, unknown> | null = null;
  let floeMetrics: Record<string, number> | null = null;
  const floeRun: Measured = async () => {
    const dir = await scratchDir(o, `${label}-floe`);
    await cloneDeltaTable(info.path, dir);
    const floe = await Floe.create();
    try {
      const t = await DeltaTable.forPath(floe, dir);
      collectGarbage();
      const t0 = nowMs();
      const r = kind === 'update' ? await t.update({ condition: DML_CONDITION, set: { v: 'v + 1' } }) : await t.delete(DML_CONDITION);
      const ms = nowMs() - t0;
      const n = kind === 'update' ? r.metrics.numUpdatedRows : r.metrics.numDeletedRows;
      if (r.version !== 1 || n !== expected) throw new Error(`${label}: floe committed version ${r.version} changing ${n} rows; expected 1, ${expected}`);
      if (!floeAgg) {
        floeMetrics = r.metrics;
        floeAgg = (await floe.engine.allJson(`SELECT ${AGG} FROM (${await (await floe.read.delta(dir)).toSQL()})`))[0]!;
      }
      return ms;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  const baseRun: Measured = async () => {
    const floe = await Floe.create();
    try {
      await floe.engine.run(`CREATE TABLE bench_target AS SELECT * FROM read_parquet(${sqlList(info.dataFiles)})`);
      collectGarbage();
      const t0 = nowMs();
      const r = await floe.engine.allJson(kind === 'update' ? `UPDATE bench_target SET v = v + 1 WHERE ${DML_CONDITION}` : `DELETE FROM bench_target WHERE ${DML_CONDITION}`);
      const ms = nowMs() - t0;
      const n = Number(Object.values(r[0] ?? {})[0]);
      if (n !== expected) throw new Error(`${label}: DuckDB changed ${n} rows, expected ${expected}`);
      if (!baseAgg) baseAgg = (await floe.engine.allJson(`SELECT ${AGG} FROM bench_target`))[0]!;
      return ms;
    } finally {
      await floe.close();
    }
  };
  // The floor of copy-on-write: DuckDB rewriting the touched files (all of them) with the change
  // applied, plus the change rows floe writes too, as Parquet (no stats, no log).
  const files = sqlList(info.dataFiles);
  const rewriteSql = (dir: string): string => {
    const data = kind === 'update'
      ? `SELECT id, CASE WHEN ${DML_CONDITION} THEN v + 1 ELSE v END AS v, s, d FROM read_parquet(${files})`
      : `SELECT * FROM read_parquet(${files}) WHERE NOT (${DML_CONDITION})`;
    const cdc = kind === 'update'
      ? `SELECT id, v, s, d, 'update_preimage' AS _change_type FROM read_parquet(${files}) WHERE ${DML_CONDITION}
         UNION ALL SELECT id, v + 1, s, d, 'update_postimage' FROM read_parquet(${files}) WHERE ${DML_CONDITION}`
      : `SELECT *, 'delete' AS _change_type FROM read_parquet(${files}) WHERE ${DML_CONDITION}`;
    return `COPY (${data}) TO ${sqlString(dir)} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE});
      COPY (${cdc}) TO ${sqlString(path.join(dir, '_change_data'))} (FORMAT parquet, FILE_SIZE_BYTES ${TARGET_FILE_SIZE})`;
  };
  const rewriteRun: Measured = async () => {
    const dir = await scratchDir(o, `${label}-rewrite`);
    await fs.mkdir(dir);
    const floe = await Floe.create();
    try {
      collectGarbage();
      const t0 = nowMs();
      await floe.engine.run(rewriteSql(dir));
      return nowMs() - t0;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  const [f, b, rw] = await measureEach(o.runs, [floeRun, baseRun, rewriteRun]);
  const notes = [`${expected} of ${info.rows} rows (${DML_CONDITION}), all ${info.dataFiles.length} files touched; change data feed on; fresh copy and session per run; baseline: DuckDB ${kind.toUpperCase()} on an in-memory table`];
  const fa = floeAgg as Record<string, unknown> | null;
  const ba = baseAgg as Record<string, unknown> | null;
  if (!fa || !ba || !sameResult(fa, ba)) {
    const msg = `WARNING: results differ: floe ${JSON.stringify(fa)} vs baseline ${JSON.stringify(ba)}`;
    notes.push(msg);
    console.warn(msg);
  } else {
    const m = floeMetrics as Record<string, number> | null;
    notes.push(`floe: ${m?.numRemovedFiles} files removed, ${m?.numAddedFiles} added, ${m?.numAddedChangeFiles ?? 0} change files, ${m?.numCopiedRows} rows copied`);
  }
  return [
    { label, targeted: false, floe: f!, base: b!, notes },
    { label: `${label} vs rewrite`, targeted: false, floe: f!, base: rw!, notes: ['baseline: DuckDB COPY of the touched files with the change applied, plus the change rows (no stats, no log): the copy-on-write floor'] },
  ];
}

// ---------------------------------------------------------------------------------- cdf-read-100

const CDF_AGG = `${AGG}, count(*) FILTER (WHERE _change_type = 'insert') AS n_insert, count(*) FILTER (WHERE _change_type = 'delete') AS n_delete,
  count(*) FILTER (WHERE _change_type = 'update_preimage') AS n_pre, count(*) FILTER (WHERE _change_type = 'update_postimage') AS n_post`;

export async function cdfRead100(o: MergeScenarioOptions): Promise<ComparisonRow[]> {
  const t0 = nowMs();
  const info = await ensureCdfTable(o.dataDir, o.regenerate);
  console.log(info.generatedInMs !== undefined ? `generated cdf-read-100 table (v${info.version}, ${info.cdcFiles.length} change files + ${info.insertFiles.length} add files) in ${(info.generatedInMs / 1000).toFixed(1)} s` : `reusing cdf-read-100 table (${Math.round(nowMs() - t0)} ms to check)`);
  console.log(`running cdf-read-100 (${o.runs} runs) …`);
  const opts = { startingVersion: 1, endingVersion: info.version };
  let floeRow: Record<string, unknown> | null = null;
  let baseRow: Record<string, unknown> | null = null;
  const floeRun: Measured = () =>
    withSession(async (floe) => {
      collectGarbage();
      const t = nowMs();
      const df = await floe.read.changes(info.path, opts);
      const rows = await floe.engine.allJson(`SELECT ${CDF_AGG} FROM (${await df.toSQL()})`);
      const ms = nowMs() - t;
      floeRow = rows[0]!;
      return ms;
    });
  const parts = [`SELECT id, v, s, d, _change_type FROM read_parquet(${sqlList(info.cdcFiles)})`];
  if (info.insertFiles.length) parts.push(`SELECT id, v, s, d, 'insert' AS _change_type FROM read_parquet(${sqlList(info.insertFiles)})`);
  if (info.deleteFiles.length) parts.push(`SELECT id, v, s, d, 'delete' AS _change_type FROM read_parquet(${sqlList(info.deleteFiles)})`);
  const baseSql = `SELECT ${CDF_AGG} FROM (${parts.join(' UNION ALL ')})`;
  const baseRun: Measured = () =>
    withSession(async (floe) => {
      collectGarbage();
      const t = nowMs();
      const rows = await floe.engine.allJson(baseSql);
      const ms = nowMs() - t;
      baseRow = rows[0]!;
      return ms;
    });
  const [f, b] = await measureEach(o.runs, [floeRun, baseRun]);
  const notes: string[] = [];
  const check = (what: string): void => {
    const fr = floeRow as Record<string, unknown> | null;
    const br = baseRow as Record<string, unknown> | null;
    if (!fr || !br || !sameResult(fr, br)) {
      const msg = `WARNING: results differ${what}: floe ${JSON.stringify(fr)} vs baseline ${JSON.stringify(br)}`;
      notes.push(msg);
      console.warn(msg);
    } else if (!what) {
      notes.push(`rows ${fr.n} (insert ${fr.n_insert}, delete ${fr.n_delete}, pre ${fr.n_pre}, post ${fr.n_post})`);
    }
  };
  notes.push(`versions 1..${info.version}: ${info.cdcFiles.length} change files + ${info.insertFiles.length} add files${info.deleteFiles.length ? ` + ${info.deleteFiles.length} removed files` : ''}; a fresh session per run (both sides)`);
  check('');
  const row: ComparisonRow = { label: 'cdf-read-100', targeted: true, floe: f!, base: b!, notes };
  if (o.profile) row.profile = await profileCdf(o.runs, info);

  // The same in one long-lived session (floe's log caches and DuckDB's Parquet metadata cache warm on both sides).
  floeRow = null;
  baseRow = null;
  const warm = await withSession(async (floe) => {
    const fw: Measured = async () => {
      const t = nowMs();
      const df = await floe.read.changes(info.path, opts);
      const rows = await floe.engine.allJson(`SELECT ${CDF_AGG} FROM (${await df.toSQL()})`);
      const ms = nowMs() - t;
      floeRow = rows[0]!;
      return ms;
    };
    const bw: Measured = async () => {
      const t = nowMs();
      const rows = await floe.engine.allJson(baseSql);
      const ms = nowMs() - t;
      baseRow = rows[0]!;
      return ms;
    };
    return measureEach(o.runs, [fw, bw]);
  });
  const warmNotes: string[] = [`one session for all runs (both sides)${warm[0]!.length !== o.runs ? `; ${warm[0]!.length} runs (raised: < 50 ms each)` : ''}`];
  const before = notes.length;
  check(' (warm session)');
  warmNotes.push(...notes.splice(before));
  return [row, { label: 'cdf-read-100 warm session', targeted: false, floe: warm[0]!, base: warm[1]!, notes: warmNotes }];
}

/** Where floe's read.changes spends its time: wall time of its log / store / engine calls, then the query. */
async function profileCdf(runs: number, info: CdfTableInfo): Promise<Record<string, Record<string, number>>> {
  const phases = new PhaseTimer();
  const calls = new PhaseTimer();
  for (let i = 0; i < runs; i++) {
    await withSession(async (floe) => {
      const log = floe.deltaLog(info.path);
      const it = new IntervalTimer();
      it.wrap(log, 'snapshot', 'log.snapshot (only when the commits alone do not give the state)');
      it.wrap(log, 'lastCheckpoint', 'log.lastCheckpoint');
      it.wrap(log, 'listLogFiles', 'log.listLogFiles');
      it.wrap(log, 'readCommit', 'log.readCommit (all, concurrent)');
      it.wrap(log.store, 'head', 'store.head (every file, overlapping the commit reads)');
      it.wrap(floe.engine, 'run', 'engine.run (changes + DV tables, inserts)');
      it.wrap(floe.engine, 'describe', 'engine.describe (Parquet footers; only for files of unknown layout)');
      try {
        collectGarbage();
        const t = nowMs();
        phases.start();
        const df = await floe.read.changes(info.path, { startingVersion: 1, endingVersion: info.version });
        phases.mark('read.changes (plan)');
        const sql = await df.toSQL();
        phases.mark('toSQL');
        await floe.engine.connection.runAndReadAll(`SELECT ${CDF_AGG} FROM (${sql})`);
        phases.mark('execute aggregate');
        phases.record('total', nowMs() - t);
        for (const [k, v] of Object.entries(it.take())) calls.record(k, v);
      } finally {
        it.restore();
      }
    });
  }
  return { 'floe phases': phases.medians(), 'calls inside read.changes (wall, overlapping)': calls.medians() };
}
