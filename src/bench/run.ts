/**
 * Benchmarks: floe against a baseline doing the same I/O with DuckDB / plain Node, measured in
 * the same process and run, interleaved. Usage:
 *
 *   node dist/bench/run.js [--runs N] [--only NAME[,NAME]] [--regenerate] [--no-profile] [--in-process]
 *
 * Each scenario runs in a fresh child process unless one scenario is asked for or --in-process is
 * given (floe and its baseline always share a process, interleaved).
 *
 * Read scenarios: snapshot-load, scan-full, scan-selective (operations under 50 ms get at least 25 runs).
 * Write scenarios (write-scenarios.ts): append-10m (3 runs unless --runs is given), commit-latency
 * (--runs runs of 50 commits each, every commit a sample). Data lives under `.bench-data/` (generated
 * on first use, reused afterwards; write scratch folders under `.bench-data/tmp/`, removed after
 * each run). Results are printed and written to `.bench-data/results.json`.
 * MERGE and change-feed scenarios (merge-scenarios.ts): merge-1m-into-10m (two variants, each against
 * two baselines: one row per pair), merge-1pct, dml-update, dml-delete, cdf-read-100 (3 runs each unless --runs is given).
 * Cloud scenarios (cloud-scenarios.ts): cloud-append and cloud-scan (cold and warm cache) on Azurite
 * against the same operation on local files; the ratio is Azurite / local.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addActionToBatch, emptyBatch, type ActionBatch } from '../core/actions.js';
import { mapLimit } from '../core/delta-log.js';
import { type LogFile, parseLogFile } from '../core/log-files.js';
import { buildLogSegment } from '../core/log-segment.js';
import { Replayer } from '../core/snapshot.js';
import type { DataFrame } from '../dataframe.js';
import { Floe } from '../floe.js';
import { type ScanTableInfo, type SnapshotTableInfo, ensureCommitTable, ensureScanTable, ensureSnapshotTable } from './generate.js';
import { autoCdcFull, autoCdcIncremental, ensureCdcEvents } from './auto-cdc-scenarios.js';
import { type CloudScenarioOptions, cloudAppend, cloudScan } from './cloud-scenarios.js';
import { type ComparisonRow, type MergeScenarioOptions, cdfRead100, dmlScenario, merge1mInto10m, merge1pct } from './merge-scenarios.js';
import { FAST_MS, type Measured, PhaseTimer, type Summary, collectGarbage, measure, nowMs, round, sameResult, summarize } from './stats.js';
import { type WriteScenarioOptions, type WriteScenarioOutput, append10m, cleanScratch, commitLatency } from './write-scenarios.js';

const DATA_DIR = fileURLToPath(new URL('../../.bench-data/', import.meta.url));
const SCENARIOS = ['snapshot-load', 'scan-full', 'scan-selective', 'append-10m', 'commit-latency', 'merge-1m-into-10m', 'merge-1pct', 'dml-update', 'dml-delete', 'cdf-read-100', 'auto-cdc-scd1', 'auto-cdc-scd2', 'auto-cdc-incremental', 'cloud-append', 'cloud-scan'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/**
 * Target ratio floe / baseline (medians). commit-latency has none: its baseline is the bare
 * putIfAbsent inside every commit, a floor rather than an equivalent operation. The MERGE target is
 * against DuckDB's own MERGE; the rows against the rewrite-only floor (and merge-1pct, whose check
 * is the files it rewrites) have none.
 */
const TARGETS: Record<ScenarioName, number | null> = {
  'snapshot-load': 1.5, 'scan-full': 1.2, 'scan-selective': 1.2, 'append-10m': 1.3, 'commit-latency': null,
  'merge-1m-into-10m': 2, 'merge-1pct': null, 'dml-update': null, 'dml-delete': null, 'cdf-read-100': 1.3,
  'auto-cdc-scd1': 1.5, 'auto-cdc-scd2': 1.5, 'auto-cdc-incremental': 0.05,
  'cloud-append': null, 'cloud-scan': null, // Azurite / local: reported, no target (an emulator is not a cloud)
};
/** Runs when --runs is not given (heavy scenarios take fewer). */
const DEFAULT_RUNS = 5;
const DEFAULT_RUNS_FOR: Partial<Record<ScenarioName, number>> = { 'append-10m': 3, 'merge-1m-into-10m': 3, 'merge-1pct': 3, 'dml-update': 3, 'dml-delete': 3, 'cdf-read-100': 5, 'auto-cdc-scd1': 3, 'auto-cdc-scd2': 3, 'auto-cdc-incremental': 3, 'cloud-append': 3, 'cloud-scan': 5 };

