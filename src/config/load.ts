import { dirname, isAbsolute, relative, resolve } from "node:path";
import type { z } from "zod";
import { ConfigError, type ConfigIssue, DuckcronError, type SourceLocation } from "../errors.js";
import { backendEnvProblems } from "./backend-env.js";
import { substituteEnv } from "./env-substitution.js";
import { deepFreeze } from "./freeze.js";
import { gcpIssues } from "./gcp-checks.js";
import { type JobFile, jobFileSchema, plainTemplate, secretTemplate } from "./job-schema.js";
import { keyVaultConfigIssues } from "./keyvault.js";
import { placeholderReason } from "./placeholders.js";
import { readConfigFile, UnreadableConfigFile } from "./read-config-file.js";
import { type RunnerFile, runnerFileSchema } from "./runner-schema.js";
import { isTemplateField } from "./schema-shape.js";
import { SECRET_TYPES, type SecretTypeSpec } from "./secret-types.js";
import { unknownKeyMessage } from "./unknown-keys.js";
import { type ConfigPath, parseYamlSource, type YamlSource } from "./yaml-source.js";
import { convertZodIssues, formatPath, withoutFailed } from "./zod-issues.js";

export interface LoadOptions {
  /** Where `${env:NAME}` is looked up; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Treat warnings (placeholder credentials, YAML warnings) as errors. */
  strict?: boolean;
}

export interface LoadedJob {
  /** For messages: relative to process.cwd() when inside it, else absolute. */
  file: string;
  /** Absolute directory of the job file; relative paths in it resolve here. */
  dir: string;
  definition: Readonly<JobFile>;
  /** Line and column of a field of `definition`, or of its nearest existing parent. */
  locate(path: readonly (string | number)[]): SourceLocation;
  /** Env values substituted into credential-bearing fields; register them with the scrubber. */
  sensitive: readonly string[];
  warnings: readonly ConfigIssue[];
}

export interface LoadedRunner {
  file: string;
  dir: string;
  config: Readonly<RunnerFile>;
  locate(path: readonly (string | number)[]): SourceLocation;
  sensitive: readonly string[];
  /** Of runner.yaml and of every job file. */
  warnings: readonly ConfigIssue[];
  /** Schedule name -> its job; a job file shared by several schedules is loaded once. */
  jobs: ReadonlyMap<string, LoadedJob>;
}

/** Where env values count as credentials (the CLI masks them wherever text leaves). */
const SENSITIVE_ROOTS: readonly ConfigPath[] = [
  ["runner", "secrets"],
  ["duckdb", "secrets"],
  ["attachments"],
  ["runner", "cluster", "url"],
  ["runner", "cluster", "password"],
];
/** Fields of a secrets backend that hold credentials (token, secret_id, client_secret, ...). */
const CREDENTIAL_FIELD = /(^|_)(token|secret|password|passphrase|credentials?|key)(_|$)/;
/** DuckDB's legacy credential settings (s3_secret_access_key, azure_storage_connection_string, ...). */
const CREDENTIAL_SETTING = /(^|_)(token|secret|password|key|connection_string)(_|$)/;
const SECRET_ENTRY_KEYS = new Set(["name", "type", "provider", "persistent", "scope"]);
const TEMPLATE_MARKERS = [plainTemplate, secretTemplate];

