import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { crc32, dvRelativePath, loadDeletionVector, parseRoaringBitmapArray, z85Decode } from '../core/deletion-vectors.js';
import type { DeletionVectorDescriptor } from '../core/actions.js';
import { CorruptLogError, FloeError, ObjectNotFoundError } from '../errors.js';
import { LocalObjectStore } from '../storage/local.js';
import type { ObjectStore } from '../storage/object-store.js';
import { isRemoteStore, newRoot, readOnlyTable, removeKey, storeAt, writeRaw } from './store.js';

// dist/test/x.js -> /work/shared/conformance
const CONFORMANCE = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const HAVE_CONFORMANCE = existsSync(CONFORMANCE);
if (!HAVE_CONFORMANCE) console.log(`deletion-vectors: ${CONFORMANCE} is absent, skipping the conformance-table tests`);

// ------------------------------------------------------------------------------------ helpers

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Test-side Z85 encoder (pads to 4 bytes, as Delta's Base85Codec does). */
function z85Encode(bytes: Uint8Array): string {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  let s = '';
  for (let i = 0; i < padded.length; i += 4) {
    let v = ((padded[i]! << 24) | (padded[i + 1]! << 16) | (padded[i + 2]! << 8) | padded[i + 3]!) >>> 0;
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85[v % 85]!);
      v = Math.floor(v / 85);
    }
    s += chunk.join('');
  }
  return s;
}

const le16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const be32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

type Container =
  | { key: number; kind: 'array' | 'bitmap'; values: number[] }
  | { key: number; kind: 'run'; runs: Array<[start: number, lengthMinusOne: number]> };

function containerValues(c: Container): number[] {
  if (c.kind !== 'run') return c.values;
  return c.runs.flatMap(([s, l]) => Array.from({ length: l + 1 }, (_, k) => s + k));
}

/** Hand-serializes a 32-bit RoaringBitmap in the portable format (RoaringFormatSpec). */
function roaring32(containers: Container[], runCookie: boolean): number[] {
  const n = containers.length;
  const header: number[] = [];
  if (runCookie) {
    header.push(...le32(12347 | ((n - 1) << 16)));
    const flags = new Array<number>((n + 7) >> 3).fill(0);
    containers.forEach((c, i) => {
      if (c.kind === 'run') flags[i >> 3]! |= 1 << (i & 7);
    });
    header.push(...flags);
  } else {
    header.push(...le32(12346), ...le32(n));
  }
  for (const c of containers) header.push(...le16(c.key), ...le16(containerValues(c).length - 1));
  const bodies = containers.map((c) => {
    if (c.kind === 'run') return [...le16(c.runs.length), ...c.runs.flatMap(([s, l]) => [...le16(s), ...le16(l)])];
    if (c.kind === 'array') return c.values.flatMap(le16);
    const words = new Uint8Array(8192);
    for (const v of c.values) words[v >> 3]! |= 1 << (v & 7);
    return [...words];
  });
  const withOffsets = !runCookie || n >= 4;
  const offsets: number[] = [];
  if (withOffsets) {
    let at = header.length + 4 * n;
    for (const b of bodies) {
      offsets.push(...le32(at));
      at += b.length;
    }
  }
  return [...header, ...offsets, ...bodies.flat()];
}

/** Magic + portable 64-bit bitmap, buckets given as (high key, serialized 32-bit bitmap). */
function portable(buckets: Array<[number, number[]]>): Uint8Array {
  return Uint8Array.from([...le32(1681511377), ...le32(buckets.length), ...le32(0), ...buckets.flatMap(([k, b]) => [...le32(k), ...b])]);
}

/** DV file: version byte 1, then per DV: BE dataSize, bitmap, BE CRC-32. Returns bytes and offsets. */
function dvFile(bitmaps: Uint8Array[]): { bytes: Uint8Array; offsets: number[] } {
  const out = [1];
  const offsets: number[] = [];
  for (const b of bitmaps) {
    offsets.push(out.length);
    out.push(...be32(b.length), ...b, ...be32(crc32(b)));
  }
  return { bytes: Uint8Array.from(out), offsets };
}

