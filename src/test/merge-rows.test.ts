/**
 * The rows a MERGE with deletion vectors marks deleted, gathered by one unsorted read into per-file
 * bitmaps (merge-rows.ts): sorted, distinct rows per file; a target row matched twice detected (the
 * MERGE then groups in SQL and raises Spark's error, or lets an unconditional delete through).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { FloeError } from '../errors.js';
import { changedRowsByFile } from '../table/merge-rows.js';
import { buildDeletionVectorFileFromBitset, serializeBitsetRows, serializeSortedRows } from '../core/deletion-vector-writer.js';
import { parseRoaringBitmapArray } from '../core/deletion-vectors.js';
import { tempDir } from './helpers.js';

/** The set bits of a bitset, ascending. */
const rowsOf = (bits: Uint8Array | undefined): number[] => {
  const out: number[] = [];
  (bits ?? new Uint8Array(0)).forEach((b, i) => {
    for (let k = 0; k < 8; k++) if (b & (1 << k)) out.push(i * 8 + k);
  });
  return out;
};

test('serializeBitsetRows writes the bytes serializeSortedRows writes: empty, sparse and dense containers, a short last chunk', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const cases: number[][] = [[], [0], [65535, 65536], [3, 70000, 70001, 200000]];
  // Dense (bitmap containers) and sparse chunks mixed, over several 65536-row chunks.
  for (const density of [0.01, 0.06, 0.5, 0.999]) {
    const rows: number[] = [];
    for (let v = 0; v < 250_000; v++) if (rand() < density || (v >= 131072 && v < 131072 + 5000)) rows.push(v);
    cases.push(rows);
  }
  for (const rows of cases) {
    const bits = new Uint8Array(rows.length ? (rows[rows.length - 1]! >>> 3) + 1 + (rows.length % 3) : 0);
    for (const v of rows) bits[v >>> 3]! |= 1 << (v & 7);
    const { bytes, cardinality } = serializeBitsetRows(bits);
    assert.equal(cardinality, rows.length);
    assert.deepEqual(Buffer.from(bytes), Buffer.from(serializeSortedRows(Float64Array.from(rows))), `${rows.length} rows`);
    assert.deepEqual(parseRoaringBitmapArray(bytes), rows);
    assert.equal(buildDeletionVectorFileFromBitset(bits).descriptor.cardinality, rows.length);
  }
});

test('changedRowsByFile: rows of several files in any order come back as per-file bitsets; matched-unchanged rows left out; a row matched twice gives null', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const rows = (vals: string): string => `SELECT * FROM (VALUES ${vals}) AS v(f, r, m, c)`;
    // File 2: rows 9, 0, 8 (changed, unsorted, one changed without a match: NOT MATCHED BY SOURCE);
    // file 0: row 70000 (far into the bitmap) and row 3 matched but not changed; file 1: nothing.
    const got = await changedRowsByFile(floe, rows('(2, 9, true, true), (0, 70000, true, true), (2, 0, false, true), (0, 3, true, false), (2, 8, true, true)'), 3);
    assert.ok(got);
    assert.deepEqual([...got.keys()].sort(), [0, 2]);
    assert.deepEqual(rowsOf(got.get(2)), [0, 8, 9]);
    assert.deepEqual(rowsOf(got.get(0)), [70000]);
    // Row 5 of file 1 matched twice (even though neither pair changes it): null.
    assert.equal(await changedRowsByFile(floe, rows('(1, 5, true, false), (0, 1, true, true), (1, 5, true, false)'), 2), null);
    // The same row number in two files is two rows; a changed row seen twice without a match (not
    // possible from a join, but harmless) is one row.
    const two = await changedRowsByFile(floe, rows('(0, 5, true, true), (1, 5, true, true), (1, 6, false, true), (1, 6, false, true)'), 2);
    assert.deepEqual(rowsOf(two!.get(0)), [5]);
    assert.deepEqual(rowsOf(two!.get(1)), [5, 6]);
    // A row count hint below the rows seen (the bitset grows), and a row matched twice after growing.
    assert.deepEqual(rowsOf((await changedRowsByFile(floe, rows('(0, 3, true, true), (0, 100, true, true), (0, 5000, false, true)'), 1, () => 8))!.get(0)), [3, 100, 5000]);
    assert.equal(await changedRowsByFile(floe, rows('(0, 3, true, true), (0, 100, true, true), (0, 3, true, false)'), 1, () => 8), null);
    // A file index out of range, or no rows at all.
    assert.equal(await changedRowsByFile(floe, rows('(3, 0, true, true)'), 2), null);
    assert.equal((await changedRowsByFile(floe, `SELECT 0 AS f, 0 AS r, true AS m, true AS c WHERE false`, 2))!.size, 0);
  } finally {
    await floe.close();
  }
});

test('MERGE with deletion vectors: a target row matched by two source rows fails with Spark\'s error and changes nothing; an unconditional delete is let through and deletes it once', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const root = await tempDir();
    const p = path.join(root, 't');
    await floe.duckdbSql(`SELECT range::BIGINT AS id, 'v' || range::VARCHAR AS s FROM range(1000)`).write.delta(p, { properties: { 'delta.enableDeletionVectors': 'true', 'delta.enableChangeDataFeed': 'true' } });
    const src = floe.duckdbSql(`SELECT * FROM (VALUES (5::BIGINT, 'a'), (7, 'b'), (5, 'c'), (2000, 'd')) AS v(id, s)`).alias('s');
    const t = await DeltaTable.forPath(floe, p);
    await assert.rejects(
      () => t.alias('t').merge(src, 't.id = s.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(),
      (e: unknown) => e instanceof FloeError && e.code === 'DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE' && /1 target row/.test(e.message),
    );
    assert.equal((await floe.snapshot(p)).version, 0, 'nothing committed');
    const r = await (await DeltaTable.forPath(floe, p)).alias('t').merge(src, 't.id = s.id').whenMatchedDelete().execute();
    assert.equal(r.metrics.numTargetRowsDeleted, 2);
    assert.equal(r.metrics.numDeletionVectorsAdded, 1);
    const left = await floe.engine.allJson(`SELECT count(*) AS n, count(*) FILTER (WHERE id IN (5, 7)) AS gone FROM (${await (await floe.read.delta(p)).toSQL()})`);
    assert.deepEqual([Number(left[0]!.n), Number(left[0]!.gone)], [998, 0]);
    const feed = await floe.engine.allJson(`SELECT _change_type AS c, count(*) AS n FROM (${await (await floe.read.changes(p, { startingVersion: 1 })).toSQL()}) GROUP BY ALL`);
    assert.deepEqual(feed.map((x) => `${String(x.c)}:${Number(x.n)}`), ['delete:2']);
  } finally {
    await floe.close();
  }
});
