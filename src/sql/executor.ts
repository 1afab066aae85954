/**
 * Runs SQL scripts: `executeSql(floe, text, { warehouse })` parses every statement first (a syntax
 * error anywhere runs nothing), then runs them in order in the session (so `SET` applies to what
 * follows) and returns the last statement's result: a DataFrame for queries, a status (with rows
 * for DESCRIBE / SHOW / DML metrics) for everything else.
 */
import * as path from 'node:path';
import { Catalog, CATALOG_ALIASES, DEFAULT_CATALOG, DEFAULT_SCHEMA, normalizeName, type CatalogTable } from '../catalog/catalog.js';
import type { ChangeFeedOptions } from '../core/cdf.js';
import { DUCK_INTEGER_TYPES, castToColumns, duckType, quoteIdent, type StructType } from '../core/schema.js';
import { DataFrame } from '../dataframe.js';
import { runTrusted } from '../expression-guard.js';
import { FloeError } from '../errors.js';
import type { Floe } from '../floe.js';
import { eventLogLocation, PIPELINES_DIR } from '../pipelines/event-log.js';
import { addColumns, addConstraint, assignColumnMapping, changeColumn, convertToDelta, dropColumns, dropConstraint, renameColumn } from '../table/alter.js';
import { createTable, toStructType, type ColumnSpec } from '../table/create.js';
import { DeltaTable } from '../table/delta-table.js';
import { autoMergeOn } from '../table/schema-evolution.js';
import { resolveColumn } from '../table/dml.js';
import { columnDefault, generationExpression, writeDelta } from '../table/write.js';
import { Cursor } from './cursor.js';
import { ANALYSIS_ERROR, analysisErrorAt, parseErrorAt, PARSE_ERROR } from './errors.js';
import { tokenize, type Token } from './lexer.js';
import { storedExprToDuck } from './spark-expr.js';
import { parseName, parseScript, type ColumnDef, type MergeClause, type NameRef, type Statement } from './parser.js';
import { translateExpr, translateQuery, type TableRef, type TimeTravel, type TranslateContext } from './translate.js';
import { sparkFieldTypeName } from './types.js';
import { resolveLocation } from '../storage/open.js';

export type SqlResult =
  | { kind: 'rows'; dataFrame: DataFrame }
  | { kind: 'status'; message: string; rows?: Record<string, unknown>[] };

export interface SqlOptions {
  /** The warehouse folder (default: FLOE_WAREHOUSE, else ./floe-warehouse). */
  warehouse?: string;
  /** Called before each statement runs (1-based index), e.g. for a progress indicator. */
  onStatement?: (index: number, count: number, statement: Statement) => void;
}

interface SessionState {
  currentSchema: string;
  initialConfig: Record<string, string>;
}

const sessions = new WeakMap<Floe, SessionState>();

function sessionOf(floe: Floe): SessionState {
  let s = sessions.get(floe);
  if (!s) {
    s = { currentSchema: DEFAULT_SCHEMA, initialConfig: floe.config.all() };
    sessions.set(floe, s);
  }
  return s;
}

/** Parses a script without running it (parse errors only). */
export function parseSql(text: string): Statement[] {
  return parseScript(text);
}

/** Runs a script of `;`-separated statements and returns the last statement's result. */
export async function executeSql(floe: Floe, text: string, options: SqlOptions = {}): Promise<SqlResult> {
  if (typeof text !== 'string') throw new FloeError(PARSE_ERROR, 'SQL text must be a string');
  const statements = parseScript(text);
  if (!statements.length) throw new FloeError(PARSE_ERROR, 'No SQL statement to run (the text is empty or only comments)');
  sessionOf(floe); // the settings RESET returns to are the session's settings before its first statement
  const ex = new Executor(floe, new Catalog(options.warehouse));
  let result: SqlResult = { kind: 'status', message: 'OK' };
  // Statements were parsed and their expressions translated and checked here: run trusted.
  for (const [i, s] of statements.entries()) {
    options.onStatement?.(i + 1, statements.length, s);
    result = await runTrusted(() => ex.run(s));
  }
  return result;
}

/** A resolved table: where it lives and how to name it. */
interface Resolved {
  location: string;
  display: string;
  entry: CatalogTable | null;
  lastName: string;
}

type Target = { kind: 'path'; location: string; display: string; lastName: string } | { kind: 'catalog'; schema: string; table: string; display: string };

class Executor {
  constructor(
    private readonly floe: Floe,
    private readonly catalog: Catalog,
  ) {}

  private get state(): SessionState {
    return sessionOf(this.floe);
  }

  async run(s: Statement): Promise<SqlResult> {
    try {
      return await this.dispatch(s);
    } catch (e) {
      throw this.contextualize(e, s);
    }
  }

  /** DuckDB errors about the rewritten SQL become analysis errors at the statement the user wrote. */
  private contextualize(e: unknown, s: Statement): unknown {
    if (!(e instanceof FloeError)) return e;
    if (e.code === 'FLOE_SQL_ERROR' || e.code === 'FLOE_ENGINE_ERROR' && /Binder Error|Parser Error|Catalog Error|Conversion Error/.test(e.message)) {
      const msg = e.message.replace(/^\[[A-Z_]+\]\s*/, '').replace(/\s*LINE \d+:.*$/s, '').replace(/__floe_\w+/g, '<table>');
      return new FloeError(ANALYSIS_ERROR, `${msg} (in the statement at line ${s.at.line}, column ${s.at.col})`, { line: s.at.line, col: s.at.col }, { cause: e });
    }
    return e;
  }

  // ---- names ----

  private target(ref: NameRef): Target {
    const p = ref.parts;
    if (p.length === 2 && p[0]!.kind === 'ident' && p[0]!.upper === 'DELTA' && p[1]!.kind === 'qident') {
      const location = resolveLocation(p[1]!.value);
      return { kind: 'path', location, display: `delta.\`${p[1]!.value}\``, lastName: path.basename(location) };
    }
    if (p.length === 3 && !CATALOG_ALIASES.has(p[0]!.value.toLowerCase())) {
      throw analysisErrorAt(p[0]!, `Unknown catalog '${p[0]!.value}': floe has one catalog (${DEFAULT_CATALOG}, also called main)`, { construct: 'catalog' });
    }
    const tableTok = p[p.length - 1]!;
    const schemaTok = p.length >= 2 ? p[p.length - 2]! : undefined;
    const schema = schemaTok ? this.name(schemaTok, 'schema') : this.state.currentSchema;
    const table = this.name(tableTok, 'table');
    return { kind: 'catalog', schema, table, display: `${DEFAULT_CATALOG}.${schema}.${table}` };
  }

