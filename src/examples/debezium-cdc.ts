/**
 * A Debezium change envelope (op c/u/d/r, `before` / `after` row structs, `source.lsn`, `ts_ms`)
 * mapped onto AUTO CDC with one DataFrame SELECT: the key and the columns come from `after`
 * (from `before` for deletes), deletes are `op = 'd'`, and the sequence is a STRUCT
 * (ts_ms, lsn) so that events in the same millisecond are ordered by log position.
 *
 *   npm run build && node dist/examples/debezium-cdc.js [DIR]
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import type { DataFrame } from '../dataframe.js';
import { applyChanges } from '../pipelines/auto-cdc.js';

/** Debezium events for a `customers` table, as a connector emits them (arrival order shuffled). */
export const DEBEZIUM_EVENTS = [
  { op: 'r', ts_ms: 1000, source: { lsn: 10 }, before: null, after: { id: 1, name: 'Ada', email: 'ada@old.example' } },
  { op: 'c', ts_ms: 1001, source: { lsn: 11 }, before: null, after: { id: 2, name: 'Grace', email: 'grace@example' } },
  { op: 'u', ts_ms: 1005, source: { lsn: 16 }, before: { id: 1, name: 'Ada', email: 'ada@new.example' }, after: { id: 1, name: 'Ada Lovelace', email: 'ada@new.example' } },
  // Same millisecond, earlier log position: arrives late, ordered before the event above by lsn.
  { op: 'u', ts_ms: 1005, source: { lsn: 15 }, before: { id: 1, name: 'Ada', email: 'ada@old.example' }, after: { id: 1, name: 'Ada', email: 'ada@new.example' } },
  { op: 'c', ts_ms: 1002, source: { lsn: 12 }, before: null, after: { id: 3, name: 'Linus', email: 'linus@example' } },
  { op: 'd', ts_ms: 1007, source: { lsn: 18 }, before: { id: 3, name: 'Linus', email: 'linus@example' }, after: null },
];

/** The mapping: one SELECT from the envelope to AUTO CDC's flat shape. */
export function fromDebezium(floe: Floe, envelopeSql: string): DataFrame {
  return floe.duckdbSql(`
    SELECT coalesce(after.id, before.id) AS id,
           after.name AS name,
           after.email AS email,
           op,
           struct_pack(ts_ms := ts_ms, lsn := source.lsn) AS seq
    FROM (${envelopeSql})`);
}

export async function runDebeziumExample(floe: Floe, dir: string): Promise<{ scd1: string; scd2: string }> {
  const raw = await floe.createDataFrame(DEBEZIUM_EVENTS);
  const changes = fromDebezium(floe, await raw.toSQL());
  const common = { source: changes, keys: ['id'], sequenceBy: 'seq', applyAsDeletes: "op = 'd'", exceptColumnList: ['op', 'seq'], batchId: 0 };
  const scd1 = path.join(dir, 'customers_scd1');
  const scd2 = path.join(dir, 'customers_scd2');
  await applyChanges(floe, { ...common, target: scd1, storedAsScdType: 1, flowName: 'debezium_scd1' });
  await applyChanges(floe, { ...common, target: scd2, storedAsScdType: 2, flowName: 'debezium_scd2' });
  return { scd1, scd2 };
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'floe-debezium-')));
  await fs.mkdir(dir, { recursive: true });
  const floe = await Floe.create();
  try {
    const { scd1, scd2 } = await runDebeziumExample(floe, dir);
    console.log(`SCD 1 (${scd1}):`);
    await (await floe.read.delta(scd1)).orderBy('id').show();
    console.log(`SCD 2 (${scd2}):`);
    await (await floe.read.delta(scd2)).orderBy('id', '"__START_AT"').show();
  } finally {
    await floe.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