interface Args {
  runs: number;
  runsGiven: boolean;
  only: Set<ScenarioName>;
  regenerate: boolean;
  profile: boolean;
  /** Run every scenario in this process (the default runs each in a fresh child process). */
  inProcess: boolean;
  /** (Internal) a child process writes its results here instead of printing the table. */
  childOut?: string;
}

function usage(): string {
  return `usage: node dist/bench/run.js [--runs N] [--only ${SCENARIOS.join('|')}[,…]] [--regenerate] [--no-profile] [--in-process]`;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: DEFAULT_RUNS, runsGiven: false, only: new Set(SCENARIOS), regenerate: false, profile: true, inProcess: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${usage()}`);
      return v;
    };
    switch (flag) {
      case '--runs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error(`--runs needs a positive integer\n${usage()}`);
        args.runs = n;
        args.runsGiven = true;
        break;
      }
      case '--only': {
        const names = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const n of names) if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`unknown scenario '${n}'\n${usage()}`);
        args.only = new Set(names as ScenarioName[]);
        break;
      }
      case '--regenerate':
        args.regenerate = true;
        break;
      case '--no-profile':
        args.profile = false;
        break;
      case '--in-process':
        args.inProcess = true;
        break;
      case '--child-out':
        args.childOut = value();
        break;
      case '--help':
      case '-h':
        console.log(usage());
        process.exit(0);
      // falls through (unreachable)
      default:
        throw new Error(`unknown argument '${a}'\n${usage()}`);
    }
  }
  return args;
}

interface ScenarioResult {
  /** The scenario's name, or for scenarios with several rows, the name with the variant and baseline. */
  scenario: string;
  floeMedianMs: number | null;
  baselineMedianMs: number | null;
  ratio: number | null;
  /** null: no target for this scenario. */
  target: number | null;
  meetsTarget: boolean | null;
  floe?: Summary;
  baseline?: Summary;
  floeSamplesMs?: number[];
  baselineSamplesMs?: number[];
  notes: string[];
  /** Median milliseconds per phase (from separate profiling runs). */
  profile?: Record<string, Record<string, number>>;
  error?: string;
}

function finish(scenario: ScenarioName, m: { floe: number[]; base: number[] }, notes: string[], o: { label?: string; target?: number | null } = {}): ScenarioResult {
  const f = summarize(m.floe);
  const b = summarize(m.base);
  const ratio = f.median / b.median;
  const round2 = (xs: number[]): number[] => xs.map(round);
  const target = o.target !== undefined ? o.target : TARGETS[scenario];
  return {
    scenario: o.label ?? scenario,
    floeMedianMs: round(f.median),
    baselineMedianMs: round(b.median),
    ratio: Math.round(ratio * 100) / 100,
    target,
    meetsTarget: target === null ? null : ratio <= target,
    floe: roundSummary(f),
    baseline: roundSummary(b),
    floeSamplesMs: round2(m.floe),
    baselineSamplesMs: round2(m.base),
    notes,
  };
}

function roundSummary(s: Summary): Summary {
  return { n: s.n, median: round(s.median), p99: round(s.p99), min: round(s.min), max: round(s.max), mean: round(s.mean) };
}

async function withFloe<T>(fn: (floe: Floe) => Promise<T>): Promise<T> {
  const floe = await Floe.create();
  try {
    return await fn(floe);
  } finally {
    await floe.close();
  }
}

// ------------------------------------------------------------------------------- snapshot-load

function checkpointSql(file: string): string {
  const q = `'${file.replace(/'/g, "''")}'`;
  return `SELECT to_json(txn) AS txn, to_json("add") AS "add", to_json("remove") AS "remove", to_json(metaData) AS metaData, to_json(protocol) AS protocol FROM read_parquet(${q})`;
}