  private name(t: Token, what: 'schema' | 'table'): string {
    try {
      return normalizeName(t.value, what);
    } catch (e) {
      throw analysisErrorAt(t, (e as Error).message.replace(/^\[[A-Z_]+\]\s*/, ''), { construct: what });
    }
  }

  /** Resolves a name to an existing table (path tables must hold a Delta table). */
  private async resolve(ref: NameRef): Promise<Resolved> {
    const t = this.target(ref);
    if (t.kind === 'path') {
      if (!(await DeltaTable.isDeltaTable(this.floe, t.location))) throw new FloeError('DELTA_TABLE_NOT_FOUND', `${t.display} is not a Delta table (line ${ref.parts[0]!.line}, column ${ref.parts[0]!.col}).`, { path: t.location });
      return { location: t.location, display: t.display, entry: null, lastName: t.lastName };
    }
    if (!(await this.catalog.schemaExists(t.schema)) && t.schema !== DEFAULT_SCHEMA) {
      throw new FloeError('SCHEMA_NOT_FOUND', `The schema '${t.schema}' cannot be found (line ${ref.parts[0]!.line}, column ${ref.parts[0]!.col}).`, { schema: t.schema });
    }
    const entry = await this.catalog.getTable(t.schema, t.table);
    if (!entry) {
      const at = ref.parts[0]!;
      throw new FloeError('TABLE_OR_VIEW_NOT_FOUND', `The table or view ${t.schema}.${t.table} cannot be found (line ${at.line}, column ${at.col}). Check the name, or SHOW TABLES IN ${t.schema}.`, { table: `${t.schema}.${t.table}` });
    }
    return { location: entry.location, display: t.display, entry, lastName: t.table };
  }

  private translateContext(extra: Partial<TranslateContext> = {}): TranslateContext {
    return {
      resolveTable: (ref: TableRef) => this.tableSql(ref),
      resolveChanges: (fn: Token, args: Token[][]) => this.changesSql(fn, args),
      resolveEventLog: async (fn: Token, args: Token[][]) => {
        const a = args.length === 1 && args[0]!.length === 1 ? args[0]![0]! : undefined;
        if (!a || a.kind !== 'string') throw analysisErrorAt(a ?? fn, `${fn.value}() takes one string: a pipeline's name (in this warehouse) or the path of its folder, spec or storage`, { construct: fn.value });
        return (await this.floe.read.delta(await eventLogLocation(this.catalog.root, a.value))).toSQL();
      },
      ...extra,
    };
  }

  private async tableSql(ref: TableRef): Promise<string> {
    const r = await this.resolve({ parts: ref.parts });
    const df = await this.floe.read.delta(r.location, travelOptions(ref.travel));
    return df.toSQL();
  }

  private async changesSql(fn: Token, args: Token[][]): Promise<string> {
    const byPath = fn.value.toLowerCase() === 'table_changes_by_path';
    if (args.length < 2 || args.length > 3) throw analysisErrorAt(fn, `${fn.value}() takes a table ${byPath ? 'path' : 'name'}, a start and an optional end`, { construct: fn.value });
    const lit = (a: Token[], what: string): Token => {
      const t = a.length === 1 ? a[0]! : a.length === 2 && a[0]!.kind === 'op' && a[0]!.text === '-' ? a[1]! : undefined;
      if (!t || (t.kind !== 'string' && t.kind !== 'number') || a.length === 2) throw analysisErrorAt(a[0] ?? fn, `${fn.value}(): the ${what} must be a literal (a version number or a timestamp string)`);
      return t;
    };
    const nameTok = lit(args[0]!, byPath ? 'path' : 'table name');
    if (nameTok.kind !== 'string') throw analysisErrorAt(nameTok, `${fn.value}(): the ${byPath ? 'path' : 'table name'} must be a string`);
    let location: string;
    if (byPath) location = resolveLocation(nameTok.value);
    else {
      let ref: NameRef;
      try {
        const c = new Cursor(tokenize(nameTok.value));
        ref = parseName(c);
        c.expectEnd();
      } catch {
        throw analysisErrorAt(nameTok, `${fn.value}(): '${nameTok.value}' is not a table name`);
      }
      location = (await this.resolve(ref)).location;
    }
    const opts: ChangeFeedOptions = {};
    // A bound: a version number or a timestamp string, or a constant expression (TIMESTAMP '…',
    // CAST(…), current_timestamp() - INTERVAL 1 DAY), evaluated once: an integer is a version, any
    // other value a timestamp.
    const bound = async (a: Token[], what: 'start' | 'end'): Promise<{ version: number } | { timestamp: string }> => {
      const single = a.length === 1 ? a[0]! : undefined;
      if (single && (single.kind === 'string' || single.kind === 'number')) return single.kind === 'number' ? { version: intLiteral(single) } : { timestamp: single.value };
      if (!a.length) throw analysisErrorAt(fn, `${fn.value}(): the ${what} is missing`);
      let row: Record<string, unknown> | undefined;
      try {
        const e = await translateExpr(a, this.translateContext());
        [row] = await this.floe.engine.allJson(`SELECT CAST(__b AS VARCHAR) AS v, typeof(__b) AS t FROM (SELECT (${e}) AS __b)`);
      } catch (err) {
        throw analysisErrorAt(a[0]!, `${fn.value}(): the ${what} must be a version number or a timestamp (a literal or a constant expression): ${err instanceof Error ? err.message.replace(/^\[[A-Z_]+\] /, '') : String(err)}`);
      }
      const t = String(row?.t ?? '');
      if (row?.v === null || row?.v === undefined) throw analysisErrorAt(a[0]!, `${fn.value}(): the ${what} is NULL`);
      if (DUCK_INTEGER_TYPES.has(t)) return { version: Number(row.v) };
      if (/^(TIMESTAMP|DATE|VARCHAR)/.test(t)) return { timestamp: String(row.v) };
      throw analysisErrorAt(a[0]!, `${fn.value}(): the ${what} must be a version number or a timestamp, not a ${t} value`);
    };
    const start = await bound(args[1]!, 'start');
    if ('version' in start) opts.startingVersion = start.version;
    else opts.startingTimestamp = start.timestamp;
    if (args[2]) {
      const end = await bound(args[2], 'end');
      if ('version' in end) opts.endingVersion = end.version;
      else opts.endingTimestamp = end.timestamp;
    }
    const df = await this.floe.read.changes(location, opts);
    return df.toSQL();
  }

