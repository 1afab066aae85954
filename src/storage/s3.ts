/**
 * Amazon S3 and S3-compatible stores. put-if-absent is a conditional PutObject (`If-None-Match: *`,
 * 412 when the key exists). Before the first one, the store checks once per bucket that the service
 * really refuses a second create (some S3-compatible servers ignore the header); a service that does
 * not is refused for writing unless the user opts into single-writer mode
 * (`aws_s3_allow_unsafe_rename`, as delta-rs names it). Large files go up as multipart uploads.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { FloeError, InvalidArgumentError, ObjectExistsError } from '../errors.js';
import type { ObjectMeta } from './object-store.js';
import { type Failure, type RawCall, RemoteObjectStore, type RemoteStoreOptions, isNetworkError, statusOf } from './remote.js';

// Loaded on first use: the SDK costs startup time that local-only sessions should not pay.
const require = createRequire(import.meta.url);
const sdk = (): typeof import('@aws-sdk/client-s3') => require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');

export interface S3Location {
  bucket: string;
  prefix: string;
  url: string;
}

/** `s3://bucket/path`, `s3a://bucket/path`. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3a?:\/\/([^/]+)(\/.*)?$/i.exec(url);
  if (!m) throw new InvalidArgumentError(`Not an S3 URL: ${url}. Use s3://bucket/path.`, { url }, 'FLOE_INVALID_STORAGE_URL');
  return { bucket: m[1]!, prefix: (m[2] ?? '').split('/').filter(Boolean).join('/'), url };
}

function opt(options: Record<string, string>, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = options[n] ?? options[n.toUpperCase()] ?? process.env[n.toUpperCase()];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

const PART_SIZE = 8 * 1024 * 1024;
const SINGLE_PUT_MAX = 16 * 1024 * 1024;

/** Per endpoint+bucket: does the service refuse a second conditional create? */
const conditionalSupport = new Map<string, Promise<boolean>>();

export class S3Store extends RemoteObjectStore {
  readonly root: string;
  protected readonly identity: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly allowUnsafe: boolean;