async function snapshotLoad(args: Args, info: SnapshotTableInfo): Promise<ScenarioResult> {
  const notes: string[] = [];
  let checked = false;
  // floe: a fresh session per run (no DeltaLog / commit / Parquet metadata caches carried over).
  const floeRun: Measured = () =>
    withFloe(async (floe) => {
      const t0 = nowMs();
      const snap = await floe.deltaLog(info.path).snapshot();
      const ms = nowMs() - t0;
      if (!checked) {
        if (snap.version !== info.version || snap.files.length !== info.liveFiles) {
          throw new Error(`snapshot-load: floe loaded version ${snap.version} with ${snap.files.length} files, expected ${info.version} with ${info.liveFiles}`);
        }
        checked = true;
      }
      return ms;
    });
  // Baseline: read the same checkpoint through the same kind of engine, JSON.parse every action,
  // then read + JSON.parse every line of the commits after it. No listing, validation or replay;
  // the parsed actions are kept until the run ends, as any reader has to keep them.
  let baseActions = -1;
  const baseRun: Measured = () =>
    withFloe(async (floe) => {
      const t0 = nowMs();
      const r = await floe.engine.connection.runAndReadAll(checkpointSql(info.checkpointFile));
      const actions: unknown[] = [];
      for (const row of r.getRows()) {
        for (const v of row) {
          if (v === null || v === undefined) continue;
          actions.push(JSON.parse(String(v)));
        }
      }
      const texts = await Promise.all(info.commitFilesAfterCheckpoint.map((f) => fs.readFile(f, 'utf8')));
      for (const text of texts) {
        for (const line of text.split('\n')) if (line.length) actions.push(JSON.parse(line));
      }
      const ms = nowMs() - t0;
      baseActions = actions.length;
      return ms;
    });
  const m = await measure(args.runs, floeRun, baseRun);
  notes.push(`${info.liveFiles} files, v${info.version}, checkpoint v${info.checkpointVersion} + ${info.commitFilesAfterCheckpoint.length} commits; baseline parsed ${baseActions} actions`);
  const res = finish('snapshot-load', m, notes);
  if (args.profile) res.profile = await profileSnapshotLoad(args.runs, info);
  return res;
}

