/**
 * MERGE, as delta-spark's DeltaMergeBuilder: clauses evaluated in order, first match wins, only the
 * last clause of a kind may omit its condition, a target row matched by several source rows is an
 * error when a matched clause would change it. Only target files that can hold matching rows are
 * read; only files with changed rows are rewritten; unchanged rows are copied inside DuckDB.
 */
import { type AddFile, parseStats } from '../core/actions.js';
import { type StructType, duckType, physicalName, quoteIdent, storeAssignmentCast } from '../core/schema.js';
import type { Snapshot } from '../core/snapshot.js';
import { Transaction } from '../core/transaction.js';
import { mapLimit } from '../core/delta-log.js';
import type { DeltaLog } from '../core/delta-log.js';
import type { DataFrame } from '../dataframe.js';
import { dataFilePath, planScan, pruneFileList } from '../engine/scan.js';
import { FloeError, InvalidArgumentError, commitOutcomeUnknown } from '../errors.js';
import { guardExpression } from '../expression-guard.js';
import type { Floe } from '../floe.js';
import { cdfOnForWrites, checkCanModify, commitRewrite, constraintFailure, count, type DmlResult, dvWritesOn, materialize, writeDeletionVectors } from './dml.js';
import { completeRow, constraintChecks, generationExpression, dataFrameSchema, withColumnMapping } from './write.js';
import { autoMergeOn, reconcileSchema } from './schema-evolution.js';
import { changedRowsByFile, writeDeletionVectorsFor } from './merge-rows.js';

type Clause =
  | { kind: 'matched'; action: 'update'; condition?: string; set: Record<string, string> | '*' }
  | { kind: 'matched'; action: 'delete'; condition?: string }
  | { kind: 'notMatched'; action: 'insert'; condition?: string; values: Record<string, string> | '*' }
  | { kind: 'notMatchedBySource'; action: 'update'; condition?: string; set: Record<string, string> }
  | { kind: 'notMatchedBySource'; action: 'delete'; condition?: string };

export interface MergeMetrics {
  numSourceRows: number;
  numTargetRowsInserted: number;
  numTargetRowsUpdated: number;
  numTargetRowsMatchedUpdated: number;
  numTargetRowsNotMatchedBySourceUpdated: number;
  numTargetRowsDeleted: number;
  numTargetRowsMatchedDeleted: number;
  numTargetRowsNotMatchedBySourceDeleted: number;
  numTargetRowsCopied: number;
  numOutputRows: number;
  numTargetFilesAdded: number;
  numTargetFilesRemoved: number;
  numTargetFilesScanned: number;
  numTargetFilesTotal: number;
  [k: string]: number;
}

export class MergeBuilder {
  private readonly clauses: Clause[] = [];
  private evolve = false;

  constructor(
    private readonly floe: Floe,
    private readonly location: string,
    private readonly targetAlias: string,
    private readonly source: DataFrame,
    private readonly condition: string,
  ) {}

  whenMatchedUpdate(o: { condition?: string; set: Record<string, string> }): this {
    guardExpression(o.condition, ...Object.values(o.set));
    this.clauses.push({ kind: 'matched', action: 'update', condition: o.condition, set: o.set });
    return this;
  }
  whenMatchedUpdateAll(o: { condition?: string } = {}): this {
    guardExpression(o.condition);
    this.clauses.push({ kind: 'matched', action: 'update', condition: o.condition, set: '*' });
    return this;
  }
  whenMatchedDelete(o: { condition?: string } = {}): this {
    guardExpression(o.condition);
    this.clauses.push({ kind: 'matched', action: 'delete', condition: o.condition });
    return this;
  }
  whenNotMatchedInsert(o: { condition?: string; values: Record<string, string> }): this {
    guardExpression(o.condition, ...Object.values(o.values));
    this.clauses.push({ kind: 'notMatched', action: 'insert', condition: o.condition, values: o.values });
    return this;
  }
  whenNotMatchedInsertAll(o: { condition?: string } = {}): this {
    guardExpression(o.condition);
    this.clauses.push({ kind: 'notMatched', action: 'insert', condition: o.condition, values: '*' });
    return this;
  }
  whenNotMatchedBySourceUpdate(o: { condition?: string; set: Record<string, string> }): this {
    guardExpression(o.condition, ...Object.values(o.set));
    this.clauses.push({ kind: 'notMatchedBySource', action: 'update', condition: o.condition, set: o.set });
    return this;
  }
  whenNotMatchedBySourceDelete(o: { condition?: string } = {}): this {
    guardExpression(o.condition);
    this.clauses.push({ kind: 'notMatchedBySource', action: 'delete', condition: o.condition });
    return this;
  }
  /**
   * Adds source columns missing from the target to its schema (MERGE WITH SCHEMA EVOLUTION; also on
   * when the session sets spark.databricks.delta.schema.autoMerge.enabled = true, as in Delta).
   */
  withSchemaEvolution(): this {
    this.evolve = true;
    return this;
  }

  async execute(): Promise<DmlResult & { metrics: MergeMetrics }> {
    return executeMerge(this.floe, this.location, this.targetAlias, this.source, this.condition, this.clauses, this.evolve || autoMergeOn(this.floe.config));
  }
}

function validateClauses(clauses: Clause[]): void {
  if (!clauses.length) throw new InvalidArgumentError('MERGE needs at least one WHEN clause.', {}, 'DELTA_MERGE_MISSING_WHEN');
  for (const kind of ['matched', 'notMatched', 'notMatchedBySource'] as const) {
    const cs = clauses.filter((c) => c.kind === kind);
    cs.forEach((c, i) => {
      if (!c.condition && i < cs.length - 1) {
        const code = kind === 'matched' ? 'DELTA_NON_LAST_MATCHED_CLAUSE_OMIT_CONDITION' : kind === 'notMatched' ? 'DELTA_NON_LAST_NOT_MATCHED_CLAUSE_OMIT_CONDITION' : 'DELTA_NON_LAST_NOT_MATCHED_BY_SOURCE_CLAUSE_OMIT_CONDITION';
        throw new InvalidArgumentError(`When there is more than one ${kind === 'matched' ? 'MATCHED' : kind === 'notMatched' ? 'NOT MATCHED' : 'NOT MATCHED BY SOURCE'} clause in a MERGE, only the last one can omit the condition.`, {}, code);
      }
    });
  }
}

