export { Floe, type FloeOptions, type DeltaReadOptions, parseTimestamp, TABLE_DEFAULTS_PREFIX } from './floe.js';
export { DataFrame, formatTable } from './dataframe.js';
export { DeltaTable, type HistoryEntry, type TableDetail } from './table/delta-table.js';
export { DeltaLog } from './core/delta-log.js';
export { Snapshot } from './core/snapshot.js';
export * from './errors.js';
export type { ObjectStore, ObjectMeta } from './storage/object-store.js';
export { LocalObjectStore } from './storage/local.js';
