/**
 * AUTO CDC and the types of a batch: a batch whose column types differ from the target's and the
 * state's (a key that became BIGINT, an untyped NULL column) is applied with the tables' types, both
 * commits or neither; a value that does not fit fails before anything commits; option expressions
 * that do not bind, conditions that are not boolean and options of the wrong type are typed errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { Floe } from '../floe.js';
import { type ApplyChangesOptions, STATE_DIR, applyChanges } from '../pipelines/auto-cdc.js';
import { addColumns } from '../table/alter.js';
import { isRemoteStore, locJoin, newRoot } from './store.js';

let floe: Floe;
let dir: string;
let n = 0;
const fresh = (): string => locJoin(dir, `t${++n}`);
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await newRoot('floe-autocdc-types-');
});
after(async () => {
  await floe.close();
  if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
});

const opts = (target: string, scd: 1 | 2, sql: string, batchId: number, extra: Partial<ApplyChangesOptions> = {}): ApplyChangesOptions => ({
  target, source: floe.duckdbSql(sql), keys: ['id'], sequenceBy: 'seq', storedAsScdType: scd, exceptColumnList: ['seq'], flowName: 'f', batchId, ...extra,
});
const rows = async (t: string, order: string): Promise<unknown[]> => (await floe.read.delta(t)).orderBy(order).toJSON();
const versions = async (t: string): Promise<[number, number]> => [(await floe.snapshot(t)).version, (await floe.snapshot(locJoin(t, STATE_DIR))).version];
const code = (c: string) => (e: Error & { code?: string }): boolean => e.code === c;

for (const scd of [1, 2] as const) {
  test(`SCD ${scd}: a key column that became BIGINT is written with the target's and the state's INTEGER, both commits`, async () => {
    const t = fresh();
    await applyChanges(floe, opts(t, scd, `SELECT 1 AS id, 1 AS seq, 'a' AS name`, 0));
    const r = await applyChanges(floe, opts(t, scd, `SELECT 1::BIGINT AS id, 5::BIGINT AS seq, 'b' AS name UNION ALL SELECT 2::BIGINT, 6::BIGINT, 'c'`, 1));
    assert.equal(r.targetVersion, 1);
    assert.equal(r.stateVersion, 1);
    assert.deepEqual(await versions(t), [1, 1]);
    // A late event (INTEGER again) lands inside the history the BIGINT batch wrote.
    await applyChanges(floe, opts(t, scd, `SELECT 1 AS id, 3 AS seq, 'late' AS name`, 2));
    const fields = (await floe.snapshot(t)).schema.fields.map((f) => `${f.name}:${typeof f.type === 'string' ? f.type : f.type.type}`);
    assert.deepEqual(fields.slice(0, 2), ['id:integer', 'name:string']);
    if (scd === 1) assert.deepEqual(await rows(t, 'id'), [{ id: 1, name: 'b' }, { id: 2, name: 'c' }]);
    else {
      assert.deepEqual(await rows(t, 'id, __START_AT'), [
        { id: 1, name: 'a', __START_AT: 1, __END_AT: 3 },
        { id: 1, name: 'late', __START_AT: 3, __END_AT: 5 },
        { id: 1, name: 'b', __START_AT: 5, __END_AT: null },
        { id: 2, name: 'c', __START_AT: 6, __END_AT: null },
      ]);
    }
  });

  test(`SCD ${scd}: a value that does not fit the target's type fails before either commit (AUTO_CDC_SCHEMA_MISMATCH)`, async () => {
    const t = fresh();
    await applyChanges(floe, opts(t, scd, `SELECT 1 AS id, 1 AS seq, 'a' AS name`, 0));
    await assert.rejects(applyChanges(floe, opts(t, scd, `SELECT 3000000000::BIGINT AS id, 2 AS seq, 'b' AS name`, 1)), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'AUTO_CDC_SCHEMA_MISMATCH');
      assert.match(e.message, /column 'id' is BIGINT.*'id' is INTEGER.*3000000000 does not fit.*Nothing was committed/);
      return true;
    });
    await assert.rejects(applyChanges(floe, opts(t, scd, `SELECT 1 AS id, 'x' AS seq, 'b' AS name`, 1)), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'AUTO_CDC_SCHEMA_MISMATCH');
      assert.match(e.message, /sequence is VARCHAR/);
      return true;
    });
    // A value that converts but would change is refused too: two such sequences could become equal
    // (the later event then taken for a re-delivery), a data value would be rounded.
    await assert.rejects(applyChanges(floe, opts(t, scd, `SELECT 1 AS id, 2.2::DOUBLE AS seq, 'b' AS name`, 1)), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'AUTO_CDC_SCHEMA_MISMATCH');
      assert.match(e.message, /sequence is DOUBLE.*the value 2\.2 would change \(to 2\)/);
      return true;
    });
    assert.deepEqual(await versions(t), [0, 0]);
    // The same batch with values that fit goes through (a DOUBLE sequence with whole values too).
    await applyChanges(floe, opts(t, scd, `SELECT 7::BIGINT AS id, 2.0::DOUBLE AS seq, 'b' AS name`, 1));
    assert.deepEqual(await versions(t), [1, 1]);
    // data columns and dates
    const t2 = fresh();
    await applyChanges(floe, opts(t2, scd, `SELECT 1 AS id, DATE '2024-01-01' AS seq, 'a' AS name, 5 AS n`, 0));
    await assert.rejects(applyChanges(floe, opts(t2, scd, `SELECT 1 AS id, DATE '2024-01-02' AS seq, 'b' AS name, 12.7::DOUBLE AS n`, 1)), /column 'n' is DOUBLE.*12\.7 would change \(to 13\)/);
    await assert.rejects(applyChanges(floe, opts(t2, scd, `SELECT 1 AS id, TIMESTAMP '2024-01-02 10:00:00' AS seq, 'b' AS name, 6 AS n`, 1)), /sequence is TIMESTAMP.*would change/);
    await applyChanges(floe, opts(t2, scd, `SELECT 1 AS id, TIMESTAMP '2024-01-02 00:00:00' AS seq, 'b' AS name, 12.0::DOUBLE AS n`, 1));
    assert.deepEqual(await versions(t2), [1, 1]);
  });
}

test('ignoreNullUpdates: an untyped NULL column (INTEGER to DuckDB) is read as the target column\'s type', async () => {
  const t = fresh();
  await applyChanges(floe, opts(t, 1, `SELECT 1 AS id, 1 AS seq, 'a' AS name, 'x' AS city`, 0, { ignoreNullUpdates: true }));
  await applyChanges(floe, opts(t, 1, `SELECT 1 AS id, 2 AS seq, NULL AS name, 'y' AS city`, 1, { ignoreNullUpdates: true }));
  assert.deepEqual(await rows(t, 'id'), [{ id: 1, name: 'a', city: 'y' }]);
  const t2 = fresh();
  await applyChanges(floe, opts(t2, 2, `SELECT 1 AS id, 1 AS seq, 'a' AS name, 'x' AS city`, 0, { ignoreNullUpdates: true }));
  await applyChanges(floe, opts(t2, 2, `SELECT 1 AS id, 2 AS seq, NULL AS name, 'y' AS city`, 1, { ignoreNullUpdates: true }));
  assert.deepEqual(await rows(t2, '__START_AT'), [{ id: 1, name: 'a', city: 'x', __START_AT: 1, __END_AT: 2 }, { id: 1, name: 'a', city: 'y', __START_AT: 2, __END_AT: null }]);
});

test('option expressions that do not bind, non-boolean conditions and options of the wrong type are AUTO_CDC_INVALID_OPTIONS', async () => {
  const src = `SELECT 1 AS id, 1 AS seq, 'a' AS name, 'U' AS op`;
  await assert.rejects(applyChanges(floe, opts(fresh(), 1, src, 0, { sequenceBy: 'nope' })), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'AUTO_CDC_INVALID_OPTIONS');
    assert.match(e.message, /sequenceBy \(nope\) is not a valid expression over the source's columns \(id, seq, name, op\)/);
    assert.doesNotMatch(e.message, /__floe_opt|LINE 1/);
    return true;
  });
  await assert.rejects(applyChanges(floe, opts(fresh(), 1, src, 0, { applyAsDeletes: "nope = 'D'" })), /applyAsDeletes \(nope = 'D'\) is not a valid expression/);
  await assert.rejects(applyChanges(floe, opts(fresh(), 1, src, 0, { applyAsDeletes: 'name' })), /applyAsDeletes must be a boolean condition, but \(name\) is of type VARCHAR/);
  await assert.rejects(applyChanges(floe, opts(fresh(), 1, src, 0, { applyAsTruncates: 'seq + 1' })), /applyAsTruncates must be a boolean condition/);
  const bad = (o: Record<string, unknown>) => applyChanges(floe, { ...opts(fresh(), 1, src, 0), ...o } as unknown as ApplyChangesOptions);
  await assert.rejects(bad({ keys: 'id' }), (e: Error & { code?: string }) => code('AUTO_CDC_INVALID_OPTIONS')(e) && /keys must be an array of column names, got 'id' \(a string\)/.test(e.message));
  await assert.rejects(bad({ columnList: 'name' }), code('AUTO_CDC_INVALID_OPTIONS'));
  await assert.rejects(bad({ source: 'SELECT 1' }), (e: Error & { code?: string }) => code('AUTO_CDC_INVALID_OPTIONS')(e) && /source must be a DataFrame/.test(e.message));
  await assert.rejects(bad({ sequenceBy: 1 }), /sequenceBy must be a string, got 1 \(a number\)/);
  await assert.rejects(bad({ batchId: '1' }), /batchId must be a non-negative integer, got '1' \(a string\)/);
  // A valid expression still works (a struct sequence, a boolean condition).
  const t = fresh();
  await applyChanges(floe, opts(t, 1, src, 0, { sequenceBy: 'struct_pack(a := seq, b := id)', applyAsDeletes: "op = 'D'", exceptColumnList: ['seq', 'op'] }));
  assert.deepEqual(await rows(t, 'id'), [{ id: 1, name: 'a' }]);
});

test('a column new in the source is added to the target (and to a state that keeps data columns); earlier rows read NULL for it', async () => {
  const cases: Array<[string, 1 | 2, Partial<ApplyChangesOptions>]> = [['SCD 1', 1, {}], ['SCD 1, ignoreNullUpdates', 1, { ignoreNullUpdates: true }], ['SCD 2', 2, {}], ['SCD 2, ignoreNullUpdates', 2, { ignoreNullUpdates: true }]];
  for (const [label, scd, extra] of cases) {
    const t = fresh();
    await applyChanges(floe, opts(t, scd, `SELECT 1 AS id, 1 AS seq, 'a' AS name UNION ALL SELECT 2, 1, 'b'`, 0, extra));
    // The new column comes first in the batch: columns are matched by name.
    await applyChanges(floe, opts(t, scd, `SELECT 'x@y' AS email, 1 AS id, 2 AS seq, 'a2' AS name`, 1, extra));
    const names = (await floe.snapshot(t)).schema.fields.map((f) => f.name);
    assert.deepEqual(names, scd === 1 ? ['id', 'name', 'email'] : ['id', 'name', 'email', '__START_AT', '__END_AT'], label);
    // A later batch without it (NULL, or kept with ignoreNullUpdates), and one updating it alone.
    await applyChanges(floe, opts(t, scd, `SELECT 2 AS id, 3 AS seq, 'b2' AS name, 'z@z' AS email`, 2, extra));
    await applyChanges(floe, opts(t, scd, `SELECT 2 AS id, 4 AS seq, NULL::VARCHAR AS name, 'w@w' AS email`, 3, extra));
    const got = await rows(t, scd === 1 ? 'id' : 'id, __START_AT');
    const ign = !!extra.ignoreNullUpdates;
    if (ign && scd === 2) {
      assert.deepEqual(got.map((r) => Object.values(r as object).join('|')), ['1|a||1|2', '1|a2|x@y|2|', '2|b||1|3', '2|b2|z@z|3|4', '2|b2|w@w|4|'], label);
      assert.deepEqual(await versions(t), [4, 4], label);
      continue;
    }
    if (scd === 1) assert.deepEqual(got, [{ id: 1, name: 'a2', email: 'x@y' }, { id: 2, name: ign ? 'b2' : null, email: 'w@w' }], label);
    else assert.deepEqual(got.map((r) => Object.values(r as object).join('|')), ['1|a||1|2', '1|a2|x@y|2|', '2|b||1|3', '2|b2|z@z|3|4', '2||w@w|4|'], label);
    // The state gains columns only when it keeps per-column data (ignoreNullUpdates, a tracked subset).
    const stateGrows = ign;
    assert.deepEqual(await versions(t), [4, stateGrows ? 4 : 3], label);
  }
});

test('SCD 2 whose history tracks every column: a new untracked column is AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE, nothing committed', async () => {
  const t = fresh();
  await applyChanges(floe, opts(t, 2, `SELECT 1 AS id, 1 AS seq, 'a' AS name`, 0, { trackHistoryColumnList: ['name'] }));
  await assert.rejects(applyChanges(floe, opts(t, 2, `SELECT 1 AS id, 2 AS seq, 'b' AS name, 'x' AS email`, 1, { trackHistoryColumnList: ['name'] })), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE');
    assert.match(e.message, /'email' would not be tracked.*Nothing was committed/);
    return true;
  });
  assert.deepEqual(await versions(t), [0, 0]);
  assert.deepEqual((await floe.snapshot(t)).schema.fields.map((f) => f.name), ['id', 'name', '__START_AT', '__END_AT']);
});

test('a column the target has and the state lacks (a run that died between the two schema changes, or a column added to the target by hand) is added to the state', async () => {
  for (const extra of [{ ignoreNullUpdates: true }, { storedAsScdType: 2 as const, trackHistoryColumnList: ['a'] }]) {
    const t = fresh();
    const o = (sql: string, b: number) => ({ ...opts(t, extra.storedAsScdType ?? 1, sql, b, extra), exceptColumnList: [] });
    await applyChanges(floe, o(`SELECT 1 AS id, 'x' AS a, 1 AS seq`, 0));
    await addColumns(floe, t, [{ path: ['b'], type: 'string', ...(extra.storedAsScdType ? { position: { after: 'seq' } } : {}) }]);
    await applyChanges(floe, o(`SELECT 1 AS id, 'y' AS a, 2 AS seq, 'new' AS b`, 1));
    await applyChanges(floe, o(`SELECT 2 AS id, 'z' AS a, 3 AS seq, 'new2' AS b`, 2));
    const cur = (await rows(t, 'id')).filter((r) => !('__END_AT' in (r as object)) || (r as { __END_AT: unknown }).__END_AT === null);
    assert.deepEqual(cur.map((r) => [(r as { id: number }).id, (r as { b: string }).b]), [[1, 'new'], [2, 'new2']]);
  }
});

test('ignoreNullUpdates: a batch without one of the target\'s columns is AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE (its per-column state would shift); an unsigned key that does not fit is AUTO_CDC_SCHEMA_MISMATCH', async () => {
  const t = fresh();
  await applyChanges(floe, opts(t, 1, `SELECT 1 AS id, 1 AS seq, 'a' AS name, 'x' AS city`, 0, { ignoreNullUpdates: true }));
  await assert.rejects(applyChanges(floe, opts(t, 1, `SELECT 1 AS id, 2 AS seq, 'y' AS city`, 1, { ignoreNullUpdates: true })), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'AUTO_CDC_INCOMPATIBLE_SCHEMA_CHANGE');
    assert.match(e.message, /no longer has the target's column\(s\) 'name'.*Nothing was committed/);
    return true;
  });
  assert.deepEqual(await versions(t), [0, 0]);
  // Without ignoreNullUpdates the column keeps its values (the flow's columns are the ones it writes).
  const t2 = fresh();
  await applyChanges(floe, opts(t2, 1, `SELECT 1 AS id, 1 AS seq, 'a' AS name, 'x' AS city`, 0));
  await applyChanges(floe, opts(t2, 1, `SELECT 1 AS id, 2 AS seq, 'y' AS city`, 1));
  assert.deepEqual(await rows(t2, 'id'), [{ id: 1, name: 'a', city: 'y' }]);
  await assert.rejects(applyChanges(floe, opts(t2, 1, `SELECT 3000000000::UBIGINT AS id, 3 AS seq, 'z' AS city`, 2)), (e: Error & { code?: string }) => e.code === 'AUTO_CDC_SCHEMA_MISMATCH' && /UBIGINT/.test(e.message));
});
