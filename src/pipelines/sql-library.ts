/**
 * Pipeline SQL files, as Databricks documents them (Lakeflow / DLT SQL), parsed into the same
 * definitions the JavaScript builder produces:
 *
 * ```sql
 * CREATE OR REFRESH STREAMING TABLE bronze (
 *   CONSTRAINT valid_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW
 * ) COMMENT 'raw' AS SELECT * FROM STREAM read_files('${landing}', format => 'json');
 * CREATE OR REFRESH STREAMING TABLE silver;
 * CREATE FLOW silver_cdc AS AUTO CDC INTO silver FROM STREAM(bronze) KEYS (id)
 *   APPLY AS DELETE WHEN op = 'D' SEQUENCE BY seq COLUMNS * EXCEPT (op, seq) STORED AS SCD TYPE 2;
 * CREATE OR REFRESH MATERIALIZED VIEW gold AS SELECT count(*) AS n FROM silver;
 * ```
 *
 * Statements: `CREATE [OR REFRESH] [PRIVATE|TEMPORARY] STREAMING TABLE` (with an optional column list,
 * `CONSTRAINT … EXPECT (…) [ON VIOLATION DROP ROW | FAIL UPDATE]`, COMMENT, PARTITIONED BY,
 * TBLPROPERTIES, and `AS query` or `FLOW INSERT [ONCE] [BY NAME] query` / `FLOW AUTO CDC …`);
 * `CREATE [OR REFRESH] MATERIALIZED VIEW`; the older `CREATE [OR REFRESH] [STREAMING] LIVE TABLE`;
 * `CREATE [TEMPORARY] [LIVE] VIEW`; `CREATE FLOW f [COMMENT '…'] AS INSERT [ONCE] INTO [ONCE] t BY
 * NAME query`; `CREATE FLOW f AS AUTO CDC INTO t FROM src KEYS (…) …` and the older
 * `APPLY CHANGES INTO [LIVE.]t FROM STREAM(…) …`. `SET key = value` statements are accepted and
 * ignored (configuration comes from the spec).
 *
 * Query bodies are Spark SQL, translated to DuckDB by the floe SQL translator when the file is
 * loaded. Dataset references (`name`, `LIVE.name`, `schema.table`, delta.`/path`) become batch
 * reads (`ctx.read`), `STREAM(name)` / `STREAM name` stream reads (`ctx.readStream`), and
 * `read_files('dir', format => 'json')` / `cloud_files('dir', 'json')` reads of files
 * (`ctx.readStreamFiles` in a streaming table or flow, or with STREAM; `ctx.readFiles` elsewhere).
 * `${key}` is replaced by the spec's configuration value before parsing, as Spark substitutes
 * variables. Errors name the file, line and column.
 */
import { readFile } from 'node:fs/promises';
import { duckType, quoteIdent } from '../core/schema.js';
import type { DataFrame } from '../dataframe.js';
import { FloeError } from '../errors.js';
import { Cursor, RESERVED } from '../sql/cursor.js';
import { analysisErrorAt, parseErrorAt, tokenDesc } from '../sql/errors.js';
import { parseProperties } from '../sql/parser.js';
import { splitStatements, type Token } from '../sql/lexer.js';
import { type TableRef, type TranslateContext, matching, translateExpr, translateQuery } from '../sql/translate.js';
import { parseType, sparkTypeName } from '../sql/types.js';
import type { AutoCdcFlowDefinition, DefineFunction, Expectation, FileFormat, FileReadOptions, PipelineBuilder, QueryContext, QueryFunction } from './definition.js';

export const SQL_PIPELINE_ERROR = 'PIPELINE_SQL_ERROR';

/** A read of the query: a dataset / path / schema.table or a folder of files. */
interface SqlRef {
  alias: string;
  mode: 'batch' | 'stream' | 'files' | 'filesBatch';
  name: string;
  files?: FileReadOptions;
}

/** A translated query and what it reads. */
export interface SqlQuery {
  /** DuckDB SQL over the CTEs named by `refs[].alias`. */
  sql: string;
  refs: SqlRef[];
  /** The query reads a stream (STREAM(…), streamed files). */
  streaming: boolean;
}

interface DeclaredColumn {
  name: string;
  /** DuckDB type. */
  type: string;
  /** Spark SQL type, as declared. */
  sparkType: string;
  nullable: boolean;
}

interface DatasetStmt {
  kind: 'streamingTable' | 'materializedView' | 'view';
  name: string;
  columns: DeclaredColumn[];
  expectations: Expectation[];
  comment?: string;
  partitionBy?: string[];
  properties: Record<string, string>;
  query?: SqlQuery;
  flow?: FlowStmt;
  at: Token;
}

type FlowStmt = { at: Token; name?: string; target: string; comment?: string } & (
  | { kind: 'append'; once: boolean; query: SqlQuery }
  | { kind: 'autoCdc'; cdc: Omit<AutoCdcFlowDefinition, 'target' | 'name'> }
);

