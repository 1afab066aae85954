/** floe SQL: Databricks-style SQL over Delta tables and the warehouse catalog. */
export { executeSql, parseSql, type SqlResult, type SqlOptions } from './executor.js';
export { tokenize, splitStatements, endsStatement, type Token } from './lexer.js';
export { translateExpr, translateQuery } from './translate.js';
export { FUNCTIONS, sparkPatternToStrftime } from './functions.js';
export { Catalog, resolveWarehouse } from '../catalog/catalog.js';
