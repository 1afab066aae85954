import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePath, encodePath, fileKey, parseCommit } from '../core/actions.js';
import { Replayer } from '../core/snapshot.js';
import { CorruptLogError } from '../errors.js';

const proto = '{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}';
const meta = '{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\\"type\\":\\"struct\\",\\"fields\\":[]}","partitionColumns":[],"configuration":{}}}';

test('commit parsing validates required fields and ignores unknown actions and fields', () => {
  const b = parseCommit([proto, meta, '{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true,"futureField":1}}', '{"someFutureAction":{"x":1}}', ''].join('\n'), 'c.json');
  assert.equal(b.adds.length, 1);
  assert.equal(b.protocol?.minWriterVersion, 2);
  assert.throws(() => parseCommit('{"add":{"partitionValues":{},"size":1}}', 'c.json'), (e: unknown) => e instanceof CorruptLogError && /missing required field 'path'/.test(e.message));
  assert.throws(() => parseCommit('{"add":{"path":"a", "size": 1', 'c.json'), (e: unknown) => e instanceof CorruptLogError && /line 1/.test(e.message));
  assert.throws(() => parseCommit(`${meta}\n${meta}`, 'c.json'), CorruptLogError);
  assert.throws(() => parseCommit('{"protocol":{"minReaderVersion":1}}', 'c.json'), CorruptLogError);
});

test('replay: newest action per logical file (path + DV id) wins', () => {
  const r = new Replayer();
  const dv = { storageType: 'u', pathOrInlineDv: 'abc', offset: 1, sizeInBytes: 10, cardinality: 2 };
  r.apply(parseCommit([proto, meta, '{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}}', '{"add":{"path":"b","partitionValues":{},"size":2,"modificationTime":0,"dataChange":true}}'].join('\n'), '0'));
  // DELETE with a DV: remove a (no DV), add a with DV.
  r.apply(parseCommit([`{"remove":{"path":"a","dataChange":true}}`, `{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true,"deletionVector":${JSON.stringify(dv)}}}`].join('\n'), '1'));
  r.apply(parseCommit('{"remove":{"path":"b","dataChange":true}}\n{"txn":{"appId":"app","version":3}}\n{"txn":{"appId":"app","version":5}}', '2'));
  const s = r.finish('/t', 2, null, 0);
  assert.deepEqual(s.files.map((f) => fileKey(f.path, f.deletionVector)), [fileKey('a', dv as never)]);
  assert.equal(s.txns.get('app')?.version, 5);
  assert.equal(s.tombstones.length, 2);
});

test('paths in the log are URL-encoded', () => {
  assert.equal(decodePath('a%20b/c%25d.parquet'), 'a b/c%d.parquet');
  assert.equal(encodePath('x=a b/part 1.parquet'), 'x=a%20b/part%201.parquet');
  assert.equal(decodePath(encodePath('p=a/b%c/é.parquet')), 'p=a/b%c/é.parquet');
});
