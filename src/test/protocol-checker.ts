/**
 * An independent Delta protocol checker for the tables floe writes (PROTOCOL.md). It replays the
 * JSON commits itself (it does not use floe's log replay), reads data and checkpoint files with its
 * own DuckDB instance, and returns the violations it finds; an empty list means the table is valid.
 *
 * What it checks, for every commit (from `fromVersion` on) and every checkpoint:
 * - commit files are newline-delimited JSON, one single-key action object per line, with a
 *   commitInfo; versions are contiguous; the first version has protocol and metaData; at most one
 *   protocol and one metaData per commit;
 * - metaData: id, format.provider, a schemaString that parses as a struct, partitionColumns that are
 *   top-level schema fields, a configuration map of strings;
 * - protocol: readerFeatures only with reader version 3 (and required there), writerFeatures only with
 *   writer version 7 (and required there), reader features also listed as writer features, and the
 *   features the configuration, schema or actions imply (CHECK constraints, appendOnly, invariants,
 *   change data feed, generated and identity columns, column mapping, timestamp_ntz, deletion vectors,
 *   in-commit timestamps, row tracking);
 * - add: a relative, URL-encoded path that decodes to a file on disk, partitionValues keyed exactly by
 *   the partition columns' physical names with values serialized per "Partition Value
 *   Serialization", size equal to the file's size, numeric modificationTime, boolean dataChange,
 *   stats whose numRecords equals the Parquet row count and whose minValues / maxValues / nullCount
 *   (keyed by physical column name) agree with the data (strings may be prefix-truncated, timestamps
 *   truncated to milliseconds), partition columns absent from data files (or equal to the partition
 *   value), at most one add and one remove per path per commit, no data-changing add of a path that is
 *   already live;
 * - checkpoints: Parquet files whose add/remove/metaData/protocol/txn columns have Spark's field names
 *   and types, holding exactly the live files, metadata, protocol and transactions of the replay at
 *   that version; `_last_checkpoint` names an existing checkpoint (and its size matches);
 * - the final snapshot: floe's `read.delta` equals, as a multiset of rows, DuckDB's plain
 *   `read_parquet` of each live data file plus its partition values (for files with deletion vectors:
 *   floe's rows are a sub-multiset and exactly `cardinality` rows fewer).
 */
import { localCopy } from './store.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { Floe } from '../floe.js';

export interface CheckOptions {
  /** Judge commits (and checkpoints) from this version on; earlier commits are only replayed. Default 0. */
  fromVersion?: number;
  /** Compare floe's read of the latest snapshot with plain Parquet reads (default true). */
  compareRead?: boolean;
}

type Json = Record<string, unknown>;
type DataType = string | { type: 'struct'; fields: Field[] } | { type: 'array'; elementType: DataType } | { type: 'map'; keyType: DataType; valueType: DataType };
interface Field { name: string; type: DataType; nullable?: boolean; metadata?: Record<string, unknown> }
interface Struct { type: 'struct'; fields: Field[] }

interface AddAction {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string | null;
  deletionVector?: { storageType: string; pathOrInlineDv: string; offset?: number | null; cardinality: number } | null;
}

interface State {
  protocol?: Json;
  metadata?: Json;
  files: Map<string, AddAction>;
  tombstones: Map<string, Json>;
  txns: Map<string, number>;
}

interface CheckpointInfo {
  version: number;
  kind: 'classic' | 'multipart' | 'v2';
  files: string[];
}

/** A number kept as its JSON text, so large integers and decimals compare exactly. */
class Num {
  constructor(readonly text: string) {}
}

/** JSON.parse, but numbers become `Num` (exact text). */
function parseJsonExact(s: string): unknown {
  let i = 0;
  const ws = (): void => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const value = (): unknown => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++;
      const o: Record<string, unknown> = {};
      ws();
      if (s[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        const k = value();
        if (typeof k !== 'string') throw new Error('object key is not a string');
        ws();
        if (s[i++] !== ':') throw new Error('expected :');
        o[k] = value();
        ws();
        const d = s[i++];
        if (d === '}') return o;
        if (d !== ',') throw new Error('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (s[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        const d = s[i++];
        if (d === ']') return a;
        if (d !== ',') throw new Error('expected , or ]');
      }
    }
    if (c === '"') {
      const start = i;
      i++;
      while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
      i++;
      return JSON.parse(s.slice(start, i)) as string;
    }
    const m = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(s.slice(i, i + 400));
    if (!m) throw new Error(`unexpected character at ${i}`);
    i += m[1]!.length;
    if (m[1] === 'true') return true;
    if (m[1] === 'false') return false;
    if (m[1] === 'null') return null;
    return new Num(m[1]!);
  };
  const v = value();
  ws();
  if (i !== s.length) throw new Error('trailing characters');
  return v;
}

const pad = (v: number): string => String(v).padStart(20, '0');
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const qi = (n: string): string => `"${n.replace(/"/g, '""')}"`;
const qs = (s: string): string => `'${s.replace(/'/g, "''")}'`;

function physical(f: Field): string {
  const p = f.metadata?.['delta.columnMapping.physicalName'];
  return typeof p === 'string' && p ? p : f.name;
}

function dvId(dv: AddAction['deletionVector']): string {
  if (!dv) return '';
  return `${dv.storageType}${dv.pathOrInlineDv}${dv.offset !== undefined && dv.offset !== null ? `@${dv.offset}` : ''}`;
}

function fileKey(p: string, dv: AddAction['deletionVector']): string {
  return dv ? `${p}\u0000${dvId(dv)}` : p;
}

function hasType(t: DataType, name: string): boolean {
  if (typeof t === 'string') return t === name;
  if (t.type === 'struct') return t.fields.some((f) => hasType(f.type, name));
  if (t.type === 'array') return hasType(t.elementType, name);
  return hasType(t.keyType, name) || hasType(t.valueType, name);
}

function anyField(st: Struct, pred: (f: Field) => boolean): boolean {
  return st.fields.some((f) => pred(f) || (typeof f.type !== 'string' && f.type.type === 'struct' && anyField(f.type, pred)));
}

/** DuckDB type of a Delta type (logical names); null for types the checker does not cast. */
function duck(t: DataType): string | null {
  if (typeof t !== 'string') {
    if (t.type === 'struct') {
      const parts = t.fields.map((f) => {
        const x = duck(f.type);
        return x ? `${qi(f.name)} ${x}` : null;
      });
      return parts.every((p) => p) ? `STRUCT(${parts.join(', ')})` : null;
    }
    if (t.type === 'array') {
      const e = duck(t.elementType);
      return e ? `${e}[]` : null;
    }
    const k = duck(t.keyType);
    const v = duck(t.valueType);
    return k && v ? `MAP(${k}, ${v})` : null;
  }
  const dec = /^decimal\((\d+),\s*(\d+)\)$/.exec(t);
  if (dec) return `DECIMAL(${dec[1]},${dec[2]})`;
  const m: Record<string, string> = {
    string: 'VARCHAR', long: 'BIGINT', integer: 'INTEGER', short: 'SMALLINT', byte: 'TINYINT', float: 'FLOAT', double: 'DOUBLE',
    boolean: 'BOOLEAN', binary: 'BLOB', date: 'DATE', timestamp: 'TIMESTAMPTZ', timestamp_ntz: 'TIMESTAMP',
  };
  return m[t] ?? null;
}

