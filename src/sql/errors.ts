/** SQL errors: parse errors (syntax) and analysis errors (valid syntax floe cannot run), with line and column. */
import { FloeError } from '../errors.js';
import type { Token } from './lexer.js';

export const PARSE_ERROR = 'FLOE_SQL_PARSE_ERROR';
export const ANALYSIS_ERROR = 'FLOE_SQL_ANALYSIS_ERROR';

export function sqlParseError(message: string, line: number, col: number): FloeError {
  return new FloeError(PARSE_ERROR, `${message} (line ${line}, column ${col})`, { line, col });
}

export function tokenDesc(t: Token): string {
  return t.kind === 'eof' ? 'end of input' : `'${t.text.length > 40 ? t.text.slice(0, 40) + '…' : t.text}'`;
}

export function parseErrorAt(t: Token, message: string): FloeError {
  return sqlParseError(message, t.line, t.col);
}

export function analysisErrorAt(t: Token, message: string, details: Record<string, unknown> = {}): FloeError {
  return new FloeError(ANALYSIS_ERROR, `${message} (line ${t.line}, column ${t.col})`, { line: t.line, col: t.col, ...details });
}
