/**
 * What `floe ui` shows, read from the warehouse: pipelines (found under `<warehouse>/_pipelines/`),
 * their event logs (graph, updates, flows, expectations, events) and the catalog's tables (schema,
 * properties, history, a bounded preview of any version, the change feed between two versions).
 *
 * Nothing here takes SQL or a file path from the caller: pipelines, schemas and tables are names
 * checked against `[A-Za-z0-9_-]` and resolved through the pipelines folder or the catalog; the only
 * SQL run is fixed text over a Delta table the catalog (or the pipelines folder) points at.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Catalog, normalizeName } from '../catalog/catalog.js';
import { FloeError } from '../errors.js';
import { type Floe, isoTimestamp } from '../floe.js';
import { readEvents } from '../pipelines/event-log.js';
import { DeltaTable } from '../table/delta-table.js';

export const PREVIEW_MAX_ROWS = 500;
const PIPELINE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

export class NotFoundError extends FloeError {
  constructor(message: string) {
    super('UI_NOT_FOUND', message);
  }
}
export class BadRequestError extends FloeError {
  constructor(message: string) {
    super('UI_BAD_REQUEST', message);
  }
}

/** A plain event as the API returns it (details and error parsed, numbers as numbers). */
export interface UiEvent {
  id: string;
  seq: number;
  update_id: string;
  flow: string | null;
  dataset: string | null;
  batch_id: number | null;
  timestamp: string;
  level: string;
  event_type: string;
  message: string;
  details: Record<string, unknown>;
  error: { class_name?: string; code?: string | null; message?: string } | null;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** `2026-01-01 10:00:00.5+00` -> ISO 8601. */
const iso = (ts: unknown): string => isoTimestamp(String(ts));

function toUiEvent(r: Record<string, unknown>): UiEvent {
  const origin = (r.origin ?? {}) as Record<string, unknown>;
  const seq = (r.sequence ?? {}) as Record<string, unknown>;
  const type = String(r.event_type);
  let details: Record<string, unknown> = {};
  try {
    const d = JSON.parse(String(r.details ?? '{}')) as Record<string, unknown>;
    details = (d[type] ?? d) as Record<string, unknown>;
  } catch {
    /* keep empty */
  }
  let error: UiEvent['error'] = null;
  if (r.error) {
    try {
      const e = JSON.parse(String(r.error)) as { exceptions?: Array<{ class_name?: string; code?: string | null; message?: string }> };
      const x = e.exceptions?.[0];
      error = x ? { class_name: x.class_name, code: x.code ?? null, message: String(x.message ?? '').replace(/^\[[A-Z0-9_]+\]\s*/, '') } : { message: String(r.error) };
    } catch {
      error = { message: String(r.error) };
    }
  }
  return {
    id: String(r.id),
    seq: Number(seq.seq_no ?? 0),
    update_id: String(origin.update_id ?? seq.update_id ?? ''),
    flow: (origin.flow_name as string | null) ?? null,
    dataset: (origin.dataset_name as string | null) ?? null,
    batch_id: num(origin.batch_id),
    timestamp: iso(r.timestamp),
    level: String(r.level),
    event_type: type,
    message: String(r.message ?? ''),
    details,
    error,
  };
}

export interface UpdateInfo {
  update_id: string;
  started: string;
  ended: string | null;
  duration_ms: number | null;
  state: string;
  full_refresh: boolean;
  error: UiEvent['error'];
}

export interface FlowUpdateInfo {
  update_id: string;
  started: string;
  flow: string;
  dataset: string | null;
  status: string;
  duration_ms: number | null;
  rows_written: number;
  upserted: number;
  deleted: number;
  dropped: number;
  note: string | null;
  error: UiEvent['error'];
}

export interface ExpectationInfo {
  update_id: string;
  started: string;
  flow: string;
  dataset: string;
  name: string;
  passed: number;
  failed: number;
  dropped: number;
  action: string | null;
}

export interface GraphNode {
  name: string;
  kind: 'streaming_table' | 'materialized_view' | 'view' | 'source';
  flows: string[];
  state: string;
  rows_written: number | null;
  error: UiEvent['error'];
  table: { schema: string; name: string } | null;
}

export interface Graph {
  pipeline: string;
  update_id: string | null;
  update_state: string | null;
  nodes: GraphNode[];
  edges: Array<{ from: string; to: string; flow: string }>;
}

const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELED']);

export class UiData {
  readonly catalog: Catalog;
  readonly pipelinesRoot: string;
  private readonly created = new Map<string, string>();

