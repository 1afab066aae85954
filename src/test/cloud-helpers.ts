/**
 * Cloud test infrastructure: Azurite (the Azure Storage emulator, a dev dependency) started on
 * loopback with a random port and in-memory storage, a small S3 server (node:http) implementing the
 * subset floe uses, and a fault-injecting HTTP proxy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as http from 'node:http';
import * as path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);

export const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's published development key (not a secret: the emulator's documented well-known key).
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export function azuriteConnectionString(port: number): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;
}

export interface Azurite {
  port: number;
  connectionString: string;
  stop(): Promise<void>;
}

/**
 * Starts Azurite's Blob service on 127.0.0.1 (random port, in memory) with the given containers
 * created, or returns null when it is not installed.
 */
export async function startAzurite(containers: string[] = []): Promise<Azurite | null> {
  const started = await spawnAzurite([], 'http', 1024, 'Azurite tests');
  if (!started) return null;
  const { port, stop } = started;
  if (containers.length) {
    const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
    const service = BlobServiceClient.fromConnectionString(azuriteConnectionString(port));
    for (const c of containers) await service.getContainerClient(c).createIfNotExists();
  }
  return { port, connectionString: azuriteConnectionString(port), stop };
}

/**
 * Spawns Azurite's Blob service on 127.0.0.1 (random port, in memory) with `args`, and waits until it
 * listens; null (with a printed notice) when the dev dependency is not installed.
 */
