import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  awsBackendSchema,
  azureBackendSchema,
  gcpBackendSchema,
  vaultBackendSchema,
} from "../../src/config/runner-schema.js";
import { SecretError } from "../../src/errors.js";
import { Scrubber } from "../../src/observe/scrubber.js";
import { AwsBackend } from "../../src/secrets/aws.js";
import { AzureBackend } from "../../src/secrets/azure.js";
import type { SecretBackend } from "../../src/secrets/backend.js";
import { GcpBackend } from "../../src/secrets/gcp.js";
import type { SecretRef } from "../../src/secrets/refs.js";
import { SecretResolver } from "../../src/secrets/resolver.js";
import { VaultBackend } from "../../src/secrets/vault.js";
import { startAwsTestServer } from "../servers/aws-test-server.js";
import { startAzureTestServer } from "../servers/azure-test-server.js";
import type { FaultInjector, FaultKind } from "../servers/faults.js";
import { startGcpTestServer } from "../servers/gcp-test-server.js";
import { makeTestCertificates } from "../servers/test-certs.js";
import { startVaultTestServer } from "../servers/vault-test-server.js";

/**
 * What a run sees when the remote store misbehaves: each fault ends in a clear,
 * correctly classified SecretError (retryable or not), or in a degraded run when
 * max_stale allows one. Every remote backend, through the real client libraries.
 */

const PLANTED = "planted-fault-value-0d4b";
/** Per request: the hang tests wait this long for the client's timeout. */
const TIMEOUT_MS = 150;
const GCP_TIMEOUT_MS = 1_000;

interface Remote {
  name: string;
  backend: (url?: string) => SecretBackend;
  faults: FaultInjector;
  /** The operation a fetch of one tenant uses. */
  readOp: string;
  /** Extra readOp requests of a backend's first fetch (Key Vault's unauthenticated challenge). */
  handshakeReads?: number;
  /** What the resolver's not-found message must name for tenant "ghost". */
  ghostLocation: string;
  /** A backend whose credentials the store refuses. */
  denied: () => SecretBackend;
  url: string;
  close(): Promise<void>;
}

async function vaultRemote(): Promise<Remote> {
  const server = await startVaultTestServer();
  server.seed("acme", { key: PLANTED });
  const make = (url = server.url, token = server.rootToken) =>
    new VaultBackend(
      vaultBackendSchema.parse({ type: "vault", url, token, timeout: `${TIMEOUT_MS}ms` }),
    );
  return {
    name: "vault",
    backend: (url) => make(url),
    faults: server.faults,
    readOp: "kv.read",
    ghostLocation: 'Vault path "secret/data/ghost"',
    denied: () => make(server.url, server.createToken({ policies: [] })),
    url: server.url,
    close: () => server.close(),
  };
}

async function awsRemote(): Promise<Remote> {
  const server = await startAwsTestServer();
  server.seed("acme", JSON.stringify({ key: PLANTED }));
  const make = (url = server.url, credentials = server.credentials) =>
    new AwsBackend(
      awsBackendSchema.parse({
        type: "aws",
        region_name: server.region,
        endpoint: url,
        layout: "bundle",
        timeout: `${TIMEOUT_MS}ms`,
        max_attempts: 1,
      }),
      { client: { credentials } },
    );
  return {
    name: "aws",
    backend: (url) => make(url),
    faults: server.faults,
    readOp: "GetSecretValue",
    ghostLocation: 'AWS secret "ghost"',
    denied: () =>
      make(server.url, { accessKeyId: server.credentials.accessKeyId, secretAccessKey: "wrong" }),
    url: server.url,
    close: () => server.close(),
  };
}

/** One CA for every Key Vault server here: ca_cert must stay readable after a server closes. */
const azureCerts = makeTestCertificates();
afterAll(() => azureCerts.remove());

async function azureRemote(): Promise<Remote> {
  const server = await startAzureTestServer({ certificates: azureCerts });
  server.seed("acme", JSON.stringify({ key: PLANTED }));
  const make = (url = server.url, clientSecret = server.client.clientSecret) =>
    new AzureBackend(
      azureBackendSchema.parse({
        type: "azure",
        vault_url: url,
        authority_host: server.url,
        tenant_id: server.tenantId,
        client_id: server.client.clientId,
        client_secret: clientSecret,
        ca_cert: server.caPath,
        local_test_server: true,
        layout: "bundle",
        timeout: `${TIMEOUT_MS}ms`,
        max_attempts: 1,
      }),
    );
  return {
    name: "azure",
    backend: (url) => make(url),
    faults: server.faults,
    readOp: "GetSecret",
    handshakeReads: 1,
    ghostLocation: 'Key Vault secret "ghost"',
    denied: () => make(server.url, "not-the-client-secret"),
    url: server.url,
    close: () => server.close(),
  };
}

