/**
 * Absolute URIs as `add` / `remove` paths (PROTOCOL.md "Path Specification"; tables made by SHALLOW
 * CLONE name their source's files so): `file:///…` on local tables, `abfss://…` on Azure and
 * `s3://…` on S3. A "clone" whose log names files of another table and files of its own by absolute
 * URI is read, changed by MERGE and DELETE (the remove carries the path exactly as the add named it),
 * and vacuumed (its own unreferenced files go, referenced ones stay, the source's files are never
 * touched), on local files, Azurite and the in-test S3 server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/object-store.js';
import { resolveLogPath } from '../storage/paths.js';
import { LocalObjectStore } from '../storage/local.js';
import { type Azurite, type S3Server, startAzurite, startS3Server } from './cloud-helpers.js';
import { cacheDir, uniqueName } from './cloud-suite.js';
import { tempDir } from './helpers.js';

interface Target {
  /** A new table location. */
  location(name: string): string;
  /** The absolute URI of a key inside a table location, as another engine would write it in a log. */
  uri(location: string, key: string): string;
  storageOptions(): Promise<Record<string, string>>;
}

const log0 = (v: number): string => `_delta_log/${String(v).padStart(20, '0')}.json`;

async function commitLines(store: ObjectStore, v: number): Promise<Record<string, Record<string, unknown>>[]> {
  return Buffer.from(await store.get(log0(v))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
}

function absolutePathSuite(name: string, target: () => Target): void {
  test(`${name}: a clone naming files by absolute URI reads, MERGEs, DELETEs and vacuums correctly`, async () => {
    const t = target();
    const floe = await Floe.create({ storageOptions: await t.storageOptions() });
    try {
      // The source: three files (ids 1-3, 4-6, 7-9).
      const src = t.location('src');
      for (const ids of [[1, 2, 3], [4, 5, 6], [7, 8, 9]]) await (await floe.createDataFrame(ids.map((id) => ({ id, v: `s${id}` })))).write.delta(src, { mode: 'append' });
      const srcStore = floe.storeFor(src);
      const srcSnap = await floe.snapshot(src);
      const byFirst = new Map<number, string>();
      // Which source file holds which ids: read each file's stats (numRecords and minValues.id).
      for (const f of srcSnap.files) byFirst.set(Number((JSON.parse(f.stats!) as { minValues: { id: number } }).minValues.id), f.path);
      assert.equal(byFirst.size, 3);

      // The clone: file 1 stays in the source (absolute URI outside the clone); files 2 and 3 are copied
      // into the clone and named by absolute URI too (inside the clone).
      const clone = t.location('clone');
      const cloneStore = floe.storeFor(clone);
      const outside = t.uri(src, byFirst.get(1)!);
      const inside2 = t.uri(clone, 'copied/part-2 copy.parquet');
      const inside3 = t.uri(clone, 'copied/part-3.parquet');
      await cloneStore.put('copied/part-2 copy.parquet', await srcStore.get(byFirst.get(4)!));
      await cloneStore.put('copied/part-3.parquet', await srcStore.get(byFirst.get(7)!));
      const first = await commitLines(srcStore, 0);
      const protocol = first.find((a) => a.protocol)!;
      const metaData = { metaData: { ...first.find((a) => a.metaData)!.metaData, id: `clone-${uniqueName('id')}` } };
      const addFor = (p: string, from: string): Record<string, unknown> => ({ add: { ...srcSnap.files.find((f) => f.path === from)!, path: p, dataChange: true } });
      const adds = [addFor(outside, byFirst.get(1)!), addFor(inside2, byFirst.get(4)!), addFor(inside3, byFirst.get(7)!)];
      await cloneStore.putIfAbsent(log0(0), [protocol, metaData, ...adds].map((a) => JSON.stringify(a)).join('\n') + '\n');

      // Nothing is unreferenced yet: VACUUM must not count the absolute-named files inside the clone as garbage.
      const ct0 = await DeltaTable.forPath(floe, clone);
      assert.deepEqual((await ct0.vacuum(0, { allowShortRetention: true, dryRun: true })).filesDeleted, []);

      // Read.
      const ids = async (loc: string): Promise<string[]> => (await (await floe.read.delta(loc)).collect()).map((r) => `${String(r.id)}:${String(r.v)}`).sort((a, b) => parseInt(a) - parseInt(b));
      assert.deepEqual(await ids(clone), ['1:s1', '2:s2', '3:s3', '4:s4', '5:s5', '6:s6', '7:s7', '8:s8', '9:s9']);
      const ct = await DeltaTable.forPath(floe, clone);
      assert.equal(await (await ct.toDF()).filter('id >= 8').count(), 2); // a filtered scan (stats pruning) too

      // MERGE touching the outside file: its remove carries the absolute URI exactly.
      await ct.alias('t').merge((await floe.createDataFrame([{ id: 1, v: 'm1' }])).alias('s'), 't.id = s.id').whenMatchedUpdateAll().execute();
      const c1 = await commitLines(cloneStore, 1);
      assert.deepEqual(c1.filter((a) => a.remove).map((a) => a.remove!.path), [outside]);
      assert.ok(c1.filter((a) => a.add).every((a) => !/^[a-z0-9]+:/i.test(String(a.add!.path))), 'new files are named relative to the clone');

      // DELETE touching an inside file named by absolute URI (with a space, percent-encoded).
      await ct.delete('id = 4');
      const c2 = await commitLines(cloneStore, 2);
      assert.deepEqual(c2.filter((a) => a.remove).map((a) => a.remove!.path), [inside2]);
      assert.deepEqual(await ids(clone), ['1:m1', '2:s2', '3:s3', '5:s5', '6:s6', '7:s7', '8:s8', '9:s9']);

      // VACUUM: the clone's unreferenced copy goes; its referenced absolute-named copy stays; the
      // source's files are never touched (the removed outside file included).
      const vac = await ct.vacuum(0, { allowShortRetention: true });
      assert.ok(vac.filesDeleted.includes('copied/part-2 copy.parquet'), JSON.stringify(vac.filesDeleted));
      assert.ok(!vac.filesDeleted.includes('copied/part-3.parquet'), JSON.stringify(vac.filesDeleted));
      assert.ok(await cloneStore.head('copied/part-3.parquet'));
      assert.equal(await cloneStore.head('copied/part-2 copy.parquet'), null);
      for (const f of srcSnap.files) assert.ok(await srcStore.head(f.path), `source file ${f.path} still there`);
      assert.deepEqual(await ids(clone), ['1:m1', '2:s2', '3:s3', '5:s5', '6:s6', '7:s7', '8:s8', '9:s9']);
      assert.deepEqual(await ids(src), ['1:s1', '2:s2', '3:s3', '4:s4', '5:s5', '6:s6', '7:s7', '8:s8', '9:s9']);
      // The source's own vacuum keeps its files (the clone's references are its business).
      assert.deepEqual((await (await DeltaTable.forPath(floe, src)).vacuum(0, { allowShortRetention: true, dryRun: true })).filesDeleted, []);
    } finally {
      await floe.close();
    }
  });
}

function cdcSuite(name: string, target: () => Target): void {
  test(`${name}: change data files (cdc actions) named by absolute URI are read by the change feed`, async () => {
    const tg = target();
    const floe = await Floe.create({ storageOptions: await tg.storageOptions() });
    try {
      const t = tg.location('cdc');
      await floe.duckdbSql('SELECT range::BIGINT AS id FROM range(3)').write.delta(t, { properties: { 'delta.enableChangeDataFeed': 'true' } });
      await (await DeltaTable.forPath(floe, t)).update({ condition: 'id = 1', set: { id: '10' } });
      const store = floe.storeFor(t);
      const lines = await commitLines(store, 1);
      const cdcs = lines.filter((a) => a.cdc);
      assert.ok(cdcs.length > 0, 'the update wrote change data files');
      // Rewrite the commit as another engine might: cdc paths as absolute URIs of the same files.
      for (const a of cdcs) a.cdc!.path = tg.uri(t, decodeURIComponent(String(a.cdc!.path)));
      await store.put(log0(1), lines.map((a) => JSON.stringify(a)).join('\n') + '\n');
      const fresh = await Floe.create({ storageOptions: await tg.storageOptions() });
      try {
        const rows = (await (await fresh.read.changes(t, { startingVersion: 1 })).toArray()).map((r) => `${String(r._change_type)}:${String(r.id)}`).sort();
        assert.deepEqual(rows, ['update_postimage:10', 'update_preimage:1']);
      } finally {
        await fresh.close();
      }
    } finally {
      await floe.close();
    }
  });
}

describe('local files', () => {
  let root = '';
  before(async () => {
    root = await tempDir('floe-abs-');
  });
  absolutePathSuite('local', () => ({
    location: (n) => path.join(root, uniqueName(n)),
    uri: (loc, key) => pathToFileURL(path.join(loc, ...key.split('/'))).href,
    storageOptions: async () => ({}),
  }));
  cdcSuite('local', () => ({
    location: (n) => path.join(root, uniqueName(n)),
    uri: (loc, key) => pathToFileURL(path.join(loc, ...key.split('/'))).href,
    storageOptions: async () => ({}),
  }));

  test('resolveLogPath: relative keys, file: URIs inside and outside the table, unsupported schemes', async () => {
    const dir = await tempDir('floe-abs-r-');
    const store = new LocalObjectStore(dir);
    assert.deepEqual(resolveLogPath(store, 'a%20b/c.parquet'), { store, key: 'a b/c.parquet', inTable: true });
    const inside = resolveLogPath(store, pathToFileURL(path.join(dir, 'x y', 'f.parquet')).href);
    assert.deepEqual([inside.store, inside.key, inside.inTable], [store, 'x y/f.parquet', true]);
    const out = resolveLogPath(store, pathToFileURL('/elsewhere/t/f.parquet').href);
    assert.equal(out.inTable, false);
    assert.equal(out.store.localPath(out.key), '/elsewhere/t/f.parquet');
    assert.throws(() => resolveLogPath(store, 'gs://bucket/f.parquet'), /FLOE_REMOTE_NOT_SUPPORTED/);
  });
});

describe('Azure (Azurite)', () => {
  let az: Azurite | null = null;
  before(async () => {
    az = await startAzurite(['abs']);
  });
  after(async () => {
    await az?.stop();
  });
  absolutePathSuite('azurite', () => ({
    location: (n) => `abfss://abs@devstoreaccount1.dfs.core.windows.net/t/${uniqueName(n)}`,
    uri: (loc, key) => `${loc}/${key.split('/').map(encodeURIComponent).join('/')}`,
    storageOptions: async () => ({ azure_storage_connection_string: az!.connectionString, cache_dir: await cacheDir() }),
  }));
  cdcSuite('azurite', () => ({
    location: (n) => `abfss://abs@devstoreaccount1.dfs.core.windows.net/t/${uniqueName(n)}`,
    uri: (loc, key) => `${loc}/${key.split('/').map(encodeURIComponent).join('/')}`,
    storageOptions: async () => ({ azure_storage_connection_string: az!.connectionString, cache_dir: await cacheDir() }),
  }));

  test('azurite: a local table whose log names files in Azure (abfss://) reads them with the session\'s credentials', async () => {
    const floe = await Floe.create({ storageOptions: { azure_storage_connection_string: az!.connectionString, cache_dir: await cacheDir() } });
    try {
      const src = `abfss://abs@devstoreaccount1.dfs.core.windows.net/t/${uniqueName('cloudsrc')}`;
      await (await floe.createDataFrame([{ id: 1, v: 'a' }, { id: 2, v: 'b' }])).write.delta(src);
      const srcStore = floe.storeFor(src);
      const first = await commitLines(srcStore, 0);
      const local = path.join(await tempDir('floe-abs-lc-'), 'clone');
      const lines = first.filter((a) => a.protocol || a.metaData || a.add).map((a) => (a.add ? { add: { ...a.add, path: `${src}/${String(a.add.path)}` } } : a));
      await floe.storeFor(local).putIfAbsent(log0(0), lines.map((a) => JSON.stringify(a)).join('\n') + '\n');
      const rows = (await (await floe.read.delta(local)).collect()).map((r) => `${String(r.id)}:${String(r.v)}`).sort();
      assert.deepEqual(rows, ['1:a', '2:b']);
      await (await DeltaTable.forPath(floe, local)).delete('id = 1');
      const c1 = await commitLines(floe.storeFor(local), 1);
      assert.deepEqual(c1.filter((a) => a.remove).map((a) => String(a.remove!.path).startsWith(`${src}/`)), [true]);
      assert.deepEqual((await (await floe.read.delta(local)).collect()).map((r) => Number(r.id)), [2]);
      assert.deepEqual((await (await DeltaTable.forPath(floe, local)).vacuum(0, { allowShortRetention: true })).filesDeleted, []);
      assert.equal((await (await floe.read.delta(src)).collect()).length, 2); // the source is untouched
    } finally {
      await floe.close();
    }
  });

  test('azurite: resolveLogPath maps abfss:// and az:// URIs inside the table to keys, others to the container', async () => {
    const o = { azure_storage_connection_string: az!.connectionString, cache_dir: await cacheDir() };
    const store = openStore('abfss://abs@devstoreaccount1.dfs.core.windows.net/t/x', o);
    assert.deepEqual(resolveLogPath(store, 'abfss://abs@devstoreaccount1.dfs.core.windows.net/t/x/p%3D1/f.parquet').key, 'p=1/f.parquet');
    assert.equal(resolveLogPath(store, 'az://abs/t/x/f.parquet').inTable, true);
    const other = resolveLogPath(store, 'abfss://abs@devstoreaccount1.dfs.core.windows.net/t/xy/f.parquet');
    assert.deepEqual([other.inTable, other.key, other.store.root], [false, 't/xy/f.parquet', 'abfss://abs@devstoreaccount1.dfs.core.windows.net']);
  });
});

describe('S3 (in-test server)', () => {
  let s3: S3Server | null = null;
  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => {
    await s3?.stop();
  });
  absolutePathSuite('s3', () => ({
    location: (n) => `s3://abs/t/${uniqueName(n)}`,
    uri: (loc, key) => `${loc}/${key.split('/').map(encodeURIComponent).join('/')}`,
    storageOptions: async () => ({ aws_endpoint_url: s3!.endpoint, aws_access_key_id: 'k', aws_secret_access_key: 's', aws_region: 'us-east-1', cache_dir: await cacheDir() }),
  }));
  cdcSuite('s3', () => ({
    location: (n) => `s3://abs/t/${uniqueName(n)}`,
    uri: (loc, key) => `${loc}/${key.split('/').map(encodeURIComponent).join('/')}`,
    storageOptions: async () => ({ aws_endpoint_url: s3!.endpoint, aws_access_key_id: 'k', aws_secret_access_key: 's', aws_region: 'us-east-1', cache_dir: await cacheDir() }),
  }));
});
