import { existsSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, exampleEnv, runCli } from "./run-cli.js";

/** The README's first command, end to end: the bundled example builds real catalogs. */
describe("the bundled example", () => {
  let dir: string;
  const env = exampleEnv();

  beforeAll(() => {
    dir = copyExample();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("validates", async () => {
    const result = await runCli(["validate"], { cwd: dir, env });
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(
      /runner\.yaml: ok \(1 schedule, 1 job file, 2 tenants, secrets backend env\)/,
    );
    expect(result.code).toBe(0);
  });

  it("builds one catalog per tenant, with that tenant's data", async () => {
    const result = await runCli(["run", "sales"], { cwd: dir, env });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^built sales\/acme .*catalogs\/acme\/sales\.duckdb views=5 /m);
    expect(result.stdout).toMatch(
      /^built sales\/globex .*catalogs\/globex\/sales\.duckdb views=5 /m,
    );

    const counts: Record<string, bigint> = {};
    for (const tenant of ["acme", "globex"]) {
      const instance = await DuckDBInstance.create(join(dir, "catalogs", tenant, "sales.duckdb"), {
        access_mode: "READ_ONLY",
      });
      const connection = await instance.connect();
      const rows = await connection.runAndReadAll("SELECT count(*) FROM orders");
      counts[tenant] = rows.getRows()[0]?.[0] as bigint;
      const revenue = await connection.runAndReadAll("SELECT count(*) FROM revenue_by_customer");
      expect(Number(revenue.getRows()[0]?.[0])).toBeGreaterThan(0);
      connection.closeSync();
      instance.closeSync();
    }
    expect(counts).toEqual({ acme: 5n, globex: 3n });
  });

  it("keeps the persistent secret in the catalog's own 0700 directory", () => {
    const secrets = join(dir, "catalogs", "acme", "sales.duckdb.secrets");
    expect(statSync(secrets).mode & 0o777).toBe(0o700);
    expect(readdirSync(secrets)).toEqual(["egress_proxy.duckdb_secret"]);
    expect(statSync(join(secrets, "egress_proxy.duckdb_secret")).mode & 0o777).toBe(0o600);
  });

  it("leaves no temporary files beside the catalogs: the catalog, its secrets link, the folder it names, the fingerprint key", () => {
    const entries = readdirSync(join(dir, "catalogs", "acme")).sort();
    expect(entries).toHaveLength(4);
    expect(entries[0]).toBe(".sales.duckdb.fingerprint-key");
    expect(entries[1]).toMatch(/^\.sales\.duckdb\.secrets-[0-9a-f]{16}$/);
    expect(entries.slice(2)).toEqual(["sales.duckdb", "sales.duckdb.secrets"]);
    expect(readlinkSync(join(dir, "catalogs", "acme", "sales.duckdb.secrets"))).toBe(entries[1]);
  });

  it("rebuilds on every run, because orders_snapshot is a snapshot taken at build time", async () => {
    const again = await runCli(["run", "sales", "--tenant", "acme"], { cwd: dir, env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^built sales\/acme /m);
    expect(again.stdout).not.toContain("globex");
  });

  it("prints the plan with every secret value masked", async () => {
    const result = await runCli(["plan", "sales", "--tenant", "globex"], { cwd: dir, env });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `CREATE OR REPLACE TEMPORARY SECRET "orders_api" (TYPE http, SCOPE ['https://api.example.com/globex/'], BEARER_TOKEN '***');`,
    );
    expect(result.stdout).toContain(
      `CREATE OR REPLACE PERSISTENT SECRET "egress_proxy" (TYPE http, HTTP_PROXY 'http://proxy.internal:3128', HTTP_PROXY_USERNAME 'globex', HTTP_PROXY_PASSWORD '***');`,
    );
    for (const value of Object.values(env))
      expect(result.stdout + result.stderr).not.toContain(value);
  });

  it("names the schedule or tenant that does not exist, with exit code 2", async () => {
    const schedule = await runCli(["run", "sale"], { cwd: dir, env });
    expect(schedule.code).toBe(2);
    expect(schedule.stderr).toContain('no schedule named "sale" (did you mean "sales"?');
    const tenant = await runCli(["run", "sales", "--tenant", "initech"], { cwd: dir, env });
    expect(tenant.code).toBe(2);
    expect(tenant.stderr).toContain('schedule "sales" has no tenant "initech"');
    expect(existsSync(join(dir, "catalogs", "initech"))).toBe(false);
  });

  it("fails a tenant whose secret is missing with one located line and exit 1", async () => {
    const { DUCKCRON_GLOBEX_API_TOKEN: _, ...partial } = env;
    const result = await runCli(["run", "sales"], { cwd: dir, env: partial });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^built sales\/acme /m);
    expect(result.stdout).toMatch(/^failed sales\/globex SECRET_NOT_FOUND /m);
    const line = result.stderr.split("\n").find((l) => l.startsWith("duckcron: sales/globex: "));
    expect(line).toMatch(
      /jobs\/sales\.yaml:\d+:\d+: duckdb\.secrets\[0\]\.bearer_token: secret "api_token" not found for tenant "globex"/,
    );
  });

  it("reports JSON with --json", async () => {
    const result = await runCli(["run", "sales", "--json"], { cwd: dir, env });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      schedule: string;
      results: { tenant: string; status: string }[];
    };
    expect(report.schedule).toBe("sales");
    expect(report.results.map((r) => [r.tenant, r.status])).toEqual([
      ["acme", "success"],
      ["globex", "success"],
    ]);
  });
});
