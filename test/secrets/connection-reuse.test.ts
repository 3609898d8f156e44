import { afterEach, describe, expect, it } from "vitest";
import { awsBackendSchema, vaultBackendSchema } from "../../src/config/runner-schema.js";
import { AwsBackend } from "../../src/secrets/aws.js";
import { VaultBackend } from "../../src/secrets/vault.js";
import { startAwsTestServer } from "../servers/aws-test-server.js";
import { startVaultTestServer } from "../servers/vault-test-server.js";

// Requests one after another must share one kept-alive connection: a connection per
// request costs the client a TCP (and for https a TLS) handshake each time.
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("connection reuse", () => {
  it("Vault: sequential reads share one connection, and close() lets go of it", async () => {
    const server = await startVaultTestServer();
    cleanups.push(() => server.close());
    server.seed("acme", { key: "v" });
    const vault = new VaultBackend(
      vaultBackendSchema.parse({ type: "vault", url: server.url, token: server.rootToken }),
    );
    cleanups.push(() => vault.close());
    for (let i = 0; i < 4; i++)
      expect((await vault.fetch("acme", ["key"])).get("key")?.text).toBe("v");
    expect(server.faults.requests("kv.read")).toBe(4);
    expect(server.faults.connections).toBe(1);
  });

  it("AWS: sequential GetSecretValue calls share one connection", async () => {
    const server = await startAwsTestServer();
    cleanups.push(() => server.close());
    server.seed("acme", JSON.stringify({ key: "v" }));
    const aws = new AwsBackend(
      awsBackendSchema.parse({
        type: "aws",
        region_name: server.region,
        endpoint: server.url,
        layout: "bundle",
        max_attempts: 1,
      }),
      { client: { credentials: server.credentials } },
    );
    cleanups.push(() => aws.close());
    for (let i = 0; i < 4; i++)
      expect((await aws.fetch("acme", ["key"])).get("key")?.text).toBe("v");
    expect(server.faults.requests("GetSecretValue")).toBe(4);
    expect(server.faults.connections).toBe(1);
  });
});