async function gcpRemote(): Promise<Remote> {
  const server = await startGcpTestServer();
  const dir = mkdtempSync(join(tmpdir(), "duckcron-gcp-faults-"));
  // Outlives the server: a backend made after close() still has its credentials.
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  server.seed("acme", JSON.stringify({ key: PLANTED }));
  const allowed = server.credentialsFile(dir);
  const make = (url = server.url, credentials = allowed) =>
    new GcpBackend(
      gcpBackendSchema.parse({
        type: "gcp",
        project_id: server.projectId,
        endpoint: url,
        credentials_file: credentials,
        layout: "bundle",
        // fetch() answers well within 150 ms, but not always on a machine running the
        // whole suite; the hang tests wait this long instead.
        timeout: `${GCP_TIMEOUT_MS}ms`,
        max_attempts: 1,
      }),
    );
  return {
    name: "gcp",
    backend: (url) => make(url),
    faults: server.faults,
    readOp: "AccessSecretVersion",
    ghostLocation: 'GCP secret "ghost"',
    denied: () => make(server.url, server.credentialsFile(dir, { deny: [""] })),
    url: server.url,
    close: () => server.close(),
  };
}

const ref = (name: string, key?: string): SecretRef => ({
  name,
  key,
  raw: key ? `\${secret:${name}.${key}}` : `\${secret:${name}}`,
  path: ["duckdb", "secrets", 0, "password"],
});

async function failure(promise: Promise<unknown>): Promise<SecretError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretError);
  const secretError = error as SecretError;
  expect(
    `${secretError.message}\n${secretError.stack}\n${JSON.stringify(secretError)}`,
  ).not.toContain(PLANTED);
  expect(secretError.cause).toBeUndefined();
  return secretError;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function open(make: () => Promise<Remote>): Promise<Remote> {
  const remote = await make();
  cleanup.push(() => remote.close());
  return remote;
}

function track(backend: SecretBackend): SecretBackend {
  cleanup.push(() => backend.close());
  return backend;
}

const RETRYABLE: { kind: FaultKind; says: RegExp }[] = [
  { kind: "unavailable", says: /retryable/ },
  { kind: "throttle", says: /throttled|rate-limited/ },
  { kind: "hang", says: /in time|within 150 ms/ },
  { kind: "drop", says: /could not be reached|retryable/ },
];

