import { constants, existsSync, statSync } from "node:fs";
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { renderPlain, resolveLocal } from "../catalog/render.js";
import type { LoadedJob, LoadedRunner } from "../config/load.js";
import type { SecretsBackendConfig } from "../config/runner-schema.js";
import { SECRET_TYPES } from "../config/secret-types.js";
import { effectiveStateDir, STATE_DIR_FIX, stateDirSetting } from "../config/state-dir.js";
import { DuckcronError } from "../errors.js";
import { Scrubber } from "../observe/scrubber.js";
import { COMMON_OPTIONS, configPath, parseCommandArgs } from "./args.js";
import type { DoctorCheck } from "./doctor-check.js";
import { heldNotices } from "./notices.js";
import { EXIT, exitCodeFor, writeError } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

export type { CheckStatus, DoctorCheck } from "./doctor-check.js";

/**
 * `duckcron doctor`: everything a deployment needs besides a valid config, checked
 * once and reported one line per check with the fix. Read-only: it creates nothing
 * and fetches no secret values (the backend's own `check()` is a cheap auth probe).
 */

const USAGE = COMMAND_USAGE.doctor;
const BACKEND_CHECK_TIMEOUT_MS = 10_000;

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
  /** Where DuckDB keeps extensions when a job sets no extension_directory (~/.duckdb/extensions). */
  defaultExtensionDir?: string;
}

export interface DoctorReport {
  checks: DoctorCheck[];
  /** Env values substituted into the config; masked in everything printed. */
  sensitive: readonly string[];
}

/** Runs every check; a config that does not load is the only check that stops the rest. */
export async function runDoctor(file: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const { loadCheckedRunner } = await import("../load-config.js");
  let runner: LoadedRunner;
  try {
    runner = await loadCheckedRunner(file, { env });
  } catch (error) {
    const check: DoctorCheck = {
      status: "problem",
      subject: "config",
      message: messageOf(error),
      fix: "correct the fields named; `duckcron validate` repeats this check",
    };
    return { checks: [check], sensitive: [] };
  }
  const checks: DoctorCheck[] = [configCheck(runner)];
  checks.push(await backendCheck(runner, env));
  // After the backend check: loading a backend's client is what makes a dependency speak up.
  checks.push(nodeCheck(process.version, heldNotices()));
  checks.push(...(await duckdbChecks(runner, options.defaultExtensionDir)));
  checks.push(...(await directoryChecks(runner, env)));
  if (runner.config.runner.cluster) {
    const { clusterChecks } = await import("./cluster-doctor.js");
    checks.push(...(await clusterChecks(runner)));
  }
  const sensitive = [...runner.sensitive, ...[...runner.jobs.values()].flatMap((j) => j.sensitive)];
  return { checks, sensitive };
}

/** package.json "engines"; CI tests on this major and the image runs 22. */
export const MIN_NODE_MAJOR = 20;

/** The Node version, and the dependency notices held back from every other command. */
export function nodeCheck(version: string, notices: readonly string[]): DoctorCheck {
  const subject = "node";
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (!(major >= MIN_NODE_MAJOR)) {
    return {
      status: "problem",
      subject,
      message: `Node ${version} is older than duckcron supports (>= ${MIN_NODE_MAJOR})`,
      fix: "install Node 22 LTS (the container image runs it) or Node 20",
    };
  }
  if (notices.length > 0) {
    return {
      status: "warn",
      subject,
      message: `Node ${version}; a dependency says: ${notices.join(" | ")}`,
      fix: "move to the Node version the notice asks for (the container image runs Node 22); duckcron itself supports Node >= 20",
    };
  }
  return {
    status: "ok",
    subject,
    message: `Node ${version} (duckcron supports >= ${MIN_NODE_MAJOR})`,
  };
}

function configCheck(runner: LoadedRunner): DoctorCheck {
  const { schedules, secrets } = runner.config.runner;
  const jobs = uniqueJobs(runner).length;
  const summary = `${runner.file} (${plural(schedules.length, "schedule")}, ${plural(jobs, "job file")}, secrets backend ${secrets.type})`;
  if (runner.warnings.length > 0) {
    return {
      status: "warn",
      subject: "config",
      message: `${summary} loads with ${plural(runner.warnings.length, "warning")}`,
      fix: "see `duckcron validate`; --strict turns warnings into errors",
    };
  }
  return { status: "ok", subject: "config", message: summary };
}

