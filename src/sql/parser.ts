/**
 * The statement parser: Delta / Databricks statements into an AST. Expressions and query bodies stay
 * token ranges; the translator turns them into DuckDB SQL when the statement runs.
 */
import type { DataType } from '../core/schema.js';
import { Cursor, RESERVED } from './cursor.js';
import { analysisErrorAt, parseErrorAt, tokenDesc } from './errors.js';
import { splitStatements, type Token } from './lexer.js';
import type { TimeTravel } from './translate.js';
import { parseType } from './types.js';

/** A table name as written: `t`, `db.t`, `spark_catalog.db.t`, `delta.`/path``. */
export interface NameRef {
  parts: Token[];
}

export interface ColumnDef {
  name: string;
  type: DataType;
  nullable: boolean;
  comment?: string;
  /** GENERATED ALWAYS AS (expr): the expression's Spark SQL text. */
  generatedAlwaysAs?: string;
  /** DEFAULT expr: the expression's Spark SQL text. */
  default?: string;
  /** CHAR(n) / VARCHAR(n): `char(n)` / `varchar(n)` (the type is string). */
  charVarchar?: string;
}

/** The Spark SQL text of an expression's tokens (single spaces where the source had white space). */
export function tokensText(toks: Token[]): string {
  return toks.map((t, i) => (i > 0 && t.ws ? ' ' : '') + t.text).join('');
}

/** Stops of a column definition's DEFAULT expression. */
const COLUMN_DEF_KWS = ['NOT', 'COMMENT', 'GENERATED', 'PRIMARY', 'CONSTRAINT', 'MASK', 'REFERENCES', 'FIRST', 'AFTER'];

export type ColumnPosition = { first: true } | { after: string };

export interface AddColumnDef {
  path: Token[];
  type: DataType;
  nullable: boolean;
  comment?: string;
  position?: ColumnPosition;
  /** CHAR(n) / VARCHAR(n): `char(n)` / `varchar(n)` (the type is string). */
  charVarchar?: string;
}

export type MergeClause =
  | { kind: 'matched'; condition?: Token[]; action: 'update'; set: [Token[], Token[]][] | '*' }
  | { kind: 'matched'; condition?: Token[]; action: 'delete' }
  | { kind: 'notMatched'; condition?: Token[]; action: 'insert'; columns?: Token[]; values?: Token[][] }
  | { kind: 'notMatchedBySource'; condition?: Token[]; action: 'update'; set: [Token[], Token[]][] }
  | { kind: 'notMatchedBySource'; condition?: Token[]; action: 'delete' };

export type Statement = { at: Token; text: string } & (
  | { kind: 'query'; tokens: Token[] }
  | { kind: 'createSchema'; name: Token; ifNotExists: boolean; comment?: string }
  | { kind: 'showSchemas'; like?: string }
  | { kind: 'showTables'; schema?: Token; like?: string }
  | { kind: 'useSchema'; name: Token }
  | { kind: 'dropTable'; table: NameRef; ifExists: boolean }
  | { kind: 'dropSchema'; name: Token; ifExists: boolean; cascade: boolean }
  | {
      kind: 'createTable'; table: NameRef; orReplace: boolean; ifNotExists: boolean; columns?: ColumnDef[]; partitionBy: string[];
      location?: string; comment?: string; properties: Record<string, string>; query?: Token[]; provider?: string;
    }
  | { kind: 'insert'; table: NameRef; overwrite: boolean; columns?: Token[]; replaceWhere?: Token[]; values?: Token[][][]; query?: Token[] }
  | { kind: 'update'; table: NameRef; alias?: string; set: [Token[], Token[]][]; where?: Token[] }
  | { kind: 'delete'; table: NameRef; alias?: string; where?: Token[] }
  | {
      kind: 'merge'; target: NameRef; targetAlias?: string; source: { table: NameRef; travel: TimeTravel } | { query: Token[] }; sourceAlias?: string;
      on: Token[]; clauses: MergeClause[]; schemaEvolution: boolean;
    }
  | { kind: 'truncate'; table: NameRef }
  | { kind: 'describe'; table: NameRef; extended: boolean }
  | { kind: 'describeQuery'; tokens: Token[] }
  | { kind: 'describeHistory'; table: NameRef; limit?: number }
  | { kind: 'describeDetail'; table: NameRef }
  | { kind: 'showTblProperties'; table: NameRef; key?: string }
  | { kind: 'showColumns'; table: NameRef }
  | { kind: 'showCreateTable'; table: NameRef }
  | { kind: 'alterSetProperties'; table: NameRef; properties: Record<string, string> }
  | { kind: 'alterUnsetProperties'; table: NameRef; keys: string[]; ifExists: boolean }
  | { kind: 'alterAddColumns'; table: NameRef; columns: AddColumnDef[] }
  | { kind: 'alterRenameColumn'; table: NameRef; from: Token[]; to: Token }
  | { kind: 'alterDropColumns'; table: NameRef; columns: Token[][]; ifExists: boolean }
  | { kind: 'alterAddConstraint'; table: NameRef; name: Token; expr: Token[]; exprText: string }
  | { kind: 'alterDropConstraint'; table: NameRef; name: Token; ifExists: boolean }
  | { kind: 'alterColumn'; table: NameRef; column: Token[]; nullable?: boolean; comment?: string; type?: DataType; charVarchar?: string; position?: ColumnPosition; default?: string | null }
  | { kind: 'convertToDelta'; path: Token; partitionSchema: { name: string; type: DataType }[] }
  | { kind: 'vacuum'; table: NameRef; retainHours?: number; dryRun: boolean }
  | { kind: 'optimize'; table: NameRef; where?: Token[]; zOrderBy?: string[] }
  | { kind: 'restore'; table: NameRef; travel: NonNullable<TimeTravel> }
  | { kind: 'set'; key?: string; value?: string }
  | { kind: 'reset'; key?: string }
);

