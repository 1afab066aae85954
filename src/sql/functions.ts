/**
 * The Spark → DuckDB function translation table, in one place. Each entry receives the translated
 * arguments (DuckDB SQL) and the raw argument tokens (for arguments that must be literals, such as
 * `date_format` patterns and `named_struct` field names), and returns DuckDB SQL.
 * Functions not listed pass through unchanged (DuckDB and Spark agree on them: abs, coalesce,
 * concat_ws, lower, upper, trim, round, sum, count, avg, min, max, greatest, least, …); functions that
 * read files or the host are refused.
 */
import { type DataType, duckType, quoteIdent, quoteString } from '../core/schema.js';
import { type Token, tokenize } from './lexer.js';
import { analysisErrorAt } from './errors.js';
import { Cursor } from './cursor.js';
import { parseType } from './types.js';

export interface FnCall {
  name: string;
  args: string[];
  raw: Token[][];
  at: Token;
  distinct: boolean;
}

type Translation = (c: FnCall) => string;

function arity(c: FnCall, min: number, max = min): void {
  if (c.args.length < min || c.args.length > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw analysisErrorAt(c.at, `Function ${c.name} takes ${want} argument(s), got ${c.args.length}`, { function: c.name });
  }
}

/** The value of a string-literal argument, or an analysis error naming the function. */
function literalString(c: FnCall, i: number, what: string): string {
  const r = c.raw[i];
  if (!r || r.length !== 1 || r[0]!.kind !== 'string') throw analysisErrorAt(r?.[0] ?? c.at, `${c.name}: the ${what} must be a string literal`, { function: c.name });
  return r[0]!.value;
}

/** Spark's datetime pattern (`yyyy-MM-dd HH:mm:ss`) as a strftime format. */
export function sparkPatternToStrftime(p: string, at?: Token): string {
  let out = '';
  let i = 0;
  while (i < p.length) {
    const ch = p[i]!;
    if (ch === "'") {
      // quoted literal text; '' is a quote
      let j = i + 1;
      let lit = '';
      if (p[j] === "'") {
        out += "'";
        i += 2;
        continue;
      }
      while (j < p.length) {
        if (p[j] === "'") {
          if (p[j + 1] === "'") {
            lit += "'";
            j += 2;
            continue;
          }
          break;
        }
        lit += p[j];
        j++;
      }
      out += lit.replace(/%/g, '%%');
      i = j + 1;
      continue;
    }
    if (!/[A-Za-z]/.test(ch)) {
      out += ch === '%' ? '%%' : ch;
      i++;
      continue;
    }
    let j = i;
    while (p[j] === ch) j++;
    const n = j - i;
    i = j;
    const f = ((): string | undefined => {
      switch (ch) {
        case 'y': case 'u': return n === 2 ? '%y' : '%Y';
        case 'M': case 'L': return n === 1 ? '%-m' : n === 2 ? '%m' : n === 3 ? '%b' : '%B';
        case 'd': return n === 1 ? '%-d' : '%d';
        case 'D': return '%j';
        case 'H': return n === 1 ? '%-H' : '%H';
        case 'h': return n === 1 ? '%-I' : '%I';
        case 'k': return '%H';
        case 'm': return n === 1 ? '%-M' : '%M';
        case 's': return n === 1 ? '%-S' : '%S';
        case 'S': return n <= 3 ? '%g' : n <= 6 ? '%f' : '%n';
        case 'a': return '%p';
        case 'E': return n >= 4 ? '%A' : '%a';
        case 'Z': case 'X': case 'x': return '%z';
        case 'z': case 'V': return '%Z';
        default: return undefined;
      }
    })();
    if (f === undefined) {
      const msg = `Datetime pattern letter '${ch}' in '${p}' is not supported`;
      if (at) throw analysisErrorAt(at, msg);
      throw new Error(msg);
    }
    out += f;
  }
  return out;
}

const castTo = (type: string): Translation => (c) => {
  arity(c, 1);
  return `CAST(${c.args[0]} AS ${type})`;
};

const rename = (to: string, min = 0, max = Infinity): Translation => (c) => {
  arity(c, min, max);
  return `${to}(${c.distinct ? 'DISTINCT ' : ''}${c.args.join(', ')})`;
};

const datePart = (part: string): Translation => (c) => {
  arity(c, 1);
  return `${part}(CAST(${c.args[0]} AS TIMESTAMP))`;
};

const TRUNC_UNITS: Record<string, string> = {
  YEAR: 'year', YYYY: 'year', YY: 'year', QUARTER: 'quarter', MONTH: 'month', MON: 'month', MM: 'month', WEEK: 'week',
  DAY: 'day', DD: 'day', HOUR: 'hour', MINUTE: 'minute', SECOND: 'second', MILLISECOND: 'millisecond', MICROSECOND: 'microsecond',
};