type Stmt = { kind: 'dataset'; d: DatasetStmt } | { kind: 'flow'; f: FlowStmt } | { kind: 'set' };

// ---------------------------------------------------------------------------------------------
// Errors

const stripPos = (m: string): string => m.replace(/^\[[A-Z_]+\] /, '').replace(/ \(line \d+, column \d+\)$/, '');

/** Re-raises a SQL error with the file, line and column in front. */
function inFile(e: unknown, file: string, fallback: Token): never {
  if (e instanceof FloeError && e.details.file === file) throw e;
  if (e instanceof FloeError) {
    const line = typeof e.details.line === 'number' ? e.details.line : fallback.line;
    const col = typeof e.details.col === 'number' ? e.details.col : fallback.col;
    throw new FloeError(e.code, `${file}:${line}:${col}: ${stripPos(e.message)}`, { ...e.details, file, line, col }, { cause: e });
  }
  throw new FloeError(SQL_PIPELINE_ERROR, `${file}:${fallback.line}:${fallback.col}: ${(e as Error)?.message ?? String(e)}`, { file, line: fallback.line, col: fallback.col }, { cause: e });
}

function unsupported(t: Token, what: string): never {
  throw analysisErrorAt(t, `${what} is not supported in floe pipeline SQL yet`, { construct: what });
}

// ---------------------------------------------------------------------------------------------
// Variable substitution

/** `${key}` → the configuration value (Spark's variable substitution); unknown keys stay as written. */
export function substituteVariables(text: string, configuration: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z0-9_.\-]+)\}/g, (m, k: string) => (Object.prototype.hasOwnProperty.call(configuration, k) ? configuration[k]! : m));
}

// ---------------------------------------------------------------------------------------------
// Queries

const synthetic = (like: Token, kind: Token['kind'], value: string, ws = true): Token => ({ ...like, kind, text: kind === 'qident' ? quoteIdent(value) : value, value, upper: kind === 'ident' ? value.toUpperCase() : '', ws });

const isKw = (t: Token | undefined, w: string): boolean => !!t && t.kind === 'ident' && t.upper === w;
const isOp = (t: Token | undefined, o: string): boolean => !!t && t.kind === 'op' && t.text === o;
const isName = (t: Token | undefined): boolean => !!t && (t.kind === 'ident' || t.kind === 'qident');

/** The dataset name a table reference names: `LIVE.x` → x, `cat.schema.t` → schema.t, delta.`/p` → /p. */
export function refName(parts: Token[]): string {
  const v = parts.map((p) => p.value);
  if (v.length >= 2 && v[0]!.toUpperCase() === 'LIVE') return v.slice(1).join('.');
  if (v.length === 2 && v[0]!.toLowerCase() === 'delta' && parts[1]!.kind === 'qident') return v[1]!;
  if (v.length === 3) return v.slice(1).join('.');
  return v.join('.');
}

/** A name (possibly dotted) at `i`: [parts, next index]. */
function nameAt(toks: Token[], i: number): [Token[], number] {
  if (!isName(toks[i])) throw parseErrorAt(toks[i] ?? toks[i - 1]!, `Expected a table name but found ${toks[i] ? tokenDesc(toks[i]!) : 'end of input'}`);
  const parts = [toks[i]!];
  i++;
  while (isOp(toks[i], '.') && isName(toks[i + 1])) {
    parts.push(toks[i + 1]!);
    i += 2;
  }
  return [parts, i];
}

const FORMATS = new Set(['json', 'csv', 'parquet']);

