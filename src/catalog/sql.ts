import { CatalogError } from "../errors.js";

/**
 * The only places duckcron turns values and names into SQL text. Everything else
 * builds SQL from these two and from fixed keywords.
 */

/**
 * A standard SQL string literal: single quotes, embedded quotes doubled. Backslashes
 * stay literal in DuckDB's plain '...' strings, so no escaping beyond that is needed,
 * and an `E'...'` prefix (which would interpret them) is never produced.
 */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Names duckcron is willing to put into SQL: letters, digits, `_`, not starting with a digit. */
export const SAFE_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A double-quoted identifier. The name must match SAFE_IDENTIFIER (the config schema
 * already enforces it; this is the last line of defence), so the doubling of `"` is
 * belt and braces.
 */
export function quoteIdentifier(name: string): string {
  if (!SAFE_IDENTIFIER.test(name)) {
    throw new CatalogError(
      "INVALID_NAME",
      `${JSON.stringify(name)} is not an allowed SQL name (use letters, digits and '_', not starting with a digit)`,
    );
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL keyword-like token (secret type, provider, option key, extension name), emitted bare. */
export function keyword(name: string, what: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
    throw new CatalogError("INVALID_NAME", `${JSON.stringify(name)} is not an allowed ${what}`);
  }
  return name;
}
