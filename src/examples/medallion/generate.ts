/**
 * Generated data for the medallion example: customer change events (UPSERT / DELETE with a sequence
 * number), some out of order and some with a missing id, written as JSON-lines files to a landing
 * folder. `model` computes the expected silver table (latest event per id by sequence; deletes remove).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface CustomerEvent {
  id: number | null;
  name: string;
  country: string;
  op: 'UPSERT' | 'DELETE';
  seq: number;
}

const COUNTRIES = ['FR', 'DE', 'UK', 'US', 'JP'];

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` events over `keys` customers with sequence numbers from `firstSeq`, shuffled a little. */
export function generateEvents(n: number, keys: number, firstSeq: number, seed: number): CustomerEvent[] {
  const r = rng(seed);
  const out: CustomerEvent[] = [];
  for (let i = 0; i < n; i++) {
    const id = 1 + Math.floor(r() * keys);
    const del = r() < 0.1;
    out.push({ id: r() < 0.02 ? null : id, name: `customer ${id} v${firstSeq + i}`, country: COUNTRIES[Math.floor(r() * COUNTRIES.length)]!, op: del ? 'DELETE' : 'UPSERT', seq: firstSeq + i });
  }
  // About 10% out of order: swap neighbours.
  for (let i = 1; i < out.length; i++) if (r() < 0.1) [out[i - 1], out[i]] = [out[i]!, out[i - 1]!];
  return out;
}

export async function writeLanding(dir: string, file: string, events: CustomerEvent[]): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const p = path.join(dir, file);
  const tmp = path.join(dir, `.${file}.tmp`);
  await fs.writeFile(tmp, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await fs.rename(tmp, p); // files appear whole
  return p;
}

/** The expected silver table after all these events. */
export function model(events: CustomerEvent[]): Map<number, { name: string; country: string }> {
  const latest = new Map<number, CustomerEvent>();
  for (const e of events) {
    if (e.id === null) continue;
    const cur = latest.get(e.id);
    if (!cur || e.seq > cur.seq) latest.set(e.id, e);
  }
  const out = new Map<number, { name: string; country: string }>();
  for (const [id, e] of latest) if (e.op !== 'DELETE') out.set(id, { name: e.name, country: e.country });
  return out;
}
