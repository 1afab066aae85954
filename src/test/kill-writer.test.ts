/**
 * Crash safety of the write path: a writer process (dist/test/fixtures/killable-writer.js) appending
 * with idempotent txn ids is killed with SIGKILL at varied points — during the data file COPY, the
 * commit's put-if-absent, checkpoint writing (checkpointInterval 2), between appends — over many
 * trials. After every kill the table must open and read, its latest commit must be complete JSON,
 * its rows must be exactly those of the committed txn versions, every checkpoint must be complete,
 * and rerunning the last attempted txn version must land exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { tempDir } from './helpers.js';

const WRITER = fileURLToPath(new URL('./fixtures/killable-writer.js', import.meta.url));
const APP_ID = 'killtest';
const ROWS = 10_000; // rows per append: enough for the COPY to take some milliseconds
const TRIALS = 40;
const COMMIT = /^(\d{20})\.json$/;
const CHECKPOINT = /^(\d{20})\.checkpoint\.parquet$/;
const COMMIT_TMP = /^\.\d{20}\.json\..+\.tmp$/;
const CHECKPOINT_TMP = /^\.\d{20}\.checkpoint\.parquet\..+\.tmp$/;

type Strategy = 'random' | 'data-file' | 'commit' | 'checkpoint-due' | 'checkpoint-file';
const STRATEGIES: Strategy[] = ['random', 'data-file', 'commit', 'checkpoint-due', 'checkpoint-file'];

const pad = (v: number): string => String(v).padStart(20, '0');
const logDir = (t: string): string => path.join(t, '_delta_log');

/** The SQL of one append's rows, identical in the fixture and in the reruns here. */
function appendSql(k: number): string {
  return `SELECT ${k}::BIGINT AS k, range::BIGINT AS i, md5(range::VARCHAR || '-${k}') || md5(random()::VARCHAR) || repeat('z', 40) AS payload FROM range(${ROWS})`;
}

interface TrialRun {
  lines: string[];
  killedAfterMs: number;
  trigger: string;
}

/**
 * Runs the writer and SIGKILLs it: after a random delay from `ready` (random), or as soon as the
 * filesystem shows it writing a data file, a commit temp file, or a checkpoint (plus a little jitter).
 */
async function runAndKill(dir: string, strategy: Strategy, cycleMs: number): Promise<TrialRun> {
  const child = fork(WRITER, [dir, String(ROWS)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const watchers: FSWatcher[] = [];
  let readyAt = 0;
  let trigger = 'timeout';
  let killedAt = 0;
  const kill = (why: string, jitterMs = 0): void => {
    if (killedAt) return;
    killedAt = -1;
    const doKill = (): void => {
      killedAt = Date.now();
      trigger = why;
      child.kill('SIGKILL');
    };
    if (jitterMs > 0) setTimeout(doKill, jitterMs);
    else doKill();
  };
  const arm = (): void => {
    if (strategy === 'random') {
      setTimeout(() => kill('random delay'), Math.random() * 2.5 * cycleMs);
    } else if (strategy === 'data-file') {
      watchers.push(watch(dir, (_ev, f) => {
        if (f && String(f).endsWith('.parquet')) kill('data file appeared', Math.random() * cycleMs * 0.4);
      }));
    } else if (strategy === 'commit') {
      watchers.push(watch(logDir(dir), (_ev, f) => {
        if (f && COMMIT_TMP.test(String(f))) kill('commit temp file appeared', Math.random() * 2);
      }));
    } else if (strategy === 'checkpoint-due') {
      // A commit at an even version is followed by a checkpoint (delta.checkpointInterval = 2).
      watchers.push(watch(logDir(dir), (_ev, f) => {
        const m = COMMIT.exec(f ? String(f) : '');
        if (m && Number(m[1]) % 2 === 0) kill('even commit appeared', Math.random() * 15);
      }));
    } else {
      watchers.push(watch(logDir(dir), (_ev, f) => {
        const name = f ? String(f) : '';
        if (CHECKPOINT_TMP.test(name)) kill('checkpoint temp file appeared', Math.random() * 4);
        else if (CHECKPOINT.test(name)) kill('checkpoint file appeared');
      }));
    }
  };
  child.stdout!.on('data', () => {
    if (!readyAt && /^ready /m.test(out)) {
      readyAt = Date.now();
      arm();
    }
  });
  const safety = setTimeout(() => kill('timeout'), 8000);
  const exit = await closed;
  clearTimeout(safety);
  for (const w of watchers) w.close();
  assert.equal(exit.signal, 'SIGKILL', `the writer died by SIGKILL, not by an error: code ${exit.code}, stderr: ${err}`);
  return { lines: out.split('\n').filter(Boolean), killedAfterMs: killedAt > 0 && readyAt ? killedAt - readyAt : -1, trigger };
}

function parseJsonLines(text: string, file: string): Record<string, unknown>[] {
  assert.ok(text.endsWith('\n'), `${file} ends with a newline: the commit is complete`);
  return text.split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch (e) {
      assert.fail(`${file} line ${i + 1} is not valid JSON (a torn commit): ${(e as Error).message}`);
    }
  });
}

