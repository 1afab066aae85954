/**
 * Deletion vectors (PROTOCOL.md "Deletion Vectors" and appendix "Deletion Vector Format"): decoding the
 * descriptor's location, reading the DV file framing, and parsing the RoaringBitmapArray into the sorted
 * row indexes a reader must skip. Pure apart from the reads in `loadDeletionVector`.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DeletionVectorDescriptor } from './actions.js';
import { CorruptLogError, FloeError, ObjectNotFoundError } from '../errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { tableKeyOf } from '../storage/paths.js';

/** Magic number that starts every serialized DV bitmap ("Deletion Vector Format"), little endian. */
export const DV_MAGIC = 1681511377;
/** Magic number of Delta Spark's "native" RoaringBitmapArray serialization (seen in inline DVs). */
const DV_MAGIC_NATIVE = 1681511376;

// ---------------------------------------------------------------------------------------------- Z85

const Z85_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < Z85_ALPHABET.length; i++) Z85_VALUE[Z85_ALPHABET.charCodeAt(i)] = i;

/**
 * Decodes ZeroMQ Z85 (rfc.zeromq.org/spec/32), the base85 variant Delta uses for DV UUIDs and inline DVs.
 * Every 5 characters give 4 bytes, most significant first. Throws CorruptLogError on a length that is
 * not a multiple of 5, a character outside the alphabet, or a group above 2^32 - 1.
 */
export function z85Decode(s: string): Uint8Array {
  if (s.length % 5 !== 0) throw new CorruptLogError(`Invalid Z85 string: length ${s.length} is not a multiple of 5`);
  const out = new Uint8Array((s.length / 5) * 4);
  for (let i = 0, o = 0; i < s.length; i += 5, o += 4) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const c = s.charCodeAt(i + j);
      const digit = c < 128 ? Z85_VALUE[c]! : -1;
      if (digit < 0) throw new CorruptLogError(`Invalid Z85 string: character ${JSON.stringify(s[i + j])} at ${i + j}`);
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) throw new CorruptLogError(`Invalid Z85 string: group at ${i} exceeds 32 bits`);
    out[o] = value >>> 24;
    out[o + 1] = (value >>> 16) & 0xff;
    out[o + 2] = (value >>> 8) & 0xff;
    out[o + 3] = value & 0xff;
  }
  return out;
}

// ------------------------------------------------------------------------------------------ paths

function hex(bytes: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * Where an on-disk DV lives.
 * - `u`: `pathOrInlineDv` is `<random prefix><20-char Z85 UUID>`; returns the store key, relative to the
 *   table root, `<prefix>/deletion_vector_<uuid>.bin` (`deletion_vector_<uuid>.bin` without a prefix),
 *   per PROTOCOL.md "Derived Fields" (absolutePath).
 * - `p`: returns the absolute path; `file:` URLs become filesystem paths, other URLs are returned as is.
 * - `i`: throws, inline DVs have no file.
 */
export function dvRelativePath(dv: Pick<DeletionVectorDescriptor, 'storageType' | 'pathOrInlineDv'>): string {
  const p = dv.pathOrInlineDv;
  switch (dv.storageType) {
    case 'u': {
      if (p.length < 20) {
        throw new CorruptLogError(`Invalid deletion vector path ${JSON.stringify(p)}: a 'u' DV needs a 20-character Z85 UUID`);
      }
      const prefix = p.slice(0, p.length - 20);
      const b = z85Decode(p.slice(p.length - 20));
      const uuid = `${hex(b, 0, 4)}-${hex(b, 4, 6)}-${hex(b, 6, 8)}-${hex(b, 8, 10)}-${hex(b, 10, 16)}`;
      const name = `deletion_vector_${uuid}.bin`;
      return prefix.length > 0 ? `${prefix}/${name}` : name;
    }
    case 'p': {
      // "same format as the path field in add/remove actions": a URI, percent-encoded.
      if (/^file:/i.test(p)) {
        try {
          return fileURLToPath(new URL(p));
        } catch (e) {
          throw new CorruptLogError(`Invalid deletion vector path ${JSON.stringify(p)}: ${(e as Error).message}`, {}, { cause: e });
        }
      }
      if (/^[a-z][a-z0-9+.-]+:/i.test(p)) return p; // another scheme (s3:, abfss:, ...): left to the caller
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    }
    case 'i':
      throw new FloeError('FLOE_INVALID_ARGUMENT', 'An inline deletion vector (storageType "i") has no file path');
    default:
      throw new CorruptLogError(`Unknown deletion vector storageType ${JSON.stringify((dv as { storageType: unknown }).storageType)}`);
  }
}

// --------------------------------------------------------------------------------------- roaring

const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;
const SERIAL_COOKIE = 12347;
const NO_OFFSET_THRESHOLD = 4;
const ARRAY_MAX_CARDINALITY = 4096;

/** Little-endian cursor over a byte array that throws CorruptLogError when reading past the end. */
class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.bytes.length) {
      throw new CorruptLogError(`Truncated deletion vector bitmap: ${what} needs ${n} bytes at offset ${this.pos}, only ${this.bytes.length - this.pos} left`);
    }
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi >= 0x200000) throw new CorruptLogError(`Deletion vector bitmap: ${what} ${hi * 2 ** 32 + lo} is out of range`);
    return hi * 2 ** 32 + lo;
  }
}

