import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  runnerFileSchema,
  type VaultBackendConfig,
  vaultBackendSchema,
} from "../../src/config/runner-schema.js";
import { SecretError } from "../../src/errors.js";
import { VaultBackend } from "../../src/secrets/vault.js";
import { startVaultTestServer, type VaultTestServer } from "../servers/vault-test-server.js";
import { describeBackendContract } from "./contract.js";

const PLANTED = "planted-Vault-value-93f1";

function config(server: VaultTestServer, extra: Record<string, unknown> = {}): VaultBackendConfig {
  return vaultBackendSchema.parse({
    type: "vault",
    url: server.url,
    token: server.rootToken,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<SecretError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretError);
  return error as SecretError;
}

function expectNoCredentials(error: Error, server: VaultTestServer, extra: string[] = []): void {
  const text = `${error.message} ${JSON.stringify(error)} ${String(error.stack)}`;
  for (const token of [...server.issuedTokens(), ...extra]) expect(text).not.toContain(token);
  expect(text).not.toContain(PLANTED);
}

for (const kvVersion of [2, 1] as const) {
  describeBackendContract(`vault (KV v${kvVersion})`, async () => {
    const server = await startVaultTestServer({ mounts: { kv: kvVersion } });
    const entries = new Map<string, Record<string, unknown>>();
    const backend = new VaultBackend(
      config(server, { mount_point: "kv", kv_version: kvVersion, prefix: "duckcron/" }),
    );
    return {
      backend,
      // KV v2 entries hold structured secrets as objects, KV v1 entries as JSON strings: both are read.
      put: async (tenant, name, value) => {
        const entry = entries.get(tenant) ?? {};
        entry[name] = typeof value === "string" || kvVersion === 2 ? value : JSON.stringify(value);
        entries.set(tenant, entry);
        server.seed(`duckcron/${tenant}`, entry, { mount: "kv" });
      },
      teardown: () => server.close(),
    };
  });
}

describe("Vault backend, KV v2", () => {
  let server: VaultTestServer;
  beforeEach(async () => {
    server = await startVaultTestServer({ mounts: { secret: 2, kv: 1, team: 2 } });
  });
  afterEach(async () => {
    await server.close();
  });

  it("reads one entry per tenant and serves every name from it in one request", async () => {
    server.seed("acme", { db_password: PLANTED, api_key: "k-1", unused: "x" });
    const backend = new VaultBackend(config(server));
    const found = await backend.fetch("acme", ["db_password", "api_key", "absent"]);
    expect(found.get("db_password")?.text).toBe(PLANTED);
    expect(found.get("api_key")?.text).toBe("k-1");
    expect(found.has("absent")).toBe(false);
    expect(found.has("unused")).toBe(false);
    expect(server.faults.requests("kv.read")).toBe(1);
  });

  it("reads the latest version of the entry", async () => {
    server.seed("acme", { token: "old" });
    server.seed("acme", { token: "new" });
    const found = await new VaultBackend(config(server)).fetch("acme", ["token"]);
    expect(found.get("token")?.text).toBe("new");
  });

  it("treats a tenant without an entry as having none of the names", async () => {
    const backend = new VaultBackend(config(server));
    expect((await backend.fetch("nobody", ["db_password"])).size).toBe(0);
    expect(backend.locationOf("nobody", "db_password")).toBe(
      'Vault path "secret/data/nobody", key "db_password"',
    );
  });

  it("exposes the keys of a JSON-valued field, stored as a string or as an object", async () => {
    server.seed("acme", {
      pg: JSON.stringify({ user: "app", password: PLANTED, port: 5432 }),
      s3: { key_id: "AKIA1", secret: "s3-secret" },
      plain: "not json",
    });
    const found = await new VaultBackend(config(server)).fetch("acme", ["pg", "s3", "plain"]);
    expect(found.get("pg")?.fields).toEqual({ user: "app", password: PLANTED, port: "5432" });
    expect(found.get("s3")?.fields).toEqual({ key_id: "AKIA1", secret: "s3-secret" });
    expect(JSON.parse(found.get("s3")?.text ?? "")).toEqual({
      key_id: "AKIA1",
      secret: "s3-secret",
    });
    expect(found.get("plain")?.fields).toBeUndefined();
  });

  it("applies mount_point and prefix", async () => {
    server.seed("duckcron/acme", { key: "v" }, { mount: "team" });
    const backend = new VaultBackend(config(server, { mount_point: "team", prefix: "duckcron/" }));
    expect(backend.entryPath("acme")).toBe("team/data/duckcron/acme");
    expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe("v");
  });

  it("reads KV v1 entries at {mount}/{prefix}{tenant}", async () => {
    server.seed("acme", { key: "v1-value" }, { mount: "kv" });
    const backend = new VaultBackend(config(server, { mount_point: "kv", kv_version: 1 }));
    expect(backend.entryPath("acme")).toBe("kv/acme");
    expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe("v1-value");
  });

  it("takes url and token from VAULT_ADDR and VAULT_TOKEN", async () => {
    server.seed("acme", { key: "v" });
    const backend = new VaultBackend(vaultBackendSchema.parse({ type: "vault" }), {
      env: { VAULT_ADDR: server.url, VAULT_TOKEN: server.rootToken },
    });
    expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe("v");
  });

  it("refuses to start without an address or a token, naming what to set", () => {
    expect(
      () => new VaultBackend(vaultBackendSchema.parse({ type: "vault" }), { env: {} }),
    ).toThrow(/VAULT_ADDR/);
    expect(
      () =>
        new VaultBackend(vaultBackendSchema.parse({ type: "vault", url: server.url }), { env: {} }),
    ).toThrow(/VAULT_TOKEN/);
  });

  it("check() looks the token up and fails clearly for a bad one", async () => {
    await new VaultBackend(config(server)).check();
    expect(server.faults.requests("token.lookup-self")).toBe(1);
    const error = await failure(
      new VaultBackend(config(server, { token: "hvs.not-a-token" })).check(),
    );
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain("auth/token/lookup-self");
    expect(error.message).not.toContain("hvs.not-a-token");
  });
});

describe("Vault backend, access control", () => {
  let server: VaultTestServer;
  beforeEach(async () => {
    server = await startVaultTestServer();
  });
  afterEach(async () => {
    await server.close();
  });

  it("a 403 names the path and the missing read capability, never the token", async () => {
    server.seed("acme", { key: PLANTED });
    const token = server.createToken({
      policies: [{ path: "secret/data/globex", capabilities: ["read"] }],
    });
    const error = await failure(new VaultBackend(config(server, { token })).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('"secret/data/acme"');
    expect(error.message).toContain('capabilities = ["read"]');
    expect(error.message).toContain('tenant "acme"');
    expectNoCredentials(error, server);
  });

  it("a token whose policy grants read on the tenant's path reads it", async () => {
    server.seed("acme", { key: "v" });
    const token = server.createToken({
      policies: [{ path: "secret/data/*", capabilities: ["read"] }],
    });
    expect(
      (await new VaultBackend(config(server, { token })).fetch("acme", ["key"])).get("key")?.text,
    ).toBe("v");
  });

  it("an unknown token is denied the same way", async () => {
    const error = await failure(
      new VaultBackend(config(server, { token: "hvs.bogus-123" })).fetch("acme", ["k"]),
    );
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expectNoCredentials(error, server, ["hvs.bogus-123"]);
  });

  it("keeps namespaces apart and sends X-Vault-Namespace", async () => {
    server.seed("acme", { key: "engineering" }, { namespace: "eng" });
    server.seed("acme", { key: "root" });
    const eng = new VaultBackend(config(server, { namespace: "eng" }));
    const root = new VaultBackend(config(server));
    const sales = new VaultBackend(config(server, { namespace: "sales" }));
    expect((await eng.fetch("acme", ["key"])).get("key")?.text).toBe("engineering");
    expect((await root.fetch("acme", ["key"])).get("key")?.text).toBe("root");
    expect((await sales.fetch("acme", ["key"])).size).toBe(0);
    expect(eng.locationOf("acme", "key")).toContain('namespace "eng"');

    const engToken = server.createToken({ policies: "root", namespace: "eng" });
    const crossing = await failure(
      new VaultBackend(config(server, { token: engToken, namespace: "sales" })).fetch("acme", [
        "key",
      ]),
    );
    expect(crossing.code).toBe("SECRET_ACCESS_DENIED");
    expect(crossing.message).toContain('namespace "sales"');
  });
});

describe("Vault backend, AppRole", () => {
  let server: VaultTestServer;
  let clock: number;
  const role = { roleId: "role-duckcron", secretId: "secret-id-7c1d" };
  beforeEach(async () => {
    clock = 1_700_000_000_000;
    server = await startVaultTestServer({ now: () => clock });
    server.addAppRole({
      ...role,
      policies: [{ path: "secret/data/acme", capabilities: ["read"] }],
      tokenTtlSeconds: 60,
    });
    server.seed("acme", { key: "v" });
  });
  afterEach(async () => {
    await server.close();
  });

  const approle = (overrides: Record<string, unknown> = {}) =>
    new VaultBackend(
      vaultBackendSchema.parse({
        type: "vault",
        url: server.url,
        auth: "approle",
        role_id: role.roleId,
        secret_id: role.secretId,
        ...overrides,
      }),
      { now: () => clock },
    );

  it("logs in once and reuses the token", async () => {
    const backend = approle();
    await backend.fetch("acme", ["key"]);
    await backend.fetch("acme", ["key"]);
    expect(server.faults.requests("approle.login")).toBe(1);
    expect(server.faults.requests("kv.read")).toBe(2);
  });

  it("renews the token through renew-self before its lease ends", async () => {
    const backend = approle();
    await backend.fetch("acme", ["key"]);
    clock += 45_000; // past two thirds of the 60 s lease
    await backend.fetch("acme", ["key"]);
    expect(server.faults.requests("token.renew-self")).toBe(1);
    clock += 45_000; // past the original lease: only the renewal keeps the token alive
    await backend.fetch("acme", ["key"]);
    expect(server.faults.requests("token.renew-self")).toBe(2);
    expect(server.faults.requests("approle.login")).toBe(1);
  });

  it("logs in again once when a read is denied with 403", async () => {
    const backend = approle();
    await backend.fetch("acme", ["key"]);
    for (const token of server.issuedTokens())
      if (token !== server.rootToken) server.revokeToken(token);
    expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe("v");
    expect(server.faults.requests("approle.login")).toBe(2);
  });

  it("gives up after one re-login when the policy really denies the path", async () => {
    const backend = approle();
    const error = await failure(backend.fetch("globex", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain('"secret/data/globex"');
    expect(server.faults.requests("approle.login")).toBe(2);
    expect(server.faults.requests("kv.read")).toBe(2);
  });

  it("a refused login says which settings to check, without the secret_id", async () => {
    const error = await failure(approle({ secret_id: "wrong-secret-id" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain("role_id and secret_id");
    expectNoCredentials(error, server, ["wrong-secret-id", role.secretId]);
  });

  it("the schema asks for role_id and secret_id with auth: approle", () => {
    const result = runnerFileSchema.safeParse({
      version: 1,
      runner: {
        secrets: { type: "vault", url: "http://127.0.0.1:8200", auth: "approle", role_id: "r" },
      },
    });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain("secret_id");
  });
});
