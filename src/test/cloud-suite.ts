/**
 * A representative table suite, run against any store: a backend gives a session factory and table
 * URLs; the same tests run on local files, Azurite and the in-test S3 server (cloud-tables.test.ts),
 * so the local run proves the suite can fail and the cloud runs prove the stores behave the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { applyChanges } from '../pipelines/auto-cdc.js';
import { tempDir } from './helpers.js';

export type Row = Record<string, unknown>;

export interface Backend {
  name: string;
  /** A new table location (unique). */
  location(name: string): string;
  /** Storage options for sessions on this backend (each call: a fresh cache folder, so reads start cold). */
  storageOptions(): Promise<Record<string, string>>;
  /** Objects under a table location (keys relative to it), to check what is stored. */
  list(location: string): Promise<string[]>;
}

export function plain(rows: Row[]): Row[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.toISOString() : v])));
}

export function sorted(rows: Row[], by = 'id'): Row[] {
  return plain(rows).sort((a, b) => Number(a[by]) - Number(b[by]) || String(a._change_type ?? '').localeCompare(String(b._change_type ?? '')));
}

export async function session(b: Backend, config: Record<string, string> = {}): Promise<Floe> {
  return Floe.create({ storageOptions: await b.storageOptions(), config });
}

export async function readRows(floe: Floe, loc: string, options: { versionAsOf?: number } = {}): Promise<Row[]> {
  return sorted(await (await floe.read.delta(loc, options)).toArray());
}

