/**
 * Idempotent DML scoped to an async call chain (withIdempotentTxn): two concurrent callers on one
 * session (two pipelines, two AUTO CDC flows) each commit with their own (appId, version), and a
 * repeated pair is skipped, without touching the session's shared txnAppId / txnVersion settings.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { withIdempotentTxn } from '../table/dml.js';
import { locJoin, newRoot, readText } from './store.js';

let floe: Floe;
before(async () => {
  floe = await Floe.create({ threads: 2 });
});
after(async () => {
  await floe.close();
});

async function txnOf(table: string, version: number): Promise<Array<{ appId: string; version: number }>> {
  const text = await readText(table, `_delta_log/${String(version).padStart(20, '0')}.json`);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { txn?: { appId: string; version: number } }).flatMap((a) => (a.txn ? [{ appId: a.txn.appId, version: a.txn.version }] : []));
}

test('concurrent idempotent DML on one session: each commit carries its own txn; a repeated pair is skipped; the session settings are untouched', async () => {
  const dir = await newRoot('floe-txn-');
  const a = locJoin(dir, 'a');
  const b = locJoin(dir, 'b');
  await floe.duckdbSql('SELECT range::INT AS id FROM range(10)').write.delta(a);
  await floe.duckdbSql('SELECT range::INT AS id FROM range(10)').write.delta(b);
  const ta = await DeltaTable.forPath(floe, a);
  const tb = await DeltaTable.forPath(floe, b);
  // A starts first and is still waiting when B sets its pair: with a session-wide setting, A's commit
  // would record B's pair.
  let bStarted!: () => void;
  const started = new Promise<void>((r) => (bStarted = r));
  const [ra, rb] = await Promise.all([
    withIdempotentTxn('flow_a', 1, async () => {
      await started;
      return ta.delete('id = 1');
    }),
    withIdempotentTxn('flow_b', 7, async () => {
      bStarted();
      return tb.delete('id = 2');
    }),
  ]);
  assert.deepEqual(await txnOf(a, ra.version!), [{ appId: 'flow_a', version: 1 }]);
  assert.deepEqual(await txnOf(b, rb.version!), [{ appId: 'flow_b', version: 7 }]);
  assert.equal(floe.config.get('spark.databricks.delta.write.txnAppId'), undefined);
  // The same pair again: skipped, nothing deleted.
  const again = await withIdempotentTxn('flow_a', 1, () => ta.delete('id = 3'));
  assert.equal(again.version, null);
  assert.equal((await (await floe.read.delta(a)).toJSON()).length, 9);
  // A newer version of the pair applies.
  const next = await withIdempotentTxn('flow_a', 2, () => ta.delete('id = 3'));
  assert.deepEqual(await txnOf(a, next.version!), [{ appId: 'flow_a', version: 2 }]);
});