async function spawnAzurite(args: string[], scheme: 'http' | 'https', extentMemoryMb: number, what: string): Promise<{ port: number; stop(): Promise<void> } | null> {
  let main: string;
  try {
    main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  } catch {
    console.log(`# skipping ${what}: the azurite dev dependency is not installed (npm install)`);
    return null;
  }
  const child: ChildProcess = spawn(process.execPath, [main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--extentMemoryLimit', String(extentMemoryMb), '--skipApiVersionCheck', '--loose', '--disableTelemetry', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const listening = new RegExp(`listens on ${scheme}://127\\.0\\.0\\.1:(\\d+)`);
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`Azurite did not start: ${buf}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = listening.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (buf += d.toString()));
    child.on('exit', (code) => reject(new Error(`Azurite exited (${code}): ${buf}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  return { port, stop };
}

// ---------------------------------------------------------------------------------------------
// A small S3 server
// ---------------------------------------------------------------------------------------------

interface S3Object {
  data: Buffer;
  etag: string;
  lastModified: Date;
}

export interface S3Server {
  port: number;
  endpoint: string;
  objects: Map<string, S3Object>;
  /** Counts of requests by kind (`PUT-conditional-refused`, …), for assertions. */
  stats: Map<string, number>;
  stop(): Promise<void>;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function s3Error(res: http.ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`);
}

/**
 * Path-style S3 (`/bucket/key`), in memory: GET (with Range), HEAD, PUT (with `If-None-Match: *`:
 * 412 when the key exists, decided atomically in this single-threaded server), DELETE,
 * ListObjectsV2 (prefix, start-after, delimiter, continuation, max-keys) and multipart uploads.
 * `ignoreConditional` makes it behave like a store without conditional writes.
 */
export async function startS3Server(options: { ignoreConditional?: boolean; maxKeys?: number } = {}): Promise<S3Server> {
  const objects = new Map<string, S3Object>();
  const uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
  const stats = new Map<string, number>();
  const count = (k: string): void => void stats.set(k, (stats.get(k) ?? 0) + 1);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const url = new URL(req.url!, 'http://localhost');
        const parts = url.pathname.split('/').slice(1);
        const bucket = decodeURIComponent(parts.shift() ?? '');
        const key = parts.map(decodeURIComponent).join('/');
        const body = Buffer.concat(chunks);
        const id = `${bucket}/${key}`;
        const q = url.searchParams;
        if (req.method === 'GET' && !key && q.get('list-type') === '2') {
          count('LIST');
          const prefix = q.get('prefix') ?? '';
          const delimiter = q.get('delimiter') ?? '';
          const startAfter = q.get('continuation-token') ?? q.get('start-after') ?? '';
          const max = Math.min(Number(q.get('max-keys') ?? 1000), options.maxKeys ?? 1000);
          const keys = [...objects.keys()].filter((k) => k.startsWith(`${bucket}/`)).map((k) => k.slice(bucket.length + 1)).filter((k) => k.startsWith(prefix) && k > startAfter).sort();
          const contents: string[] = [];
          const prefixes = new Set<string>();
          let truncated = false;
          let last = '';
          for (const k of keys) {
            if (contents.length + prefixes.size >= max) {
              truncated = true;
              break;
            }
            last = k;
            if (delimiter) {
              const i = k.indexOf(delimiter, prefix.length);
              if (i >= 0) {
                prefixes.add(k.slice(0, i + 1));
                continue;
              }
            }
            const o = objects.get(`${bucket}/${k}`)!;
            contents.push(`<Contents><Key>${xmlEscape(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>"${o.etag}"</ETag><Size>${o.data.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
          }
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${contents.length + prefixes.size}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${truncated ? `<NextContinuationToken>${xmlEscape(last)}</NextContinuationToken>` : ''}${contents.join('')}${[...prefixes].map((p) => `<CommonPrefixes><Prefix>${xmlEscape(p)}</Prefix></CommonPrefixes>`).join('')}</ListBucketResult>`);
          return;
        }
        if (req.method === 'POST' && q.has('uploads')) {
          count('MPU-CREATE');
          const uploadId = randomUUID();
          uploads.set(uploadId, { key: id, parts: new Map() });
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end(`<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`);
          return;
        }
        if (req.method === 'PUT' && q.has('uploadId')) {
          count('MPU-PART');
          const u = uploads.get(q.get('uploadId')!);
          if (!u) return s3Error(res, 404, 'NoSuchUpload', 'no such upload');
          u.parts.set(Number(q.get('partNumber')), body);
          res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"` });
          res.end();
          return;
        }
        if (req.method === 'POST' && q.has('uploadId')) {
          count('MPU-COMPLETE');
          const u = uploads.get(q.get('uploadId')!);
          if (!u) return s3Error(res, 404, 'NoSuchUpload', 'no such upload');
          const nums = [...body.toString().matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
          const data = Buffer.concat(nums.map((n) => u.parts.get(n) ?? Buffer.alloc(0)));
          const etag = `${createHash('md5').update(data).digest('hex')}-${nums.length}`;
          objects.set(u.key, { data, etag, lastModified: new Date() });
          uploads.delete(q.get('uploadId')!);
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end(`<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>"${etag}"</ETag></CompleteMultipartUploadResult>`);
          return;
        }
        if (req.method === 'DELETE' && q.has('uploadId')) {
          uploads.delete(q.get('uploadId')!);
          res.writeHead(204);
          res.end();
          return;
        }
        if (req.method === 'PUT') {
          if (req.headers['if-none-match'] === '*' && !options.ignoreConditional) {
            if (objects.has(id)) {
              count('PUT-conditional-refused');
              return s3Error(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
            }
            count('PUT-conditional');
          } else count('PUT');
          const etag = createHash('md5').update(body).digest('hex');
          objects.set(id, { data: body, etag, lastModified: new Date() });
          res.writeHead(200, { etag: `"${etag}"` });
          res.end();
          return;
        }
        if (req.method === 'GET' || req.method === 'HEAD') {
          count(req.method);
          const o = objects.get(id);
          if (!o) {
            if (req.method === 'HEAD') {
              res.writeHead(404);
              res.end();
              return;
            }
            return s3Error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
          }
          const headers: Record<string, string> = { etag: `"${o.etag}"`, 'last-modified': o.lastModified.toUTCString(), 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
          const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
          if (range && req.method === 'GET') {
            const start = Number(range[1]);
            const end = range[2] ? Math.min(Number(range[2]), o.data.length - 1) : o.data.length - 1;
            const slice = o.data.subarray(start, end + 1);
            res.writeHead(206, { ...headers, 'content-length': String(slice.length), 'content-range': `bytes ${start}-${end}/${o.data.length}` });
            res.end(slice);
            return;
          }
          res.writeHead(200, { ...headers, 'content-length': String(o.data.length) });
          res.end(req.method === 'GET' ? o.data : undefined);
          return;
        }
        if (req.method === 'DELETE') {
          count('DELETE');
          objects.delete(id);
          res.writeHead(204);
          res.end();
          return;
        }
        s3Error(res, 501, 'NotImplemented', `${req.method} ${req.url} is not implemented by the test server`);
      } catch (e) {
        s3Error(res, 500, 'InternalError', String(e));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    objects,
    stats,
    stop: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------------------------

export interface FaultProxy {
  port: number;
  /** Requests seen and faults injected. */
  counts: { requests: number; exposed: number; failed: number; dropped: number; hung: number };
  /** Fault rates while enabled (0..1 each). */
  setRates(r: { fail?: number; drop?: number; hang?: number }): void;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of a storage service that, at random: answers 503 without forwarding
 * (`fail`), forwards the request and then cuts the connection before answering (`drop`: the request
 * took effect but the client cannot know), or forwards and never answers (`hang`: the client times
 * out; the request may or may not take effect).
 */
export async function startFaultProxy(targetPort: number, seed = 1): Promise<FaultProxy> {
  let rates = { fail: 0, drop: 0, hang: 0 };
  const counts = { requests: 0, exposed: 0, failed: 0, dropped: 0, hung: 0 };
  let s = seed >>> 0 || 1;
  const rand = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const hung = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    counts.requests++;
    if (rates.fail + rates.drop + rates.hang > 0) counts.exposed++; // requests sent while faults were on
    const r = rand();
    const fault = r < rates.fail ? 'fail' : r < rates.fail + rates.drop ? 'drop' : r < rates.fail + rates.drop + rates.hang ? 'hang' : null;
    if (fault === 'fail') {
      counts.failed++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml', 'x-ms-error-code': 'ServerBusy' });
      res.end('<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>injected</Message></Error>');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      if (fault === 'drop') {
        counts.dropped++;
        ur.resume();
        ur.on('end', () => res.socket?.destroy());
        return;
      }
      if (fault === 'hang') {
        counts.hung++;
        ur.resume();
        hung.add(res);
        return;
      }
      res.writeHead(ur.statusCode ?? 500, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    counts,
    setRates: (x) => void (rates = { fail: x.fail ?? 0, drop: x.drop ?? 0, hang: x.hang ?? 0 }),
    stop: () => new Promise<void>((r) => {
      for (const h of hung) h.socket?.destroy();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Azure AD (OAuth) test infrastructure: Azurite over HTTPS with `--oauth basic`, a self-signed
// certificate made with openssl at test time, unsigned JWTs of the shape Azurite checks, and a
// managed-identity token endpoint (App Service style) that DefaultAzureCredential can use.
// ---------------------------------------------------------------------------------------------

/** A self-signed certificate for 127.0.0.1 / localhost (PEM files in `dir`), or null when openssl is missing. */
export async function makeSelfSignedCert(dir: string): Promise<{ cert: string; key: string } | null> {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    console.log(`# skipping Azure AD tests: openssl could not make a certificate (${r.error?.message ?? r.stderr})`);
    return null;
  }
  return { cert, key };
}

export interface AzuriteHttps {
  port: number;
  /** `https://127.0.0.1:PORT/devstoreaccount1`: the Blob endpoint (azure_storage_endpoint). */
  endpoint: string;
  stop(): Promise<void>;
}

/** Starts Azurite's Blob service over HTTPS with basic OAuth (bearer tokens checked for issuer, audience and lifetime), or null when it is not installed. */
export async function startAzuriteOAuth(cert: { cert: string; key: string }): Promise<AzuriteHttps | null> {
  const started = await spawnAzurite(['--oauth', 'basic', '--cert', cert.cert, '--key', cert.key], 'https', 256, 'Azurite OAuth tests');
  if (!started) return null;
  return { port: started.port, endpoint: `https://127.0.0.1:${started.port}/${AZURITE_ACCOUNT}`, stop: started.stop };
}

/** An unsigned JWT (Azurite's basic OAuth decodes it without checking the signature). Defaults: a storage audience, an Azure AD issuer, valid for an hour. */
export function fakeAadJwt(claims: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = { aud: 'https://storage.azure.com', iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000001/', iat: now - 60, nbf: now - 60, exp: now + 3600, oid: '00000000-0000-0000-0000-0000000000aa', tid: '00000000-0000-0000-0000-000000000001', ...claims };
  return `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(body)}.${Buffer.from('not-a-signature').toString('base64url')}`;
}

export interface IdentityEndpoint {
  /** `http://127.0.0.1:PORT/msi/token`: the IDENTITY_ENDPOINT value. */
  url: string;
  /** The IDENTITY_HEADER secret the endpoint requires. */
  secret: string;
  /** Requests seen: the `resource` asked for and whether the secret header matched. */
  requests: { resource: string | null; secretOk: boolean }[];
  /** What the next requests get: a token with these claims, or an HTTP error. */
  respond: { claims?: Record<string, unknown>; status?: number };
  stop(): Promise<void>;
}

/** A managed-identity token endpoint as App Service exposes it (GET ?resource=…&api-version=2019-08-01 with header X-IDENTITY-HEADER). */
export async function startIdentityEndpoint(): Promise<IdentityEndpoint> {
  const secret = randomUUID();
  const ep: Omit<IdentityEndpoint, 'url' | 'stop'> = { secret, requests: [], respond: {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://localhost');
    const secretOk = req.headers['x-identity-header'] === secret;
    const resource = url.searchParams.get('resource');
    ep.requests.push({ resource, secretOk });
    const status = !secretOk ? 401 : ep.respond.status ?? 200;
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_request', error_description: `test endpoint answered ${status}` }));
      return;
    }
    const expires = Math.floor(Date.now() / 1000) + 3600;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: fakeAadJwt(ep.respond.claims), expires_on: String(expires), resource, token_type: 'Bearer', client_id: '00000000-0000-0000-0000-0000000000cc' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(ep, {
    url: `http://127.0.0.1:${port}/msi/token`,
    stop: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  });
}
