import { describe, expect, it } from "vitest";
import { EnvBackend, envVarNames, findEnvCollisions } from "../../src/secrets/env.js";
import { describeBackendContract } from "./contract.js";

describeBackendContract("env", async () => {
  const env: NodeJS.ProcessEnv = {};
  const backend = new EnvBackend({ prefix: "DC_" }, env);
  return {
    backend,
    async put(tenant, name, value) {
      env[envVarNames("DC_", tenant, name).tenant] =
        typeof value === "string" ? value : JSON.stringify(value);
    },
    async teardown() {},
  };
});

describe("env backend", () => {
  it("reads {PREFIX}{TENANT}_{NAME}, upper-cased with other characters as _", async () => {
    const backend = new EnvBackend({ prefix: "dc_" }, { DC_ACME_CORP_DB_PASSWORD: "tenant-value" });

    const found = await backend.fetch("acme-corp", ["db-password"]);

    expect(found.get("db-password")).toEqual({ text: "tenant-value" });
  });

  it("falls back to {PREFIX}{NAME} when the tenant has no variable of its own", async () => {
    const env = { DC_REGION: "shared", DC_GLOBEX_REGION: "globex-only" };
    const backend = new EnvBackend({ prefix: "DC_" }, env);

    expect((await backend.fetch("acme", ["region"])).get("region")?.text).toBe("shared");
    expect((await backend.fetch("globex", ["region"])).get("region")?.text).toBe("globex-only");
  });

  it("treats an empty variable as unset", async () => {
    const backend = new EnvBackend({ prefix: "" }, { ACME_TOKEN: "", TOKEN: "" });

    expect((await backend.fetch("acme", ["token"])).size).toBe(0);
  });

  it("reads exactly two variables per name and never scans the environment by prefix", async () => {
    const reads: string[] = [];
    const env = new Proxy({ ACME_DB: "x" } as NodeJS.ProcessEnv, {
      get(target, key) {
        if (typeof key === "string") reads.push(key);
        return Reflect.get(target, key);
      },
      ownKeys() {
        throw new Error("the environment was enumerated");
      },
    });
    const backend = new EnvBackend({ prefix: "" }, env);

    await backend.fetch("acme", ["db", "other"]);

    expect(reads).toEqual(["ACME_DB", "ACME_OTHER", "OTHER"]);
  });

  it("exposes fields only when the value is a JSON object", async () => {
    const backend = new EnvBackend(
      { prefix: "" },
      {
        ACME_DB: '{"user":"u","port":5432,"tls":true}',
        ACME_LIST: "[1,2]",
        ACME_BROKEN: "{not json",
      },
    );

    const found = await backend.fetch("acme", ["db", "list", "broken"]);

    expect(found.get("db")?.fields).toEqual({ user: "u", port: "5432", tls: "true" });
    expect(found.get("list")?.fields).toBeUndefined();
    expect(found.get("broken")).toEqual({ text: "{not json" });
  });

  it("names both variables it looks at", () => {
    const backend = new EnvBackend({ prefix: "DC_" }, {});

    expect(backend.locationOf("acme", "db_password")).toBe(
      "environment variables DC_ACME_DB_PASSWORD and DC_DB_PASSWORD",
    );
  });
});

describe("findEnvCollisions", () => {
  it("finds tenant/name pairs that read the same variable", () => {
    const problems = findEnvCollisions("", ["acme", "acme_x"], ["x_key", "key"]);

    expect(problems).toContainEqual(
      expect.stringMatching(
        /tenant "acme" secret "x_key" and tenant "acme_x" secret "key" all read ACME_X_KEY/,
      ),
    );
  });

  it("finds tenants that differ only by '-', '_' or case", () => {
    const problems = findEnvCollisions("DC_", ["acme-eu", "ACME_EU", "globex"], ["db"]);

    expect(problems).toEqual([
      expect.stringMatching(/tenants "acme-eu" and "ACME_EU" differ only by/),
    ]);
  });

  it("finds a tenant's variable that doubles as another secret's shared fallback", () => {
    const problems = findEnvCollisions("", ["acme", "globex"], ["key", "acme_key"]);

    expect(problems).toContainEqual(
      expect.stringMatching(
        /ACME_KEY is tenant "acme"'s secret "key" and also the shared fallback for secret "acme_key"/,
      ),
    );
  });

  it("reports nothing for a clean layout", () => {
    expect(findEnvCollisions("DC_", ["acme", "globex"], ["db_password", "api_token"])).toEqual([]);
  });
});
