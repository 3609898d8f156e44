import { createHmac } from "node:crypto";
import type { ExtensionRef, JobFile } from "../config/job-schema.js";
import { CatalogError } from "../errors.js";
import { VERSION as DUCKCRON_VERSION } from "../version.js";
import { newFingerprintKey } from "./fingerprint-key.js";
import { inlineParams } from "./inline.js";
import { type CatalogMetadata, metadataStatements } from "./metadata-sql.js";
import { renderPlain, resolveLocal } from "./render.js";
import { publishedSecretPath } from "./secret-folders.js";
import { createSecretStatement, dropPersistentSecretStatement } from "./secret-sql.js";
import { keyword, quoteLiteral } from "./sql.js";
import type { Statement } from "./statement.js";
import { attachStatement, schemaStatement, sha256, viewKey, viewStatement } from "./view-sql.js";

/** Bumped when the catalog layout or the fingerprint input changes, forcing a rebuild. */
export const CATALOG_FORMAT_VERSION = 2;

export interface Plan {
  catalogPath: string;
  /** `<catalog>.secrets`: what readers set as secret_directory; builds write elsewhere. */
  secretDirectory: string;
  instanceOptions: Readonly<Record<string, string>>;
  statements: readonly Statement[];
  fingerprint: string;
  record: CatalogMetadata;
  /** Key of the fingerprint HMAC: the stored one, or a new one apply stores with the catalog. */
  fingerprintKey: string;
  changes: { added: string[]; changed: string[]; dropped: string[] };
  persistentSecretsToDrop: string[];
}

export interface PlanInput {
  job: { definition: JobFile; dir: string };
  tenant: string;
  secrets: { value(ref: { name: string; key?: string | undefined }): string };
  previous?: CatalogMetadata | undefined;
  /** The catalog's stored fingerprint key (readFingerprintKey); a new one when undefined. */
  fingerprintKey?: string | undefined;
  /** Recorded as built_at; never part of the fingerprint. */
  now?: Date | undefined;
}

/** Named repositories DuckDB knows; anything else is a URL or a local directory. */
const NAMED_REPOSITORIES = new Set([
  "core",
  "core_nightly",
  "community",
  "local_build_debug",
  "local_build_release",
]);

/**
 * The ordered SQL that builds one tenant's catalog. Pure: everything it needs comes
 * in through `input`, including resolved secret values and the previous catalog's
 * metadata, so `duckcron plan` and a real run produce the same statements.
 */
export function plan(input: PlanInput): Plan {
  const { definition, dir } = input.job;
  const { tenant, previous } = input;
  const duckdb = definition.duckdb;

  const catalogPath = catalogPathFor(input.job, tenant);
  const secretDirectory = publishedSecretPath(catalogPath);

  const current = new Set(duckdb.secrets.filter((s) => s.persistent).map((s) => s.name));
  const persistentSecretsToDrop = (previous?.secrets ?? [])
    .filter((s) => s.persistent && !current.has(s.name))
    .map((s) => s.name);
  const previousNames = new Set((previous?.secrets ?? []).map((s) => s.name));

  const instanceOptions = buildInstanceOptions(
    input,
    secretDirectory,
    current.size > 0 || persistentSecretsToDrop.length > 0,
  );

  const statements: Statement[] = [];
  for (const ext of duckdb.install_extensions) statements.push(installStatement(ext, dir));
  for (const ext of duckdb.load_extensions) {
    const name = extensionName(ext);
    statements.push({
      stage: "extension",
      target: `extension ${name}`,
      sql: `LOAD ${keyword(name, "extension name")}`,
      params: [],
    });
  }
  for (const name of persistentSecretsToDrop) {
    const type = previous?.secrets.find((s) => s.name === name)?.type ?? "unknown";
    statements.push(dropPersistentSecretStatement(name, type));
  }
  const ctx = { tenant, secrets: input.secrets };
  duckdb.secrets.forEach((secret, index) => {
    try {
      statements.push(createSecretStatement(secret, ctx, previousNames.has(secret.name)));
    } catch (error) {
      // A value that renders wrong is only known per tenant, at plan time: say which entry.
      if (error instanceof CatalogError && error.path === undefined) {
        throw new CatalogError(error.code, error.message, { path: ["duckdb", "secrets", index] });
      }
      throw error;
    }
  });
  for (const a of definition.attachments) statements.push(attachStatement(a, tenant, dir));

  const schemas = new Set<string>();
  const views: Record<string, string> = {};
  for (const view of definition.views) {
    const schema = view.schema ?? "main";
    if (schema !== "main" && !schemas.has(schema)) {
      schemas.add(schema);
      statements.push(schemaStatement(schema));
    }
    const statement = viewStatement(view, tenant, dir);
    statements.push(statement);
    views[viewKey(view)] = sha256(statement.sql);
  }

  const fingerprintKey = input.fingerprintKey ?? newFingerprintKey();
  const fingerprint = fingerprintOf(fingerprintKey, catalogPath, instanceOptions, statements);
  const record: CatalogMetadata = {
    formatVersion: CATALOG_FORMAT_VERSION,
    fingerprint,
    builtAt: (input.now ?? new Date()).toISOString(),
    duckcronVersion: DUCKCRON_VERSION,
    tenant,
    views,
    secrets: duckdb.secrets.map((s) => ({ name: s.name, type: s.type, persistent: s.persistent })),
    hasTables: definition.views.some((v) => v.materialize === "table"),
  };
  statements.push(...metadataStatements(record));

  return {
    catalogPath,
    secretDirectory,
    instanceOptions,
    statements,
    fingerprint,
    record,
    fingerprintKey,
    changes: diffViews(previous?.views ?? {}, views),
    persistentSecretsToDrop,
  };
}

