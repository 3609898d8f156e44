import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { loadCheckedRunner } from "../../src/load-config.js";

/**
 * Each directory under test/fixtures/config/bad is one broken configuration:
 * runner.yaml (+ job files) and expected.txt, one substring per line that the error
 * output must contain. Loaded as every command loads config (loadCheckedRunner), so
 * the checks DuckDB makes (views[].sql) are covered too. The CLI runs over the same
 * corpus. Cases that cannot be committed (a FIFO, a file over the size limit) are made
 * by test/config/hostile-files.test.ts.
 */
const CORPUS = join("test", "fixtures", "config", "bad");
const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

describe("the bad-input corpus", () => {
  it("has enough cases to mean something", () => {
    expect(cases.length).toBeGreaterThanOrEqual(32);
  });

  it.each(cases)("%s is rejected with a located message", async (name) => {
    const dir = join(CORPUS, name);
    const expected = readFileSync(join(dir, "expected.txt"), "utf8")
      .split("\n")
      .filter((line) => line.trim() !== "");
    expect(expected.length).toBeGreaterThan(0);
    const error = await loadCheckedRunner(join(dir, "runner.yaml"), { env: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const line of expected) expect(message).toContain(line);
    // Every reported line names a place: file:line:col.
    for (const line of message.split("\n")) expect(line).toMatch(/^\S+:\d+:\d+: /);
  });
});