  private async query(tokens: Token[]): Promise<DataFrame> {
    const sql = await translateQuery(tokens, this.translateContext());
    // Bind now, so a wrong column or type is reported at this statement, not when rows are read.
    await this.floe.engine.describe(sql);
    return new DataFrame(this.floe, { kind: 'sql', sql });
  }

  private expr(tokens: Token[], extra: Partial<TranslateContext> = {}): Promise<string> {
    return translateExpr(tokens, this.translateContext(extra));
  }

  /** A value written to a column: the `DEFAULT` keyword is the column's DEFAULT, or NULL when it has none (Spark). */
  private async valueFor(schema: StructType, column: string, tokens: Token[], translate: (t: Token[]) => Promise<string>): Promise<string> {
    if (tokens.length !== 1 || tokens[0]!.kind !== 'ident' || tokens[0]!.upper !== 'DEFAULT') return translate(tokens);
    const f = schema.fields.find((x) => x.name.toLowerCase() === column.toLowerCase());
    const d = f ? columnDefault(f) : undefined;
    return d === undefined ? 'NULL' : storedExprToDuck(d, { what: `the DEFAULT of column ${f!.name}` });
  }

  // ---- statements ----

  private async dispatch(s: Statement): Promise<SqlResult> {
    switch (s.kind) {
      case 'query':
        return { kind: 'rows', dataFrame: await this.query(s.tokens) };
      case 'describeQuery': {
        const df = await this.query(s.tokens);
        const cols = await df.columns();
        return { kind: 'status', message: `${cols.length} column(s)`, rows: cols.map((c) => ({ col_name: c.name, data_type: c.type.toLowerCase(), comment: null })) };
      }
      case 'createSchema': {
        const name = this.name(s.name, 'schema');
        const created = await this.catalog.createSchema(name, { ifNotExists: s.ifNotExists, comment: s.comment });
        return { kind: 'status', message: created ? `created schema ${name}` : `schema ${name} already exists` };
      }
      case 'showSchemas': {
        // The pipelines' checkpoints and event logs live in the warehouse's _pipelines folder: not a schema.
        const all = (await this.catalog.listSchemas()).filter((n) => n !== PIPELINES_DIR);
        const names = s.like ? all.filter((n) => likeMatch(s.like!, n)) : all;
        return { kind: 'status', message: `${names.length} schema(s)`, rows: names.map((n) => ({ databaseName: n })) };
      }
      case 'useSchema': {
        const name = this.name(s.name, 'schema');
        await this.catalog.requireSchema(name);
        this.state.currentSchema = name;
        return { kind: 'status', message: `using schema ${name}` };
      }
      case 'showTables': {
        const schema = s.schema ? this.name(s.schema, 'schema') : this.state.currentSchema;
        const tables = (await this.catalog.listTables(schema)).filter((t) => !s.like || likeMatch(s.like, t.name));
        return { kind: 'status', message: `${tables.length} table(s)`, rows: tables.map((t) => ({ database: schema, tableName: t.name, isTemporary: false })) };
      }
      case 'dropTable': {
        const t = this.target(s.table);
        if (t.kind === 'path') throw analysisErrorAt(s.table.parts[0]!, 'DROP TABLE on a path table is not supported: delete the folder instead', { construct: 'DROP TABLE delta.`path`' });
        const e = await this.catalog.dropTable(t.schema, t.table, { ifExists: s.ifExists });
        if (e) this.floe.forgetLog(e.location);
        return { kind: 'status', message: e ? `dropped ${e.type === 'MANAGED' ? 'managed' : 'external'} table ${t.schema}.${t.table}` : `table ${t.schema}.${t.table} does not exist` };
      }
      case 'dropSchema': {
        const name = this.name(s.name, 'schema');
        const dropped = await this.catalog.dropSchema(name, { ifExists: s.ifExists, cascade: s.cascade });
        if (dropped && this.state.currentSchema === name) this.state.currentSchema = DEFAULT_SCHEMA;
        return { kind: 'status', message: dropped ? `dropped schema ${name}` : `schema ${name} does not exist` };
      }
      case 'createTable':
        return this.createTable(s);
      case 'insert':
        return this.insert(s);
      case 'update': {
        const r = await this.resolve(s.table);
        const snap = await this.floe.snapshot(r.location);
        const quals = [r.lastName, ...(s.alias ? [s.alias] : [])];
        const column = stripQualifier(quals, [...(s.where ? [s.where] : []), ...s.set.map(([, v]) => v)]);
        const set: Record<string, string> = {};
        for (const [col, value] of s.set) {
          const name = assignTarget(col, quals);
          resolveColumnAt(snap.schema, name, r.display, col[0]!);
          set[name] = await this.valueFor(snap.schema, name, value, (t) => this.expr(t, { column }));
        }
        const condition = s.where ? await this.expr(s.where, { column }) : undefined;
        // Subqueries name the table's rows by its alias (or name): `EXISTS (… WHERE k.id = t.id)`.
        const res = await (await DeltaTable.forPath(this.floe, r.location)).alias(s.alias ?? r.lastName).update({ condition, set });
        const n = Number(res.metrics.numUpdatedRows ?? 0);
        return { kind: 'status', message: `updated ${n} row(s)`, rows: [{ num_affected_rows: n }] };
      }
      case 'delete': {
        const r = await this.resolve(s.table);
        const quals = [r.lastName, ...(s.alias ? [s.alias] : [])];
        const condition = s.where ? await this.expr(s.where, { column: stripQualifier(quals, [s.where]) }) : undefined;
        const res = await (await DeltaTable.forPath(this.floe, r.location)).alias(s.alias ?? r.lastName).delete(condition);
        const n = Number(res.metrics.numDeletedRows ?? 0);
        return { kind: 'status', message: `deleted ${n} row(s)`, rows: [{ num_affected_rows: n }] };
      }
      case 'merge':
        return this.merge(s);
      case 'truncate': {
        const r = await this.resolve(s.table);
        await (await DeltaTable.forPath(this.floe, r.location)).truncate();
        return { kind: 'status', message: `truncated ${r.display}` };
      }
      case 'describe':
        return this.describe(s.table, s.extended);
      case 'describeHistory': {
        const r = await this.resolve(s.table);
        const h = await (await DeltaTable.forPath(this.floe, r.location)).history(s.limit);
        return { kind: 'status', message: `${h.length} version(s)`, rows: h.map((e) => ({ ...e })) };
      }
      case 'describeDetail': {
        const r = await this.resolve(s.table);
        const d = await (await DeltaTable.forPath(this.floe, r.location)).detail();
        return { kind: 'status', message: `detail of ${r.display}`, rows: [{ ...d, name: r.entry ? r.display : d.name }] };
      }
      case 'showTblProperties': {
        const r = await this.resolve(s.table);
        const snap = await this.floe.snapshot(r.location);
        const props: Record<string, string> = { ...snap.configuration, 'delta.minReaderVersion': String(snap.protocol.minReaderVersion), 'delta.minWriterVersion': String(snap.protocol.minWriterVersion) };
        if (s.key !== undefined) {
          const v = props[s.key];
          return { kind: 'status', message: s.key, rows: [{ key: s.key, value: v ?? `Table ${r.display} does not have property: ${s.key}` }] };
        }
        return { kind: 'status', message: `${Object.keys(props).length} propert(ies)`, rows: Object.entries(props).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => ({ key, value })) };
      }
      case 'showColumns': {
        const r = await this.resolve(s.table);
        const snap = await this.floe.snapshot(r.location);
        return { kind: 'status', message: `${snap.schema.fields.length} column(s)`, rows: snap.schema.fields.map((f) => ({ col_name: f.name })) };
      }
      case 'showCreateTable': {
        const r = await this.resolve(s.table);
        const snap = await this.floe.snapshot(r.location);
        const cols = snap.schema.fields.map((f) => `  ${quoteBacktick(f.name)} ${sparkFieldTypeName(f).toUpperCase()}${f.nullable ? '' : ' NOT NULL'}${generationExpression(f) !== undefined ? ` GENERATED ALWAYS AS (${generationExpression(f)})` : ''}${columnDefault(f) !== undefined ? ` DEFAULT ${columnDefault(f)}` : ''}${typeof f.metadata.comment === 'string' ? ` COMMENT ${sqlString(f.metadata.comment)}` : ''}`);
        let ddl = `CREATE TABLE ${r.display} (\n${cols.join(',\n')})\nUSING delta`;
        if (snap.partitionColumns.length) ddl += `\nPARTITIONED BY (${snap.partitionColumns.map(quoteBacktick).join(', ')})`;
        if (r.entry?.type === 'EXTERNAL' || !r.entry) ddl += `\nLOCATION ${sqlString(r.location)}`;
        if (snap.metadata.description) ddl += `\nCOMMENT ${sqlString(snap.metadata.description)}`;
        const props = Object.entries(snap.configuration);
        if (props.length) ddl += `\nTBLPROPERTIES (\n${props.map(([k, v]) => `  ${sqlString(k)} = ${sqlString(v)}`).join(',\n')})`;
        return { kind: 'status', message: ddl, rows: [{ createtab_stmt: ddl + '\n' }] };
      }
      case 'alterSetProperties': {
        const r = await this.resolve(s.table);
        const v = await this.setProperties(r.location, s.properties);
        return { kind: 'status', message: `set ${Object.keys(s.properties).length} propert(ies) on ${r.display} (version ${v})` };
      }
      case 'alterUnsetProperties': {
        const r = await this.resolve(s.table);
        const v = await (await DeltaTable.forPath(this.floe, r.location)).unsetProperties(s.keys, { ifExists: s.ifExists });
        return { kind: 'status', message: `unset ${s.keys.length} propert(ies) on ${r.display} (version ${v})` };
      }
      case 'alterAddColumns': {
        const r = await this.resolve(s.table);
        const v = await addColumns(this.floe, r.location, s.columns.map((c) => ({ path: c.path.map((t) => t.value), type: c.type, nullable: c.nullable, comment: c.comment, position: c.position, ...(c.charVarchar ? { charVarchar: c.charVarchar } : {}) })));
        return { kind: 'status', message: `added ${s.columns.length} column(s) to ${r.display} (version ${v})` };
      }
      case 'alterRenameColumn': {
        const r = await this.resolve(s.table);
        const v = await renameColumn(this.floe, r.location, s.from.map((t) => t.value), s.to.value);
        return { kind: 'status', message: `renamed column ${s.from.map((t) => t.value).join('.')} to ${s.to.value} in ${r.display} (version ${v})` };
      }
      case 'alterDropColumns': {
        const r = await this.resolve(s.table);
        const v = await dropColumns(this.floe, r.location, s.columns.map((c) => c.map((t) => t.value)), { ifExists: s.ifExists });
        return { kind: 'status', message: v === null ? `no column dropped from ${r.display}` : `dropped ${s.columns.length} column(s) from ${r.display} (version ${v})` };
      }
      case 'alterAddConstraint': {
        const r = await this.resolve(s.table);
        // Stored as written (Spark SQL, as Spark stores it); writers translate it when they enforce it.
        const checkSql = await storedExprToDuck(s.exprText, { what: `CHECK constraint ${s.name.value}` }).catch((e: unknown) => {
          throw analysisErrorAt(s.expr[0]!, (e as Error).message.replace(/^\[[A-Z_]+\]\s*/, ''), { construct: 'CHECK expression' });
        });
        const df = await this.floe.read.delta(r.location);
        try {
          await this.floe.engine.describe(`SELECT (${checkSql}) AS c FROM (${await df.toSQL()}) LIMIT 0`);
        } catch (e) {
          throw analysisErrorAt(s.expr[0]!, `CHECK constraint (${s.exprText}) cannot be evaluated over ${r.display}: ${(e as Error).message.split('\n')[0]}`, { construct: 'CHECK expression' });
        }
        const v = await addConstraint(this.floe, r.location, s.name.value, s.exprText, checkSql);
        return { kind: 'status', message: `added constraint ${s.name.value.toLowerCase()} to ${r.display} (version ${v})` };
      }
      case 'alterDropConstraint': {
        const r = await this.resolve(s.table);
        const v = await dropConstraint(this.floe, r.location, s.name.value, { ifExists: s.ifExists });
        return { kind: 'status', message: v === null ? `constraint ${s.name.value.toLowerCase()} does not exist on ${r.display}` : `dropped constraint ${s.name.value.toLowerCase()} from ${r.display} (version ${v})` };
      }
      case 'alterColumn': {
        const r = await this.resolve(s.table);
        const v = await changeColumn(this.floe, r.location, s.column.map((t) => t.value), { nullable: s.nullable, comment: s.comment, type: s.type, ...(s.charVarchar ? { charVarchar: s.charVarchar } : {}), position: s.position, default: s.default });
        return { kind: 'status', message: `changed column ${s.column.map((t) => t.value).join('.')} of ${r.display} (version ${v})` };
      }
      case 'convertToDelta': {
        const location = resolveLocation(s.path.value);
        const res = await convertToDelta(this.floe, location, { partitionSchema: s.partitionSchema });
        return { kind: 'status', message: `converted ${res.numFiles} Parquet file(s) at ${location} to a Delta table (version ${res.version})`, rows: [{ path: location, num_files: res.numFiles }] };
      }
      case 'vacuum': {
        const r = await this.resolve(s.table);
        const res = await (await DeltaTable.forPath(this.floe, r.location)).vacuum(s.retainHours, { dryRun: s.dryRun });
        const rows = s.dryRun ? res.filesDeleted.map((f) => ({ path: path.join(r.location, f) })) : [{ path: r.location }];
        return { kind: 'status', message: `${s.dryRun ? 'would delete' : 'deleted'} ${res.filesDeleted.length} file(s)`, rows };
      }
      case 'optimize': {
        const r = await this.resolve(s.table);
        const where = s.where ? await this.expr(s.where) : undefined;
        const res = await (await DeltaTable.forPath(this.floe, r.location)).optimize({ where, zOrderBy: s.zOrderBy });
        const done = s.zOrderBy ? `z-ordered ${res.metrics.numFilesRemoved} file(s) by ${s.zOrderBy.join(', ')} into ${res.metrics.numFilesAdded}` : `compacted ${res.metrics.numFilesRemoved} file(s) into ${res.metrics.numFilesAdded}`;
        return { kind: 'status', message: res.version === null ? 'nothing to compact' : done, rows: [{ path: r.location, metrics: res.metrics }] };
      }
      case 'restore': {
        const r = await this.resolve(s.table);
        const t = await DeltaTable.forPath(this.floe, r.location);
        const res = 'versionAsOf' in s.travel ? await t.restoreToVersion(s.travel.versionAsOf) : await t.restoreToTimestamp(s.travel.timestampAsOf);
        const m = res.metrics;
        return {
          kind: 'status', message: `restored ${r.display} as version ${res.version}`,
          rows: [{ table_size_after_restore: m.tableSizeAfterRestore, num_of_files_after_restore: m.numOfFilesAfterRestore, num_removed_files: m.numRemovedFiles, num_restored_files: m.numRestoredFiles, removed_files_size: m.removedFilesSize, restored_files_size: m.restoredFilesSize }],
        };
      }
      case 'set': {
        if (s.key === undefined) {
          const all = this.floe.config.all();
          return { kind: 'status', message: `${Object.keys(all).length} setting(s)`, rows: Object.entries(all).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => ({ key, value })) };
        }
        if (s.value === undefined) return { kind: 'status', message: s.key, rows: [{ key: s.key, value: this.floe.config.get(s.key) ?? '<undefined>' }] };
        if (s.key === SESSION_TIME_ZONE_CONF && !UTC_ZONE.test(s.value.trim())) {
          throw new FloeError(ANALYSIS_ERROR, `Setting ${SESSION_TIME_ZONE_CONF} to '${s.value}' is not supported by floe SQL yet: timestamps are computed and shown in UTC (line ${s.at.line}, column ${s.at.col}).`, { line: s.at.line, col: s.at.col, construct: SESSION_TIME_ZONE_CONF, value: s.value });
        }
        this.floe.config.set(s.key, s.value);
        return { kind: 'status', message: `${s.key}=${s.value}`, rows: [{ key: s.key, value: s.value }] };
      }
      case 'reset': {
        const init = this.state.initialConfig;
        const keys = s.key !== undefined ? [s.key] : Object.keys(this.floe.config.all());
        for (const k of keys) this.floe.config.unset(k);
        for (const [k, v] of Object.entries(init)) if (s.key === undefined || k === s.key) this.floe.config.set(k, v);
        return { kind: 'status', message: s.key !== undefined ? `reset ${s.key}` : 'reset all settings' };
      }
    }
  }

  /** SET TBLPROPERTIES; a column mapping mode change goes through alter.ts (ids and physical names for every field). */
  private async setProperties(location: string, props: Record<string, string>): Promise<number> {
    const table = await DeltaTable.forPath(this.floe, location);
    return table.setProperties(props);
  }

  private async createTable(s: Extract<Statement, { kind: 'createTable' }>): Promise<SqlResult> {
    const t = this.target(s.table);
    if (s.at.upper === 'REPLACE') {
      const exists = t.kind === 'path' ? await DeltaTable.isDeltaTable(this.floe, t.location) : !!(await this.catalog.getTable(t.schema, t.table));
      if (!exists) throw new FloeError('DELTA_CANNOT_REPLACE_MISSING_TABLE', `Table ${t.display} cannot be replaced as it does not exist. Use CREATE OR REPLACE TABLE to create the table.`, { table: t.display });
    }
    const spec = (c: ColumnDef): ColumnSpec => ({ name: c.name, type: c.type, nullable: c.nullable, comment: c.comment, generatedAlwaysAs: c.generatedAlwaysAs, default: c.default, ...(c.charVarchar ? { charVarchar: c.charVarchar } : {}) });
    let columns: ColumnSpec[] | StructType | undefined = s.columns?.map(spec);
    const mappingMode = (s.properties['delta.columnMapping.mode'] ?? '').toLowerCase();
    if (s.columns && (mappingMode === 'name' || mappingMode === 'id')) {
      // Column mapping from the start: every field gets an id and a `col-<uuid>` physical name, as Spark.
      const st = toStructType(s.columns.map(spec));
      const max = assignColumnMapping(st, 0, false);
      columns = st;
      s = { ...s, properties: { ...s.properties, 'delta.columnMapping.maxColumnId': String(max) } };
    }
    const colNames = new Set((s.columns ?? []).map((c) => c.name.toLowerCase()));
    if (s.columns) {
      for (const p of s.partitionBy) if (!colNames.has(p.toLowerCase())) throw analysisErrorAt(s.at, `Partition column '${p}' is not one of the table's columns`, { construct: 'PARTITIONED BY' });
    }
    const partitionBy = s.columns ? s.partitionBy.map((p) => s.columns!.find((c) => c.name.toLowerCase() === p.toLowerCase())!.name) : s.partitionBy;
    const make = async (location: string, replacing: boolean): Promise<void> => {
      if (s.query) {
        const df = await this.query(s.query);
        const exists = await DeltaTable.isDeltaTable(this.floe, location);
        // Recorded as Spark records CTAS / RTAS (a CREATE OR REPLACE that creates is a CREATE).
        const operation = !exists ? 'CREATE TABLE AS SELECT' : s.at.upper === 'REPLACE' ? 'REPLACE TABLE AS SELECT' : 'CREATE OR REPLACE TABLE AS SELECT';
        await writeDelta(this.floe, df, location, {
          operation,
          mode: exists && (replacing || s.orReplace) ? 'overwrite' : 'errorifexists',
          overwriteSchema: exists && (replacing || s.orReplace),
          partitionBy: partitionBy.length ? partitionBy : undefined,
          properties: s.properties,
          description: s.comment,
        });
      } else if (columns) {
        const mode = s.orReplace ? 'createOrReplace' : s.ifNotExists ? 'ifNotExists' : 'create';
        await createTable(this.floe, { path: location, schema: columns, partitionBy, properties: s.properties, comment: s.comment, mode });
      } else {
        // CREATE TABLE t [USING delta] LOCATION '…': register an existing table.
        if (!(await DeltaTable.isDeltaTable(this.floe, location))) throw new FloeError('DELTA_TABLE_NOT_FOUND', `CREATE TABLE … LOCATION '${s.location}' without columns needs an existing Delta table there; none found at ${location}.`, { path: location });
        if (Object.keys(s.properties).length) await (await DeltaTable.forPath(this.floe, location)).setProperties(s.properties);
      }
    };
    if (t.kind === 'path') {
      if (s.location) throw analysisErrorAt(s.at, 'A path table (delta.`…`) cannot also have a LOCATION', { construct: 'LOCATION' });
      const exists = await DeltaTable.isDeltaTable(this.floe, t.location);
      if (exists && s.ifNotExists) return { kind: 'status', message: `table ${t.display} already exists` };
      if (exists && !s.orReplace) throw new FloeError('DELTA_TABLE_ALREADY_EXISTS', `Cannot create ${t.display}: a Delta table already exists there.`, { path: t.location });
      await make(t.location, exists);
      return { kind: 'status', message: `created table ${t.display}` };
    }
    if (!s.location && !s.query && !columns) throw analysisErrorAt(s.at, 'CREATE TABLE needs columns, AS SELECT, or a LOCATION');
    const r = await this.catalog.createTable(t.schema, t.table, { location: s.location, ifNotExists: s.ifNotExists, orReplace: s.orReplace }, (loc, existing) => {
      // A new table at a location this session read before (dropped, or created elsewhere): forget cached commits.
      if (!existing) this.floe.forgetLog(loc);
      return make(loc, existing !== null);
    });
    return { kind: 'status', message: r === 'exists' ? `table ${t.schema}.${t.table} already exists` : `${r === 'replaced' ? 'replaced' : 'created'} table ${t.schema}.${t.table}` };
  }

  private async insert(s: Extract<Statement, { kind: 'insert' }>): Promise<SqlResult> {
    const r = await this.resolve(s.table);
    const snap = await this.floe.snapshot(r.location);
    const targetCols = s.columns ? s.columns.map((c) => resolveColumnAt(snap.schema, c.value, r.display, c)) : snap.schema.fields.map((f) => f.name);
    if (new Set(targetCols).size !== targetCols.length) throw analysisErrorAt(s.at, 'INSERT lists a column twice');
    const alias = `(${targetCols.map(quoteIdent).join(', ')})`;
    // Spark's store assignment: values are cast to the column types (by position), fractional
    // values to integral columns truncated (so the values' types are read first).
    const casts = async (from: string): Promise<string> => castToColumns(snap.schema, targetCols, (await this.floe.engine.describe(`SELECT * FROM ${from}`)).map((c) => c.type));
    let sql: string;
    if (s.values) {
      const rows: string[] = [];
      for (const row of s.values) {
        if (row.length !== targetCols.length) throw new FloeError('INSERT_COLUMN_ARITY_MISMATCH', `Cannot write to ${r.display}: a VALUES row has ${row.length} value(s) but ${targetCols.length} column(s) are written (line ${row[0]?.[0]?.line ?? s.at.line}, column ${row[0]?.[0]?.col ?? s.at.col}).`);
        const vals: string[] = [];
        for (const [i, v] of row.entries()) vals.push(await this.valueFor(snap.schema, targetCols[i]!, v, (t) => this.expr(t)));
        rows.push(`(${vals.join(', ')})`);
      }
      const from = `(VALUES ${rows.join(', ')}) AS __floe_values${alias}`;
      sql = `SELECT ${await casts(from)} FROM ${from}`;
    } else {
      const df = await this.query(s.query!);
      const src = await df.toSQL();
      const cols = await this.floe.engine.describe(src);
      if (cols.length !== targetCols.length) throw new FloeError('INSERT_COLUMN_ARITY_MISMATCH', `Cannot write to ${r.display}: the query produces ${cols.length} column(s) but ${targetCols.length} column(s) are written (line ${s.at.line}, column ${s.at.col}).`);
      const from = `(${src}) AS __floe_insert${alias}`;
      sql = `SELECT ${await casts(from)} FROM ${from}`;
    }
    const replaceWhere = s.replaceWhere ? await this.expr(s.replaceWhere) : undefined;
    if (replaceWhere && !s.overwrite && !s.replaceWhere) throw analysisErrorAt(s.at, 'REPLACE WHERE needs INSERT INTO … REPLACE WHERE');
    const res = await writeDelta(this.floe, new DataFrame(this.floe, { kind: 'sql', sql }), r.location, { mode: s.overwrite || replaceWhere ? 'overwrite' : 'append', replaceWhere, columnDefaults: true });
    return { kind: 'status', message: `inserted ${res.numOutputRows} row(s) into ${r.display}`, rows: [{ num_affected_rows: res.numOutputRows, num_inserted_rows: res.numOutputRows }] };
  }

  private async merge(s: Extract<Statement, { kind: 'merge' }>): Promise<SqlResult> {
    const r = await this.resolve(s.target);
    const snap = await this.floe.snapshot(r.location);
    const tAlias = s.targetAlias ?? r.lastName;
    let source: DataFrame;
    let sAlias: string;
    if ('query' in s.source) {
      source = await this.query(s.source.query);
      sAlias = s.sourceAlias ?? 'source';
    } else {
      const sr = await this.resolve(s.source.table);
      source = await this.floe.read.delta(sr.location, travelOptions(s.source.travel));
      sAlias = s.sourceAlias ?? sr.lastName;
    }
    if (tAlias.toLowerCase() === sAlias.toLowerCase()) throw analysisErrorAt(s.at, `The MERGE target and source need different names (both are '${tAlias}'); add an alias`, { construct: 'MERGE alias' });
    const srcCols = new Set((await source.columns()).map((c) => c.name.toLowerCase()));
    const tgtCols = new Set(snap.schema.fields.map((f) => f.name.toLowerCase()));
    // Unqualified names belong to the side that has them. As Spark resolves them: in the ON condition
    // and MATCHED clauses both sides are in scope (a name both have is ambiguous); a NOT MATCHED
    // clause sees the source only, a NOT MATCHED BY SOURCE clause the target only.
    const columnIn = (scope: 'both' | 'source' | 'target') => (parts: Token[]): string | undefined => {
      if (parts.length !== 1) return undefined;
      const n = parts[0]!.value.toLowerCase();
      const inT = tgtCols.has(n) && scope !== 'source';
      const inS = srcCols.has(n) && scope !== 'target';
      if (inT && !inS) return `${quoteIdent(tAlias)}.${quoteIdent(parts[0]!.value)}`;
      if (inS && !inT) return `${quoteIdent(sAlias)}.${quoteIdent(parts[0]!.value)}`;
      if (inS && inT) throw analysisErrorAt(parts[0]!, `Reference '${parts[0]!.value}' is ambiguous: both ${tAlias} and ${sAlias} have it; qualify it (${tAlias}.${parts[0]!.value} or ${sAlias}.${parts[0]!.value})`, { construct: 'ambiguous column' });
      return undefined;
    };
    const xIn = (scope: 'both' | 'source' | 'target') => (toks: Token[]): Promise<string> => this.expr(toks, { column: outsideSubqueries([toks], columnIn(scope)) });
    const x = xIn('both');
    const table = (await DeltaTable.forPath(this.floe, r.location)).alias(tAlias);
    const b = table.merge(source.alias(sAlias), await x(s.on));
    // WITH SCHEMA EVOLUTION, or the session's spark.databricks.delta.schema.autoMerge.enabled (as Delta).
    const evolve = s.schemaEvolution || autoMergeOn(this.floe.config);
    if (evolve) b.withSchemaEvolution();
    const setOf = async (set: [Token[], Token[]][], xs: (toks: Token[]) => Promise<string>): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      for (const [col, v] of set) {
        const name = assignTarget(col, [tAlias]);
        const target = resolveColumnAt(snap.schema, name, r.display, col[0]!);
        out[target] = await this.valueFor(snap.schema, target, v, xs);
      }
      return out;
    };
    for (const c of s.clauses as MergeClause[]) {
      const xc = xIn(c.kind === 'matched' ? 'both' : c.kind === 'notMatched' ? 'source' : 'target');
      const condition = c.condition ? await xc(c.condition) : undefined;
      if (c.kind === 'matched' && c.action === 'update') {
        if (c.set === '*') b.whenMatchedUpdateAll({ condition });
        else b.whenMatchedUpdate({ condition, set: await setOf(c.set, xc) });
      } else if (c.kind === 'matched') b.whenMatchedDelete({ condition });
      else if (c.kind === 'notMatched') {
        if (!c.columns) b.whenNotMatchedInsertAll({ condition });
        else {
          const values: Record<string, string> = {};
          for (let i = 0; i < c.columns.length; i++) {
            const col: Token = c.columns[i]!;
            const target: string = evolve ? col.value : resolveColumnAt(snap.schema, col.value, r.display, col);
            values[target] = await this.valueFor(snap.schema, target, c.values![i]!, xc);
          }
          b.whenNotMatchedInsert({ condition, values });
        }
      } else if (c.action === 'update') b.whenNotMatchedBySourceUpdate({ condition, set: await setOf(c.set, xc) });
      else b.whenNotMatchedBySourceDelete({ condition });
    }
    const res = await b.execute();
    const m = res.metrics;
    const affected = m.numTargetRowsUpdated + m.numTargetRowsDeleted + m.numTargetRowsInserted;
    return {
      kind: 'status', message: `merged into ${r.display}: ${m.numTargetRowsUpdated} updated, ${m.numTargetRowsDeleted} deleted, ${m.numTargetRowsInserted} inserted`,
      rows: [{ num_affected_rows: affected, num_updated_rows: m.numTargetRowsUpdated, num_deleted_rows: m.numTargetRowsDeleted, num_inserted_rows: m.numTargetRowsInserted }],
    };
  }

  private async describe(ref: NameRef, extended: boolean): Promise<SqlResult> {
    const r = await this.resolve(ref);
    const snap = await this.floe.snapshot(r.location);
    const rows: Record<string, unknown>[] = snap.schema.fields.map((f) => ({ col_name: f.name, data_type: sparkFieldTypeName(f), comment: typeof f.metadata.comment === 'string' ? f.metadata.comment : null }));
    if (snap.partitionColumns.length) {
      rows.push({ col_name: '', data_type: '', comment: '' }, { col_name: '# Partition Information', data_type: '', comment: '' }, { col_name: '# col_name', data_type: 'data_type', comment: 'comment' });
      for (const p of snap.partitionColumns) {
        const f = snap.schema.fields.find((x) => x.name === p)!;
        rows.push({ col_name: f.name, data_type: sparkFieldTypeName(f), comment: typeof f.metadata.comment === 'string' ? f.metadata.comment : null });
      }
    }
    if (extended) {
      const props = Object.entries(snap.configuration).map(([k, v]) => `${k}=${v}`).join(',');
      rows.push(
        { col_name: '', data_type: '', comment: '' },
        { col_name: '# Detailed Table Information', data_type: '', comment: '' },
        { col_name: 'Catalog', data_type: DEFAULT_CATALOG, comment: '' },
        { col_name: 'Database', data_type: r.entry?.schema ?? '', comment: '' },
        { col_name: 'Table', data_type: r.entry?.name ?? r.lastName, comment: '' },
        { col_name: 'Type', data_type: r.entry?.type ?? 'EXTERNAL', comment: '' },
        { col_name: 'Location', data_type: r.location, comment: '' },
        { col_name: 'Provider', data_type: 'delta', comment: '' },
        { col_name: 'Comment', data_type: snap.metadata.description ?? '', comment: '' },
        { col_name: 'Table Properties', data_type: `[${props}]`, comment: '' },
      );
    }
    return { kind: 'status', message: `${snap.schema.fields.length} column(s)`, rows };
  }
}

