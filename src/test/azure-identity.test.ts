/**
 * Azure AD authentication, end to end with no network: Azurite over HTTPS with `--oauth basic`
 * (a self-signed certificate made here with openssl), and DefaultAzureCredential getting its token
 * from an in-test managed-identity endpoint (App Service style IDENTITY_ENDPOINT + IDENTITY_HEADER).
 * The client side runs in child processes (the CLI, or a small script against the API) with
 * NODE_EXTRA_CA_CERTS naming the certificate. Azurite's basic OAuth checks a token's issuer,
 * audience and lifetime (not its signature), so a token for the wrong audience is refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FloeError } from '../errors.js';
import { AzureBlobStore, parseAzureUrl } from '../storage/azure.js';
import { openStore } from '../storage/open.js';
import { AZURITE_ACCOUNT, type AzuriteHttps, type IdentityEndpoint, fakeAadJwt, makeSelfSignedCert, startAzuriteOAuth, startIdentityEndpoint } from './cloud-helpers.js';
import { tempDir } from './helpers.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(DIST, 'cli', 'main.js');
const INDEX = pathToFileURL(path.join(DIST, 'index.js')).href;

let azurite: AzuriteHttps | null = null;
let mi: IdentityEndpoint | null = null;
let certFile = '';
let work = '';

before(async () => {
  work = await tempDir('floe-aad-');
  const cert = await makeSelfSignedCert(work);
  if (!cert) return;
  certFile = cert.cert;
  azurite = await startAzuriteOAuth(cert);
  mi = await startIdentityEndpoint();
});

after(async () => {
  await azurite?.stop();
  await mi?.stop();
});

/** The environment of a client process: no Azure or AWS settings from this one, Azurite's certificate trusted. */
function clientEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(AZURE_|AWS_|IDENTITY_|MSI_|IMDS_|FLOE_)/.test(k)) env[k] = v;
  env.NODE_EXTRA_CA_CERTS = certFile;
  env.FLOE_CACHE_DIR = path.join(work, 'cache');
  env.HOME = work; // no Azure CLI / VS Code sign-in of the user running the tests
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Managed identity through DefaultAzureCredential: account name and endpoint only, no key, SAS or connection string. */
function miEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return clientEnv({ AZURE_STORAGE_ACCOUNT_NAME: AZURITE_ACCOUNT, AZURE_STORAGE_ENDPOINT: azurite!.endpoint, IDENTITY_ENDPOINT: mi!.url, IDENTITY_HEADER: mi!.secret, ...extra });
}

/** Runs node asynchronously (the identity endpoint lives in this process and must keep answering). */
function run(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, cwd: DIST, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** Runs an ES module script (it imports floe as FLOE and the storage SDK through `req`). */
async function script(body: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const file = path.join(work, `s-${Math.random().toString(36).slice(2)}.mjs`);
  await fs.writeFile(file, `import * as FLOE from ${JSON.stringify(INDEX)};\nimport { createRequire } from 'node:module';\nconst req = createRequire(${JSON.stringify(path.join(DIST, 'index.js'))});\n${body}\n`);
  return run([file], env);
}

/** Creates a container with a token from the managed-identity endpoint (DefaultAzureCredential, no floe involved). */
async function createContainer(name: string): Promise<void> {
  const r = await script(`const { BlobServiceClient } = req('@azure/storage-blob'); const { DefaultAzureCredential } = req('@azure/identity');
await new BlobServiceClient(process.env.AZURE_STORAGE_ENDPOINT, new DefaultAzureCredential()).getContainerClient(${JSON.stringify(name)}).createIfNotExists();`, miEnv());
  assert.equal(r.status, 0, r.stderr);
}

test('DefaultAzureCredential with a managed identity: the CLI writes and reads a table on Azurite (OAuth over HTTPS)', async (t) => {
  if (!azurite || !mi) return t.skip('Azurite or openssl unavailable');
  await createContainer('aad');
  mi.requests.length = 0;
  mi.respond = {};
  const csv = path.join(work, 'in.csv');
  await fs.writeFile(csv, 'id,name\n1,ada\n2,grace\n3,linus\n');
  const table = 'az://aad/people';
  const w = await run([CLI, 'write', table, '--from', csv, '--format', 'json'], miEnv());
  assert.equal(w.status, 0, w.stderr);
  const wrote = JSON.parse(w.stdout) as { version: number; numOutputRows: number };
  assert.deepEqual([wrote.version, wrote.numOutputRows], [0, 3]);
  const s = await run([CLI, 'show', table, '--format', 'json'], miEnv());
  assert.equal(s.status, 0, s.stderr);
  const rows = s.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; name: string }).map((r) => `${r.id}:${r.name}`).sort();
  assert.deepEqual(rows, ['1:ada', '2:grace', '3:linus']);
  // The tokens came from the managed-identity endpoint, for Azure Storage, with its secret header.
  assert.ok(mi.requests.length >= 2, `identity endpoint requests: ${mi.requests.length}`);
  assert.ok(mi.requests.every((r) => r.secretOk && r.resource === 'https://storage.azure.com'), JSON.stringify(mi.requests));
});

