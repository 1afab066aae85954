/**
 * MERGE against a naive reference in plain JS (fast-check, ~100 runs). Small targets (≤ 30 rows, in
 * 1–3 files, sometimes partitioned), ids in a small range so keys collide, null keys and values,
 * duplicate source keys, 1–4 random clauses of every kind with simple conditions. The reference
 * applies Spark's rules:
 *  - within a kind, clauses are tried in order and the first whose condition holds acts;
 *  - only the last clause of a kind may omit its condition (DELTA_NON_LAST_*_OMIT_CONDITION);
 *  - a target row matched by several source rows is an error
 *    (DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE) when a matched clause would change it
 *    (some matching pair satisfies a matched clause), unless the only matched clause is one
 *    unconditional DELETE: then the row is deleted once, counted once, and has one `delete` change row;
 *  - null keys never match.
 * Half the tables have deletion vectors on (changed rows marked deleted in place of copies).
 * Compared: the table afterwards (multiset), whether and which error occurred, the row metrics, and,
 * with the change data feed on, the feed of the MERGE version against the reference's changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { Floe } from '../floe.js';
import { FloeError } from '../errors.js';
import { DeltaTable } from '../table/delta-table.js';
import { locJoin, newRoot } from './store.js';

interface R {
  id: number | null;
  v: number | null;
  g: string | null;
}
type Kind = 'matched' | 'notMatched' | 'notMatchedBySource';
type B = boolean | null;

interface Cond {
  sql: string;
  f: (t: R | null, s: R | null) => B;
}
interface Assign {
  /** '*' for updateAll / insertAll, else column → SQL. */
  sql: Record<string, string> | '*';
  f: (t: R | null, s: R | null) => R;
}
interface Clause {
  kind: Kind;
  action: 'update' | 'delete' | 'insert';
  cond: Cond | null;
  assign?: Assign;
}

// SQL three-valued helpers
const add = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a + b);
const gt = (a: number | null, k: number): B => (a === null ? null : a > k);
const lt = (a: number | null, k: number): B => (a === null ? null : a < k);
const eq = <T>(a: T | null, b: T | null): B => (a === null || b === null ? null : a === b);

// ---------------------------------------------------------------------------------------------
// generators
// ---------------------------------------------------------------------------------------------

const idArb = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 6 }) }, { weight: 1, arbitrary: fc.constant(null) });
const vArb = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: -2, max: 9 }) }, { weight: 1, arbitrary: fc.constant(null) });
const gArb = fc.oneof({ weight: 9, arbitrary: fc.constantFrom('x', 'y') }, { weight: 1, arbitrary: fc.constant(null) });
const rowArb: fc.Arbitrary<R> = fc.record({ id: idArb, v: vArb, g: gArb });
const K = fc.integer({ min: -1, max: 8 });

const matchedCond: fc.Arbitrary<Cond> = fc.oneof(
  K.map((k) => ({ sql: `source.v > ${k}`, f: (_t: R | null, s: R | null) => gt(s!.v, k) })),
  K.map((k) => ({ sql: `target.v < ${k}`, f: (t: R | null) => lt(t!.v, k) })),
  fc.constant({ sql: 'source.v = target.v', f: (t: R | null, s: R | null) => eq(s!.v, t!.v) }),
  fc.constant({ sql: "target.g = 'x'", f: (t: R | null) => eq(t!.g, 'x') }),
  fc.constant({ sql: 'source.v IS NULL', f: (_t: R | null, s: R | null) => s!.v === null }),
);
const notMatchedCond: fc.Arbitrary<Cond> = fc.oneof(
  K.map((k) => ({ sql: `source.v > ${k}`, f: (_t: R | null, s: R | null) => gt(s!.v, k) })),
  K.map((k) => ({ sql: `source.v < ${k}`, f: (_t: R | null, s: R | null) => lt(s!.v, k) })),
  fc.constant({ sql: "source.g = 'y'", f: (_t: R | null, s: R | null) => eq(s!.g, 'y') }),
  fc.constant({ sql: 'source.id IS NULL', f: (_t: R | null, s: R | null) => s!.id === null }),
);
const bySourceCond: fc.Arbitrary<Cond> = fc.oneof(
  K.map((k) => ({ sql: `target.v > ${k}`, f: (t: R | null) => gt(t!.v, k) })),
  K.map((k) => ({ sql: `target.v < ${k}`, f: (t: R | null) => lt(t!.v, k) })),
  fc.constant({ sql: "target.g = 'x'", f: (t: R | null) => eq(t!.g, 'x') }),
  fc.constant({ sql: 'target.id IS NULL', f: (t: R | null) => t!.id === null }),
);

