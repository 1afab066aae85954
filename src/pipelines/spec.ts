/**
 * The pipeline spec, in Spark Declarative Pipelines' format (`spark-pipeline.yml` / `pipeline.yml`,
 * `.yaml` too):
 *
 * ```yaml
 * name: medallion
 * schema: default            # or database:
 * catalog: spark_catalog     # the warehouse catalog (spark_catalog / main / hive_metastore)
 * storage: ./storage         # optional: checkpoints and event log (default <warehouse>/_pipelines/<name>)
 * warehouse: ./warehouse     # floe: the warehouse folder (else --warehouse, FLOE_WAREHOUSE, ./floe-warehouse)
 * libraries:
 *   - glob:
 *       include: transformations/**
 * configuration:
 *   landing: ./landing
 * ```
 *
 * Libraries are JavaScript modules (`.js` / `.mjs`) whose default export is `definePipeline(...)`
 * or a plain function `(p) => { ... }` (so a project needs no import of floe), and pipeline SQL files
 * (`.sql`, Databricks' pipeline SQL: see sql-library.ts; `${key}` reads the configuration).
 * TypeScript files (`.ts` / `.mts`) load without a build step when the `typescript` package is
 * installed (types stripped, not checked); a `.ts` next to its compiled `.js` is left to the `.js`. Paths resolve
 * against the spec's folder. Unknown fields are errors.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CATALOG_ALIASES, normalizeName } from '../catalog/catalog.js';
import { FloeError } from '../errors.js';
import { type DefineFunction, isPipelineModule } from './definition.js';
import { loadSqlLibrary } from './sql-library.js';
import { type NotificationSpec, parseNotifications } from './notifications.js';

export const SPEC_FILE_NAMES = ['spark-pipeline.yml', 'spark-pipeline.yaml', 'pipeline.yml', 'pipeline.yaml'];

export interface PipelineSpec {
  name: string;
  /** Absolute path of the spec file (or the folder definitions resolve against). */
  file?: string;
  baseDir: string;
  catalog?: string;
  schema: string;
  storage?: string;
  warehouse?: string;
  libraries: Array<{ glob: { include: string } }>;
  configuration: Record<string, string>;
  continuous?: boolean;
  notifications?: NotificationSpec[];
}

const KNOWN = new Set(['name', 'catalog', 'schema', 'database', 'storage', 'warehouse', 'libraries', 'definitions', 'configuration', 'continuous', 'development', 'notifications', 'channel', 'edition', 'serverless', 'id']);

function specError(code: string, file: string, msg: string): FloeError {
  return new FloeError(code, `${file}: ${msg}`, { file });
}

// ---------- a YAML subset: block mappings and sequences, flow maps/lists, scalars, comments ----------

type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

function scalar(raw: string, file: string, no: number): Yaml {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s.startsWith('"')) {
    try {
      return JSON.parse(s) as string;
    } catch {
      throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${no}: bad double-quoted string ${s}`);
    }
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${no}: unterminated string ${s}`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith('{') || s.startsWith('[')) return flow(s, file, no);
  if (s === 'true' || s === 'True') return true;
  if (s === 'false' || s === 'False') return false;
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  return s;
}

