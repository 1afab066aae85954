/**
 * The warehouse config file: `floe.config.json` in the current folder, or the file given by
 * `--config FILE`. It holds the warehouse location and session defaults, as `SET key = value` would
 * set them (for example `spark.databricks.delta.properties.defaults.enableChangeDataFeed`):
 *
 * ```json
 * { "warehouse": "./wh", "settings": { "spark.databricks.delta.properties.defaults.enableChangeDataFeed": true } }
 * ```
 *
 * JSON because floe has no other config format and Node reads it without a dependency; the name
 * follows `<tool>.config.<ext>` as other Node tools do. A relative `warehouse` is resolved against
 * the file's folder, so a project's config works from wherever it is read. The warehouse comes from,
 * in order: the `--warehouse` flag, `FLOE_WAREHOUSE`, the config file, `./floe-warehouse`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FloeError } from '../errors.js';

export const CONFIG_FILE_NAME = 'floe.config.json';

export interface WarehouseConfig {
  /** The file read, or null when there was none. */
  file: string | null;
  /** Absolute warehouse folder from the file, if it names one. */
  warehouse?: string;
  /** Session settings (string values, as SET stores them). */
  settings: Record<string, string>;
}

const KEYS = new Set(['warehouse', 'settings']);

function bad(file: string, what: string): FloeError {
  return new FloeError('FLOE_INVALID_CONFIG', `The config file ${file} is not valid: ${what}. It is JSON like {"warehouse": "./wh", "settings": {"spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true"}}.`, { file });
}

/**
 * Reads the config file: `explicit` (from --config; it must exist), else `floe.config.json` in
 * `cwd` when present. Malformed files fail with FLOE_INVALID_CONFIG naming the file and the problem.
 */
export async function loadWarehouseConfig(explicit?: string, cwd = process.cwd()): Promise<WarehouseConfig> {
  const file = path.resolve(cwd, explicit ?? CONFIG_FILE_NAME);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && explicit === undefined) return { file: null, settings: {} };
    throw new FloeError('FLOE_INVALID_CONFIG', `Cannot read the config file ${file}: ${(e as Error).message}`, { file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(file, 'the top level must be an object');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!KEYS.has(k)) throw bad(file, `unknown key '${k}' (known: warehouse, settings)`);
  const out: WarehouseConfig = { file, settings: {} };
  if (obj.warehouse !== undefined) {
    if (typeof obj.warehouse !== 'string' || !obj.warehouse) throw bad(file, "'warehouse' must be a non-empty string (a folder)");
    out.warehouse = path.resolve(path.dirname(file), obj.warehouse);
  }
  if (obj.settings !== undefined) {
    if (!obj.settings || typeof obj.settings !== 'object' || Array.isArray(obj.settings)) throw bad(file, "'settings' must be an object of key: value");
    for (const [k, v] of Object.entries(obj.settings as Record<string, unknown>)) {
      if (!k.trim()) throw bad(file, 'a setting has an empty key');
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw bad(file, `setting '${k}' must be a string, number or boolean`);
      out.settings[k] = String(v);
    }
  }
  return out;
}

/** The warehouse folder by precedence: flag, FLOE_WAREHOUSE, config file, ./floe-warehouse. */
export function chooseWarehouse(flag: string | undefined, config: WarehouseConfig, env = process.env): string {
  return path.resolve(flag ?? env.FLOE_WAREHOUSE ?? config.warehouse ?? 'floe-warehouse');
}
