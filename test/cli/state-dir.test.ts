import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, exampleEnv, runCli } from "./run-cli.js";

/**
 * `start` with a state directory it cannot create fails before it fires anything:
 * exit 2, one line naming the directory, the setting that chose it and the fix.
 */
describe("duckcron start with an unwritable state dir", () => {
  let dir: string;
  beforeAll(() => {
    dir = copyExample();
    writeFileSync(join(dir, "not-a-dir"), "");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 2 with STATE_DIR_UNWRITABLE and the setting to change", async () => {
    const stateDir = join(dir, "not-a-dir", "state");
    const result = await runCli(["start", "--listen", "127.0.0.1:0"], {
      cwd: dir,
      env: { ...exampleEnv(), DUCKCRON_STATE_DIR: stateDir },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `state directory ${stateDir} ($DUCKCRON_STATE_DIR) cannot be created or written (ENOTDIR); set runner.state_dir`,
    );
    expect(result.stderr).toContain("[STATE_DIR_UNWRITABLE]");
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