/** Parses a script into statements (all parsed before any runs, so a syntax error runs nothing). */
export function parseScript(text: string): Statement[] {
  return splitStatements(text).map((s) => parseStatement(s.tokens, s.text));
}

export function parseStatement(tokens: Token[], text: string): Statement {
  const c = new Cursor(tokens);
  const at = c.peek();
  const s = parseInner(c, text);
  return { at, text, ...s } as Statement;
}

type Inner = DistributiveOmit<Statement, 'at' | 'text'>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function startsQuery(c: Cursor): boolean {
  return c.isKw('SELECT') || c.isKw('WITH') || c.isKw('VALUES') || c.isKw('FROM') || (c.isOp('(') && (c.isKw('SELECT', 1) || c.isKw('WITH', 1) || c.isOp('(', 1)));
}

/** The rest of the statement as a query. */
function restAsQuery(c: Cursor): Token[] {
  if (!startsQuery(c)) throw parseErrorAt(c.peek(), `Expected a query (SELECT …) but found ${tokenDesc(c.peek())}`);
  const toks = c.tokens.slice(c.i);
  c.i = c.tokens.length - 1;
  return toks;
}

function unsupported(t: Token, what: string): never {
  throw analysisErrorAt(t, `${what} is not supported by floe SQL yet`, { construct: what });
}

/**
 * `WITH … INSERT INTO t SELECT …` (Spark lets the common table expressions come first): the index of
 * the INSERT after the WITH clause at the cursor, or -1 when the WITH starts a query.
 */
function withInsertAt(c: Cursor): number {
  const toks = c.tokens;
  let i = c.i + 1;
  if (toks[i]?.kind === 'ident' && toks[i]!.upper === 'RECURSIVE') i++;
  const skipGroup = (k: number): number => {
    let depth = 0;
    for (; k < toks.length; k++) {
      const x = toks[k]!;
      if (x.kind === 'op' && x.text === '(') depth++;
      else if (x.kind === 'op' && x.text === ')' && --depth === 0) return k + 1;
    }
    return -1;
  };
  const isOpAt = (k: number, op: string): boolean => toks[k]?.kind === 'op' && toks[k]!.text === op;
  for (;;) {
    if (toks[i]?.kind !== 'ident' && toks[i]?.kind !== 'qident') return -1;
    i++;
    if (isOpAt(i, '(')) i = skipGroup(i);
    if (i < 0 || !(toks[i]?.kind === 'ident' && toks[i]!.upper === 'AS') || !isOpAt(i + 1, '(')) return -1;
    i = skipGroup(i + 1);
    if (i < 0) return -1;
    if (isOpAt(i, ',')) {
      i++;
      continue;
    }
    return toks[i]?.kind === 'ident' && toks[i]!.upper === 'INSERT' ? i : -1;
  }
}