export async function loadRunner(path: string, options: LoadOptions = {}): Promise<LoadedRunner> {
  const absolute = resolve(path);
  const text = await readTopLevel(absolute);
  const env = options.env ?? process.env;
  const file = displayPath(absolute);
  const dir = dirname(absolute);
  const source = parseYamlSource(text, file);
  const issues = [...source.issues];
  if (source.value === undefined) throw new ConfigError(finish(issues, options));

  const substituted = substituteEnv(source.value, {
    source,
    env,
    displayPath: formatPath,
    allowRuntimeReferences: false,
    isTemplate: () => false,
  });
  issues.push(...substituted.issues);
  const layout = normalizeLayout(substituted.value, source);
  issues.push(...layout.issues);
  const sourcePath = layout.sourcePath;
  const fromEnv = (p: ConfigPath) =>
    substituted.uses.some((u) => startsWith(u.path, sourcePath(p)));

  let config: RunnerFile | undefined;
  if (isEmpty(layout.value)) {
    issues.push(emptyFile(file, "version: 1 and runner:"));
  } else {
    const parsed = runnerFileSchema.safeParse(layout.value);
    if (parsed.success) {
      config = parsed.data;
      for (const problem of backendEnvProblems(config.runner.secrets, env)) {
        const where = sourcePath(problem.path);
        issues.push({
          ...source.locateKey(where),
          path: formatPath(where),
          message: problem.message,
          severity: "error",
        });
      }
    } else {
      issues.push(
        ...convertZodIssues(withoutFailed(parsed.error.issues, substituted.failed, sourcePath), {
          source,
          schema: runnerFileSchema as z.ZodType,
          input: layout.value,
          displayPath: (p) => formatPath(sourcePath(p)),
          sourcePath,
          fromEnv,
        }),
      );
    }
    issues.push(...backendPlaceholders(layout.value, source, fromEnv));
  }

  // Every job file is loaded even when runner.yaml has problems: all issues go out at once.
  const jobs = new Map<string, LoadedJob>();
  const byFile = new Map<string, Promise<JobResult>>();
  const schedules = scheduleRefs(layout.value);
  const results = await Promise.all(
    schedules.map(async (ref) => {
      const jobPath = resolve(dir, ref.config);
      let pending = byFile.get(jobPath);
      if (!pending) {
        pending = loadJobFile(jobPath, env);
        byFile.set(jobPath, pending);
      }
      return { ref, result: await pending };
    }),
  );
  const seenFiles = new Set<string>();
  const ownIssues = issues;
  const jobIssues: ConfigIssue[] = [];
  for (const { ref, result } of results) {
    if (result.unreadable !== undefined) {
      const where = sourcePath(["runner", "schedules", ref.index, "config"]);
      issues.push({
        ...source.locate(where),
        path: formatPath(where),
        message: `cannot read job file ${displayPath(resolve(dir, ref.config))} (${result.unreadable})`,
        severity: "error",
      });
      continue;
    }
    if (!seenFiles.has(result.file)) jobIssues.push(...result.issues);
    seenFiles.add(result.file);
    if (result.job && ref.name !== undefined && !jobs.has(ref.name)) jobs.set(ref.name, result.job);
  }

  if (config?.runner.secrets.type === "gcp") {
    const scheduled = config.runner.schedules;
    issues.push(
      ...(await gcpIssues(config.runner.secrets, {
        env,
        dir,
        locate: (p) => source.locate(sourcePath(p)),
        schedules: results.map(({ ref, result }) => ({
          tenants: scheduled[ref.index]?.tenants ?? [],
          job: result.job,
        })),
      })),
    );
  }

  // Names the backend must be able to store: known only once runner.yaml and the jobs parse.
  const nameIssues = config
    ? keyVaultConfigIssues(config, (p) => source.locate(sourcePath(p)), new Set(jobs.values()))
    : [];
  const final = finish(
    [...inFileOrder(scrub(ownIssues, substituted.uses)), ...jobIssues, ...nameIssues],
    options,
  );
  if (!config || final.some((i) => i.severity === "error")) throw new ConfigError(final);
  const ownSensitive = sensitiveValues(substituted.uses);
  const sensitive = [
    ...new Set([...ownSensitive, ...[...jobs.values()].flatMap((j) => j.sensitive)]),
  ];
  return {
    file,
    dir,
    config: deepFreeze(config),
    locate: (p) => source.locate(sourcePath(p)),
    sensitive: Object.freeze(sensitive),
    warnings: Object.freeze(final.filter((i) => i.severity === "warning")),
    jobs,
  };
}

export async function loadJob(path: string, options: LoadOptions = {}): Promise<LoadedJob> {
  const absolute = resolve(path);
  await readTopLevel(absolute);
  const result = await loadJobFile(absolute, options.env ?? process.env);
  const final = finish(result.issues, options);
  if (!result.job || final.some((i) => i.severity === "error")) throw new ConfigError(final);
  return { ...result.job, warnings: Object.freeze(final.filter((i) => i.severity === "warning")) };
}

interface JobResult {
  file: string;
  job?: LoadedJob;
  issues: ConfigIssue[];
  /** Set when the file could not be read (the reason, e.g. "no such file"). */
  unreadable?: string;
}

