import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gcpBackendSchema } from "../../src/config/runner-schema.js";
import { GcpBackend } from "../../src/secrets/gcp.js";
import { type GcpTestServer, startGcpTestServer } from "../servers/gcp-test-server.js";
import { describeBackendContract, secretFailure } from "./contract.js";

const PLANTED = "planted-GCP-value-71c3";

let server: GcpTestServer;
let dir: string;
let credentials: string;

beforeEach(async () => {
  server = await startGcpTestServer();
  dir = mkdtempSync(join(tmpdir(), "duckcron-gcp-"));
  credentials = server.credentialsFile(dir);
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function backend(extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): GcpBackend {
  return new GcpBackend(
    gcpBackendSchema.parse({
      type: "gcp",
      project_id: server.projectId,
      endpoint: server.url,
      credentials_file: credentials,
      max_attempts: 1,
      ...extra,
    }),
    { env },
  );
}

const failure = (promise: Promise<unknown>) => secretFailure(promise, PLANTED);

for (const layout of ["bundle", "per_name"] as const) {
  describeBackendContract(`gcp (${layout})`, async () => {
    const own = await startGcpTestServer();
    const ownDir = mkdtempSync(join(tmpdir(), "duckcron-gcp-contract-"));
    const bundles = new Map<string, Record<string, unknown>>();
    const config = gcpBackendSchema.parse({
      type: "gcp",
      project_id: own.projectId,
      endpoint: own.url,
      credentials_file: own.credentialsFile(ownDir),
      prefix: "duckcron-",
      layout,
      max_attempts: 1,
    });
    return {
      backend: new GcpBackend(config),
      put: async (tenant, name, value) => {
        if (layout === "per_name") {
          own.seed(
            `duckcron-${tenant}-${name}`,
            typeof value === "string" ? value : JSON.stringify(value),
          );
          return;
        }
        const bundle = bundles.get(tenant) ?? {};
        bundle[name] = value;
        bundles.set(tenant, bundle);
        own.seed(`duckcron-${tenant}`, JSON.stringify(bundle));
      },
      teardown: async () => {
        await own.close();
        rmSync(ownDir, { recursive: true, force: true });
      },
    };
  });
}

describe("GCP backend, layouts", () => {
  it("bundle reads {prefix}{tenant} once and picks the names", async () => {
    server.seed("apps-acme", JSON.stringify({ db_password: PLANTED, pg: { user: "u" } }));
    const found = await backend({ prefix: "apps-", layout: "bundle" }).fetch("acme", [
      "db_password",
      "pg",
      "nope",
    ]);
    expect(found.get("db_password")?.text).toBe(PLANTED);
    expect(found.get("pg")?.fields).toEqual({ user: "u" });
    expect(found.has("nope")).toBe(false);
    expect(server.faults.requests("AccessSecretVersion")).toBe(1);
  });

  it("per_name costs one access call per distinct name and leaves missing ones out", async () => {
    const names = Array.from({ length: 30 }, (_, i) => `name_${i}`);
    for (const name of names.slice(0, 25)) server.seed(`acme-${name}`, `value-${name}`);
    const found = await backend({ layout: "per_name" }).fetch("acme", [...names, "name_1"]);
    expect(found.size).toBe(25);
    expect(found.get("name_7")?.text).toBe("value-name_7");
    expect(server.faults.requests("AccessSecretVersion")).toBe(30);
  });

  it("auto uses the bundle when it exists, else per-name ids", async () => {
    server.seed("acme", JSON.stringify({ key: "bundled" }));
    server.seed("globex-key", "separate");
    const auto = backend();
    expect((await auto.fetch("acme", ["key"])).get("key")?.text).toBe("bundled");
    expect((await auto.fetch("globex", ["key"])).get("key")?.text).toBe("separate");
    expect(server.faults.requests("AccessSecretVersion")).toBe(3);
    expect(auto.locationOf("globex", "key")).toBe(
      'GCP secret "globex" (key "key") or GCP secret "globex-key"',
    );
  });

  it("reads latest by default, and a pinned version or alias when configured", async () => {
    server.seed("acme", JSON.stringify({ key: "first" }));
    server.seed("acme", JSON.stringify({ key: "second" }));
    server.alias("acme", "stable", 1);
    const read = (version?: string) =>
      backend({ layout: "bundle", ...(version ? { version } : {}) }).fetch("acme", ["key"]);
    expect((await read()).get("key")?.text).toBe("second");
    expect((await read("1")).get("key")?.text).toBe("first");
    expect((await read("stable")).get("key")?.text).toBe("first");
  });

  it("a disabled version is SECRET_INVALID saying so, also when it is the latest", async () => {
    server.seed("acme", JSON.stringify({ key: PLANTED }));
    server.seed("acme", JSON.stringify({ key: PLANTED }));
    server.disable("acme", 2);
    for (const version of ["2", "latest"]) {
      const error = await failure(backend({ layout: "bundle", version }).fetch("acme", ["key"]));
      expect(error.code).toBe("SECRET_INVALID");
      expect(error.message).toMatch(/disabled or destroyed/);
    }
  });

  it("a payload whose CRC32C does not match fails the fetch", async () => {
    server.seed("acme", JSON.stringify({ key: PLANTED }));
    server.corrupt("acme");
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_INVALID");
    expect(error.message).toContain("CRC32C");
    expect(error.message).toContain('secret "acme" for tenant "acme"');
  });

  it("a payload that is not UTF-8 is SECRET_INVALID", async () => {
    server.seed("acme-bin", Buffer.from([0xff, 0xfe, 0x00]));
    const error = await failure(backend({ layout: "per_name" }).fetch("acme", ["bin"]));
    expect(error.code).toBe("SECRET_INVALID");
  });

  it("a name whose id would pass 255 characters is INVALID_NAME, not a request", async () => {
    const error = await failure(backend({ layout: "per_name" }).fetch("acme", ["n".repeat(260)]));
    expect(error.code).toBe("INVALID_NAME");
    expect(server.faults.requests()).toBe(0);
  });
});

describe("GCP backend, credentials and access", () => {
  it("exchanges the credentials file's subject token once and reuses the access token", async () => {
    server.seed("acme", JSON.stringify({ key: "ok" }));
    const b = backend({ layout: "bundle" });
    await b.fetch("acme", ["key"]);
    await b.fetch("acme", ["key"]);
    expect(server.faults.requests("token")).toBe(1);
    expect(server.issued).toBe(1);
  });

  it("PERMISSION_DENIED names the secret id and the role to grant", async () => {
    server.seed("acme", JSON.stringify({ key: PLANTED }));
    credentials = server.credentialsFile(dir, { deny: ["acme"] });
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain('secret "acme" for tenant "acme"');
    expect(error.message).toContain("roles/secretmanager.secretAccessor");
    expect(error.retryable).toBe(false);
  });

  it("a subject token the token endpoint refuses is SECRET_ACCESS_DENIED without the token", async () => {
    const file = JSON.parse(readFileSync(credentials, "utf8"));
    writeFileSync(file.credential_source.file, "revoked-subject-token-PLANTED");
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.retryable).toBe(false);
    expect(error.message).not.toContain("revoked-subject-token");
    expect(server.faults.requests("AccessSecretVersion")).toBe(0);
  });

  it("takes the project from GOOGLE_CLOUD_PROJECT, then GCP_PROJECT_ID", async () => {
    server.seed("acme", JSON.stringify({ key: "via-env" }));
    const config = { project_id: undefined, layout: "bundle" };
    for (const env of [
      { GOOGLE_CLOUD_PROJECT: server.projectId },
      { GCP_PROJECT_ID: server.projectNumber },
    ]) {
      expect((await backend(config, env).fetch("acme", ["key"])).get("key")?.text).toBe("via-env");
    }
    expect(() => backend(config, {})).toThrow(/GOOGLE_CLOUD_PROJECT/);
  });

  it("takes credentials from GOOGLE_APPLICATION_CREDENTIALS when no credentials_file is set", async () => {
    server.seed("acme", JSON.stringify({ key: "via-adc" }));
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = credentials;
    try {
      const b = backend({ credentials_file: undefined, layout: "bundle" });
      expect((await b.fetch("acme", ["key"])).get("key")?.text).toBe("via-adc");
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    }
  });

  it("check() lists at most one secret and accepts PERMISSION_DENIED as proof of auth", async () => {
    await backend().check();
    expect(server.faults.requests("ListSecrets")).toBe(1);
    credentials = server.credentialsFile(dir, { deny: [""] });
    await backend().check();
    expect(server.faults.requests("ListSecrets")).toBe(2);
  });

  it("check() fails when no token can be had", async () => {
    const file = JSON.parse(readFileSync(credentials, "utf8"));
    writeFileSync(file.credential_source.file, "unknown-subject");
    const error = await failure(backend().check());
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(server.faults.requests("ListSecrets")).toBe(0);
  });
});
