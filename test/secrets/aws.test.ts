import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AwsBackendConfig, awsBackendSchema } from "../../src/config/runner-schema.js";
import { SecretError } from "../../src/errors.js";
import { AwsBackend } from "../../src/secrets/aws.js";
import { type AwsTestServer, startAwsTestServer } from "../servers/aws-test-server.js";
import { describeBackendContract } from "./contract.js";

const PLANTED = "planted-AWS-value-5be2";

let server: AwsTestServer;
const backends: AwsBackend[] = [];

beforeEach(async () => {
  server = await startAwsTestServer({
    identities: [
      { accessKeyId: "AKIADUCKCRONTEST0001", secretAccessKey: "duckcron-test-secret-key-0001" },
      {
        accessKeyId: "AKIARESTRICTED000002",
        secretAccessKey: "restricted-secret-key-0002",
        deny: ["acme*"],
      },
    ],
  });
});
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
  await server.close();
});

function backend(
  extra: Record<string, unknown> = {},
  credentials: { accessKeyId: string; secretAccessKey: string } = server.credentials,
): AwsBackend {
  const config: AwsBackendConfig = awsBackendSchema.parse({
    type: "aws",
    region_name: server.region,
    endpoint: server.url,
    max_attempts: 1,
    ...extra,
  });
  const created = new AwsBackend(config, { client: { credentials } });
  backends.push(created);
  return created;
}

async function failure(promise: Promise<unknown>): Promise<SecretError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretError);
  const secretError = error as SecretError;
  expect(`${secretError.message} ${JSON.stringify(secretError)}`).not.toContain(PLANTED);
  return secretError;
}

for (const layout of ["bundle", "per_name"] as const) {
  describeBackendContract(`aws (${layout})`, async () => {
    const own = await startAwsTestServer();
    const bundles = new Map<string, Record<string, unknown>>();
    const config = awsBackendSchema.parse({
      type: "aws",
      region_name: own.region,
      endpoint: own.url,
      prefix: "duckcron/",
      layout,
      max_attempts: 1,
    });
    return {
      backend: new AwsBackend(config, { client: { credentials: own.credentials } }),
      put: async (tenant, name, value) => {
        if (layout === "per_name") {
          own.seed(
            `duckcron/${tenant}/${name}`,
            typeof value === "string" ? value : JSON.stringify(value),
          );
          return;
        }
        const bundle = bundles.get(tenant) ?? {};
        bundle[name] = value;
        bundles.set(tenant, bundle);
        own.seed(`duckcron/${tenant}`, JSON.stringify(bundle));
      },
      teardown: () => own.close(),
    };
  });
}

