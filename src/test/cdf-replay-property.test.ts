/**
 * The change data feed replays the table (fast-check, ~30 runs): random sequences of appends,
 * deletes (whole table, partition-only, data predicates), updates, MERGEs (upserts, conditional
 * deletes, not-matched-by-source clauses; source keys unique, null keys allowed) and overwrites
 * (whole table, replaceWhere) on a small table with the feed on, partitioned or not. For every
 * version v, applying the feed of versions 0..v to an empty table (insert adds a row, delete removes
 * one equal row, update_preimage removes, update_postimage adds) rebuilds exactly the snapshot at v.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { locJoin, newRoot } from './store.js';

interface R {
  id: number | null;
  v: number | null;
  g: string;
}

type Op =
  | { op: 'append'; rows: R[] }
  | { op: 'delete'; predicate: string | null }
  | { op: 'update'; condition: string | null; set: Record<string, string> }
  | { op: 'merge'; source: R[]; clauses: number }
  | { op: 'overwrite'; rows: R[]; replaceX: boolean };

const rowArb: fc.Arbitrary<R> = fc.record({
  id: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 7 }) }, { weight: 1, arbitrary: fc.constant(null) }),
  v: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 9 }) }, { weight: 1, arbitrary: fc.constant(null) }),
  g: fc.constantFrom('x', 'y'),
});
const rowsArb = fc.array(rowArb, { minLength: 1, maxLength: 5 });
const K = fc.integer({ min: 0, max: 8 });
const predArb: fc.Arbitrary<string> = fc.oneof(
  K.map((k) => `id = ${k}`),
  K.map((k) => `v < ${k}`),
  fc.constantFrom('id IS NULL', "g = 'x'", "g = 'y' AND v > 4", 'id % 2 = 0'),
);

/** MERGE clause sets (index into MERGES). */
const MERGES = [
  'upsert', 'delete matched, insert', 'conditional update, delete not matched by source', 'update not matched by source', 'conditional delete, update rest, conditional insert',
] as const;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: rowsArb.map((rows): Op => ({ op: 'append', rows })) },
  { weight: 2, arbitrary: fc.oneof({ weight: 5, arbitrary: predArb }, { weight: 1, arbitrary: fc.constant(null) }).map((predicate): Op => ({ op: 'delete', predicate })) },
  {
    weight: 2,
    arbitrary: fc.record({
      condition: fc.oneof({ weight: 4, arbitrary: predArb }, { weight: 1, arbitrary: fc.constant(null) }),
      set: fc.constantFrom<Record<string, string>>({ v: 'v + 1' }, { v: 'NULL' }, { v: 'id * 2' }, { id: 'coalesce(id, 0) + 10', v: '0' }),
    }).map((x): Op => ({ op: 'update', ...x })),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      // unique non-null keys (duplicates are the MERGE property test's business); null keys allowed
      source: fc.uniqueArray(rowArb, { minLength: 0, maxLength: 6, selector: (r) => (r.id === null ? `null-${r.v}-${r.g}` : r.id) }),
      clauses: fc.integer({ min: 0, max: MERGES.length - 1 }),
    }).map((x): Op => ({ op: 'merge', ...x })),
  },
  { weight: 1, arbitrary: fc.record({ rows: rowsArb, replaceX: fc.boolean() }).map((x): Op => ({ op: 'overwrite', ...x })) },
);

const lit = (r: R): string => `(${r.id ?? 'NULL'}::BIGINT, ${r.v ?? 'NULL'}::BIGINT, '${r.g}')`;
const valuesSql = (rs: R[]): string => (rs.length ? `SELECT * FROM (VALUES ${rs.map(lit).join(', ')}) AS s(id, v, g)` : "SELECT NULL::BIGINT AS id, NULL::BIGINT AS v, 'x' AS g WHERE false");

const big = (v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : v);
const keyOf = (r: Record<string, unknown>): string => JSON.stringify([big(r.id) ?? null, big(r.v) ?? null, r.g ?? null]);

