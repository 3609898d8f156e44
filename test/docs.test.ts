import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsonSchemaFor } from "../src/cli/schema.js";
import { SECRET_TYPES } from "../src/config/secret-types.js";

const SECRET_PARAMS = new Set(
  Object.values(SECRET_TYPES).flatMap((type) => [
    ...Object.values(type.providers).flatMap((provider) => Object.keys(provider.params)),
    ...Object.keys("aliases" in type ? type.aliases : {}),
  ]),
);

/** docs/configuration.md names every key the config schemas accept. */
describe("docs/configuration.md", () => {
  const doc = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");

  it.each(["runner", "job"] as const)("documents every key of the %s schema", (kind) => {
    const keys = new Set<string>();
    collectKeys(jsonSchemaFor(kind), keys);
    expect(keys.size).toBeGreaterThan(20);
    // DuckDB's own secret parameters are listed by type in jobs/reference.yaml.
    const documented = (key: string) =>
      new RegExp(`[\`.]${key}[\`.]`).test(doc) || SECRET_PARAMS.has(key);
    const missing = [...keys].filter((key) => !documented(key));
    expect(missing).toEqual([]);
  });
});

function collectKeys(node: unknown, keys: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collectKeys(item, keys);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const record = node as Record<string, unknown>;
  if (record.properties && typeof record.properties === "object") {
    for (const key of Object.keys(record.properties)) keys.add(key);
  }
  for (const value of Object.values(record)) collectKeys(value, keys);
}
