import { type ApplyOptions, type ApplyResult, apply } from "./catalog/apply.js";
import { readFingerprintKey } from "./catalog/fingerprint-key.js";
import { readCatalogMetadata } from "./catalog/metadata.js";
import { catalogPathFor, type Plan, plan } from "./catalog/plan.js";
import type { Statement } from "./catalog/statement.js";
import type { LoadedJob } from "./config/load.js";
import { CatalogError, DuckcronError } from "./errors.js";
import type { EventBus } from "./observe/events.js";
import type { Scrubber } from "./observe/scrubber.js";
import { collectSecretRefs, formatRefPath } from "./secrets/refs.js";
import type { ResolvedSecrets, SecretResolver } from "./secrets/resolver.js";

/**
 * One run: one schedule's job for one tenant, flowing config → secrets → plan →
 * apply. The CLI's `run` and `plan` and the daemon all go through here, so the
 * pipeline has exactly one shape.
 */

export type Stage = "secrets" | "plan" | "build";

export interface TenantRunContext {
  job: LoadedJob;
  schedule?: string | undefined;
  tenant: string;
  resolver: SecretResolver;
  scrubber: Scrubber;
  events?: EventBus | undefined;
  signal?: AbortSignal | undefined;
  force?: boolean | undefined;
  onStage?: ((stage: Stage) => void) | undefined;
  onProgress?: ((statement: Statement, index: number, total: number) => void) | undefined;
  /** Cluster mode: the fenced publish step and the claim that replaces the lock file. */
  publish?: ApplyOptions["publish"];
  externalLock?: boolean | undefined;
}

export interface PlannedRun {
  plan: Plan;
  secrets: ResolvedSecrets;
}

/** Resolves the tenant's secrets and plans the build against the current catalog. */
export async function planTenant(ctx: TenantRunContext): Promise<PlannedRun> {
  const { job, tenant } = ctx;
  ctx.onStage?.("secrets");
  const refs = collectSecretRefs(job.definition, job.locate);
  const secrets = await ctx.resolver.resolve(tenant, refs, {
    schedule: ctx.schedule,
    signal: ctx.signal,
  });
  ctx.onStage?.("plan");
  const definition = { definition: job.definition, dir: job.dir };
  // The previous build's record says what to drop; the stored key keys the fingerprint.
  const catalogPath = catalogPathFor(definition, tenant);
  const previous = await readCatalogMetadata(catalogPath);
  const fingerprintKey = await readFingerprintKey(catalogPath);
  try {
    return {
      plan: plan({ job: definition, tenant, secrets, previous, fingerprintKey }),
      secrets,
    };
  } catch (error) {
    throw located(error, job);
  }
}

/** Prefixes an error about a config field with that field's file, line and column. */
function located(error: unknown, job: LoadedJob): unknown {
  if (!(error instanceof DuckcronError) || error.path === undefined) return error;
  const { file, line, col } = job.locate(error.path);
  return new CatalogError(
    error.code,
    `${file}:${line}:${col}: ${formatRefPath(error.path)}: ${error.message}`,
    {
      retryable: error.retryable,
    },
  );
}

export interface TenantRunResult extends ApplyResult {
  degraded: boolean;
  warnings: readonly string[];
}

export async function runTenant(ctx: TenantRunContext): Promise<TenantRunResult> {
  const planned = await planTenant(ctx);
  ctx.onStage?.("build");
  const result = await apply(planned.plan, {
    scrubber: ctx.scrubber,
    signal: ctx.signal,
    events: ctx.events,
    tenant: ctx.tenant,
    schedule: ctx.schedule,
    onProgress: ctx.onProgress,
    force: ctx.force,
    ...(ctx.publish ? { publish: ctx.publish } : {}),
    ...(ctx.externalLock ? { externalLock: true } : {}),
  }).catch((error: unknown) => {
    throw located(error, ctx.job);
  });
  return { ...result, degraded: planned.secrets.degraded, warnings: planned.secrets.warnings };
}
