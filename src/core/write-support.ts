/**
 * Which tables floe may write, and the protocol a new table needs. A writer never writes a table
 * whose writer features it cannot honour (PROTOCOL.md "Table Features": writers must implement every
 * feature listed in writerFeatures).
 */
import { FloeError, UnsupportedFeatureError } from '../errors.js';
import type { Protocol } from './actions.js';
import { KNOWN_WRITER_FEATURES, protocolHasFeature } from './table-features.js';
import type { StructType, DataType } from './schema.js';

/** Writer features floe honours on every write path it offers. */
export const SUPPORTED_WRITER_FEATURES = new Set([
  'appendOnly', 'invariants', 'checkConstraints', 'changeDataFeed', 'columnMapping', 'deletionVectors', 'timestampNtz',
  'vacuumProtocolCheck', 'domainMetadata', 'inCommitTimestamp', 'typeWidening', 'typeWidening-preview', 'generatedColumns', 'allowColumnDefaults',
]);

/** Features that are reader-writer features (listed in readerFeatures too). */
const READER_WRITER_FEATURES = new Set(['columnMapping', 'deletionVectors', 'timestampNtz', 'v2Checkpoint', 'vacuumProtocolCheck', 'typeWidening', 'typeWidening-preview', 'variantType', 'catalogManaged']);

/** The configuration without `delta.feature.*` keys: they change the protocol and are not stored (as Spark). */
export function withoutFeatureProps(configuration: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(configuration).filter(([k]) => !k.startsWith('delta.feature.')));
}

/** Features named by `delta.feature.<name> = 'supported'` table properties (Spark's way to enable a feature explicitly). */
export function explicitFeatures(configuration: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(configuration)) {
    if (!k.startsWith('delta.feature.')) continue;
    const name = k.slice('delta.feature.'.length);
    if (!['supported', 'enabled'].includes(String(v).toLowerCase())) {
      throw new FloeError('DELTA_INVALID_FEATURE_PROPERTY_VALUE', `Table property ${k} = '${v}' is not valid; the only value is 'supported'.`, { key: k });
    }
    if (!KNOWN_WRITER_FEATURES.has(name)) throw new UnsupportedFeatureError(`Unknown table feature '${name}' in ${k}.`, { features: [name] });
    out.push(name);
  }
  return out;
}

/** Features whose writer duties apply only when the schema uses them (a column with an expression). */
const SCHEMA_ACTIVATED: Record<string, string> = {
  generatedColumns: 'delta.generationExpression',
  identityColumns: 'delta.identity.start',
  allowColumnDefaults: 'CURRENT_DEFAULT',
};

function schemaUses(schema: StructType | undefined, metadataKey: string): boolean {
  if (!schema) return true; // unknown schema: assume the worst
  const walk = (t: DataType): boolean =>
    typeof t !== 'string' && (t.type === 'struct' ? t.fields.some((f) => metadataKey in (f.metadata ?? {}) || walk(f.type)) : t.type === 'array' ? walk(t.elementType) : walk(t.keyType) || walk(t.valueType));
  return walk(schema);
}

/**
 * Throws DELTA_UNSUPPORTED_FEATURES_FOR_WRITE unless floe can honour every writer duty of the table.
 * Generated, identity and default columns only bind writers when the schema has such a column.
 */
export function checkWriteSupport(protocol: Protocol, table: string, schema?: StructType): void {
  if (protocol.minWriterVersion > 7) {
    throw new FloeError('DELTA_UNSUPPORTED_FEATURES_FOR_WRITE', `The Delta table at ${table} requires writer version ${protocol.minWriterVersion}; floe writes up to version 7. Reading it works (when its reader version allows); write it with Spark or delta-rs.`, { path: table, minWriterVersion: protocol.minWriterVersion });
  }
  const listed = protocol.minWriterVersion === 7
    ? protocol.writerFeatures ?? []
    : [...(protocol.minWriterVersion >= 4 ? ['generatedColumns'] : []), ...(protocol.minWriterVersion >= 6 ? ['identityColumns'] : [])];
  const missing = listed.filter((f) => !SUPPORTED_WRITER_FEATURES.has(f) && !(f in SCHEMA_ACTIVATED && !schemaUses(schema, SCHEMA_ACTIVATED[f]!)));
  if (missing.length) {
    throw new FloeError('DELTA_UNSUPPORTED_FEATURES_FOR_WRITE', `floe cannot write the Delta table at ${table}: it uses writer feature(s) floe does not implement (${missing.join(', ')}). Reading it works; write it with Spark or delta-rs.`, { path: table, features: missing });
  }
}

