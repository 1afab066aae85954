/**
 * The actions of the Delta transaction log (PROTOCOL.md "Actions"), their parsing and validation.
 * Unknown actions and unknown fields are ignored, as the protocol requires; a known action missing
 * a required field is a corrupt log.
 */
import { CorruptLogError } from '../errors.js';

export interface Format {
  provider: string;
  options?: Record<string, string>;
}

export interface Metadata {
  id: string;
  name?: string | null;
  description?: string | null;
  format: Format;
  schemaString: string;
  partitionColumns: string[];
  createdTime?: number | null;
  configuration: Record<string, string>;
}

export interface Protocol {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[] | null;
  writerFeatures?: string[] | null;
}

/** Deletion vector descriptor (PROTOCOL.md "Deletion Vector Descriptor Schema"). */
export interface DeletionVectorDescriptor {
  storageType: 'u' | 'i' | 'p';
  pathOrInlineDv: string;
  offset?: number | null;
  sizeInBytes: number;
  cardinality: number;
  maxRowIndex?: number | null;
}

export interface AddFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string | null;
  tags?: Record<string, string> | null;
  deletionVector?: DeletionVectorDescriptor | null;
  baseRowId?: number | null;
  defaultRowCommitVersion?: number | null;
  clusteringProvider?: string | null;
}

export interface RemoveFile {
  path: string;
  deletionTimestamp?: number | null;
  dataChange: boolean;
  extendedFileMetadata?: boolean | null;
  partitionValues?: Record<string, string | null> | null;
  size?: number | null;
  stats?: string | null;
  tags?: Record<string, string> | null;
  deletionVector?: DeletionVectorDescriptor | null;
  baseRowId?: number | null;
  defaultRowCommitVersion?: number | null;
}

export interface AddCDCFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  dataChange: boolean;
  tags?: Record<string, string> | null;
}

export interface Txn {
  appId: string;
  version: number;
  lastUpdated?: number | null;
}

export type CommitInfo = Record<string, unknown> & {
  timestamp?: number;
  inCommitTimestamp?: number;
  operation?: string;
  operationParameters?: Record<string, unknown>;
  operationMetrics?: Record<string, unknown>;
};

export interface DomainMetadata {
  domain: string;
  configuration: string;
  removed: boolean;
}

export interface Sidecar {
  path: string;
  sizeInBytes: number;
  modificationTime: number;
  tags?: Record<string, string> | null;
}

export interface CheckpointMetadata {
  version: number;
  tags?: Record<string, string> | null;
}

/** One action of the log: exactly one key set. */
export type Action =
  | { metaData: Metadata }
  | { protocol: Protocol }
  | { add: AddFile }
  | { remove: RemoveFile }
  | { cdc: AddCDCFile }
  | { txn: Txn }
  | { commitInfo: CommitInfo }
  | { domainMetadata: DomainMetadata }
  | { sidecar: Sidecar }
  | { checkpointMetadata: CheckpointMetadata };

/** Actions of one commit or checkpoint, grouped by kind. */
export interface ActionBatch {
  metaData?: Metadata;
  protocol?: Protocol;
  commitInfo?: CommitInfo;
  adds: AddFile[];
  removes: RemoveFile[];
  cdcs: AddCDCFile[];
  txns: Txn[];
  domains: DomainMetadata[];
  sidecars: Sidecar[];
  checkpointMetadata?: CheckpointMetadata;
}

export function emptyBatch(): ActionBatch {
  return { adds: [], removes: [], cdcs: [], txns: [], domains: [], sidecars: [] };
}

type Where = { file: string; line?: number };

function fail(where: Where, msg: string): never {
  const at = where.line !== undefined ? `${where.file} line ${where.line}` : where.file;
  throw new CorruptLogError(`Corrupt Delta log entry in ${at}: ${msg}. The log may have been damaged or written by a broken writer; restore the file or time travel to an earlier version.`, { file: where.file, line: where.line });
}

