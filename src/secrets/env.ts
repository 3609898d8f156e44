import type { EnvBackendConfig } from "../config/runner-schema.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import { structuredFields } from "./structured.js";

/**
 * Secrets from environment variables: `{PREFIX}{TENANT}_{NAME}`, falling back to
 * `{PREFIX}{NAME}` for values shared by every tenant. Exactly those two names are
 * read; the environment is never scanned by prefix, so nothing else in it can leak
 * into a catalog.
 */
export class EnvBackend implements SecretBackend {
  readonly type = "env";
  readonly #prefix: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(config: Pick<EnvBackendConfig, "prefix">, env: NodeJS.ProcessEnv = process.env) {
    this.#prefix = config.prefix;
    this.#env = env;
  }

  async fetch(tenant: string, names: readonly string[]): Promise<Map<string, FetchedSecret>> {
    const found = new Map<string, FetchedSecret>();
    for (const name of names) {
      const vars = envVarNames(this.#prefix, tenant, name);
      const text = read(this.#env, vars.tenant) ?? read(this.#env, vars.shared);
      if (text === undefined) continue;
      const fields = structuredFields(text);
      found.set(name, fields ? { text, fields } : { text });
    }
    return found;
  }

  locationOf(tenant: string, name: string): string {
    const vars = envVarNames(this.#prefix, tenant, name);
    return `environment variables ${vars.tenant} and ${vars.shared}`;
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {}
}

/** An empty variable counts as unset: Compose and CI often pass `NAME=` for "not configured". */
function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

/** Upper-cased, anything but letters and digits as `_`. */
export function envSegment(text: string): string {
  return text.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

export function envVarNames(
  prefix: string,
  tenant: string,
  name: string,
): { tenant: string; shared: string } {
  const p = envSegment(prefix);
  return {
    tenant: `${p}${envSegment(tenant)}_${envSegment(name)}`,
    shared: `${p}${envSegment(name)}`,
  };
}

/**
 * Ways the env layout can hand one tenant's secret to another, for `duckcron
 * validate`. Three shapes:
 * - two tenant/name pairs map to the same variable (`acme` + `x_key` and `acme_x` +
 *   `key` both read ACME_X_KEY);
 * - tenant ids that differ only by `-`, `_` or case share every variable;
 * - one tenant's variable is another name's shared fallback (tenant `acme` + `key`
 *   is ACME_KEY, which every tenant without its own `acme_key` falls back to).
 */
export function findEnvCollisions(
  prefix: string,
  tenants: readonly string[],
  names: readonly string[],
): string[] {
  const problems: string[] = [];
  const uniqueTenants = [...new Set(tenants)];
  const uniqueNames = [...new Set(names)];

  const byTenantSegment = new Map<string, string[]>();
  for (const tenant of uniqueTenants) {
    const segment = envSegment(tenant);
    byTenantSegment.set(segment, [...(byTenantSegment.get(segment) ?? []), tenant]);
  }
  for (const [segment, group] of byTenantSegment) {
    if (group.length > 1) {
      problems.push(
        `tenants ${group.map((t) => `"${t}"`).join(" and ")} differ only by "-", "_" or case, so they read the same variables (${envSegment(prefix)}${segment}_*); rename one or use another secrets backend`,
      );
    }
  }
  const distinctTenants = [...byTenantSegment.values()].map((group) => group[0] as string);

  const readers = new Map<string, { tenant: string; name: string }[]>();
  for (const tenant of distinctTenants) {
    for (const name of uniqueNames) {
      const variable = envVarNames(prefix, tenant, name).tenant;
      readers.set(variable, [...(readers.get(variable) ?? []), { tenant, name }]);
    }
  }
  for (const [variable, pairs] of readers) {
    if (pairs.length > 1) {
      problems.push(
        `${pairs.map((p) => `tenant "${p.tenant}" secret "${p.name}"`).join(" and ")} all read ${variable}; rename a secret or tenant`,
      );
    }
  }

  for (const name of uniqueNames) {
    const shared = envVarNames(prefix, "", name).shared;
    const owners = readers.get(shared);
    if (!owners) continue;
    for (const owner of owners) {
      problems.push(
        `${shared} is tenant "${owner.tenant}"'s secret "${owner.name}" and also the shared fallback for secret "${name}" of every tenant without ${envSegment(prefix)}{TENANT}_${envSegment(name)}; rename a secret or tenant`,
      );
    }
  }
  return problems;
}
