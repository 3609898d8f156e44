import { access } from "node:fs/promises";
import { DuckDBInstance } from "@duckdb/node-api";
import { CatalogError } from "../errors.js";
import { type CatalogMetadata, METADATA_SCHEMA } from "./metadata-sql.js";

/** Options for opening someone else's catalog to look, and nothing else. */
const LOOK_ONLY = {
  access_mode: "READ_ONLY",
  allow_persistent_secrets: "false",
  autoinstall_known_extensions: "false",
  autoload_known_extensions: "false",
} as const;

/**
 * What the catalog at `catalogPath` says about itself, or undefined when there is no
 * file or it holds no duckcron metadata. Opens READ_ONLY, which coexists with other
 * readers; a file held read-write elsewhere is CATALOG_LOCKED.
 */
export async function readCatalogMetadata(
  catalogPath: string,
): Promise<CatalogMetadata | undefined> {
  try {
    await access(catalogPath);
  } catch {
    return undefined;
  }
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(catalogPath, { ...LOOK_ONLY });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/Could not set lock/i.test(message)) {
      throw new CatalogError(
        "CATALOG_LOCKED",
        `${catalogPath} is open read-write in another process: ${message}`,
        {
          retryable: true,
        },
      );
    }
    throw new CatalogError(
      "CATALOG_BUILD_FAILED",
      `${catalogPath} cannot be read as a DuckDB catalog: ${message}`,
    );
  }
  const connection = await instance.connect();
  try {
    const tables = await connection.runAndReadAll(
      `SELECT table_name FROM duckdb_tables() WHERE schema_name = '${METADATA_SCHEMA}'`,
    );
    const names = new Set(tables.getRowObjectsJS().map((r) => String(r.table_name)));
    if (!names.has("catalog") || !names.has("views") || !names.has("secrets")) return undefined;
    const catalog = (
      await connection.runAndReadAll(`SELECT * FROM ${METADATA_SCHEMA}.catalog LIMIT 1`)
    ).getRowObjectsJS()[0];
    if (!catalog) return undefined;
    const views = (
      await connection.runAndReadAll(`SELECT name, definition_hash FROM ${METADATA_SCHEMA}.views`)
    )
      .getRowObjectsJS()
      .map((r) => [String(r.name), String(r.definition_hash)] as const);
    const secrets = (
      await connection.runAndReadAll(
        `SELECT name, type, persistent FROM ${METADATA_SCHEMA}.secrets`,
      )
    )
      .getRowObjectsJS()
      .map((r) => ({
        name: String(r.name),
        type: String(r.type),
        persistent: r.persistent === true,
      }));
    return {
      formatVersion: Number(catalog.format_version),
      fingerprint: String(catalog.fingerprint),
      builtAt: String(catalog.built_at),
      duckcronVersion: String(catalog.duckcron_version),
      tenant: String(catalog.tenant),
      views: Object.fromEntries(views),
      secrets,
      hasTables: catalog.has_tables === true,
      // Absent before format version 2.
      secretDirectory:
        typeof catalog.secret_directory === "string" ? catalog.secret_directory : undefined,
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