function truncUnit(c: FnCall, i: number): string {
  const u = TRUNC_UNITS[literalString(c, i, 'unit').toUpperCase()];
  if (!u) throw analysisErrorAt(c.raw[i]![0]!, `${c.name}: unknown unit '${c.raw[i]![0]!.value}'`);
  return quoteString(u);
}

/** Functions that read files, the network or the host: never reachable from floe SQL. */
export const FORBIDDEN_FUNCTIONS = new Set([
  'read_csv', 'read_csv_auto', 'read_parquet', 'parquet_scan', 'read_json', 'read_json_auto', 'read_json_objects', 'read_ndjson',
  'read_ndjson_auto', 'read_ndjson_objects', 'read_text', 'read_blob', 'glob', 'sniff_csv', 'parquet_metadata', 'parquet_schema',
  'parquet_file_metadata', 'parquet_kv_metadata', 'delta_scan', 'iceberg_scan', 'iceberg_metadata', 'query', 'query_table', 'getenv',
  'read_xlsx', 'st_read', 'sqlite_scan', 'postgres_scan', 'mysql_scan', 'load_aws_credentials', 'duckdb_secrets', 'which_secret',
  'duckdb_settings', 'current_setting', 'set_config', 'httpfs', 'read_duckdb', 'pragma_table_info', 'checkpoint', 'force_checkpoint',
]);

