import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { vaultBackendSchema } from "../../src/config/runner-schema.js";
import { SecretError } from "../../src/errors.js";
import { VaultBackend } from "../../src/secrets/vault.js";
import { makeTestCertificates, type TestCertificates } from "../servers/test-certs.js";
import { startVaultTestServer, type VaultTestServer } from "../servers/vault-test-server.js";

const PLANTED = "planted-Vault-TLS-value-7c2e";

let certs: TestCertificates;
let server: VaultTestServer;
const backends: VaultBackend[] = [];

beforeAll(() => {
  certs = makeTestCertificates();
});
afterAll(() => {
  certs.remove();
});
beforeEach(async () => {
  server = await startVaultTestServer({ tls: { cert: certs.cert, key: certs.key } });
  server.seed("acme", { db_password: PLANTED });
});
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
  await server.close();
});

function backend(extra: Record<string, unknown>): VaultBackend {
  const created = new VaultBackend(
    vaultBackendSchema.parse({ type: "vault", url: server.url, token: server.rootToken, ...extra }),
    // ca_cert is relative to runner.yaml's folder.
    { baseDir: certs.dir },
  );
  backends.push(created);
  return created;
}

describe("Vault backend over HTTPS", () => {
  it("serves over https (the test server's own check)", () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("with ca_cert set to the CA that signed Vault's certificate, reads the entry", async () => {
    const found = await backend({ ca_cert: "ca.pem" }).fetch("acme", ["db_password"]);
    expect(found.get("db_password")?.text).toBe(PLANTED);
  });

  it("without ca_cert, an unknown CA fails as SECRET_BACKEND_UNAVAILABLE naming ca_cert and verify, never the token", async () => {
    const error = await backend({})
      .fetch("acme", ["db_password"])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(SecretError);
    const secretError = error as SecretError;
    expect(secretError.code).toBe("SECRET_BACKEND_UNAVAILABLE");
    expect(secretError.message).toMatch(/TLS to Vault failed/);
    expect(secretError.message).toContain("runner.secrets.ca_cert");
    expect(secretError.message).toContain("verify: false");
    const text = `${secretError.message} ${JSON.stringify(secretError)} ${String(secretError.stack)}`;
    for (const token of server.issuedTokens()) expect(text).not.toContain(token);
    expect(text).not.toContain(PLANTED);
    // The handshake failed before any request reached the server.
    expect(server.faults.requests()).toBe(0);
  });

  it("with verify: false, reads the entry without checking the certificate", async () => {
    const found = await backend({ verify: false }).fetch("acme", ["db_password"]);
    expect(found.get("db_password")?.text).toBe(PLANTED);
  });

  it("keeps one TLS connection open across requests instead of a handshake per request", async () => {
    const vault = backend({ ca_cert: "ca.pem" });
    for (let i = 0; i < 3; i++) await vault.fetch("acme", ["db_password"]);
    expect(server.faults.requests("kv.read")).toBe(3);
    expect(server.faults.connections).toBe(1);
  });
});
