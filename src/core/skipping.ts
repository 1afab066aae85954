/**
 * Data skipping: decides from a file's partition values and statistics (PROTOCOL.md "Per-file
 * Statistics", "Partition Value Serialization") whether it can hold a row matching a predicate.
 *
 * Soundness model. For every sub-expression we compute two flags for the file: `t` — some row may
 * make it TRUE, and `f` — some row may make it FALSE (rows where it is NULL need no flag: a WHERE
 * drops them, and NOT / AND / OR map NULL to NULL or are decided by the other side). A flag is set to
 * false only when that is certain, so `NOT` swaps the flags, `AND` gives t = t₁ ∧ t₂, f = f₁ ∨ f₂,
 * `OR` the dual, and a file is skipped only when the whole predicate has t = false.
 *
 * Per column we know (from stats or the partition value) a lower bound `lo` and an upper bound `hi`
 * on its non-null values, and whether all / none of its values are null. Rules that keep bounds safe:
 * - Numbers are compared exactly (BigInt decimals), whatever the column type. Longs and decimals
 *   that JSON parsing may have rounded (beyond 2^53, or decimals of precision > 15) are widened by
 *   two units in the last place of the parsed double; float stats and literals by float32 ulps.
 *   Literals are converted as DuckDB casts them: scientific and > 38-digit literals are DOUBLE (so a
 *   long / decimal column is compared in double: widened); for double columns a DECIMAL literal is
 *   exact only while DuckDB's unscaled / 10^scale conversion is correctly rounded (|unscaled| ≤ 2^53,
 *   scale ≤ 22), else widened by 4 ulps.
 * - float / double stats (Parquet-style writers leave NaN out of min/max, and DuckDB sorts NaN above
 *   every number) are never used to conclude that all values lie below a literal: `x > v`, `x >= v`
 *   and the FALSE side of `x < v`, `x <= v`, `x = v` are never decided from `maxValues`.
 * - Strings compare by code point (UTF-8 byte order, as DuckDB does). `minValues` is always a lower
 *   bound (a truncated minimum is a prefix, hence smaller). `maxValues` may be truncated to a prefix
 *   P, with or without a tie-breaker character (Spark cuts at 32 characters, other writers
 *   elsewhere), so the only safe reading is "every value is ≤ P followed by anything": a literal v
 *   is above all values only if v > P and v does not start with P. A min or max containing U+FFFD
 *   (a possibly mangled truncation) is ignored; a max's trailing lone high surrogate is dropped.
 * - Timestamp stats are truncated to milliseconds, so `maxValues` is widened by 999 µs.
 * - `timestamp` (TIMESTAMPTZ) columns: a value without an explicit UTC offset (a partition value, a
 *   TIMESTAMP / DATE literal, a string literal without offset) depends on the session time zone, so
 *   it is widened by ±24 h unless {@link SkippingOptions.naiveTimestampsAreUtc} is set.
 * - `nullCount` is only used when it is 0 or equal to `numRecords` (the only values the protocol
 *   guarantees when `tightBounds` is false). Missing stats, unknown columns, unsupported types and
 *   literals that do not cleanly convert to the column's type make no claim.
 */
import type { FileStats } from './actions.js';
import type { ColumnPath, CompareOp, Expr, Literal } from './predicate.js';
import { physicalName, type DataType, type StructField, type StructType } from './schema.js';