/**
 * Parses one 32-bit RoaringBitmap in the portable format (github.com/RoaringBitmap/RoaringFormatSpec),
 * appending `base + value` for every value, ascending.
 */
function parseRoaring32(r: Reader, base: number, out: number[]): void {
  const cookie = r.u32('cookie');
  let size: number;
  let runFlags: Uint8Array | null = null;
  if ((cookie & 0xffff) === SERIAL_COOKIE) {
    size = (cookie >>> 16) + 1;
    const n = (size + 7) >>> 3;
    r.need(n, 'run-container bitset');
    runFlags = r.bytes.subarray(r.pos, r.pos + n);
    r.pos += n;
  } else if (cookie === SERIAL_COOKIE_NO_RUNCONTAINER) {
    size = r.u32('container count');
  } else {
    throw new CorruptLogError(`Deletion vector bitmap: unknown RoaringBitmap cookie ${cookie}`);
  }
  if (size > 65536) throw new CorruptLogError(`Deletion vector bitmap: ${size} containers (at most 65536)`);
  r.need(size * 4, 'container headers');
  const keys: number[] = [];
  const cards: number[] = [];
  for (let i = 0; i < size; i++) {
    const key = r.u16('container key');
    if (i > 0 && key <= keys[i - 1]!) throw new CorruptLogError('Deletion vector bitmap: container keys are not ascending');
    keys.push(key);
    cards.push(r.u16('container cardinality') + 1);
  }
  // The offset header is present unless the run cookie is used with fewer than 4 containers.
  if (runFlags === null || size >= NO_OFFSET_THRESHOLD) {
    r.need(size * 4, 'container offsets');
    r.pos += size * 4;
  }
  for (let i = 0; i < size; i++) {
    const high = base + keys[i]! * 65536;
    const start = out.length;
    if (runFlags !== null && (runFlags[i >>> 3]! & (1 << (i & 7))) !== 0) {
      const runs = r.u16('run count');
      r.need(runs * 4, 'runs');
      let prevEnd = -1;
      for (let k = 0; k < runs; k++) {
        const from = r.u16('run start');
        const last = from + r.u16('run length');
        if (from <= prevEnd || last > 0xffff) throw new CorruptLogError('Deletion vector bitmap: malformed run container');
        for (let v = from; v <= last; v++) out.push(high + v);
        prevEnd = last;
      }
    } else if (cards[i]! <= ARRAY_MAX_CARDINALITY) {
      r.need(cards[i]! * 2, 'array container');
      let prev = -1;
      for (let k = 0; k < cards[i]!; k++) {
        const v = r.u16('array value');
        if (v <= prev) throw new CorruptLogError('Deletion vector bitmap: array container values are not ascending');
        out.push(high + v);
        prev = v;
      }
    } else {
      r.need(8192, 'bitmap container');
      for (let w = 0; w < 2048; w++) {
        let word = r.u32('bitmap word');
        while (word !== 0) {
          const bit = 31 - Math.clz32(word & -word);
          out.push(high + w * 32 + bit);
          word &= word - 1;
        }
      }
    }
    if (out.length - start !== cards[i]) {
      throw new CorruptLogError(`Deletion vector bitmap: container ${keys[i]} holds ${out.length - start} values, its header says ${cards[i]}`);
    }
  }
}

