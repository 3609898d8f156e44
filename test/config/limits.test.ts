import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRunner } from "../../src/config/load.js";
import { configError, JOB, writeTree, yaml } from "./helpers.js";

/**
 * The other side of the corpus's bounds: values at the limit, and the environment
 * fallbacks a backend honours, still load.
 */

async function load(runner: string, env: NodeJS.ProcessEnv = {}) {
  const root = await writeTree({ "runner.yaml": runner, "jobs/job.yaml": JOB });
  return loadRunner(join(root, "runner.yaml"), { env });
}

const schedule = (timeout: string, cron: string) => yaml`
  version: 1
  runner:
    http: { listen: ":9464" }
    max_concurrent_runs: 256
    schedules:
      - name: main
        config: jobs/job.yaml
        tenants: [acme]
        timeout: ${timeout}
        cron: "${cron}"
`;

describe("config at the limits", () => {
  it("accepts 24d, a cron that fires only on 29 February, a port-only listen and 256 runs", async () => {
    const runner = await load(schedule("24d", "0 0 29 2 *"));
    expect(runner.config.runner.schedules[0]?.timeout).toBe(24 * 86_400_000);
    expect(runner.config.runner.http.listen).toBe(":9464");
  });

  it("refuses one millisecond more than 24d", async () => {
    const error = await configError(() => load(schedule(String(24 * 86_400 + 0.001), "0 * * * *")));
    expect(error.message).toContain("runner.schedules[0].timeout: at most 24d");
  });

  it("takes vault's address and token from VAULT_ADDR and VAULT_TOKEN", async () => {
    const vault = yaml`
      version: 1
      runner:
        secrets: { type: vault }
    `;
    const env = { VAULT_ADDR: "http://127.0.0.1:8200", VAULT_TOKEN: "t" };
    await expect(load(vault, env)).resolves.toBeDefined();
    const missing = await configError(() => load(vault, { VAULT_ADDR: "http://127.0.0.1:8200" }));
    expect(missing.issues.map((i) => i.message)).toEqual([
      expect.stringContaining("vault needs credentials"),
    ]);
  });

  it("needs no token for vault's AppRole auth", async () => {
    const approle = yaml`
      version: 1
      runner:
        secrets: { type: vault, url: "http://127.0.0.1:8200", auth: approle, role_id: r, secret_id: s }
    `;
    await expect(load(approle)).resolves.toBeDefined();
  });
});

describe("documented defaults", () => {
  it("reads a secrets block without `type` as the env backend", async () => {
    const runner = await load(yaml`
      version: 1
      runner:
        secrets: { prefix: APP_ }
    `);
    expect(runner.config.runner.secrets).toMatchObject({ type: "env", prefix: "APP_" });
  });

  it("lets an attachment share a name with a catalog whose name comes from the tenant", async () => {
    const root = await writeTree({
      "runner.yaml": schedule("1h", "0 * * * *"),
      "jobs/job.yaml": yaml`
        version: 1
        duckdb:
          database: catalogs/\${tenant}.duckdb
        attachments:
          - { alias: ops, path: ops.duckdb }
      `,
    });
    await expect(loadRunner(join(root, "runner.yaml"), { env: {} })).resolves.toBeDefined();
  });
});