/** Is a partition value string a valid serialization of a value of `type`? */
function partitionValueError(type: DataType, v: string): string | null {
  if (typeof type !== 'string') return `partition column of non-primitive type ${JSON.stringify(type)}`;
  const intRange: Record<string, [bigint, bigint]> = {
    byte: [-128n, 127n], short: [-32768n, 32767n], integer: [-2147483648n, 2147483647n], long: [-9223372036854775808n, 9223372036854775807n],
  };
  if (intRange[type]) {
    if (!/^-?\d+$/.test(v)) return `'${v}' is not an integer`;
    const n = BigInt(v);
    if (n < intRange[type]![0] || n > intRange[type]![1]) return `'${v}' is out of range for ${type}`;
    return null;
  }
  const dec = /^decimal\((\d+),\s*(\d+)\)$/.exec(type);
  if (dec) {
    const m = /^-?(\d+)(?:\.(\d+))?$/.exec(v);
    if (!m) return `'${v}' is not a decimal number`;
    const intDigits = m[1]!.replace(/^0+(?=\d)/, '').length;
    if ((m[2]?.length ?? 0) > Number(dec[2]) || (m[1] !== '0' && intDigits > Number(dec[1]) - Number(dec[2]))) return `'${v}' does not fit ${type}`;
    return null;
  }
  switch (type) {
    case 'string':
    case 'binary':
      return null;
    case 'float':
    case 'double':
      return /^(-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|NaN|-?Infinity)$/.test(v) ? null : `'${v}' is not a number`;
    case 'boolean':
      return v === 'true' || v === 'false' ? null : `'${v}' is not "true" or "false"`;
    case 'date': {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
      if (!m) return `'${v}' is not {year}-{month}-{day}`;
      const d = new Date(`${v}T00:00:00Z`);
      return Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3]) ? `'${v}' is not a valid date` : null;
    }
    case 'timestamp':
      return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/.test(v)
        ? null : `'${v}' is not a timestamp as '{year}-{month}-{day} {hour}:{minute}:{second}[.{microsecond}]' or ISO 8601 UTC`;
    case 'timestamp_ntz':
      return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(v) ? null : `'${v}' is not a timestamp_ntz as '{year}-{month}-{day} {hour}:{minute}:{second}[.{microsecond}]'`;
    default:
      return null;
  }
}

/** A partition value as an SQL literal of the column's type (null for '' and null). */
function partitionLiteral(type: DataType, v: string | null | undefined): string {
  const t = typeof type === 'string' ? type : 'string';
  const dt = duck(t) ?? 'VARCHAR';
  if (v === null || v === undefined || v === '') return `NULL::${dt}`;
  if (t === 'binary') return `encode(${qs(v)})`;
  if (t === 'string') return qs(v);
  return `CAST(${qs(v)} AS ${dt})`;
}