  constructor(readonly floe: Floe, readonly warehouse: string) {
    this.catalog = new Catalog(warehouse);
    this.pipelinesRoot = path.join(this.catalog.root, '_pipelines');
  }

  // ---------------------------------------------------------------- pipelines

  private pipelineDir(name: string): string {
    if (!PIPELINE_NAME.test(name)) throw new BadRequestError(`Invalid pipeline name '${name}'.`);
    return path.join(this.pipelinesRoot, name);
  }

  eventLogOf(name: string): string {
    return path.join(this.pipelineDir(name), 'event_log');
  }

  async events(name: string): Promise<UiEvent[]> {
    const loc = this.eventLogOf(name);
    if (!(await this.floe.deltaLog(loc).exists())) throw new NotFoundError(`No pipeline '${name}' in ${this.warehouse} (no event log at ${loc}).`);
    return (await this.fresh(loc, () => readEvents(this.floe, loc))).map(toUiEvent);
  }

  /** Fails with a 404 unless the pipeline has a folder (it may not have run yet). */
  async requirePipeline(name: string): Promise<void> {
    try {
      if ((await fs.stat(this.pipelineDir(name))).isDirectory()) return;
    } catch {
      /* below */
    }
    throw new NotFoundError(`No pipeline '${name}' in ${this.warehouse}.`);
  }

  /** The event log's latest version (-1 when absent): what the live stream polls. */
  async eventLogVersion(name: string): Promise<number> {
    const loc = this.eventLogOf(name);
    if (!(await this.floe.deltaLog(loc).exists())) return -1;
    return (await this.floe.snapshot(loc)).version;
  }

  async listPipelines(): Promise<Array<{ name: string; id: string | null; last_update: UpdateInfo | null; updates: number }>> {
    let entries: string[] = [];
    try {
      entries = (await fs.readdir(this.pipelinesRoot, { withFileTypes: true })).filter((d) => d.isDirectory() && PIPELINE_NAME.test(d.name)).map((d) => d.name).sort();
    } catch {
      return [];
    }
    const out = [];
    for (const name of entries) {
      if (!(await this.floe.deltaLog(this.eventLogOf(name)).exists())) continue;
      let id: string | null = null;
      try {
        id = (JSON.parse(await fs.readFile(path.join(this.pipelineDir(name), 'pipeline.json'), 'utf8')) as { id?: string }).id ?? null;
      } catch {
        /* no id file */
      }
      const ups = updatesOf(await this.events(name));
      out.push({ name, id, last_update: ups[0] ?? null, updates: ups.length });
    }
    return out;
  }

  async updates(name: string): Promise<UpdateInfo[]> {
    return updatesOf(await this.events(name));
  }

  async flows(name: string): Promise<FlowUpdateInfo[]> {
    return flowsOf(await this.events(name));
  }

  async expectations(name: string): Promise<ExpectationInfo[]> {
    return expectationsOf(await this.events(name));
  }

  async graph(name: string): Promise<Graph> {
    const evs = await this.events(name);
    return graphOf(name, evs, await this.tableNames());
  }

  async filteredEvents(name: string, f: { level?: string; type?: string; flow?: string; update?: string; limit?: number; after?: string }): Promise<UiEvent[]> {
    let evs = await this.events(name);
    if (f.level) evs = evs.filter((e) => e.level === f.level!.toUpperCase());
    if (f.type) evs = evs.filter((e) => e.event_type === f.type);
    if (f.flow) evs = evs.filter((e) => e.flow === f.flow);
    if (f.update) evs = evs.filter((e) => e.update_id === f.update || e.update_id.startsWith(f.update!));
    if (f.after) {
      const i = evs.findIndex((e) => e.id === f.after);
      if (i >= 0) evs = evs.slice(i + 1);
    }
    // (At least 1, as the table endpoints: slice(-0) would be every event.)
    const limit = Math.max(1, Math.min(f.limit ?? 500, 5000));
    return evs.slice(-limit);
  }

  // ---------------------------------------------------------------- tables

  private async tableNames(): Promise<Set<string>> {
    const s = new Set<string>();
    for (const t of await this.listTables()) s.add(`${t.schema}.${t.name}`);
    return s;
  }

