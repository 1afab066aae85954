/**
 * Small statistics, timing and measurement helpers for the benchmark harness.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** Milliseconds from a monotonic clock (sub-millisecond resolution). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * CPU milliseconds (user + system) used by this process so far, all threads (DuckDB's included).
 * Differences of it are far less sensitive than wall time to other processes competing for the CPUs.
 */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs `fn` once and returns its result with the elapsed wall time in milliseconds. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; result: T }> {
  const t0 = nowMs();
  const result = await fn();
  return { ms: nowMs() - t0, result };
}

function sortedCopy(xs: readonly number[], what: string): number[] {
  if (!xs.length) throw new RangeError(`${what} of an empty sample`);
  for (const x of xs) if (!Number.isFinite(x)) throw new RangeError(`${what}: non-finite value ${x}`);
  return [...xs].sort((a, b) => a - b);
}

/** The median; the mean of the two middle values for an even count. */
export function median(xs: readonly number[]): number {
  const s = sortedCopy(xs, 'median');
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-th percentile (0 < p ≤ 100) by the nearest-rank method: always one of the samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const s = sortedCopy(xs, 'percentile');
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** The 99th percentile (nearest rank): the maximum for fewer than 100 samples. */
export function p99(xs: readonly number[]): number {
  return percentile(xs, 99);
}

export function mean(xs: readonly number[]): number {
  const s = sortedCopy(xs, 'mean');
  return s.reduce((a, b) => a + b, 0) / s.length;
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sortedCopy(xs, 'summary');
  return { n: s.length, median: median(s), p99: p99(s), min: s[0]!, max: s[s.length - 1]!, mean: mean(s) };
}

/** Rounds for display and JSON: 2 decimals below 10, 1 below 1000, else integers. */
export function round(x: number): number {
  const a = Math.abs(x);
  const d = a < 10 ? 100 : a < 1000 ? 10 : 1;
  return Math.round(x * d) / d;
}

/**
 * Named phase timers: `mark('list')` after each phase, medians per phase across runs.
 * Used to show where time goes inside one measured operation.
 */
export class PhaseTimer {
  private readonly samples = new Map<string, number[]>();
  private last = 0;

  start(): void {
    this.last = nowMs();
  }

  mark(phase: string): void {
    const t = nowMs();
    this.record(phase, t - this.last);
    this.last = t;
  }

  /** Adds a sample measured elsewhere (e.g. a total across phases). */
  record(phase: string, ms: number): void {
    const arr = this.samples.get(phase) ?? [];
    arr.push(ms);
    this.samples.set(phase, arr);
  }

  /** Median milliseconds per phase, in first-seen order. */
  medians(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.samples) out[k] = round(median(v));
    return out;
  }
}

/** A measured operation: returns its own elapsed milliseconds (so per-run setup stays outside). */
export type Measured = () => Promise<number>;

/** A full GC between measured runs, so one run's garbage is not collected on the next one's clock. */
export const collectGarbage: () => void = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // not available: measure without
  }
  return () => {};
})();

export const FAST_MS = 50;
export const FAST_MIN_RUNS = 25;

/**
 * One warm-up of each, then `runs` interleaved runs (alternating which goes first), a GC before each.
 * When both warm-ups take under FAST_MS, at least FAST_MIN_RUNS runs are taken.
 */
export async function measure(runs: number, floeFn: Measured, baseFn: Measured): Promise<{ floe: number[]; base: number[] }> {
  const run = async (fn: Measured): Promise<number> => {
    collectGarbage();
    return fn();
  };
  const warmFloe = await run(floeFn);
  const warmBase = await run(baseFn);
  // Operations of a few milliseconds are at the mercy of scheduler noise: take more samples.
  const n = Math.max(warmFloe, warmBase) < FAST_MS ? Math.max(runs, FAST_MIN_RUNS) : runs;
  const floe: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      floe.push(await run(floeFn));
      base.push(await run(baseFn));
    } else {
      base.push(await run(baseFn));
      floe.push(await run(floeFn));
    }
  }
  return { floe, base };
}

/**
 * Like `measure` for one floe operation against several baselines: one warm-up of each, then `runs`
 * rounds running every function once, the order rotated each round, a GC before each.
 */
export async function measureEach(runs: number, fns: Measured[]): Promise<number[][]> {
  const run = async (fn: Measured): Promise<number> => {
    collectGarbage();
    return fn();
  };
  const warm: number[] = [];
  for (const fn of fns) warm.push(await run(fn));
  const n = Math.max(...warm) < FAST_MS ? Math.max(runs, FAST_MIN_RUNS) : runs;
  const out: number[][] = fns.map(() => []);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < fns.length; j++) {
      const k = (i + j) % fns.length;
      out[k]!.push(await run(fns[k]!));
    }
  }
  return out;
}

/** Same aggregate from two plans: equal, with doubles compared to a relative 1e-9 (parallel sums reorder). */
export function sameResult(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (x !== null && y !== null && Number.isFinite(nx) && Number.isFinite(ny) && Math.abs(nx - ny) <= 1e-9 * Math.max(1, Math.abs(nx), Math.abs(ny))) continue;
    return false;
  }
  return true;
}