function need(obj: Record<string, unknown>, field: string, type: 'string' | 'number' | 'boolean' | 'object', kind: string, where: Where): void {
  const v = obj[field];
  if (v === undefined || v === null) fail(where, `${kind} action is missing required field '${field}'`);
  if (type === 'object' ? typeof v !== 'object' : typeof v !== type) {
    fail(where, `${kind}.${field} should be a ${type}, got ${JSON.stringify(v)}`);
  }
}

function nonNull<T>(v: T | null | undefined): v is T {
  return v !== null && v !== undefined;
}

/** Coerces numeric-string fields (some writers stringify longs in checkpoints) to numbers. */
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

function fixNumbers(o: Record<string, unknown>, fields: string[]): void {
  for (const f of fields) {
    if (nonNull(o[f])) {
      const n = num(o[f]);
      if (n !== undefined) o[f] = n;
    }
  }
}

function validateDv(dv: unknown, where: Where): DeletionVectorDescriptor | null {
  if (!nonNull(dv)) return null;
  const d = dv as Record<string, unknown>;
  fixNumbers(d, ['offset', 'sizeInBytes', 'cardinality', 'maxRowIndex']);
  need(d, 'storageType', 'string', 'deletionVector', where);
  need(d, 'pathOrInlineDv', 'string', 'deletionVector', where);
  need(d, 'sizeInBytes', 'number', 'deletionVector', where);
  need(d, 'cardinality', 'number', 'deletionVector', where);
  if (!['u', 'i', 'p'].includes(d.storageType as string)) fail(where, `unknown deletionVector.storageType '${String(d.storageType)}'`);
  return d as unknown as DeletionVectorDescriptor;
}

/**
 * Validates one parsed action object (one line of a commit, or one row of a checkpoint) and adds it
 * to the batch. Returns false if the object holds no known action.
 */
export function addActionToBatch(obj: Record<string, unknown>, batch: ActionBatch, where: Where): boolean {
  let known = false;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (!nonNull(v)) continue;
    if (typeof v !== 'object') {
      if (['add', 'remove', 'metaData', 'protocol', 'cdc', 'txn', 'commitInfo', 'domainMetadata', 'sidecar', 'checkpointMetadata'].includes(key)) {
        fail(where, `action '${key}' should be an object`);
      }
      continue;
    }
    const a = v as Record<string, unknown>;
    switch (key) {
      case 'add': {
        fixNumbers(a, ['size', 'modificationTime', 'baseRowId', 'defaultRowCommitVersion']);
        need(a, 'path', 'string', 'add', where);
        need(a, 'size', 'number', 'add', where);
        if (!nonNull(a.partitionValues)) a.partitionValues = {};
        need(a, 'partitionValues', 'object', 'add', where);
        if (!nonNull(a.modificationTime)) a.modificationTime = 0;
        if (!nonNull(a.dataChange)) a.dataChange = true;
        a.deletionVector = validateDv(a.deletionVector, where);
        batch.adds.push(a as unknown as AddFile);
        break;
      }
      case 'remove': {
        fixNumbers(a, ['size', 'deletionTimestamp', 'baseRowId', 'defaultRowCommitVersion']);
        need(a, 'path', 'string', 'remove', where);
        if (!nonNull(a.dataChange)) a.dataChange = true;
        a.deletionVector = validateDv(a.deletionVector, where);
        batch.removes.push(a as unknown as RemoveFile);
        break;
      }
      case 'cdc': {
        fixNumbers(a, ['size']);
        need(a, 'path', 'string', 'cdc', where);
        if (!nonNull(a.partitionValues)) a.partitionValues = {};
        if (!nonNull(a.size)) a.size = 0;
        a.dataChange = false;
        batch.cdcs.push(a as unknown as AddCDCFile);
        break;
      }
      case 'metaData': {
        fixNumbers(a, ['createdTime']);
        need(a, 'id', 'string', 'metaData', where);
        // Spark treats a missing schemaString as an empty schema (DLT and some test tables omit it).
        if (!nonNull(a.schemaString)) a.schemaString = '{"type":"struct","fields":[]}';
        need(a, 'schemaString', 'string', 'metaData', where);
        if (!nonNull(a.partitionColumns)) fail(where, `metaData action is missing required field 'partitionColumns'`);
        if (!Array.isArray(a.partitionColumns)) fail(where, 'metaData.partitionColumns should be an array');
        if (!nonNull(a.format)) a.format = { provider: 'parquet', options: {} };
        if (!nonNull(a.configuration)) a.configuration = {};
        if (batch.metaData) fail(where, 'more than one metaData action in one commit');
        batch.metaData = a as unknown as Metadata;
        break;
      }
      case 'protocol': {
        fixNumbers(a, ['minReaderVersion', 'minWriterVersion']);
        need(a, 'minReaderVersion', 'number', 'protocol', where);
        need(a, 'minWriterVersion', 'number', 'protocol', where);
        if (batch.protocol) fail(where, 'more than one protocol action in one commit');
        batch.protocol = a as unknown as Protocol;
        break;
      }
      case 'txn': {
        fixNumbers(a, ['version', 'lastUpdated']);
        need(a, 'appId', 'string', 'txn', where);
        need(a, 'version', 'number', 'txn', where);
        batch.txns.push(a as unknown as Txn);
        break;
      }
      case 'commitInfo': {
        fixNumbers(a, ['timestamp', 'inCommitTimestamp']);
        batch.commitInfo = a as CommitInfo;
        break;
      }
      case 'domainMetadata': {
        need(a, 'domain', 'string', 'domainMetadata', where);
        if (!nonNull(a.configuration)) a.configuration = '';
        a.removed = a.removed === true;
        batch.domains.push(a as unknown as DomainMetadata);
        break;
      }
      case 'sidecar': {
        fixNumbers(a, ['sizeInBytes', 'modificationTime']);
        need(a, 'path', 'string', 'sidecar', where);
        batch.sidecars.push(a as unknown as Sidecar);
        break;
      }
      case 'checkpointMetadata': {
        fixNumbers(a, ['version']);
        need(a, 'version', 'number', 'checkpointMetadata', where);
        batch.checkpointMetadata = a as unknown as CheckpointMetadata;
        break;
      }
      default:
        continue; // unknown actions are ignored (PROTOCOL.md "Actions")
    }
    known = true;
  }
  return known;
}

