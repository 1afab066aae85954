/**
 * Paths named in a Delta log (PROTOCOL.md "Path Specification"): relative to the table (URL-encoded),
 * or absolute URIs, as SHALLOW CLONE writes them (`file:///…`, `abfss://…`, `s3://…`). An absolute URI
 * inside the table resolves to the table's own key (so its cache copy and VACUUM's view of it are the
 * same file); one outside the table resolves to a store for its container / bucket (or its local
 * folder), opened with the same settings as the table's store. Nothing here writes or deletes: the
 * only files floe ever deletes are ones it lists inside the table.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePath } from '../core/actions.js';
import { FloeError } from '../errors.js';
import { parseAzureUrl } from './azure.js';
import { LocalObjectStore } from './local.js';
import type { ObjectStore } from './object-store.js';
import { isCloudUrl, siblingStore as sibling } from './open.js';
import { RemoteObjectStore } from './remote.js';
import { parseS3Url } from './s3.js';

export interface ResolvedPath {
  /** The store holding the file: the table's own, or one for the file's container, bucket or folder. */
  store: ObjectStore;
  /** The file's key in that store (decoded). */
  key: string;
  /** Whether the file is inside the table (VACUUM may delete it when unreferenced). */
  inTable: boolean;
}

/** `scheme:` at the start: an absolute URI rather than a table-relative path. */
export function isAbsoluteUri(p: string): boolean {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(p);
}

/** A cloud URI split into its namespace (account and container, or bucket), the namespace's root URL and the decoded key. */
function cloudParts(url: string): { kind: 'azure' | 's3'; account: string | null; space: string; rootUrl: string; key: string } {
  if (/^s3a?:\/\//i.test(url)) {
    const l = parseS3Url(url);
    return { kind: 's3', account: null, space: l.bucket, rootUrl: `s3://${l.bucket}`, key: decodePath(l.prefix) };
  }
  const l = parseAzureUrl(url);
  return { kind: 'azure', account: l.account, space: l.container, rootUrl: l.account ? `abfss://${l.container}@${l.account}.dfs.core.windows.net` : `az://${l.container}`, key: decodePath(l.prefix) };
}

/** The key of `sub` under `root` (both `/`-separated, no leading or trailing `/`), or null when outside it. */
function under(root: string, sub: string): string | null {
  if (!root) return sub;
  if (sub === root) return '';
  return sub.startsWith(`${root}/`) ? sub.slice(root.length + 1) : null;
}

/**
 * The key inside the table's store that a log path names, or null when it names a file outside the
 * table (an absolute URI elsewhere). Opens nothing. Throws FLOE_REMOTE_NOT_SUPPORTED for schemes floe
 * cannot open (gs://, hdfs://, …).
 */
export function tableKeyOf(store: ObjectStore, p: string): string | null {
  return locate(store, p).key;
}

/** Where a path from the log lives. Throws FLOE_REMOTE_NOT_SUPPORTED for schemes floe cannot open (gs://, hdfs://, …). */
export function resolveLogPath(store: ObjectStore, p: string): ResolvedPath {
  const l = locate(store, p);
  if (l.key !== null) return { store, key: l.key, inTable: true };
  return { store: sibling(store, l.root), key: l.rootKey, inTable: false };
}

/** A table key, or (outside the table) the location of a store for the file and its key there. */
function locate(store: ObjectStore, p: string): { key: string; root?: undefined; rootKey?: undefined } | { key: null; root: string; rootKey: string } {
  // A filesystem path (deletion vectors with storage type 'p' resolve file: URIs to these).
  if (!isAbsoluteUri(p) && !path.isAbsolute(p)) return { key: decodePath(p) };
  if (path.isAbsolute(p) || /^file:/i.test(p)) {
    const file = path.normalize(path.isAbsolute(p) ? p : fileURLToPath(/^file:\/\//i.test(p) ? p : p.replace(/^file:/i, 'file://')));
    if (store instanceof LocalObjectStore) {
      const rel = path.relative(store.root, file);
      if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return { key: rel.split(path.sep).join('/') };
    }
    return { key: null, root: path.dirname(file), rootKey: path.basename(file) };
  }
  if (isCloudUrl(p)) {
    const f = cloudParts(p);
    if (store instanceof RemoteObjectStore && isCloudUrl(store.root)) {
      const t = cloudParts(store.root);
      // An az:// URL names no account: it means the table's account.
      const sameSpace = t.kind === f.kind && t.space === f.space && (!t.account || !f.account || t.account.toLowerCase() === f.account.toLowerCase());
      const key = sameSpace ? under(t.key, f.key) : null;
      if (key !== null && key !== '') return { key };
    }
    return { key: null, root: f.rootUrl, rootKey: f.key };
  }
  throw new FloeError('FLOE_REMOTE_NOT_SUPPORTED', `The log names ${p}, whose storage floe cannot open: floe reads local paths, file://, abfss://, az:// and s3:// URIs.`, { file: p });
}
