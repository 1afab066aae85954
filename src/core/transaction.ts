/**
 * The one commit path. A transaction records what it read (for conflict detection) and the actions
 * it adds, then commits them as `_delta_log/<v>.json` with put-if-absent. When another writer took
 * that version first, it reads the winners, checks for conflicts, and retries at the next version
 * with jittered backoff; a real conflict surfaces as a typed error (see conflicts.ts).
 */
import { randomUUID } from 'node:crypto';
import { FloeError, ObjectExistsError } from '../errors.js';
import {
  type ActionBatch, type AddCDCFile, type AddFile, type CommitInfo, type DomainMetadata, type Metadata, type Protocol, type RemoveFile, type Txn,
} from './actions.js';
import { ConcurrentModificationError, type IsolationLevel, type ReadSet, checkConflicts } from './conflicts.js';
import type { DeltaLog } from './delta-log.js';
import { commitPath } from './log-files.js';
import type { Snapshot } from './snapshot.js';
import { cdfEnabled, isCdfColumn } from './cdf.js';
import { parseSchema } from './schema.js';


export const ENGINE_INFO = 'floe/0.1.0';

export interface CommitResult {
  version: number;
  /** Commit attempts: 1 when no other writer interfered. */
  attempts: number;
  commitInfo: CommitInfo;
}

export interface TransactionOptions {
  isolationLevel?: IsolationLevel;
  maxRetries?: number;
}

export class Transaction {
  readonly log: DeltaLog;
  /** Snapshot read by this transaction; null when creating a table. */
  readonly snapshot: Snapshot | null;
  readonly readVersion: number;
  readonly read: ReadSet = {
    readTable: false, readFiles: new Set(), removedFiles: new Set(), appIds: new Set(), domains: new Set(), changesMetadata: false,
  };
  metadata?: Metadata;
  protocol?: Protocol;
  readonly adds: AddFile[] = [];
  readonly removes: RemoveFile[] = [];
  readonly cdcs: AddCDCFile[] = [];
  readonly txns: Txn[] = [];
  readonly domains: DomainMetadata[] = [];
  private readonly options: Required<TransactionOptions>;

  constructor(log: DeltaLog, snapshot: Snapshot | null, options: TransactionOptions = {}) {
    this.log = log;
    this.snapshot = snapshot;
    this.readVersion = snapshot ? snapshot.version : -1;
    const iso = (snapshot?.configuration['delta.isolationLevel'] as IsolationLevel | undefined) ?? 'WriteSerializable';
    this.options = { isolationLevel: options.isolationLevel ?? iso, maxRetries: options.maxRetries ?? 200 };
  }

  /** Marks the whole table (or the files matching `predicate`) as read by this transaction. */
  readWhole(predicate?: (add: AddFile) => boolean, files?: AddFile[]): void {
    this.read.readTable = true;
    if (predicate) this.read.readPredicate = predicate;
    for (const f of files ?? this.snapshot?.files ?? []) this.read.readFiles.add(f.path);
  }

  setMetadata(m: Metadata): void {
    this.metadata = m;
    this.read.changesMetadata = true;
  }

  setProtocol(p: Protocol): void {
    this.protocol = p;
    this.read.changesMetadata = true;
  }

  addTxn(appId: string, version: number): void {
    this.txns.push({ appId, version, lastUpdated: Date.now() });
    this.read.appIds.add(appId);
  }

  remove(file: AddFile, dataChange = true): void {
    this.removes.push({
      path: file.path, deletionTimestamp: Date.now(), dataChange, extendedFileMetadata: true, partitionValues: file.partitionValues,
      size: file.size, stats: file.stats ?? null, tags: file.tags ?? null, deletionVector: file.deletionVector ?? null,
      baseRowId: file.baseRowId ?? null, defaultRowCommitVersion: file.defaultRowCommitVersion ?? null,
    });
    this.read.removedFiles.add(file.path);
    this.read.readFiles.add(file.path);
  }

  private effectiveConfig(): Record<string, string> {
    return (this.metadata ?? this.snapshot?.metadata)?.configuration ?? {};
  }

  /**
   * Enabling in-commit timestamps on an existing table (PROTOCOL.md "Writer Requirements for In-Commit
   * Timestamps"): the enabling commit's metadata records its own version and ICT, so readers know from
   * which version on commitInfo.inCommitTimestamp is the commit time. Recomputed on every attempt, as
   * a retry lands at another version.
   */
  private recordIctEnablement(version: number, ict: number): void {
    if (!this.metadata || version === 0) return;
    if (this.snapshot?.metadata.configuration['delta.enableInCommitTimestamps'] === 'true') return;
    this.metadata = {
      ...this.metadata,
      configuration: {
        ...this.metadata.configuration,
        'delta.inCommitTimestampEnablementVersion': String(version),
        'delta.inCommitTimestampEnablementTimestamp': String(ict),
      },
    };
  }

  private serialize(version: number, commitInfo: CommitInfo): string {
    const lines: string[] = [JSON.stringify({ commitInfo })];
    if (this.protocol) lines.push(JSON.stringify({ protocol: this.protocol }));
    if (this.metadata) lines.push(JSON.stringify({ metaData: this.metadata }));
    for (const t of this.txns) lines.push(JSON.stringify({ txn: t }));
    for (const d of this.domains) lines.push(JSON.stringify({ domainMetadata: d }));
    for (const r of this.removes) lines.push(JSON.stringify({ remove: stripNulls(r) }));
    for (const a of this.adds) lines.push(JSON.stringify({ add: stripNulls(a) }));
    for (const c of this.cdcs) lines.push(JSON.stringify({ cdc: stripNulls(c) }));
    void version;
    return lines.join('\n') + '\n';
  }

