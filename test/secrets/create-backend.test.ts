import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createBackend } from "../../src/secrets/create-backend.js";
import { EnvBackend } from "../../src/secrets/env.js";
import { FilesystemBackend } from "../../src/secrets/filesystem.js";

const cache = { cache_ttl: 300_000, max_stale: 0, max_concurrency: 8 };

describe("createBackend", () => {
  it("builds the env backend over the given environment", async () => {
    const backend = await createBackend(
      { type: "env", prefix: "DC_", ...cache },
      { baseDir: ".", env: { DC_ACME_DB: "from-env" } },
    );

    expect(backend).toBeInstanceOf(EnvBackend);
    expect((await backend.fetch("acme", ["db"])).get("db")?.text).toBe("from-env");
  });

  it("builds the filesystem backend with secrets_dir relative to the runner.yaml folder", async () => {
    const base = await mkdtemp(path.join(tmpdir(), "duckcron-cb-"));
    try {
      const backend = await createBackend(
        { type: "filesystem", secrets_dir: "secrets", ...cache },
        { baseDir: base },
      );

      expect(backend).toBeInstanceOf(FilesystemBackend);
      expect(backend.locationOf("acme", "db")).toContain(path.join(base, "secrets", "acme", "db"));
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
