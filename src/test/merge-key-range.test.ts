/**
 * MERGE's source rows whose join key lies outside the candidate files' key range (exact stats) skip
 * the join (read from the source by a view): the same table, metrics and change feed as the general
 * path (a source key of another type, which never takes the shortcut), for integer and date keys,
 * NULL keys, insert conditions and values naming target columns (NULL there), with and without
 * deletion vectors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { tempDir } from './helpers.js';

for (const dv of [false, true]) {
  test(`MERGE: source keys beyond the target's key range take the view, and agree with the general path (deletion vectors ${dv})`, async () => {
    const floe = await Floe.create({ threads: 2 });
    try {
      const root = await tempDir();
      const props = { 'delta.enableChangeDataFeed': 'true', ...(dv ? { 'delta.enableDeletionVectors': 'true' } : {}) };
      const statements: string[] = [];
      const run = floe.engine.run.bind(floe.engine);
      floe.engine.run = async (sql: string) => {
        statements.push(sql);
        return run(sql);
      };
      const outcome = async (name: string, keyType: string, key: 'id' | 'd'): Promise<{ rows: string[]; feed: string[]; metrics: Record<string, number>; viaView: boolean }> => {
        const p = path.join(root, name);
        // Two files: ids 100..149 and 150..199 (dates 2020-01-01 + id days).
        for (const [a, b] of [[100, 150], [150, 200]]) {
          await floe.duckdbSql(`SELECT range::BIGINT AS id, DATE '2020-01-01' + range::INTEGER AS d, range::BIGINT * 10 AS v FROM range(${a}, ${b})`).write.delta(p, { mode: 'append', properties: props });
        }
        // Source: matches (120, 160), keys below and above the range (5, 250, 251), a NULL key.
        const src = `SELECT id::${keyType} AS id, CASE WHEN id IS NULL THEN NULL ELSE DATE '2020-01-01' + id::INTEGER END AS d, v FROM (VALUES (120, 1), (160, 2), (5, 3), (250, -4), (251, 5), (NULL, 6)) AS s(id, v)`;
        const before = statements.length;
        const r = await (await DeltaTable.forPath(floe, p)).alias('t').merge(floe.duckdbSql(src).alias('s'), `t.${key} = s.${key}`)
          .whenMatchedUpdate({ condition: 's.v > 1', set: { v: 't.v + s.v' } })
          .whenMatchedDelete()
          .whenNotMatchedInsert({ condition: 's.v > 0', values: { id: 'coalesce(s.id, -1)', d: 's.d', v: 's.v' } })
          .execute();
        const viaView = statements.slice(before).some((q) => /^CREATE TABLE __floe_mjoin_\d+ AS .* LEFT JOIN/s.test(q) && /NOT coalesce\(/.test(q));
        const rows = (await (await floe.read.delta(p)).toArray()).map((x) => `${Number(x.id)}|${x.d instanceof Date ? x.d.toISOString().slice(0, 10) : String(x.d)}|${Number(x.v)}`).sort();
        const feed = (await (await floe.read.changes(p, { startingVersion: 2, endingVersion: 2 })).toArray()).map((x) => `${String(x._change_type)}|${Number(x.id)}|${Number(x.v)}`).sort();
        const m = r.metrics;
        return { rows, feed, viaView, metrics: { ins: m.numTargetRowsInserted, upd: m.numTargetRowsUpdated, del: m.numTargetRowsDeleted, src: m.numSourceRows } };
      };
      const byId = await outcome('by-id', 'BIGINT', 'id');
      const byIdGeneral = await outcome('by-id-int', 'INTEGER', 'id');
      const byDate = await outcome('by-date', 'BIGINT', 'd');
      assert.ok(byId.viaView && byDate.viaView, 'the BIGINT id and DATE keys take the view');
      assert.ok(!byIdGeneral.viaView, 'an INTEGER source key against a BIGINT target key does not');
      for (const o of [byId, byIdGeneral, byDate]) {
        assert.deepEqual(o.metrics, { ins: 3, upd: 1, del: 1, src: 6 });
        assert.deepEqual(o.rows, byId.rows);
        assert.deepEqual(o.feed, byId.feed);
      }
      // 120 deleted (v = 1 is not > 1), 160 updated (1600 + 2), inserts 5, 251 and the NULL key (as -1).
      assert.equal(byId.rows.length, 100 - 1 + 3);
      assert.ok(byId.rows.includes('160|2020-06-09|1602'));
      assert.ok(!byId.rows.some((x) => x.startsWith('120|')));
      assert.ok(byId.rows.includes('5|2020-01-06|3') && byId.rows.includes('251|2020-09-08|5') && byId.rows.includes('-1|null|6'));
      assert.deepEqual(byId.feed, ['delete|120|1200', 'insert|-1|6', 'insert|251|5', 'insert|5|3', 'update_postimage|160|1602', 'update_preimage|160|1600']);
    } finally {
      await floe.close();
    }
  });
}
