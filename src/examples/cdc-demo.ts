/**
 * `npm run demo`: a change-data-capture job on the local filesystem.
 *
 * 1. Change events (inserts, updates, deletes with a sequence number) land as JSON files.
 * 2. Each file is appended to a bronze Delta table exactly once (idempotent `txn` per file).
 * 3. A MERGE keeps the silver table at one current row per key (SCD type 1): per key the event with
 *    the highest sequence number wins, deletes remove the key, stale events never overwrite newer
 *    rows. Each batch is one atomic commit, recorded for idempotency too.
 * 4. Silver has the change data feed on: the demo prints exactly which rows each batch changed.
 *
 * Run it twice: the second run changes nothing (every file was already applied).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeltaTable, Floe } from '../index.js';

const root = path.resolve(process.argv[2] ?? 'floe-demo');
const landing = path.join(root, 'landing');
const bronze = path.join(root, 'bronze_customers_changes');
const silver = path.join(root, 'silver_customers');

const batches = [
  [
    { op: 'INSERT', id: 1, name: 'Ada', city: 'London', seq: 1 },
    { op: 'INSERT', id: 2, name: 'Grace', city: 'New York', seq: 2 },
    { op: 'INSERT', id: 3, name: 'Linus', city: 'Helsinki', seq: 3 },
  ],
  [
    { op: 'UPDATE', id: 1, name: 'Ada', city: 'Cambridge', seq: 4 },
    { op: 'DELETE', id: 3, name: null, city: null, seq: 5 },
    { op: 'INSERT', id: 4, name: 'Barbara', city: 'Boston', seq: 6 },
  ],
  [
    // Out of order within the batch: seq decides, not file order.
    { op: 'UPDATE', id: 2, name: 'Grace', city: 'Arlington', seq: 9 },
    { op: 'UPDATE', id: 2, name: 'Grace', city: 'Washington', seq: 7 },
    { op: 'INSERT', id: 5, name: 'Edsger', city: 'Austin', seq: 8 },
  ],
];

async function main(): Promise<void> {
  await fs.mkdir(landing, { recursive: true });
  for (let i = 0; i < batches.length; i++) {
    await fs.writeFile(path.join(landing, `changes-${i + 1}.json`), batches[i]!.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  const floe = await Floe.create();
  try {
    if (!(await DeltaTable.isDeltaTable(floe, silver))) {
      await DeltaTable.createIfNotExists(floe)
        .location(silver)
        .addColumn('id', 'long', { nullable: false })
        .addColumn('name', 'string')
        .addColumn('city', 'string')
        .addColumn('seq', 'long')
        .property('delta.enableChangeDataFeed', 'true')
        .execute();
    }
    const files = (await fs.readdir(landing)).filter((f) => f.endsWith('.json')).sort();
    for (const [i, file] of files.entries()) {
      const batchNo = i + 1;
      // Bronze: the raw events, appended once per file.
      const b = await floe.read.json(path.join(landing, file)).write.delta(bronze, {
        mode: 'append', txnAppId: 'landing', txnVersion: batchNo, properties: { 'delta.enableChangeDataFeed': 'true' },
      });
      // Silver: the latest event per key of this batch (the bronze version it landed in), merged;
      // recorded as (silver-merge, batchNo).
      const bronzeVersion = b.skipped ? await versionOfBatch(floe, bronze, batchNo) : b.version!;
      const events = (await floe.read.changes(bronze, { startingVersion: bronzeVersion, endingVersion: bronzeVersion })).filter("_change_type = 'insert'");
      const latest = floe.duckdbSql(`SELECT * EXCLUDE (rn, _change_type, _commit_version, _commit_timestamp) FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY seq DESC) AS rn FROM (${await events.toSQL()})) WHERE rn = 1`);
      floe.config.set('spark.databricks.delta.write.txnAppId', 'silver-merge');
      floe.config.set('spark.databricks.delta.write.txnVersion', String(batchNo));
      const target = await DeltaTable.forPath(floe, silver);
      const m = await target.alias('target')
        .merge(latest.alias('source'), 'target.id = source.id')
        .whenMatchedDelete({ condition: "source.op = 'DELETE'" })
        .whenMatchedUpdate({ condition: 'source.seq > target.seq', set: { name: 'source.name', city: 'source.city', seq: 'source.seq' } })
        .whenNotMatchedInsert({ condition: "source.op <> 'DELETE'", values: { id: 'source.id', name: 'source.name', city: 'source.city', seq: 'source.seq' } })
        .execute();
      if (b.skipped && m.version === null) {
        console.log(`${file}: already applied, skipped`);
        continue;
      }
      const mm = m.metrics;
      console.log(`${file}: bronze ${b.skipped ? 'had it already' : `v${b.version} (+${b.numOutputRows} events)`}, silver ${m.version === null ? 'unchanged' : `v${m.version}`} (${mm.numTargetRowsInserted ?? 0} inserted, ${mm.numTargetRowsUpdated ?? 0} updated, ${mm.numTargetRowsDeleted ?? 0} deleted)`);
    }
    floe.config.unset('spark.databricks.delta.write.txnAppId');
    floe.config.unset('spark.databricks.delta.write.txnVersion');
    console.log('\nsilver_customers now:');
    await (await floe.read.delta(silver)).orderBy('id').show();
    console.log('silver_customers as of version 1 (after the first batch):');
    await (await floe.read.delta(silver, { versionAsOf: 1 })).orderBy('id').show();
    console.log('its change data feed (what each batch changed):');
    await (await floe.read.changes(silver, { startingVersion: 1 }))
      .orderBy('_commit_version', "CASE _change_type WHEN 'delete' THEN 0 WHEN 'update_preimage' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END", 'id')
      .select('_commit_version', '_change_type', 'id', 'name', 'city', 'seq')
      .show(50);
    const history = await (await DeltaTable.forPath(floe, silver)).history();
    console.log('history:');
    for (const h of history) console.log(`  v${h.version} ${h.timestamp} ${h.operation} ${JSON.stringify(h.operationMetrics)}`);
    console.log(`\nTables are in ${root}. Try: npx floe changes ${silver} --from 1`);
  } finally {
    await floe.close();
  }
}

/** The bronze version whose commit recorded (landing, batchNo) — for catching up silver after a crash. */
async function versionOfBatch(floe: Floe, table: string, batchNo: number): Promise<number> {
  for (const h of await (await DeltaTable.forPath(floe, table)).history()) {
    const log = floe.deltaLog(table);
    if ((await log.readCommit(h.version)).txns.some((t) => t.appId === 'landing' && t.version === batchNo)) return h.version;
  }
  throw new Error(`batch ${batchNo} is not in ${table}`);
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
