/**
 * The change data feed as one DuckDB query: every file a version contributes is read once with its
 * row positions, joined to a table of (file, version, timestamp, mode, partition values) and to the
 * rows of the deletion vectors involved; the mode decides which rows count and their change type.
 */
import type { FileChange } from '../core/cdf.js';
import { dvUniqueId } from '../core/actions.js';
import { loadDeletionVector } from '../core/deletion-vectors.js';
import { mapLimit } from '../core/delta-log.js';
import { type StructField, type StructType, duckType, physicalName, quoteIdent, quoteString } from '../core/schema.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Engine } from './engine.js';
import { dataColumnSelect, dataFilePath, ensureFilesLocal, parquetColumns, partitionLiteral } from './scan.js';

export interface ChangesPlan {
  sql: string;
  tables: string[];
}

/** The empty feed with the right columns. */
export function emptyChangesSql(schema: StructType): string {
  const cols = schema.fields.map((f) => `NULL::${duckType(f.type)} AS ${quoteIdent(f.name)}`);
  cols.push('NULL::VARCHAR AS _change_type', 'NULL::BIGINT AS _commit_version', 'NULL::TIMESTAMPTZ AS _commit_timestamp');
  return `SELECT ${cols.join(', ')} WHERE false`;
}

/**
 * `layouts[i]`, when given, is the table schema `changes[i]`'s file was written with (the schema at
 * its commit, known from the log for files a commit wrote), or null when unknown (a removed file, a
 * RESTORE or CONVERT commit). With every layout known the files' columns come from the log: no
 * engine round trip to read the Parquet footers, and each layout's files are read without
 * union_by_name (DuckDB then opens them while scanning, in parallel, instead of all at bind time).
 */