async function loadJobFile(absolute: string, env: NodeJS.ProcessEnv): Promise<JobResult> {
  const file = displayPath(absolute);
  let text: string;
  try {
    text = await readConfigFile(absolute);
  } catch (error) {
    return { file, issues: [], unreadable: readFailure(error) };
  }
  const source = parseYamlSource(text, file);
  const issues = [...source.issues];
  if (source.value === undefined) return { file, issues };

  const substituted = substituteEnv(source.value, {
    source,
    env,
    displayPath: formatPath,
    allowRuntimeReferences: true,
    isTemplate: (p) => isTemplateField(jobFileSchema as z.ZodType, p, TEMPLATE_MARKERS),
  });
  issues.push(...substituted.issues);
  const fromEnv = (p: ConfigPath) => substituted.uses.some((u) => startsWith(u.path, p));
  const value = substituted.value;

  let definition: JobFile | undefined;
  if (isEmpty(value)) {
    issues.push(emptyFile(file, "version: 1 and duckdb:"));
  } else {
    const parsed = jobFileSchema.safeParse(value);
    if (parsed.success) definition = parsed.data;
    else {
      issues.push(
        ...convertZodIssues(
          withoutFailed(parsed.error.issues, substituted.failed, (p) => p),
          {
            source,
            schema: jobFileSchema as z.ZodType,
            input: value,
            displayPath: formatPath,
            sourcePath: (p) => p,
            fromEnv,
          },
        ),
      );
    }
    issues.push(...secretParamPlaceholders(value, source, fromEnv));
  }
  const scrubbed = inFileOrder(scrub(issues, substituted.uses));
  if (!definition) return { file, issues: scrubbed };
  const job: LoadedJob = {
    file,
    dir: dirname(absolute),
    definition: deepFreeze(definition),
    locate: (p) => source.locate(jobSourcePath(p, value)),
    sensitive: Object.freeze(sensitiveValues(substituted.uses)),
    warnings: Object.freeze(scrubbed.filter((i) => i.severity === "warning")),
  };
  return { file, job, issues: scrubbed };
}

/**
 * Dativo nests schedules under `runner.orchestrator.schedules`; accept that as an
 * alias of `runner.schedules`, while messages and locations keep the path the user wrote.
 */
function normalizeLayout(value: unknown, source: YamlSource) {
  const issues: ConfigIssue[] = [];
  const identity = { value, issues, sourcePath: (p: ConfigPath): ConfigPath => p };
  if (!isRecord(value) || !isRecord(value.runner) || !("orchestrator" in value.runner)) {
    return identity;
  }
  const { orchestrator, ...runner } = value.runner;
  const error = (path: ConfigPath, message: string, key = false) =>
    issues.push({
      ...(key ? source.locateKey(path) : source.locate(path)),
      path: formatPath(path),
      message,
      severity: "error",
    });
  if (!isRecord(orchestrator)) {
    error(["runner", "orchestrator"], "expected a mapping holding `schedules`");
    return { ...identity, value: { ...value, runner } };
  }
  for (const key of Object.keys(orchestrator)) {
    if (key !== "schedules") {
      error(["runner", "orchestrator", key], unknownKeyMessage(key, ["schedules"]), true);
    }
  }
  if (!("schedules" in orchestrator)) return { ...identity, value: { ...value, runner } };
  if ("schedules" in runner) {
    error(
      ["runner", "orchestrator", "schedules"],
      "runner.schedules and runner.orchestrator.schedules are both given; keep one",
      true,
    );
    return { ...identity, value: { ...value, runner } };
  }
  return {
    value: { ...value, runner: { ...runner, schedules: orchestrator.schedules } },
    issues,
    sourcePath: (p: ConfigPath): ConfigPath =>
      p[0] === "runner" && p[1] === "schedules"
        ? ["runner", "orchestrator", "schedules", ...p.slice(2)]
        : p,
  };
}

interface ScheduleRef {
  index: number;
  name: string | undefined;
  config: string;
}

/** The job files runner.yaml points at, read from the raw value so a bad runner.yaml still gets its jobs checked. */
function scheduleRefs(value: unknown): ScheduleRef[] {
  if (!isRecord(value) || !isRecord(value.runner) || !Array.isArray(value.runner.schedules))
    return [];
  const refs: ScheduleRef[] = [];
  value.runner.schedules.forEach((schedule: unknown, index: number) => {
    if (!isRecord(schedule) || typeof schedule.config !== "string") return;
    // An unresolved reference was reported already; there is no file to look for.
    if (schedule.config === "" || schedule.config.includes("${")) return;
    const name = typeof schedule.name === "string" ? schedule.name : undefined;
    refs.push({ index, name, config: schedule.config });
  });
  return refs;
}

function secretParamPlaceholders(
  value: unknown,
  source: YamlSource,
  fromEnv: (p: ConfigPath) => boolean,
): ConfigIssue[] {
  if (!isRecord(value) || !isRecord(value.duckdb) || !Array.isArray(value.duckdb.secrets))
    return [];
  const issues: ConfigIssue[] = [];
  value.duckdb.secrets.forEach((entry: unknown, index: number) => {
    if (!isRecord(entry)) return;
    for (const [key, param] of Object.entries(entry)) {
      if (SECRET_ENTRY_KEYS.has(key)) continue;
      const path = ["duckdb", "secrets", index, key];
      if (isRecord(param)) {
        for (const [inner, v] of Object.entries(param)) {
          issues.push(...placeholderIssue([...path, inner], v, source, fromEnv));
        }
      } else issues.push(...placeholderIssue(path, param, source, fromEnv));
    }
  });
  return issues;
}