/** Options for {@link fileMayMatch}. */
export interface SkippingOptions {
  /**
   * Treat timestamps without an explicit offset as UTC when comparing `timestamp` (TIMESTAMPTZ)
   * columns. Only correct if the DuckDB session TimeZone is UTC and partition values are read as UTC;
   * by default (false) such values are widened by ±24 hours.
   */
  naiveTimestampsAreUtc?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Exact decimals: value = m / 10^s.

interface Dec { m: bigint; s: number }
/** A comparable value: an exact decimal (numbers, booleans, days, microseconds) or a string. */
type Val = Dec | string;
/** The literal lies somewhere in [lo, hi] (lo = hi when exact). */
interface Range { lo: Val; hi: Val }

const pow10Cache: bigint[] = [1n];
function pow10(n: number): bigint {
  if (n > 400) return 10n ** BigInt(n);
  while (pow10Cache.length <= n) pow10Cache.push(pow10Cache[pow10Cache.length - 1]! * 10n);
  return pow10Cache[n]!;
}

function decCmp(a: Dec, b: Dec): number {
  let x = a.m;
  let y = b.m;
  if (a.s < b.s) x *= pow10(b.s - a.s);
  else if (b.s < a.s) y *= pow10(a.s - b.s);
  return x < y ? -1 : x > y ? 1 : 0;
}

function decAdd(a: Dec, b: Dec): Dec {
  const s = Math.max(a.s, b.s);
  return { m: a.m * pow10(s - a.s) + b.m * pow10(s - b.s), s };
}

function decNeg(a: Dec): Dec {
  return { m: -a.m, s: a.s };
}

const DEC_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Parses decimal / scientific notation exactly; null if malformed or the exponent exceeds ±400. */
function decParse(text: string): Dec | null {
  const g = DEC_RE.exec(text);
  if (!g || (g[2]! + (g[3] ?? '')).length === 0 || Math.abs(Number(g[4] ?? '0')) > 400) return null;
  const frac = g[3] ?? '';
  let m = BigInt(g[2]! + frac || '0');
  let s = frac.length - Number(g[4] ?? '0');
  if (s < 0) {
    m *= pow10(-s);
    s = 0;
  }
  return { m: g[1] === '-' ? -m : m, s };
}

/** Sign, exponent field and fraction of a double. */
const DV = new DataView(new ArrayBuffer(8));
function doubleParts(x: number): { neg: boolean; exp: number; frac: bigint } {
  const dv = DV;
  dv.setFloat64(0, x);
  const hi = dv.getUint32(0);
  const lo = dv.getUint32(4);
  return { neg: hi >>> 31 === 1, exp: (hi >>> 20) & 0x7ff, frac: (BigInt(hi & 0xfffff) << 32n) | BigInt(lo) };
}

/** 2^e exactly. */
function pow2(e: number): Dec {
  return e >= 0 ? { m: 1n << BigInt(e), s: 0 } : { m: 5n ** BigInt(-e), s: -e };
}

/** The exact value of a finite double. */
function decFromDouble(x: number): Dec {
  if (Number.isSafeInteger(x)) return { m: BigInt(x), s: 0 };
  const { neg, exp, frac } = doubleParts(x);
  let mant = exp === 0 ? frac : frac | (1n << 52n);
  let e2 = exp === 0 ? -1074 : exp - 1075;
  if (mant === 0n) return { m: 0n, s: 0 };
  while (e2 < 0 && (mant & 1n) === 0n) {
    mant >>= 1n;
    e2++;
  }
  const p = pow2(e2);
  const m = mant * p.m;
  return { m: neg ? -m : m, s: p.s };
}

/** [x - k·u, x + k·u] where u = 2^ulpExp. */
function widen(x: Dec, ulpExp: number, k: bigint): Range {
  const u = pow2(ulpExp);
  const d = { m: u.m * k, s: u.s };
  return { lo: decAdd(x, decNeg(d)), hi: decAdd(x, d) };
}

/** log2 of the spacing of doubles just above |x| (the larger of the two neighbouring gaps). */
function doubleUlpExp(x: number): number {
  const { exp } = doubleParts(x);
  return exp === 0 ? -1074 : exp - 1075;
}

/** log2 of the spacing of float32 values around |x|. */
function floatUlpExp(x: number): number {
  const { exp } = doubleParts(Math.fround(x));
  return exp === 0 ? -149 : Math.max(exp - 1023, -126) - 23;
}

const exact = (v: Val): Range => ({ lo: v, hi: v });

/** A double that approximates some exact value, widened by k ulps. */
function approxDouble(x: number, k: bigint): Range | null {
  return Number.isFinite(x) ? widen(decFromDouble(x), doubleUlpExp(x), k) : null;
}

/** A float32 column value written as (or parsed into) a double: widened by two float32 ulps. */
function approxFloat(x: number): Range | null {
  return Number.isFinite(x) && Number.isFinite(Math.fround(x)) ? widen(decFromDouble(x), floatUlpExp(x), 2n) : null;
}

// ---------------------------------------------------------------------------------------------
// Strings, dates and timestamps.

/** Compares by code point, i.e. in UTF-8 byte order (not UTF-16 code unit order). */
function strCmp(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a.charCodeAt(i) !== b.charCodeAt(i)) return a.codePointAt(i)! < b.codePointAt(i)! ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function valCmp(a: Val, b: Val): number {
  if (typeof a === 'string') return typeof b === 'string' ? strCmp(a, b) : NaN;
  return typeof b === 'string' ? NaN : decCmp(a, b);
}

const US_PER_DAY = 86_400_000_000n;
const TWO_53 = 2n ** 53n;
const US_PER_HOUR = 3_600_000_000n;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm); null if invalid. */
function daysFromCivil(y: number, m: number, d: number): number | null {
  if (m < 1 || m > 12 || d < 1) return null;
  const dim = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
  if (d > dim) return null;
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function parseDate(s: string): number | null {
  const g = /^([+-]?\d{4,6})-(\d{1,2})-(\d{1,2})$/.exec(s.trim());
  return g ? daysFromCivil(Number(g[1]), Number(g[2]), Number(g[3])) : null;
}

interface ParsedTs {
  /** Microseconds since the epoch (offset applied when present). */
  us: bigint;
  /** Whether the text carried an explicit UTC offset or Z. */
  offset: boolean;
  /** Whether digits beyond microseconds were dropped. */
  inexact: boolean;
}

const TS_RE = /^([+-]?\d{4,6})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{0,9}))?)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Parses 'YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|±HH[:MM]]' with a space or T; null if invalid. */
function parseTimestamp(s: string): ParsedTs | null {
  const g = TS_RE.exec(s.trim());
  if (!g) return null;
  const days = daysFromCivil(Number(g[1]), Number(g[2]), Number(g[3]));
  const h = Number(g[4] ?? 0);
  const mi = Number(g[5] ?? 0);
  const sec = Number(g[6] ?? 0);
  if (days === null || h > 23 || mi > 59 || sec > 59) return null;
  const fracDigits = g[7] ?? '';
  let us = BigInt(days) * US_PER_DAY + BigInt(h * 3600 + mi * 60 + sec) * 1_000_000n + BigInt((fracDigits + '000000').slice(0, 6));
  const tz = g[8];
  if (tz && !/^(Z|UTC)$/i.test(tz)) {
    const o = /^([+-])(\d{2}):?(\d{2})?$/.exec(tz)!;
    const oh = Number(o[2]);
    const om = Number(o[3] ?? 0);
    if (oh > 18 || om > 59) return null;
    const off = BigInt(oh * 60 + om) * 60_000_000n;
    us = o[1] === '+' ? us - off : us + off;
  }
  return { us, offset: tz !== undefined, inexact: fracDigits.length > 6 && /[1-9]/.test(fracDigits.slice(6)) };
}