  async listTables(): Promise<Array<{ schema: string; name: string; type: string }>> {
    const out: Array<{ schema: string; name: string; type: string }> = [];
    try {
      await fs.access(this.catalog.root);
    } catch {
      return out;
    }
    // Read-only: only schemas that have catalog entries (Catalog.listSchemas would create `default`).
    const schemas = (await fs.readdir(this.catalog.root, { withFileTypes: true })).filter((d) => d.isDirectory() && /^[a-z0-9_]+$/.test(d.name)).map((d) => d.name).sort();
    for (const s of schemas) {
      try {
        await fs.access(path.join(this.catalog.root, s, '.floe-catalog'));
      } catch {
        continue;
      }
      for (const t of await this.catalog.listTables(s)) out.push({ schema: t.schema, name: t.name, type: t.type });
    }
    return out;
  }

  /**
   * Runs `f` over a table; on an error, forgets what the session cached about its log and tries once
   * more (a long-running server outlives tables dropped and created again at the same location).
   */
  private async fresh<T>(location: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch {
      this.floe.forgetLog(location);
      return f();
    }
  }

  /** The table's location, only through the catalog. */
  private async location(schema: string, table: string): Promise<string> {
    let s: string;
    let t: string;
    try {
      s = normalizeName(schema, 'schema');
      t = normalizeName(table, 'table');
    } catch {
      throw new BadRequestError(`Invalid table name '${schema}.${table}': use letters, digits and underscores.`);
    }
    const entry = await this.catalog.getTable(s, t);
    if (!entry) throw new NotFoundError(`The table ${s}.${t} is not in the catalog of ${this.warehouse}.`);
    // A table dropped and created again (its catalog entry is new): forget the cached log.
    const seen = this.created.get(entry.location);
    if (seen !== undefined && seen !== entry.createdAt) this.floe.forgetLog(entry.location);
    this.created.set(entry.location, entry.createdAt);
    return entry.location;
  }

  async tableInfo(schema: string, table: string): Promise<Record<string, unknown>> {
    const loc = await this.location(schema, table);
    const { d, snap } = await this.fresh(loc, async () => {
      const t = await DeltaTable.forPath(this.floe, loc);
      return { d: await t.detail(), snap: await t.snapshot() };
    });
    return {
      schema,
      name: table,
      version: d.version,
      description: d.description,
      partition_columns: d.partitionColumns,
      num_files: d.numFiles,
      size_bytes: d.sizeInBytes,
      properties: d.properties,
      table_features: d.tableFeatures,
      columns: snap.schema.fields.map((f) => ({ name: f.name, type: typeof f.type === 'string' ? f.type : JSON.stringify(f.type), nullable: f.nullable })),
      last_modified: d.lastModified,
    };
  }

  async history(schema: string, table: string, limit?: number): Promise<unknown[]> {
    const loc = await this.location(schema, table);
    const h = await this.fresh(loc, async () => (await DeltaTable.forPath(this.floe, loc)).history(limit));
    return h.map((h) => ({ version: h.version, timestamp: h.timestamp, operation: h.operation, operationParameters: h.operationParameters, operationMetrics: h.operationMetrics }));
  }

  async preview(schema: string, table: string, version: number | undefined, limit: number): Promise<{ version: number; columns: string[]; rows: Record<string, unknown>[]; limit: number }> {
    const loc = await this.location(schema, table);
    const n = Math.min(Math.max(limit, 1), PREVIEW_MAX_ROWS);
    const snapVersion = (await this.fresh(loc, () => this.floe.snapshot(loc, version === undefined ? {} : { versionAsOf: version }))).version;
    const df = (await this.floe.read.delta(loc, { versionAsOf: snapVersion })).limit(n);
    const columns = (await df.columns()).map((c) => c.name);
    return { version: snapVersion, columns, rows: await df.toJSON(), limit: n };
  }