function parseInner(c: Cursor, text: string): Inner {
  const t = c.peek();
  const insertAt = c.isKw('WITH') ? withInsertAt(c) : -1;
  if (insertAt >= 0) {
    const withClause = c.tokens.slice(c.i, insertAt);
    c.i = insertAt;
    const ins = parseInsert(c);
    if (ins.kind !== 'insert' || !ins.query) unsupported(t, 'WITH … INSERT … VALUES');
    // The INSERT's own query may start with WITH too: one WITH clause, the outer names first.
    const q = ins.query;
    const query = q[0]?.kind === 'ident' && q[0].upper === 'WITH' ? [...withClause, { ...q[0], kind: 'op' as const, text: ',', value: ',', upper: ',' }, ...q.slice(1)] : [...withClause, ...q];
    return { ...ins, query };
  }
  if (startsQuery(c)) return { kind: 'query', tokens: restAsQuery(c) };
  if (t.kind !== 'ident') throw parseErrorAt(t, `Expected a statement but found ${tokenDesc(t)}`);
  switch (t.upper) {
    case 'CREATE': return parseCreate(c);
    case 'REPLACE':
      if (c.isKw('TABLE', 1)) {
        // REPLACE TABLE t …: as CREATE OR REPLACE, for a table that exists (the executor checks).
        c.next();
        c.next();
        return parseCreateTable(c, true, false);
      }
      break;
    case 'DROP': return parseDrop(c);
    case 'SHOW': return parseShow(c);
    case 'USE': {
      c.next();
      c.acceptKw('SCHEMA') || c.acceptKw('DATABASE');
      const name = c.ident('a schema name');
      c.expectEnd();
      return { kind: 'useSchema', name };
    }
    case 'INSERT': return parseInsert(c);
    case 'UPDATE': return parseUpdate(c);
    case 'DELETE': return parseDelete(c);
    case 'MERGE': return parseMerge(c);
    case 'TRUNCATE': {
      c.next();
      c.expectKw('TABLE');
      const table = parseName(c);
      if (c.isKw('PARTITION')) unsupported(c.peek(), 'TRUNCATE TABLE … PARTITION');
      c.expectEnd();
      return { kind: 'truncate', table };
    }
    case 'DESCRIBE':
    case 'DESC': return parseDescribe(c);
    case 'ALTER': return parseAlter(c, text);
    case 'VACUUM': {
      c.next();
      const table = parseName(c);
      let retainHours: number | undefined;
      let dryRun = false;
      if (c.acceptKw('RETAIN')) {
        retainHours = c.number('a number of hours');
        c.acceptKw('HOURS') || c.expectKw('HOURS');
      }
      if (c.acceptKw('DRY', 'RUN')) dryRun = true;
      if (c.isKw('USING') || c.isKw('LITE') || c.isKw('FULL')) unsupported(c.peek(), `VACUUM … ${c.peek().upper}`);
      c.expectEnd();
      return { kind: 'vacuum', table, retainHours, dryRun };
    }
    case 'OPTIMIZE': {
      c.next();
      const table = parseName(c);
      let where: Token[] | undefined;
      if (c.acceptKw('WHERE')) where = c.until(['ZORDER'], [], 'a partition predicate');
      let zOrderBy: string[] | undefined;
      if (c.acceptKw('ZORDER')) {
        // ZORDER BY (a, b) or ZORDER BY a, b, as Spark.
        c.expectKw('BY');
        const paren = c.acceptOp('(');
        zOrderBy = [c.ident('a column name').value];
        while (c.acceptOp(',')) zOrderBy.push(c.ident('a column name').value);
        if (paren) c.expectOp(')');
      }
      c.expectEnd();
      return { kind: 'optimize', table, where, zOrderBy };
    }
    case 'RESTORE': {
      c.next();
      c.acceptKw('TABLE');
      const table = parseName(c);
      c.expectKw('TO');
      let travel: NonNullable<TimeTravel>;
      if (c.acceptKw('VERSION', 'AS', 'OF')) travel = { versionAsOf: c.integer('a version number') };
      else if (c.acceptKw('TIMESTAMP', 'AS', 'OF')) travel = { timestampAsOf: c.string('a timestamp string').value };
      else throw parseErrorAt(c.peek(), `Expected VERSION AS OF or TIMESTAMP AS OF but found ${tokenDesc(c.peek())}`);
      c.expectEnd();
      return { kind: 'restore', table, travel };
    }
    case 'SET': return parseSet(c, text);
    case 'RESET': {
      c.next();
      if (c.atEnd()) return { kind: 'reset' };
      const key = rawRest(c, text).trim();
      return { kind: 'reset', key };
    }
    case 'CONVERT': return parseConvert(c);
    case 'CACHE':
    case 'UNCACHE':
    case 'REFRESH':
    case 'ANALYZE':
    case 'MSCK':
    case 'FSCK':
    case 'CLONE':
    case 'GRANT':
    case 'REVOKE':
    case 'COPY':
    case 'EXPLAIN':
      unsupported(t, t.upper);
  }
  throw parseErrorAt(t, `Unknown statement ${tokenDesc(t)}`);
}

/** The remaining source text of the statement (for SET / RESET, which take raw text as Spark does). */
function rawRest(c: Cursor, text: string): string {
  const first = c.peek();
  const base = c.tokens[0]!.offset;
  c.i = c.tokens.length - 1;
  return text.slice(first.offset - base);
}

function parseSet(c: Cursor, text: string): Inner {
  c.next();
  if (c.atEnd()) return { kind: 'set' };
  if (c.isOp('-') && c.isKw('V', 1)) {
    c.i = c.tokens.length - 1;
    return { kind: 'set' };
  }
  if (c.isKw('TIME', 0) && c.isKw('ZONE', 1)) unsupported(c.peek(), 'SET TIME ZONE');
  const rest = rawRest(c, text);
  const eq = rest.indexOf('=');
  const key = (eq < 0 ? rest : rest.slice(0, eq)).trim();
  if (!key || /\s/.test(key)) throw parseErrorAt(c.tokens[1]!, `Expected SET key = value but found '${rest.slice(0, 60)}'`);
  if (eq < 0) return { kind: 'set', key };
  let value = rest.slice(eq + 1).trim();
  if (/^'.*'$|^".*"$/s.test(value) && value.length >= 2) value = value.slice(1, -1);
  return { kind: 'set', key, value };
}

export function parseName(c: Cursor): NameRef {
  const parts = [c.ident('a table name')];
  while (c.isOp('.') && (c.peek(1).kind === 'ident' || c.peek(1).kind === 'qident')) {
    c.next();
    parts.push(c.next());
  }
  if (parts.length > 3) throw parseErrorAt(parts[3]!, 'A table name has at most three parts (catalog.schema.table)');
  return { parts };
}

/** A table name, or a path string (`DESCRIBE HISTORY '/data/events/'`) meaning delta.`/data/events/`. */
function parseNameOrPath(c: Cursor): NameRef {
  const t = c.peek();
  if (t.kind !== 'string') return parseName(c);
  c.next();
  return { parts: [{ ...t, kind: 'ident', value: 'delta', upper: 'DELTA' }, { ...t, kind: 'qident' }] };
}