// ---------------------------------------------------------------------------------------------
// Column types.

type Kind =
  | { k: 'int' | 'long' | 'float' | 'double' | 'string' | 'boolean' | 'date' | 'timestamp' | 'timestamp_ntz' }
  | { k: 'decimal'; precision: number; scale: number };

function kindOf(t: DataType): Kind | null {
  if (typeof t !== 'string') return null;
  switch (t) {
    case 'byte': case 'short': case 'integer': return { k: 'int' };
    case 'long': case 'float': case 'double': case 'string': case 'boolean': case 'date': case 'timestamp': case 'timestamp_ntz':
      return { k: t };
    case 'decimal': return { k: 'decimal', precision: 10, scale: 0 };
    default: {
      const g = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
      return g ? { k: 'decimal', precision: Number(g[1]), scale: Number(g[2]) } : null;
    }
  }
}

interface Ctx { utc: boolean }

/** A timestamp for a column of kind `timestamp` / `timestamp_ntz` (null if ambiguous). */
function tsRange(ts: ParsedTs, kind: Kind, ctx: Ctx, literalTimestampType = false): Range | null {
  let lo = ts.us;
  let hi = ts.inexact ? ts.us + 1n : ts.us;
  if (ts.inexact) lo -= 1n;
  if (kind.k === 'timestamp_ntz') {
    if (ts.offset) return null;
  } else if (!ctx.utc && (!ts.offset || literalTimestampType)) {
    lo -= 24n * US_PER_HOUR;
    hi += 24n * US_PER_HOUR;
  }
  return { lo: { m: lo, s: 0 }, hi: { m: hi, s: 0 } };
}

