import type { LoadedJob, LoadedRunner } from "../config/load.js";
import type { ConfigIssue } from "../errors.js";
import { renderPlain } from "./render.js";

/**
 * `views[].sql` becomes `CREATE VIEW ... AS <sql>`, and DuckDB runs every statement of
 * it: `SELECT 1; COPY (...) TO '...'` would write a file at build time. DuckDB's own
 * parser decides what the text is (a regex would not know quoting, comments, CTEs):
 * json_serialize_sql parses without binding, refuses anything but SELECT and lists the
 * statements, so exactly one must come back. An in-memory instance reads no file.
 */
export async function viewQueryIssues(runner: LoadedRunner): Promise<ConfigIssue[]> {
  const checks = [...firstTenantOfEachJob(runner)].flatMap(([job, tenant]) =>
    job.definition.views.flatMap((view, index) =>
      view.sql === undefined
        ? []
        : [{ job, index, sql: renderPlain(view.sql, tenant, `views[${index}].sql`) }],
    ),
  );
  if (checks.length === 0) return [];
  // Loaded here: a config without sql views (and `validate` of it) need not load DuckDB.
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    const issues: ConfigIssue[] = [];
    for (const { job, index, sql } of checks) {
      const reader = await connection.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [
        sql,
      ]);
      const parsed = JSON.parse(String(reader.getRows()[0]?.[0])) as {
        error?: boolean;
        error_message?: string;
        statements?: unknown[];
      };
      const problem = parsed.error
        ? `must be one SELECT: ${parsed.error_message ?? "DuckDB cannot parse it"}`
        : parsed.statements?.length !== 1
          ? `must be one SELECT statement, not ${parsed.statements?.length ?? 0}`
          : undefined;
      if (problem === undefined) continue;
      const path = ["views", index, "sql"];
      issues.push({
        ...job.locate(path),
        path: `views[${index}].sql`,
        message: problem,
        severity: "error",
      });
    }
    return issues;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Each job file once, with a tenant to render `${tenant}` for (any gives the same shape). */
function firstTenantOfEachJob(runner: LoadedRunner) {
  const jobs = new Map<LoadedJob, string>();
  for (const schedule of runner.config.runner.schedules) {
    const job = runner.jobs.get(schedule.name);
    const tenant = schedule.tenants[0];
    if (job && tenant !== undefined && !jobs.has(job)) jobs.set(job, tenant);
  }
  return jobs;
}
