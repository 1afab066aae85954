/**
 * MERGE and the change feed identify files by read_parquet's file_index (offset per partition group
 * of the scan): rows of several files in several partitions are matched, copied and fed back right,
 * also when a data column is itself named `file_index` (which shadows the virtual column).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { newLocation } from './store.js';

type Row = Record<string, unknown>;
const plain = (rows: Row[]): Row[] => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
const sorted = (rows: Row[]): string[] => plain(rows).map((r) => JSON.stringify(r)).sort();

for (const col of ['n', 'file_index']) {
  test(`MERGE over several files and partitions, then the feed (a column named ${col})`, async () => {
    const floe = await Floe.create({ threads: 2 });
    try {
      const p = await newLocation();
      const rows = (from: number, to: number): string => `SELECT range::BIGINT AS id, (range * 100)::INTEGER AS "${col}", CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS g FROM range(${from}, ${to})`;
      await floe.duckdbSql(rows(0, 10)).write.delta(p, { properties: { 'delta.enableChangeDataFeed': 'true' }, partitionBy: ['g'] });
      await floe.duckdbSql(rows(10, 20)).write.delta(p, { mode: 'append' });
      const t = await DeltaTable.forPath(floe, p);
      const src = floe.duckdbSql(`SELECT * FROM (VALUES (3::BIGINT, -1, 'b'), (12, -1, 'a'), (15, -1, 'b'), (30, -1, 'a')) AS s(id, "${col}", g)`).alias('source');
      const r = await t.alias('target').merge(src, 'target.id = source.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
      assert.equal(r.metrics.numTargetRowsUpdated, 3);
      assert.equal(r.metrics.numTargetRowsInserted, 1);
      // Files holding ids 3 (v0, b), 12 (v1, a) and 15 (v1, b): three of the four.
      assert.equal(r.metrics.numTargetFilesRemoved, 3);
      assert.equal(r.metrics.numTargetRowsCopied, 15 - 3);

      const expected: Row[] = [];
      for (let i = 0; i < 20; i++) expected.push({ id: i, [col]: [3, 12, 15].includes(i) ? -1 : i * 100, g: i % 2 === 0 ? 'a' : 'b' });
      expected.push({ id: 30, [col]: -1, g: 'a' });
      assert.deepEqual(sorted(await (await floe.read.delta(p)).toArray()), sorted(expected));

      const feed = await (await floe.read.changes(p, { startingVersion: 2, endingVersion: 2 })).toArray();
      assert.deepEqual(sorted(feed.map((x) => ({ id: x.id, [col]: x[col], g: x.g, _change_type: x._change_type, _commit_version: x._commit_version }))), sorted([
        ...[3, 12, 15].flatMap((i) => [
          { id: i, [col]: i * 100, g: i % 2 === 0 ? 'a' : 'b', _change_type: 'update_preimage', _commit_version: 2 },
          { id: i, [col]: -1, g: i % 2 === 0 ? 'a' : 'b', _change_type: 'update_postimage', _commit_version: 2 },
        ]),
        { id: 30, [col]: -1, g: 'a', _change_type: 'insert', _commit_version: 2 },
      ]));
      // The whole history: every file once (the lookup plan), versions and partition values per file.
      const all = plain(await (await floe.read.changes(p, { startingVersion: 0, endingVersion: 2 })).toArray());
      assert.equal(all.length, 20 + 7);
      assert.deepEqual(all.filter((x) => x._change_type === 'insert' && x._commit_version === 1).map((x) => [x.id, x[col], x.g]).sort((a, b) => Number(a[0]) - Number(b[0])),
        Array.from({ length: 10 }, (_, k) => [10 + k, (10 + k) * 100, k % 2 === 0 ? 'a' : 'b']));
      assert.ok(all.filter((x) => x._commit_version === 0).every((x) => x._change_type === 'insert' && x[col] === Number(x.id) * 100 && x.g === (Number(x.id) % 2 === 0 ? 'a' : 'b')));
    } finally {
      await floe.close();
    }
  });
}