/** Where floe's snapshot load spends its time: its public pieces run one after another, plus a decomposition of the checkpoint read. */
async function profileSnapshotLoad(runs: number, info: SnapshotTableInfo): Promise<Record<string, Record<string, number>>> {
  const floeT = new PhaseTimer();
  const cpT = new PhaseTimer();
  const propT = new PhaseTimer();
  const listT = new PhaseTimer();
  const logDir = path.join(info.path, '_delta_log');
  for (let i = 0; i < runs; i++) {
    collectGarbage();
    await withFloe(async (floe) => {
      const log = floe.deltaLog(info.path);
      const t0 = nowMs();
      floeT.start();
      const files = await log.listLogFiles();
      floeT.mark('listLogFiles');
      const seg = buildLogSegment(log.tablePath, files, undefined, { useCompactions: true });
      floeT.mark('buildLogSegment');
      const cp = await log.readCheckpoint(seg.checkpoint!);
      floeT.mark('readCheckpoint');
      const batches = await mapLimit(seg.commits, 16, (c) => log.readCommit(c.version, c.path));
      floeT.mark('readCommits');
      const rp = new Replayer();
      rp.apply(cp);
      for (const b of batches) rp.apply(b);
      rp.finish(log.tablePath, seg.version, null, 0);
      floeT.mark('replay');
      floeT.record('total', nowMs() - t0);
    });
    // The same pieces, listing only from the `_last_checkpoint` version on (the proposed fix).
    collectGarbage();
    await withFloe(async (floe) => {
      const log = floe.deltaLog(info.path);
      const t0 = nowMs();
      propT.start();
      const hint = await log.lastCheckpoint();
      const metas = await log.store.list('_delta_log/', { startAfter: `_delta_log/${String(hint?.version ?? 0).padStart(20, '0')}` });
      const files = metas.map((m) => parseLogFile(m.path, m.lastModified, m.size)).filter((f): f is LogFile => f !== null);
      propT.mark('lastCheckpoint+list(startAfter)');
      const seg = buildLogSegment(log.tablePath, files, undefined, { useCompactions: true });
      const cp = await log.readCheckpoint(seg.checkpoint!);
      propT.mark('readCheckpoint');
      const batches = await mapLimit(seg.commits, 16, (c) => log.readCommit(c.version, c.path));
      const rp = new Replayer();
      rp.apply(cp);
      for (const b of batches) rp.apply(b);
      rp.finish(log.tablePath, seg.version, null, 0);
      propT.mark('commits+replay');
      propT.record('total', nowMs() - t0);
    });
    // The checkpoint read decomposed (same SQL as Engine.readRows), on a fresh engine.
    collectGarbage();
    await withFloe(async (floe) => {
      const src = `read_parquet(['${info.checkpointFile.replace(/'/g, "''")}'], union_by_name = true)`;
      cpT.start();
      await floe.engine.describe(`SELECT * FROM ${src}`);
      cpT.mark('describe');
      const r = await floe.engine.connection.runAndReadAll(checkpointSql(info.checkpointFile).replace(/read_parquet\([^)]*\)$/, src));
      cpT.mark('query+fetch');
      const rows = r.getRows();
      cpT.mark('getRows');
      const names = r.columnNames();
      const objs: Record<string, unknown>[] = [];
      for (const row of rows) {
        const o: Record<string, unknown> = {};
        for (let j = 0; j < names.length; j++) if (row[j] !== null && row[j] !== undefined) o[names[j]!] = JSON.parse(String(row[j]));
        objs.push(o);
      }
      cpT.mark('JSON.parse');
      const batch: ActionBatch = emptyBatch();
      for (const o of objs) addActionToBatch(o, batch, { file: 'cp' });
      cpT.mark('validate (addActionToBatch)');
    });
    // The listing decomposed: readdir, then one stat per entry (as LocalObjectStore.list does);
    // and the alternative Delta readers use: `_last_checkpoint`, then list only from the checkpoint on.
    listT.start();
    const names = await fs.readdir(logDir);
    listT.mark('readdir');
    await Promise.all(names.map((n) => fs.stat(path.join(logDir, n))));
    listT.mark(`stat x${names.length}`);
    await withFloe(async (floe) => {
      const log = floe.deltaLog(info.path);
      listT.start();
      const hint = await log.lastCheckpoint();
      const from = await log.store.list('_delta_log/', { startAfter: `_delta_log/${String(hint?.version ?? 0).padStart(20, '0')}` });
      listT.mark(`_last_checkpoint + list(startAfter) -> ${from.length} entries`);
    });
  }
  return { 'floe phases': floeT.medians(), 'same, listing from _last_checkpoint (proposed)': propT.medians(), 'checkpoint read, decomposed': cpT.medians(), 'listing, decomposed': listT.medians() };
}

// ---------------------------------------------------------------------------------------- scans

const AGG = 'count(*) AS n, sum(id) AS sum_id, sum(v) AS sum_v, sum(length(s)) AS sum_len_s, max(d) AS max_d';
const SELECTIVE = 'id BETWEEN 5000000 AND 5000999';