/** Spark function → DuckDB SQL. Keys are lower-case Spark names. */
export const FUNCTIONS: Record<string, Translation> = {
  // conditional
  nvl: (c) => (arity(c, 2), `coalesce(${c.args.join(', ')})`),
  ifnull: (c) => (arity(c, 2), `coalesce(${c.args.join(', ')})`),
  nvl2: (c) => (arity(c, 3), `CASE WHEN (${c.args[0]}) IS NOT NULL THEN ${c.args[1]} ELSE ${c.args[2]} END`),
  if: (c) => (arity(c, 3), `CASE WHEN ${c.args[0]} THEN ${c.args[1]} ELSE ${c.args[2]} END`),
  iff: (c) => (arity(c, 3), `CASE WHEN ${c.args[0]} THEN ${c.args[1]} ELSE ${c.args[2]} END`),
  isnull: (c) => (arity(c, 1), `((${c.args[0]}) IS NULL)`),
  isnotnull: (c) => (arity(c, 1), `((${c.args[0]}) IS NOT NULL)`),
  nanvl: (c) => (arity(c, 2), `CASE WHEN isnan(${c.args[0]}) THEN ${c.args[1]} ELSE ${c.args[0]} END`),
  zeroifnull: (c) => (arity(c, 1), `coalesce(${c.args[0]}, 0)`),
  nullifzero: (c) => (arity(c, 1), `nullif(${c.args[0]}, 0)`),
  // date and time
  current_timestamp: (c) => (arity(c, 0), 'current_timestamp'),
  now: (c) => (arity(c, 0), 'current_timestamp'),
  current_date: (c) => (arity(c, 0), 'current_date'),
  curdate: (c) => (arity(c, 0), 'current_date'),
  date_format: (c) => (arity(c, 2), `strftime(CAST(${c.args[0]} AS TIMESTAMP), ${quoteString(sparkPatternToStrftime(literalString(c, 1, 'format'), c.raw[1]![0]))})`),
  to_date: (c) => {
    arity(c, 1, 2);
    return c.args.length === 1 ? `TRY_CAST(${c.args[0]} AS DATE)` : `CAST(try_strptime(CAST(${c.args[0]} AS VARCHAR), ${quoteString(sparkPatternToStrftime(literalString(c, 1, 'format'), c.raw[1]![0]))}) AS DATE)`;
  },
  to_timestamp: (c) => {
    arity(c, 1, 2);
    return c.args.length === 1 ? `TRY_CAST(${c.args[0]} AS TIMESTAMPTZ)` : `CAST(try_strptime(CAST(${c.args[0]} AS VARCHAR), ${quoteString(sparkPatternToStrftime(literalString(c, 1, 'format'), c.raw[1]![0]))}) AS TIMESTAMPTZ)`;
  },
  datediff: (c) => (arity(c, 2), `date_diff('day', CAST(${c.args[1]} AS DATE), CAST(${c.args[0]} AS DATE))`),
  date_diff: (c) => (arity(c, 2), `date_diff('day', CAST(${c.args[1]} AS DATE), CAST(${c.args[0]} AS DATE))`),
  date_add: (c) => (arity(c, 2), `CAST(CAST(${c.args[0]} AS DATE) + CAST(${c.args[1]} AS INTEGER) AS DATE)`),
  dateadd: (c) => (arity(c, 2), `CAST(CAST(${c.args[0]} AS DATE) + CAST(${c.args[1]} AS INTEGER) AS DATE)`),
  date_sub: (c) => (arity(c, 2), `CAST(CAST(${c.args[0]} AS DATE) - CAST(${c.args[1]} AS INTEGER) AS DATE)`),
  add_months: (c) => (arity(c, 2), `CAST(CAST(${c.args[0]} AS DATE) + to_months(CAST(${c.args[1]} AS INTEGER)) AS DATE)`),
  months_between: (c) => (arity(c, 2, 3), `CAST(date_diff('month', CAST(${c.args[1]} AS DATE), CAST(${c.args[0]} AS DATE)) AS DOUBLE)`),
  last_day: (c) => (arity(c, 1), `last_day(CAST(${c.args[0]} AS DATE))`),
  year: datePart('year'),
  quarter: datePart('quarter'),
  month: datePart('month'),
  day: datePart('day'),
  dayofmonth: datePart('day'),
  dayofyear: datePart('dayofyear'),
  hour: datePart('hour'),
  minute: datePart('minute'),
  second: datePart('second'),
  weekofyear: datePart('weekofyear'),
  dayofweek: (c) => (arity(c, 1), `(dayofweek(CAST(${c.args[0]} AS TIMESTAMP)) + 1)`),
  weekday: (c) => (arity(c, 1), `((dayofweek(CAST(${c.args[0]} AS TIMESTAMP)) + 6) % 7)`),
  trunc: (c) => (arity(c, 2), `CAST(date_trunc(${truncUnit(c, 1)}, CAST(${c.args[0]} AS DATE)) AS DATE)`),
  date_trunc: (c) => (arity(c, 2), `date_trunc(${truncUnit(c, 0)}, CAST(${c.args[1]} AS TIMESTAMP))`),
  unix_timestamp: (c) => {
    arity(c, 0, 2);
    if (c.args.length === 0) return 'CAST(epoch(current_timestamp) AS BIGINT)';
    if (c.args.length === 1) return `CAST(epoch(CAST(${c.args[0]} AS TIMESTAMP)) AS BIGINT)`;
    return `CAST(epoch(try_strptime(CAST(${c.args[0]} AS VARCHAR), ${quoteString(sparkPatternToStrftime(literalString(c, 1, 'format'), c.raw[1]![0]))})) AS BIGINT)`;
  },
  from_unixtime: (c) => {
    arity(c, 1, 2);
    const fmt = c.args.length === 2 ? sparkPatternToStrftime(literalString(c, 1, 'format'), c.raw[1]![0]) : '%Y-%m-%d %H:%M:%S';
    return `strftime(CAST(to_timestamp(CAST(${c.args[0]} AS DOUBLE)) AS TIMESTAMP), ${quoteString(fmt)})`;
  },
  timestamp_seconds: (c) => (arity(c, 1), `to_timestamp(CAST(${c.args[0]} AS DOUBLE))`),
  timestamp_millis: (c) => (arity(c, 1), `epoch_ms(CAST(${c.args[0]} AS BIGINT))`),
  make_date: (c) => (arity(c, 3), `make_date(${c.args.join(', ')})`),
  // Time zones (the session's is UTC): a TIMESTAMP is an instant shown in UTC; TIMESTAMP_NTZ a wall time.
  from_utc_timestamp: (c) => (arity(c, 2), `CAST(timezone(${c.args[1]}, CAST(${c.args[0]} AS TIMESTAMPTZ)) AS TIMESTAMPTZ)`),
  to_utc_timestamp: (c) => (arity(c, 2), `timezone(${c.args[1]}, CAST(CAST(${c.args[0]} AS TIMESTAMPTZ) AS TIMESTAMP))`),
  convert_timezone: (c) => {
    arity(c, 2, 3);
    const [src, tgt, ts] = c.args.length === 3 ? c.args : [`'UTC'`, c.args[0], c.args[1]];
    return `timezone(${tgt}, timezone(${src}, CAST(${ts} AS TIMESTAMP)))`;
  },
  // string
  instr: (c) => (arity(c, 2), `instr(${c.args[0]}, ${c.args[1]})`),
  locate: (c) => {
    arity(c, 2, 3);
    if (c.args.length === 2) return `instr(${c.args[1]}, ${c.args[0]})`;
    const [sub, str, pos] = c.args;
    return `CASE WHEN (${pos}) < 1 THEN 0 WHEN instr(substring(${str}, ${pos}), ${sub}) = 0 THEN 0 ELSE instr(substring(${str}, ${pos}), ${sub}) + (${pos}) - 1 END`;
  },
  position: (c) => (arity(c, 2), `instr(${c.args[1]}, ${c.args[0]})`),
  substring: (c) => substr(c),
  substr: (c) => substr(c),
  lcase: rename('lower', 1, 1),
  ucase: rename('upper', 1, 1),
  len: rename('length', 1, 1),
  char_length: rename('length', 1, 1),
  character_length: rename('length', 1, 1),
  // With a string literal among the arguments, a string concatenation: each argument as Spark's text
  // (a TIMESTAMP without '+00'); otherwise the arguments may be arrays (DuckDB's || concatenates those).
  concat: (c) => {
    if (!c.args.length) return `''`;
    const strings = c.raw.some((r) => r.length === 1 && r[0]!.kind === 'string');
    return `(${c.args.map((a) => (strings ? `floe_spark_string(${a})` : `(${a})`)).join(' || ')})`;
  },
  split: splitFn,
  regexp_replace: (c) => {
    arity(c, 3);
    const r = c.raw[2]!;
    const replacement = r.length === 1 && r[0]!.kind === 'string' ? quoteString(javaReplacement(r[0]!.value)) : c.args[2];
    return `regexp_replace(${c.args[0]}, ${c.args[1]}, ${replacement}, 'g')`;
  },
  regexp_extract: (c) => (arity(c, 2, 3), `regexp_extract(${c.args[0]}, ${c.args[1]}, ${c.args[2] ?? '1'})`),
  regexp_like: (c) => (arity(c, 2), `regexp_matches(${c.args[0]}, ${c.args[1]})`),
  rlike: (c) => (arity(c, 2), `regexp_matches(${c.args[0]}, ${c.args[1]})`),
  initcap: (c) => (arity(c, 1), `array_to_string(list_transform(string_split(lower(${c.args[0]}), ' '), w -> upper(w[1]) || w[2:]), ' ')`),
  btrim: rename('trim', 1, 2),
  startswith: rename('starts_with', 2, 2),
  endswith: rename('ends_with', 2, 2),
  // math
  pow: rename('pow', 2, 2),
  ln: rename('ln', 1, 1),
  log: (c) => (arity(c, 1, 2), c.args.length === 1 ? `ln(${c.args[0]})` : `(ln(${c.args[1]}) / ln(${c.args[0]}))`),
  pmod: (c) => (arity(c, 2), `(((${c.args[0]}) % (${c.args[1]}) + (${c.args[1]})) % (${c.args[1]}))`),
  rand: (c) => (arity(c, 0, 1), 'random()'),
  random: (c) => (arity(c, 0, 1), 'random()'),
  signum: rename('sign', 1, 1),
  ceiling: rename('ceil', 1, 1),
  div: (c) => (arity(c, 2), `floe_spark_div(${c.args[0]}, ${c.args[1]})`),
  // collections
  array: (c) => `list_value(${c.args.join(', ')})`,
  map: (c) => {
    if (c.args.length % 2) throw analysisErrorAt(c.at, 'map() needs an even number of arguments (key, value, …)', { function: 'map' });
    if (!c.args.length) return 'map()';
    const keys = c.args.filter((_, i) => i % 2 === 0);
    const vals = c.args.filter((_, i) => i % 2 === 1);
    return `map([${keys.join(', ')}], [${vals.join(', ')}])`;
  },
  named_struct: (c) => {
    if (c.args.length % 2 || !c.args.length) throw analysisErrorAt(c.at, 'named_struct() needs name, value pairs', { function: 'named_struct' });
    const parts: string[] = [];
    for (let i = 0; i < c.args.length; i += 2) parts.push(`${quoteIdent(literalString(c, i, 'field name'))} := ${c.args[i + 1]}`);
    return `struct_pack(${parts.join(', ')})`;
  },
  struct: (c) => {
    if (!c.args.length) throw analysisErrorAt(c.at, 'struct() needs at least one argument', { function: 'struct' });
    return `struct_pack(${c.args.map((a, i) => `${quoteIdent(structFieldName(c.raw[i]!, i))} := ${a}`).join(', ')})`;
  },
  size: (c) => (arity(c, 1), `coalesce(len(${c.args[0]}), -1)`),
  cardinality: (c) => (arity(c, 1), `coalesce(len(${c.args[0]}), -1)`),
  array_size: (c) => (arity(c, 1), `len(${c.args[0]})`),
  array_contains: rename('list_contains', 2, 2),
  array_distinct: (c) => (arity(c, 1), `floe_array_distinct(${c.args[0]})`),
  // array_sort puts NULLs last; sort_array first ascending, last descending (as Spark).
  array_sort: (c) => (arity(c, 1), `list_sort(${c.args[0]}, 'ASC', 'NULLS LAST')`),
  sort_array: (c) => (arity(c, 1, 2), c.args.length === 2 ? `CASE WHEN ${c.args[1]} THEN list_sort(${c.args[0]}, 'ASC', 'NULLS FIRST') ELSE list_sort(${c.args[0]}, 'DESC', 'NULLS LAST') END` : `list_sort(${c.args[0]}, 'ASC', 'NULLS FIRST')`),
  array_join: (c) => (arity(c, 2, 3), c.args.length === 2 ? `array_to_string(${c.args[0]}, ${c.args[1]})` : `array_to_string(list_transform(${c.args[0]}, lambda __x: coalesce(CAST(__x AS VARCHAR), ${c.args[2]})), ${c.args[1]})`),
  array_max: rename('list_max', 1, 1),
  array_min: rename('list_min', 1, 1),
  array_position: (c) => (arity(c, 2), `coalesce(list_position(${c.args[0]}, ${c.args[1]}), 0)`),
  array_remove: (c) => (arity(c, 2), `list_filter(${c.args[0]}, __x -> __x IS DISTINCT FROM (${c.args[1]}))`),
  array_union: (c) => (arity(c, 2), `floe_array_distinct(list_concat(${c.args[0]}, ${c.args[1]}))`),
  array_intersect: rename('list_intersect', 2, 2),
  element_at: (c) => (arity(c, 2), `(${c.args[0]})[${c.args[1]}]`),
  flatten: rename('flatten', 1, 1),
  map_keys: rename('map_keys', 1, 1),
  map_values: rename('map_values', 1, 1),
  explode: rename('unnest', 1, 1),
  // Higher-order functions (a lambda's index parameter is made 0-based by the translator).
  transform: rename('list_transform', 2, 2),
  filter: rename('list_filter', 2, 2),
  // exists / forall over an empty array: false / true (DuckDB's list_bool_or / _and give NULL).
  exists: (c) => (arity(c, 2), `CASE WHEN len(${c.args[0]}) = 0 THEN false ELSE list_bool_or(list_transform(${c.args[0]}, ${c.args[1]})) END`),
  forall: (c) => (arity(c, 2), `CASE WHEN len(${c.args[0]}) = 0 THEN true ELSE list_bool_and(list_transform(${c.args[0]}, ${c.args[1]})) END`),
  aggregate: (c) => aggregateArray(c),
  reduce: (c) => aggregateArray(c),
  array_except: (c) => (arity(c, 2), `list_filter(floe_array_distinct(${c.args[0]}), lambda __x: NOT coalesce(list_contains(${c.args[1]}, __x), false))`),
  slice: (c) => (arity(c, 3), `list_slice(${c.args[0]}, ${c.args[1]}, (${c.args[1]}) + (${c.args[2]}) - 1)`),
  sequence: (c) => (arity(c, 2, 3), `generate_series(${c.args.join(', ')})`),
  // aggregates
  collect_list: (c) => (arity(c, 1), `list(${c.distinct ? 'DISTINCT ' : ''}${c.args[0]}) FILTER (WHERE (${c.args[0]}) IS NOT NULL)`),
  array_agg: (c) => (arity(c, 1), `list(${c.distinct ? 'DISTINCT ' : ''}${c.args[0]}) FILTER (WHERE (${c.args[0]}) IS NOT NULL)`),
  collect_set: (c) => (arity(c, 1), `list(DISTINCT ${c.args[0]}) FILTER (WHERE (${c.args[0]}) IS NOT NULL)`),
  first: (c) => (arity(c, 1, 2), `first(${c.args[0]})`),
  last: (c) => (arity(c, 1, 2), `last(${c.args[0]})`),
  any_value: (c) => (arity(c, 1, 2), `any_value(${c.args[0]})`),
  percentile_approx: (c) => (arity(c, 2, 3), `approx_quantile(${c.args[0]}, ${c.args[1]})`),
  approx_percentile: (c) => (arity(c, 2, 3), `approx_quantile(${c.args[0]}, ${c.args[1]})`),
  std: rename('stddev', 1, 1),
  bool_and: rename('bool_and', 1, 1),
  every: rename('bool_and', 1, 1),
  bool_or: rename('bool_or', 1, 1),
  some: rename('bool_or', 1, 1),
  // casts by name
  string: (c) => (arity(c, 1), `floe_spark_string(${c.args[0]})`),
  int: (c) => (arity(c, 1), `floe_cast_integer(${c.args[0]})`),
  bigint: (c) => (arity(c, 1), `floe_cast_bigint(${c.args[0]})`),
  smallint: (c) => (arity(c, 1), `floe_cast_smallint(${c.args[0]})`),
  tinyint: (c) => (arity(c, 1), `floe_cast_tinyint(${c.args[0]})`),
  double: castTo('DOUBLE'),
  float: castTo('FLOAT'),
  boolean: castTo('BOOLEAN'),
  date: castTo('DATE'),
  timestamp: castTo('TIMESTAMPTZ'),
  binary: castTo('BLOB'),
  // misc
  uuid: (c) => (arity(c, 0), 'CAST(uuid() AS VARCHAR)'),
  monotonically_increasing_id: (c) => (arity(c, 0), '(row_number() OVER () - 1)'),
  spark_partition_id: (c) => (arity(c, 0), '0'),
  input_file_name: (c) => (arity(c, 0), `''`),
  typeof: rename('typeof', 1, 1),
  hash: (c) => `hash(${c.args.join(', ')})`,
  md5: rename('md5', 1, 1),
  sha2: (c) => (arity(c, 2), `sha256(${c.args[0]})`),
  sha1: rename('sha1', 1, 1),
  base64: (c) => (arity(c, 1), `to_base64(CAST(${c.args[0]} AS BLOB))`),
  unbase64: rename('from_base64', 1, 1),
  to_json: rename('to_json', 1, 2),
  get_json_object: (c) => (arity(c, 2), `json_extract_string(${c.args[0]}, ${c.args[1]})`),
  from_json: fromJson,
};