/**
 * Parses a DV bitmap ("Deletion Vector Format"): the 4-byte little-endian magic 1681511377, then a 64-bit
 * RoaringBitmap in the portable format (uint64 bucket count; per bucket a uint32 high key and a portable
 * 32-bit RoaringBitmap with array, bitmap and run containers). Returns the row indexes, ascending.
 *
 * Also accepts Delta Spark's "native" RoaringBitmapArray format (magic 1681511376: int32 bitmap count,
 * then per bitmap an int32 byte size and a 32-bit RoaringBitmap whose high key is its index), which
 * Spark can write for inline DVs; its header is little endian from Spark and big endian in PROTOCOL.md's
 * "JSON Example 3 — Inline", so both byte orders are read.
 * Throws CorruptLogError on another magic, truncation, trailing bytes or malformed containers.
 */
export function parseRoaringBitmapArray(bytes: Uint8Array): number[] {
  const r = new Reader(bytes);
  const magic = r.u32('magic number');
  const out: number[] = [];
  if (magic === DV_MAGIC) {
    const buckets = r.u64('bucket count');
    let prevKey = -1;
    for (let b = 0; b < buckets; b++) {
      const key = r.u32('bucket key');
      if (key <= prevKey) throw new CorruptLogError('Deletion vector bitmap: bucket keys are not ascending');
      // Row indexes are returned as JS numbers: the high key must keep them below 2^53.
      if (key >= 0x200000) throw new CorruptLogError(`Deletion vector bitmap: bucket key ${key} gives row indexes beyond 2^53`);
      parseRoaring32(r, key * 2 ** 32, out);
      prevKey = key;
    }
  } else if (magic === DV_MAGIC_NATIVE || magic === swap32(DV_MAGIC_NATIVE)) {
    const le = magic === DV_MAGIC_NATIVE;
    const int = (what: string): number => (le ? r.u32(what) : swap32(r.u32(what)));
    const count = int('bitmap count');
    if (count >= 0x200000) throw new CorruptLogError(`Deletion vector bitmap: ${count} bitmaps give row indexes beyond 2^53`);
    for (let key = 0; key < count; key++) {
      const size = int('bitmap size');
      const start = r.pos;
      parseRoaring32(r, key * 2 ** 32, out);
      if (r.pos - start !== size) throw new CorruptLogError(`Deletion vector bitmap: bitmap ${key} is ${r.pos - start} bytes, its header says ${size}`);
    }
  } else {
    throw new CorruptLogError(`Deletion vector bitmap: wrong magic number ${magic}, expected ${DV_MAGIC}`);
  }
  if (r.pos !== bytes.length) throw new CorruptLogError(`Deletion vector bitmap: ${bytes.length - r.pos} unexpected trailing bytes`);
  return out;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

// ------------------------------------------------------------------------------------------ CRC-32

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC / zlib polynomial), as used for DV checksums. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ----------------------------------------------------------------------------------------- loading

function isCode(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === code;
}

function missing(file: string, cause: unknown): FloeError {
  return new FloeError(
    'DELTA_DELETION_VECTOR_MISSING',
    `Deletion vector file ${file} does not exist: the table is damaged, or the file was removed by VACUUM while a version that needs it was still being read.`,
    { file },
    { cause },
  );
}

