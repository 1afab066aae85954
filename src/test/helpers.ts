/** Shared test helpers: temporary folders and the conformance corpus location. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { corpusDir } from '../conformance/corpus.js';

export async function tempDir(prefix = 'floe-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** The corpus dir, or null after printing a skip notice (tests then skip). */
export function corpus(what: string): string | null {
  const d = corpusDir();
  if (!d) console.log(`# skipping ${what}: ../shared/conformance is absent`);
  return d;
}

/** Copies a corpus table to a temp folder, writable (tests never write into the read-only corpus). */
export async function copyTable(src: string): Promise<string> {
  const dst = await tempDir('floe-copy-');
  await fs.cp(src, dst, { recursive: true });
  const walk = async (d: string): Promise<void> => {
    await fs.chmod(d, 0o755);
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else await fs.chmod(p, 0o644);
    }
  };
  await walk(dst);
  return dst;
}

/** Absolute path of a corpus table, or null after skipping the test when the corpus is absent. */
export function corpusTable(t: TestContext, rel: string): string | null {
  const dir = corpus(rel);
  if (!dir) {
    t.skip('conformance corpus absent');
    return null;
  }
  return path.join(dir, rel);
}
