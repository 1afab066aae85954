/**
 * The pipeline event log: a Delta table at `<storage>/event_log` with DLT's shape:
 * `id`, `sequence` (struct: update_id, seq_no), `origin` (struct: pipeline_id, pipeline_name,
 * update_id, flow_name, dataset_name, batch_id), `timestamp`, `message`, `level`
 * (INFO / WARN / ERROR / METRICS), `maturity_level`, `error` (JSON string), `details` (JSON string
 * keyed by the event type), `event_type` (create_update, update_progress, flow_definition,
 * flow_progress, planning_information). Events are buffered and appended one commit per stage.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FloeError } from '../errors.js';
import { quoteString } from '../core/schema.js';
import type { Floe } from '../floe.js';

export type EventLevel = 'INFO' | 'WARN' | 'ERROR' | 'METRICS';

export interface PipelineEvent {
  id: string;
  sequence: { update_id: string; seq_no: number };
  origin: { pipeline_id: string; pipeline_name: string; update_id: string; flow_name: string | null; dataset_name: string | null; batch_id: number | null };
  timestamp: string;
  message: string;
  level: EventLevel;
  maturity_level: string;
  error: string | null;
  details: string;
  event_type: string;
}

export interface EventInput {
  eventType: string;
  message: string;
  level?: EventLevel;
  flow?: string | null;
  dataset?: string | null;
  batchId?: number | null;
  details: Record<string, unknown>;
  error?: unknown;
  /** Another update's id (marking an interrupted update), with the sequence number to use. */
  updateId?: string;
  seqNo?: number;
}

/** The error as DLT's `error` column: exceptions with class, message and stack. */
export function errorJson(e: unknown): string {
  const err = e as Error & { code?: string; details?: unknown };
  return JSON.stringify({
    fatal: true,
    exceptions: [{ class_name: err?.name ?? 'Error', code: err?.code ?? null, message: err?.message ?? String(e), stack: (err?.stack ?? '').split('\n').slice(1, 8).map((s) => s.trim()) }],
  });
}

/** Receives every event-log record as it is emitted (before it is flushed to the table). */
export type PipelineEventListener = (e: PipelineEvent) => void;

const subscribers = new Set<PipelineEventListener>();

/**
 * Subscribes to the events of every pipeline update of this process (notifications, UIs, progress
 * displays). A listener that throws is ignored: it never fails an update. Returns the unsubscribe.
 */
export function subscribePipelineEvents(listener: PipelineEventListener): () => void {
  subscribers.add(listener);
  return () => void subscribers.delete(listener);
}

function deliver(listener: PipelineEventListener, ev: PipelineEvent): void {
  try {
    listener(ev);
  } catch {
    // A subscriber's failure is its own.
  }
}

const nul = (v: string | null): string => (v === null ? 'NULL::VARCHAR' : quoteString(v));

export class EventLog {
  private buffer: PipelineEvent[] = [];
  private seq = 0;

  constructor(
    private floe: Floe,
    readonly location: string,
    private origin: { pipelineId: string; pipelineName: string; updateId: string },
    private listener?: PipelineEventListener | PipelineEventListener[],
  ) {}

  emit(e: EventInput): PipelineEvent {
    const ev: PipelineEvent = {
      id: randomUUID(),
      sequence: { update_id: e.updateId ?? this.origin.updateId, seq_no: e.seqNo ?? this.seq++ },
      origin: { pipeline_id: this.origin.pipelineId, pipeline_name: this.origin.pipelineName, update_id: e.updateId ?? this.origin.updateId, flow_name: e.flow ?? null, dataset_name: e.dataset ?? null, batch_id: e.batchId ?? null },
      timestamp: new Date().toISOString(),
      message: e.message,
      level: e.level ?? 'INFO',
      maturity_level: 'STABLE',
      error: e.error === undefined ? null : errorJson(e.error),
      details: JSON.stringify({ [e.eventType]: e.details }),
      event_type: e.eventType,
    };
    this.buffer.push(ev);
    const own = Array.isArray(this.listener) ? this.listener : this.listener ? [this.listener] : [];
    for (const l of [...own, ...subscribers]) deliver(l, ev);
    return ev;
  }

  /** Appends the buffered events in one commit. */
  async flush(): Promise<void> {
    if (!this.buffer.length) return;
    const rows = this.buffer;
    this.buffer = [];
    const sel = rows.map((r) =>
      `SELECT ${quoteString(r.id)} AS id, {'update_id': ${quoteString(r.sequence.update_id)}, 'seq_no': ${r.sequence.seq_no}::BIGINT} AS sequence, ` +
      `{'pipeline_id': ${quoteString(r.origin.pipeline_id)}, 'pipeline_name': ${quoteString(r.origin.pipeline_name)}, 'update_id': ${quoteString(r.origin.update_id)}, 'flow_name': ${nul(r.origin.flow_name)}, 'dataset_name': ${nul(r.origin.dataset_name)}, 'batch_id': ${r.origin.batch_id === null ? 'NULL' : r.origin.batch_id}::BIGINT} AS origin, ` +
      `${quoteString(r.timestamp)}::TIMESTAMPTZ AS "timestamp", ${quoteString(r.message)} AS message, ${quoteString(r.level)} AS level, ${quoteString(r.maturity_level)} AS maturity_level, ` +
      `${nul(r.error)} AS error, ${quoteString(r.details)} AS details, ${quoteString(r.event_type)} AS event_type`,
    );
    try {
      await this.floe.duckdbSql(sel.join(' UNION ALL ')).write.delta(this.location, { mode: 'append', description: `Event log of pipeline ${this.origin.pipelineName}` });
    } catch (e) {
      this.buffer = [...rows, ...this.buffer];
      throw e;
    }
  }
}

