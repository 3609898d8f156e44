import { resolve } from "node:path";
import { closest } from "fastest-levenshtein";
import type { LoadedRunner } from "../config/load.js";
import type { Schedule } from "../config/runner-schema.js";
import { DuckcronError } from "../errors.js";
import { loadCheckedRunner } from "../load-config.js";
import { EventBus } from "../observe/events.js";
import { Scrubber } from "../observe/scrubber.js";
import type { SecretBackend } from "../secrets/backend.js";
import { createBackend } from "../secrets/create-backend.js";
import { SecretResolver } from "../secrets/resolver.js";
import { configPath } from "./args.js";

/** What a one-shot command needs to run jobs: a scrubber that knows every value, a backend, a resolver. */
export interface Session extends AsyncDisposable {
  runner: LoadedRunner;
  scrubber: Scrubber;
  events: EventBus;
  backend: SecretBackend;
  resolver: SecretResolver;
}

export async function openSession(
  runner: LoadedRunner,
  options: { strict: boolean },
): Promise<Session> {
  const scrubber = new Scrubber();
  for (const value of runner.sensitive) scrubber.add(value);
  for (const job of runner.jobs.values()) for (const value of job.sensitive) scrubber.add(value);
  const events = new EventBus();
  const releasers: (() => Promise<void>)[] = [];
  // One-shot runs write the same audit trail as the daemon, when it goes to a file.
  const auditConfig = runner.config.runner.audit;
  const audit =
    auditConfig && auditConfig.path !== "-"
      ? await (await import("../observe/audit.js")).openAuditLog({
          path: resolve(runner.dir, auditConfig.path),
          hmacKey: auditConfig.hmac_key,
          events,
          scrubber,
        })
      : undefined;
  if (audit) releasers.push(() => audit.close());
  const config = runner.config.runner.secrets;
  const backend = await createBackend(config, { baseDir: runner.dir });
  const resolver = new SecretResolver({
    backend,
    cacheTtlMs: config.cache_ttl,
    maxStaleMs: config.max_stale,
    maxConcurrency: config.max_concurrency,
    scrubber,
    events,
    strict: options.strict,
    fingerprint:
      audit && auditConfig?.hmac_key ? (value) => audit.fingerprint(value) ?? "" : undefined,
  });
  releasers.push(() => backend.close());
  return {
    runner,
    scrubber,
    events,
    backend,
    resolver,
    [Symbol.asyncDispose]: async () => {
      for (const release of releasers.reverse()) await release();
    },
  };
}

/** Loads runner.yaml and picks the one schedule the command line names. */
export async function loadSchedule(
  positionals: readonly string[],
  values: { config?: string | undefined; strict?: boolean | undefined },
  usage: string,
): Promise<{ runner: LoadedRunner; schedule: Schedule; strict: boolean }> {
  const [name] = positionals;
  if (name === undefined || positionals.length > 1) {
    throw new DuckcronError("USAGE", `name one schedule\nusage: ${usage}`);
  }
  const strict = values.strict === true;
  const runner = await loadCheckedRunner(configPath(values.config), { strict });
  return { runner, schedule: findSchedule(runner, name), strict };
}

export function findSchedule(runner: LoadedRunner, name: string): Schedule {
  const schedules = runner.config.runner.schedules;
  const schedule = schedules.find((s) => s.name === name);
  if (schedule) return schedule;
  const names = schedules.map((s) => s.name);
  const hint =
    names.length > 0
      ? ` (did you mean "${closest(name, names)}"? schedules: ${names.join(", ")})`
      : " (runner.yaml defines no schedules)";
  throw new DuckcronError(
    "SCHEDULE_NOT_FOUND",
    `${runner.file}: no schedule named "${name}"${hint}`,
  );
}

export function checkTenants(
  runner: LoadedRunner,
  schedule: Schedule,
  tenants: readonly string[],
): void {
  for (const tenant of tenants) {
    if (!schedule.tenants.includes(tenant)) {
      throw new DuckcronError(
        "TENANT_NOT_FOUND",
        `${runner.file}: schedule "${schedule.name}" has no tenant "${tenant}" (tenants: ${schedule.tenants.join(", ")})`,
      );
    }
  }
}
