/**
 * Azure Blob Storage / ADLS Gen2 (through the Blob endpoint, which serves hierarchical-namespace
 * accounts too). put-if-absent is an upload with `If-None-Match: *` (409 BlobAlreadyExists when the
 * blob exists); large files go up as staged blocks; ranged reads use `x-ms-range`. The SDK's own
 * retries are off: RemoteObjectStore retries, so that put-if-absent can resolve an unknown outcome.
 */
import { createRequire } from 'node:module';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { FloeError, InvalidArgumentError } from '../errors.js';
import type { ObjectMeta } from './object-store.js';
import { type Failure, type RawCall, RemoteObjectStore, type RemoteStoreOptions, isNetworkError, statusOf } from './remote.js';

// Loaded on first use: the SDK costs startup time that local-only sessions should not pay.
const require = createRequire(import.meta.url);
const sdk = (): typeof import('@azure/storage-blob') => require('@azure/storage-blob') as typeof import('@azure/storage-blob');
// Azure AD credentials (@azure/identity and MSAL) load only when a store authenticates with Azure AD.
const identity = (): typeof import('@azure/identity') => require('@azure/identity') as typeof import('@azure/identity');

export type { TokenCredential };

/** Settings of the TypeScript API that are not strings (FloeOptions passes them through). */
export interface AzureAuthOptions {
  /** An Azure AD credential (any `TokenCredential`, e.g. from `@azure/identity`); takes precedence over every other setting. */
  azureCredential?: TokenCredential;
}

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

  /** Which kind of credential the store authenticates with (for messages and tests): `connection string`, `account key`, `SAS token`, or an Azure AD source. */
  readonly authSource: string;

  constructor(loc: AzureLocation, storageOptions: Record<string, string> = {}, options: RemoteStoreOptions = {}, auth: AzureAuthOptions = {}) {
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
    const flag = (...names: string[]): boolean => /^(true|1|yes)$/i.test(opt(storageOptions, ...names) ?? '');
    const useCli = flag('azure_use_azure_cli', 'use_azure_cli');
    const useDefault = flag('azure_use_default_credential', 'use_default_credential');
    const bearer = opt(storageOptions, 'azure_storage_token', 'azure_storage_bearer_token', 'bearer_token');
    const clientId = opt(storageOptions, 'azure_storage_client_id', 'azure_client_id');
    const clientSecret = opt(storageOptions, 'azure_storage_client_secret', 'azure_client_secret');
    const tenantId = opt(storageOptions, 'azure_storage_tenant_id', 'azure_tenant_id', 'azure_authority_id');
    const ad = auth.azureCredential ? 'session' : useCli ? 'cli' : useDefault ? 'default' : null;
    if (!ad && cs && (!loc.account || !csAccount || csAccount === loc.account)) {
      service = sdk().BlobServiceClient.fromConnectionString(cs, pipeline);
      this.authSource = 'connection string';
    } else {
      if (!account) throw new InvalidArgumentError(`No Azure storage account for ${loc.url}: use abfss://container@account.dfs.core.windows.net/…, or set AZURE_STORAGE_ACCOUNT_NAME (or storageOptions.azure_storage_account_name), or AZURE_STORAGE_CONNECTION_STRING.`, { url: loc.url }, 'FLOE_STORAGE_CREDENTIALS');
      const base = (endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, '');
      if (!ad && key) {
        service = new (sdk().BlobServiceClient)(base, new (sdk().StorageSharedKeyCredential)(account, key), pipeline);
        this.authSource = 'account key';
      } else if (!ad && sas) {
        service = new (sdk().BlobServiceClient)(`${base}?${sas.replace(/^\?/, '')}`, undefined, pipeline);
        this.authSource = 'SAS token';
      } else {
        const { credential, source } = azureAdCredential(loc.url, { ad, session: auth.azureCredential, bearer, clientId, clientSecret, tenantId });
        service = new (sdk().BlobServiceClient)(base, credential, pipeline);
        this.authSource = source;
      }
    }
    this.container = service.getContainerClient(loc.container);
    const tail = loc.prefix ? `/${loc.prefix}` : '';
    this.root = account ? `abfss://${loc.container}@${account}.dfs.core.windows.net${tail}` : `az://${loc.container}${tail}`;
    this.identity = `${service.url}|${loc.container}|${loc.prefix}`;
  }

  protected override fatalHint(): string {
    if (/^(connection string|account key|SAS token)$/.test(this.authSource)) return super.fatalHint();
    return `Check the URL, and that the Azure AD identity (${this.authSource}) has a Storage Blob Data role on the account or container (Reader to read, Contributor to write).`;
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

/** What to tell the user to set when Azure AD gives no token. */
const AD_HELP = 'Give the store credentials one of these ways: an account key (AZURE_STORAGE_ACCOUNT_KEY), a SAS token (AZURE_STORAGE_SAS_TOKEN) or a connection string (AZURE_STORAGE_CONNECTION_STRING); or, for Azure AD (the identity needs a Storage Blob Data role on the account), a service principal (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE), a managed identity (on Azure), or `az login` (storageOptions.azure_use_azure_cli = \'true\' to use only the Azure CLI); or pass a TokenCredential as FloeOptions.azureCredential.';

/**
 * The Azure AD credential for a store: the session's own TokenCredential, a fixed bearer token, a
 * service principal, the Azure CLI, or DefaultAzureCredential (environment, workload identity,
 * managed identity, developer tools), wrapped so that a failure to get a token is a typed error
 * naming the sources tried.
 */
function azureAdCredential(url: string, o: { ad: 'session' | 'cli' | 'default' | null; session?: TokenCredential; bearer?: string; clientId?: string; clientSecret?: string; tenantId?: string }): { credential: TokenCredential; source: string } {
  let inner: TokenCredential;
  let source: string;
  try {
    if (o.ad === 'session' && o.session) {
      inner = o.session;
      source = `azureCredential (${o.session.constructor?.name ?? 'TokenCredential'})`;
    } else if (o.ad === 'cli') {
      inner = new (identity().AzureCliCredential)(o.tenantId ? { tenantId: o.tenantId } : {});
      source = 'AzureCliCredential';
    } else if (!o.ad && o.bearer) {
      const token = o.bearer;
      inner = { getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) };
      source = 'bearer token (azure_storage_token)';
    } else if (!o.ad && o.clientId && o.clientSecret && o.tenantId) {
      inner = new (identity().ClientSecretCredential)(o.tenantId, o.clientId, o.clientSecret);
      source = 'ClientSecretCredential';
    } else {
      inner = new (identity().DefaultAzureCredential)({
        ...(o.clientId ? { managedIdentityClientId: o.clientId, workloadIdentityClientId: o.clientId } : {}),
        ...(o.tenantId ? { tenantId: o.tenantId } : {}),
      });
      source = 'DefaultAzureCredential';
    }
  } catch (e) {
    throw new FloeError('FLOE_STORAGE_CREDENTIALS', `Cannot set up Azure AD authentication for ${url}: ${e instanceof Error ? e.message : String(e)}. ${AD_HELP}`, { url });
  }
  const what = source;
  const credential: TokenCredential = {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      let token: AccessToken | null;
      try {
        token = await inner.getToken(scopes, options);
      } catch (e) {
        throw new FloeError('FLOE_STORAGE_CREDENTIALS', `Azure AD authentication for ${url} failed: ${what} got no token. Tried: ${triedSources(e)}. ${AD_HELP}`, { url, credential: what }, { cause: e });
      }
      if (!token) throw new FloeError('FLOE_STORAGE_CREDENTIALS', `Azure AD authentication for ${url} failed: ${what} returned no token. ${AD_HELP}`, { url, credential: what });
      return token;
    },
  };
  return { credential, source };
}

/** One line per credential source an identity error names (DefaultAzureCredential aggregates one error per source). */
function triedSources(e: unknown): string {
  const line = (x: unknown): string => {
    const name = (x as { name?: string })?.name;
    const text = (x instanceof Error ? x.message : String(x)).split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
    const short = text.length > 240 ? `${text.slice(0, 240)}…` : text;
    return name && !short.startsWith(name) && name !== 'Error' ? `${name}: ${short}` : short;
  };
  const errors = (e as { errors?: unknown[] })?.errors;
  return Array.isArray(errors) && errors.length ? errors.map(line).join('; ') : line(e);
}

async function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const ch of s) chunks.push(typeof ch === 'string' ? Buffer.from(ch) : (ch as Buffer));
  return Buffer.concat(chunks);
}
