/** Shared helpers for the AUTO CDC tests: typed event batches and a plain-JS reference model. */
import type { Floe } from '../floe.js';
import type { DataFrame } from '../dataframe.js';

export interface Ev {
  id: number;
  seq: number;
  op: 'u' | 'd' | 't';
  a: number | null;
  b: string | null;
}

/** A seeded pseudo-random integer in [0, n) (xorshift32): reproducible event histories. */
export function seededRandom(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const lit = (v: number | string | null, type: string): string => (v === null ? `NULL::${type}` : typeof v === 'number' ? `${v}::${type}` : `'${v.replace(/'/g, "''")}'::${type}`);

/** A DataFrame of events with fixed column types (id, seq, op, a, b). */
export function eventsDf(floe: Floe, events: Ev[]): DataFrame {
  if (!events.length) return floe.duckdbSql(`SELECT 0::BIGINT AS id, 0::BIGINT AS seq, 'u' AS op, NULL::BIGINT AS a, NULL::VARCHAR AS b WHERE false`);
  const rows = events.map((e) => `(${lit(e.id, 'BIGINT')}, ${lit(e.seq, 'BIGINT')}, ${lit(e.op, 'VARCHAR')}, ${lit(e.a, 'BIGINT')}, ${lit(e.b, 'VARCHAR')})`);
  return floe.duckdbSql(`SELECT * FROM (VALUES ${rows.join(', ')}) AS t(id, seq, op, a, b)`);
}

export interface Row1 { id: number; a: number | null; b: string | null }
export interface Row2 extends Row1 { start: number; end: number | null }

function byKey(events: Ev[]): Map<number, Ev[]> {
  const m = new Map<number, Ev[]>();
  // Re-deliveries of a (key, seq) are the same event.
  const seen = new Set<string>();
  for (const e of events) {
    const k = `${e.id}/${e.seq}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (!m.has(e.id)) m.set(e.id, []);
    m.get(e.id)!.push(e);
  }
  for (const l of m.values()) l.sort((x, y) => x.seq - y.seq);
  return m;
}

/** SCD type 1: the events applied in sequence order. */
export function modelScd1(events: Ev[], ignoreNull: boolean): Row1[] {
  const out: Row1[] = [];
  for (const [id, evs] of byKey(events)) {
    let row: Row1 | null = null;
    for (const e of evs) {
      if (e.op === 'd') row = null;
      else if (!row || !ignoreNull) row = { id, a: e.a, b: e.b };
      else row = { id, a: e.a ?? row.a, b: e.b ?? row.b };
    }
    if (row) out.push(row);
  }
  return out.sort((x, y) => x.id - y.id);
}

/** SCD type 2: versions with start/end; tracked columns open versions, others update in place. */
export function modelScd2(events: Ev[], ignoreNull: boolean, tracked: ('a' | 'b')[] = ['a', 'b']): Row2[] {
  const out: Row2[] = [];
  for (const [id, evs] of byKey(events)) {
    let cur: Row2 | null = null;
    for (const e of evs) {
      if (e.op === 'd') {
        if (cur) {
          cur.end = e.seq;
          out.push(cur);
          cur = null;
        }
        continue;
      }
      const vals: { a: number | null; b: string | null } = cur && ignoreNull ? { a: e.a ?? cur.a, b: e.b ?? cur.b } : { a: e.a, b: e.b };
      if (cur && tracked.every((c) => vals[c] === cur![c])) {
        cur.a = vals.a;
        cur.b = vals.b;
      } else {
        if (cur) {
          cur.end = e.seq;
          out.push(cur);
        }
        cur = { id, ...vals, start: e.seq, end: null };
      }
    }
    if (cur) out.push(cur);
  }
  return out.sort((x, y) => x.id - y.id || x.start - y.start);
}

/** The target's rows in the models' shape. */
export async function readScd1(floe: Floe, target: string): Promise<Row1[]> {
  const rows = await (await floe.read.delta(target)).orderBy('id').toJSON();
  return rows.map((r) => ({ id: Number(r.id), a: r.a === null ? null : Number(r.a), b: (r.b as string | null) ?? null }));
}

export async function readScd2(floe: Floe, target: string): Promise<Row2[]> {
  const rows = await (await floe.read.delta(target)).orderBy('id', '"__START_AT"').toJSON();
  return rows.map((r) => ({ id: Number(r.id), a: r.a === null ? null : Number(r.a), b: (r.b as string | null) ?? null, start: Number(r.__START_AT), end: r.__END_AT === null ? null : Number(r.__END_AT) }));
}
