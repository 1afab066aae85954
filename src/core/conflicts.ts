/**
 * Optimistic concurrency (PROTOCOL.md "Transaction Log Entries"; delta-spark ConflictChecker): when
 * another writer committed first, decide from the winning commits whether this transaction still
 * holds. Pure: a function of what this transaction read and wrote and of the winners' actions.
 */
import { FloeError } from '../errors.js';
import type { ActionBatch, AddFile } from './actions.js';

export type IsolationLevel = 'Serializable' | 'WriteSerializable';

/** What a transaction depended on. */
export interface ReadSet {
  /** The transaction read the table (not a blind append). */
  readTable: boolean;
  /**
   * Decides whether a file added by a winner falls in what this transaction read. Absent with
   * readTable = true means "the whole table" (any added file conflicts).
   */
  readPredicate?: (add: AddFile) => boolean;
  /** Paths of files this transaction read (a concurrent remove of one of them conflicts). */
  readFiles: Set<string>;
  /** Paths this transaction removes. */
  removedFiles: Set<string>;
  /** Application ids of `txn` actions this transaction checked or writes. */
  appIds: Set<string>;
  /** Domains this transaction writes. */
  domains: Set<string>;
  /** This transaction changes metadata or protocol itself. */
  changesMetadata: boolean;
}

export class ConcurrentModificationError extends FloeError {
  constructor(code: string, message: string, details: Record<string, unknown>) {
    super(code, message, details);
    this.name = code;
  }
}

const hint = 'Retry the operation; it will read the new table state.';

/**
 * Throws the typed conflict error Delta would throw, or returns when the winners do not conflict
 * (the caller then rebases onto the new version and retries the commit).
 */
export function checkConflicts(read: ReadSet, winners: { version: number; batch: ActionBatch }[], isolation: IsolationLevel, table: string): void {
  for (const { version, batch } of winners) {
    const at = { table, winningVersion: version };
    if (batch.protocol) {
      throw new ConcurrentModificationError('ProtocolChangedException', `The protocol of ${table} was changed by a concurrent commit (version ${version}). ${hint}`, at);
    }
    if (batch.metaData) {
      throw new ConcurrentModificationError('MetadataChangedException', `The metadata of ${table} was changed by a concurrent commit (version ${version}). ${hint}`, at);
    }
    if (read.readTable) {
      // WriteSerializable lets blind appends by others pass; Serializable does not.
      const blind = batch.commitInfo?.isBlindAppend === true;
      // A blind append by another writer passes only when this transaction left the metadata alone.
      if (isolation === 'Serializable' || !blind || read.changesMetadata) {
        const hit = batch.adds.find((a) => a.dataChange !== false && (read.readPredicate ? read.readPredicate(a) : true));
        if (hit) {
          throw new ConcurrentModificationError('ConcurrentAppendException', `Files were added to ${table} by a concurrent commit (version ${version}) in data this transaction read (e.g. ${hit.path}). ${hint}`, { ...at, file: hit.path });
        }
      }
    }
    for (const r of batch.removes) {
      if (r.dataChange === false && !read.removedFiles.has(r.path)) continue; // compaction rewrote data without changing it
      if (read.removedFiles.has(r.path)) {
        throw new ConcurrentModificationError('ConcurrentDeleteDeleteException', `A file this transaction removes (${r.path}) was already removed from ${table} by a concurrent commit (version ${version}). ${hint}`, { ...at, file: r.path });
      }
      if (read.readFiles.has(r.path)) {
        throw new ConcurrentModificationError('ConcurrentDeleteReadException', `A file this transaction read (${r.path}) was removed from ${table} by a concurrent commit (version ${version}). ${hint}`, { ...at, file: r.path });
      }
    }
    for (const t of batch.txns) {
      if (read.appIds.has(t.appId)) {
        throw new ConcurrentModificationError('ConcurrentTransactionException', `A concurrent commit (version ${version}) to ${table} recorded a transaction for application '${t.appId}' too. Only one writer per application id may commit at a time.`, { ...at, appId: t.appId });
      }
    }
    for (const d of batch.domains) {
      if (read.domains.has(d.domain)) {
        throw new ConcurrentModificationError('ConcurrentTransactionException', `A concurrent commit (version ${version}) to ${table} changed domain metadata '${d.domain}' that this transaction also changes. ${hint}`, { ...at, domain: d.domain });
      }
    }
  }
}
