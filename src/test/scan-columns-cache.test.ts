/**
 * planScan's per-file Parquet column cache (a rescan asks DuckDB only about files it has not seen;
 * files whose columns differ still take the union DESCRIBE) and DeltaLog.exists() answered without
 * a listing once the log has been loaded.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { tempDir } from './helpers.js';

let floe: Floe;
let dir: string;
let n = 0;
const fresh = (): string => path.join(dir, `t${++n}`);
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-scancols-');
});
after(async () => {
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs `fn` and returns the data files named in the DESCRIBE statements it ran (one entry per file per statement). */
async function describedFiles(fn: () => Promise<unknown>): Promise<string[]> {
  const eng = floe.engine as unknown as Record<string, (sql: string) => Promise<unknown>>;
  const seen: string[] = [];
  const originals = { allJson: eng.allJson!, run: eng.run! };
  for (const k of ['allJson', 'run'] as const) {
    eng[k] = async (sql: string) => {
      for (const m of sql.matchAll(/DESCRIBE SELECT \* FROM read_parquet\(\[([^\]]*)\]/g)) seen.push(...m[1]!.split(', ').map((p) => path.basename(p.replace(/'/g, ''))));
      return originals[k].call(floe.engine, sql);
    };
  }
  try {
    await fn();
  } finally {
    eng.allJson = originals.allJson;
    eng.run = originals.run;
  }
  return seen;
}

const rows = async (t: string): Promise<Record<string, unknown>[]> => (await floe.read.delta(t)).orderBy('id').toJSON();

test('a rescan describes only the data files it has not seen', async () => {
  const t = fresh();
  for (let i = 0; i < 3; i++) await floe.duckdbSql(`SELECT ${i}::BIGINT AS id, 'v${i}' AS s`).write.delta(t, { mode: 'append' });
  const first = await describedFiles(() => rows(t));
  assert.equal(first.length, 3, `each file described once: ${first.join(', ')}`);
  assert.deepEqual(await describedFiles(() => rows(t)), [], 'nothing new: no DESCRIBE');
  await floe.duckdbSql(`SELECT 3::BIGINT AS id, 'v3' AS s`).write.delta(t, { mode: 'append' });
  const files = (await floe.snapshot(t)).files.map((f) => f.path);
  const third = await describedFiles(async () => assert.deepEqual((await rows(t)).map((r) => [Number(r.id), r.s]), [[0, 'v0'], [1, 'v1'], [2, 'v2'], [3, 'v3']]));
  assert.deepEqual(third, [files.find((f) => !first.includes(f))], 'only the new file');
  // A file changed by a deletion vector keeps its columns (same file, same size): not described again.
  await floe.sql(`ALTER TABLE delta.\`${t}\` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')`);
  await floe.sql(`DELETE FROM delta.\`${t}\` WHERE id = 1`);
  assert.deepEqual(await describedFiles(async () => assert.deepEqual((await rows(t)).map((r) => Number(r.id)), [0, 2, 3])), []);
});

test('files with different columns still read as the union of their columns, in the table schema order', async () => {
  const t = fresh();
  // Many columns, not in alphabetical order: each file's columns are kept in their order.
  const cols = ['id', 'zeta', 'alpha', 'mu', 'beta', 'omega', 'gamma', 'kappa', 'delta', 'eps', 'iota', 'lambda'];
  await floe.duckdbSql(`SELECT ${cols.map((c, i) => `${i}::BIGINT AS ${c}`).join(', ')}`).write.delta(t, { mode: 'append' });
  await floe.duckdbSql(`SELECT ${cols.map((c, i) => `${100 + i}::BIGINT AS ${c}`).join(', ')}`).write.delta(t, { mode: 'append' });
  const expect = (base: number): Record<string, string> => Object.fromEntries(cols.map((c, i) => [c, String(base + i)]));
  assert.deepEqual(await rows(t), [expect(0), expect(100)]);
  // A new column (schema evolution) in a later file: the files now differ.
  await floe.duckdbSql(`SELECT ${cols.map((c, i) => `${200 + i}::BIGINT AS ${c}`).join(', ')}, 'x' AS extra`).write.delta(t, { mode: 'append', mergeSchema: true });
  const got = await rows(t);
  assert.deepEqual(got.map((r) => [r.id, r.lambda, r.extra]), [['0', '11', null], ['100', '111', null], ['200', '211', 'x']]);
  assert.deepEqual(Object.keys(got[0]!), [...cols, 'extra']);
});

test('DeltaLog.exists(): no listing once the log is loaded; false once the table is gone', async () => {
  const t = fresh();
  await floe.duckdbSql(`SELECT 1::BIGINT AS id`).write.delta(t, { mode: 'append' });
  const log = floe.deltaLog(t);
  await log.snapshot();
  const store = log.store;
  const list = store.list;
  let listings = 0;
  store.list = (...a: Parameters<typeof store.list>) => {
    listings++;
    return list.apply(store, a);
  };
  try {
    assert.equal(await log.exists(), true);
    assert.equal(listings, 0);
    await fs.rm(t, { recursive: true, force: true });
    assert.equal(await log.exists(), false);
    assert.equal(listings, 1, 'the loaded commit is gone: the log is listed');
  } finally {
    store.list = list;
  }
  floe.forgetLog(t);
});