/** Flow collections: `{ a: b, c: [d, e] }`. */
function flow(s: string, file: string, no: number): Yaml {
  let i = 0;
  const ws = (): void => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const token = (): string => {
    ws();
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i]!;
      let j = i + 1;
      while (j < s.length && s[j] !== q) j++;
      const t = s.slice(i, j + 1);
      i = j + 1;
      return t;
    }
    let j = i;
    while (j < s.length && !',:}]'.includes(s[j]!)) j++;
    // `a:b` inside a plain scalar (no space after ':') stays in the token.
    while (s[j] === ':' && s[j + 1] && !/\s/.test(s[j + 1]!) && s[j + 1] !== ',' && s[j + 1] !== '}') {
      j++;
      while (j < s.length && !',:}]'.includes(s[j]!)) j++;
    }
    const t = s.slice(i, j);
    i = j;
    return t;
  };
  const value = (): Yaml => {
    ws();
    if (s[i] === '{') {
      i++;
      const o: Record<string, Yaml> = {};
      ws();
      if (s[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        const k = scalar(token(), file, no);
        ws();
        if (s[i] !== ':') throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${no}: expected ':' in ${s}`);
        i++;
        o[String(k)] = value();
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === '}') {
          i++;
          return o;
        } else throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${no}: expected ',' or '}' in ${s}`);
      }
    }
    if (s[i] === '[') {
      i++;
      const a: Yaml[] = [];
      ws();
      if (s[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === ']') {
          i++;
          return a;
        } else throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${no}: expected ',' or ']' in ${s}`);
      }
    }
    return scalar(token(), file, no);
  };
  const v = value();
  ws();
  if (i < s.length) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${no}: unexpected text after ${s.slice(0, i)}`);
  return v;
}

/** Splits `key: value` (the key may be quoted); null when the line is not a mapping entry. */
function splitKey(t: string): [string, string] | null {
  const m = /^("[^"]*"|'[^']*'|[^\s:'"{[\-][^:]*?|-[^\s:][^:]*?)\s*:(\s|$)(.*)$/.exec(t);
  if (!m) return null;
  const k = m[1]!.startsWith('"') || m[1]!.startsWith("'") ? m[1]!.slice(1, -1) : m[1]!.trim();
  return [k, m[3]!];
}

export function parseYaml(text: string, file = 'spec'): Yaml {
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    if (/\t/.test(l.match(/^\s*/)![0])) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${i + 1}: tabs are not allowed for indentation`);
    const t = stripComment(l).replace(/\s+$/, '');
    if (!t.trim() || t.trim() === '---') return;
    lines.push({ indent: t.length - t.trimStart().length, text: t.trim(), no: i + 1 });
  });
  let pos = 0;
  const block = (indent: number): Yaml => {
    const first = lines[pos]!;
    if (first.text.startsWith('- ') || first.text === '-') {
      const arr: Yaml[] = [];
      while (pos < lines.length && lines[pos]!.indent === indent && (lines[pos]!.text.startsWith('- ') || lines[pos]!.text === '-')) {
        const l = lines[pos]!;
        const rest = l.text.slice(1).trimStart();
        if (!rest) {
          pos++;
          arr.push(pos < lines.length && lines[pos]!.indent > indent ? block(lines[pos]!.indent) : null);
          continue;
        }
        // `- key: value` starts a mapping whose keys align with `key`.
        const inner = indent + (l.text.length - rest.length);
        lines[pos] = { indent: inner, text: rest, no: l.no };
        if (splitKey(rest)) arr.push(block(inner));
        else {
          pos++;
          arr.push(scalar(rest, file, l.no));
        }
      }
      return arr;
    }
    const obj: Record<string, Yaml> = {};
    while (pos < lines.length && lines[pos]!.indent === indent) {
      const l = lines[pos]!;
      const kv = splitKey(l.text);
      if (!kv) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${l.no}: expected 'key: value', got '${l.text}'`);
      const [k, v] = kv;
      if (k in obj) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${l.no}: duplicate key '${k}'`);
      pos++;
      if (v.trim()) obj[k] = scalar(v, file, l.no);
      else if (pos < lines.length && (lines[pos]!.indent > indent || (lines[pos]!.indent === indent && lines[pos]!.text.startsWith('-')))) obj[k] = block(lines[pos]!.indent);
      else obj[k] = null;
    }
    if (pos < lines.length && lines[pos]!.indent > indent) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${lines[pos]!.no}: unexpected indentation`);
    return obj;
  };
  if (!lines.length) return null;
  const v = block(lines[0]!.indent);
  if (pos < lines.length) throw specError('PIPELINE_SPEC_INVALID_YAML', file, `line ${lines[pos]!.no}: unexpected indentation`);
  return v;
}

// ---------- the spec ----------

