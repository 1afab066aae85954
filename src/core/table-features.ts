/**
 * Protocol versions and table features (PROTOCOL.md "Table Features", "Protocol Evolution").
 * A reader opens a table only if it can honour every feature the table's reader protocol requires.
 */
import { UnsupportedFeatureError } from '../errors.js';
import type { Metadata, Protocol } from './actions.js';

/** Reader features floe honours when reading. */
export const SUPPORTED_READER_FEATURES = new Set([
  'columnMapping',
  'deletionVectors',
  'timestampNtz',
  'v2Checkpoint',
  'vacuumProtocolCheck',
  'typeWidening',
  'typeWidening-preview',
]);

/** Writer features floe knows the meaning of (enforcement of writer features is the writer's job). */
export const KNOWN_WRITER_FEATURES = new Set([
  ...SUPPORTED_READER_FEATURES,
  'appendOnly', 'invariants', 'checkConstraints', 'changeDataFeed', 'generatedColumns', 'identityColumns',
  'inCommitTimestamp', 'domainMetadata', 'rowTracking', 'clustering', 'allowColumnDefaults', 'icebergCompatV1', 'icebergCompatV2',
]);

export const MAX_READER_VERSION = 3;

/** Throws UnsupportedFeatureError naming every reader feature the table needs that floe lacks. */
export function checkReadSupport(protocol: Protocol, tablePath: string, metadata?: Metadata): void {
  if (protocol.minReaderVersion > MAX_READER_VERSION) {
    throw new UnsupportedFeatureError(
      `The Delta table at ${tablePath} requires reader version ${protocol.minReaderVersion}; floe supports reader versions up to ${MAX_READER_VERSION}. Upgrade floe or read the table with a newer Delta client.`,
      { path: tablePath, minReaderVersion: protocol.minReaderVersion },
    );
  }
  if (protocol.minReaderVersion === 3) {
    const missing = (protocol.readerFeatures ?? []).filter((f) => !SUPPORTED_READER_FEATURES.has(f));
    if (missing.length) {
      throw new UnsupportedFeatureError(
        `The Delta table at ${tablePath} uses reader table feature(s) floe does not support: ${missing.join(', ')}. It cannot be read correctly, so floe refuses to open it.`,
        { path: tablePath, features: missing },
      );
    }
  }
  // Variant columns can sit in a table whose protocol predates the feature list; check the schema too.
  if (metadata && /"type"\s*:\s*"variant"/.test(metadata.schemaString)) {
    throw new UnsupportedFeatureError(`The Delta table at ${tablePath} has variant columns (feature variantType), which floe does not support yet.`, { path: tablePath, features: ['variantType'] });
  }
}

/** Is a feature listed (supported) by the protocol? Legacy protocols imply features by version. */
export function protocolHasFeature(protocol: Protocol, feature: string): boolean {
  if (protocol.readerFeatures?.includes(feature) || protocol.writerFeatures?.includes(feature)) return true;
  if (protocol.minWriterVersion >= 7) return false;
  const w = protocol.minWriterVersion;
  const legacy: Record<string, number> = {
    appendOnly: 2, invariants: 2, checkConstraints: 3, changeDataFeed: 4, generatedColumns: 4, columnMapping: 5, identityColumns: 6,
  };
  return legacy[feature] !== undefined && w >= legacy[feature]!;
}