/** `read_files('dir', format => 'json', header => true, …)` / `cloud_files('dir', 'json', map(…))`. */
function fileOptions(fn: Token, args: Token[][]): { dir: string; files: FileReadOptions } {
  const first = args[0];
  if (!first || first.length !== 1 || first[0]!.kind !== 'string') throw parseErrorAt(first?.[0] ?? fn, `${fn.value}() needs a path string as its first argument`);
  const dir = first[0]!.value;
  // (`${key}` left by the substitution: not a key of the configuration. Spark would read that path.)
  const unset = /\$\{([^}]*)\}/.exec(dir);
  if (unset) throw analysisErrorAt(first[0]!, `${fn.value}('${dir}'): \${${unset[1]}} is not a key of the pipeline's configuration; add it under configuration: in the pipeline spec`, { key: unset[1] });
  const opts: Record<string, string> = {};
  const cloud = fn.value.toLowerCase() === 'cloud_files';
  for (const [k, a] of args.slice(1).entries()) {
    if (cloud && k === 0 && a.length === 1 && a[0]!.kind === 'string') {
      opts.format = a[0]!.value;
      continue;
    }
    if (cloud && isKw(a[0], 'MAP') && isOp(a[1], '(')) {
      const inner = a.slice(2, matching(a, 1));
      const vals = splitArgs(inner).map((x) => (x.length === 1 && x[0]!.kind === 'string' ? x[0]!.value : null));
      for (let j = 0; j + 1 < vals.length; j += 2) if (vals[j] !== null && vals[j + 1] !== null) opts[vals[j]!.replace(/^cloudFiles\./, '')] = vals[j + 1]!;
      continue;
    }
    if (a.length !== 3 || !isName(a[0]) || !isOp(a[1], '=>') || !['string', 'number', 'ident'].includes(a[2]!.kind)) throw parseErrorAt(a[0] ?? fn, `Expected a named option (name => value) in ${fn.value}()`);
    opts[a[0]!.value.toLowerCase()] = a[2]!.kind === 'string' ? a[2]!.value : a[2]!.text;
  }
  let format = (opts.format ?? '').toLowerCase();
  if (!format) {
    const m = /\.(json|csv|parquet)$/i.exec(dir);
    if (!m) throw analysisErrorAt(fn, `${fn.value}('${dir}') needs format => 'json' | 'csv' | 'parquet'`);
    format = m[1]!.toLowerCase();
  }
  if (!FORMATS.has(format)) throw analysisErrorAt(fn, `${fn.value}(): the format '${format}' is not supported (json, csv, parquet)`, { construct: `format ${format}` });
  const files: FileReadOptions = { format: format as FileFormat };
  if (opts.header !== undefined) files.header = opts.header.toLowerCase() !== 'false';
  const delim = opts.delimiter ?? opts.sep;
  if (delim !== undefined) files.delimiter = delim;
  const maxFiles = opts.maxfilespertrigger ?? opts.maxFilesPerTrigger;
  if (maxFiles !== undefined) {
    const n = Number(maxFiles);
    if (!Number.isInteger(n) || n < 1) throw analysisErrorAt(fn, `${fn.value}(): maxFilesPerTrigger must be a positive integer, got '${maxFiles}'`);
    files.maxFilesPerTrigger = n;
  }
  const maxAge = opts.maxfileage ?? opts.maxFileAge;
  if (maxAge !== undefined) files.maxFileAge = /^\d+$/.test(maxAge) ? Number(maxAge) : maxAge;
  return { dir, files };
}

function splitArgs(toks: Token[]): Token[][] {
  if (!toks.length) return [];
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t.kind === 'op' && (t.text === '(' || t.text === '[')) depth++;
    if (t.kind === 'op' && (t.text === ')' || t.text === ']')) depth--;
    if (depth === 0 && isOp(t, ',')) out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out;
}

/**
 * Translates a Spark query whose FROM clauses may name datasets, `STREAM(x)` / `STREAM x`, or
 * `read_files(…)`. `streamingContext`: a bare read_files streams (streaming tables and flows).
 */