function parseCreate(c: Cursor): Inner {
  const start = c.next(); // CREATE
  let orReplace = false;
  if (c.acceptKw('OR', 'REPLACE')) orReplace = true;
  if (c.acceptKw('SCHEMA') || c.acceptKw('DATABASE')) {
    if (orReplace) throw parseErrorAt(start, 'CREATE OR REPLACE SCHEMA is not valid');
    const ifNotExists = c.acceptKw('IF', 'NOT', 'EXISTS');
    const name = c.ident('a schema name');
    let comment: string | undefined;
    for (;;) {
      if (c.acceptKw('COMMENT')) comment = c.string().value;
      else if (c.isKw('LOCATION') || c.isKw('MANAGED') || c.isKw('WITH') || c.isKw('DBPROPERTIES')) unsupported(c.peek(), `CREATE SCHEMA … ${c.peek().upper}`);
      else break;
    }
    c.expectEnd();
    return { kind: 'createSchema', name, ifNotExists, comment };
  }
  if (c.isKw('EXTERNAL')) c.next();
  if (c.isKw('TEMPORARY') || c.isKw('TEMP') || c.isKw('VIEW') || c.isKw('GLOBAL') || c.isKw('FUNCTION') || c.isKw('STREAMING') || c.isKw('MATERIALIZED') || c.isKw('LIVE')) {
    unsupported(c.peek(), `CREATE ${c.peek().upper}`);
  }
  c.expectKw('TABLE');
  return parseCreateTable(c, orReplace, true);
}

function parseCreateTable(c: Cursor, orReplace: boolean, allowIfNotExists: boolean): Inner {
  const ifNotExists = allowIfNotExists && c.acceptKw('IF', 'NOT', 'EXISTS');
  if (ifNotExists && orReplace) throw parseErrorAt(c.peek(), 'CREATE OR REPLACE TABLE cannot have IF NOT EXISTS');
  const table = parseName(c);
  let columns: ColumnDef[] | undefined;
  if (c.isOp('(')) columns = c.list(() => parseColumnDef(c));
  const partitionBy: string[] = [];
  const properties: Record<string, string> = {};
  let location: string | undefined;
  let comment: string | undefined;
  let provider: string | undefined;
  let query: Token[] | undefined;
  for (;;) {
    if (c.acceptKw('USING')) {
      const p = c.ident('a table format');
      provider = p.value.toLowerCase();
      if (provider !== 'delta') throw analysisErrorAt(p, `Only USING DELTA tables are supported, not ${p.value}`, { construct: `USING ${p.value}` });
    } else if (c.acceptKw('PARTITIONED', 'BY')) {
      partitionBy.push(...c.list(() => {
        const n = c.ident('a partition column');
        if (!c.isOp(',') && !c.isOp(')')) unsupported(c.peek(), 'A typed column in PARTITIONED BY');
        return n.value;
      }));
    } else if (c.acceptKw('LOCATION')) location = c.string('a location string').value;
    else if (c.acceptKw('COMMENT')) comment = c.string('a comment string').value;
    else if (c.acceptKw('TBLPROPERTIES')) Object.assign(properties, parseProperties(c));
    else if (c.isKw('CLUSTER') || c.isKw('OPTIONS') || c.isKw('CLUSTERED') || c.isKw('ROW') || c.isKw('STORED') || c.isKw('SHALLOW') || c.isKw('DEEP') || c.isKw('LIKE')) unsupported(c.peek(), `CREATE TABLE … ${c.peek().upper}`);
    else if (c.acceptKw('AS')) {
      query = restAsQuery(c);
      break;
    } else if (startsQuery(c)) {
      query = restAsQuery(c);
      break;
    } else break;
  }
  c.expectEnd();
  if (query && columns) throw analysisErrorAt(c.tokens[0]!, 'CREATE TABLE … AS SELECT cannot also list columns', { construct: 'column list with AS SELECT' });
  if (!query && !columns && !location) throw parseErrorAt(c.peek(), 'CREATE TABLE needs a column list, AS SELECT, or a LOCATION holding a Delta table');
  return { kind: 'createTable', table, orReplace, ifNotExists, columns, partitionBy, location, comment, properties, query, provider };
}

function parseColumnDef(c: Cursor): ColumnDef {
  const name = c.ident('a column name');
  const cv: { charVarchar?: string } = {};
  const type = parseType(c, cv);
  let nullable = true;
  let comment: string | undefined;
  let generatedAlwaysAs: string | undefined;
  let def: string | undefined;
  for (;;) {
    if (c.acceptKw('NOT', 'NULL')) nullable = false;
    else if (c.acceptKw('NULL')) nullable = true;
    else if (c.acceptKw('COMMENT')) comment = c.string('a comment string').value;
    else if (c.isKw('GENERATED')) {
      const g = c.next();
      if (c.isKw('BY') || (c.isKw('ALWAYS') && c.isKw('AS', 1) && c.isKw('IDENTITY', 2))) unsupported(g, 'IDENTITY columns');
      c.expectKw('ALWAYS', 'AS');
      if (c.isKw('IDENTITY')) unsupported(g, 'IDENTITY columns');
      c.expectOp('(');
      generatedAlwaysAs = tokensText(c.until([], [], 'a generation expression'));
      c.expectOp(')');
    } else if (c.acceptKw('DEFAULT')) def = tokensText(c.until(COLUMN_DEF_KWS, [',', ')'], 'a DEFAULT expression'));
    else if (c.isKw('PRIMARY') || c.isKw('CONSTRAINT') || c.isKw('MASK') || c.isKw('REFERENCES')) unsupported(c.peek(), `Column ${c.peek().upper}`);
    else break;
  }
  return { name: name.value, type, nullable, comment, ...(generatedAlwaysAs !== undefined ? { generatedAlwaysAs } : {}), ...(def !== undefined ? { default: def } : {}), ...(cv.charVarchar ? { charVarchar: cv.charVarchar } : {}) };
}

