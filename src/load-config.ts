import { viewQueryIssues } from "./catalog/view-query-check.js";
import { type LoadedRunner, type LoadOptions, loadRunner } from "./config/load.js";
import { ConfigError } from "./errors.js";

/**
 * runner.yaml and its jobs, loaded and checked as far as can be without secrets or
 * data: the schema, then what only DuckDB can judge (that views[].sql is one SELECT).
 * Every command that reads config comes through here, so none skips a check.
 */
export async function loadCheckedRunner(
  path: string,
  options: LoadOptions = {},
): Promise<LoadedRunner> {
  const runner = await loadRunner(path, options);
  const issues = await viewQueryIssues(runner);
  if (issues.length > 0) throw new ConfigError([...issues, ...runner.warnings]);
  return runner;
}
