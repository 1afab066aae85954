/**
 * Property tests: AUTO CDC SCD 1 and SCD 2 against a plain-JS reference model, on random event
 * histories over a few keys (upserts, deletes, NULLs for ignoreNullUpdates) delivered in shuffled
 * order, split into runs at random points, with already-applied events re-sent in later runs. The
 * target after the runs equals the model (which is what one run in sequence order gives).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import fc from 'fast-check';
import { Floe } from '../floe.js';
import { applyChanges } from '../pipelines/auto-cdc.js';
import { isRemoteStore, locJoin, newRoot } from './store.js';
import { type Ev, eventsDf, modelScd1, modelScd2, readScd1, readScd2 } from './auto-cdc-helpers.js';

let floe: Floe;
let dir: string;
let n = 0;
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await newRoot('floe-autocdc-prop-');
});
after(async () => {
  await floe.close();
  if (!isRemoteStore) await fs.rm(dir, { recursive: true, force: true });
});

/** A history: events with unique sequence numbers, a permutation (arrival order), cut points, re-sends. */
const history = fc
  .array(fc.record({ id: fc.integer({ min: 1, max: 3 }), del: fc.boolean(), a: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3 }), b: fc.option(fc.constantFrom('x', 'y'), { freq: 3 }) }), { minLength: 1, maxLength: 12 })
  .chain((raw) => {
    const events: Ev[] = raw.map((r, i) => ({ id: r.id, seq: (i + 1) * 10, op: r.del ? 'd' : 'u', a: r.a, b: r.b }));
    return fc.record({
      events: fc.constant(events),
      order: fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }),
      cuts: fc.array(fc.boolean(), { minLength: events.length, maxLength: events.length }),
      resend: fc.array(fc.nat(), { maxLength: 4 }),
    });
  });

function runsOf(h: { order: Ev[]; cuts: boolean[]; resend: number[] }): Ev[][] {
  const runs: Ev[][] = [[]];
  h.order.forEach((e, i) => {
    runs[runs.length - 1]!.push(e);
    if (h.cuts[i] && runs.length < 4 && i < h.order.length - 1) runs.push([]);
  });
  // Re-send already delivered events in later runs (at-least-once delivery).
  const delivered: Ev[] = [];
  runs.forEach((r, i) => {
    if (i > 0) for (const x of h.resend) if (delivered.length && x % runs.length === i) r.push({ ...delivered[x % delivered.length]! });
    delivered.push(...r);
  });
  return runs;
}

async function run(scd: 1 | 2, runs: Ev[][], o: { ignoreNull: boolean; trackA?: boolean }): Promise<string> {
  const target = locJoin(dir, `t${++n}`);
  for (let i = 0; i < runs.length; i++) {
    await applyChanges(floe, {
      target,
      source: eventsDf(floe, runs[i]!),
      keys: ['id'],
      sequenceBy: 'seq',
      applyAsDeletes: "op = 'd'",
      exceptColumnList: ['op', 'seq'],
      ignoreNullUpdates: o.ignoreNull,
      storedAsScdType: scd,
      trackHistoryColumnList: o.trackA ? ['a'] : undefined,
      flowName: 'prop',
      batchId: i,
    });
  }
  return target;
}

test('SCD type 1: any split, shuffle and re-delivery equals the model', async () => {
  await fc.assert(
    fc.asyncProperty(history, fc.boolean(), async (h, ignoreNull) => {
      const target = await run(1, runsOf(h), { ignoreNull });
      assert.deepEqual(await readScd1(floe, target), modelScd1(h.events, ignoreNull));
    }),
    { numRuns: 30 },
  );
});

test('SCD type 2: any split, shuffle and re-delivery equals the model', async () => {
  await fc.assert(
    fc.asyncProperty(history, fc.boolean(), fc.boolean(), async (h, ignoreNull, trackA) => {
      const target = await run(2, runsOf(h), { ignoreNull, trackA });
      assert.deepEqual(await readScd2(floe, target), modelScd2(h.events, ignoreNull, trackA ? ['a'] : ['a', 'b']));
    }),
    { numRuns: 30 },
  );
});

test('one run equals the split runs (SCD 1 and 2)', async () => {
  await fc.assert(
    fc.asyncProperty(history, fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>, async (h, scd) => {
      const split = await run(scd, runsOf(h), { ignoreNull: true });
      const one = await run(scd, [h.order], { ignoreNull: true });
      const read = scd === 1 ? readScd1 : readScd2;
      assert.deepEqual(await read(floe, split), await read(floe, one));
    }),
    { numRuns: 25 },
  );
});

test('SCD type 2, every column tracked, arrival mostly in order (in-order keys only extend their history): equals the model', async () => {
  await fc.assert(
    fc.asyncProperty(history, fc.array(fc.nat(), { maxLength: 3 }), async (h, swaps) => {
      // Sequence order with a few late events: most later runs hold keys whose new events all come
      // after their applied ones (the current-row-only diff), some hold late ones (the full diff).
      const order = [...h.events];
      for (const s of swaps) {
        const i = s % order.length;
        const j = Math.min(order.length - 1, i + 1 + (s % 3));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const target = await run(2, runsOf({ ...h, order }), { ignoreNull: false });
      assert.deepEqual(await readScd2(floe, target), modelScd2(h.events, false, ['a', 'b']));
    }),
    { numRuns: 40 },
  );
});