function corrupt(file: string, message: string, cause?: unknown): CorruptLogError {
  return new CorruptLogError(`Deletion vector ${file} is corrupt: ${message}`, { file }, cause === undefined ? undefined : { cause });
}

function parseChecked(bytes: Uint8Array, dv: DeletionVectorDescriptor, where: string): number[] {
  let rows: number[];
  try {
    rows = parseRoaringBitmapArray(bytes);
  } catch (e) {
    if (e instanceof CorruptLogError) throw corrupt(where, e.message.replace(/^\[[A-Z_]+\] /, ''), e);
    throw e;
  }
  if (rows.length !== dv.cardinality) {
    throw corrupt(where, `it holds ${rows.length} row indexes, the log says cardinality ${dv.cardinality}`);
  }
  return rows;
}

/**
 * Reads a deletion vector and returns the deleted row indexes of its data file, ascending.
 * - `i`: Z85-decodes `pathOrInlineDv` (first `sizeInBytes` bytes: the magic and the bitmap, no framing).
 * - `u`: reads `<table>/<prefix>/deletion_vector_<uuid>.bin` through `store`.
 * - `p`: reads the absolute (local) file with node:fs, or a URL under the table's root through `store`.
 * On-disk DVs ("Deletion Vector File Storage Format") are, at `offset` (default 1, after the version
 * byte), a big-endian uint32 dataSize, dataSize bytes of bitmap, and a big-endian CRC-32 of the bitmap.
 * Throws CorruptLogError (naming the file) on a bad version, size, CRC, bitmap or cardinality, and a
 * FloeError `DELTA_DELETION_VECTOR_MISSING` when the file does not exist.
 */
/** The table key an absolute DV path names, or null when it lies outside the table (or its scheme is unknown). */
function keyInTable(store: ObjectStore, location: string): string | null {
  try {
    return tableKeyOf(store, location);
  } catch {
    return null;
  }
}