/** The absolute catalog path for a tenant: what to pass readCatalogMetadata() before planning. */
export function catalogPathFor(job: PlanInput["job"], tenant: string): string {
  return resolveLocal(
    renderPlain(job.definition.duckdb.database, tenant, "duckdb.database"),
    job.dir,
  );
}

function buildInstanceOptions(
  input: PlanInput,
  secretDirectory: string,
  persistent: boolean,
): Record<string, string> {
  const duckdb = input.job.definition.duckdb;
  const options: Record<string, string> = {};
  for (const [key, value] of Object.entries(duckdb.settings)) options[key] = String(value);
  if (duckdb.extension_directory !== undefined) {
    options.extension_directory = resolveLocal(
      renderPlain(duckdb.extension_directory, input.tenant, "duckdb.extension_directory"),
      input.job.dir,
    );
    // A pre-staged directory means "use what is there": never reach for the network.
    options.autoinstall_known_extensions ??= "false";
  }
  // Always the catalog's own directory, never ~/.duckdb; only opened when needed.
  options.secret_directory = secretDirectory;
  options.allow_persistent_secrets = persistent ? "true" : "false";
  return options;
}

function extensionName(ext: ExtensionRef): string {
  return typeof ext === "string" ? ext : ext.name;
}

function installStatement(ext: ExtensionRef, dir: string): Statement {
  const name = keyword(extensionName(ext), "extension name");
  let sql = `INSTALL ${name}`;
  if (typeof ext !== "string" && ext.repository !== undefined) {
    const repo = ext.repository;
    sql += NAMED_REPOSITORIES.has(repo)
      ? ` FROM ${repo}`
      : ` FROM ${quoteLiteral(resolveLocal(repo, dir))}`;
  }
  return { stage: "extension", target: `extension ${name}`, sql, params: [] };
}

/**
 * HMAC over everything that shapes the catalog, secret values included, so a rotated
 * credential triggers a rebuild. Keyed with a key kept outside the catalog, so the
 * stored value cannot be used to test guesses of a secret.
 */
function fingerprintOf(
  key: string,
  catalogPath: string,
  instanceOptions: Record<string, string>,
  statements: readonly Statement[],
): string {
  const body = JSON.stringify({
    format: CATALOG_FORMAT_VERSION,
    catalogPath,
    instanceOptions: Object.entries(instanceOptions).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    ),
    statements: statements.map((s) => [s.stage, s.target, s.sql, s.params.map((p) => p.value)]),
  });
  return createHmac("sha256", key).update(body).digest("hex");
}

function diffViews(before: Record<string, string>, after: Record<string, string>): Plan["changes"] {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [key, hash] of Object.entries(after)) {
    if (!(key in before)) added.push(key);
    else if (before[key] !== hash) changed.push(key);
  }
  const dropped = Object.keys(before).filter((key) => !(key in after));
  return { added, changed, dropped };
}

/** The statement as SQL text with parameters inlined; sensitive values read '***'. */
export function formatStatement(s: Statement): string {
  return inlineParams(s, true);
}