function hasType(t: DataType, name: string): boolean {
  if (typeof t === 'string') return t === name;
  if (t.type === 'struct') return t.fields.some((f) => hasType(f.type, name));
  if (t.type === 'array') return hasType(t.elementType, name);
  return hasType(t.keyType, name) || hasType(t.valueType, name);
}

/**
 * The smallest protocol for a new table with this schema and configuration: legacy versions where
 * they suffice (readers everywhere understand them), table features when a feature requires them.
 */
export function protocolFor(schema: StructType, configuration: Record<string, string>): Protocol {
  const readerFeatures = new Set<string>();
  const writerFeatures = new Set<string>();
  let writer = 2;
  if (Object.keys(configuration).some((k) => k.startsWith('delta.constraints.'))) writer = Math.max(writer, 3);
  if (configuration['delta.enableChangeDataFeed'] === 'true') writer = Math.max(writer, 4);
  if (schema.fields.some((f) => hasType(f.type, 'timestamp_ntz'))) {
    readerFeatures.add('timestampNtz');
    writerFeatures.add('timestampNtz');
  }
  if (configuration['delta.enableDeletionVectors'] === 'true') {
    readerFeatures.add('deletionVectors');
    writerFeatures.add('deletionVectors');
  }
  if (configuration['delta.enableInCommitTimestamps'] === 'true') writerFeatures.add('inCommitTimestamp');
  if (configuration['delta.enableTypeWidening'] === 'true') {
    readerFeatures.add('typeWidening');
    writerFeatures.add('typeWidening');
  }
  if (schemaUses(schema, 'CURRENT_DEFAULT')) writerFeatures.add('allowColumnDefaults');
  for (const f of explicitFeatures(configuration)) {
    writerFeatures.add(f);
    if (READER_WRITER_FEATURES.has(f)) readerFeatures.add(f);
  }
  const generated = schemaUses(schema, 'delta.generationExpression');
  if (generated) writer = Math.max(writer, 4);
  const mode = configuration['delta.columnMapping.mode'];
  if (mode === 'name' || mode === 'id') {
    if (!readerFeatures.size && !writerFeatures.size) return { minReaderVersion: 2, minWriterVersion: Math.max(writer, 5) };
    readerFeatures.add('columnMapping');
    writerFeatures.add('columnMapping');
  }
  if (!readerFeatures.size && !writerFeatures.size) return { minReaderVersion: 1, minWriterVersion: writer };
  // Table features: list the legacy features the configuration implies too.
  writerFeatures.add('appendOnly');
  writerFeatures.add('invariants');
  if (writer >= 3) writerFeatures.add('checkConstraints');
  if (writer >= 4 && configuration['delta.enableChangeDataFeed'] === 'true') writerFeatures.add('changeDataFeed');
  if (generated) writerFeatures.add('generatedColumns');
  const rf = [...readerFeatures].sort();
  return { minReaderVersion: rf.length ? 3 : 1, minWriterVersion: 7, ...(rf.length ? { readerFeatures: rf } : {}), writerFeatures: [...writerFeatures].sort() };
}

const LEGACY: Array<[string, number, number]> = [
  ['appendOnly', 1, 2], ['invariants', 1, 2], ['checkConstraints', 1, 3], ['changeDataFeed', 1, 4], ['generatedColumns', 1, 4], ['columnMapping', 2, 5], ['identityColumns', 1, 6],
];

/** The smallest protocol supporting everything `a` and `b` support (never a downgrade). */
export function mergeProtocols(a: Protocol, b: Protocol): Protocol {
  const features = (p: Protocol): { r: Set<string>; w: Set<string> } => {
    if (p.minWriterVersion >= 7) return { r: new Set(p.readerFeatures ?? []), w: new Set(p.writerFeatures ?? []) };
    const w = new Set(LEGACY.filter(([f]) => protocolHasFeature(p, f)).map(([f]) => f));
    return { r: new Set(p.minReaderVersion >= 2 ? ['columnMapping'] : []), w };
  };
  if (a.minWriterVersion < 7 && b.minWriterVersion < 7) {
    return { minReaderVersion: Math.max(a.minReaderVersion, b.minReaderVersion), minWriterVersion: Math.max(a.minWriterVersion, b.minWriterVersion) };
  }
  const fa = features(a);
  const fb = features(b);
  const r = new Set([...fa.r, ...fb.r]);
  const w = new Set([...fa.w, ...fb.w, ...r]);
  const needsReaderFeatures = [...r].some((f) => f !== 'columnMapping') || Math.max(a.minReaderVersion, b.minReaderVersion) >= 3;
  return {
    minReaderVersion: needsReaderFeatures ? 3 : Math.max(a.minReaderVersion, b.minReaderVersion),
    minWriterVersion: 7,
    ...(needsReaderFeatures ? { readerFeatures: [...r].sort() } : {}),
    writerFeatures: [...w].sort(),
  };
}

