/** `npm run conformance [filter]`: reports the conformance corpus. Exit 1 when any case fails. */
import { Floe } from '../floe.js';
import { corpusDir, formatReport, runCorpus } from './corpus.js';

const dir = corpusDir();
if (!dir) {
  console.log('conformance: ../shared/conformance is absent; nothing to check (set FLOE_CONFORMANCE_DIR to point at a copy).');
  process.exit(0);
}
const floe = await Floe.create();
try {
  const results = await runCorpus(floe, dir, process.argv[2]);
  process.stdout.write(formatReport(results));
  process.exitCode = results.some((r) => r.outcome === 'failed') ? 1 : 0;
} finally {
  await floe.close();
}
