/**
 * Runs the medallion example end to end: `node dist/examples/medallion/run.js [DIR]`.
 * Lands a first batch of events, runs the pipeline, lands a second batch, runs it again (only the
 * new file is processed), then prints the gold table and the updates of the event log.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { Floe } from '../../floe.js';
import { runPipeline } from '../../pipelines/runner.js';
import { listUpdates } from '../../pipelines/event-log.js';
import pipeline from './pipeline.js';
import { generateEvents, writeLanding } from './generate.js';

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? 'floe-medallion');
  await fs.rm(dir, { recursive: true, force: true });
  const landing = path.join(dir, 'landing');
  const warehouse = path.join(dir, 'warehouse');
  const floe = await Floe.create();
  try {
    const opts = { floe, name: 'medallion', definitions: pipeline, warehouse, configuration: { landing } };
    await writeLanding(landing, 'events-0001.json', generateEvents(2000, 300, 1, 1));
    const r1 = await runPipeline(opts);
    console.log(`update 1: ${r1.state}`, Object.values(r1.flows).map((f) => `${f.flow}=${f.numOutputRows}`).join(' '));
    await writeLanding(landing, 'events-0002.json', generateEvents(500, 300, 2001, 2));
    const r2 = await runPipeline(opts);
    console.log(`update 2: ${r2.state}`, Object.values(r2.flows).map((f) => `${f.flow}=${f.numOutputRows}`).join(' '));
    const gold = await floe.sql('SELECT * FROM gold_customers_by_country ORDER BY country', { warehouse });
    if (gold.kind === 'rows') await gold.dataFrame.show();
    console.log(await listUpdates(floe, r2.eventLog));
    console.log(`\nQuery it: npx floe sql --warehouse ${warehouse} -e "SELECT * FROM silver_customers LIMIT 5"`);
  } finally {
    await floe.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