export async function translatePipelineQuery(tokens: Token[], streamingContext: boolean): Promise<SqlQuery> {
  const toks = tokens.filter((t) => t.kind !== 'eof');
  const refs: SqlRef[] = [];
  const synthetic_ = new Map<string, SqlRef>();
  const add = (like: Token, ref: Omit<SqlRef, 'alias'>, defaultAlias: string | undefined, next: Token | undefined): Token[] => {
    const alias = `__floe_ref_${refs.length}`;
    const r = { ...ref, alias };
    refs.push(r);
    synthetic_.set(alias, r);
    const out = [synthetic(like, 'qident', alias, like.ws)];
    const hasAlias = isKw(next, 'AS') || (next?.kind === 'ident' && !RESERVED.has(next.upper)) || next?.kind === 'qident';
    if (!hasAlias && defaultAlias) out.push(synthetic(like, 'ident', 'AS'), synthetic(like, 'qident', defaultAlias));
    return out;
  };
  const out: Token[] = [];
  let i = 0;
  while (i < toks.length) {
    const t = toks[i]!;
    const prev = out[out.length - 1];
    const afterFrom = isKw(prev, 'FROM') || isKw(prev, 'JOIN') || (isOp(prev, ',') && out.some((x) => isKw(x, 'FROM')));
    // STREAM(name) / STREAM(read_files(…)) / STREAM name / STREAM read_files(…)
    if (isKw(t, 'STREAM') && afterFrom && (isOp(toks[i + 1], '(') || isName(toks[i + 1]))) {
      let j = i + 1;
      let paren = false;
      if (isOp(toks[j], '(')) {
        paren = true;
        j++;
      }
      const fnTok = toks[j];
      if (fnTok && isName(fnTok) && isOp(toks[j + 1], '(') && /^(read_files|cloud_files)$/i.test(fnTok.value)) {
        const close = matching(toks, j + 1);
        const { dir, files } = fileOptions(fnTok, splitArgs(toks.slice(j + 2, close)));
        j = close + 1;
        if (paren) {
          if (!isOp(toks[j], ')')) throw parseErrorAt(toks[j] ?? fnTok, `Expected ')' after STREAM(${fnTok.value}(…)`);
          j++;
        }
        out.push(...add(t, { mode: 'files', name: dir, files }, fnTok.value.toLowerCase(), toks[j]));
        i = j;
        continue;
      }
      const [parts, k] = nameAt(toks, j);
      j = k;
      if (paren) {
        if (!isOp(toks[j], ')')) throw parseErrorAt(toks[j] ?? t, `Expected ')' after STREAM(${parts.map((p) => p.value).join('.')} but found ${toks[j] ? tokenDesc(toks[j]!) : 'end of input'}`);
        j++;
      }
      out.push(...add(t, { mode: 'stream', name: refName(parts) }, parts[parts.length - 1]!.value, toks[j]));
      i = j;
      continue;
    }
    if (afterFrom && isName(t) && isOp(toks[i + 1], '(') && /^(read_files|cloud_files)$/i.test(t.value)) {
      const close = matching(toks, i + 1);
      const { dir, files } = fileOptions(t, splitArgs(toks.slice(i + 2, close)));
      const streams = streamingContext || t.value.toLowerCase() === 'cloud_files';
      out.push(...add(t, { mode: streams ? 'files' : 'filesBatch', name: dir, files }, t.value.toLowerCase(), toks[close + 1]));
      i = close + 1;
      continue;
    }
    out.push(t);
    i++;
  }
  const tctx: TranslateContext = {
    resolveTable: async (ref: TableRef) => {
      const first = ref.parts[0]!;
      if (ref.travel) throw analysisErrorAt(first, 'Time travel (VERSION / TIMESTAMP AS OF) on a pipeline dataset is not supported', { construct: 'time travel' });
      const syn = ref.parts.length === 1 ? synthetic_.get(first.value) : undefined;
      if (syn) return `SELECT * FROM ${quoteIdent(syn.alias)}`;
      const alias = `__floe_ref_${refs.length}`;
      refs.push({ alias, mode: 'batch', name: refName(ref.parts) });
      return `SELECT * FROM ${quoteIdent(alias)}`;
    },
    resolveChanges: async (fn: Token) => {
      throw analysisErrorAt(fn, `${fn.value}() is not available in a pipeline query; read a change feed with STREAM and a Python/JS flow (readChangeFeed)`, { construct: fn.value });
    },
  };
  const sql = await translateQuery(out, tctx);
  return { sql, refs, streaming: refs.some((r) => r.mode === 'stream' || r.mode === 'files') };
}

/** An expression (expectation, APPLY AS DELETE WHEN, SEQUENCE BY) in DuckDB syntax. */
async function translateCondition(tokens: Token[], what: string): Promise<string> {
  const deny = (t: Token): never => {
    throw analysisErrorAt(t, `A subquery or table function is not allowed in ${what}`, { construct: 'subquery' });
  };
  return translateExpr(tokens, { resolveTable: async (r) => deny(r.parts[0]!), resolveChanges: async (fn) => deny(fn) });
}

