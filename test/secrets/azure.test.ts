import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AzureBackendConfig, azureBackendSchema } from "../../src/config/runner-schema.js";
import type { SecretError } from "../../src/errors.js";
import { AzureBackend } from "../../src/secrets/azure.js";
import { type AzureTestServer, startAzureTestServer } from "../servers/azure-test-server.js";
import { describeBackendContract, everythingSaidAbout, secretFailure } from "./contract.js";

const PLANTED = "planted-Azure-value-3d91";

let server: AzureTestServer;
const backends: AzureBackend[] = [];

beforeEach(async () => {
  server = await startAzureTestServer();
});
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
  await server.close();
});

function configFor(own: AzureTestServer, extra: Record<string, unknown> = {}): AzureBackendConfig {
  return azureBackendSchema.parse({
    type: "azure",
    vault_url: own.url,
    authority_host: own.url,
    tenant_id: own.tenantId,
    client_id: own.client.clientId,
    client_secret: own.client.clientSecret,
    ca_cert: own.caPath,
    local_test_server: true,
    max_attempts: 1,
    ...extra,
  });
}

function backend(extra: Record<string, unknown> = {}): AzureBackend {
  const created = new AzureBackend(configFor(server, extra));
  backends.push(created);
  return created;
}

for (const layout of ["bundle", "per_name"] as const) {
  describeBackendContract(`azure (${layout})`, async () => {
    const own = await startAzureTestServer();
    const bundles = new Map<string, Record<string, unknown>>();
    const b = new AzureBackend(configFor(own, { prefix: "duckcron-", layout }));
    return {
      backend: b,
      put: async (tenant, name, value) => {
        const text = typeof value === "string" ? value : JSON.stringify(value);
        if (layout === "per_name") {
          own.seed(b.nameOf(tenant, name), text);
          return;
        }
        const bundle = bundles.get(tenant) ?? {};
        bundle[name] = value;
        bundles.set(tenant, bundle);
        own.seed(b.bundleName(tenant), JSON.stringify(bundle));
      },
      teardown: () => own.close(),
    };
  });
}

async function failure(promise: Promise<unknown>): Promise<SecretError> {
  const error = await secretFailure(promise, PLANTED);
  expect(everythingSaidAbout(error)).not.toContain(server.client.clientSecret);
  return error;
}