/** Finds the spec: `--spec FILE`, else a spec file in the folder or its ancestors. */
export async function findSpec(start = process.cwd()): Promise<string> {
  let dir = path.resolve(start);
  for (;;) {
    const found: string[] = [];
    for (const n of SPEC_FILE_NAMES) {
      try {
        if ((await fs.stat(path.join(dir, n))).isFile()) found.push(path.join(dir, n));
      } catch {
        // absent
      }
    }
    if (found.length > 1) throw new FloeError('MULTIPLE_PIPELINE_SPEC_FILES_FOUND', `Several pipeline specs in ${dir}: ${found.map((f) => path.basename(f)).join(', ')}. Keep one, or pass --spec FILE.`, { files: found });
    if (found.length) return found[0]!;
    const up = path.dirname(dir);
    if (up === dir) throw new FloeError('PIPELINE_SPEC_NOT_FOUND', `No pipeline spec (${SPEC_FILE_NAMES.join(', ')}) in ${path.resolve(start)} or its parents. Pass --spec FILE, or create one with 'floe pipelines init NAME'.`);
    dir = up;
  }
}

export async function loadSpec(file: string): Promise<PipelineSpec> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await fs.readFile(abs, 'utf8');
  } catch (e) {
    throw new FloeError('PIPELINE_SPEC_NOT_FOUND', `Cannot read the pipeline spec ${abs}: ${(e as Error).message}`, { file: abs });
  }
  const raw = /\.json$/i.test(abs) ? (JSON.parse(text) as Yaml) : parseYaml(text, abs);
  return validateSpec(raw, abs);
}

export function validateSpec(raw: unknown, file: string): PipelineSpec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw specError('PIPELINE_SPEC_INVALID', file, 'the spec must be a mapping (name:, libraries:, ...).');
  const r = raw as Record<string, Yaml>;
  for (const k of Object.keys(r)) if (!KNOWN.has(k)) throw specError('PIPELINE_SPEC_UNEXPECTED_FIELD', file, `unknown field '${k}'. Known fields: ${[...KNOWN].join(', ')}.`);
  const str = (k: string): string | undefined => {
    const v = r[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `'${k}' must be a string.`);
    return String(v);
  };
  const name = str('name');
  if (!name) throw specError('PIPELINE_SPEC_MISSING_FIELD', file, "the field 'name' is required.");
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `'name' must use letters, digits, '_' and '-', got '${name}'.`);
  const schema = str('schema');
  const database = str('database');
  if (schema && database && schema !== database) throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `'schema' (${schema}) and 'database' (${database}) disagree; give one.`);
  const sch = schema ?? database ?? 'default';
  try {
    normalizeName(sch, 'schema');
  } catch {
    throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `invalid schema name '${sch}'.`);
  }
  const catalog = str('catalog');
  if (catalog && !CATALOG_ALIASES.has(catalog.toLowerCase())) throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `catalog '${catalog}' is not available: the warehouse has one catalog (${[...CATALOG_ALIASES].join(', ')}).`);
  const libsRaw = r.libraries ?? r.definitions;
  if (r.libraries !== undefined && r.definitions !== undefined) throw specError('PIPELINE_SPEC_INVALID_FIELD', file, "give 'libraries' or the older 'definitions', not both.");
  if (!Array.isArray(libsRaw) || !libsRaw.length) throw specError('PIPELINE_SPEC_MISSING_FIELD', file, "'libraries' must list at least one entry such as '- glob: { include: transformations/** }'.");
  const libraries = libsRaw.map((l, i) => {
    const g = l && typeof l === 'object' && !Array.isArray(l) ? (l as Record<string, Yaml>).glob : undefined;
    const inc = g && typeof g === 'object' && !Array.isArray(g) ? (g as Record<string, Yaml>).include : undefined;
    if (typeof inc !== 'string' || !inc) throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `libraries[${i}] must be '- glob: { include: PATTERN }'.`);
    if (inc.includes('*') && !/^([^*]*\/)?\*\*$/.test(inc) && !/^([^*]*\/)?\*\*?\/?\*\.[A-Za-z0-9]+$/.test(inc) && !/^[^*]*\/\*\.[A-Za-z0-9]+$/.test(inc)) {
      throw specError('PIPELINE_SPEC_INVALID_GLOB_PATTERN', file, `libraries[${i}]: the glob '${inc}' is not supported; use a file path, 'folder/**', or 'folder/*.js'.`);
    }
    return { glob: { include: inc } };
  });
  const conf = r.configuration;
  if (conf !== undefined && conf !== null && (typeof conf !== 'object' || Array.isArray(conf))) throw specError('PIPELINE_SPEC_INVALID_FIELD', file, "'configuration' must be a mapping of keys to values.");
  const configuration: Record<string, string> = {};
  for (const [k, v] of Object.entries((conf as Record<string, Yaml>) ?? {})) {
    if (v !== null && typeof v === 'object') throw specError('PIPELINE_SPEC_INVALID_FIELD', file, `configuration '${k}' must be a scalar.`);
    configuration[k] = v === null ? '' : String(v);
  }
  const continuous = r.continuous;
  if (continuous !== undefined && continuous !== null && typeof continuous !== 'boolean') throw specError('PIPELINE_SPEC_INVALID_FIELD', file, "'continuous' must be true or false.");
  const baseDir = path.dirname(file);
  const storage = str('storage');
  const warehouse = str('warehouse');
  return {
    name,
    file,
    baseDir,
    catalog,
    schema: normalizeName(sch, 'schema'),
    storage: storage ? path.resolve(baseDir, storage) : undefined,
    warehouse: warehouse ? path.resolve(baseDir, warehouse) : undefined,
    libraries,
    configuration,
    continuous: continuous === true,
    notifications: parseNotifications(r.notifications, file),
  };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith('.') || e.name === 'node_modules') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** The library files a spec names, in a stable order. */
