import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadJob, loadRunner } from "../../src/config/load.js";
import { SECRET_TYPES } from "../../src/config/secret-types.js";
import { exampleEnv, REPO } from "../cli/run-cli.js";

describe("the example configs load", () => {
  it("runner.yaml.example and its job, strictly, with the demo env", async () => {
    const runner = await loadRunner(join(REPO, "runner.yaml.example"), {
      env: exampleEnv(),
      strict: true,
    });
    expect(runner.config.runner.secrets.type).toBe("env");
    expect(runner.warnings).toEqual([]);
  });

  it.each(readdirSync(join(REPO, "jobs")).filter((f) => f.endsWith(".yaml")))(
    "jobs/%s",
    async (file) => {
      const job = await loadJob(join(REPO, "jobs", file), { env: {}, strict: true });
      expect(job.warnings).toEqual([]);
    },
  );
});

describe("jobs/reference.yaml", () => {
  it("shows every DuckDB secret type and every provider of each", async () => {
    const job = await loadJob(join(REPO, "jobs", "reference.yaml"), { env: {}, strict: true });
    const secrets = job.definition.duckdb.secrets;
    const shown = new Set(
      secrets.map((s) => `${s.type}/${s.provider ?? SECRET_TYPES[s.type].defaultProvider}`),
    );
    const expected = Object.entries(SECRET_TYPES).flatMap(([type, spec]) =>
      Object.keys(spec.providers).map((provider) => `${type}/${provider}`),
    );
    expect(expected.filter((pair) => !shown.has(pair))).toEqual([]);
    expect(secrets.some((s) => s.persistent)).toBe(true);
    expect(job.definition.attachments.map((a) => a.type).sort()).toEqual([
      "duckdb",
      "mysql",
      "postgres",
      "sqlite",
    ]);
    expect(job.definition.views.length).toBeGreaterThan(5);
  });
});

describe("runner.yaml.example's commented backends", () => {
  const text = readFileSync(join(REPO, "runner.yaml.example"), "utf8");
  const active = /^ {2}secrets:\n(?: {4}.*\n)+/m.exec(text)?.[0] ?? "";
  const alternatives = (/^ {2}# Other backends.*\n((?: {2}#.*\n)+)/m.exec(text)?.[1] ?? "")
    .split(/^ {2}#\n/m)
    .map((block) => block.replace(/^ {2}# ?/gm, "  "))
    .filter((block) => /^ {2}secrets:/m.test(block));

  it("offer filesystem, vault, aws, gcp and azure, while env stays active (npm run example runs offline)", () => {
    expect(active).toMatch(/type: env/);
    expect(alternatives.map((b) => /type: (\w+)/.exec(b)?.[1])).toEqual([
      "filesystem",
      "vault",
      "aws",
      "gcp",
      "azure",
    ]);
  });

  it.each([0, 1, 2, 3, 4])("alternative %i loads when uncommented", async (index) => {
    const dir = mkdtempSync(join(tmpdir(), "duckcron-alt-"));
    try {
      cpSync(join(REPO, "jobs"), join(dir, "jobs"), { recursive: true });
      writeFileSync(join(dir, "runner.yaml"), text.replace(active, alternatives[index] ?? ""));
      const runner = await loadRunner(join(dir, "runner.yaml"), {
        env: { VAULT_TOKEN: "hvs.test-token-for-load", AZURE_CLIENT_SECRET: "test-load-secret" },
      });
      expect(runner.config.runner.secrets.type).toBe(
        ["filesystem", "vault", "aws", "gcp", "azure"][index],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
