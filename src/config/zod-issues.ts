import type { z } from "zod";
import type { ConfigIssue } from "../errors.js";
import { allowedKeys } from "./schema-shape.js";
import { suggestion, unknownKeyMessage } from "./unknown-keys.js";
import type { ConfigPath, YamlSource } from "./yaml-source.js";

/** Turns zod's issues into located, readable ConfigIssues. */

export interface IssueContext {
  source: YamlSource;
  schema: z.ZodType;
  /** The validated input, to describe what was found. */
  input: unknown;
  displayPath(path: ConfigPath): string;
  /** The YAML path for a validated path (they differ for aliased layouts). */
  sourcePath(path: ConfigPath): ConfigPath;
  /** True when the value at (or under) `path` came from an environment variable. */
  fromEnv(path: ConfigPath): boolean;
}

type Issue = z.core.$ZodIssue;

const MISSING = "required field is missing";

export function convertZodIssues(issues: readonly Issue[], ctx: IssueContext): ConfigIssue[] {
  const converted = issues.flatMap((issue) => convert(issue, [], ctx));
  // `crn:` given and `cron:` missing is one mistake: the did-you-mean says it all.
  const suggested = new Set<string>();
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") continue;
    const allowed = allowedKeys(ctx.schema, issue.path as (string | number)[]);
    for (const key of issue.keys) {
      const hint = suggestion(key, allowed);
      if (hint) suggested.add(ctx.displayPath([...(issue.path as (string | number)[]), hint]));
    }
  }
  return converted.filter((issue) => !(issue.message === MISSING && suggested.has(issue.path)));
}

/** Drops zod issues about values whose substitution already failed (they would only repeat it). */
export function withoutFailed(
  issues: readonly Issue[],
  failed: readonly ConfigPath[],
  sourcePath: (path: ConfigPath) => ConfigPath,
): Issue[] {
  return issues.filter((issue) => {
    const path = sourcePath(issue.path as (string | number)[]);
    return !failed.some((f) => f.length <= path.length && f.every((s, i) => path[i] === s));
  });
}

function convert(issue: Issue, prefix: ConfigPath, ctx: IssueContext): ConfigIssue[] {
  const path = [...prefix, ...(issue.path as (string | number)[])];
  const at = (where: ConfigPath, message: string, key = false): ConfigIssue => {
    const source = ctx.sourcePath(where);
    return {
      ...(key ? ctx.source.locateKey(source) : ctx.source.locate(source)),
      path: ctx.displayPath(where),
      message,
      severity: "error",
    };
  };
  const value = valueAt(ctx.input, path);
  const shown = (v: unknown) => (ctx.fromEnv(path) ? "" : ` (got ${describeValue(v)})`);

  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = allowedKeys(ctx.schema, path);
      return issue.keys.map((key) => at([...path, key], unknownKeyMessage(key, allowed), true));
    }
    case "invalid_key": {
      const reason = issue.issues.map((inner) => inner.message).join("; ");
      const key = path.at(-1);
      return [at(path, `invalid key ${JSON.stringify(key)}: ${reason}`, true)];
    }
    case "invalid_type":
      if (value === undefined) return [at(path, MISSING)];
      return [at(path, `expected ${issue.expected}, got ${typeName(value)}`)];
    case "invalid_value": {
      const options = issue.values.map((v) => String(v));
      const message =
        options.length === 1
          ? `must be ${options[0]}${shown(value)}`
          : `must be one of: ${options.join(", ")}${shown(value)}`;
      return [at(path, message)];
    }
    case "invalid_format":
      return [at(path, `${issue.message}${typeof value === "string" ? shown(value) : ""}`)];
    case "invalid_union":
      return convertUnion(issue, path, value, ctx, at);
    case "invalid_element":
      return issue.issues.flatMap((inner) => convert(inner, [...path, issue.key as string], ctx));
    case "custom":
      // Open objects (DuckDB secret parameters) report their unknown keys themselves.
      return [at(path, issue.message, /^unknown (key|parameter)/.test(issue.message))];
    default:
      return [at(path, issue.message)];
  }
}

function convertUnion(
  issue: z.core.$ZodIssueInvalidUnion,
  path: ConfigPath,
  value: unknown,
  ctx: IssueContext,
  at: (where: ConfigPath, message: string) => ConfigIssue,
): ConfigIssue[] {
  const discriminated = issue as z.core.$ZodIssueInvalidUnion & {
    discriminator?: string;
    options?: unknown[];
  };
  if (discriminated.discriminator !== undefined) {
    // zod puts the discriminator key on the path already.
    // A defaulted discriminator (runner.secrets.type) also lists undefined.
    const valid = (discriminated.options ?? [])
      .filter((option) => option !== undefined)
      .map(String)
      .join(", ");
    const key = discriminated.discriminator;
    const got = value === undefined ? `missing ${key}` : `unknown ${key} ${describeValue(value)}`;
    const message = ctx.fromEnv(path)
      ? `unknown ${key} (use one of: ${valid})`
      : `${got} (use one of: ${valid})`;
    return [at(path, message)];
  }
  const branches = issue.errors;
  const mismatch = (branch: readonly Issue[]) =>
    branch.length === 1 && branch[0]?.code === "invalid_type" && branch[0].path.length === 0;
  const fitting = branches.filter((branch) => !mismatch(branch));
  if (fitting.length === 0) {
    if (value === undefined) return [at(path, MISSING)];
    const expected = [
      ...new Set(branches.map((b) => (b[0] as { expected?: string } | undefined)?.expected)),
    ].filter(Boolean);
    return [at(path, `expected ${expected.join(" or ")}, got ${typeName(value)}`)];
  }
  // The value has the right shape for some branch: report that branch's complaints.
  const best = fitting.reduce((a, b) => (b.length < a.length ? b : a));
  return best.flatMap((inner) => convert(inner, path, ctx));
}

function valueAt(input: unknown, path: ConfigPath): unknown {
  let current = input;
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (value === undefined) return "nothing";
  return typeof value === "object" ? typeName(value) : String(value);
}

/** `runner.schedules[0].cron`, `duckdb.settings["max memory"]`. */
export function formatPath(path: ConfigPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