/** `(key = value, 'k' = 'v', k v)`; keys are dotted identifiers or strings; values literals or identifiers. */
export function parseProperties(c: Cursor): Record<string, string> {
  const out: Record<string, string> = {};
  c.list(() => {
    const key = propertyKey(c);
    c.acceptOp('=');
    const v = c.peek();
    let value: string;
    if (v.kind === 'string') value = c.next().value;
    else if (v.kind === 'number') value = c.next().text;
    else if (c.isOp('-') && c.peek(1).kind === 'number') {
      c.next();
      value = '-' + c.next().text;
    } else if (v.kind === 'ident') {
      value = c.next().text;
      if (/^(true|false)$/i.test(value)) value = value.toLowerCase();
    } else throw parseErrorAt(v, `Expected a property value but found ${tokenDesc(v)}`);
    out[key] = value;
    return key;
  });
  return out;
}

function propertyKey(c: Cursor): string {
  const t = c.peek();
  if (t.kind === 'string') return c.next().value;
  let key = c.ident('a property key').value;
  while (c.isOp('.') && (c.peek(1).kind === 'ident' || c.peek(1).kind === 'qident')) {
    c.next();
    key += '.' + c.next().value;
  }
  return key;
}

function parseDrop(c: Cursor): Inner {
  c.next();
  if (c.acceptKw('TABLE')) {
    const ifExists = c.acceptKw('IF', 'EXISTS');
    const table = parseName(c);
    c.acceptKw('PURGE');
    c.expectEnd();
    return { kind: 'dropTable', table, ifExists };
  }
  if (c.acceptKw('SCHEMA') || c.acceptKw('DATABASE')) {
    const ifExists = c.acceptKw('IF', 'EXISTS');
    const name = c.ident('a schema name');
    const cascade = c.acceptKw('CASCADE');
    if (!cascade) c.acceptKw('RESTRICT');
    c.expectEnd();
    return { kind: 'dropSchema', name, ifExists, cascade };
  }
  if (c.isKw('VIEW') || c.isKw('FUNCTION')) unsupported(c.peek(), `DROP ${c.peek().upper}`);
  throw parseErrorAt(c.peek(), `Expected TABLE or SCHEMA after DROP but found ${tokenDesc(c.peek())}`);
}

function parseLike(c: Cursor): string | undefined {
  if (c.acceptKw('LIKE')) return c.string('a pattern').value;
  if (c.peek().kind === 'string') return c.next().value;
  return undefined;
}

function parseShow(c: Cursor): Inner {
  c.next();
  if (c.acceptKw('SCHEMAS') || c.acceptKw('DATABASES')) {
    const like = parseLike(c);
    c.expectEnd();
    return { kind: 'showSchemas', like };
  }
  if (c.acceptKw('TABLES')) {
    let schema: Token | undefined;
    if (c.acceptKw('IN') || c.acceptKw('FROM')) schema = c.ident('a schema name');
    const like = parseLike(c);
    c.expectEnd();
    return { kind: 'showTables', schema, like };
  }
  if (c.acceptKw('TBLPROPERTIES')) {
    const table = parseName(c);
    let key: string | undefined;
    if (c.isOp('(')) {
      c.next();
      key = propertyKey(c);
      c.expectOp(')');
    }
    c.expectEnd();
    return { kind: 'showTblProperties', table, key };
  }
  if (c.acceptKw('COLUMNS')) {
    c.acceptKw('IN') || c.expectKw('FROM');
    const table = parseName(c);
    c.expectEnd();
    return { kind: 'showColumns', table };
  }
  if (c.acceptKw('CREATE', 'TABLE')) {
    const table = parseName(c);
    c.expectEnd();
    return { kind: 'showCreateTable', table };
  }
  if (c.isKw('PARTITIONS') || c.isKw('VIEWS') || c.isKw('FUNCTIONS') || c.isKw('CATALOGS') || c.isKw('GRANTS')) unsupported(c.peek(), `SHOW ${c.peek().upper}`);
  throw parseErrorAt(c.peek(), `Unknown SHOW statement: ${tokenDesc(c.peek())}`);
}

function parseDescribe(c: Cursor): Inner {
  c.next();
  if (c.acceptKw('HISTORY')) {
    const table = parseNameOrPath(c);
    let limit: number | undefined;
    if (c.acceptKw('LIMIT')) limit = c.integer('a limit');
    c.expectEnd();
    return { kind: 'describeHistory', table, limit };
  }
  if (c.acceptKw('DETAIL')) {
    const table = parseNameOrPath(c);
    c.expectEnd();
    return { kind: 'describeDetail', table };
  }
  if (c.acceptKw('QUERY') || startsQuery(c)) return { kind: 'describeQuery', tokens: restAsQuery(c) };
  if (c.isKw('SCHEMA') || c.isKw('DATABASE') || c.isKw('FUNCTION') || c.isKw('CATALOG')) unsupported(c.peek(), `DESCRIBE ${c.peek().upper}`);
  c.acceptKw('TABLE');
  let extended = false;
  if (c.acceptKw('EXTENDED') || c.acceptKw('FORMATTED')) extended = true;
  const table = parseName(c);
  if (!c.atEnd()) unsupported(c.peek(), 'DESCRIBE of a column or partition');
  return { kind: 'describe', table, extended };
}