describe("AWS backend, bundle layout", () => {
  it("reads one JSON secret per tenant in one GetSecretValue and picks the names", async () => {
    server.seed(
      "apps/acme",
      JSON.stringify({ db_password: PLANTED, pg: { user: "u", port: 5432 } }),
    );
    const found = await backend({ prefix: "apps/", layout: "bundle" }).fetch("acme", [
      "db_password",
      "pg",
      "nope",
    ]);
    expect(found.get("db_password")?.text).toBe(PLANTED);
    expect(found.get("pg")?.fields).toEqual({ user: "u", port: "5432" });
    expect(found.has("nope")).toBe(false);
    expect(server.faults.requests()).toBe(1);
    expect(server.faults.requests("GetSecretValue")).toBe(1);
  });

  it("a missing bundle means every name is absent", async () => {
    const b = backend({ layout: "bundle" });
    expect((await b.fetch("ghost", ["a"])).size).toBe(0);
    expect(b.locationOf("ghost", "a")).toBe('AWS secret "ghost", key "a"');
  });

  it("decodes SecretBinary as UTF-8", async () => {
    server.seed("acme", Buffer.from(JSON.stringify({ token: "from-binary" }), "utf8"));
    expect((await backend({ layout: "bundle" }).fetch("acme", ["token"])).get("token")?.text).toBe(
      "from-binary",
    );
  });

  it("reads the configured version_stage", async () => {
    server.seed("acme", JSON.stringify({ key: "current" }));
    server.seedStage("acme", JSON.stringify({ key: "pending" }), "AWSPENDING");
    expect((await backend({ layout: "bundle" }).fetch("acme", ["key"])).get("key")?.text).toBe(
      "current",
    );
    const pending = backend({ layout: "bundle", version_stage: "AWSPENDING" });
    expect((await pending.fetch("acme", ["key"])).get("key")?.text).toBe("pending");
  });

  it("a bundle that is not a JSON object is SECRET_INVALID without quoting it", async () => {
    server.seed("acme", PLANTED);
    const error = await failure(backend({ layout: "bundle" }).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_INVALID");
    expect(error.message).toContain('secret "acme" for tenant "acme"');
  });
});

describe("AWS backend, per_name layout", () => {
  it("fetches 45 names with 3 BatchGetSecretValue calls of at most 20 ids", async () => {
    const names = Array.from({ length: 45 }, (_, i) => `name_${i}`);
    for (const name of names.slice(0, 40)) server.seed(`t/acme/${name}`, `value-${name}`);
    const found = await backend({ prefix: "t/", layout: "per_name" }).fetch("acme", names);
    expect(found.size).toBe(40);
    expect(found.get("name_7")?.text).toBe("value-name_7");
    expect(found.has("name_44")).toBe(false);
    expect(server.faults.requests("BatchGetSecretValue")).toBe(3);
    expect(server.faults.requests()).toBe(3);
  });

  it("decodes binary entries and exposes JSON fields", async () => {
    server.seed("acme/bin", Buffer.from("binary-text"));
    server.seed("acme/json", JSON.stringify({ a: "1" }));
    const found = await backend({ layout: "per_name" }).fetch("acme", ["bin", "json"]);
    expect(found.get("bin")?.text).toBe("binary-text");
    expect(found.get("json")?.fields).toEqual({ a: "1" });
  });

  it("an Errors entry other than not-found fails the fetch naming tenant and id", async () => {
    server.seed("acme/ok", "fine");
    server.seed("acme/locked", PLANTED);
    server.breakDecryption("acme/locked");
    const error = await failure(backend({ layout: "per_name" }).fetch("acme", ["ok", "locked"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain('secret "acme/locked" for tenant "acme"');
    expect(error.message).toContain("DecryptionFailure");
  });

  it("with a version_stage other than AWSCURRENT reads each id with GetSecretValue", async () => {
    server.seed("acme/key", "current");
    server.seedStage("acme/key", "previous-ish", "AWSPREVIOUS");
    const found = await backend({ layout: "per_name", version_stage: "AWSPREVIOUS" }).fetch(
      "acme",
      ["key", "gone"],
    );
    expect(found.get("key")?.text).toBe("previous-ish");
    expect(found.has("gone")).toBe(false);
    expect(server.faults.requests("GetSecretValue")).toBe(2);
  });

  it("auto uses the bundle when it exists, else per-name ids", async () => {
    server.seed("acme", JSON.stringify({ key: "bundled" }));
    server.seed("globex/key", "separate");
    const auto = backend();
    expect((await auto.fetch("acme", ["key"])).get("key")?.text).toBe("bundled");
    expect((await auto.fetch("globex", ["key"])).get("key")?.text).toBe("separate");
    expect(server.faults.requests("BatchGetSecretValue")).toBe(1);
    expect(server.faults.requests("GetSecretValue")).toBe(2);
    expect(server.faults.requests("ListSecrets")).toBe(0);
  });
});

describe("AWS backend, credentials and access", () => {
  it("a wrong secret key fails SigV4 verification: SECRET_ACCESS_DENIED without the key", async () => {
    server.seed("acme", JSON.stringify({ key: PLANTED }));
    const wrong = {
      accessKeyId: "AKIADUCKCRONTEST0001",
      secretAccessKey: "not-the-right-secret-key",
    };
    const error = await failure(backend({ layout: "bundle" }, wrong).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain("InvalidSignatureException");
    expect(error.message).not.toContain("not-the-right-secret-key");
  });

  it("an unknown access key is UnrecognizedClientException", async () => {
    const unknown = { accessKeyId: "AKIANOBODY0000000000", secretAccessKey: "x" };
    const error = await failure(backend({ layout: "bundle" }, unknown).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain("UnrecognizedClientException");
  });

  it("AccessDeniedException names the secret id and the permission to grant", async () => {
    server.seed("acme", JSON.stringify({ key: PLANTED }));
    const restricted = {
      accessKeyId: "AKIARESTRICTED000002",
      secretAccessKey: "restricted-secret-key-0002",
    };
    const error = await failure(backend({ layout: "bundle" }, restricted).fetch("acme", ["key"]));
    expect(error.code).toBe("SECRET_ACCESS_DENIED");
    expect(error.message).toContain('secret "acme" for tenant "acme"');
    expect(error.message).toContain("secretsmanager:GetSecretValue");
  });

  it("takes credentials from the SDK's default chain (environment variables)", async () => {
    server.seed("acme", JSON.stringify({ key: "via-env" }));
    const saved = { ...process.env };
    process.env.AWS_ACCESS_KEY_ID = server.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = server.credentials.secretAccessKey;
    try {
      const config = awsBackendSchema.parse({
        type: "aws",
        region_name: server.region,
        endpoint: server.url,
      });
      const viaChain = new AwsBackend(config);
      backends.push(viaChain);
      expect((await viaChain.fetch("acme", ["key"])).get("key")?.text).toBe("via-env");
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.AWS_ACCESS_KEY_ID;
      process.env.AWS_SECRET_ACCESS_KEY = saved.AWS_SECRET_ACCESS_KEY;
      if (saved.AWS_ACCESS_KEY_ID === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.AWS_SECRET_ACCESS_KEY === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it("check() lists at most one secret under the prefix and accepts AccessDenied as proof of auth", async () => {
    await backend({ prefix: "apps/" }).check();
    expect(server.faults.requests("ListSecrets")).toBe(1);
    const wrong = { accessKeyId: "AKIADUCKCRONTEST0001", secretAccessKey: "wrong" };
    expect((await failure(backend({}, wrong).check())).code).toBe("SECRET_ACCESS_DENIED");
  });

  it("the test server stores what the real SDK writes with CreateSecret", async () => {
    const client = new SecretsManagerClient({
      region: server.region,
      endpoint: server.url,
      credentials: server.credentials,
    });
    await client.send(new CreateSecretCommand({ Name: "acme/created", SecretString: "written" }));
    client.destroy();
    expect(
      (await backend({ layout: "per_name" }).fetch("acme", ["created"])).get("created")?.text,
    ).toBe("written");
  });
});