function backendPlaceholders(
  value: unknown,
  source: YamlSource,
  fromEnv: (p: ConfigPath) => boolean,
): ConfigIssue[] {
  if (!isRecord(value) || !isRecord(value.runner) || !isRecord(value.runner.secrets)) return [];
  return Object.entries(value.runner.secrets)
    .filter(([key]) => CREDENTIAL_FIELD.test(key))
    .flatMap(([key, v]) => placeholderIssue(["runner", "secrets", key], v, source, fromEnv));
}

function placeholderIssue(
  path: ConfigPath,
  value: unknown,
  source: YamlSource,
  fromEnv: (p: ConfigPath) => boolean,
): ConfigIssue[] {
  // References are checked by the resolver once they have values.
  if (typeof value !== "string" || value.includes("${")) return [];
  const reason = placeholderReason(value);
  if (!reason) return [];
  const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
  return [
    {
      ...source.locate(path),
      path: formatPath(path),
      message: fromEnv(path)
        ? `the environment variable's value looks like a placeholder (${reason})`
        : `looks like a placeholder (${JSON.stringify(shown)}: ${reason})`,
      severity: "warning",
    },
  ];
}

/** Paths of the validated definition back to the YAML: secret `params` are written flat, maybe under an alias. */
function jobSourcePath(path: ConfigPath, raw: unknown): ConfigPath {
  if (path[0] !== "duckdb" || path[1] !== "secrets" || path[3] !== "params") return path;
  const index = path[2] as number;
  const param = path[4];
  const entry =
    isRecord(raw) && isRecord(raw.duckdb) && Array.isArray(raw.duckdb.secrets)
      ? (raw.duckdb.secrets[index] as unknown)
      : undefined;
  let written = param;
  if (typeof param === "string" && isRecord(entry) && !(param in entry)) {
    const spec = (SECRET_TYPES as Record<string, SecretTypeSpec | undefined>)[String(entry.type)];
    const alias = Object.entries(spec?.aliases ?? {}).find(
      ([from, to]) => to === param && from in entry,
    );
    if (alias) written = alias[0];
  }
  return written === undefined
    ? ["duckdb", "secrets", index]
    : ["duckdb", "secrets", index, written, ...path.slice(5)];
}

function isCredentialSetting(path: ConfigPath): boolean {
  const [section, field, name] = path;
  return (
    section === "duckdb" &&
    field === "settings" &&
    typeof name === "string" &&
    CREDENTIAL_SETTING.test(name)
  );
}

function sensitiveValues(uses: readonly { path: ConfigPath; value: string }[]): string[] {
  const values = uses
    .filter(
      (u) =>
        u.value !== "" &&
        (SENSITIVE_ROOTS.some((root) => startsWith(u.path, root)) || isCredentialSetting(u.path)),
    )
    .map((u) => u.value);
  return [...new Set(values)];
}

/** Belt and braces: no env value reaches a message, whatever produced the message. */
function scrub(issues: ConfigIssue[], uses: readonly { name: string; value: string }[]) {
  const replacements = uses
    .filter((u) => u.value.length >= 4)
    .sort((a, b) => b.value.length - a.value.length);
  if (replacements.length === 0) return issues;
  return issues.map((issue) => {
    let message = issue.message;
    for (const use of replacements) message = message.replaceAll(use.value, `\${env:${use.name}}`);
    return message === issue.message ? issue : { ...issue, message };
  });
}

function inFileOrder(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Strict mode makes warnings errors; the result is in file order. */
function finish(issues: readonly ConfigIssue[], options: LoadOptions): ConfigIssue[] {
  return issues.map((issue) =>
    options.strict && issue.severity === "warning"
      ? { ...issue, severity: "error" as const }
      : issue,
  );
}

async function readTopLevel(absolute: string): Promise<string> {
  try {
    return await readConfigFile(absolute);
  } catch (error) {
    throw new DuckcronError(
      "CONFIG_NOT_FOUND",
      `cannot read ${displayPath(absolute)} (${readFailure(error)}); pass the right file with -c`,
      { cause: error },
    );
  }
}

function readFailure(error: unknown): string {
  if (error instanceof UnreadableConfigFile) return error.message;
  throw error;
}

function emptyFile(file: string, expected: string): ConfigIssue {
  return {
    file,
    line: 1,
    col: 1,
    path: "",
    message: `the file is empty; expected ${expected}`,
    severity: "error",
  };
}

function displayPath(absolute: string): string {
  const rel = relative(process.cwd(), absolute);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : absolute;
}

function startsWith(path: ConfigPath, prefix: ConfigPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => path[i] === segment);
}

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