/**
 * Spark's from_json(json, schema[, options]): the schema a DDL string, either a type
 * (`ARRAY<STRUCT<name: STRING, n: INT>>`) or a struct's fields (`a INT, b STRING`); a document that
 * is not JSON or does not fit the schema gives NULL (Spark's default PERMISSIVE mode).
 */
function fromJson(c: FnCall): string {
  arity(c, 2, 3);
  const ddl = literalString(c, 1, 'schema');
  let type: DataType;
  try {
    // (A field list, `a INT, b STRING`, is the body of a STRUCT<…>.)
    const cur = new Cursor(tokenize(/^\s*(ARRAY|MAP|STRUCT)\s*</i.test(ddl) ? ddl : `STRUCT<${ddl}>`));
    type = parseType(cur);
    if (cur.peek().kind !== 'eof') throw new Error(`unexpected '${cur.peek().text}'`);
  } catch (e) {
    throw analysisErrorAt(c.raw[1]![0]!, `from_json: the schema '${ddl}' is not a Spark type or column list (${e instanceof Error ? e.message : String(e)})`, { function: c.name });
  }
  return `TRY_CAST(TRY_CAST(${c.args[0]} AS JSON) AS ${duckType(type)})`;
}

function substr(c: FnCall): string {
  arity(c, 2, 3);
  // Spark treats position 0 as 1; negative positions count from the end (as DuckDB).
  const raw = c.raw[1]!;
  const pos = raw.length === 1 && raw[0]!.kind === 'number' && Number(raw[0]!.text) === 0 ? '1' : `CASE WHEN (${c.args[1]}) = 0 THEN 1 ELSE (${c.args[1]}) END`;
  return `substring(${c.args[0]}, ${pos}${c.args.length === 3 ? `, ${c.args[2]}` : ''})`;
}

