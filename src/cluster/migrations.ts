import type pg from "pg";
import { DuckcronError } from "../errors.js";

/**
 * The cluster tables, versioned. Every replica migrates at start; a session advisory
 * lock per schema makes replicas starting at the same moment take turns, so each
 * migration runs once and the others find it done. Migrations are only ever appended.
 */

const MIGRATIONS: readonly ((schema: string) => string)[] = [
  (s) => `
    CREATE TABLE ${s}.runs (
      schedule     text        NOT NULL,
      tenant       text        NOT NULL,
      scheduled_at timestamptz NOT NULL,
      -- The fence: bumped by every claim, checked by renewal, publish and finish.
      attempt      integer     NOT NULL,
      -- Claims allowed for this fire (1 + the schedule's retries.attempts).
      attempts     integer     NOT NULL,
      replica      text        NOT NULL,
      catalog      text        NOT NULL,
      state        text        NOT NULL
        CHECK (state IN ('running', 'success', 'failure', 'timeout', 'abandoned')),
      lease_until  timestamptz NOT NULL,
      started_at   timestamptz NOT NULL DEFAULT now(),
      finished_at  timestamptz,
      error_code   text,
      duration_ms  integer,
      PRIMARY KEY (schedule, tenant, scheduled_at)
    );
    -- At most one running build per catalog path, across schedules and replicas: file
    -- locks are not to be trusted on network file systems.
    CREATE UNIQUE INDEX runs_catalog_running ON ${s}.runs (catalog) WHERE state = 'running';
    CREATE INDEX runs_lease ON ${s}.runs (lease_until) WHERE state = 'running';
    CREATE INDEX runs_finished ON ${s}.runs (finished_at);
    CREATE TABLE ${s}.replicas (
      replica     text        PRIMARY KEY,
      version     text        NOT NULL,
      started_at  timestamptz NOT NULL DEFAULT now(),
      seen_at     timestamptz NOT NULL DEFAULT now(),
      running     integer     NOT NULL DEFAULT 0,
      -- The catalog volume's marker as this replica reads it (doctor compares them).
      volume      text
    );
    CREATE TABLE ${s}.volume (
      id          boolean     PRIMARY KEY DEFAULT true CHECK (id),
      marker      text        NOT NULL,
      written_by  text        NOT NULL,
      written_at  timestamptz NOT NULL DEFAULT now()
    );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface MigrationResult {
  /** Versions this call applied; empty when another replica already had. */
  applied: number[];
  version: number;
}

/** Brings the schema to SCHEMA_VERSION. Throws CLUSTER_SCHEMA_MISMATCH when the database is newer. */
export async function migrate(
  client: pg.ClientBase,
  schema: string,
  replica: string,
): Promise<MigrationResult> {
  const s = quote(schema);
  await client.query("SELECT pg_advisory_lock(hashtext($1))", [`duckcron:migrate:${schema}`]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${s}.schema_version (
        version    integer     PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now(),
        applied_by text        NOT NULL
      )`);
    let version = await currentVersion(client, schema);
    if (version > SCHEMA_VERSION) throw tooNew(schema, version);
    const applied: number[] = [];
    while (version < SCHEMA_VERSION) {
      const next = version + 1;
      await client.query("BEGIN");
      try {
        await client.query(MIGRATIONS[version]!(s));
        await client.query(
          `INSERT INTO ${s}.schema_version (version, applied_by) VALUES ($1, $2)`,
          [next, replica],
        );
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      }
      applied.push(next);
      version = next;
    }
    return { applied, version };
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`duckcron:migrate:${schema}`]);
  }
}

/** The schema's version; 0 when duckcron never migrated it. */
export async function currentVersion(
  client: pg.ClientBase | pg.Pool,
  schema: string,
): Promise<number> {
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass($1) AS t", [
    `${quote(schema)}.schema_version`,
  ]);
  if (!exists.rows[0]?.t) return 0;
  const { rows } = await client.query<{ v: number | null }>(
    `SELECT max(version) AS v FROM ${quote(schema)}.schema_version`,
  );
  return rows[0]?.v ?? 0;
}

export function tooNew(schema: string, version: number): DuckcronError {
  return new DuckcronError(
    "CLUSTER_SCHEMA_MISMATCH",
    `cluster schema "${schema}" is at version ${version}, this duckcron knows up to ${SCHEMA_VERSION}; run the same duckcron release on every replica`,
  );
}

/** The schema name is validated by the config schema; quoting keeps it an identifier anyway. */
export function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
