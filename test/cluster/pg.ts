import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import pg from "pg";
import { describe } from "vitest";
import { REPO } from "../cli/run-cli.js";

/**
 * The PostgreSQL the cluster tests run against: `npm test` starts a throwaway one
 * (scripts/test-pg.sh) and passes its URL in DUCKCRON_TEST_PG. Only an explicit
 * DUCKCRON_TEST_PG=off skips these tests; a missing URL fails them, so a CI run
 * without a database cannot pass by skipping.
 */

const setting = process.env.DUCKCRON_TEST_PG;

export const pgDisabled = setting === "off";

/** describe() for suites that need PostgreSQL. */
export const describePg: typeof describe = pgDisabled
  ? (describe.skip as typeof describe)
  : describe;

export function testPgUrl(): string {
  if (!setting) {
    throw new Error(
      "DUCKCRON_TEST_PG is not set: run the tests with `npm test` (it starts PostgreSQL), or set DUCKCRON_TEST_PG to a database URL, or to `off` to skip the cluster tests",
    );
  }
  return setting;
}

/** A schema name no other test uses, so test files can share one database. */
export function freshSchema(prefix = "t"): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

export async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testPgUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/** pg_ctl against the test cluster (stop/start it under load). */
export async function pgCtl(...args: string[]): Promise<void> {
  await promisify(execFile)(`${REPO}/scripts/test-pg.sh`, ["ctl", ...args]);
}
