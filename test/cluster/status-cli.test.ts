import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runDoctor } from "../../src/cli/doctor.js";
import { migrate } from "../../src/cluster/migrations.js";
import { RunsTable } from "../../src/cluster/runs-table.js";
import { runCli } from "../cli/run-cli.js";
import { describePg, dropSchema, freshSchema, testPgUrl } from "./pg.js";

async function withPool<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: testPgUrl() });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

describePg("duckcron status", () => {
  const schema = freshSchema("status");
  let dir: string;
  /** The test database's URL with a password the server ignores (trust auth). */
  const PASSWORD = "status-test-pw-5e1d";
  const url = () => {
    const u = new URL(testPgUrl());
    u.password = PASSWORD;
    return u.toString();
  };

  beforeAll(async () => {
    const pool = new pg.Pool({ connectionString: testPgUrl() });
    const client = await pool.connect();
    await migrate(client, schema, "r-test");
    client.release();
    const table = new RunsTable(pool, schema, "r-test", 60_000);
    await table.heartbeat("9.9.9", 1, null);
    const fire = {
      schedule: "sales",
      tenant: "acme",
      scheduledAt: new Date("2026-01-01T00:00:00Z"),
    };
    await table.claim({ ...fire, attempts: 1, catalog: "/c/acme.duckdb" });
    await table.finish(fire, 1, "success");
    await table.volumeMarker("marker-0f3c");
    await pool.end();
    dir = mkdtempSync(join(tmpdir(), "duckcron-status-"));
    writeFileSync(
      join(dir, "job.yaml"),
      "version: 1\nduckdb:\n  database: ${tenant}.duckdb\nviews: []\n",
    );
    writeFileSync(
      join(dir, "runner.yaml"),
      `version: 1
runner:
  cluster: { type: postgres, url: "\${env:DB_URL}", schema: ${schema} }
  schedules:
    - { name: sales, config: job.yaml, cron: "0 * * * *", tenants: [acme] }
`,
    );
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropSchema(schema);
  });

  it("prints the cluster's replicas and recent runs from the database, password masked", async () => {
    const result = await runCli(["status", "-c", join(dir, "runner.yaml")], {
      env: { DB_URL: url() },
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("r-test  version 9.9.9  running 1");
    expect(result.stdout).toMatch(
      /2026-01-01T00:00:00.000Z {2}sales\/acme {2}attempt 1 on r-test {2}success/,
    );
    expect(result.stdout).toContain(":***@");
    expect(result.stdout).not.toContain(PASSWORD);
  });

  it("fails with CLUSTER_UNAVAILABLE, password masked, when the database cannot be reached", async () => {
    const result = await runCli(["status", "-c", join(dir, "runner.yaml")], {
      env: { DB_URL: `postgres://u:${PASSWORD}@127.0.0.1:1/none` },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("CLUSTER_UNAVAILABLE");
    expect(result.stderr + result.stdout).not.toContain(PASSWORD);
  });

  it("doctor checks the database, the schema version and the shared catalogs volume", async () => {
    const subjects = async () =>
      Object.fromEntries(
        (await runDoctor(join(dir, "runner.yaml"), { env: { DB_URL: url() } })).checks
          .filter((c) => c.subject.startsWith("cluster") || c.subject.startsWith("catalog volume"))
          .map((c) => [c.subject.replace(/ \/.*/, ""), c.status]),
      );
    writeFileSync(join(dir, ".duckcron-volume"), "marker-0f3c\n");
    // The heartbeat of r-test reported no volume: a replica on another volume.
    expect(await subjects()).toEqual({
      "cluster database": "ok",
      "cluster schema": "ok",
      "catalog volume": "problem",
    });
    await withPool((pool) =>
      new RunsTable(pool, schema, "r-test", 60_000).heartbeat("9.9.9", 0, "marker-0f3c"),
    );
    expect((await subjects())["catalog volume"]).toBe("ok");
    unlinkSync(join(dir, ".duckcron-volume"));
    expect((await subjects())["catalog volume"]).toBe("problem");
  });
});
