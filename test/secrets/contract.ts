// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are duckcron config references, not JS templates
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SecretError } from "../../src/errors.js";
import type { SecretBackend } from "../../src/secrets/backend.js";

/**
 * What every secrets backend promises, whatever its store. Each backend's test file
 * calls describeBackendContract with a setup that gives a fresh backend and a way
 * to put values into its store.
 */
export interface BackendFixture {
  backend: SecretBackend;
  /** Stores a secret for the tenant: a string, or several keys (JSON object, .env, KV). */
  put(tenant: string, name: string, value: string | Record<string, string>): Promise<void>;
  teardown(): Promise<void>;
}

/** Distinctive values: if one of these shows up in an error, a value leaked. */
export const PLANTED = {
  password: "pw-PLANTED-9f3c1e7a",
  token: "tok-PLANTED-5b2d8e41",
  field: "field-PLANTED-c0ffee77",
} as const;

/** Values that break naive quoting, parsing or template substitution. */
export const AWKWARD_VALUES: Readonly<Record<string, string>> = {
  quotes: `it's "quoted" and \`ticked\``,
  newlines: "line one\nline two\n  indented\n",
  crlf: "windows\r\nline",
  unicode: "päss wörd – 密码 🔑",
  dollar: "cost$5 and $HOME",
  template: "${x} and ${secret:other} and $${y}",
  backslashes: "C:\\path\\to\\n",
  hash: "value # not a comment",
  spaces: "  leading and trailing  ",
  equals: "a=b=c",
};

const TENANT = "acme";
const OTHER = "globex";

export function describeBackendContract(name: string, setup: () => Promise<BackendFixture>): void {
  describe(`${name} backend contract`, () => {
    let fx: BackendFixture;

    beforeEach(async () => {
      fx = await setup();
    });

    afterEach(async () => {
      await fx.backend.close();
      await fx.teardown();
    });

    it("fetches several names in one call", async () => {
      await fx.put(TENANT, "db_password", PLANTED.password);
      await fx.put(TENANT, "api_token", PLANTED.token);
      await fx.put(TENANT, "region", "eu-west-1");

      const found = await fx.backend.fetch(TENANT, ["db_password", "api_token", "region"]);

      expect(found.get("db_password")?.text).toBe(PLANTED.password);
      expect(found.get("api_token")?.text).toBe(PLANTED.token);
      expect(found.get("region")?.text).toBe("eu-west-1");
    });

    it("leaves names that do not exist out of the map instead of throwing", async () => {
      await fx.put(TENANT, "db_password", PLANTED.password);

      const found = await fx.backend.fetch(TENANT, ["db_password", "missing_one"]);

      expect([...found.keys()]).toEqual(["db_password"]);
    });

    it("returns an empty map for a tenant that has no secrets at all", async () => {
      await fx.put(TENANT, "db_password", PLANTED.password);

      const found = await fx.backend.fetch("nobody", ["db_password"]);

      expect(found.size).toBe(0);
    });

    it("keeps tenants apart", async () => {
      await fx.put(TENANT, "db_password", PLANTED.password);
      await fx.put(OTHER, "db_password", "globex-own-password");
      await fx.put(TENANT, "only_acme", PLANTED.token);

      const acme = await fx.backend.fetch(TENANT, ["db_password", "only_acme"]);
      const globex = await fx.backend.fetch(OTHER, ["db_password", "only_acme"]);

      expect(acme.get("db_password")?.text).toBe(PLANTED.password);
      expect(globex.get("db_password")?.text).toBe("globex-own-password");
      expect(globex.has("only_acme")).toBe(false);
    });

    it("exposes the keys of a structured secret as fields", async () => {
      await fx.put(TENANT, "db", { user: "reporting", password: PLANTED.field, port: "5432" });

      const found = await fx.backend.fetch(TENANT, ["db"]);

      expect(found.get("db")?.fields).toEqual({
        user: "reporting",
        password: PLANTED.field,
        port: "5432",
      });
    });

    it("round-trips awkward values exactly", async () => {
      const names = Object.keys(AWKWARD_VALUES);
      for (const key of names) await fx.put(TENANT, `v_${key}`, AWKWARD_VALUES[key] as string);

      const found = await fx.backend.fetch(
        TENANT,
        names.map((key) => `v_${key}`),
      );

      for (const key of names) expect(found.get(`v_${key}`)?.text, key).toBe(AWKWARD_VALUES[key]);
    });

    it("round-trips awkward values inside a structured secret", async () => {
      await fx.put(TENANT, "bundle", { ...AWKWARD_VALUES });

      const found = await fx.backend.fetch(TENANT, ["bundle"]);

      expect(found.get("bundle")?.fields).toEqual(AWKWARD_VALUES);
    });

    it("says where a name is looked up, naming tenant and name", () => {
      const where = fx.backend.locationOf(TENANT, "db_password").toLowerCase();

      expect(where).toContain(TENANT);
      expect(where).toContain("db_password");
    });

    it("passes its health check when the store is reachable", async () => {
      await expect(fx.backend.check()).resolves.toBeUndefined();
    });

    it("names its type", () => {
      expect(fx.backend.type).toMatch(/^[a-z]+$/);
    });

    it("never puts a value into an error, whatever the input", async () => {
      await fx.put(TENANT, "db_password", PLANTED.password);
      await fx.put(TENANT, "db", { password: PLANTED.field });
      const attempts: [string, string[]][] = [
        ["../acme", ["db_password"]],
        [TENANT, ["../acme/db_password"]],
        [TENANT, ["db_password/"]],
        ["", ["db_password"]],
        [TENANT, [""]],
        [`${TENANT}\u0000`, ["db"]],
      ];
      for (const [tenant, names] of attempts) {
        try {
          const found = await fx.backend.fetch(tenant, names);
          // Odd input that a backend accepts must still not reach another tenant's data.
          for (const secret of found.values()) expect(secret.text).not.toContain("PLANTED");
        } catch (error) {
          expect(everythingSaidAbout(error)).not.toMatch(/PLANTED/);
        }
      }
      expect(fx.backend.locationOf(TENANT, "db_password")).not.toMatch(/PLANTED/);
    });
  });
}

/** Message, stack and causes of an error, as one string to scan for leaks. */
export function everythingSaidAbout(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth += 1) {
    if (current instanceof Error) {
      parts.push(current.message, current.stack ?? "", JSON.stringify(current));
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join("\n");
}

/**
 * The SecretError `promise` must reject with; fails the test if anything said about
 * it (message, stack, JSON, causes) holds `planted`, or if it carries a cause.
 */
export async function secretFailure(
  promise: Promise<unknown>,
  planted: string,
): Promise<SecretError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretError);
  expect(everythingSaidAbout(error)).not.toContain(planted);
  expect((error as SecretError).cause).toBeUndefined();
  return error as SecretError;
}