function parseAlter(c: Cursor, text: string): Inner {
  c.next();
  c.expectKw('TABLE');
  const table = parseName(c);
  if (c.acceptKw('SET', 'TBLPROPERTIES')) {
    const properties = parseProperties(c);
    c.expectEnd();
    return { kind: 'alterSetProperties', table, properties };
  }
  if (c.acceptKw('UNSET', 'TBLPROPERTIES')) {
    const ifExists = c.acceptKw('IF', 'EXISTS');
    const keys = c.list(() => propertyKey(c));
    c.expectEnd();
    return { kind: 'alterUnsetProperties', table, keys, ifExists };
  }
  const t = c.peek();
  if (c.acceptKw('ADD')) {
    if (c.acceptKw('CONSTRAINT')) {
      const name = c.ident('a constraint name');
      const check = c.peek();
      if (!c.acceptKw('CHECK')) {
        if (c.isKw('PRIMARY') || c.isKw('FOREIGN') || c.isKw('UNIQUE')) unsupported(c.peek(), `${c.peek().upper} KEY constraints`);
        throw parseErrorAt(check, `Expected CHECK but found ${tokenDesc(check)}`);
      }
      const open = c.expectOp('(');
      const expr = c.until([], [], 'a CHECK condition');
      const close = c.expectOp(')');
      c.expectEnd();
      void open;
      const base = c.tokens[0]!.offset;
      const exprText = text.slice(expr[0]!.offset - base, close.offset - base).trim();
      return { kind: 'alterAddConstraint', table, name, expr, exprText };
    }
    if (!c.acceptKw('COLUMNS') && !c.acceptKw('COLUMN')) {
      if (c.isKw('PARTITION') || c.isKw('IF')) unsupported(c.peek(), 'ALTER TABLE … ADD PARTITION');
      throw parseErrorAt(c.peek(), `Expected COLUMNS, COLUMN or CONSTRAINT after ADD but found ${tokenDesc(c.peek())}`);
    }
    const columns = c.isOp('(') ? c.list(() => parseAddColumn(c)) : [parseAddColumn(c)];
    c.expectEnd();
    return { kind: 'alterAddColumns', table, columns };
  }
  if (c.acceptKw('RENAME')) {
    if (c.isKw('TO')) unsupported(c.peek(), 'ALTER TABLE … RENAME TO');
    c.expectKw('COLUMN');
    const from = columnPath(c);
    c.expectKw('TO');
    const to = c.ident('a new column name');
    c.expectEnd();
    return { kind: 'alterRenameColumn', table, from, to };
  }
  if (c.acceptKw('DROP')) {
    if (c.acceptKw('CONSTRAINT')) {
      const ifExists = c.acceptKw('IF', 'EXISTS');
      const name = c.ident('a constraint name');
      c.expectEnd();
      return { kind: 'alterDropConstraint', table, name, ifExists };
    }
    if (!c.acceptKw('COLUMNS') && !c.acceptKw('COLUMN')) {
      if (c.isKw('PARTITION') || c.isKw('IF')) unsupported(c.peek(), 'ALTER TABLE … DROP PARTITION');
      if (c.isKw('FEATURE')) unsupported(c.peek(), 'ALTER TABLE … DROP FEATURE');
      throw parseErrorAt(c.peek(), `Expected COLUMN, COLUMNS or CONSTRAINT after DROP but found ${tokenDesc(c.peek())}`);
    }
    const ifExists = c.acceptKw('IF', 'EXISTS');
    let columns: Token[][];
    if (c.isOp('(')) columns = c.list(() => columnPath(c));
    else {
      columns = [columnPath(c)];
      while (c.acceptOp(',')) columns.push(columnPath(c));
    }
    c.expectEnd();
    return { kind: 'alterDropColumns', table, columns, ifExists };
  }
  if (c.acceptKw('ALTER') || c.acceptKw('CHANGE')) {
    const change = t.upper === 'CHANGE';
    c.acceptKw('COLUMN');
    const column = columnPath(c);
    const out: Extract<Inner, { kind: 'alterColumn' }> = { kind: 'alterColumn', table, column };
    if (c.acceptKw('SET', 'NOT', 'NULL')) out.nullable = false;
    else if (c.acceptKw('DROP', 'NOT', 'NULL')) out.nullable = true;
    else if (c.acceptKw('SET', 'DEFAULT')) out.default = tokensText(c.until([], [], 'a DEFAULT expression'));
    else if (c.acceptKw('DROP', 'DEFAULT')) out.default = null;
    else if (c.isKw('SET') || c.isKw('DROP')) unsupported(c.peek(), `ALTER COLUMN … ${c.peek().upper} ${c.peek(1).upper}`);
    else if (c.acceptKw('TYPE')) {
      const cv: { charVarchar?: string } = {};
      out.type = parseType(c, cv);
      if (cv.charVarchar) out.charVarchar = cv.charVarchar;
    }
    else if (change && !c.isKw('COMMENT') && !c.isKw('FIRST') && !c.isKw('AFTER') && !c.atEnd()) {
      // Hive syntax: CHANGE [COLUMN] old new type [COMMENT …] [FIRST | AFTER x]
      const newName = c.ident('a column name');
      if (newName.value.toLowerCase() !== column[column.length - 1]!.value.toLowerCase()) {
        throw analysisErrorAt(newName, 'CHANGE COLUMN cannot rename a column; use ALTER TABLE … RENAME COLUMN', { construct: 'CHANGE COLUMN rename' });
      }
      const cv: { charVarchar?: string } = {};
      out.type = parseType(c, cv);
      if (cv.charVarchar) out.charVarchar = cv.charVarchar;
    }
    if (c.acceptKw('COMMENT')) out.comment = c.string('a comment string').value;
    if (c.acceptKw('FIRST')) out.position = { first: true };
    else if (c.acceptKw('AFTER')) out.position = { after: c.ident('a column name').value };
    if (out.nullable === undefined && out.type === undefined && out.comment === undefined && !out.position && out.default === undefined) {
      throw parseErrorAt(c.peek(), `Expected SET NOT NULL, DROP NOT NULL, TYPE, COMMENT, FIRST or AFTER but found ${tokenDesc(c.peek())}`);
    }
    c.expectEnd();
    return out;
  }
  if (t.kind === 'ident' && ['REPLACE', 'SET', 'CLUSTER', 'OWNER', 'RECOVER', 'PARTITION'].includes(t.upper)) {
    unsupported(t, `ALTER TABLE … ${t.upper}${c.peek(1).kind === 'ident' ? ' ' + c.peek(1).upper : ''}`);
  }
  throw parseErrorAt(t, `Expected SET/UNSET TBLPROPERTIES, ADD, RENAME COLUMN, DROP, ALTER COLUMN or CHANGE COLUMN but found ${tokenDesc(t)}`);
}

