/**
 * A warehouse with a pipeline run twice, for the UI tests: `shop` reads a source table into bronze
 * (expectations warn / drop), silver (AUTO CDC, SCD 1, change feed on) and gold (materialized view),
 * and into `strict` (expect_or_fail amount < 100) with `after_strict` downstream. The second update
 * lands an amount of 150: `strict` fails, `after_strict` is skipped, the others complete.
 */
import * as path from 'node:path';
import type { Floe } from '../floe.js';
import { definePipeline, expect, expectOrDrop, expectOrFail } from '../pipelines/definition.js';
import { type RunPipelineResult, runPipeline } from '../pipelines/runner.js';

export interface ShopFixture {
  warehouse: string;
  source: string;
  runs: RunPipelineResult[];
  /** Runs the pipeline once more (nothing new to read). */
  rerun(): Promise<RunPipelineResult>;
}

export async function shopFixture(floe: Floe, dir: string): Promise<ShopFixture> {
  const source = path.join(dir, 'source');
  const warehouse = path.join(dir, 'warehouse');
  const append = (values: string) => floe.duckdbSql(`SELECT * FROM (VALUES ${values}) v(id, amount, seq, op)`).write.delta(source, { mode: 'append' });
  const definitions = definePipeline((p) => {
    p.table({ name: 'bronze', query: (c) => c.readStream(source), expectations: [expect('positive', 'amount > 0'), expectOrDrop('has_id', 'id IS NOT NULL')] });
    p.createStreamingTable('silver');
    p.createAutoCdcFlow({ target: 'silver', source: 'bronze', keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'D'", exceptColumnList: ['op', 'seq'] });
    p.materializedView({ name: 'gold', query: (c) => c.sql('SELECT count(*)::BIGINT AS n, sum(amount)::BIGINT AS total FROM s', { s: c.read('silver') }) });
    p.table({ name: 'strict', query: (c) => c.readStream(source), expectations: [expectOrFail('small_amount', 'amount < 100')] });
    p.materializedView({ name: 'after_strict', query: (c) => c.read('strict') });
  });
  const opts = { floe, name: 'shop', definitions, warehouse };
  const runs: RunPipelineResult[] = [];
  await append("(1, 10, 1, 'U'), (2, 20, 2, 'U'), (3, 30, 3, 'U'), (NULL, 5, 4, 'U')");
  runs.push(await runPipeline(opts));
  await append("(1, 15, 5, 'U'), (2, 0, 6, 'D'), (4, 150, 7, 'U')");
  runs.push(await runPipeline(opts));
  return { warehouse, source, runs, rerun: () => runPipeline(opts) };
}