/** Spark's name for a struct() field: the column's name, else colN. */
function structFieldName(raw: Token[], i: number): string {
  const last = raw[raw.length - 1];
  const nameLike = raw.every((t) => t.kind === 'ident' || t.kind === 'qident' || (t.kind === 'op' && t.text === '.'));
  if (nameLike && last && (last.kind === 'ident' || last.kind === 'qident')) return last.value;
  return `col${i + 1}`;
}

/** One step of a `:` JSON path (Databricks' JSON path expression). */
export type JsonPathStep = { kind: 'key'; name: string } | { kind: 'field'; name: string } | { kind: 'index'; index: number } | { kind: 'all' };

/**
 * `expr:path` → DuckDB SQL: a STRING (JSON strings unquoted, objects and arrays as JSON text, a JSON
 * null as SQL NULL), NULL for a missing field or malformed JSON. Identifiers match case-insensitively
 * (an exact match first; two fields differing only in case are an error), `['field']` exactly,
 * `[n]` 0-based, `[*]` every element (the rest of the path applied to each; missing ones left out).
 */
export function jsonPathSql(base: string, steps: JsonPathStep[]): string {
  const apply = (j: string, from: number, depth: number): string => {
    for (let k = from; k < steps.length; k++) {
      const st = steps[k]!;
      if (st.kind === 'key') j = `floe_json_key(${j}, ${quoteString(st.name)})`;
      else if (st.kind === 'field') j = `floe_json_field(${j}, ${quoteString(st.name)})`;
      else if (st.kind === 'index') j = `floe_json_index(${j}, ${st.index})`;
      else {
        const e = `__floe_je${depth}`;
        return `floe_json_all(${j}, list_filter(list_transform(json_extract(${j}, '$[*]'), ${e} -> ${apply(e, k + 1, depth + 1)}), ${e} -> ${e} IS NOT NULL))`;
      }
    }
    return j;
  };
  return `floe_json_text(${apply(`floe_json_doc(${base})`, 0, 0)})`;
}