async function backendCheck(runner: LoadedRunner, env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const config = runner.config.runner.secrets;
  const subject = `secrets backend ${config.type}`;
  try {
    const { createBackend } = await import("../secrets/create-backend.js");
    const backend = await createBackend(config, { baseDir: runner.dir, env });
    try {
      await backend.check(AbortSignal.timeout(BACKEND_CHECK_TIMEOUT_MS));
    } finally {
      await backend.close();
    }
    return { status: "ok", subject, message: `reachable and accepting ${describeBackend(config)}` };
  } catch (error) {
    // A backend that names its own remedy (unsafe permissions, ...) needs no generic one.
    const fix =
      error instanceof DuckcronError && error.code === "SECRET_INVALID"
        ? undefined
        : backendFix(config);
    return { status: "problem", subject, message: messageOf(error), ...(fix ? { fix } : {}) };
  }
}

function describeBackend(config: SecretsBackendConfig): string {
  switch (config.type) {
    case "env":
      return `the environment (prefix "${config.prefix}")`;
    case "filesystem":
      return `files under ${config.secrets_dir}`;
    case "vault":
      return `requests at ${config.url ?? "$VAULT_ADDR"} (KV v${config.kv_version} at ${config.mount_point})`;
    case "aws":
      return `requests to Secrets Manager${config.region_name ? ` in ${config.region_name}` : ""}`;
    case "azure":
      return `secret reads at ${config.vault_url ?? "$AZURE_KEYVAULT_URL"}`;
    case "gcp":
      return `requests to Secret Manager at ${config.endpoint}`;
    default: {
      const never: never = config;
      return String((never as { type?: unknown }).type);
    }
  }
}

function backendFix(config: SecretsBackendConfig): string {
  switch (config.type) {
    case "env":
      return "check runner.secrets.prefix";
    case "filesystem":
      return `create ${config.secrets_dir} (relative to runner.yaml) readable by this user and by nobody else: chmod 700`;
    case "vault":
      return "check runner.secrets.url (or VAULT_ADDR), the token (or VAULT_TOKEN) and that its policy can read the KV mount; for TLS errors set ca_cert";
    case "aws":
      return "check region_name (or AWS_REGION), the credentials the SDK finds (AWS_* env, profile, role) and secretsmanager:ListSecrets plus GetSecretValue on the prefix";
    case "azure":
      return "check vault_url (or AZURE_KEYVAULT_URL), the credential (tenant_id/client_id/client_secret, or what DefaultAzureCredential finds: AZURE_* env, workload or managed identity, az login) and that it may get secrets (role Key Vault Secrets User, or an access policy with get)";
    case "gcp":
      return "check project_id (or GOOGLE_CLOUD_PROJECT), credentials_file or the Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity), and roles/secretmanager.secretAccessor on the secrets";
    default: {
      const never: never = config;
      return String((never as { type?: unknown }).type);
    }
  }
}

async function duckdbChecks(
  runner: LoadedRunner,
  defaultExtensionDir: string | undefined,
): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const { describeDuckdb, extensionFile, withDuckdb } = await import("./extensions.js");
  const { secretParametersSupported } = await import("../catalog/self-test.js");
  let build: Awaited<ReturnType<typeof describeDuckdb>>;
  try {
    build = await withDuckdb(undefined, describeDuckdb);
  } catch (error) {
    return [
      {
        status: "problem",
        subject: "duckdb",
        message: `cannot start DuckDB: ${messageOf(error)}`,
        fix: "reinstall dependencies (npm ci) on this platform; @duckdb/node-api ships a native binding per platform",
      },
    ];
  }
  const parameters = await secretParametersSupported();
  checks.push(
    parameters
      ? {
          status: "ok",
          subject: "duckdb",
          message: `DuckDB ${build.version} on ${build.platform}; CREATE SECRET binds values as parameters`,
        }
      : {
          status: "warn",
          subject: "duckdb",
          message: `DuckDB ${build.version} on ${build.platform} does not bind parameters in CREATE SECRET; values are inlined as quoted literals (still scrubbed from output)`,
          fix: "use @duckdb/node-api 1.5.6 or later",
        },
  );

  const home = defaultExtensionDir ?? resolve(homedir(), ".duckdb", "extensions");
  for (const job of uniqueJobs(runner)) {
    const needed = requiredExtensions(job).filter((name) => !build.builtIn.has(name));
    const dirs = extensionDirs(runner, job, home);
    for (const dir of dirs) {
      const subject = `extensions for ${job.file}`;
      if (needed.length === 0) {
        checks.push({ status: "ok", subject, message: "none needed beyond DuckDB's built-ins" });
        continue;
      }
      const missing = needed.filter((name) => !existsSync(extensionFile(dir, build, name)));
      const where = `${dir}/${build.version}/${build.platform}/`;
      if (missing.length === 0) {
        checks.push({ status: "ok", subject, message: `${needed.join(", ")} present in ${where}` });
        continue;
      }
      const installs = new Set(job.definition.duckdb.install_extensions.map(extensionName));
      const downloadable =
        job.definition.duckdb.extension_directory === undefined &&
        missing.every((name) => installs.has(name));
      checks.push({
        status: downloadable ? "warn" : "problem",
        subject,
        message: downloadable
          ? `${missing.join(", ")} not in ${where}; the first build will download them from extensions.duckdb.org`
          : `${missing.join(", ")} not in ${where}`,
        fix: `duckcron extensions install ${missing.join(" ")} --dir ${dir}${downloadable ? " (needed offline)" : ""}`,
      });
    }
  }
  return checks;
}