const INT_RE = /^[+-]?\d+$/;
const NUM_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A partition value (non-empty string) as a range in the column's domain; null if unusable. */
function partitionRange(raw: string, kind: Kind, ctx: Ctx): Range | null {
  switch (kind.k) {
    case 'int': case 'long': return INT_RE.test(raw) ? exact(decParse(raw)!) : null;
    case 'decimal': { const d = NUM_RE.test(raw) ? decParse(raw) : null; return d ? exact(d) : null; }
    case 'float': return NUM_RE.test(raw) ? approxFloat(Number(raw)) : null;
    case 'double': return NUM_RE.test(raw) ? approxDouble(Number(raw), 0n) : null;
    case 'string': return exact(raw);
    case 'boolean': { const b = raw.toLowerCase(); return b === 'true' || b === 'false' ? exact({ m: b === 'true' ? 1n : 0n, s: 0 }) : null; }
    case 'date': { const d = parseDate(raw); return d === null ? null : exact({ m: BigInt(d), s: 0 }); }
    case 'timestamp': case 'timestamp_ntz': { const ts = parseTimestamp(raw); return ts ? tsRange(ts, kind, ctx) : null; }
  }
}

/** A min or max statistic (parsed JSON) as a range in the column's domain; null if unusable. */
function statRange(v: unknown, kind: Kind, ctx: Ctx, isMax: boolean): Range | null {
  switch (kind.k) {
    case 'int': case 'long': case 'decimal':
      if (typeof v === 'bigint') return exact({ m: v, s: 0 });
      if (typeof v === 'string') { const d = NUM_RE.test(v) ? decParse(v) : null; return d ? exact(d) : null; }
      if (typeof v !== 'number' || !Number.isFinite(v)) return null;
      if (Number.isSafeInteger(v)) return exact({ m: BigInt(v), s: 0 });
      if (kind.k === 'decimal' && kind.precision <= 15) return exact(decParse(String(v))!);
      return approxDouble(v, 2n);
    case 'float':
      return typeof v === 'number' ? approxFloat(v) : null;
    case 'double':
      return typeof v === 'number' ? approxDouble(v, 0n) : typeof v === 'string' && NUM_RE.test(v) ? approxDouble(Number(v), 2n) : null;
    case 'string':
      if (typeof v !== 'string' || v.includes('\uFFFD')) return null;
      return exact(isMax && /[\uD800-\uDBFF]$/.test(v) ? v.slice(0, -1) : v);
    case 'boolean':
      return typeof v === 'boolean' ? exact({ m: v ? 1n : 0n, s: 0 }) : null;
    case 'date': {
      const d = typeof v === 'string' ? parseDate(v) : null;
      return d === null ? null : exact({ m: BigInt(d), s: 0 });
    }
    case 'timestamp': case 'timestamp_ntz': {
      const ts = typeof v === 'string' ? parseTimestamp(v) : null;
      const r = ts ? tsRange(ts, kind, ctx) : null;
      return r && isMax ? { lo: r.lo, hi: decAdd(r.hi as Dec, { m: 999n, s: 0 }) } : r;
    }
  }
}

