/**
 * Azure Blob Storage / ADLS Gen2 (through the Blob endpoint, which serves hierarchical-namespace
 * accounts too). put-if-absent is an upload with `If-None-Match: *` (409 BlobAlreadyExists when the
 * blob exists); large files go up as staged blocks; ranged reads use `x-ms-range`. The SDK's own
 * retries are off: RemoteObjectStore retries, so that put-if-absent can resolve an unknown outcome.
 */
import { createRequire } from 'node:module';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { InvalidArgumentError } from '../errors.js';
import type { ObjectMeta } from './object-store.js';
import { type Failure, type RawCall, RemoteObjectStore, type RemoteStoreOptions, isNetworkError, statusOf } from './remote.js';

// Loaded on first use: the SDK costs startup time that local-only sessions should not pay.
const require = createRequire(import.meta.url);
const sdk = (): typeof import('@azure/storage-blob') => require('@azure/storage-blob') as typeof import('@azure/storage-blob');

export interface AzureLocation {
  account: string | null;
  container: string;
  /** Key prefix of the table inside the container, no leading or trailing `/`. */
  prefix: string;
  /** The URL as given (for messages). */
  url: string;
}

/** `abfss://container@account.dfs.core.windows.net/path`, `abfs://…`, `wasbs://container@account.blob.core.windows.net/path`, `az://container/path`, `azure://container/path`. */
export function parseAzureUrl(url: string): AzureLocation {
  const m = /^(abfss?|wasbs?|az|azure|adl):\/\/([^/]+)(\/.*)?$/i.exec(url);
  if (!m) throw new InvalidArgumentError(`Not an Azure storage URL: ${url}. Use abfss://container@account.dfs.core.windows.net/path or az://container/path.`, { url }, 'FLOE_INVALID_STORAGE_URL');
  const host = m[2]!;
  let container = host;
  let account: string | null = null;
  const at = host.indexOf('@');
  if (at >= 0) {
    container = host.slice(0, at);
    account = host.slice(at + 1).split('.')[0] ?? null;
  } else if (/\.(dfs|blob)\.core\.windows\.net$/i.test(host)) {
    // az://account.dfs.core.windows.net/container/path
    account = host.split('.')[0]!;
    const rest = (m[3] ?? '').split('/').filter(Boolean);
    container = rest.shift() ?? '';
    return { account, container, prefix: rest.join('/'), url };
  }
  if (!container) throw new InvalidArgumentError(`Azure URL ${url} names no container.`, { url }, 'FLOE_INVALID_STORAGE_URL');
  const prefix = (m[3] ?? '').split('/').filter(Boolean).join('/');
  return { account, container, prefix, url };
}

/** Options as delta-rs / object_store name them (lower case), falling back to the environment. */
function opt(options: Record<string, string>, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = options[n] ?? options[n.toUpperCase()] ?? process.env[n.toUpperCase()];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

function connectionStringValue(cs: string, key: string): string | undefined {
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).toLowerCase() === key.toLowerCase()) return part.slice(eq + 1);
  }
  return undefined;
}

export class AzureBlobStore extends RemoteObjectStore {
  readonly root: string;
  protected readonly identity: string;
  private readonly container: ContainerClient;
  private readonly prefix: string;

  constructor(loc: AzureLocation, storageOptions: Record<string, string> = {}, options: RemoteStoreOptions = {}) {
    super(options);
    this.prefix = loc.prefix;
    const pipeline = { retryOptions: { maxTries: 1 } };
    const cs = opt(storageOptions, 'azure_storage_connection_string');
    const csAccount = cs ? connectionStringValue(cs, 'AccountName') : undefined;
    const account = loc.account ?? opt(storageOptions, 'azure_storage_account_name') ?? csAccount;
    const key = opt(storageOptions, 'azure_storage_account_key', 'azure_storage_access_key');
    const sas = opt(storageOptions, 'azure_storage_sas_token', 'azure_storage_sas_key');
    const endpoint = opt(storageOptions, 'azure_storage_endpoint', 'azure_endpoint');
    let service: BlobServiceClient;
    if (cs && (!loc.account || !csAccount || csAccount === loc.account)) {
      service = sdk().BlobServiceClient.fromConnectionString(cs, pipeline);
    } else {
      if (!account) throw new InvalidArgumentError(`No Azure storage account for ${loc.url}: use abfss://container@account.dfs.core.windows.net/…, or set AZURE_STORAGE_ACCOUNT_NAME (or storageOptions.azure_storage_account_name), or AZURE_STORAGE_CONNECTION_STRING.`, { url: loc.url }, 'FLOE_STORAGE_CREDENTIALS');
      const base = (endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, '');
      if (key) service = new (sdk().BlobServiceClient)(base, new (sdk().StorageSharedKeyCredential)(account, key), pipeline);
      else if (sas) service = new (sdk().BlobServiceClient)(`${base}?${sas.replace(/^\?/, '')}`, undefined, pipeline);
      else {
        throw new InvalidArgumentError(`No Azure credentials for ${loc.url}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_KEY, or AZURE_STORAGE_SAS_TOKEN (or the same names, lower case, in storageOptions). Azure AD (DefaultAzureCredential) is not built in: use a SAS token from \`az storage container generate-sas --as-user\`.`, { url: loc.url }, 'FLOE_STORAGE_CREDENTIALS');
      }
    }
    this.container = service.getContainerClient(loc.container);
    const tail = loc.prefix ? `/${loc.prefix}` : '';
    this.root = account ? `abfss://${loc.container}@${account}.dfs.core.windows.net${tail}` : `az://${loc.container}${tail}`;
    this.identity = `${service.url}|${loc.container}|${loc.prefix}`;
  }

