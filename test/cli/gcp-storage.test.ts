import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GcpTestServer, startGcpTestServer } from "../servers/gcp-test-server.js";
import { type CliResult, runCli } from "./run-cli.js";

/**
 * A job with a `gcs` storage secret whose HMAC key comes from Secret Manager, run
 * through the built CLI against the GCP test server. CI's DuckDB has no httpfs
 * extension (and may not download one): validate and plan still work, doctor names
 * the missing extension, and run fails on it without printing a value.
 */
const KEY_ID = "GOOG1EPLANTEDKEYID0000";
const SECRET = "gcs-hmac-PLANTED-secret-3e9a";

const JOB = `version: 1
duckdb:
  database: out/\${tenant}.duckdb
  # A staged, empty extension directory: DuckDB must not reach for the network.
  extension_directory: ext
  secrets:
    - name: lake
      type: gcs
      key_id: \${secret:gcs_hmac.key_id}
      secret: \${secret:gcs_hmac.secret}
      scope: gs://acme-lake/
views:
  - { name: one, sql: SELECT 1 AS x }
`;

describe("a gcs secret from the gcp backend", () => {
  let server: GcpTestServer;
  let dir: string;
  const outputs: CliResult[] = [];
  const cli = async (args: string[]) => {
    const result = await runCli(args, { cwd: dir, env: { HOME: dir } });
    outputs.push(result);
    return result;
  };

  beforeAll(async () => {
    server = await startGcpTestServer();
    dir = mkdtempSync(join(tmpdir(), "duckcron-gcs-"));
    const credentials = server.credentialsFile(dir);
    server.seed("duckcron-acme", JSON.stringify({ gcs_hmac: { key_id: KEY_ID, secret: SECRET } }));
    writeFileSync(join(dir, "lake.yaml"), JOB);
    mkdirSync(join(dir, "ext"));
    writeFileSync(
      join(dir, "runner.yaml"),
      `version: 1
runner:
  secrets:
    type: gcp
    project_id: ${server.projectId}
    endpoint: ${server.url}
    credentials_file: ${credentials}
    prefix: duckcron-
    layout: bundle
  schedules:
    - { name: lake, config: lake.yaml, cron: "0 * * * *", tenants: [acme] }
`,
    );
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("validates without the httpfs extension or a request", async () => {
    const result = await cli(["validate"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("secrets backend gcp");
    expect(server.faults.requests()).toBe(0);
  });

  it("plans the gcs secret with the values fetched in one access call, masked", async () => {
    const result = await cli(["plan", "lake", "--tenant", "acme"]);
    // Nothing else either: google-auth-library prints no deprecation warning on Node 20.
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/CREATE[^;]*SECRET[^;]*TYPE gcs/i);
    expect(server.faults.requests("AccessSecretVersion")).toBe(1);
  });

  it("doctor reaches Secret Manager and says httpfs is missing", async () => {
    const result = await cli(["doctor"]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/secrets backend gcp.*reachable/);
    expect(result.stdout).toMatch(/httpfs not in /);
    expect(server.faults.requests("ListSecrets")).toBe(1);
  });

  it("run fails on the missing extension, not on the secrets", async () => {
    const result = await cli(["run", "lake"]);
    expect(result.code).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toMatch(/httpfs/);
  });

  it("printed neither the key id nor the secret anywhere", () => {
    for (const { stdout, stderr } of outputs) {
      for (const value of [KEY_ID, SECRET]) {
        expect(stdout).not.toContain(value);
        expect(stderr).not.toContain(value);
      }
    }
    expect(outputs).toHaveLength(4);
  });
});