describe("Azure backend, layouts and names", () => {
  it("reads a bundle with one GET after the challenge, and maps prefix and tenant", async () => {
    server.seed("apps-acme-eu", JSON.stringify({ db_password: PLANTED, pg: { user: "u" } }));
    const found = await backend({ prefix: "apps_", layout: "bundle" }).fetch("acme_eu", [
      "db_password",
      "pg",
      "nope",
    ]);
    expect(found.get("db_password")?.text).toBe(PLANTED);
    expect(found.get("pg")?.fields).toEqual({ user: "u" });
    expect(found.has("nope")).toBe(false);
    // The first GET carries no token and is answered with the challenge.
    expect(server.faults.requests("GetSecret")).toBe(2);
    expect(server.tokensIssued()).toBe(1);
  });

  it("per_name reads {prefix}{tenant}--{name}, one GET per name, one token for all", async () => {
    const names = Array.from({ length: 12 }, (_, i) => `name_${i}`);
    for (const name of names.slice(0, 10)) server.seed(`t-acme--${name.replace("_", "-")}`, name);
    const b = backend({ prefix: "t-", layout: "per_name", max_concurrency: 4 });
    const found = await b.fetch("acme", names);
    expect(found.size).toBe(10);
    expect(found.get("name_3")?.text).toBe("name_3");
    expect(server.tokensIssued()).toBe(1);
    server.faults.resetCounts();
    await b.fetch("acme", names);
    expect(server.faults.requests("GetSecret")).toBe(12);
    expect(b.locationOf("acme", "db_password")).toBe(
      'Key Vault secret "t-acme--db-password" (for "db_password")',
    );
  });

  it("auto uses the bundle when it exists, else per-name secrets", async () => {
    server.seed("acme", JSON.stringify({ key: "bundled" }));
    server.seed("globex--key", "separate");
    const auto = backend();
    expect((await auto.fetch("acme", ["key"])).get("key")?.text).toBe("bundled");
    expect((await auto.fetch("globex", ["key"])).get("key")?.text).toBe("separate");
  });

  it("a per_name tenant that cannot read back is INVALID_NAME before any request", async () => {
    const error = await failure(backend({ layout: "per_name" }).fetch("a--b", ["key"]));
    expect(error.code).toBe("INVALID_NAME");
    expect(server.faults.requests()).toBe(0);
  });

  it("reads over plain HTTP only with local_test_server, from AZURE_KEYVAULT_URL", async () => {
    const plain = await startAzureTestServer({ plainHttp: true });
    try {
      plain.seed("acme", JSON.stringify({ key: PLANTED }));
      const config = configFor(plain, { vault_url: undefined, layout: "bundle" });
      const b = new AzureBackend(config, { env: { AZURE_KEYVAULT_URL: plain.httpUrl } });
      expect((await b.fetch("acme", ["key"])).get("key")?.text).toBe(PLANTED);
      const strict = { ...config, local_test_server: false };
      expect(
        () => new AzureBackend(strict, { env: { AZURE_KEYVAULT_URL: plain.httpUrl } }),
      ).toThrow(/not https:\/\//);
    } finally {
      await plain.close();
    }
  });

  it("without vault_url or AZURE_KEYVAULT_URL says which to set", () => {
    expect(
      () => new AzureBackend(configFor(server, { vault_url: undefined }), { env: {} }),
    ).toThrow(/vault_url is not set and AZURE_KEYVAULT_URL is empty/);
  });
});

describe("Azure backend, errors", () => {
  it("a secret the identity may not get is SECRET_ACCESS_DENIED naming it and the permission get", async () => {
    const own = await startAzureTestServer({
      clients: [{ clientId: "restricted-app", clientSecret: "restricted~secret", deny: ["acme*"] }],
    });
    try {
      own.seed("acme", JSON.stringify({ key: PLANTED }));
      const b = new AzureBackend(configFor(own, { layout: "bundle" }));
      const error = await failure(b.fetch("acme", ["key"]));
      expect(error.code).toBe("SECRET_ACCESS_DENIED");
      expect(error.message).toContain('secret "acme" for tenant "acme"');
      expect(error.message).toContain("permission get");
      expect(error.message).toContain("ForbiddenByRbac");
      expect(error.retryable).toBe(false);
    } finally {
      await own.close();
    }
  });

  it("a wrong client secret is a credential error, not retried, without the secret", async () => {
    const b = backend({ client_secret: "not-the-client-secret", max_attempts: 3 });
    const error = await failure(b.fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain("invalid_client");
    expect(error.message).not.toContain("not-the-client-secret");
    expect(error.retryable).toBe(false);
    expect(server.faults.requests("token")).toBe(1);
  });

  it("an unknown client id is a credential error too", async () => {
    const error = await failure(backend({ client_id: "nobody" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain("unauthorized_client");
  });

  it("a disabled secret is a clear SECRET_INVALID", async () => {
    server.seed("acme", JSON.stringify({ key: PLANTED }), { enabled: false });
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_INVALID");
    expect(error.message).toContain('secret "acme" for tenant "acme" is disabled');
  });

  it("an expired or not yet valid secret is a clear SECRET_INVALID", async () => {
    server.seed("acme--old", PLANTED, { expires: new Date(Date.now() - 60_000) });
    server.seed("acme--new", PLANTED, { notBefore: new Date(Date.now() + 3_600_000) });
    const b = backend({ layout: "per_name" });
    const expired = await failure(b.fetch("acme", ["old"]));
    expect(expired.code).toBe("SECRET_INVALID");
    expect(expired.message).toMatch(/secret "acme--old" for tenant "acme" expired on \d{4}-/);
    const early = await failure(b.fetch("acme", ["new"]));
    expect(early.message).toContain("is not valid before");
  });

  it("throttling (429 + Retry-After) is retried within max_attempts", async () => {
    server.seed("acme", JSON.stringify({ key: "after-throttle" }));
    server.faults.inject({ kind: "throttle", operation: "GetSecret", times: 1 });
    const b = backend({ layout: "bundle", max_attempts: 2 });
    expect((await b.fetch("acme", ["key"])).get("key")?.text).toBe("after-throttle");
  });

  it("5xx past max_attempts is retryable SECRET_BACKEND_UNAVAILABLE", async () => {
    server.faults.inject({ kind: "unavailable", operation: "GetSecret" });
    const error = await failure(
      backend({ layout: "bundle", max_attempts: 2 }).fetch("acme", ["k"]),
    );
    expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
    expect(error.retryable).toBe(true);
    expect(error.message).toContain("HTTP 500");
    expect(error.message).toContain("after 2 attempts");
    expect(server.faults.requests("GetSecret")).toBe(2);
  });

  it("a Retry-After too long to wait out fails at once, retryable", async () => {
    const slow = await startAzureTestServer({ retryAfterSeconds: 120 });
    try {
      slow.faults.inject({ kind: "throttle", operation: "GetSecret" });
      const b = new AzureBackend(configFor(slow, { layout: "bundle", max_attempts: 5 }));
      const error = await failure(b.fetch("acme", ["k"]));
      expect(error.retryable).toBe(true);
      expect(error.message).toContain("Retry-After 120 s");
      expect(slow.faults.requests("GetSecret")).toBe(1);
    } finally {
      await slow.close();
    }
  });

  it("a token endpoint that is down is retryable", async () => {
    server.faults.inject({ kind: "unavailable", operation: "token" });
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["k"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
  });

  it("a hung request times out per attempt as SECRET_BACKEND_UNAVAILABLE", async () => {
    server.faults.inject({ kind: "hang", operation: "GetSecret" });
    const error = await failure(
      backend({ layout: "bundle", timeout: "300ms" }).fetch("acme", ["k"]),
    );
    expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
    expect(error.message).toContain("within 300 ms");
  });

  it("a body that is not JSON is SECRET_INVALID", async () => {
    server.faults.inject({ kind: "malformed", operation: "GetSecret" });
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["k"]));
    expect(error.code).toBe("SECRET_INVALID");
  });

  it("without ca_cert the test CA is not trusted: a TLS error naming ca_cert", async () => {
    const error = await failure(backend({ ca_cert: undefined }).fetch("acme", ["k"]));
    expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
    expect(error.message).toContain("ca_cert");
  });

  it("check passes on a 404 for the probe and fails on a refused credential", async () => {
    await expect(backend().check()).resolves.toBeUndefined();
    const error = await failure(backend({ client_secret: "wrong" }).check());
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
  });

  it("an aborted fetch rejects with the signal's reason", async () => {
    server.faults.inject({ kind: "hang", operation: "GetSecret" });
    const controller = new AbortController();
    const pending = backend({ layout: "bundle" }).fetch("acme", ["k"], controller.signal);
    setTimeout(() => controller.abort(new Error("run aborted")), 50);
    await expect(pending).rejects.toThrow("run aborted");
  });
});
