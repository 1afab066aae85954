/** Pipeline graph resolution and validation; the spec (YAML subset) and its errors. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { collectDefinitions, type DefineFunction, type QueryContext } from '../pipelines/definition.js';
import { resolveGraph } from '../pipelines/graph.js';
import { libraryFiles, loadSpec, parseYaml } from '../pipelines/spec.js';
import { tempDir } from './helpers.js';

let floe: Floe;
before(async () => {
  floe = await Floe.create({ threads: 2 });
});
after(async () => {
  await floe.close();
});

const resolve = (define: DefineFunction) => resolveGraph(floe, collectDefinitions([{ define, source: 'lib.js' }]));
const rejects = (define: DefineFunction, code: string, re: RegExp) =>
  assert.rejects(resolve(define), (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });

test('graph: kinds, lineage and execution order', async () => {
  const g = await resolve((p) => {
    p.materializedView({ name: 'gold', query: (c) => c.sql('SELECT count(*) FROM s', { s: c.read('silver') }) });
    p.createStreamingTable('silver');
    p.createAutoCdcFlow({ target: 'silver', source: 'clean', keys: ['id'], sequenceBy: 'seq' });
    p.temporaryView({ name: 'clean', query: (c) => c.readStream('bronze').filter('id IS NOT NULL') });
    p.table({ name: 'bronze', query: (c) => c.readStream('/tmp/some/delta') });
    p.table({ name: 'lookup', query: (c) => c.read('/tmp/other') });
  });
  assert.equal(g.datasets.get('bronze')!.resolvedKind, 'streamingTable');
  assert.equal(g.datasets.get('lookup')!.resolvedKind, 'materializedView');
  assert.equal(g.datasets.get('clean')!.resolvedKind, 'view');
  assert.deepEqual(g.flows.get('silver')!.inputs, ['clean']);
  assert.deepEqual(g.flows.get('silver')!.upstream, ['bronze']);
  const order = g.order;
  assert.ok(order.indexOf('bronze') < order.indexOf('silver') && order.indexOf('silver') < order.indexOf('gold'));
  assert.ok(!order.includes('clean'));
});

test('graph: unknown dataset names the flow and the missing dataset', async () => {
  await rejects((p) => p.materializedView({ name: 'gold', query: (c) => c.read('silverr') }), 'DATASET_NOT_FOUND', /'gold'.*reads 'silverr'/);
  await rejects((p) => p.appendFlow({ target: 'nowhere', name: 'f', query: (c) => c.readStream('/x') }), 'DATASET_NOT_FOUND', /flow 'f'.*writes to 'nowhere'/);
});

test('graph: cycle', async () => {
  await rejects((p) => {
    p.materializedView({ name: 'a', query: (c) => c.read('b') });
    p.materializedView({ name: 'b', query: (c) => c.read('c') });
    p.materializedView({ name: 'c', query: (c) => c.read('a') });
  }, 'CIRCULAR_DEPENDENCY', /'a', 'c', 'b' depend on each other: a -> c -> b -> a/);
});

test('graph: two definitions of one name', async () => {
  await rejects((p) => {
    p.table({ name: 't', query: (c) => c.read('/x') });
    p.materializedView({ name: 'T', query: (c) => c.read('/y') });
  }, 'DUPLICATE_DATASET', /'t' is defined twice.*lib\.js/);
});

test('graph: a materialized view with several flows; append flow into a materialized view', async () => {
  await rejects((p) => {
    p.materializedView({ name: 'mv', query: (c) => c.read('/x') });
    p.appendFlow({ target: 'mv', name: 'more', query: (c) => c.read('/y'), once: true });
  }, 'MATERIALIZED_VIEW_WITH_MULTIPLE_QUERIES', /'mv' \(lib\.js\) has 2 flows \(mv, more\)/);
});

test('graph: streaming read of a non-streaming source', async () => {
  await rejects((p) => {
    p.materializedView({ name: 'mv', query: (c) => c.read('/x') });
    p.table({ name: 'st', query: (c) => c.readStream('mv') });
  }, 'INVALID_STREAMING_READ', /'st' reads the materialized view 'mv' as a stream/);
  await rejects((p) => {
    p.materializedView({ name: 'mv', query: (c) => c.readStream('/x') });
  }, 'INVALID_STREAMING_READ', /materialized view 'mv'.*as a stream/);
  await rejects((p) => {
    p.view({ name: 'v', query: (c) => c.read('/x') });
    p.table({ name: 'st', query: (c) => c.readStream('v') });
  }, 'INVALID_STREAMING_READ', /v \(a view that reads no stream\)/);
});

test('graph: other checks (append flow not streaming, CDC mixed with append, streaming table without flows, several problems at once)', async () => {
  await rejects((p) => {
    p.createStreamingTable('st');
    p.appendFlow({ target: 'st', name: 'batchy', query: (c) => c.read('/x') });
  }, 'APPEND_FLOW_NOT_STREAMING', /'batchy'.*once: true/);
  await rejects((p) => p.createStreamingTable('lonely'), 'STREAMING_TABLE_WITHOUT_FLOWS', /'lonely'/);
  await assert.rejects(
    resolve((p) => {
      p.materializedView({ name: 'a', query: (c) => c.read('zz') });
      p.materializedView({ name: 'b', query: (c) => c.readStream('a') });
    }),
    (e: Error & { details?: { issues?: unknown[] } }) => /3 problems/.test(e.message) && e.details!.issues!.length === 3,
  );
  assert.throws(() => collectDefinitions([{ define: (p) => p.createAutoCdcFlow({ target: 't', source: 's', keys: [], sequenceBy: 'x' }) }]), /needs keys/);
});

test('graph: AUTO CDC flows into one target: one kind (events or snapshots), the same keys and SCD type; two event flows that agree are fine', async () => {
  const src = (p: Parameters<DefineFunction>[0]) => p.table({ name: 'bronze', query: (c) => c.readStream('/tmp/some/delta') });
  await rejects((p) => {
    src(p);
    p.createStreamingTable('s');
    p.createAutoCdcFlow({ target: 's', name: 'fa', source: 'bronze', keys: ['id'], sequenceBy: 'seq' });
    p.createAutoCdcFromSnapshotFlow({ target: 's', name: 'fb', source: 'bronze', keys: ['id'] });
  }, 'INVALID_FLOW_TARGET', /both AUTO CDC FROM SNAPSHOT flows \(fb\) and AUTO CDC flows \(fa\)/);
  await rejects((p) => {
    src(p);
    p.createStreamingTable('s');
    p.createAutoCdcFlow({ target: 's', name: 'fa', source: 'bronze', keys: ['id'], sequenceBy: 'seq' });
    p.createAutoCdcFlow({ target: 's', name: 'fb', source: 'bronze', keys: ['id', 'name'], sequenceBy: 'seq' });
  }, 'INVALID_FLOW_TARGET', /'fa' has KEYS \(id\) STORED AS SCD TYPE 1; 'fb' has KEYS \(id, name\) STORED AS SCD TYPE 1/);
  await rejects((p) => {
    src(p);
    p.createStreamingTable('s');
    p.createAutoCdcFlow({ target: 's', name: 'fa', source: 'bronze', keys: ['id'], sequenceBy: 'seq' });
    p.createAutoCdcFlow({ target: 's', name: 'fb', source: 'bronze', keys: ['ID'], sequenceBy: 'seq', storedAsScdType: 2 });
  }, 'INVALID_FLOW_TARGET', /SCD TYPE 1; 'fb' has KEYS \(id\) STORED AS SCD TYPE 2/);
  const g = await resolve((p) => {
    src(p);
    p.createStreamingTable('s');
    p.createAutoCdcFlow({ target: 's', name: 'fa', source: 'bronze', keys: ['id'], sequenceBy: 'seq', storedAsScdType: 2 });
    p.createAutoCdcFlow({ target: 's', name: 'fb', source: 'bronze', keys: ['ID'], sequenceBy: 'seq', storedAsScdType: 2 });
  });
  assert.deepEqual(g.datasets.get('s')!.flows.sort(), ['fa', 'fb']);
});

test('definitions: a misspelled option is an error naming the closest known one (not ignored)', () => {
  const bad = (define: DefineFunction, re: RegExp) =>
    assert.throws(() => collectDefinitions([{ define, source: 'lib.js' }]), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'INVALID_PIPELINE_DEFINITION');
      assert.match(e.message, re);
      return true;
    });
  bad((p) => p.createAutoCdcFlow({ target: 's', source: 'b', keys: ['id'], sequenceBy: 'seq', aplyAsDeletes: "op = 'D'" } as never), /createAutoCdcFlow into 's' in lib.js: unknown option 'aplyAsDeletes' \(did you mean 'applyAsDeletes'\?\)/);
  bad((p) => p.table({ name: 't', query: (c: QueryContext) => c.read('x'), partitonBy: ['a'] } as never), /table 't' in lib.js: unknown option 'partitonBy' \(did you mean 'partitionBy'\?\)/);
  bad((p) => p.createStreamingTable('s', { tblProperties: {} } as never), /createStreamingTable 's' in lib.js: unknown option 'tblProperties'/);
  bad((p) => p.appendFlow({ target: 's', query: (c: QueryContext) => c.readStream('x'), onse: true } as never), /did you mean 'once'/);
  // Options that do not go together are found before anything runs.
  bad((p) => p.createAutoCdcFlow({ target: 's', source: 'b', keys: ['id'], sequenceBy: 'seq', storedAsScdType: 2, applyAsTruncates: "op = 'T'" }), /applyAsTruncates \(APPLY AS TRUNCATE WHEN\) is supported for SCD type 1 only/);
  bad((p) => p.createAutoCdcFlow({ target: 's', source: 'b', keys: ['id'], sequenceBy: 'seq', trackHistoryColumnList: ['a'] }), /TRACK HISTORY ON\) apply to SCD type 2 only/);
  // Every documented option is accepted; undefined values are ignored.
  const d = collectDefinitions([{ define: (p) => {
    p.createStreamingTable('s', { comment: 'c', partitionBy: [], tableProperties: {}, expectations: [], schema: 'id INT' });
    p.createAutoCdcFlow({ target: 's', source: 'b', keys: ['id'], sequenceBy: 'seq', storedAsScdType: 2, applyAsDeletes: undefined, ignoreNullUpdates: false, trackHistoryExceptColumnList: ['x'], sourceOptions: {}, name: 'f' });
  } }]);
  assert.equal(d.flows.length, 1);
});

test('spec: YAML subset, validation errors, library globs', async () => {
  assert.deepEqual(parseYaml(`# comment
name: demo   # trailing
libraries:
  - glob:
      include: transformations/**
  - glob: { include: 'more/*.js' }
configuration:
  a: 1
  "b.c": "x # not a comment"
  flag: true
list: [1, two]
`), { name: 'demo', libraries: [{ glob: { include: 'transformations/**' } }, { glob: { include: 'more/*.js' } }], configuration: { a: 1, 'b.c': 'x # not a comment', flag: true }, list: [1, 'two'] });
  const dir = await tempDir('floe-spec-');
  const write = async (text: string) => {
    await fs.writeFile(path.join(dir, 'pipeline.yml'), text);
    return path.join(dir, 'pipeline.yml');
  };
  await assert.rejects(loadSpec(await write('libraries:\n  - glob:\n      include: x/**\n')), /PIPELINE_SPEC_MISSING_FIELD.*'name' is required/);
  await assert.rejects(loadSpec(await write('name: p\nfoo: 1\nlibraries:\n  - glob:\n      include: x/**\n')), /PIPELINE_SPEC_UNEXPECTED_FIELD.*'foo'/);
  await assert.rejects(loadSpec(await write('name: p\nlibraries:\n  - glob:\n      include: x/a*b/**\n')), /PIPELINE_SPEC_INVALID_GLOB_PATTERN/);
  await assert.rejects(loadSpec(await write('name: p\ncatalog: prod\nlibraries:\n  - glob:\n      include: x/**\n')), /catalog 'prod' is not available/);
  const spec = await loadSpec(await write('name: p\ndatabase: sales\nwarehouse: ./wh\nlibraries:\n  - glob:\n      include: t/**\nconfiguration:\n  k: v\n'));
  assert.equal(spec.schema, 'sales');
  assert.equal(spec.warehouse, path.join(dir, 'wh'));
  await fs.mkdir(path.join(dir, 't', 'sub'), { recursive: true });
  await fs.writeFile(path.join(dir, 't', 'a.js'), 'export default (p) => {}');
  await fs.writeFile(path.join(dir, 't', 'sub', 'b.mjs'), 'export default (p) => {}');
  await fs.writeFile(path.join(dir, 't', 'a.js.map'), '{}');
  assert.deepEqual((await libraryFiles(spec)).map((f) => path.relative(dir, f)), ['t/a.js', 't/sub/b.mjs']);
  await fs.writeFile(path.join(dir, 't', 'c.sql'), 'CREATE MATERIALIZED VIEW x AS SELECT 1');
  assert.deepEqual((await libraryFiles(spec)).map((f) => path.relative(dir, f)), ['t/a.js', 't/c.sql', 't/sub/b.mjs']);
  await fs.rm(path.join(dir, 't', 'c.sql'));
  // TypeScript: a .ts library is one, unless its compiled .js is matched too; .d.ts are not; .cts is refused.
  await fs.writeFile(path.join(dir, 't', 'd.ts'), '');
  await fs.writeFile(path.join(dir, 't', 'a.ts'), '');
  await fs.writeFile(path.join(dir, 't', 'a.d.ts'), '');
  assert.deepEqual((await libraryFiles(spec)).map((f) => path.relative(dir, f)), ['t/a.js', 't/d.ts', 't/sub/b.mjs']);
  await fs.writeFile(path.join(dir, 't', 'e.cts'), '');
  await assert.rejects(libraryFiles(spec), /PIPELINE_LIBRARY_UNSUPPORTED.*\.cts/);
  await fs.rm(dir, { recursive: true, force: true });
});
