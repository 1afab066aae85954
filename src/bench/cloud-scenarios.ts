/**
 * Cloud storage scenarios: the same floe operation on a table in Azurite (the Azure Storage emulator,
 * started here on loopback, in memory) and on local files, interleaved in one run. The ratio is
 * cloud / local: what the object store, the uploads and the local cache cost.
 *
 *  - cloud-append: append 1M rows (5 columns) to a new table.
 *  - cloud-scan: full aggregate over a 2M-row, 8-file table; cold (a fresh cache folder per run, so
 *    every data file is downloaded) and warm (the cache already holds the files).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { Floe } from '../floe.js';
import { startAzurite } from '../test/cloud-helpers.js';
import type { ComparisonRow } from './merge-scenarios.js';
import { measure, nowMs } from './stats.js';

const require = createRequire(import.meta.url);
const APPEND_ROWS = 1_000_000;
const SCAN_ROWS = 2_000_000;
const SCAN_FILES = 8;

const rowsSql = (n: number, offset = 0): string =>
  `SELECT (i + ${offset})::BIGINT AS id, (i % 100)::INTEGER AS g, 'name-' || i::VARCHAR AS name, (i * 0.5)::DOUBLE AS x, TIMESTAMP '2024-01-01' + to_seconds(i) AS ts FROM range(${n}) t(i)`;

export interface CloudScenarioOptions {
  runs: number;
  dataDir: string;
}

async function withAzurite<T>(fn: (cs: string) => Promise<T>): Promise<T> {
  const az = await startAzurite();
  if (!az) throw new Error('the azurite dev dependency is not installed (npm install)');
  try {
    const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
    await BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient('bench').createIfNotExists();
    return await fn(az.connectionString);
  } finally {
    await az.stop();
  }
}

async function scratch(o: CloudScenarioOptions, name: string): Promise<string> {
  const d = path.join(o.dataDir, 'tmp', `${name}-${randomUUID().slice(0, 8)}`);
  await fs.mkdir(path.dirname(d), { recursive: true });
  return d;
}

export async function cloudAppend(o: CloudScenarioOptions): Promise<ComparisonRow[]> {
  return withAzurite(async (cs) => {
    const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'floe-bench-cache-'));
    const floe = await Floe.create({ storageOptions: { azure_storage_connection_string: cs, cache_dir: cache } });
    try {
      const cloudRun = async (): Promise<number> => {
        const url = `az://bench/append-${randomUUID().slice(0, 8)}`;
        const t0 = nowMs();
        const r = await floe.duckdbSql(rowsSql(APPEND_ROWS)).write.delta(url, { mode: 'append' });
        const ms = nowMs() - t0;
        if (r.numOutputRows !== APPEND_ROWS) throw new Error(`cloud-append wrote ${r.numOutputRows} rows`);
        return ms;
      };
      const localRun = async (): Promise<number> => {
        const dir = await scratch(o, 'cloud-append-local');
        try {
          const t0 = nowMs();
          const r = await floe.duckdbSql(rowsSql(APPEND_ROWS)).write.delta(dir, { mode: 'append' });
          const ms = nowMs() - t0;
          if (r.numOutputRows !== APPEND_ROWS) throw new Error(`local append wrote ${r.numOutputRows} rows`);
          return ms;
        } finally {
          await fs.rm(dir, { recursive: true, force: true });
        }
      };
      const m = await measure(o.runs, cloudRun, localRun);
      return [{ label: 'cloud-append (Azurite / local)', targeted: true, ...m, notes: [`${APPEND_ROWS} rows x 5 cols, one file; Azurite on loopback, in memory; cloud = local write + upload + put-if-absent commit`] }];
    } finally {
      await floe.close();
      await fs.rm(cache, { recursive: true, force: true });
    }
  });
}

export async function cloudScan(o: CloudScenarioOptions): Promise<ComparisonRow[]> {
  return withAzurite(async (cs) => {
    const warmCache = await fs.mkdtemp(path.join(os.tmpdir(), 'floe-bench-cache-'));
    const url = 'az://bench/scan';
    const local = await scratch(o, 'cloud-scan-local');
    const setup = await Floe.create({ storageOptions: { azure_storage_connection_string: cs, cache_dir: warmCache } });
    try {
      const per = SCAN_ROWS / SCAN_FILES;
      for (let i = 0; i < SCAN_FILES; i++) {
        await setup.duckdbSql(rowsSql(per, i * per)).write.delta(url, { mode: 'append' });
        await setup.duckdbSql(rowsSql(per, i * per)).write.delta(local, { mode: 'append' });
      }
    } finally {
      await setup.close();
    }
    const query = async (floe: Floe, loc: string): Promise<number> => {
      const t0 = nowMs();
      const r = await floe.sql(`SELECT g, count(*) AS n, sum(x) AS s FROM delta.\`${loc}\` GROUP BY g`);
      if (r.kind !== 'rows') throw new Error('cloud-scan: no rows');
      const rows = await r.dataFrame.toArray();
      const ms = nowMs() - t0;
      if (rows.length !== 100) throw new Error(`cloud-scan: ${rows.length} groups`);
      return ms;
    };
    const warm = await Floe.create({ storageOptions: { azure_storage_connection_string: cs, cache_dir: warmCache } });
    const localFloe = await Floe.create();
    try {
      const coldRun = async (): Promise<number> => {
        const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'floe-bench-cache-'));
        const floe = await Floe.create({ storageOptions: { azure_storage_connection_string: cs, cache_dir: cache } });
        try {
          return await query(floe, url);
        } finally {
          await floe.close();
          await fs.rm(cache, { recursive: true, force: true });
        }
      };
      const coldLocal = async (): Promise<number> => {
        const floe = await Floe.create();
        try {
          return await query(floe, local);
        } finally {
          await floe.close();
        }
      };
      const cold = await measure(o.runs, coldRun, coldLocal);
      const hot = await measure(o.runs, () => query(warm, url), () => query(localFloe, local));
      const note = `${SCAN_ROWS} rows in ${SCAN_FILES} files, GROUP BY g with count and sum`;
      return [
        { label: 'cloud-scan cold cache (Azurite / local, new session each)', targeted: false, ...cold, notes: [note, 'cold: a fresh cache folder per run, every data file downloaded'] },
        { label: 'cloud-scan warm cache (Azurite / local)', targeted: true, ...hot, notes: [note, 'warm: files in the local cache; the log is still listed and read from Azurite'] },
      ];
    } finally {
      await warm.close();
      await localFloe.close();
      await fs.rm(warmCache, { recursive: true, force: true });
      await fs.rm(local, { recursive: true, force: true });
    }
  });
}
