#!/usr/bin/env node
/**
 * The `floe` command. Machine-readable output (`--format json`) is part of the interface; errors go
 * to stderr as `error [CODE] message` with a non-zero exit status.
 */
import { parseArgs } from 'node:util';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { formatTable } from '../dataframe.js';
import { FloeError } from '../errors.js';
import { sqlCommand } from './sql.js';
import { pipelinesCommand } from './pipelines.js';
import { UiUsageError, uiCommand } from '../ui/cli.js';
import { startProgress } from './progress.js';

const USAGE = `floe: Delta Lake tables, the change data feed and CDC pipelines

Usage:
  floe describe PATH [--version N | --timestamp T] [--format json|table]
  floe history PATH [--limit N] [--format json|table]
  floe show PATH [--version N | --timestamp T] [--where SQL] [--limit N] [--format table|csv|json]
  floe write PATH --from FILE [--mode append|overwrite|error|ignore] [--partition-by a,b]
             [--merge-schema] [--replace-where SQL] [--txn-app-id ID --txn-version N] [--format json|table]
  floe changes PATH --from V|TIMESTAMP [--to V|TIMESTAMP] [--where SQL] [--limit N] [--format table|csv|json]
  floe checkpoint PATH
  floe optimize PATH [--where PARTITION_PREDICATE] [--zorder-by COL,COL] [--format json|table]
  floe vacuum PATH [--retain HOURS] [--dry-run] [--format json|table]
  floe restore PATH --version N | --timestamp T [--format json|table]
  floe sql [-e "SQL;…" | -f FILE.sql] [--warehouse DIR] [--format table|csv|json]   (a REPL without -e/-f)
  floe pipelines init|validate|dry-run|run|status|events …   (floe pipelines help)
  floe ui [--warehouse DIR] [--port N] [--host H] [--token T]   the monitoring page (floe ui --help)
  floe help

write, checkpoint, optimize, vacuum and restore show progress on stderr (a live line on a terminal, else
structured lines 'floe: op=… phase=start|done …'); --json means --format json; --quiet prints nothing on success.

Exit status: 0 success, 1 error (message on stderr), 2 usage error.
`;

class UsageError extends Error {}

