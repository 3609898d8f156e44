// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config references are written ${...}; these strings are data, not templates
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AzureTestServer, startAzureTestServer } from "../servers/azure-test-server.js";
import { copyExample, runCli } from "./run-cli.js";

/**
 * The CLI with runner.secrets.type: azure against the Key Vault test server: a run
 * builds from Key Vault values, and a job with an `azure` storage secret plans and
 * validates without DuckDB's azure extension, while doctor says it is missing.
 */
const VALUES = {
  api_token: "kv-api-token-PLANTED-6a1f",
  proxy_password: "kv-proxy-pw-PLANTED-0b7e",
  storage_connection_string:
    "DefaultEndpointsProtocol=https;AccountName=acmestorage;AccountKey=kv-PLANTED-key-93c4==;EndpointSuffix=core.windows.net",
};

const BLOB_JOB = `version: 1
duckdb:
  database: ../catalogs/\${tenant}/blob.duckdb
  secrets:
    - name: tenant_blob
      type: azure
      connection_string: \${secret:storage_connection_string}
      scope: az://acme-container/\${tenant}/
views:
  - { name: one, sql: SELECT 1 AS x }
`;

describe("runner.secrets.type: azure from the CLI", { timeout: 120_000 }, () => {
  let server: AzureTestServer;
  let dir: string;
  const env = () => ({ AZURE_TEST_CLIENT_SECRET: server.client.clientSecret });

  beforeAll(async () => {
    server = await startAzureTestServer();
    // Per-name secrets: {prefix}{tenant}--{name}, '_' written as '-'.
    server.seed("duckcron-acme--api-token", VALUES.api_token);
    server.seed("duckcron-acme--proxy-password", VALUES.proxy_password);
    server.seed("duckcron-acme--storage-connection-string", VALUES.storage_connection_string);
    dir = copyExample();
    const runner = readFileSync(join(dir, "runner.yaml"), "utf8")
      .replace(
        /secrets:\n(?: {4}.*\n)+/,
        [
          "secrets:",
          "    type: azure",
          `    vault_url: ${server.url}`,
          `    authority_host: ${server.url}`,
          `    tenant_id: ${server.tenantId}`,
          `    client_id: ${server.client.clientId}`,
          "    client_secret: ${env:AZURE_TEST_CLIENT_SECRET}",
          `    ca_cert: ${server.caPath}`,
          "    local_test_server: true",
          "    prefix: duckcron-",
          "    layout: per_name",
          "",
        ].join("\n"),
      )
      .replace("tenants: [acme, globex]", "tenants: [acme]")
      .replace(
        "  schedules:\n",
        '  schedules:\n    - { name: blob, config: jobs/blob.yaml, cron: "0 * * * *", tenants: [acme] }\n',
      );
    writeFileSync(join(dir, "runner.yaml"), runner);
    writeFileSync(join(dir, "jobs", "blob.yaml"), BLOB_JOB);
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const noValues = (text: string) => {
    for (const value of Object.values(VALUES)) expect(text).not.toContain(value);
    expect(text).not.toContain(server.client.clientSecret);
  };

  it("validate loads the azure backend config and the azure storage secret", async () => {
    const result = await runCli(["validate"], { cwd: dir, env: env() });
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(
      /ok \(2 schedules, 2 job files, 1 tenant, secrets backend azure\)/,
    );
  });

  it("run builds a catalog from values read in Key Vault", async () => {
    server.faults.resetCounts();
    const result = await runCli(["run", "sales", "--tenant", "acme"], { cwd: dir, env: env() });
    expect(result.code, result.stderr).toBe(0);
    noValues(result.stdout + result.stderr);
    expect(server.faults.requests("GetSecret")).toBeGreaterThanOrEqual(2);
    expect(server.tokensIssued()).toBeGreaterThan(0);
  });

  it("plan renders the azure storage secret with its value masked, without the azure extension", async () => {
    const result = await runCli(["plan", "blob", "--tenant", "acme"], { cwd: dir, env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/CREATE .*SECRET[^\n]*tenant_blob/i);
    expect(result.stdout).toMatch(/TYPE azure/i);
    noValues(result.stdout + result.stderr);
  });

  it("doctor passes the Key Vault check and says the azure extension is missing", async () => {
    const result = await runCli(["doctor"], { cwd: dir, env: { ...env(), HOME: dir } });
    const out = result.stdout + result.stderr;
    noValues(out);
    expect(out).toMatch(/secrets backend azure[^\n]*reachable/);
    expect(out).toMatch(/extensions for [^\n]*blob\.yaml[^\n]*azure[^\n]*not in/);
  });

  it("a wrong client secret fails the run as SECRET_ACCESS_DENIED without the secret", async () => {
    const result = await runCli(["run", "sales", "--tenant", "acme"], {
      cwd: dir,
      env: { AZURE_TEST_CLIENT_SECRET: "wrong-PLANTED-secret" },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("SECRET_ACCESS_DENIED");
    expect(result.stderr).toContain("invalid_client");
    expect(result.stderr).not.toContain("wrong-PLANTED-secret");
  });
});