export async function loadDeletionVector(store: ObjectStore, dv: DeletionVectorDescriptor): Promise<number[]> {
  if (dv.storageType === 'i') {
    const where = `(inline) ${JSON.stringify(dv.pathOrInlineDv)}`;
    let bytes: Uint8Array;
    try {
      bytes = z85Decode(dv.pathOrInlineDv);
    } catch (e) {
      throw corrupt(where, (e as Error).message.replace(/^\[[A-Z_]+\] /, ''), e);
    }
    // Z85 works in 4-byte groups; writers pad the bitmap and record its true size in sizeInBytes.
    if (dv.sizeInBytes > bytes.length) throw corrupt(where, `sizeInBytes ${dv.sizeInBytes} exceeds the ${bytes.length} decoded bytes`);
    return parseChecked(bytes.subarray(0, dv.sizeInBytes), dv, where);
  }

  const location = dvRelativePath(dv);
  // PROTOCOL.md says to read an absent offset as 0, but byte 0 is the format version; kernel-rs and
  // Spark start after it, and every writer records the offset anyway.
  const offset = dv.offset ?? 1;
  if (!Number.isSafeInteger(offset) || offset < 1 || !Number.isSafeInteger(dv.sizeInBytes) || dv.sizeInBytes < 4) {
    throw new CorruptLogError(`Invalid deletion vector descriptor for ${location}: offset ${dv.offset}, sizeInBytes ${dv.sizeInBytes}`);
  }
  const end = offset + 4 + dv.sizeInBytes + 4;
  let file: string;
  let read: (start: number, stop: number) => Promise<Uint8Array>;
  // 'u': a key in the table. 'p': an absolute path or URI; one inside the table's own location
  // (either URI form, local or cloud: storage/paths.ts) is read through the table's store.
  const key = dv.storageType === 'u' ? location : keyInTable(store, location);
  if (key !== null) {
    file = store.localPath(key) ?? (dv.storageType === 'u' ? `${store.root.replace(/\/+$/, '')}/${key}` : location);
    read = async (start, stop) => {
      try {
        return await store.getRange(key, start, stop);
      } catch (e) {
        if (e instanceof ObjectNotFoundError) throw missing(file, e);
        throw e;
      }
    };
  } else {
    file = location;
    if (/^[a-z][a-z0-9+.-]+:/i.test(location)) {
      throw new FloeError('DELTA_DELETION_VECTOR_UNSUPPORTED_PATH', `Deletion vector ${location} is outside the table (${store.root}); only file: paths and URLs under the table's own location can be read`, { file });
    }
    read = async (start, stop) => {
      let fh;
      try {
        fh = await fs.open(location, 'r');
      } catch (e) {
        if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) throw missing(file, e);
        throw e;
      }
      try {
        const buf = Buffer.alloc(stop - start);
        let n = 0;
        while (n < buf.length) {
          const { bytesRead } = await fh.read(buf, n, buf.length - n, start + n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        return buf.subarray(0, n);
      } finally {
        await fh.close();
      }
    };
  }

  // A DV file is never rewritten by a Delta writer (a new DV is a new file or offset), but a file can
  // be replaced by hand: a local file's decoded rows are kept for the process, keyed by its location,
  // size and modification time (a stat, far cheaper than the read). Files in object stores, and
  // local files that cannot be stat'ed, are read every time.
  const local = key !== null ? store.localPath(key) : /^[a-z][a-z0-9+.-]+:/i.test(file) ? null : file;
  const st = local ? await fs.stat(local).catch(() => null) : null;
  const cacheKey = st ? `${local}|${offset}|${dv.sizeInBytes}|${st.size}|${st.mtimeMs}` : null;
  const cached = cacheKey ? dvCache.get(cacheKey) : undefined;
  if (cacheKey && cached) {
    dvCache.delete(cacheKey);
    dvCache.set(cacheKey, cached);
    return cached;
  }
  const rows = await readFileDv(file, offset, end, dv, read);
  if (!cacheKey) return rows;
  dvCache.set(cacheKey, rows);
  dvCacheRows += rows.length;
  for (const [k, v] of dvCache) {
    if (dvCacheRows <= DV_CACHE_MAX_ROWS) break;
    dvCache.delete(k);
    dvCacheRows -= v.length;
  }
  return rows;
}

/** Decoded deletion vectors of files, least recently used first (callers must not change the arrays). */
const dvCache = new Map<string, number[]>();
let dvCacheRows = 0;
/** The cache's bound, in row indexes (8 bytes each). */
const DV_CACHE_MAX_ROWS = 4_000_000;

async function readFileDv(file: string, offset: number, end: number, dv: DeletionVectorDescriptor, read: (start: number, stop: number) => Promise<Uint8Array>): Promise<number[]> {
  // One request when the DV sits near the start of the file (the common case), else version byte + DV.
  let head: Uint8Array;
  let chunk: Uint8Array;
  if (offset <= 4096) {
    const all = await read(0, end);
    head = all.subarray(0, 1);
    chunk = all.subarray(Math.min(offset, all.length));
  } else {
    [head, chunk] = await Promise.all([read(0, 1), read(offset, end)]);
  }
  if (head.length < 1 || head[0] !== 1) {
    throw corrupt(file, head.length < 1 ? 'the file is empty' : `unknown format version ${head[0]} (expected 1)`);
  }
  if (chunk.length < end - offset) {
    throw corrupt(file, `the file ends before offset ${offset} + ${end - offset} bytes (sizeInBytes ${dv.sizeInBytes})`);
  }
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const dataSize = view.getUint32(0, false);
  if (dataSize !== dv.sizeInBytes) {
    throw corrupt(file, `the DV at offset ${offset} is ${dataSize} bytes, the log says sizeInBytes ${dv.sizeInBytes}`);
  }
  const bitmap = chunk.subarray(4, 4 + dataSize);
  const stored = view.getUint32(4 + dataSize, false);
  const actual = crc32(bitmap);
  if (stored !== actual) {
    throw corrupt(file, `CRC-32 mismatch at offset ${offset}: stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${actual.toString(16).padStart(8, '0')}`);
  }
  return parseChecked(bitmap, dv, file);
}
