/**
 * `floe ui [--warehouse DIR] [--port N] [--host H] [--token T]`: serves the monitoring page until
 * SIGINT / SIGTERM. Loopback by default; any other host needs the access token (`--token`,
 * `FLOE_UI_TOKEN`, else one is generated and printed with the link to open).
 */
import { parseArgs } from 'node:util';
import { resolveWarehouse } from '../catalog/catalog.js';
import { DEFAULT_UI_PORT, isLoopback, startUiServer } from './server.js';

export const UI_USAGE = `Usage:
  floe ui [--warehouse DIR] [--port N] [--host H] [--token T]

Serves the monitoring page and its read-only JSON API over the warehouse (default port ${DEFAULT_UI_PORT},
host 127.0.0.1). With --host other than loopback every request needs the access token (--token,
FLOE_UI_TOKEN, else a generated one); open the printed link once to set the cookie.
`;

export class UiUsageError extends Error {}

export async function uiCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      warehouse: { type: 'string', short: 'w' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(UI_USAGE);
    return 0;
  }
  const port = values.port === undefined ? DEFAULT_UI_PORT : Number(values.port);
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UiUsageError(`--port needs a port number (0-65535), got '${values.port}'`);
  const host = values.host ?? '127.0.0.1';
  const token = values.token ?? process.env.FLOE_UI_TOKEN ?? undefined;
  const warehouse = resolveWarehouse(values.warehouse);
  const s = await startUiServer({ warehouse, host, port, token: token || undefined });
  process.stdout.write(`floe ui: serving ${warehouse}\n  open ${s.openUrl}\n${isLoopback(host) ? '' : '  (exposed beyond this machine: requests need the access token above)\n'}Stop with Ctrl-C.\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await s.close();
  return 0;
}
