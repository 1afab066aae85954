/**
 * Runs one update of a pipeline (triggered: everything available at the start, then stop).
 *
 * - Datasets are managed tables of the warehouse catalog (`<warehouse>/<schema>/<name>`), registered
 *   so `floe sql` sees them, and marked with the table property `floe.pipeline.name`; a table of the
 *   same name owned by something else is an error.
 * - Streaming flows (append / AUTO CDC) read only what their sources committed after the flow's
 *   checkpoint. A batch is written to the checkpoint as `pending` (its exact source ranges) before
 *   the output commit, whose `txn` is (`<pipeline>.<flow>`, batch id); then the checkpoint advances.
 *   A rerun after a crash replays the pending batch with the same ranges and batch id; if the
 *   target already has that txn, the write is skipped (output and checkpoint advance together).
 * - Materialized views recompute their query and overwrite the table (skipped when every input is a
 *   Delta table whose version did not change since the last refresh).
 * - Full refresh (`fullRefresh: [...] | 'all'`) truncates a table and clears its flows' checkpoints
 *   (and an AUTO CDC target's state), then replays from the start; tables with
 *   `pipelines.reset.allowed = false` keep their data and checkpoints. `refresh: [...]` updates only
 *   the named datasets; other flows are EXCLUDED.
 * - Flows run in dependency order; a failed flow fails the update, flows downstream of it are
 *   SKIPPED, and independent flows still run.
 */
import { isCdfColumn } from '../core/cdf.js';
import * as os from 'node:os';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { Catalog, resolveWarehouse } from '../catalog/catalog.js';
import { quoteIdent, quoteString } from '../core/schema.js';
import type { DataFrame } from '../dataframe.js';
import { FloeError, engineMessage } from '../errors.js';
import { Floe } from '../floe.js';
import { readChangeFeedBatch, readStreamBatch } from '../streaming/delta-source.js';
import { DeltaTable } from '../table/delta-table.js';
import { applyChanges, applyChangesFromSnapshot, autoCdcTargetColumns, STATE_DIR } from './auto-cdc.js';
import { type DeclaredColumn, type DefineFunction, type Expectation, type PipelineDefinitions, type PipelineModule, type QueryContext, collectDefinitions, isPipelineModule } from './definition.js';
import { EventLog, listUpdates, type PipelineEvent, type PipelineEventListener } from './event-log.js';
import { type ExpectationMetric, applyExpectations } from './expectations.js';
import { type PipelineGraph, type ResolvedFlow, type SourceRef, classify, kindText, makeContext, planSql, resolveGraph } from './graph.js';
import { type PipelineSpec, libraryFiles, loadLibraries, loadSpec } from './spec.js';
import { type FlowCheckpoint, fileAgeMs, PipelineState, type SourceOffset, type SourceRange } from './state.js';
import { type NotificationSpec, Notifier } from './notifications.js';

export const OWNER_PROPERTY = 'floe.pipeline.name';
export const RESET_ALLOWED = 'pipelines.reset.allowed';

export interface RunPipelineOptions {
  /** A spec object or the path of a spec file. */
  spec?: PipelineSpec | string;
  /** Definitions given directly (instead of the spec's libraries). */
  definitions?: PipelineDefinitions | PipelineModule | DefineFunction | Array<PipelineModule | DefineFunction>;
  /** Pipeline name when there is no spec (default 'pipeline'). */
  name?: string;
  /** Warehouse folder (overrides the spec's). */
  warehouse?: string;
  schema?: string;
  configuration?: Record<string, string>;
  /** Folder relative paths in definitions resolve against (default: the spec's folder, else cwd). */
  baseDir?: string;
  /** Checkpoints and event log root (default `<warehouse>/_pipelines/<name>`). */
  storage?: string;
  fullRefresh?: string[] | 'all';
  refresh?: string[];
  /** Use this session (else one is created and closed). */
  floe?: Floe;
  /**
   * Continuous mode: process new input every trigger interval until `signal` aborts (the flow in
   * progress finishes; the update ends CANCELED). Default: the spec's `continuous`, else triggered.
   */
  continuous?: boolean;
  /** Continuous mode's trigger interval in ms (default: configuration pipelines.trigger.interval, else 5 s). */
  triggerIntervalMs?: number;
  /** Stops a continuous update (also stops a triggered one between flows). */
  signal?: AbortSignal;
  /** Called for every event as it is emitted (one listener or several; see also subscribePipelineEvents). */
  onEvent?: PipelineEventListener | PipelineEventListener[];
  /** Notifications (else the spec's `notifications`); see notifications.ts. */
  notifications?: NotificationSpec[];
  /** Flows run at once (default: configuration pipelines.maxConcurrentFlows, else min(4, CPUs)); 1 runs them in order. */
  maxConcurrentFlows?: number;
}

export type FlowStatus = 'COMPLETED' | 'FAILED' | 'SKIPPED' | 'EXCLUDED';

export interface FlowRunResult {
  flow: string;
  dataset: string;
  status: FlowStatus;
  batchId: number | null;
  numOutputRows: number;
  numUpsertedRows: number;
  numDeletedRows: number;
  droppedRecords: number;
  expectations: ExpectationMetric[];
  /** Why nothing was written (no new data, up to date, ...). */
  note?: string;
  error?: FloeError | Error;
}

export interface RunPipelineResult {
  pipeline: string;
  updateId: string;
  /** CANCELED: a continuous update stopped by its signal. */
  state: 'COMPLETED' | 'FAILED' | 'CANCELED';
  flows: Record<string, FlowRunResult>;
  eventLog: string;
  warehouse: string;
}

/** A resolved pipeline: what runs, where. */
export interface LoadedPipeline {
  name: string;
  definitions: PipelineDefinitions;
  warehouse: string;
  schema: string;
  configuration: Record<string, string>;
  baseDir: string;
  storage: string;
  spec?: PipelineSpec;
}

function normalizeDefinitions(d: NonNullable<RunPipelineOptions['definitions']>): PipelineDefinitions {
  if (Array.isArray(d)) return collectDefinitions(d.map((x) => ({ define: isPipelineModule(x) ? x.define : x })));
  if (isPipelineModule(d)) return collectDefinitions([{ define: d.define }]);
  if (typeof d === 'function') return collectDefinitions([{ define: d }]);
  return d;
}

/** Loads the spec and its libraries (or takes definitions as given) and settles every location. */
export async function loadPipeline(o: RunPipelineOptions): Promise<LoadedPipeline> {
  const p = await loadPipelineDeferred(o);
  if (p.loadError) throw p.loadError;
  return p;
}

/**
 * loadPipeline, except that a library that does not load (a syntax error, a module that throws) is
 * returned as `loadError` once the spec is known: a run records it as a failed update in the
 * pipeline's event log (and notifies), as it does a graph error. A spec that does not load still throws.
 */
async function loadPipelineDeferred(o: RunPipelineOptions): Promise<LoadedPipeline & { loadError?: unknown }> {
  let spec: PipelineSpec | undefined;
  if (typeof o.spec === 'string') spec = await loadSpec(o.spec);
  else spec = o.spec;
  let definitions: PipelineDefinitions;
  let loadError: unknown;
  if (o.definitions) definitions = normalizeDefinitions(o.definitions);
  else if (spec) {
    try {
      definitions = collectDefinitions(await loadLibraries(await libraryFiles(spec), { ...spec.configuration, ...(o.configuration ?? {}) }));
    } catch (e) {
      if (!(e instanceof FloeError)) throw e;
      loadError = e;
      definitions = collectDefinitions([]);
    }
  } else throw new FloeError('PIPELINE_SPEC_NOT_FOUND', 'runPipeline needs a spec or definitions.');
  const name = spec?.name ?? o.name ?? 'pipeline';
  const warehouse = resolveWarehouse(o.warehouse ?? spec?.warehouse);
  const storage = o.storage ? path.resolve(o.storage) : spec?.storage ?? path.join(warehouse, '_pipelines', name);
  return {
    name,
    definitions,
    warehouse,
    schema: (o.schema ?? spec?.schema ?? 'default').toLowerCase(),
    configuration: { ...(spec?.configuration ?? {}), ...(o.configuration ?? {}) },
    baseDir: o.baseDir ? path.resolve(o.baseDir) : spec?.baseDir ?? process.cwd(),
    storage,
    spec,
    ...(loadError ? { loadError } : {}),
  };
}

/** Validates a pipeline without reading or writing data (a dry run). */
export async function validatePipeline(o: RunPipelineOptions): Promise<{ pipeline: LoadedPipeline; graph: PipelineGraph }> {
  const pipeline = await loadPipeline(o);
  maxConcurrentFlows(o, pipeline);
  triggerIntervalMs(o, pipeline);
  const floe = o.floe ?? (await Floe.create());
  try {
    const graph = await resolveGraph(floe, pipeline.definitions, { baseDir: pipeline.baseDir, configuration: pipeline.configuration });
    const issues = await floe.withTempScope(() => new Update(floe, pipeline, o).analyze(graph));
    if (issues.length) {
      const msg = issues.length === 1 ? issues[0]!.message : `${issues.length} problems in the pipeline's queries:\n${issues.map((i) => `  - [${i.code}] ${i.message}`).join('\n')}`;
      throw new FloeError(issues[0]!.code, msg, { issues });
    }
    return { pipeline, graph };
  } finally {
    if (!o.floe) await floe.close();
  }
}

