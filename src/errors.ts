/**
 * Every error duckcron raises on purpose is a DuckcronError with a stable `code`.
 * Codes are part of the public surface (scripts match on them, docs list them), so
 * they live in one registry and never change meaning.
 */
export const ErrorCodes = {
  CONFIG_INVALID: "Configuration is invalid (YAML, schema, references)",
  CONFIG_NOT_FOUND: "A configuration file could not be read",
  SCHEDULE_NOT_FOUND: "No schedule of that name in runner.yaml",
  TENANT_NOT_FOUND: "The tenant is not listed for that schedule",
  SECRET_NOT_FOUND: "A referenced secret does not exist for the tenant",
  SECRET_KEY_NOT_FOUND: "A ${secret:name.key} reference names a key the secret does not hold",
  SECRET_INVALID: "A secret exists but cannot be used (bad format, unsafe permissions)",
  SECRET_ACCESS_DENIED: "The backend refused access to a secret",
  SECRET_BACKEND_UNAVAILABLE: "The secrets backend could not be reached or failed",
  BACKEND_UNSUPPORTED: "The configured secrets backend is not available in this build",
  DUCKDB_SELF_TEST_FAILED: "The linked DuckDB failed a startup self-test",
  CATALOG_BUILD_FAILED: "Building the catalog failed; the previous catalog is untouched",
  CATALOG_LOCKED: "Another build of the same catalog is in progress",
  INVALID_NAME: "A name or identifier is not allowed",
  USAGE: "The command line is invalid",
  AUDIT_LOG_INVALID:
    "The audit log cannot be opened or continued (unsafe permissions, damaged last line)",
  METRICS_EXPORT_FAILED: "Metrics could not be pushed to the Pushgateway or written as a textfile",
  RUN_TIMEOUT: "A run took longer than its schedule's timeout and was aborted",
  RUN_ABORTED: "A run was aborted because the daemon shut down before it finished",
  EXTENSION_INSTALL_FAILED:
    "A DuckDB extension could not be installed into the extension directory",
  STATE_DIR_UNWRITABLE: "The daemon's state directory cannot be created or written",
  CATALOG_DIR_UNWRITABLE: "The directory of duckdb.database cannot be created",
  CLUSTER_UNAVAILABLE: "The cluster's PostgreSQL database could not be reached or failed",
  CLUSTER_SCHEMA_MISMATCH:
    "The cluster database holds a schema version this duckcron does not know (a newer release migrated it)",
  LEASE_LOST:
    "This replica lost its claim on a run (another replica took it over, or the database was unreachable for longer than the lease); the build was not published",
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface DuckcronErrorOptions {
  /** Retrying the same operation later may succeed (backend down, lock held). */
  retryable?: boolean;
  cause?: unknown;
  /** The config field the problem is about, e.g. ["duckdb", "secrets", 0], so a caller that knows the file can locate it. */
  path?: readonly (string | number)[] | undefined;
}

export class DuckcronError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly path: readonly (string | number)[] | undefined;

  constructor(code: ErrorCode, message: string, options: DuckcronErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.path = options.path;
  }
}

/** Where in which file a problem is. Lines and columns are 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

export interface ConfigIssue extends SourceLocation {
  /** Dotted path of the field, e.g. `runner.schedules[0].cron`. */
  path: string;
  message: string;
  severity: "error" | "warning";
}

export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.col}`;
  const tag = issue.severity === "warning" ? "warning: " : "";
  return issue.path
    ? `${where}: ${tag}${issue.path}: ${issue.message}`
    : `${where}: ${tag}${issue.message}`;
}

/** All problems found in one or more config files, reported together. */
export class ConfigError extends DuckcronError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const errors = issues.filter((i) => i.severity === "error");
    super("CONFIG_INVALID", (errors.length > 0 ? errors : issues).map(formatIssue).join("\n"));
    this.issues = issues;
  }
}

/** Names the secret and tenant, never the value. */
export class SecretError extends DuckcronError {}

export class CatalogError extends DuckcronError {}

export function errorCode(error: unknown): ErrorCode | "INTERNAL" {
  return error instanceof DuckcronError ? error.code : "INTERNAL";
}