export async function libraryFiles(spec: PipelineSpec): Promise<string[]> {
  const files: string[] = [];
  for (const l of spec.libraries) {
    const inc = l.glob.include;
    let matched: string[];
    if (!inc.includes('*')) {
      const p = path.resolve(spec.baseDir, inc);
      const st = await fs.stat(p).catch(() => null);
      if (!st) throw new FloeError('PIPELINE_LIBRARY_NOT_FOUND', `${spec.file ?? 'spec'}: the library ${inc} does not exist (${p}).`, { path: p });
      matched = st.isDirectory() ? await walk(p) : [p];
    } else {
      const star = inc.indexOf('*');
      const dir = path.resolve(spec.baseDir, inc.slice(0, star));
      const ext = /\*\.([A-Za-z0-9]+)$/.exec(inc)?.[1];
      const recursive = inc.includes('**');
      const all = await walk(dir);
      matched = all.filter((f) => (!ext || f.endsWith(`.${ext}`)) && (recursive || path.dirname(f) === dir.replace(/[\\/]$/, '')));
    }
    for (const f of matched) if (!files.includes(f)) files.push(f);
  }
  const libs: string[] = [];
  for (const f of files) {
    if (/\.(d\.ts|d\.mts|map)$/.test(f) || /\.(md|txt)$/i.test(f)) continue;
    if (/\.(js|mjs|sql)$/i.test(f)) libs.push(f);
    else if (/\.(ts|mts)$/.test(f)) {
      // A TypeScript library compiled next to itself: the compiled module is the library.
      const base = f.replace(/\.m?ts$/, '');
      if (!files.includes(`${base}.js`) && !files.includes(`${base}.mjs`)) libs.push(f);
    } else if (/\.cts$/.test(f)) throw new FloeError('PIPELINE_LIBRARY_UNSUPPORTED', `${f}: a CommonJS TypeScript library (.cts) is not supported; use .ts or .mts (an ES module).`, { file: f });
    else throw new FloeError('PIPELINE_LIBRARY_UNSUPPORTED', `${f}: a pipeline library must be a .sql, .js or .mjs file (got ${path.extname(f) || 'no extension'}).`, { file: f });
  }
  if (!libs.length) throw new FloeError('PIPELINE_LIBRARY_NOT_FOUND', `${spec.file ?? 'spec'}: the libraries (${spec.libraries.map((l) => l.glob.include).join(', ')}) match no .sql/.js/.mjs/.ts file.`);
  return libs;
}