/** Runs one update; see the module comment. */
export async function runPipeline(o: RunPipelineOptions): Promise<RunPipelineResult> {
  const pipeline = await loadPipelineDeferred(o);
  const floe = o.floe ?? (await Floe.create());
  try {
    return await new Update(floe, pipeline, o).run();
  } finally {
    if (!o.floe) await floe.close();
  }
}

/** A flow's results over the rounds of a continuous update: counts add up, the last status wins. */
function addUp(a: FlowRunResult, b: FlowRunResult): FlowRunResult {
  const exp = new Map(a.expectations.map((e) => [`${e.dataset}.${e.name}`, { ...e }]));
  for (const e of b.expectations) {
    const k = `${e.dataset}.${e.name}`;
    const x = exp.get(k);
    if (x) {
      x.passed_records += e.passed_records;
      x.failed_records += e.failed_records;
    } else exp.set(k, { ...e });
  }
  return {
    ...b,
    batchId: b.batchId ?? a.batchId,
    numOutputRows: a.numOutputRows + b.numOutputRows,
    numUpsertedRows: a.numUpsertedRows + b.numUpsertedRows,
    numDeletedRows: a.numDeletedRows + b.numDeletedRows,
    droppedRecords: a.droppedRecords + b.droppedRecords,
    expectations: [...exp.values()],
  };
}

/**
 * A file source's offset after a batch: the high-water mark moves to the newest processed file; every
 * processed file stays listed, or with `maxFileAge` (window) only those modified within it of the mark.
 */
function advanceFiles(prev: SourceOffset | undefined, r: SourceRange, windowMs: number): SourceOffset {
  const times = new Map<string, number>();
  const prevFiles = prev?.files ?? [];
  prevFiles.forEach((f, i) => times.set(f, prev?.mtimes?.[i] ?? Number.POSITIVE_INFINITY));
  r.files!.forEach((f, i) => times.set(f, r.mtimes?.[i] ?? Number.POSITIVE_INFINITY));
  const known = [...times.values()].filter((t) => Number.isFinite(t));
  const hwm = Math.max(prev?.hwm ?? -Infinity, ...known);
  const keep = [...times].filter(([, t]) => !Number.isFinite(hwm) || t >= hwm - windowMs);
  const schema = r.schema ?? prev?.schema;
  return { files: keep.map(([f]) => f), mtimes: keep.map(([, t]) => (Number.isFinite(t) ? t : hwm)), ...(Number.isFinite(hwm) ? { hwm } : {}), ...(schema ? { schema } : {}) };
}

/** A query function's result, which must be a DataFrame (PIPELINE_INVALID_QUERY otherwise). */
function queryResult(x: unknown, flow: string): DataFrame {
  if (x && typeof (x as DataFrame).toSQL === 'function') return x as DataFrame;
  const what = x === null ? 'null' : x === undefined ? 'undefined' : Array.isArray(x) ? 'an array' : `a ${typeof x}${typeof x === 'string' ? ` ('${String(x).slice(0, 60)}')` : ''}`;
  throw new FloeError('PIPELINE_INVALID_QUERY', `The query function of '${flow}' returned ${what}; it must return a DataFrame (ctx.read(…), ctx.readStream(…), ctx.sql(…), …).`, { flow });
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))$/;

/**
 * A batch of files read with the source's stored schema (SourceOffset.schema): a stored column is
 * read with its stored type (NULL when the batch's files lack it), a new column is added with its
 * inferred type. A value that does not convert to its stored type (a fraction in a BIGINT column,
 * text in a DOUBLE one) fails the flow with FILE_SOURCE_SCHEMA_MISMATCH rather than being changed.
 * Returns the SQL and the schema after the batch.
 */
async function withStoredSchema(floe: Floe, source: string, sql: string, stored: Array<[string, string]> | undefined): Promise<{ sql: string; schema: Array<[string, string]> }> {
  const raw = (await floe.engine.describe(sql)).map((c): [string, string] => [c.name, c.type]);
  // A column DuckDB reads as JSON (NULL in every row, or of mixed types) is a string column: its text
  // (a JSON string's value, other values as JSON), as a nested value read into a string column is.
  const textOf = (c: string, from: string): string => (from === 'JSON'
    ? `CASE json_type(${c}) WHEN 'VARCHAR' THEN json_extract_string(${c}, '$') WHEN 'NULL' THEN NULL ELSE CAST(${c} AS VARCHAR) END`
    : `CAST(to_json(${c}) AS VARCHAR)`);
  const schema: Array<[string, string]> = stored ? [...stored] : raw.map(([n, t]) => [n, storedFileType(t)]);
  const byName = new Map(raw.map(([n, t]) => [n.toLowerCase(), [n, t] as const]));
  const storedNames = new Set(schema.map(([n]) => n.toLowerCase()));
  const cols: string[] = [];
  const casts: Array<[string, string, string]> = [];
  for (const [name, type] of schema) {
    const got = byName.get(name.toLowerCase());
    const c = got ? quoteIdent(got[0]) : '';
    if (!got) cols.push(`NULL::${type} AS ${quoteIdent(name)}`);
    else if (got[1] === type) cols.push(`${c} AS ${quoteIdent(name)}`);
    else if (type === 'VARCHAR' && (got[1] === 'JSON' || NESTED.test(got[1]))) cols.push(`${textOf(c, got[1])} AS ${quoteIdent(name)}`);
    // (Nested types are not cast: a cast to the stored STRUCT would drop new fields. The write's schema
    // merge adds them, as before this stored schema.)
    else if (STRUCTURED.test(type) || STRUCTURED.test(got[1])) cols.push(`${c} AS ${quoteIdent(name)}`);
    else {
      cols.push(`CAST(${c} AS ${type}) AS ${quoteIdent(name)}`);
      casts.push([got[0], got[1], type]);
    }
  }
  const added = raw.filter(([n]) => !storedNames.has(n.toLowerCase()));
  for (const [n, t] of added) cols.push(t === 'JSON' ? `${textOf(quoteIdent(n), t)} AS ${quoteIdent(n)}` : quoteIdent(n));
  for (const [col, from, to] of casts) {
    const c = quoteIdent(col);
    // (Numbers must come back equal: 15.5 into BIGINT would round.)
    const lossy = NUMERIC.test(from) && NUMERIC.test(to) ? ` OR TRY_CAST(${c} AS ${to})::${from} <> ${c}` : '';
    let bad: Record<string, unknown>[];
    try {
      bad = await floe.engine.allJson(`SELECT CAST(${c} AS VARCHAR) AS v FROM (${sql}) WHERE ${c} IS NOT NULL AND (TRY_CAST(${c} AS ${to}) IS NULL${lossy}) LIMIT 1`);
    } catch {
      bad = [{ v: `(a ${from} value)` }];
    }
    if (bad.length) {
      throw new FloeError(
        'FILE_SOURCE_SCHEMA_MISMATCH',
        `New files in ${source} have the value ${String(bad[0]!.v)} in column '${col}' (read as ${from}), which does not convert to the column's type ${to}, inferred from the source's first files. Fix or remove the file, or fully refresh the dataset to infer the schema again.`,
        { source, column: col, inferredType: from, storedType: to },
      );
    }
  }
  return { sql: `SELECT ${cols.join(', ')} FROM (${sql})`, schema: [...schema, ...added.map(([n, t]): [string, string] => [n, storedFileType(t)])] };
}

/** The type a file source stores for a column DuckDB infers as `t` (JSON: NULL in every row or mixed types, a string column). */
const storedFileType = (t: string): string => (t === 'JSON' ? 'VARCHAR' : t);

