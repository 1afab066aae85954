/**
 * The conformance corpus in ../shared/conformance (read in place, never copied): discovery of its
 * tables and the check of each against Spark's expected results.
 */
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quoteIdent, quoteString } from '../core/schema.js';
import { FloeError } from '../errors.js';
import type { Floe } from '../floe.js';

/** `../shared/conformance` beside the project, or FLOE_CONFORMANCE_DIR. Null when absent. */
export function corpusDir(): string | null {
  const env = process.env.FLOE_CONFORMANCE_DIR;
  if (env) return existsSync(env) ? env : null;
  const here = path.dirname(fileURLToPath(import.meta.url)); // dist/conformance
  const dir = path.resolve(here, '../../../shared/conformance');
  return existsSync(dir) ? dir : null;
}

export type Outcome = 'passed' | 'failed' | 'unsupported' | 'clear-error';

export interface CaseResult {
  folder: string;
  table: string;
  check: string;
  outcome: Outcome;
  detail: string;
}

/** Tables whose data files are absent by design (INDEX.md ⚠): log replay only. */
function logOnlyTables(dir: string): Set<string> {
  const idx = readFileSync(path.join(dir, 'INDEX.md'), 'utf8');
  const out = new Set<string>();
  for (const line of idx.split('\n')) {
    if (!line.includes('⚠')) continue;
    const m = /^\|\s*`([^`]+)`/.exec(line);
    if (m) out.add(m[1]!.replace(/\/$/, ''));
  }
  return out;
}

/** Every folder under `dir` that holds a `_delta_log` (the folder itself is the table). */
async function findTables(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  if (entries.some((e) => e.name === '_delta_log' && e.isDirectory())) return [rel];
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('_') || e.name === 'expected') continue;
    out.push(...(await findTables(dir, rel ? `${rel}/${e.name}` : e.name)));
  }
  return out;
}

/**
 * Compares a query's rows with the rows of expected Parquet files as multisets. Our columns are cast
 * to the expected file's types (timestamps with and without zone compare as UTC instants), then rows
 * are compared as JSON text with EXCEPT ALL in both directions.
 */
export async function compareWithExpected(floe: Floe, actualSql: string, expectedGlob: string): Promise<string | null> {
  const e = floe.engine;
  const exp = `read_parquet(${quoteString(expectedGlob)})`;
  const expCols = await e.describe(`SELECT * FROM ${exp}`);
  const actCols = await e.describe(actualSql);
  const actByLower = new Map(actCols.map((c) => [c.name.toLowerCase(), c]));
  const missing = expCols.filter((c) => !actByLower.has(c.name.toLowerCase())).map((c) => c.name);
  const extra = actCols.filter((c) => !expCols.some((x) => x.name.toLowerCase() === c.name.toLowerCase())).map((c) => c.name);
  if (missing.length || extra.length) return `columns differ: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`;
  const norm = (c: { name: string; type: string }, src: 'a' | 'e'): string => {
    const ident = quoteIdent(src === 'a' ? actByLower.get(c.name.toLowerCase())!.name : c.name);
    const t = c.type.toUpperCase();
    if (t.startsWith('TIMESTAMP')) return `CAST(${ident} AS TIMESTAMPTZ)`;
    return src === 'a' ? `CAST(${ident} AS ${c.type})` : ident;
  };
  const row = (src: 'a' | 'e'): string => `to_json(struct_pack(${expCols.map((c) => `${quoteIdent(c.name)} := ${norm(c, src)}`).join(', ')}))`;
  const sql = `WITH a AS (SELECT ${row('a')} AS r FROM (${actualSql})), x AS (SELECT ${row('e')} AS r FROM ${exp})
    SELECT (SELECT count(*) FROM a) AS na, (SELECT count(*) FROM x) AS nx,
           (SELECT count(*) FROM (SELECT r FROM a EXCEPT ALL SELECT r FROM x)) AS only_a,
           (SELECT count(*) FROM (SELECT r FROM x EXCEPT ALL SELECT r FROM a)) AS only_x,
           (SELECT first(r) FROM (SELECT r FROM a EXCEPT ALL SELECT r FROM x)) AS ex_a,
           (SELECT first(r) FROM (SELECT r FROM x EXCEPT ALL SELECT r FROM a)) AS ex_x`;
  const [res] = await e.allJson(sql);
  const r = res!;
  if (Number(r.only_a) === 0 && Number(r.only_x) === 0) return null;
  return `rows differ: floe ${r.na} rows, expected ${r.nx}; ${r.only_a} only in floe (e.g. ${r.ex_a}), ${r.only_x} only in expected (e.g. ${r.ex_x})`;
}

function describeError(e: unknown): string {
  return e instanceof FloeError ? `${e.code}: ${e.message.slice(0, 300)}` : String((e as Error)?.message ?? e).slice(0, 300);
}

/** Errors that are a correct, clear answer for a table floe must refuse. */
function isClearRefusal(e: unknown): boolean {
  return e instanceof FloeError && !['FLOE_ENGINE_ERROR', 'FLOE_SQL_ERROR'].includes(e.code);
}

async function checkDatCase(floe: Floe, dir: string, caseName: string): Promise<CaseResult[]> {
  const base = path.join(dir, 'dat', caseName);
  const table = path.join(base, 'delta');
  const out: CaseResult[] = [];
  const versions = (await fs.readdir(path.join(base, 'expected'))).sort();
  for (const v of versions) {
    const meta = JSON.parse(await fs.readFile(path.join(base, 'expected', v, 'table_version_metadata.json'), 'utf8')) as { version: number };
    const check = `version ${v}`;
    try {
      const df = await floe.read.delta(table, v === 'latest' ? {} : { versionAsOf: meta.version });
      const snap = (df.plan as { snapshot: { version: number } }).snapshot;
      if (snap.version !== meta.version) {
        out.push({ folder: 'dat', table: caseName, check, outcome: 'failed', detail: `read version ${snap.version}, expected ${meta.version}` });
        continue;
      }
      const diff = await compareWithExpected(floe, await df.toSQL(), path.join(base, 'expected', v, 'table_content', '*.parquet'));
      out.push({ folder: 'dat', table: caseName, check, outcome: diff ? 'failed' : 'passed', detail: diff ?? '' });
    } catch (e) {
      out.push({ folder: 'dat', table: caseName, check, outcome: e instanceof FloeError && e.code === 'DELTA_UNSUPPORTED_FEATURES_FOR_READ' ? 'unsupported' : 'failed', detail: describeError(e) });
    }
  }
  return out;
}

/** Reads a table and checks the row count against the log's stats (numRecords minus DV cardinality). */
async function checkOpens(floe: Floe, dir: string, rel: string, logOnly: boolean, folder: string): Promise<CaseResult> {
  const table = path.join(dir, rel);
  // Deliberately broken fixtures. The spark-test-resources DV tables name their DV files with a
  // Spark test-only prefix ('test%dv%prefix-') or a '{{FOLDER_WITH_SPECIAL_CHAR}}' placeholder that
  // Spark's test harness substitutes, so by the protocol their DV files are missing.
  const broken = rel.includes('data_err_logs') || /versions-not-contiguous|invalid-protocol|without-protocol|missing-protocol|no-delta-log-folder/.test(rel)
    || (rel.startsWith('delta-spark/spark-test-resources/') && rel.includes('-dv-'))
    // A crc-parsing fixture whose .crc lists 10 files while its only commit adds none: the log and its
    // checksum disagree, so floe refuses it (DELTA_LOG_CORRUPT) rather than pick one.
    || rel === 'kernel-rs/data/crc-full';
  try {
    const snap = await floe.snapshot(table);
    if (logOnly) return { folder, table: rel, check: 'log replay', outcome: 'passed', detail: `version ${snap.version}, ${snap.files.length} files (data files absent by design)` };
    const df = await floe.read.delta(table);
    const n = await df.count();
    const expected = snap.numRecordsFromStats;
    if (expected !== null && expected !== n) return { folder, table: rel, check: 'row count', outcome: 'failed', detail: `read ${n} rows, stats say ${expected}` };
    return { folder, table: rel, check: 'read', outcome: 'passed', detail: `version ${snap.version}, ${n} rows${expected === null ? ' (no stats to compare)' : ' = stats'}` };
  } catch (e) {
    if (e instanceof FloeError && e.code === 'DELTA_UNSUPPORTED_FEATURES_FOR_READ') return { folder, table: rel, check: 'read', outcome: 'unsupported', detail: describeError(e) };
    if (broken && isClearRefusal(e)) return { folder, table: rel, check: 'read', outcome: 'clear-error', detail: describeError(e) };
    return { folder, table: rel, check: 'read', outcome: 'failed', detail: describeError(e) };
  }
}

async function checkGolden(floe: Floe, dir: string, name: string): Promise<CaseResult> {
  const table = path.join(dir, 'kernel-rs/golden', name, 'delta');
  try {
    const df = await floe.read.delta(table);
    const diff = await compareWithExpected(floe, await df.toSQL(), path.join(dir, 'kernel-rs/golden', name, 'expected', '**', '*.parquet'));
    return { folder: 'kernel-rs/golden', table: name, check: 'latest snapshot', outcome: diff ? 'failed' : 'passed', detail: diff ?? '' };
  } catch (e) {
    if (e instanceof FloeError && e.code === 'DELTA_UNSUPPORTED_FEATURES_FOR_READ') return { folder: 'kernel-rs/golden', table: name, check: 'latest snapshot', outcome: 'unsupported', detail: describeError(e) };
    return { folder: 'kernel-rs/golden', table: name, check: 'latest snapshot', outcome: 'failed', detail: describeError(e) };
  }
}

interface CdfEntry {
  repo: string;
  test_fn: string;
  tables: string[];
  read_cdf_calls: { table: string; start_version: string; end_version: string }[];
  builder_calls: string[];
  timestamp_vars: Record<string, string>;
  sql: string[];
  expected: { columns: string[]; rows: string[][] }[];
}

/** Options of one upstream CDF test, from its recorded builder calls. */
function cdfOptions(e: CdfEntry): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const ts = (arg: string): string => {
    const name = /^\(?\s*([a-z_]+)/.exec(arg)?.[1] ?? '';
    const v = e.timestamp_vars[name] ?? '';
    return v.replace(/\s*\(UTC\)$/, 'Z');
  };
  for (const c of e.read_cdf_calls) {
    if (c.start_version !== 'None') o.startingVersion = Number(c.start_version);
    if (c.end_version !== 'None') o.endingVersion = Number(c.end_version);
  }
  for (const b of e.builder_calls) {
    const m = /^\.with_(starting|ending)_(version|timestamp)\((.*)$/.exec(b);
    if (!m) continue;
    const key = `${m[1]}${m[2] === 'version' ? 'Version' : 'Timestamp'}`;
    o[key] = m[2] === 'version' ? Number(m[3]!.replace(/\).*$/, '')) : ts(m[3]!);
  }
  return o;
}

/** Every block of CDF_EXPECTED.json: floe's change feed equals the upstream test's rows (as strings, any order). */
async function checkCdfExpected(floe: Floe, dir: string, match: (s: string) => boolean): Promise<CaseResult[]> {
  const entries = JSON.parse(readFileSync(path.join(dir, 'CDF_EXPECTED.json'), 'utf8')) as CdfEntry[];
  const out: CaseResult[] = [];
  for (const e of entries) {
    const folder = e.repo.endsWith('kernel-rs') ? 'kernel-rs/data' : 'delta-rs';
    const table = path.join(dir, folder, e.tables[0]!);
    const name = `${e.test_fn} (${folder}/${e.tables[0]})`;
    if (!match(name) && !match('CDF_EXPECTED')) continue;
    const options = cdfOptions(e);
    for (const [i, exp] of e.expected.entries()) {
      const check = `CDF_EXPECTED block ${i + 1} ${JSON.stringify(options)}`;
      try {
        const df = await floe.read.changes(table, options);
        const base = await df.toSQL();
        const query = e.sql[i] ? e.sql[i]!.replace(/\bFROM\s+cdf\b/i, `FROM (${base}) cdf`) : `SELECT * FROM (${base})`;
        const types = new Map((await floe.engine.describe(query)).map((c) => [c.name, c.type]));
        const cols = exp.columns.map((c) => {
          const t = types.get(c);
          if (t === undefined) throw new Error(`column ${c} missing from the feed`);
          return t.startsWith('TIMESTAMP') ? `strftime(${quoteIdent(c)}, '%Y-%m-%dT%H:%M:%S.%g')` : `CAST(${quoteIdent(c)} AS VARCHAR)`;
        });
        const rows = await floe.engine.allJson(`SELECT ${cols.map((c, j) => `${c} AS c${j}`).join(', ')} FROM (${query})`);
        const got = rows.map((r) => exp.columns.map((_, j) => (r[`c${j}`] === null ? 'NULL' : String(r[`c${j}`]))).join('\u001f')).sort();
        const want = exp.rows.map((r) => r.join('\u001f')).sort();
        const onlyGot = got.filter((g) => !want.includes(g));
        const onlyWant = want.filter((w) => !got.includes(w));
        const same = got.length === want.length && onlyGot.length === 0 && onlyWant.length === 0;
        out.push({ folder: 'CDF_EXPECTED', table: name, check, outcome: same ? 'passed' : 'failed', detail: same ? `${got.length} rows` : `floe ${got.length} rows, expected ${want.length}; only floe: ${onlyGot.slice(0, 3).join(' | ')}; only expected: ${onlyWant.slice(0, 3).join(' | ')}` });
      } catch (err) {
        out.push({ folder: 'CDF_EXPECTED', table: name, check, outcome: 'failed', detail: describeError(err) });
      }
    }
  }
  return out;
}

/** Runs every check of the corpus. `only` filters table paths by substring. */
export async function runCorpus(floe: Floe, dir: string, only?: string): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const logOnly = logOnlyTables(dir);
  const match = (s: string): boolean => !only || s.includes(only);
  // DAT: every version's expected content.
  for (const c of (await fs.readdir(path.join(dir, 'dat'))).sort()) {
    if (c.startsWith('_') || !match(`dat/${c}`)) continue;
    results.push(...(await checkDatCase(floe, dir, c)));
  }
  // kernel-rs golden tables with expected/.
  const golden = path.join(dir, 'kernel-rs/golden');
  const goldenDone = new Set<string>();
  for (const g of (await fs.readdir(golden)).sort()) {
    if (g.startsWith('_')) continue;
    if (existsSync(path.join(golden, g, 'expected')) && existsSync(path.join(golden, g, 'delta'))) {
      goldenDone.add(`kernel-rs/golden/${g}/delta`);
      if (match(`kernel-rs/golden/${g}`)) results.push(await checkGolden(floe, dir, g));
    }
  }
  // The change data feed: every asserted upstream block.
  if (existsSync(path.join(dir, 'CDF_EXPECTED.json'))) results.push(...(await checkCdfExpected(floe, dir, match)));
  // Everything else opens and reads, or fails clearly.
  for (const folder of ['kernel-rs/golden', 'kernel-rs/data', 'delta-rs', 'delta-spark']) {
    const tables = (await findTables(path.join(dir, folder))).map((t) => `${folder}/${t}`).sort();
    if (folder === 'kernel-rs/golden') {
      for (const g of await fs.readdir(golden)) if (!g.startsWith('_') && !existsSync(path.join(golden, g, 'delta', '_delta_log')) && !existsSync(path.join(golden, g, 'expected'))) tables.push(`kernel-rs/golden/${g}/delta`);
    }
    for (const t of tables) {
      if (goldenDone.has(t) || !match(t)) continue;
      results.push(await checkOpens(floe, dir, t, logOnly.has(t), folder));
    }
  }
  return results;
}

/** Per-folder counts and the list of failures, as printed by `npm run conformance`. */
export function formatReport(results: CaseResult[]): string {
  const folders = [...new Set(results.map((r) => r.folder))];
  const lines = ['folder                 passed  failed  unsupported  clear-error'];
  for (const f of folders) {
    const rs = results.filter((r) => r.folder === f);
    const n = (o: Outcome): number => rs.filter((r) => r.outcome === o).length;
    lines.push(`${f.padEnd(22)} ${String(n('passed')).padStart(6)}  ${String(n('failed')).padStart(6)}  ${String(n('unsupported')).padStart(11)}  ${String(n('clear-error')).padStart(11)}`);
  }
  const t = (o: Outcome): number => results.filter((r) => r.outcome === o).length;
  lines.push(`${'total'.padEnd(22)} ${String(t('passed')).padStart(6)}  ${String(t('failed')).padStart(6)}  ${String(t('unsupported')).padStart(11)}  ${String(t('clear-error')).padStart(11)}`);
  const show = (o: Outcome, title: string): void => {
    const rs = results.filter((r) => r.outcome === o);
    if (!rs.length) return;
    lines.push('', title);
    for (const r of rs) lines.push(`  ${r.folder === 'dat' ? 'dat/' : r.folder === 'kernel-rs/golden' && !r.table.includes('/') ? 'kernel-rs/golden/' : ''}${r.table} [${r.check}]: ${r.detail}`);
  };
  show('failed', 'FAILED:');
  show('unsupported', 'Unsupported (refused with a clear error naming the feature):');
  show('clear-error', 'Deliberately broken logs (refused with a clear error):');
  return lines.join('\n') + '\n';
}
