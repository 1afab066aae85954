/**
 * The target rows a MERGE with deletion vectors marks deleted, gathered in one unsorted read: per
 * file, a bitmap of the rows matched by a source row (a row matched twice is seen there, so the
 * duplicate-match check needs no GROUP BY) and one of the changed rows, whose set bits are the
 * sorted row numbers a deletion vector serialises (no ORDER BY in DuckDB, no sort in JS).
 */
import { type AddFile, parseStats } from '../core/actions.js';
import { loadDeletionVector } from '../core/deletion-vectors.js';
import { buildDeletionVectorFileSorted, sortedDistinctRows } from '../core/deletion-vector-writer.js';
import { type DeltaLog, mapLimit } from '../core/delta-log.js';
import { dataFilePath } from '../engine/scan.js';
import type { Floe } from '../floe.js';

/** Row numbers per bitmap at most (a file with more rows takes the SQL path). */
const MAX_ROWS = 2 ** 31;

/**
 * `rowsSql` yields `f` (a file's index in the scan), `r` (its row number), `m` (the row was matched
 * by a source row) and `c` (a clause changes it), one row per (target row, source row) pair plus the
 * unmatched target rows a clause changes. Returns the changed rows of each file, sorted and
 * distinct, or null when some target row was matched by more than one source row (the caller then
 * runs its grouping, which tells whether that is an error) or a row number is out of range.
 */
export async function changedRowsByFile(floe: Floe, rowsSql: string, files: number): Promise<Map<number, Float64Array> | null> {
  if (files >= 2 ** 20) return null;
  // One number per row (one column to hand over): ((file * 4 + flags) * 2^31 + row), exact below 2^53.
  const rowsOut = `CASE WHEN r >= 0 AND r < ${MAX_ROWS} THEN r ELSE NULL END`;
  const [packed] = (await floe.engine.numericColumns(`SELECT ((f::BIGINT * 4 + m::BIGINT * 2 + c::BIGINT) * ${MAX_ROWS} + ${rowsOut})::DOUBLE AS p FROM (${rowsSql})`)) as [Float64Array];
  const n = packed.length;
  const f = new Uint32Array(n);
  const r = new Uint32Array(n);
  const mc = new Uint8Array(n);
  const max = new Float64Array(files).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = packed[i]!;
    if (Number.isNaN(p)) return null; // a row number out of range
    const hi = Math.floor(p / MAX_ROWS);
    const x = p - hi * MAX_ROWS;
    const k = hi >>> 2;
    if (k >= files) return null;
    f[i] = k;
    r[i] = x;
    mc[i] = hi & 3;
    if (x > max[k]!) max[k] = x;
  }
  const matched: (Uint8Array | undefined)[] = [];
  const changed: (Uint8Array | undefined)[] = [];
  const counts = new Float64Array(files);
  for (let i = 0; i < n; i++) {
    const k = f[i]!;
    const x = r[i]!;
    const byte = x >>> 3;
    const bit = 1 << (x & 7);
    const flags = mc[i]!;
    if (flags & 2) {
      const seen = (matched[k] ??= new Uint8Array((max[k]! >>> 3) + 1));
      if (seen[byte]! & bit) return null;
      seen[byte] = seen[byte]! | bit;
    }
    if (flags & 1) {
      const ch = (changed[k] ??= new Uint8Array((max[k]! >>> 3) + 1));
      if (!(ch[byte]! & bit)) counts[k] = counts[k]! + 1;
      ch[byte] = ch[byte]! | bit;
    }
  }
  const out = new Map<number, Float64Array>();
  changed.forEach((bits, k) => {
    if (!bits) return;
    const rows = new Float64Array(counts[k]!);
    let at = 0;
    for (let byte = 0; byte < bits.length; byte++) {
      let b = bits[byte]!;
      while (b) {
        const low = b & -b;
        rows[at++] = byte * 8 + (31 - Math.clz32(low));
        b ^= low;
      }
    }
    out.set(k, rows);
  });
  return out;
}

/** A file's stats once a DV hides some of its rows: min/max no longer tight (PROTOCOL.md "Per-file Statistics"). */
function looseBounds(stats: string | null | undefined): string | null {
  const st = parseStats(stats);
  if (!st) return stats ?? null;
  return JSON.stringify({ ...st, tightBounds: false });
}

/** Union of two sorted, distinct row-number arrays (sorted, distinct). */
function unionSorted(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    const x = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i++]! : b[j++]!;
    if (n === 0 || out[n - 1] !== x) out[n++] = x;
  }
  return out.subarray(0, n);
}

/**
 * Deletion vectors for the touched files from their changed rows (sorted and distinct, by file
 * index in `paths`), united with each file's old DV: as dml.ts's writeDeletionVectors, for rows
 * already grouped. Returns the files to re-add (a file whose every row is gone is just removed) and
 * the DV files written; on failure removes those written.
 */
export async function writeDeletionVectorsFor(log: DeltaLog, removed: AddFile[], paths: string[], rowsOf: Map<number, Float64Array>): Promise<{ readded: AddFile[]; written: string[] }> {
  const idOf = new Map(paths.map((p, i) => [p, i]));
  const written: string[] = [];
  try {
    const out = await mapLimit(removed, 8, async (f) => {
      let rows = rowsOf.get(idOf.get(dataFilePath(log.store, f.path)) ?? -1) ?? new Float64Array(0);
      if (f.deletionVector) rows = unionSorted(rows, sortedDistinctRows(await loadDeletionVector(log.store, f.deletionVector)));
      const total = parseStats(f.stats)?.numRecords;
      if (total !== undefined && rows.length >= total) return null; // every row gone: just remove the file
      const dvf = buildDeletionVectorFileSorted(rows);
      await log.store.putIfAbsent(dvf.relativePath, dvf.bytes);
      written.push(dvf.relativePath);
      return { ...f, dataChange: true, deletionVector: dvf.descriptor, stats: looseBounds(f.stats) } as AddFile;
    });
    return { readded: out.filter((x): x is AddFile => x !== null), written };
  } catch (e) {
    await Promise.all(written.map((p) => log.store.delete(p).catch(() => undefined)));
    throw e;
  }
}
