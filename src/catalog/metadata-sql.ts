import { quoteLiteral } from "./sql.js";
import type { Statement } from "./statement.js";

/**
 * The `duckcron` schema each catalog carries: what built it and from which
 * definition. Names, types and hashes only; secret values never reach the file.
 */
export const METADATA_SCHEMA = "duckcron";

export interface SecretRecord {
  name: string;
  type: string;
  persistent: boolean;
}

/** What a catalog file records about itself (schema `duckcron`). Names and types only, never values. */
export interface CatalogMetadata {
  formatVersion: number;
  /** HMAC keyed with the fingerprint key, which lives beside the catalog, never in it. */
  fingerprint: string;
  builtAt: string;
  duckcronVersion: string;
  tenant: string;
  /** View key (`name` or `schema.name`) to a hash of its definition. */
  views: Record<string, string>;
  secrets: SecretRecord[];
  hasTables: boolean;
  /**
   * Name of the per-build folder (beside the catalog) holding this catalog's persistent
   * secrets, which `<catalog>.secrets` points to once published. Set by apply, which
   * picks the folder; undefined when the catalog has no secrets folder.
   */
  secretDirectory?: string | undefined;
}

/** Records the secrets folder apply chose; the name is bound, not spliced into the SQL. */
export function secretDirectoryStatement(folder: string): Statement {
  return {
    stage: "metadata",
    target: "table duckcron.catalog",
    sql: `UPDATE ${METADATA_SCHEMA}.catalog SET secret_directory = $1`,
    params: [{ value: folder, sensitive: false }],
  };
}

export function metadataStatements(m: CatalogMetadata): Statement[] {
  const lit = quoteLiteral;
  const bool = (b: boolean) => (b ? "true" : "false");
  const statement = (target: string, sql: string): Statement => ({
    stage: "metadata",
    target,
    sql,
    params: [],
  });
  const out: Statement[] = [
    statement("schema duckcron", `CREATE SCHEMA IF NOT EXISTS ${METADATA_SCHEMA}`),
    statement(
      "table duckcron.catalog",
      `CREATE OR REPLACE TABLE ${METADATA_SCHEMA}.catalog (format_version INTEGER, fingerprint VARCHAR, built_at VARCHAR, duckcron_version VARCHAR, tenant VARCHAR, has_tables BOOLEAN, secret_directory VARCHAR)`,
    ),
    statement(
      "table duckcron.catalog",
      `INSERT INTO ${METADATA_SCHEMA}.catalog VALUES (${m.formatVersion}, ${lit(m.fingerprint)}, ${lit(m.builtAt)}, ${lit(m.duckcronVersion)}, ${lit(m.tenant)}, ${bool(m.hasTables)}, ${m.secretDirectory === undefined ? "NULL" : lit(m.secretDirectory)})`,
    ),
    statement(
      "table duckcron.views",
      `CREATE OR REPLACE TABLE ${METADATA_SCHEMA}.views (name VARCHAR, definition_hash VARCHAR)`,
    ),
    statement(
      "table duckcron.secrets",
      `CREATE OR REPLACE TABLE ${METADATA_SCHEMA}.secrets (name VARCHAR, type VARCHAR, persistent BOOLEAN)`,
    ),
  ];
  const views = Object.entries(m.views).map(([name, hash]) => `(${lit(name)}, ${lit(hash)})`);
  if (views.length > 0) {
    out.push(
      statement(
        "table duckcron.views",
        `INSERT INTO ${METADATA_SCHEMA}.views VALUES ${views.join(", ")}`,
      ),
    );
  }
  const secrets = m.secrets.map((s) => `(${lit(s.name)}, ${lit(s.type)}, ${bool(s.persistent)})`);
  if (secrets.length > 0) {
    out.push(
      statement(
        "table duckcron.secrets",
        `INSERT INTO ${METADATA_SCHEMA}.secrets VALUES ${secrets.join(", ")}`,
      ),
    );
  }
  return out;
}