/** Parses newline-delimited JSON commit content into a batch. */
export function parseCommit(text: string, file: string): ActionBatch {
  const batch = emptyBatch();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      fail({ file, line: i + 1 }, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) fail({ file, line: i + 1 }, 'a log line must be a JSON object');
    addActionToBatch(obj as Record<string, unknown>, batch, { file, line: i + 1 });
  }
  return batch;
}

/** The logical file key: path plus deletion vector id (PROTOCOL.md "Action Reconciliation"). */
export function fileKey(path: string, dv: DeletionVectorDescriptor | null | undefined): string {
  return dv ? `${path}\u0000${dvUniqueId(dv)}` : path;
}

export function dvUniqueId(dv: DeletionVectorDescriptor): string {
  return nonNull(dv.offset) ? `${dv.storageType}${dv.pathOrInlineDv}@${dv.offset}` : `${dv.storageType}${dv.pathOrInlineDv}`;
}

/** Decodes an RFC 2396 path as stored in the log ("a%20b" -> "a b"). */
export function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

/** Encodes a relative data file path for the log. */
export function encodePath(p: string): string {
  // RFC 2396 keeps '=' (Hive partition folders read `col=value`, as Spark writes them).
  return p.split('/').map((s) => encodeURIComponent(s).replace(/%3D/gi, '=')).join('/');
}

export interface FileStats {
  numRecords?: number;
  tightBounds?: boolean;
  minValues?: Record<string, unknown>;
  maxValues?: Record<string, unknown>;
  nullCount?: Record<string, unknown>;
}

/** Parses an add's stats JSON; malformed stats are treated as absent (they only guide skipping). */
export function parseStats(stats: string | null | undefined): FileStats | null {
  if (!stats) return null;
  try {
    const s = JSON.parse(stats) as FileStats;
    if (s.numRecords !== undefined) s.numRecords = Number(s.numRecords);
    return s;
  } catch {
    return null;
  }
}
