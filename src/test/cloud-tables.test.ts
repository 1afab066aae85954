/**
 * The table suite (cloud-suite.ts) against local files, Azurite (Azure Blob Storage emulator) and an
 * in-test S3 server; the S3 server's conditional put is checked to really refuse a second writer, and
 * a store that ignores it is refused for writing unless single-writer mode is on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import { Floe } from '../floe.js';
import { FloeError, ObjectExistsError } from '../errors.js';
import { LocalObjectStore } from '../storage/local.js';
import { openStore } from '../storage/open.js';
import { S3Store, parseS3Url } from '../storage/s3.js';
import { AzureBlobStore, parseAzureUrl } from '../storage/azure.js';
import { type Azurite, type S3Server, startAzurite, startS3Server } from './cloud-helpers.js';
import { type Backend, cacheDir, tableSuite, uniqueName } from './cloud-suite.js';
import { tempDir } from './helpers.js';

const require = createRequire(import.meta.url);

describe('local files', () => {
  let root = '';
  before(async () => {
    root = await tempDir('floe-suite-');
  });
  tableSuite(() => ({
    name: 'local',
    location: (n) => path.join(root, uniqueName(n)),
    storageOptions: async () => ({}),
    list: async (loc) => (await new LocalObjectStore(loc).list('', { recursive: true })).map((m) => m.path),
  }));
});

describe('Azure (Azurite)', () => {
  let az: Azurite | null = null;
  before(async () => {
    az = await startAzurite(['tables']);
  });
  after(async () => {
    await az?.stop();
  });
  const backend = (): Backend => {
    if (!az) throw new Error('Azurite is not running');
    const a = az;
    return {
      name: 'azurite',
      // abfss:// names the account; Azurite's account is devstoreaccount1, its endpoint comes from the connection string.
      location: (n) => `abfss://tables@devstoreaccount1.dfs.core.windows.net/suite/${uniqueName(n)}`,
      storageOptions: async () => ({ azure_storage_connection_string: a.connectionString, cache_dir: await cacheDir() }),
      list: async (loc) => (await openStore(loc, { azure_storage_connection_string: a.connectionString, cache_dir: await cacheDir() }).list('', { recursive: true })).map((m) => m.path),
    };
  };
  tableSuite(backend);

  test('az:// and abfss:// name the same table', async () => {
    const b = backend();
    const loc = b.location('urls');
    const opts = await b.storageOptions();
    const floe = await Floe.create({ storageOptions: opts });
    try {
      await (await floe.createDataFrame([{ id: 1 }])).write.delta(loc);
      const az2 = loc.replace('abfss://tables@devstoreaccount1.dfs.core.windows.net/', 'az://tables/');
      assert.deepEqual((await (await floe.read.delta(az2)).toArray()).map((r) => Number(r.id)), [1]);
    } finally {
      await floe.close();
    }
  });

  test('ADLS Gen2 folder markers (empty blobs with hdi_isfolder) are not listed as objects; VACUUM ignores them', async () => {
    const a = az!;
    const name = uniqueName('hns');
    const opts = { azure_storage_connection_string: a.connectionString, cache_dir: await cacheDir() };
    const floe = await Floe.create({ storageOptions: opts });
    try {
      const url = `az://tables/${name}`;
      await (await floe.createDataFrame([{ id: 1, g: 'x' }])).write.delta(url, { partitionBy: ['g'] });
      const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
      const container = BlobServiceClient.fromConnectionString(a.connectionString).getContainerClient('tables');
      for (const dir of ['g=x', '_delta_log']) await container.getBlockBlobClient(`${name}/${dir}`).upload('', 0, { metadata: { hdi_isfolder: 'true' } });
      const keys = (await openStore(url, opts).list('', { recursive: true })).map((m) => m.path);
      assert.ok(!keys.includes('g=x') && !keys.includes('_delta_log'), keys.join(', '));
      const { DeltaTable } = await import('../table/delta-table.js');
      assert.deepEqual((await (await DeltaTable.forPath(floe, url)).vacuum(0, { allowShortRetention: true })).filesDeleted, []);
      assert.equal(await (await floe.read.delta(url)).count(), 1);
    } finally {
      await floe.close();
    }
  });

  test('put-if-absent refuses the second writer; a wrong key is a typed, non-retried error', async () => {
    const a = az!;
    const s = new AzureBlobStore(parseAzureUrl(`az://tables/${uniqueName('pia')}`), { azure_storage_connection_string: a.connectionString, cache_dir: await cacheDir() });
    await s.putIfAbsent('_delta_log/00000000000000000000.json', 'first');
    await assert.rejects(s.putIfAbsent('_delta_log/00000000000000000000.json', 'second'), ObjectExistsError);
    assert.equal(new TextDecoder().decode(await s.get('_delta_log/00000000000000000000.json')), 'first');
    assert.equal(new TextDecoder().decode(await s.getRange('_delta_log/00000000000000000000.json', 1, 4)), 'irs');
    const bad = openStore(`az://tables/x`, { azure_storage_connection_string: a.connectionString.replace(/AccountKey=[^;]+/, 'AccountKey=' + Buffer.from('wrong').toString('base64')), cache_dir: await cacheDir(), max_attempts: '2' }) as AzureBlobStore;
    await assert.rejects(bad.get('k'), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_STORAGE_REQUEST_FAILED' && /retrying the operation is safe/.test(e.message));
  });
});

describe('S3 (in-test server)', () => {
  let srv: S3Server | null = null;
  before(async () => {
    srv = await startS3Server({ maxKeys: 7 }); // small pages: listing must follow continuation tokens
  });
  after(async () => {
    await srv?.stop();
  });
  const opts = async (): Promise<Record<string, string>> => ({ aws_endpoint_url: srv!.endpoint, aws_access_key_id: 'test', aws_secret_access_key: 'test', aws_region: 'us-east-1', cache_dir: await cacheDir() });
  const backend = (): Backend => ({
    name: 's3',
    location: (n) => `s3://bucket/suite/${uniqueName(n)}`,
    storageOptions: opts,
    list: async (loc) => (await openStore(loc, await opts()).list('', { recursive: true })).map((m) => m.path),
  });
  tableSuite(backend);

  test('the test server really refuses a second conditional create (raw HTTP), and so does the store', async () => {
    const url = `${srv!.endpoint}/bucket/raw/k1`;
    const first = await fetch(url, { method: 'PUT', body: 'one', headers: { 'if-none-match': '*' } });
    assert.equal(first.status, 200);
    const second = await fetch(url, { method: 'PUT', body: 'two', headers: { 'if-none-match': '*' } });
    assert.equal(second.status, 412);
    assert.equal(await (await fetch(url)).text(), 'one');
    const s = new S3Store(parseS3Url(`s3://bucket/${uniqueName('pia')}`), await opts());
    await s.putIfAbsent('_delta_log/00000000000000000000.json', 'a');
    await assert.rejects(s.putIfAbsent('_delta_log/00000000000000000000.json', 'b'), ObjectExistsError);
    assert.ok((srv!.stats.get('PUT-conditional-refused') ?? 0) >= 2);
  });

  test('multipart upload of a large file, ranged reads', async () => {
    const s = new S3Store(parseS3Url(`s3://bucket/${uniqueName('mpu')}`), await opts());
    const dir = await tempDir();
    const file = path.join(dir, 'big.bin');
    const data = Buffer.alloc(20 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
    await fs.writeFile(file, data);
    const before = srv!.stats.get('MPU-PART') ?? 0;
    await s.uploadFile(file, 'data/big.bin', data.length);
    assert.equal((srv!.stats.get('MPU-PART') ?? 0) - before, 3);
    assert.equal((await s.head('data/big.bin'))?.size, data.length);
    assert.deepEqual(Buffer.from(await s.getRange('data/big.bin', 8192, 8192 + 5000)), data.subarray(8192, 8192 + 5000));
  });

  test('a store that ignores If-None-Match is refused for writing unless single-writer mode is on', async () => {
    const loose = await startS3Server({ ignoreConditional: true });
    try {
      const o = { aws_endpoint_url: loose.endpoint, aws_access_key_id: 'test', aws_secret_access_key: 'test', cache_dir: await cacheDir() };
      const floe = await Floe.create({ storageOptions: o });
      try {
        await assert.rejects((await floe.createDataFrame([{ id: 1 }])).write.delta('s3://b/t1'), (e: unknown) => e instanceof FloeError && e.code === 'FLOE_STORAGE_NO_ATOMIC_PUT' && /aws_s3_allow_unsafe_rename/.test(e.message));
        assert.equal([...loose.objects.keys()].filter((k) => k.includes('_delta_log/0')).length, 0, 'no commit was written');
      } finally {
        await floe.close();
      }
      const single = await Floe.create({ storageOptions: { ...o, aws_s3_allow_unsafe_rename: 'true' } });
      try {
        await (await single.createDataFrame([{ id: 1 }])).write.delta('s3://b/t2');
        await (await single.createDataFrame([{ id: 2 }])).write.delta('s3://b/t2', { mode: 'append' });
        assert.deepEqual((await (await single.read.delta('s3://b/t2')).toArray()).map((r) => Number(r.id)).sort(), [1, 2]);
      } finally {
        await single.close();
      }
    } finally {
      await loose.stop();
    }
  });
});
