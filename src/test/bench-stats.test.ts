import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhaseTimer, mean, median, nowMs, p99, percentile, round, summarize, timed } from '../bench/stats.js';

test('median of odd and even counts, unsorted input left untouched', () => {
  const xs = [5, 1, 3];
  assert.equal(median(xs), 3);
  assert.deepEqual(xs, [5, 1, 3]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.equal(median([2, 2, 2, 2]), 2);
});

test('median and percentiles reject empty or non-finite samples', () => {
  assert.throws(() => median([]), RangeError);
  assert.throws(() => p99([]), RangeError);
  assert.throws(() => median([1, Number.NaN]), RangeError);
  assert.throws(() => percentile([1, 2], 0), RangeError);
  assert.throws(() => percentile([1, 2], 101), RangeError);
});

test('p99 uses the nearest rank: the maximum below 100 samples, a sample value always', () => {
  assert.equal(p99([3, 1, 2]), 3);
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(p99(hundred), 99);
  const thousand = Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1000..1
  assert.equal(p99(thousand), 990);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile(hundred, 100), 100);
  assert.equal(percentile([10, 20, 30, 40], 1), 10);
});

test('mean and summarize', () => {
  assert.equal(mean([1, 2, 3, 6]), 3);
  assert.deepEqual(summarize([4, 1, 3, 2]), { n: 4, median: 2.5, p99: 4, min: 1, max: 4, mean: 2.5 });
});

test('round keeps 2 decimals below 10, 1 below 1000, none above', () => {
  assert.equal(round(1.23456), 1.23);
  assert.equal(round(123.456), 123.5);
  assert.equal(round(12345.6), 12346);
});

test('timed measures elapsed time and passes the result through', async () => {
  const { ms, result } = await timed(async () => {
    await new Promise((r) => setTimeout(r, 20));
    return 42;
  });
  assert.equal(result, 42);
  assert.ok(ms >= 15, `elapsed ${ms}`);
  assert.ok(ms < 5000, `elapsed ${ms}`);
  const sync = await timed(() => 'x');
  assert.equal(sync.result, 'x');
  assert.ok(sync.ms >= 0);
  const a = nowMs();
  const b = nowMs();
  assert.ok(b >= a);
});

test('PhaseTimer reports median milliseconds per phase in order', async () => {
  const t = new PhaseTimer();
  for (let i = 0; i < 3; i++) {
    t.start();
    await new Promise((r) => setTimeout(r, 5));
    t.mark('a');
    t.mark('b');
  }
  t.record('total', 1);
  t.record('total', 3);
  t.record('total', 100);
  const m = t.medians();
  assert.deepEqual(Object.keys(m), ['a', 'b', 'total']);
  assert.equal(m.total, 3);
  assert.ok(m.a! >= 3, `a = ${m.a}`);
  assert.ok(m.b! < m.a!, `b = ${m.b}`);
});
