/** The medallion example (landing JSON -> bronze -> silver AUTO CDC -> gold MV), run twice on generated data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { runPipeline } from '../pipelines/runner.js';
import pipeline from '../examples/medallion/pipeline.js';
import { generateEvents, model, writeLanding } from '../examples/medallion/generate.js';
import { tempDir } from './helpers.js';

test('medallion: two runs, the second processes only the new file; silver and gold match the model', async () => {
  const dir = await tempDir('floe-medallion-');
  const floe = await Floe.create({ threads: 2 });
  try {
    const landing = path.join(dir, 'landing');
    const warehouse = path.join(dir, 'wh');
    const opts = { floe, name: 'medallion', definitions: pipeline, warehouse, configuration: { landing } };
    const b1 = generateEvents(1500, 200, 1, 11);
    await writeLanding(landing, 'events-0001.json', b1);
    const r1 = await runPipeline(opts);
    assert.equal(r1.state, 'COMPLETED');
    const nulls1 = b1.filter((e) => e.id === null).length;
    assert.equal(r1.flows.bronze_events!.numOutputRows, b1.length - nulls1);
    assert.equal(r1.flows.bronze_events!.droppedRecords, nulls1);

    const b2 = generateEvents(400, 200, 1501, 12);
    // late events: some of batch 2 carry sequence numbers older than batch 1's latest
    for (const e of b2.slice(0, 20)) e.seq -= 1000;
    await writeLanding(landing, 'events-0002.json', b2);
    const r2 = await runPipeline(opts);
    assert.equal(r2.state, 'COMPLETED');
    assert.equal(r2.flows.bronze_events!.numOutputRows, b2.filter((e) => e.id !== null).length, 'only the new file');
    const q = async (sql: string) => {
      const r = await floe.sql(sql, { warehouse });
      return r.kind === 'rows' ? r.dataFrame.toJSON() : [];
    };
    assert.deepEqual(await q('SELECT count(*)::INT AS n FROM bronze_events'), [{ n: b1.length + b2.length - nulls1 - b2.filter((e) => e.id === null).length }]);
    // A late event re-using an applied (key, seq) is a re-delivery: the first wins, in AUTO CDC and in the model.
    const expected = model([...b1, ...b2]);
    const silver = await q('SELECT id::INT AS id, name, country FROM silver_customers ORDER BY id');
    assert.deepEqual(silver, [...expected.entries()].sort((a, b) => a[0] - b[0]).map(([id, v]) => ({ id, ...v })));
    const byCountry = new Map<string, number>();
    for (const v of expected.values()) byCountry.set(v.country, (byCountry.get(v.country) ?? 0) + 1);
    assert.deepEqual(await q('SELECT country, customers::INT AS customers FROM gold_customers_by_country ORDER BY country'), [...byCountry.entries()].sort().map(([country, customers]) => ({ country, customers })));
    const r3 = await runPipeline(opts);
    assert.deepEqual(Object.values(r3.flows).map((f) => f.note), ['no new data', 'no new data', 'inputs unchanged; up to date']);
  } finally {
    await floe.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
