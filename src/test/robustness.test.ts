/**
 * Found by a reliability tester: MERGE file pruning on integer keys beyond 2^53 and at a type's
 * minimum, a long-lived session reading a table deleted and created again at the same path, and the
 * errors for a writer version floe does not write and for a damaged data file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { tempDir } from './helpers.js';

let floe: Floe;
let dir: string;
before(async () => {
  floe = await Floe.create({ threads: 2 });
  dir = await tempDir('floe-robust-');
});
after(async () => {
  await floe.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const sql = async (text: string): Promise<Record<string, unknown>[]> => {
  const r = await floe.sql(text);
  return r.kind === 'rows' ? r.dataFrame.toJSON() : [];
};

test('MERGE matches BIGINT keys beyond 2^53 (file stats are not rounded into a miss)', async () => {
  const t = `delta.\`${path.join(dir, 'snowflake')}\``;
  await sql(`CREATE TABLE ${t} (id BIGINT, v STRING) USING delta`);
  const ids = ['1790000000000000001', '1790000000000000301', '1790000000000000601', '9007199254740993'];
  for (const id of ids) await sql(`INSERT INTO ${t} VALUES (${id}, 'v1')`); // a file per row
  await sql(`MERGE INTO ${t} t USING (${ids.map((i) => `SELECT CAST(${i} AS BIGINT) AS id, 'v2' AS v`).join(' UNION ALL ')}) s ON t.id = s.id
    WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *`);
  const rows = await sql(`SELECT CAST(id AS STRING) AS id, v FROM ${t} ORDER BY id`);
  assert.deepEqual(rows, [...ids].sort().map((id) => ({ id, v: 'v2' })));
});

test('MERGE on a key column holding the type\'s minimum value', async () => {
  for (const [type, min] of [['INT', '-2147483648'], ['TINYINT', '-128'], ['BIGINT', '-9223372036854775808']]) {
    const t = `delta.\`${path.join(dir, `min-${type}`)}\``;
    await sql(`CREATE TABLE ${t} (id ${type}, v STRING) USING delta`);
    await sql(`INSERT INTO ${t} VALUES (CAST(${min} AS ${type}), 'a1')`);
    await sql(`INSERT INTO ${t} VALUES (CAST(5 AS ${type}), 'b1')`);
    await sql(`MERGE INTO ${t} t USING (SELECT CAST(${min} AS ${type}) AS id, 'a2' AS v UNION ALL SELECT CAST(5 AS ${type}), 'b2') s ON t.id = s.id
      WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *`);
    assert.deepEqual(await sql(`SELECT CAST(id AS STRING) AS id, v FROM ${t} ORDER BY v`), [{ id: min, v: 'a2' }, { id: '5', v: 'b2' }], type);
  }
});

test('a session that read a table sees it deleted and created again at the same path', async () => {
  const p = path.join(dir, 'recreated');
  const other = await Floe.create({ threads: 1 });
  try {
    const t = `delta.\`${p}\``;
    await other.sql(`CREATE TABLE ${t} (id BIGINT, v STRING) USING delta`);
    await other.sql(`INSERT INTO ${t} VALUES (1, 'old'), (2, 'old')`);
    const read = async (): Promise<string> => (await (await floe.read.delta(p)).toJSON()).map((r) => `${String(r.id)}:${String(r.v)}`).sort().join(' ');
    assert.equal(await read(), '1:old 2:old');
    // Another writer (its own session) replaces the log: versions 0..2 again, other files.
    await fs.rm(path.join(p, '_delta_log'), { recursive: true });
    const again = await Floe.create({ threads: 1 });
    try {
      await again.sql(`CREATE TABLE ${t} (id BIGINT, v STRING) USING delta`);
      await again.sql(`INSERT INTO ${t} VALUES (10, 'new')`);
      await again.sql(`INSERT INTO ${t} VALUES (20, 'new')`);
    } finally {
      await again.close();
    }
    assert.equal(await read(), '10:new 20:new');
  } finally {
    await other.close();
  }
});

test('errors: a writer version floe does not write, a data file that is not Parquet', async () => {
  const p = path.join(dir, 'w8');
  await sql(`CREATE TABLE delta.\`${p}\` (id BIGINT) USING delta`);
  await sql(`INSERT INTO delta.\`${p}\` VALUES (1)`);
  await fs.writeFile(path.join(p, '_delta_log', '00000000000000000002.json'), '{"protocol":{"minReaderVersion":1,"minWriterVersion":8}}\n');
  await assert.rejects(sql(`INSERT INTO delta.\`${p}\` VALUES (2)`), (e: Error & { code?: string }) => e.code === 'DELTA_UNSUPPORTED_FEATURES_FOR_WRITE' && /writer version 8/.test(e.message));
  assert.deepEqual(await sql(`SELECT id FROM delta.\`${p}\``), [{ id: '1' }], 'still readable');

  const q = path.join(dir, 'damaged');
  await sql(`CREATE TABLE delta.\`${q}\` (id BIGINT) USING delta`);
  await sql(`INSERT INTO delta.\`${q}\` VALUES (1), (2)`);
  const file = (await fs.readdir(q)).find((f) => f.endsWith('.parquet'))!;
  const bytes = await fs.readFile(path.join(q, file));
  await fs.writeFile(path.join(q, file), bytes.subarray(0, 100));
  const fresh = await Floe.create({ threads: 1 }); // (no cached Parquet metadata)
  try {
    await assert.rejects((await fresh.read.delta(q)).toJSON(), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'DELTA_DATA_FILE_CORRUPT');
      assert.ok(e.message.includes(file), e.message);
      assert.doesNotMatch(e.message, /read_parquet|LINE 1/);
      return true;
    });
  } finally {
    await fresh.close();
  }
});
