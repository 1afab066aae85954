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
  | { kind: 'vacuum'; table: NameRef; retainHours?: number; dryRun: boolean }
  | { kind: 'optimize'; table: NameRef; where?: Token[] }
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

function parseInner(c: Cursor, text: string): Inner {
  const t = c.peek();
  if (startsQuery(c)) return { kind: 'query', tokens: restAsQuery(c) };
  if (t.kind !== 'ident') throw parseErrorAt(t, `Expected a statement but found ${tokenDesc(t)}`);
  switch (t.upper) {
    case 'CREATE': return parseCreate(c);
    case 'REPLACE':
      if (c.isKw('TABLE', 1)) {
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
    case 'ALTER': return parseAlter(c);
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
      if (c.isKw('ZORDER')) unsupported(c.peek(), 'OPTIMIZE … ZORDER BY');
      c.expectEnd();
      return { kind: 'optimize', table, where };
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
    case 'CONVERT': unsupported(t, 'CONVERT TO DELTA');
    // falls through (unsupported throws)
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
  const type = parseType(c);
  let nullable = true;
  let comment: string | undefined;
  for (;;) {
    if (c.acceptKw('NOT', 'NULL')) nullable = false;
    else if (c.acceptKw('NULL')) nullable = true;
    else if (c.acceptKw('COMMENT')) comment = c.string('a comment string').value;
    else if (c.isKw('GENERATED')) unsupported(c.peek(), 'GENERATED columns');
    else if (c.isKw('DEFAULT')) unsupported(c.peek(), 'DEFAULT column values');
    else if (c.isKw('PRIMARY') || c.isKw('CONSTRAINT') || c.isKw('MASK') || c.isKw('REFERENCES')) unsupported(c.peek(), `Column ${c.peek().upper}`);
    else break;
  }
  return { name: name.value, type, nullable, comment };
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
    const table = parseName(c);
    let limit: number | undefined;
    if (c.acceptKw('LIMIT')) limit = c.integer('a limit');
    c.expectEnd();
    return { kind: 'describeHistory', table, limit };
  }
  if (c.acceptKw('DETAIL')) {
    const table = parseName(c);
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

function parseAlter(c: Cursor): Inner {
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
  if (t.kind === 'ident' && ['ADD', 'RENAME', 'DROP', 'ALTER', 'CHANGE', 'REPLACE', 'SET', 'CLUSTER', 'OWNER'].includes(t.upper)) {
    unsupported(t, `ALTER TABLE … ${t.upper}${c.peek(1).kind === 'ident' ? ' ' + c.peek(1).upper : ''}`);
  }
  throw parseErrorAt(t, `Expected SET TBLPROPERTIES or UNSET TBLPROPERTIES but found ${tokenDesc(t)}`);
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
