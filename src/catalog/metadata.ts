import { access } from "node:fs/promises";
import { DuckDBInstance } from "@duckdb/node-api";
import { CatalogError } from "../errors.js";
import { type CatalogMetadata, METADATA_SCHEMA } from "./metadata-sql.js";
import { quoteLiteral } from "./sql.js";

/** An instance that only looks: it opens nothing by itself and loads nothing. */
const LOOK_ONLY = {
  allow_persistent_secrets: "false",
  autoinstall_known_extensions: "false",
  autoload_known_extensions: "false",
} as const;

// One in-memory instance for every read, attaching each catalog READ_ONLY for the
// moment: opening and closing an instance per catalog cost more than the read, and
// closing ran on the event loop.
let looking: Promise<DuckDBInstance> | undefined;
let reads = 0;

function lookInstance(): Promise<DuckDBInstance> {
  looking ??= DuckDBInstance.create(":memory:", { ...LOOK_ONLY }).catch((error: unknown) => {
    looking = undefined;
    throw error;
  });
  return looking;
}

/**
 * What the catalog at `catalogPath` says about itself, or undefined when there is no
 * file or it holds no duckcron metadata. Attaches READ_ONLY, which coexists with other
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
  const connection = await (await lookInstance()).connect();
  const alias = `duckcron_look_${++reads}`;
  try {
    await connection.run(`ATTACH ${quoteLiteral(catalogPath)} AS ${alias} (READ_ONLY)`);
  } catch (error) {
    connection.closeSync();
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
  const schema = `${alias}.${METADATA_SCHEMA}`;
  try {
    const tables = await connection.runAndReadAll(
      `SELECT table_name FROM duckdb_tables() WHERE database_name = '${alias}' AND schema_name = '${METADATA_SCHEMA}'`,
    );
    const names = new Set(tables.getRowObjectsJS().map((r) => String(r.table_name)));
    if (!names.has("catalog") || !names.has("views") || !names.has("secrets")) return undefined;
    const catalog = (
      await connection.runAndReadAll(`SELECT * FROM ${schema}.catalog LIMIT 1`)
    ).getRowObjectsJS()[0];
    if (!catalog) return undefined;
    const views = (
      await connection.runAndReadAll(`SELECT name, definition_hash FROM ${schema}.views`)
    )
      .getRowObjectsJS()
      .map((r) => [String(r.name), String(r.definition_hash)] as const);
    const secrets = (
      await connection.runAndReadAll(`SELECT name, type, persistent FROM ${schema}.secrets`)
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
    await connection.run(`DETACH ${alias}`).finally(() => connection.closeSync());
  }
}
