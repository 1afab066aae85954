import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLogSegment, completeCheckpoints } from '../core/log-segment.js';
import { type LogFile, parseLogFile } from '../core/log-files.js';
import { CorruptLogError, FloeError, TableNotFoundError } from '../errors.js';

const f = (name: string): LogFile => {
  const x = parseLogFile(`_delta_log/${name}`, 0, 1);
  assert.ok(x, name);
  return x;
};
const v = (n: number): string => String(n).padStart(20, '0');

test('log file names are classified', () => {
  assert.equal(f(`${v(3)}.json`).kind, 'commit');
  assert.deepEqual(f(`${v(10)}.checkpoint.parquet`), { kind: 'checkpoint', version: 10, path: `_delta_log/${v(10)}.checkpoint.parquet`, lastModified: 0, size: 1, format: 'parquet' });
  const mp = f(`${v(10)}.checkpoint.0000000002.0000000003.parquet`);
  assert.equal(mp.kind === 'checkpoint' && mp.part, 2);
  const u = f(`${v(10)}.checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json`);
  assert.equal(u.kind === 'checkpoint' && u.format, 'json');
  assert.equal(f(`${v(4)}.${v(8)}.compacted.json`).kind, 'compaction');
  assert.equal(f(`${v(4)}.crc`).kind, 'crc');
  assert.equal(parseLogFile('_delta_log/_last_checkpoint', 0, 1), null);
  assert.equal(parseLogFile('_delta_log/.00000000000000000001.json.abc.tmp', 0, 1), null);
});

test('segment uses the newest complete checkpoint at or before the version', () => {
  const files = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => f(`${v(i)}.json`));
  files.push(f(`${v(2)}.checkpoint.parquet`));
  files.push(f(`${v(5)}.checkpoint.0000000001.0000000002.parquet`)); // incomplete: part 2 missing
  const seg = buildLogSegment('/t', files);
  assert.equal(seg.version, 7);
  assert.equal(seg.checkpoint?.version, 2);
  assert.deepEqual(seg.commits.map((c) => c.version), [3, 4, 5, 6, 7]);
  const seg1 = buildLogSegment('/t', files, 1);
  assert.equal(seg1.checkpoint, null);
  assert.deepEqual(seg1.commits.map((c) => c.version), [0, 1]);
});

test('multi-part checkpoints need every part', () => {
  const files = [f(`${v(5)}.checkpoint.0000000001.0000000002.parquet`), f(`${v(5)}.checkpoint.0000000002.0000000002.parquet`)];
  const cps = completeCheckpoints(files);
  assert.equal(cps.length, 1);
  assert.equal(cps[0]!.files.length, 2);
});

test('a log that starts at a checkpoint (older commits cleaned up) reads from it', () => {
  const files = [f(`${v(2)}.checkpoint.parquet`), f(`${v(2)}.json`), f(`${v(3)}.json`)];
  const seg = buildLogSegment('/t', files);
  assert.equal(seg.version, 3);
  assert.deepEqual(seg.commits.map((c) => c.version), [3]);
  assert.throws(() => buildLogSegment('/t', files, 1), (e: unknown) => e instanceof FloeError && e.code === 'DELTA_VERSION_NOT_FOUND');
});

test('gaps and missing logs are clear errors', () => {
  assert.throws(() => buildLogSegment('/t', [f(`${v(0)}.json`), f(`${v(2)}.json`)]), CorruptLogError);
  assert.throws(() => buildLogSegment('/t', []), TableNotFoundError);
  assert.throws(() => buildLogSegment('/t', [f(`${v(0)}.json`)], 5), (e: unknown) => e instanceof FloeError && e.code === 'DELTA_VERSION_NOT_FOUND');
});

test('compaction files replace the commits they cover', () => {
  const files = [0, 1, 2, 3, 4, 5].map((i) => f(`${v(i)}.json`));
  files.push(f(`${v(1)}.${v(3)}.compacted.json`));
  const seg = buildLogSegment('/t', files, undefined, { useCompactions: true });
  assert.deepEqual(seg.compactions.map((c) => [c.version, c.endVersion]), [[1, 3]]);
  assert.deepEqual(seg.commits.map((c) => c.version), [0, 4, 5]);
  // Not used when it reaches past the target version.
  const seg2 = buildLogSegment('/t', files, 2, { useCompactions: true });
  assert.deepEqual(seg2.compactions, []);
});
