/**
 * `floe sql`: `-e "…"` (one or several statements), `-f file.sql`, or a REPL when stdin is a terminal
 * (statements end with `;`, `.help`, `.quit`, timing, history). Piped stdin runs as a script.
 * `--warehouse DIR`, `--config FILE` (default `./floe.config.json` when present: the warehouse and
 * session settings), `--format table|csv|json` (csv with a header row, json one object per line);
 * the last statement's result is printed; errors go to stderr with exit status 1. On a terminal,
 * a statement running longer than a second shows a progress line on stderr.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { chooseWarehouse, loadWarehouseConfig } from '../catalog/config-file.js';
import { parseArgs } from 'node:util';
import { formatTable } from '../dataframe.js';
import { FloeError } from '../errors.js';
import { Floe } from '../floe.js';
import { endsStatement } from '../sql/lexer.js';
import { executeSql, type SqlResult } from '../sql/executor.js';

export const SQL_USAGE = `Usage:
  floe sql -e "STATEMENT; …" [--warehouse DIR] [--config FILE] [--format table|csv|json]
  floe sql -f FILE.sql [--warehouse DIR] [--config FILE] [--format table|csv|json]
  floe sql [--warehouse DIR] [--config FILE]   (interactive when stdin is a terminal; else runs stdin)

The warehouse is --warehouse, else FLOE_WAREHOUSE, else "warehouse" in the config file, else
./floe-warehouse. The config file (--config FILE, else ./floe.config.json when present) is JSON:
  {"warehouse": "./wh", "settings": {"spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true"}}
Its settings are the session's defaults (as SET; RESET returns to them).
`;

type Format = 'table' | 'csv' | 'json';

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function jsonSafe(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
}

/** Renders a result in a format. */
export async function renderResult(r: SqlResult, format: Format): Promise<string> {
  let cols: string[];
  let rows: Record<string, unknown>[];
  if (r.kind === 'rows') {
    if (format === 'table') return r.dataFrame.tableText();
    cols = (await r.dataFrame.columns()).map((c) => c.name);
    rows = await r.dataFrame.toJSON();
  } else if (r.rows) {
    rows = r.rows.map((x) => jsonSafe(x) as Record<string, unknown>);
    cols = rows.length ? Object.keys(rows[0]!) : [];
    if (!rows.length && format === 'table') return `${r.message}\n`;
  } else {
    if (format === 'table') return `${r.message}\n`;
    cols = ['status'];
    rows = [{ status: r.message }];
  }
  if (format === 'json') return rows.map((x) => JSON.stringify(x)).join('\n') + (rows.length ? '\n' : '');
  if (format === 'csv') return [cols.map(csvCell).join(','), ...rows.map((x) => cols.map((c) => csvCell(x[c])).join(','))].join('\n') + '\n';
  return formatTable(cols, rows);
}

class SqlUsageError extends Error {}

/** `floe sql …`; returns the exit status. */
export async function sqlCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        execute: { type: 'string', short: 'e' },
        file: { type: 'string', short: 'f' },
        warehouse: { type: 'string', short: 'w' },
        config: { type: 'string', short: 'c' },
        format: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      process.stdout.write(SQL_USAGE);
      return 0;
    }
    if (values.execute !== undefined && values.file !== undefined) throw new SqlUsageError('give either -e or -f, not both');
    if (values.format !== undefined && !['table', 'csv', 'json'].includes(values.format)) throw new SqlUsageError(`--format must be table, csv or json, got '${values.format}'`);
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n\n${SQL_USAGE}`);
    return 2;
  }
  const format = (values.format ?? 'table') as Format;
  let script: string | undefined = values.execute;
  if (values.file !== undefined) {
    try {
      script = await fs.readFile(values.file, 'utf8');
    } catch (e) {
      process.stderr.write(`error: cannot read ${values.file}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  let warehouse: string;
  let settings: Record<string, string>;
  try {
    const config = await loadWarehouseConfig(values.config);
    warehouse = chooseWarehouse(values.warehouse, config);
    settings = config.settings;
  } catch (e) {
    process.stderr.write(errorText(e));
    return 1;
  }
  const floe = await Floe.create({ config: settings });
  try {
    if (script === undefined && process.stdin.isTTY) return await repl(floe, warehouse, format);
    if (script === undefined) script = await readStdin();
    const progress = startProgress(process.stderr);
    try {
      const r = await executeSql(floe, script, { warehouse, onStatement: (i, n, st) => progress.step(n > 1 ? `statement ${i}/${n} (line ${st.at.line})` : 'running') });
      const out = await renderResult(r, format);
      progress.stop();
      process.stdout.write(out);
      return 0;
    } catch (e) {
      progress.stop();
      process.stderr.write(errorText(e));
      return 1;
    }
  } finally {
    await floe.close();
  }
}