const literalCache = new WeakMap<Literal, Map<string, Range | null>>();

/** {@link convertLiteral}, memoised per literal node (the same literals are checked against every file). */
function literalRange(lit: Literal, kind: Kind, ctx: Ctx): Range | null {
  const key = kind.k === 'decimal' ? `decimal(${kind.precision},${kind.scale})${ctx.utc}` : `${kind.k}${ctx.utc}`;
  let m = literalCache.get(lit);
  if (!m) literalCache.set(lit, (m = new Map()));
  let r = m.get(key);
  if (r === undefined) m.set(key, (r = convertLiteral(lit, kind, ctx)));
  return r;
}

/** A non-null literal converted the way DuckDB casts it to the column's type; null if unusable. */
function convertLiteral(lit: Literal, kind: Kind, ctx: Ctx): Range | null {
  switch (kind.k) {
    case 'int': case 'long': case 'decimal': {
      if (lit.type === 'number') {
        const d = decParse(lit.text);
        if (!d) return null;
        const [int = '', frac] = lit.text.replace(/^[+-]/, '').split('.');
        // DuckDB types scientific literals, integers beyond 128 bits and decimals of more than 38
        // digits (leading zeros included) as DOUBLE and then compares in double. Treating an exact
        // literal as approximate is always safe, so the digit count errs on that side.
        const width = frac === undefined ? int.replace(/^0+/, '').length : int.length + frac.length;
        return /[eE]/.test(lit.text) || width > 37 ? approxDouble(Number(lit.text), 2n) : exact(d);
      }
      if (lit.type !== 'string') return null;
      if (kind.k !== 'decimal') return INT_RE.test(lit.value) ? exact(decParse(lit.value)!) : null;
      const g = /^[+-]?\d+(?:\.(\d+))?$/.exec(lit.value);
      return g && (g[1] ?? '').length <= kind.scale ? exact(decParse(lit.value)!) : null;
    }
    case 'float': case 'double': {
      const text = lit.type === 'number' ? lit.text : lit.type === 'string' && NUM_RE.test(lit.value) ? lit.value : null;
      if (text === null) return null;
      const x = Number(text);
      if (kind.k === 'float') return Number.isFinite(x) && Number.isFinite(Math.fround(x)) ? widen(decFromDouble(x), floatUlpExp(x), 4n) : null;
      if (!Number.isFinite(x)) return null;
      // DuckDB parses VARCHAR and scientific (DOUBLE) literals correctly rounded, as Number() does; it
      // converts a DECIMAL literal as unscaled / 10^scale, correctly rounded only while both are exact
      // doubles (TryCastDecimalToFloatingPoint); otherwise allow a few ulps of error.
      const d = decParse(text);
      const nearest = lit.type === 'string' || /[eE]/.test(text) || (d !== null && d.m <= TWO_53 && -d.m <= TWO_53 && d.s <= 22);
      return nearest ? exact(decFromDouble(x)) : approxDouble(x, 4n);
    }
    case 'string':
      return lit.type === 'string' ? exact(lit.value) : null;
    case 'boolean': {
      if (lit.type === 'boolean') return exact({ m: lit.value ? 1n : 0n, s: 0 });
      const b = lit.type === 'string' ? lit.value.toLowerCase() : '';
      return b === 'true' || b === 'false' ? exact({ m: b === 'true' ? 1n : 0n, s: 0 }) : null;
    }
    case 'date': {
      if (lit.type === 'date' || lit.type === 'string') {
        const d = parseDate(lit.value);
        return d === null ? null : exact({ m: BigInt(d), s: 0 });
      }
      if (lit.type !== 'timestamp') return null;
      // DuckDB casts the DATE column to TIMESTAMP: a time of day puts the literal between two days.
      const ts = parseTimestamp(lit.value);
      if (!ts || ts.offset) return null;
      const q = ts.us / US_PER_DAY - (ts.us % US_PER_DAY < 0n ? 1n : 0n);
      return ts.us === q * US_PER_DAY && !ts.inexact ? exact({ m: q, s: 0 }) : { lo: { m: q, s: 0 }, hi: { m: q + 1n, s: 0 } };
    }
    case 'timestamp': case 'timestamp_ntz': {
      if (lit.type !== 'date' && lit.type !== 'timestamp' && lit.type !== 'string') return null;
      if (lit.type === 'date') {
        const d = parseDate(lit.value);
        return d === null ? null : tsRange({ us: BigInt(d) * US_PER_DAY, offset: false, inexact: false }, kind, ctx);
      }
      const ts = parseTimestamp(lit.value);
      return ts ? tsRange(ts, kind, ctx, lit.type === 'timestamp') : null;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// What a file tells about one column.

interface Facts {
  /** No row has a non-null value (also true for an empty file). */
  allNull: boolean;
  /** No row is null. */
  noNull: boolean;
  /** Every non-null value is ≥ lo. */
  lo?: Val;
  /** Every non-null, non-NaN value is ≤ hi — or, if hiPrefix, ≤ hi followed by any characters. */
  hi?: Val;
  hiPrefix: boolean;
  /** NaN values (which sort above every number) may exist regardless of hi. */
  nan: boolean;
}

const NOTHING: Facts = { allNull: false, noNull: false, hiPrefix: false, nan: false };

interface Resolved { fields: StructField[]; kind: Kind | null }

function findField(st: StructType, name: string): StructField | null {
  const exactMatch = st.fields.find((f) => f.name === name);
  if (exactMatch) return exactMatch;
  const lower = name.toLowerCase();
  const matches = st.fields.filter((f) => f.name.toLowerCase() === lower);
  return matches.length === 1 ? matches[0]! : null;
}

const resolveCache = new WeakMap<StructType, Map<string, Resolved | null>>();

/** Resolves a column path against the schema (case-insensitively; memoised per schema). */
function resolve(schema: StructType, path: ColumnPath): Resolved | null {
  const key = path.join('\u0000');
  let m = resolveCache.get(schema);
  if (!m) resolveCache.set(schema, (m = new Map()));
  let r = m.get(key);
  if (r === undefined) m.set(key, (r = resolveUncached(schema, path)));
  return r;
}

function resolveUncached(schema: StructType, path: ColumnPath): Resolved | null {
  const fields: StructField[] = [];
  let st: StructType | null = schema;
  for (const name of path) {
    if (!st) return null;
    const f = findField(st, name);
    if (!f) return null;
    fields.push(f);
    st = typeof f.type === 'object' && f.type.type === 'struct' ? f.type : null;
  }
  return { fields, kind: kindOf(fields[fields.length - 1]!.type) };
}

function dig(obj: unknown, keys: string[]): unknown {
  let cur = obj;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function toCount(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && INT_RE.test(v) ? Number(v) : typeof v === 'bigint' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** What {@link fileMayMatch} needs of a file (an `AddFile`'s partition values and parsed stats). */
export interface SkippingFile { partitionValues: Record<string, string | null>; stats: FileStats | null }

function columnFacts(path: ColumnPath, file: SkippingFile, schema: StructType, partitionColumns: string[], ctx: Ctx): { facts: Facts; kind: Kind | null } {
  const r = resolve(schema, path);
  if (!r) return { facts: NOTHING, kind: null };
  const leaf = r.fields[r.fields.length - 1]!;
  const isPartition = r.fields.length === 1 && partitionColumns.some((p) => p.toLowerCase() === leaf.name.toLowerCase());
  if (isPartition) {
    const raw = file.partitionValues[physicalName(leaf)];
    if (raw === undefined) return { facts: NOTHING, kind: r.kind };
    if (raw === null || raw === '') return { facts: { ...NOTHING, allNull: true }, kind: r.kind };
    const range = r.kind ? partitionRange(raw, r.kind, ctx) : null;
    return { facts: { ...NOTHING, noNull: true, lo: range?.lo, hi: range?.hi }, kind: r.kind };
  }
  const stats = file.stats;
  if (!stats) return { facts: NOTHING, kind: r.kind };
  const keys = r.fields.map(physicalName);
  const n = toCount(stats.numRecords);
  const nulls = toCount(dig(stats.nullCount, keys));
  const facts: Facts = {
    allNull: n === 0 || (n !== undefined && nulls === n),
    noNull: n === 0 || nulls === 0,
    hiPrefix: r.kind?.k === 'string',
    nan: r.kind?.k === 'float' || r.kind?.k === 'double',
  };
  if (r.kind) {
    const min = dig(stats.minValues, keys);
    const max = dig(stats.maxValues, keys);
    if (min !== undefined && min !== null) facts.lo = statRange(min, r.kind, ctx, false)?.lo;
    if (max !== undefined && max !== null) facts.hi = statRange(max, r.kind, ctx, true)?.hi;
  }
  return { facts, kind: r.kind };
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/** t: some row may make the expression TRUE; f: some row may make it FALSE. */
interface TF { t: boolean; f: boolean }
const ANY: TF = { t: true, f: true };
const NEVER: TF = { t: false, f: false };

/** Every non-null value is > (or ≥) every point of r. */
function allAbove(fc: Facts, r: Range, orEqual: boolean): boolean {
  if (fc.lo === undefined) return false;
  const c = valCmp(fc.lo, r.hi);
  return orEqual ? c >= 0 : c > 0;
}

/** Every non-null, non-NaN value is < (or ≤) every point of r. */
function allBelow(fc: Facts, r: Range, orEqual: boolean): boolean {
  if (fc.hi === undefined) return false;
  if (fc.hiPrefix) {
    const v = r.lo as string;
    const p = fc.hi as string;
    return strCmp(v, p) > 0 && !v.startsWith(p);
  }
  const c = valCmp(fc.hi, r.lo);
  return orEqual ? c <= 0 : c < 0;
}

function compareTF(op: CompareOp, fc: Facts, r: Range): TF {
  const gt = allAbove(fc, r, false);
  const ge = allAbove(fc, r, true);
  // Upper-bound facts say nothing about NaN, which compares above everything.
  const lt = allBelow(fc, r, false) && !fc.nan;
  const le = allBelow(fc, r, true) && !fc.nan;
  const eqT = !gt && !allBelow(fc, r, false); // NaN never equals a number
  const eqF = !(ge && le);
  switch (op) {
    case '=': return { t: eqT, f: eqF };
    case '!=': return { t: eqF, f: eqT };
    case '<': return { t: !ge, f: !lt };
    case '<=': return { t: !gt, f: !le };
    case '>': return { t: !le, f: !gt };
    case '>=': return { t: !lt, f: !ge };
  }
}

function leafCompare(op: CompareOp, lit: Literal, fc: Facts, kind: Kind | null, ctx: Ctx): TF {
  if (fc.allNull || lit.type === 'null') return NEVER;
  const r = kind ? literalRange(lit, kind, ctx) : null;
  return r ? compareTF(op, fc, r) : ANY;
}

function notTF(x: TF): TF {
  return { t: x.f, f: x.t };
}

function evalTF(e: Expr, file: SkippingFile, schema: StructType, partitionColumns: string[], ctx: Ctx): TF {
  const ev = (x: Expr): TF => evalTF(x, file, schema, partitionColumns, ctx);
  switch (e.kind) {
    case 'and': {
      const a = ev(e.left);
      const b = ev(e.right);
      return { t: a.t && b.t, f: a.f || b.f };
    }
    case 'or': {
      const a = ev(e.left);
      const b = ev(e.right);
      return { t: a.t || b.t, f: a.f && b.f };
    }
    case 'not':
      return notTF(ev(e.expr));
    case 'const':
      return e.value === null ? NEVER : { t: e.value, f: !e.value };
    case 'unknown':
      return ANY;
    case 'isNull': {
      const { facts } = columnFacts(e.column, file, schema, partitionColumns, ctx);
      const r = { t: !facts.noNull, f: !facts.allNull };
      return e.negated ? notTF(r) : r;
    }
    case 'compare': {
      const { facts, kind } = columnFacts(e.column, file, schema, partitionColumns, ctx);
      return leafCompare(e.op, e.value, facts, kind, ctx);
    }
    case 'between': {
      const { facts, kind } = columnFacts(e.column, file, schema, partitionColumns, ctx);
      const a = leafCompare('>=', e.low, facts, kind, ctx);
      const b = leafCompare('<=', e.high, facts, kind, ctx);
      const r = { t: a.t && b.t, f: a.f || b.f };
      return e.negated ? notTF(r) : r;
    }
    case 'in': {
      const { facts, kind } = columnFacts(e.column, file, schema, partitionColumns, ctx);
      // x IN (v…) is TRUE if x equals some v, FALSE if x is non-null, differs from all, and no v is NULL.
      let t = false;
      let f = !e.values.some((v) => v.type === 'null');
      for (const v of e.values) {
        if (v.type === 'null') continue;
        const eq = leafCompare('=', v, facts, kind, ctx);
        t ||= eq.t;
        f &&= eq.f;
      }
      if (facts.allNull) t = f = false;
      const r = { t, f };
      return e.negated ? notTF(r) : r;
    }
  }
}

/**
 * Whether a data file may contain a row for which `expr` is TRUE. Returns false only when that is
 * certain under SQL three-valued logic, judging partition columns exactly from `partitionValues`
 * (keyed by physical name; null or '' is NULL) and data columns from `stats` (min / max / nullCount
 * keyed by physical name, nested structs as nested objects). See the module comment for the rules.
 *
 * @param expr the parsed predicate ({@link parsePredicate}).
 * @param file the file's partition values and parsed stats ({@link parseStats}).
 * @param schema the table schema (logical names; column mapping metadata gives physical names).
 * @param partitionColumns the table's partition columns (logical names).
 */
export function fileMayMatch(
  expr: Expr,
  file: SkippingFile,
  schema: StructType,
  partitionColumns: string[],
  options: SkippingOptions = {},
): boolean {
  return evalTF(expr, file, schema, partitionColumns, { utc: options.naiveTimestampsAreUtc === true }).t;
}

/**
 * True if `expr` refers only to (top-level) partition columns, compared case-insensitively, and
 * contains no `unknown` node (which might refer to anything). Such predicates are decided by
 * partition values alone, though {@link fileMayMatch} may still keep a file it cannot decide exactly
 * (e.g. a literal that does not convert cleanly to the column's type).
 */
export function partitionOnly(expr: Expr, partitionColumns: string[]): boolean {
  const parts = new Set(partitionColumns.map((p) => p.toLowerCase()));
  const walk = (e: Expr): boolean => {
    switch (e.kind) {
      case 'and':
      case 'or':
        return walk(e.left) && walk(e.right);
      case 'not':
        return walk(e.expr);
      case 'const':
        return true;
      case 'unknown':
        return false;
      default:
        return e.column.length === 1 && parts.has(e.column[0]!.toLowerCase());
    }
  };
  return walk(expr);
}
