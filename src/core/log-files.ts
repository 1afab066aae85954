/**
 * Naming of files in `_delta_log/` (PROTOCOL.md "Delta Log Entries", "Checkpoints", "Log Compaction
 * Files", "Version Checksum File", "Last Checkpoint File").
 */
export const LOG_DIR = '_delta_log';

export type LogFile =
  | { kind: 'commit'; version: number; path: string; lastModified: number; size: number }
  | { kind: 'checkpoint'; version: number; path: string; lastModified: number; size: number; part?: number; parts?: number; uuid?: string; format: 'parquet' | 'json' }
  | { kind: 'compaction'; version: number; endVersion: number; path: string; lastModified: number; size: number }
  | { kind: 'crc'; version: number; path: string; lastModified: number; size: number };

export function commitPath(version: number): string {
  return `${LOG_DIR}/${pad20(version)}.json`;
}
export function crcPath(version: number): string {
  return `${LOG_DIR}/${pad20(version)}.crc`;
}
export function checkpointPath(version: number): string {
  return `${LOG_DIR}/${pad20(version)}.checkpoint.parquet`;
}
export const LAST_CHECKPOINT = `${LOG_DIR}/_last_checkpoint`;

export function pad20(v: number): string {
  return String(v).padStart(20, '0');
}

const COMMIT = /^(\d{20})\.json$/;
const CLASSIC = /^(\d{20})\.checkpoint\.parquet$/;
const MULTI = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const UUIDCP = /^(\d{20})\.checkpoint\.([0-9a-fA-F-]{36})\.(json|parquet)$/;
const COMPACT = /^(\d{20})\.(\d{20})\.compacted\.json$/;
const CRC = /^(\d{20})\.crc$/;

/** Classifies a `_delta_log/` key; null for anything else (temp files, `_last_checkpoint`, sidecars, …). */
export function parseLogFile(path: string, lastModified: number, size: number): LogFile | null {
  const name = path.slice(path.lastIndexOf('/') + 1);
  let m: RegExpExecArray | null;
  if ((m = COMMIT.exec(name))) return { kind: 'commit', version: Number(m[1]), path, lastModified, size };
  if ((m = CLASSIC.exec(name))) return { kind: 'checkpoint', version: Number(m[1]), path, lastModified, size, format: 'parquet' };
  if ((m = MULTI.exec(name))) return { kind: 'checkpoint', version: Number(m[1]), path, lastModified, size, part: Number(m[2]), parts: Number(m[3]), format: 'parquet' };
  if ((m = UUIDCP.exec(name))) return { kind: 'checkpoint', version: Number(m[1]), path, lastModified, size, uuid: m[2]!, format: m[3] as 'json' | 'parquet' };
  if ((m = COMPACT.exec(name))) return { kind: 'compaction', version: Number(m[1]), endVersion: Number(m[2]), path, lastModified, size };
  if ((m = CRC.exec(name))) return { kind: 'crc', version: Number(m[1]), path, lastModified, size };
  return null;
}
