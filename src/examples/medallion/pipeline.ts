/**
 * The medallion example pipeline: bronze -> silver (AUTO CDC, SCD type 1) -> gold (materialized view).
 *
 * - bronze_events: a streaming table ingesting the JSON files that land in the `landing` folder
 *   (configuration key), each file exactly once; rows without an id are dropped (expectation).
 * - silver_customers: one current row per customer, from the change events by sequence number;
 *   `op = 'DELETE'` events delete the customer.
 * - gold_customers_by_country: customers per country, recomputed on every update.
 */
import { definePipeline, expect, expectOrDrop } from '../../pipelines/definition.js';

export default definePipeline((p) => {
  p.table({
    name: 'bronze_events',
    comment: 'Raw customer change events, one row per event, as landed.',
    query: (ctx) => ctx.readStreamFiles(ctx.conf('landing', './landing'), { format: 'json' }),
    expectations: [expectOrDrop('valid_id', 'id IS NOT NULL'), expect('known_op', "op IN ('UPSERT', 'DELETE')")],
  });

  p.createStreamingTable('silver_customers', { comment: 'Current customers (SCD type 1).' });
  p.createAutoCdcFlow({
    target: 'silver_customers',
    source: 'bronze_events',
    keys: ['id'],
    sequenceBy: 'seq',
    applyAsDeletes: "op = 'DELETE'",
    exceptColumnList: ['op', 'seq'],
    storedAsScdType: 1,
  });

  p.materializedView({
    name: 'gold_customers_by_country',
    comment: 'Number of current customers per country.',
    query: (ctx) => ctx.sql('SELECT country, count(*)::BIGINT AS customers FROM silver GROUP BY country', { silver: ctx.read('silver_customers') }),
  });
});