/** `target.col = source.col` equalities of the merge condition (for pruning target files). */
function equiKeys(condition: string, t: string, s: string): { target: string; source: string }[] {
  const out: { target: string; source: string }[] = [];
  const id = '(?:"[^"]+"|`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)';
  const re = new RegExp(`(${id})\\.(${id})\\s*(?:=|==|<=>)\\s*(${id})\\.(${id})`, 'g');
  const strip = (x: string): string => x.replace(/^["`]|["`]$/g, '');
  for (const m of condition.matchAll(re)) {
    const [a, ac, b, bc] = [strip(m[1]!), strip(m[2]!), strip(m[3]!), strip(m[4]!)];
    if (a.toLowerCase() === t.toLowerCase() && b.toLowerCase() === s.toLowerCase()) out.push({ target: ac, source: bc });
    else if (b.toLowerCase() === t.toLowerCase() && a.toLowerCase() === s.toLowerCase()) out.push({ target: bc, source: ac });
  }
  // Only safe when the condition is a plain conjunction (an OR, a NOT or a CASE could match rows
  // outside the ranges, or one target row to several source rows with distinct keys).
  return /\b(OR|NOT|CASE)\b/i.test(condition) ? [] : out;
}

/**
 * A plain SQL literal of a Delta primitive type, as the predicate parser reads it for file skipping
 * (numbers bare, dates and timestamps typed, strings quoted); null for types not used in pruning.
 */
function literalFor(type: string): ((v: string) => string | null) | null {
  const q = (v: string): string => `'${v.replace(/'/g, "''")}'`;
  // null when a value has no exact literal: the caller then does not prune on it (never a NULL bound).
  if (/^(long|integer|short|byte)$/.test(type) || type.startsWith('decimal')) return (v) => (/^-?\d+(\.\d+)?$/.test(v) ? v : null);
  if (type === 'double' || type === 'float') return (v) => (Number.isFinite(Number(v)) && !/[eE]/.test(String(Number(v))) ? String(Number(v)) : null);
  if (type === 'string') return q;
  if (type === 'date') return (v) => `DATE ${q(v)}`;
  if (type === 'timestamp' || type === 'timestamp_ntz') return (v) => `TIMESTAMP ${q(v)}`;
  return null;
}

/**
 * Narrows candidate files to those whose [min, max] stats range of a (non-partition) join key holds
 * at least one source key: the source's overall range can span many files when its keys are
 * clustered in a few (updates) plus new ones beyond the table's range (inserts). One range join in
 * DuckDB over the files' stats; files without stats for the key are kept.
 */
async function filesHoldingKeys(floe: Floe, snap: Snapshot, files: AddFile[], keys: { target: string; source: string }[], srcCols: Map<string, string>, src: string): Promise<AddFile[]> {
  const key = keys.find((k) => !snap.partitionColumns.some((p) => p.toLowerCase() === k.target.toLowerCase()));
  if (!key || files.length < 2 || files.length > 20_000) return files;
  const tf = snap.schema.fields.find((f) => f.name.toLowerCase() === key.target.toLowerCase());
  const sc = srcCols.get(key.source.toLowerCase());
  // Exact stats only: integers and dates (string maxima may be truncated, timestamps are cut to ms).
  if (!tf || !sc || typeof tf.type !== 'string' || !/^(long|integer|short|byte|date)$/.test(tf.type)) return files;
  const lit = literalFor(tf.type);
  if (!lit) return files;
  const phys = physicalName(tf);
  const rows: { i: number; lo: string; hi: string }[] = [];
  const keep = new Set<number>();
  files.forEach((f, i) => {
    const st = parseStats(f.stats);
    const lo = st?.minValues?.[phys];
    const hi = st?.maxValues?.[phys];
    // (JSON numbers beyond 2^53 were rounded by the parse: such a range is not exact, the file is kept.)
    const inexact = (v: unknown): boolean => typeof v === 'number' && !Number.isSafeInteger(v);
    if (lo === undefined || hi === undefined || lo === null || hi === null || typeof lo === 'object' || typeof hi === 'object' || inexact(lo) || inexact(hi)) keep.add(i);
    else {
      const l = lit(String(lo));
      const h = lit(String(hi));
      if (l === null || h === null) keep.add(i);
      else rows.push({ i, lo: l, hi: h });
    }
  });
  if (!rows.length) return files;
  const t = duckType(tf.type);
  const k = `s.${quoteIdent(sc)}::${t}`;
  if (rows.length <= 512) {
    // One pass over the source: a bool_or per file (cheaper than a range join for a few hundred files).
    // (Bounds in parentheses: -2147483648::INTEGER would cast 2147483648 before negating it.)
    const [hit] = await floe.engine.allJson(`SELECT ${rows.map((r) => `bool_or(${k} BETWEEN (${r.lo})::${t} AND (${r.hi})::${t}) AS f${r.i}`).join(', ')} FROM ${src} s`);
    for (const r of rows) if (hit![`f${r.i}`] === true) keep.add(r.i);
  } else {
    const hits = await floe.engine.allJson(`SELECT f.i FROM (VALUES ${rows.map((r) => `(${r.i}, ${r.lo}, ${r.hi})`).join(', ')}) AS f(i, lo, hi)
      WHERE EXISTS (SELECT 1 FROM ${src} s WHERE ${k} BETWEEN f.lo::${t} AND f.hi::${t})`);
    for (const h of hits) keep.add(Number(h.i));
  }
  return files.filter((_, i) => keep.has(i));
}

/**
 * A predicate over a source row (its table alias given) that holds only when no target row of the
 * candidate files can match it: its value of an equi-join key lies outside the [min, max] range of
 * that key over every candidate file (exact stats only: integers and dates; the source column of
 * the same type, so the comparison is the join's; a NULL key is not outside). Such rows skip the
 * join (on clustered or appended keys, the inserts). Null when no key qualifies.
 */