/**
 * split(str, regex[, limit]): with a limit > 0, at most `limit` parts, the last one the rest of the
 * string (Spark); the limit must be a number literal (as the regex must be a string literal then).
 */
function splitFn(c: FnCall): string {
  arity(c, 2, 3);
  const plain = `string_split_regex(${c.args[0]}, ${c.args[1]})`;
  if (c.args.length === 2) return plain;
  const r = c.raw[2]!;
  const lit = r.length === 2 && r[0]!.kind === 'op' && r[0]!.text === '-' && r[1]!.kind === 'number' ? -Number(r[1]!.text) : r.length === 1 && r[0]!.kind === 'number' ? Number(r[0]!.text) : NaN;
  if (!Number.isInteger(lit)) throw analysisErrorAt(r[0] ?? c.at, 'split: the limit must be an integer literal', { function: c.name });
  if (lit <= 0) return plain;
  if (lit > 1000) throw analysisErrorAt(r[0]!, 'split: a limit above 1000 is not supported', { function: c.name });
  const re = literalString(c, 1, 'regex (with a limit)');
  if (lit === 1) return `[${c.args[0]}]`;
  const rest = `regexp_replace(${c.args[0]}, ${quoteString(`^(?s:(?:.*?(?:${re})){${lit - 1}})`)}, '')`;
  return `CASE WHEN len(${plain}) <= ${lit} THEN ${plain} ELSE list_concat(${plain}[1:${lit - 1}], [${rest}]) END`;
}