  /**
   * Commits. `operation` and its parameters and metrics go to commitInfo as Spark writes them.
   * Returns the committed version; throws a ConcurrentModificationError on a real conflict.
   */
  /**
   * A table with the change data feed on cannot have columns named like the feed's own
   * (`_change_type`, `_commit_version`, `_commit_timestamp`): its change files would hold the user's
   * column under the feed's name. Enabling the feed on such a table, or adding such a column to a
   * table with the feed on, is DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS; a data change to such a table
   * (written by another engine) is RESERVED_CDC_COLUMNS_ON_WRITE, as Spark.
   */
  private checkReservedCdcColumns(): void {
    const reservedIn = (fields: { name: string }[]): string[] => fields.map((f) => f.name).filter(isCdfColumn);
    const before = this.snapshot && cdfEnabled(this.snapshot.metadata) ? reservedIn(this.snapshot.schema.fields) : [];
    const reserved = !this.metadata ? before : cdfEnabled(this.metadata) ? reservedIn(parseSchema(this.metadata.schemaString).fields) : [];
    if (!reserved.length) return;
    const list = reserved.join(', ');
    // (A table that already had both keeps its metadata changes; its data changes are refused below.)
    if (this.metadata && !before.length) {
      throw new FloeError('DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS', `Unable to enable the change data feed on ${this.log.tablePath}: the table has column(s) ${list}, names the feed uses for its own columns (_change_type, _commit_version, _commit_timestamp). Rename or drop them, or leave the change data feed off.`, { table: this.log.tablePath, columns: reserved });
    }
    if (this.adds.some((a) => a.dataChange) || this.removes.some((r) => r.dataChange) || this.cdcs.length) {
      throw new FloeError('RESERVED_CDC_COLUMNS_ON_WRITE', `Cannot write to ${this.log.tablePath}: it has the change data feed on and column(s) ${list}, names the feed uses for its own columns. Rename them (ALTER TABLE … RENAME COLUMN with column mapping) or turn the change data feed off.`, { table: this.log.tablePath, columns: reserved });
    }
  }

  async commit(operation: string, operationParameters: Record<string, unknown> = {}, operationMetrics: Record<string, unknown> = {}, userMetadata?: string): Promise<CommitResult> {
    this.checkReservedCdcColumns();
    const isBlindAppend = !this.read.readTable && this.removes.length === 0 && !this.read.changesMetadata;
    const txnId = randomUUID();
    let version = this.readVersion + 1;
    let prevIct = this.snapshot?.timestamp ?? 0;
    for (let attempt = 1; ; attempt++) {
      const conf = this.effectiveConfig();
      const now = Date.now();
      const commitInfo: CommitInfo = {};
      if (conf['delta.enableInCommitTimestamps'] === 'true') {
        commitInfo.inCommitTimestamp = Math.max(now, prevIct + 1);
        this.recordIctEnablement(version, commitInfo.inCommitTimestamp);
      }
      Object.assign(commitInfo, {
        timestamp: now,
        operation,
        operationParameters: stringifyParams(operationParameters),
        readVersion: this.readVersion >= 0 ? this.readVersion : undefined,
        isolationLevel: this.options.isolationLevel,
        isBlindAppend,
        operationMetrics: stringifyParams(operationMetrics),
        ...(userMetadata !== undefined ? { userMetadata } : {}),
        engineInfo: ENGINE_INFO,
        txnId,
      });
      try {
        await this.log.store.putIfAbsent(commitPath(version), this.serialize(version, commitInfo));
        return { version, attempts: attempt, commitInfo };
      } catch (e) {
        if (!(e instanceof ObjectExistsError)) throw e;
      }
      if (this.readVersion < 0) {
        throw new ConcurrentModificationError('ProtocolChangedException', `The table at ${this.log.tablePath} was created by a concurrent writer while this transaction was creating it. Open the existing table and write to it instead.`, { table: this.log.tablePath });
      }
      if (attempt > this.options.maxRetries) {
        throw new FloeError('DELTA_MAX_COMMIT_RETRIES_EXCEEDED', `Gave up committing to ${this.log.tablePath} after ${attempt} attempts: other writers kept committing first. Retry later or reduce the number of concurrent writers.`, { table: this.log.tablePath, attempts: attempt });
      }
      // Read every winner since our last attempt and check them.
      const winners: { version: number; batch: ActionBatch }[] = [];
      for (let v = version; ; v++) {
        const exists = await this.log.store.head(commitPath(v));
        if (!exists) break;
        winners.push({ version: v, batch: await this.log.readCommit(v) });
      }
      checkConflicts(this.read, winners, this.options.isolationLevel, this.log.tablePath);
      for (const w of winners) {
        const ict = w.batch.commitInfo?.inCommitTimestamp;
        if (typeof ict === 'number') prevIct = Math.max(prevIct, ict);
      }
      version = winners.length ? winners[winners.length - 1]!.version + 1 : version;
      // Jittered exponential backoff, capped, so contending writers spread out.
      const delay = Math.min(200, 2 ** Math.min(attempt, 7)) * Math.random();
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function stripNulls<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v;
  return out as T;
}

/** Spark records operationParameters and operationMetrics values as strings. */
function stringifyParams(p: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}
