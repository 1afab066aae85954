/**
 * The catalog's name lock: two sessions that both find a dead holder's (stale) lock must not both
 * end up holding the lock (one of them deleting the other's fresh lock).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Catalog } from '../catalog/catalog.js';
import { tempDir } from './helpers.js';

test('a stale lock is broken once: racing sessions never hold the name lock together', async () => {
  const warehouse = await tempDir('floe-catalog-lock-');
  const a = new Catalog(warehouse);
  const b = new Catalog(warehouse);
  await a.createSchema('s', { ifNotExists: true });
  let inside = 0;
  let maxInside = 0;
  let entered = 0;
  const critical = async (): Promise<void> => {
    inside++;
    entered++;
    maxInside = Math.max(maxInside, inside);
    await new Promise((r) => setTimeout(r, 30));
    inside--;
  };
  for (let round = 0; round < 15; round++) {
    const table = `t${round}`;
    const lockDir = path.dirname((a as unknown as { entryPath(s: string, t: string): string }).entryPath('s', table));
    await fs.mkdir(lockDir, { recursive: true });
    // A lock left by a crashed process long ago.
    await fs.writeFile(path.join(lockDir, `${table}.lock`), JSON.stringify({ pid: 999_999_999, host: os.hostname(), at: Date.now() - 3_600_000 }));
    // The race: both read the stale lock; the first removes it and takes the lock; the second's
    // removal (delayed here) would then delete the first's fresh lock.
    const lockFile = path.join(lockDir, `${table}.lock`);
    let removals = 0;
    const rm = fs.rm;
    fs.rm = async (p: Parameters<typeof fs.rm>[0], o?: Parameters<typeof fs.rm>[1]): Promise<void> => {
      if (String(p) === lockFile && removals++ === 1) await new Promise((r) => setTimeout(r, 15));
      return rm(p, o);
    };
    let results: PromiseSettledResult<unknown>[];
    try {
      results = await Promise.allSettled([a, b].map((c) => c.createTable('s', table, {}, async () => critical())));
    } finally {
      fs.rm = rm;
    }
    // One creates; the other then finds the table (the second create fails with TABLE_OR_VIEW_ALREADY_EXISTS).
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status === 'rejected' ? String(r.reason) : r.value))}`);
  }
  assert.equal(maxInside, 1, 'two sessions held the lock at once');
  assert.equal(entered, 15);
});