/**
 * A Java regex replacement (Spark's regexp_replace) as RE2's: `$n` is the group `\n`, `\x` is the
 * character x, and a backslash is doubled.
 */
function javaReplacement(r: string): string {
  let out = '';
  for (let i = 0; i < r.length; i++) {
    const ch = r[i]!;
    if (ch === '\\' && i + 1 < r.length) {
      const x = r[++i]!;
      out += x === '\\' ? '\\\\' : x;
    } else if (ch === '$' && /[0-9]/.test(r[i + 1] ?? '')) {
      out += '\\' + r[++i]!;
    } else out += ch;
  }
  return out;
}

/** aggregate(array, start, merge[, finish]) / reduce(…): DuckDB's list_reduce from the start value. */
function aggregateArray(c: FnCall): string {
  arity(c, 3, 4);
  const reduced = `list_reduce(${c.args[0]}, ${c.args[2]}, ${c.args[1]})`;
  return c.args.length === 4 ? `list_transform([${reduced}], ${c.args[3]})[1]` : reduced;
}

/** Spark functions floe SQL does not translate (a clear error rather than DuckDB's). */
export const UNSUPPORTED_FUNCTIONS = new Set([
  'arrays_zip', 'zip_with', 'map_filter', 'map_zip_with', 'transform_keys', 'transform_values', 'format_number', 'next_day', 'decode',
  'encode', 'array_repeat', 'sentences', 'java_method', 'reflect', 'xpath', 'xpath_string', 'from_csv', 'to_csv', 'schema_of_json',
  'schema_of_csv', 'inline', 'inline_outer', 'posexplode', 'posexplode_outer', 'explode_outer', 'stack', 'window', 'session_window',
]);

/** DuckDB integral types a Spark CAST truncates to (floe_cast_<type> / floe_try_cast_<type>). */
export const INTEGRAL_CASTS = ['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT'];

/**
 * Spark's CAST(x AS <integral type>): a FLOAT / DOUBLE / DECIMAL or a numeric string with a fraction
 * truncates toward zero (DuckDB's CAST rounds). A string such as '1.7' gives 1 as Spark does without
 * ANSI mode (floe follows non-ANSI results for numbers, as for `/` by zero); Databricks SQL's ANSI
 * mode would refuse it. A string that is not a number still fails (TRY_CAST: NULL). Every branch must
 * bind whatever x's type is, hence the detours through text.
 */
function integralCastMacro(fn: string, t: string): string {
  const name = `floe_${fn.toLowerCase()}_${t.toLowerCase()}`;
  return `CREATE OR REPLACE TEMP MACRO ${name}(x) AS CASE`
    + ` WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN ${fn}(trunc(TRY_CAST(CAST(x AS VARCHAR) AS DOUBLE)) AS ${t})`
    + ` WHEN typeof(x) LIKE 'DECIMAL%' OR typeof(x) = 'VARCHAR' THEN ${fn}(regexp_replace(trim(CAST(x AS VARCHAR)), '^([+-]?[0-9]+)[.][0-9]*$', '\\1') AS ${t})`
    + ` ELSE ${fn}(x AS ${t}) END`;
}

