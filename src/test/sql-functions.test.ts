/**
 * The Spark → DuckDB translation table, function by function (values as Spark returns them), plus
 * Spark operators and literals (div, ==, <=>, RLIKE, 1L, '' '' concatenation, backticks, arrays 0-based).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sqlSession, type SqlSession } from './sql-helpers.js';

const CASES: [string, unknown][] = [
  ['nvl(NULL, 2)', 2],
  ['nvl(1, 2)', 1],
  ['ifnull(NULL, 3)', 3],
  ['nvl2(NULL, 1, 2)', 2],
  ["if(1 > 2, 'y', 'n')", 'n'],
  ["if(NULL, 'y', 'n')", 'n'],
  ['isnull(NULL)', true],
  ['isnotnull(1)', true],
  ["date_format(TIMESTAMP '2024-03-05 07:08:09', 'yyyy-MM-dd HH:mm:ss')", '2024-03-05 07:08:09'],
  ["date_format(DATE '2024-03-05', 'dd/MM/yy')", '05/03/24'],
  ["date_format(TIMESTAMP '2024-03-05 07:08:09', 'MMM d, yyyy hh:mm a')", 'Mar 5, 2024 07:08 AM'],
  ["date_format(DATE '2024-03-05', \"EEEE 'the' D'th day'\")", 'Tuesday the 065th day'],
  ["datediff('2024-03-10', '2024-03-01')", '9'],
  ["datediff(DATE '2024-03-01', DATE '2024-03-10')", '-9'],
  ["date_add('2024-02-28', 2)", '2024-03-01'],
  ["date_sub(DATE '2024-03-01', 1)", '2024-02-29'],
  ["add_months(DATE '2024-01-31', 1)", '2024-02-29'],
  ["to_date('2024-02-03')", '2024-02-03'],
  ["to_date('03/02/2024', 'dd/MM/yyyy')", '2024-02-03'],
  ["to_date('not a date')", null],
  ["to_timestamp('2024-02-03 04:05:06')", '2024-02-03 04:05:06+00'],
  ["TIMESTAMP_NTZ '2024-02-03 04:05:06'", '2024-02-03 04:05:06'],
  ["CAST(TIMESTAMP_NTZ'2024-02-03 04:05:06' AS DATE)", '2024-02-03'],
  ['current_timestamp() IS NOT NULL', true],
  ['current_date() = current_date', true],
  ['now() IS NOT NULL', true],
  ["year('2024-05-06')", '2024'],
  ["month(DATE '2024-05-06')", '5'],
  ["dayofmonth(DATE '2024-05-06')", '6'],
  ["dayofweek(DATE '2024-01-07')", '1'], // Sunday is 1 in Spark
  ["hour(TIMESTAMP '2024-01-01 13:14:15')", '13'],
  ["trunc(DATE '2024-05-06', 'MM')", '2024-05-01'],
  ["date_trunc('year', TIMESTAMP '2024-05-06 01:02:03')", '2024-01-01 00:00:00'],
  ["from_unixtime(0)", '1970-01-01 00:00:00'],
  ["unix_timestamp('1970-01-02 00:00:00')", '86400'],
  ["from_utc_timestamp(TIMESTAMP '2024-01-01 12:00:00', 'America/New_York')", '2024-01-01 07:00:00+00'],
  ["from_utc_timestamp('2024-07-01 12:00:00', 'Asia/Kolkata')", '2024-07-01 17:30:00+00'],
  ["to_utc_timestamp(TIMESTAMP '2024-01-01 12:00:00', 'Asia/Tokyo')", '2024-01-01 03:00:00+00'],
  ["to_utc_timestamp(from_utc_timestamp(TIMESTAMP '2024-03-31 01:30:00', 'Europe/Paris'), 'Europe/Paris')", '2024-03-31 01:30:00+00'],
  ["convert_timezone('Europe/Brussels', 'America/Los_Angeles', TIMESTAMP_NTZ '2024-01-01 12:00:00')", '2024-01-01 03:00:00'],
  ["convert_timezone('Asia/Tokyo', TIMESTAMP_NTZ '2024-01-01 12:00:00')", '2024-01-01 21:00:00'],
  ["named_struct('a', 1, 'b', 'x')", { a: 1, b: 'x' }],
  ['struct(1 AS x)', null], // placeholder replaced below
  ['array(1, 2, 3)', [1, 2, 3]],
  ['array()', []],
  ["map('a', 1, 'b', 2)['b']", 2],
  ['size(array(1, 2))', '2'],
  ['size(NULL)', '-1'],
  ['cardinality(array(1))', '1'],
  ["concat_ws('-', 'a', NULL, 'b')", 'a-b'],
  ["concat('a', 'b', 'c')", 'abc'],
  ["concat('a', NULL)", null],
  ["instr('hello', 'll')", '3'],
  ["instr('hello', 'z')", '0'],
  ["locate('l', 'hello')", '3'],
  ["locate('l', 'hello', 4)", '4'],
  ["substring('hello', 0, 2)", 'he'],
  ["substring('hello', 1, 2)", 'he'],
  ["substring('hello', -3, 2)", 'll'],
  ["substr('hello', 2)", 'ello'],
  ["lcase('AbC')", 'abc'],
  ["ucase('AbC')", 'ABC'],
  ["split('a,b,,c', ',')", ['a', 'b', '', 'c']],
  ["regexp_replace('a1b22', '[0-9]+', '#')", 'a#b#'],
  ["regexp_extract('id=42;', 'id=([0-9]+)', 1)", '42'],
  ["initcap('hello world')", 'Hello World'],
  ['7 div 2', '3'],
  ['-7 div 2', '-3'],
  ['7.5 div 2', '3'],
  ['1 + 7 div 2 * 1', '4'],
  ['7 div 0', null],
  ['pmod(-7, 3)', 2],
  ['log(2, 8)', 3],
  ['log(exp(1))', 1],
  ['signum(-3)', -1],
  ['array_contains(array(1, 2), 2)', true],
  ['element_at(array(10, 20), 2)', 20],
  ['array(10, 20)[0]', 10],
  ['sort_array(array(3, 1, 2))', [1, 2, 3]],
  ["array_join(array('a', 'b'), '/')", 'a/b'],
  ['transform(array(1, 2), x -> x * 10)', [10, 20]],
  ['filter(array(1, 2, 3), x -> x > 1)', [2, 3]],
  ["string(12)", '12'],
  ["int('42')", 42],
  ['bigint(1)', '1'],
  ["double('1.5')", 1.5],
  ["boolean('true')", true],
  ["date('2024-01-02')", '2024-01-02'],
  ['CAST(1 AS STRING)', '1'],
  ["CAST('5' AS BIGINT)", '5'],
  ["CAST('2024-01-02' AS DATE)", '2024-01-02'],
  ["CAST(1.239 AS DECIMAL(5, 2))", '1.24'],
  ["TRY_CAST('x' AS INT)", null],
  ["'3'::int + 1", 4],
  ['1L', '1'],
  ['2S + 1Y', 3],
  ['1.5D', 1.5],
  ["'a' 'b'", 'ab'],
  ["'it\\'s'", "it's"],
  ["'tab\\there'", 'tab\there'],
  ['"double quoted"', 'double quoted'],
  ['1 == 1', true],
  ['NULL <=> NULL', true],
  ["'abc' RLIKE '^a.c$'", true],
  ["'abc' NOT RLIKE 'z'", true],
  ["'abc' REGEXP 'b'", true],
  ["coalesce(NULL, 'x')", 'x'],
  ['greatest(1, 5, 3)', 5],
  ["md5('a')", '0cc175b9c0f1b6a831c399e269772661'],
  ["base64('hi')", 'aGk='],
  ["get_json_object('{\"a\": {\"b\": 7}}', '$.a.b')", '7'],
  ["from_json('{\"a\": 1, \"b\": \"x\"}', 'a INT, b STRING').a", 1],
  ["from_json('{\"a\": 1}', 'a INT, b STRING').b", null],
  ["from_json('not json', 'a INT')", null],
  ["from_json('[{\"n\": \"p\", \"c\": 2}]', 'ARRAY<STRUCT<n: STRING, c: BIGINT>>')[0].c", '2'],
];

async function value(s: SqlSession, expr: string): Promise<unknown> {
  const rows = await s.rows(`SELECT ${expr} AS v`);
  return rows[0]!.v;
}

test('Spark functions and operators translate to DuckDB with Spark results', async (t) => {
  const s = await sqlSession();
  try {
    for (const [expr, want] of CASES) {
      if (expr === 'struct(1 AS x)') continue;
      await t.test(expr, async () => {
        assert.deepEqual(await value(s, expr), want, expr);
      });
    }
    await t.test('struct() names fields after columns', async () => {
      assert.deepEqual(await s.rows('SELECT struct(id, name, id + 1) AS s FROM (SELECT 1 AS id, \'a\' AS name)'), [{ s: { id: 1, name: 'a', col3: 2 } }]);
    });
    await t.test('aggregates: collect_list / collect_set skip NULLs, count_if, percentile_approx', async () => {
      const rows = await s.rows('SELECT collect_list(x) AS l, sort_array(collect_set(x)) AS st, count_if(x > 1) AS c, first(x) AS f FROM (VALUES (1), (2), (2), (NULL)) AS v(x)');
      assert.deepEqual(rows[0], { l: [1, 2, 2], st: [1, 2], c: '2', f: 1 });
    });
    await t.test('window functions and FILTER pass through', async () => {
      const rows = await s.rows('SELECT x, sum(x) OVER (ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run, count(*) FILTER (WHERE x > 1) OVER () AS big FROM (VALUES (1), (2), (3)) AS v(x) ORDER BY x');
      assert.deepEqual(rows.map((r) => r.run), ['1', '3', '6']);
      assert.deepEqual(rows.map((r) => r.big), ['2', '2', '2']);
    });
    await t.test('backtick identifiers, SQL-standard extract/trim/position', async () => {
      assert.deepEqual(await s.rows("SELECT `a b` + 1 AS `c``d`, extract(YEAR FROM DATE '2024-01-02') AS y, trim(BOTH 'x' FROM 'xxaxx') AS t, position('b' IN 'abc') AS p FROM (SELECT 1 AS `a b`)"), [{ 'c`d': 2, y: '2024', t: 'a', p: '2' }]);
    });
    await t.test('unsupported constructs name the construct, line and column', async () => {
      await s.fails("SELECT date_format(DATE '2024-01-01', 'G')", 'FLOE_SQL_ANALYSIS_ERROR', /letter 'G'.*line 1, column 39/);
      await s.fails('SELECT date_format(current_date, fmt) FROM (SELECT 1 AS fmt)', 'FLOE_SQL_ANALYSIS_ERROR', /format must be a string literal/);
      await s.fails("SELECT nvl(1)", 'FLOE_SQL_ANALYSIS_ERROR', /nvl takes 2 argument/);
      await s.fails("SELECT * FROM read_csv('/etc/passwd')", 'FLOE_SQL_ANALYSIS_ERROR', /read_csv/);
      await s.fails("SELECT read_text('/etc/passwd')", 'FLOE_SQL_ANALYSIS_ERROR', /read_text/);
      await s.fails("SELECT * FROM '/etc/passwd'", 'FLOE_SQL_ANALYSIS_ERROR', /file path/);
      await s.fails("SELECT * FROM \"/etc/passwd\"", 'FLOE_SQL_ANALYSIS_ERROR', /file path/);
      await s.fails('SELECT * FROM duckdb_tables()', 'FLOE_SQL_ANALYSIS_ERROR', /duckdb_tables/);
      await s.fails('SELECT x FROM (SELECT 1 AS x)\nLATERAL VIEW explode(array(1)) t AS y', 'FLOE_SQL_ANALYSIS_ERROR', /LATERAL VIEW.*line 2, column 1/);
      await s.fails('SELECT x FROM (SELECT 1 AS x) SORT BY x', 'FLOE_SQL_ANALYSIS_ERROR', /SORT BY/);
      await s.fails("SELECT j: FROM (SELECT '{}' AS j)", 'FLOE_SQL_PARSE_ERROR', /JSON path right after ':'/);
      await s.fails("SELECT j:a[x] FROM (SELECT '{}' AS j)", 'FLOE_SQL_PARSE_ERROR', /bracket holds/);
      await s.fails("SELECT 1 = :p", 'FLOE_SQL_PARSE_ERROR', /JSON string expression before ':'/);
    });
    await t.test("the ':' JSON path operator (Databricks' documented examples)", async () => {
      const raw = JSON.stringify({
        store: {
          fruit: [{ weight: 8, type: 'apple' }, { weight: 9, type: 'pear' }],
          basket: [[1, 2, { b: 'y', a: 'x' }], [3, 4], [5, 6]],
          book: [{ author: 'Nigel Rees', price: 8.95 }, { author: 'Herman Melville', price: 8.99, isbn: '0-553-21311-3' }, { author: 'J. R. R. Tolkien', price: 22.99, isbn: '0-395-19395-8' }],
          bicycle: { price: 19.95, color: 'red' },
        },
        owner: 'amy', 'zip code': '94025', 'fb:testid': '1234', gone: null, Dup: 1, dUP: 2,
      });
      const from = `FROM (SELECT '${raw}' AS raw)`;
      assert.deepEqual(await s.rows(`SELECT raw:owner, raw:OWNER AS o2, raw:['owner'] AS o3, raw:['OWNER'] AS o4 ${from}`), [{ owner: 'amy', o2: 'amy', o3: 'amy', o4: null }]);
      assert.deepEqual(await s.rows(`SELECT raw:\`zip code\`, raw:\`Zip Code\` AS z2, raw:['fb:testid'] ${from}`), [{ 'zip code': '94025', z2: '94025', 'fb:testid': '1234' }]);
      assert.deepEqual(await s.rows(`SELECT raw:store.bicycle, raw:store.bicycle.price::double + 1 AS p, raw:store['bicycle'].color ${from}`), [{ bicycle: '{"price":19.95,"color":"red"}', p: 20.95, color: 'red' }]);
      assert.deepEqual(await s.rows(`SELECT raw:store.fruit[0], raw:store.fruit[1].type, raw:store.basket[*][0] AS firsts, raw:store.fruit[*].type AS types, raw:store.book[*].isbn AS isbns ${from}`), [{
        fruit: '{"weight":8,"type":"apple"}', type: 'pear', firsts: '[1,3,5]', types: '["apple","pear"]', isbns: '["0-553-21311-3","0-395-19395-8"]',
      }]);
      // A JSON null, a missing field, an index out of range, malformed JSON: SQL NULL.
      assert.deepEqual(await s.rows(`SELECT raw:gone, raw:nope, raw:store.fruit[5] AS f5, 'not json':a AS bad ${from}`), [{ gone: null, nope: null, f5: null, bad: null }]);
      // In WHERE, GROUP BY and expressions; exact case wins, ambiguous case-insensitive names fail.
      assert.deepEqual(await s.rows(`SELECT count(*) AS n ${from} WHERE raw:store.bicycle.color = 'red' GROUP BY raw:owner`), [{ n: '1' }]);
      assert.deepEqual(await s.rows(`SELECT raw:Dup AS d ${from}`), [{ d: '1' }]);
      // Spark's name for count(*) is count(1) (DuckDB's count_star()); an alias or a larger expression keeps its own.
      assert.deepEqual(await s.rows(`SELECT raw:owner, count(*), count(*) AS n ${from} GROUP BY raw:owner`), [{ owner: 'amy', 'count(1)': '1', n: '1' }]);
      await s.fails(`SELECT raw:dup ${from}`, 'FLOE_ENGINE_ERROR', /field name dup matches several fields that differ only in case \(Dup, dUP\)/);
    });
  } finally {
    await s.close();
  }
});