/** A column name, possibly a nested field path (`s.x`). */
function columnPath(c: Cursor): Token[] {
  const parts = [c.ident('a column name')];
  while (c.isOp('.')) {
    c.next();
    parts.push(c.ident('a field name'));
  }
  return parts;
}

function parseAddColumn(c: Cursor): AddColumnDef {
  const colPath = columnPath(c);
  const cv: { charVarchar?: string } = {};
  const type = parseType(c, cv);
  const def: AddColumnDef = { path: colPath, type, nullable: true, ...(cv.charVarchar ? { charVarchar: cv.charVarchar } : {}) };
  for (;;) {
    if (c.acceptKw('NOT', 'NULL')) def.nullable = false;
    else if (c.acceptKw('NULL')) def.nullable = true;
    else if (c.acceptKw('COMMENT')) def.comment = c.string('a comment string').value;
    else if (c.acceptKw('FIRST')) def.position = { first: true };
    else if (c.acceptKw('AFTER')) def.position = { after: c.ident('a column name').value };
    else if (c.isKw('DEFAULT')) throw analysisErrorAt(c.peek(), 'A column added to an existing Delta table cannot have a DEFAULT (existing rows read NULL, as on Databricks); add the column, then ALTER TABLE … ALTER COLUMN … SET DEFAULT', { construct: 'ADD COLUMN … DEFAULT' });
    else if (c.isKw('GENERATED')) throw analysisErrorAt(c.peek(), 'A generated column cannot be added to an existing Delta table (Delta allows GENERATED ALWAYS AS only in CREATE TABLE)', { construct: 'ADD COLUMN … GENERATED' });
    else break;
  }
  return def;
}

/** CONVERT TO DELTA parquet.`/path` [NO STATISTICS] [PARTITIONED BY (col type, …)]. */
function parseConvert(c: Cursor): Inner {
  c.next();
  c.expectKw('TO', 'DELTA');
  const fmt = c.peek();
  if (!(fmt.kind === 'ident' && fmt.upper === 'PARQUET' && c.isOp('.', 1) && c.peek(2).kind === 'qident')) {
    if (fmt.kind === 'ident' && (fmt.upper === 'ICEBERG' || fmt.upper === 'DELTA')) unsupported(fmt, `CONVERT TO DELTA ${fmt.upper.toLowerCase()}.\`path\``);
    unsupported(fmt, 'CONVERT TO DELTA of a catalog table (only parquet.`/path`)');
  }
  c.next();
  c.next();
  const p = c.next();
  c.acceptKw('NO', 'STATISTICS');
  const partitionSchema: { name: string; type: DataType }[] = [];
  if (c.acceptKw('PARTITIONED', 'BY')) {
    partitionSchema.push(...c.list(() => {
      const name = c.ident('a partition column').value;
      if (c.isOp(',') || c.isOp(')')) throw parseErrorAt(c.peek(), `CONVERT TO DELTA … PARTITIONED BY needs a type for ${name} (e.g. ${name} INT)`);
      return { name, type: parseType(c) };
    }));
  }
  c.expectEnd();
  return { kind: 'convertToDelta', path: p, partitionSchema };
}

function parseInsert(c: Cursor): Inner {
  c.next();
  let overwrite = false;
  if (c.acceptKw('OVERWRITE')) overwrite = true;
  else c.expectKw('INTO');
  c.acceptKw('TABLE');
  const table = parseName(c);
  if (c.isKw('PARTITION')) unsupported(c.peek(), 'INSERT … PARTITION (…)');
  let replaceWhere: Token[] | undefined;
  if (c.acceptKw('REPLACE', 'WHERE')) {
    replaceWhere = c.until(['SELECT', 'VALUES', 'WITH', 'FROM', 'TABLE'], ['('], 'a REPLACE WHERE predicate');
  }
  if (c.isKw('BY', 0) && c.isKw('NAME', 1)) unsupported(c.peek(), 'INSERT … BY NAME');
  let columns: Token[] | undefined;
  if (c.isOp('(') && !(c.isKw('SELECT', 1) || c.isKw('WITH', 1) || c.isKw('VALUES', 1))) columns = c.list(() => c.ident('a column name'));
  if (c.acceptKw('VALUES')) {
    const rows: Token[][][] = [];
    for (;;) {
      if (c.isOp('(')) {
        rows.push(c.list(() => c.until([], [',', ')'], 'a value')));
      } else rows.push([c.until([], [','], 'a value')]);
      if (!c.acceptOp(',')) break;
    }
    c.expectEnd();
    return { kind: 'insert', table, overwrite, columns, replaceWhere, values: rows };
  }
  if (c.isKw('TABLE')) unsupported(c.peek(), 'INSERT … TABLE source');
  return { kind: 'insert', table, overwrite, columns, replaceWhere, query: restAsQuery(c) };
}

