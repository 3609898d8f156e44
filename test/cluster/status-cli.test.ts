import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrate } from "../../src/cluster/migrations.js";
import { RunsTable } from "../../src/cluster/runs-table.js";
import { runCli } from "../cli/run-cli.js";
import { describePg, dropSchema, freshSchema, testPgUrl } from "./pg.js";

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
});
