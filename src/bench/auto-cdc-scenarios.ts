/**
 * AUTO CDC benchmarks (run by run.ts):
 *
 * - auto-cdc-scd1 / auto-cdc-scd2: 1,000,000 change events over 200,000 keys (10% arriving out of
 *   order, 5% deletes; see CDC_EVENTS_PARAMS) applied with `applyChanges` as SCD type 1 / type 2 into
 *   a fresh target (a fresh session per run, the target and its state created by the call). Baseline,
 *   in the same rounds: a hand-written DuckDB `MERGE INTO` doing the SCD 1 upsert of the same batch on
 *   a DuckDB table (latest event per key by sequence, delete where op = 'DELETE', upsert the rest),
 *   fresh session, empty target table created before timing. On every side the events are a DuckDB
 *   table of the session, loaded from the cached Parquet file before timing. An extra row, not
 *   targeted: the same MERGE into a table of a file-backed DuckDB database followed by CHECKPOINT
 *   (durable, as floe's commits are). A note gives the
 *   median CPU time (user + system, all threads) of each side and its ratio: steadier than wall time
 *   on a loaded machine.
 * - auto-cdc-incremental: per run, a fresh target gets the 1M events (batch 0, timed: T1), then 10,000
 *   new events (1%, batch 1, timed: T2), then 1 new event (batch 2, timed: T0, the fixed overhead of a
 *   batch). Rows: T2 against T1 (no target), and T2 − T0 against T1 (target ≤ 0.05: "a second run
 *   with 1% new events costs ≤ 5% of the first run plus a fixed overhead").
 *
 * Events are generated with DuckDB SQL and cached under `.bench-data/auto-cdc/`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { applyChanges, commitStateStep, commitTargetStep, dropTemps, prepareApplyChanges, type ApplyChangesOptions } from '../pipelines/auto-cdc.js';
import { allExist, readMarker, writeMarker } from './generate.js';
import type { ComparisonRow } from './merge-scenarios.js';
import { type Measured, PhaseTimer, collectGarbage, cpuMs, measureEach, median, nowMs, round, sameResult } from './stats.js';
import { scratchDir } from './write-scenarios.js';

export interface AutoCdcScenarioOptions {
  runs: number;
  profile: boolean;
  dataDir: string;
  regenerate: boolean;
}

export const CDC_EVENTS_PARAMS = {
  kind: 'auto-cdc-events',
  format: 1,
  events: 1_000_000,
  keys: 200_000,
  /** Percent of events arriving out of order (late, behind events with a higher sequence). */
  outOfOrderPct: 10,
  deletePct: 5,
  incrementalEvents: 10_000,
} as const;

export interface CdcEventsInfo {
  events: string;
  incremental: string;
  generatedInMs?: number;
}

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * Event i (sequence `seq` = i, unique): key hash(i) % keys; op DELETE for 5%; payload columns
 * depending on i. Arrival order: `seq` for 90% of the events; the other 10% arrive late, up to
 * 50,000 positions after their sequence. `firstSeq` offsets the incremental batch.
 */
function eventsSql(n: number, firstSeq: number): string {
  const P = CDC_EVENTS_PARAMS;
  return `SELECT id, seq, op, name, amount, country, updated_at FROM (
    SELECT (hash(i * 7919 + 13) % ${P.keys})::BIGINT AS id,
           i::BIGINT AS seq,
           CASE WHEN hash(i, 'del') % 100 < ${P.deletePct} THEN 'DELETE' ELSE 'UPSERT' END AS op,
           'name-' || (hash(i, 'n') % 1000000)::VARCHAR AS name,
           (hash(i, 'a') % 100000)::DOUBLE / 100 AS amount,
           ['FR', 'DE', 'UK', 'US', 'JP', 'IT', 'ES', 'NL'][1 + (hash(i, 'c') % 8)::INTEGER] AS country,
           TIMESTAMP '2024-01-01' + to_seconds(i::BIGINT) AS updated_at,
           CASE WHEN hash(i, 'late') % 100 < ${P.outOfOrderPct} THEN i + 1 + (hash(i, 'off') % 50000)::BIGINT ELSE i END AS arrival
    FROM range(${firstSeq}, ${firstSeq + n}) r(i)
  ) ORDER BY arrival, seq`;
}

