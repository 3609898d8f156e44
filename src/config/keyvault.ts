import type { ConfigIssue, SourceLocation } from "../errors.js";
import type { JobFile } from "./job-schema.js";
import type { RunnerFile, SecretLayout } from "./runner-schema.js";
import { parseTemplate } from "./template.js";
import { formatPath } from "./zod-issues.js";

/**
 * Azure Key Vault secret names are 1-127 characters of [0-9A-Za-z-], compared
 * case-insensitively; tenant ids and secret names also allow `_` and case. The one
 * rule that maps them:
 * - every part is lower-cased and `_` is written as `-`;
 * - bundle: `{prefix}{tenant}`; per_name: `{prefix}{tenant}--{name}`.
 * It reads back: strip the prefix, split at the first `--`, and the two sides are the
 * tenant and the name up to case and `_`/`-`. That holds because a tenant may then
 * neither contain `--` nor end in `-` (refused as a config error), and because the
 * pairs that differ only by case or `_`/`-` are reported as collisions.
 */
export const KEY_VAULT_NAME_MAX = 127;
export const KEY_VAULT_SEPARATOR = "--";

export function keyVaultPart(text: string): string {
  return text.toLowerCase().replaceAll("_", "-");
}

export function keyVaultBundleName(prefix: string, tenant: string): string {
  return keyVaultPart(prefix) + keyVaultPart(tenant);
}

export function keyVaultSecretName(prefix: string, tenant: string, name: string): string {
  return keyVaultBundleName(prefix, tenant) + KEY_VAULT_SEPARATOR + keyVaultPart(name);
}

/** The tenant and name a per_name vault secret belongs to (canonical spelling), if any. */
export function parseKeyVaultName(
  prefix: string,
  vaultName: string,
): { tenant: string; name: string } | undefined {
  const mappedPrefix = keyVaultPart(prefix);
  const lower = vaultName.toLowerCase();
  if (!lower.startsWith(mappedPrefix)) return undefined;
  const rest = lower.slice(mappedPrefix.length);
  const split = rest.indexOf(KEY_VAULT_SEPARATOR);
  if (split <= 0) return undefined;
  return { tenant: rest.slice(0, split), name: rest.slice(split + KEY_VAULT_SEPARATOR.length) };
}

/** Why a tenant id cannot be a per_name tenant part, or undefined. */
export function perNameTenantProblem(tenant: string): string | undefined {
  const part = keyVaultPart(tenant);
  if (part.includes(KEY_VAULT_SEPARATOR) || part.endsWith("-")) {
    return `tenant "${tenant}" is "${part}" in Key Vault names, which holds "--" or ends in "-": per_name secrets are {prefix}{tenant}--{name} split at the first "--"; rename the tenant or use layout: bundle`;
  }
  return undefined;
}

/** Why a mapped vault name is not one Key Vault accepts, or undefined. */
export function keyVaultNameProblem(vaultName: string): string | undefined {
  if (!/^[0-9a-z-]+$/.test(vaultName)) {
    return `"${vaultName}" is not a Key Vault secret name (letters, digits and "-")`;
  }
  if (vaultName.length > KEY_VAULT_NAME_MAX) {
    return `"${vaultName.slice(0, 40)}..." is ${vaultName.length} characters as a Key Vault secret name; at most ${KEY_VAULT_NAME_MAX}`;
  }
  return undefined;
}

/** A tenant id or secret name with the place it is written and its config path. */
export interface LocatedName {
  value: string;
  at: SourceLocation;
  path: string;
}

/**
 * Located problems of the Key Vault names a config would read: a tenant or name that
 * cannot map is an error, two references that read the same vault secret a warning.
 */