function unmatchableKeys(snap: Snapshot, files: AddFile[], keys: { target: string; source: string }[], srcSchema: StructType): ((alias: string) => string) | null {
  if (!files.length) return null;
  for (const key of keys) {
    if (snap.partitionColumns.some((p) => p.toLowerCase() === key.target.toLowerCase())) continue;
    const tf = snap.schema.fields.find((f) => f.name.toLowerCase() === key.target.toLowerCase());
    const sf = srcSchema.fields.find((f) => f.name.toLowerCase() === key.source.toLowerCase());
    if (!tf || !sf || typeof tf.type !== 'string' || sf.type !== tf.type) continue;
    const isInt = /^(long|integer|short|byte)$/.test(tf.type);
    if (!isInt && tf.type !== 'date') continue;
    const phys = physicalName(tf);
    let lo: number | string | null = null;
    let hi: number | string | null = null;
    let ok = true;
    for (const f of files) {
      const st = parseStats(f.stats);
      const a = st?.minValues?.[phys];
      const b = st?.maxValues?.[phys];
      const valid = (v: unknown): v is number | string => (isInt ? typeof v === 'number' && Number.isSafeInteger(v) : typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v));
      if (!valid(a) || !valid(b)) {
        ok = false;
        break;
      }
      if (lo === null || a < lo) lo = a;
      if (hi === null || b > hi) hi = b;
    }
    if (!ok || lo === null || hi === null) continue;
    const lit = (v: number | string): string => (isInt ? String(v) : `DATE '${v}'`);
    const [l, h] = [lit(lo), lit(hi)];
    return (alias) => `(${alias}.${quoteIdent(sf.name)} < ${l} OR ${alias}.${quoteIdent(sf.name)} > ${h})`;
  }
  return null;
}

/**
 * `expr` (DuckDB SQL) with its unqualified references to the columns `names` qualified by `alias`,
 * through DuckDB's parser (json_serialize_sql / json_deserialize_sql; the tree is edited as text, so
 * its 64-bit numbers stay exact). Unchanged when it has none, or when it has a subquery or a lambda
 * (whose names may be their own).
 */
async function qualifyNames(floe: Floe, expr: string, alias: string, names: Set<string>): Promise<string> {
  // (A qualified column or a literal alone, the common values, need no parse.)
  if (/^\s*(("[^"]+"|\w+)\s*\.\s*("[^"]+"|\w+)|'[^']*'|-?\d+(\.\d+)?|NULL|TRUE|FALSE)\s*$/i.test(expr)) return expr;
  const quote = (x: string): string => `'${x.replace(/'/g, "''")}'`;
  const [row] = await floe.engine.allJson(`SELECT json_serialize_sql(${quote(`SELECT (${expr}) AS __floe_e`)}) AS j`);
  const json = String(row!.j);
  if (!json.startsWith('{"error":false') || /"class":"(SUBQUERY|LAMBDA)"/.test(json)) return expr;
  let changed = false;
  const edited = json.replace(/"column_names":\[("(?:[^"\\]|\\.)*")\]/g, (all, name: string) => {
    if (!names.has(String(JSON.parse(name)).toLowerCase())) return all;
    changed = true;
    return `"column_names":[${JSON.stringify(alias)},${name}]`;
  });
  if (!changed) return expr;
  const [back] = await floe.engine.allJson(`SELECT json_deserialize_sql(${quote(edited)}::JSON) AS q`);
  const m = /^SELECT (.*) AS __floe_e$/s.exec(String(back!.q));
  return m ? m[1]! : expr;
}

/**
 * Spark resolves a NOT MATCHED clause (its condition and inserted values) against the source alone,
 * and a NOT MATCHED BY SOURCE clause against the target alone: naming the other side is an error
 * there (DELTA_MERGE_UNRESOLVED_EXPRESSION), not a NULL. DuckDB's binder tells, on a relation with
 * that side only. (Other binder failures are left to the MERGE's own statements to report.)
 */
async function checkClauseScopes(floe: Floe, clauses: Clause[], src: string, sq: string, sAlias: string, srcSchema: StructType, schema: StructType, tq: string, tAlias: string): Promise<void> {
  const targetRel = `(SELECT ${schema.fields.map((f) => `NULL::${duckType(f.type)} AS ${quoteIdent(f.name)}`).join(', ')}) ${tq}`;
  for (const c of clauses) {
    if (c.kind === 'matched') continue;
    const bySource = c.kind === 'notMatched';
    const given = c.action === 'insert' ? c.values : c.action === 'update' ? c.set : {};
    const exprs: [string, string][] = [
      ...(c.condition ? [[c.condition, 'condition'] as [string, string]] : []),
      ...(given === '*' ? [] : Object.entries(given).map(([k, v]) => [v, `value of ${k}`] as [string, string])),
    ];
    if (!exprs.length) continue;
    const rel = bySource ? `${src} ${sq}` : targetRel;
    try {
      await floe.engine.describe(`SELECT ${exprs.map(([e], i) => `(${e}) AS __e${i}`).join(', ')} FROM ${rel}`);
    } catch (e) {
      const msg = (e as Error).message;
      if (!/Referenced (table|column)|not found in FROM clause|does not have a column/i.test(msg)) continue;
      // The expression that fails alone.
      let bad = exprs[0]!;
      for (const x of exprs) {
        const ok = await floe.engine.describe(`SELECT (${x[0]}) AS __e FROM ${rel}`).then(() => true, () => false);
        if (!ok) {
          bad = x;
          break;
        }
      }
      const clause = bySource ? 'WHEN NOT MATCHED' : 'WHEN NOT MATCHED BY SOURCE';
      const cols = bySource ? srcSchema.fields.map((f) => `${sAlias}.${f.name}`) : schema.fields.map((f) => `${tAlias}.${f.name}`);
      throw new FloeError(
        'DELTA_MERGE_UNRESOLVED_EXPRESSION',
        `Cannot resolve ${bad[0]} in the ${clause} clause's ${bad[1]} given columns ${cols.join(', ')}: a ${clause} clause sees only the ${bySource ? 'source' : 'target'} row.`,
        { expression: bad[0], clause },
      );
    }
  }
}

