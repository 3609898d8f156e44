import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { effectiveStateDir, prepareStateDir } from "../../src/config/state-dir.js";
import { DuckcronError } from "../../src/errors.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "duckcron-state-dir-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the effective state dir", () => {
  const env = { DUCKCRON_STATE_DIR: "/var/lib/duckcron/state" };

  it("is runner.state_dir (relative to runner.yaml) when set, whatever the environment says", () => {
    expect(effectiveStateDir("/etc/duckcron", "state", env)).toEqual({
      path: "/etc/duckcron/state",
      source: "runner.state_dir",
    });
  });

  it("is $DUCKCRON_STATE_DIR when runner.state_dir is not set", () => {
    expect(effectiveStateDir("/etc/duckcron", undefined, env)).toEqual({
      path: "/var/lib/duckcron/state",
      source: "DUCKCRON_STATE_DIR",
    });
    expect(effectiveStateDir("/etc/duckcron", undefined, { DUCKCRON_STATE_DIR: "rel" }).path).toBe(
      resolve("rel"),
    );
  });

  it("is .duckcron beside runner.yaml otherwise (an empty variable counts as unset)", () => {
    for (const e of [{}, { DUCKCRON_STATE_DIR: "" }]) {
      expect(effectiveStateDir("/etc/duckcron", undefined, e)).toEqual({
        path: "/etc/duckcron/.duckcron",
        source: "default",
      });
    }
  });
});

describe("prepareStateDir", () => {
  it("creates the directory", async () => {
    const path = join(dir, "a", "b");
    await prepareStateDir({ path, source: "default" });
    expect(existsSync(path)).toBe(true);
  });

  it("fails with STATE_DIR_UNWRITABLE naming the directory, its setting and the fix", async () => {
    // A regular file where a parent directory should be: unwritable for every user, root too.
    writeFileSync(join(dir, "ro"), "");
    const path = join(dir, "ro", ".duckcron");
    const error = await prepareStateDir({ path, source: "default" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuckcronError);
    expect((error as DuckcronError).code).toBe("STATE_DIR_UNWRITABLE");
    expect((error as DuckcronError).message).toBe(
      `state directory ${path} (the default, .duckcron beside runner.yaml) cannot be created or written (ENOTDIR); set runner.state_dir in runner.yaml or $DUCKCRON_STATE_DIR to a directory this user can write (in the container image: the /var/lib/duckcron/state volume)`,
    );
  });
});