/** Extensions a job's secrets, attachments and remote views need, plus those it names. */
export function requiredExtensions(job: Pick<LoadedJob, "definition">): string[] {
  const { duckdb, attachments, views } = job.definition;
  const needed = new Set<string>();
  for (const ext of [...duckdb.install_extensions, ...duckdb.load_extensions]) {
    needed.add(extensionName(ext));
  }
  for (const secret of duckdb.secrets) {
    const extension = SECRET_TYPES[secret.type].extension;
    if (extension !== null) needed.add(extension);
    // DuckDB's credential_chain for the S3 family lives in the separate aws extension.
    if (
      secret.provider === "credential_chain" &&
      ["s3", "r2", "gcs", "aws"].includes(secret.type)
    ) {
      needed.add("aws");
    }
    if (secret.type === "iceberg") needed.add("avro");
  }
  for (const attachment of attachments) {
    const extension = ATTACHMENT_EXTENSIONS[attachment.type];
    if (extension !== undefined) needed.add(extension);
  }
  for (const view of views) {
    const uris = view.uri === undefined ? [] : Array.isArray(view.uri) ? view.uri : [view.uri];
    for (const uri of uris) {
      const scheme = /^([a-z0-9]+):\/\//.exec(uri)?.[1];
      const extension = scheme === undefined ? undefined : URI_EXTENSIONS[scheme];
      if (extension !== undefined) needed.add(extension);
    }
  }
  return [...needed].sort();
}

const ATTACHMENT_EXTENSIONS: Record<string, string | undefined> = {
  postgres: "postgres_scanner",
  mysql: "mysql_scanner",
  sqlite: "sqlite_scanner",
};

const URI_EXTENSIONS: Record<string, string | undefined> = {
  s3: "httpfs",
  s3a: "httpfs",
  s3n: "httpfs",
  r2: "httpfs",
  gs: "httpfs",
  gcs: "httpfs",
  hf: "httpfs",
  http: "httpfs",
  https: "httpfs",
  az: "azure",
  azure: "azure",
  abfss: "azure",
};

function extensionName(ext: string | { name: string }): string {
  return typeof ext === "string" ? ext : ext.name;
}

/** The job's extension_directory per tenant (it may hold ${tenant}), else DuckDB's default. */
function extensionDirs(runner: LoadedRunner, job: LoadedJob, fallback: string): string[] {
  const configured = job.definition.duckdb.extension_directory;
  if (configured === undefined) return [fallback];
  const dirs = new Set<string>();
  for (const tenant of tenantsOf(runner, job)) {
    dirs.add(resolveLocal(renderPlain(configured, tenant, "duckdb.extension_directory"), job.dir));
  }
  return [...dirs];
}

async function directoryChecks(
  runner: LoadedRunner,
  env: NodeJS.ProcessEnv,
): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const { catalogPathFor } = await import("../catalog/plan.js");
  const seen = new Set<string>();
  for (const job of uniqueJobs(runner)) {
    const persistent = job.definition.duckdb.secrets.some((s) => s.persistent);
    for (const tenant of tenantsOf(runner, job)) {
      const catalog = catalogPathFor(job, tenant);
      if (seen.has(catalog)) continue;
      seen.add(catalog);
      checks.push(await writableDirCheck(`catalog dir for ${tenant}`, dirname(catalog)));
      if (persistent) checks.push(secretDirCheck(`${catalog}.secrets`));
    }
  }
  const { secrets, state_dir, audit } = runner.config.runner;
  if (secrets.type === "filesystem")
    checks.push(secretsDirCheck(resolve(runner.dir, secrets.secrets_dir)));
  // The directory `start` will use, whichever setting chose it: the default beside a
  // read-only config mount is exactly the one that fails.
  const state = effectiveStateDir(runner.dir, state_dir, env);
  const stateCheck = await writableDirCheck("state dir", state.path);
  checks.push({
    ...stateCheck,
    message: `${stateCheck.message} (state dir from ${stateDirSetting(state)})`,
    ...(stateCheck.status === "ok" ? {} : { fix: STATE_DIR_FIX }),
  });
  if (audit !== undefined && audit.path !== "-") {
    checks.push(await writableDirCheck("audit log dir", dirname(resolve(runner.dir, audit.path))));
  }
  return checks;
}

