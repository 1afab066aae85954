// Runs every compiled *.test.js under dist/test with node's test runner (Node 20 has no glob support),
// then runs the table test files again with their tables in Azurite (FLOE_TEST_STORE=azurite; see
// src/test/store.ts).
//   node scripts/run-tests.mjs [--store local|azurite|s3|all] [substring ...]
// Substrings select files; --store picks one store (default: local for every file, plus azurite for
// the files in STORE_FILES).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

// Table-level test files that run on every store (their tables come from store.ts).
const STORE_FILES = [
  'write-api',
  'read-api',
  'dml',
  'cdf',
  'cli-changes',
  'merge-file-id',
  'deletion-vectors',
  'dv-writes',
  'update-partition',
  'zorder',
  'idempotent-txn',
  'column-mapping-writes',
  'auto-cdc',
  'sql-statements',
  'sql-alter',
  'concurrency',
  'roundtrip',
  'bad-logs',
  'cli-read',
  'delta-source',
  'cli-write',
];

// Property tests support the store too, but test semantics rather than storage and take minutes on
// the emulator: they run on a remote store only when one is named (`--store azurite merge-property`).
const PROPERTY_FILES = ['merge-property', 'cdf-replay-property', 'auto-cdc-property'];

const files = readdirSync('dist/test', { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => join('dist/test', f))
  .sort();
const args = process.argv.slice(2).filter((a) => a.trim() !== '');
let store = null;
const STORES = ['local', 'azurite', 's3', 'all'];
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--store') store = args[++i];
  else if (args[i].startsWith('--store=')) store = args[i].slice(8);
  else only.push(args[i]);
}
if (store !== null && !STORES.includes(store)) {
  console.error(`--store ${store}: use ${STORES.join(', ')}`);
  process.exit(2);
}
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const storeFiles = store ? [...STORE_FILES, ...PROPERTY_FILES] : STORE_FILES;
const isStoreFile = (f) => storeFiles.some((s) => f.endsWith(`/${s}.test.js`) || f.endsWith(`\\${s}.test.js`));

const runs = [];
if (!store || store === 'local' || store === 'all') runs.push(['local', selected]);
const remote = !store ? ['azurite'] : store === 'all' ? ['azurite', 's3'] : store === 'local' ? [] : [store];
for (const s of remote) {
  const fs = selected.filter(isStoreFile);
  if (fs.length) runs.push([s, fs]);
}

let status = 0;
for (const [s, fs] of runs) {
  if (!fs.length) continue;
  console.log(`# ---- store: ${s} (${fs.length} file${fs.length === 1 ? '' : 's'}) ----`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...fs], { stdio: 'inherit', env: { ...process.env, FLOE_TEST_STORE: s } });
  console.log(`# ---- store: ${s}: ${r.status === 0 ? 'pass' : 'FAIL'} in ${((Date.now() - t0) / 1000).toFixed(1)} s ----`);
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