export interface Progress {
  /** A new step (statement) starts: its clock restarts. */
  step(label: string): void;
  /** Clears the indicator line, if shown. */
  stop(): void;
}

/**
 * A progress line for long statements: on a terminal only, after a statement has run for a second,
 * `… <label> <n>s` is redrawn every second on the stream (stderr), and cleared when it ends.
 */
export function startProgress(stream: { isTTY?: boolean; write(s: string): unknown }, label = 'running'): Progress {
  if (!stream.isTTY) return { step: () => undefined, stop: () => undefined };
  let started = Date.now();
  let current = label;
  let shown = false;
  const clear = (): void => {
    if (shown) stream.write('\r\x1b[K');
    shown = false;
  };
  const timer = setInterval(() => {
    const secs = Math.floor((Date.now() - started) / 1000);
    if (secs < 1) return;
    stream.write(`\r\x1b[K… ${current} ${secs}s`);
    shown = true;
  }, 250);
  timer.unref();
  return {
    step(l: string) {
      clear();
      started = Date.now();
      current = l;
    },
    stop() {
      clearInterval(timer);
      clear();
    },
  };
}

function errorText(e: unknown): string {
  if (e instanceof FloeError) return `error ${e.message}\n`;
  return `error: ${(e as Error)?.stack ?? String(e)}\n`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const REPL_HELP = `Statements end with ';' and may span lines. Commands:
  .help            this help
  .format FORMAT   table, csv or json
  .timing on|off   print how long each statement took (on by default)
  .quit            leave (or Ctrl-D)
Up/down arrows recall earlier statements (kept in ~/.floe_sql_history, or FLOE_SQL_HISTORY).
A statement running longer than a second shows a progress line; Ctrl-C leaves.
`;

/** The REPL's history file (FLOE_SQL_HISTORY, else ~/.floe_sql_history); lines are statements, newest last. */
function historyFile(): string {
  return process.env.FLOE_SQL_HISTORY ?? path.join(os.homedir(), '.floe_sql_history');
}

async function loadHistory(): Promise<string[]> {
  try {
    return (await fs.readFile(historyFile(), 'utf8')).split('\n').filter(Boolean).slice(-1000).reverse();
  } catch {
    return [];
  }
}

async function repl(floe: Floe, warehouse: string, initial: Format): Promise<number> {
  let format = initial;
  let timing = true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: 'floe> ', historySize: 1000, terminal: true, history: await loadHistory() });
  process.stdout.write(`floe SQL — warehouse ${warehouse}. End statements with ';'. .help for help.\n`);
  let buf = '';
  rl.prompt();
  for await (const line of rl) {
    if (!buf && line.trim().startsWith('.')) {
      const [cmd, arg] = line.trim().split(/\s+/);
      if (cmd === '.quit' || cmd === '.exit') break;
      else if (cmd === '.help') process.stdout.write(REPL_HELP);
      else if (cmd === '.format' && (arg === 'table' || arg === 'csv' || arg === 'json')) format = arg;
      else if (cmd === '.timing') timing = arg !== 'off';
      else process.stdout.write(`unknown command ${line.trim()}; .help lists commands\n`);
      rl.prompt();
      continue;
    }
    buf += (buf ? '\n' : '') + line;
    if (!endsStatement(buf)) {
      if (buf.trim()) rl.setPrompt('  ... ');
      else buf = '';
      rl.prompt();
      continue;
    }
    const text = buf;
    buf = '';
    rl.setPrompt('floe> ');
    const started = Date.now();
    await fs.appendFile(historyFile(), text.replace(/\s*\n\s*/g, ' ') + '\n').catch(() => undefined);
    const progress = startProgress(process.stderr);
    try {
      const r = await executeSql(floe, text, { warehouse });
      const out = await renderResult(r, format);
      progress.stop();
      process.stdout.write(out);
      if (timing) process.stdout.write(`(${((Date.now() - started) / 1000).toFixed(3)} s)\n`);
    } catch (e) {
      progress.stop();
      process.stderr.write(errorText(e));
    }
    rl.prompt();
  }
  rl.close();
  return 0;
}
