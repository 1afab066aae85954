/**
 * AUTO CDC FROM SNAPSHOT: a source system that cannot emit change events exports its whole `products`
 * table every night as a CSV file (`exports/products_<N>.csv`). A pipeline turns the successive
 * snapshots into an SCD type 2 history: new keys are inserted, changed rows get a new version, keys
 * missing from a snapshot are closed (deleted), and unchanged rows are left alone.
 *
 * The flow's source is a function, as `create_auto_cdc_from_snapshot_flow(source=next_snapshot_and_version)`
 * in Databricks: given the last processed snapshot version it returns the next snapshot and its version,
 * or null when there is none yet. Each pipeline update processes every export that landed since the last
 * one, in version order, exactly once.
 *
 *   npm run build && node dist/examples/snapshot-cdc.js [DIR]
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import { definePipeline } from '../pipelines/definition.js';
import { runPipeline } from '../pipelines/runner.js';

/** Three nightly exports of the products table. */
export const PRODUCT_SNAPSHOTS: Record<number, string> = {
  1: 'product_id,name,price\n1,Kettle,25.00\n2,Toaster,30.00\n3,Blender,55.00\n',
  // The toaster's price changed, the blender was withdrawn, a mixer appeared.
  2: 'product_id,name,price\n1,Kettle,25.00\n2,Toaster,27.50\n4,Mixer,80.00\n',
  // Nothing changed but the kettle's name.
  3: 'product_id,name,price\n1,Electric kettle,25.00\n2,Toaster,27.50\n4,Mixer,80.00\n',
};

/** The SCD type 2 history after all three snapshots (`__START_AT` / `__END_AT` are snapshot versions). */
export const SNAPSHOT_EXPECTED = [
  { product_id: 1, name: 'Kettle', price: '25.00', __START_AT: 1, __END_AT: 3 },
  { product_id: 1, name: 'Electric kettle', price: '25.00', __START_AT: 3, __END_AT: null },
  { product_id: 2, name: 'Toaster', price: '30.00', __START_AT: 1, __END_AT: 2 },
  { product_id: 2, name: 'Toaster', price: '27.50', __START_AT: 2, __END_AT: null },
  { product_id: 3, name: 'Blender', price: '55.00', __START_AT: 1, __END_AT: 2 },
  { product_id: 4, name: 'Mixer', price: '80.00', __START_AT: 2, __END_AT: null },
];

const EXPORT = /^products_(\d+)\.csv$/;

/** The pipeline: a products history table fed by the exports folder (configuration key `exports`). */
export const snapshotPipeline = definePipeline((p) => {
  p.createStreamingTable('products_history', { comment: 'Every version of every product, from nightly full exports.' });
  p.createAutoCdcFromSnapshotFlow({
    target: 'products_history',
    keys: ['product_id'],
    storedAsScdType: 2,
    // The next export after `last`, or null: the pipeline calls this until it returns null.
    source: async (last, ctx) => {
      const dir = ctx.conf('exports', './exports');
      const versions = (await fs.readdir(dir).catch(() => [] as string[]))
        .map((f) => EXPORT.exec(f))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .filter((v) => last === null || v > last)
        .sort((a, b) => a - b);
      if (!versions.length) return null;
      const file = path.join(dir, `products_${versions[0]}.csv`);
      return { df: ctx.sql(`SELECT product_id::INTEGER AS product_id, name, price::DECIMAL(10,2) AS price FROM read_csv(${sqlString(file)}, header = true, all_varchar = true)`), version: versions[0]! };
    },
  });
});

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Lands the exports one night at a time and runs an update after each; returns the history table's rows. */
export async function runSnapshotExample(floe: Floe, dir: string): Promise<Record<string, unknown>[]> {
  const exportsDir = path.join(dir, 'exports');
  const warehouse = path.join(dir, 'warehouse');
  await fs.mkdir(exportsDir, { recursive: true });
  const opts = { floe, name: 'products', definitions: snapshotPipeline, warehouse, configuration: { exports: exportsDir } };
  for (const [night, csv] of Object.entries(PRODUCT_SNAPSHOTS)) {
    await fs.writeFile(path.join(exportsDir, `products_${night}.csv`), csv);
    const r = await runPipeline(opts);
    if (r.state !== 'COMPLETED') throw new Error(`update after export ${night} ended ${r.state}`);
  }
  const res = await floe.sql('SELECT product_id, name, CAST(price AS VARCHAR) AS price, __START_AT::INTEGER AS __START_AT, __END_AT::INTEGER AS __END_AT FROM products_history ORDER BY product_id, __START_AT', { warehouse });
  if (res.kind !== 'rows') throw new Error('expected rows');
  return res.dataFrame.toJSON();
}

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? 'floe-snapshot-cdc');
  await fs.rm(dir, { recursive: true, force: true });
  const floe = await Floe.create();
  try {
    const rows = await runSnapshotExample(floe, dir);
    console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))));
    console.log(`\nQuery it: npx floe sql --warehouse ${path.join(dir, 'warehouse')} -e "SELECT * FROM products_history"`);
  } finally {
    await floe.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