test('a token Azurite refuses (wrong audience, expired) fails the command; nothing is written', async (t) => {
  if (!azurite || !mi) return t.skip('Azurite or openssl unavailable');
  await createContainer('aad');
  const csv = path.join(work, 'in2.csv');
  await fs.writeFile(csv, 'id\n1\n');
  for (const claims of [{ aud: 'https://management.azure.com' }, { exp: Math.floor(Date.now() / 1000) - 600, nbf: Math.floor(Date.now() / 1000) - 7200 }]) {
    mi.respond = { claims };
    const w = await run([CLI, 'write', `az://aad/refused-${claims.aud ? 'aud' : 'exp'}`, '--from', csv], miEnv());
    assert.equal(w.status, 1, w.stdout);
    assert.match(w.stderr, /HTTP 403 AuthenticationFailed/, w.stderr);
    assert.match(w.stderr, /Azure AD identity \(DefaultAzureCredential\) has a Storage Blob Data role/, w.stderr);
  }
  mi.respond = {};
  // The same command with a good token works, so the refusals above were the tokens'.
  const ok = await run([CLI, 'write', 'az://aad/refused-aud', '--from', csv, '--format', 'json'], miEnv());
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).version, 0);
});

test('no credential source: FLOE_STORAGE_CREDENTIALS names the sources tried and what to set', async (t) => {
  if (!azurite || !mi) return t.skip('Azurite or openssl unavailable');
  // No managed identity (no IDENTITY_ENDPOINT; IMDS unreachable), no service principal, no Azure CLI sign-in.
  const env = clientEnv({ AZURE_STORAGE_ACCOUNT_NAME: AZURITE_ACCOUNT, AZURE_STORAGE_ENDPOINT: azurite.endpoint, IMDS_ENDPOINT: undefined, PATH: path.dirname(process.execPath) });
  const r = await run([CLI, 'history', 'az://aad/people'], env);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /FLOE_STORAGE_CREDENTIALS/);
  assert.match(r.stderr, /DefaultAzureCredential/);
  assert.match(r.stderr, /EnvironmentCredential/);
  assert.match(r.stderr, /ManagedIdentityCredential/);
  assert.match(r.stderr, /AZURE_STORAGE_ACCOUNT_KEY/);
  // The managed-identity endpoint answering an error is the same typed error.
  mi.respond = { status: 400 };
  const e = await run([CLI, 'history', 'az://aad/people'], miEnv());
  mi.respond = {};
  assert.equal(e.status, 1, e.stdout);
  assert.match(e.stderr, /FLOE_STORAGE_CREDENTIALS/);
  assert.match(e.stderr, /ManagedIdentityCredential/);
});