/**
 * Imports each library (or parses it, for .sql) and returns its definition function. `configuration`
 * is substituted for `${key}` in SQL files.
 */
export async function loadLibraries(files: string[], configuration: Record<string, string> = {}): Promise<Array<{ define: DefineFunction; source: string }>> {
  const out: Array<{ define: DefineFunction; source: string }> = [];
  for (const f of files) {
    if (/\.sql$/i.test(f)) {
      out.push(await loadSqlLibrary(f, configuration));
      continue;
    }
    let mod: { default?: unknown };
    try {
      mod = /\.m?ts$/.test(f) ? await importTypeScript(f) : ((await import(pathToFileURL(f).href)) as { default?: unknown });
    } catch (e) {
      if (e instanceof FloeError) throw e;
      throw new FloeError('PIPELINE_LIBRARY_LOAD_FAILED', `Cannot load the pipeline library ${f}: ${(e as Error)?.message ?? String(e)}`, { file: f }, { cause: e });
    }
    const d = mod.default;
    if (isPipelineModule(d)) out.push({ define: d.define, source: f });
    else if (typeof d === 'function') out.push({ define: d as DefineFunction, source: f });
    else throw new FloeError('PIPELINE_LIBRARY_INVALID', `${f} has no default export definePipeline((p) => { ... }) (or a function (p) => { ... }).`, { file: f });
  }
  return out;
}

interface TypeScriptApi {
  transpileModule(input: string, options: { compilerOptions: Record<string, unknown>; fileName: string; reportDiagnostics?: boolean }): { outputText: string; diagnostics?: Array<{ messageText: unknown }> };
  ModuleKind: Record<string, number>;
  ScriptTarget: Record<string, number>;
}

/** The `typescript` package: the project's (resolved from the library's folder), else floe's own. */
async function loadTypeScript(file: string): Promise<TypeScriptApi> {
  const candidates: string[] = [];
  try {
    candidates.push(pathToFileURL(createRequire(file).resolve('typescript')).href);
  } catch {
    // not installed in the project
  }
  candidates.push('typescript');
  for (const c of candidates) {
    try {
      const m = (await import(c)) as { default?: TypeScriptApi } & Partial<TypeScriptApi>;
      const ts = (m.transpileModule ? m : m.default) as TypeScriptApi | undefined;
      if (ts?.transpileModule) return ts;
    } catch {
      // try the next one
    }
  }
  throw new FloeError('PIPELINE_LIBRARY_NEEDS_TYPESCRIPT', `${file}: loading a TypeScript pipeline library needs the typescript package: install it in the project (npm install --save-dev typescript), or compile the library to .js and point the spec's glob at it.`, { file });
}

/**
 * Imports a TypeScript library without a build step: its types are stripped with TypeScript's
 * transpileModule (no type checking) into a hidden module next to it (so its relative and package
 * imports resolve as they would for the source), which is removed once imported.
 */
async function importTypeScript(file: string): Promise<{ default?: unknown }> {
  const ts = await loadTypeScript(file);
  const source = await fs.readFile(file, 'utf8');
  const out = ts.transpileModule(source, { fileName: file, reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false, inlineSourceMap: true, inlineSources: true } });
  if (out.diagnostics?.length) {
    const msg = out.diagnostics.map((d) => (typeof d.messageText === 'string' ? d.messageText : JSON.stringify(d.messageText))).join('; ');
    throw new FloeError('PIPELINE_LIBRARY_LOAD_FAILED', `Cannot load the pipeline library ${file}: ${msg}`, { file });
  }
  const hash = createHash('sha256').update(out.outputText).digest('hex').slice(0, 12);
  const tmp = path.join(path.dirname(file), `.${path.basename(file).replace(/\.m?ts$/, '')}.floe-${hash}.mjs`);
  await fs.writeFile(tmp, out.outputText);
  try {
    return (await import(pathToFileURL(tmp).href)) as { default?: unknown };
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
