/**
 * Expectations, evaluated in DuckDB over a materialized batch: one aggregate query counts the rows
 * failing each expectation (`count(*) FILTER (WHERE …)`); a row passes an expectation when its
 * condition is TRUE (FALSE and NULL fail, as Delta CHECK constraints). `fail` expectations stop the
 * flow with EXPECTATION_VIOLATION naming the expectation and showing an offending row; `drop`
 * expectations filter the batch; `warn` expectations only count.
 */
import { quoteString } from '../core/schema.js';
import { FloeError } from '../errors.js';
import type { Floe } from '../floe.js';
import type { Expectation } from './definition.js';

export interface ExpectationMetric {
  name: string;
  dataset: string;
  passed_records: number;
  failed_records: number;
}

export interface ExpectationResult {
  /** SQL of the rows kept (the batch minus dropped rows). */
  sql: string;
  numInputRows: number;
  droppedRecords: number;
  /** warn and drop expectations (fail expectations record no metrics, as in DLT). */
  metrics: ExpectationMetric[];
}

const passes = (c: string): string => `coalesce((${c})::BOOLEAN, false)`;

/** Applies expectations to the engine table `table` (one query for all counts). */
export async function applyExpectations(floe: Floe, table: string, expectations: Array<Expectation & { dataset: string }>, flow: string): Promise<ExpectationResult> {
  const aggs = ['count(*) AS n', ...expectations.map((e, i) => `count(*) FILTER (WHERE NOT ${passes(e.condition)}) AS f${i}`)];
  const drops = expectations.filter((e) => e.action === 'drop');
  const keep = drops.length ? drops.map((e) => passes(e.condition)).join(' AND ') : 'true';
  if (drops.length) aggs.push(`count(*) FILTER (WHERE NOT (${keep})) AS dropped`);
  let row: Record<string, unknown>;
  try {
    row = (await floe.engine.allJson(`SELECT ${aggs.join(', ')} FROM ${table}`))[0]!;
  } catch (e) {
    // Find the expectation whose condition does not evaluate.
    for (const x of expectations) {
      try {
        await floe.engine.allJson(`SELECT count(*) FILTER (WHERE NOT ${passes(x.condition)}) FROM ${table}`);
      } catch (e2) {
        throw new FloeError('INVALID_EXPECTATION', `The expectation '${x.name}' on '${x.dataset}' (flow '${flow}') cannot be evaluated: ${x.condition}: ${(e2 as Error).message.split('\n')[0]}`, { expectation: x.name, flow }, { cause: e2 });
      }
    }
    throw e;
  }
  const n = Number(row.n);
  for (const [i, e] of expectations.entries()) {
    if (e.action !== 'fail') continue;
    const failed = Number(row[`f${i}`]);
    if (!failed) continue;
    const sample = (await floe.engine.allJson(`SELECT * FROM ${table} WHERE NOT ${passes(e.condition)} LIMIT 1`))[0];
    throw new FloeError(
      'EXPECTATION_VIOLATION',
      `Flow '${flow}' failed: the expectation '${e.name}' on '${e.dataset}' (${e.condition}) was violated by ${failed} of ${n} rows. An offending row: ${JSON.stringify(sample)}`,
      { flow, dataset: e.dataset, expectation: e.name, condition: e.condition, failedRecords: failed, row: sample },
    );
  }
  const metrics = expectations.flatMap((e, i) => (e.action === 'fail' ? [] : [{ name: e.name, dataset: e.dataset, passed_records: n - Number(row[`f${i}`]), failed_records: Number(row[`f${i}`]) }]));
  return {
    sql: drops.length ? `SELECT * FROM ${table} WHERE ${keep}` : `SELECT * FROM ${table}`,
    numInputRows: n,
    droppedRecords: drops.length ? Number(row.dropped) : 0,
    metrics,
  };
}

export { quoteString };
