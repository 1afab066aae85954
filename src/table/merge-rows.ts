/**
 * The target rows a MERGE with deletion vectors marks deleted, gathered in one unsorted read: per
 * file, a bitmap of the rows matched by a source row (a row matched twice is seen there, so the
 * duplicate-match check needs no GROUP BY) and one of the changed rows, whose set bits are the
 * sorted row numbers a deletion vector serialises (no ORDER BY in DuckDB, no sort in JS).
 */
import type { AddFile } from '../core/actions.js';
import { loadDeletionVector } from '../core/deletion-vectors.js';
import { buildDeletionVectorFileFromBitset, buildDeletionVectorFileSorted, sortedDistinctRows } from '../core/deletion-vector-writer.js';
import type { DeltaLog } from '../core/delta-log.js';
import { dataFilePath } from '../engine/scan.js';
import type { Floe } from '../floe.js';
import { writeDvFiles } from './dml.js';

/** Row numbers per bitmap at most (a file with more rows takes the SQL path). */
const MAX_ROWS = 2 ** 31;

/**
 * `rowsSql` yields `f` (a file's index in the scan), `r` (its row number), `m` (the row was matched
 * by a source row) and `c` (a clause changes it), one row per (target row, source row) pair plus the
 * unmatched target rows a clause changes. Returns the changed rows of each file as a bitset (row v
 * is bit v & 7 of byte v >> 3), or null when some target row was matched by more than one source row (the caller then
 * runs its grouping, which tells whether that is an error) or a row number is out of range.
 */
export async function changedRowsByFile(floe: Floe, rowsSql: string, files: number, rowsHint: (k: number) => number | undefined = () => undefined): Promise<Map<number, Uint8Array> | null> {
  if (files >= 2 ** 20) return null;
  // One number per row (one column to hand over): ((file * 4 + flags) * 2^31 + row), exact below 2^53.
  const rowsOut = `CASE WHEN r >= 0 AND r < ${MAX_ROWS} THEN r ELSE NULL END`;
  const [packed] = (await floe.engine.numericColumns(`SELECT ((f::BIGINT * 4 + m::BIGINT * 2 + c::BIGINT) * ${MAX_ROWS} + ${rowsOut})::DOUBLE AS p FROM (${rowsSql})`)) as [Float64Array];
  // Bitsets sized by the file's row count when known, grown (doubled) when a row lies beyond.
  const matched: (Uint8Array | undefined)[] = [];
  const changed: (Uint8Array | undefined)[] = [];
  const fit = (bits: Uint8Array | undefined, k: number, byte: number): Uint8Array => {
    if (bits && byte < bits.length) return bits;
    const hint = rowsHint(k);
    const grown = new Uint8Array(Math.max(byte + 1, bits ? bits.length * 2 : hint !== undefined && hint > 0 ? Math.min((hint + 7) >>> 3, MAX_ROWS / 8) : 1024));
    if (bits) grown.set(bits);
    return grown;
  };
  const inv = 1 / MAX_ROWS; // a power of two: p * inv is exact
  for (let i = 0, len = packed.length; i < len; i++) {
    const p = packed[i]!;
    if (p !== p) return null; // NaN: a row number out of range
    const hi = Math.floor(p * inv);
    const x = p - hi * MAX_ROWS;
    const k = hi >>> 2;
    if (k >= files) return null;
    const byte = x >>> 3;
    const bit = 1 << (x & 7);
    if (hi & 2) {
      let seen = matched[k];
      if (seen === undefined || byte >= seen.length) seen = matched[k] = fit(seen, k, byte);
      const v = seen[byte]!;
      if (v & bit) return null;
      seen[byte] = v | bit;
    }
    if (hi & 1) {
      let ch = changed[k];
      if (ch === undefined || byte >= ch.length) ch = changed[k] = fit(ch, k, byte);
      ch[byte] = ch[byte]! | bit;
    }
  }
  const out = new Map<number, Uint8Array>();
  changed.forEach((bits, k) => {
    if (bits) out.set(k, bits);
  });
  return out;
}

/**
 * Deletion vectors for the touched files from their changed rows (bitsets by file index in
 * `paths`), united with each file's old DV: as dml.ts's writeDeletionVectors, for rows already
 * grouped (serialised from the bitsets: no sort, dense containers copied). Returns the files to re-add (a file whose every row is gone is just removed) and
 * the DV files written; on failure removes those written.
 */
export async function writeDeletionVectorsFor(log: DeltaLog, removed: AddFile[], paths: string[], rowsOf: Map<number, Uint8Array>): Promise<{ readded: AddFile[]; written: string[] }> {
  const idOf = new Map(paths.map((p, i) => [p, i]));
  return writeDvFiles(log, removed, async (f) => {
    let bits = rowsOf.get(idOf.get(dataFilePath(log.store, f.path)) ?? -1) ?? new Uint8Array(0);
    if (f.deletionVector) {
      const old = await loadDeletionVector(log.store, f.deletionVector);
      const top = old.reduce((a, b) => Math.max(a, b), -1);
      if (top >= MAX_ROWS) {
        // An old DV beyond the bitsets' range: united as sorted row numbers.
        const mine: number[] = [];
        bits.forEach((b, i) => {
          for (let x = b; x; x &= x - 1) mine.push(i * 8 + (31 - Math.clz32(x & -x)));
        });
        return buildDeletionVectorFileSorted(sortedDistinctRows([...mine, ...old]));
      }
      const grown = new Uint8Array(Math.max(bits.length, (top >>> 3) + 1));
      grown.set(bits);
      for (const x of old) grown[x >>> 3] = grown[x >>> 3]! | (1 << (x & 7));
      bits = grown;
    }
    return buildDeletionVectorFileFromBitset(bits);
  });
}