  constructor(loc: S3Location, storageOptions: Record<string, string> = {}, options: RemoteStoreOptions = {}) {
    super(options);
    this.bucket = loc.bucket;
    this.prefix = loc.prefix;
    const endpoint = opt(storageOptions, 'aws_endpoint_url', 'aws_endpoint', 'aws_endpoint_url_s3');
    const region = opt(storageOptions, 'aws_region', 'aws_default_region') ?? 'us-east-1';
    const keyId = opt(storageOptions, 'aws_access_key_id');
    const secret = opt(storageOptions, 'aws_secret_access_key');
    const token = opt(storageOptions, 'aws_session_token', 'aws_token');
    const virtual = opt(storageOptions, 'aws_virtual_hosted_style_request');
    const pathStyle = opt(storageOptions, 'aws_force_path_style');
    this.allowUnsafe = /^(true|1|yes)$/i.test(opt(storageOptions, 'aws_s3_allow_unsafe_rename') ?? '');
    const config: S3ClientConfig = {
      region,
      maxAttempts: 1, // RemoteObjectStore retries
      followRegionRedirects: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Custom endpoints (MinIO, R2, test servers) usually want path-style addressing.
      forcePathStyle: pathStyle !== undefined ? /^(true|1)$/i.test(pathStyle) : endpoint !== undefined && !/^(true|1)$/i.test(virtual ?? ''),
      ...(endpoint ? { endpoint } : {}),
      ...(keyId && secret ? { credentials: { accessKeyId: keyId, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) } } : {}),
    };
    this.client = new (sdk().S3Client)(config);
    this.root = `s3://${loc.bucket}${loc.prefix ? '/' + loc.prefix : ''}`;
    this.identity = `${endpoint ?? 'aws'}|${loc.bucket}|${loc.prefix}`;
  }

  /** Frees the client's connections. */
  close(): void {
    this.client.destroy();
  }

  private k(key: string): string {
    return this.prefix ? (key ? `${this.prefix}/${key}` : this.prefix) : key;
  }

  protected classify(e: unknown): Failure {
    const s = statusOf(e);
    const name = (e as { name?: string })?.name;
    if (s === 404 || name === 'NoSuchKey' || name === 'NotFound') return 'notFound';
    if (s === 412 || name === 'PreconditionFailed') return 'exists';
    if (s === 409 || s === 429 || s === 503 || name === 'SlowDown') return 'throttled'; // 409: a concurrent conditional write, retry
    if (s === 501) return 'fatal';
    if ((s !== undefined && s >= 500) || s === 408) return 'transient';
    if (isNetworkError(e)) return 'transient';
    if (s === undefined && name !== 'CredentialsProviderError') return 'transient';
    return 'fatal';
  }

  /** Does the service refuse a second `If-None-Match: *` create? Checked once per bucket per process. */
  private async conditionalPutWorks(): Promise<boolean> {
    const id = this.identity.split('|').slice(0, 2).join('|');
    let p = conditionalSupport.get(id);
    if (!p) {
      p = (async () => {
        const probe = this.k(`.floe-conditional-put-probe-${randomUUID()}`);
        const put = () => this.client.send(new (sdk().PutObjectCommand)({ Bucket: this.bucket, Key: probe, Body: 'probe', IfNoneMatch: '*' }));
        try {
          await put();
          try {
            await put();
            return false; // the second create succeeded: the header is ignored
          } catch (e) {
            const s = statusOf(e);
            if (s === 412 || s === 409) return true;
            if (s === 501 || s === 400) return false;
            throw e;
          }
        } finally {
          await this.client.send(new (sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: probe })).catch(() => undefined);
        }
      })();
      conditionalSupport.set(id, p);
      p.catch(() => conditionalSupport.delete(id));
    }
    return p;
  }

  protected async rawGet(key: string, range: [number, number] | null, c: RawCall): Promise<Uint8Array> {
    const r = await this.client.send(new (sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.k(key), ...(range ? { Range: `bytes=${range[0]}-${range[1] - 1}` } : {}) }), { abortSignal: c.signal });
    return r.Body!.transformToByteArray();
  }

  protected async rawPut(key: string, data: Uint8Array, ifAbsent: boolean, c: RawCall): Promise<void> {
    if (ifAbsent && !(await this.conditionalPutWorks())) {
      if (!this.allowUnsafe) {
        throw new FloeError('FLOE_STORAGE_NO_ATOMIC_PUT', `The S3 service behind ${this.root} does not refuse a second conditional create (If-None-Match: *), so concurrent writers could overwrite each other's commits. Use a service that supports conditional writes, or, if only one writer ever writes this table, opt into single-writer mode with storageOptions.aws_s3_allow_unsafe_rename = 'true' (or AWS_S3_ALLOW_UNSAFE_RENAME=true).`, { root: this.root });
      }
      // Single-writer mode: check, then write (not atomic; the user vouched there is one writer).
      if (await this.rawHead(key, c)) throw new ObjectExistsError(`${this.root}/${key}`);
      ifAbsent = false;
    }
    await this.client.send(new (sdk().PutObjectCommand)({ Bucket: this.bucket, Key: this.k(key), Body: data, ...(ifAbsent ? { IfNoneMatch: '*' } : {}) }), { abortSignal: c.signal });
  }

  protected async rawHead(key: string, c: RawCall): Promise<ObjectMeta | null> {
    try {
      const r = await this.client.send(new (sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.k(key) }), { abortSignal: c.signal });
      return { path: key, size: r.ContentLength ?? 0, lastModified: r.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (this.classify(e) === 'notFound') return null;
      throw e;
    }
  }

  protected async rawList(prefix: string, delimited: boolean, startAfter: string | undefined, c: RawCall): Promise<ObjectMeta[]> {
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const out: ObjectMeta[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new (sdk().ListObjectsV2Command)({
        Bucket: this.bucket,
        Prefix: full,
        ...(delimited ? { Delimiter: '/' } : {}),
        ...(token ? { ContinuationToken: token } : startAfter !== undefined ? { StartAfter: this.k(startAfter) } : {}),
      }), { abortSignal: c.signal });
      for (const o of r.Contents ?? []) out.push({ path: o.Key!.slice(strip), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  protected async rawDelete(key: string, c: RawCall): Promise<void> {
    await this.client.send(new (sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: this.k(key) }), { abortSignal: c.signal });
  }

  protected async rawDownload(key: string, file: string, c: RawCall): Promise<{ mtime?: number }> {
    const r = await this.client.send(new (sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.k(key) }), { abortSignal: c.signal });
    await pipeline(r.Body as Readable, createWriteStream(file), { signal: c.signal });
    return { mtime: r.LastModified?.getTime() };
  }

  protected async rawUpload(key: string, file: string, size: number, c: RawCall): Promise<void> {
    const Key = this.k(key);
    if (size <= SINGLE_PUT_MAX) {
      await this.client.send(new (sdk().PutObjectCommand)({ Bucket: this.bucket, Key, Body: await fs.readFile(file), ContentLength: size }), { abortSignal: c.signal });
      return;
    }
    const { UploadId } = await this.client.send(new (sdk().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key }), { abortSignal: c.signal });
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      const fh = await fs.open(file, 'r');
      try {
        for (let off = 0, n = 1; off < size; off += PART_SIZE, n++) {
          const len = Math.min(PART_SIZE, size - off);
          const buf = Buffer.alloc(len);
          let got = 0;
          while (got < len) {
            const { bytesRead } = await fh.read(buf, got, len - got, off + got);
            if (!bytesRead) break;
            got += bytesRead;
          }
          const r = await this.client.send(new (sdk().UploadPartCommand)({ Bucket: this.bucket, Key, UploadId, PartNumber: n, Body: buf, ContentLength: len }), { abortSignal: c.signal });
          parts.push({ ETag: r.ETag!, PartNumber: n });
        }
      } finally {
        await fh.close();
      }
      await this.client.send(new (sdk().CompleteMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal: c.signal });
    } catch (e) {
      await this.client.send(new (sdk().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId })).catch(() => undefined);
      throw e;
    }
  }
}