/** `[AS] alias` unless the next word is one of the statement's keywords. */
function parseAlias(c: Cursor, stop: string[]): string | undefined {
  if (c.acceptKw('AS')) return c.ident('an alias').value;
  const t = c.peek();
  if (t.kind === 'qident' || (t.kind === 'ident' && !stop.includes(t.upper) && !RESERVED.has(t.upper))) return c.next().value;
  return undefined;
}

function parseAssignments(c: Cursor, stops: string[]): [Token[], Token[]][] {
  const out: [Token[], Token[]][] = [];
  for (;;) {
    const col = [c.ident('a column name')];
    while (c.isOp('.')) {
      c.next();
      col.push(c.ident('a column name'));
    }
    c.expectOp('=');
    out.push([col, c.until(stops, [','], 'a value')]);
    if (!c.acceptOp(',')) return out;
  }
}

function parseUpdate(c: Cursor): Inner {
  c.next();
  const table = parseName(c);
  const alias = parseAlias(c, ['SET']);
  c.expectKw('SET');
  const set = parseAssignments(c, ['WHERE']);
  let where: Token[] | undefined;
  if (c.acceptKw('WHERE')) where = c.until([], [], 'a condition');
  c.expectEnd();
  return { kind: 'update', table, alias, set, where };
}

function parseDelete(c: Cursor): Inner {
  c.next();
  c.expectKw('FROM');
  const table = parseName(c);
  const alias = parseAlias(c, ['WHERE']);
  let where: Token[] | undefined;
  if (c.acceptKw('WHERE')) where = c.until([], [], 'a condition');
  c.expectEnd();
  return { kind: 'delete', table, alias, where };
}

function parseMerge(c: Cursor): Inner {
  c.next();
  let schemaEvolution = false;
  if (c.acceptKw('WITH', 'SCHEMA', 'EVOLUTION')) schemaEvolution = true;
  c.expectKw('INTO');
  const target = parseName(c);
  const targetAlias = parseAlias(c, ['USING']);
  c.expectKw('USING');
  let source: { table: NameRef; travel: TimeTravel } | { query: Token[] };
  if (c.isOp('(')) {
    const open = c.next();
    const start = c.i;
    c.until([], [], 'a source query');
    const query = c.tokens.slice(start, c.i);
    c.expectOp(')');
    if (!(query[0]?.kind === 'ident' && ['SELECT', 'WITH', 'VALUES', 'FROM'].includes(query[0].upper))) throw parseErrorAt(query[0] ?? open, 'Expected a query in the MERGE source');
    source = { query };
  } else {
    const table = parseName(c);
    let travel: TimeTravel;
    if (c.acceptKw('VERSION', 'AS', 'OF')) travel = { versionAsOf: c.integer('a version number') };
    else if (c.acceptKw('TIMESTAMP', 'AS', 'OF')) travel = { timestampAsOf: c.string('a timestamp string').value };
    source = { table, travel };
  }
  const sourceAlias = parseAlias(c, ['ON']);
  c.expectKw('ON');
  const on = c.until(['WHEN'], [], 'a merge condition');
  const clauses: MergeClause[] = [];
  while (c.acceptKw('WHEN')) {
    let kind: MergeClause['kind'];
    if (c.acceptKw('MATCHED')) kind = 'matched';
    else {
      c.expectKw('NOT', 'MATCHED');
      if (c.acceptKw('BY', 'SOURCE')) kind = 'notMatchedBySource';
      else {
        c.acceptKw('BY', 'TARGET');
        kind = 'notMatched';
      }
    }
    let condition: Token[] | undefined;
    if (c.acceptKw('AND')) condition = c.until(['THEN'], [], 'a clause condition');
    c.expectKw('THEN');
    const act = c.peek();
    if (kind === 'notMatched') {
      c.expectKw('INSERT');
      if (c.acceptOp('*')) clauses.push({ kind, condition, action: 'insert' });
      else {
        const columns = c.list(() => c.ident('a column name'));
        c.expectKw('VALUES');
        const values = c.list(() => c.until([], [',', ')'], 'a value'));
        if (values.length !== columns.length) throw analysisErrorAt(act, `INSERT lists ${columns.length} column(s) but ${values.length} value(s)`);
        clauses.push({ kind, condition, action: 'insert', columns, values });
      }
    } else if (c.acceptKw('DELETE')) {
      clauses.push({ kind, condition, action: 'delete' });
    } else if (c.acceptKw('UPDATE', 'SET')) {
      if (c.acceptOp('*')) {
        if (kind === 'notMatchedBySource') throw parseErrorAt(act, 'UPDATE SET * is not allowed in WHEN NOT MATCHED BY SOURCE');
        clauses.push({ kind, condition, action: 'update', set: '*' });
      } else {
        const set = parseAssignments(c, ['WHEN']);
        if (kind === 'matched') clauses.push({ kind, condition, action: 'update', set });
        else clauses.push({ kind, condition, action: 'update', set });
      }
    } else throw parseErrorAt(act, `Expected UPDATE SET or DELETE but found ${tokenDesc(act)}`);
  }
  if (!clauses.length) throw parseErrorAt(c.peek(), `Expected WHEN MATCHED / WHEN NOT MATCHED but found ${tokenDesc(c.peek())}`);
  c.expectEnd();
  return { kind: 'merge', target, targetAlias, source, sourceAlias, on, clauses, schemaEvolution };
}