/** Spark's session time zone setting: floe supports only UTC (which any of UTC_ZONE's spellings names). */
const SESSION_TIME_ZONE_CONF = 'spark.sql.session.timeZone';
const UTC_ZONE = /^(?:(?:Etc\/)?(?:UTC|UCT|GMT|Universal|Zulu|Greenwich)|Z|(?:UTC|GMT)?[+-]0{1,2}(?::?00)?|GMT0)$/i;

function travelOptions(t: TimeTravel): { versionAsOf?: number; timestampAsOf?: string } {
  if (!t) return {};
  return 'versionAsOf' in t ? { versionAsOf: t.versionAsOf } : { timestampAsOf: t.timestampAsOf };
}

function intLiteral(t: Token): number {
  if (!/^\d+L?$/i.test(t.text)) throw analysisErrorAt(t, `Expected a version number but found '${t.text}'`);
  const v = Number(t.text.replace(/L$/i, ''));
  if (!Number.isSafeInteger(v)) throw analysisErrorAt(t, `Version ${t.text} is too large`);
  return v;
}

/**
 * A column hook that drops a qualifier naming the table (`t.id` → `"id"`), for UPDATE and DELETE,
 * outside subqueries only: inside one (`EXISTS (SELECT 1 FROM k WHERE k.id = t.id)`) the qualifier
 * stays, and resolves as in Spark, innermost table first, then the target's rows (which the
 * statement scans under its alias or name). `exprs` are the statement's expressions, to find their subqueries.
 */
