/** The SQL lexer and statement parser: tokens, escapes, comments, splitting, positions in errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FloeError } from '../errors.js';
import { splitStatements, tokenize, endsStatement } from '../sql/lexer.js';
import { parseScript } from '../sql/parser.js';

function err(f: () => unknown): FloeError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof FloeError);
    return e;
  }
  assert.fail('expected an error');
}

test('lexer: strings with escapes, backticks, comments, numbers, positions', () => {
  const t = tokenize("SELECT 'a\\'b''c', \"d\\n\", `x``y`, 1.5e3, 10L -- c\n/* multi\nline */ z");
  assert.deepEqual(t.filter((x) => x.kind !== 'op' && x.kind !== 'eof').map((x) => [x.kind, x.value]), [
    ['ident', 'SELECT'], ['string', "a'b'c"], ['string', 'd\n'], ['qident', 'x`y'], ['number', '1.5e3'], ['number', '10L'], ['ident', 'z'],
  ]);
  const z = t.find((x) => x.value === 'z')!;
  assert.deepEqual([z.line, z.col], [3, 9]);
  assert.match(err(() => tokenize("SELECT 'open")).message, /Unclosed string literal \(line 1, column 8\)/);
  assert.match(err(() => tokenize('SELECT `x')).message, /Unclosed backtick/);
  assert.match(err(() => tokenize('SELECT /* x')).message, /Unclosed comment/);
});

test('splitting on ; outside strings and comments; REPL completeness', () => {
  const parts = splitStatements("SELECT ';'; -- ; \nSELECT 2 /* ; */;;  ; SELECT `a;b`");
  assert.deepEqual(parts.map((p) => p.text), ["SELECT ';'", 'SELECT 2', 'SELECT `a;b`']);
  assert.equal(endsStatement('SELECT 1;'), true);
  assert.equal(endsStatement("SELECT ';'"), false);
  assert.equal(endsStatement('SELECT 1; -- done'), true);
});

test('statements parse case-insensitively; errors name line and column', () => {
  const [c] = parseScript('create or replace table S.T (id bigint not null comment "k") using DELTA partitioned by (id) location \'/x\' comment \'c\' tblproperties (a.b = 1, \'c\' = \'d\')');
  assert.equal(c!.kind, 'createTable');
  if (c!.kind === 'createTable') {
    assert.deepEqual(c.columns, [{ name: 'id', type: 'long', nullable: false, comment: 'k' }]);
    assert.deepEqual(c.properties, { 'a.b': '1', c: 'd' });
    assert.equal(c.location, '/x');
    assert.equal(c.orReplace, true);
  }
  const [m] = parseScript("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND CASE WHEN s.x THEN true END THEN DELETE WHEN NOT MATCHED BY SOURCE THEN UPDATE SET t.a = 1");
  assert.equal(m!.kind === 'merge' && m.clauses.length, 2);
  const e = err(() => parseScript('SELECT 1;\nUPDATE t SET'));
  assert.equal(e.code, 'FLOE_SQL_PARSE_ERROR');
  assert.match(e.message, /Expected a column name but found end of input \(line 2, column 13\)/);
  const [add] = parseScript('ALTER TABLE t ADD COLUMNS (x INT COMMENT \'c\' FIRST, s.y STRING AFTER z)');
  assert.ok(add!.kind === 'alterAddColumns' && add.columns.length === 2 && add.columns[1]!.path.map((p) => p.value).join('.') === 's.y');
  const [chk] = parseScript('alter table t add constraint c check (a > 0 AND (b IS NULL))');
  assert.ok(chk!.kind === 'alterAddConstraint' && chk.exprText === 'a > 0 AND (b IS NULL)');
  assert.equal(parseScript('ALTER TABLE t DROP COLUMNS IF EXISTS (a, b.c)')[0]!.kind, 'alterDropColumns');
  assert.equal(parseScript('ALTER TABLE t CHANGE COLUMN a DROP NOT NULL')[0]!.kind, 'alterColumn');
  const [conv] = parseScript('CONVERT TO DELTA parquet.`/x` NO STATISTICS PARTITIONED BY (a INT, b STRING)');
  assert.ok(conv!.kind === 'convertToDelta' && conv.partitionSchema.length === 2);
  assert.equal(err(() => parseScript('ALTER TABLE t REPLACE COLUMNS (x INT)')).code, 'FLOE_SQL_ANALYSIS_ERROR');
  assert.match(err(() => parseScript('CONVERT TO DELTA iceberg.`/x`')).message, /CONVERT TO DELTA iceberg/);
  assert.match(err(() => parseScript('ALTER TABLE t ADD CONSTRAINT c CHECK a > 0')).message, /Expected '\(' but found 'a' \(line 1, column 38\)/);
  assert.match(err(() => parseScript('ATTACH \'/tmp/x.db\'')).message, /Unknown statement 'ATTACH'/);
  assert.match(err(() => parseScript('COPY t TO \'/tmp/x\'')).message, /COPY is not supported/);
});
