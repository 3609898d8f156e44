import { hostname } from "node:os";
import type pg from "pg";
import type { ClusterConfig } from "../config/runner-schema.js";
import { DuckcronError } from "../errors.js";

/**
 * How to reach the cluster database, and how to name it without its credentials:
 * every message, status page and log line shows the masked form only.
 */

/** node-postgres options for `config`; `url` wins over the separate fields. */
export function poolOptions(config: ClusterConfig, max = 4): pg.PoolConfig {
  const base: pg.PoolConfig = config.url
    ? { connectionString: config.url }
    : {
        host: config.host,
        port: config.port,
        user: config.user,
        password: config.password,
        database: config.database,
      };
  return {
    ...base,
    ...(config.ssl === undefined ? {} : { ssl: config.ssl }),
    max,
    // A database that stops answering must surface as an error, not a hang, or a
    // lease could not be declared lost in time.
    connectionTimeoutMillis: 5_000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000,
  };
}

/** `postgres://user:***@host:5432/db`: the URL with its password (and query) masked. */
export function maskedTarget(config: ClusterConfig): string {
  if (config.url) return maskUrl(config.url);
  const user = config.user ? `${config.user}${config.password ? ":***" : ""}@` : "";
  return `postgres://${user}${config.host ?? ""}${config.port ? `:${config.port}` : ""}/${config.database ?? ""}`;
}

export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    // Query parameters may carry a password (?password=) or key material.
    parsed.search = "";
    return parsed.toString();
  } catch {
    return "postgres://***";
  }
}

/** The password however it is given, for the log scrubber. */
export function clusterSecrets(config: ClusterConfig): string[] {
  const values: string[] = [];
  if (config.password) values.push(config.password);
  if (config.url) {
    try {
      const parsed = new URL(config.url);
      if (parsed.password) {
        values.push(parsed.password, decodeURIComponent(parsed.password));
      }
      const fromQuery = parsed.searchParams.get("password");
      if (fromQuery) values.push(fromQuery);
    } catch {
      values.push(config.url);
    }
  }
  return [...new Set(values.filter((v) => v.length > 0))];
}

export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`;
}

/** A database failure as a CLUSTER_UNAVAILABLE naming the masked target, retryable. */
export function unavailable(config: ClusterConfig, error: unknown): DuckcronError {
  if (error instanceof DuckcronError) return error;
  let message = error instanceof Error ? error.message : String(error);
  for (const secret of clusterSecrets(config)) message = message.replaceAll(secret, "***");
  return new DuckcronError(
    "CLUSTER_UNAVAILABLE",
    `cluster database ${maskedTarget(config)}: ${message}`,
    { retryable: true },
  );
}
