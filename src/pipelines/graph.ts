/**
 * Graph resolution and validation, before anything runs. Each query function is called once with a
 * recording context that returns empty placeholder DataFrames and notes what the query reads (views
 * are expanded: a flow's effective sources are the tables, paths and folders behind the views it
 * reads). Then the graph is checked; every problem found is reported at once, in a FloeError whose
 * code is the first problem's:
 *
 * - DUPLICATE_DATASET / DUPLICATE_FLOW: two definitions of one name (naming both library files);
 * - DATASET_NOT_FOUND: a flow writes to or reads a dataset that is not defined;
 * - CIRCULAR_DEPENDENCY: datasets that read each other (the cycle is printed `a -> b -> a`);
 * - MATERIALIZED_VIEW_WITH_MULTIPLE_QUERIES: a materialized view with several flows;
 * - INVALID_FLOW_TARGET: an append / AUTO CDC flow into a materialized view or a view;
 * - INVALID_STREAMING_READ: `readStream` of a materialized view or of a view that reads no stream,
 *   or a materialized view whose query reads a stream;
 * - APPEND_FLOW_NOT_STREAMING: an append flow that reads no stream and is not `once`;
 * - STREAMING_TABLE_WITHOUT_FLOWS, DUPLICATE_EXPECTATION, INVALID_IDENTIFIER, QUERY_FUNCTION_FAILED.
 */
import * as path from 'node:path';
import { normalizeName } from '../catalog/catalog.js';
import type { DataFrame, Plan } from '../dataframe.js';
import { quoteIdent } from '../core/schema.js';
import { FloeError } from '../errors.js';
import type { Floe } from '../floe.js';
import type { DatasetDef, FileReadOptions, FlowDef, PipelineDefinitions, QueryContext, QueryFunction, StreamReadOptions } from './definition.js';

export type ReadMode = 'batch' | 'stream' | 'cdf' | 'files' | 'filesBatch';

/** One source a flow reads (after view expansion). */
export interface SourceRef {
  /** Stable key: the checkpoint entry of a stream source. */
  key: string;
  mode: ReadMode;
  /** 'dataset': a table of this pipeline; 'path': a Delta path; 'catalog': schema.table; 'folder': files. */
  kind: 'dataset' | 'path' | 'catalog' | 'folder';
  /** Dataset name, `schema.table`, or absolute path. */
  name: string;
  stream?: StreamReadOptions;
  files?: FileReadOptions;
}

export interface ResolvedDataset extends DatasetDef {
  /** 'table' resolved: a streaming table or a materialized view. */
  resolvedKind: 'streamingTable' | 'materializedView' | 'view';
  flows: string[];
}

export interface ResolvedFlow {
  def: FlowDef;
  name: string;
  target: string;
  /** Reads a stream (processes only new data). */
  streaming: boolean;
  /** Datasets / paths as the query names them (lineage; views included). */
  inputs: string[];
  /** The sources behind those inputs, views expanded. */
  sources: SourceRef[];
  /** Pipeline tables (not views) this flow reads, views expanded: its upstream. */
  upstream: string[];
  /** Flows that must finish first. */
  dependsOn: string[];
  /** Its query function threw during analysis (an issue already; its kind is a guess). */
  analysisFailed?: boolean;
}

export interface PipelineGraph {
  datasets: Map<string, ResolvedDataset>;
  flows: Map<string, ResolvedFlow>;
  /** Flows in execution order. */
  order: string[];
  /** Datasets in dependency order. */
  datasetOrder: string[];
}

export interface GraphIssue {
  code: string;
  message: string;
}

export interface ResolveOptions {
  /** Folder that relative paths in definitions resolve against. */
  baseDir?: string;
  configuration?: Record<string, string>;
}

/** Is this read target a path (rather than a dataset name)? */
export function isPathLike(name: string): boolean {
  return name.includes('/') || name.includes('\\') || name.startsWith('.') || /^[a-zA-Z]:/.test(name) || name.startsWith('file://');
}