export async function ensureCdcEvents(root: string, regenerate: boolean): Promise<CdcEventsInfo> {
  const P = CDC_EVENTS_PARAMS;
  const dir = path.join(root, 'auto-cdc');
  const marker = path.join(root, 'auto-cdc.json');
  if (!regenerate) {
    const info = await readMarker<CdcEventsInfo>(marker, P);
    if (info && (await allExist([info.events, info.incremental]))) return { ...info, generatedInMs: undefined };
  }
  const t0 = nowMs();
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const info: CdcEventsInfo = { events: path.join(dir, 'events-1m.parquet'), incremental: path.join(dir, 'events-incremental.parquet') };
  const floe = await Floe.create();
  try {
    await floe.engine.run(`COPY (${eventsSql(P.events, 0)}) TO ${sqlString(info.events)} (FORMAT parquet)`);
    await floe.engine.run(`COPY (${eventsSql(P.incrementalEvents + 1, P.events)}) TO ${sqlString(info.incremental)} (FORMAT parquet)`);
  } finally {
    await floe.close();
  }
  info.generatedInMs = Math.round(nowMs() - t0);
  await writeMarker(marker, P, info);
  return info;
}

const EV = 'bench_cdc_events';
const AGG = `count(*) AS n, sum(id) AS sum_id, sum(amount) AS sum_amount, sum(length(name)) AS sum_len_name, count(DISTINCT country) AS countries`;

/** The hand-written SCD 1 upsert of one batch (the baseline). */
const DUCKDB_SCD1_MERGE = (tgt: string, src: string): string => `MERGE INTO ${tgt} USING (
    SELECT * FROM ${src} QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq DESC) = 1
  ) s ON ${tgt}.id = s.id
  WHEN MATCHED AND s.op = 'DELETE' THEN DELETE
  WHEN MATCHED THEN UPDATE SET name = s.name, amount = s.amount, country = s.country, updated_at = s.updated_at
  WHEN NOT MATCHED AND s.op <> 'DELETE' THEN INSERT (id, name, amount, country, updated_at) VALUES (s.id, s.name, s.amount, s.country, s.updated_at)`;

/** A hand-written SCD 2 history of one batch (the untargeted SCD 2 baseline). */
const DUCKDB_SCD2_HISTORY = (tgt: string, src: string): string => `INSERT INTO ${tgt}
  SELECT id, name, amount, country, updated_at, seq, end_at
  FROM (SELECT *, lead(seq) OVER (PARTITION BY id ORDER BY seq) AS end_at FROM ${src}) WHERE op <> 'DELETE'`;

function cdcOptions(floe: Floe, target: string, scd: 1 | 2, src: string, batchId: number): ApplyChangesOptions {
  return {
    target,
    source: floe.duckdbSql(`SELECT * FROM ${src}`),
    keys: ['id'],
    sequenceBy: 'seq',
    storedAsScdType: scd,
    applyAsDeletes: "op = 'DELETE'",
    exceptColumnList: ['op', 'seq'],
    flowName: 'bench.auto_cdc',
    batchId,
  };
}

async function loadEvents(floe: Floe, file: string, table = EV, where = ''): Promise<void> {
  await floe.engine.run(`CREATE TABLE ${table} AS SELECT * FROM read_parquet(${sqlString(file)})${where}`);
}