async function apply(floe: Floe, p: string, o: Op, partitioned: boolean): Promise<void> {
  const t = await DeltaTable.forPath(floe, p);
  switch (o.op) {
    case 'append':
      await floe.duckdbSql(valuesSql(o.rows)).write.delta(p, { mode: 'append' });
      return;
    case 'delete':
      await (o.predicate === null ? t.delete() : t.delete(o.predicate));
      return;
    case 'update':
      await t.update({ ...(o.condition === null ? {} : { condition: o.condition }), set: o.set });
      return;
    case 'overwrite': {
      if (o.replaceX && partitioned) {
        await floe.duckdbSql(valuesSql(o.rows.map((r) => ({ ...r, g: 'x' })))).write.delta(p, { mode: 'overwrite', replaceWhere: "g = 'x'" });
      } else await floe.duckdbSql(valuesSql(o.rows)).write.delta(p, { mode: 'overwrite' });
      return;
    }
    case 'merge': {
      const m = t.alias('target').merge(floe.duckdbSql(valuesSql(o.source)).alias('source'), 'target.id = source.id');
      switch (MERGES[o.clauses]) {
        case 'upsert':
          await m.whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
          return;
        case 'delete matched, insert':
          await m.whenMatchedDelete().whenNotMatchedInsertAll().execute();
          return;
        case 'conditional update, delete not matched by source':
          await m.whenMatchedUpdate({ condition: 'source.v > 4', set: { v: 'source.v + target.v' } }).whenNotMatchedBySourceDelete({ condition: 'target.v < 2' }).execute();
          return;
        case 'update not matched by source':
          await m.whenNotMatchedBySourceUpdate({ set: { v: 'coalesce(target.v, 0) + 100' } }).whenNotMatchedInsertAll({ condition: 'source.v > 5' }).execute();
          return;
        default:
          await m.whenMatchedDelete({ condition: 'source.v < 3' }).whenMatchedUpdateAll().whenNotMatchedInsert({ condition: 'source.id IS NOT NULL', values: { id: 'source.id', v: '-1', g: 'source.g' } }).execute();
      }
    }
  }
}

test('replaying the change data feed from version 0 rebuilds every snapshot (property)', async (t) => {
  const dir = await newRoot('floe-cdf-replay-');
  const floe = await Floe.create({ threads: 2 });
  let n = 0;
  let versions = 0;
  let changeRows = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 3, maxLength: 10 }), fc.boolean(), async (ops, partitioned) => {
        const p = locJoin(dir, `t${n++}`);
        await DeltaTable.create(floe, {
          path: p,
          schema: [{ name: 'id', type: 'long' }, { name: 'v', type: 'long' }, { name: 'g', type: 'string' }],
          partitionBy: partitioned ? ['g'] : [],
          properties: { 'delta.enableChangeDataFeed': 'true' },
        });
        const done: string[] = [];
        for (const o of ops) {
          const before = await (await DeltaTable.forPath(floe, p)).version();
          try {
            await apply(floe, p, o, partitioned);
          } catch (e) {
            assert.fail(`${JSON.stringify(o)} failed after [${done.join('; ')}] (version ${before}): ${String(e)}`);
          }
          done.push(JSON.stringify(o));
        }
        const latest = await (await DeltaTable.forPath(floe, p)).version();
        const feed = await (await floe.read.changes(p, { startingVersion: 0 })).toArray();
        changeRows += feed.length;
        const state = new Map<string, number>();
        for (let v = 0; v <= latest; v++) {
          const rows = feed.filter((r) => Number(r._commit_version) === v);
          for (const r of rows.filter((x) => x._change_type === 'delete' || x._change_type === 'update_preimage')) {
            const k = keyOf(r);
            const c = state.get(k) ?? 0;
            assert.ok(c > 0, `version ${v}: ${String(r._change_type)} of ${k}, which is not in the table; ops [${done.join('; ')}], partitioned ${partitioned}`);
            if (c === 1) state.delete(k);
            else state.set(k, c - 1);
          }
          for (const r of rows.filter((x) => x._change_type === 'insert' || x._change_type === 'update_postimage')) state.set(keyOf(r), (state.get(keyOf(r)) ?? 0) + 1);
          assert.ok(rows.every((r) => ['insert', 'delete', 'update_preimage', 'update_postimage'].includes(String(r._change_type))));
          const snap = (await (await floe.read.delta(p, { versionAsOf: v })).toArray()).map(keyOf).sort();
          const replayed = [...state].flatMap(([k, c]) => Array<string>(c).fill(k)).sort();
          assert.deepEqual(replayed, snap, `version ${v}: replayed feed differs from the snapshot; ops [${done.join('; ')}], partitioned ${partitioned}`);
          versions++;
        }
      }),
      { numRuns: 30, includeErrorInReport: true },
    );
  } finally {
    await floe.close();
  }
  t.diagnostic(`${versions} versions replayed from ${changeRows} change rows`);
});