/** Classifies a read target: a dataset of the pipeline, a Delta path, or a `schema.table` of the catalog. */
export function classify(name: string, datasets: Map<string, unknown>, baseDir: string): { kind: 'dataset' | 'path' | 'catalog' | 'unknown'; name: string } {
  if (datasets.has(name)) return { kind: 'dataset', name };
  if (datasets.has(name.toLowerCase())) return { kind: 'dataset', name: name.toLowerCase() };
  if (isPathLike(name)) return { kind: 'path', name: path.resolve(baseDir, name) };
  if (/^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$/.test(name)) return { kind: 'catalog', name: name.toLowerCase() };
  return { kind: 'unknown', name };
}

export function sourceKey(mode: ReadMode, kind: string, name: string): string {
  return `${mode}:${kind}:${name}`;
}

/** A context whose reads are served by `serve` (analysis: placeholders; run: real batches). */
export function makeContext(
  floe: Floe,
  configuration: Record<string, string>,
  baseDir: string,
  datasets: Map<string, DatasetDef>,
  serve: (name: string, mode: ReadMode, opts: { stream?: StreamReadOptions; files?: FileReadOptions }, ctx: QueryContext) => DataFrame,
): QueryContext {
  const ctx: QueryContext = {
    floe,
    read: (name) => serve(name, 'batch', {}, ctx),
    readStream: (name, options = {}) => serve(name, options.readChangeFeed ? 'cdf' : 'stream', { stream: options }, ctx),
    readStreamFiles: (dir, options) => serve(path.resolve(baseDir, dir), 'files', { files: options }, ctx),
    readFiles: (dir, options) => serve(path.resolve(baseDir, dir), 'filesBatch', { files: options }, ctx),
    sql: (query, frames = {}) => sqlWithFrames(floe, query, frames),
    conf: ((key: string, fallback?: string) => {
      const v = configuration[key] ?? fallback;
      if (v === undefined) {
        const keys = Object.keys(configuration).filter((k) => !k.startsWith('pipelines.'));
        throw new FloeError('PIPELINE_CONFIGURATION_MISSING', `The pipeline's configuration has no key '${key}'${keys.length ? ` (its keys: ${keys.join(', ')})` : ''}. Add it under configuration: in the pipeline spec, or give ctx.conf a fallback value.`, { key });
      }
      return v;
    }) as QueryContext['conf'],
  };
  void datasets;
  return ctx;
}

/** The SQL of a DataFrame built from SQL (not a Delta scan), synchronously. */
export function planSql(p: Plan): string {
  switch (p.kind) {
    case 'sql':
      return p.sql;
    case 'filter':
      return `SELECT * FROM (${planSql(p.child)}) WHERE ${p.condition}`;
    case 'select':
      return `SELECT ${p.columns.join(', ')} FROM (${planSql(p.child)})`;
    case 'limit':
      return `SELECT * FROM (${planSql(p.child)}) LIMIT ${p.n}`;
    case 'orderBy':
      return `SELECT * FROM (${planSql(p.child)}) ORDER BY ${p.keys.join(', ')}`;
    case 'delta':
      throw new FloeError('PIPELINE_UNSUPPORTED_FRAME', 'ctx.sql() takes DataFrames from ctx.read / ctx.readStream / ctx.sql / floe.sql; a floe.read.delta() frame cannot be inlined: use ctx.read(path) instead.');
  }
}

/** `ctx.sql(query, { name: df })`: the frames become CTEs of the query. */
function sqlWithFrames(floe: Floe, query: string, frames: Record<string, DataFrame>): DataFrame {
  const ctes = Object.entries(frames).map(([n, df]) => `${quoteIdent(n)} AS (${planSql(df.plan)})`);
  return floe.duckdbSql(ctes.length ? `WITH ${ctes.join(', ')} ${query}` : query);
}

const PLACEHOLDER = 'SELECT NULL AS __floe_analysis_placeholder WHERE false';

interface Recorded {
  direct: Array<{ name: string; mode: ReadMode }>;
  sources: SourceRef[];
  viewsRead: string[];
  unknown: string[];
  invalidStream: string[];
  streaming: boolean;
  /** The query function threw during analysis (its kind and inputs are not known). */
  failed?: boolean;
}