test(`a writer SIGKILLed at random points (${TRIALS} trials) never damages the table; reruns land exactly once`, { timeout: 180_000 }, async (t) => {
  const dir = await tempDir('floe-kill-');
  const floe = await Floe.create();
  const t0 = Date.now();
  try {
    await DeltaTable.create(floe, {
      path: dir,
      schema: [{ name: 'k', type: 'long' }, { name: 'i', type: 'long' }, { name: 'payload', type: 'string' }],
      properties: { 'delta.checkpointInterval': '2' },
    });
    let committed = 0; // txn version the table holds (= appends landed)
    let version = 0;
    let cycleMs = 120; // estimate of one append's duration, refined from the writer's reports
    const addsPerVersion = new Map<number, number>([[0, 0]]);
    const checkedCheckpoints = new Set<number>();
    const knownOrphans = new Set<string>();
    const points = new Map<string, number>();
    const triggers = new Map<string, number>();
    const note = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
    let rerunsCommitted = 0;
    let rerunsSkipped = 0;
    let appendsByWriter = 0;
    const delays: number[] = [];

    for (let trial = 0; trial < TRIALS; trial++) {
      const strategy = STRATEGIES[trial % STRATEGIES.length]!;
      const before = { committed, version };
      const tmpBefore = new Set((await fs.readdir(logDir(dir))).filter((n) => n.endsWith('.tmp')));
      const run = await runAndKill(dir, strategy, cycleMs);
      note(triggers, `${strategy}: ${run.trigger}`);
      if (run.killedAfterMs >= 0) delays.push(run.killedAfterMs);
      const attempts = run.lines.filter((l) => l.startsWith('attempt ')).map((l) => Number(l.split(' ')[1]));
      const done = run.lines.filter((l) => l.startsWith('committed ')).map((l) => l.split(' ').map(Number));
      assert.ok(!run.lines.some((l) => l.startsWith('skipped ')), 'a single writer never skips its own next txn version');
      for (const d of done) cycleMs = 0.7 * cycleMs + 0.3 * Math.max(20, d[4]!);
      appendsByWriter += done.length;

      // 1. The table opens and reads; its latest commit is complete JSON.
      const snap = await floe.snapshot(dir);
      const listing = await fs.readdir(logDir(dir));
      const commits = listing.map((n) => COMMIT.exec(n)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1])).sort((a, b) => a - b);
      assert.deepEqual(commits, Array.from({ length: snap.version + 1 }, (_, i) => i), `trial ${trial}: commits are contiguous 0..${snap.version}`);
      for (let v = before.version + 1; v <= snap.version; v++) {
        const lines = parseJsonLines(await fs.readFile(path.join(logDir(dir), `${pad(v)}.json`), 'utf8'), `commit ${v}`);
        assert.ok(lines.some((l) => l.commitInfo), `commit ${v} has its commitInfo`);
        addsPerVersion.set(v, lines.filter((l) => l.add).length);
      }
      parseJsonLines(await fs.readFile(path.join(logDir(dir), `${pad(snap.version)}.json`), 'utf8'), `latest commit ${snap.version}`);

      // 2. Rows are exactly those of the committed txn versions: k = 1..committed, ROWS rows each, no duplicate.
      const nowCommitted = snap.txnVersion(APP_ID) ?? 0;
      assert.ok(nowCommitted >= before.committed, `trial ${trial}: committed txn versions never go back (${before.committed} → ${nowCommitted})`);
      assert.equal(snap.version - before.version, nowCommitted - before.committed, `trial ${trial}: one table version per landed append`);
      const df = await floe.read.delta(dir);
      assert.equal(await df.count(), nowCommitted * ROWS, `trial ${trial}: rows == committed txn versions × ${ROWS}`);
      const perK = await floe.engine.allJson(`SELECT k, count(*) AS c, count(DISTINCT i) AS d FROM (${await df.toSQL()}) GROUP BY k ORDER BY k`);
      assert.deepEqual(perK.map((r) => [Number(r.k), Number(r.c), Number(r.d)]), Array.from({ length: nowCommitted }, (_, i) => [i + 1, ROWS, ROWS]), `trial ${trial}: each committed k has its ${ROWS} rows once`);
      const attempted = attempts.length ? Math.max(...attempts) : nowCommitted;
      assert.ok(nowCommitted <= attempted && attempted <= nowCommitted + 1, `trial ${trial}: the writer attempted k=${attempted} with ${nowCommitted} committed`);

      // 3. Every checkpoint is complete (a killed checkpoint write never leaves a file a reader would use).
      const checkpoints = listing.map((n) => CHECKPOINT.exec(n)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1]));
      for (const cv of checkpoints) {
        if (checkedCheckpoints.has(cv)) continue;
        const file = path.join(logDir(dir), `${pad(cv)}.checkpoint.parquet`);
        const [c] = await floe.engine.allJson(`SELECT count(add) AS adds, count(metaData) AS md, count(protocol) AS pr, count(txn) AS txn FROM read_parquet('${file}')`);
        let adds = 0;
        for (let v = 0; v <= cv; v++) adds += addsPerVersion.get(v)!;
        assert.deepEqual([Number(c!.adds), Number(c!.md), Number(c!.pr), Number(c!.txn)], [adds, 1, 1, cv > 0 ? 1 : 0], `checkpoint ${cv} is complete`);
        checkedCheckpoints.add(cv);
      }
      const lastCp = await lastCheckpointVersion(dir);
      if (lastCp !== null) assert.ok(checkpoints.includes(lastCp), `_last_checkpoint names an existing checkpoint (${lastCp})`);

      // 4. Where did the kill land? Judged from the writer's output and what it left on disk.
      const tmpNow = listing.filter((n) => n.endsWith('.tmp') && !tmpBefore.has(n));
      const orphans: string[] = [];
      const referenced = new Set(snap.files.map((f) => decodeURIComponent(f.path)));
      for (const n of await fs.readdir(dir)) if (n.endsWith('.parquet') && !referenced.has(n) && !knownOrphans.has(n)) orphans.push(n);
      let point: string;
      if (!attempts.length) point = 'startup (before the first attempt)';
      else if (attempted > nowCommitted) {
        if (tmpNow.some((n) => COMMIT_TMP.test(n))) point = 'commit: temp log entry written, not linked';
        else if (orphans.length) {
          let complete = true;
          try {
            await floe.engine.allJson(`SELECT count(*) FROM read_parquet('${path.join(dir, orphans[0]!)}')`);
          } catch {
            complete = false;
          }
          point = complete ? 'after the data file, before the commit' : 'during the data file COPY (torn Parquet file)';
        } else point = 'before the data file (snapshot, planning)';
      } else {
        const landed = done.some((d) => d[1] === attempted);
        const v = snap.version;
        if (landed) point = 'between appends (after a write returned)';
        else if (v % 2 !== 0) point = 'after the commit, before the write returned';
        else if (!checkpoints.includes(v)) point = tmpNow.some((n) => CHECKPOINT_TMP.test(n)) ? 'checkpoint: during the Parquet COPY' : 'after the commit, before the checkpoint file';
        else if (lastCp !== v) point = 'checkpoint: file in place, _last_checkpoint not yet updated';
        else point = 'after the checkpoint, before the write returned';
      }
      note(points, point);
      for (const o of orphans) knownOrphans.add(o);

      // 5. Rerun the last attempted txn version: it lands exactly once. (Killed before its first
      // attempt, under heavy load: there is nothing to rerun.)
      if (attempted === 0) continue;
      const rerun = await floe.duckdbSql(appendSql(attempted)).write.delta(dir, { mode: 'append', txnAppId: APP_ID, txnVersion: attempted });
      if (attempted <= nowCommitted) {
        assert.equal(rerun.skipped, true, `trial ${trial}: rerunning committed txn version ${attempted} is skipped`);
        rerunsSkipped++;
      } else {
        assert.equal(rerun.skipped, false, `trial ${trial}: rerunning uncommitted txn version ${attempted} commits`);
        assert.equal(rerun.version, snap.version + 1);
        addsPerVersion.set(rerun.version!, rerun.numFiles);
        rerunsCommitted++;
      }
      const again = await floe.duckdbSql(appendSql(attempted)).write.delta(dir, { mode: 'append', txnAppId: APP_ID, txnVersion: attempted });
      assert.equal(again.skipped, true, `trial ${trial}: a second rerun of txn version ${attempted} is skipped`);
      const after = await floe.snapshot(dir);
      assert.equal(after.txnVersion(APP_ID), attempted);
      assert.equal(await (await floe.read.delta(dir)).count(), attempted * ROWS, `trial ${trial}: after the rerun, rows == ${attempted} × ${ROWS}`);
      committed = attempted;
      version = after.version;
    }

    // Stale temp files may remain; a fresh session still reads the table exactly.
    const stale = (await fs.readdir(logDir(dir))).filter((n) => n.startsWith('.') && n.endsWith('.tmp'));
    const fresh = await Floe.create();
    try {
      assert.equal(await (await fresh.read.delta(dir)).count(), committed * ROWS);
      assert.equal((await fresh.snapshot(dir)).txnVersion(APP_ID), committed);
    } finally {
      await fresh.close();
    }
    delays.sort((a, b) => a - b);
    t.diagnostic(`${TRIALS} kills in ${Date.now() - t0} ms; ${committed} appends landed (${appendsByWriter} by killed writers, ${rerunsCommitted} by reruns; ${rerunsSkipped} reruns skipped as already committed); table version ${version}, ${checkedCheckpoints.size} checkpoints verified`);
    t.diagnostic(`kill delay after ready: min ${delays[0]} / median ${delays[Math.floor(delays.length / 2)]} / max ${delays[delays.length - 1]} ms; append ≈ ${Math.round(cycleMs)} ms`);
    t.diagnostic(`triggers: ${[...triggers].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    t.diagnostic(`kill points: ${[...points].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    t.diagnostic(`left behind: ${stale.length} temp files in _delta_log, ${knownOrphans.size} unreferenced data files`);
    // The kills must have hit both sides of the commit point, or the test proved little.
    const preCommit = [...points].filter(([k]) => /^(during|after the data|before the data|commit)/.test(k)).reduce((n, [, c]) => n + c, 0);
    const postCommit = [...points].filter(([k]) => /^(after the commit|checkpoint|after the checkpoint)/.test(k)).reduce((n, [, c]) => n + c, 0);
    assert.ok(preCommit > 0 && postCommit > 0, `kills landed before the commit (${preCommit}) and after it (${postCommit})`);
  } finally {
    await floe.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

async function lastCheckpointVersion(dir: string): Promise<number | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(logDir(dir), '_last_checkpoint'), 'utf8');
  } catch {
    return null;
  }
  const j = JSON.parse(text) as { version?: unknown };
  assert.equal(typeof j.version, 'number', `_last_checkpoint is complete JSON with a version: ${text}`);
  return j.version as number;
}
