/**
 * The "users" example of the Databricks AUTO CDC documentation, run with floe: the same change
 * events applied as SCD type 1 and SCD type 2 targets (and, optionally, with the TRUNCATE event).
 *
 *   npm run build && node dist/examples/users-cdc.js [DIR]
 *
 * Documented results (SCD 1): 124 Raul Oaxaca, 125 Mercedes Guadalajara, 126 Lily Cancun; with the
 * TRUNCATE at sequenceNum 3 only 125 Mercedes Guadalajara. SCD 2: seven versions with __START_AT /
 * __END_AT (USERS_EXPECTED below).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Floe } from '../floe.js';
import type { DataFrame } from '../dataframe.js';
import { applyChanges } from '../pipelines/auto-cdc.js';

/** The documentation's input events (userId, name, city, operation, sequenceNum). */
export const USERS_EVENTS: { userId: number | null; name: string | null; city: string | null; operation: string; sequenceNum: number }[] = [
  { userId: 124, name: 'Raul', city: 'Oaxaca', operation: 'INSERT', sequenceNum: 1 },
  { userId: 123, name: 'Isabel', city: 'Monterrey', operation: 'INSERT', sequenceNum: 1 },
  { userId: 125, name: 'Mercedes', city: 'Tijuana', operation: 'INSERT', sequenceNum: 2 },
  { userId: 126, name: 'Lily', city: 'Cancun', operation: 'INSERT', sequenceNum: 2 },
  { userId: 123, name: null, city: null, operation: 'DELETE', sequenceNum: 6 },
  { userId: 125, name: 'Mercedes', city: 'Guadalajara', operation: 'UPDATE', sequenceNum: 6 },
  { userId: 125, name: 'Mercedes', city: 'Mexicali', operation: 'UPDATE', sequenceNum: 5 },
  { userId: 123, name: 'Isabel', city: 'Chihuahua', operation: 'UPDATE', sequenceNum: 5 },
];
export const USERS_TRUNCATE = { userId: null, name: null, city: null, operation: 'TRUNCATE', sequenceNum: 3 };

/** The documentation's results for those events (rows ordered by userId, then __START_AT). */
export const USERS_EXPECTED = {
  scd1: [
    { userId: 124, name: 'Raul', city: 'Oaxaca' },
    { userId: 125, name: 'Mercedes', city: 'Guadalajara' },
    { userId: 126, name: 'Lily', city: 'Cancun' },
  ],
  scd1Truncate: [{ userId: 125, name: 'Mercedes', city: 'Guadalajara' }],
  scd2: [
    { userId: 123, name: 'Isabel', city: 'Monterrey', __START_AT: 1, __END_AT: 5 },
    { userId: 123, name: 'Isabel', city: 'Chihuahua', __START_AT: 5, __END_AT: 6 },
    { userId: 124, name: 'Raul', city: 'Oaxaca', __START_AT: 1, __END_AT: null },
    { userId: 125, name: 'Mercedes', city: 'Tijuana', __START_AT: 2, __END_AT: 5 },
    { userId: 125, name: 'Mercedes', city: 'Mexicali', __START_AT: 5, __END_AT: 6 },
    { userId: 125, name: 'Mercedes', city: 'Guadalajara', __START_AT: 6, __END_AT: null },
    { userId: 126, name: 'Lily', city: 'Cancun', __START_AT: 2, __END_AT: null },
  ],
  /** SCD 2 tracking history on every column but city. */
  scd2TrackExceptCity: [
    { userId: 123, name: 'Isabel', city: 'Chihuahua', __START_AT: 1, __END_AT: 6 },
    { userId: 124, name: 'Raul', city: 'Oaxaca', __START_AT: 1, __END_AT: null },
    { userId: 125, name: 'Mercedes', city: 'Guadalajara', __START_AT: 2, __END_AT: null },
    { userId: 126, name: 'Lily', city: 'Cancun', __START_AT: 2, __END_AT: null },
  ],
};

export async function usersSource(floe: Floe, withTruncate = false): Promise<DataFrame> {
  return floe.createDataFrame(withTruncate ? [...USERS_EVENTS, USERS_TRUNCATE] : USERS_EVENTS);
}

/** AUTO CDC as in the docs: KEYS (userId), APPLY AS DELETE WHEN operation = 'DELETE', SEQUENCE BY sequenceNum, COLUMNS * EXCEPT (operation, sequenceNum). */
export async function runUsersExample(floe: Floe, target: string, scd: 1 | 2, options: { withTruncate?: boolean; trackHistoryExceptColumnList?: string[] } = {}): Promise<void> {
  await applyChanges(floe, {
    target,
    source: await usersSource(floe, options.withTruncate),
    keys: ['userId'],
    sequenceBy: 'sequenceNum',
    applyAsDeletes: "operation = 'DELETE'",
    applyAsTruncates: scd === 1 ? "operation = 'TRUNCATE'" : undefined,
    exceptColumnList: ['operation', 'sequenceNum'],
    storedAsScdType: scd,
    trackHistoryExceptColumnList: options.trackHistoryExceptColumnList,
    flowName: `users_scd${scd}`,
    batchId: 0,
  });
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'floe-users-cdc-')));
  await fs.mkdir(dir, { recursive: true });
  const floe = await Floe.create();
  try {
    for (const [name, scd, opts] of [
      ['users_scd1', 1, {}],
      ['users_scd1_truncate', 1, { withTruncate: true }],
      ['users_scd2', 2, {}],
      ['users_scd2_track_except_city', 2, { trackHistoryExceptColumnList: ['city'] }],
    ] as [string, 1 | 2, { withTruncate?: boolean; trackHistoryExceptColumnList?: string[] }][]) {
      const target = path.join(dir, name);
      await runUsersExample(floe, target, scd, opts);
      console.log(`${name} (${target}):`);
      await (await floe.read.delta(target)).orderBy(scd === 2 ? 'userId, "__START_AT"' : 'userId').show();
    }
  } finally {
    await floe.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