/** DuckDB nested types (as DESCRIBE prints them); STRUCTURED: those with named fields or map entries (lists of scalars are cast). */
const NESTED = /^(STRUCT|MAP|UNION)\(|\[\d*\]$/;
const STRUCTURED = /(STRUCT|MAP|UNION)\(/;

/**
 * How many flows may run at once: the option, else the configuration's
 * `pipelines.maxConcurrentFlows`, else the machine's parallelism capped at 4. 1 runs them in order.
 */
function maxConcurrentFlows(o: RunPipelineOptions, p: { configuration: Record<string, string> }): number {
  const raw = o.maxConcurrentFlows ?? p.configuration['pipelines.maxConcurrentFlows'];
  if (raw === undefined) return Math.max(1, Math.min(4, os.availableParallelism()));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new FloeError('PIPELINE_INVALID_OPTION', `pipelines.maxConcurrentFlows must be a positive integer, got '${raw}'.`, { option: 'pipelines.maxConcurrentFlows' });
  return n;
}

/**
 * Runs every flow of the graph's order once, at most `limit` at a time: a flow starts when the flows
 * it depends on and the earlier flows into the same target have finished; among ready flows the
 * graph's order decides. Waits for all started flows even when one throws, then rethrows.
 */
async function schedule(graph: PipelineGraph, limit: number, run: (flow: string) => Promise<void>): Promise<void> {
  const pending = [...graph.order];
  const inOrder = new Set(graph.order);
  const done = new Set<string>();
  const running = new Map<string, Promise<void>>();
  let error: unknown;
  const position = new Map(graph.order.map((n, i) => [n, i]));
  const ready = (n: string): boolean => {
    const f = graph.flows.get(n)!;
    if (!f.dependsOn.every((d) => done.has(d) || !inOrder.has(d))) return false;
    // Flows into the same target keep the graph's order (the first writer's schema, append order).
    return graph.order.every((m) => position.get(m)! >= position.get(n)! || done.has(m) || graph.flows.get(m)!.target !== f.target);
  };
  while (pending.length || running.size) {
    while (error === undefined && running.size < limit) {
      const i = pending.findIndex(ready);
      if (i < 0) break;
      const n = pending.splice(i, 1)[0]!;
      running.set(n, run(n).catch((e: unknown) => { error ??= e; }).finally(() => { running.delete(n); done.add(n); }));
    }
    if (!running.size) break;
    await Promise.race(running.values());
  }
  if (error !== undefined) throw error;
}

/** Waits `ms`, or less when the signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export const TRIGGER_INTERVAL = 'pipelines.trigger.interval';

/** The continuous trigger interval: the option, else `pipelines.trigger.interval` ("10 seconds", "500 ms", "1 minute"), else 5 s. */
export function triggerIntervalMs(o: RunPipelineOptions, p: LoadedPipeline): number {
  if (o.triggerIntervalMs !== undefined) return o.triggerIntervalMs;
  const raw = p.configuration[TRIGGER_INTERVAL];
  if (raw === undefined) return 5000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)?\s*$/i.exec(raw);
  if (!m) throw new FloeError('PIPELINE_SPEC_INVALID_FIELD', `${TRIGGER_INTERVAL} must be a duration such as '10 seconds', '500 ms' or '1 minute', got '${raw}'.`);
  const unit = (m[2] ?? 's').toLowerCase();
  const mult = unit.startsWith('ms') || unit.startsWith('milli') ? 1 : unit.startsWith('h') ? 3_600_000 : unit.startsWith('m') ? 60_000 : 1000;
  return Number(m[1]) * mult;
}

const emptyResult = (flow: string, dataset: string, status: FlowStatus, note?: string): FlowRunResult => ({ flow, dataset, status, batchId: null, numOutputRows: 0, numUpsertedRows: 0, numDeletedRows: 0, droppedRecords: 0, expectations: [], note });

class Update {
  private readonly state: PipelineState;
  private readonly catalog: Catalog;
  private readonly updateId = randomUUID();
  private log!: EventLog;
  private notifier?: Notifier;
  private graph!: PipelineGraph;
  private readonly results: Record<string, FlowRunResult> = {};
  /** File-source folders found missing in this update (warned once). */
  private readonly missingFolders = new Set<string>();

  constructor(private floe: Floe, private p: LoadedPipeline & { loadError?: unknown }, private o: RunPipelineOptions) {
    this.state = new PipelineState(p.storage);
    this.catalog = new Catalog(p.warehouse);
  }

  location(dataset: string): string {
    return this.catalog.managedLocation(this.p.schema, dataset);
  }

  /**
   * Validation's query analysis: each flow's query is described (not run) in dependency order over
   * its inputs' schemas: a dataset's as this analysis described it (its declared schema when it has
   * one), a folder's from its current files, a Delta path's or catalog table's from the table. An
   * AUTO CDC flow's options are checked against its source's columns. A flow with an input whose
   * schema is unknown (a folder without files, a snapshot flow's target) is skipped, and so is what
   * reads it: nothing is reported that a run would not find.
   */
  async analyze(graph: PipelineGraph): Promise<Array<{ code: string; message: string }>> {
    const issues: Array<{ code: string; message: string }> = [];
    const known = new Map<string, Array<[string, string]>>();
    const stand = (cols: Array<[string, string]>): string => `SELECT ${cols.map(([n, t]) => `NULL::${t} AS ${quoteIdent(n)}`).join(', ')} WHERE false`;
    const cdfCols = ", NULL::VARCHAR AS _change_type, NULL::BIGINT AS _commit_version, NULL::TIMESTAMPTZ AS _commit_timestamp";
    const skipped = new Set<string>();
    for (const name of graph.order) {
      const f = graph.flows.get(name)!;
      const d = graph.datasets.get(f.target)!;
      const declared = d.schema?.map((c): [string, string] => [c.name, c.duckType]);
      const record = (cols: Array<[string, string]>): void => {
        const prev = known.get(f.target) ?? [];
        const have = new Set(prev.map(([n]) => n.toLowerCase()));
        known.set(f.target, declared ?? [...prev, ...cols.filter(([n]) => !have.has(n.toLowerCase()))]);
      };
      if (f.def.kind === 'snapshotCdc' || skipped.has(f.target)) {
        skipped.add(f.target);
        continue;
      }
      // Each input's SQL, or unknown.
      const prepared = new Map<string, string>();
      let unknown = false;
      for (const src of f.sources) {
        let sql: string | null = null;
        if (src.kind === 'folder') {
          // The source's stored schema (its processed files may be gone) and the columns of its current files.
          let cols: Array<[string, string]> | null = (await this.state.checkpoint(f.name)).sources[src.key]?.schema ?? null;
          const files = (await this.listFiles(src.name, src.files!.format)).slice(-50);
          if (files.length) {
            const inferred = (await this.floe.engine.describe(this.fileSql(files, src.files!))).map((c): [string, string] => [c.name, storedFileType(c.type)]);
            const have = new Set((cols ?? []).map(([n]) => n.toLowerCase()));
            cols = [...(cols ?? []), ...inferred.filter(([n]) => !have.has(n.toLowerCase()))];
          }
          sql = cols ? stand(cols) : null;
        } else if (src.kind === 'dataset') {
          const cols = known.get(src.name);
          sql = cols && !skipped.has(src.name) ? stand(cols) : null;
        } else {
          const loc = await this.sourceLocation(src).catch(() => null);
          sql = loc ? await (await this.floe.read.delta(loc)).toSQL() : null;
        }
        if (sql === null) {
          unknown = true;
          break;
        }
        prepared.set(src.key, src.mode === 'cdf' ? `SELECT *${cdfCols} FROM (${sql})` : sql);
      }
      if (unknown) {
        skipped.add(f.target);
        continue;
      }
      // (A read this analysis has no schema for makes the flow's result unknown: nothing is reported.)
      let missed = false;
      const serve = (sql: string | undefined): DataFrame => {
        if (sql === undefined) missed = true;
        return this.floe.duckdbSql(sql ?? 'SELECT NULL AS __floe_unknown WHERE false');
      };
      const ctx = makeContext(this.floe, this.p.configuration, this.p.baseDir, graph.datasets, (n, mode) => {
        if (mode === 'files' || mode === 'filesBatch') return serve(prepared.get(`${mode}:folder:${n}`));
        const c = classify(n, graph.datasets, this.p.baseDir);
        if (c.kind === 'dataset' && graph.datasets.get(c.name)!.resolvedKind === 'view') {
          const cols = skipped.has(c.name) ? undefined : known.get(c.name);
          return serve(cols ? (mode === 'cdf' ? `SELECT *${cdfCols} FROM (${stand(cols)})` : stand(cols)) : undefined);
        }
        return serve(prepared.get(`${mode}:${c.kind}:${c.name}`));
      });
      const where = d.source ? ` (${d.source})` : '';
      try {
        if (f.def.kind === 'autoCdc') {
          const c = f.def.cdc!;
          const src = await ctx.readStream(c.source, c.sourceOptions).toSQL();
          record(await autoCdcTargetColumns(this.floe, src, { ...c, target: f.target }));
        } else {
          const df = queryResult(await f.def.query!(ctx), f.name);
          record((await this.floe.engine.describe(await df.toSQL())).map((x): [string, string] => [x.name, x.type]));
        }
        if (missed) skipped.add(f.target);
      } catch (e) {
        skipped.add(f.target);
        if (missed) continue;
        if (!(e instanceof FloeError)) throw e;
        const code = e.code === 'FLOE_SQL_ERROR' || e.code === 'FLOE_ENGINE_ERROR' ? 'PIPELINE_QUERY_ERROR' : e.code;
        issues.push({ code, message: `${f.def.kind === 'autoCdc' ? `The AUTO CDC flow '${f.name}'` : `The query of '${f.name}'`}${where}: ${engineMessage(e)}` });
      }
    }
    return issues;
  }

  async run(): Promise<RunPipelineResult> {
    const release = await this.state.lock(this.p.name);
    try {
      const pipelineId = await this.state.pipelineId(this.p.name);
      this.notifier = Notifier.create(this.o.notifications ?? this.p.spec?.notifications, { pipeline: this.p.name, pipelineId, updateId: this.updateId, baseDir: this.p.baseDir });
      const notifier = this.notifier;
      const listeners = [...(notifier ? [(e: PipelineEvent) => notifier.onEvent(e)] : []), ...[this.o.onEvent ?? []].flat()];
      this.log = new EventLog(this.floe, path.join(this.p.storage, 'event_log'), { pipelineId, pipelineName: this.p.name, updateId: this.updateId }, listeners);
      const fr = this.o.fullRefresh;
      this.log.emit({
        eventType: 'create_update',
        message: `Update ${this.updateId.slice(0, 8)} started${fr === 'all' ? ' (full refresh of all tables)' : fr?.length ? ` (full refresh of ${fr.join(', ')})` : ''}.`,
        details: {
          cause: 'USER_ACTION',
          full_refresh: fr === 'all',
          full_refresh_selection: Array.isArray(fr) ? fr : [],
          refresh_selection: this.o.refresh ?? [],
          config: { name: this.p.name, schema: this.p.schema, warehouse: this.p.warehouse, storage: this.p.storage, configuration: this.p.configuration, spec: this.p.spec?.file ?? null },
        },
      });
      // An update whose process died (SIGKILL, power loss) never wrote its end: record it as FAILED now
      // (the run lock guarantees it is not still running).
      for (const u of await listUpdates(this.floe, this.log.location, 50)) {
        if (['COMPLETED', 'FAILED', 'CANCELED'].includes(u.state)) continue;
        this.log.emit({
          eventType: 'update_progress', updateId: u.update_id, seqNo: Number.MAX_SAFE_INTEGER, level: 'ERROR', details: { state: 'FAILED' },
          message: `Update ${u.update_id.slice(0, 8)} is FAILED: it was interrupted (its process ended before the update finished).`,
          error: new FloeError('PIPELINE_UPDATE_INTERRUPTED', `Update ${u.update_id} was interrupted before it finished; update ${this.updateId} recovered its flows from their checkpoints.`),
        });
      }
      this.progress('QUEUED');
      await this.log.flush(); // the update is on record from its start
      this.progress('INITIALIZING');
      // (Checked before any flow runs: a bad value must not leave the update RUNNING.)
      let concurrency: number;
      let intervalMs: number;
      try {
        if (this.p.loadError) throw this.p.loadError;
        concurrency = maxConcurrentFlows(this.o, this.p);
        intervalMs = triggerIntervalMs(this.o, this.p);
        this.graph = await resolveGraph(this.floe, this.p.definitions, { baseDir: this.p.baseDir, configuration: this.p.configuration });
        this.checkSelection();
      } catch (e) {
        this.progress('FAILED', e);
        await this.log.flush();
        throw e;
      }
      for (const n of this.graph.order) {
        const f = this.graph.flows.get(n)!;
        const d = this.graph.datasets.get(f.target)!;
        this.log.emit({
          eventType: 'flow_definition',
          message: `Flow '${f.name}' is defined as ${f.def.kind === 'autoCdc' ? 'an AUTO CDC' : f.def.kind === 'snapshotCdc' ? 'an AUTO CDC FROM SNAPSHOT' : f.streaming ? 'a streaming' : 'a batch'} flow into the ${kindText(d.resolvedKind)} '${f.target}'.`,
          flow: f.name,
          dataset: f.target,
          details: {
            output_dataset: f.target,
            input_datasets: f.inputs,
            flow_type: f.def.kind === 'autoCdc' ? 'AUTO_CDC' : f.def.kind === 'snapshotCdc' ? 'AUTO_CDC_FROM_SNAPSHOT' : d.resolvedKind === 'materializedView' ? 'MATERIALIZED_VIEW' : f.def.once ? 'APPEND_ONCE' : 'APPEND',
            dataset_type: d.resolvedKind === 'materializedView' ? 'MATERIALIZED_VIEW' : 'STREAMING_TABLE',
            sources: f.sources.map((s) => ({ name: s.name, kind: s.kind, mode: s.mode })),
            // (With those of the views the flow reads: its data quality reports them too.)
            expectations: [...this.viewsOf(f).flatMap((v) => this.graph.datasets.get(v)!.expectations.map((e) => ({ ...e, dataset: v }))), ...this.expectationsFor(f)].map((e) => ({ name: e.name, action: e.action, condition: e.condition, dataset: e.dataset })),
            once: f.def.once,
            source_code: f.def.source ?? null,
          },
        });
      }
      this.progress('SETTING_UP_TABLES');
      try {
        await this.setupTables();
      } catch (e) {
        this.progress('FAILED', e);
        await this.log.flush();
        throw e;
      }
      this.progress('RUNNING');
      await this.log.flush();
      let failed = false;
      let stopped = false;
      const signal = this.o.signal;
      const continuous = this.o.continuous ?? this.p.spec?.continuous ?? false;
      // Triggered: one round over the flows. Continuous: rounds every trigger interval until the
      // signal aborts; the flow in progress finishes (its batch commits), the rest wait for the next run.
      try {
        for (let round = 0; ; round++) {
          // Independent flows run concurrently (up to `concurrency`): a flow starts once the flows it
          // reads from have finished and no other flow is writing its target.
          await schedule(this.graph, concurrency, async (n) => {
            if (signal?.aborted) {
              stopped = true;
              if (!this.results[n] || round) {
                const f = this.graph.flows.get(n)!;
                this.log.emit({ eventType: 'flow_progress', flow: n, dataset: f.target, message: `Flow '${n}' is SKIPPED: the update was stopped before it ran.`, details: { status: 'SKIPPED', reason: 'stopped before it ran' } });
              }
              this.results[n] ??= emptyResult(n, this.graph.flows.get(n)!.target, 'SKIPPED', 'stopped before it ran');
              return;
            }
            const r = await this.runFlow(this.graph.flows.get(n)!);
            this.results[n] = round && this.results[n] ? addUp(this.results[n]!, r) : r;
            if (r.status === 'FAILED') failed = true;
            await this.log.flush();
          });
          if (failed || !continuous || signal?.aborted) {
            stopped ||= !!signal?.aborted && continuous;
            break;
          }
          await sleep(intervalMs, signal);
          if (signal?.aborted) {
            stopped = true;
            break;
          }
        }
      } catch (e) {
        // (A flow's own errors are its FAILED result; this is anything else: the update ends FAILED.)
        this.progress('FAILED', e);
        await this.log.flush();
        throw e;
      }
      const firstError = Object.values(this.results).find((r) => r.error)?.error;
      const state = failed ? 'FAILED' : stopped ? 'CANCELED' : 'COMPLETED';
      if (state === 'CANCELED') this.progress('STOPPING');
      this.progress(state, failed ? firstError : undefined);
      await this.log.flush();
      return { pipeline: this.p.name, updateId: this.updateId, state, flows: this.results, eventLog: path.join(this.p.storage, 'event_log'), warehouse: this.p.warehouse };
    } finally {
      // Notifications are delivered (with retries) and recorded before the update lets go; never fatal.
      if (this.notifier) await this.notifier.finish((e) => this.log.emit(e)).then(() => this.log.flush()).catch(() => undefined);
      await release();
    }
  }

  private progress(state: string, error?: unknown): void {
    this.log.emit({
      eventType: 'update_progress',
      message: `Update ${this.updateId.slice(0, 8)} is ${state}.${error ? ` ${(error as Error).message}` : ''}`,
      level: state === 'FAILED' ? 'ERROR' : 'INFO',
      details: { state },
      error,
    });
  }

  private selected(dataset: string): boolean {
    const fr = this.o.fullRefresh;
    const sel = [...(this.o.refresh ?? []), ...(Array.isArray(fr) ? fr : [])];
    if (fr === 'all' || !sel.length) return true;
    return sel.map((s) => s.toLowerCase()).includes(dataset);
  }

  private fullRefresh(dataset: string): boolean {
    const fr = this.o.fullRefresh;
    return fr === 'all' || (Array.isArray(fr) && fr.map((s) => s.toLowerCase()).includes(dataset));
  }

  private checkSelection(): void {
    const fr = this.o.fullRefresh;
    if (fr === 'all' && this.o.refresh?.length) throw new FloeError('CONFLICTING_PIPELINE_REFRESH_OPTIONS', 'A full refresh of all tables cannot be combined with a refresh selection.');
    const names = [...(this.o.refresh ?? []), ...(Array.isArray(fr) ? fr : [])];
    const both = (this.o.refresh ?? []).filter((n) => Array.isArray(fr) && fr.includes(n));
    if (both.length) throw new FloeError('CONFLICTING_PIPELINE_REFRESH_OPTIONS', `${both.join(', ')} cannot be both refreshed and fully refreshed.`);
    for (const n of names) {
      const d = this.graph.datasets.get(n.toLowerCase());
      if (!d) throw new FloeError('DATASET_NOT_FOUND', `The refresh selection names '${n}', which is not a dataset of pipeline '${this.p.name}'. Datasets: ${[...this.graph.datasets.keys()].join(', ')}.`);
      if (d.resolvedKind === 'view') throw new FloeError('INVALID_REFRESH_SELECTION', `'${n}' is a view; only tables can be refreshed.`);
    }
  }

  /** Schema, ownership, pending and requested full refreshes. */
  private async setupTables(): Promise<void> {
    await this.catalog.ensure();
    await this.catalog.createSchema(this.p.schema, { ifNotExists: true });
    for (const name of this.graph.datasetOrder) {
      const d = this.graph.datasets.get(name)!;
      if (d.resolvedKind === 'view') continue;
      const entry = await this.catalog.getTable(this.p.schema, name);
      let props: Record<string, string> = {};
      if (entry) {
        if (await this.floe.deltaLog(entry.location).exists()) props = (await this.floe.snapshot(entry.location)).metadata.configuration;
        if (props[OWNER_PROPERTY] !== this.p.name) {
          throw new FloeError('TABLE_OWNED_BY_ANOTHER_PIPELINE', `The table ${this.p.schema}.${name} already exists in ${this.p.warehouse} and is not managed by pipeline '${this.p.name}'${props[OWNER_PROPERTY] ? ` (it belongs to '${props[OWNER_PROPERTY]}')` : ''}. Rename the dataset or drop the table.`, { table: `${this.p.schema}.${name}` });
        }
      }
      const resetAllowed = (props[RESET_ALLOWED] ?? d.tableProperties[RESET_ALLOWED] ?? 'true').toLowerCase() !== 'false';
      const pending = await this.state.resetPending(name);
      if (!pending && !(this.fullRefresh(name) && this.selected(name))) continue;
      if (!resetAllowed) {
        this.log.emit({ eventType: 'planning_information', level: 'WARN', dataset: name, message: `'${name}' is not fully refreshed: its table property ${RESET_ALLOWED} is false. It is updated incrementally.`, details: { dataset: name, full_refresh: false, reason: 'RESET_NOT_ALLOWED' } });
        if (pending) await this.state.setResetPending(name, false);
        continue;
      }
      await this.state.setResetPending(name, true);
      for (const f of d.flows) await this.state.resetCheckpoint(f);
      const loc = entry?.location ?? this.location(name);
      if (await this.floe.deltaLog(loc).exists()) {
        if (d.resolvedKind === 'streamingTable') await (await DeltaTable.forPath(this.floe, loc)).truncate();
        await fs.rm(path.join(loc, STATE_DIR), { recursive: true, force: true });
        this.floe.forgetLog(path.join(loc, STATE_DIR));
      }
      await this.state.setResetPending(name, false, d.resolvedKind === 'streamingTable');
      this.log.emit({ eventType: 'planning_information', dataset: name, message: `'${name}' is fully refreshed: ${d.resolvedKind === 'streamingTable' ? 'truncated, its checkpoints cleared; its flows replay their sources from the start' : 'recomputed'}.`, details: { dataset: name, full_refresh: true } });
    }
  }

  private expectationsFor(f: ResolvedFlow): Array<Expectation & { dataset: string }> {
    const d = this.graph.datasets.get(f.target)!;
    return [...d.expectations.map((e) => ({ ...e, dataset: d.name })), ...f.def.expectations.map((e) => ({ ...e, dataset: d.name }))];
  }

  /** Runs one flow; the engine tables it creates (its batches) are dropped when it ends. */
  private runFlow(f: ResolvedFlow): Promise<FlowRunResult> {
    return this.floe.withTempScope(() => this.runFlowInner(f));
  }

  private async runFlowInner(f: ResolvedFlow): Promise<FlowRunResult> {
    const dataset = f.target;
    if (!this.selected(dataset)) {
      this.log.emit({ eventType: 'flow_progress', flow: f.name, dataset, message: `Flow '${f.name}' is EXCLUDED (not in the refresh selection).`, details: { status: 'EXCLUDED' } });
      return emptyResult(f.name, dataset, 'EXCLUDED');
    }
    const failedUp = f.dependsOn.filter((d) => this.results[d] && (this.results[d]!.status === 'FAILED' || (this.results[d]!.status === 'SKIPPED' && this.results[d]!.note?.startsWith('upstream'))));
    if (failedUp.length) {
      const note = `upstream flow ${failedUp.join(', ')} failed`;
      this.log.emit({ eventType: 'flow_progress', flow: f.name, dataset, level: 'WARN', message: `Flow '${f.name}' is SKIPPED: ${note}.`, details: { status: 'SKIPPED', reason: note } });
      return emptyResult(f.name, dataset, 'SKIPPED', note);
    }
    this.log.emit({ eventType: 'flow_progress', flow: f.name, dataset, message: `Flow '${f.name}' is RUNNING.`, details: { status: 'RUNNING' } });
    const started = Date.now();
    try {
      const r = await this.execute(f);
      this.log.emit({
        eventType: 'flow_progress',
        flow: f.name,
        dataset,
        batchId: r.batchId,
        message: `Flow '${f.name}' has COMPLETED${r.note ? ` (${r.note})` : `: ${r.numOutputRows} rows written${r.numUpsertedRows || r.numDeletedRows ? ` (${r.numUpsertedRows} upserted, ${r.numDeletedRows} deleted)` : ''}${r.droppedRecords ? `, ${r.droppedRecords} dropped by expectations` : ''}`}.`,
        details: {
          status: 'COMPLETED',
          batch_id: r.batchId,
          duration_ms: Date.now() - started,
          note: r.note ?? null,
          metrics: { num_output_rows: r.numOutputRows, num_upserted_rows: r.numUpsertedRows, num_deleted_rows: r.numDeletedRows },
          ...(r.expectations.length || r.droppedRecords ? { data_quality: { dropped_records: r.droppedRecords, expectations: r.expectations } } : {}),
        },
      });
      return r;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.log.emit({ eventType: 'flow_progress', flow: f.name, dataset, level: 'ERROR', message: `Flow '${f.name}' has FAILED: ${err.message}`, details: { status: 'FAILED', duration_ms: Date.now() - started }, error: err });
      return { ...emptyResult(f.name, dataset, 'FAILED'), error: err };
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sources

  /** The Delta location behind a source (null when a pipeline table has not been created yet). */
  private async sourceLocation(s: { kind: SourceRef['kind']; name: string }): Promise<string | null> {
    let loc: string;
    if (s.kind === 'dataset') loc = this.location(s.name);
    else if (s.kind === 'catalog') {
      const [sc, t] = s.name.split('.');
      const e = await this.catalog.getTable(sc!, t!);
      if (!e) throw new FloeError('TABLE_OR_VIEW_NOT_FOUND', `The table ${s.name} cannot be found in ${this.p.warehouse}.`);
      loc = e.location;
    } else loc = s.name;
    return (await this.floe.deltaLog(loc).exists()) ? loc : s.kind === 'dataset' ? null : this.missing(s.name);
  }

  private missing(name: string): never {
    throw new FloeError('DELTA_TABLE_NOT_FOUND', `No Delta table at ${name}.`, { path: name });
  }

  private async listFiles(dir: string, format: string): Promise<string[]> {
    return (await this.listFilesWithTimes(dir, format)).map((x) => x.path);
  }

  /** The data files under a folder with their modification times, oldest first (then by name). */
  private async listFilesWithTimes(dir: string, format: string): Promise<Array<{ path: string; mtime: number }>> {
    const ext = format === 'json' ? /\.(json|jsonl|ndjson)(\.gz)?$/i : format === 'csv' ? /\.(csv|tsv|txt)(\.gz)?$/i : /\.parquet$/i;
    const out: Array<{ path: string; mtime: number }> = [];
    const walk = async (d: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(d, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      for (const e of entries) {
        if (e.name.startsWith('.') || e.name.startsWith('_')) continue;
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && ext.test(e.name)) {
          const st = await fs.stat(p).catch(() => null);
          if (st) out.push({ path: p, mtime: Math.floor(st.mtimeMs) });
        }
      }
    };
    await walk(dir);
    return out.sort((a, b) => a.mtime - b.mtime || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The ranges of a new batch (null: nothing new in any stream source). */
  private async planBatch(f: ResolvedFlow, cp: FlowCheckpoint): Promise<Record<string, SourceRange> | null> {
    const ranges: Record<string, SourceRange> = {};
    let any = false;
    for (const s of f.sources) {
      if (s.mode === 'stream' || s.mode === 'cdf') {
        const loc = await this.sourceLocation(s);
        if (!loc) continue;
        const latest = (await this.floe.deltaLog(loc).snapshot()).version;
        const last = cp.sources[s.key]?.version;
        // (Without a starting version both start with the latest snapshot: for the change feed, as inserts.)
        const startAt = s.stream?.startingVersion;
        if (last === undefined) {
          if (startAt !== undefined && startAt > latest) continue;
          ranges[s.key] = { from: startAt === undefined ? undefined : startAt - 1, to: latest };
          any = true;
        } else if (latest > last) {
          ranges[s.key] = { from: last, to: latest };
          any = true;
        }
      } else if (s.mode === 'files') {
        const off = cp.sources[s.key];
        const done = new Set(off?.files ?? []);
        // With maxFileAge: older than that before the high-water mark counts as processed (not listed).
        const floor = off?.hwm !== undefined ? off.hwm - fileAgeMs(s.files!.maxFileAge) : -Infinity;
        const listed = await this.listFilesWithTimes(s.name, s.files!.format);
        if (!listed.length && !this.missingFolders.has(s.name) && !(await fs.stat(s.name).catch(() => null))) {
          // (Not an error: the folder may be created when the first files land. Said once per update.)
          this.missingFolders.add(s.name);
          this.log.emit({ eventType: 'planning_information', level: 'WARN', flow: f.name, dataset: f.target, message: `Flow '${f.name}': the folder ${s.name} does not exist (yet); no files to read.`, details: { missing_folder: s.name } });
        }
        let fresh = listed.filter((x) => x.mtime >= floor && !done.has(x.path));
        const max = s.files!.maxFilesPerTrigger;
        const more = max !== undefined && fresh.length > max;
        if (more) fresh = fresh.slice(0, max);
        if (fresh.length) {
          ranges[s.key] = { files: fresh.map((x) => x.path), mtimes: fresh.map((x) => x.mtime), ...(more ? { more: true } : {}) };
          any = true;
        }
      }
    }
    return any ? ranges : null;
  }

  private fileSql(files: string[], o: NonNullable<SourceRef['files']>): string {
    const list = `[${files.map(quoteString).join(', ')}]`;
    if (o.format === 'json') return `SELECT * FROM read_json_auto(${list}, union_by_name = true, format = 'auto')`;
    if (o.format === 'csv') return `SELECT * FROM read_csv(${list}, union_by_name = true, header = ${o.header ?? true}${o.delimiter ? `, delim = ${quoteString(o.delimiter)}` : ''})`;
    return `SELECT * FROM read_parquet(${list}, union_by_name = true)`;
  }

  /** SQL for each source of a batch (stream sources by range, batch sources at their latest version). */
  private async prepareSources(f: ResolvedFlow, ranges: Record<string, SourceRange>, offsets: Record<string, SourceOffset> = {}): Promise<{ sql: Map<string, string>; versions: Record<string, number>; gone: Set<string>; unmaterialized: string[] }> {
    const sql = new Map<string, string>();
    /** Datasets of the pipeline the flow reads whole but that have no table yet (no data so far). */
    const unmaterialized: string[] = [];
    /** File sources whose every file of the batch is gone. */
    const gone = new Set<string>();
    const versions: Record<string, number> = {};
    const EMPTY = 'SELECT NULL AS __floe_no_data WHERE false';
    for (const s of f.sources) {
      const r = ranges[s.key];
      if (s.mode === 'files' && r?.files?.length) {
        // A file of a planned batch removed before the batch was read (a bad file deleted to unblock
        // the flow, or archived after its batch committed) is not read; the checkpoint still counts it
        // as processed, as it would have without the interruption.
        const present = await Promise.all(r.files.map((x) => fs.stat(x).then(() => true, () => false)));
        const files = r.files.filter((_, i) => present[i]);
        if (files.length < r.files.length) {
          const missing = r.files.filter((_, i) => !present[i]);
          this.log.emit({ eventType: 'planning_information', level: 'WARN', flow: f.name, dataset: f.target, message: `Flow '${f.name}': ${missing.length} file(s) of its pending batch no longer exist and are skipped: ${missing.join(', ')}.`, details: { skipped_files: missing } });
        }
        if (!files.length) {
          gone.add(s.key);
          sql.set(s.key, EMPTY);
          continue;
        }
        // A stream of files keeps the schema its first files gave (see withStoredSchema).
        const read = await withStoredSchema(this.floe, s.name, this.fileSql(files, s.files!), offsets[s.key]?.schema);
        r.schema = read.schema;
        sql.set(s.key, read.sql);
        continue;
      }
      if (s.mode === 'files' || s.mode === 'filesBatch') {
        const files = s.mode === 'files' ? r?.files ?? [] : await this.listFiles(s.name, s.files!.format);
        sql.set(s.key, files.length ? this.fileSql(files, s.files!) : EMPTY);
        continue;
      }
      const loc = await this.sourceLocation(s);
      if (!loc) {
        if (s.mode === 'batch') unmaterialized.push(s.name);
        sql.set(s.key, EMPTY);
        continue;
      }
      if (s.mode === 'batch') {
        const df = await this.floe.read.delta(loc);
        versions[s.key] = (await this.floe.deltaLog(loc).snapshot()).version;
        sql.set(s.key, await df.toSQL());
        continue;
      }
      if (!r) {
        sql.set(s.key, EMPTY);
        continue;
      }
      let df: DataFrame | null;
      if (s.mode === 'stream') {
        if (r.from === undefined) df = await this.floe.read.delta(loc, { versionAsOf: r.to! });
        else df = (await readStreamBatch(this.floe, loc, { lastVersion: r.from, endingVersion: r.to, skipChangeCommits: s.stream?.skipChangeCommits, ignoreDeletes: s.stream?.ignoreDeletes }))?.df ?? null;
      } else {
        df = (await readChangeFeedBatch(this.floe, loc, { lastVersion: r.from, endingVersion: r.to }))?.df ?? null;
      }
      sql.set(s.key, df ? await df.toSQL() : EMPTY);
    }
    return { sql, versions, gone, unmaterialized };
  }

  /** The flow's source offsets after a batch over `ranges`. */
  private advancedSources(f: ResolvedFlow, cp: FlowCheckpoint, ranges: Record<string, SourceRange>): Record<string, SourceOffset> {
    const sources = { ...cp.sources };
    for (const [k, r] of Object.entries(ranges)) {
      if (r.files) sources[k] = advanceFiles(cp.sources[k], r, fileAgeMs(f.sources.find((s) => s.key === k)?.files?.maxFileAge));
      else sources[k] = { version: r.to! };
    }
    return sources;
  }

  /** The query context of a run: reads are served from the prepared SQL; views are expanded. */
  private runContext(f: ResolvedFlow, prepared: Map<string, string>, viewQuality: { metrics: ExpectationMetric[]; dropped: number }): { ctx: QueryContext; resolveViews: () => Promise<void> } {
    const views = new Map<string, DataFrame>();
    const ctx = makeContext(this.floe, this.p.configuration, this.p.baseDir, this.graph.datasets, (name, mode, o) => {
      if (mode === 'files' || mode === 'filesBatch') return this.floe.duckdbSql(prepared.get(`${mode}:folder:${name}`) ?? this.unplanned(f, name));
      const c = classify(name, this.graph.datasets, this.p.baseDir);
      if (c.kind === 'dataset' && this.graph.datasets.get(c.name)!.resolvedKind === 'view') {
        const v = views.get(c.name);
        if (!v) throw new FloeError('PIPELINE_VIEW_NOT_READY', `The view '${c.name}' was read before it was evaluated.`);
        return v;
      }
      void o;
      const key = `${mode}:${c.kind}:${c.name}`;
      return this.floe.duckdbSql(prepared.get(key) ?? this.unplanned(f, name));
    });
    // Views are evaluated (in dependency order) with this context before the flow's query runs.
    const resolveViews = async (): Promise<void> => {
      const needed = this.viewsOf(f);
      for (const v of needed) {
        const vf = this.graph.flows.get(v)!;
        let df = queryResult(await vf.def.query!(ctx), v);
        const exps = this.graph.datasets.get(v)!.expectations;
        if (exps.length) {
          const t = await this.materialize(df, v);
          const r = await applyExpectations(this.floe, t, exps.map((e) => ({ ...e, dataset: v })), f.name);
          viewQuality.metrics.push(...r.metrics);
          viewQuality.dropped += r.droppedRecords;
          df = this.floe.duckdbSql(r.sql);
        }
        views.set(v, df);
      }
    };
    return { ctx, resolveViews };
  }

  private unplanned(f: ResolvedFlow, name: string): never {
    throw new FloeError('PIPELINE_QUERY_NOT_DETERMINISTIC', `The query of '${f.name}' read '${name}' during the run but not during analysis; query functions must read the same datasets every time they are called.`);
  }

  /** Views a flow reads, transitively, in dependency order. */
  private viewsOf(f: ResolvedFlow): string[] {
    const out: string[] = [];
    const visit = (names: string[], stack: string[]): void => {
      for (const n of names) {
        const d = this.graph.datasets.get(n);
        if (!d || d.resolvedKind !== 'view' || out.includes(n) || stack.includes(n)) continue;
        visit(this.graph.flows.get(n)?.inputs ?? [], [...stack, n]);
        out.push(n);
      }
    };
    visit(f.inputs, []);
    return out;
  }

  /**
   * The batch of a flow's (or view's) query as an engine table. A query DuckDB cannot run (an unknown
   * column, a syntax error) fails with PIPELINE_QUERY_ERROR naming the dataset and its library file,
   * DuckDB's message without floe's generated SQL (kept in the details).
   */
  private async materialize(df: DataFrame, dataset?: string): Promise<string> {
    const t = this.floe.engine.uniqueName('pipeline_batch');
    const sql = await df.toSQL();
    try {
      await this.floe.engine.run(`CREATE TABLE ${t} AS ${sql}`);
    } catch (e) {
      if (!dataset || !(e instanceof FloeError) || (e.code !== 'FLOE_SQL_ERROR' && e.code !== 'FLOE_ENGINE_ERROR')) throw e;
      const d = this.graph.datasets.get(dataset.toLowerCase());
      throw new FloeError('PIPELINE_QUERY_ERROR', `The query of '${dataset}'${d?.source ? ` (${d.source})` : ''} failed: ${engineMessage(e)}`, { ...e.details, dataset }, { cause: e });
    }
    this.floe.track([t]); // dropped with the flow's temp scope
    return t;
  }

  // ---------------------------------------------------------------------------------------------
  // Flows

  private txnAppId(f: ResolvedFlow): string {
    return `${this.p.name}.${f.name}`;
  }

  private tableProps(dataset: string, extra: Record<string, string> = {}): Record<string, string> {
    const d = this.graph.datasets.get(dataset)!;
    return { ...extra, ...d.tableProperties, [OWNER_PROPERTY]: this.p.name };
  }

  /** Runs `write(location)` registering the table in the catalog when this creates it. */
  private async withTable<T>(dataset: string, write: (loc: string) => Promise<T>): Promise<T> {
    const entry = await this.catalog.getTable(this.p.schema, dataset);
    if (entry) return write(entry.location);
    let out: T | undefined;
    await this.catalog.createTable(this.p.schema, dataset, {}, async (loc) => {
      out = await write(loc);
      if (!(await this.floe.deltaLog(loc).exists())) throw new FloeError('PIPELINE_NO_OUTPUT', `The first batch of '${dataset}' created no table.`);
    });
    return out as T;
  }

  private async execute(f: ResolvedFlow): Promise<FlowRunResult> {
    const d = this.graph.datasets.get(f.target)!;
    if (f.def.kind === 'snapshotCdc') return this.executeSnapshot(f);
    const cp = await this.state.checkpoint(f.name);
    const isMv = d.resolvedKind === 'materializedView';
    const result = emptyResult(f.name, f.target, 'COMPLETED');

    let ranges: Record<string, SourceRange> = {};
    let batchId: number;
    let replayed = false;
    if (isMv || (f.def.once && !f.streaming)) {
      if (f.def.once && cp.onceDone) return { ...result, note: 'once flow already ran' };
      batchId = cp.batchId + 1;
    } else if (cp.pending) {
      ranges = cp.pending.sources;
      batchId = cp.pending.batchId;
      replayed = true;
    } else {
      const planned = await this.planBatch(f, cp);
      if (!planned) return { ...result, note: 'no new data' };
      ranges = planned;
      batchId = cp.batchId + 1;
      await this.state.saveCheckpoint({ ...cp, pending: { batchId, sources: ranges } });
    }

    const { sql, versions, gone, unmaterialized } = await this.prepareSources(f, ranges, cp.sources);
    // A dataset read whole that has no table yet (its flows have seen no data: an empty landing
    // folder on a first run) leaves nothing to compute from: the flow waits for it, without failing
    // the update (a continuous pipeline started before its first files keeps polling).
    // (A streaming flow's batch is already planned: it fails, and is replayed once the table exists.)
    if (unmaterialized.length) {
      const which = `${unmaterialized.map((n) => `'${n}'`).join(', ')} ${unmaterialized.length > 1 ? 'have' : 'has'} no table yet`;
      if (isMv || (f.def.once && !f.streaming)) return { ...result, note: `no data yet: ${which}` };
      throw new FloeError('DATASET_NOT_MATERIALIZED', `'${f.name}' reads ${which} (its flows produced no data so far).`, { datasets: unmaterialized });
    }
    if (Object.keys(ranges).length && Object.keys(ranges).every((k) => gone.has(k))) {
      // Every file of the pending batch is gone (see prepareSources): the batch completes without rows,
      // its batch id used (it may have been committed before the interruption: the next batch must
      // not reuse the id, whose txn the output would take as already written).
      await this.state.saveCheckpoint({ flow: f.name, batchId, sources: this.advancedSources(f, cp, ranges), onceDone: cp.onceDone, snapshotVersion: cp.snapshotVersion });
      return { ...result, batchId, note: 'no new data' };
    }
    // (The expectations of the views this batch reads: this batch's own, flows run concurrently.)
    const viewQuality = { metrics: [] as ExpectationMetric[], dropped: 0 };
    const { ctx, resolveViews } = this.runContext(f, sql, viewQuality);
    await resolveViews();
    const df = f.def.kind === 'autoCdc' ? ctx.readStream(f.def.cdc!.source, f.def.cdc!.sourceOptions) : queryResult(await f.def.query!(ctx), f.name);
    // A materialized view is up to date when neither its inputs' versions nor its query (its SQL over
    // them, session table names aside) changed since its last refresh.
    const definition = isMv ? createHash('sha256').update((await df.toSQL()).replace(/__floe_[a-z_]+?_\d+/g, '__floe_t')).digest('hex') : undefined;
    if (isMv && cp.inputVersions && cp.definition === definition && Object.keys(versions).length === f.sources.length && f.sources.every((s) => s.mode === 'batch') && JSON.stringify(versions) === JSON.stringify(cp.inputVersions) && (await this.catalog.getTable(this.p.schema, f.target))) {
      return { ...result, note: 'inputs unchanged; up to date' };
    }
    const batchTable = await this.materialize(df, f.def.kind === 'autoCdc' ? undefined : f.target);
    const exps = this.expectationsFor(f);
    const ex = exps.length ? await applyExpectations(this.floe, batchTable, exps, f.name) : { sql: `SELECT * FROM ${batchTable}`, droppedRecords: 0, metrics: [] as ExpectationMetric[], numInputRows: -1 };
    result.expectations = [...viewQuality.metrics, ...ex.metrics];
    result.droppedRecords = viewQuality.dropped + ex.droppedRecords;
    result.batchId = batchId;
    const out = this.floe.duckdbSql(d.schema ? await this.fitSchema(f, d.name, d.schema, ex.sql) : ex.sql);
    const appId = this.txnAppId(f);

    // After a full refresh, the first rows written replace the table's schema (see PipelineState.schemaReset).
    const replaceSchema = !isMv && (await this.state.schemaReset(f.target));
    if (f.def.kind === 'autoCdc') {
      const c = f.def.cdc!;
      const r = await this.withTable(f.target, (loc) =>
        applyChanges(this.floe, {
          target: loc,
          source: out,
          keys: c.keys,
          sequenceBy: c.sequenceBy,
          storedAsScdType: c.storedAsScdType,
          applyAsDeletes: c.applyAsDeletes,
          applyAsTruncates: c.applyAsTruncates,
          columnList: c.columnList,
          exceptColumnList: c.exceptColumnList,
          ignoreNullUpdates: c.ignoreNullUpdates,
          trackHistoryColumnList: c.trackHistoryColumnList,
          trackHistoryExceptColumnList: c.trackHistoryExceptColumnList,
          flowName: appId,
          batchId,
          tableProperties: this.tableProps(f.target),
          partitionBy: d.partitionBy,
          comment: d.comment,
          ...(replaceSchema ? { replaceEmptyTarget: true } : {}),
        }),
      );
      result.numUpsertedRows = r.numUpsertedRows;
      result.numDeletedRows = r.numDeletedRows;
      result.numOutputRows = r.numUpsertedRows + r.numDeletedRows;
      if (r.skipped) result.note = 'batch already applied (replayed after an interruption)';
    } else {
      // Streaming tables get the change feed on (downstream flows may read it), unless their rows have
      // columns named like the feed's own (a mirror of another table's change feed): the feed cannot
      // be on then (DELTA_TABLE_ALREADY_CONTAINS_CDC_COLUMNS).
      const cdf = !isMv && !(await out.columns()).some((c) => isCdfColumn(c.name));
      const w = await this.withTable(f.target, async (loc) => {
        const replace = replaceSchema && (await this.floe.deltaLog(loc).exists()) && !(await this.floe.snapshot(loc)).files.length;
        return out.write.delta(loc, {
          mode: isMv || replace ? 'overwrite' : 'append',
          overwriteSchema: isMv || replace ? true : undefined,
          mergeSchema: isMv || replace ? undefined : true,
          partitionBy: d.partitionBy,
          properties: this.tableProps(f.target, cdf ? { 'delta.enableChangeDataFeed': 'true' } : {}),
          description: d.comment,
          // A materialized view is recomputed from its inputs' current state, so rewriting it after an
          // interruption is always right: no txn (which would skip the rewrite when inputs changed).
          ...(isMv ? {} : { txnAppId: appId, txnVersion: batchId }),
        }).catch((e: unknown) => {
          // (The write's advice names API options; in a pipeline the way out is a full refresh.)
          if (!(e instanceof FloeError) || e.code !== 'DELTA_SCHEMA_MISMATCH') throw e;
          const reason = String((e.details as { reason?: unknown }).reason ?? e.message);
          throw new FloeError('DELTA_SCHEMA_MISMATCH', `The flow '${f.name}' cannot append to the streaming table '${f.target}': ${reason}. New columns are added by themselves; a changed type is not. Cast the column in the flow's query to the table's type, or fully refresh '${f.target}' (floe pipelines run --full-refresh ${f.target}) to rebuild it with the new schema.`, { ...e.details, flow: f.name, dataset: f.target }, { cause: e });
        });
      });
      result.numOutputRows = w.skipped ? 0 : w.numOutputRows;
      if (w.skipped) result.note = 'batch already written (replayed after an interruption)';
    }

    if (replaceSchema) {
      const loc = (await this.catalog.getTable(this.p.schema, f.target))?.location;
      if (loc && (await this.floe.deltaLog(loc).exists()) && (await this.floe.snapshot(loc)).files.length) await this.state.clearSchemaReset(f.target);
    }
    // Advance the checkpoint (the output commit carries the same batch id).
    const sources = this.advancedSources(f, cp, ranges);
    await this.state.saveCheckpoint({ flow: f.name, batchId, sources, onceDone: f.def.once ? true : cp.onceDone, inputVersions: isMv ? versions : undefined, definition, snapshotVersion: cp.snapshotVersion });
    // A replayed (interrupted) batch covers only what was planned then, and a batch capped by
    // maxFilesPerTrigger leaves files: process the rest too, in further batches.
    if (replayed || Object.values(ranges).some((r) => r.more)) {
      const more = await this.execute(f);
      if (more.note !== 'no new data') return { ...addUp(result, more), note: result.note };
    }
    return result;
  }

  /**
   * Checks a batch against the target's declared schema and casts it to the declared types: a column
   * the schema lacks, a value that does not convert, or a NULL in a NOT NULL column fails the flow
   * with an error naming the column. Declared columns the batch lacks are NULL.
   */
  private async fitSchema(f: ResolvedFlow, dataset: string, schema: DeclaredColumn[], sql: string): Promise<string> {
    const cols = (await this.floe.engine.describe(sql)).map((c) => c.name);
    const lower = (x: string): string => x.toLowerCase();
    const declared = new Map(schema.map((c) => [lower(c.name), c]));
    const cdc = f.def.kind === 'autoCdc' ? f.def.cdc! : null;
    // The columns that reach the table (AUTO CDC: the keys and the selected columns).
    let written = cols;
    if (cdc?.columnList) written = cols.filter((x) => [...cdc.keys, ...cdc.columnList!].some((k) => lower(k) === lower(x)));
    else if (cdc?.exceptColumnList) written = cols.filter((x) => !cdc.exceptColumnList!.some((k) => lower(k) === lower(x)));
    const list = schema.map((c) => `${c.name} ${c.duckType}${c.nullable ? '' : ' NOT NULL'}`).join(', ');
    const fail = (column: string, why: string): never => {
      throw new FloeError('PIPELINE_SCHEMA_MISMATCH', `Flow '${f.name}' cannot write to '${dataset}': ${why} (declared schema: ${list}).`, { dataset, flow: f.name, column });
    };
    const extra = written.find((x) => !declared.has(lower(x)));
    if (extra) fail(extra, `it produces the column '${extra}', which the declared schema does not have; declare it or leave it out of the query${cdc ? ' (or of the target with exceptColumnList / columnList)' : ''}`);
    const system = new Set(['__start_at', '__end_at']);
    const present = schema.filter((c) => cols.some((x) => lower(x) === lower(c.name)));
    const missing = schema.filter((c) => !present.includes(c) && !(cdc && system.has(lower(c.name))));
    const notNullMissing = missing.find((c) => !c.nullable);
    if (notNullMissing) fail(notNullMissing.name, `the NOT NULL column '${notNullMissing.name}' is not produced by the flow`);
    const actual = (c: DeclaredColumn): string => cols.find((x) => lower(x) === lower(c.name))!;
    if (present.length) {
      const checks = present.map((c, i) => {
        const col = quoteIdent(actual(c));
        const bad = `${col} IS NOT NULL AND TRY_CAST(${col} AS ${c.duckType}) IS NULL`;
        return `count(*) FILTER (WHERE ${bad}) AS b${i}, any_value(${col}::VARCHAR) FILTER (WHERE ${bad}) AS e${i}, ${c.nullable ? '0' : `count(*) FILTER (WHERE ${col} IS NULL)`} AS n${i}`;
      });
      const [r] = await this.floe.engine.allJson(`SELECT ${checks.join(', ')} FROM (${sql})`);
      present.forEach((c, i) => {
        if (Number(r![`b${i}`]) > 0) fail(c.name, `${String(r![`b${i}`])} value(s) of the column '${c.name}' do not convert to its declared type ${c.duckType} (e.g. '${String(r![`e${i}`])}')`);
        if (Number(r![`n${i}`]) > 0) fail(c.name, `${String(r![`n${i}`])} row(s) have NULL in the NOT NULL column '${c.name}'`);
      });
    }
    const replace = present.map((c) => `CAST(${quoteIdent(actual(c))} AS ${c.duckType}) AS ${quoteIdent(actual(c))}`);
    return `SELECT *${replace.length ? ` REPLACE (${replace.join(', ')})` : ''}${missing.map((c) => `, NULL::${c.duckType} AS ${quoteIdent(c.name)}`).join('')} FROM (${sql})`;
  }

  private async executeSnapshot(f: ResolvedFlow): Promise<FlowRunResult> {
    const s = f.def.snapshot!;
    const d = this.graph.datasets.get(f.target)!;
    const result = emptyResult(f.name, f.target, 'COMPLETED');
    let cp = await this.state.checkpoint(f.name);
    const apply = async (df: DataFrame, version: number, batchId: number): Promise<void> => {
      const r = await this.withTable(f.target, (loc) =>
        applyChangesFromSnapshot(this.floe, {
          target: loc,
          snapshot: df,
          snapshotVersion: version,
          keys: s.keys,
          storedAsScdType: s.storedAsScdType,
          columnList: s.columnList,
          exceptColumnList: s.exceptColumnList,
          trackHistoryColumnList: s.trackHistoryColumnList,
          trackHistoryExceptColumnList: s.trackHistoryExceptColumnList,
          flowName: this.txnAppId(f),
          batchId,
          tableProperties: this.tableProps(f.target),
          partitionBy: d.partitionBy,
          comment: d.comment,
        }),
      );
      result.numUpsertedRows += r.numUpsertedRows;
      result.numDeletedRows += r.numDeletedRows;
      result.numOutputRows += r.numUpsertedRows + r.numDeletedRows;
      result.batchId = batchId;
      cp = { flow: f.name, batchId, sources: {}, snapshotVersion: version };
      await this.state.saveCheckpoint(cp);
    };
    if (typeof s.source === 'string') {
      const src = f.sources[0]!;
      const loc = await this.sourceLocation(src);
      if (!loc) return { ...result, note: `'${src.name}' has no table yet` };
      const latest = (await this.floe.deltaLog(loc).snapshot()).version;
      const version = cp.pending?.snapshotVersion ?? latest;
      if (!cp.pending && cp.snapshotVersion !== undefined && cp.snapshotVersion !== null && version <= cp.snapshotVersion) return { ...result, note: 'snapshot unchanged' };
      const batchId = cp.pending?.batchId ?? cp.batchId + 1;
      if (!cp.pending) await this.state.saveCheckpoint({ ...cp, pending: { batchId, sources: {}, snapshotVersion: version } });
      await apply(await this.floe.read.delta(loc, { versionAsOf: version }), version, batchId);
      return result;
    }
    const fn = s.source;
    const ctx = makeContext(this.floe, this.p.configuration, this.p.baseDir, this.graph.datasets, (name) => {
      throw new FloeError('PIPELINE_UNSUPPORTED_READ', `A snapshot function cannot read '${name}' through ctx; use ctx.floe.read.delta(path).`);
    });
    for (let i = 0; i < 10_000; i++) {
      const next = await fn(cp.snapshotVersion ?? null, ctx);
      if (!next) break;
      if (cp.snapshotVersion !== undefined && cp.snapshotVersion !== null && next.version <= cp.snapshotVersion) {
        throw new FloeError('INVALID_SNAPSHOT_VERSION', `The snapshot function of '${f.name}' returned version ${next.version}, not greater than the last applied version ${cp.snapshotVersion}.`);
      }
      await apply(next.df, next.version, cp.batchId + 1);
    }
    if (result.batchId === null) result.note = 'no new snapshot';
    return result;
  }
}

export { planSql };
