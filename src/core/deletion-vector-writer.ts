/**
 * Writing deletion vectors (PROTOCOL.md "Deletion Vector Format"): row indexes serialised as a
 * RoaringBitmapArray (magic, then the 64-bit "portable" Roaring format: one 32-bit bitmap per high
 * key, array containers up to 4096 values, bitmap containers above), framed in a DV file
 * (version byte 1; per DV: big-endian size, bitmap, big-endian CRC-32) named by a UUID that the
 * descriptor carries Z85-encoded (storage type `u`).
 */
import { randomBytes } from 'node:crypto';
import type { DeletionVectorDescriptor } from './actions.js';
import { DV_MAGIC, crc32 } from './deletion-vectors.js';

const Z85_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;

/** ZeroMQ Z85 encoding of bytes whose length is a multiple of 4. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new Error('z85Encode needs a multiple of 4 bytes');
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v = ((bytes[i]! << 24) >>> 0) + (bytes[i + 1]! << 16) + (bytes[i + 2]! << 8) + bytes[i + 3]!;
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85_ALPHABET[v % 85]!);
      v = Math.floor(v / 85);
    }
    out += chunk.join('');
  }
  return out;
}

/** Row indexes sorted ascending with duplicates dropped, as a Float64Array (exact up to 2^53). */
export function sortedDistinctRows(rows: ArrayLike<number>): Float64Array {
  const a = Float64Array.from(rows).sort();
  let n = 0;
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[n - 1]) a[n++] = a[i]!;
  return a.subarray(0, n);
}

/** Serialises row indexes (any order, duplicates allowed) as a RoaringBitmapArray (with the DV magic). */
export function serializeRoaringBitmapArray(rows: ArrayLike<number>): Uint8Array {
  return serializeSortedRows(sortedDistinctRows(rows));
}

/**
 * Serialises row indexes that are already sorted ascending and distinct (e.g. ordered by DuckDB) as
 * a RoaringBitmapArray: one pass over a typed array, no per-row objects. Array containers hold up to
 * 4096 values (little-endian uint16), bitmap containers above (1024 little-endian uint64 words).
 */
export function serializeSortedRows(sorted: ArrayLike<number>): Uint8Array {
  const n = sorted.length;
  // Bitmaps per high 32 bits: [start, end) ranges of `sorted`.
  const highs: { high: number; start: number; end: number }[] = [];
  for (let i = 0; i < n; ) {
    const high = Math.floor(sorted[i]! / 4294967296);
    let j = i + 1;
    const limit = (high + 1) * 4294967296;
    while (j < n && sorted[j]! < limit) j++;
    highs.push({ high, start: i, end: j });
    i = j;
  }
  // Sizes first, then one buffer written in place.
  type Container = { key: number; start: number; end: number };
  const plans = highs.map((h) => {
    const containers: Container[] = [];
    const base = h.high * 4294967296;
    for (let i = h.start; i < h.end; ) {
      const key = Math.floor((sorted[i]! - base) / 65536);
      const limit = base + (key + 1) * 65536;
      let j = i + 1;
      while (j < h.end && sorted[j]! < limit) j++;
      containers.push({ key, start: i, end: j });
      i = j;
    }
    const bodyLen = containers.reduce((s, c) => s + (c.end - c.start <= 4096 ? (c.end - c.start) * 2 : 8192), 0);
    return { ...h, base, containers, headLen: 12 + containers.length * 8, bodyLen };
  });
  const total = 12 + plans.reduce((s, p) => s + p.headLen + p.bodyLen, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, DV_MAGIC, true);
  view.setBigUint64(4, BigInt(plans.length), true);
  let o = 12;
  for (const p of plans) {
    const start = o;
    const m = p.containers.length;
    // high key, cookie, container count, per-container (key, cardinality-1), offsets, bodies
    view.setUint32(o, p.high, true);
    view.setUint32(o + 4, SERIAL_COOKIE_NO_RUNCONTAINER, true);
    view.setUint32(o + 8, m, true);
    let off = p.headLen - 4; // offsets are relative to the start of the 32-bit bitmap (after the high key)
    for (let i = 0; i < m; i++) {
      const c = p.containers[i]!;
      view.setUint16(o + 12 + i * 4, c.key, true);
      view.setUint16(o + 14 + i * 4, c.end - c.start - 1, true);
      view.setUint32(o + 12 + m * 4 + i * 4, off, true);
      off += c.end - c.start <= 4096 ? (c.end - c.start) * 2 : 8192;
    }
    o = start + p.headLen;
    for (const c of p.containers) {
      const low = p.base + c.key * 65536;
      if (c.end - c.start <= 4096) {
        for (let i = c.start; i < c.end; i++, o += 2) view.setUint16(o, sorted[i]! - low, true);
      } else {
        // Bit v of the bitmap is bit (v & 63) of little-endian word v >> 6: byte v >> 3, bit v & 7.
        for (let i = c.start; i < c.end; i++) {
          const v = sorted[i]! - low;
          out[o + (v >>> 3)]! |= 1 << (v & 7);
        }
        o += 8192;
      }
    }
  }
  return out;
}

