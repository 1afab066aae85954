/**
 * The storage interface everything above it talks to. Paths are relative keys with `/` separators
 * (`_delta_log/00000000000000000000.json`), resolved against the store's root. The shape fits object
 * stores: put-if-absent maps to Azure's `If-None-Match: *` and S3's conditional `PutObject`, listing
 * is lexicographic from an optional start key, as both services list.
 */
export interface ObjectMeta {
  /** Key relative to the store root. */
  path: string;
  size: number;
  /** Last modification time, epoch milliseconds. */
  lastModified: number;
}

export interface ObjectStore {
  /** A URL or absolute path naming the store's root, for messages and for engines that read files directly. */
  readonly root: string;
  /** Whole object. Throws ObjectNotFoundError. */
  get(path: string): Promise<Uint8Array>;
  /** Bytes [start, end). Throws ObjectNotFoundError. */
  getRange(path: string, start: number, end: number): Promise<Uint8Array>;
  /** Create or replace. Readers never observe a partially written object. */
  put(path: string, data: Uint8Array | string): Promise<void>;
  /** Create only if absent, atomically across processes; throws ObjectExistsError if it exists. */
  putIfAbsent(path: string, data: Uint8Array | string): Promise<void>;
  /** Metadata or null when absent. */
  head(path: string): Promise<ObjectMeta | null>;
  /**
   * Objects whose key starts with `prefix`, in lexicographic key order, optionally only keys > `startAfter`.
   * Not recursive past the prefix's directory when `prefix` ends with `/` and `recursive` is false.
   */
  list(prefix: string, options?: { startAfter?: string; recursive?: boolean }): Promise<ObjectMeta[]>;
  /** Remove; absent objects are not an error. */
  delete(path: string): Promise<void>;
  /**
   * A local filesystem path DuckDB can read for this key, or null when the object is remote
   * (remote stores stage files through a local cache; see issue 8).
   */
  localPath(path: string): string | null;
}

/** Joins key segments with `/`, dropping empty ones. */
export function joinKey(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join('/').replace(/\/+/g, '/');
}
