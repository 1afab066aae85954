/**
 * Reliability of the write path under concurrent writers in separate processes (the commit path is
 * put-if-absent of `_delta_log/<v>.json`, a conflict check against the winners, and a retry):
 *  - 4 processes × 50 blind appends: versions contiguous, every row exactly once, retries counted,
 *    checkpoints written by concurrent writers complete and readable;
 *  - racing overwrites, and an overwrite racing an append: the loser fails with a typed conflict or
 *    succeeds after rebasing, and the table never loses or duplicates rows;
 *  - the same idempotent (txnAppId, txnVersion) written by two processes at once lands exactly once.
 * Child processes run the compiled fixture dist/test/fixtures/append-worker.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import type { WriteResult } from '../table/write.js';
import { copyLocation, isRemoteStore, listNames, localCopy, newLocation, readText, removeKey, storeAt } from './store.js';

const WORKER = fileURLToPath(new URL('./fixtures/append-worker.js', import.meta.url));
const COMMIT = /^(\d{20})\.json$/;
const CHECKPOINT = /^(\d{20})\.checkpoint\.parquet$/;
const CONFLICT_CODES = ['ConcurrentAppendException', 'ConcurrentDeleteReadException', 'ConcurrentDeleteDeleteException'];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Worker {
  proc: ChildProcess;
  ready: Promise<void>;
  done: Promise<Exit>;
}

function startWorker(args: string[], onMessage?: (m: unknown) => void): Worker {
  const proc = fork(WORKER, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Exit>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  const ready = new Promise<void>((resolve, reject) => {
    proc.on('message', (m) => {
      if (m && typeof m === 'object' && (m as { ready?: boolean }).ready) resolve();
      else onMessage?.(m);
    });
    void done.then((e) => reject(new Error(`worker ${args.join(' ')} exited (${e.code ?? e.signal}) before it was ready: ${e.stderr}`)));
  });
  return { proc, ready, done };
}

interface Reply {
  id: number;
  ok: boolean;
  result?: WriteResult;
  error?: { name: string; code?: string; isFloeError: boolean; message: string };
}

interface Command {
  mode: 'append' | 'overwrite';
  tag: string;
  rows: number;
  txnAppId?: string;
  txnVersion?: number;
}

/** A `serve`-mode worker: one Floe session in a child process that runs write commands on request. */
class Server {
  private nextId = 0;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private readonly worker: Worker;

  private constructor(table: string) {
    this.worker = startWorker(['serve', table], (m) => {
      const r = m as Reply;
      this.pending.get(r.id)?.(r);
      this.pending.delete(r.id);
    });
  }

  static async start(table: string): Promise<Server> {
    const s = new Server(table);
    await s.worker.ready;
    return s;
  }

  request(cmd: Command): Promise<Reply> {
    const id = ++this.nextId;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, resolve);
      this.worker.proc.send({ id, ...cmd }, (e) => e && reject(e));
      void this.worker.done.then((e) => reject(new Error(`server exited (${e.code ?? e.signal}) during a request: ${e.stderr}`)));
    });
  }

  async stop(): Promise<Exit> {
    this.worker.proc.send('exit');
    return this.worker.done;
  }
}

function parseJsonLines(text: string, file: string): Record<string, unknown>[] {
  assert.ok(text.endsWith('\n'), `${file} must end with a newline (a complete commit)`);
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch (e) {
        assert.fail(`${file} line ${i + 1} is not JSON: ${(e as Error).message}`);
      }
    });
}

async function logListing(table: string): Promise<{ commits: number[]; checkpoints: number[]; names: string[] }> {
  const names = await listNames(table, '_delta_log');
  const commits: number[] = [];
  const checkpoints: number[] = [];
  for (const n of names) {
    let m = COMMIT.exec(n);
    if (m) commits.push(Number(m[1]));
    m = CHECKPOINT.exec(n);
    if (m) checkpoints.push(Number(m[1]));
  }
  return { commits: commits.sort((a, b) => a - b), checkpoints: checkpoints.sort((a, b) => a - b), names };
}

async function readCommitLines(table: string, v: number): Promise<Record<string, unknown>[]> {
  const file = `_delta_log/${String(v).padStart(20, '0')}.json`;
  return parseJsonLines(await readText(table, file), file);
}

async function commitInfo(table: string, v: number): Promise<Record<string, unknown>> {
  const ci = (await readCommitLines(table, v)).find((l) => 'commitInfo' in l)?.commitInfo;
  assert.ok(ci, `commit ${v} has a commitInfo`);
  return ci as Record<string, unknown>;
}

