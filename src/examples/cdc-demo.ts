/**
 * `npm run demo`: a small change-data-capture job on the local filesystem.
 *
 * 1. Change events (inserts, updates, deletes with a sequence number) land as JSON files.
 * 2. Each file is appended to a bronze Delta table exactly once (idempotent `txn` per file).
 * 3. The silver table keeps one current row per key (SCD type 1): each batch's latest event per key
 *    wins by sequence number, deletes remove the key. Every batch is one atomic Delta commit.
 * 4. History and time travel show every step.
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
    const files = (await fs.readdir(landing)).filter((f) => f.endsWith('.json')).sort();
    for (const [i, file] of files.entries()) {
      const batchNo = i + 1;
      // Bronze: append the raw events once per file.
      const raw = floe.read.json(path.join(landing, file));
      const b = await raw.write.delta(bronze, { mode: 'append', txnAppId: 'landing', txnVersion: batchNo });
      // Silver keeps its own progress marker, so a crash between the two steps is caught up on rerun.
      const silverDone = (await DeltaTable.isDeltaTable(floe, silver)) ? (await floe.snapshot(silver)).txnVersion('silver-from-landing') ?? 0 : 0;
      if (b.skipped && silverDone >= batchNo) {
        console.log(`${file}: already applied, skipped`);
        continue;
      }
      // Silver: current state = old rows whose key did not change + the latest non-delete event per changed key.
      const events = (await floe.read.delta(bronze)).filter(`seq IN (SELECT seq FROM read_json_auto('${path.join(landing, file).replace(/'/g, "''")}'))`);
      const latest = `SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY seq DESC) AS rn FROM (${await events.toSQL()})) WHERE rn = 1`;
      const exists = await DeltaTable.isDeltaTable(floe, silver);
      const current = exists ? await (await floe.read.delta(silver)).toSQL() : 'SELECT NULL::BIGINT AS id, NULL::VARCHAR AS name, NULL::VARCHAR AS city, NULL::BIGINT AS seq WHERE false';
      const next = floe.sql(`
        SELECT c.id, c.name, c.city, c.seq FROM (${current}) c WHERE c.id NOT IN (SELECT id FROM (${latest}))
        UNION ALL
        SELECT id, name, city, seq FROM (${latest}) WHERE op <> 'DELETE'`);
      const s = await next.write.delta(silver, { mode: 'overwrite', txnAppId: 'silver-from-landing', txnVersion: batchNo });
      console.log(`${file}: bronze ${b.skipped ? 'already had it' : `v${b.version} (+${b.numOutputRows} events)`}, silver v${s.version} (${s.numOutputRows} current rows)`);
    }
    console.log('\nsilver_customers now:');
    await (await floe.read.delta(silver)).orderBy('id').show();
    console.log('silver_customers as of version 0:');
    await (await floe.read.delta(silver, { versionAsOf: 0 })).orderBy('id').show();
    const history = await (await DeltaTable.forPath(floe, silver)).history();
    console.log('history:');
    for (const h of history) console.log(`  v${h.version} ${h.timestamp} ${h.operation} ${JSON.stringify(h.operationMetrics)}`);
    console.log(`\nTables are in ${root}. Inspect them with: npx floe describe ${silver} --format json`);
  } finally {
    await floe.close();
  }
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