async function scan(args: Args, info: ScanTableInfo, name: 'scan-full' | 'scan-selective', floe: Floe): Promise<ScenarioResult> {
  const notes: string[] = [];
  const filter = name === 'scan-selective' ? SELECTIVE : null;
  const fileList = `[${info.dataFiles.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')}]`;
  const baseSql = `SELECT ${AGG} FROM read_parquet(${fileList})${filter ? ` WHERE ${filter}` : ''}`;
  const timer = new PhaseTimer();
  let lastDf: DataFrame | null = null;
  let floeRow: Record<string, unknown> | null = null;
  let baseRow: Record<string, unknown> | null = null;
  const floeRun: Measured = async () => {
    const t0 = nowMs();
    timer.start();
    let df = await floe.read.delta(info.path);
    if (filter) df = df.filter(filter);
    timer.mark('read.delta (snapshot)');
    const sql = await df.toSQL();
    timer.mark('toSQL (plan)');
    const rows = await floe.engine.allJson(`SELECT ${AGG} FROM (${sql})`);
    timer.mark('execute');
    const ms = nowMs() - t0;
    lastDf = df;
    floeRow = rows[0]!;
    return ms;
  };
  const baseRun: Measured = async () => {
    const t0 = nowMs();
    const rows = await floe.engine.allJson(baseSql);
    const ms = nowMs() - t0;
    baseRow = rows[0]!;
    return ms;
  };
  const m = await measure(args.runs, floeRun, baseRun);
  const res = finish(name, m, notes);
  if (m.floe.length !== args.runs) notes.push(`${m.floe.length} runs (raised: < ${FAST_MS} ms each)`);
  const df = lastDf as DataFrame | null;
  const scanInfo = df?.lastScan[0];
  if (scanInfo) notes.push(`files ${scanInfo.filesScanned}/${scanInfo.filesTotal}`);
  if (filter) {
    if (!scanInfo || scanInfo.filesScanned >= scanInfo.filesTotal) {
      const msg = `WARNING: selective scan skipped no files (${scanInfo ? `${scanInfo.filesScanned}/${scanInfo.filesTotal} scanned` : 'no lastScan'})`;
      notes.push(msg);
      console.warn(msg);
    }
  }
  const fr = floeRow as Record<string, unknown> | null;
  const br = baseRow as Record<string, unknown> | null;
  if (!fr || !br || !sameResult(fr, br)) {
    const msg = `WARNING: results differ: floe ${JSON.stringify(fr)} vs baseline ${JSON.stringify(br)}`;
    notes.push(msg);
    console.warn(msg);
  } else {
    notes.push(`rows ${fr.n}`);
  }
  if (args.profile) res.profile = { 'floe phases': timer.medians() };
  return res;
}

// --------------------------------------------------------------------------------------- output

function fmtMs(x: number | null): string {
  return x === null ? '-' : x.toFixed(x < 10 ? 2 : 1);
}

