/** Helpers for the SQL tests: a session over a fresh warehouse, and result shortcuts. */
import assert from 'node:assert/strict';
import { Floe } from '../floe.js';
import { FloeError } from '../errors.js';
import { executeSql, type SqlResult } from '../sql/executor.js';
import { tempDir } from './helpers.js';
import { isRemoteStore, newLocation } from './store.js';

export interface SqlSession {
  floe: Floe;
  warehouse: string;
  run(sql: string): Promise<SqlResult>;
  /**
   * ` LOCATION '…'` for a CREATE TABLE: a fresh location in the remote test store (FLOE_TEST_STORE,
   * see store.ts), or '' on local files (a managed table in the warehouse folder).
   */
  at(name: string): Promise<string>;
  /** Rows of a query (JSON-safe values) or of a status result. */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  /** Expects a FloeError with this code (and message fragment). */
  fails(sql: string, code: string | RegExp, fragment?: RegExp): Promise<FloeError>;
  close(): Promise<void>;
}

export async function sqlSession(config: Record<string, string> = {}): Promise<SqlSession> {
  const floe = await Floe.create({ config, threads: 2 });
  const warehouse = await tempDir('floe-sql-');
  const run = (sql: string): Promise<SqlResult> => executeSql(floe, sql, { warehouse });
  return {
    floe,
    warehouse,
    run,
    at: async (name) => (isRemoteStore ? ` LOCATION '${await newLocation(name, 'floe-sql-')}'` : ''),
    async rows(sql) {
      const r = await run(sql);
      if (r.kind === 'rows') return r.dataFrame.toJSON();
      return JSON.parse(JSON.stringify(r.rows ?? [])) as Record<string, unknown>[];
    },
    async fails(sql, code, fragment) {
      try {
        const r = await run(sql);
        if (r.kind === 'rows') await r.dataFrame.toJSON();
      } catch (e) {
        assert.ok(e instanceof FloeError, `expected a FloeError, got ${(e as Error)?.stack}`);
        if (typeof code === 'string') assert.equal(e.code, code, e.message);
        else assert.match(e.code, code, e.message);
        if (fragment) assert.match(e.message, fragment);
        return e;
      }
      assert.fail(`expected ${sql} to fail with ${code}`);
    },
    close: () => floe.close(),
  };
}
