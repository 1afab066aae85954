/** Deletion vectors written by floe: the bitmap format round-trips, and DML marks rows instead of rewriting files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { buildDeletionVectorFile, serializeRoaringBitmapArray, z85Encode } from '../core/deletion-vector-writer.js';
import { dvRelativePath, loadDeletionVector, parseRoaringBitmapArray, z85Decode } from '../core/deletion-vectors.js';
import { LocalObjectStore } from '../storage/local.js';
import { DeltaTable, Floe } from '../index.js';
import { checkTable } from './protocol-checker.js';
import { listNames, locJoin, newRoot, storeAt } from './store.js';

test('RoaringBitmapArray serialisation round-trips through the reader (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 2 ** 33 })), { maxLength: 6000 }), (rows) => {
      const want = [...new Set(rows)].sort((a, b) => a - b);
      assert.deepEqual(parseRoaringBitmapArray(serializeRoaringBitmapArray(rows)), want);
    }),
    { numRuns: 200 },
  );
  // A dense run takes a bitmap container.
  const dense = Array.from({ length: 10_000 }, (_, i) => i * 2);
  assert.deepEqual(parseRoaringBitmapArray(serializeRoaringBitmapArray(dense)), dense);
});

test('Z85 encoding inverts decoding; a DV file loads back with its CRC and cardinality checked', async () => {
  const bytes = new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
  assert.equal(z85Encode(bytes), 'HelloWorld');
  assert.deepEqual(z85Decode(z85Encode(bytes)), bytes);
  const dir = await newRoot();
  const f = buildDeletionVectorFile([3, 1, 2, 2 ** 32 + 5]);
  assert.equal(dvRelativePath(f.descriptor), f.relativePath);
  const store = storeAt(dir);
  await store.put(f.relativePath, f.bytes);
  assert.deepEqual(await loadDeletionVector(store, f.descriptor), [1, 2, 3, 2 ** 32 + 5]);
});

test('with delta.enableDeletionVectors, DELETE/UPDATE/MERGE keep files and mark rows; reads, the feed and the checker agree', async () => {
  const dir = await newRoot();
  const p = locJoin(dir, 't');
  const floe = await Floe.create({
    config: {
      'spark.databricks.delta.properties.defaults.enableDeletionVectors': 'true',
      'spark.databricks.delta.properties.defaults.enableChangeDataFeed': 'true',
    },
  });
  try {
    await floe.duckdbSql("SELECT range::BIGINT AS id, 'v' || range AS name FROM range(20)").write.delta(p);
    const t = await DeltaTable.forPath(floe, p);
    const detail = await t.detail();
    assert.ok(detail.tableFeatures.includes('deletionVectors'));
    assert.equal(detail.minReaderVersion, 3);
    const firstFile = (await floe.snapshot(p)).files[0]!.path;

    const d = await t.delete('id % 5 = 0');
    assert.equal(d.metrics.numDeletedRows, 4);
    assert.equal(d.metrics.numCopiedRows, 0);
    assert.equal(d.metrics.numDeletionVectorsAdded, 1);
    let snap = await floe.snapshot(p);
    assert.equal(snap.files.length, 1, 'the data file stays');
    assert.equal(snap.files[0]!.path, firstFile);
    assert.equal(snap.files[0]!.deletionVector?.cardinality, 4);

    const u = await t.update({ condition: 'id = 7', set: { name: "'seven'" } });
    assert.equal(u.metrics.numUpdatedRows, 1);
    assert.equal(u.metrics.numDeletionVectorsUpdated, 1);
    const m = await t.alias('t').merge(floe.duckdbSql("SELECT * FROM (VALUES (8::BIGINT, 'eight'), (100, 'hundred')) s(id, name)").alias('s'), 't.id = s.id')
      .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
    assert.equal(m.metrics.numTargetRowsUpdated, 1);
    assert.equal(m.metrics.numTargetRowsInserted, 1);
    assert.equal(m.metrics.numTargetRowsCopied, 0);
    snap = await floe.snapshot(p);
    assert.equal(snap.files.find((f) => f.path === firstFile)?.deletionVector?.cardinality, 6);

    const rows = (await (await floe.read.delta(p)).orderBy('id').toJSON()).map((r) => `${r.id}:${r.name}`);
    const want = Array.from({ length: 20 }, (_, i) => i).filter((i) => i % 5 !== 0).map((i) => `${i}:${i === 7 ? 'seven' : i === 8 ? 'eight' : `v${i}`}`);
    assert.deepEqual(rows, [...want, '100:hundred']);

    const feed = (await (await floe.read.changes(p, { startingVersion: 1 })).toJSON()).map((r) => `${r._commit_version}:${r._change_type}:${r.id}`).sort();
    assert.deepEqual(feed, ['1:delete:0', '1:delete:10', '1:delete:15', '1:delete:5', '2:update_postimage:7', '2:update_preimage:7', '3:insert:100', '3:update_postimage:8', '3:update_preimage:8'].sort());
    // Time travel still sees the earlier DV states.
    assert.equal(await (await floe.read.delta(p, { versionAsOf: 1 })).count(), 16);
    assert.deepEqual(await checkTable(p), []);

    // OPTIMIZE purges the deletion vectors; VACUUM keeps the DV files live versions need.
    const dvFiles = (await listNames(p, '')).filter((n) => n.startsWith('deletion_vector_'));
    assert.ok(dvFiles.length >= 3);
    await t.optimize();
    assert.ok((await floe.snapshot(p)).files.every((f) => !f.deletionVector));
    assert.equal(await (await floe.read.delta(p)).count(), 17);
    await t.vacuum(); // default retention: nothing recent is deleted
    assert.equal(await (await floe.read.delta(p, { versionAsOf: 3 })).count(), 17);
  } finally {
    await floe.close();
  }
});