/** Defines the suite's tests for a backend (call inside a describe/test context that started it). */
export function tableSuite(backend: () => Backend): void {
  test('create, append, overwrite, time travel and history; a second session with a cold cache reads the same', async () => {
    const b = backend();
    const loc = b.location('basic');
    const floe = await session(b);
    try {
      await (await floe.createDataFrame([{ id: 1, v: 'a' }, { id: 2, v: 'b' }])).write.delta(loc);
      await (await floe.createDataFrame([{ id: 3, v: 'c' }])).write.delta(loc, { mode: 'append' });
      assert.deepEqual(await readRows(floe, loc), [{ id: 1, v: 'a' }, { id: 2, v: 'b' }, { id: 3, v: 'c' }]);
      await (await floe.createDataFrame([{ id: 9, v: 'z' }])).write.delta(loc, { mode: 'overwrite' });
      assert.deepEqual(await readRows(floe, loc), [{ id: 9, v: 'z' }]);
      assert.deepEqual(await readRows(floe, loc, { versionAsOf: 1 }), [{ id: 1, v: 'a' }, { id: 2, v: 'b' }, { id: 3, v: 'c' }]);
      const h = await (await DeltaTable.forPath(floe, loc)).history();
      assert.deepEqual(h.map((e) => e.operation), ['WRITE', 'WRITE', 'WRITE']);
      const other = await session(b);
      try {
        assert.deepEqual(await readRows(other, loc, { versionAsOf: 0 }), [{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
        assert.deepEqual(await readRows(other, loc), [{ id: 9, v: 'z' }]);
      } finally {
        await other.close();
      }
      const keys = await b.list(loc);
      assert.ok(keys.includes('_delta_log/00000000000000000002.json'), keys.join(', '));
      assert.equal(keys.filter((k) => k.endsWith('.parquet')).length, 3);
    } finally {
      await floe.close();
    }
  });

  test('partitioned writes, checkpoints (written and read back from a cold cache) and SQL on the URL', async () => {
    const b = backend();
    const loc = b.location('parts');
    const floe = await session(b);
    try {
      await (await floe.createDataFrame([{ id: 1, g: 'x' }, { id: 2, g: 'y' }])).write.delta(loc, { partitionBy: ['g'], properties: { 'delta.checkpointInterval': '3' } });
      for (let i = 3; i <= 5; i++) await (await floe.createDataFrame([{ id: i, g: i % 2 ? 'x' : 'y' }])).write.delta(loc, { mode: 'append' });
      const keys = await b.list(loc);
      assert.ok(keys.includes('_delta_log/00000000000000000003.checkpoint.parquet'), keys.join(', '));
      assert.ok(keys.includes('_delta_log/_last_checkpoint'));
      assert.ok(keys.some((k) => k.startsWith('g=x/')) && keys.some((k) => k.startsWith('g=y/')), keys.join(', '));
      const cold = await session(b);
      try {
        const snap = await cold.snapshot(loc);
        assert.equal(snap.version, 3);
        assert.deepEqual(await readRows(cold, loc), [1, 2, 3, 4, 5].map((id) => ({ id, g: id % 2 ? 'x' : 'y' })));
        const r = await cold.sql(`SELECT g, count(*) AS n FROM delta.\`${loc}\` GROUP BY g ORDER BY g`);
        assert.ok(r.kind === 'rows');
        assert.deepEqual(plain(await r.dataFrame.toArray()), [{ g: 'x', n: 3 }, { g: 'y', n: 2 }]);
      } finally {
        await cold.close();
      }
    } finally {
      await floe.close();
    }
  });

  test('DELETE, UPDATE and MERGE with the change data feed; changes read back', async () => {
    const b = backend();
    const loc = b.location('dml');
    const floe = await session(b);
    try {
      await (await floe.createDataFrame([{ id: 1, v: 10 }, { id: 2, v: 20 }, { id: 3, v: 30 }])).write.delta(loc, { properties: { 'delta.enableChangeDataFeed': 'true' } });
      const t = await DeltaTable.forPath(floe, loc);
      await t.delete('id = 1');
      await t.update({ condition: 'id = 2', set: { v: 'v + 1' } });
      const src = await floe.createDataFrame([{ id: 3, v: 33 }, { id: 4, v: 40 }]);
      await t.alias('t').merge(src.alias('s'), 't.id = s.id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute();
      assert.deepEqual(await readRows(floe, loc), [{ id: 2, v: 21 }, { id: 3, v: 33 }, { id: 4, v: 40 }]);
      const feed = sorted(plain(await (await floe.read.changes(loc, { startingVersion: 1 })).toArray()).map(({ _commit_timestamp: _t, ...r }) => r));
      assert.deepEqual(feed, [
        { id: 1, v: 10, _change_type: 'delete', _commit_version: 1 },
        { id: 2, v: 20, _change_type: 'update_preimage', _commit_version: 2 },
        { id: 2, v: 21, _change_type: 'update_postimage', _commit_version: 2 },
        { id: 3, v: 30, _change_type: 'update_preimage', _commit_version: 3 },
        { id: 3, v: 33, _change_type: 'update_postimage', _commit_version: 3 },
        { id: 4, v: 40, _change_type: 'insert', _commit_version: 3 },
      ].sort((a, b) => a.id - b.id || a._change_type.localeCompare(b._change_type)));
      assert.ok((await b.list(loc)).some((k) => k.startsWith('_change_data/')));
    } finally {
      await floe.close();
    }
  });

  test('deletion vectors are written to and read from the store', async () => {
    const b = backend();
    const loc = b.location('dv');
    const floe = await session(b);
    try {
      await (await floe.createDataFrame(Array.from({ length: 20 }, (_, i) => ({ id: i, v: i * 2 })))).write.delta(loc, { properties: { 'delta.enableDeletionVectors': 'true' } });
      const t = await DeltaTable.forPath(floe, loc);
      await t.delete('id % 3 = 0');
      const snap = await floe.snapshot(loc);
      assert.ok(snap.files.some((f) => f.deletionVector), 'a DV was written');
      const cold = await session(b);
      try {
        assert.deepEqual((await readRows(cold, loc)).map((r) => r.id), Array.from({ length: 20 }, (_, i) => i).filter((i) => i % 3 !== 0));
      } finally {
        await cold.close();
      }
    } finally {
      await floe.close();
    }
  });

  test('OPTIMIZE then VACUUM removes the compacted files from the store; the table still reads', async () => {
    const b = backend();
    const loc = b.location('maint');
    const floe = await session(b);
    try {
      for (let i = 0; i < 4; i++) await (await floe.createDataFrame([{ id: i }])).write.delta(loc, { mode: 'append' });
      const t = await DeltaTable.forPath(floe, loc);
      const r = await t.optimize();
      assert.equal(r.metrics.numFilesRemoved, 4);
      assert.equal((await floe.snapshot(loc)).files.length, 1);
      const before = (await b.list(loc)).filter((k) => k.endsWith('.parquet'));
      assert.equal(before.length, 5);
      const v = await t.vacuum(0, { allowShortRetention: true });
      assert.equal(v.filesDeleted.length, 4);
      const after = (await b.list(loc)).filter((k) => k.endsWith('.parquet'));
      assert.deepEqual(after, [decodeURIComponent((await floe.snapshot(loc)).files[0]!.path)]);
      const cold = await session(b);
      try {
        assert.deepEqual(await readRows(cold, loc), [0, 1, 2, 3].map((id) => ({ id })));
      } finally {
        await cold.close();
      }
    } finally {
      await floe.close();
    }
  });

  test('SQL: an external catalog table LOCATION in the store; INSERT, UPDATE, SELECT, history', async () => {
    const b = backend();
    const loc = b.location('sqlcat');
    const warehouse = await tempDir('floe-wh-');
    const floe = await session(b);
    try {
      const run = (q: string) => floe.sql(q, { warehouse });
      await run(`CREATE TABLE ev (id BIGINT, name STRING) USING DELTA LOCATION '${loc}'`);
      await run(`INSERT INTO ev VALUES (1, 'a'), (2, 'b'); UPDATE ev SET name = 'z' WHERE id = 2`);
      const r = await run('SELECT * FROM ev ORDER BY id');
      assert.ok(r.kind === 'rows');
      assert.deepEqual(plain(await r.dataFrame.toArray()), [{ id: 1, name: 'a' }, { id: 2, name: 'z' }]);
      const h = await run('DESCRIBE HISTORY ev');
      assert.equal((h.kind === 'rows' ? await h.dataFrame.toArray() : h.rows ?? []).length, 3);
      assert.ok((await b.list(loc)).includes('_delta_log/00000000000000000002.json'));
    } finally {
      await floe.close();
    }
  });

  test('AUTO CDC (SCD type 1) into a table in the store', async () => {
    const b = backend();
    const loc = b.location('autocdc');
    const floe = await session(b);
    try {
      const batch = async (rows: Row[], batchId: number): Promise<void> => {
        await applyChanges(floe, { target: loc, source: await floe.createDataFrame(rows), keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'D'", exceptColumnList: ['op', 'seq'], flowName: 'users', batchId });
      };
      await batch([{ id: 1, name: 'a', op: 'U', seq: 1 }, { id: 2, name: 'b', op: 'U', seq: 1 }, { id: 1, name: 'a2', op: 'U', seq: 2 }], 0);
      await batch([{ id: 2, name: 'b', op: 'D', seq: 3 }, { id: 3, name: 'c', op: 'U', seq: 3 }], 1);
      assert.deepEqual(await readRows(floe, loc), [{ id: 1, name: 'a2' }, { id: 3, name: 'c' }]);
    } finally {
      await floe.close();
    }
  });
}

/** A fresh cache folder per session. */
export async function cacheDir(): Promise<string> {
  return tempDir('floe-cache-test-');
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