function stripQualifier(quals: string[], exprs: Token[][]): (parts: Token[]) => string | undefined {
  const q = new Set(quals.map((x) => x.toLowerCase()));
  const inSub = subqueryTokens(exprs);
  return (parts) => (parts.length >= 2 && q.has(parts[0]!.value.toLowerCase()) && !inSub.has(parts[0]!) ? parts.slice(1).map((p) => quoteIdent(p.value)).join('.') : undefined);
}

/** The tokens inside subqueries, `(SELECT …)` / `(WITH …)` / `(VALUES …)`, of expressions. */
function subqueryTokens(exprs: Token[][]): Set<Token> {
  const inside = new Set<Token>();
  for (const toks of exprs) {
    const open: boolean[] = []; // per open parenthesis: does it start a subquery?
    let depth = 0; // open subquery parentheses
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i]!;
      if (depth > 0) inside.add(t);
      if (t.kind === 'op' && t.text === '(') {
        const n = toks[i + 1];
        const sub = n?.kind === 'ident' && (n.upper === 'SELECT' || n.upper === 'WITH' || n.upper === 'VALUES');
        open.push(sub);
        if (sub) depth++;
      } else if (t.kind === 'op' && t.text === ')' && open.length) {
        if (open.pop()) depth--;
      }
    }
  }
  return inside;
}