/** Reads a pipeline's events, oldest first (optionally the last `limit`). */
export async function readEvents(floe: Floe, location: string, options: { limit?: number; updateId?: string } = {}): Promise<Record<string, unknown>[]> {
  if (!(await floe.deltaLog(location).exists())) return [];
  const sql = await (await floe.read.delta(location)).toSQL();
  const where = options.updateId ? `WHERE origin.update_id = ${quoteString(options.updateId)}` : '';
  const inner = `SELECT * FROM (${sql}) ${where} ORDER BY "timestamp" DESC, sequence.seq_no DESC${options.limit !== undefined ? ` LIMIT ${options.limit}` : ''}`;
  const rows = await floe.engine.allJson(`SELECT * FROM (${inner}) ORDER BY "timestamp", sequence.seq_no`);
  return rows;
}

export interface UpdateSummary {
  update_id: string;
  started: string;
  ended: string | null;
  state: string;
  full_refresh: unknown;
  error: string | null;
}

/** One row per update, newest first: its start, its last update_progress state, its error. */
export async function listUpdates(floe: Floe, location: string, limit = 10): Promise<UpdateSummary[]> {
  if (!(await floe.deltaLog(location).exists())) return [];
  const sql = await (await floe.read.delta(location)).toSQL();
  const rows = await floe.engine.allJson(`
    WITH e AS (${sql}),
    u AS (SELECT origin.update_id AS update_id, min("timestamp") AS started, max("timestamp") AS ended FROM e GROUP BY 1),
    s AS (SELECT origin.update_id AS update_id, arg_max(json_extract_string(details, '$.update_progress.state'), sequence.seq_no) AS state,
                 arg_max(error, sequence.seq_no) AS error
          FROM e WHERE event_type = 'update_progress' GROUP BY 1),
    c AS (SELECT origin.update_id AS update_id, any_value(json_extract(details, '$.create_update.full_refresh')) AS full_refresh FROM e WHERE event_type = 'create_update' GROUP BY 1)
    SELECT u.update_id, u.started::VARCHAR AS started, u.ended::VARCHAR AS ended, coalesce(s.state, 'UNKNOWN') AS state, c.full_refresh, s.error
    FROM u LEFT JOIN s USING (update_id) LEFT JOIN c USING (update_id) ORDER BY u.started DESC LIMIT ${limit}`);
  return rows as unknown as UpdateSummary[];
}

/** The warehouse folder holding each pipeline's storage (checkpoints, event log) by default. */
export const PIPELINES_DIR = '_pipelines';

const isDir = async (p: string): Promise<boolean> => (await fs.stat(p).catch(() => null))?.isDirectory() ?? false;

/**
 * The event log table of a pipeline given by name (its storage in `warehouse`) or by path: the event
 * log table itself, a pipeline's storage folder, its spec file, or a folder holding the spec.
 */
export async function eventLogLocation(warehouse: string, nameOrPath: string): Promise<string> {
  const candidates: string[] = [];
  const p = path.resolve(nameOrPath);
  const stat = await fs.stat(p).catch(() => null);
  if (stat) {
    if (await isDir(path.join(p, '_delta_log'))) return p;
    if (await isDir(path.join(p, 'event_log', '_delta_log'))) return path.join(p, 'event_log');
    const { SPEC_FILE_NAMES, loadSpec } = await import('./spec.js');
    let specFile: string | null = stat.isFile() ? p : null;
    for (const n of SPEC_FILE_NAMES) if (!specFile && (await fs.stat(path.join(p, n)).catch(() => null))?.isFile()) specFile = path.join(p, n);
    if (specFile) {
      const spec = await loadSpec(specFile);
      const { resolveWarehouse } = await import('../catalog/catalog.js');
      const loc = path.join(spec.storage ?? path.join(resolveWarehouse(spec.warehouse), PIPELINES_DIR, spec.name), 'event_log');
      if (await isDir(path.join(loc, '_delta_log'))) return loc;
      candidates.push(loc);
    }
  }
  if (/^[A-Za-z0-9_-]+$/.test(nameOrPath)) {
    const loc = path.join(warehouse, PIPELINES_DIR, nameOrPath, 'event_log');
    if (await isDir(path.join(loc, '_delta_log'))) return loc;
    candidates.push(loc);
  }
  throw new FloeError(
    'PIPELINE_EVENT_LOG_NOT_FOUND',
    `No event log for pipeline '${nameOrPath}'${candidates.length ? ` (looked in ${candidates.join(', ')})` : ''}. Give the name of a pipeline that has run in this warehouse, or the path of its spec, storage folder or event log; a pipeline has an event log once it has run.`,
    { pipeline: nameOrPath },
  );
}