function uuidZ85(uuid: string): string {
  return z85Encode(Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex')));
}

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'floe-dv-'));
}

const BUCKET0: Container[] = [
  { key: 0, kind: 'array', values: [0, 3, 65535] },
  { key: 1, kind: 'bitmap', values: Array.from({ length: 5001 }, (_, i) => i * 3) },
  { key: 7, kind: 'run', runs: [[10, 4], [100, 0], [65530, 5]] },
];
const BUCKET3: Container[] = [
  { key: 0, kind: 'run', runs: [[0, 9999]] },
  { key: 2, kind: 'array', values: [5] },
  { key: 3, kind: 'bitmap', values: Array.from({ length: 65536 }, (_, i) => i) },
  { key: 4, kind: 'array', values: [1, 2] },
];
const BUCKET5: Container[] = [
  { key: 0, kind: 'array', values: [42] },
  { key: 3, kind: 'array', values: Array.from({ length: 4096 }, (_, i) => i * 16) }, // largest array container
  { key: 9, kind: 'bitmap', values: Array.from({ length: 4097 }, (_, i) => i * 2) },
];
function expected(high: number, cs: Container[]): number[] {
  return cs.flatMap((c) => containerValues(c).map((v) => high * 2 ** 32 + c.key * 65536 + v));
}
const HAND_BUILT = portable([
  [0, roaring32(BUCKET0, true)], // run cookie, 3 containers: no offset header
  [3, roaring32(BUCKET3, true)], // run cookie, 4 containers: offset header present
  [5, roaring32(BUCKET5, false)], // no-run cookie
]);
const HAND_BUILT_ROWS = [...expected(0, BUCKET0), ...expected(3, BUCKET3), ...expected(5, BUCKET5)];

// --------------------------------------------------------------------------------- unit tests

test('z85Decode: ZeroMQ spec example and errors', () => {
  assert.deepEqual([...z85Decode('HelloWorld')], [0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
  assert.equal(z85Encode(Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])), 'HelloWorld');
  assert.deepEqual([...z85Decode('')], []);
  assert.throws(() => z85Decode('Hello!'), CorruptLogError); // length 6
  assert.throws(() => z85Decode('Hell~'), /character "~"/);
  assert.throws(() => z85Decode('#####'), /exceeds 32 bits/);
});

test('crc32 check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
});

test('dvRelativePath', () => {
  // PROTOCOL.md "JSON Example 1": prefix "ab" becomes a directory.
  assert.equal(
    dvRelativePath({ storageType: 'u', pathOrInlineDv: 'ab^-aqEH.-t@S}K{vb[*k^' }),
    'ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin',
  );
  assert.equal(
    dvRelativePath({ storageType: 'u', pathOrInlineDv: 'vBn[lx{q8@P<9BNH/isA' }),
    'deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin',
  );
  assert.equal(dvRelativePath({ storageType: 'p', pathOrInlineDv: 'file:/tmp/a%20b/x%25y.bin' }), '/tmp/a b/x%y.bin');
  assert.equal(dvRelativePath({ storageType: 'p', pathOrInlineDv: 'file:///tmp/dv.bin' }), '/tmp/dv.bin');
  assert.equal(dvRelativePath({ storageType: 'p', pathOrInlineDv: 's3://bucket/t/dv.bin' }), 's3://bucket/t/dv.bin');
  assert.throws(() => dvRelativePath({ storageType: 'i', pathOrInlineDv: 'wi5b=' }), FloeError);
  assert.throws(() => dvRelativePath({ storageType: 'u', pathOrInlineDv: 'short' }), CorruptLogError);
});

test('parseRoaringBitmapArray: hand-built array, bitmap and run containers, both cookies', () => {
  const rows = parseRoaringBitmapArray(HAND_BUILT);
  assert.equal(rows.length, HAND_BUILT_ROWS.length);
  assert.deepEqual(rows, HAND_BUILT_ROWS);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]! < rows[i]!);
  assert.equal(rows.at(-1), 5 * 2 ** 32 + 9 * 65536 + 8192);
  assert.deepEqual(parseRoaringBitmapArray(portable([])), []);
});