/** Times the statements of one applyChanges (by the temp table they create, or their kind). */
function instrument(floe: Floe): { sums: Map<string, number>; restore: () => void } {
  const sums = new Map<string, number>();
  const eng = floe.engine as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const restores: (() => void)[] = [];
  const label = (sql: string): string => {
    const s = sql.trimStart();
    const m = /^CREATE (?:TEMP )?TABLE __floe_([a-z_]+?)_\d+/i.exec(s);
    if (m) return `create ${m[1]}`;
    if (/^COPY/i.test(s)) return /_change_data/.test(s) ? 'COPY change data' : 'COPY data files';
    if (/^SELECT count\(\*\) AS n FROM/.test(s)) return 'count source rows';
    if (/HAVING count\(\*\) > 1/.test(s)) return 'duplicate checks';
    if (/IS NULL LIMIT 1/.test(s)) return 'null checks';
    if (/^DESCRIBE/i.test(s)) return 'DESCRIBE';
    return 'other queries';
  };
  for (const k of ['run', 'allJson']) {
    const orig = eng[k]!;
    eng[k] = async function (this: unknown, ...a: unknown[]): Promise<unknown> {
      const t0 = nowMs();
      try {
        return await orig.apply(floe.engine, a);
      } finally {
        const l = label(String(a[0]));
        sums.set(l, (sums.get(l) ?? 0) + nowMs() - t0);
      }
    };
    restores.push(() => void delete eng[k]);
  }
  return { sums, restore: () => restores.forEach((r) => r()) };
}