describe.each([
  ["vault", vaultRemote],
  ["aws", awsRemote],
  ["gcp", gcpRemote],
  ["azure", azureRemote],
] as const)("%s backend under faults", (_name, make) => {
  it.each(RETRYABLE)(
    "$kind ends in a retryable SECRET_BACKEND_UNAVAILABLE naming the tenant",
    async ({ kind, says }) => {
      const remote = await open(make);
      remote.faults.inject({ kind, operation: remote.readOp });
      const error = await failure(track(remote.backend()).fetch("acme", ["key"]));
      expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
      expect(error.retryable).toBe(true);
      expect(error.message).toMatch(says);
      expect(error.message).toContain('"acme"');
    },
  );

  it("a malformed JSON payload is SECRET_INVALID and not retryable", async () => {
    const remote = await open(make);
    remote.faults.inject({ kind: "malformed", operation: remote.readOp });
    const error = await failure(track(remote.backend()).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_INVALID");
    expect(error.retryable).toBe(false);
  });

  it("a backend that is down is retryable and says to check the address", async () => {
    const remote = await open(make);
    const { url } = remote;
    await remote.close();
    cleanup.pop();
    const error = await failure(track(remote.backend(url)).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
    expect(error.retryable).toBe(true);
  });

  it("recovers on the next fetch once the fault is gone", async () => {
    const remote = await open(make);
    remote.faults.inject({ kind: "unavailable", operation: remote.readOp, times: 1 });
    const backend = track(remote.backend());
    await failure(backend.fetch("acme", ["key"]));
    expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe(PLANTED);
  });

  describe("through the resolver", () => {
    const resolver = (backend: SecretBackend, now: () => number, maxStaleMs: number) =>
      new SecretResolver({
        backend,
        cacheTtlMs: 60_000,
        maxStaleMs,
        maxConcurrency: 4,
        scrubber: new Scrubber(),
        now,
      });

    it("a missing tenant entry is SECRET_NOT_FOUND naming tenant and location", async () => {
      const remote = await open(make);
      const error = await failure(
        resolver(track(remote.backend()), Date.now, 0).resolve("ghost", [ref("key")]),
      );
      expect(error.code).toBe("SECRET_NOT_FOUND");
      expect(error.message).toContain('tenant "ghost"');
      expect(error.message).toContain(remote.ghostLocation);
    });

    it("refused credentials fail the run with SECRET_ACCESS_DENIED", async () => {
      const remote = await open(make);
      const error = await failure(
        resolver(track(remote.denied()), Date.now, 0).resolve("acme", [ref("key")]),
      );
      expect(error.code).toBe("SECRET_ACCESS_DENIED");
      expect(error.retryable).toBe(false);
    });

    it("with max_stale, a failing backend gives a degraded run from the last good values, then fails", async () => {
      const remote = await open(make);
      let clock = 1_000_000;
      const secrets = resolver(track(remote.backend()), () => clock, 600_000);

      const fresh = await secrets.resolve("acme", [ref("key")]);
      expect(fresh.value(ref("key"))).toBe(PLANTED);
      expect(fresh.degraded).toBe(false);

      remote.faults.inject({ kind: "unavailable", operation: remote.readOp });
      clock += 120_000; // past cache_ttl, inside cache_ttl + max_stale
      const degraded = await secrets.resolve("acme", [ref("key")]);
      expect(degraded.degraded).toBe(true);
      expect(degraded.value(ref("key"))).toBe(PLANTED);

      clock += 600_000; // past cache_ttl + max_stale
      const error = await failure(secrets.resolve("acme", [ref("key")]));
      expect(error.code).toBe("SECRET_BACKEND_UNAVAILABLE");
      expect(error.retryable).toBe(true);
      expect(remote.faults.requests(remote.readOp)).toBe(3 + (remote.handshakeReads ?? 0));
    });

    it("without max_stale, a failing backend fails the run as retryable", async () => {
      const remote = await open(make);
      let clock = 1_000_000;
      const secrets = resolver(track(remote.backend()), () => clock, 0);
      await secrets.resolve("acme", [ref("key")]);
      remote.faults.inject({ kind: "throttle", operation: remote.readOp });
      clock += 120_000;
      const error = await failure(secrets.resolve("acme", [ref("key")]));
      expect(error.retryable).toBe(true);
    });
  });
});

describe("aws backend retries inside the SDK", () => {
  it("a transient InternalServiceError is retried with backoff up to max_attempts", async () => {
    const server = await startAwsTestServer();
    cleanup.push(() => server.close());
    server.seed("acme", JSON.stringify({ key: "ok" }));
    server.faults.inject({ kind: "unavailable", operation: "GetSecretValue", times: 1 });
    const backend = track(
      new AwsBackend(
        awsBackendSchema.parse({
          type: "aws",
          region_name: server.region,
          endpoint: server.url,
          layout: "bundle",
          max_attempts: 2,
        }),
        { client: { credentials: server.credentials } },
      ),
    );
    expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe("ok");
    expect(server.faults.requests("GetSecretValue")).toBe(2);
  });
});

describe("gcp backend retries on its own terms", () => {
  /** Long enough that a busy machine never times out an answered attempt. */
  async function gcp(maxAttempts: number, timeoutMs = 5_000) {
    const server = await startGcpTestServer();
    const dir = mkdtempSync(join(tmpdir(), "duckcron-gcp-retries-"));
    cleanup.push(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });
    server.seed("acme", JSON.stringify({ key: "ok" }));
    const backend = track(
      new GcpBackend(
        gcpBackendSchema.parse({
          type: "gcp",
          project_id: server.projectId,
          endpoint: server.url,
          credentials_file: server.credentialsFile(dir),
          layout: "bundle",
          timeout: `${timeoutMs}ms`,
          max_attempts: maxAttempts,
        }),
      ),
    );
    return { server, backend };
  }

  it.each(["unavailable", "throttle", "drop", "hang"] as const)(
    "%s is retried up to max_attempts, then succeeds",
    async (kind) => {
      // A hung attempt is given up after the timeout: short for it, but not so short
      // that the answered third attempt could miss it.
      const { server, backend } = await gcp(3, kind === "hang" ? 1_000 : undefined);
      server.faults.inject({ kind, operation: "AccessSecretVersion", times: 2 });
      expect((await backend.fetch("acme", ["key"])).get("key")?.text).toBe("ok");
      expect(server.faults.requests("AccessSecretVersion")).toBe(3);
    },
  );

  it("gives up after max_attempts and says how many were made", async () => {
    const { server, backend } = await gcp(2);
    server.faults.inject({ kind: "unavailable", operation: "AccessSecretVersion" });
    const error = await failure(backend.fetch("acme", ["key"]));
    expect(error.retryable).toBe(true);
    expect(error.message).toContain("after 2 attempts");
    expect(server.faults.requests("AccessSecretVersion")).toBe(2);
  });

  it("never retries what another attempt cannot fix", async () => {
    const { server, backend } = await gcp(3);
    server.faults.inject({ kind: "malformed", operation: "AccessSecretVersion", times: 1 });
    expect((await failure(backend.fetch("acme", ["key"]))).code).toBe("SECRET_INVALID");
    expect(server.faults.requests("AccessSecretVersion")).toBe(1);
    expect((await backend.fetch("ghost", ["key"])).size).toBe(0);
    expect(server.faults.requests("AccessSecretVersion")).toBe(2);
  });

  it("an abort stops the retries at once", async () => {
    const { server, backend } = await gcp(10);
    // With the token in hand, so no token exchange is left running after the test.
    await backend.fetch("acme", ["key"]);
    server.faults.inject({ kind: "unavailable", operation: "AccessSecretVersion" });
    const controller = new AbortController();
    const fetching = backend.fetch("acme", ["key"], controller.signal);
    controller.abort(new Error("run aborted"));
    await expect(fetching).rejects.toThrow("run aborted");
  });
});
