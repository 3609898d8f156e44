import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import extensions, { describeDuckdb, withDuckdb } from "../../src/cli/extensions.js";
import { capture } from "../cli/capture.js";

/**
 * `duckcron extensions install` offline: only local repositories, never the network.
 * The success path needs real extension binaries and runs in the Docker build.
 */
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "duckcron-ext-"));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

function run(argv: string[]) {
  return capture(() => extensions(argv));
}

describe("duckcron extensions install", () => {
  it("rejects names that are not extension names, before opening DuckDB", async () => {
    const result = await run(["install", "httpfs;DROP", "--dir", join(dir, "ext")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/"httpfs;DROP" is not an extension name/);
    expect(result.stderr).toMatch(/usage: duckcron extensions install <name>\.\.\./);
  });

  it("needs an action and at least one name", async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(["install"])).stderr).toMatch(/name at least one extension/);
    expect((await run(["remove", "httpfs"])).stderr).toMatch(/the only action is install/);
  });

  it("explains the layout a local repository must have", async () => {
    const repo = join(dir, "repo");
    mkdirSync(join(repo, "v0.9.0", "linux_amd64"), { recursive: true });
    const build = await withDuckdb(undefined, describeDuckdb);
    const result = await run([
      "install",
      "httpfs",
      "--dir",
      join(dir, "ext"),
      "--repository",
      repo,
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(
      `expected ${join(repo, build.version, build.platform, "httpfs.duckdb_extension")}, but it holds v0.9.0 but not ${build.version}`,
    );
    expect(result.stderr).toMatch(
      /<repository>\/v<duckdb version>\/<platform>\/<name>\.duckdb_extension/,
    );
    expect(result.stderr).toMatch(/\[EXTENSION_INSTALL_FAILED\]$/m);
  });

  it("reports DuckDB's refusal of a damaged file, exit 1", async () => {
    const build = await withDuckdb(undefined, describeDuckdb);
    const repo = join(dir, "repo");
    const platformDir = join(repo, build.version, build.platform);
    mkdirSync(platformDir, { recursive: true });
    writeFileSync(join(platformDir, "httpfs.duckdb_extension"), "not an extension");
    const result = await run([
      "install",
      "httpfs",
      "--dir",
      join(dir, "ext"),
      "--repository",
      repo,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /cannot install httpfs into .*ext from .*repo: IO Error: .*valid DuckDB extension\. /,
    );
    expect(result.stderr).toContain(`built for DuckDB ${build.version} on ${build.platform}`);
  });

  it("says so for extensions compiled into DuckDB, and installs nothing", async () => {
    const result = await run(["install", "json", "parquet", "--dir", join(dir, "ext")]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^json: built into DuckDB v[\d.]+, nothing to install$/m);
    expect(result.stdout).toMatch(/^parquet: built into DuckDB/m);
  });

  it("refuses a repository that is neither a name, a URL nor a folder", async () => {
    const result = await run([
      "install",
      "httpfs",
      "--dir",
      join(dir, "ext"),
      "--repository",
      join(dir, "nope"),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--repository .*nope: no such directory/);
  });
});