/** One fresh-target applyChanges, step by step, with its statements timed. */
async function profileOnce(o: AutoCdcScenarioOptions, info: CdcEventsInfo, scd: 1 | 2, phases: PhaseTimer, stmts: PhaseTimer): Promise<void> {
  const dir = await scratchDir(o, `auto-cdc-prof${scd}`);
  const floe = await Floe.create();
  try {
    await loadEvents(floe, info.events);
    collectGarbage();
    const ins = instrument(floe);
    const t0 = nowMs();
    phases.start();
    const p = await prepareApplyChanges(floe, cdcOptions(floe, dir, scd, EV, 0));
    phases.mark('prepare (validate, batch, checks, diff)');
    await commitTargetStep(floe, p);
    phases.mark('target commit (MERGE)');
    await commitStateStep(floe, p);
    phases.mark('state commit');
    await dropTemps(floe, p);
    phases.record('total', nowMs() - t0);
    ins.restore();
    for (const [k, v] of ins.sums) stmts.record(k, v);
  } finally {
    await floe.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** auto-cdc-scd1 / auto-cdc-scd2. */
export async function autoCdcFull(o: AutoCdcScenarioOptions, info: CdcEventsInfo, scd: 1 | 2): Promise<ComparisonRow[]> {
  const P = CDC_EVENTS_PARAMS;
  const seen: { floe: Record<string, unknown> | null; base: Record<string, unknown> | null; counts: string } = { floe: null, base: null, counts: '' };
  // CPU time (all threads) beside wall time: far less sensitive to other processes on a loaded machine.
  const cpu = { floe: [] as number[], base: [] as number[] };
  const floeRun: Measured = async () => {
    const dir = await scratchDir(o, `auto-cdc-scd${scd}`);
    const floe = await Floe.create();
    try {
      await loadEvents(floe, info.events);
      collectGarbage();
      const c0 = cpuMs();
      const t0 = nowMs();
      const r = await applyChanges(floe, cdcOptions(floe, dir, scd, EV, 0));
      const ms = nowMs() - t0;
      cpu.floe.push(cpuMs() - c0);
      if (!seen.floe) {
        const t = await (await floe.read.delta(dir)).toSQL();
        seen.floe = (await floe.engine.allJson(`SELECT ${AGG} FROM (${t})${scd === 2 ? ' WHERE "__END_AT" IS NULL' : ''}`))[0]!;
        seen.counts = `${r.numSourceRows} events → ${r.numUpsertedRows} rows upserted, ${r.numDeletedRows} deleted`;
        if (scd === 2) {
          const h = (await floe.engine.allJson(`SELECT count(*) AS n FROM (${t})`))[0]!;
          seen.counts += `; ${h.n} history rows`;
        }
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
      await loadEvents(floe, info.events);
      await floe.engine.run(`CREATE TABLE bench_cdc_target (id BIGINT, name VARCHAR, amount DOUBLE, country VARCHAR, updated_at TIMESTAMP)`);
      collectGarbage();
      const c0 = cpuMs();
      const t0 = nowMs();
      await floe.engine.run(DUCKDB_SCD1_MERGE('bench_cdc_target', EV));
      const ms = nowMs() - t0;
      cpu.base.push(cpuMs() - c0);
      if (!seen.base) seen.base = (await floe.engine.allJson(`SELECT ${AGG} FROM bench_cdc_target`))[0]!;
      return ms;
    } finally {
      await floe.close();
    }
  };
  // The same MERGE into a table of a file-backed DuckDB database, made durable by CHECKPOINT (as
  // floe's commit is durable): not the baseline, a second point of comparison.
  const durableRun: Measured = async () => {
    const dir = await scratchDir(o, `auto-cdc-duckdb${scd}`);
    await fs.mkdir(dir);
    const floe = await Floe.create();
    try {
      await loadEvents(floe, info.events);
      await floe.engine.run(`ATTACH ${sqlString(path.join(dir, 'bench.duckdb'))} AS fb`);
      await floe.engine.run(`CREATE TABLE fb.bench_cdc_target (id BIGINT, name VARCHAR, amount DOUBLE, country VARCHAR, updated_at TIMESTAMP)`);
      await floe.engine.run('CHECKPOINT fb');
      collectGarbage();
      const t0 = nowMs();
      await floe.engine.run(DUCKDB_SCD1_MERGE('fb.bench_cdc_target', EV));
      await floe.engine.run('CHECKPOINT fb');
      return nowMs() - t0;
    } finally {
      await floe.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  // SCD 2 only: the history written by hand in DuckDB (each upsert a version ending at the key's next
  // event, deletes closing it) into an in-memory table: what SCD 2 costs the engine by itself.
  let histRows: string | undefined;
  const scd2Run: Measured = async () => {
    const floe = await Floe.create();
    try {
      await loadEvents(floe, info.events);
      await floe.engine.run(`CREATE TABLE bench_cdc_hist (id BIGINT, name VARCHAR, amount DOUBLE, country VARCHAR, updated_at TIMESTAMP, "__START_AT" BIGINT, "__END_AT" BIGINT)`);
      collectGarbage();
      const t0 = nowMs();
      await floe.engine.run(DUCKDB_SCD2_HISTORY('bench_cdc_hist', EV));
      const ms = nowMs() - t0;
      histRows ??= String((await floe.engine.allJson('SELECT count(*) AS n FROM bench_cdc_hist'))[0]!.n);
      return ms;
    } finally {
      await floe.close();
    }
  };
  const [f, b, d, h] = await measureEach(o.runs, scd === 2 ? [floeRun, baseRun, durableRun, scd2Run] : [floeRun, baseRun, durableRun]);
  const notes = [`${P.events} events, ${P.keys} keys, ${P.outOfOrderPct}% out of order, ${P.deletePct}% deletes; ${seen.counts}`];
  // (The first run of each side is measureEach's warm-up.)
  const fc = median(cpu.floe.slice(1));
  const bc = median(cpu.base.slice(1));
  notes.push(`CPU (all threads) median: floe ${round(fc)} ms, DuckDB MERGE ${round(bc)} ms, ratio ${(fc / bc).toFixed(2)}x`);
  // The current rows must be the baseline's: the latest event per key, deleted keys absent.
  if (!seen.floe || !seen.base || !sameResult(seen.floe, seen.base)) {
    const msg = `WARNING: current rows differ: floe ${JSON.stringify(seen.floe)} vs DuckDB MERGE ${JSON.stringify(seen.base)}`;
    notes.push(msg);
    console.warn(msg);
  } else notes.push(`current rows = DuckDB MERGE's (${String(seen.floe.n)})`);
  const row: ComparisonRow = { label: `auto-cdc-scd${scd} vs DuckDB MERGE (SCD 1 upsert)`, targeted: true, floe: f!, base: b!, notes };
  if (o.profile) {
    const phases = new PhaseTimer();
    const stmts = new PhaseTimer();
    for (let i = 0; i < Math.min(o.runs, 2); i++) await profileOnce(o, info, scd, phases, stmts);
    row.profile = { 'applyChanges phases': phases.medians(), 'engine statements (sum per kind)': stmts.medians() };
  }
  const durable: ComparisonRow = { label: `auto-cdc-scd${scd} vs DuckDB MERGE, file-backed + CHECKPOINT`, targeted: false, floe: f!, base: d!, notes: ['baseline: the same MERGE INTO a table of a file-backed DuckDB database, then CHECKPOINT (durable, as floe\'s commit); empty table created and checkpointed untimed'] };
  const rows = [row, durable];
  if (h) rows.push({ label: `auto-cdc-scd2 vs DuckDB SCD 2 history by hand`, targeted: false, floe: f!, base: h, notes: ['baseline: INSERT INTO an in-memory DuckDB table of each upsert as a version ending at the key\'s next event (lead over the key\'s events by sequence), deletes dropped: the SCD 2 history without state, checks, files or log', `${histRows ?? '?'} history rows`] });
  return rows;
}

/** auto-cdc-incremental (SCD 1 and SCD 2). */
export async function autoCdcIncremental(o: AutoCdcScenarioOptions, info: CdcEventsInfo): Promise<ComparisonRow[]> {
  const P = CDC_EVENTS_PARAMS;
  const rows: ComparisonRow[] = [];
  for (const scd of [1, 2] as const) {
    const t1: number[] = [];
    const t2: number[] = [];
    const t0s: number[] = [];
    const prof = { first: new PhaseTimer(), second: new PhaseTimer(), one: new PhaseTimer() };
    for (let i = 0; i <= o.runs; i++) {
      const dir = await scratchDir(o, `auto-cdc-incr${scd}`);
      const floe = await Floe.create();
      try {
        await loadEvents(floe, info.events);
        await loadEvents(floe, info.incremental, 'bench_cdc_new', ` WHERE seq < ${P.events + P.incrementalEvents}`);
        await loadEvents(floe, info.incremental, 'bench_cdc_one', ` WHERE seq = ${P.events + P.incrementalEvents}`);
        const timedApply = async (src: string, batchId: number, timer: PhaseTimer): Promise<number> => {
          collectGarbage();
          const ins = i > 0 && o.profile ? instrument(floe) : null;
          const s = nowMs();
          await applyChanges(floe, cdcOptions(floe, dir, scd, src, batchId));
          const ms = nowMs() - s;
          if (ins) {
            ins.restore();
            for (const [k, v] of ins.sums) timer.record(k, v);
            timer.record('total', ms);
          }
          return ms;
        };
        const a = await timedApply(EV, 0, prof.first);
        const b = await timedApply('bench_cdc_new', 1, prof.second);
        const c = await timedApply('bench_cdc_one', 2, prof.one);
        if (i > 0) {
          // i = 0 is the warm-up
          t1.push(a);
          t2.push(b);
          t0s.push(c);
        }
      } finally {
        await floe.close();
        await fs.rm(dir, { recursive: true, force: true });
      }
    }
    const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    const T1 = med(t1);
    const T2 = med(t2);
    const T0 = med(t0s);
    const ok = T2 <= 0.05 * T1 + T0;
    const note = `first run (1M events) ${round(T1)} ms; second run (${P.incrementalEvents} new events) ${round(T2)} ms = ${(100 * T2 / T1).toFixed(1)}% of the first; fixed overhead (1 new event) ${round(T0)} ms; T2 − T0 = ${round(T2 - T0)} ms = ${(100 * (T2 - T0) / T1).toFixed(1)}% of the first; target T2 ≤ 5% × T1 + T0 = ${round(0.05 * T1 + T0)} ms: ${ok ? 'ok' : 'MISS'}`;
    rows.push({ label: `auto-cdc-incremental scd${scd}: 1% new events vs first run`, targeted: false, floe: t2, base: t1, notes: [note] });
    const row: ComparisonRow = { label: `auto-cdc-incremental scd${scd}: (1% run − 1-event run) vs first run`, targeted: true, floe: t2.map((x, k) => x - t0s[k]!), base: t1, notes: [`fixed overhead (1 new event) median ${round(T0)} ms`] };
    if (o.profile) row.profile = { 'first run statements': prof.first.medians(), '1% run statements': prof.second.medians(), '1-event run statements': prof.one.medians() };
    rows.push(row);
  }
  return rows;
}