  async changes(schema: string, table: string, from: number, to: number | undefined, limit: number): Promise<{ from: number; to: number | null; columns: string[]; rows: Record<string, unknown>[]; limit: number; counts: Record<string, number> }> {
    const loc = await this.location(schema, table);
    const n = Math.min(Math.max(limit, 1), PREVIEW_MAX_ROWS);
    await this.fresh(loc, () => this.floe.snapshot(loc));
    const feed = await this.floe.read.changes(loc, { startingVersion: from, ...(to === undefined ? {} : { endingVersion: to }) });
    const counts: Record<string, number> = {};
    for (const r of await this.floe.engine.allJson(`SELECT _change_type, count(*) AS n FROM (${await feed.toSQL()}) GROUP BY 1`)) counts[String(r._change_type)] = Number(r.n);
    const df = feed.orderBy('_commit_version', "CASE _change_type WHEN 'delete' THEN 0 WHEN 'update_preimage' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END").limit(n);
    const columns = (await df.columns()).map((c) => c.name);
    return { from, to: to ?? null, columns, rows: await df.toJSON(), limit: n, counts };
  }
}

// ------------------------------------------------------------------ pure summaries of the event log

export function updatesOf(evs: UiEvent[]): UpdateInfo[] {
  const m = new Map<string, UpdateInfo & { _seq: number; _startMs: number; _endMs: number }>();
  for (const e of evs) {
    let u = m.get(e.update_id);
    const t = Date.parse(e.timestamp);
    if (!u) {
      u = { update_id: e.update_id, started: e.timestamp, ended: null, duration_ms: null, state: 'UNKNOWN', full_refresh: false, error: null, _seq: -1, _startMs: t, _endMs: t };
      m.set(e.update_id, u);
    }
    if (t < u._startMs) {
      u._startMs = t;
      u.started = e.timestamp;
    }
    if (t > u._endMs) u._endMs = t;
    if (e.event_type === 'create_update') u.full_refresh = e.details.full_refresh === true;
    if (e.event_type === 'update_progress' && e.seq >= u._seq) {
      u._seq = e.seq;
      u.state = String(e.details.state ?? 'UNKNOWN');
      if (e.error) u.error = e.error;
    }
  }
  return [...m.values()]
    .map(({ _seq, _startMs, _endMs, ...u }) => ({ ...u, ended: FINAL.has(u.state) ? new Date(_endMs).toISOString() : null, duration_ms: FINAL.has(u.state) ? _endMs - _startMs : Date.now() - _startMs }))
    .sort((a, b) => (a.started < b.started ? 1 : a.started > b.started ? -1 : 0));
}

/** The last flow_progress of each flow in each update, oldest update first. */
export function flowsOf(evs: UiEvent[]): FlowUpdateInfo[] {
  const starts = new Map<string, string>();
  for (const e of evs) if (!starts.has(e.update_id)) starts.set(e.update_id, e.timestamp);
  const m = new Map<string, FlowUpdateInfo>();
  for (const e of evs) {
    if (e.event_type !== 'flow_progress' || !e.flow) continue;
    const metrics = (e.details.metrics ?? {}) as Record<string, number>;
    const dq = (e.details.data_quality ?? {}) as { dropped_records?: number };
    const k = `${e.update_id}\u0000${e.flow}`;
    // A continuous update runs a flow once per round: its counts add up, the last event gives the state.
    const prev = m.get(k);
    const add = (a: number | null | undefined, b: number | null): number | null => (a == null ? b : b == null ? a : a + b);
    const rows = Number(metrics.num_output_rows ?? 0) + (prev?.rows_written ?? 0);
    const note = (e.details.note as string | null) ?? (e.details.reason as string | null) ?? null;
    m.set(k, {
      update_id: e.update_id,
      started: starts.get(e.update_id)!,
      flow: e.flow,
      dataset: e.dataset,
      status: String(e.details.status ?? 'UNKNOWN'),
      duration_ms: add(prev?.duration_ms, num(e.details.duration_ms)),
      rows_written: rows,
      upserted: Number(metrics.num_upserted_rows ?? 0) + (prev?.upserted ?? 0),
      deleted: Number(metrics.num_deleted_rows ?? 0) + (prev?.deleted ?? 0),
      dropped: Number(dq.dropped_records ?? 0) + (prev?.dropped ?? 0),
      // (A last round without new data does not hide what the earlier rounds wrote.)
      note: note === 'no new data' && rows > 0 ? null : note,
      error: e.error,
    });
  }
  return [...m.values()];
}

export function expectationsOf(evs: UiEvent[]): ExpectationInfo[] {
  const actions = new Map<string, string>();
  const starts = new Map<string, string>();
  const out: ExpectationInfo[] = [];
  for (const e of evs) {
    if (!starts.has(e.update_id)) starts.set(e.update_id, e.timestamp);
    if (e.event_type === 'flow_definition') {
      for (const x of (e.details.expectations ?? []) as Array<{ name: string; action: string; dataset: string }>) actions.set(`${x.dataset}\u0000${x.name}`, x.action);
    }
    if (e.event_type !== 'flow_progress' || !e.flow) continue;
    const dq = e.details.data_quality as { expectations?: Array<{ name: string; dataset: string; passed_records: number; failed_records: number }> } | undefined;
    for (const x of dq?.expectations ?? []) {
      const action = actions.get(`${x.dataset}\u0000${x.name}`) ?? null;
      out.push({ update_id: e.update_id, started: starts.get(e.update_id)!, flow: e.flow, dataset: x.dataset, name: x.name, passed: Number(x.passed_records), failed: Number(x.failed_records), dropped: action === 'drop' ? Number(x.failed_records) : 0, action });
    }
  }
  return out;
}

/**
 * The graph of the latest update that defined flows: a node per dataset (kind from the lineage
 * events; inputs that are not datasets of the pipeline are `source` nodes), edges input -> output,
 * and per node the last update's state and rows written (summed over its flows).
 */
export function graphOf(pipeline: string, evs: UiEvent[], tables: Set<string> = new Set()): Graph {
  const defs = evs.filter((e) => e.event_type === 'flow_definition');
  const lastUpdate = defs.length ? defs[defs.length - 1]!.update_id : null;
  const ups = updatesOf(evs);
  const latest = ups[0] ?? null;
  const nodes = new Map<string, GraphNode>();
  const edges: Graph['edges'] = [];
  const schemaOf = new Map<string, string>();
  for (const e of evs) {
    if (e.event_type === 'create_update') {
      const c = (e.details.config ?? {}) as { schema?: string };
      if (c.schema) schemaOf.set(e.update_id, c.schema);
    }
  }
  const schema = (lastUpdate && schemaOf.get(lastUpdate)) || 'default';
  const latestDefs = defs.filter((e) => e.update_id === lastUpdate);
  const outputs = new Set(latestDefs.map((e) => String((e.details as { output_dataset?: string }).output_dataset ?? e.dataset ?? '')));
  const viewEdges = new Set<string>();
  for (const e of latestDefs) {
    const d = e.details as { output_dataset?: string; input_datasets?: string[]; dataset_type?: string; sources?: Array<{ name: string }> };
    const out = d.output_dataset ?? e.dataset ?? '';
    const kind: GraphNode['kind'] = d.dataset_type === 'MATERIALIZED_VIEW' ? 'materialized_view' : d.dataset_type === 'VIEW' ? 'view' : 'streaming_table';
    const n = nodes.get(out) ?? { name: out, kind, flows: [], state: 'IDLE', rows_written: null, error: null, table: tables.has(`${schema}.${out}`) || !tables.size ? { schema, name: out } : null };
    n.kind = kind;
    if (e.flow && !n.flows.includes(e.flow)) n.flows.push(e.flow);
    nodes.set(out, n);
    for (const i of d.input_datasets ?? []) edges.push({ from: i, to: out, flow: e.flow ?? out });
    // Views are expanded into their sources: a direct input that is neither a source nor a dataset
    // of the pipeline is a view, fed by the sources that are not direct inputs.
    const inputs = d.input_datasets ?? [];
    const sourceNames = (d.sources ?? []).map((x) => x.name);
    for (const v of inputs.filter((i) => !sourceNames.includes(i) && !outputs.has(i))) {
      if (!nodes.has(v)) nodes.set(v, { name: v, kind: 'view', flows: [], state: 'VIEW', rows_written: null, error: null, table: null });
      for (const src of sourceNames.filter((x) => !inputs.includes(x))) {
        if (viewEdges.has(`${src}\u0000${v}`)) continue;
        viewEdges.add(`${src}\u0000${v}`);
        edges.push({ from: src, to: v, flow: e.flow ?? out });
      }
    }
  }
  for (const ed of edges) if (!nodes.has(ed.from)) nodes.set(ed.from, { name: ed.from, kind: 'source', flows: [], state: 'SOURCE', rows_written: null, error: null, table: null });
  // The latest update's flow results (or the running update's progress so far).
  const upd = latest?.update_id ?? lastUpdate;
  const flows = flowsOf(evs.filter((e) => e.update_id === upd));
  for (const n of nodes.values()) {
    if (n.kind === 'source') continue;
    const fs = flows.filter((f) => n.flows.includes(f.flow));
    if (!fs.length) continue;
    n.rows_written = fs.reduce((a, f) => a + f.rows_written, 0);
    const failed = fs.find((f) => f.status === 'FAILED');
    n.state = failed ? 'FAILED' : fs.some((f) => f.status === 'RUNNING') ? 'RUNNING' : fs.some((f) => f.status === 'SKIPPED') ? 'SKIPPED' : fs.every((f) => f.status === 'EXCLUDED') ? 'EXCLUDED' : 'COMPLETED';
    if (failed) n.error = failed.error;
    else if (n.state === 'COMPLETED' && fs.some((f) => f.dropped > 0)) n.state = 'COMPLETED_WITH_DROPS';
  }
  return { pipeline, update_id: upd, update_state: latest?.state ?? null, nodes: [...nodes.values()], edges };
}