test('the API takes a TokenCredential (FloeOptions.azureCredential) and a bearer token (azure_storage_token); a failing credential is a typed error', async (t) => {
  if (!azurite || !mi) return t.skip('Azurite or openssl unavailable');
  await createContainer('aad');
  const r = await script(`
const jwt = ${JSON.stringify(fakeAadJwt())};
const calls = [];
const azureCredential = { async getToken(scopes) { calls.push(scopes); return { token: jwt, expiresOnTimestamp: Date.now() + 3600_000 }; } };
const storageOptions = { azure_storage_account_name: 'devstoreaccount1', azure_storage_endpoint: process.env.EP };
const a = await FLOE.Floe.create({ storageOptions, azureCredential });
await (await a.createDataFrame([{ id: 1 }, { id: 2 }])).write.delta('az://aad/api');
const n1 = await (await a.read.delta('az://aad/api')).count();
await a.close();
const b = await FLOE.Floe.create({ storageOptions: { ...storageOptions, azure_storage_token: jwt } });
const n2 = await (await b.read.delta('az://aad/api')).count();
await b.close();
const c = await FLOE.Floe.create({ storageOptions, azureCredential: { async getToken() { throw new Error('vault sealed'); } } });
let err = null;
try { await (await c.read.delta('az://aad/api')).count(); } catch (e) { err = { code: e.code, message: e.message }; }
await c.close();
// Without a token Azurite refuses: the successes above were the credentials'.
const { ContainerClient } = req('@azure/storage-blob');
let anonymous = 'allowed';
try { await new ContainerClient(process.env.EP + '/aad').listBlobsFlat().next(); } catch (e) { anonymous = e.statusCode; }
console.log(JSON.stringify({ n1, n2, scopes: calls[0], err, anonymous }));
`, clientEnv({ EP: azurite.endpoint }));
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { n1: number; n2: number; scopes: string[] | string; err: { code: string; message: string } | null; anonymous: unknown };
  assert.ok(out.anonymous === 401 || out.anonymous === 403 || out.anonymous === 404, `anonymous listing: ${String(out.anonymous)}`);
  assert.equal(out.n1, 2);
  assert.equal(out.n2, 2);
  assert.deepEqual([out.scopes].flat(), ['https://storage.azure.com/.default']);
  assert.equal(out.err?.code, 'FLOE_STORAGE_CREDENTIALS');
  assert.match(out.err!.message, /vault sealed/);
});

test('@azure/identity loads only when a store uses Azure AD', async (t) => {
  if (!azurite || !mi) return t.skip('Azurite or openssl unavailable');
  const r = await script(`
const loaded = () => Object.keys(req.cache).some((k) => k.includes('@azure/identity'));
const local = await FLOE.Floe.create();
await (await local.createDataFrame([{ id: 1 }])).write.delta(${JSON.stringify(path.join(work, 'local-t'))});
const afterLocal = loaded();
FLOE.openStore('az://aad/k', { azure_storage_account_name: 'devstoreaccount1', azure_storage_account_key: 'a2V5' });
const afterKey = loaded();
FLOE.openStore('az://aad/k', { azure_storage_account_name: 'devstoreaccount1' });
const afterAd = loaded();
await local.close();
console.log(JSON.stringify({ afterLocal, afterKey, afterAd }));
`, clientEnv({}));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { afterLocal: false, afterKey: false, afterAd: true });
});

test('credential choice: explicit flags and a session credential win over keys; an account alone means DefaultAzureCredential', () => {
  const key = Buffer.from('k').toString('base64');
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith('AZURE_')) delete process.env[k];
  try {
    const src = (url: string, o: Record<string, string>, cred?: object): string => (openStore(url, o, cred ? { azureCredential: cred as never } : {}) as AzureBlobStore).authSource;
    const u = 'abfss://data@acct.dfs.core.windows.net/t';
    assert.equal(src(u, {}), 'DefaultAzureCredential');
    assert.equal(src(u, { azure_storage_account_key: key }), 'account key');
    assert.equal(src(u, { azure_storage_sas_token: 'sv=1&sig=x' }), 'SAS token');
    assert.equal(src(u, { azure_storage_account_key: key, azure_use_azure_cli: 'true' }), 'AzureCliCredential');
    assert.equal(src(u, { azure_storage_account_key: key, azure_use_default_credential: 'true' }), 'DefaultAzureCredential');
    assert.equal(src(u, { azure_storage_token: 'jwt' }), 'bearer token (azure_storage_token)');
    assert.equal(src(u, { azure_client_id: 'c', azure_client_secret: 's', azure_tenant_id: 't' }), 'ClientSecretCredential');
    assert.match(src(u, { azure_storage_account_key: key }, { getToken: async () => null }), /^azureCredential/);
    process.env.AZURE_STORAGE_ACCOUNT_NAME = 'acct';
    assert.equal((openStore('az://data/t') as AzureBlobStore).authSource, 'DefaultAzureCredential');
    assert.equal(new AzureBlobStore(parseAzureUrl('az://data/t'), { azure_storage_account_key: key }).authSource, 'account key');
    // An invalid AZURE_TOKEN_CREDENTIALS makes DefaultAzureCredential's constructor throw: a typed error.
    process.env.AZURE_TOKEN_CREDENTIALS = 'nonsense';
    assert.throws(() => openStore(u), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_STORAGE_CREDENTIALS' && /AZURE_TOKEN_CREDENTIALS/.test(e.message));
  } finally {
    process.env = saved;
  }
});