/** Data files in the table folder not referenced by any add in the log (litter of failed or killed writes). */
async function orphanDataFiles(table: string): Promise<string[]> {
  const { commits } = await logListing(table);
  const referenced = new Set<string>();
  for (const v of commits) for (const l of await readCommitLines(table, v)) if (l.add) referenced.add(decodeURIComponent((l.add as { path: string }).path));
  return (await listNames(table, '')).filter((n) => n.endsWith('.parquet') && !referenced.has(n));
}

// (Remote test stores get more time: every commit, check and checkpoint read is an HTTP round trip.)
test('4 processes × 50 appends: versions 0..200 contiguous, every (worker, seq) once, checkpoints readable', { timeout: isRemoteStore ? 300_000 : 120_000 }, async (t) => {
  const WORKERS = 4;
  const APPENDS = 50;
  const TOTAL = WORKERS * APPENDS;
  const dir = await newLocation('t', 'floe-conc-append-');
  const floe = await Floe.create();
  try {
    await DeltaTable.create(floe, {
      path: dir,
      schema: [
        { name: 'worker', type: 'integer' },
        { name: 'seq', type: 'integer' },
        { name: 'id', type: 'string' },
        { name: 'payload', type: 'string' },
      ],
    });
    const t0 = Date.now();
    const workers = Array.from({ length: WORKERS }, (_, w) => startWorker(['appends', dir, String(w), String(APPENDS)]));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.proc.send('go');
    const exits = await Promise.all(workers.map((w) => w.done));
    const elapsed = Date.now() - t0;

    // Every child exited cleanly: retries were handled inside the transaction.
    const reports = exits.map((e, i) => {
      assert.equal(e.code, 0, `worker ${i} exited with ${e.code ?? e.signal}: ${e.stderr}`);
      assert.doesNotMatch(e.stderr, /checkpoint at version \d+ .* failed/, `worker ${i} reported a failed checkpoint: ${e.stderr}`);
      return JSON.parse(e.stdout.trim()) as { worker: number; attempts: number; versions: number[]; ms: number };
    });
    const attempts = reports.reduce((n, r) => n + r.attempts, 0);
    t.diagnostic(`${WORKERS}×${APPENDS} appends in ${elapsed} ms; commit attempts ${attempts}, retries ${attempts - TOTAL}; per worker: ${reports.map((r) => `w${r.worker} ${r.attempts - APPENDS} retries/${r.ms} ms`).join(', ')}`);

    // Versions: 0 (create) .. 200, contiguous, each append got its own version.
    const claimed = reports.flatMap((r) => r.versions).sort((a, b) => a - b);
    assert.deepEqual(claimed, Array.from({ length: TOTAL }, (_, i) => i + 1), 'the writers committed versions 1..200, each exactly once');
    const { commits, checkpoints } = await logListing(dir);
    assert.deepEqual(commits, Array.from({ length: TOTAL + 1 }, (_, i) => i), 'the log holds commits 0..200 with no gap');
    const addsByVersion = new Map<number, string>();
    for (let v = 1; v <= TOTAL; v++) {
      const lines = await readCommitLines(dir, v);
      const adds = lines.filter((l) => l.add);
      assert.equal(adds.length, 1, `commit ${v} adds one file`);
      assert.equal(lines.filter((l) => l.remove || l.metaData || l.protocol).length, 0, `commit ${v} is a plain append`);
      const ci = lines.find((l) => l.commitInfo)?.commitInfo as Record<string, unknown> | undefined;
      assert.equal(ci?.isBlindAppend, true, `commit ${v} is a blind append`);
      addsByVersion.set(v, (adds[0]!.add as { path: string }).path);
    }
    assert.equal(new Set(addsByVersion.values()).size, TOTAL, 'no data file is added twice');

    // Every (worker, seq) row exactly once.
    const snap = await floe.snapshot(dir);
    assert.equal(snap.version, TOTAL);
    const rows = await (await floe.read.delta(dir)).select('worker', 'seq', 'id').toJSON();
    assert.equal(rows.length, TOTAL);
    const keys = new Set(rows.map((r) => `${r.worker}/${r.seq}`));
    assert.equal(keys.size, TOTAL, 'every (worker, seq) appears exactly once');
    for (let w = 0; w < WORKERS; w++) for (let s = 0; s < APPENDS; s++) assert.ok(keys.has(`${w}/${s}`), `row (${w}, ${s}) is present`);
    assert.equal(new Set(rows.map((r) => r.id)).size, TOTAL, 'ids are unique');

    // Checkpoints written by whichever writer committed versions 10, 20, …: complete and exact.
    assert.deepEqual(checkpoints, Array.from({ length: TOTAL / 10 }, (_, i) => (i + 1) * 10), 'a checkpoint every 10 commits');
    const local = await localCopy(dir, '_delta_log/'); // DuckDB reads the checkpoint files from a local folder
    for (const cv of checkpoints) {
      const file = path.join(local, '_delta_log', `${String(cv).padStart(20, '0')}.checkpoint.parquet`);
      const [c] = await floe.engine.allJson(`SELECT count(add) AS adds, count(metaData) AS md, count(protocol) AS pr, count(remove) AS rm FROM read_parquet('${file}')`);
      assert.deepEqual([Number(c!.adds), Number(c!.md), Number(c!.pr), Number(c!.rm)], [cv, 1, 1, 0], `checkpoint ${cv} holds ${cv} adds, one metaData and one protocol`);
      const paths = (await floe.engine.allJson(`SELECT add.path AS p FROM read_parquet('${file}') WHERE add IS NOT NULL`)).map((r) => String(r.p)).sort();
      const expected = Array.from({ length: cv }, (_, i) => addsByVersion.get(i + 1)!).sort();
      assert.deepEqual(paths, expected, `checkpoint ${cv} holds exactly the files of commits 1..${cv}`);
    }

    // _last_checkpoint points at a complete checkpoint; reading through it alone gives the same table.
    const last = JSON.parse(await readText(dir, '_delta_log/_last_checkpoint')) as { version: number; size?: number; sizeInBytes?: number; numOfAddFiles?: number };
    assert.ok(checkpoints.includes(last.version), `_last_checkpoint (version ${last.version}) names an existing checkpoint`);
    const lastFile = `_delta_log/${String(last.version).padStart(20, '0')}.checkpoint.parquet`;
    if (last.sizeInBytes !== undefined) assert.equal(last.sizeInBytes, (await storeAt(dir).head(lastFile))?.size, '_last_checkpoint sizeInBytes matches the file');
    if (last.numOfAddFiles !== undefined) assert.equal(last.numOfAddFiles, last.version);
    t.diagnostic(`checkpoints ${checkpoints.length} (${checkpoints[0]}..${checkpoints[checkpoints.length - 1]}); _last_checkpoint → ${last.version}${last.version === checkpoints[checkpoints.length - 1] ? ' (the newest)' : ` (stale: newest is ${checkpoints[checkpoints.length - 1]})`}`);

    const copy = await newLocation('t', 'floe-conc-cp-');
    await copyLocation(dir, copy);
    const { commits: cc, checkpoints: ccp } = await logListing(copy);
    for (const v of cc) if (v <= last.version) await removeKey(copy, `_delta_log/${String(v).padStart(20, '0')}.json`);
    for (const v of ccp) if (v !== last.version) await removeKey(copy, `_delta_log/${String(v).padStart(20, '0')}.checkpoint.parquet`);
    const fresh = await Floe.create();
    try {
      const s2 = await fresh.snapshot(copy);
      assert.equal(s2.version, TOTAL, 'the copy reaches version 200 from the checkpoint plus later commits');
      const rows2 = await (await fresh.read.delta(copy)).select('worker', 'seq').toJSON();
      assert.deepEqual(new Set(rows2.map((r) => `${r.worker}/${r.seq}`)), keys, 'reading from the checkpoint gives the same rows');
      assert.equal(rows2.length, TOTAL);
      assert.equal(await (await fresh.read.delta(copy, { versionAsOf: last.version })).count(), last.version, 'the checkpoint version alone reads back');
    } finally {
      await fresh.close();
      if (!isRemoteStore) await fs.rm(copy, { recursive: true, force: true });
    }
  } finally {
    await floe.close();
    if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Rows per tag in the table, checking no row is duplicated within a tag. */
async function tagCounts(floe: Floe, dir: string): Promise<Record<string, number>> {
  const rows = await floe.engine.allJson(`SELECT tag, count(*) AS c, count(DISTINCT n) AS d FROM (${await (await floe.read.delta(dir)).toSQL()}) GROUP BY tag ORDER BY tag`);
  const out: Record<string, number> = {};
  for (const r of rows) {
    assert.equal(Number(r.c), Number(r.d), `tag ${String(r.tag)} has no duplicated row`);
    out[String(r.tag)] = Number(r.c);
  }
  return out;
}

function sorted(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function assertConflict(r: Reply, what: string): void {
  assert.ok(!r.ok && r.error, `${what} failed`);
  assert.ok(r.error.isFloeError, `${what}: a typed floe error, got ${r.error.name}: ${r.error.message}`);
  assert.ok(CONFLICT_CODES.includes(r.error.code ?? ''), `${what}: a conflict code (${CONFLICT_CODES.join(', ')}), got ${r.error.code}: ${r.error.message}`);
  assert.equal(r.error.name, r.error.code, `${what}: a ConcurrentModificationError named by its code`);
}

test('racing overwrites, and an overwrite racing an append: typed conflict or rebase, never lost or duplicated rows', { timeout: 120_000 }, async (t) => {
  const dir = await newLocation('t', 'floe-conc-overwrite-');
  const floe = await Floe.create();
  const N = 60_000; // rows per overwrite: the COPY takes long enough for both writers to read the same version
  const M = 30_000; // rows per racing append
  const ROUNDS = 6;
  const servers: Server[] = [];
  try {
    await floe.duckdbSql(`SELECT 'base' AS tag, range::BIGINT AS n, md5(range::VARCHAR) || repeat('x', 48) AS payload FROM range(1000)`).write.delta(dir);
    let model: Record<string, number> = { base: 1000 };
    servers.push(...(await Promise.all([Server.start(dir), Server.start(dir)])));
    const [a, b] = servers as [Server, Server];
    const stats = { ooConflicts: 0, ooBothCommitted: 0, oaOverwriteRebased: 0, oaOverwriteConflicts: 0, oaAppendFirst: 0, codes: new Map<string, number>() };
    const t0 = Date.now();

    for (let r = 0; r < ROUNDS; r++) {
      // Two overwrites.
      const before = (await floe.snapshot(dir)).version;
      const [ra, rb] = await Promise.all([a.request({ mode: 'overwrite', tag: `oo${r}a`, rows: N }), b.request({ mode: 'overwrite', tag: `oo${r}b`, rows: N })]);
      const replies = [{ tag: `oo${r}a`, r: ra }, { tag: `oo${r}b`, r: rb }];
      const ok = replies.filter((x) => x.r.ok);
      assert.ok(ok.length >= 1, `round ${r}: one of two racing overwrites commits (${JSON.stringify(replies)})`);
      for (const x of replies) if (!x.r.ok) {
        assertConflict(x.r, `round ${r}: losing overwrite ${x.tag}`);
        stats.codes.set(x.r.error!.code!, (stats.codes.get(x.r.error!.code!) ?? 0) + 1);
        stats.ooConflicts++;
      }
      if (ok.length === 2) {
        // Both committed: only sound when the later one read the earlier one's commit (no lost update).
        ok.sort((x, y) => x.r.result!.version! - y.r.result!.version!);
        const ci = await commitInfo(dir, ok[1]!.r.result!.version!);
        assert.ok(Number(ci.readVersion) >= ok[0]!.r.result!.version!, `round ${r}: the later overwrite (v${ok[1]!.r.result!.version}) read version ${ci.readVersion}, before the earlier overwrite's v${ok[0]!.r.result!.version}: its commit should have conflicted`);
        stats.ooBothCommitted++;
      }
      model = { [ok[ok.length - 1]!.tag]: N };
      assert.equal((await floe.snapshot(dir)).version, before + ok.length, `round ${r}: one version per committed overwrite`);
      assert.deepEqual(await tagCounts(floe, dir), model, `round ${r}: the table holds exactly the last committed overwrite`);

      // An overwrite racing a blind append (swap roles between the two processes each round).
      const [ow, ap] = r % 2 === 0 ? [a, b] : [b, a];
      const owTag = `oa${r}o`;
      const apTag = `oa${r}a`;
      const [ro, rp] = await Promise.all([ow.request({ mode: 'overwrite', tag: owTag, rows: N }), ap.request({ mode: 'append', tag: apTag, rows: M })]);
      assert.ok(rp.ok, `round ${r}: a blind append never conflicts (${JSON.stringify(rp.error)})`);
      const apVersion = rp.result!.version!;
      if (ro.ok) {
        const ci = await commitInfo(dir, ro.result!.version!);
        if (Number(ci.readVersion) >= apVersion) {
          model = { [owTag]: N }; // the append came first and the overwrite replaced it
          stats.oaAppendFirst++;
        } else {
          model = { [owTag]: N, [apTag]: M }; // the append is not in what the overwrite read: it must survive
          if (ro.result!.version! > apVersion) stats.oaOverwriteRebased++;
        }
      } else {
        assertConflict(ro, `round ${r}: overwrite racing an append`);
        stats.codes.set(ro.error!.code!, (stats.codes.get(ro.error!.code!) ?? 0) + 1);
        stats.oaOverwriteConflicts++;
        model = { ...model, [apTag]: M };
      }
      assert.deepEqual(await tagCounts(floe, dir), sorted(model), `round ${r}: overwrite + append left exactly the expected rows`);
    }
    const orphans = await orphanDataFiles(dir);
    t.diagnostic(`${ROUNDS} rounds in ${Date.now() - t0} ms. overwrite vs overwrite: ${stats.ooConflicts} typed conflicts, ${stats.ooBothCommitted} serial (both committed); overwrite vs append: ${stats.oaOverwriteRebased} overwrites committed after rebasing over the append, ${stats.oaAppendFirst} appends read by the overwrite, ${stats.oaOverwriteConflicts} overwrite conflicts; codes ${JSON.stringify(Object.fromEntries(stats.codes))}; unreferenced data files left: ${orphans.length}`);
    assert.ok(stats.ooConflicts >= 1, 'at least one overwrite/overwrite race produced a conflict (the races really overlapped)');
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await floe.close();
    if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
  }
});

test('the same idempotent (txnAppId, txnVersion) written by two processes at once lands exactly once', { timeout: 120_000 }, async (t) => {
  const dir = await newLocation('t', 'floe-conc-txn-');
  const floe = await Floe.create();
  const M = 30_000;
  const ROUNDS = 8;
  const servers: Server[] = [];
  try {
    await floe.duckdbSql(`SELECT 'base' AS tag, range::BIGINT AS n, md5(range::VARCHAR) || repeat('x', 48) AS payload FROM range(10)`).write.delta(dir);
    const model: Record<string, number> = { base: 10 };
    servers.push(...(await Promise.all([Server.start(dir), Server.start(dir)])));
    const [a, b] = servers as [Server, Server];
    let conflicts = 0;
    let skips = 0;
    const t0 = Date.now();
    for (let v = 1; v <= ROUNDS; v++) {
      const before = (await floe.snapshot(dir)).version;
      const replies = await Promise.all([
        a.request({ mode: 'append', tag: `tx${v}a`, rows: M, txnAppId: 'idem', txnVersion: v }).then((r) => ({ tag: `tx${v}a`, r })),
        // Odd rounds start together; even rounds start the second writer a little later, so that it
        // sometimes reads the winner's txn first and skips instead of conflicting.
        new Promise((r) => setTimeout(r, v % 2 === 0 ? Math.random() * 150 : 0)).then(() =>
          b.request({ mode: 'append', tag: `tx${v}b`, rows: M, txnAppId: 'idem', txnVersion: v }).then((r) => ({ tag: `tx${v}b`, r })),
        ),
      ]);
      const committed = replies.filter((x) => x.r.ok && !x.r.result!.skipped);
      assert.equal(committed.length, 1, `txn version ${v}: exactly one writer commits (${JSON.stringify(replies.map((x) => x.r.ok ? x.r.result : x.r.error))})`);
      for (const x of replies) {
        if (x === committed[0]) continue;
        if (x.r.ok) {
          assert.equal(x.r.result!.skipped, true);
          assert.equal(x.r.result!.version, null);
          skips++;
        } else {
          assert.equal(x.r.error!.code, 'ConcurrentTransactionException', `txn version ${v}: the loser gets ConcurrentTransactionException, got ${x.r.error!.code}: ${x.r.error!.message}`);
          assert.equal(x.r.error!.name, 'ConcurrentTransactionException');
          conflicts++;
        }
      }
      model[committed[0]!.tag] = M;
      const snap = await floe.snapshot(dir);
      assert.equal(snap.version, before + 1, `txn version ${v}: one new table version`);
      assert.equal(snap.txnVersion('idem'), v);
      assert.deepEqual(await tagCounts(floe, dir), sorted(model), `txn version ${v}: the data landed once`);

      // Replaying the same (or an older) txn version from both processes is a no-op.
      const replay = await Promise.all([
        a.request({ mode: 'append', tag: `tx${v}ra`, rows: 5, txnAppId: 'idem', txnVersion: v }),
        b.request({ mode: 'append', tag: `tx${v}rb`, rows: 5, txnAppId: 'idem', txnVersion: Math.max(1, v - 1) }),
      ]);
      for (const r of replay) {
        assert.ok(r.ok, `replay: ${JSON.stringify(r.error)}`);
        assert.equal(r.result!.skipped, true, 'a replayed txn version is skipped');
      }
      assert.equal((await floe.snapshot(dir)).version, before + 1, 'replays commit nothing');
    }
    t.diagnostic(`${ROUNDS} rounds in ${Date.now() - t0} ms: losers got ConcurrentTransactionException ${conflicts}×, saw the txn and skipped ${skips}×`);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await floe.close();
    if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
  }
});