export async function planChanges(engine: Engine, store: ObjectStore, schema: StructType, partitionColumns: string[], changes: FileChange[], mapped: boolean, layouts?: (StructType | null)[]): Promise<ChangesPlan> {
  if (!changes.length) return { sql: emptyChangesSql(schema), tables: [] };
  const tables: string[] = [];
  const partSet = new Set(partitionColumns);
  const byName = new Map(schema.fields.map((f) => [f.name, f]));
  const partFields: StructField[] = partitionColumns.map((c) => byName.get(c)!);
  const dataFields = schema.fields.filter((f) => !partSet.has(f.name));
  if (layouts && layoutsKnown(changes, layouts, partSet)) {
    await ensureFilesLocal(store, changes);
    return { sql: knownLayoutSql(store, schema, partFields, dataFields, changes, layouts as StructType[], mapped), tables };
  }

  // Deletion vectors: one key per distinct DV, its rows in a table.
  const dvKeys = new Map<string, { key: number; load: () => Promise<number[]> }>();
  const dvKey = (c: FileChange, which: 'addDv' | 'removeDv'): string => {
    const dv = c[which];
    if (!dv) return 'NULL';
    const id = `${c.path}\u0000${dvUniqueId(dv)}`;
    let e = dvKeys.get(id);
    if (!e) dvKeys.set(id, (e = { key: dvKeys.size + 1, load: () => loadDeletionVector(store, dv) }));
    return String(e.key);
  };
  const partDefs = partFields.map((f, i) => `, p${i} ${duckType(f.type)}`).join('');
  // Each distinct file is read once; its position in the list (read_parquet's file_index) is the
  // integer the rows are joined on (cheaper than the file name).
  await ensureFilesLocal(store, changes);
  const filePaths = changes.map((c) => dataFilePath(store, c.path));
  const paths = [...new Set(filePaths)];
  const fid = new Map(paths.map((p, i) => [p, i]));
  const values = changes.map((c, ci) => {
    const pv = partFields.map((f) => partitionLiteral(c.partitionValues[physicalName(f)] ?? c.partitionValues[f.name], f.type));
    return `(${[String(fid.get(filePaths[ci]!)!), String(c.version), String(c.timestamp), quoteString(c.mode), dvKey(c, 'addDv'), dvKey(c, 'removeDv'), ...pv].join(', ')})`;
  });
  // The (file, version, mode, …) list: inline when small, an engine table when large.
  const colNames = ['fid', 'version', 'ts', 'mode', 'dv_a', 'dv_r', ...partFields.map((_, i) => `p${i}`)];
  // Every file in one change of the range and no deletion vectors (the usual case): a file's
  // version, timestamp, mode and partition values are looked up by its index in constant lists,
  // with no join at all.
  const lookup = !dvKeys.size && paths.length === changes.length && changes.every((c) => c.mode !== 'dv-diff');
  let ct = '';
  if (lookup) {
    // no table of changes
  } else if (values.length <= 2000) {
    ct = `(SELECT * FROM (VALUES ${values.join(', ')}) AS v(${colNames.join(', ')}))`;
  } else {
    ct = engine.uniqueName('changes');
    tables.push(ct);
    await engine.run(`CREATE TABLE ${ct} (fid BIGINT, version BIGINT, ts BIGINT, mode VARCHAR, dv_a INTEGER, dv_r INTEGER${partDefs})`);
    for (let i = 0; i < values.length; i += 2000) await engine.run(`INSERT INTO ${ct} VALUES ${values.slice(i, i + 2000).join(', ')}`);
  }
  const dt = engine.uniqueName('cdfdv');
  if (dvKeys.size) {
    tables.push(dt);
    await engine.run(`CREATE TABLE ${dt} (k BIGINT, row_index BIGINT)`);
    const loaded = await mapLimit([...dvKeys.values()], 8, async (e) => [e.key, await e.load()] as [number, number[]]);
    await engine.appendIdRows(dt, loaded);
  }

  const fileCols = await parquetColumns(engine, paths);
  const dataSel = dataColumnSelect(dataFields, fileCols, mapped);
  const cols = schema.fields.map((f) => (partSet.has(f.name) ? `c.p${partitionColumns.indexOf(f.name)} AS ${quoteIdent(f.name)}` : dataSel[dataFields.indexOf(f)]!));
  const fileType = fileCols.has('_change_type') ? 't._change_type' : 'NULL::VARCHAR';
  // A data column named file_index would shadow the virtual column: then the file name is looked up.
  const shadowed = fileCols.has('file_index');
  const fileKey = shadowed ? `list_position([${paths.map(quoteString).join(', ')}], t.filename) - 1` : 't.file_index';
  const nameArg = shadowed ? ', filename = true' : '';
  if (lookup) {
    const at = `[(${fileKey})::BIGINT + 1]`;
    const list = (xs: string[], type: string): string => `([${xs.join(', ')}]::${type}[])${at}`;
    const lcols = schema.fields.map((f) => {
      if (!partSet.has(f.name)) return dataSel[dataFields.indexOf(f)]!;
      const lits = changes.map((c) => partitionLiteral(c.partitionValues[physicalName(f)] ?? c.partitionValues[f.name], f.type));
      return `${list(lits, duckType(f.type))} AS ${quoteIdent(f.name)}`;
    });
    const modes = [...new Set(changes.map((c) => c.mode))];
    const changeType = modes.length === 1
      ? (modes[0] === 'cdc' ? fileType : quoteString(modes[0] === 'insert' ? 'insert' : 'delete'))
      : `CASE ${list(changes.map((c) => quoteString(c.mode)), 'VARCHAR')} WHEN 'cdc' THEN ${fileType} WHEN 'insert' THEN 'insert' ELSE 'delete' END`;
    const sql = `SELECT ${lcols.join(', ')},
      ${changeType} AS _change_type,
      ${list(changes.map((c) => String(c.version)), 'BIGINT')} AS _commit_version,
      CAST(epoch_ms(${list(changes.map((c) => String(c.timestamp)), 'BIGINT')}) AS TIMESTAMPTZ) AS _commit_timestamp
    FROM read_parquet([${paths.map(quoteString).join(', ')}], union_by_name = true${nameArg}) t`;
    return { sql, tables };
  }
  if (!dvKeys.size) {
    // No deletion vectors in the range: every row of a file counts; no row positions needed.
    const sql = `SELECT ${cols.join(', ')},
      CASE c.mode WHEN 'cdc' THEN ${fileType} WHEN 'insert' THEN 'insert' ELSE 'delete' END AS _change_type,
      CAST(c.version AS BIGINT) AS _commit_version,
      CAST(epoch_ms(c.ts) AS TIMESTAMPTZ) AS _commit_timestamp
    FROM read_parquet([${paths.map(quoteString).join(', ')}], union_by_name = true${nameArg}) t
    JOIN ${ct} c ON c.fid = ${fileKey}
    WHERE c.mode <> 'dv-diff'`;
    return { sql, tables };
  }
  const sql = `SELECT ${cols.join(', ')},
      CASE c.mode WHEN 'cdc' THEN ${fileType} WHEN 'insert' THEN 'insert' WHEN 'delete' THEN 'delete'
                  ELSE CASE WHEN a.k IS NOT NULL THEN 'delete' ELSE 'insert' END END AS _change_type,
      CAST(c.version AS BIGINT) AS _commit_version,
      CAST(epoch_ms(c.ts) AS TIMESTAMPTZ) AS _commit_timestamp
    FROM read_parquet([${paths.map(quoteString).join(', ')}], union_by_name = true, file_row_number = true${nameArg}) t
    JOIN ${ct} c ON c.fid = ${fileKey}
    LEFT JOIN ${dt} a ON a.k = c.dv_a AND a.row_index = t.file_row_number
    LEFT JOIN ${dt} r ON r.k = c.dv_r AND r.row_index = t.file_row_number
    WHERE CASE c.mode WHEN 'cdc' THEN true
                      WHEN 'insert' THEN a.k IS NULL
                      WHEN 'delete' THEN r.k IS NULL
                      ELSE (a.k IS NOT NULL) <> (r.k IS NOT NULL) END`;
  return { sql, tables };
}