const matchedSet: fc.Arbitrary<Assign> = fc.constantFrom<Assign>(
  { sql: '*', f: (_t, s) => ({ ...s! }) },
  { sql: { v: 'source.v' }, f: (t, s) => ({ ...t!, v: s!.v }) },
  { sql: { v: 'target.v + source.v' }, f: (t, s) => ({ ...t!, v: add(t!.v, s!.v) }) },
  { sql: { v: 'target.v + 1', g: 'source.g' }, f: (t, s) => ({ ...t!, v: add(t!.v, 1), g: s!.g }) },
);
const insertValues: fc.Arbitrary<Assign> = fc.constantFrom<Assign>(
  { sql: '*', f: (_t, s) => ({ ...s! }) },
  { sql: { id: 'source.id', v: 'source.v * 2' }, f: (_t, s) => ({ id: s!.id, v: s!.v === null ? null : s!.v * 2, g: null }) },
  { sql: { id: 'source.id', v: '0', g: "'x'" }, f: (_t, s) => ({ id: s!.id, v: 0, g: 'x' }) },
);
const bySourceSet: fc.Arbitrary<Assign> = fc.constantFrom<Assign>(
  { sql: { v: 'target.v - 1' }, f: (t) => ({ ...t!, v: add(t!.v, -1) }) },
  { sql: { g: "'y'" }, f: (t) => ({ ...t!, g: 'y' }) },
);

const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ weight: 2, arbitrary: a }, { weight: 1, arbitrary: fc.constant(null) });

const clauseArb: fc.Arbitrary<Clause> = fc.oneof(
  fc.record({ cond: maybe(matchedCond), assign: matchedSet }).map((x): Clause => ({ kind: 'matched', action: 'update', ...x })),
  maybe(matchedCond).map((cond): Clause => ({ kind: 'matched', action: 'delete', cond })),
  fc.record({ cond: maybe(notMatchedCond), assign: insertValues }).map((x): Clause => ({ kind: 'notMatched', action: 'insert', ...x })),
  fc.record({ cond: maybe(bySourceCond), assign: bySourceSet }).map((x): Clause => ({ kind: 'notMatchedBySource', action: 'update', ...x })),
  maybe(bySourceCond).map((cond): Clause => ({ kind: 'notMatchedBySource', action: 'delete', cond })),
);

const DEFAULT_COND: Record<Kind, Cond> = {
  matched: { sql: 'source.v > 4', f: (_t, s) => gt(s!.v, 4) },
  notMatched: { sql: 'source.v > 4', f: (_t, s) => gt(s!.v, 4) },
  notMatchedBySource: { sql: 'target.v > 4', f: (t) => gt(t!.v, 4) },
};

/** Mostly valid clause lists (a condition on every clause but the last of its kind); sometimes left as drawn. */
const clausesArb = fc.tuple(fc.array(clauseArb, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 9 })).map(([cs, r]) => {
  if (r === 0) return cs;
  return cs.map((c, i) => (c.cond === null && cs.slice(i + 1).some((x) => x.kind === c.kind) ? { ...c, cond: DEFAULT_COND[c.kind] } : c));
});

