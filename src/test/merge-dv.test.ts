/**
 * MERGE with deletion vectors: DVs built in bulk (dense bitmap containers, sparse array containers,
 * row numbers united with a file's earlier DV, a file whose every row goes is removed) give the same
 * table and the same change feed as copy-on-write on an identical table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { loadDeletionVector } from '../core/deletion-vectors.js';
import { checkTable } from './protocol-checker.js';
import { tempDir } from './helpers.js';

test('MERGE with deletion vectors matches copy-on-write: dense and sparse DVs, a second MERGE on the same files, a file emptied', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const root = await tempDir();
    const dv = path.join(root, 'dv');
    const cow = path.join(root, 'cow');
    // Three files: 0..99999, 100000..109999, 200000..200009.
    const rows = (from: number, to: number): string => `SELECT range::BIGINT AS id, 'v' || range::VARCHAR AS s FROM range(${from}, ${to})`;
    for (const [p, props] of [[dv, { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' }], [cow, { 'delta.enableChangeDataFeed': 'true' }]] as const) {
      await floe.duckdbSql(rows(0, 100_000)).write.delta(p, { properties: { ...props } });
      await floe.duckdbSql(rows(100_000, 110_000)).write.delta(p, { mode: 'append' });
      await floe.duckdbSql(rows(200_000, 200_010)).write.delta(p, { mode: 'append' });
    }
    const merge = async (p: string, sourceSql: string) =>
      (await DeltaTable.forPath(floe, p)).alias('t').merge(floe.duckdbSql(sourceSql).alias('s'), 't.id = s.id')
        .whenMatchedDelete({ condition: "s.s = 'del'" }).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
    // 1: every other row of 0..79999 (dense: bitmap containers), every 97th of the second file (sparse),
    //    all of the third file deleted, and inserts.
    const first = `SELECT id, CASE WHEN id >= 200000 THEN 'del' ELSE 'new' || id::VARCHAR END AS s FROM (
      SELECT range * 2 AS id FROM range(0, 40000) UNION ALL SELECT 100000 + range * 97 FROM range(0, 100)
      UNION ALL SELECT range FROM range(200000, 200010) UNION ALL SELECT range FROM range(300000, 300005))`;
    // 2: the same files again: some rows already deleted by the first DV are not in play; new ones join it.
    const second = `SELECT id, CASE WHEN id % 3 = 0 THEN 'del' ELSE 'again' END AS s FROM (SELECT range * 5 AS id FROM range(0, 30000))`;
    const results = [];
    for (const p of [dv, cow]) results.push([await merge(p, first), await merge(p, second)]);
    const [[d1, d2], [c1, c2]] = results as [[Awaited<ReturnType<typeof merge>>, Awaited<ReturnType<typeof merge>>], [Awaited<ReturnType<typeof merge>>, Awaited<ReturnType<typeof merge>>]];
    for (const k of ['numTargetRowsUpdated', 'numTargetRowsInserted', 'numTargetRowsDeleted'] as const) {
      assert.equal(d1.metrics[k], c1.metrics[k], `first MERGE ${k}`);
      assert.equal(d2.metrics[k], c2.metrics[k], `second MERGE ${k}`);
    }
    // Copy-on-write folded the three files into one; with DVs the second MERGE finds the two old files
    // (with their DVs) and the first MERGE's new file.
    assert.equal(d2.metrics.numTargetFilesRemoved, 3);
    assert.equal(d1.metrics.numTargetRowsUpdated, 40_100);
    assert.equal(d1.metrics.numTargetRowsDeleted, 10);
    assert.equal(d1.metrics.numTargetRowsCopied, 0);
    assert.equal(d1.metrics.numDeletionVectorsAdded, 2, 'the emptied file gets no DV');
    assert.equal(d2.metrics.numDeletionVectorsUpdated, 2);
    assert.equal(d2.metrics.numDeletionVectorsAdded, 1);

    const snap = await floe.snapshot(dv);
    const firstFile = snap.files.find((f) => f.deletionVector && f.deletionVector.cardinality > 10_000)!;
    // Rows 0..79998 step 2 (first MERGE) and multiples of 5 below 100000 not yet deleted (second).
    const want = new Set<number>();
    for (let i = 0; i < 80_000; i += 2) want.add(i);
    for (let i = 0; i < 100_000; i += 5) want.add(i);
    const got = await loadDeletionVector((floe.deltaLog(dv)).store, firstFile.deletionVector!);
    assert.equal(got.length, want.size);
    assert.deepEqual(got, [...want].sort((a, b) => a - b));
    assert.equal(firstFile.deletionVector!.cardinality, want.size);
    assert.equal(d1.metrics.numTargetFilesRemoved, 3);
    assert.equal(snap.files.filter((f) => f.deletionVector).length, 3, 'the two old files and the first MERGE\'s new file');

    const table = async (p: string): Promise<string[]> => (await floe.engine.allJson(`SELECT id::VARCHAR || ':' || s AS r FROM (${await (await floe.read.delta(p)).toSQL()}) ORDER BY id`)).map((r) => String(r.r));
    assert.deepEqual(await table(dv), await table(cow));
    const feed = async (p: string): Promise<string[]> => (await floe.engine.allJson(`SELECT _commit_version::VARCHAR || ':' || _change_type || ':' || id::VARCHAR || ':' || s AS r FROM (${await (await floe.read.changes(p, { startingVersion: 3 })).toSQL()}) ORDER BY r`)).map((r) => String(r.r));
    const fd = await feed(dv);
    assert.ok(fd.length > 80_000);
    assert.deepEqual(fd, await feed(cow));
    assert.deepEqual(await checkTable(dv), []);
  } finally {
    await floe.close();
  }
});

for (const [parts, col] of [[3, 'n'], [70, 'n'], [3, 'file_index'], [70, 'file_index']] as const) {
  test(`reading a table with deletion vectors keys the DV rows by file id (${parts} partitions, a column named ${col})`, async () => {
    const floe = await Floe.create({ threads: 2 });
    try {
      const p = path.join(await tempDir(), 't');
      const rows = (from: number, to: number): string => `SELECT range::BIGINT AS id, (range * 10)::BIGINT AS "${col}", (range % ${parts})::INTEGER AS g FROM range(${from}, ${to})`;
      await floe.duckdbSql(rows(0, 1000)).write.delta(p, { partitionBy: ['g'], properties: { 'delta.enableDeletionVectors': 'true' } });
      await floe.duckdbSql(rows(1000, 2000)).write.delta(p, { mode: 'append' });
      const t = await DeltaTable.forPath(floe, p);
      await t.delete('id % 11 = 3');
      const m = await t.alias('t').merge(floe.duckdbSql(`SELECT range::BIGINT AS id, -1::BIGINT AS "${col}", (range % ${parts})::INTEGER AS g FROM range(0, 2000, 13)`).alias('s'), 't.id = s.id')
        .whenMatchedUpdateAll().execute();
      // Every file keeps some rows and gets a DV (more than 64 partition groups: the files-table plan).
      const snap = await floe.snapshot(p);
      assert.equal(snap.files.filter((f) => f.deletionVector).length, 2 * parts);
      const want: string[] = [];
      let updated = 0;
      for (let i = 0; i < 2000; i++) {
        if (i % 11 === 3) continue;
        if (i % 13 === 0) updated++;
        want.push(`${i}:${i % 13 === 0 ? -1 : i * 10}:${i % parts}`);
      }
      assert.equal(m.metrics.numTargetRowsUpdated, updated);
      const got = (await floe.engine.allJson(`SELECT id::VARCHAR || ':' || "${col}"::VARCHAR || ':' || g::VARCHAR AS r FROM (${await (await floe.read.delta(p)).toSQL()}) ORDER BY id`)).map((r) => String(r.r));
      assert.deepEqual(got, want);
    } finally {
      await floe.close();
    }
  });
}

test('MERGE with deletion vectors: a condition on a non-key target column, clause conditions and SET expressions on target columns, an insert condition', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const root = await tempDir();
    const dv = path.join(root, 'dv');
    const cow = path.join(root, 'cow');
    // Two files: ids 0..99 and 100..199; v = id % 7; s = 'kill' for ids divisible by 10, else 'r<id>'.
    const rows = (from: number, to: number): string => `SELECT range::BIGINT AS id, (range % 7)::BIGINT AS v, CASE WHEN range % 10 = 0 THEN 'kill' ELSE 'r' || range::VARCHAR END AS s FROM range(${from}, ${to})`;
    for (const [p, props] of [[dv, { 'delta.enableChangeDataFeed': 'true', 'delta.enableDeletionVectors': 'true' }], [cow, { 'delta.enableChangeDataFeed': 'true' }]] as const) {
      await floe.duckdbSql(rows(0, 100)).write.delta(p, { properties: { ...props } });
      await floe.duckdbSql(rows(100, 200)).write.delta(p, { mode: 'append' });
    }
    // Source: every third id of 0..299 (ids >= 200 are new), v = 3 for even ids, -1 for odd ones.
    const source = 'SELECT range::BIGINT * 3 AS id, CASE WHEN range % 2 = 0 THEN 3 ELSE -1 END::BIGINT AS v, \'src\' AS s FROM range(0, 100)';
    const merge = async (p: string) =>
      (await DeltaTable.forPath(floe, p)).alias('t').merge(floe.duckdbSql(source).alias('s'), 't.id = s.id AND t.v <= s.v')
        .whenMatchedDelete({ condition: "t.s = 'kill'" })
        .whenMatchedUpdate({ condition: 't.v % 2 = 0', set: { v: 't.v + s.v', s: "t.s || '+'" } })
        .whenNotMatchedInsertAll({ condition: 's.v > 0' })
        .execute();
    const rd = await merge(dv);
    const rc = await merge(cow);
    // The reference: a target row matches when its id is a source id and its v <= the source's v.
    const target = new Map<number, { v: number; s: string }>();
    for (let i = 0; i < 200; i++) target.set(i, { v: i % 7, s: i % 10 === 0 ? 'kill' : `r${i}` });
    const want = new Map(target);
    const feed: string[] = [];
    const m = { upd: 0, del: 0, ins: 0 };
    for (let k = 0; k < 100; k++) {
      const id = k * 3;
      const sv = k % 2 === 0 ? 3 : -1;
      const t = target.get(id);
      if (t && t.v <= sv) {
        if (t.s === 'kill') {
          want.delete(id);
          m.del++;
          feed.push(`delete:${id}:${t.v}:${t.s}`);
        } else if (t.v % 2 === 0) {
          const n = { v: t.v + sv, s: `${t.s}+` };
          want.set(id, n);
          m.upd++;
          feed.push(`update_preimage:${id}:${t.v}:${t.s}`, `update_postimage:${id}:${n.v}:${n.s}`);
        }
      } else if (sv > 0 && !t) {
        want.set(id, { v: sv, s: 'src' });
        m.ins++;
        feed.push(`insert:${id}:${sv}:src`);
      } else if (sv > 0 && t) {
        // A target row with this id exists but the condition (t.v <= s.v) fails: not matched, inserted.
        want.set(-id - 1, { v: sv, s: 'src' });
        m.ins++;
        feed.push(`insert:${id}:${sv}:src`);
      }
    }
    assert.ok(m.upd > 5 && m.del > 3 && m.ins > 20, JSON.stringify(m));
    for (const r of [rd, rc]) {
      assert.equal(r.metrics.numTargetRowsUpdated, m.upd);
      assert.equal(r.metrics.numTargetRowsDeleted, m.del);
      assert.equal(r.metrics.numTargetRowsInserted, m.ins);
    }
    assert.ok((rd.metrics.numDeletionVectorsAdded ?? 0) > 0);
    const expected = [...want].map(([id, r]) => `${id < 0 ? -id - 1 : id}:${r.v}:${r.s}`).sort();
    const table = async (p: string): Promise<string[]> => (await floe.engine.allJson(`SELECT id::VARCHAR || ':' || v::VARCHAR || ':' || s AS r FROM (${await (await floe.read.delta(p)).toSQL()})`)).map((r) => String(r.r)).sort();
    assert.deepEqual(await table(dv), expected);
    assert.deepEqual(await table(cow), expected);
    const changes = async (p: string): Promise<string[]> => (await floe.engine.allJson(`SELECT _change_type || ':' || id::VARCHAR || ':' || v::VARCHAR || ':' || s AS r FROM (${await (await floe.read.changes(p, { startingVersion: 2 })).toSQL()})`)).map((r) => String(r.r)).sort();
    assert.deepEqual(await changes(dv), feed.sort());
    assert.deepEqual(await changes(cow), feed.sort());
    assert.deepEqual(await checkTable(dv), []);
  } finally {
    await floe.close();
  }
});

test('MERGE with deletion vectors and no change feed: UPDATE SET * (no target value read), a partial SET (the other columns kept from the target), a generated column', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = path.join(await tempDir(), 't');
    await DeltaTable.create(floe).location(p).addColumn('id', 'long').addColumn('v', 'long').addColumn('s', 'string')
      .addColumn('w', 'long', { generatedAlwaysAs: 'v * 10' }).property('delta.enableDeletionVectors', 'true').execute();
    await floe.duckdbSql("SELECT range::BIGINT AS id, range::BIGINT AS v, 'r' || range::VARCHAR AS s FROM range(0, 50)").write.delta(p, { mode: 'append' });
    await floe.duckdbSql("SELECT range::BIGINT AS id, range::BIGINT AS v, 'r' || range::VARCHAR AS s FROM range(50, 100)").write.delta(p, { mode: 'append' });
    const t = await DeltaTable.forPath(floe, p);
    // 1: ids 0, 5, .., 145 with v = -id, s = 'new': updated when present (all columns from the source), else inserted.
    const r1 = await t.alias('t').merge(floe.duckdbSql("SELECT range::BIGINT * 5 AS id, -(range::BIGINT * 5) AS v, 'new' AS s FROM range(0, 30)").alias('s'), 't.id = s.id')
      .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
    assert.equal(r1.metrics.numTargetRowsUpdated, 20);
    assert.equal(r1.metrics.numTargetRowsInserted, 10);
    // 2: ids 0, 3, .., 147: only v is set (s kept from the target row), w recomputed.
    const r2 = await t.alias('t').merge(floe.duckdbSql('SELECT range::BIGINT * 3 AS id, 1000 + range::BIGINT AS v FROM range(0, 50)').alias('s'), 't.id = s.id')
      .whenMatchedUpdate({ set: { v: 's.v' } }).execute();
    const want = new Map<number, [number, string]>();
    for (let i = 0; i < 100; i++) want.set(i, [i, `r${i}`]);
    for (let k = 0; k < 30; k++) want.set(k * 5, [-(k * 5), 'new']);
    let updated = 0;
    for (let k = 0; k < 50; k++) {
      const cur = want.get(k * 3);
      if (cur) {
        want.set(k * 3, [1000 + k, cur[1]]);
        updated++;
      }
    }
    assert.equal(r2.metrics.numTargetRowsUpdated, updated);
    assert.equal(r2.metrics.numTargetRowsInserted, 0);
    const got = (await floe.engine.allJson(`SELECT id::VARCHAR || ':' || v::VARCHAR || ':' || s || ':' || w::VARCHAR AS r FROM (${await (await floe.read.delta(p)).toSQL()}) ORDER BY id`)).map((r) => String(r.r));
    assert.deepEqual(got, [...want].sort((a, b) => a[0] - b[0]).map(([id, [v, s]]) => `${id}:${v}:${s}:${v * 10}`));
    assert.ok((await floe.snapshot(p)).files.some((f) => f.deletionVector));
    assert.deepEqual(await checkTable(p), []);
  } finally {
    await floe.close();
  }
});

test('MERGE with source columns named like its row markers (__sid, rowid): every source row is told apart, with and without deletion vectors', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const root = await tempDir();
    for (const dv of [true, false]) {
      const p = path.join(root, dv ? 'dv' : 'cow');
      await floe.duckdbSql('SELECT range::BIGINT AS id, range::BIGINT AS __sid, range::BIGINT AS rowid FROM range(10)').write.delta(p, { properties: dv ? { 'delta.enableDeletionVectors': 'true', 'delta.enableChangeDataFeed': 'true' } : { 'delta.enableChangeDataFeed': 'true' } });
      // Every source row has the same __sid and rowid values: ids 0, 2, .., 14 (5 updates, 3 inserts).
      const r = await (await DeltaTable.forPath(floe, p)).alias('t').merge(floe.duckdbSql('SELECT range::BIGINT * 2 AS id, 100::BIGINT AS __sid, 7::BIGINT AS rowid FROM range(8)').alias('s'), 't.id = s.id')
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
      assert.equal(r.metrics.numTargetRowsUpdated, 5, `dv ${dv}`);
      assert.equal(r.metrics.numTargetRowsInserted, 3, `dv ${dv}`);
      const got = (await floe.engine.allJson(`SELECT id::VARCHAR || ':' || __sid::VARCHAR || ':' || rowid::VARCHAR AS r FROM (${await (await floe.read.delta(p)).toSQL()}) ORDER BY id`)).map((x) => String(x.r));
      const want = [...Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? `${i}:100:7` : `${i}:${i}:${i}`)), '10:100:7', '12:100:7', '14:100:7'];
      assert.deepEqual(got, want, `dv ${dv}`);
      const feed = (await floe.engine.allJson(`SELECT _change_type AS c, count(*) AS n FROM (${await (await floe.read.changes(p, { startingVersion: 1 })).toSQL()}) GROUP BY ALL ORDER BY c`)).map((x) => `${String(x.c)}:${Number(x.n)}`);
      assert.deepEqual(feed, ['insert:3', 'update_postimage:5', 'update_preimage:5'], `dv ${dv}`);
    }
  } finally {
    await floe.close();
  }
});