/** SQL run once per engine: helper macros the translations use. */
export const SESSION_MACROS = [
  `CREATE OR REPLACE TEMP MACRO floe_json_doc(x) AS CASE WHEN json_valid(CAST(x AS VARCHAR)) THEN CAST(CAST(x AS VARCHAR) AS JSON) END`,
  `CREATE OR REPLACE TEMP MACRO floe_json_ptr(k) AS '/' || replace(replace(k, '~', '~0'), '/', '~1')`,
  `CREATE OR REPLACE TEMP MACRO floe_json_field(j, k) AS CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j, floe_json_ptr(k)) END`,
  `CREATE OR REPLACE TEMP MACRO floe_json_key(j, k) AS CASE WHEN json_type(j) <> 'OBJECT' THEN NULL WHEN list_contains(json_keys(j), k) THEN json_extract(j, floe_json_ptr(k)) WHEN len(list_filter(json_keys(j), x -> lower(x) = lower(k))) > 1 THEN error('JSON path: the field name ' || k || ' matches several fields that differ only in case (' || array_to_string(list_filter(json_keys(j), x -> lower(x) = lower(k)), ', ') || '); use the case-sensitive form [''name''].') ELSE json_extract(j, floe_json_ptr(list_filter(json_keys(j), x -> lower(x) = lower(k))[1])) END`,
  `CREATE OR REPLACE TEMP MACRO floe_json_index(j, n) AS CASE WHEN json_type(j) = 'ARRAY' AND n >= 0 THEN json_extract(j, '/' || CAST(n AS VARCHAR)) END`,
  `CREATE OR REPLACE TEMP MACRO floe_json_all(j, items) AS CASE WHEN json_type(j) = 'ARRAY' AND len(items) > 0 THEN CAST(to_json(items) AS JSON) END`,
  `CREATE OR REPLACE TEMP MACRO floe_json_text(j) AS CASE json_type(j) WHEN 'VARCHAR' THEN json_extract_string(j, '$') WHEN 'NULL' THEN NULL ELSE CAST(j AS VARCHAR) END`,
  // x as a string, as Spark writes it: a TIMESTAMP (DuckDB's TIMESTAMPTZ; the session zone is UTC)
  // without DuckDB's '+00'. (Every branch must bind whatever x's type is: hence the text round trip.)
  `CREATE OR REPLACE TEMP MACRO floe_spark_string(x) AS CASE WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE' THEN CAST(CAST(TRY_CAST(CAST(x AS VARCHAR) AS TIMESTAMPTZ) AS TIMESTAMP) AS VARCHAR) ELSE CAST(x AS VARCHAR) END`,
  ...INTEGRAL_CASTS.flatMap((t) => ['CAST', 'TRY_CAST'].map((fn) => integralCastMacro(fn, t))),
  // A value written to a VARCHAR(n) / CHAR(n) column (Spark's write-side check): trailing spaces
  // beyond n dropped, longer fails with msg; CHAR pads to n.
  `CREATE OR REPLACE TEMP MACRO floe_varchar(v, n, msg) AS CASE WHEN v IS NULL OR length(v) <= n THEN v WHEN length(rtrim(v, ' ')) <= n THEN left(v, n) ELSE error(msg) END`,
  `CREATE OR REPLACE TEMP MACRO floe_char(v, n, msg) AS rpad(floe_varchar(v, n, msg), n, ' ')`,
  // Distinct elements in first-occurrence order, one NULL kept (Spark's array_distinct).
  `CREATE OR REPLACE TEMP MACRO floe_array_distinct(a) AS list_filter(a, lambda __x, __i: list_position(a, __x) = __i)`,
  `CREATE OR REPLACE TEMP MACRO floe_spark_div(a, b) AS CASE WHEN typeof(a) IN ('BIGINT', 'INTEGER', 'SMALLINT', 'TINYINT', 'HUGEINT', 'UBIGINT', 'UINTEGER', 'USMALLINT', 'UTINYINT') AND typeof(b) IN ('BIGINT', 'INTEGER', 'SMALLINT', 'TINYINT', 'HUGEINT', 'UBIGINT', 'UINTEGER', 'USMALLINT', 'UTINYINT') THEN CAST(a AS BIGINT) // CAST(b AS BIGINT) ELSE CAST(trunc(a / nullif(b, 0)) AS BIGINT) END`,
];