/** Writable, or creatable because the nearest existing parent is writable. */
async function writableDirCheck(subject: string, dir: string): Promise<DoctorCheck> {
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const fix = `mkdir -p ${dir} && chown $(id -u) ${dir}, or mount a writable volume there`;
  if (!statSync(existing).isDirectory()) {
    return { status: "problem", subject, message: `${existing} is not a directory`, fix };
  }
  try {
    await access(existing, constants.W_OK | constants.X_OK);
  } catch {
    return { status: "problem", subject, message: `${existing} is not writable by this user`, fix };
  }
  return {
    status: "ok",
    subject,
    message:
      existing === dir ? `${dir} is writable` : `${dir} will be created (${existing} is writable)`,
  };
}

/** DuckDB writes persistent secrets unencrypted; duckcron creates their folder 0700. */
function secretDirCheck(dir: string): DoctorCheck {
  const subject = "persistent secret dir";
  if (!existsSync(dir)) {
    return { status: "ok", subject, message: `${dir} will be created 0700 on the first build` };
  }
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    return {
      status: "problem",
      subject,
      message: `${dir} is mode ${octal(mode)}: other users can reach the unencrypted secret files`,
      fix: `chmod 700 ${dir}`,
    };
  }
  return { status: "ok", subject, message: `${dir} is mode ${octal(mode)}` };
}

function secretsDirCheck(dir: string): DoctorCheck {
  const subject = "filesystem secrets_dir";
  if (!existsSync(dir)) {
    return {
      status: "problem",
      subject,
      message: `${dir} does not exist`,
      fix: `mkdir -m 700 ${dir}`,
    };
  }
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o007) !== 0) {
    return {
      status: "problem",
      subject,
      message: `${dir} is mode ${octal(mode)}: readable or writable by every user`,
      fix: `chmod o-rwx ${dir} (700 is best)`,
    };
  }
  return { status: "ok", subject, message: `${dir} is mode ${octal(mode)}` };
}

function uniqueJobs(runner: LoadedRunner): LoadedJob[] {
  const byFile = new Map<string, LoadedJob>();
  for (const job of runner.jobs.values()) byFile.set(job.file, job);
  return [...byFile.values()];
}

function tenantsOf(runner: LoadedRunner, job: LoadedJob): string[] {
  const tenants = new Set<string>();
  for (const schedule of runner.config.runner.schedules) {
    if (runner.jobs.get(schedule.name)?.file === job.file) {
      for (const tenant of schedule.tenants) tenants.add(tenant);
    }
  }
  return [...tenants];
}

function messageOf(error: unknown): string {
  if (error instanceof DuckcronError) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** One line per check; a multi-line message (a config error) keeps its lines, indented. */
export function formatCheck(check: DoctorCheck): string {
  const fix = check.fix ? ` (fix: ${check.fix})` : "";
  const text = `${check.status.padEnd(7)} ${check.subject}: ${check.message}${fix}`;
  return text.replaceAll("\n", "\n        ");
}

export default async function doctor(argv: string[]): Promise<number> {
  try {
    const { values } = parseCommandArgs(argv, { config: COMMON_OPTIONS.config }, USAGE);
    const file = configPath(values.config);
    const { checks, sensitive } = await runDoctor(file);
    // Backends promise not to echo values; env values substituted into the config are masked too.
    const scrubber = new Scrubber();
    for (const value of sensitive) scrubber.add(value);
    for (const check of checks) process.stdout.write(`${scrubber.scrub(formatCheck(check))}\n`);
    const problems = checks.filter((c) => c.status === "problem").length;
    const warnings = checks.filter((c) => c.status === "warn").length;
    process.stdout.write(
      problems === 0
        ? `doctor: ${plural(checks.length, "check")} passed${warnings > 0 ? ` (${plural(warnings, "warning")})` : ""}\n`
        : `doctor: ${plural(problems, "problem")} found\n`,
    );
    return problems === 0 ? EXIT.ok : EXIT.failure;
  } catch (error) {
    writeError(error);
    return exitCodeFor(error);
  }
}