/** Microseconds since the epoch of an ISO-ish timestamp text (UTC unless it names an offset). */
function timestampMicros(s: string): bigint | null {
  const m = /^(-?\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (Number.isNaN(ms)) return null;
  let us = BigInt(ms) * 1000n + BigInt((m[7] ?? '').slice(0, 6).padEnd(6, '0') || '0');
  const z = m[8];
  if (z && z !== 'Z') {
    const o = /^([+-])(\d{2}):?(\d{2})$/.exec(z)!;
    const off = BigInt((Number(o[2]) * 60 + Number(o[3])) * 60_000_000);
    us = o[1] === '+' ? us - off : us + off;
  }
  return us;
}

/** Exact decimal comparison of two decimal texts: -1, 0, 1. */
function cmpDecimal(a: string, b: string): number {
  const norm = (x: string): [bigint, number] => {
    if (/[eE]/.test(x)) {
      const n = Number(x);
      x = n.toFixed(Math.min(20, Math.max(0, -Math.floor(Math.log10(Math.abs(n) || 1)) + 17)));
    }
    const neg = x.startsWith('-');
    const [i, f = ''] = x.replace(/^-/, '').split('.');
    return [BigInt((neg ? '-' : '') + i + f), f.length];
  };
  const [ai, as] = norm(a);
  const [bi, bs] = norm(b);
  const s = Math.max(as, bs);
  const x = ai * 10n ** BigInt(s - as);
  const y = bi * 10n ** BigInt(s - bs);
  return x < y ? -1 : x > y ? 1 : 0;
}

function cmpUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Parses DuckDB type text into a tree: STRUCT fields, MAP key/value, list element, or a name. */
type DuckT = { kind: 'struct'; fields: [string, DuckT][] } | { kind: 'map'; key: DuckT; value: DuckT } | { kind: 'list'; element: DuckT } | { kind: 'prim'; name: string };
function parseDuckType(t: string): DuckT {
  t = t.trim();
  if (t.endsWith('[]')) return { kind: 'list', element: parseDuckType(t.slice(0, -2)) };
  const split = (s: string): string[] => {
    const out: string[] = [];
    let depth = 0;
    let cur = '';
    let q = false;
    for (const ch of s) {
      if (ch === '"') q = !q;
      if (!q && ch === '(') depth++;
      if (!q && ch === ')') depth--;
      if (!q && depth === 0 && ch === ',') {
        out.push(cur.trim());
        cur = '';
      } else cur += ch;
    }
    if (cur.trim()) out.push(cur.trim());
    return out;
  };
  if (/^STRUCT\(/i.test(t) && t.endsWith(')')) {
    return {
      kind: 'struct',
      fields: split(t.slice(7, -1)).map((p) => {
        const m = /^("(?:[^"]|"")*"|\S+)\s+([\s\S]+)$/.exec(p)!;
        const name = m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!;
        return [name, parseDuckType(m[2]!)] as [string, DuckT];
      }),
    };
  }
  if (/^MAP\(/i.test(t) && t.endsWith(')')) {
    const [k, v] = split(t.slice(4, -1));
    return { kind: 'map', key: parseDuckType(k!), value: parseDuckType(v!) };
  }
  return { kind: 'prim', name: t.toUpperCase() };
}

/** Spark's checkpoint schema: required fields (and the types of optional ones when present). */
const STR = 'VARCHAR';
const MAPSS = 'MAP(VARCHAR, VARCHAR)';
const DV_TYPE = 'STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, "offset" INTEGER, sizeInBytes INTEGER, cardinality BIGINT, maxRowIndex BIGINT)';
const CHECKPOINT_SPEC: Record<string, { required: Record<string, string>; optional: Record<string, string> }> = {
  add: {
    required: { path: STR, partitionValues: MAPSS, size: 'BIGINT', modificationTime: 'BIGINT', dataChange: 'BOOLEAN' },
    optional: { stats: STR, tags: MAPSS, deletionVector: DV_TYPE, baseRowId: 'BIGINT', defaultRowCommitVersion: 'BIGINT', clusteringProvider: STR },
  },
  remove: {
    required: { path: STR, deletionTimestamp: 'BIGINT', dataChange: 'BOOLEAN' },
    optional: { extendedFileMetadata: 'BOOLEAN', partitionValues: MAPSS, size: 'BIGINT', tags: MAPSS, deletionVector: DV_TYPE, baseRowId: 'BIGINT', defaultRowCommitVersion: 'BIGINT', stats: STR },
  },
  metaData: {
    required: { id: STR, format: `STRUCT(provider VARCHAR, "options" ${MAPSS})`, schemaString: STR, partitionColumns: 'VARCHAR[]', configuration: MAPSS },
    optional: { name: STR, description: STR, createdTime: 'BIGINT' },
  },
  protocol: {
    required: { minReaderVersion: 'INTEGER', minWriterVersion: 'INTEGER' },
    optional: { readerFeatures: 'VARCHAR[]', writerFeatures: 'VARCHAR[]' },
  },
  txn: {
    required: { appId: STR, version: 'BIGINT' },
    optional: { lastUpdated: 'BIGINT' },
  },
};

function sameDuckType(actual: DuckT, expected: DuckT, where: string, out: string[]): void {
  if (expected.kind === 'struct') {
    if (actual.kind !== 'struct') {
      out.push(`${where} is not a struct`);
      return;
    }
    for (const [n, t] of expected.fields) {
      const a = actual.fields.find(([x]) => x === n);
      if (a) sameDuckType(a[1], t, `${where}.${n}`, out);
    }
    return;
  }
  if (expected.kind === 'map') {
    if (actual.kind !== 'map') out.push(`${where} is not a map<string,string>`);
    else {
      sameDuckType(actual.key, expected.key, `${where} key`, out);
      sameDuckType(actual.value, expected.value, `${where} value`, out);
    }
    return;
  }
  if (expected.kind === 'list') {
    if (actual.kind !== 'list') out.push(`${where} is not an array`);
    else sameDuckType(actual.element, expected.element, `${where} element`, out);
    return;
  }
  if (actual.kind !== 'prim' || actual.name !== expected.name) out.push(`${where} has type ${JSON.stringify(actual)} instead of ${expected.name}`);
}

function checkpointColumnIssues(col: string, typeText: string): string[] {
  const spec = CHECKPOINT_SPEC[col]!;
  const t = parseDuckType(typeText);
  const out: string[] = [];
  if (t.kind !== 'struct') return [`column ${col} is not a struct (${typeText})`];
  for (const [name, type] of Object.entries(spec.required)) {
    const f = t.fields.find(([n]) => n === name);
    if (!f) out.push(`column ${col} lacks field ${name}`);
    else sameDuckType(f[1], parseDuckType(type), `${col}.${name}`, out);
  }
  for (const [name, type] of Object.entries(spec.optional)) {
    const f = t.fields.find(([n]) => n === name);
    if (f) sameDuckType(f[1], parseDuckType(type), `${col}.${name}`, out);
  }
  return out;
}

class Checker {
  readonly violations: string[] = [];
  private conn!: DuckDBConnection;
  private instance!: DuckDBInstance;

  constructor(readonly root: string, readonly opts: Required<CheckOptions>) {}

  v(msg: string): void {
    this.violations.push(msg);
  }

  async open(): Promise<void> {
    this.instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
    this.conn = await this.instance.connect();
    await this.conn.run("SET TimeZone = 'UTC'");
  }

  close(): void {
    this.conn?.closeSync();
    this.instance?.closeSync();
  }

  async rows(sql: string): Promise<Json[]> {
    const r = await this.conn.runAndReadAll(sql);
    return r.getRowObjectsJson() as Json[];
  }

  async run(): Promise<void> {
    const logDir = path.join(this.root, '_delta_log');
    let names: string[];
    try {
      names = await fs.readdir(logDir);
    } catch {
      this.v(`no _delta_log folder in ${this.root}`);
      return;
    }
    const commits = new Map<number, string>();
    const checkpoints = new Map<number, CheckpointInfo>();
    for (const n of names) {
      let m = /^(\d{20})\.json$/.exec(n);
      if (m) {
        commits.set(Number(m[1]), n);
        continue;
      }
      m = /^(\d{20})\.checkpoint\.parquet$/.exec(n);
      if (m) {
        checkpoints.set(Number(m[1]), { version: Number(m[1]), kind: 'classic', files: [n] });
        continue;
      }
      m = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/.exec(n);
      if (m) {
        const ver = Number(m[1]);
        const c = checkpoints.get(ver) ?? { version: ver, kind: 'multipart', files: [] };
        if (c.kind === 'multipart') c.files.push(n);
        checkpoints.set(ver, c);
        continue;
      }
      m = /^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$/.exec(n);
      if (m && !checkpoints.has(Number(m[1]))) checkpoints.set(Number(m[1]), { version: Number(m[1]), kind: 'v2', files: [n] });
    }
    const versions = [...commits.keys()].sort((a, b) => a - b);
    if (!versions.length) {
      this.v('the log has no commit files');
      return;
    }
    for (let i = 1; i < versions.length; i++) {
      if (versions[i] !== versions[i - 1]! + 1) this.v(`the log skips from version ${versions[i - 1]} to ${versions[i]}`);
    }
    for (const c of checkpoints.values()) {
      if (c.kind === 'multipart') {
        c.files.sort();
        const parts = Number(/\.(\d{10})\.parquet$/.exec(c.files[0]!)![1]);
        if (c.files.length !== parts) this.v(`checkpoint ${c.version}: ${c.files.length} of ${parts} parts present`);
      }
      if (c.version > versions[versions.length - 1]!) this.v(`checkpoint ${c.version} is newer than the latest commit ${versions[versions.length - 1]}`);
    }

    // The replay starts empty at version 0, or from the oldest checkpoint when early commits are gone.
    const state: State = { files: new Map(), tombstones: new Map(), txns: new Map() };
    let start = versions[0]!;
    if (start !== 0) {
      const base = [...checkpoints.values()].filter((c) => c.version + 1 >= start && c.version <= versions[versions.length - 1]! && c.kind !== 'v2').sort((a, b) => a.version - b.version)[0];
      if (!base) {
        this.v(`the log starts at version ${start} with no checkpoint to start from`);
        return;
      }
      await this.loadCheckpoint(base, state);
      start = base.version + 1;
    }
    const pendingFiles: { version: number; add: AddAction; schema: Struct | null; partitionColumns: string[] }[] = [];
    let dvUsed = false;
    for (const ver of versions) {
      if (ver < start) continue;
      const judged = ver >= this.opts.fromVersion;
      const text = await fs.readFile(path.join(logDir, commits.get(ver)!), 'utf8');
      const actions = this.parseCommit(ver, text, judged);
      const where = `commit ${ver}`;
      const count = (k: string): number => actions.filter((a) => k in a).length;
      if (judged) {
        if (count('commitInfo') === 0) this.v(`${where}: no commitInfo action`);
        if (count('commitInfo') > 1) this.v(`${where}: ${count('commitInfo')} commitInfo actions`);
        if (count('protocol') > 1) this.v(`${where}: ${count('protocol')} protocol actions (at most one allowed)`);
        if (count('metaData') > 1) this.v(`${where}: ${count('metaData')} metaData actions (at most one allowed)`);
        if (ver === 0 && (count('protocol') !== 1 || count('metaData') !== 1)) this.v(`${where}: the first version must hold protocol and metaData`);
      }
      const proto = actions.find((a) => 'protocol' in a)?.protocol;
      const meta = actions.find((a) => 'metaData' in a)?.metaData;
      if (isObj(proto)) {
        state.protocol = proto;
        if (judged) this.checkProtocol(where, proto);
      }
      let schema: Struct | null = null;
      if (isObj(meta)) {
        state.metadata = meta;
        if (judged) this.checkMetadata(where, meta);
      }
      if (state.metadata) schema = this.schemaOf(state.metadata);
      if (!state.protocol || !state.metadata) {
        if (judged) this.v(`${where}: no protocol or metaData in effect`);
        continue;
      }
      const partitionColumns = Array.isArray(state.metadata.partitionColumns) ? (state.metadata.partitionColumns as string[]) : [];

      // File actions.
      const adds = actions.filter((a) => 'add' in a).map((a) => a.add as Json);
      const removes = actions.filter((a) => 'remove' in a).map((a) => a.remove as Json);
      const addCount = new Map<string, number>();
      const removeCount = new Map<string, number>();
      for (const a of adds) addCount.set(String(a.path), (addCount.get(String(a.path)) ?? 0) + 1);
      for (const r of removes) removeCount.set(String(r.path), (removeCount.get(String(r.path)) ?? 0) + 1);
      if (judged) {
        for (const [p, n] of addCount) if (n > 1) this.v(`${where}: ${n} add actions for path ${p}`);
        for (const [p, n] of removeCount) if (n > 1) this.v(`${where}: ${n} remove actions for path ${p}`);
      }
      const livePaths = new Set([...state.files.values()].map((f) => f.path));
      for (const r of removes) {
        if (judged) this.checkRemove(where, r);
        const key = fileKey(String(r.path), r.deletionVector as AddAction['deletionVector']);
        if (judged && r.dataChange === true && !state.files.has(key) && !livePaths.has(String(r.path))) this.v(`${where}: remove of ${String(r.path)}, which is not a live file`);
        state.files.delete(key);
        state.tombstones.set(key, r);
      }
      for (const a of adds) {
        if (judged) this.checkAdd(where, a, schema, partitionColumns);
        const add = a as unknown as AddAction;
        if (add.deletionVector) dvUsed = true;
        if (judged && add.dataChange === true && livePaths.has(add.path) && !removeCount.has(add.path)) {
          this.v(`${where}: add of ${add.path}, which is already live and not removed in this commit (file names must be unique)`);
        }
        const key = fileKey(add.path, add.deletionVector);
        state.files.set(key, add);
        state.tombstones.delete(key);
        if (judged && typeof add.path === 'string') pendingFiles.push({ version: ver, add, schema, partitionColumns });
      }
      for (const t of actions.filter((a) => 'txn' in a).map((a) => a.txn as Json)) {
        if (judged && (typeof t.appId !== 'string' || !(t.version instanceof Num || typeof t.version === 'number'))) this.v(`${where}: txn action needs appId (string) and version (number)`);
        state.txns.set(String(t.appId), Number(t.version instanceof Num ? t.version.text : t.version));
      }
      if (judged) this.checkImpliedFeatures(where, state.protocol, state.metadata, schema, dvUsed || adds.some((a) => isObj(a.deletionVector)));
      const cp = checkpoints.get(ver);
      if (cp && ver >= this.opts.fromVersion) await this.checkCheckpoint(cp, state);
    }

    // Data files: existence, size, stats, partition columns.
    const liveKeys = new Set([...state.files.values()].map((f) => f.path));
    for (const f of pendingFiles) await this.checkDataFile(f.version, f.add, f.schema, f.partitionColumns, liveKeys.has(f.add.path));
    await this.checkLastCheckpoint(logDir, checkpoints);
    if (this.opts.compareRead) await this.compareRead(state);
  }

  parseCommit(ver: number, text: string, judged: boolean): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines.forEach((line, i) => {
      if (!line.trim()) {
        if (judged) this.v(`commit ${ver} line ${i + 1}: blank line`);
        return;
      }
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        if (judged) this.v(`commit ${ver} line ${i + 1}: not JSON (${(e as Error).message})`);
        return;
      }
      if (!isObj(obj)) {
        if (judged) this.v(`commit ${ver} line ${i + 1}: not a JSON object`);
        return;
      }
      if (Object.keys(obj).length !== 1) {
        if (judged) this.v(`commit ${ver} line ${i + 1}: an action line must hold exactly one action, found keys ${Object.keys(obj).join(', ')}`);
      }
      // Stats numbers must stay exact: re-read add stats lazily from the raw string (kept as a string).
      out.push(obj);
    });
    return out;
  }

  schemaOf(meta: Json): Struct | null {
    try {
      const s = JSON.parse(String(meta.schemaString)) as Struct;
      return s && s.type === 'struct' && Array.isArray(s.fields) ? s : null;
    } catch {
      return null;
    }
  }

  checkMetadata(where: string, m: Json): void {
    if (typeof m.id !== 'string' || !m.id) this.v(`${where}: metaData.id must be a non-empty string`);
    if (!isObj(m.format) || typeof m.format.provider !== 'string') this.v(`${where}: metaData.format.provider must be a string`);
    else if (m.format.options !== undefined && m.format.options !== null && !isObj(m.format.options)) this.v(`${where}: metaData.format.options must be a map`);
    const schema = this.schemaOf(m);
    if (typeof m.schemaString !== 'string' || !schema) this.v(`${where}: metaData.schemaString does not parse as a struct type`);
    if (schema) {
      const seen = new Set<string>();
      for (const f of schema.fields) {
        if (typeof f.name !== 'string' || f.type === undefined) this.v(`${where}: schema field without name or type`);
        else if (seen.has(f.name.toLowerCase())) this.v(`${where}: schema has two columns named ${f.name} (case-insensitive)`);
        seen.add(String(f.name).toLowerCase());
        if (typeof f.nullable !== 'boolean') this.v(`${where}: schema field ${f.name} lacks a boolean nullable`);
      }
    }
    if (!Array.isArray(m.partitionColumns) || m.partitionColumns.some((c) => typeof c !== 'string')) this.v(`${where}: metaData.partitionColumns must be an array of strings`);
    else if (schema) {
      for (const c of m.partitionColumns as string[]) if (!schema.fields.some((f) => f.name === c)) this.v(`${where}: partition column ${c} is not a top-level schema field`);
      if (new Set(m.partitionColumns).size !== m.partitionColumns.length) this.v(`${where}: duplicate partition columns`);
    }
    if (!isObj(m.configuration)) this.v(`${where}: metaData.configuration must be a map`);
    else for (const [k, v] of Object.entries(m.configuration)) if (typeof v !== 'string') this.v(`${where}: configuration ${k} is not a string (${JSON.stringify(v)})`);
    if (m.createdTime !== undefined && m.createdTime !== null && typeof m.createdTime !== 'number') this.v(`${where}: metaData.createdTime must be a number`);
    const mode = isObj(m.configuration) ? m.configuration['delta.columnMapping.mode'] : undefined;
    if (schema && (mode === 'name' || mode === 'id')) {
      const walk = (st: Struct): void => {
        for (const f of st.fields) {
          if (typeof f.metadata?.['delta.columnMapping.physicalName'] !== 'string') this.v(`${where}: column ${f.name} lacks delta.columnMapping.physicalName`);
          if (typeof f.metadata?.['delta.columnMapping.id'] !== 'number') this.v(`${where}: column ${f.name} lacks delta.columnMapping.id`);
          if (typeof f.type !== 'string' && f.type.type === 'struct') walk(f.type);
        }
      };
      walk(schema);
    }
  }

  checkProtocol(where: string, p: Json): void {
    const r = p.minReaderVersion;
    const w = p.minWriterVersion;
    if (!Number.isInteger(r) || (r as number) < 1) this.v(`${where}: protocol.minReaderVersion must be a positive integer`);
    if (!Number.isInteger(w) || (w as number) < 1) this.v(`${where}: protocol.minWriterVersion must be a positive integer`);
    const rf = p.readerFeatures;
    const wf = p.writerFeatures;
    if (rf !== undefined && rf !== null && r !== 3) this.v(`${where}: readerFeatures present with reader version ${String(r)} (only allowed with 3)`);
    if (r === 3 && !Array.isArray(rf)) this.v(`${where}: reader version 3 without a readerFeatures list`);
    if (wf !== undefined && wf !== null && w !== 7) this.v(`${where}: writerFeatures present with writer version ${String(w)} (only allowed with 7)`);
    if (w === 7 && !Array.isArray(wf)) this.v(`${where}: writer version 7 without a writerFeatures list`);
    if (Array.isArray(rf) && Array.isArray(wf)) for (const f of rf) if (!wf.includes(f)) this.v(`${where}: reader feature ${String(f)} is not also a writer feature`);
    if (r === 3 && w !== 7) this.v(`${where}: reader version 3 needs writer version 7`);
  }

  checkImpliedFeatures(where: string, p: Json, m: Json, schema: Struct | null, dvUsed: boolean): void {
    const r = Number(p.minReaderVersion);
    const w = Number(p.minWriterVersion);
    const rf = new Set(Array.isArray(p.readerFeatures) ? (p.readerFeatures as string[]) : []);
    const wf = new Set(Array.isArray(p.writerFeatures) ? (p.writerFeatures as string[]) : []);
    const conf = isObj(m.configuration) ? (m.configuration as Record<string, string>) : {};
    const writer = (feature: string, legacy: number, why: string): void => {
      const ok = w === 7 ? wf.has(feature) : w >= legacy;
      if (!ok) this.v(`${where}: ${why} requires ${w === 7 ? `writer feature ${feature}` : `writer version >= ${legacy}`} (protocol ${r}/${w})`);
    };
    const readerWriter = (feature: string, legacyR: number, legacyW: number, why: string): void => {
      writer(feature, legacyW, why);
      const ok = r === 3 ? rf.has(feature) : r >= legacyR;
      if (!ok) this.v(`${where}: ${why} requires ${r === 3 ? `reader feature ${feature}` : `reader version >= ${legacyR}`} (protocol ${r}/${w})`);
    };
    const tableFeature = (feature: string, reader: boolean, why: string): void => {
      if (w !== 7 || !wf.has(feature)) this.v(`${where}: ${why} requires writer version 7 with writer feature ${feature} (protocol ${r}/${w})`);
      if (reader && (r !== 3 || !rf.has(feature))) this.v(`${where}: ${why} requires reader version 3 with reader feature ${feature} (protocol ${r}/${w})`);
    };
    if (Object.keys(conf).some((k) => k.startsWith('delta.constraints.'))) writer('checkConstraints', 3, 'a CHECK constraint (delta.constraints.*)');
    if (conf['delta.appendOnly'] === 'true') writer('appendOnly', 2, 'delta.appendOnly = true');
    if (conf['delta.enableChangeDataFeed'] === 'true') writer('changeDataFeed', 4, 'delta.enableChangeDataFeed = true');
    const mode = conf['delta.columnMapping.mode'];
    if (mode === 'name' || mode === 'id') readerWriter('columnMapping', 2, 5, `column mapping mode ${mode}`);
    if (schema) {
      if (anyField(schema, (f) => f.metadata?.['delta.invariants'] !== undefined)) writer('invariants', 2, 'a column invariant');
      if (anyField(schema, (f) => f.metadata?.['delta.generationExpression'] !== undefined)) writer('generatedColumns', 4, 'a generated column');
      if (anyField(schema, (f) => Object.keys(f.metadata ?? {}).some((k) => k.startsWith('delta.identity.')))) writer('identityColumns', 6, 'an identity column');
      if (schema.fields.some((f) => hasType(f.type, 'timestamp_ntz'))) tableFeature('timestampNtz', true, 'a timestamp_ntz column');
    }
    if (conf['delta.enableDeletionVectors'] === 'true') tableFeature('deletionVectors', true, 'delta.enableDeletionVectors = true');
    if (dvUsed) tableFeature('deletionVectors', true, 'a deletion vector');
    if (conf['delta.enableInCommitTimestamps'] === 'true') tableFeature('inCommitTimestamp', false, 'delta.enableInCommitTimestamps = true');
    if (conf['delta.enableRowTracking'] === 'true') tableFeature('rowTracking', false, 'delta.enableRowTracking = true');
  }

  checkRemove(where: string, r: Json): void {
    if (typeof r.path !== 'string' || !r.path) this.v(`${where}: remove without a path`);
    if (typeof r.dataChange !== 'boolean') this.v(`${where}: remove ${String(r.path)} needs a boolean dataChange`);
    if (r.deletionTimestamp !== undefined && r.deletionTimestamp !== null && typeof r.deletionTimestamp !== 'number') this.v(`${where}: remove ${String(r.path)} deletionTimestamp must be a number`);
  }

  checkAdd(where: string, a: Json, schema: Struct | null, partitionColumns: string[]): void {
    const p = a.path;
    if (typeof p !== 'string' || !p) {
      this.v(`${where}: add without a path`);
      return;
    }
    const at = `${where}: add ${p}`;
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(p) || p.startsWith('/')) this.v(`${at}: path is absolute; floe writes paths relative to the table root`);
    if (/[ \t\r\n]/.test(p)) this.v(`${at}: path is not URL-encoded (raw whitespace)`);
    if (/%(?![0-9A-Fa-f]{2})/.test(p)) this.v(`${at}: path is not URL-encoded (a '%' not followed by two hex digits)`);
    try {
      decodeURIComponent(p);
    } catch {
      this.v(`${at}: path does not URL-decode`);
    }
    if (typeof a.size !== 'number' || !Number.isInteger(a.size) || a.size < 0) this.v(`${at}: size must be a non-negative integer`);
    if (typeof a.modificationTime !== 'number') this.v(`${at}: modificationTime must be a number`);
    if (typeof a.dataChange !== 'boolean') this.v(`${at}: dataChange must be a boolean`);
    if (a.stats !== undefined && a.stats !== null && typeof a.stats !== 'string') this.v(`${at}: stats must be a JSON string`);
    if (!isObj(a.partitionValues)) {
      this.v(`${at}: partitionValues must be a map`);
      return;
    }
    if (!schema) return;
    const byName = new Map(schema.fields.map((f) => [f.name, f]));
    const expected = partitionColumns.map((c) => byName.get(c)).filter((f): f is Field => !!f);
    const keys = Object.keys(a.partitionValues).sort();
    const want = expected.map(physical).sort();
    if (JSON.stringify(keys) !== JSON.stringify(want)) {
      this.v(`${at}: partitionValues keys [${keys.join(', ')}] differ from the partition columns' physical names [${want.join(', ')}]`);
    }
    for (const f of expected) {
      const v = a.partitionValues[physical(f)];
      if (v === undefined || v === null || v === '') continue;
      if (typeof v !== 'string') {
        this.v(`${at}: partition value of ${f.name} is not a string (${JSON.stringify(v)})`);
        continue;
      }
      const err = partitionValueError(f.type, v);
      if (err) this.v(`${at}: partition value of ${f.name} (${typeof f.type === 'string' ? f.type : 'nested'}): ${err}`);
    }
  }

  async checkDataFile(version: number, add: AddAction, schema: Struct | null, partitionColumns: string[], live: boolean): Promise<void> {
    const at = `commit ${version}: add ${add.path}`;
    let rel: string;
    try {
      rel = decodeURIComponent(add.path);
    } catch {
      return;
    }
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(rel) || rel.startsWith('/')) return;
    const file = path.join(this.root, ...rel.split('/'));
    let st;
    try {
      st = await fs.stat(file);
    } catch {
      if (live) this.v(`${at}: the file ${rel} does not exist (decoded from the log path)`);
      return;
    }
    if (typeof add.size === 'number' && st.size !== add.size) this.v(`${at}: size ${add.size} but the file has ${st.size} bytes`);
    if (!schema) return;
    const src = `read_parquet(${qs(file)}, hive_partitioning = false)`;
    let cols: { name: string; type: string }[];
    try {
      cols = (await this.rows(`DESCRIBE SELECT * FROM ${src}`)).map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
    } catch (e) {
      this.v(`${at}: the file is not readable Parquet (${(e as Error).message.split('\n')[0]})`);
      return;
    }
    const present = new Set(cols.map((c) => c.name));
    const count = Number((await this.rows(`SELECT count(*) AS n FROM ${src}`))[0]!.n);

    // Partition columns inside data files must match the partition value.
    const byName = new Map(schema.fields.map((f) => [f.name, f]));
    for (const c of partitionColumns) {
      const f = byName.get(c);
      if (!f || !present.has(physical(f))) continue;
      const lit = partitionLiteral(f.type, add.partitionValues?.[physical(f)]);
      let bad: number;
      try {
        bad = Number((await this.rows(`SELECT count(*) AS n FROM ${src} WHERE ${qi(physical(f))} IS DISTINCT FROM ${lit}`))[0]!.n);
      } catch (e) {
        this.v(`${at}: cannot compare the stored partition column ${c} with its partition value (${(e as Error).message.split('\n')[0]})`);
        continue;
      }
      if (bad) this.v(`${at}: partition column ${c} is stored in the data file and ${bad} row(s) differ from the partition value ${JSON.stringify(add.partitionValues?.[physical(f)])}`);
    }

    if (add.stats === undefined || add.stats === null) return;
    let stats: unknown;
    try {
      stats = parseJsonExact(add.stats);
    } catch (e) {
      this.v(`${at}: stats are not valid JSON (${(e as Error).message})`);
      return;
    }
    if (!isObj(stats)) {
      this.v(`${at}: stats are not a JSON object`);
      return;
    }
    const nr = stats.numRecords;
    if (!(nr instanceof Num) || !/^\d+$/.test(nr.text)) this.v(`${at}: stats.numRecords missing or not a non-negative integer`);
    else if (Number(nr.text) !== count) this.v(`${at}: stats.numRecords = ${nr.text} but the Parquet file has ${count} rows`);
    if (stats.tightBounds === false || add.deletionVector) return; // wide bounds: only numRecords is exact
    const partPhys = new Set(partitionColumns.map((c) => byName.get(c)).filter((f): f is Field => !!f).map(physical));

    // Leaves with stats, resolved against the schema by physical name.
    type Leaf = { path: string[]; field: Field; expr: string; min?: unknown; max?: unknown; nullCount?: unknown };
    const leaves = new Map<string, Leaf>();
    const visit = (kind: 'min' | 'max' | 'nullCount', obj: unknown, fields: Field[] | null, prefix: string[], expr: string | null): void => {
      if (!isObj(obj)) {
        this.v(`${at}: stats.${kind === 'nullCount' ? 'nullCount' : `${kind}Values`}${prefix.length ? '.' + prefix.join('.') : ''} is not an object`);
        return;
      }
      for (const [k, val] of Object.entries(obj)) {
        const p = [...prefix, k];
        const f = fields?.find((x) => physical(x) === k);
        const name = p.join('.');
        if (!f) {
          this.v(`${at}: stats ${kind} for ${name}, which is not a column of the table (stats are keyed by physical column name)`);
          continue;
        }
        if (!prefix.length && partPhys.has(k) && !present.has(k)) {
          this.v(`${at}: stats ${kind} for partition column ${name}, which is not in the data file`);
          continue;
        }
        if (!prefix.length && !present.has(k)) {
          this.v(`${at}: stats ${kind} for column ${name}, which is not in the data file`);
          continue;
        }
        const e = expr === null ? qi(k) : `struct_extract(${expr}, ${qs(k)})`;
        if (typeof f.type !== 'string' && f.type.type === 'struct' && isObj(val)) {
          visit(kind, val, f.type.fields, p, e);
          continue;
        }
        const leaf = leaves.get(name) ?? { path: p, field: f, expr: e };
        leaf[kind === 'nullCount' ? 'nullCount' : kind] = val;
        leaves.set(name, leaf);
      }
    };
    if (stats.minValues !== undefined) visit('min', stats.minValues, schema.fields, [], null);
    if (stats.maxValues !== undefined) visit('max', stats.maxValues, schema.fields, [], null);
    if (stats.nullCount !== undefined) visit('nullCount', stats.nullCount, schema.fields, [], null);
    if (!leaves.size) return;

    const sel: string[] = [];
    const list = [...leaves.values()];
    list.forEach((l, i) => {
      const t = typeof l.field.type === 'string' ? l.field.type : 'nested';
      sel.push(`count(*) - count(${l.expr}) AS n${i}`);
      if (t === 'timestamp' || t === 'timestamp_ntz') {
        sel.push(`CAST(epoch_us(min(${l.expr})) AS VARCHAR) AS lo${i}`, `CAST(epoch_us(max(${l.expr})) AS VARCHAR) AS hi${i}`);
      } else if (t === 'date') {
        sel.push(`strftime(min(${l.expr}), '%Y-%m-%d') AS lo${i}`, `strftime(max(${l.expr}), '%Y-%m-%d') AS hi${i}`);
      } else if (t === 'float' || t === 'double') {
        sel.push(`CAST(min(${l.expr}) FILTER (WHERE NOT isnan(${l.expr})) AS DOUBLE) AS lo${i}`, `CAST(max(${l.expr}) FILTER (WHERE NOT isnan(${l.expr})) AS DOUBLE) AS hi${i}`);
      } else if (t === 'string' || /^(long|integer|short|byte)$/.test(t) || t.startsWith('decimal')) {
        sel.push(`CAST(min(${l.expr}) AS VARCHAR) AS lo${i}`, `CAST(max(${l.expr}) AS VARCHAR) AS hi${i}`);
      }
    });
    let actual: Json;
    try {
      actual = (await this.rows(`SELECT ${sel.join(', ')} FROM ${src}`))[0]!;
    } catch (e) {
      this.v(`${at}: cannot compute column statistics (${(e as Error).message.split('\n')[0]})`);
      return;
    }
    list.forEach((l, i) => {
      const name = l.path.join('.');
      const t = typeof l.field.type === 'string' ? l.field.type : 'nested';
      if (l.nullCount !== undefined && l.nullCount !== null) {
        const nc = l.nullCount instanceof Num ? l.nullCount.text : String(l.nullCount);
        if (String(actual[`n${i}`]) !== nc) this.v(`${at}: stats.nullCount.${name} = ${nc} but the file has ${String(actual[`n${i}`])} nulls`);
      }
      const lo = actual[`lo${i}`];
      const hi = actual[`hi${i}`];
      const check = (kind: 'min' | 'max', stat: unknown, act: unknown): void => {
        if (stat === undefined || stat === null) return;
        if (act === undefined || act === null) return; // all null: the stat carries no information
        const bad = (why: string): void => this.v(`${at}: stats.${kind}Values.${name} = ${stat instanceof Num ? stat.text : JSON.stringify(stat)} ${why} (the file's ${kind} is ${String(act)})`);
        if (/^(long|integer|short|byte)$/.test(t) || t.startsWith('decimal')) {
          if (!(stat instanceof Num)) return bad('is not a number');
          if (cmpDecimal(stat.text, String(act)) !== 0) bad('is wrong');
        } else if (t === 'float' || t === 'double') {
          if (!(stat instanceof Num)) return; // NaN / Infinity may be written as strings; not judged
          const s = Number(stat.text);
          const a = Number(act);
          const tol = (t === 'float' ? 1e-6 : 1e-12) * Math.max(1, Math.abs(a));
          if (Math.abs(s - a) > tol) bad('is wrong');
        } else if (t === 'date') {
          if (stat !== act) bad('is wrong');
        } else if (t === 'timestamp' || t === 'timestamp_ntz') {
          const us = typeof stat === 'string' ? timestampMicros(stat) : null;
          if (us === null) return bad('is not a timestamp');
          const a = BigInt(String(act));
          // Truncated down to milliseconds: stat <= actual < stat + 1 ms.
          if (!(us <= a && a < us + 1000n)) bad('is wrong (timestamps are truncated to milliseconds)');
        } else if (t === 'string') {
          if (typeof stat !== 'string') return bad('is not a string');
          if (kind === 'min' && !String(act).startsWith(stat)) bad('is not the minimum or a prefix of it');
          if (kind === 'max' && cmpUtf8(stat, String(act)) < 0) bad('is below the maximum');
          if (kind === 'max' && stat !== act && [...stat].length > 0 && !String(act).startsWith([...stat].slice(0, -1).join(''))) bad('is neither the maximum nor a truncation of it');
        }
      };
      check('min', l.min, lo);
      check('max', l.max, hi);
    });
  }

  async loadCheckpoint(cp: CheckpointInfo, state: State): Promise<void> {
    const rows = await this.checkpointRows(cp);
    if (!rows) return;
    for (const r of rows) {
      if (isObj(r.protocol)) state.protocol = r.protocol;
      if (isObj(r.metaData)) state.metadata = r.metaData;
      if (isObj(r.txn)) state.txns.set(String(r.txn.appId), Number(r.txn.version));
      if (isObj(r.add)) {
        const a = r.add as unknown as AddAction;
        state.files.set(fileKey(a.path, a.deletionVector), a);
      }
      if (isObj(r.remove)) state.tombstones.set(fileKey(String(r.remove.path), r.remove.deletionVector as AddAction['deletionVector']), r.remove);
    }
  }

  async checkpointRows(cp: CheckpointInfo): Promise<Json[] | null> {
    const files = cp.files.map((f) => path.join(this.root, '_delta_log', f));
    const src = `read_parquet([${files.map(qs).join(', ')}], union_by_name = true, hive_partitioning = false)`;
    try {
      const cols = (await this.rows(`DESCRIBE SELECT * FROM ${src}`)).map((r) => String(r.column_name));
      const wanted = ['add', 'remove', 'metaData', 'protocol', 'txn'].filter((c) => cols.includes(c));
      const out = await this.rows(`SELECT ${wanted.map((c) => `to_json(${qi(c)}) AS ${qi(c)}`).join(', ')} FROM ${src}`);
      return out.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null).map(([k, v]) => [k, JSON.parse(String(v))])));
    } catch (e) {
      this.v(`checkpoint ${cp.version}: unreadable (${(e as Error).message.split('\n')[0]})`);
      return null;
    }
  }

  async checkCheckpoint(cp: CheckpointInfo, state: State): Promise<void> {
    const at = `checkpoint ${cp.version}`;
    if (cp.kind === 'v2') return; // V2 checkpoints are not written by floe; not judged here
    for (const f of cp.files) {
      const file = path.join(this.root, '_delta_log', f);
      let cols: Json[];
      try {
        cols = await this.rows(`DESCRIBE SELECT * FROM read_parquet(${qs(file)}, hive_partitioning = false)`);
      } catch (e) {
        this.v(`${at}: ${f} is not readable Parquet (${(e as Error).message.split('\n')[0]})`);
        return;
      }
      for (const col of Object.keys(CHECKPOINT_SPEC)) {
        const c = cols.find((r) => r.column_name === col);
        if (!c) this.v(`${at}: ${f} has no ${col} column`);
        else for (const issue of checkpointColumnIssues(col, String(c.column_type))) this.v(`${at}: ${f}: ${issue}`);
      }
    }
    const rows = await this.checkpointRows(cp);
    if (!rows) return;
    const protos = rows.filter((r) => isObj(r.protocol)).map((r) => r.protocol as Json);
    const metas = rows.filter((r) => isObj(r.metaData)).map((r) => r.metaData as Json);
    if (protos.length !== 1) this.v(`${at}: ${protos.length} protocol rows (exactly one required)`);
    if (metas.length !== 1) this.v(`${at}: ${metas.length} metaData rows (exactly one required)`);
    const norm = (x: unknown): string => JSON.stringify(x ?? null);
    if (protos[0] && state.protocol) {
      const a = protos[0];
      const b = state.protocol;
      if (a.minReaderVersion !== b.minReaderVersion || a.minWriterVersion !== b.minWriterVersion
        || norm([...((a.readerFeatures as string[]) ?? [])].sort()) !== norm([...((b.readerFeatures as string[]) ?? [])].sort())
        || norm([...((a.writerFeatures as string[]) ?? [])].sort()) !== norm([...((b.writerFeatures as string[]) ?? [])].sort())) {
        this.v(`${at}: protocol ${norm(a)} differs from the replay's ${norm(b)}`);
      }
    }
    if (metas[0] && state.metadata) {
      const a = metas[0];
      const b = state.metadata;
      for (const k of ['id', 'schemaString']) if (a[k] !== b[k]) this.v(`${at}: metaData.${k} differs from the replay's`);
      if (norm(a.partitionColumns ?? []) !== norm(b.partitionColumns ?? [])) this.v(`${at}: metaData.partitionColumns differ from the replay's`);
      const sortObj = (o: unknown): string => norm(Object.entries((o as Record<string, string>) ?? {}).sort(([x], [y]) => (x < y ? -1 : 1)));
      if (sortObj(a.configuration) !== sortObj(b.configuration)) this.v(`${at}: metaData.configuration ${sortObj(a.configuration)} differs from the replay's ${sortObj(b.configuration)}`);
      if ((a.format as Json | undefined)?.provider !== (b.format as Json | undefined)?.provider) this.v(`${at}: metaData.format.provider differs from the replay's`);
    }
    const cpFiles = new Map<string, Json>();
    for (const r of rows.filter((x) => isObj(x.add))) {
      const a = r.add as Json;
      const key = fileKey(String(a.path), a.deletionVector as AddAction['deletionVector']);
      if (cpFiles.has(key)) this.v(`${at}: file ${String(a.path)} appears twice`);
      cpFiles.set(key, a);
    }
    for (const [k, f] of state.files) {
      const c = cpFiles.get(k);
      if (!c) {
        this.v(`${at}: live file ${f.path} is missing from the checkpoint`);
        continue;
      }
      if (Number(c.size) !== Number(f.size)) this.v(`${at}: file ${f.path} has size ${String(c.size)} in the checkpoint but ${f.size} in the log`);
      const pv = (x: unknown): string => norm(Object.entries((x as Record<string, string | null>) ?? {}).map(([kk, vv]) => [kk, vv === '' ? null : vv]).sort(([x1], [y1]) => (String(x1) < String(y1) ? -1 : 1)));
      if (pv(c.partitionValues) !== pv(f.partitionValues)) this.v(`${at}: file ${f.path} has partitionValues ${pv(c.partitionValues)} in the checkpoint but ${pv(f.partitionValues)} in the log`);
      // Checkpoints may leave JSON stats out (delta.checkpoint.writeStatsAsJson = false); when both have them, they agree.
      const n1 = typeof c.stats === 'string' ? (JSON.parse(c.stats) as Json).numRecords : undefined;
      const n2 = typeof f.stats === 'string' ? (JSON.parse(f.stats) as Json).numRecords : undefined;
      if (n1 !== undefined && n2 !== undefined && Number(n1) !== Number(n2)) this.v(`${at}: file ${f.path} has numRecords ${String(n1)} in the checkpoint but ${String(n2)} in the log`);
    }
    for (const [k, c] of cpFiles) if (!state.files.has(k)) this.v(`${at}: file ${String(c.path)} is in the checkpoint but not live at version ${cp.version}`);
    for (const r of rows.filter((x) => isObj(x.remove))) {
      const rm = r.remove as Json;
      const key = fileKey(String(rm.path), rm.deletionVector as AddAction['deletionVector']);
      if (state.files.has(key)) this.v(`${at}: remove tombstone for live file ${String(rm.path)}`);
      else if (!state.tombstones.has(key)) this.v(`${at}: remove tombstone for ${String(rm.path)}, which the log never removed`);
    }
    const txns = new Map<string, number>();
    for (const r of rows.filter((x) => isObj(x.txn))) txns.set(String((r.txn as Json).appId), Number((r.txn as Json).version));
    const ts = (m: Map<string, number>): string => norm([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
    if (ts(txns) !== ts(state.txns)) this.v(`${at}: txn rows ${ts(txns)} differ from the replay's ${ts(state.txns)}`);
    const extra = rows.filter((r) => !isObj(r.add) && !isObj(r.remove) && !isObj(r.metaData) && !isObj(r.protocol) && !isObj(r.txn));
    void extra; // domainMetadata / other rows are allowed
  }

  async checkLastCheckpoint(logDir: string, checkpoints: Map<number, CheckpointInfo>): Promise<void> {
    let text: string;
    try {
      text = await fs.readFile(path.join(logDir, '_last_checkpoint'), 'utf8');
    } catch {
      return;
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      this.v('_last_checkpoint is not JSON');
      return;
    }
    if (!isObj(j) || typeof j.version !== 'number') {
      this.v('_last_checkpoint lacks a numeric version');
      return;
    }
    const cp = checkpoints.get(j.version);
    if (!cp) {
      this.v(`_last_checkpoint names version ${j.version}, which has no checkpoint (${pad(j.version)}.checkpoint.parquet)`);
      return;
    }
    if (typeof j.parts === 'number' && cp.kind === 'multipart' && cp.files.length !== j.parts) this.v(`_last_checkpoint says ${j.parts} parts; ${cp.files.length} exist`);
    if (typeof j.size === 'number' && cp.kind !== 'v2') {
      const files = cp.files.map((f) => path.join(logDir, f));
      try {
        const n = Number((await this.rows(`SELECT count(*) AS n FROM read_parquet([${files.map(qs).join(', ')}], union_by_name = true, hive_partitioning = false)`))[0]!.n);
        if (n !== j.size) this.v(`_last_checkpoint size ${j.size} but checkpoint ${j.version} holds ${n} actions`);
      } catch {
        /* unreadable checkpoints are reported elsewhere */
      }
    }
  }

  async compareRead(state: State): Promise<void> {
    const meta = state.metadata;
    if (!meta) return;
    const schema = this.schemaOf(meta);
    if (!schema) return;
    const parts = new Set(Array.isArray(meta.partitionColumns) ? (meta.partitionColumns as string[]) : []);
    const mapped = ['name', 'id'].includes(String((meta.configuration as Json | undefined)?.['delta.columnMapping.mode'] ?? 'none'));
    // Columns compared: all, except nested columns of column-mapped tables (physical names inside).
    const fields = schema.fields.filter((f) => duck(f.type) && !(mapped && typeof f.type !== 'string'));
    if (!fields.length) return;
    const plain = new Map<string, number>();
    let expectedDeleted = 0;
    for (const f of state.files.values()) {
      let rel: string;
      try {
        rel = decodeURIComponent(f.path);
      } catch {
        return;
      }
      const file = path.join(this.root, ...rel.split('/'));
      try {
        await fs.access(file);
      } catch {
        return; // reported as a missing live file
      }
      const src = `read_parquet(${qs(file)}, hive_partitioning = false)`;
      const present = new Set((await this.rows(`DESCRIBE SELECT * FROM ${src}`)).map((r) => String(r.column_name)));
      const sel = fields.map((c) => {
        const dt = duck(c.type)!;
        if (parts.has(c.name)) return `CAST(${partitionLiteral(c.type, f.partitionValues?.[physical(c)])} AS VARCHAR) AS ${qi(c.name)}`;
        if (!present.has(physical(c))) return `NULL::VARCHAR AS ${qi(c.name)}`;
        return `CAST(CAST(${qi(physical(c))} AS ${dt}) AS VARCHAR) AS ${qi(c.name)}`;
      });
      let plainRows: Json[];
      try {
        plainRows = await this.rows(`SELECT ${sel.join(', ')} FROM ${src}`);
      } catch (e) {
        this.v(`read: cannot read ${f.path} with its partition values ${JSON.stringify(f.partitionValues)} (${(e as Error).message.split('\n')[0]})`);
        return;
      }
      for (const r of plainRows) {
        const k = JSON.stringify(fields.map((c) => r[c.name] ?? null));
        plain.set(k, (plain.get(k) ?? 0) + 1);
      }
      if (f.deletionVector) expectedDeleted += Number(f.deletionVector.cardinality);
    }
    const floe = await Floe.create();
    try {
      const df = await floe.read.delta(this.root);
      const sql = await df.toSQL();
      const got = await floe.engine.allJson(`SELECT ${fields.map((c) => `CAST(${qi(c.name)} AS VARCHAR) AS ${qi(c.name)}`).join(', ')} FROM (${sql})`);
      const mine = new Map<string, number>();
      for (const r of got) {
        const k = JSON.stringify(fields.map((c) => r[c.name] ?? null));
        mine.set(k, (mine.get(k) ?? 0) + 1);
      }
      const plainN = [...plain.values()].reduce((a, b) => a + b, 0);
      let shown = 0;
      for (const [k, n] of mine) {
        const p = plain.get(k) ?? 0;
        if (n > p && shown++ < 5) this.v(`read: floe returns row ${k} ${n}× but the data files hold it ${p}×`);
      }
      if (expectedDeleted === 0) {
        for (const [k, n] of plain) {
          const m = mine.get(k) ?? 0;
          if (m < n && shown++ < 5) this.v(`read: the data files hold row ${k} ${n}× but floe returns it ${m}×`);
        }
      }
      if (plainN - got.length !== expectedDeleted) this.v(`read: floe returns ${got.length} rows; the live data files hold ${plainN} rows with ${expectedDeleted} deleted by deletion vectors`);
    } catch (e) {
      this.v(`read: floe cannot read the table (${(e as Error).message.split('\n')[0]})`);
    } finally {
      await floe.close();
    }
  }
}

/**
 * Checks a Delta table (a local folder, or a test-store URL: see store.ts) against the protocol and returns the violations found;
 * an empty array means the table is valid.
 */
export async function checkTable(tablePath: string, options: CheckOptions = {}): Promise<string[]> {
  // Tables in a remote test store (FLOE_TEST_STORE) are checked on a downloaded copy of their objects.
  const local = await localCopy(tablePath);
  const c = new Checker(path.resolve(local), { fromVersion: options.fromVersion ?? 0, compareRead: options.compareRead ?? true });
  await c.open();
  try {
    await c.run();
  } catch (e) {
    c.v(`checker error: ${(e as Error).stack ?? String(e)}`);
  } finally {
    c.close();
  }
  return c.violations;
}

/** Throws an Error listing the violations when the table is not valid (for tests). */
export async function assertValidTable(tablePath: string, options: CheckOptions = {}): Promise<void> {
  const v = await checkTable(tablePath, options);
  if (v.length) throw new Error(`Delta protocol violations in ${tablePath}:\n  - ${v.join('\n  - ')}`);
}