function out(s: string): void {
  process.stdout.write(s);
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function intOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} needs a non-negative integer, got '${v}'`);
  return Number(v);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === 'sql') return sqlCommand(rest);
  if (cmd === 'pipelines') return pipelinesCommand(rest);
  if (cmd === 'ui') return uiCommand(rest);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      version: { type: 'string' },
      timestamp: { type: 'string' },
      limit: { type: 'string' },
      format: { type: 'string' },
      where: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      mode: { type: 'string' },
      'partition-by': { type: 'string' },
      'merge-schema': { type: 'boolean' },
      'replace-where': { type: 'string' },
      'txn-app-id': { type: 'string' },
      'txn-version': { type: 'string' },
      retain: { type: 'string' },
      'dry-run': { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      json: { type: 'boolean' },
      'zorder-by': { type: 'string' },
    },
  });
  if (values.json && values.format !== undefined && values.format !== 'json') throw new UsageError(`--json and --format ${values.format} disagree; give one`);
  const format = values.json ? 'json' : values.format ?? (cmd === 'show' ? 'table' : 'table');
  const quiet = values.quiet === true;
  /** Long work with progress on stderr (see progress.ts); --quiet prints nothing on success. */
  const long = async <T>(what: () => Promise<T>, fields: (r: T) => Record<string, string | number | boolean | null> = () => ({})): Promise<T> => {
    const p = startProgress(cmd, path!, { quiet, json: format === 'json' });
    try {
      const r = await what();
      p.end(true, fields(r));
      return r;
    } catch (e) {
      p.end(false);
      throw e;
    }
  };
  const result = (s: string): void => {
    if (!quiet) out(s);
  };
  if (!['json', 'table', 'csv'].includes(format)) throw new UsageError(`--format must be json, table or csv, got '${format}'`);
  if (format === 'csv' && !['show', 'changes'].includes(cmd)) throw new UsageError(`--format csv applies to show and changes; use json or table for ${cmd}`);
  const path = positionals[0];
  if (!path) throw new UsageError(`floe ${cmd} needs a table PATH`);
  const travel = { versionAsOf: intOpt(values.version, 'version'), timestampAsOf: values.timestamp };
  const floe = await Floe.create();
  try {
    switch (cmd) {
      case 'describe': {
        const t = await DeltaTable.forPath(floe, path);
        const d = await t.detail(travel);
        if (format === 'json') out(JSON.stringify(d, null, 2) + '\n');
        else out(Object.entries(d).map(([k, v]) => `${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n') + '\n');
        return 0;
      }
      case 'history': {
        const t = await DeltaTable.forPath(floe, path);
        const h = await t.history(intOpt(values.limit, 'limit'));
        if (format === 'json') out(JSON.stringify(h, null, 2) + '\n');
        else {
          const rows = h.map((e) => ({ version: e.version, timestamp: e.timestamp, operation: e.operation, operationParameters: e.operationParameters, engineInfo: e.engineInfo }));
          out(formatTable(['version', 'timestamp', 'operation', 'operationParameters', 'engineInfo'], rows));
        }
        return 0;
      }
      case 'show':
      case 'changes': {
        let df;
        if (cmd === 'changes') {
          if (!values.from) throw new UsageError('floe changes needs --from VERSION or --from TIMESTAMP');
          const bound = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
          const from = bound(values.from);
          const to = values.to === undefined ? undefined : bound(values.to);
          df = await floe.read.changes(path, {
            ...(typeof from === 'number' ? { startingVersion: from } : { startingTimestamp: from }),
            ...(to === undefined ? {} : typeof to === 'number' ? { endingVersion: to } : { endingTimestamp: to }),
          });
          df = df.orderBy('_commit_version', "CASE _change_type WHEN 'delete' THEN 0 WHEN 'update_preimage' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END");
        } else df = await floe.read.delta(path, travel);
        if (values.where) df = df.filter(values.where);
        const limit = intOpt(values.limit, 'limit');
        if (limit !== undefined) df = df.limit(limit);
        else if (format === 'table') df = df.limit(20);
        if (format === 'table') {
          out(await df.tableText());
          return 0;
        }
        const cols = (await df.columns()).map((c) => c.name);
        const rows = await df.toJSON();
        if (format === 'json') out(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
        else out([cols.map(csvCell).join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n');
        return 0;
      }
      case 'write': {
        if (!values.from) throw new UsageError('floe write needs --from FILE (CSV, JSON or Parquet)');
        const src = values.from;
        const df = /\.parquet$/i.test(src) ? floe.read.parquet(src) : /\.(json|ndjson|jsonl)$/i.test(src) ? floe.read.json(src) : /\.(csv|tsv|txt)$/i.test(src) ? floe.read.csv(src) : null;
        if (!df) throw new UsageError(`cannot tell the format of ${src}: name it .csv, .json/.ndjson or .parquet`);
        const mode = values.mode ?? 'append';
        if (!['append', 'overwrite', 'error', 'errorifexists', 'ignore'].includes(mode)) throw new UsageError(`--mode must be append, overwrite, error or ignore, got '${mode}'`);
        const r = await long(() => df.write.delta(path, {
          mode: mode as 'append',
          partitionBy: values['partition-by'] ? values['partition-by'].split(',').map((s) => s.trim()).filter(Boolean) : undefined,
          mergeSchema: values['merge-schema'],
          replaceWhere: values['replace-where'],
          txnAppId: values['txn-app-id'],
          txnVersion: intOpt(values['txn-version'], 'txn-version'),
        }), (w) => ({ version: w.version ?? null, rows: w.numOutputRows ?? null, files: w.numFiles ?? null }));
        if (format === 'json') result(JSON.stringify(r) + '\n');
        else result(r.skipped ? 'nothing written (table exists and mode is ignore, or this txn version was already written)\n' : `wrote version ${r.version}: ${r.numOutputRows} rows in ${r.numFiles} files${r.numRemovedFiles ? `, removed ${r.numRemovedFiles} files` : ''}\n`);
        return 0;
      }
      case 'checkpoint': {
        const t = await DeltaTable.forPath(floe, path);
        const r = await long(() => t.checkpoint(), (c) => ({ version: c.version }));
        if (format === 'json') result(JSON.stringify(r) + '\n');
        else result(`checkpoint written at version ${r.version}: ${r.path}\n`);
        return 0;
      }
      case 'optimize': {
        const zOrderBy = values['zorder-by'] === undefined ? undefined : values['zorder-by'].split(',').map((c) => c.trim()).filter(Boolean);
        if (zOrderBy && !zOrderBy.length) throw new UsageError('--zorder-by needs column names, e.g. --zorder-by a,b');
        const t = await DeltaTable.forPath(floe, path);
        const r = await long(() => t.optimize({ where: values.where, zOrderBy }), (o) => ({ version: o.version, files_removed: o.metrics.numFilesRemoved, files_added: o.metrics.numFilesAdded }));
        const done = zOrderBy ? `z-ordered ${r.metrics.numFilesRemoved} files by ${zOrderBy.join(', ')} into ${r.metrics.numFilesAdded}` : `compacted ${r.metrics.numFilesRemoved} files into ${r.metrics.numFilesAdded}`;
        result(format === 'json' ? JSON.stringify(r) + '\n' : r.version === null ? 'nothing to compact\n' : `version ${r.version}: ${done}\n`);
        return 0;
      }
      case 'vacuum': {
        const retain = values.retain === undefined ? undefined : Number(values.retain);
        if (retain !== undefined && !(retain >= 0)) throw new UsageError(`--retain needs a number of hours, got '${values.retain}'`);
        const t = await DeltaTable.forPath(floe, path);
        const r = await long(() => t.vacuum(retain, { dryRun: values['dry-run'] }), (v) => ({ files: v.filesDeleted.length, dry_run: v.dryRun }));
        if (format === 'json') result(JSON.stringify(r) + '\n');
        else result(`${r.dryRun ? 'would delete' : 'deleted'} ${r.filesDeleted.length} files (retention ${r.retentionHours} hours)\n${r.filesDeleted.map((f) => `  ${f}\n`).join('')}`);
        return 0;
      }
      case 'restore': {
        if (travel.versionAsOf === undefined && travel.timestampAsOf === undefined) throw new UsageError('floe restore needs --version N or --timestamp T');
        const t = await DeltaTable.forPath(floe, path);
        const r = await long(() => (travel.versionAsOf !== undefined ? t.restoreToVersion(travel.versionAsOf) : t.restoreToTimestamp(travel.timestampAsOf!)), (x) => ({ version: x.version }));
        result(format === 'json' ? JSON.stringify(r) + '\n' : `restored as version ${r.version}: ${r.metrics.numRestoredFiles} files restored, ${r.metrics.numRemovedFiles} removed\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } finally {
    await floe.close();
  }
}

// A closed pipe (`floe show … | head`) ends output quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof UiUsageError || String((e as { code?: string }).code ?? '').startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(`error: ${(e as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (e instanceof FloeError) {
      process.stderr.write(`error ${e.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
