/** OPTIMIZE (bin-packing): the files it writes follow its targetFileSize option, not only the table's size. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Floe } from '../floe.js';
import { DeltaTable } from '../table/delta-table.js';
import { tempDir } from './helpers.js';
import { assertValidTable } from './protocol-checker.js';

test('OPTIMIZE writes files of its targetFileSize option', async () => {
  const floe = await Floe.create({ threads: 2 });
  try {
    const p = path.join(await tempDir('floe-optimize-'), 't');
    for (let i = 0; i < 12; i++) {
      const df = floe.duckdbSql(`SELECT range + ${i * 20000} AS id, md5(CAST(range + ${i} AS VARCHAR)) AS s FROM range(20000)`);
      await df.write.delta(p, { mode: i ? 'append' : 'error' });
    }
    const before = await floe.deltaLog(p).snapshot();
    const small = Math.max(...before.files.map((f) => f.size));
    const total = before.files.reduce((n, f) => n + f.size, 0);
    // Every file is under 3/4 of the target, so all are compacted, into several files near the target
    // (DuckDB rotates files at row-group boundaries, so at least two here; one with the table's 128 MB).
    const target = Math.max(Math.ceil(total / 4), Math.ceil(small * 1.5));
    const r = await (await DeltaTable.forPath(floe, p)).optimize({ targetFileSize: target });
    const after = await floe.deltaLog(p).snapshot();
    assert.equal(r.metrics.numFilesRemoved, 12);
    assert.ok(after.files.length >= 2 && after.files.length < 12, `${after.files.length} files of ~${target} bytes from ${total} bytes`);
    assert.equal(Number(r.metrics.numFilesAdded), after.files.length);
    assert.equal(await (await floe.read.delta(p)).count(), 240000);
    await assertValidTable(p);
  } finally {
    await floe.close();
  }
});
