/**
 * Partitioned writes: DuckDB writes one file per partition per COPY, so files far over the target
 * size are split into files of the target size (each in its partition folder, with exact stats and
 * partition values), on plain and id-mapped tables; small partitions keep one file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseStats } from '../core/actions.js';
import { Floe } from '../floe.js';
import { tempDir } from './helpers.js';
import { assertValidTable } from './protocol-checker.js';

const MB = 1024 * 1024;

for (const mapping of ['none', 'id'] as const) {
  test(`a partition far over delta.targetFileSize is split into several files (column mapping ${mapping})`, async () => {
    const floe = await Floe.create({ threads: 2 });
    try {
      const p = path.join(await tempDir('floe-partwrite-'), 't');
      // Partition 'big': 400k rows of incompressible strings (several MB); partition 'small': 100 rows.
      const df = floe.duckdbSql(`SELECT range AS id, md5(CAST(range AS VARCHAR)) AS s, CASE WHEN range < 400000 THEN 'big' ELSE 'small' END AS part FROM range(400100)`);
      await df.write.delta(p, { partitionBy: ['part'], properties: { 'delta.targetFileSize': String(MB), ...(mapping === 'id' ? { 'delta.columnMapping.mode': 'id' } : {}) } });
      const snap = await floe.deltaLog(p).snapshot();
      const partKey = snap.metadata.partitionColumns[0]!;
      const physical = mapping === 'id' ? String(snap.schema.fields.find((f) => f.name === 'part')!.metadata['delta.columnMapping.physicalName']) : 'part';
      const big = snap.files.filter((f) => f.partitionValues[physical] === 'big');
      const small = snap.files.filter((f) => f.partitionValues[physical] === 'small');
      assert.equal(partKey, 'part');
      assert.ok(big.length >= 6, `the big partition has ${big.length} file(s)`);
      assert.equal(small.length, 1);
      for (const f of big) {
        assert.ok(f.size < 2 * MB, `a split file of ${f.size} bytes`);
        assert.match(decodeURIComponent(f.path), /^[^/]+=big\/[^/]+\.parquet$/, 'in the partition folder');
        await fs.access(path.join(p, decodeURIComponent(f.path)));
      }
      assert.equal(big.reduce((n, f) => n + Number(parseStats(f.stats)!.numRecords), 0), 400_000);
      const agg = await floe.engine.allJson(`SELECT count(*) AS n, sum(id) AS s, count(DISTINCT part) AS parts FROM (${await (await floe.read.delta(p)).toSQL()})`);
      assert.deepEqual(agg, [{ n: '400100', s: String((400100 * 400099) / 2), parts: '2' }]);
      // The partition folder holds exactly the files the log names (the oversize original is gone).
      const onDisk = (await fs.readdir(path.join(p, decodeURIComponent(big[0]!.path).split('/')[0]!))).filter((n) => n.endsWith('.parquet'));
      assert.equal(onDisk.length, big.length);
      await assertValidTable(p);
    } finally {
      await floe.close();
    }
  });
}
