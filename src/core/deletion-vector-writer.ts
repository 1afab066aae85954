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

/** Serialises sorted, distinct row indexes as a RoaringBitmapArray (with the DV magic). */
export function serializeRoaringBitmapArray(rows: number[]): Uint8Array {
  const sorted = [...new Set(rows)].sort((a, b) => a - b);
  // Group by the high 32 bits, then by the high 16 bits of the low 32.
  const buckets = new Map<number, Map<number, number[]>>();
  for (const r of sorted) {
    const high = Math.floor(r / 2 ** 32);
    const low = r - high * 2 ** 32;
    const key = low >>> 16;
    let b = buckets.get(high);
    if (!b) buckets.set(high, (b = new Map()));
    let c = b.get(key);
    if (!c) b.set(key, (c = []));
    c.push(low & 0xffff);
  }
  const parts: Uint8Array[] = [];
  const header = new DataView(new ArrayBuffer(12));
  header.setUint32(0, DV_MAGIC, true);
  header.setBigUint64(4, BigInt(buckets.size), true);
  parts.push(new Uint8Array(header.buffer));
  for (const [high, containers] of [...buckets.entries()].sort((a, b) => a[0] - b[0])) {
    const keys = [...containers.keys()].sort((a, b) => a - b);
    const n = keys.length;
    const bodies = keys.map((k) => {
      const vals = containers.get(k)!;
      if (vals.length <= 4096) {
        const body = new DataView(new ArrayBuffer(vals.length * 2));
        vals.forEach((v, i) => body.setUint16(i * 2, v, true));
        return new Uint8Array(body.buffer);
      }
      const words = new BigUint64Array(1024);
      for (const v of vals) words[v >>> 6]! |= 1n << BigInt(v & 63);
      const body = new DataView(new ArrayBuffer(8192));
      words.forEach((w, i) => body.setBigUint64(i * 8, w, true));
      return new Uint8Array(body.buffer);
    });
    // high key, cookie, container count, per-container (key, cardinality-1), offsets, bodies
    const headLen = 4 + 4 + 4 + n * 4 + n * 4;
    const head = new DataView(new ArrayBuffer(headLen));
    head.setUint32(0, high, true);
    head.setUint32(4, SERIAL_COOKIE_NO_RUNCONTAINER, true);
    head.setUint32(8, n, true);
    let off = headLen - 4; // offsets are relative to the start of the 32-bit bitmap (after the high key)
    keys.forEach((k, i) => {
      head.setUint16(12 + i * 4, k, true);
      head.setUint16(14 + i * 4, containers.get(k)!.length - 1, true);
    });
    keys.forEach((_, i) => {
      head.setUint32(12 + n * 4 + i * 4, off, true);
      off += bodies[i]!.length;
    });
    parts.push(new Uint8Array(head.buffer), ...bodies);
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A new DV file holding one deletion vector, and its descriptor (offset 1, after the version byte). */
export function buildDeletionVectorFile(rows: number[]): { relativePath: string; bytes: Uint8Array; descriptor: DeletionVectorDescriptor } {
  const bitmap = serializeRoaringBitmapArray(rows);
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
  const cardinality = new Set(rows).size;
  return {
    relativePath: `deletion_vector_${dashed}.bin`,
    bytes: file,
    descriptor: { storageType: 'u', pathOrInlineDv: z85Encode(uuid), offset: 1, sizeInBytes: bitmap.length, cardinality },
  };
}
