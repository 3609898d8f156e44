import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.js";

/**
 * A view's sql used to run every statement it held at build time. Every command that
 * reads config refuses a second statement before DuckDB opens the catalog.
 */
describe("views[].sql is one SELECT for every command", () => {
  const dir = mkdtempSync(join(tmpdir(), "duckcron-view-sql-"));
  const copied = join(dir, "copied.csv");
  mkdirSync(join(dir, "jobs"));
  writeFileSync(
    join(dir, "runner.yaml"),
    'version: 1\nrunner:\n  schedules:\n    - { name: main, config: jobs/job.yaml, cron: "0 * * * *", tenants: [acme] }\n',
  );
  writeFileSync(
    join(dir, "jobs", "job.yaml"),
    `version: 1\nduckdb:\n  database: catalogs/\${tenant}.duckdb\nviews:\n  - name: orders\n    sql: SELECT 1 AS id; COPY (SELECT 42) TO '${copied}'\n`,
  );

  it.each([["validate"], ["plan", "main"], ["run", "main"]])(
    "%s exits 2 at the view and writes nothing",
    async (...args) => {
      const result = await runCli([...args, "-c", join(dir, "runner.yaml")], { cwd: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("jobs/job.yaml:6:10: views[0].sql: must be one SELECT");
      expect(existsSync(copied)).toBe(false);
      expect(existsSync(join(dir, "catalogs"))).toBe(false);
    },
  );
});