/** Set bits per byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
});

/**
 * As serializeSortedRows, for row indexes given as a bitset (row v is bit v & 7 of byte v >> 3,
 * rows below 2^32): the same bytes, with no per-row work for dense containers. Roaring's bitmap
 * container (1024 little-endian 64-bit words, bit v & 63 of word v >> 6) has the bitset's layout, so
 * those 8 KB are copied as they are; array containers take the set bits in order.
 */
export function serializeBitsetRows(bits: Uint8Array): { bytes: Uint8Array; cardinality: number } {
  if (bits.length > 2 ** 29) throw new RangeError('serializeBitsetRows: rows must be below 2^32');
  const keys: number[] = [];
  const cards: number[] = [];
  let cardinality = 0;
  for (let k = 0; k * 8192 < bits.length; k++) {
    const end = Math.min(bits.length, (k + 1) * 8192);
    let c = 0;
    for (let i = k * 8192; i < end; i++) c += POPCOUNT[bits[i]!]!;
    if (c) {
      keys.push(k);
      cards.push(c);
      cardinality += c;
    }
  }
  const m = keys.length;
  const headLen = 12 + m * 8;
  const bodyLen = cards.reduce((n, c) => n + (c <= 4096 ? c * 2 : 8192), 0);
  const out = new Uint8Array(12 + (m ? headLen + bodyLen : 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, DV_MAGIC, true);
  view.setBigUint64(4, BigInt(m ? 1 : 0), true);
  if (!m) return { bytes: out, cardinality };
  // One 32-bit bitmap (high key 0): cookie, container count, (key, cardinality - 1) pairs, offsets
  // (relative to the start of the 32-bit bitmap, after its high key), then the containers.
  view.setUint32(12, 0, true);
  view.setUint32(16, SERIAL_COOKIE_NO_RUNCONTAINER, true);
  view.setUint32(20, m, true);
  let off = headLen - 4;
  for (let i = 0; i < m; i++) {
    view.setUint16(24 + i * 4, keys[i]!, true);
    view.setUint16(26 + i * 4, cards[i]! - 1, true);
    view.setUint32(24 + m * 4 + i * 4, off, true);
    off += cards[i]! <= 4096 ? cards[i]! * 2 : 8192;
  }
  let o = 12 + headLen;
  for (let i = 0; i < m; i++) {
    const from = keys[i]! * 8192;
    const end = Math.min(bits.length, from + 8192);
    if (cards[i]! > 4096) {
      out.set(bits.subarray(from, end), o); // a short last chunk: the rest stays zero
      o += 8192;
      continue;
    }
    for (let b = from; b < end; b++) {
      let x = bits[b]!;
      while (x) {
        const low = x & -x;
        view.setUint16(o, (b - from) * 8 + (31 - Math.clz32(low)), true);
        o += 2;
        x ^= low;
      }
    }
  }
  return { bytes: out, cardinality };
}

/** As buildDeletionVectorFile, for row indexes given as a bitset (see serializeBitsetRows). */
export function buildDeletionVectorFileFromBitset(bits: Uint8Array): { relativePath: string; bytes: Uint8Array; descriptor: DeletionVectorDescriptor } {
  const { bytes, cardinality } = serializeBitsetRows(bits);
  return dvFile(bytes, cardinality);
}

/** A new DV file holding one deletion vector, and its descriptor (offset 1, after the version byte). */
export function buildDeletionVectorFile(rows: ArrayLike<number>): { relativePath: string; bytes: Uint8Array; descriptor: DeletionVectorDescriptor } {
  return buildDeletionVectorFileSorted(sortedDistinctRows(rows));
}

/** As buildDeletionVectorFile, for row indexes already sorted ascending and distinct. */
export function buildDeletionVectorFileSorted(sorted: ArrayLike<number>): { relativePath: string; bytes: Uint8Array; descriptor: DeletionVectorDescriptor } {
  return dvFile(serializeSortedRows(sorted), sorted.length);
}

function dvFile(bitmap: Uint8Array, cardinality: number): { relativePath: string; bytes: Uint8Array; descriptor: DeletionVectorDescriptor } {
  const uuid = randomBytes(16);
  uuid[6] = (uuid[6]! & 0x0f) | 0x40;
  uuid[8] = (uuid[8]! & 0x3f) | 0x80;
  const hex = Buffer.from(uuid).toString('hex');
  const dashed = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const file = new Uint8Array(1 + 4 + bitmap.length + 4);
  const view = new DataView(file.buffer);
  file[0] = 1;
  view.setUint32(1, bitmap.length, false);
  file.set(bitmap, 5);
  view.setUint32(5 + bitmap.length, crc32(bitmap), false);
  return {
    relativePath: `deletion_vector_${dashed}.bin`,
    bytes: file,
    descriptor: { storageType: 'u', pathOrInlineDv: z85Encode(uuid), offset: 1, sizeInBytes: bitmap.length, cardinality },
  };
}
