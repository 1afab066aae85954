/**
 * Benchmark data generators. Each table is written once under `.bench-data/` and reused while its
 * marker file (`<name>.json`, written last) matches the generator's parameters.
 *
 * - snapshot-load: a log of 10,000 commits (10 adds each, so 100,000 live files), classic
 *   single-file Parquet checkpoints every 100 versions (only the newest few are written) and
 *   `_last_checkpoint`. Data files do not exist: only the log is loaded.
 * - commit-latency: the same kind of log, 10,000 one-row appends, checkpointInterval 100 (see COMMIT_PARAMS).
 * - scan: 10 million rows (id BIGINT sorted 0..N-1, v DOUBLE, s VARCHAR, d DATE) in ~20 Parquet
 *   files by id range, written by DuckDB COPY with RETURN_STATS, and one commit whose add stats
 *   come from those returned statistics.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { nowMs } from './stats.js';

export const SNAPSHOT_PARAMS = {
  kind: 'snapshot-load',
  format: 2,
  commits: 10_000,
  addsPerCommit: 10,
  checkpointInterval: 100,
  /** Checkpoints written, newest first: the one the load needs plus a few older ones, as a real log keeps. */
  checkpointsWritten: 3,
  recordsPerFile: 100,
} as const;

export const SCAN_PARAMS = {
  kind: 'scan',
  format: 2,
  rows: 10_000_000,
  files: 20,
} as const;

export interface SnapshotTableInfo {
  path: string;
  /** Latest version (commits - 1). */
  version: number;
  liveFiles: number;
  /** Version of the newest checkpoint and its absolute path. */
  checkpointVersion: number;
  checkpointFile: string;
  /** Absolute paths of the commits after the checkpoint, ascending. */
  commitFilesAfterCheckpoint: string[];
  generatedInMs?: number;
}

export interface ScanTableInfo {
  path: string;
  rows: number;
  /** Absolute paths of the data files, ascending by id range. */
  dataFiles: string[];
  generatedInMs?: number;
}

const pad20 = (v: number): string => String(v).padStart(20, '0');

