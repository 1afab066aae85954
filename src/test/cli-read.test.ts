/**
 * The `floe` command's read commands (describe, history, show): output formats, time travel,
 * filters, limits, and errors (stderr `error [CODE] message`, exit 1; usage errors exit 2).
 * Spawns the compiled CLI next to this compiled test file.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpus } from './helpers.js';
import { corpusTableIn, isRemoteStore, locJoin, newRoot } from './store.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function floe(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI, asserting success, and returns stdout. */
function ok(...args: string[]): string {
  const r = floe(...args);
  assert.equal(r.code, 0, `floe ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, '', 'no stderr on success');
  return r.stdout;
}

/** `show --format json` output: one JSON object per line. */
function jsonLines(out: string): Record<string, unknown>[] {
  assert.ok(out === '' || out.endsWith('\n'), 'output ends with a newline');
  return out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

const byNumber = (a: Record<string, unknown>, b: Record<string, unknown>): number => Number(a.number) - Number(b.number);

// ---------------------------------------------------------------------------------------------
// describe
// ---------------------------------------------------------------------------------------------

test('describe --format json prints the table detail', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  const d = JSON.parse(ok('describe', p, '--format', 'json')) as Record<string, unknown>;
  assert.deepEqual(d, {
    format: 'delta',
    id: 'ced0baf6-aa13-4871-af26-91e6e2787052',
    name: null,
    description: null,
    location: p,
    createdAt: '2023-01-25T01:50:26.764Z',
    lastModified: '2023-01-25T01:50:29.957Z',
    version: 1,
    partitionColumns: ['letter'],
    clusteringColumns: [],
    numFiles: 6,
    sizeInBytes: 4505,
    properties: {},
    minReaderVersion: 1,
    minWriterVersion: 2,
    tableFeatures: d.tableFeatures, // Spark-parity of implied features is asserted in read-api.test.ts
    schema: 'letter: string, number: long, a_float: double',
  });
  assert.ok(Array.isArray(d.tableFeatures));
});

test('describe --version and --timestamp describe an older snapshot', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  const v0 = JSON.parse(ok('describe', p, '--version', '0', '--format', 'json')) as Record<string, unknown>;
  assert.equal(v0.version, 0);
  assert.equal(v0.numFiles, 3);
  assert.equal(v0.sizeInBytes, 2253);
  // commit 0 at 2023-01-25T01:50:27.131Z, commit 1 at 2023-01-25T01:50:29.957Z
  const ts = JSON.parse(ok('describe', p, '--timestamp', '2023-01-25 01:50:28', '--format', 'json')) as Record<string, unknown>;
  assert.equal(ts.version, 0);
  const exact = JSON.parse(ok('describe', p, '--timestamp', '2023-01-25T01:50:29.957Z', '--format', 'json')) as Record<string, unknown>;
  assert.equal(exact.version, 1);
});

test('describe --format table prints one "key value" line per field', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/data/table-with-dv-small');
  if (!p) return;
  const lines = ok('describe', p).trimEnd().split('\n');
  const fields = new Map(lines.map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l);
    assert.ok(m, `line "${l}"`);
    return [m[1]!, m[2]!] as const;
  }));
  assert.equal(fields.get('format'), 'delta');
  assert.equal(fields.get('version'), '1');
  assert.equal(fields.get('numFiles'), '1');
  assert.equal(fields.get('sizeInBytes'), '635');
  assert.equal(fields.get('minReaderVersion'), '3');
  assert.equal(fields.get('minWriterVersion'), '7');
  assert.equal(fields.get('tableFeatures'), '["deletionVectors"]');
  assert.equal(fields.get('properties'), '{"delta.enableDeletionVectors":"true","delta.columnMapping.mode":"none"}');
});

// ---------------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------------

test('history --format json is an array, newest first, with the commitInfo fields', async (t) => {
  const p = await corpusTableIn(t, 'dat/with_checkpoint/delta');
  if (!p) return;
  const h = JSON.parse(ok('history', p, '--format', 'json')) as Record<string, unknown>[];
  assert.ok(Array.isArray(h));
  assert.deepEqual(h.map((e) => [e.version, e.operation, e.readVersion, e.timestamp]), [
    [3, 'WRITE', 2, '2023-01-25T01:51:01.982Z'],
    [2, 'WRITE', 1, '2023-01-25T01:50:59.307Z'],
    [1, 'WRITE', 0, '2023-01-25T01:50:57.269Z'],
    [0, 'CREATE TABLE', null, '2023-01-25T01:50:55.099Z'],
  ]);
  assert.deepEqual(h[0]!.operationParameters, { mode: 'Overwrite', partitionBy: '[]' });
  assert.deepEqual(h[0]!.operationMetrics, { numFiles: '1', numOutputRows: '5', numOutputBytes: '1010' });
  assert.equal(h[0]!.isBlindAppend, false);
  assert.equal(h[0]!.isolationLevel, 'Serializable');
  assert.equal(h[0]!.engineInfo, 'Apache-Spark/3.3.1 Delta-Lake/2.1.1');
});

test('history --limit N keeps the newest N entries', async (t) => {
  const p = await corpusTableIn(t, 'dat/with_checkpoint/delta');
  if (!p) return;
  const h = JSON.parse(ok('history', p, '--limit', '2', '--format', 'json')) as { version: number }[];
  assert.deepEqual(h.map((e) => e.version), [3, 2]);
});

test('history --format table has a header and one row per commit', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const lines = ok('history', p).trimEnd().split('\n');
  assert.match(lines[1]!, /^\| version \| timestamp\s+\| operation \| operationParameters\s+\| engineInfo\s+\|$/);
  const rows = lines.filter((l) => /^\| \d/.test(l));
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, /^\| 1\s+\| 2023-01-25T01:50:22\.877Z \| WRITE\s+\| \{"mode":"Append","partitionBy":"\[\]"\}/);
  assert.match(rows[1]!, /^\| 0\s+\| 2023-01-25T01:50:13\.970Z \| WRITE\s+\| \{"mode":"ErrorIfExists"/);
});

// ---------------------------------------------------------------------------------------------
// show
// ---------------------------------------------------------------------------------------------

test('show --format json: one JSON object per line; decimals, timestamps and longs are strings', async (t) => {
  const p = await corpusTableIn(t, 'dat/multi_partitioned_2/delta');
  if (!p) return;
  const rows = jsonLines(ok('show', p, '--format', 'json')).sort((a, b) => Number(a.int) - Number(b.int));
  assert.deepEqual(rows, [
    { bool: true, time: '1970-01-01 00:00:00+00', amount: '200.000000000000000000', int: '1' },
    { bool: true, time: '1970-01-01 12:30:00+00', amount: '200.000000000000000000', int: '2' },
    { bool: false, time: '1970-01-02 08:45:00+00', amount: '12.000000000000000000', int: '3' },
  ]);
  for (const r of rows) {
    assert.equal(typeof r.amount, 'string');
    assert.equal(typeof r.time, 'string');
  }
});

test('show --format json: nested values are JSON, nulls are null, binary and dates are strings', async (t) => {
  const nested = await corpusTableIn(t, 'dat/nested_types/delta');
  if (!nested) return;
  const rows = jsonLines(ok('show', nested, '--format', 'json', '--where', 'pk = 2'));
  assert.deepEqual(rows, [{ pk: 2, struct: { float64: 2, bool: true }, array: [0, 1, 2], map: [{ key: '0', value: 0 }, { key: '1', value: 1 }] }]);
  const mp = await corpusTableIn(t, 'dat/multi_partitioned/delta');
  if (!mp) return;
  const v1 = jsonLines(ok('show', mp, '--version', '1', '--format', 'json')).sort(byNumber);
  assert.equal(v1.length, 5);
  assert.deepEqual(v1[0], { letter: 'a', date: '1970-01-01', data: 'hello', number: '1' });
  assert.deepEqual(v1[4], { letter: null, date: null, data: null, number: '5' });
});

test('show --format csv: header line then one line per row; nulls empty, commas quoted', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  const lines = ok('show', p, '--format', 'csv').trimEnd().split('\n');
  assert.equal(lines[0], 'letter,number,a_float');
  assert.deepEqual(lines.slice(1).sort(), [',6,6.6', 'a,1,1.1', 'a,4,4.4', 'b,2,2.2', 'c,3,3.3', 'e,5,5.5']);
  const mp = await corpusTableIn(t, 'dat/multi_partitioned/delta');
  if (!mp) return;
  const esc = ok('show', mp, '--format', 'csv', '--where', `letter = '/%20%f'`).trimEnd().split('\n');
  assert.deepEqual(esc, ['letter,date,data,number', '/%20%f,1970-01-01,hello,6']);
  const nested = await corpusTableIn(t, 'dat/nested_types/delta');
  if (!nested) return;
  const n = ok('show', nested, '--format', 'csv', '--where', 'pk = 1').trimEnd().split('\n');
  assert.deepEqual(n, ['pk,struct,array,map', '1,"{""float64"":1,""bool"":false}","[0,1]","[{""key"":""0"",""value"":0}]"']);
});

test('show --format table (the default) prints an ASCII table', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const out = ok('show', p, '--where', 'number <= 2');
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], '+--------+--------+---------+');
  assert.equal(lines[1], '| letter | number | a_float |');
  assert.equal(lines[2], '+--------+--------+---------+');
  assert.deepEqual(lines.slice(3, -1).sort(), ['| a      | 1      | 1.1     |', '| b      | 2      | 2.2     |']);
  assert.equal(lines.at(-1), '+--------+--------+---------+');
  assert.equal(ok('show', p, '--format', 'table', '--where', 'number <= 2'), out);
});

test('show --version and --timestamp time travel', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const v0 = jsonLines(ok('show', p, '--version', '0', '--format', 'json')).sort(byNumber);
  assert.deepEqual(v0, [
    { letter: 'a', number: '1', a_float: 1.1 },
    { letter: 'b', number: '2', a_float: 2.2 },
    { letter: 'c', number: '3', a_float: 3.3 },
  ]);
  assert.equal(jsonLines(ok('show', p, '--version', '1', '--format', 'json')).length, 5);
  // commit 0 at 2023-01-25T01:50:13.970Z, commit 1 at 2023-01-25T01:50:22.877Z
  assert.equal(jsonLines(ok('show', p, '--timestamp', '2023-01-25 01:50:20', '--format', 'json')).length, 3);
  assert.equal(jsonLines(ok('show', p, '--timestamp', '2023-01-25T01:50:22.877Z', '--format', 'json')).length, 5);
  assert.equal(jsonLines(ok('show', p, '--timestamp', '2023-01-25T01:50:13.970Z', '--format', 'json')).length, 3);
});

test('show --where filters rows; --limit caps them', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_partitioned/delta');
  if (!p) return;
  const a = jsonLines(ok('show', p, '--where', `letter = 'a'`, '--format', 'json')).sort(byNumber);
  assert.deepEqual(a, [
    { letter: 'a', number: '1', a_float: 1.1 },
    { letter: 'a', number: '4', a_float: 4.4 },
  ]);
  assert.deepEqual(jsonLines(ok('show', p, '--where', 'letter IS NULL', '--format', 'json')), [{ letter: null, number: '6', a_float: 6.6 }]);
  assert.equal(ok('show', p, '--where', `letter = 'zzz'`, '--format', 'json'), '');
  assert.equal(jsonLines(ok('show', p, '--limit', '2', '--format', 'json')).length, 2);
  assert.equal(ok('show', p, '--limit', '4', '--format', 'csv').trimEnd().split('\n').length, 5);
  assert.equal(ok('show', p, '--limit', '0', '--format', 'json'), '');
  const dv = await corpusTableIn(t, 'kernel-rs/data/table-with-dv-small');
  if (!dv) return;
  const vals = jsonLines(ok('show', dv, '--format', 'json')).map((r) => r.value).sort();
  assert.deepEqual(vals, [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('show --format table without --limit prints at most 20 rows', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/golden/basic-with-inserts-deletes-checkpoint/delta');
  if (!p) return;
  const rows = ok('show', p).split('\n').filter((l) => /^\| \d/.test(l));
  assert.equal(rows.length, 20);
  assert.equal(jsonLines(ok('show', p, '--format', 'json')).length, 41, 'json prints every row (41 in Spark\'s expected result)');
});

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

test('a path without a table: exit 1, stderr "error [DELTA_TABLE_NOT_FOUND] ..."', async () => {
  const dir = await newRoot();
  try {
    for (const cmd of ['show', 'describe', 'history']) {
      const r = floe(cmd, locJoin(dir, 'no-such-table'));
      assert.equal(r.code, 1, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, /^error \[DELTA_TABLE_NOT_FOUND\] /);
      assert.ok(r.stderr.includes(locJoin(dir, 'no-such-table')), 'names the path');
      assert.equal(r.stdout, '');
    }
  } finally {
    if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2 with usage on stderr: unknown flag, missing PATH, bad values, unknown command', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const cases: string[][] = [
    ['show', p, '--bogus'],
    ['show'],
    ['show', p, '--version', 'x'],
    ['show', p, '--limit', '-3'],
    ['show', p, '--limit'],
    ['show', p, '--format', 'xml'],
    ['frobnicate', p],
  ];
  for (const args of cases) {
    const r = floe(...args);
    assert.equal(r.code, 2, `floe ${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, /^error/);
    assert.match(r.stderr, /Usage:/);
    assert.equal(r.stdout, '');
  }
  const none = floe();
  assert.equal(none.code, 2);
  const help = floe('help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:/);
});

