/** UPDATE of a partition column moves rows to their new partition (copy-on-write and with deletion vectors). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTable, Floe } from '../index.js';
import { checkTable } from './protocol-checker.js';
import { locJoin, newRoot, readText, writeRaw } from './store.js';

for (const dv of [false, true]) {
  test(`UPDATE of a partition column moves rows (deletion vectors ${dv ? 'on' : 'off'})`, async () => {
    const dir = await newRoot();
    const p = locJoin(dir, 't');
    const floe = await Floe.create();
    try {
      await floe.duckdbSql("SELECT range::BIGINT AS id, CASE WHEN range < 3 THEN 'a' ELSE 'b' END AS part FROM range(6)")
        .write.delta(p, { partitionBy: ['part'], properties: { 'delta.enableChangeDataFeed': 'true', ...(dv ? { 'delta.enableDeletionVectors': 'true' } : {}) } });
      const t = await DeltaTable.forPath(floe, p);
      const r = await t.update({ condition: 'id IN (1, 4)', set: { part: "'c'" } });
      assert.equal(r.metrics.numUpdatedRows, 2);
      const rows = (await (await floe.read.delta(p)).orderBy('id').toJSON()).map((x) => `${x.id}:${x.part}`);
      assert.deepEqual(rows, ['0:a', '1:c', '2:a', '3:b', '4:c', '5:b']);
      const snap = await floe.snapshot(p);
      assert.ok(snap.files.some((f) => f.partitionValues.part === 'c'));
      // Skipping by the new partition value finds the moved rows.
      assert.equal(await (await floe.read.delta(p)).filter("part = 'c'").count(), 2);
      const feed = (await (await floe.read.changes(p, { startingVersion: 1 })).toJSON()).map((x) => `${x._change_type}:${x.id}:${x.part}`).sort();
      assert.deepEqual(feed, ['update_postimage:1:c', 'update_postimage:4:c', 'update_preimage:1:a', 'update_preimage:4:b']);
      assert.deepEqual(await checkTable(p), []);
    } finally {
      await floe.close();
    }
  });
}

test('an empty partition value reads as NULL for a non-string partition column', async () => {
  const dir = await newRoot();
  const p = locJoin(dir, 't');
  const floe = await Floe.create();
  try {
    await floe.duckdbSql('SELECT 1::BIGINT AS id, 7::INTEGER AS n').write.delta(p, { partitionBy: ['n'] });
    // Rewrite the log's partition value as "" (as some writers record a null partition).
    const commit = '_delta_log/00000000000000000000.json';
    await writeRaw(p, commit, (await readText(p, commit)).replace('"partitionValues":{"n":"7"}', '"partitionValues":{"n":""}'));
    floe.forgetLog(p);
    assert.deepEqual(await (await floe.read.delta(p)).toJSON(), [{ id: '1', n: null }]);
  } finally {
    await floe.close();
  }
});
