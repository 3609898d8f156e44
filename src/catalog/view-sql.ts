import { createHash } from "node:crypto";
import type { AttachmentDefinition, ViewDefinition } from "../config/job-schema.js";
import { CatalogError } from "../errors.js";
import { renderPlain, resolveLocal } from "./render.js";
import { keyword, quoteIdentifier, quoteLiteral } from "./sql.js";
import type { Statement } from "./statement.js";

/**
 * Views and attachments. None of this may hold a secret (the schema forbids it):
 * view definitions are stored in the catalog file, so values are inlined as
 * literals rather than bound.
 */

const READERS = { parquet: "read_parquet", csv: "read_csv", json: "read_json" } as const;

/** `sales` for main-schema views, `schema.name` otherwise: the key in metadata and events. */
export function viewKey(view: ViewDefinition): string {
  return view.schema === undefined || view.schema === "main"
    ? view.name
    : `${view.schema}.${view.name}`;
}

export function viewStatement(view: ViewDefinition, tenant: string, dir: string): Statement {
  const key = viewKey(view);
  const kind = view.materialize === "table" ? "TABLE" : "VIEW";
  const name = `${quoteIdentifier(view.schema ?? "main")}.${quoteIdentifier(view.name)}`;
  return {
    stage: "view",
    target: `${view.materialize === "table" ? "table" : "view"} ${key}`,
    sql: `CREATE OR REPLACE ${kind} ${name} AS ${viewQuery(view, tenant, dir, key)}`,
    params: [],
  };
}

export function schemaStatement(schema: string): Statement {
  return {
    stage: "view",
    target: `schema ${schema}`,
    sql: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`,
    params: [],
  };
}

function viewQuery(view: ViewDefinition, tenant: string, dir: string, key: string): string {
  const where = `view ${key}`;
  if (view.sql !== undefined) return renderPlain(view.sql, tenant, `${where}: sql`);
  if (view.table !== undefined) {
    if (view.database === undefined)
      throw new CatalogError("CONFIG_INVALID", `${where}: needs database`);
    const parts = [view.database, ...view.table.split(".")].map(quoteIdentifier);
    return `SELECT * FROM ${parts.join(".")}`;
  }
  if (view.uri !== undefined) {
    const source = view.source;
    if (source !== "parquet" && source !== "csv" && source !== "json") {
      throw new CatalogError(
        "CONFIG_INVALID",
        `${where}: file views need source parquet, csv or json`,
      );
    }
    const uris = (Array.isArray(view.uri) ? view.uri : [view.uri]).map((u) =>
      quoteLiteral(resolveLocal(renderPlain(u, tenant, `${where}: uri`), dir)),
    );
    const args = [uris.length === 1 ? (uris[0] as string) : `[${uris.join(", ")}]`];
    for (const [k, v] of Object.entries(view.options ?? {})) {
      args.push(`${keyword(k, "reader option")} = ${scalarLiteral(v, `${where}: options.${k}`)}`);
    }
    return `SELECT * FROM ${READERS[source]}(${args.join(", ")})`;
  }
  throw new CatalogError("CONFIG_INVALID", `${where}: needs sql, uri or table`);
}

function scalarLiteral(value: string | number | boolean, where: string): string {
  if (typeof value === "string") return quoteLiteral(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (!Number.isFinite(value))
    throw new CatalogError("CONFIG_INVALID", `${where}: not a finite number`);
  return String(value);
}

export function attachStatement(a: AttachmentDefinition, tenant: string, dir: string): Statement {
  const where = `attachment ${a.alias}`;
  const raw = a.path === undefined ? "" : renderPlain(a.path, tenant, `${where}: path`);
  // duckdb and sqlite paths are files; postgres and mysql paths are connection strings.
  const path =
    (a.type === "duckdb" || a.type === "sqlite") && raw !== "" ? resolveLocal(raw, dir) : raw;
  const options: string[] = [];
  if (a.type !== "duckdb") options.push(`TYPE ${keyword(a.type, "attachment type")}`);
  if (a.secret !== undefined) options.push(`SECRET ${keyword(a.secret, "secret name")}`);
  if (a.read_only) options.push("READ_ONLY");
  const suffix = options.length > 0 ? ` (${options.join(", ")})` : "";
  return {
    stage: "attach",
    target: where,
    sql: `ATTACH ${quoteLiteral(path)} AS ${quoteIdentifier(a.alias)}${suffix}`,
    params: [],
  };
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
