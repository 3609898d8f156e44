// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config references are written ${...}; these strings are data, not templates
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  keyVaultBundleName,
  keyVaultNameIssues,
  keyVaultSecretName,
  parseKeyVaultName,
} from "../../src/config/keyvault.js";
import { loadRunner } from "../../src/config/load.js";
import { formatIssue } from "../../src/errors.js";
import { configError, writeTree, yaml } from "./helpers.js";

const at = (line: number) => ({ file: "runner.yaml", line, col: 1 });
const named = (value: string, line = 1) => ({ value, at: at(line), path: `x[${line}]` });

describe("Key Vault names", () => {
  it("lower-cases, writes _ as - and joins tenant and name with --", () => {
    expect(keyVaultBundleName("Apps_", "Acme_EU")).toBe("apps-acme-eu");
    expect(keyVaultSecretName("apps-", "acme_eu", "db_password")).toBe("apps-acme-eu--db-password");
  });

  it("reads back at the first -- after the prefix", () => {
    expect(parseKeyVaultName("apps-", "APPS-acme-eu--db-password")).toEqual({
      tenant: "acme-eu",
      name: "db-password",
    });
    expect(parseKeyVaultName("apps-", "apps-acme--x--y")).toEqual({ tenant: "acme", name: "x--y" });
    expect(parseKeyVaultName("apps-", "other-acme--x")).toBeUndefined();
    expect(parseKeyVaultName("", "acme")).toBeUndefined();
  });

  it("round-trips every tenant and name the rule accepts", () => {
    for (const [tenant, name] of [
      ["acme", "db_password"],
      ["a1", "_leading"],
      ["x-y_z", "n--m"],
    ] as const) {
      const issues = keyVaultNameIssues("p_", "per_name", [named(tenant)], [named(name)]);
      expect(issues).toEqual([]);
      expect(parseKeyVaultName("p_", keyVaultSecretName("p_", tenant, name))).toEqual({
        tenant: tenant.toLowerCase().replaceAll("_", "-"),
        name: name.toLowerCase().replaceAll("_", "-"),
      });
    }
  });

  it("refuses per_name tenants that hold -- or end in -, but not under bundle", () => {
    const tenants = [named("a--b", 3), named("acme_", 4), named("ok", 5)];
    const perName = keyVaultNameIssues("", "per_name", tenants, []);
    expect(perName.map((i) => [i.line, i.severity])).toEqual([
      [3, "error"],
      [4, "error"],
    ]);
    expect(perName[1]?.message).toContain('tenant "acme_" is "acme-"');
    expect(keyVaultNameIssues("", "bundle", tenants, [])).toEqual([]);
  });

  it("refuses names longer than 127 characters with the longest tenant", () => {
    const issues = keyVaultNameIssues(
      "",
      "auto",
      [named("t"), named("tenant-long")],
      [named("n".repeat(114), 7), named("n".repeat(115), 8)],
    );
    expect(issues.map((i) => i.line)).toEqual([8]);
    expect(issues[0]?.message).toContain("128 characters");
  });

  it("warns when two spellings read the same vault secret", () => {
    const issues = keyVaultNameIssues(
      "",
      "per_name",
      [named("acme", 1), named("Acme", 2)],
      [named("db_password", 3), named("db-password", 4), named("db_password", 5)],
    );
    expect(issues.map((i) => [i.line, i.severity])).toEqual([
      [2, "warning"],
      [4, "warning"],
    ]);
    expect(issues[1]?.message).toContain('secret "db-password" and secret "db_password"');
    // Bundle keys are JSON keys: only the tenants collide.
    expect(
      keyVaultNameIssues("", "bundle", [named("a_b"), named("a-b")], [named("x"), named("X")]),
    ).toHaveLength(1);
  });
});

describe("loading a runner.yaml with type: azure", () => {
  const runner = (layout: string, tenants: string) => yaml`
    version: 1
    runner:
      secrets:
        type: azure
        vault_url: https://duckcron.vault.azure.net
        layout: ${layout}
      schedules:
        - name: nightly
          config: job.yaml
          cron: "0 2 * * *"
          tenants: ${tenants}
  `;
  const job = yaml`
    version: 1
    duckdb:
      database: catalogs/\${tenant}.duckdb
      secrets:
        - name: lake
          type: azure
          connection_string: \${secret:storage_conn}
        - name: other
          type: azure
          connection_string: \${secret:Storage_Conn}
  `;

  it("locates a tenant that cannot map in runner.yaml", async () => {
    const dir = await writeTree({
      "runner.yaml": runner("per_name", "[acme, bad--tenant]"),
      "job.yaml": job,
    });
    const error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    const text = error.issues.map(formatIssue).join("\n");
    expect(text).toMatch(
      /runner\.yaml:11:\d+: runner\.schedules\[0\]\.tenants\[1\]: tenant "bad--tenant"/,
    );
  });

  it("warns at the job line of a name that collides, and --strict makes it an error", async () => {
    const dir = await writeTree({ "runner.yaml": runner("auto", "[acme]"), "job.yaml": job });
    const loaded = await loadRunner(join(dir, "runner.yaml"), { env: {} });
    expect(loaded.warnings.map(formatIssue)).toEqual([
      expect.stringMatching(
        /job\.yaml:10:\d+: warning: duckdb\.secrets\[1\]\.connection_string: secret "Storage_Conn" and secret "storage_conn" \(.*job\.yaml:7\)/,
      ),
    ]);
    await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {}, strict: true }));
  });

  it("refuses an http:// vault_url without local_test_server, and local_test_server off loopback", async () => {
    const http = runner("bundle", "[acme]").replace(
      "https://duckcron.vault.azure.net",
      "http://duckcron.vault.azure.net",
    );
    let dir = await writeTree({ "runner.yaml": http, "job.yaml": job });
    let error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue).join("\n")).toMatch(
      /runner\.yaml:5:\d+: runner\.secrets\.vault_url: Key Vault is only reached over https:\/\//,
    );
    const remote = runner("bundle", "[acme]").replace(
      "layout:",
      "local_test_server: true\n    layout:",
    );
    dir = await writeTree({ "runner.yaml": remote, "job.yaml": job });
    error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue).join("\n")).toContain("runner.secrets.local_test_server");
  });

  it("takes AZURE_KEYVAULT_URL for a missing vault_url, with the same https rule", async () => {
    const text = runner("bundle", "[acme]").replace(/ +vault_url: .*\n/, "");
    const dir = await writeTree({ "runner.yaml": text, "job.yaml": job });
    const file = join(dir, "runner.yaml");
    const loaded = await loadRunner(file, {
      env: { AZURE_KEYVAULT_URL: "https://duckcron.vault.azure.net" },
    });
    expect(loaded.config.runner.secrets.type).toBe("azure");
    const plain = await configError(() =>
      loadRunner(file, { env: { AZURE_KEYVAULT_URL: "http://duckcron.vault.azure.net" } }),
    );
    expect(plain.issues.map(formatIssue).join("\n")).toMatch(
      /runner\.yaml:3:\d+: runner\.secrets: AZURE_KEYVAULT_URL is not https:\/\//,
    );
  });

  it("asks for all three service principal fields", async () => {
    const partial = runner("bundle", "[acme]").replace("layout:", "client_id: abc\n    layout:");
    const dir = await writeTree({ "runner.yaml": partial, "job.yaml": job });
    const error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    const text = error.issues.map(formatIssue).join("\n");
    expect(text).toContain("runner.secrets.tenant_id: a service principal needs");
    expect(text).toContain("runner.secrets.client_secret: a service principal needs");
  });
});