const MERGE_CONDS: { sql: string; f: (t: R, s: R) => B }[] = [
  { sql: 'target.id = source.id', f: (t, s) => eq(t.id, s.id) },
  { sql: 'target.id = source.id AND target.g = source.g', f: (t, s) => { const a = eq(t.id, s.id); const b = eq(t.g, s.g); return a === false || b === false ? false : a === null || b === null ? null : true; } },
  { sql: 'source.id = target.id AND source.v > 0', f: (t, s) => { const a = eq(t.id, s.id); const b = gt(s.v, 0); return a === false || b === false ? false : a === null || b === null ? null : true; } },
];

interface Case {
  target: R[][];
  source: R[];
  clauses: Clause[];
  on: number;
  partitioned: boolean;
  feedOn: boolean;
  /** Deletion vectors on: matched rows are marked deleted in their files instead of copied. */
  dv: boolean;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  target: fc.array(fc.array(rowArb, { minLength: 1, maxLength: 10 }), { minLength: 0, maxLength: 3 }),
  source: fc.array(rowArb, { minLength: 0, maxLength: 10 }),
  clauses: clausesArb,
  on: fc.integer({ min: 0, max: MERGE_CONDS.length - 1 }),
  partitioned: fc.boolean(),
  feedOn: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  dv: fc.boolean(),
});

// ---------------------------------------------------------------------------------------------
// reference
// ---------------------------------------------------------------------------------------------

interface Outcome {
  error: string | null;
  rows: R[];
  metrics: { inserted: number; matchedUpdated: number; bySourceUpdated: number; matchedDeleted: number; bySourceDeleted: number };
  changes: (R & { _change_type: string })[];
}

function reference(c: Case): Outcome {
  const target = c.target.flat();
  const m = { inserted: 0, matchedUpdated: 0, bySourceUpdated: 0, matchedDeleted: 0, bySourceDeleted: 0 };
  const fail = (error: string): Outcome => ({ error, rows: target, metrics: m, changes: [] });
  for (const kind of ['matched', 'notMatched', 'notMatchedBySource'] as const) {
    const cs = c.clauses.filter((x) => x.kind === kind);
    if (cs.slice(0, -1).some((x) => x.cond === null)) {
      return fail(kind === 'matched' ? 'DELTA_NON_LAST_MATCHED_CLAUSE_OMIT_CONDITION' : kind === 'notMatched' ? 'DELTA_NON_LAST_NOT_MATCHED_CLAUSE_OMIT_CONDITION' : 'DELTA_NON_LAST_NOT_MATCHED_BY_SOURCE_CLAUSE_OMIT_CONDITION');
    }
  }
  const on = MERGE_CONDS[c.on]!.f;
  const of = (kind: Kind): Clause[] => c.clauses.filter((x) => x.kind === kind);
  const first = (kind: Kind, t: R | null, s: R | null): Clause | undefined => of(kind).find((x) => x.cond === null || x.cond.f(t, s) === true);
  const matched = of('matched');
  const singleUnconditionalDelete = matched.length === 1 && matched[0]!.action === 'delete' && matched[0]!.cond === null;

  const out: R[] = [];
  const changes: Outcome['changes'] = [];
  const sourceMatched = new Set<number>();
  for (const t of target) {
    const ms = c.source.map((s, i) => ({ s, i })).filter(({ s }) => on(t, s) === true);
    for (const { i } of ms) sourceMatched.add(i);
    if (ms.length === 0) {
      const cl = first('notMatchedBySource', t, null);
      if (cl?.action === 'delete') {
        m.bySourceDeleted++;
        changes.push({ ...t, _change_type: 'delete' });
      } else if (cl?.action === 'update') {
        const n = cl.assign!.f(t, null);
        m.bySourceUpdated++;
        out.push(n);
        changes.push({ ...t, _change_type: 'update_preimage' }, { ...n, _change_type: 'update_postimage' });
      } else out.push(t);
      continue;
    }
    if (singleUnconditionalDelete) {
      m.matchedDeleted++;
      changes.push({ ...t, _change_type: 'delete' });
      continue;
    }
    const acting = ms.map(({ s }) => ({ s, cl: first('matched', t, s) })).filter((x) => x.cl !== undefined);
    if (ms.length > 1 && acting.length > 0) return fail('DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE');
    const a = acting[0];
    if (!a) out.push(t);
    else if (a.cl!.action === 'delete') {
      m.matchedDeleted++;
      changes.push({ ...t, _change_type: 'delete' });
    } else {
      const n = a.cl!.assign!.f(t, a.s);
      m.matchedUpdated++;
      out.push(n);
      changes.push({ ...t, _change_type: 'update_preimage' }, { ...n, _change_type: 'update_postimage' });
    }
  }
  c.source.forEach((s, i) => {
    if (sourceMatched.has(i)) return;
    const cl = first('notMatched', null, s);
    if (!cl) return;
    const n = cl.assign!.f(null, s);
    m.inserted++;
    out.push(n);
    changes.push({ ...n, _change_type: 'insert' });
  });
  return { error: null, rows: out, metrics: m, changes };
}

