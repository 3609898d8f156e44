import type { DuckcronEvents } from "../observe/events.js";

/**
 * What a plan is made of. Its own module so the SQL builders that produce statements
 * and plan() that orders them do not import each other.
 */

export interface PlanParam {
  value: string | number | boolean | readonly string[];
  sensitive: boolean;
}

export interface Statement {
  stage: "extension" | "secret" | "attach" | "view" | "metadata";
  /** Object name for progress and errors, e.g. "secret lake", "view sales". */
  target: string;
  /** With $1.. placeholders for params. */
  sql: string;
  params: readonly PlanParam[];
  /** Set on secret statements: what apply reports as a duckdb:secret event. */
  secret?: Pick<
    DuckcronEvents["duckdb:secret"],
    "name" | "type" | "persistent" | "scope" | "action"
  >;
}