test('parseRoaringBitmapArray: rejects wrong magic, truncation, trailing bytes, bad headers', () => {
  const bad = HAND_BUILT.slice();
  bad[0] = 0x00; // neither 1681511377 (portable) nor 1681511376 (native)
  assert.throws(() => parseRoaringBitmapArray(bad), (e: unknown) => e instanceof CorruptLogError && /wrong magic number/.test(e.message));
  assert.throws(() => parseRoaringBitmapArray(HAND_BUILT.subarray(0, HAND_BUILT.length - 1)), /Truncated/);
  assert.throws(() => parseRoaringBitmapArray(Uint8Array.from([...HAND_BUILT, 0])), /trailing/);
  assert.throws(() => parseRoaringBitmapArray(portable([[2, roaring32(BUCKET5, false)], [1, roaring32(BUCKET5, false)]])), /not ascending/);
  const lying = roaring32([{ key: 0, kind: 'array', values: [1, 2] }], false);
  lying[10] = 5; // header cardinality 6, 2 values follow
  assert.throws(() => parseRoaringBitmapArray(portable([[0, lying]])), CorruptLogError);
  assert.throws(() => parseRoaringBitmapArray(Uint8Array.from([1, 2])), /Truncated/);
});

test('inline DVs: PROTOCOL.md Example 3, Spark portable and native layouts, padding', async () => {
  const store = new LocalObjectStore(os.tmpdir());
  // PROTOCOL.md "JSON Example 3 — Inline" (native layout, big-endian header).
  const example: DeletionVectorDescriptor = { storageType: 'i', pathOrInlineDv: 'wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L', sizeInBytes: 40, cardinality: 6 };
  assert.deepEqual(await loadDeletionVector(store, example), [3, 4, 7, 11, 18, 29]);

  // Portable layout, as Spark writes on disk and inline; 38 bytes, so Z85 pads it to 40.
  const bytes = portable([[0, roaring32([{ key: 0, kind: 'array', values: [3, 34, 67] }], false)]]);
  assert.equal(bytes.length % 4, 2);
  const inline: DeletionVectorDescriptor = { storageType: 'i', pathOrInlineDv: z85Encode(bytes), sizeInBytes: bytes.length, cardinality: 3 };
  assert.deepEqual(await loadDeletionVector(store, inline), [3, 34, 67]);

  // Native layout, little endian as Spark's RoaringBitmapArray writes it: count, then (size, bitmap) per high key.
  const b0 = roaring32([{ key: 0, kind: 'array', values: [7] }], true);
  const b1 = roaring32([{ key: 1, kind: 'run', runs: [[0, 2]] }], true);
  const native = Uint8Array.from([...le32(1681511376), ...le32(2), ...le32(b0.length), ...b0, ...le32(b1.length), ...b1]);
  assert.deepEqual(parseRoaringBitmapArray(native), [7, 2 ** 32 + 65536, 2 ** 32 + 65537, 2 ** 32 + 65538]);

  await assert.rejects(loadDeletionVector(store, { ...inline, cardinality: 4 }), (e: unknown) => e instanceof CorruptLogError && /cardinality 4/.test(e.message));
  await assert.rejects(loadDeletionVector(store, { ...inline, sizeInBytes: 41 }), CorruptLogError);
  await assert.rejects(loadDeletionVector(store, { ...inline, pathOrInlineDv: z85Encode(Uint8Array.from([1, 2, 3, 4, ...bytes.subarray(4)])) }), /wrong magic/);
});

