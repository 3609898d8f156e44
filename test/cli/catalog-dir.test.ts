import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.js";

/**
 * A catalog directory that cannot be created was an internal error. Tests run as
 * root, where EACCES cannot be provoked, so the directory is asked for under a
 * regular file (ENOTDIR), which fails for root too and takes the same path.
 */
describe("a catalog directory that cannot be created", () => {
  it("fails the run with CATALOG_DIR_UNWRITABLE at duckdb.database", async () => {
    const dir = mkdtempSync(join(tmpdir(), "duckcron-catalog-dir-"));
    mkdirSync(join(dir, "jobs"));
    writeFileSync(join(dir, "blocker"), "a file, not a directory\n");
    writeFileSync(
      join(dir, "runner.yaml"),
      'version: 1\nrunner:\n  schedules:\n    - { name: main, config: jobs/job.yaml, cron: "0 * * * *", tenants: [acme] }\n',
    );
    writeFileSync(
      join(dir, "jobs", "job.yaml"),
      "version: 1\nduckdb:\n  database: ../blocker/catalogs/${tenant}.duckdb\n",
    );
    const result = await runCli(["run", "main", "--json", "-c", "runner.yaml"], { cwd: dir });
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      results: { status: string; error: { code: string; message: string } }[];
    };
    expect(report.results[0]).toMatchObject({
      status: "failure",
      error: { code: "CATALOG_DIR_UNWRITABLE" },
    });
    expect(report.results[0]?.error.message).toMatch(
      /^jobs\/job\.yaml:3:13: duckdb\.database: cannot create the catalog directory .*blocker\/catalogs \(a file is in the way of a directory on the path\)/,
    );
  });
});
