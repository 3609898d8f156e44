import { describe, expect, it } from "vitest";
import { SecretError } from "../../src/errors.js";
import { type DuckcronEvents, EventBus } from "../../src/observe/events.js";
import { Scrubber } from "../../src/observe/scrubber.js";
import type { FetchedSecret, SecretBackend } from "../../src/secrets/backend.js";
import type { SecretRef } from "../../src/secrets/refs.js";
import { type ResolverOptions, SecretResolver } from "../../src/secrets/resolver.js";
import { everythingSaidAbout, PLANTED } from "./contract.js";

/** A backend over an in-memory store that records calls and can be held, failed and released by the test. */
class FakeBackend implements SecretBackend {
  readonly type = "fake";
  readonly calls: { tenant: string; names: string[] }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failWith: Error | undefined;
  /** When set, every fetch waits for release(). */
  hold = false;
  readonly #held: (() => void)[] = [];
  readonly signals: AbortSignal[] = [];

  constructor(readonly store: Record<string, Record<string, FetchedSecret>>) {}

  async fetch(
    tenant: string,
    names: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, FetchedSecret>> {
    this.calls.push({ tenant, names: [...names] });
    if (signal) this.signals.push(signal);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
      if (this.failWith) throw this.failWith;
      const found = new Map<string, FetchedSecret>();
      for (const name of names) {
        const secret = this.store[tenant]?.[name];
        if (secret) found.set(name, secret);
      }
      return found;
    } finally {
      this.inFlight -= 1;
    }
  }

  /** Lets every held fetch continue. */
  release(): void {
    for (const go of this.#held.splice(0)) go();
  }

  get heldCount(): number {
    return this.#held.length;
  }

  locationOf(tenant: string, name: string): string {
    return `fake:${tenant}/${name}`;
  }

  async check(): Promise<void> {}
  async close(): Promise<void> {}
}

const STORE = {
  acme: {
    db_password: { text: PLANTED.password },
    api_token: { text: PLANTED.token },
    db: { text: "ignored", fields: { user: "reporting", password: PLANTED.field } },
    json_blob: { text: `{"user":"u","port":5432,"secret":"${PLANTED.field}-json"}` },
    placeholder: { text: "changeme" },
  },
  globex: { db_password: { text: "globex-password" } },
} satisfies Record<string, Record<string, FetchedSecret>>;

function ref(
  name: string,
  key?: string,
  path: (string | number)[] = ["duckdb", "secrets", 0, "password"],
): SecretRef {
  return { name, key, raw: key ? `\${secret:${name}.${key}}` : `\${secret:${name}}`, path };
}

function setup(overrides: Partial<ResolverOptions> = {}) {
  const backend = new FakeBackend(structuredClone(STORE));
  const clock = { now: 1_000_000 };
  const scrubber = new Scrubber();
  const events = new EventBus();
  const emitted: { [K in keyof DuckcronEvents]?: DuckcronEvents[K][] } = {};
  for (const name of ["secret:request", "secret:resolved"] as const) {
    events.on(name, (payload) => {
      const list = (emitted[name] ?? []) as unknown[];
      list.push(payload);
      emitted[name] = list as never;
    });
  }
  const resolver = new SecretResolver({
    backend,
    cacheTtlMs: 60_000,
    maxStaleMs: 0,
    maxConcurrency: 4,
    scrubber,
    events,
    now: () => clock.now,
    ...overrides,
  });
  return { backend, clock, scrubber, events, emitted, resolver };
}

/** Lets queued promise callbacks run until `ready` holds; deterministic, no timers. */
async function until(ready: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100 && !ready(); turn += 1) await new Promise(setImmediate);
  expect(ready()).toBe(true);
}

async function rejection(promise: Promise<unknown>): Promise<SecretError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretError);
  return error as SecretError;
}