// ---------------------------------------------------------------------------------------------
// running a case with floe
// ---------------------------------------------------------------------------------------------

const lit = (r: R): string => `(${r.id ?? 'NULL'}::BIGINT, ${r.v ?? 'NULL'}::BIGINT, ${r.g === null ? 'NULL' : `'${r.g}'`}::VARCHAR)`;
const valuesSql = (rs: R[]): string => (rs.length ? `SELECT * FROM (VALUES ${rs.map(lit).join(', ')}) AS s(id, v, g)` : 'SELECT NULL::BIGINT AS id, NULL::BIGINT AS v, NULL::VARCHAR AS g WHERE false');

const keyOf = (r: Record<string, unknown>): string => JSON.stringify([r.id, r.v, r.g, r._change_type ?? null]);
const norm = (rs: Record<string, unknown>[]): string[] => rs.map((r) => keyOf({ ...r, id: r.id === null || r.id === undefined ? null : Number(r.id), v: r.v === null || r.v === undefined ? null : Number(r.v) })).sort();

function describe(c: Case): string {
  const cl = c.clauses.map((x) => `${x.kind}.${x.action}${x.cond ? `[${x.cond.sql}]` : ''}${x.assign ? ` ${JSON.stringify(x.assign.sql)}` : ''}`);
  return `ON ${MERGE_CONDS[c.on]!.sql}; clauses ${cl.join(' | ')}; target ${JSON.stringify(c.target)}; source ${JSON.stringify(c.source)}; partitioned ${c.partitioned}; feed ${c.feedOn}; deletion vectors ${c.dv}`;
}

