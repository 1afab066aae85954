/**
 * The snapshot-CDC example (`src/examples/snapshot-cdc.ts`): nightly full exports turned into an SCD
 * type 2 history by a pipeline whose AUTO CDC FROM SNAPSHOT flow reads the next export from a function.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { runPipeline } from '../pipelines/runner.js';
import { SNAPSHOT_EXPECTED, runSnapshotExample, snapshotPipeline } from '../examples/snapshot-cdc.js';
import { tempDir } from './helpers.js';

let floe: Floe;
before(async () => {
  floe = await Floe.create();
});
after(async () => {
  await floe.close();
});

test('snapshot CDC example: three exports give the documented SCD 2 history; a rerun without a new export changes nothing', async () => {
  const dir = await tempDir('floe-snapex-');
  assert.deepEqual(await runSnapshotExample(floe, dir), SNAPSHOT_EXPECTED);
  const warehouse = path.join(dir, 'warehouse');
  const before = (await floe.snapshot(path.join(warehouse, 'default', 'products_history')).catch(() => null))?.version;
  const r = await runPipeline({ floe, name: 'products', definitions: snapshotPipeline, warehouse, configuration: { exports: path.join(dir, 'exports') } });
  assert.equal(r.state, 'COMPLETED');
  const res = await floe.sql('SELECT count(*)::INTEGER AS n FROM products_history', { warehouse });
  assert.equal(res.kind, 'rows');
  if (res.kind === 'rows') assert.deepEqual(await res.dataFrame.toJSON(), [{ n: SNAPSHOT_EXPECTED.length }]);
  if (before !== undefined) assert.equal((await floe.snapshot(path.join(warehouse, 'default', 'products_history'))).version, before);
});

test('snapshot CDC example runs from the command line', async () => {
  const dir = await tempDir('floe-snapex-cli-');
  const r = spawnSync(process.execPath, [path.resolve('dist/examples/snapshot-cdc.js'), dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Electric kettle/);
  assert.match(r.stdout, /Mixer/);
});