export function keyVaultNameIssues(
  prefix: string,
  layout: SecretLayout,
  tenants: readonly LocatedName[],
  names: readonly LocatedName[],
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const issue = (where: LocatedName, message: string, severity: ConfigIssue["severity"]) =>
    issues.push({ ...where.at, path: where.path, message, severity });
  const perName = layout !== "bundle";

  const tenantParts = firstOfEach(tenants, (t) => keyVaultPart(t.value));
  for (const tenant of tenantParts.values()) {
    const problem =
      keyVaultNameProblem(keyVaultBundleName(prefix, tenant.value)) ??
      (perName ? perNameTenantProblem(tenant.value) : undefined);
    if (problem) issue(tenant, problem, "error");
  }
  collisions(tenants, tenantParts, (t) => keyVaultPart(t.value), issue, "tenant");
  if (!perName) return issues;

  // The longest tenant part makes the longest name; checking it covers every tenant.
  const longest = [...tenantParts.keys()].reduce((a, b) => (b.length > a.length ? b : a), "");
  const nameParts = firstOfEach(names, (n) => keyVaultPart(n.value));
  for (const name of nameParts.values()) {
    const problem = keyVaultNameProblem(keyVaultSecretName(prefix, longest, name.value));
    if (problem) issue(name, `secret "${name.value}" of the longest tenant: ${problem}`, "error");
  }
  collisions(names, nameParts, (n) => keyVaultPart(n.value), issue, "secret");
  return issues;
}

function firstOfEach(
  items: readonly LocatedName[],
  key: (item: LocatedName) => string,
): Map<string, LocatedName> {
  const first = new Map<string, LocatedName>();
  for (const item of items) if (!first.has(key(item))) first.set(key(item), item);
  return first;
}

/** Warns at each spelling that differs from the first one mapping to the same part. */
function collisions(
  items: readonly LocatedName[],
  first: ReadonlyMap<string, LocatedName>,
  key: (item: LocatedName) => string,
  issue: (where: LocatedName, message: string, severity: ConfigIssue["severity"]) => void,
  what: string,
): void {
  const warned = new Set<string>();
  for (const item of items) {
    const owner = first.get(key(item));
    if (!owner || owner.value === item.value || warned.has(item.value)) continue;
    warned.add(item.value);
    issue(
      item,
      `${what} "${item.value}" and ${what} "${owner.value}" (${owner.at.file}:${owner.at.line}) are both "${key(item)}" in Key Vault names (lower-case, "_" as "-"), so they read the same vault secret; rename one`,
      "warning",
    );
  }
}

type Locate = (path: readonly (string | number)[]) => SourceLocation;

/** keyVaultNameIssues for a loaded runner.yaml and its jobs, when the backend is azure. */
export function keyVaultConfigIssues(
  runner: RunnerFile,
  locate: Locate,
  jobs: Iterable<{ definition: JobFile; locate: Locate }>,
): ConfigIssue[] {
  const secrets = runner.runner.secrets;
  if (secrets.type !== "azure") return [];
  const tenants: LocatedName[] = runner.runner.schedules.flatMap((schedule, index) =>
    schedule.tenants.map((value, t) => {
      const path = ["runner", "schedules", index, "tenants", t];
      return { value, at: locate(path), path: formatPath(path) };
    }),
  );
  const names: LocatedName[] = [];
  for (const job of jobs) {
    job.definition.duckdb.secrets.forEach((secret, index) => {
      for (const [param, value] of Object.entries(secret.params)) {
        const written = ["duckdb", "secrets", index, param];
        const texts: [(string | number)[], unknown][] =
          typeof value === "object" && value !== null
            ? Object.entries(value).map(([key, text]) => [[...written, key], text])
            : [[written, value]];
        for (const [path, text] of texts) {
          if (typeof text !== "string") continue;
          for (const part of parseTemplate(text)) {
            if (part.kind !== "secret") continue;
            // Located through `params` (the parsed shape); printed as written.
            const at = job.locate(["duckdb", "secrets", index, "params", ...path.slice(3)]);
            names.push({ value: part.name, at, path: formatPath(path) });
          }
        }
      }
    });
  }
  return keyVaultNameIssues(secrets.prefix, secrets.layout, tenants, names);
}