  private k(key: string): string {
    return this.prefix ? (key ? `${this.prefix}/${key}` : this.prefix) : key;
  }

  private rel(name: string): string {
    return this.prefix ? name.slice(this.prefix.length + 1) : name;
  }

  protected classify(e: unknown): Failure {
    const s = statusOf(e);
    const code = (e as { code?: string; details?: { errorCode?: string } })?.details?.errorCode ?? (e as { code?: string })?.code;
    if (s === 404 || code === 'BlobNotFound') return 'notFound';
    if (s === 409 || s === 412 || code === 'BlobAlreadyExists') return 'exists';
    if (s === 429 || s === 503) return 'throttled';
    if (s !== undefined && s >= 500) return 'transient';
    if (s === 408) return 'transient';
    if (isNetworkError(e)) return 'transient';
    return s === undefined && !(e instanceof Error && /Auth|credential|Signature/i.test(e.message)) ? 'transient' : 'fatal';
  }

  protected async rawGet(key: string, range: [number, number] | null, c: RawCall): Promise<Uint8Array> {
    const blob = this.container.getBlobClient(this.k(key));
    if (!range) return blob.downloadToBuffer(0, undefined, { abortSignal: c.signal, concurrency: 1 });
    const props = range[1] - range[0];
    const r = await blob.download(range[0], props, { abortSignal: c.signal });
    return streamToBuffer(r.readableStreamBody!);
  }

  protected async rawPut(key: string, data: Uint8Array, ifAbsent: boolean, c: RawCall): Promise<void> {
    await this.container.getBlockBlobClient(this.k(key)).upload(data, data.length, {
      abortSignal: c.signal,
      ...(ifAbsent ? { conditions: { ifNoneMatch: '*' } } : {}),
    });
  }

  protected async rawHead(key: string, c: RawCall): Promise<ObjectMeta | null> {
    try {
      const p = await this.container.getBlobClient(this.k(key)).getProperties({ abortSignal: c.signal });
      return { path: key, size: p.contentLength ?? 0, lastModified: p.lastModified?.getTime() ?? 0 };
    } catch (e) {
      if (this.classify(e) === 'notFound') return null;
      throw e;
    }
  }

  protected async rawList(prefix: string, delimited: boolean, _startAfter: string | undefined, c: RawCall): Promise<ObjectMeta[]> {
    const full = this.k(prefix);
    const listPrefix = this.prefix && !prefix ? `${this.prefix}/` : full;
    const out: ObjectMeta[] = [];
    // includeMetadata: ADLS Gen2 (hierarchical namespace) lists folders as empty blobs marked hdi_isfolder.
    const iter = delimited ? this.container.listBlobsByHierarchy('/', { prefix: listPrefix, includeMetadata: true, abortSignal: c.signal }) : this.container.listBlobsFlat({ prefix: listPrefix, includeMetadata: true, abortSignal: c.signal });
    for await (const item of iter) {
      if ((item as { kind?: string }).kind === 'prefix') continue;
      const b = item as { name: string; metadata?: Record<string, string>; properties: { contentLength?: number; lastModified?: Date } };
      if (b.metadata?.hdi_isfolder === 'true') continue;
      out.push({ path: this.rel(b.name), size: b.properties.contentLength ?? 0, lastModified: b.properties.lastModified?.getTime() ?? 0 });
    }
    return out;
  }

  protected async rawDelete(key: string, c: RawCall): Promise<void> {
    await this.container.getBlobClient(this.k(key)).deleteIfExists({ abortSignal: c.signal });
  }

  protected async rawDownload(key: string, file: string, c: RawCall): Promise<{ mtime?: number }> {
    const r = await this.container.getBlobClient(this.k(key)).downloadToFile(file, 0, undefined, { abortSignal: c.signal });
    return { mtime: r.lastModified?.getTime() };
  }

  protected async rawUpload(key: string, file: string, _size: number, c: RawCall): Promise<void> {
    await this.container.getBlockBlobClient(this.k(key)).uploadFile(file, {
      abortSignal: c.signal,
      blockSize: 8 * 1024 * 1024,
      maxSingleShotSize: 32 * 1024 * 1024,
      concurrency: 4,
    });
  }

  /** Creates the container when it does not exist (tests, first use of an emulator). */
  async ensureContainer(): Promise<void> {
    await this.container.createIfNotExists();
  }
}

async function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const ch of s) chunks.push(typeof ch === 'string' ? Buffer.from(ch) : (ch as Buffer));
  return Buffer.concat(chunks);
}