/** Resolves and validates the graph; throws a FloeError listing every problem. */
export async function resolveGraph(floe: Floe, defs: PipelineDefinitions, options: ResolveOptions = {}): Promise<PipelineGraph> {
  const { graph, issues } = await analyzeGraph(floe, defs, options);
  if (issues.length) {
    const first = issues[0]!;
    const msg = issues.length === 1 ? first.message : `${issues.length} problems in the pipeline definition:\n${issues.map((i) => `  - [${i.code}] ${i.message}`).join('\n')}`;
    throw new FloeError(first.code, msg, { issues });
  }
  return graph;
}

const where = (d: { source?: string }): string => (d.source ? ` (${d.source})` : '');

/** Resolution without throwing: the graph (possibly partial) and the problems found. */
export async function analyzeGraph(floe: Floe, defs: PipelineDefinitions, options: ResolveOptions = {}): Promise<{ graph: PipelineGraph; issues: GraphIssue[] }> {
  const baseDir = options.baseDir ?? process.cwd();
  const conf = options.configuration ?? {};
  const issues: GraphIssue[] = [];
  const issue = (code: string, message: string): void => void issues.push({ code, message });

  // Datasets and flows by name, duplicates reported.
  const datasets = new Map<string, ResolvedDataset>();
  for (const d of defs.datasets) {
    let name = d.name;
    try {
      name = normalizeName(d.name, 'table');
    } catch {
      issue('INVALID_IDENTIFIER', `Invalid dataset name '${d.name}'${where(d)}: use letters, digits and underscores.`);
      continue;
    }
    const prev = datasets.get(name);
    if (prev) {
      issue('DUPLICATE_DATASET', `The dataset '${name}' is defined twice: as a ${kindText(prev.kind)}${where(prev)} and as a ${kindText(d.kind)}${where(d)}.`);
      continue;
    }
    datasets.set(name, { ...d, name, resolvedKind: d.kind === 'view' ? 'view' : d.kind === 'table' ? 'streamingTable' : d.kind, flows: [] });
  }
  const flowDefs = new Map<string, FlowDef>();
  for (const f of defs.flows) {
    const target = datasets.has(f.target.toLowerCase()) ? f.target.toLowerCase() : f.target;
    const fd = { ...f, target };
    const prev = flowDefs.get(f.name);
    if (prev) {
      // The default flow of a duplicated dataset is already reported.
      if (!(f.kind === 'query' && prev.kind === 'query' && f.name === f.target)) issue('DUPLICATE_FLOW', `The flow '${f.name}' is defined twice${where(prev)}${f.source && f.source !== prev.source ? ` and${where(f)}` : ''}; give flows distinct names.`);
      continue;
    }
    flowDefs.set(f.name, fd);
  }

  // Record what each flow (and view) reads; views are expanded into their sources.
  const viewDefs = new Map<string, FlowDef>();
  for (const f of flowDefs.values()) if (datasets.get(f.target)?.kind === 'view' && f.kind === 'query') viewDefs.set(f.target, f);
  const viewStreaming = new Map<string, boolean>();

  const record = async (flowName: string, q: QueryFunction, stack: string[]): Promise<Recorded> => {
    const rec: Recorded = { direct: [], sources: [], viewsRead: [], unknown: [], invalidStream: [], streaming: false };
    const pending: Promise<void>[] = [];
    const depth = { v: 0 };
    const ctx = makeContext(floe, conf, baseDir, datasets, (name, mode, o, c) => {
      if (depth.v === 0) rec.direct.push({ name: mode === 'files' || mode === 'filesBatch' ? name : classify(name, datasets, baseDir).name, mode });
      if (mode === 'files' || mode === 'filesBatch') {
        rec.sources.push({ key: sourceKey(mode, 'folder', name), mode, kind: 'folder', name, files: o.files });
        if (mode === 'files') rec.streaming = true;
        return floe.duckdbSql(PLACEHOLDER);
      }
      const c1 = classify(name, datasets, baseDir);
      if (c1.kind === 'unknown') {
        rec.unknown.push(name);
        return floe.duckdbSql(PLACEHOLDER);
      }
      if (c1.kind === 'dataset' && datasets.get(c1.name)!.kind === 'view') {
        const vn = c1.name;
        rec.viewsRead.push(vn);
        if (stack.includes(vn)) return floe.duckdbSql(PLACEHOLDER); // cycle: reported by the cycle check
        const vf = viewDefs.get(vn);
        if (!vf?.query) return floe.duckdbSql(PLACEHOLDER);
        // Expand the view with this context (nested reads are not direct inputs of the flow).
        depth.v++;
        try {
          const r = vf.query(c);
          if (r && typeof (r as Promise<DataFrame>).then === 'function') pending.push((r as Promise<DataFrame>).then(() => undefined, () => undefined));
        } catch {
          // The view's own analysis reports its failure.
        } finally {
          depth.v--;
        }
        if (mode !== 'batch' && viewStreaming.get(vn) === false) rec.invalidStream.push(`${vn} (a view that reads no stream)`);
        if (mode !== 'batch') rec.streaming = true;
        return floe.duckdbSql(PLACEHOLDER);
      }
      if (mode !== 'batch') rec.streaming = true;
      rec.sources.push({ key: sourceKey(mode, c1.kind, c1.name), mode, kind: c1.kind as SourceRef['kind'], name: c1.name, stream: o.stream });
      return floe.duckdbSql(PLACEHOLDER);
    });
    try {
      await q(ctx);
      await Promise.all(pending);
    } catch (e) {
      rec.failed = true;
      if (e instanceof FloeError && e.code === 'PIPELINE_CONFIGURATION_MISSING') issue(e.code, `The query of '${flowName}': ${e.message.replace(/^\[[A-Z_]+\]\s*/, '')}`);
      else issue('QUERY_FUNCTION_FAILED', `The query of '${flowName}' failed during analysis: ${(e as Error)?.message ?? String(e)}. Query functions run at planning time with empty inputs: they must only build DataFrames (no collect/count/write).`);
    }
    return rec;
  };

  // Views first (their streaming-ness decides whether a stream read of them is valid); views reading
  // views are resolved in a few passes.
  const viewRecs = new Map<string, Recorded>();
  for (let pass = 0; pass < 3; pass++) {
    for (const [vn, vf] of viewDefs) {
      const rec = await record(vn, vf.query!, [vn]);
      viewRecs.set(vn, rec);
      viewStreaming.set(vn, rec.streaming);
    }
    if (viewDefs.size < 2) break;
  }

  const flows = new Map<string, ResolvedFlow>();
  for (const f of flowDefs.values()) {
    const target = datasets.get(f.target);
    if (!target) {
      issue('DATASET_NOT_FOUND', `The flow '${f.name}'${where(f)} writes to '${f.target}', which is not defined in this pipeline. Defined datasets: ${[...datasets.keys()].join(', ') || '(none)'}.`);
      continue;
    }
    target.flows.push(f.name);
    let rec: Recorded;
    if (target.kind === 'view') rec = viewRecs.get(f.target) ?? (await record(f.name, f.query!, [f.target]));
    else if (f.kind === 'autoCdc') rec = await record(f.name, (ctx) => ctx.readStream(f.cdc!.source, f.cdc!.sourceOptions), [f.target]);
    else if (f.kind === 'snapshotCdc') rec = typeof f.snapshot!.source === 'string' ? await record(f.name, (ctx) => ctx.read(f.snapshot!.source as string), [f.target]) : { direct: [], sources: [], viewsRead: [], unknown: [], invalidStream: [], streaming: false };
    else rec = await record(f.name, f.query!, [f.target]);
    for (const u of new Set(rec.unknown)) {
      issue('DATASET_NOT_FOUND', `The ${f.target === f.name ? kindText(target.kind) : 'flow'} '${f.name}'${where(f)} reads '${u}', which is not a dataset of this pipeline (nor a path or schema.table). Defined datasets: ${[...datasets.keys()].join(', ') || '(none)'}.`);
    }
    for (const v of new Set(rec.invalidStream)) issue('INVALID_STREAMING_READ', `'${f.name}' reads ${v} as a stream; read it with ctx.read() or make the view read a stream.`);
    const upstream = [...new Set(rec.sources.filter((s) => s.kind === 'dataset').map((s) => s.name))];
    flows.set(f.name, {
      def: f,
      name: f.name,
      target: f.target,
      streaming: rec.streaming || f.kind === 'autoCdc',
      ...(rec.failed ? { analysisFailed: true } : {}),
      inputs: [...new Set(rec.direct.map((d) => d.name))],
      sources: dedupeSources(rec.sources),
      upstream,
      dependsOn: [],
    });
  }

  // Dataset kinds: p.table is a streaming table when its query streams, else a materialized view.
  for (const d of datasets.values()) {
    if (d.kind === 'table') {
      const f = flows.get(d.name);
      d.resolvedKind = f && f.def.kind === 'query' && !f.streaming ? 'materializedView' : 'streamingTable';
    }
  }

  for (const d of datasets.values()) {
    const fl = d.flows.map((n) => flows.get(n)!).filter(Boolean);
    if (d.resolvedKind === 'materializedView') {
      if (fl.length > 1) issue('MATERIALIZED_VIEW_WITH_MULTIPLE_QUERIES', `The materialized view '${d.name}'${where(d)} has ${fl.length} flows (${fl.map((f) => f.name).join(', ')}); a materialized view has exactly one query. Make it a streaming table (createStreamingTable + appendFlow) to combine several flows.`);
      for (const f of fl) if (f.def.kind !== 'query') issue('INVALID_FLOW_TARGET', `The flow '${f.name}' writes to the materialized view '${d.name}'; append and AUTO CDC flows need a streaming table target (createStreamingTable('${d.name}')).`);
      const f = fl.find((x) => x.def.kind === 'query');
      if (f && f.streaming && d.kind === 'materializedView') {
        const s = f.sources.find((x) => x.mode !== 'batch' && x.mode !== 'filesBatch');
        issue('INVALID_STREAMING_READ', `The materialized view '${d.name}'${where(d)} reads ${s ? `'${s.name}'` : 'a view over a stream'} as a stream; a materialized view is a batch query: use ctx.read(), or define '${d.name}' with p.table() to make it a streaming table.`);
      }
    } else if (d.resolvedKind === 'view') {
      for (const f of fl) if (f.def.kind !== 'query') issue('INVALID_FLOW_TARGET', `The flow '${f.name}' writes to '${d.name}', which is a view; flows write to streaming tables.`);
    } else {
      if (!fl.length) issue('STREAMING_TABLE_WITHOUT_FLOWS', `The streaming table '${d.name}'${where(d)} has no flow writing to it; add an appendFlow or createAutoCdcFlow with target '${d.name}'.`);
      const cdc = fl.filter((f) => f.def.kind === 'autoCdc' || f.def.kind === 'snapshotCdc');
      if (cdc.length && cdc.length !== fl.length) issue('INVALID_FLOW_TARGET', `The streaming table '${d.name}' has both AUTO CDC flows (${cdc.map((f) => f.name).join(', ')}) and append flows (${fl.filter((f) => !cdc.includes(f)).map((f) => f.name).join(', ')}); an AUTO CDC target takes only AUTO CDC flows.`);
      // Several AUTO CDC flows share the target and its state: one kind, the same keys and SCD type.
      const snaps = cdc.filter((f) => f.def.kind === 'snapshotCdc');
      if (snaps.length && snaps.length !== cdc.length) issue('INVALID_FLOW_TARGET', `The streaming table '${d.name}' is the target of both AUTO CDC FROM SNAPSHOT flows (${snaps.map((f) => f.name).join(', ')}) and AUTO CDC flows (${cdc.filter((f) => !snaps.includes(f)).map((f) => f.name).join(', ')}); a target takes one kind, as in Databricks.`);
      else if (snaps.length > 1) issue('INVALID_FLOW_TARGET', `The streaming table '${d.name}' has ${snaps.length} AUTO CDC FROM SNAPSHOT flows (${snaps.map((f) => f.name).join(', ')}); a snapshot target has one.`);
      const sig = (f: ResolvedFlow): string => {
        const o = f.def.cdc ?? f.def.snapshot!;
        return `KEYS (${o.keys.map((k) => k.toLowerCase()).sort().join(', ')}) STORED AS SCD TYPE ${o.storedAsScdType ?? 1}`;
      };
      const sigs = new Set(cdc.map(sig));
      if (sigs.size > 1) issue('INVALID_FLOW_TARGET', `The AUTO CDC flows into '${d.name}' disagree: ${cdc.map((f) => `'${f.name}' has ${sig(f)}`).join('; ')}. Flows into one target share its keys and SCD type.`);
      for (const f of fl) if (f.def.kind === 'append' && !f.def.once && !f.streaming) issue('APPEND_FLOW_NOT_STREAMING', `The append flow '${f.name}' into '${d.name}' reads no stream: use ctx.readStream()/readStreamFiles(), or set once: true for a one-time backfill.`);
    }
    const seen = new Set<string>();
    for (const e of d.expectations) {
      if (seen.has(e.name)) issue('DUPLICATE_EXPECTATION', `The expectation '${e.name}' is defined twice on '${d.name}'; expectation names are unique per dataset.`);
      seen.add(e.name);
    }
  }

  // Streaming reads of non-streaming datasets.
  for (const f of flows.values()) {
    for (const s of f.sources) {
      if (s.kind !== 'dataset' || (s.mode !== 'stream' && s.mode !== 'cdf')) continue;
      const d = datasets.get(s.name)!;
      // (A dataset whose query failed in analysis is only taken for a materialized view: that failure is the issue.)
      if (d.resolvedKind === 'materializedView' && !d.flows.some((n) => flows.get(n)?.analysisFailed)) {
        issue('INVALID_STREAMING_READ', `The flow '${f.name}' reads the materialized view '${s.name}' as a stream; a materialized view is rewritten on every update, so only ctx.read('${s.name}') is allowed (or make '${s.name}' a streaming table).`);
      }
    }
  }

  // Cycles over datasets (views included): edges input -> target.
  const edges = new Map<string, Set<string>>();
  for (const f of flows.values()) {
    for (const i of f.inputs) {
      if (!datasets.has(i)) continue;
      if (!edges.has(i)) edges.set(i, new Set());
      edges.get(i)!.add(f.target);
    }
  }
  const color = new Map<string, number>();
  const cycles: string[][] = [];
  const dfs = (n: string, stack: string[]): void => {
    color.set(n, 1);
    stack.push(n);
    for (const m of [...(edges.get(n) ?? [])].sort()) {
      if (color.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!color.get(m)) dfs(m, stack);
    }
    stack.pop();
    color.set(n, 2);
  };
  for (const n of [...datasets.keys()].sort()) if (!color.get(n)) dfs(n, []);
  for (const c of cycles) issue('CIRCULAR_DEPENDENCY', `The datasets ${c.slice(0, -1).map((x) => `'${x}'`).join(', ')} depend on each other: ${c.join(' -> ')}. A pipeline is a directed acyclic graph.`);

  // Execution order (only meaningful without cycles).
  const writers = new Map<string, string[]>();
  for (const f of flows.values()) {
    if (datasets.get(f.target)?.kind === 'view') continue;
    if (!writers.has(f.target)) writers.set(f.target, []);
    writers.get(f.target)!.push(f.name);
  }
  const order: string[] = [];
  if (!cycles.length) {
    for (const f of flows.values()) f.dependsOn = [...new Set(f.upstream.filter((u) => u !== f.target).flatMap((u) => writers.get(u) ?? []))];
    const done = new Set<string>();
    const visit = (n: string): void => {
      if (done.has(n)) return;
      done.add(n);
      for (const d of flows.get(n)!.dependsOn) visit(d);
      order.push(n);
    };
    for (const n of [...flows.keys()]) if (datasets.get(flows.get(n)!.target)?.kind !== 'view') visit(n);
  }
  const datasetOrder: string[] = [];
  for (const n of order) {
    const t = flows.get(n)!.target;
    if (!datasetOrder.includes(t)) datasetOrder.push(t);
  }
  for (const d of datasets.keys()) if (!datasetOrder.includes(d)) datasetOrder.push(d);
  return { graph: { datasets, flows, order, datasetOrder }, issues };
}

function dedupeSources(s: SourceRef[]): SourceRef[] {
  const m = new Map<string, SourceRef>();
  for (const x of s) if (!m.has(x.key)) m.set(x.key, x);
  return [...m.values()];
}

export function kindText(k: string): string {
  return k === 'materializedView' ? 'materialized view' : k === 'streamingTable' ? 'streaming table' : k === 'view' ? 'view' : 'table';
}