test('on-disk DVs: offsets, CRC, size, cardinality, version, missing files', async () => {
  const dir = await tmpDir(); // 'p' DVs: absolute local files
  const root = await newRoot('floe-dv-'); // 'u' DVs: in the test store
  try {
    const store = storeAt(root);
    const uuid = '0b7bd6e6-33b4-4c47-9f64-27b6e1b4d0a1';
    const small = portable([[0, roaring32([{ key: 0, kind: 'array', values: [1, 8] }], false)]]);
    const { bytes, offsets } = dvFile([small, HAND_BUILT]);
    const fileKey = `ab/deletion_vector_${uuid}.bin`;
    const file = isRemoteStore ? `${root}/${fileKey}` : path.join(root, 'ab', `deletion_vector_${uuid}.bin`);
    await writeRaw(root, fileKey, bytes);
    const dv1: DeletionVectorDescriptor = { storageType: 'u', pathOrInlineDv: `ab${uuidZ85(uuid)}`, offset: offsets[0]!, sizeInBytes: small.length, cardinality: 2 };
    const dv2: DeletionVectorDescriptor = { storageType: 'u', pathOrInlineDv: `ab${uuidZ85(uuid)}`, offset: offsets[1]!, sizeInBytes: HAND_BUILT.length, cardinality: HAND_BUILT_ROWS.length };
    assert.equal(dvRelativePath(dv1), `ab/deletion_vector_${uuid}.bin`);
    assert.deepEqual(await loadDeletionVector(store, dv1), [1, 8]);
    assert.deepEqual(await loadDeletionVector(store, { ...dv1, offset: null }), [1, 8]); // default offset 1
    assert.deepEqual(await loadDeletionVector(store, dv2), HAND_BUILT_ROWS);
    // A DV far into its file (read as version byte + DV rather than one range).
    const far = dvFile([HAND_BUILT, small]);
    assert.ok(far.offsets[1]! > 4096);
    const uuid2 = '6f1c1a52-57e1-4a3b-8d8e-2d6f0c4c9b10';
    await writeRaw(root, `deletion_vector_${uuid2}.bin`, far.bytes);
    assert.deepEqual(await loadDeletionVector(store, { ...dv1, pathOrInlineDv: uuidZ85(uuid2), offset: far.offsets[1]! }), [1, 8]);
    const farV0 = far.bytes.slice();
    farV0[0] = 0;
    await writeRaw(root, `deletion_vector_${uuid2}.bin`, farV0);
    await assert.rejects(loadDeletionVector(store, { ...dv1, pathOrInlineDv: uuidZ85(uuid2), offset: far.offsets[1]! }), /format version 0/);

    // 'p': absolute file: URL, percent-encoded, in a directory with special characters.
    const odd = path.join(dir, 'a b%c&d');
    await fs.mkdir(odd);
    await fs.writeFile(path.join(odd, 'x%y.bin'), bytes);
    const pdv: DeletionVectorDescriptor = { ...dv2, storageType: 'p', pathOrInlineDv: pathToFileURL(path.join(odd, 'x%y.bin')).href };
    assert.match(pdv.pathOrInlineDv, /a%20b%25c&d\/x%25y\.bin$/);
    assert.deepEqual(await loadDeletionVector(store, pdv), HAND_BUILT_ROWS);

    const isCorrupt = (re: RegExp) => (e: unknown) => e instanceof CorruptLogError && e.message.includes(file) && re.test(e.message);
    // CRC mismatch: flip one byte of the stored checksum.
    const crcBad = bytes.slice();
    crcBad[offsets[0]! + 4 + small.length]! ^= 0xff;
    await writeRaw(root, fileKey, crcBad);
    await assert.rejects(loadDeletionVector(store, dv1), isCorrupt(/CRC-32 mismatch/));
    // A flipped bitmap byte is caught by the CRC too.
    const dataBad = bytes.slice();
    dataBad[offsets[0]! + 4 + 20]! ^= 0x01;
    await writeRaw(root, fileKey, dataBad);
    await assert.rejects(loadDeletionVector(store, dv1), isCorrupt(/CRC-32 mismatch/));
    // Wrong magic with a valid CRC.
    const magicBad = small.slice();
    magicBad[3] = 0x00;
    await writeRaw(root, fileKey, dvFile([magicBad]).bytes);
    await assert.rejects(loadDeletionVector(store, dv1), isCorrupt(/wrong magic number/));
    // Version byte.
    const v2 = bytes.slice();
    v2[0] = 2;
    await writeRaw(root, fileKey, v2);
    await assert.rejects(loadDeletionVector(store, dv1), isCorrupt(/format version 2/));
    // Log disagrees with the file.
    await writeRaw(root, fileKey, bytes);
    await assert.rejects(loadDeletionVector(store, { ...dv1, cardinality: 3 }), isCorrupt(/cardinality 3/));
    await assert.rejects(loadDeletionVector(store, { ...dv1, sizeInBytes: small.length + 2 }), isCorrupt(/sizeInBytes/));
    await assert.rejects(loadDeletionVector(store, { ...dv2, offset: offsets[1]! + 8 }), CorruptLogError);
    await writeRaw(root, fileKey, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(loadDeletionVector(store, dv2), isCorrupt(/ends before/));

    // Missing files.
    await removeKey(root, fileKey);
    const isMissing = (name: string) => (e: unknown) =>
      e instanceof FloeError && e.code === 'DELTA_DELETION_VECTOR_MISSING' && e.message.includes(name) && /damaged/.test(e.message) && /VACUUM/i.test(e.message);
    await assert.rejects(loadDeletionVector(store, dv1), isMissing(file));
    await assert.rejects(loadDeletionVector(store, { ...pdv, pathOrInlineDv: pathToFileURL(path.join(odd, 'gone.bin')).href }), isMissing(path.join(odd, 'gone.bin')));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    if (!isRemoteStore) await fs.rm(root, { recursive: true, force: true });
  }
});

test("'p' DVs as URLs: under the table's root they read through its store; elsewhere they are refused clearly", async (t) => {
  const root = await newRoot('floe-dv-');
  const store = storeAt(root);
  const { bytes, offsets } = dvFile([HAND_BUILT]);
  const dv: DeletionVectorDescriptor = { storageType: 'p', pathOrInlineDv: 's3://elsewhere/t/x.bin', offset: offsets[0]!, sizeInBytes: HAND_BUILT.length, cardinality: HAND_BUILT_ROWS.length };
  await assert.rejects(loadDeletionVector(store, dv), (e: unknown) => e instanceof FloeError && e.code === 'DELTA_DELETION_VECTOR_UNSUPPORTED_PATH' && e.message.includes('s3://elsewhere/t/x.bin'));
  if (!isRemoteStore) {
    t.diagnostic('a URL under the table root needs a remote test store (FLOE_TEST_STORE=azurite)');
    return;
  }
  await writeRaw(root, 'a b%c&d/x%y.bin', bytes);
  const url = `${store.root}/a%20b%25c%26d/x%25y.bin`;
  assert.deepEqual(await loadDeletionVector(store, { ...dv, pathOrInlineDv: url }), HAND_BUILT_ROWS);
  const gone = `${store.root}/gone.bin`;
  await assert.rejects(loadDeletionVector(store, { ...dv, pathOrInlineDv: gone }), (e: unknown) => e instanceof FloeError && e.code === 'DELTA_DELETION_VECTOR_MISSING' && e.message.includes(gone));
});

// ------------------------------------------------------------------------ conformance tables

/**
 * Delta Spark's test resources name DV files `test%dv%prefix-deletion_vector_<uuid>.bin` (Spark's test-only
 * `DELETION_VECTOR_FILE_NAME_PREFIX`), which the protocol's derived path does not include. This store
 * falls back to that name, the way Spark's own test harness reads them.
 */
function sparkTestStore(root: string, base: ObjectStore = new LocalObjectStore(root)): ObjectStore {
  return {
    root: base.root,
    get: (k) => base.get(k),
    getRange: async (k, s, e) => {
      try {
        return await base.getRange(k, s, e);
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
        const i = k.lastIndexOf('/') + 1;
        return base.getRange(`${k.slice(0, i)}test%dv%prefix-${k.slice(i)}`, s, e);
      }
    },
    put: (k, d) => base.put(k, d),
    putIfAbsent: (k, d) => base.putIfAbsent(k, d),
    head: (k) => base.head(k),
    list: (p, o) => base.list(p, o),
    delete: (k) => base.delete(k),
    localPath: (k) => base.localPath(k),
  };
}

interface LoggedDv {
  version: string;
  kind: 'add' | 'remove';
  path: string;
  numRecords: number | null;
  dv: DeletionVectorDescriptor;
}

function loggedDvs(root: string): LoggedDv[] {
  const log = path.join(root, '_delta_log');
  const out: LoggedDv[] = [];
  for (const f of readdirSync(log).filter((n) => /^\d{20}\.json$/.test(n)).sort()) {
    for (const line of readFileSync(path.join(log, f), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const action = JSON.parse(line) as Record<string, { path: string; stats?: string | null; deletionVector?: DeletionVectorDescriptor | null } | undefined>;
      for (const kind of ['add', 'remove'] as const) {
        const a = action[kind];
        if (!a?.deletionVector) continue;
        const stats = a.stats ? (JSON.parse(a.stats) as { numRecords?: number }) : {};
        out.push({ version: f.slice(0, 20), kind, path: a.path, numRecords: stats.numRecords ?? null, dv: a.deletionVector });
      }
    }
  }
  return out;
}

function conformanceTables(): string[] {
  const fixed = [
    'delta-spark/spark-test-resources/table-with-dv-small',
    'delta-spark/spark-test-resources/table-with-dv-large',
    'delta-spark/spark-test-resources/partitioned-table-with-dv-large',
    'delta-spark/spark-test-resources/table-with-dv-special-char',
    'delta-spark/kernel-defaults-resources/basic-dv-no-checkpoint',
    'delta-spark/kernel-defaults-resources/basic-dv-with-checkpoint',
    'delta-rs/table-with-dv-small',
    'delta-rs/table_with_deletion_logs',
    'delta-rs/cdf-table-with-cdc-and-dvs',
  ];
  const kernelData = readdirSync(path.join(CONFORMANCE, 'kernel-rs/data')).filter((n) => n.includes('dv') && !n.includes('without-dv')).map((n) => `kernel-rs/data/${n}`);
  const kernelGolden = readdirSync(path.join(CONFORMANCE, 'kernel-rs/golden')).filter((n) => n.includes('dv')).map((n) => `kernel-rs/golden/${n}/delta`);
  return [...fixed, ...kernelData, ...kernelGolden].filter((t) => existsSync(path.join(CONFORMANCE, t, '_delta_log')));
}

/** Descriptor as the table should be read here: the special-char table's 'p' path holds a placeholder for its folder. */
function localise(table: string, dv: DeletionVectorDescriptor): DeletionVectorDescriptor {
  if (dv.storageType !== 'p' || !dv.pathOrInlineDv.includes('{{FOLDER_WITH_SPECIAL_CHAR}}')) return dv;
  const folder = pathToFileURL(path.join(CONFORMANCE, table, 'folder&with%special char')).pathname;
  return { ...dv, pathOrInlineDv: dv.pathOrInlineDv.replace('{{FOLDER_WITH_SPECIAL_CHAR}}', folder) };
}

test('conformance tables: every logged DV decodes to its cardinality', { skip: !HAVE_CONFORMANCE }, async () => {
  const tables = conformanceTables();
  assert.ok(tables.length >= 12, `found ${tables.length} DV tables`);
  let total = 0;
  for (const table of tables) {
    const root = path.join(CONFORMANCE, table);
    // The DV files are read where the test store holds the table (an upload on a remote store).
    const base = isRemoteStore ? storeAt(await readOnlyTable(root)) : new LocalObjectStore(root);
    const store = table.startsWith('delta-spark/spark-test-resources/') ? sparkTestStore(root, base) : base;
    const dvs = loggedDvs(root);
    assert.ok(dvs.length > 0, `${table} logs no DV`);
    for (const { version, kind, path: p, numRecords, dv } of dvs) {
      const where = `${table} v${Number(version)} ${kind} ${p}`;
      const rows = await loadDeletionVector(store, localise(table, dv));
      assert.equal(rows.length, dv.cardinality, where);
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]! < rows[i]!, `${where}: not ascending`);
      if (numRecords !== null) assert.ok(rows.at(-1)! < numRecords, `${where}: row ${rows.at(-1)} >= numRecords ${numRecords}`);
      total++;
    }
  }
  assert.ok(total >= 100, `decoded ${total} DVs`);
});

