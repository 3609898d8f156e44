import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SecretError } from "../../src/errors.js";
import { FilesystemBackend } from "../../src/secrets/filesystem.js";
import { describeBackendContract, everythingSaidAbout, PLANTED } from "./contract.js";

async function writeSecret(file: string, content: string, mode = 0o600): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, content, { mode });
  await chmod(file, mode); // writeFile's mode is filtered by the umask
}

describeBackendContract("filesystem", async () => {
  const base = await mkdtemp(path.join(tmpdir(), "duckcron-fs-"));
  const backend = new FilesystemBackend({ secrets_dir: "secrets" }, base);
  await mkdir(path.join(base, "secrets"), { mode: 0o700 });
  return {
    backend,
    async put(tenant, name, value) {
      const dir = path.join(base, "secrets", tenant);
      if (typeof value === "string") await writeSecret(path.join(dir, `${name}.txt`), `${value}\n`);
      else await writeSecret(path.join(dir, `${name}.json`), JSON.stringify(value));
    },
    async teardown() {
      await rm(base, { recursive: true, force: true });
    },
  };
});

describe("filesystem backend", () => {
  let base: string;
  let dir: string;
  let backend: FilesystemBackend;

  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), "duckcron-fs-"));
    dir = path.join(base, "secrets");
    await mkdir(path.join(dir, "acme"), { recursive: true, mode: 0o700 });
    backend = new FilesystemBackend({ secrets_dir: "secrets" }, base);
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function failure(tenant: string, names: string[]): Promise<SecretError> {
    const error = await backend.fetch(tenant, names).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SecretError);
    return error as SecretError;
  }

  describe("layout", () => {
    it("reads a file without extension, the way Docker and Kubernetes mount secrets, minus one trailing newline", async () => {
      await writeSecret(path.join(dir, "acme", "token"), `${PLANTED.token}\n\n`);

      const found = await backend.fetch("acme", ["token"]);

      expect(found.get("token")).toEqual({ text: `${PLANTED.token}\n` });
    });

    it("strips a Windows line ending too", async () => {
      await writeSecret(path.join(dir, "acme", "token.txt"), "value\r\n");

      expect((await backend.fetch("acme", ["token"])).get("token")?.text).toBe("value");
    });

    it("reads .env files per dotenv rules", async () => {
      const content = [
        "# database credentials",
        "export USER=reporting",
        "PASSWORD='single $quoted # not comment'",
        'MULTI="line one\\nline two"',
        "SPACED = value with spaces   # trailing comment",
        'PEM="-----BEGIN-----',
        "abc",
        '-----END-----"',
        "EMPTY=",
        "",
      ].join("\n");
      await writeSecret(path.join(dir, "acme", "db.env"), content);

      const secret = (await backend.fetch("acme", ["db"])).get("db");

      expect(secret?.fields).toEqual({
        USER: "reporting",
        PASSWORD: "single $quoted # not comment",
        MULTI: "line one\nline two",
        SPACED: "value with spaces",
        PEM: "-----BEGIN-----\nabc\n-----END-----",
        EMPTY: "",
      });
      expect(secret?.text).toBe(content);
    });

    it("reports malformed .env lines by number, without their contents", async () => {
      await writeSecret(
        path.join(dir, "acme", "db.env"),
        `OK=1\n${PLANTED.password}\nX="unterminated ${PLANTED.token}\n`,
      );

      const error = await failure("acme", ["db"]);

      expect(error.code).toBe("SECRET_INVALID");
      expect(error.message).toMatch(/db\.env: line 2, 3 is not KEY=VALUE/);
      expect(everythingSaidAbout(error)).not.toMatch(/PLANTED/);
    });

    it("keeps non-string JSON values as JSON text", async () => {
      await writeSecret(
        path.join(dir, "acme", "db.json"),
        '{"port":5432,"tls":true,"opts":{"a":1}}',
      );

      expect((await backend.fetch("acme", ["db"])).get("db")?.fields).toEqual({
        port: "5432",
        tls: "true",
        opts: '{"a":1}',
      });
    });

    it("refuses invalid JSON without quoting it", async () => {
      await writeSecret(path.join(dir, "acme", "db.json"), `{"password": ${PLANTED.password}}`);

      const error = await failure("acme", ["db"]);

      expect(error.message).toBe(`${path.join(dir, "acme", "db.json")} is not valid JSON`);
      expect(everythingSaidAbout(error)).not.toMatch(/PLANTED/);
    });

    it("refuses a JSON file that is not an object", async () => {
      await writeSecret(path.join(dir, "acme", "db.json"), `"${PLANTED.password}"`);

      const error = await failure("acme", ["db"]);

      expect(error.message).toMatch(/must hold a JSON object; put a single value in a \.txt file/);
    });

    it("refuses a name stored twice, naming both files", async () => {
      await writeSecret(path.join(dir, "acme", "db.json"), "{}");
      await writeSecret(path.join(dir, "acme", "db.txt"), "x");

      const error = await failure("acme", ["db"]);

      expect(error.code).toBe("SECRET_INVALID");
      expect(error.message).toContain(path.join(dir, "acme", "db.json"));
      expect(error.message).toContain(path.join(dir, "acme", "db.txt"));
    });

    it("resolves secrets_dir against the runner.yaml folder", () => {
      expect(backend.locationOf("acme", "db")).toBe(
        `${path.join(dir, "acme", "db")}.json, ${path.join(dir, "acme", "db")}.env, ${path.join(dir, "acme", "db")}.txt or ${path.join(dir, "acme", "db")}`,
      );
    });

    it("fails the health check and fetches when secrets_dir does not exist", async () => {
      const missing = new FilesystemBackend({ secrets_dir: "nope" }, base);

      await expect(missing.check()).rejects.toMatchObject({ code: "SECRET_BACKEND_UNAVAILABLE" });
      await expect(missing.fetch("acme", ["db"])).rejects.toThrow(
        /secrets_dir .*nope does not exist/,
      );
    });
  });

  describe("permissions", () => {
    it.each([0o640, 0o604, 0o620, 0o644])(
      "refuses a secret file with mode %o and says how to fix it",
      async (mode) => {
        const file = path.join(dir, "acme", "token.txt");
        await writeSecret(file, PLANTED.token, mode);

        const error = await failure("acme", ["token"]);

        expect(error.code).toBe("SECRET_INVALID");
        expect(error.message).toContain(`chmod 600 ${file}`);
        expect(everythingSaidAbout(error)).not.toMatch(/PLANTED/);
      },
    );

    it("accepts 0400 and 0600", async () => {
      await writeSecret(path.join(dir, "acme", "a.txt"), "a", 0o400);
      await writeSecret(path.join(dir, "acme", "b.txt"), "b", 0o600);

      expect((await backend.fetch("acme", ["a", "b"])).size).toBe(2);
    });

    it("refuses a tenant folder anyone can write to", async () => {
      await writeSecret(path.join(dir, "acme", "token.txt"), PLANTED.token);
      await chmod(path.join(dir, "acme"), 0o777);

      const error = await failure("acme", ["token"]);

      expect(error.message).toContain(`chmod o-w ${path.join(dir, "acme")}`);
    });
  });

  describe("containment", () => {
    it.each([
      ["../secrets", "db"],
      ["acme", "../acme/db"],
      ["acme/..", "db"],
      [".", "db"],
      ["acme", "db.json"],
      ["acme", ".hidden"],
    ])("refuses tenant %j with name %j before touching the disk", async (tenant, name) => {
      const error = await failure(tenant, [name]);

      expect(error.code).toBe("SECRET_INVALID");
      expect(error.message).toMatch(/cannot be used in a file path/);
    });

    it("refuses a secret symlinked to a file outside secrets_dir", async () => {
      const outside = path.join(base, "outside.txt");
      await writeSecret(outside, PLANTED.password);
      await symlink(outside, path.join(dir, "acme", "db.txt"));

      const error = await failure("acme", ["db"]);

      expect(error.message).toMatch(/resolves outside secrets_dir/);
      expect(everythingSaidAbout(error)).not.toMatch(/PLANTED/);
    });

    it("refuses a tenant folder symlinked outside secrets_dir", async () => {
      const elsewhere = path.join(base, "elsewhere");
      await writeSecret(path.join(elsewhere, "db.txt"), PLANTED.password);
      await symlink(elsewhere, path.join(dir, "globex"));

      const error = await failure("globex", ["db"]);

      expect(error.message).toMatch(/resolves outside secrets_dir/);
    });

    it("follows symlinks that stay inside, as Kubernetes secret volumes use", async () => {
      await writeSecret(path.join(dir, "acme", "..data", "token"), "mounted");
      await symlink(path.join("..data", "token"), path.join(dir, "acme", "token"));

      expect((await backend.fetch("acme", ["token"])).get("token")?.text).toBe("mounted");
    });

    it("reports a dangling symlink instead of calling the secret missing", async () => {
      await symlink(path.join(dir, "acme", "gone"), path.join(dir, "acme", "token"));

      const error = await failure("acme", ["token"]);

      expect(error.message).toMatch(/broken symlink/);
    });
  });
});

describe("filesystem backend secrets_dir", () => {
  it("refuses a secrets_dir anyone can write to", async () => {
    const base = await mkdtemp(path.join(tmpdir(), "duckcron-fs-"));
    try {
      await mkdir(path.join(base, "secrets"));
      await chmod(path.join(base, "secrets"), 0o777);
      const backend = new FilesystemBackend({ secrets_dir: "secrets" }, base);

      await expect(backend.fetch("acme", ["db"])).rejects.toThrow(
        `fix with: chmod o-w ${path.join(base, "secrets")}`,
      );
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
