/** Tables floe creates with column mapping: ids and physical names assigned, data written by physical name, the feed readable. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeltaTable, Floe } from '../index.js';
import { checkTable } from './protocol-checker.js';
import { listNames, locJoin, newRoot } from './store.js';

test('a new name-mode table: physical names and ids, writes by physical name, DML and the change feed work', async () => {
  const dir = await newRoot();
  const p = locJoin(dir, 't');
  const floe = await Floe.create();
  try {
    await floe.duckdbSql("SELECT range::BIGINT AS id, 'p' || (range % 2) AS part, {'a': range, 'b': 'x'} AS st FROM range(6)")
      .write.delta(p, { partitionBy: ['part'], properties: { 'delta.columnMapping.mode': 'name', 'delta.enableChangeDataFeed': 'true' } });
    const snap = await floe.snapshot(p);
    assert.equal(snap.configuration['delta.columnMapping.maxColumnId'], '5'); // id, part, st, st.a, st.b
    for (const f of snap.schema.fields) {
      assert.match(String(f.metadata['delta.columnMapping.physicalName']), /^col-[0-9a-f-]{36}$/);
      assert.equal(typeof f.metadata['delta.columnMapping.id'], 'number');
    }
    assert.ok(snap.protocol.minReaderVersion >= 2 && snap.protocol.minWriterVersion >= 5);
    // Partition values are keyed by the physical name; the folders too.
    const partPhys = String(snap.schema.fields[1]!.metadata['delta.columnMapping.physicalName']);
    assert.ok(snap.files.every((f) => partPhys in f.partitionValues));
    assert.ok((await listNames(p, '')).some((n) => n.startsWith(`${partPhys}=`)));

    const t = await DeltaTable.forPath(floe, p);
    await t.update({ condition: 'id = 2', set: { st: "{'a': 99, 'b': 'y'}" } });
    await floe.duckdbSql("SELECT 10::BIGINT AS id, 'p0' AS part, {'a': 10, 'b': 'z'} AS st").write.delta(p, { mode: 'append' });
    const rows = (await (await floe.read.delta(p)).orderBy('id').toJSON()).map((r) => `${r.id}:${r.part}:${(r.st as { a: string }).a}`);
    assert.deepEqual(rows, ['0:p0:0', '1:p1:1', '2:p0:99', '3:p1:3', '4:p0:4', '5:p1:5', '10:p0:10']);
    const feed = (await (await floe.read.changes(p, { startingVersion: 1 })).toJSON()).map((r) => `${r._commit_version}:${r._change_type}:${r.id}`).sort();
    assert.deepEqual(feed, ['1:update_postimage:2', '1:update_preimage:2', '2:insert:10']);
    assert.deepEqual(await checkTable(p), []);
  } finally {
    await floe.close();
  }
});
