/**
 * A snapshot: the table's state at one version, reconstructed by log replay (PROTOCOL.md "Action
 * Reconciliation"): the newest protocol and metadata win, the newest action per logical file
 * (path + deletion vector id) wins, the newest txn per appId and domainMetadata per domain win.
 */
import { CorruptLogError } from '../errors.js';
import {
  type ActionBatch, type AddFile, type CommitInfo, type DomainMetadata, type Metadata, type Protocol, type RemoveFile, type Txn,
  fileKey, parseStats,
} from './actions.js';
import { type StructType, columnMappingMode, parseSchema, type ColumnMappingMode } from './schema.js';

export interface SnapshotState {
  version: number;
  metadata: Metadata;
  protocol: Protocol;
  files: AddFile[];
  tombstones: RemoveFile[];
  txns: Map<string, Txn>;
  domains: Map<string, DomainMetadata>;
  /** commitInfo of the snapshot's own version, when its commit file still exists. */
  commitInfo: CommitInfo | null;
  /** Milliseconds since epoch: the commit timestamp of `version`. */
  timestamp: number;
}

/** Incremental replay state: feed batches oldest first, then `finish()`. */
export class Replayer {
  private metadata?: Metadata;
  private protocol?: Protocol;
  private readonly live = new Map<string, AddFile>();
  private readonly removed = new Map<string, RemoveFile>();
  private readonly txns = new Map<string, Txn>();
  private readonly domains = new Map<string, DomainMetadata>();

  /** A replayer that continues from an existing state (for advancing a cached snapshot). */
  static from(state: SnapshotState): Replayer {
    const r = new Replayer();
    r.metadata = state.metadata;
    r.protocol = state.protocol;
    for (const f of state.files) r.live.set(fileKey(f.path, f.deletionVector), f);
    for (const t of state.tombstones) r.removed.set(fileKey(t.path, t.deletionVector), t);
    for (const [k, v] of state.txns) r.txns.set(k, v);
    for (const [k, v] of state.domains) r.domains.set(k, v);
    return r;
  }

  apply(batch: ActionBatch): void {
    if (batch.protocol) this.protocol = batch.protocol;
    if (batch.metaData) this.metadata = batch.metaData;
    for (const r of batch.removes) {
      const k = fileKey(r.path, r.deletionVector);
      this.live.delete(k);
      this.removed.set(k, r);
    }
    for (const a of batch.adds) {
      const k = fileKey(a.path, a.deletionVector);
      this.live.set(k, a);
      this.removed.delete(k);
    }
    for (const t of batch.txns) this.txns.set(t.appId, t);
    for (const d of batch.domains) this.domains.set(d.domain, d);
  }

  finish(tablePath: string, version: number, commitInfo: CommitInfo | null, timestamp: number): SnapshotState {
    if (!this.protocol) throw new CorruptLogError(`The log of ${tablePath} at version ${version} has no protocol action. The table is damaged.`, { path: tablePath, version });
    if (!this.metadata) throw new CorruptLogError(`The log of ${tablePath} at version ${version} has no metaData action. The table is damaged.`, { path: tablePath, version });
    const domains = new Map<string, DomainMetadata>();
    for (const [k, d] of this.domains) if (!d.removed) domains.set(k, d);
    return {
      version,
      metadata: this.metadata,
      protocol: this.protocol,
      files: [...this.live.values()],
      tombstones: [...this.removed.values()],
      txns: this.txns,
      domains,
      commitInfo,
      timestamp,
    };
  }
}

/** A loaded snapshot with derived, read-only views of its state. */
export class Snapshot {
  readonly tablePath: string;
  readonly state: SnapshotState;
  private cachedSchema?: StructType;

  constructor(tablePath: string, state: SnapshotState) {
    this.tablePath = tablePath;
    this.state = state;
  }

  get version(): number { return this.state.version; }
  get metadata(): Metadata { return this.state.metadata; }
  get protocol(): Protocol { return this.state.protocol; }
  get files(): AddFile[] { return this.state.files; }
  get timestamp(): number { return this.state.timestamp; }
  get partitionColumns(): string[] { return this.state.metadata.partitionColumns; }
  get configuration(): Record<string, string> { return this.state.metadata.configuration; }
  get schema(): StructType {
    this.cachedSchema ??= parseSchema(this.state.metadata.schemaString);
    return this.cachedSchema;
  }
  get columnMapping(): ColumnMappingMode { return columnMappingMode(this.configuration); }

  /** Total size in bytes of the live files. */
  get sizeInBytes(): number {
    let s = 0;
    for (const f of this.state.files) s += f.size;
    return s;
  }

  /** Rows in the snapshot according to stats (numRecords minus DV cardinality), or null if any file lacks stats. */
  get numRecordsFromStats(): number | null {
    let n = 0;
    for (const f of this.state.files) {
      const st = parseStats(f.stats);
      if (st?.numRecords === undefined || Number.isNaN(st.numRecords)) return null;
      n += st.numRecords - (f.deletionVector?.cardinality ?? 0);
    }
    return n;
  }

  /** The latest version recorded for an application's idempotent writes (`txn`), or undefined. */
  txnVersion(appId: string): number | undefined {
    return this.state.txns.get(appId)?.version;
  }
}