/** The query function of a translated query (optionally projected onto declared columns). */
function queryFunction(q: SqlQuery, columns: DeclaredColumn[] = []): QueryFunction {
  let sql = `SELECT * FROM (${q.sql}) AS __floe_q`;
  if (columns.length) sql = `SELECT ${columns.map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type}) AS ${quoteIdent(c.name)}`).join(', ')} FROM (${q.sql}) AS __floe_q`;
  return (ctx: QueryContext): DataFrame => {
    const frames: Record<string, DataFrame> = {};
    for (const r of q.refs) {
      if (r.mode === 'batch') frames[r.alias] = ctx.read(r.name);
      else if (r.mode === 'stream') frames[r.alias] = ctx.readStream(r.name);
      else if (r.mode === 'files') frames[r.alias] = ctx.readStreamFiles(r.name, r.files!);
      else frames[r.alias] = ctx.readFiles(r.name, r.files!);
    }
    return ctx.sql(sql, frames);
  };
}

// ---------------------------------------------------------------------------------------------
// Statements

/** The rest of the statement as a query (SELECT / WITH / FROM / VALUES / parenthesised). */
function restQuery(c: Cursor): Token[] {
  const t = c.peek();
  if (!(isKw(t, 'SELECT') || isKw(t, 'WITH') || isKw(t, 'FROM') || isKw(t, 'VALUES') || (isOp(t, '(') && (isKw(c.peek(1), 'SELECT') || isKw(c.peek(1), 'WITH'))))) {
    throw parseErrorAt(t, `Expected a query (SELECT …) but found ${tokenDesc(t)}`);
  }
  const toks = c.tokens.slice(c.i);
  c.i = c.tokens.length - 1;
  return toks;
}

function identList(c: Cursor, what: string): string[] {
  if (c.isOp('(')) return c.list(() => c.ident(what).value);
  const out = [c.ident(what).value];
  while (c.acceptOp(',')) out.push(c.ident(what).value);
  return out;
}

/** `(col type …, CONSTRAINT n EXPECT (cond) [ON VIOLATION …], …)` */
async function tableSpec(c: Cursor, name: string): Promise<{ columns: DeclaredColumn[]; expectations: Expectation[] }> {
  const columns: DeclaredColumn[] = [];
  const pending: Array<{ name: string; cond: Token[]; action: Expectation['action']; at: Token }> = [];
  c.list(() => {
    if (c.acceptKw('CONSTRAINT')) {
      const n = c.ident('a constraint name');
      if (c.acceptKw('EXPECT')) {
        c.expectOp('(');
        const cond = c.until([], [], 'an expectation condition');
        c.expectOp(')');
        let action: Expectation['action'] = 'warn';
        if (c.acceptKw('ON', 'VIOLATION')) {
          if (c.acceptKw('DROP', 'ROW')) action = 'drop';
          else if (c.acceptKw('FAIL', 'UPDATE')) action = 'fail';
          else throw parseErrorAt(c.peek(), `Expected DROP ROW or FAIL UPDATE after ON VIOLATION but found ${tokenDesc(c.peek())}`);
        }
        pending.push({ name: n.value, cond, action, at: n });
        return null;
      }
      // Informational table constraints (PRIMARY KEY, FOREIGN KEY, CHECK): accepted, not enforced.
      if (c.isKw('PRIMARY') || c.isKw('FOREIGN') || c.isKw('CHECK') || c.isKw('UNIQUE')) {
        c.until([], [','], 'a table constraint');
        return null;
      }
      throw parseErrorAt(c.peek(), `Expected EXPECT (condition) after CONSTRAINT ${n.value} but found ${tokenDesc(c.peek())}`);
    }
    if (c.isKw('PRIMARY') || c.isKw('FOREIGN')) {
      c.until([], [','], 'a table constraint');
      return null;
    }
    const col = c.ident('a column name or CONSTRAINT');
    const type = parseType(c);
    let nullable = true;
    for (;;) {
      if (c.acceptKw('NOT', 'NULL')) {
        nullable = false;
        continue;
      }
      if (c.acceptKw('NULL')) continue;
      if (c.acceptKw('COMMENT')) {
        c.string('a comment string');
        continue;
      }
      if (c.isKw('PRIMARY') || c.isKw('MASK') || c.isKw('CONSTRAINT') || c.isKw('REFERENCES')) {
        c.until([], [','], 'a column constraint');
        continue;
      }
      if (c.isKw('GENERATED') || c.isKw('DEFAULT')) unsupported(c.peek(), `${c.peek().upper} columns`);
      break;
    }
    columns.push({ name: col.value, type: duckType(type), sparkType: sparkTypeName(type), nullable });
    return null;
  });
  const expectations: Expectation[] = [];
  for (const p of pending) {
    if (expectations.some((e) => e.name === p.name)) throw analysisErrorAt(p.at, `The expectation '${p.name}' is defined twice on '${name}'`);
    expectations.push({ name: p.name, condition: await translateCondition(p.cond, `the expectation '${p.name}'`), action: p.action });
  }
  return { columns, expectations };
}

/** `… INTO target FROM source KEYS (…) … SEQUENCE BY … ` (after AUTO CDC / APPLY CHANGES). */
async function autoCdcSpec(c: Cursor, at: Token, into: boolean): Promise<{ target?: string; cdc: Omit<AutoCdcFlowDefinition, 'target' | 'name'> }> {
  let target: string | undefined;
  if (c.acceptKw('ONCE')) unsupported(c.tokens[c.i - 1]!, 'AUTO CDC ONCE');
  if (into) {
    c.expectKw('INTO');
    const [parts, k] = nameAt(c.tokens, c.i);
    c.i = k;
    target = refName(parts);
  }
  c.expectKw('FROM');
  let source: string;
  const st = c.peek();
  // (FROM SNAPSHOT name, or FROM SNAPSHOT (query) WITH VERSION …: snapshot CDC in SQL.)
  if (isKw(st, 'SNAPSHOT') && (isName(c.peek(1)) || c.isOp('(', 1))) unsupported(st, 'AUTO CDC … FROM SNAPSHOT (snapshot CDC: use createAutoCdcFromSnapshotFlow in a TypeScript pipeline file)');
  if (isKw(st, 'STREAM') && (c.isOp('(', 1) || isName(c.peek(1)))) {
    c.next();
    const paren = c.acceptOp('(');
    if (paren && isKw(c.peek(), 'SELECT')) unsupported(c.peek(), 'AUTO CDC … FROM a query (define a temporary view and read STREAM(view))');
    const [parts, k] = nameAt(c.tokens, c.i);
    c.i = k;
    if (paren) c.expectOp(')');
    source = refName(parts);
  } else if (c.isOp('(')) {
    unsupported(st, 'AUTO CDC … FROM a query (define a temporary view and read STREAM(view))');
  } else {
    const [parts, k] = nameAt(c.tokens, c.i);
    c.i = k;
    source = refName(parts);
  }
  const CLAUSES = ['KEYS', 'IGNORE', 'APPLY', 'SEQUENCE', 'COLUMNS', 'STORED', 'TRACK', 'WHERE'];
  const cdc: Omit<AutoCdcFlowDefinition, 'target' | 'name'> = { source, keys: [], sequenceBy: '' };
  const seen = new Set<string>();
  const once = (t: Token, clause: string): void => {
    if (seen.has(clause)) throw parseErrorAt(t, `${clause} is given twice`);
    seen.add(clause);
  };
  while (!c.atEnd()) {
    const t = c.peek();
    if (c.acceptKw('KEYS')) {
      once(t, 'KEYS');
      cdc.keys = c.list(() => c.ident('a key column').value);
      if (!cdc.keys.length) throw parseErrorAt(t, 'KEYS needs at least one column');
    } else if (c.acceptKw('IGNORE', 'NULL', 'UPDATES')) {
      once(t, 'IGNORE NULL UPDATES');
      if (c.isKw('ON')) unsupported(c.peek(), 'IGNORE NULL UPDATES ON (columns)');
      cdc.ignoreNullUpdates = true;
    } else if (c.acceptKw('APPLY', 'AS', 'DELETE', 'WHEN')) {
      once(t, 'APPLY AS DELETE WHEN');
      cdc.applyAsDeletes = await translateCondition(c.until(CLAUSES, [], 'a condition'), 'APPLY AS DELETE WHEN');
    } else if (c.acceptKw('APPLY', 'AS', 'TRUNCATE', 'WHEN')) {
      once(t, 'APPLY AS TRUNCATE WHEN');
      cdc.applyAsTruncates = await translateCondition(c.until(CLAUSES, [], 'a condition'), 'APPLY AS TRUNCATE WHEN');
    } else if (c.acceptKw('SEQUENCE', 'BY')) {
      once(t, 'SEQUENCE BY');
      cdc.sequenceBy = await translateCondition(c.until(CLAUSES, [], 'a sequencing column'), 'SEQUENCE BY');
    } else if (c.acceptKw('COLUMNS')) {
      once(t, 'COLUMNS');
      if (c.acceptOp('*')) {
        c.expectKw('EXCEPT');
        cdc.exceptColumnList = c.list(() => c.ident('a column').value);
      } else cdc.columnList = identList(c, 'a column');
    } else if (c.acceptKw('STORED', 'AS')) {
      once(t, 'STORED AS');
      if (c.isKw('BITEMPORAL')) unsupported(c.peek(), 'STORED AS BITEMPORAL');
      c.expectKw('SCD', 'TYPE');
      const n = c.peek();
      const v = c.integer('1 or 2');
      if (v !== 1 && v !== 2) throw parseErrorAt(n, `SCD TYPE must be 1 or 2, got ${v}`);
      cdc.storedAsScdType = v;
    } else if (c.acceptKw('TRACK', 'HISTORY', 'ON')) {
      once(t, 'TRACK HISTORY ON');
      if (c.acceptOp('*')) {
        c.expectKw('EXCEPT');
        cdc.trackHistoryExceptColumnList = c.list(() => c.ident('a column').value);
      } else cdc.trackHistoryColumnList = identList(c, 'a column');
    } else if (c.isKw('WHERE') || c.isKw('SYSTEM')) {
      unsupported(t, `AUTO CDC … ${t.upper}`);
    } else throw parseErrorAt(t, `Unexpected ${tokenDesc(t)} in AUTO CDC: expected KEYS, IGNORE NULL UPDATES, APPLY AS DELETE/TRUNCATE WHEN, SEQUENCE BY, COLUMNS, STORED AS SCD TYPE or TRACK HISTORY ON`);
  }
  if (!cdc.keys.length) throw parseErrorAt(c.peek(), `AUTO CDC${target ? ` INTO ${target}` : ''} needs KEYS (…)`);
  if (!cdc.sequenceBy) throw parseErrorAt(c.peek(), `AUTO CDC${target ? ` INTO ${target}` : ''} needs SEQUENCE BY`);
  if (cdc.trackHistoryColumnList || cdc.trackHistoryExceptColumnList) {
    if (cdc.storedAsScdType !== 2) throw analysisErrorAt(at, 'TRACK HISTORY ON needs STORED AS SCD TYPE 2');
  }
  return { target, cdc };
}

async function insertFlow(c: Cursor, at: Token, inline: boolean): Promise<{ target?: string; once: boolean; query: SqlQuery }> {
  let once = c.acceptKw('ONCE');
  let target: string | undefined;
  if (!inline) {
    c.expectKw('INTO');
    once = c.acceptKw('ONCE') || once;
    const [parts, k] = nameAt(c.tokens, c.i);
    c.i = k;
    target = refName(parts);
  }
  // (Databricks writes BY NAME; Spark's SDP guide leaves it out. Either way the columns go by name.)
  c.acceptKw('BY', 'NAME');
  const query = await translatePipelineQuery(restQuery(c), true);
  if (!once && !query.streaming) throw analysisErrorAt(at, `The flow${target ? ` into '${target}'` : ''} reads no stream: read its source with STREAM(name) or STREAM read_files(…), or make it a one-time backfill with INSERT INTO ONCE`, { construct: 'batch append flow' });
  return { target, once, query };
}

async function parseStatement(tokens: Token[]): Promise<Stmt> {
  const c = new Cursor(tokens);
  const at = c.peek();
  if (c.acceptKw('SET')) return { kind: 'set' };
  if (c.acceptKw('APPLY', 'CHANGES')) {
    const { target, cdc } = await autoCdcSpec(c, at, true);
    return { kind: 'flow', f: { at, target: target!, kind: 'autoCdc', cdc } };
  }
  if (!c.acceptKw('CREATE')) throw parseErrorAt(at, `Expected CREATE … (STREAMING TABLE, MATERIALIZED VIEW, TEMPORARY VIEW, FLOW) or APPLY CHANGES INTO but found ${tokenDesc(at)}`);
  let orRefresh = false;
  if (c.acceptKw('OR', 'REFRESH')) orRefresh = true;
  else if (c.isKws('OR', 'REPLACE')) {
    c.i += 2;
  }
  if (c.acceptKw('FLOW')) {
    const name = c.ident('a flow name').value;
    let comment: string | undefined;
    if (c.acceptKw('COMMENT')) comment = c.string('a comment string').value;
    c.expectKw('AS');
    const t = c.peek();
    if (c.acceptKw('AUTO', 'CDC') || c.acceptKw('APPLY', 'CHANGES')) {
      const { target, cdc } = await autoCdcSpec(c, t, true);
      return { kind: 'flow', f: { at, name, target: target!, comment, kind: 'autoCdc', cdc } };
    }
    if (c.acceptKw('INSERT')) {
      const r = await insertFlow(c, t, false);
      return { kind: 'flow', f: { at, name, target: r.target!, comment, kind: 'append', once: r.once, query: r.query } };
    }
    throw parseErrorAt(t, `Expected AUTO CDC INTO or INSERT INTO after CREATE FLOW ${name} AS but found ${tokenDesc(t)}`);
  }
  let kind: DatasetStmt['kind'];
  const kt = c.peek();
  // PRIVATE (formerly TEMPORARY) tables are pipeline-private in Databricks; floe registers every table.
  c.acceptKw('PRIVATE') || c.acceptKw('TEMPORARY') || c.acceptKw('TEMP');
  if (c.acceptKw('STREAMING', 'LIVE', 'TABLE') || c.acceptKw('STREAMING', 'TABLE') || c.acceptKw('INCREMENTAL', 'LIVE', 'TABLE')) kind = 'streamingTable';
  else if (c.acceptKw('MATERIALIZED', 'VIEW') || c.acceptKw('LIVE', 'TABLE')) kind = 'materializedView';
  else if (c.acceptKw('LIVE', 'VIEW') || c.acceptKw('VIEW')) kind = 'view';
  else if (c.isKw('TABLE')) throw analysisErrorAt(c.peek(), 'CREATE TABLE is not a pipeline dataset: use CREATE OR REFRESH STREAMING TABLE or CREATE OR REFRESH MATERIALIZED VIEW');
  else throw parseErrorAt(c.peek(), `Expected STREAMING TABLE, MATERIALIZED VIEW, VIEW or FLOW after CREATE but found ${tokenDesc(c.peek())}`);
  if (kind === 'view' && orRefresh) throw parseErrorAt(kt, 'CREATE OR REFRESH does not apply to a view; use CREATE TEMPORARY VIEW');
  if (c.acceptKw('IF', 'NOT', 'EXISTS')) {
    // accepted: a pipeline declares its datasets
  }
  const [parts, k] = nameAt(c.tokens, c.i);
  c.i = k;
  const name = refName(parts);
  const d: DatasetStmt = { kind, name, columns: [], expectations: [], properties: {}, at };
  if (c.isOp('(')) {
    const spec = await tableSpec(c, name);
    d.columns = spec.columns;
    d.expectations = spec.expectations;
  }
  for (;;) {
    const t = c.peek();
    if (c.acceptKw('COMMENT')) d.comment = c.string('a comment string').value;
    else if (c.acceptKw('PARTITIONED', 'BY')) {
      if (kind === 'view') throw parseErrorAt(t, 'A view cannot be PARTITIONED BY');
      d.partitionBy = c.list(() => c.ident('a partition column').value);
    } else if (c.acceptKw('TBLPROPERTIES')) {
      if (kind === 'view') throw parseErrorAt(t, 'A view has no TBLPROPERTIES');
      Object.assign(d.properties, parseProperties(c));
    } else if (c.acceptKw('USING')) {
      const p = c.ident('a table format');
      if (p.value.toLowerCase() !== 'delta') throw analysisErrorAt(p, `Only USING DELTA is supported, not ${p.value}`);
    } else if (c.isKw('CLUSTER') || c.isKw('LOCATION') || c.isKw('SCHEDULE') || c.isKw('WITH') || c.isKw('OPTIONS') || c.isKw('ROW')) {
      unsupported(t, `CREATE … ${t.upper}`);
    } else break;
  }
  const t = c.peek();
  if (c.acceptKw('AS')) {
    d.query = await translatePipelineQuery(restQuery(c), kind === 'streamingTable');
    if (kind === 'streamingTable' && !d.query.streaming) {
      throw analysisErrorAt(t, `The streaming table '${name}' reads no stream: read its source with STREAM(name) or STREAM read_files(…), or declare a MATERIALIZED VIEW`, { construct: 'batch streaming table' });
    }
  } else if (c.acceptKw('FLOW')) {
    if (kind !== 'streamingTable') throw parseErrorAt(t, 'Only a streaming table takes a FLOW clause');
    const ft = c.peek();
    if (c.acceptKw('AUTO', 'CDC')) {
      const { cdc } = await autoCdcSpec(c, ft, false);
      d.flow = { at: ft, name, target: name, kind: 'autoCdc', cdc };
    } else if (c.acceptKw('INSERT')) {
      const r = await insertFlow(c, ft, true);
      d.flow = { at: ft, name, target: name, kind: 'append', once: r.once, query: r.query };
    } else throw parseErrorAt(ft, `Expected INSERT or AUTO CDC after FLOW but found ${tokenDesc(ft)}`);
  } else if (!c.atEnd()) {
    throw parseErrorAt(t, `Unexpected ${tokenDesc(t)}: expected AS query${kind === 'streamingTable' ? ', FLOW' : ''} or the end of the statement`);
  }
  if (kind !== 'streamingTable' && !d.query) throw parseErrorAt(c.peek(), `${kind === 'view' ? 'A view' : 'A materialized view'} needs AS query`);
  return { kind: 'dataset', d };
}

// ---------------------------------------------------------------------------------------------
// Files → definitions

/**
 * Parses a pipeline SQL file into a definition function (the same calls a JS library makes).
 * Throws a FloeError naming `file:line:column` on the first problem.
 */
export async function parseSqlLibrary(text: string, file: string, configuration: Record<string, string> = {}): Promise<DefineFunction> {
  const src = substituteVariables(text, configuration);
  let statements;
  try {
    statements = splitStatements(src);
  } catch (e) {
    inFile(e, file, { kind: 'eof', text: '', value: '', upper: '', offset: 0, end: 0, line: 1, col: 1, ws: false });
  }
  const stmts: Stmt[] = [];
  for (const s of statements) {
    try {
      stmts.push(await parseStatement(s.tokens));
    } catch (e) {
      inFile(e, file, s.tokens[0]!);
    }
  }
  return (p: PipelineBuilder) => {
    for (const s of stmts) {
      if (s.kind === 'set') continue;
      if (s.kind === 'flow') addFlow(p, s.f);
      else addDataset(p, s.d);
    }
  };
}

function addDataset(p: PipelineBuilder, d: DatasetStmt): void {
  // Tables enforce their declared columns when written (a clear error naming a column that does not fit).
  const schema = d.columns.length ? d.columns.map((c) => ({ name: c.name, type: c.sparkType, nullable: c.nullable })) : undefined;
  const opts = { comment: d.comment, partitionBy: d.partitionBy, tableProperties: d.properties, expectations: d.expectations, schema };
  if (d.kind === 'view') p.view({ name: d.name, comment: d.comment, query: queryFunction(d.query!, d.columns), expectations: d.expectations });
  else if (d.kind === 'materializedView') p.materializedView({ name: d.name, ...opts, query: queryFunction(d.query!) });
  else if (d.query) p.table({ name: d.name, ...opts, query: queryFunction(d.query) });
  else {
    p.createStreamingTable(d.name, opts);
    if (d.flow) addFlow(p, d.flow);
  }
}

function addFlow(p: PipelineBuilder, f: FlowStmt): void {
  if (f.kind === 'autoCdc') p.createAutoCdcFlow({ ...f.cdc, target: f.target, name: f.name });
  else p.appendFlow({ target: f.target, name: f.name, query: queryFunction(f.query), once: f.once, comment: f.comment });
}

/** Reads and parses a pipeline SQL file (see parseSqlLibrary). */
export async function loadSqlLibrary(file: string, configuration: Record<string, string> = {}): Promise<{ define: DefineFunction; source: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FloeError('PIPELINE_LIBRARY_LOAD_FAILED', `Cannot read the pipeline library ${file}: ${(e as Error).message}`, { file }, { cause: e });
  }
  return { define: await parseSqlLibrary(text, file, configuration), source: file };
}
