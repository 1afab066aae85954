/**
 * Cloud reliability:
 *  - 4 processes × 25 appends on one table in Azurite (credentials from AZURE_STORAGE_CONNECTION_STRING,
 *    as a user's shell would give them): versions contiguous, no version lost or written twice, every
 *    row exactly once, the checkpoints concurrent writers wrote are readable;
 *  - fault injection: a proxy in front of Azurite fails (503), drops (request applied, answer lost) or
 *    hangs (client times out) ≥ 5% of requests during appends, MERGEs, DELETEs and checkpoints. Every
 *    operation either commits completely or fails with a StorageError saying whether retrying is
 *    safe; afterwards the table opens and equals a model of the operations that committed.
 *  - the CLI reads and writes abfss:// URLs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { FloeError, StorageError } from '../errors.js';
import { DeltaTable } from '../table/delta-table.js';
import { openStore } from '../storage/open.js';
import { type Azurite, type FaultProxy, azuriteConnectionString, startAzurite, startFaultProxy } from './cloud-helpers.js';
import { cacheDir, plain, uniqueName } from './cloud-suite.js';

const WORKER = fileURLToPath(new URL('./fixtures/append-worker.js', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const FAULTS = { fail: 0.05, drop: 0.03, hang: 0.01 };
let az: Azurite | null = null;
before(async () => {
  az = await startAzurite(['tables']);
});
after(async () => {
  await az?.stop();
});

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('Azurite: concurrent writers in 4 processes', () => {
  test('4 processes × 25 appends: no lost or duplicated version, every row once', async (t) => {
    if (!az) return t.skip('Azurite not installed');
    const url = `abfss://tables@devstoreaccount1.dfs.core.windows.net/conc/${uniqueName('t')}`;
    const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString, FLOE_CACHE_DIR: await cacheDir() };
    const floe = await Floe.create({ storageOptions: { azure_storage_connection_string: az.connectionString, cache_dir: await cacheDir() } });
    try {
      await floe.duckdbSql(`SELECT -1::INTEGER AS worker, -1::INTEGER AS seq, 'init' AS id, '' AS payload`).write.delta(url);
      const workers = [0, 1, 2, 3].map((w) => {
        const proc = fork(WORKER, ['appends', url, String(w), '25'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, ...env } });
        let stdout = '';
        let stderr = '';
        proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const ready = new Promise<void>((resolve) => proc.on('message', () => resolve()));
        const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
        return { proc, ready, done };
      });
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.proc.send('go');
      const exits = await Promise.all(workers.map((w) => w.done));
      for (const e of exits) assert.equal(e.code, 0, e.stderr);
      const reports = exits.map((e) => JSON.parse(e.stdout.trim().split('\n').pop()!) as { worker: number; attempts: number; versions: number[] });
      const versions = reports.flatMap((r) => r.versions).sort((a, b) => a - b);
      assert.deepEqual(versions, Array.from({ length: 100 }, (_, i) => i + 1), 'each version committed by exactly one writer');
      const store = openStore(url, { azure_storage_connection_string: az.connectionString, cache_dir: await cacheDir() });
      const commits = (await store.list('_delta_log/')).map((m) => m.path).filter((p) => /\d{20}\.json$/.test(p));
      assert.equal(commits.length, 101);
      const cold = await Floe.create({ storageOptions: { azure_storage_connection_string: az.connectionString, cache_dir: await cacheDir() } });
      try {
        const snap = await cold.snapshot(url);
        assert.equal(snap.version, 100);
        const rows = plain(await (await cold.read.delta(url)).toArray());
        assert.equal(rows.length, 101);
        assert.equal(new Set(rows.map((r) => r.id)).size, 101);
        for (let w = 0; w < 4; w++) {
          assert.deepEqual(rows.filter((r) => r.worker === w).map((r) => r.seq as number).sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i));
        }
        const cps = (await store.list('_delta_log/')).map((m) => m.path).filter((p) => p.endsWith('.checkpoint.parquet'));
        assert.ok(cps.length >= 1, 'concurrent writers wrote checkpoints');
        assert.equal((await cold.snapshot(url, { versionAsOf: 50 })).files.length, 51);
        console.log(`# 4×25 appends on Azurite: ${reports.reduce((n, r) => n + r.attempts, 0) - 100} commit retries, ${cps.length} checkpoints`);
      } finally {
        await cold.close();
      }
    } finally {
      await floe.close();
    }
  });
});

describe('Azurite behind a fault-injecting proxy', () => {
  let proxy: FaultProxy | null = null;
  before(async () => {
    if (az) proxy = await startFaultProxy(az.port, Number(process.env.FLOE_FAULT_SEED ?? 12345));
  });
  after(async () => {
    await proxy?.stop();
  });

  test('appends, MERGEs, DELETEs and checkpoints under ≥5% failed, dropped and hung requests: each commits completely or fails saying whether retry is safe; the table equals the model', async (t) => {
    if (!az || !proxy) return t.skip('Azurite not installed');
    const url = `az://tables/faults/${uniqueName('t')}`;
    const options = {
      azure_storage_connection_string: azuriteConnectionString(proxy.port),
      max_attempts: '2', // few retries, so some operations do fail
      backoff_ms: '5',
      request_timeout_ms: '1500',
    };
    const floe = await Floe.create({ storageOptions: { ...options, cache_dir: await cacheDir() } });
    // A second session without retries: most of its operations meet a fault and fail.
    const fragile = await Floe.create({ storageOptions: { ...options, max_attempts: '1', cache_dir: await cacheDir() } });
    // The model: id → v, updated only by operations that committed.
    const model = new Map<number, number>();
    let committed = 0;
    let failedSafe = 0;
    let failedUnknown = 0;
    try {
      await (await floe.createDataFrame([{ id: 0, v: 0 }])).write.delta(url, { properties: { 'delta.checkpointInterval': '4' } });
      model.set(0, 0);
      proxy.setRates(FAULTS);
      const t0 = proxy.counts.exposed;
      const f0 = proxy.counts.failed + proxy.counts.dropped + proxy.counts.hung;
      for (let i = 1; i <= 40; i++) {
        const kind = i % 3;
        const session = i % 2 ? floe : fragile;
        const next = new Map(model);
        let op: () => Promise<unknown>;
        if (kind === 0) {
          next.set(i, i);
          op = async () => (await session.createDataFrame([{ id: i, v: i }])).write.delta(url, { mode: 'append' });
        } else if (kind === 1) {
          const src = [{ id: i - 1, v: i * 10 }, { id: 1000 + i, v: i }];
          for (const r of src) next.set(r.id, r.v);
          op = async () => {
            const tbl = await DeltaTable.forPath(session, url);
            return tbl.alias('t').merge((await session.createDataFrame(src)).alias('s'), 't.id = s.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
          };
        } else {
          const victim = [...model.keys()].sort((a, b) => a - b)[Math.floor(model.size / 2)]!;
          next.delete(victim);
          op = async () => (await DeltaTable.forPath(session, url)).delete(`id = ${victim}`);
        }
        proxy.setRates({});
        const before = await versionOf(floe, url);
        proxy.setRates(FAULTS);
        try {
          await op();
          committed++;
          for (const k of [...model.keys()]) if (!next.has(k)) model.delete(k);
          for (const [k, v] of next) model.set(k, v);
        } catch (e) {
          assert.ok(e instanceof StorageError || (e instanceof FloeError && e.cause instanceof StorageError), `a typed storage error, got ${String(e)}`);
          const se = e instanceof StorageError ? e : (e as FloeError).cause as StorageError;
          assert.match(se.message, se.retrySafe ? /retrying the operation is safe/ : /may or may not have been written/);
          // Find out what happened (with the faults off) and update the model.
          proxy.setRates({});
          const after = await versionOf(floe, url);
          if (se.retrySafe) {
            failedSafe++;
            assert.equal(after, before, 'a retry-safe failure committed nothing');
          } else {
            failedUnknown++;
            if (after > before) {
              for (const k of [...model.keys()]) if (!next.has(k)) model.delete(k);
              for (const [k, v] of next) model.set(k, v);
            }
          }
          proxy.setRates(FAULTS);
        }
      }
      proxy.setRates({});
      const requests = proxy.counts.exposed - t0;
      const faults = proxy.counts.failed + proxy.counts.dropped + proxy.counts.hung - f0;
      console.log(`# fault injection: ${requests} requests, ${faults} faults (${((100 * faults) / requests).toFixed(1)}%), ${committed} committed, ${failedSafe} failed retry-safe, ${failedUnknown} failed outcome-unknown`);
      assert.ok(faults / requests >= 0.05, `at least 5% of requests faulted (${faults}/${requests})`);
      assert.ok(committed > 0 && failedSafe + failedUnknown > 0, 'some operations committed and some failed');
      const cold = await Floe.create({ storageOptions: { ...options, cache_dir: await cacheDir() } });
      try {
        const rows = plain(await (await cold.read.delta(url)).toArray());
        assert.deepEqual(rows.map((r) => [r.id, r.v]).sort((a, b) => Number(a[0]) - Number(b[0])), [...model].sort((a, b) => a[0] - b[0]));
        const store = openStore(url, { ...options, cache_dir: await cacheDir() });
        const cps = (await store.list('_delta_log/')).filter((m) => m.path.endsWith('.checkpoint.parquet'));
        assert.ok(cps.length >= 1, 'checkpoints were written under faults');
      } finally {
        await cold.close();
      }
    } finally {
      await floe.close();
      await fragile.close();
    }
  });
});

async function versionOf(floe: Floe, url: string): Promise<number> {
  floe.forgetLog(url);
  return (await DeltaTable.forPath(floe, url)).version();
}

describe('CLI on cloud URLs', () => {
  test('floe write / show / history / describe / sql take abfss:// and az:// URLs', async (t) => {
    if (!az) return t.skip('Azurite not installed');
    const url = `abfss://tables@devstoreaccount1.dfs.core.windows.net/cli/${uniqueName('t')}`;
    const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString, FLOE_CACHE_DIR: await cacheDir() };
    const floe = await Floe.create({ storageOptions: { azure_storage_connection_string: az.connectionString, cache_dir: await cacheDir() } });
    try {
      await (await floe.createDataFrame([{ id: 1, name: 'a' }, { id: 2, name: 'b' }])).write.delta(url);
    } finally {
      await floe.close();
    }
    const show = await run(process.execPath, [CLI, 'show', url, '--format', 'json'], env);
    assert.equal(show.code, 0, show.stderr);
    assert.deepEqual(show.stdout.trim().split('\n').map((l) => Number((JSON.parse(l) as { id: number }).id)).sort(), [1, 2]);
    const hist = await run(process.execPath, [CLI, 'history', url.replace('abfss://tables@devstoreaccount1.dfs.core.windows.net/', 'az://tables/'), '--format', 'json'], env);
    assert.equal(hist.code, 0, hist.stderr);
    assert.equal((JSON.parse(hist.stdout) as unknown[]).length, 1);
    const sql = await run(process.execPath, [CLI, 'sql', '-e', `DELETE FROM delta.\`${url}\` WHERE id = 1; SELECT count(*) AS n FROM delta.\`${url}\``, '--format', 'json'], env);
    assert.equal(sql.code, 0, sql.stderr);
    assert.match(sql.stdout, /"n":\s*"?1"?/);
    const noCreds = await run(process.execPath, [CLI, 'show', 'az://tables/x'], { AZURE_STORAGE_CONNECTION_STRING: '', AZURE_STORAGE_ACCOUNT_NAME: '', FLOE_CACHE_DIR: env.FLOE_CACHE_DIR });
    assert.notEqual(noCreds.code, 0);
    assert.match(noCreds.stderr, /AZURE_STORAGE_CONNECTION_STRING/);
  });
});