/** For MERGE: a column hook that leaves names inside subqueries alone (they resolve innermost first, as in Spark). */
function outsideSubqueries(exprs: Token[][], hook: (parts: Token[]) => string | undefined): (parts: Token[]) => string | undefined {
  const inSub = subqueryTokens(exprs);
  return (parts) => (inSub.has(parts[0]!) ? undefined : hook(parts));
}

/** The column an assignment `[alias.]col = …` sets. */
function assignTarget(col: Token[], quals: string[]): string {
  const q = new Set(quals.map((x) => x.toLowerCase()));
  const parts = col.length >= 2 && q.has(col[0]!.value.toLowerCase()) ? col.slice(1) : col;
  if (parts.length !== 1) throw analysisErrorAt(col[0]!, `Setting a nested field (${col.map((c) => c.value).join('.')}) is not supported`, { construct: 'nested field assignment' });
  return parts[0]!.value;
}

function resolveColumnAt(schema: StructType, name: string, table: string, at: Token): string {
  try {
    return resolveColumn(schema, name, table);
  } catch (e) {
    if (e instanceof FloeError) throw new FloeError(e.code, `${e.message.replace(/^\[[A-Z_]+\]\s*/, '')} (line ${at.line}, column ${at.col})`, { ...e.details, line: at.line, col: at.col });
    throw e;
  }
}

/** SQL LIKE with Spark's SHOW … LIKE wildcards (`*` and `|` alternatives, plus `%` / `_`). */
function likeMatch(pattern: string, name: string): boolean {
  return pattern.split('|').some((p) => {
    const re = new RegExp(`^${p.trim().replace(/[.+?^${}()[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/%/g, '.*').replace(/_/g, '.')}$`, 'i');
    return re.test(name);
  });
}

function quoteBacktick(s: string): string {
  return '`' + s.replace(/`/g, '``') + '`';
}

function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export { parseErrorAt };
