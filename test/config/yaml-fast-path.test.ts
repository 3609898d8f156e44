import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CORE_SCHEMA, load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { parseYamlSource } from "../../src/config/yaml-source.js";

/**
 * Config values come from js-yaml (fast) while positions come from `yaml` (only when
 * needed). That is only sound if both read every file alike: same value when `yaml`
 * accepts it, and js-yaml never accepting what `yaml` rejects.
 */
const REPO = join(import.meta.dirname, "../..");
const CORPUS = [
  ...yamlFiles(join(REPO, "test/fixtures")),
  ...yamlFiles(join(REPO, "jobs")),
  ...yamlFiles(join(REPO, "deploy")),
  join(REPO, "runner.yaml.example"),
];

const EDGE_CASES = [
  "a: 1_000",
  "a: 1e3",
  "a: .5",
  "a: 0o17",
  "a: 0x1F",
  "a: +12",
  "a: 010",
  "a: ~",
  "a: Null",
  "a: TRUE",
  "a: yes",
  "a: on",
  "a: 2026-01-01",
  "a: 12:30:00",
  "<<: {b: 1}",
  "a: .inf",
  "a: -.Inf",
  "a: .NaN",
  "a: '${env:X}'",
  "a: ${secret:x.y}",
  "a: |\n  multi\n  line\n",
  "a: >-\n  folded\n  text\n",
  "a: &anchor {b: 1}\nc: *anchor\n",
  "a: !!str 12",
  "",
  "# only a comment\n",
  "[1, 2]",
  "a: 'it''s'",
  'a: "tab\\tnewline\\n"',
];

describe("the fast YAML path reads config exactly like the positional parser", () => {
  it("covers the repository's config files", () => {
    expect(CORPUS.length).toBeGreaterThan(60);
  });

  it.each(CORPUS.map((file) => [relative(REPO, file), file]))("%s", (_name, file) => {
    expectSameReading(readFileSync(file, "utf8"));
  });

  it.each(EDGE_CASES)("%j", (text) => {
    expectSameReading(text);
  });

  it("reports syntax errors and duplicate keys with their location, through `yaml`", () => {
    const duplicate = parseYamlSource("a: 1\nb: 2\na: 3\n", "dup.yaml");
    expect(duplicate.value).toBeUndefined();
    expect(duplicate.issues[0]).toMatchObject({ file: "dup.yaml", line: 3, severity: "error" });
    const broken = parseYamlSource('a: "open\n', "broken.yaml");
    expect(broken.issues[0]).toMatchObject({ file: "broken.yaml", severity: "error" });
  });

  it("refuses an alias bomb on both paths, at its first alias", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 7; i++) {
      const [prev, name] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
      levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(", ")}]`);
    }
    const bomb = `${levels.join("\n")}\n`;
    // Both parsers share an anchor's value among its aliases, so parsing is cheap; the
    // tree walk that follows is what would not end, and what the limit bounds.
    const source = parseYamlSource(bomb, "bomb.yaml");
    expect(source.value).toBeUndefined();
    expect(source.issues).toEqual([
      expect.objectContaining({ line: 2, col: 8, message: expect.stringContaining("1,000,000") }),
    ]);
  });

  it("locates an alias without an anchor", () => {
    const source = parseYamlSource("a: 1\nb:\n  - *nope\n", "x.yaml");
    expect(source.value).toBeUndefined();
    expect(source.issues).toEqual([
      expect.objectContaining({
        line: 3,
        col: 5,
        message: "YAML: alias *nope has no anchor &nope before it",
      }),
    ]);
  });

  it("still locates fields of a file read on the fast path", () => {
    const source = parseYamlSource("version: 1\nrunner:\n  timezone: UTC\n", "runner.yaml");
    expect(source.value).toEqual({ version: 1, runner: { timezone: "UTC" } });
    expect(source.locate(["runner", "timezone"])).toEqual({
      file: "runner.yaml",
      line: 3,
      col: 13,
    });
    expect(source.locateKey(["runner", "timezone"])).toEqual({
      file: "runner.yaml",
      line: 3,
      col: 3,
    });
  });
});

function expectSameReading(text: string): void {
  const doc = parseDocument(text, { uniqueKeys: true });
  let fast: unknown;
  let fastError: unknown;
  try {
    fast = load(text, { schema: CORE_SCHEMA });
  } catch (error) {
    fastError = error;
  }
  if (doc.errors.length > 0) {
    // The fast path must hand anything `yaml` rejects to `yaml`.
    expect(fastError, "js-yaml accepted a file `yaml` rejects").toBeDefined();
    return;
  }
  const source = parseYamlSource(text, "x.yaml");
  if (source.value === undefined) {
    // Alias bombs and undefined aliases parse, but both paths refuse them, located.
    expect(source.issues[0]?.message).toMatch(/^YAML: alias(es expand)? /);
    return;
  }
  if (fastError === undefined) expect(fast ?? null).toEqual(doc.toJS({ maxAliasCount: 1000 }));
  // (js-yaml may refuse more than `yaml`: those files simply take the slow path.)
  expect(source.value).toEqual(doc.toJS({ maxAliasCount: 1000 }));
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}
