/**
 * `npm run demo`, the Quick start's main job: the medallion CDC pipeline end to end on the local
 * filesystem (`node dist/examples/medallion/run.js [DIR]`, default ./floe-demo).
 *
 * 1. A first batch of customer change events (upserts and deletes with sequence numbers, ~10% out of
 *    order, some without an id) lands as a JSON file; the pipeline runs: bronze ingests the file
 *    (rows without an id dropped by an expectation), silver applies the changes by key and sequence
 *    (AUTO CDC, SCD type 1), gold recomputes customers per country.
 * 2. A second batch lands; the pipeline runs again and reads only the new file.
 * 3. It prints gold, what the second update changed in silver (its change data feed), silver as of the
 *    first update (time travel) and the updates from the event log.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { Floe } from '../../floe.js';
import { runPipeline, type RunPipelineResult } from '../../pipelines/runner.js';
import { listUpdates } from '../../pipelines/event-log.js';
import pipeline from './pipeline.js';
import { generateEvents, writeLanding } from './generate.js';

function summary(n: number, r: RunPipelineResult): string {
  const flows = Object.values(r.flows).map((f) => {
    const dropped = f.droppedRecords ? `, ${f.droppedRecords} dropped` : '';
    const cdc = f.numUpsertedRows || f.numDeletedRows ? ` (${f.numUpsertedRows} upserted, ${f.numDeletedRows} deleted)` : '';
    return `  ${f.flow}: ${f.numOutputRows} rows${cdc}${dropped}`;
  });
  return [`update ${n}: ${r.state}`, ...flows].join('\n');
}

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? 'floe-demo');
  await fs.rm(dir, { recursive: true, force: true });
  const landing = path.join(dir, 'landing');
  const warehouse = path.join(dir, 'warehouse');
  const floe = await Floe.create();
  const sql = async (text: string, rows = 20): Promise<void> => {
    const r = await floe.sql(text, { warehouse });
    if (r.kind === 'rows') await r.dataFrame.show(rows);
  };
  try {
    const opts = { floe, name: 'medallion', definitions: pipeline, warehouse, configuration: { landing } };
    await writeLanding(landing, 'events-0001.json', generateEvents(2000, 300, 1, 1));
    const r1 = await runPipeline(opts);
    console.log(summary(1, r1));
    await writeLanding(landing, 'events-0002.json', generateEvents(500, 300, 2001, 2));
    const r2 = await runPipeline(opts);
    console.log(summary(2, r2));
    if (r1.state !== 'COMPLETED' || r2.state !== 'COMPLETED') throw new Error('an update failed; see the event log');

    console.log('\ngold_customers_by_country:');
    await sql('SELECT * FROM gold_customers_by_country ORDER BY country');
    // The version update 2 wrote: silver's latest (its history, newest first).
    const h = await floe.sql('DESCRIBE HISTORY silver_customers LIMIT 1', { warehouse });
    const silverVersion = h.kind === 'status' ? Number(h.rows?.[0]?.version ?? NaN) : NaN;
    if (!Number.isInteger(silverVersion)) throw new Error('DESCRIBE HISTORY silver_customers gave no version');
    const before = silverVersion - 1;
    console.log(`what update 2 changed in silver_customers (its change data feed, version ${before + 1}):`);
    await sql(`SELECT _change_type, count(*) AS rows FROM table_changes('silver_customers', ${before + 1}) GROUP BY 1 ORDER BY 1`);
    console.log('for example:');
    await sql(`SELECT id, name, country, _change_type FROM table_changes('silver_customers', ${before + 1}) ORDER BY id, _change_type LIMIT 6`);
    console.log(`silver_customers as of version ${before} (after update 1) vs now:`);
    await sql(`SELECT 'version ${before}' AS snapshot, count(*) AS customers FROM silver_customers VERSION AS OF ${before} UNION ALL SELECT 'latest', count(*) FROM silver_customers`);
    console.log('updates (from the event log):');
    for (const u of await listUpdates(floe, r2.eventLog)) console.log(`  ${u.update_id.slice(0, 8)} ${u.state} ${u.started} → ${u.ended}`);
    console.log(`
Everything is in ${dir}. Next:
  npx floe sql --warehouse ${warehouse} -e "SELECT * FROM silver_customers LIMIT 5"
  npx floe history ${path.join(warehouse, 'default', 'silver_customers')}
  npx floe ui --warehouse ${warehouse}          # the pipeline page on http://127.0.0.1:4949/`);
  } finally {
    await floe.close();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
