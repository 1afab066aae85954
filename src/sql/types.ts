/** Spark SQL data types: parsing (`BIGINT`, `DECIMAL(10,2)`, `ARRAY<INT>`, `STRUCT<a: INT>`…) and printing (DESCRIBE). */
import type { DataType, StructField } from '../core/schema.js';
import { Cursor } from './cursor.js';
import { analysisErrorAt, parseErrorAt, tokenDesc } from './errors.js';

const PRIMS: Record<string, string> = {
  STRING: 'string', VARCHAR: 'string', CHAR: 'string', TEXT: 'string',
  BIGINT: 'long', LONG: 'long', INT: 'integer', INTEGER: 'integer', SMALLINT: 'short', SHORT: 'short', TINYINT: 'byte', BYTE: 'byte',
  FLOAT: 'float', REAL: 'float', DOUBLE: 'double', BOOLEAN: 'boolean', BOOL: 'boolean', BINARY: 'binary', DATE: 'date',
  TIMESTAMP: 'timestamp', TIMESTAMP_LTZ: 'timestamp', TIMESTAMP_NTZ: 'timestamp_ntz',
};

/**
 * Parses a Spark type at the cursor. CHAR(n) and VARCHAR(n) are strings; with `out`, their Spark
 * type text (`char(n)`, `varchar(n)`) is set in `out.charVarchar`, which a column definition keeps
 * as field metadata (CHAR_VARCHAR_TYPE) so writes check the length, as Spark.
 */
export function parseType(c: Cursor, out?: { charVarchar?: string }): DataType {
  const t = c.ident('a data type');
  const u = t.kind === 'ident' ? t.upper : t.value.toUpperCase();
  if (u === 'DECIMAL' || u === 'DEC' || u === 'NUMERIC') {
    if (!c.isOp('(')) return 'decimal(10,0)';
    c.expectOp('(');
    const p = c.integer('a precision');
    let s = 0;
    if (c.acceptOp(',')) s = c.integer('a scale');
    c.expectOp(')');
    if (p < 1 || p > 38 || s > p) throw analysisErrorAt(t, `Invalid DECIMAL(${p},${s}): precision must be 1..38 and scale at most the precision`);
    return `decimal(${p},${s})`;
  }
  if (u === 'DOUBLE' && c.isKw('PRECISION')) c.next();
  if ((u === 'VARCHAR' || u === 'CHAR') && c.isOp('(')) {
    c.expectOp('(');
    const lenTok = c.peek();
    const n = c.integer('a length');
    c.expectOp(')');
    if (n < 1) throw analysisErrorAt(lenTok, `Invalid ${u}(${n}): the length must be a positive number`);
    if (out) out.charVarchar = `${u.toLowerCase()}(${n})`;
    return 'string';
  }
  if (u === 'ARRAY') {
    c.expectOp('<');
    const e = parseType(c);
    closeAngle(c);
    return { type: 'array', elementType: e, containsNull: true };
  }
  if (u === 'MAP') {
    c.expectOp('<');
    const k = parseType(c);
    c.expectOp(',');
    const v = parseType(c);
    closeAngle(c);
    return { type: 'map', keyType: k, valueType: v, valueContainsNull: true };
  }
  if (u === 'STRUCT') {
    c.expectOp('<');
    const fields: StructField[] = [];
    if (!isClose(c)) {
      for (;;) {
        const name = c.ident('a field name').value;
        c.acceptOp(':');
        const type = parseType(c);
        let nullable = true;
        if (c.acceptKw('NOT', 'NULL')) nullable = false;
        const metadata: Record<string, unknown> = {};
        if (c.acceptKw('COMMENT')) metadata.comment = c.string().value;
        fields.push({ name, type, nullable, metadata });
        if (!c.acceptOp(',')) break;
      }
    }
    closeAngle(c);
    return { type: 'struct', fields };
  }
  if (u === 'INTERVAL' || u === 'VOID' || u === 'VARIANT' || u === 'OBJECT') throw analysisErrorAt(t, `Data type ${u} is not supported for Delta columns by floe`);
  const p = PRIMS[u];
  if (!p) throw parseErrorAt(t, `Unknown data type ${tokenDesc(t)}`);
  return p;
}

function isClose(c: Cursor): boolean {
  return c.isOp('>') || c.isOp('>>');
}

/** `>` or the first half of `>>` (nested generics). */
function closeAngle(c: Cursor): void {
  const t = c.peek();
  if (t.kind === 'op' && t.text === '>>') {
    // split `>>` into two `>` tokens in place
    const first = { ...t, text: '>', end: t.offset + 1 };
    const second = { ...t, text: '>', offset: t.offset + 1, col: t.col + 1, ws: false };
    c.tokens.splice(c.i, 1, first, second);
  }
  c.expectOp('>');
}

/** Field metadata Spark writes for a CHAR(n) / VARCHAR(n) column (stored as string): `char(n)` / `varchar(n)`. */
export const CHAR_VARCHAR_TYPE = '__CHAR_VARCHAR_TYPE_STRING';

export interface CharVarchar {
  kind: 'char' | 'varchar';
  length: number;
  /** `char(n)` / `varchar(n)`, lower case. */
  text: string;
}

/** `char(n)` / `varchar(n)` (any case, spaces allowed) with n > 0, else undefined. */
export function parseCharVarchar(text: unknown): CharVarchar | undefined {
  const m = typeof text === 'string' ? /^\s*(char|varchar)\s*\(\s*(\d+)\s*\)\s*$/i.exec(text) : null;
  if (!m || Number(m[2]) < 1) return undefined;
  const kind = m[1]!.toLowerCase() as CharVarchar['kind'];
  return { kind, length: Number(m[2]), text: `${kind}(${Number(m[2])})` };
}

/** A field's CHAR/VARCHAR type (its CHAR_VARCHAR_TYPE metadata), when it has one. */
export function charVarcharOf(f: StructField): CharVarchar | undefined {
  return parseCharVarchar(f.metadata?.[CHAR_VARCHAR_TYPE]);
}

/** A field's type as Spark prints it: its CHAR/VARCHAR text when it has one. */
export function sparkFieldTypeName(f: StructField): string {
  return typeof f.type === 'string' && f.type === 'string' ? (charVarcharOf(f)?.text ?? 'string') : sparkTypeName(f.type);
}

/** A Delta type as Spark prints it in DESCRIBE (`bigint`, `int`, `array<string>`, `struct<a:int>`). */
export function sparkTypeName(t: DataType): string {
  if (typeof t === 'string') {
    switch (t) {
      case 'long': return 'bigint';
      case 'integer': return 'int';
      case 'short': return 'smallint';
      case 'byte': return 'tinyint';
      default: return t;
    }
  }
  if (t.type === 'array') return `array<${sparkTypeName(t.elementType)}>`;
  if (t.type === 'map') return `map<${sparkTypeName(t.keyType)},${sparkTypeName(t.valueType)}>`;
  return `struct<${t.fields.map((f) => `${f.name}:${sparkTypeName(f.type)}`).join(',')}>`;
}
