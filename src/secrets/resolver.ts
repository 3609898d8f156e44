import { placeholderReason } from "../config/placeholders.js";
import { DuckcronError, type ErrorCode, SecretError } from "../errors.js";
import type { DuckcronEvents, EventBus } from "../observe/events.js";
import type { Scrubber } from "../observe/scrubber.js";
import { untilAborted } from "./abort.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import { describeRef, type SecretRef } from "./refs.js";
import { Semaphore } from "./semaphore.js";
import { structuredFields } from "./structured.js";

/**
 * Turns a tenant's `${secret:...}` references into values. Backends only fetch; the
 * resolver de-duplicates, batches (one backend call per tenant per resolve), bounds
 * concurrency, shares in-flight requests, caches with a TTL, falls back to stale
 * values when the backend is down (max_stale), and registers every value with the
 * scrubber before anyone else can see it.
 */

export interface ResolvedSecrets {
  /** The value of a reference that was passed to resolve(); throws for any other. */
  value(ref: { name: string; key?: string | undefined }): string;
  /** Some value came from a stale cache entry because the backend failed. */
  readonly degraded: boolean;
  /** Problems worth telling the operator (placeholder-looking values); names only, never values. */
  readonly warnings: readonly string[];
}

export interface ResolverOptions {
  backend: SecretBackend;
  /** How long a fetched secret is reused; 0 fetches on every resolve. */
  cacheTtlMs: number;
  /** When the backend fails, a value fetched less than cacheTtlMs + maxStaleMs ago is used instead. */
  maxStaleMs: number;
  /** Backend requests in flight at once, across every concurrent resolve(). */
  maxConcurrency: number;
  scrubber: Scrubber;
  events?: EventBus | undefined;
  now?: (() => number) | undefined;
  /** Keyed hash of a value for the audit trail (rotation detection); never the value. */
  fingerprint?: ((value: string) => string) | undefined;
  /** Placeholder-looking values are errors instead of warnings. */
  strict?: boolean | undefined;
}

export interface ResolveContext {
  schedule?: string | undefined;
  signal?: AbortSignal | undefined;
}

interface CacheEntry {
  secret: FetchedSecret;
  fetchedAt: number;
}

/** One backend.fetch shared by every resolve() that needs any of its names. */
interface Batch {
  promise: Promise<Map<string, FetchedSecret>>;
  controller: AbortController;
  /** resolve() calls still waiting on it; when the last one gives up, the fetch is aborted. */
  waiters: number;
}

interface ResolvedEvent {
  tenant: string;
  name: string;
  key?: string | undefined;
  schedule: string | undefined;
  cacheHit: boolean;
  outcome: DuckcronEvents["secret:resolved"]["outcome"];
  /** Only to compute the fingerprint; never emitted. */
  value?: string;
}

interface Obtained {
  secret: FetchedSecret | undefined;
  cacheHit: boolean;
  stale: boolean;
}

export class SecretResolver {
  readonly #options: ResolverOptions;
  readonly #now: () => number;
  readonly #semaphore: Semaphore;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Batch>();

  constructor(options: ResolverOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#semaphore = new Semaphore(options.maxConcurrency);
  }

  async resolve(
    tenant: string,
    refs: readonly SecretRef[],
    ctx: ResolveContext = {},
  ): Promise<ResolvedSecrets> {
    const { signal } = ctx;
    signal?.throwIfAborted();
    const names = [...new Set(refs.map((ref) => ref.name))];
    const obtained = await this.#obtain(tenant, names, ctx);
    return this.#finish(tenant, refs, obtained, ctx.schedule);
  }

