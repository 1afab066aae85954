/** Shared test helpers: temporary folders and the conformance corpus location. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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

/** Copies a corpus table to a temp folder (tests never write into the corpus). */
export async function copyTable(src: string): Promise<string> {
  const dst = await tempDir('floe-copy-');
  await fs.cp(src, dst, { recursive: true });
  return dst;
}