describe("SecretResolver", () => {
  describe("batching", () => {
    it("fetches every missing name of a tenant in one backend call, each name once", async () => {
      const { backend, resolver } = setup();

      const resolved = await resolver.resolve("acme", [
        ref("db_password"),
        ref("api_token"),
        ref("db_password", undefined, ["duckdb", "secrets", 1, "password"]),
        ref("db", "user"),
        ref("db", "password"),
      ]);

      expect(backend.calls).toEqual([
        { tenant: "acme", names: ["db_password", "api_token", "db"] },
      ]);
      expect(resolved.value({ name: "db_password" })).toBe(PLANTED.password);
      expect(resolved.value({ name: "api_token" })).toBe(PLANTED.token);
      expect(resolved.value({ name: "db", key: "user" })).toBe("reporting");
      expect(resolved.value({ name: "db", key: "password" })).toBe(PLANTED.field);
    });

    it("makes no backend call for an empty list of references", async () => {
      const { backend, resolver } = setup();

      const resolved = await resolver.resolve("acme", []);

      expect(backend.calls).toEqual([]);
      expect(resolved.degraded).toBe(false);
    });

    it("refuses to hand out a value that was not asked for", async () => {
      const { resolver } = setup();

      const resolved = await resolver.resolve("acme", [ref("db_password")]);

      expect(() => resolved.value({ name: "api_token" })).toThrow(
        /was not resolved for tenant "acme"/,
      );
    });
  });

  describe("single-flight and concurrency", () => {
    it("shares one in-flight request between concurrent resolves of the same tenant and name", async () => {
      const { backend, resolver } = setup();
      backend.hold = true;

      const first = resolver.resolve("acme", [ref("db_password")]);
      const second = resolver.resolve("acme", [ref("db_password")]);
      await until(() => backend.heldCount === 1);
      backend.release();
      const [a, b] = await Promise.all([first, second]);

      expect(backend.calls).toEqual([{ tenant: "acme", names: ["db_password"] }]);
      expect(a.value({ name: "db_password" })).toBe(PLANTED.password);
      expect(b.value({ name: "db_password" })).toBe(PLANTED.password);
    });

    it("joins the in-flight request for names already asked for and fetches only the rest", async () => {
      const { backend, resolver } = setup();
      backend.hold = true;

      const first = resolver.resolve("acme", [ref("db_password")]);
      const second = resolver.resolve("acme", [ref("db_password"), ref("api_token")]);
      await until(() => backend.heldCount === 2);
      backend.release();
      const [, b] = await Promise.all([first, second]);

      expect(backend.calls).toEqual([
        { tenant: "acme", names: ["db_password"] },
        { tenant: "acme", names: ["api_token"] },
      ]);
      expect(b.value({ name: "api_token" })).toBe(PLANTED.token);
    });

    it("never has more than maxConcurrency requests in flight, across resolves", async () => {
      const { backend, resolver } = setup({ maxConcurrency: 2 });
      backend.hold = true;
      const tenants = ["t1", "t2", "t3", "t4", "t5"];
      for (const t of tenants) backend.store[t] = { k: { text: `value-of-${t}` } };

      const all = Promise.all(tenants.map((t) => resolver.resolve(t, [ref("k")])));
      while (backend.calls.length < tenants.length) {
        await new Promise(setImmediate);
        expect(backend.inFlight).toBeLessThanOrEqual(2);
        backend.release();
      }
      backend.release();
      const results = await all;

      expect(backend.maxInFlight).toBe(2);
      expect(results.map((r) => r.value({ name: "k" }))).toEqual(
        tenants.map((t) => `value-of-${t}`),
      );
    });
  });

  describe("cache", () => {
    it("reuses a value within cacheTtlMs and fetches again after it", async () => {
      const { backend, clock, emitted, resolver } = setup({ cacheTtlMs: 60_000 });

      await resolver.resolve("acme", [ref("db_password")]);
      clock.now += 59_999;
      await resolver.resolve("acme", [ref("db_password")]);
      expect(backend.calls).toHaveLength(1);
      expect(emitted["secret:resolved"]?.map((e) => e.cacheHit)).toEqual([false, true]);

      clock.now += 1;
      await resolver.resolve("acme", [ref("db_password")]);
      expect(backend.calls).toHaveLength(2);
    });

    it("keeps tenants apart in the cache", async () => {
      const { resolver } = setup();

      await resolver.resolve("acme", [ref("db_password")]);
      const globex = await resolver.resolve("globex", [ref("db_password")]);

      expect(globex.value({ name: "db_password" })).toBe("globex-password");
    });

    it("fetches every time when cacheTtlMs is 0", async () => {
      const { backend, resolver } = setup({ cacheTtlMs: 0 });

      await resolver.resolve("acme", [ref("db_password")]);
      await resolver.resolve("acme", [ref("db_password")]);

      expect(backend.calls).toHaveLength(2);
    });

    it("does not cache a name that was not found, so adding it takes effect at once", async () => {
      const { backend, resolver } = setup();
      await rejection(resolver.resolve("acme", [ref("new_one")]));

      backend.store.acme = { ...backend.store.acme, new_one: { text: "now-there" } };
      const resolved = await resolver.resolve("acme", [ref("new_one")]);

      expect(resolved.value({ name: "new_one" })).toBe("now-there");
    });
  });

  describe("max_stale", () => {
    it("uses a cached value when the backend fails within ttl + max_stale, and says the run is degraded", async () => {
      const { backend, clock, emitted, resolver } = setup({
        cacheTtlMs: 60_000,
        maxStaleMs: 600_000,
      });
      await resolver.resolve("acme", [ref("db_password")]);

      backend.failWith = new SecretError("SECRET_BACKEND_UNAVAILABLE", "backend down", {
        retryable: true,
      });
      clock.now += 60_000 + 599_999;
      const resolved = await resolver.resolve("acme", [ref("db_password")]);

      expect(resolved.degraded).toBe(true);
      expect(resolved.value({ name: "db_password" })).toBe(PLANTED.password);
      expect(emitted["secret:resolved"]?.at(-1)).toMatchObject({
        outcome: "stale",
        cacheHit: true,
      });
      expect(emitted["secret:request"]?.at(-1)).toMatchObject({ status: "error", backend: "fake" });
    });

    it("rethrows the backend's error when the cached value is too old", async () => {
      const { backend, clock, resolver } = setup({ cacheTtlMs: 60_000, maxStaleMs: 600_000 });
      await resolver.resolve("acme", [ref("db_password")]);

      backend.failWith = new SecretError("SECRET_BACKEND_UNAVAILABLE", "backend down", {
        retryable: true,
      });
      clock.now += 660_000;
      const error = await rejection(resolver.resolve("acme", [ref("db_password")]));

      expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
      expect(error.retryable).toBe(true);
    });

    it("rethrows when max_stale is 0", async () => {
      const { backend, clock, resolver } = setup({ cacheTtlMs: 60_000, maxStaleMs: 0 });
      await resolver.resolve("acme", [ref("db_password")]);

      backend.failWith = new SecretError("SECRET_ACCESS_DENIED", "token expired");
      clock.now += 60_000;

      expect((await rejection(resolver.resolve("acme", [ref("db_password")]))).code).toBe(
        "SECRET_ACCESS_DENIED",
      );
    });

    it("keeps values for max_stale even when the cache is off", async () => {
      const { backend, clock, resolver } = setup({ cacheTtlMs: 0, maxStaleMs: 60_000 });
      await resolver.resolve("acme", [ref("db_password")]);
      backend.failWith = new Error("connection reset");
      clock.now += 30_000;

      const resolved = await resolver.resolve("acme", [ref("db_password")]);

      expect(backend.calls).toHaveLength(2);
      expect(resolved.degraded).toBe(true);
    });

    it("wraps an unexpected backend error as a retryable SECRET_BACKEND_UNAVAILABLE", async () => {
      const { backend, resolver } = setup();
      backend.failWith = new TypeError("socket hang up");

      const error = await rejection(resolver.resolve("acme", [ref("db_password")]));

      expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
      expect(error.retryable).toBe(true);
      expect(error.message).toBe('secrets backend fake failed for tenant "acme": socket hang up');
    });
  });

  describe("errors", () => {
    it("says which secret is missing, where it was referenced and where it was looked up", async () => {
      const { emitted, resolver } = setup();
      const missing: SecretRef = {
        ...ref("nope", undefined, ["duckdb", "secrets", 2, "extra_http_headers", "X-Api-Key"]),
        location: { file: "jobs/sales.yaml", line: 12, col: 9 },
      };

      const error = await rejection(resolver.resolve("acme", [ref("db_password"), missing]));

      expect(error.code).toBe("SECRET_NOT_FOUND");
      expect(error.message).toBe(
        'jobs/sales.yaml:12:9: duckdb.secrets[2].extra_http_headers.X-Api-Key: secret "nope" not found for tenant "acme" (looked up fake:acme/nope)',
      );
      expect(emitted["secret:resolved"]?.map((e) => [e.reference, e.outcome])).toEqual([
        ["secret:db_password", "ok"],
        ["secret:nope", "not_found"],
      ]);
    });

    it("lists the available key names, never values, when a key is missing", async () => {
      const { resolver } = setup();

      const error = await rejection(resolver.resolve("acme", [ref("db", "pasword")]));

      expect(error.code).toBe("SECRET_KEY_NOT_FOUND");
      expect(error.message).toBe(
        'duckdb.secrets[0].password: secret "db" of tenant "acme" has no key "pasword" (its keys: user, password)',
      );
    });

    it("reads keys from a JSON text when the backend gave no fields, stringifying non-strings", async () => {
      const { resolver, scrubber } = setup();

      const resolved = await resolver.resolve("acme", [
        ref("json_blob", "port"),
        ref("json_blob", "user"),
      ]);

      expect(resolved.value({ name: "json_blob", key: "port" })).toBe("5432");
      expect(scrubber.scrub(`x ${PLANTED.field}-json y`)).toBe("x *** y");
    });

    it("explains that a plain value has no keys", async () => {
      const { resolver } = setup();

      const error = await rejection(resolver.resolve("acme", [ref("api_token", "x")]));

      expect(error.code).toBe("SECRET_KEY_NOT_FOUND");
      expect(error.message).toMatch(/is a single value, not JSON or \.env with keys/);
    });

    it("never puts a planted value into an error or an event", async () => {
      const { backend, emitted, resolver } = setup({ fingerprint: () => "fp" });
      backend.store.acme = {
        ...backend.store.acme,
        leaky: { text: `{"a":"${PLANTED.password}"}` },
      };
      const said: string[] = [];
      for (const attempt of [
        [ref("leaky", "missing")],
        [ref("db", "nope")],
        [ref("db_password"), ref("absent")],
        [ref("api_token", "key")],
      ]) {
        said.push(everythingSaidAbout(await rejection(resolver.resolve("acme", attempt))));
      }
      backend.failWith = new Error(`backend echoed ${PLANTED.token}`);
      said.push(everythingSaidAbout(await rejection(resolver.resolve("acme", [ref("other")]))));

      expect(said.join("\n")).not.toMatch(/PLANTED/);
      expect(JSON.stringify(emitted)).not.toMatch(/PLANTED/);
    });
  });

  describe("masking", () => {
    it("registers every value and every field with the scrubber before resolve() returns or emits", async () => {
      const { events, resolver, scrubber } = setup();
      const seenAtEmit: string[] = [];
      events.on("secret:request", () => {
        seenAtEmit.push(scrubber.scrub(`${PLANTED.password} ${PLANTED.field}`));
      });
      events.on("secret:resolved", () => {
        seenAtEmit.push(scrubber.scrub(PLANTED.password));
      });

      await resolver.resolve("acme", [ref("db_password"), ref("db", "user")]);

      expect(seenAtEmit).toEqual(["*** ***", "***", "***"]);
      expect(scrubber.scrub("reporting")).toBe("***");
    });

    it("registers values before reporting a missing secret, so the error path is masked too", async () => {
      const { resolver, scrubber } = setup();

      await rejection(resolver.resolve("acme", [ref("db_password"), ref("absent")]));

      expect(scrubber.scrub(PLANTED.password)).toBe("***");
    });
  });

  describe("placeholders", () => {
    it("warns by name when a value looks like a placeholder", async () => {
      const { resolver } = setup();

      const resolved = await resolver.resolve("acme", [ref("placeholder")]);

      expect(resolved.warnings).toEqual([
        'duckdb.secrets[0].password: secret "placeholder" of tenant "acme" looks like a placeholder: it contains "changeme"',
      ]);
    });

    it("refuses placeholder values in strict mode", async () => {
      const { resolver } = setup({ strict: true });

      const error = await rejection(resolver.resolve("acme", [ref("placeholder")]));

      expect(error.code).toBe("SECRET_INVALID");
    });
  });

  describe("events", () => {
    it("reports one request per backend call and one resolution per unique reference, with fingerprints", async () => {
      const { emitted, resolver } = setup({ fingerprint: (v) => `fp(${v.length})` });

      await resolver.resolve("acme", [ref("db_password"), ref("db_password"), ref("db", "user")], {
        schedule: "sales",
      });

      expect(emitted["secret:request"]).toEqual([
        { backend: "fake", tenant: "acme", status: "ok", durationMs: 0 },
      ]);
      expect(emitted["secret:resolved"]).toEqual([
        {
          schedule: "sales",
          tenant: "acme",
          reference: "secret:db_password",
          backend: "fake",
          cacheHit: false,
          outcome: "ok",
          fingerprint: `fp(${PLANTED.password.length})`,
        },
        {
          schedule: "sales",
          tenant: "acme",
          reference: "secret:db.user",
          backend: "fake",
          cacheHit: false,
          outcome: "ok",
          fingerprint: "fp(9)",
        },
      ]);
    });
  });

  describe("abort", () => {
    it("rejects promptly when the signal aborts while the backend is slow, and cancels the fetch", async () => {
      const { backend, resolver } = setup();
      backend.hold = true;
      const controller = new AbortController();

      const pending = resolver.resolve("acme", [ref("db_password")], { signal: controller.signal });
      await new Promise(setImmediate);
      controller.abort(new Error("run timed out"));

      await expect(pending).rejects.toThrow("run timed out");
      expect(backend.signals[0]?.aborted).toBe(true);
      backend.release();
    });

    it("rejects promptly while waiting for a concurrency slot, and the queued fetch never runs", async () => {
      const { backend, resolver } = setup({ maxConcurrency: 1 });
      backend.hold = true;
      const busy = resolver.resolve("globex", [ref("db_password")]);
      await new Promise(setImmediate);
      const controller = new AbortController();

      const queued = resolver.resolve("acme", [ref("db_password")], { signal: controller.signal });
      controller.abort(new Error("shutdown"));
      await expect(queued).rejects.toThrow("shutdown");

      backend.release();
      await busy;
      expect(backend.calls.map((c) => c.tenant)).toEqual(["globex"]);
    });

    it("keeps a shared fetch going while another resolve still waits for it", async () => {
      const { backend, resolver } = setup();
      backend.hold = true;
      const controller = new AbortController();
      const leaving = resolver.resolve("acme", [ref("db_password")], { signal: controller.signal });
      const staying = resolver.resolve("acme", [ref("db_password")]);
      await new Promise(setImmediate);

      controller.abort(new Error("gone"));
      await expect(leaving).rejects.toThrow("gone");
      backend.release();

      expect((await staying).value({ name: "db_password" })).toBe(PLANTED.password);
      expect(backend.calls).toHaveLength(1);
      expect(backend.signals[0]?.aborted).toBe(false);
    });

    it("rejects at once with an already aborted signal", async () => {
      const { backend, resolver } = setup();

      await expect(
        resolver.resolve("acme", [ref("db_password")], { signal: AbortSignal.abort() }),
      ).rejects.toThrow();
      expect(backend.calls).toEqual([]);
    });
  });
});

describe("SecretResolver error text", () => {
  it("scrubs known values out of a backend's error message and stack", async () => {
    const { backend, resolver } = setup({ cacheTtlMs: 0 });
    await resolver.resolve("acme", [ref("db_password")]);
    backend.failWith = new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `server said ${PLANTED.password}`,
    );

    const error = await rejection(resolver.resolve("acme", [ref("db_password")]));

    expect(error.message).toBe("server said ***");
    expect(error.stack).not.toContain("PLANTED");
  });
});
