import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { ConfigIssue, SourceLocation } from "../errors.js";
import type { JobFile } from "./job-schema.js";
import { GCP_SECRET_ID, type GcpBackendConfig } from "./runner-schema.js";
import { parseTemplate } from "./template.js";
import { formatPath } from "./zod-issues.js";

/**
 * What runner.yaml's `type: gcp` needs beyond its schema, checked when the config
 * loads so that `validate` and `run` stop with file:line before any request: a
 * project, a readable credentials file, and per_name ids Secret Manager accepts.
 */

/** The project holding the secrets: the config's, else the environment's. */
export function gcpProject(
  config: Pick<GcpBackendConfig, "project_id">,
  env: NodeJS.ProcessEnv,
): string | undefined {
  return config.project_id ?? (env.GOOGLE_CLOUD_PROJECT || env.GCP_PROJECT_ID || undefined);
}

/** The credential file types google-auth-library reads. */
const CREDENTIAL_TYPES = new Set([
  "service_account",
  "authorized_user",
  "external_account",
  "external_account_authorized_user",
  "impersonated_service_account",
  "gdch_service_account",
]);

export interface GcpCheckContext {
  env: NodeJS.ProcessEnv;
  /** The folder holding runner.yaml. */
  dir: string;
  /** Position of a runner.yaml field. */
  locate(path: readonly (string | number)[]): SourceLocation;
  schedules: readonly { tenants: readonly string[]; job?: GcpJob | undefined }[];
}

export interface GcpJob {
  definition: Readonly<JobFile>;
  locate(path: readonly (string | number)[]): SourceLocation;
}

export async function gcpIssues(
  config: GcpBackendConfig,
  ctx: GcpCheckContext,
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  const at = (path: (string | number)[], message: string, where = ctx.locate(path)) =>
    issues.push({ ...where, path: formatPath(path), message, severity: "error" });

  if (gcpProject(config, ctx.env) === undefined) {
    at(
      ["runner", "secrets", "type"],
      "type: gcp needs project_id, or GOOGLE_CLOUD_PROJECT / GCP_PROJECT_ID in the environment",
    );
  }
  if (config.credentials_file !== undefined) {
    const problem = await credentialsFileProblem(resolve(ctx.dir, config.credentials_file));
    if (problem) at(["runner", "secrets", "credentials_file"], problem);
  }
  if (config.layout !== "bundle") {
    const reported = new Set<string>();
    for (const schedule of ctx.schedules) {
      if (!schedule.job) continue;
      for (const ref of secretNames(schedule.job.definition)) {
        for (const tenant of schedule.tenants) {
          const id = `${config.prefix}${tenant}-${ref.name}`;
          if (GCP_SECRET_ID.test(id) || reported.has(id)) continue;
          reported.add(id);
          at(
            ref.path,
            `secret "${ref.name}" of tenant "${tenant}" maps to the ${id.length}-character GCP secret id "${id.slice(0, 40)}...", over Secret Manager's 255: shorten the name or runner.secrets.prefix, or use layout: bundle`,
            schedule.job.locate(ref.path),
          );
        }
      }
    }
  }
  return issues;
}

/** Why the file cannot serve as Google credentials; never quotes its content. */
async function credentialsFileProblem(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    return `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"}): give a service account key or an external_account file`;
  }
  let type: unknown;
  try {
    type = (JSON.parse(text) as { type?: unknown } | null)?.type;
  } catch {
    return `${file} is not JSON: give a service account key or an external_account file`;
  }
  if (typeof type === "string" && CREDENTIAL_TYPES.has(type)) return undefined;
  return `${file} is not a Google credentials file (its "type" must be one of ${[...CREDENTIAL_TYPES].join(", ")})`;
}

/** The secret names a job refers to, each with the path of its first use. */
function secretNames(job: Readonly<JobFile>): { name: string; path: (string | number)[] }[] {
  const seen = new Map<string, (string | number)[]>();
  const visit = (text: string, path: (string | number)[]) => {
    for (const part of parseTemplate(text)) {
      if (part.kind === "secret" && !seen.has(part.name)) seen.set(part.name, path);
    }
  };
  job.duckdb.secrets.forEach((secret, index) => {
    for (const [param, value] of Object.entries(secret.params)) {
      const path = ["duckdb", "secrets", index, param];
      if (typeof value === "string") visit(value, path);
      else if (typeof value === "object" && value !== null) {
        for (const [entry, text] of Object.entries(value)) visit(text, [...path, entry]);
      }
    }
  });
  return [...seen].map(([name, path]) => ({ name, path }));
}
