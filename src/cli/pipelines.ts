/**
 * `floe pipelines …`: init, validate (dry-run), run, status, events. Human output on a terminal,
 * JSON lines otherwise (or with `--format json`). Errors go to stderr as `error [CODE] message`
 * with exit status 1; usage errors exit 2. `status` exits 1 when the last update failed.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { resolveWarehouse } from '../catalog/catalog.js';
import { formatTable } from '../dataframe.js';
import { FloeError } from '../errors.js';
import { Floe, isoTimestamp } from '../floe.js';
import { type PipelineEvent, listUpdates, readEvents } from '../pipelines/event-log.js';
import { kindText } from '../pipelines/graph.js';
import { ProgressDisplay } from '../pipelines/progress.js';
import { runPipeline, validatePipeline } from '../pipelines/runner.js';
import { findSpec, loadSpec } from '../pipelines/spec.js';

export const PIPELINES_USAGE = `Usage:
  floe pipelines init NAME [--sql]              a working example project in ./NAME (--sql: SQL transformations)
  floe pipelines validate [--spec FILE]         resolve and check the graph (alias: dry-run)
  floe pipelines run [--spec FILE] [--warehouse DIR] [--full-refresh a,b | --full-refresh-all] [--refresh a,b] [--continuous] [--format json|text]
                                                --continuous (or continuous: true in the spec): process new input every
                                                pipelines.trigger.interval (default 5 s) until SIGINT/SIGTERM, then finish
                                                the flow in progress, record the update CANCELED and exit 0
  floe pipelines status [--spec FILE] [--warehouse DIR] [--limit N] [--format json|text]
  floe pipelines events [--spec FILE] [--warehouse DIR] [--limit N] [--update ID] [--follow] [--format json|text]
                                                --follow: keep printing new events until SIGINT/SIGTERM (exit 0)

The spec (spark-pipeline.yml / pipeline.yml) is found in the current folder or its parents unless
--spec is given. Libraries are pipeline SQL files (.sql, as on Databricks) and .js/.mjs modules
whose default export is definePipeline((p) => …) or a plain function (p) => { … }; .ts/.mts
modules load as they are when the typescript package is installed. Output is human on a terminal and JSON
lines otherwise. status exits 1 when the last update failed.
`;

class PipelinesUsageError extends Error {}

const list = (s: string | undefined): string[] | undefined => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));

function out(s: string): void {
  process.stdout.write(s);
}

/** `floe pipelines …`; returns the exit status. */
export async function pipelinesCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (!sub || sub === 'help' || sub === '--help' || sub === '-h') {
      out(PIPELINES_USAGE);
      return sub ? 0 : 2;
    }
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        spec: { type: 'string' },
        warehouse: { type: 'string', short: 'w' },
        'full-refresh': { type: 'string' },
        'full-refresh-all': { type: 'boolean' },
        refresh: { type: 'string' },
        limit: { type: 'string' },
        update: { type: 'string' },
        format: { type: 'string' },
        sql: { type: 'boolean' },
        continuous: { type: 'boolean' },
        follow: { type: 'boolean', short: 'f' },
      },
    });
    if (values.format !== undefined && !['json', 'text'].includes(values.format)) throw new PipelinesUsageError(`--format must be json or text, got '${values.format}'`);
    const json = values.format === 'json' || (values.format === undefined && !process.stdout.isTTY);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new PipelinesUsageError(`--limit needs a positive integer, got '${values.limit}'`);
    switch (sub) {
      case 'init': {
        const name = positionals[0];
        if (!name) throw new PipelinesUsageError('floe pipelines init needs a NAME');
        if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new PipelinesUsageError(`the project name '${name}' must use letters, digits, '_' and '-'`);
        const dir = await initProject(name, process.cwd(), { sql: values.sql === true });
        out(json ? JSON.stringify({ created: dir }) + '\n' : `Created the pipeline project ${dir}\n  cd ${name} && floe pipelines run\nthen query it: floe sql --warehouse ${path.join(name, 'warehouse')} -e "SELECT * FROM gold_orders_by_status"\n`);
        return 0;
      }
      case 'validate':
      case 'dry-run': {
        const spec = values.spec ?? (await findSpec());
        const { pipeline, graph } = await validatePipeline({ spec, warehouse: values.warehouse });
        if (json) {
          out(JSON.stringify({ valid: true, pipeline: pipeline.name, datasets: [...graph.datasets.values()].map((d) => ({ name: d.name, type: d.resolvedKind, flows: d.flows })), flows: graph.order.map((n) => { const f = graph.flows.get(n)!; return { name: n, target: f.target, kind: f.def.kind, streaming: f.streaming, inputs: f.inputs }; }) }) + '\n');
        } else {
          out(`Pipeline '${pipeline.name}' is valid: ${graph.datasets.size} datasets, ${graph.flows.size} flows.\n`);
          for (const n of graph.order) {
            const f = graph.flows.get(n)!;
            out(`  ${f.inputs.join(', ') || '(no dataset inputs)'} -> ${f.target} (${kindText(graph.datasets.get(f.target)!.resolvedKind)}, flow ${n}${f.def.kind === 'autoCdc' ? ', AUTO CDC' : ''})\n`);
          }
        }
        return 0;
      }
      case 'run': {
        if (values['full-refresh-all'] && (values['full-refresh'] !== undefined || values.refresh !== undefined)) throw new PipelinesUsageError('--full-refresh-all conflicts with --full-refresh and --refresh');
        const spec = values.spec ?? (await findSpec());
        const started = Date.now();
        // SIGINT / SIGTERM: the flow in progress finishes, the update is recorded CANCELED, exit 0.
        // A second signal exits at once (130); the next run resumes from the checkpoints.
        const stop = new AbortController();
        const onSignal = (sig: NodeJS.Signals): void => {
          if (stop.signal.aborted) process.exit(130);
          process.stderr.write(`${sig}: stopping after the flow in progress (again to exit at once)\n`);
          stop.abort();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        // A terminal gets one live line per flow; --format text elsewhere gets the event lines.
        const display = !json && process.stdout.isTTY ? new ProgressDisplay() : null;
        let r;
        try {
          r = await runPipeline({
            spec,
            warehouse: values.warehouse,
            fullRefresh: values['full-refresh-all'] ? 'all' : list(values['full-refresh']),
            refresh: list(values.refresh),
            continuous: values.continuous ? true : undefined,
            signal: stop.signal,
            onEvent: (e) => out(json ? JSON.stringify(eventJson(e)) + '\n' : display ? display.render(e) : humanEvent(e)),
          });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        if (!json) {
          out(`\nUpdate ${r.updateId} ${r.state} in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
          const rows = Object.values(r.flows).map((f) => ({ flow: f.flow, dataset: f.dataset, status: f.status, rows: f.numOutputRows, upserted: f.numUpsertedRows, deleted: f.numDeletedRows, dropped: f.droppedRecords, note: f.note ?? (f.error ? f.error.message.slice(0, 80) : '') }));
          out(formatTable(['flow', 'dataset', 'status', 'rows', 'upserted', 'deleted', 'dropped', 'note'], rows));
        }
        for (const f of Object.values(r.flows)) if (f.error) process.stderr.write(`error in flow ${f.flow}: ${f.error.message}\n`);
        return r.state === 'FAILED' ? 1 : 0;
      }
      case 'status':
      case 'events': {
        const floe = await Floe.create();
        try {
          const loc = await eventLogLocation(values.spec, values.warehouse);
          if (sub === 'status') {
            const ups = await listUpdates(floe, loc.eventLog, limit ?? 10);
            // JSON: one object per update on stdout (none yet: nothing there, the notice on stderr, as `events`).
            if (!ups.length) (json ? (t: string) => process.stderr.write(t) : out)(`Pipeline '${loc.name}' has no updates yet.\n`);
            else if (json) out(ups.map((u) => JSON.stringify({ pipeline: loc.name, ...u, started: isoTimestamp(u.started), ended: u.ended === null ? null : isoTimestamp(u.ended), full_refresh: String(u.full_refresh) === 'true', error: u.error ? (JSON.parse(u.error) as unknown) : null })).join('\n') + '\n');
            else {
              out(`Pipeline '${loc.name}': last ${ups.length} update(s), newest first\n`);
              out(formatTable(['update_id', 'started', 'ended', 'state', 'error'], ups.map((u) => ({ ...u, error: u.error ? ((JSON.parse(u.error) as { exceptions?: { message?: string }[] }).exceptions?.[0]?.message ?? '').slice(0, 80) : '' }))));
            }
            return ups[0]?.state === 'FAILED' ? 1 : 0;
          }
          // (JSON: the shape `run --format json` prints: numbers, ISO timestamps, details and error as objects.)
          const show = (e: Record<string, unknown>): void => out(json ? JSON.stringify(storedEventJson(e)) + '\n' : `${String(e.timestamp)} ${String(e.level).padEnd(5)} ${String(e.event_type).padEnd(16)} ${String(e.message)}\n`);
          // --update takes an update id or its first characters (the messages show 8).
          let updateId = values.update;
          if (updateId) {
            const ids = (await listUpdates(floe, loc.eventLog, 1_000_000)).map((u) => u.update_id).filter((id) => id.startsWith(updateId!));
            if (ids.length > 1) throw new FloeError('AMBIGUOUS_UPDATE_ID', `'${updateId}' is the start of ${ids.length} updates' ids (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''}); give more of the id.`);
            if (ids.length === 1) updateId = ids[0]!;
          }
          const evs = await readEvents(floe, loc.eventLog, { limit: limit ?? 100, updateId });
          for (const e of evs) show(e);
          if (!evs.length && !values.follow) process.stderr.write(updateId ? `Pipeline '${loc.name}' has no events of update '${updateId}'.\n` : `Pipeline '${loc.name}' has no events yet.\n`);
          if (values.follow) await followEvents(floe, loc.eventLog, updateId, show, () => process.stderr.write(`Following the event log of '${loc.name}'${updateId ? ` (update ${updateId})` : ''}: new events print as they are committed; Ctrl-C to stop.\n`));
          return 0;
        } finally {
          await floe.close();
        }
      }
      default:
        throw new PipelinesUsageError(`unknown pipelines command '${sub}'`);
    }
  } catch (e) {
    if (e instanceof PipelinesUsageError || String((e as { code?: string }).code ?? '').startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(`error: ${(e as Error).message}\n\n${PIPELINES_USAGE}`);
      return 2;
    }
    if (e instanceof FloeError) {
      process.stderr.write(`error ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

/** Tails an event log (new commits, polled every 500 ms) until SIGINT / SIGTERM. */
async function followEvents(floe: Floe, location: string, updateId: string | undefined, show: (e: Record<string, unknown>) => void, ready: () => void): Promise<void> {
  // Only events after those already there are shown (--limit chose which of those to show).
  const exists = await floe.deltaLog(location).exists();
  let last = exists ? (await floe.snapshot(location)).version : -1;
  const seen = new Set(exists ? (await readEvents(floe, location, { updateId })).map((e) => String(e.id)) : []);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // (From here on every new event is shown: a caller may start writing once it reads this.)
  ready();
  try {
    while (!stop.signal.aborted) {
      if (await floe.deltaLog(location).exists()) {
        const v = (await floe.snapshot(location)).version;
        if (v !== last) {
          for (const e of await readEvents(floe, location, { updateId })) {
            if (seen.has(String(e.id))) continue;
            seen.add(String(e.id));
            show(e);
          }
          last = v;
        }
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          stop.signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, 500);
        stop.signal.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function eventLogLocation(specArg: string | undefined, warehouseArg: string | undefined): Promise<{ name: string; eventLog: string }> {
  const spec = await loadSpec(specArg ?? (await findSpec()));
  const warehouse = resolveWarehouse(warehouseArg ?? spec.warehouse);
  const storage = spec.storage ?? path.join(warehouse, '_pipelines', spec.name);
  return { name: spec.name, eventLog: path.join(storage, 'event_log') };
}

function eventJson(e: PipelineEvent): Record<string, unknown> {
  return { ...e, details: JSON.parse(e.details) as unknown, error: e.error ? (JSON.parse(e.error) as unknown) : null };
}


/** An event read from the event log table in eventJson's shape (what `run --format json` prints). */
function storedEventJson(e: Record<string, unknown>): Record<string, unknown> {
  const seq = e.sequence as { update_id: string; seq_no: unknown };
  const origin = e.origin as Record<string, unknown>;
  const ev = {
    ...e,
    timestamp: isoTimestamp(String(e.timestamp)),
    sequence: { ...seq, seq_no: Number(seq.seq_no) },
    origin: { ...origin, batch_id: origin.batch_id === null || origin.batch_id === undefined ? null : Number(origin.batch_id) },
  } as unknown as PipelineEvent;
  return eventJson(ev);
}

function humanEvent(e: PipelineEvent): string {
  if (e.event_type === 'flow_definition' || e.event_type === 'create_update') return '';
  const t = e.timestamp.slice(11, 19);
  const mark = e.level === 'ERROR' ? '✗' : e.level === 'WARN' ? '!' : '·';
  return `${t} ${mark} ${e.message}\n`;
}

/** Writes the example project of `floe pipelines init`. */
export async function initProject(name: string, parent = process.cwd(), options: { sql?: boolean } = {}): Promise<string> {
  const dir = path.resolve(parent, name);
  try {
    const existing = await fs.readdir(dir);
    if (existing.length) throw new FloeError('PATH_ALREADY_EXISTS', `${dir} exists and is not empty; choose another NAME.`, { path: dir });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fs.mkdir(path.join(dir, 'transformations'), { recursive: true });
  await fs.mkdir(path.join(dir, 'landing'), { recursive: true });
  await fs.writeFile(
    path.join(dir, 'pipeline.yml'),
    `# A floe declarative pipeline (Spark Declarative Pipelines spec format).
name: ${name.replace(/-/g, '_')}
schema: default
warehouse: ./warehouse        # floe: where the tables live (query them with floe sql --warehouse ./warehouse)
libraries:
  - glob:
      include: transformations/**
configuration:
  landing: ./landing          # ${options.sql ? "read in SQL as '${landing}'" : "read in definitions with ctx.conf('landing')"}
`,
  );
  if (options.sql) await fs.writeFile(path.join(dir, 'transformations', 'orders.sql'), SQL_EXAMPLE);
  else await fs.writeFile(
    path.join(dir, 'transformations', 'orders.mjs'),
    `// Datasets of the pipeline. The default export is a function receiving the pipeline builder
// (or definePipeline((p) => { ... }) when the floe package is installed in the project).
// Expectations are plain objects: { name, condition, action: 'warn' | 'drop' | 'fail' }.
export default function (p) {
  // Bronze: every JSON file landing in ./landing, each file once.
  p.table({
    name: 'bronze_orders',
    comment: 'Raw order events as landed.',
    query: (ctx) => ctx.readStreamFiles(ctx.conf('landing'), { format: 'json' }),
    expectations: [{ name: 'valid_order_id', condition: 'order_id IS NOT NULL', action: 'drop' }],
  });

  // Silver: the current state of each order, from its change events (AUTO CDC, SCD type 1).
  p.createStreamingTable('silver_orders', { comment: 'Current orders.' });
  p.createAutoCdcFlow({
    target: 'silver_orders',
    source: 'bronze_orders',
    keys: ['order_id'],
    sequenceBy: 'seq',
    applyAsDeletes: "op = 'DELETE'",
    exceptColumnList: ['op', 'seq'],
  });

  // Gold: a materialized view, recomputed on each update.
  p.materializedView({
    name: 'gold_orders_by_status',
    query: (ctx) => ctx.sql('SELECT status, count(*) AS orders, sum(amount) AS amount FROM s GROUP BY status ORDER BY status', { s: ctx.read('silver_orders') }),
  });
}
`,
  );
  const events = [
    { order_id: 1, status: 'NEW', amount: 10.5, op: 'UPSERT', seq: 1 },
    { order_id: 2, status: 'NEW', amount: 20.0, op: 'UPSERT', seq: 2 },
    { order_id: 1, status: 'SHIPPED', amount: 10.5, op: 'UPSERT', seq: 3 },
    { order_id: 3, status: 'NEW', amount: 7.25, op: 'UPSERT', seq: 4 },
    { order_id: 2, status: 'NEW', amount: 20.0, op: 'DELETE', seq: 5 },
    { order_id: null, status: 'NEW', amount: 1.0, op: 'UPSERT', seq: 6 },
  ];
  await fs.writeFile(path.join(dir, 'landing', 'orders-0001.json'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await fs.writeFile(path.join(dir, 'README.md'), `# ${name}\n\nA floe pipeline: landing JSON files -> bronze_orders -> silver_orders (AUTO CDC) -> gold_orders_by_status.\n\n    floe pipelines validate\n    floe pipelines run\n    floe sql --warehouse ./warehouse -e "SELECT * FROM gold_orders_by_status"\n    floe pipelines status\n    floe pipelines events --limit 20\n\nDrop more JSON files into ./landing and run again: only the new files are processed.\n`);
  return dir;
}

/** The SQL version of the init example (Databricks pipeline SQL; runs unchanged on Databricks). */
export const SQL_EXAMPLE = `-- Datasets of the pipeline, in Databricks pipeline SQL. \${landing} is the spec's configuration value.

-- Bronze: every JSON file landing in the folder, each file once.
CREATE OR REFRESH STREAMING TABLE bronze_orders (
  CONSTRAINT valid_order_id EXPECT (order_id IS NOT NULL) ON VIOLATION DROP ROW
)
COMMENT 'Raw order events as landed.'
AS SELECT * FROM STREAM read_files('\${landing}', format => 'json');

-- Silver: the current state of each order, from its change events (AUTO CDC, SCD type 1).
CREATE OR REFRESH STREAMING TABLE silver_orders
COMMENT 'Current orders.';

CREATE FLOW silver_orders_cdc AS AUTO CDC INTO silver_orders
FROM STREAM(bronze_orders)
KEYS (order_id)
APPLY AS DELETE WHEN op = 'DELETE'
SEQUENCE BY seq
COLUMNS * EXCEPT (op, seq)
STORED AS SCD TYPE 1;

-- Gold: a materialized view, recomputed on each update.
CREATE OR REFRESH MATERIALIZED VIEW gold_orders_by_status AS
SELECT status, count(*) AS orders, sum(amount) AS amount
FROM silver_orders
GROUP BY status
ORDER BY status;
`;