  /** Gets every name from the cache, an in-flight batch, or one new batch. */
  async #obtain(
    tenant: string,
    names: readonly string[],
    ctx: ResolveContext,
  ): Promise<Map<string, Obtained>> {
    const { cacheTtlMs } = this.#options;
    const obtained = new Map<string, Obtained>();
    const waits = new Map<Batch, string[]>();
    const missing: string[] = [];
    const now = this.#now();
    for (const name of names) {
      const key = cacheKey(tenant, name);
      const entry = this.#cache.get(key);
      if (entry && cacheTtlMs > 0 && now - entry.fetchedAt < cacheTtlMs) {
        obtained.set(name, { secret: entry.secret, cacheHit: true, stale: false });
        continue;
      }
      const batch = this.#inflight.get(key);
      if (batch) waits.set(batch, [...(waits.get(batch) ?? []), name]);
      else missing.push(name);
    }
    if (missing.length > 0) waits.set(this.#startBatch(tenant, missing), missing);
    if (waits.size === 0) return obtained;

    const batches = [...waits.keys()];
    for (const batch of batches) batch.waiters += 1;
    let settled: PromiseSettledResult<Map<string, FetchedSecret>>[];
    try {
      settled = await untilAborted(Promise.allSettled(batches.map((b) => b.promise)), ctx.signal);
    } catch (error) {
      for (const batch of batches) this.#leave(batch, error);
      throw error;
    }
    for (const batch of batches) batch.waiters -= 1;

    let failure: unknown;
    const failedNames: string[] = [];
    settled.forEach((result, index) => {
      const batchNames = waits.get(batches[index] as Batch) ?? [];
      if (result.status === "fulfilled") {
        for (const name of batchNames)
          obtained.set(name, { secret: result.value.get(name), cacheHit: false, stale: false });
        return;
      }
      for (const name of batchNames) {
        const stale = this.#staleEntry(tenant, name);
        if (stale) obtained.set(name, { secret: stale.secret, cacheHit: true, stale: true });
        else {
          failure ??= result.reason;
          failedNames.push(name);
        }
      }
    });
    if (failure !== undefined) {
      for (const name of failedNames) {
        this.#emitResolved({
          tenant,
          name,
          schedule: ctx.schedule,
          cacheHit: false,
          outcome: "error",
        });
      }
      throw failure;
    }
    return obtained;
  }

  #startBatch(tenant: string, names: readonly string[]): Batch {
    const { backend, events, scrubber } = this.#options;
    const controller = new AbortController();
    const run = async () => {
      const started = this.#now();
      let found: Map<string, FetchedSecret>;
      try {
        found = await backend.fetch(tenant, names, controller.signal);
      } catch (error) {
        const failure = this.#explain(error, tenant, controller.signal);
        events?.emit("secret:request", {
          backend: backend.type,
          tenant,
          status:
            failure instanceof DuckcronError && failure.code === "SECRET_ACCESS_DENIED"
              ? "denied"
              : "error",
          durationMs: this.#now() - started,
        });
        throw failure;
      }
      // Before anything else happens with them: from here on, every value is masked.
      for (const secret of found.values()) registerSecret(scrubber, secret);
      if (this.#options.cacheTtlMs > 0 || this.#options.maxStaleMs > 0) {
        for (const [name, secret] of found)
          this.#cache.set(cacheKey(tenant, name), { secret, fetchedAt: started });
      }
      events?.emit("secret:request", {
        backend: backend.type,
        tenant,
        status: names.every((name) => found.has(name)) ? "ok" : "not_found",
        durationMs: this.#now() - started,
      });
      return found;
    };
    const batch: Batch = {
      controller,
      waiters: 0,
      promise: this.#semaphore
        .run(run, controller.signal)
        .finally(() => this.#forget(tenant, names, batch)),
    };
    // Every waiter observes the outcome through allSettled; this only keeps an abandoned batch quiet.
    batch.promise.catch(() => {});
    for (const name of names) this.#inflight.set(cacheKey(tenant, name), batch);
    return batch;
  }

  /** A waiter gave up; the last one to leave cancels the fetch so it does not hold a slot. */
  #leave(batch: Batch, reason: unknown): void {
    batch.waiters -= 1;
    if (batch.waiters > 0) return;
    for (const [key, current] of this.#inflight) if (current === batch) this.#inflight.delete(key);
    batch.controller.abort(reason);
  }

  #forget(tenant: string, names: readonly string[], batch: Batch): void {
    for (const name of names) {
      const key = cacheKey(tenant, name);
      if (this.#inflight.get(key) === batch) this.#inflight.delete(key);
    }
  }

  #staleEntry(tenant: string, name: string): CacheEntry | undefined {
    const { cacheTtlMs, maxStaleMs } = this.#options;
    if (maxStaleMs <= 0) return undefined;
    const entry = this.#cache.get(cacheKey(tenant, name));
    return entry && this.#now() - entry.fetchedAt < cacheTtlMs + maxStaleMs ? entry : undefined;
  }

  /** Backend errors leave as SecretErrors with scrubbed text, whatever the backend threw. */
  #explain(error: unknown, tenant: string, signal: AbortSignal): unknown {
    const { backend, scrubber } = this.#options;
    if (signal.aborted && error === signal.reason) return error;
    if (error instanceof DuckcronError) {
      // The stack repeats the message as it was when the error was built.
      error.message = scrubber.scrub(error.message);
      if (error.stack !== undefined) error.stack = scrubber.scrub(error.stack);
      return error;
    }
    const message = error instanceof Error ? error.message : String(error);
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `secrets backend ${backend.type} failed for tenant "${tenant}": ${scrubber.scrub(message)}`,
      { retryable: true },
    );
  }

  #finish(
    tenant: string,
    refs: readonly SecretRef[],
    obtained: Map<string, Obtained>,
    schedule: string | undefined,
  ): ResolvedSecrets {
    const { backend, scrubber, strict } = this.#options;
    const values = new Map<string, string>();
    const problems: { code: ErrorCode; message: string }[] = [];
    const warnings: string[] = [];
    const resolvedEvents: ResolvedEvent[] = [];
    const seen = new Set<string>();
    let degraded = false;
    for (const got of obtained.values()) if (got.secret) registerSecret(scrubber, got.secret);

    for (const ref of refs) {
      const id = valueKey(ref);
      if (seen.has(id)) continue;
      seen.add(id);
      const got = obtained.get(ref.name);
      const base = {
        tenant,
        name: ref.name,
        key: ref.key,
        schedule,
        cacheHit: got?.cacheHit ?? false,
      };
      // Only messages need the location, and finding it may re-parse the job file.
      const at = () => {
        const where = describeRef(ref);
        return where === "" ? "" : `${where}: `;
      };
      if (!got?.secret) {
        problems.push({
          code: "SECRET_NOT_FOUND",
          message: `${at()}secret "${ref.name}" not found for tenant "${tenant}" (looked up ${backend.locationOf(tenant, ref.name)})`,
        });
        resolvedEvents.push({ ...base, outcome: "not_found" });
        continue;
      }
      let value = got.secret.text;
      if (ref.key !== undefined) {
        const fields = got.secret.fields ?? structuredFields(got.secret.text);
        if (fields) for (const field of Object.values(fields)) scrubber.add(field);
        const field = fields && Object.hasOwn(fields, ref.key) ? fields[ref.key] : undefined;
        if (field === undefined) {
          problems.push({
            code: "SECRET_KEY_NOT_FOUND",
            message: fields
              ? `${at()}secret "${ref.name}" of tenant "${tenant}" has no key "${ref.key}" (its keys: ${Object.keys(fields).join(", ") || "none"})`
              : `${at()}secret "${ref.name}" of tenant "${tenant}" is a single value, not JSON or .env with keys, so ${ref.raw} cannot pick key "${ref.key}"`,
          });
          resolvedEvents.push({ ...base, outcome: "not_found" });
          continue;
        }
        value = field;
      }
      scrubber.add(value);
      values.set(id, value);
      if (got.stale) degraded = true;
      const reason = placeholderReason(value);
      if (reason !== undefined) {
        const message = `${at()}secret "${displayName(ref)}" of tenant "${tenant}" looks like a placeholder: ${reason}`;
        if (strict) problems.push({ code: "SECRET_INVALID", message });
        else warnings.push(message);
      }
      resolvedEvents.push({ ...base, outcome: got.stale ? "stale" : "ok", value });
    }

    for (const event of resolvedEvents) this.#emitResolved(event);
    const first = problems[0];
    if (first) {
      throw new SecretError(first.code, problems.map((p) => p.message).join("\n"));
    }
    return {
      degraded,
      warnings,
      value(ref) {
        const value = values.get(valueKey(ref));
        if (value === undefined) {
          throw new SecretError(
            "SECRET_NOT_FOUND",
            `secret "${displayName(ref)}" was not resolved for tenant "${tenant}"; pass its reference to resolve() first`,
          );
        }
        return value;
      },
    };
  }

  #emitResolved(e: ResolvedEvent): void {
    const { events, fingerprint, backend } = this.#options;
    if (!events) return;
    events.emit("secret:resolved", {
      schedule: e.schedule,
      tenant: e.tenant,
      reference: `secret:${displayName(e)}`,
      backend: backend.type,
      cacheHit: e.cacheHit,
      outcome: e.outcome,
      fingerprint: e.value !== undefined && fingerprint ? fingerprint(e.value) : undefined,
    });
  }
}

function registerSecret(scrubber: Scrubber, secret: FetchedSecret): void {
  scrubber.add(secret.text);
  for (const field of Object.values(secret.fields ?? {})) scrubber.add(field);
}

function cacheKey(tenant: string, name: string): string {
  return `${tenant}\u0000${name}`;
}

function valueKey(ref: { name: string; key?: string | undefined }): string {
  return ref.key === undefined ? ref.name : `${ref.name}\u0000${ref.key}`;
}

function displayName(ref: { name: string; key?: string | undefined }): string {
  return ref.key === undefined ? ref.name : `${ref.name}.${ref.key}`;
}
