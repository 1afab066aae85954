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

export const CDF_COLUMNS = ['_change_type', '_commit_version', '_commit_timestamp'] as const;

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

export async function planChanges(engine: Engine, store: ObjectStore, schema: StructType, partitionColumns: string[], changes: FileChange[], mapped: boolean): Promise<ChangesPlan> {
  if (!changes.length) return { sql: emptyChangesSql(schema), tables: [] };
  const tables: string[] = [];
  const partSet = new Set(partitionColumns);
  const byName = new Map(schema.fields.map((f) => [f.name, f]));
  const partFields: StructField[] = partitionColumns.map((c) => byName.get(c)!);
  const dataFields = schema.fields.filter((f) => !partSet.has(f.name));

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
    await engine.run(`CREATE TABLE ${dt} (k VARCHAR, row_index BIGINT)`);
    const loaded = await mapLimit([...dvKeys.values()], 8, async (e) => [String(e.key), await e.load()] as [string, number[]]);
    await engine.appendBigIntPairs(dt, loaded);
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
    LEFT JOIN ${dt} a ON a.k = CAST(c.dv_a AS VARCHAR) AND a.row_index = t.file_row_number
    LEFT JOIN ${dt} r ON r.k = CAST(c.dv_r AS VARCHAR) AND r.row_index = t.file_row_number
    WHERE CASE c.mode WHEN 'cdc' THEN true
                      WHEN 'insert' THEN a.k IS NULL
                      WHEN 'delete' THEN r.k IS NULL
                      ELSE (a.k IS NOT NULL) <> (r.k IS NOT NULL) END`;
  return { sql, tables };
}