/**
 * The rows of some files with `_file_id` (an integer: the file's index in `paths`) and `_row_index`.
 * The MERGE joins, groups and anti-joins on these integers rather than on file-name strings.
 */
async function scanWithFileIds(floe: Floe, snapshot: Snapshot, files: AddFile[]): Promise<{ sql: string; paths: string[] }> {
  const plan = await planScan(floe.engine, floe.deltaLog(snapshot.tablePath).store, snapshot, { files, withFileId: true });
  floe.track(plan.tables);
  return { sql: plan.sql, paths: plan.paths ?? [] };
}

async function executeMerge(floe: Floe, location: string, tAlias: string, source: DataFrame, condition: string, clauses: Clause[], evolve: boolean): Promise<DmlResult & { metrics: MergeMetrics }> {
  // The source copy, the join and the scans' tables are this MERGE's alone: dropped when it ends.
  return floe.withTempScope(() => mergeOnce(floe, location, tAlias, source, condition, clauses, evolve));
}

async function mergeOnce(floe: Floe, location: string, tAlias: string, source: DataFrame, condition: string, clauses: Clause[], evolve: boolean): Promise<DmlResult & { metrics: MergeMetrics }> {
  const started = Date.now();
  validateClauses(clauses);
  const log = floe.deltaLog(location);
  const snap = await log.snapshot();
  checkCanModify(snap, 'MERGE');
  const sAlias = source.aliasName ?? 'source';
  if (sAlias.toLowerCase() === tAlias.toLowerCase()) throw new InvalidArgumentError(`The target and source of a MERGE need different aliases (both are '${tAlias}').`);
  const { sql: srcSql, schema: srcSchema } = await dataFrameSchema(source);

  // Target schema, evolved with the source's new columns when asked.
  let schema: StructType = snap.schema;
  let newMetadata = null;
  if (evolve) {
    const r = reconcileSchema(snap.tablePath, snap.schema, srcSchema, true);
    if (r.changed) {
      // New columns of a column-mapped table get ids and physical names, as at creation.
      const configuration = { ...snap.configuration };
      schema = withColumnMapping(r.schema, configuration);
      newMetadata = { ...snap.metadata, schemaString: JSON.stringify(schema), configuration };
    }
  }
  const srcCols = new Map(srcSchema.fields.map((f) => [f.name.toLowerCase(), f.name]));
  const tq = quoteIdent(tAlias);
  const sq = quoteIdent(sAlias);
  const targetCol = (name: string): string => (snap.schema.fields.some((f) => f.name === name) ? `${tq}.${quoteIdent(name)}` : `NULL`);
  const resolveSet = (set: Record<string, string> | '*', what: string): Map<string, string> => {
    const out = new Map<string, string>();
    if (set === '*') {
      // Spark: `*` expands to the target's columns, each taken by name from the source; extra source
      // columns are ignored (added to the target with schema evolution); a target column the source
      // lacks is an error, except under schema evolution (NULL on insert, unchanged on update).
      for (const f of schema.fields) {
        const sc = srcCols.get(f.name.toLowerCase());
        if (sc === undefined) {
          if (generationExpression(f) !== undefined) continue; // computed by completeRow
          if (!evolve) {
            throw new FloeError('DELTA_MERGE_UNRESOLVED_EXPRESSION', `Cannot resolve ${tAlias}.${f.name} in ${what === 'insert' ? 'INSERT *' : 'UPDATE SET *'}: the MERGE source has no column '${f.name}' (source columns: ${srcSchema.fields.map((x) => x.name).join(', ')}). Select it in the source, list the columns explicitly, or use withSchemaEvolution().`, { column: f.name });
          }
          if (what === 'insert') out.set(f.name, 'NULL');
          continue;
        }
        out.set(f.name, `${sq}.${quoteIdent(sc)}`);
      }
      return out;
    }
    for (const [k, v] of Object.entries(set)) {
      const name = k.replace(new RegExp(`^${tAlias}\\.`, 'i'), '');
      const f = schema.fields.find((x) => x.name.toLowerCase() === name.toLowerCase());
      if (!f) throw new FloeError('DELTA_COLUMN_NOT_FOUND', `MERGE ${what} names column '${k}', which is not in ${snap.tablePath}.`);
      out.set(f.name, v);
    }
    return out;
  };
  const resolved = clauses.map((c) => ({ ...c, map: c.action === 'delete' ? new Map<string, string>() : resolveSet(c.action === 'insert' ? c.values : c.set, c.action) }));
  // A name both sides have, unqualified in a NOT MATCHED (BY SOURCE) clause, is the clause's side's,
  // as Spark resolves it (in the join both sides are in scope, where it would be ambiguous).
  const both = new Set(srcSchema.fields.map((f) => f.name.toLowerCase()).filter((n) => snap.schema.fields.some((f) => f.name.toLowerCase() === n)));
  if (both.size) {
    for (const c of resolved) {
      if (c.kind === 'matched') continue;
      const alias = c.kind === 'notMatched' ? sAlias : tAlias;
      if (c.condition) c.condition = await qualifyNames(floe, c.condition, alias, both);
      // (Before completeRow: every value here is the caller's, or with '*' a qualified source column.)
      for (const [k, v] of c.map) c.map.set(k, await qualifyNames(floe, v, alias, both));
    }
  }
  for (const c of resolved) if (c.action !== 'delete') await completeRow(schema, c.map, c.action === 'insert' ? () => 'NULL' : targetCol, { defaults: c.action === 'insert' });
  const hasNbs = clauses.some((c) => c.kind === 'notMatchedBySource');
  const hasMatched = clauses.some((c) => c.kind === 'matched');

  // Source, materialised once (it is read several times and must not change in between).
  // Source rows are told apart by the table's rowid (no window over the source), unless a source
  // column shadows it.
  // The source row number's column: a name no source column has.
  let sid = '__sid';
  while (srcCols.has(sid)) sid = `_${sid}`;
  const byRowid = !srcCols.has('rowid');
  const srcTable = await materialize(floe, 'msrc', byRowid ? `SELECT * FROM (${srcSql})` : `SELECT *, row_number() OVER () AS ${sid} FROM (${srcSql})`);
  const src = byRowid ? `(SELECT *, rowid AS ${sid} FROM ${srcTable})` : srcTable;
  const numSourceRows = await count(floe, `SELECT 1 FROM ${srcTable}`);
  await checkClauseScopes(floe, clauses, src, sq, sAlias, srcSchema, schema, tq, tAlias);

  // Prune target files by the source's key ranges on equi-join columns (not with NOT MATCHED BY SOURCE: it reads every row).
  let candidates: AddFile[] = snap.files;
  const filters: string[] = [];
  if (!hasNbs) {
    for (const k of equiKeys(condition, tAlias, sAlias)) {
      const tf = snap.schema.fields.find((f) => f.name.toLowerCase() === k.target.toLowerCase());
      const sc = srcCols.get(k.source.toLowerCase());
      if (!tf || !sc || typeof tf.type !== 'string') continue;
      const isPart = snap.partitionColumns.includes(tf.name);
      const [r] = await floe.engine.allJson(`SELECT min(${quoteIdent(sc)})::VARCHAR AS lo, max(${quoteIdent(sc)})::VARCHAR AS hi, ${isPart ? `count(DISTINCT ${quoteIdent(sc)})` : '0'} AS n FROM ${src}`);
      if (r!.lo === null) {
        filters.push('false');
        continue;
      }
      const col = quoteIdent(tf.name);
      const lit = literalFor(tf.type);
      if (!lit) continue;
      if (snap.partitionColumns.includes(tf.name) && Number(r!.n) <= 1000) {
        const vals = (await floe.engine.allJson(`SELECT DISTINCT ${quoteIdent(sc)}::VARCHAR AS v FROM ${src} WHERE ${quoteIdent(sc)} IS NOT NULL`)).map((v) => lit(String(v.v)));
        if (vals.every((v) => v !== null)) filters.push(`${col} IN (${vals.join(', ')})`);
      } else {
        const lo = lit(String(r!.lo));
        const hi = lit(String(r!.hi));
        if (lo !== null && hi !== null) filters.push(`${col} BETWEEN ${lo} AND ${hi}`);
      }
    }
    candidates = filters.includes('false') ? [] : pruneFileList(snap.files, snap.schema, snap.partitionColumns, filters.filter((f) => f !== 'false'));
    candidates = await filesHoldingKeys(floe, snap, candidates, equiKeys(condition, tAlias, sAlias), srcCols, src);
  }
  const txn = new Transaction(log, snap);
  txn.readWhole((a) => (filters.length ? pruneFileList([a], snap.schema, snap.partitionColumns, filters.filter((f) => f !== 'false')).length > 0 && !filters.includes('false') : true), candidates);
  if (newMetadata) txn.setMetadata(newMetadata);

  const updCodes = resolved.map((c, i) => ({ c, i })).filter((x) => x.c.action === 'update').map((x) => (x.c.kind === 'matched' ? 1000 : 3000) + x.i);
  const delCodes = resolved.map((c, i) => ({ c, i })).filter((x) => x.c.action === 'delete').map((x) => (x.c.kind === 'matched' ? 1000 : 3000) + x.i);
  const insCodes = resolved.map((c, i) => ({ c, i })).filter((x) => x.c.action === 'insert').map((x) => 2000 + x.i);
  const isIn = (xs: number[]): string => (xs.length ? `__clause IN (${xs.join(', ')})` : 'false');

  // New values of every output column, per clause.
  const valueOf = (f: StructType['fields'][number], codesFor: number[], fallback: string, types?: Map<string, string>): string => {
    const whens = codesFor
      .map((code) => ({ code, v: resolved[code % 1000]!.map.get(f.name) }))
      .filter((x) => x.v !== undefined)
      .map((x) => `WHEN ${x.code} THEN ${x.v}`);
    // Each query of these values keeps only rows of `codesFor`: when every one of those clauses sets
    // the column, the fallback is never reached (and, for the target's own value, never read).
    const expr = whens.length === codesFor.length ? (whens.length ? `CASE __clause ${whens.join(' ')} END` : 'NULL') : whens.length ? `CASE __clause ${whens.join(' ')} ELSE ${fallback} END` : fallback;
    if (!types) return `${expr} AS ${quoteIdent(f.name)}`;
    return `${storeAssignmentCast(expr, f.type, types.get(f.name))} AS ${quoteIdent(f.name)}`;
  };
  // Every row's new values: an update clause's (the target's own where it sets none), an insert's.
  let keptCols = schema.fields.map((f) => valueOf(f, updCodes, targetCol(f.name), new Map())).join(', ');
  let insCols = schema.fields.map((f) => valueOf(f, insCodes, 'NULL', new Map())).join(', ');

  // The join: one row per (target row, source row) pair, plus unmatched rows of either side.
  const { sql: tscan, paths: candPaths } = await scanWithFileIds(floe, snap, candidates);
  const present = { t: `${tq}._file_id IS NOT NULL`, s: `${sq}.${sid} IS NOT NULL` };
  const group = (kind: Clause['kind'], base: number): string => {
    const cs = resolved.map((c, i) => ({ c, i })).filter((x) => x.c.kind === kind);
    if (!cs.length) return '0';
    return `CASE ${cs.map(({ c, i }) => `WHEN ${c.condition ? `(${c.condition}) IS TRUE` : 'true'} THEN ${base + i}`).join(' ')} ELSE 0 END`;
  };
  const clauseCode = `CASE WHEN ${present.t} AND ${present.s} THEN ${group('matched', 1000)} WHEN ${present.s} THEN ${group('notMatched', 2000)} ELSE ${group('notMatchedBySource', 3000)} END`;
  // The sides as structs of their columns only (the target's file and row number once, as columns;
  // a bare source alias would be ambiguous with a column of that name).
  const sStruct = `struct_pack(${srcSchema.fields.map((f) => `${quoteIdent(f.name)} := ${sq}.${quoteIdent(f.name)}`).join(', ')})`;
  /**
   * Whether the clauses' conditions (evaluated in the join) and the new values (over the join's
   * table) bind without any target column: DuckDB's binder says, on a target side that has only the
   * row markers (in the join) or a struct without the target's fields (in the join's table). Any
   * failure means "needed": the full join then binds or fails exactly as before.
   */
  const bindsWithoutTarget = async (): Promise<boolean> => {
    try {
      await floe.engine.describe(`SELECT ${clauseCode} AS c FROM ${src} ${sq}, (SELECT NULL::BIGINT AS _file_id, NULL::BIGINT AS _row_index) ${tq}`);
      await floe.engine.describe(`SELECT ${keptCols}, ${insCols} FROM (SELECT struct_pack(__floe_no_target_column := 1) AS ${tq}, ${sStruct} AS ${sq}, NULL::BIGINT AS __file, NULL::BIGINT AS __row, NULL::BIGINT AS __sid, NULL::INTEGER AS __clause FROM ${src} ${sq})`);
      return true;
    } catch {
      return false;
    }
  };
  // The target's values of matched rows are read (decoding every column of the candidate files)
  // only when something needs them: the change feed's pre-images and deleted rows, or a clause
  // expression naming a target column. Otherwise the join reads the target's join columns only and
  // the target side is a NULL struct of the same type (never read: no expression names its fields).
  const needTarget = hasNbs || (cdfOnForWrites(snap) && updCodes.length + delCodes.length > 0) || !(await bindsWithoutTarget());
  const tStruct = needTarget
    ? `CASE WHEN ${present.t} THEN struct_pack(${snap.schema.fields.map((f) => `${quoteIdent(f.name)} := ${tq}.${quoteIdent(f.name)}`).join(', ')}) END`
    : `NULL::STRUCT(${snap.schema.fields.map((f) => `${quoteIdent(f.name)} ${duckType(f.type)}`).join(', ')})`;
  const joinCols = `${tStruct} AS ${tq}, ${sStruct} AS ${sq}, ${tq}._file_id AS __file, ${tq}._row_index AS __row, ${sq}.${sid} AS __sid, ${clauseCode} AS __clause`;
  let joined: string;
  // With NOT MATCHED BY SOURCE clauses every target row plays a part: a full outer join.
  if (hasNbs) joined = await materialize(floe, 'mjoin', `SELECT ${joinCols} FROM (${tscan}) ${tq} FULL OUTER JOIN ${src} ${sq} ON ${condition}`);
  else {
    // Source rows whose key lies outside the candidate files' key range (on clustered or appended
    // keys, the inserts) can match nothing: they are not joined nor materialised again, but read
    // from the source table by a view whose other columns are constants (so the queries of matched
    // rows drop that branch when planned). The others go through one LEFT JOIN.
    // Without such a key: the matched pairs by an inner join (DuckDB builds on the source and
    // filters the target scan with the source's keys: about half the time of the LEFT JOIN, which
    // keeps every probe row), then the unmatched source rows: those with no pair, against a target
    // side of NULLs (as the LEFT JOIN gives them).
    const outside = unmatchableKeys(snap, candidates, equiKeys(condition, tAlias, sAlias), srcSchema);
    let pairs: string;
    if (outside) pairs = await materialize(floe, 'mjoin', `SELECT ${joinCols} FROM (SELECT * FROM ${src} __s WHERE NOT coalesce(${outside('__s')}, false)) ${sq} LEFT JOIN (${tscan}) ${tq} ON ${condition}`);
    else {
      pairs = await materialize(floe, 'mjoin', `SELECT ${joinCols} FROM ${src} ${sq} JOIN (${tscan}) ${tq} ON ${condition}`);
      await floe.engine.run(`INSERT INTO ${pairs} SELECT ${joinCols} FROM (SELECT * FROM ${src} __s ANTI JOIN ${pairs} __m ON __m.__sid = __s.${sid}) ${sq}
        LEFT JOIN (SELECT * FROM (${tscan}) WHERE false) ${tq} ON true`);
    }
    joined = outside
      ? `(SELECT * FROM ${pairs} UNION ALL SELECT NULL AS ${tq}, ${sStruct} AS ${sq}, NULL AS __file, NULL AS __row, ${sq}.${sid} AS __sid, ${group('notMatched', 2000)} AS __clause
        FROM (SELECT * FROM ${src} __s WHERE ${outside('__s')}) ${sq} LEFT JOIN (SELECT * FROM (${tscan}) WHERE false) ${tq} ON true)`
      : pairs;
  }

  // Store assignment: fractional values set to integral columns truncate, so their types are read.
  const integral = schema.fields.filter((f) => typeof f.type === 'string' && ['byte', 'short', 'integer', 'long'].includes(f.type));
  if (integral.length) {
    const typesOf = async (codesFor: number[], fallback: (f: StructType['fields'][number]) => string): Promise<Map<string, string>> => {
      try {
        const d = await floe.engine.describe(`SELECT ${integral.map((f) => valueOf(f, codesFor, fallback(f))).join(', ')} FROM ${joined}`);
        return new Map(integral.map((f, i) => [f.name, d[i]!.type]));
      } catch {
        return new Map();
      }
    };
    const keptTypes = await typesOf(updCodes, (f) => targetCol(f.name));
    const insTypes = await typesOf(insCodes, () => 'NULL');
    keptCols = schema.fields.map((f) => valueOf(f, updCodes, targetCol(f.name), keptTypes)).join(', ');
    insCols = schema.fields.map((f) => valueOf(f, insCodes, 'NULL', insTypes)).join(', ');
  }

  const codesOf = (kind: Clause['kind'], action: string): number[] => resolved.map((c, i) => ({ c, i })).filter((x) => x.c.kind === kind && x.c.action === action).map((x) => (kind === 'matched' ? 1000 : kind === 'notMatched' ? 2000 : 3000) + x.i);
  const chIn = isIn([...updCodes, ...delCodes]);
  // Whether some target row has several matches: when none has, the join's rows need no grouping
  // (the grouping of the target rows in play runs only otherwise). With deletion vectors one
  // unsorted read of the matched and changed target rows tells, and gives each file's changed rows
  // for its DV (null: some row matched twice, or rows out of the bitmaps' range).
  const dvOn = dvWritesOn(snap);
  const recordsOf = new Map(candidates.map((f) => [dataFilePath(log.store, f.path), parseStats(f.stats)?.numRecords]));
  const dvRows = dvOn && candidates.length
    ? await changedRowsByFile(floe, `SELECT __file AS f, __row AS r, __sid IS NOT NULL AS m, ${chIn} AS c FROM ${joined} WHERE __file IS NOT NULL AND (__sid IS NOT NULL OR ${chIn})`, candPaths.length, (k) => recordsOf.get(candPaths[k]!))
    : null;
  const unique = dvRows !== null || (await count(floe, `SELECT 1 FROM ${joined} WHERE __file IS NOT NULL AND __sid IS NOT NULL GROUP BY __file, __row HAVING count(*) > 1 LIMIT 1`)) === 0;
  // Every row metric of the join's clauses (in the same pass as the changed rows when it can be).
  const aggCols = `count(*) FILTER (WHERE ${isIn(insCodes)}) AS ins,
      count(*) FILTER (WHERE ${isIn(codesOf('matched', 'update'))}) AS mupd,
      count(*) FILTER (WHERE ${isIn(codesOf('notMatchedBySource', 'update'))}) AS nupd,
      count(*) FILTER (WHERE ${isIn(codesOf('notMatchedBySource', 'delete'))}) AS ndel`;
  let agg: Record<string, unknown> | undefined;
  let rowsInPlay: string;
  let rc: Record<string, unknown>;
  if (unique) {
    rowsInPlay = `(SELECT __file, __row, ${chIn} AS __ch FROM ${joined} WHERE __file IS NOT NULL)`;
    // The target's rows appear once each: changed rows and their files, and the metrics, in one pass.
    [rc] = (await floe.engine.allJs(`SELECT 0 AS dup, count(*) FILTER (WHERE __file IS NOT NULL AND ${chIn}) AS ch, count(*) FILTER (WHERE __file IS NOT NULL AND ${isIn(codesOf('matched', 'delete'))}) AS md,
      coalesce(list(DISTINCT __file) FILTER (WHERE __file IS NOT NULL AND ${chIn}), []) AS files, ${aggCols} FROM ${joined}`)) as [Record<string, unknown>];
    agg = rc;
  } else {
    // One grouping of the target rows in play (matched ones, and those a NOT MATCHED BY SOURCE
    // clause changes): how many source rows matched each, whether a clause changes it, whether a
    // matched delete does: the duplicate-match check, the changed rows and the delete count.
    rowsInPlay = await materialize(floe, 'mrows', `SELECT __file, __row, count(__sid) AS __n, max(__clause) FILTER (WHERE __sid IS NOT NULL) AS __mc,
        bool_or(${chIn}) AS __ch, bool_or(${isIn(codesOf('matched', 'delete'))}) AS __md
      FROM ${joined} WHERE __file IS NOT NULL AND (__sid IS NOT NULL OR ${chIn}) GROUP BY __file, __row`);
    [rc] = (await floe.engine.allJs(`SELECT count(*) FILTER (WHERE __n > 1 AND __mc > 0) AS dup, count(*) FILTER (WHERE __ch) AS ch, count(*) FILTER (WHERE __md) AS md,
      coalesce(list(DISTINCT __file) FILTER (WHERE __ch), []) AS files FROM ${rowsInPlay}`)) as [Record<string, unknown>];
  }
  const touchedFiles = rc!.files as unknown[];
  // A target row matched by several source rows: an error when a matched clause could change it.
  const dup = Number(rc!.dup);
  if (dup > 0 && hasMatched && !(clauses.filter((c) => c.kind === 'matched').length === 1 && clauses.find((c) => c.kind === 'matched')!.action === 'delete' && !clauses.find((c) => c.kind === 'matched')!.condition)) {
    throw new FloeError('DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE', `The MERGE into ${snap.tablePath} failed: ${dup} target row(s) matched more than one source row, so which update applies is ambiguous. Deduplicate the source on the merge keys (e.g. keep the latest row per key) and retry.`, { table: snap.tablePath, rows: dup });
  }
  // Target rows an update or delete clause changes, and the files holding them.
  const changed = `(SELECT __file, __row FROM ${rowsInPlay} WHERE __ch)`;
  const touched = new Set(touchedFiles.map((i) => candPaths[Number(i)]!));
  const store = log.store;
  const removed = candidates.filter((f) => touched.has(dataFilePath(store, f.path)));
  const checks = await constraintChecks(snap.tablePath, schema, snap.configuration);
  const checked = (q: string): string => (checks.length ? `SELECT * FROM (${q}) WHERE ${checks.join(' AND ')}` : q);
  const updated = `SELECT ${keptCols} FROM ${joined} WHERE ${isIn(updCodes)}`;
  const inserted = `SELECT ${insCols} FROM ${joined} WHERE ${isIn(insCodes)}`;
  // Copy-on-write: the other rows of touched files, read again and copied by DuckDB.
  const copiedCols = schema.fields.map((f) => (snap.schema.fields.some((x) => x.name === f.name) ? `c.${quoteIdent(f.name)}::${duckType(f.type)}` : `NULL::${duckType(f.type)}`) + ` AS ${quoteIdent(f.name)}`).join(', ');
  // The copy scan numbers its files anew: the changed rows' file ids are mapped to its numbering.
  let copied: string | null = null;
  if (removed.length && !dvOn) {
    const rscan = await scanWithFileIds(floe, snap, removed);
    const rid = new Map(rscan.paths.map((p, i) => [p, i]));
    const remap = `([${candPaths.map((p) => rid.get(p) ?? -1).join(', ')}]::BIGINT[])`;
    copied = `SELECT ${copiedCols} FROM (${rscan.sql}) c ANTI JOIN (SELECT ${remap}[__file + 1] AS __file, __row FROM ${changed}) ch ON ch.__file = c._file_id AND ch.__row = c._row_index`;
  }
  const newData = checked([updated, ...(copied ? [copied] : []), inserted].join(' UNION ALL '));
  // With deletion vectors: only updated and inserted rows are written; changed target rows go to DVs.
  const changedOnly = checked(`${updated} UNION ALL ${inserted}`);

  agg ??= (await floe.engine.allJson(`SELECT ${aggCols} FROM ${joined}`))[0]!;
  const changedCount = Number(rc!.ch);
  const touchedRows = removed.reduce<number | null>((n, f) => {
    const r = parseStats(f.stats)?.numRecords;
    return n === null || r === undefined ? null : n + r - (f.deletionVector?.cardinality ?? 0);
  }, 0);
  const metrics: MergeMetrics = {
    numSourceRows,
    numTargetRowsInserted: Number(agg!.ins),
    numTargetRowsMatchedUpdated: Number(agg!.mupd),
    numTargetRowsNotMatchedBySourceUpdated: Number(agg!.nupd),
    // A row deleted by several matching source rows counts once (Spark's DeduplicateCDFDeletes).
    numTargetRowsMatchedDeleted: Number(rc!.md),
    numTargetRowsNotMatchedBySourceDeleted: Number(agg!.ndel),
    numTargetRowsUpdated: 0,
    numTargetRowsDeleted: 0,
    // With deletion vectors no row is copied: touched files stay, their changed rows marked deleted.
    numTargetRowsCopied: copied ? (touchedRows !== null ? touchedRows - changedCount : await count(floe, copied)) : 0,
    numOutputRows: 0,
    numTargetFilesAdded: 0,
    numTargetFilesRemoved: 0,
    numTargetFilesScanned: candidates.length,
    numTargetFilesTotal: snap.files.length,
  };
  metrics.numTargetRowsUpdated = metrics.numTargetRowsMatchedUpdated + metrics.numTargetRowsNotMatchedBySourceUpdated;
  metrics.numTargetRowsDeleted = metrics.numTargetRowsMatchedDeleted + metrics.numTargetRowsNotMatchedBySourceDeleted;
  metrics.numOutputRows = metrics.numTargetRowsInserted + metrics.numTargetRowsUpdated + metrics.numTargetRowsCopied;

  // Change data: only when existing rows change (an insert-only MERGE's adds already say "insert").
  let cdcSql: string | null = null;
  if (cdfOnForWrites(snap) && removed.length) {
    const cols = schema.fields.map((f) => `${targetCol(f.name)}::${duckType(f.type)} AS ${quoteIdent(f.name)}`).join(', ');
    cdcSql = `SELECT ${cols}, 'update_preimage' AS _change_type FROM ${joined} WHERE ${isIn(updCodes)}
      UNION ALL SELECT ${keptCols}, 'update_postimage' AS _change_type FROM ${joined} WHERE ${isIn(updCodes)}
      UNION ALL SELECT ${cols}, 'delete' AS _change_type FROM ${joined} WHERE ${isIn(delCodes)} QUALIFY row_number() OVER (PARTITION BY __file, __row ORDER BY __sid) = 1
      UNION ALL SELECT ${insCols}, 'insert' AS _change_type FROM ${joined} WHERE ${isIn(insCodes)}`;
  }
  const params = {
    predicate: condition,
    matchedPredicates: JSON.stringify(clauses.filter((c) => c.kind === 'matched').map((c) => ({ ...(c.condition ? { predicate: c.condition } : {}), actionType: c.action }))),
    notMatchedPredicates: JSON.stringify(clauses.filter((c) => c.kind === 'notMatched').map((c) => ({ ...(c.condition ? { predicate: c.condition } : {}), actionType: c.action }))),
    notMatchedBySourcePredicates: JSON.stringify(clauses.filter((c) => c.kind === 'notMatchedBySource').map((c) => ({ ...(c.condition ? { predicate: c.condition } : {}), actionType: c.action }))),
  };
  metrics.executionTimeMs = Date.now() - started;
  const anyChange = metrics.numTargetRowsInserted + metrics.numTargetRowsUpdated + metrics.numTargetRowsDeleted > 0;
  if (!anyChange && !newMetadata) return { version: null, metrics };
  // With deletion vectors on, touched files stay with a DV marking their changed rows, and only the
  // updated and inserted rows are written (built here in bulk rather than by commitRewrite's row lists).
  let dvWritten: string[] = [];
  if (dvOn && removed.length) {
    const dv = dvRows ? await writeDeletionVectorsFor(log, removed, candPaths, dvRows) : await writeDeletionVectors(floe, log, removed, candPaths, `SELECT __file AS f, __row AS r FROM ${changed}`);
    dvWritten = dv.written;
    txn.adds.push(...dv.readded);
    metrics.numDeletionVectorsAdded = dv.readded.filter((f) => !removed.find((x) => x.path === f.path)?.deletionVector).length;
    metrics.numDeletionVectorsUpdated = dv.readded.length - metrics.numDeletionVectorsAdded;
  }
  if (dvOn) metrics.numCopiedRows = 0;
  try {
    const res = await commitRewrite(floe, {
      snapshot: snap, txn, removed, newDataSql: dvOn ? changedOnly : newData, cdcSql, operation: 'MERGE', params, metrics: metrics as Record<string, number>,
      addedFilesMetric: 'numTargetFilesAdded', removedFilesMetric: 'numTargetFilesRemoved', schemaOverride: schema,
    });
    if (res.version === null) await Promise.all(dvWritten.map((p) => log.store.delete(p).catch(() => undefined)));
    return { version: res.version, metrics };
  } catch (e) {
    if (!commitOutcomeUnknown(e)) await Promise.all(dvWritten.map((p) => log.store.delete(p).catch(() => undefined)));
    throw constraintFailure(e);
  }
}