export async function openDuckDB(): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> {
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await instance.connect();
  await conn.run("SET TimeZone = 'UTC'");
  return { instance, conn };
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export async function readMarker<T>(file: string, params: object): Promise<T | null> {
  try {
    const m = JSON.parse(await fs.readFile(file, 'utf8')) as { params: unknown; info: T };
    return JSON.stringify(m.params) === JSON.stringify(params) ? m.info : null;
  } catch {
    return null;
  }
}

export async function writeMarker(file: string, params: object, info: object): Promise<void> {
  await fs.writeFile(file, JSON.stringify({ params, info, generatedAt: new Date().toISOString() }, null, 2));
}

export async function allExist(files: string[]): Promise<boolean> {
  try {
    await Promise.all(files.map((f) => fs.access(f)));
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` over items with at most `limit` in flight. */
async function forEachLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ------------------------------------------------------------------------------- snapshot-load

const SNAPSHOT_SCHEMA = JSON.stringify({
  type: 'struct',
  fields: [
    { name: 'id', type: 'long', nullable: true, metadata: {} },
    { name: 'v', type: 'double', nullable: true, metadata: {} },
    { name: 's', type: 'string', nullable: true, metadata: {} },
  ],
});

/** Delta's checkpoint schema (classic checkpoints, no table features) as DuckDB types. */
const DV_TYPE = 'STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, "offset" INTEGER, sizeInBytes INTEGER, cardinality BIGINT, maxRowIndex BIGINT)';
const CP_TYPES = {
  txn: 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)',
  add: `STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR), deletionVector ${DV_TYPE}, baseRowId BIGINT, defaultRowCommitVersion BIGINT, clusteringProvider VARCHAR)`,
  remove: `STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, tags MAP(VARCHAR, VARCHAR), deletionVector ${DV_TYPE}, baseRowId BIGINT, defaultRowCommitVersion BIGINT)`,
  metaData: 'STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)',
  protocol: 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)',
} as const;

interface GenAdd {
  version: number;
  path: string;
  size: number;
  modificationTime: number;
  stats: string;
}

/** What a synthetic log looks like (see writeSyntheticLog). */
interface SyntheticLogSpec {
  commits: number;
  addsPerCommit: number;
  checkpointInterval: number;
  checkpointsWritten: number;
  schemaString: string;
  /** metaData.configuration (table properties). */
  configuration: Record<string, string>;
  /** Stats JSON and size of the k-th file (k counts adds from 0). */
  fileStats: (k: number) => string;
  fileSize: (k: number) => number;
}

interface SyntheticLog {
  version: number;
  liveFiles: number;
  checkpointVersion: number;
  checkpointFile: string;
  commitFilesAfterCheckpoint: string[];
}

/**
 * Writes `<table>/_delta_log/` directly: `commits` JSON commits of `addsPerCommit` blind-append adds
 * each (protocol and metaData in commit 0), classic single-file Parquet checkpoints for the newest
 * `checkpointsWritten` multiples of `checkpointInterval` below the latest version, and
 * `_last_checkpoint`. The data files themselves are not written.
 */
async function writeSyntheticLog(table: string, spec: SyntheticLogSpec): Promise<SyntheticLog> {
  const P = spec;
  await fs.rm(table, { recursive: true, force: true });
  const logDir = path.join(table, '_delta_log');
  await fs.mkdir(logDir, { recursive: true });

  const tableId = randomUUID();
  const baseTs = 1_700_000_000_000;
  const createdTime = baseTs;
  const adds: GenAdd[] = [];
  const commitTexts: string[] = [];
  for (let v = 0; v < P.commits; v++) {
    const ts = baseTs + v * 60_000;
    const lines: string[] = [];
    let bytes = 0;
    let rows = 0;
    const mine: GenAdd[] = [];
    for (let i = 0; i < P.addsPerCommit; i++) {
      const k = v * P.addsPerCommit + i;
      const size = P.fileSize(k);
      bytes += size;
      const stats = P.fileStats(k);
      rows += (JSON.parse(stats) as { numRecords: number }).numRecords;
      const a: GenAdd = { version: v, path: `part-${String(i).padStart(5, '0')}-${randomUUID()}-c000.snappy.parquet`, size, modificationTime: ts - 1000 + i, stats };
      mine.push(a);
      adds.push(a);
    }
    lines.push(JSON.stringify({
      commitInfo: {
        timestamp: ts,
        operation: 'WRITE',
        operationParameters: { mode: 'Append', partitionBy: '[]' },
        readVersion: v === 0 ? undefined : v - 1,
        isolationLevel: 'Serializable',
        isBlindAppend: true,
        operationMetrics: { numFiles: String(P.addsPerCommit), numOutputRows: String(rows), numOutputBytes: String(bytes) },
        engineInfo: 'floe-bench',
        txnId: randomUUID(),
      },
    }));
    if (v === 0) {
      lines.push(JSON.stringify({ protocol: { minReaderVersion: 1, minWriterVersion: 2 } }));
      lines.push(JSON.stringify({ metaData: { id: tableId, format: { provider: 'parquet', options: {} }, schemaString: P.schemaString, partitionColumns: [], configuration: P.configuration, createdTime } }));
    }
    for (const a of mine) {
      lines.push(JSON.stringify({ add: { path: a.path, partitionValues: {}, size: a.size, modificationTime: a.modificationTime, dataChange: true, stats: a.stats } }));
    }
    commitTexts.push(lines.join('\n') + '\n');
  }
  const versions = Array.from({ length: P.commits }, (_, v) => v);
  await forEachLimit(versions, 64, (v) => fs.writeFile(path.join(logDir, `${pad20(v)}.json`), commitTexts[v]!));

  // Checkpoints: the newest few multiples of the interval (not counting the latest version itself).
  const lastCp = Math.floor((P.commits - 1) / P.checkpointInterval) * P.checkpointInterval;
  const newest = lastCp === P.commits - 1 ? lastCp - P.checkpointInterval : lastCp;
  const cpVersions: number[] = [];
  for (let i = 0; i < P.checkpointsWritten && newest - i * P.checkpointInterval > 0; i++) cpVersions.push(newest - i * P.checkpointInterval);

  const { instance, conn } = await openDuckDB();
  let cpSize = 0;
  try {
    await conn.run('CREATE TABLE adds (version INTEGER, path VARCHAR, size BIGINT, mtime BIGINT, stats VARCHAR)');
    const app = await conn.createAppender('adds');
    for (const a of adds) {
      app.appendInteger(a.version);
      app.appendVarchar(a.path);
      app.appendBigInt(BigInt(a.size));
      app.appendBigInt(BigInt(a.modificationTime));
      app.appendVarchar(a.stats);
      app.endRow();
    }
    app.flushSync();
    app.closeSync();
    const nul = (col: keyof typeof CP_TYPES): string => `NULL::${CP_TYPES[col]}`;
    const protocol = `{'minReaderVersion': 1, 'minWriterVersion': 2}::${CP_TYPES.protocol}`;
    const conf = `MAP {${Object.entries(P.configuration).map(([k, v]) => `${sqlString(k)}: ${sqlString(v)}`).join(', ')}}`;
    const metaData = `{'id': ${sqlString(tableId)}, 'name': NULL, 'description': NULL, 'format': {'provider': 'parquet', 'options': MAP {}}, 'schemaString': ${sqlString(P.schemaString)}, 'partitionColumns': []::VARCHAR[], 'configuration': ${conf}, 'createdTime': ${createdTime}}::${CP_TYPES.metaData}`;
    const add = `{'path': path, 'partitionValues': MAP {}, 'size': size, 'modificationTime': mtime, 'dataChange': true, 'stats': stats, 'tags': NULL, 'deletionVector': NULL, 'baseRowId': NULL, 'defaultRowCommitVersion': NULL, 'clusteringProvider': NULL}::${CP_TYPES.add}`;
    for (const cv of cpVersions) {
      const file = path.join(logDir, `${pad20(cv)}.checkpoint.parquet`);
      await conn.run(`COPY (
        SELECT txn, "add", "remove", metaData, protocol FROM (
          SELECT 0 AS ord, 0 AS v, ${nul('txn')} AS txn, ${nul('add')} AS "add", ${nul('remove')} AS "remove", ${nul('metaData')} AS metaData, ${protocol} AS protocol
          UNION ALL SELECT 1, 0, NULL, NULL, NULL, ${metaData}, NULL
          UNION ALL SELECT 2, version, NULL, ${add}, NULL, NULL, NULL FROM adds WHERE version <= ${cv}
        ) ORDER BY ord, v
      ) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION snappy)`);
      if (cv === cpVersions[0]) cpSize = 2 + (cv + 1) * P.addsPerCommit;
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  await fs.writeFile(path.join(logDir, '_last_checkpoint'), JSON.stringify({ version: cpVersions[0], size: cpSize }));

  const cpVersion = cpVersions[0]!;
  return {
    version: P.commits - 1,
    liveFiles: P.commits * P.addsPerCommit,
    checkpointVersion: cpVersion,
    checkpointFile: path.join(logDir, `${pad20(cpVersion)}.checkpoint.parquet`),
    commitFilesAfterCheckpoint: versions.filter((v) => v > cpVersion).map((v) => path.join(logDir, `${pad20(v)}.json`)),
  };
}

export async function generateSnapshotTable(root: string): Promise<SnapshotTableInfo> {
  const P = SNAPSHOT_PARAMS;
  const t0 = nowMs();
  const table = path.join(root, 'snapshot-load');
  const log = await writeSyntheticLog(table, {
    commits: P.commits,
    addsPerCommit: P.addsPerCommit,
    checkpointInterval: P.checkpointInterval,
    checkpointsWritten: P.checkpointsWritten,
    schemaString: SNAPSHOT_SCHEMA,
    configuration: {},
    fileSize: (k) => 500_000 + ((k * 7919) % 4_000_000),
    fileStats: (k) => {
      const lo = k * P.recordsPerFile;
      return JSON.stringify({ numRecords: P.recordsPerFile, minValues: { id: lo }, maxValues: { id: lo + P.recordsPerFile - 1 }, nullCount: { id: 0, v: 0, s: 0 } });
    },
  });
  const info: SnapshotTableInfo = { path: table, ...log, generatedInMs: Math.round(nowMs() - t0) };
  await writeMarker(path.join(root, 'snapshot-load.json'), P, info);
  return info;
}

export async function ensureSnapshotTable(root: string, regenerate: boolean): Promise<SnapshotTableInfo> {
  await fs.mkdir(root, { recursive: true });
  if (!regenerate) {
    const info = await readMarker<SnapshotTableInfo>(path.join(root, 'snapshot-load.json'), SNAPSHOT_PARAMS);
    if (info && (await allExist([info.checkpointFile, ...info.commitFilesAfterCheckpoint]))) return { ...info, generatedInMs: undefined };
  }
  return generateSnapshotTable(root);
}

// ------------------------------------------------------------------------------------- scan

const SCAN_TYPES: Record<string, 'long' | 'double' | 'string' | 'date'> = { id: 'long', v: 'double', s: 'string', d: 'date' };

/** Delta stats value from a RETURN_STATS string, typed as the column (strings truncated to 32 chars, as Delta does). */
function statValue(type: 'long' | 'double' | 'string' | 'date', raw: string, isMax: boolean): unknown {
  switch (type) {
    case 'long':
    case 'double':
      return Number(raw);
    case 'date':
      return raw;
    case 'string':
      // Delta truncates string stats to a 32-character prefix; a truncated max gets a tie-breaker.
      return raw.length <= 32 ? raw : isMax ? raw.slice(0, 32) + '\uFFFF' : raw.slice(0, 32);
  }
}

/** RETURN_STATS `column_statistics` (MAP(VARCHAR, MAP(VARCHAR, VARCHAR)) as JSON entries) → Delta stats JSON. */
export function deltaStatsFromReturnStats(count: number, columnStatistics: unknown): string {
  const minValues: Record<string, unknown> = {};
  const maxValues: Record<string, unknown> = {};
  const nullCount: Record<string, number> = {};
  const entries = Array.isArray(columnStatistics) ? (columnStatistics as { key: string; value: unknown }[]) : Object.entries(columnStatistics as object).map(([key, value]) => ({ key, value }));
  for (const { key, value } of entries) {
    const col = key.replace(/^"(.*)"$/, '$1');
    const type = SCAN_TYPES[col];
    if (!type) continue;
    const kv = new Map<string, string>(Array.isArray(value) ? (value as { key: string; value: string }[]).map((e) => [e.key, e.value]) : Object.entries(value as Record<string, string>));
    const mn = kv.get('min');
    const mx = kv.get('max');
    if (mn !== undefined && mn !== null) minValues[col] = statValue(type, mn, false);
    if (mx !== undefined && mx !== null) maxValues[col] = statValue(type, mx, true);
    const nc = kv.get('null_count');
    if (nc !== undefined && nc !== null) nullCount[col] = Number(nc);
  }
  return JSON.stringify({ numRecords: count, minValues, maxValues, nullCount });
}

/** What writeIdRangeFiles wrote: one add action (JSON line) per file, the files' absolute paths, their total size. */
export interface IdRangeFiles {
  adds: string[];
  dataFiles: string[];
  totalBytes: number;
}

/**
 * Writes `rows` rows of (id BIGINT sorted 0..rows-1, v DOUBLE, s VARCHAR, d DATE) into `files`
 * Parquet files by id range directly under `table`, by DuckDB COPY with RETURN_STATS, and returns
 * their `add` actions (Delta stats from the returned statistics).
 */
export async function writeIdRangeFiles(table: string, rows: number, files: number): Promise<IdRangeFiles> {
  const per = Math.ceil(rows / files);
  const { instance, conn } = await openDuckDB();
  const adds: string[] = [];
  const dataFiles: string[] = [];
  let totalBytes = 0;
  try {
    for (let f = 0; f < files; f++) {
      const lo = f * per;
      const hi = Math.min(rows, lo + per);
      if (lo >= hi) break;
      const name = `part-${String(f).padStart(5, '0')}-${randomUUID()}-c000.snappy.parquet`;
      const file = path.join(table, name);
      const r = await conn.runAndReadAll(`COPY (
        SELECT range AS id,
               ((range * 2654435761) % 1000003)::DOUBLE / 100.0 AS v,
               'str-' || (hash(range) % 100000)::VARCHAR AS s,
               (DATE '2020-01-01' + (range // 10000)::INTEGER) AS d
        FROM range(${lo}, ${hi})
      ) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION snappy, RETURN_STATS)`);
      const out = r.getRowObjectsJson();
      if (out.length !== 1) throw new Error(`COPY ${name} returned ${out.length} stats rows, expected 1`);
      const st = out[0]!;
      const count = Number(st.count);
      const size = Number(st.file_size_bytes);
      totalBytes += size;
      const mtime = Math.round((await fs.stat(file)).mtimeMs);
      const stats = deltaStatsFromReturnStats(count, st.column_statistics);
      adds.push(JSON.stringify({ add: { path: name, partitionValues: {}, size, modificationTime: mtime, dataChange: true, stats } }));
      dataFiles.push(file);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  return { adds, dataFiles, totalBytes };
}

/** Schema of the tables writeIdRangeFiles writes. */
export const ID_RANGE_SCHEMA = JSON.stringify({
  type: 'struct',
  fields: [
    { name: 'id', type: 'long', nullable: true, metadata: {} },
    { name: 'v', type: 'double', nullable: true, metadata: {} },
    { name: 's', type: 'string', nullable: true, metadata: {} },
    { name: 'd', type: 'date', nullable: true, metadata: {} },
  ],
});

/** Commit 0 of a table of `files` (a WRITE creating the table with this protocol and configuration). */
export function createCommit(f: IdRangeFiles, rows: number, protocol: { minReaderVersion: number; minWriterVersion: number }, configuration: Record<string, string>): string {
  const ts = Date.now();
  const lines = [
    JSON.stringify({ commitInfo: { timestamp: ts, operation: 'WRITE', operationParameters: { mode: 'ErrorIfExists', partitionBy: '[]' }, isolationLevel: 'Serializable', isBlindAppend: true, operationMetrics: { numFiles: String(f.adds.length), numOutputRows: String(rows), numOutputBytes: String(f.totalBytes) }, engineInfo: 'floe-bench', txnId: randomUUID() } }),
    JSON.stringify({ protocol }),
    JSON.stringify({ metaData: { id: randomUUID(), format: { provider: 'parquet', options: {} }, schemaString: ID_RANGE_SCHEMA, partitionColumns: [], configuration, createdTime: ts } }),
    ...f.adds,
  ];
  return lines.join('\n') + '\n';
}

export async function generateScanTable(root: string): Promise<ScanTableInfo> {
  const P = SCAN_PARAMS;
  const t0 = nowMs();
  const table = path.join(root, 'scan');
  await fs.rm(table, { recursive: true, force: true });
  await fs.mkdir(path.join(table, '_delta_log'), { recursive: true });
  const files = await writeIdRangeFiles(table, P.rows, P.files);
  await fs.writeFile(path.join(table, '_delta_log', `${pad20(0)}.json`), createCommit(files, P.rows, { minReaderVersion: 1, minWriterVersion: 2 }, {}));
  const info: ScanTableInfo = { path: table, rows: P.rows, dataFiles: files.dataFiles, generatedInMs: Math.round(nowMs() - t0) };
  await writeMarker(path.join(root, 'scan.json'), P, info);
  return info;
}

export async function ensureScanTable(root: string, regenerate: boolean): Promise<ScanTableInfo> {
  await fs.mkdir(root, { recursive: true });
  if (!regenerate) {
    const info = await readMarker<ScanTableInfo>(path.join(root, 'scan.json'), SCAN_PARAMS);
    if (info && (await allExist([...info.dataFiles, path.join(info.path, '_delta_log', `${pad20(0)}.json`)]))) return { ...info, generatedInMs: undefined };
  }
  return generateScanTable(root);
}

// ------------------------------------------------------------------------------ write scenarios

/** Delta schema of the rows the write benchmarks write (see writeRowsSql). */
export const WRITE_SCHEMA = JSON.stringify({
  type: 'struct',
  fields: [
    { name: 'id', type: 'long', nullable: true, metadata: {} },
    { name: 'v', type: 'double', nullable: true, metadata: {} },
    { name: 's', type: 'string', nullable: true, metadata: {} },
    { name: 'd', type: 'date', nullable: true, metadata: {} },
    { name: 'ts', type: 'timestamp', nullable: true, metadata: {} },
  ],
});

/** `rows` rows of (id BIGINT, v DOUBLE, s VARCHAR, d DATE, ts TIMESTAMPTZ) from DuckDB's range(), id ascending from `from`. */
export function writeRowsSql(rows: number, from = 0): string {
  return `SELECT range AS id,
       ((range * 2654435761) % 1000003)::DOUBLE / 100.0 AS v,
       'str-' || (hash(range) % 100000)::VARCHAR AS s,
       (DATE '2020-01-01' + (range // 10000)::INTEGER) AS d,
       (TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(range)) AS ts
FROM range(${from}, ${from + rows})`;
}

/**
 * commit-latency: a log of 10,000 one-row blind appends (one add each, stats on all 5 columns as
 * floe writes them, so 10,000 live files), `delta.checkpointInterval` = 100 in the table's
 * configuration, classic checkpoints every 100 versions (the newest 3 written: v9900, v9800, v9700).
 * This folder is a template: the benchmark copies it before each run.
 */
export const COMMIT_PARAMS = {
  kind: 'commit-latency',
  format: 1,
  commits: 10_000,
  addsPerCommit: 1,
  checkpointInterval: 100,
  checkpointsWritten: 3,
  configuration: { 'delta.checkpointInterval': '100' },
} as const;

export type CommitTableInfo = SnapshotTableInfo;

export async function generateCommitTable(root: string): Promise<CommitTableInfo> {
  const P = COMMIT_PARAMS;
  const t0 = nowMs();
  const table = path.join(root, 'commit-latency');
  const day = (k: number): string => new Date(Date.UTC(2020, 0, 1) + Math.floor(k / 100) * 864e5).toISOString().slice(0, 10);
  const log = await writeSyntheticLog(table, {
    commits: P.commits,
    addsPerCommit: P.addsPerCommit,
    checkpointInterval: P.checkpointInterval,
    checkpointsWritten: P.checkpointsWritten,
    schemaString: WRITE_SCHEMA,
    configuration: { ...P.configuration },
    fileSize: (k) => 1_400 + (k % 200),
    fileStats: (k) => {
      const vals = { id: k, v: ((k * 2654435761) % 1000003) / 100, s: `str-${k % 100000}`, d: day(k), ts: `${day(k)}T00:00:00.000Z` };
      return JSON.stringify({ numRecords: 1, minValues: vals, maxValues: vals, nullCount: { id: 0, v: 0, s: 0, d: 0, ts: 0 } });
    },
  });
  const info: CommitTableInfo = { path: table, ...log, generatedInMs: Math.round(nowMs() - t0) };
  await writeMarker(path.join(root, 'commit-latency.json'), P, info);
  return info;
}

export async function ensureCommitTable(root: string, regenerate: boolean): Promise<CommitTableInfo> {
  await fs.mkdir(root, { recursive: true });
  if (!regenerate) {
    const info = await readMarker<CommitTableInfo>(path.join(root, 'commit-latency.json'), COMMIT_PARAMS);
    if (info && (await allExist([info.checkpointFile, ...info.commitFilesAfterCheckpoint]))) return { ...info, generatedInMs: undefined };
  }
  return generateCommitTable(root);
}