function printTable(results: ScenarioResult[]): void {
  const header = ['scenario', 'floe ms', 'baseline ms', 'ratio', 'target', 'notes'];
  const rows = results.map((r) => [
    r.scenario,
    fmtMs(r.floeMedianMs),
    fmtMs(r.baselineMedianMs),
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
    r.target === null ? (r.error ? 'ERR' : '-') : `<=${r.target}x ${r.meetsTarget === null ? 'ERR' : r.meetsTarget ? 'ok' : 'MISS'}`,
    r.error ? `ERROR: ${r.error}` : r.notes.join('; '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === header.length - 1 ? 0 : r[i]!.length))));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log('');
  console.log(fmt(header));
  console.log(fmt(widths.map((w, i) => (i === header.length - 1 ? '-----' : '-'.repeat(w)))));
  for (const r of rows) console.log(fmt(r));
  for (const r of results) {
    if (!r.profile) continue;
    console.log(`\n${r.scenario} profile (median ms):`);
    for (const [group, phases] of Object.entries(r.profile)) {
      console.log(`  ${group}: ${Object.entries(phases).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
  }
}

/**
 * Each scenario in a fresh Node process, one after the other (the same process for floe and its
 * baseline, interleaved, as always): a scenario's timings do not depend on the heap, the allocator
 * state or the DuckDB instances the scenarios before it left behind.
 */
async function runIsolated(args: Args): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const script = fileURLToPath(import.meta.url);
  for (const s of SCENARIOS) {
    if (!args.only.has(s)) continue;
    const out = path.join(DATA_DIR, `.child-${process.pid}-${s}.json`);
    const argv = [script, '--only', s, '--child-out', out, ...(args.runsGiven ? ['--runs', String(args.runs)] : []), ...(args.regenerate ? ['--regenerate'] : []), ...(args.profile ? [] : ['--no-profile'])];
    const code = await new Promise<number | null>((resolve) => spawn(process.execPath, argv, { stdio: 'inherit' }).on('close', resolve));
    try {
      results.push(...(JSON.parse(await fs.readFile(out, 'utf8')) as ScenarioResult[]));
    } catch {
      results.push({ scenario: s, floeMedianMs: null, baselineMedianMs: null, ratio: null, target: TARGETS[s], meetsTarget: null, notes: [], error: `the scenario's process exited with ${code} and no results` });
    } finally {
      await fs.rm(out, { force: true });
    }
  }
  return results;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  await fs.mkdir(DATA_DIR, { recursive: true });
  const env = await withFloe(async (floe) => (await floe.engine.allJson('SELECT version() AS v'))[0]!.v as string);
  if (!args.childOut && !args.inProcess && args.only.size > 1) {
    console.log(`floe benchmarks: each scenario in its own process; node ${process.version}, DuckDB ${env}, ${os.cpus().length} CPUs; data in ${DATA_DIR}`);
    await report(await runIsolated(args), env, args);
    return;
  }
  const runsNote = args.runsGiven ? `${args.runs} runs` : `${DEFAULT_RUNS} runs (${Object.entries(DEFAULT_RUNS_FOR).map(([k, v]) => `${k} ${v}`).join(', ')})`;
  console.log(`floe benchmarks: ${runsNote} (+1 warm-up) each, median; node ${process.version}, DuckDB ${env}, ${os.cpus().length} CPUs; data in ${DATA_DIR}`);
  const results: ScenarioResult[] = [];
  const runsFor = (s: ScenarioName): number => (args.runsGiven ? args.runs : (DEFAULT_RUNS_FOR[s] ?? args.runs));
  const failed = (scenario: ScenarioName, e: unknown): ScenarioResult => {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`${scenario} failed: ${e instanceof Error && e.stack ? e.stack : msg}`);
    return { scenario, floeMedianMs: null, baselineMedianMs: null, ratio: null, target: TARGETS[scenario], meetsTarget: null, notes: [], error: msg.split('\n')[0]! };
  };

  if (args.only.has('snapshot-load')) {
    try {
      const t0 = nowMs();
      const info = await ensureSnapshotTable(DATA_DIR, args.regenerate);
      console.log(info.generatedInMs !== undefined ? `generated snapshot-load table in ${(info.generatedInMs / 1000).toFixed(1)} s` : `reusing snapshot-load table (${Math.round(nowMs() - t0)} ms to check)`);
      console.log('running snapshot-load …');
      results.push(await snapshotLoad(args, info));
    } catch (e) {
      results.push(failed('snapshot-load', e));
    }
  }
  const scans = (['scan-full', 'scan-selective'] as const).filter((s) => args.only.has(s));
  if (scans.length) {
    let info: ScanTableInfo | null = null;
    try {
      const t0 = nowMs();
      info = await ensureScanTable(DATA_DIR, args.regenerate);
      console.log(info.generatedInMs !== undefined ? `generated scan table (${info.rows} rows, ${info.dataFiles.length} files) in ${(info.generatedInMs / 1000).toFixed(1)} s` : `reusing scan table (${Math.round(nowMs() - t0)} ms to check)`);
    } catch (e) {
      for (const s of scans) results.push(failed(s, e));
    }
    if (info) {
      const floe = await Floe.create();
      try {
        for (const s of scans) {
          try {
            console.log(`running ${s} …`);
            results.push(await scan(args, info, s, floe));
          } catch (e) {
            results.push(failed(s, e));
          }
        }
      } finally {
        await floe.close();
      }
    }
  }

  const writes = (['append-10m', 'commit-latency'] as const).filter((s) => args.only.has(s));
  if (writes.length) await cleanScratch(DATA_DIR);
  for (const s of writes) {
    const o: WriteScenarioOptions = { runs: runsFor(s), profile: args.profile, dataDir: DATA_DIR };
    try {
      let out: WriteScenarioOutput;
      if (s === 'append-10m') {
        console.log(`running append-10m (${o.runs} runs) …`);
        out = await append10m(o);
      } else {
        const t0 = nowMs();
        const info = await ensureCommitTable(DATA_DIR, args.regenerate);
        console.log(info.generatedInMs !== undefined ? `generated commit-latency table (v${info.version}) in ${(info.generatedInMs / 1000).toFixed(1)} s` : `reusing commit-latency table (${Math.round(nowMs() - t0)} ms to check)`);
        console.log(`running commit-latency (${o.runs} runs) …`);
        out = await commitLatency(o, info);
      }
      const res = finish(s, out, out.notes);
      if (out.profile) res.profile = out.profile;
      results.push(res);
    } catch (e) {
      results.push(failed(s, e));
    }
  }

  /** Runs a scenario with several comparison rows; each row gets the scenario's target when it is against that baseline. */
  const collect = async (s: ScenarioName, rowsOf: () => Promise<ComparisonRow[]>): Promise<void> => {
    try {
      for (const r of await rowsOf()) {
        const res = finish(s, r, r.notes, { label: r.label, target: r.targeted ? TARGETS[s] : null });
        if (r.profile) res.profile = r.profile;
        results.push(res);
      }
    } catch (e) {
      results.push(failed(s, e));
    }
  };

  const merges = (['merge-1m-into-10m', 'merge-1pct', 'dml-update', 'dml-delete', 'cdf-read-100'] as const).filter((s) => args.only.has(s));
  if (merges.length && !writes.length) await cleanScratch(DATA_DIR);
  for (const s of merges) {
    const o: MergeScenarioOptions = { runs: runsFor(s), profile: args.profile, dataDir: DATA_DIR, regenerate: args.regenerate };
    await collect(s, () => (s === 'merge-1m-into-10m' ? merge1mInto10m(o) : s === 'merge-1pct' ? merge1pct(o) : s === 'dml-update' ? dmlScenario(o, 'update') : s === 'dml-delete' ? dmlScenario(o, 'delete') : cdfRead100(o)));
  }

  const cdcs = (['auto-cdc-scd1', 'auto-cdc-scd2', 'auto-cdc-incremental'] as const).filter((s) => args.only.has(s));
  if (cdcs.length && !writes.length && !merges.length) await cleanScratch(DATA_DIR);
  for (const s of cdcs) {
    const o = { runs: runsFor(s), profile: args.profile, dataDir: DATA_DIR, regenerate: false };
    await collect(s, async () => {
      const info = await ensureCdcEvents(DATA_DIR, args.regenerate && s === cdcs[0]);
      if (info.generatedInMs !== undefined) console.log(`generated AUTO CDC events in ${(info.generatedInMs / 1000).toFixed(1)} s`);
      console.log(`running ${s} (${o.runs} runs) …`);
      return s === 'auto-cdc-incremental' ? autoCdcIncremental(o, info) : autoCdcFull(o, info, s === 'auto-cdc-scd1' ? 1 : 2);
    });
  }

  const clouds = (['cloud-append', 'cloud-scan'] as const).filter((s) => args.only.has(s));
  for (const s of clouds) {
    const o: CloudScenarioOptions = { runs: runsFor(s), dataDir: DATA_DIR };
    await collect(s, () => {
      console.log(`running ${s} (${o.runs} runs) …`);
      return s === 'cloud-append' ? cloudAppend(o) : cloudScan(o);
    });
  }

  if (args.childOut) {
    await fs.writeFile(args.childOut, JSON.stringify(results));
    if (results.some((r) => r.error)) process.exitCode = 1;
    return;
  }
  await report(results, env, args);
}

async function report(results: ScenarioResult[], env: string, args: Args): Promise<void> {
  printTable(results);
  const out = path.join(DATA_DIR, 'results.json');
  await fs.writeFile(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, duckdb: env, cpus: os.cpus().length, runs: args.runs, results }, null, 2) + '\n');
  console.log(`\nresults written to ${out}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