/**
 * The fast path applies when every file is read whole (no deletion vectors, each file in one change,
 * cdc or insert) and its layout is known, and no column is physically named like a virtual column.
 */
function layoutsKnown(changes: FileChange[], layouts: (StructType | null)[], partSet: Set<string>): boolean {
  if (layouts.length !== changes.length) return false;
  const seen = new Set<string>();
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    const l = layouts[i];
    if (!l || (c.mode !== 'cdc' && c.mode !== 'insert') || c.addDv || c.removeDv || seen.has(c.path)) return false;
    seen.add(c.path);
    if (l.fields.some((f) => !partSet.has(f.name) && ['file_index', 'filename', 'file_row_number'].includes(physicalName(f)))) return false;
  }
  return true;
}

/**
 * One `read_parquet` (no union_by_name) per (layout, cdc or not) group, UNION ALL: columns by
 * physical name as the layout has them, cast to the table's types (a no-op when they agree), NULL
 * for columns added after the files were written; a file's version, timestamp and partition values
 * looked up by its index in its group.
 */
function knownLayoutSql(store: ObjectStore, schema: StructType, partFields: StructField[], dataFields: StructField[], changes: FileChange[], layouts: StructType[], mapped: boolean): string {
  const groups = new Map<string, { cdc: boolean; layout: StructType; idx: number[] }>();
  const ids = new Map<StructType, number>();
  changes.forEach((c, i) => {
    const l = layouts[i]!;
    let id = ids.get(l);
    if (id === undefined) ids.set(l, (id = ids.size));
    const key = `${c.mode === 'cdc'}/${id}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { cdc: c.mode === 'cdc', layout: l, idx: [] }));
    g.idx.push(i);
  });
  const partNames = new Set(partFields.map((f) => f.name));
  const branches = [...groups.values()].map((g) => {
    // The file's type is not known (only the schema it was written with), so every column is cast
    // to the table's type: DuckDB drops the cast when the types agree.
    const fileCols = new Map<string, string>();
    for (const f of g.layout.fields) if (!partNames.has(f.name)) fileCols.set(physicalName(f), '?');
    const dataSel = dataColumnSelect(dataFields, fileCols, mapped);
    const at = '[t.file_index::BIGINT + 1]';
    const list = (xs: string[], type: string): string => (new Set(xs).size === 1 ? `${xs[0]}::${type}` : `([${xs.join(', ')}]::${type}[])${at}`);
    const cs = g.idx.map((i) => changes[i]!);
    const cols = schema.fields.map((f) => {
      if (!partNames.has(f.name)) return dataSel[dataFields.indexOf(f)]!;
      const lits = cs.map((c) => partitionLiteral(c.partitionValues[physicalName(f)] ?? c.partitionValues[f.name], f.type));
      return `${list(lits, duckType(f.type))} AS ${quoteIdent(f.name)}`;
    });
    const paths = cs.map((c) => dataFilePath(store, c.path));
    return `SELECT ${cols.join(', ')},
      ${g.cdc ? 't._change_type' : "'insert'"} AS _change_type,
      ${list(cs.map((c) => String(c.version)), 'BIGINT')} AS _commit_version,
      CAST(epoch_ms(${list(cs.map((c) => String(c.timestamp)), 'BIGINT')}) AS TIMESTAMPTZ) AS _commit_timestamp
    FROM read_parquet([${paths.map(quoteString).join(', ')}]) t`;
  });
  return branches.length === 1 ? branches[0]! : branches.map((b) => `(${b})`).join(' UNION ALL ');
}