test('conformance: Spark test-prefixed DV files are reported missing without the test store', { skip: !HAVE_CONFORMANCE }, async () => {
  const table = path.join(CONFORMANCE, 'delta-spark/spark-test-resources/table-with-dv-small');
  const [{ dv }] = loggedDvs(table) as [LoggedDv];
  await assert.rejects(
    loadDeletionVector(new LocalObjectStore(table), dv),
    (e: unknown) => e instanceof FloeError && e.code === 'DELTA_DELETION_VECTOR_MISSING' && e.message.includes('deletion_vector_b6a98cdd-7843-470d-8897-708cdffa38c5.bin'),
  );
});

test('conformance: table-with-dv-small deletes exactly the rows DELETE ... WHERE value IN (0, 9) hit', { skip: !HAVE_CONFORMANCE }, async () => {
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await instance.connect();
  try {
    for (const table of ['delta-spark/spark-test-resources/table-with-dv-small', 'delta-rs/table-with-dv-small', 'kernel-rs/data/table-with-dv-small']) {
      const root = path.join(CONFORMANCE, table);
      const [entry, ...more] = loggedDvs(root);
      assert.ok(entry && more.length === 0, table);
      const rows = await loadDeletionVector(sparkTestStore(root), entry.dv);
      assert.deepEqual(rows, [0, 9], table);

      // The commit's predicate is `value IN (0, 9)`; with column mapping the parquet column has a physical name.
      const commit = readFileSync(path.join(root, '_delta_log', '00000000000000000001.json'), 'utf8');
      assert.match(commit, /value IN \(0, 9\)/);
      const meta = readFileSync(path.join(root, '_delta_log', '00000000000000000000.json'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"metaData"'))
        .map((l) => JSON.parse(l) as { metaData: { schemaString: string } })[0]!;
      const field = (JSON.parse(meta.metaData.schemaString) as { fields: Array<{ name: string; metadata: Record<string, unknown> }> }).fields.find((f) => f.name === 'value')!;
      const column = (field.metadata['delta.columnMapping.physicalName'] as string | undefined) ?? 'value';
      const file = path.join(root, decodeURIComponent(entry.path)).replace(/'/g, "''");
      const reader = await conn.runAndReadAll(
        `SELECT CAST(file_row_number AS INTEGER) AS i, CAST("${column}" AS INTEGER) AS v FROM read_parquet('${file}', file_row_number = true) ORDER BY i`,
      );
      const data = reader.getRowObjectsJson() as Array<{ i: number; v: number }>;
      assert.equal(data.length, 10, table);
      assert.deepEqual(data.filter((r) => r.v === 0 || r.v === 9).map((r) => r.i), rows, table);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
});

test('a deletion vector file is read once per process; a local file changed in place is read again', async () => {
  const { buildDeletionVectorFile } = await import('../core/deletion-vector-writer.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'floe-dvcache-'));
  try {
    const store = new LocalObjectStore(dir);
    let reads = 0;
    const counting = new Proxy(store, {
      get(t, k, r) {
        if (k === 'getRange') return async (...a: [string, number, number]) => (reads++, t.getRange(...a));
        const v = Reflect.get(t, k, r) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
      },
    }) as ObjectStore;
    const a = buildDeletionVectorFile([3, 1, 7]);
    await fs.writeFile(path.join(dir, a.relativePath), a.bytes);
    assert.deepEqual(await loadDeletionVector(counting, a.descriptor), [1, 3, 7]);
    assert.deepEqual(await loadDeletionVector(counting, a.descriptor), [1, 3, 7]);
    assert.equal(reads, 1);
    // The same name rewritten with other rows (never done by a Delta writer; a test or a restore from backup might).
    const b = buildDeletionVectorFile([2, 4, 6, 8, 10]);
    await new Promise((r) => setTimeout(r, 20));
    await fs.writeFile(path.join(dir, a.relativePath), b.bytes);
    assert.deepEqual(await loadDeletionVector(counting, { ...b.descriptor, pathOrInlineDv: a.descriptor.pathOrInlineDv }), [2, 4, 6, 8, 10]);
    assert.equal(reads, 2);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
