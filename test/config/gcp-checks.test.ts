// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config references are written ${...}; these strings are data, not templates
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRunner } from "../../src/config/load.js";
import { formatIssue } from "../../src/errors.js";
import { configError, writeTree, yaml } from "./helpers.js";

const JOB_WITH = (name: string) => yaml`
  version: 1
  duckdb:
    database: catalogs/\${tenant}/x.duckdb
    secrets:
      - name: lake
        type: gcs
        key_id: \${secret:${name}.key_id}
        secret: \${secret:${name}.secret}
`;

const runnerYaml = (secrets: string, name = "gcs_hmac") =>
  writeTree({
    "runner.yaml": `version: 1\nrunner:\n  secrets:\n${secrets}\n  schedules:\n    - name: lake\n      config: jobs/lake.yaml\n      cron: "0 * * * *"\n      tenants: [acme]\n`,
    "jobs/lake.yaml": JOB_WITH(name),
    "sa.json": JSON.stringify({ type: "service_account", private_key: "PLANTED-KEY" }),
    "broken.json": "PLANTED-not-json",
  });

describe("runner.secrets type: gcp when the config loads", () => {
  it("loads with project_id, or with the project from the environment", async () => {
    const dir = await runnerYaml("    type: gcp\n    project_id: my-project-1");
    const runner = await loadRunner(join(dir, "runner.yaml"), { env: {} });
    expect(runner.config.runner.secrets).toMatchObject({ type: "gcp", version: "latest" });
    const fromEnv = await runnerYaml("    type: gcp");
    await loadRunner(join(fromEnv, "runner.yaml"), { env: { GOOGLE_CLOUD_PROJECT: "p-123456" } });
    await loadRunner(join(fromEnv, "runner.yaml"), { env: { GCP_PROJECT_ID: "p-123456" } });
  });

  it("without a project anywhere, names file, line and the fallbacks", async () => {
    const dir = await runnerYaml("    type: gcp\n    layout: bundle");
    const error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue)).toEqual([
      `${join(dir, "runner.yaml")}:4:11: runner.secrets.type: type: gcp needs project_id, or GOOGLE_CLOUD_PROJECT / GCP_PROJECT_ID in the environment`,
    ]);
  });

  it("a credentials_file that is missing, not JSON or not Google's is located, never quoted", async () => {
    for (const [file, says] of [
      ["nope.json", /cannot read .*nope\.json \(ENOENT\)/],
      ["broken.json", /is not JSON/],
      ["jobs/lake.yaml", /is not JSON/],
    ] as const) {
      const dir = await runnerYaml(
        `    type: gcp\n    project_id: my-project-1\n    credentials_file: ${file}`,
      );
      const error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
      expect(error.issues).toHaveLength(1);
      expect(formatIssue(error.issues[0]!)).toMatch(
        /runner\.yaml:6:\d+: runner\.secrets\.credentials_file: /,
      );
      expect(error.issues[0]?.message).toMatch(says);
      expect(JSON.stringify(error.issues)).not.toContain("PLANTED");
    }
    const ok = await runnerYaml(
      "    type: gcp\n    project_id: my-project-1\n    credentials_file: sa.json",
    );
    await loadRunner(join(ok, "runner.yaml"), { env: {} });
  });

  it("a per-name id over 255 characters is reported at the reference in the job file", async () => {
    const long = `n${"x".repeat(250)}`;
    const dir = await runnerYaml(
      "    type: gcp\n    project_id: my-project-1\n    layout: per_name",
      long,
    );
    const error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    expect(error.issues).toHaveLength(1);
    expect(formatIssue(error.issues[0]!)).toMatch(
      /jobs\/lake\.yaml:7:\d+: duckdb\.secrets\[0\]\.key_id: secret "nx+" of tenant "acme" maps to the 256-character GCP secret id/,
    );
    const bundle = await runnerYaml(
      "    type: gcp\n    project_id: my-project-1\n    layout: bundle",
      long,
    );
    await loadRunner(join(bundle, "runner.yaml"), { env: {} });
  });

  it("a prefix outside Secret Manager's alphabet is a schema error", async () => {
    const dir = await runnerYaml("    type: gcp\n    project_id: my-project-1\n    prefix: apps/");
    const error = await configError(() => loadRunner(join(dir, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue).join("\n")).toMatch(
      /runner\.secrets\.prefix: .*letters, digits/,
    );
  });
});