test('MERGE agrees with a reference implementation of Spark semantics (property)', async (t) => {
  const dir = await newRoot('floe-merge-prop-');
  const floe = await Floe.create({ threads: 2 });
  let n = 0;
  const stats = { runs: 0, errors: 0, multi: 0, committed: 0, dvCommitted: 0 };
  try {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const p = locJoin(dir, `t${n++}`);
        await DeltaTable.create(floe, {
          path: p,
          schema: [{ name: 'id', type: 'long' }, { name: 'v', type: 'long' }, { name: 'g', type: 'string' }],
          partitionBy: c.partitioned ? ['g'] : [],
          properties: { ...(c.feedOn ? { 'delta.enableChangeDataFeed': 'true' } : {}), ...(c.dv ? { 'delta.enableDeletionVectors': 'true' } : {}) },
        });
        for (const chunk of c.target) await floe.duckdbSql(valuesSql(chunk)).write.delta(p, { mode: 'append' });
        const before = c.target.length;
        const table = await DeltaTable.forPath(floe, p);
        let b = table.alias('target').merge(floe.duckdbSql(valuesSql(c.source)).alias('source'), MERGE_CONDS[c.on]!.sql);
        for (const x of c.clauses) {
          const condition = x.cond?.sql;
          if (x.kind === 'matched' && x.action === 'update') b = x.assign!.sql === '*' ? b.whenMatchedUpdateAll({ condition }) : b.whenMatchedUpdate({ condition, set: x.assign!.sql });
          else if (x.kind === 'matched') b = b.whenMatchedDelete({ condition });
          else if (x.kind === 'notMatched') b = x.assign!.sql === '*' ? b.whenNotMatchedInsertAll({ condition }) : b.whenNotMatchedInsert({ condition, values: x.assign!.sql });
          else if (x.action === 'update') b = b.whenNotMatchedBySourceUpdate({ condition, set: x.assign!.sql as Record<string, string> });
          else b = b.whenNotMatchedBySourceDelete({ condition });
        }
        const ref = reference(c);
        const what = describe(c);
        let result: Awaited<ReturnType<typeof b.execute>> | null = null;
        let error: unknown = null;
        try {
          result = await b.execute();
        } catch (e) {
          error = e;
        }
        stats.runs++;
        if (ref.error) {
          stats.errors++;
          if (ref.error.startsWith('DELTA_MULTIPLE')) stats.multi++;
          assert.ok(error instanceof FloeError, `expected ${ref.error}, got ${error ? String(error) : 'success'}: ${what}`);
          assert.equal(error.code, ref.error, what);
          assert.equal(await table.version(), before, `a failed MERGE commits nothing: ${what}`);
          return;
        }
        if (error) assert.fail(`unexpected error ${String(error)}: ${what}`);
        const r = result!;
        const tableRows = await (await floe.read.delta(p)).toArray();
        assert.deepEqual(norm(tableRows), norm(ref.rows as unknown as Record<string, unknown>[]), `table contents: ${what}`);
        const mm = r.metrics;
        assert.deepEqual(
          { inserted: mm.numTargetRowsInserted, matchedUpdated: mm.numTargetRowsMatchedUpdated, bySourceUpdated: mm.numTargetRowsNotMatchedBySourceUpdated, matchedDeleted: mm.numTargetRowsMatchedDeleted, bySourceDeleted: mm.numTargetRowsNotMatchedBySourceDeleted },
          ref.metrics,
          `metrics: ${what}`,
        );
        assert.equal(mm.numTargetRowsUpdated, ref.metrics.matchedUpdated + ref.metrics.bySourceUpdated);
        assert.equal(mm.numTargetRowsDeleted, ref.metrics.matchedDeleted + ref.metrics.bySourceDeleted);
        assert.equal(mm.numSourceRows, c.source.length);
        const changed = ref.changes.length > 0;
        assert.equal(r.version, changed ? before + 1 : null, `a MERGE commits iff it changes rows: ${what}`);
        if (!changed) return;
        stats.committed++;
        if (c.dv) stats.dvCommitted++;
        if (c.feedOn) {
          const f = await (await floe.read.changes(p, { startingVersion: before + 1, endingVersion: before + 1 })).toArray();
          assert.deepEqual(norm(f), norm(ref.changes as unknown as Record<string, unknown>[]), `change data of the MERGE: ${what}`);
          assert.ok(f.every((x) => Number(x._commit_version) === before + 1));
        }
      }),
      { numRuns: 100, includeErrorInReport: true },
    );
  } finally {
    await floe.close();
  }
  t.diagnostic(`runs ${JSON.stringify(stats)}`);
  assert.ok(stats.committed > 20, `enough runs changed rows (${JSON.stringify(stats)})`);
  assert.ok(stats.multi > 0, `some runs hit multiple matches (${JSON.stringify(stats)})`);
  assert.ok(stats.dvCommitted > 5, `enough runs changed rows with deletion vectors on (${JSON.stringify(stats)})`);
});
