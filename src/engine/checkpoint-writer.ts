/**
 * Writing classic single-file checkpoints (PROTOCOL.md "Checkpoints", "Checkpoint Schema") with
 * DuckDB: the snapshot's actions go to DuckDB as newline-delimited JSON, typed by an explicit
 * schema matching Spark's checkpoint schema, and are written as one Parquet file. The file appears
 * atomically (temp file + rename) and `_last_checkpoint` is written after it, so a crash at any
 * point leaves either no checkpoint or a complete one.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Snapshot } from '../core/snapshot.js';
import { LAST_CHECKPOINT, checkpointPath } from '../core/log-files.js';
import { quoteString } from '../core/schema.js';
import { FloeError } from '../errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { readPath, remoteOf } from '../storage/open.js';
import type { Engine } from './engine.js';

const DV = 'STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, "offset" INTEGER, sizeInBytes INTEGER, cardinality BIGINT, maxRowIndex BIGINT)';
const MAP = 'MAP(VARCHAR, VARCHAR)';
export const CHECKPOINT_COLUMNS: Record<string, string> = {
  txn: 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)',
  add: `STRUCT(path VARCHAR, partitionValues ${MAP}, size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags ${MAP}, deletionVector ${DV}, baseRowId BIGINT, defaultRowCommitVersion BIGINT, clusteringProvider VARCHAR)`,
  remove: `STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues ${MAP}, size BIGINT, deletionVector ${DV}, baseRowId BIGINT, defaultRowCommitVersion BIGINT)`,
  metaData: `STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options ${MAP}), schemaString VARCHAR, partitionColumns VARCHAR[], configuration ${MAP}, createdTime BIGINT)`,
  protocol: 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])',
  domainMetadata: 'STRUCT(domain VARCHAR, configuration VARCHAR, removed BOOLEAN)',
};

/** Parses Delta interval strings such as `interval 7 days` into milliseconds. */
export function parseInterval(s: string | undefined, fallbackMs: number): number {
  if (!s) return fallbackMs;
  const m = /^\s*(?:interval\s+)?(\d+)\s*(millisecond|second|minute|hour|day|week)s?\s*$/i.exec(s);
  if (!m) return fallbackMs;
  const unit: Record<string, number> = { millisecond: 1, second: 1e3, minute: 6e4, hour: 36e5, day: 864e5, week: 6048e5 };
  return Number(m[1]) * unit[m[2]!.toLowerCase()]!;
}

/** Writes `<version>.checkpoint.parquet` and `_last_checkpoint` for a snapshot. */
export async function writeCheckpoint(engine: Engine, store: ObjectStore, snapshot: Snapshot): Promise<{ path: string; actions: number }> {
  if (snapshot.protocol.readerFeatures?.includes('v2Checkpoint') || snapshot.protocol.writerFeatures?.includes('v2Checkpoint')) {
    throw new FloeError('FLOE_UNSUPPORTED_OPERATION', `Table ${snapshot.tablePath} uses V2 checkpoints, which floe does not write yet.`, { table: snapshot.tablePath });
  }
  const retention = parseInterval(snapshot.configuration['delta.deletedFileRetentionDuration'], 7 * 864e5);
  const cutoff = Date.now() - retention;
  const lines: string[] = [];
  lines.push(JSON.stringify({ protocol: snapshot.protocol }));
  lines.push(JSON.stringify({ metaData: snapshot.metadata }));
  for (const t of snapshot.state.txns.values()) lines.push(JSON.stringify({ txn: t }));
  for (const d of snapshot.state.domains.values()) lines.push(JSON.stringify({ domainMetadata: d }));
  for (const a of snapshot.files) lines.push(JSON.stringify({ add: a }));
  for (const r of snapshot.state.tombstones) {
    if ((r.deletionTimestamp ?? 0) < cutoff) continue;
    const { stats: _s, tags: _t, ...rest } = r; // checkpoint removes drop stats and tags
    lines.push(JSON.stringify({ remove: rest }));
  }
  const tmpJson = path.join(os.tmpdir(), `floe-cp-${randomUUID()}.json`);
  // Remote stores: written into the table's folder in the local cache, then uploaded.
  const remote = remoteOf(store);
  const root = readPath(store, '');
  if (!root) throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', 'This store cannot stage a checkpoint locally.');
  const key = checkpointPath(snapshot.version);
  const tmpParquet = path.join(root, '_delta_log', `.${path.basename(key)}.${randomUUID()}.tmp`);
  await fs.writeFile(tmpJson, lines.join('\n') + '\n');
  try {
    const cols = Object.entries(CHECKPOINT_COLUMNS).map(([k, v]) => `${k}: ${quoteString(v)}`).join(', ');
    if (remote) await fs.mkdir(path.dirname(tmpParquet), { recursive: true });
    await engine.run(`COPY (SELECT ${Object.keys(CHECKPOINT_COLUMNS).join(', ')} FROM read_json(${quoteString(tmpJson)}, format = 'newline_delimited', columns = {${cols}})) TO ${quoteString(tmpParquet)} (FORMAT parquet)`);
    if (remote) await remote.uploadFile(tmpParquet, key, (await fs.stat(tmpParquet)).size);
    else await fs.rename(tmpParquet, path.join(root, ...key.split('/')));
  } finally {
    await fs.rm(tmpJson, { force: true });
    await fs.rm(tmpParquet, { force: true });
  }
  const size = lines.length;
  // Never move the hint backwards (a slow writer finishing an older checkpoint after a newer one).
  try {
    const cur = JSON.parse(new TextDecoder().decode(await store.get(LAST_CHECKPOINT))) as { version?: number };
    if (typeof cur.version === 'number' && cur.version > snapshot.version) return { path: key, actions: size };
  } catch {
    // absent or unreadable: write it
  }
  await store.put(LAST_CHECKPOINT, JSON.stringify({ version: snapshot.version, size, sizeInBytes: (await store.head(key))?.size ?? 0, numOfAddFiles: snapshot.files.length }));
  return { path: key, actions: size };
}
