import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, runCli } from "./run-cli.js";

/**
 * Every broken config of the corpus, through the real CLI: `validate` exits 2 and
 * prints the located message. (test/config/bad-corpus.test.ts checks the loader.)
 */
const CORPUS = join(REPO, "test/fixtures/config/bad");
const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe("duckcron validate on the bad-input corpus", () => {
  it("has at least 30 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)("%s: exit 2 with the located message", async (name) => {
    const dir = join(CORPUS, name);
    const expected = readFileSync(join(dir, "expected.txt"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    const result = await runCli(
      ["validate", "-c", join("test/fixtures/config/bad", name, "runner.yaml")],
      {
        env: { CORPUS_PRESENT: "set" },
      },
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    for (const line of expected) expect(result.stderr).toContain(line);
  });
});