test('time travel errors exit 1 with the Delta error code', async (t) => {
  const p = await corpusTableIn(t, 'dat/basic_append/delta');
  if (!p) return;
  const v = floe('show', p, '--version', '7');
  assert.equal(v.code, 1);
  assert.match(v.stderr, /^error \[DELTA_VERSION_NOT_FOUND\] /);
  const early = floe('show', p, '--timestamp', '2000-01-01');
  assert.equal(early.code, 1);
  assert.match(early.stderr, /^error \[DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION\] /);
  const late = floe('describe', p, '--timestamp', '2100-01-01T00:00:00Z');
  assert.equal(late.code, 1);
  assert.match(late.stderr, /^error \[DELTA_TIMESTAMP_GREATER_THAN_COMMIT\] /);
  const both = floe('show', p, '--version', '0', '--timestamp', '2023-01-25T01:50:13.970Z');
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /DELTA_INVALID_TIME_TRAVEL_SPEC/);
  const badSql = floe('show', p, '--where', 'no_such_column = 1');
  assert.equal(badSql.code, 1);
  assert.match(badSql.stderr, /^error \[FLOE_SQL_ERROR\] .*no_such_column/);
});

test('a table with an unsupported reader feature: exit 1 and stderr names the feature', async (t) => {
  const p = await corpusTableIn(t, 'kernel-rs/data/unshredded-variant');
  if (!p) return;
  for (const cmd of ['show', 'describe']) {
    const r = floe(cmd, p);
    assert.equal(r.code, 1, `${cmd}: ${r.stderr}`);
    assert.match(r.stderr, /^error \[DELTA_UNSUPPORTED_FEATURES_FOR_READ\] /);
    assert.match(r.stderr, /variantType-preview/);
    assert.equal(r.stdout, '');
  }
});
