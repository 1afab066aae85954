/** The whole conformance corpus must pass (or be refused with a clear error): see `npm run conformance`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Floe } from '../floe.js';
import { formatReport, runCorpus } from '../conformance/corpus.js';
import { corpus } from './helpers.js';

test('conformance corpus: every case passes or fails clearly', async (t) => {
  const dir = corpus('conformance corpus');
  if (!dir) return t.skip('no corpus');
  const floe = await Floe.create();
  try {
    const results = await runCorpus(floe, dir);
    const failed = results.filter((r) => r.outcome === 'failed');
    const passed = results.filter((r) => r.outcome === 'passed');
    t.diagnostic(`passed ${passed.length}, failed ${failed.length}, of ${results.length}`);
    assert.ok(passed.length > 100, `expected well over 100 passing cases, got ${passed.length}`);
    assert.deepEqual(failed, [], formatReport(results));
  } finally {
    await floe.close();
  }
});
