import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import schema, { jsonSchemaFor, SCHEMA_KINDS } from "../../src/cli/schema.js";
import { SECRET_TYPES } from "../../src/config/secret-types.js";
import { capture } from "./capture.js";
import { REPO } from "./run-cli.js";

const REGENERATE =
  "the committed schema is out of date: run `npm run schemas` and commit schemas/*.json";

function committed(kind: string): unknown {
  return JSON.parse(readFileSync(join(REPO, "schemas", `${kind}.schema.json`), "utf8"));
}

afterEach(() => vi.restoreAllMocks());

describe("duckcron schema", () => {
  it.each(SCHEMA_KINDS)(
    "%s: the committed schemas/*.schema.json matches the zod schema",
    (kind) => {
      expect(committed(kind), REGENERATE).toEqual(jsonSchemaFor(kind));
    },
  );

  it("prints the input-side JSON Schema, with a title and description", async () => {
    const result = await capture(() => schema(["job"]));
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(printed).toEqual(committed("job"));
    expect(printed.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(printed.title).toBe("duckcron job file");
    expect(String(printed.description)).toMatch(/duckcron validate/);
    // Input side: fields with defaults are optional.
    expect(printed.required).toEqual(["version", "duckdb"]);
  });

  it("refuses anything but runner or job, with the usage", async () => {
    const result = await capture(() => schema(["jobs"]));
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/usage: duckcron schema runner\|job/);
  });

  it("spells out every DuckDB secret type with its providers and parameters", () => {
    const job = jsonSchemaFor("job") as {
      properties: { duckdb: { properties: { secrets: { items: { allOf: unknown[] } } } } };
    };
    const branches = job.properties.duckdb.properties.secrets.items.allOf as {
      if: { properties: { type: { const: string } } };
      then: { properties: Record<string, { enum?: string[] }> };
    }[];
    const byType = new Map(branches.map((b) => [b.if.properties.type.const, b.then.properties]));
    expect([...byType.keys()].sort()).toEqual(Object.keys(SECRET_TYPES).sort());
    for (const [type, spec] of Object.entries(SECRET_TYPES)) {
      const properties = byType.get(type) ?? {};
      expect(properties.provider?.enum).toEqual(Object.keys(spec.providers));
      for (const provider of Object.values(spec.providers)) {
        for (const param of Object.keys(provider.params)) expect(properties).toHaveProperty(param);
      }
    }
  });

  it("describes the vault backend's keys (the compose stack uses them)", () => {
    const text = JSON.stringify(jsonSchemaFor("runner"));
    for (const key of ["url", "token", "mount_point", "prefix", "kv_version", "namespace"]) {
      expect(text).toContain(`"${key}"`);
    }
  });
});

describe("the example files point editors at the schemas", () => {
  const files = [
    ["runner.yaml.example", "runner"],
    ["jobs/sales.yaml", "job"],
    ["jobs/reference.yaml", "job"],
    ["deploy/compose/runner.yaml", "runner"],
    ["deploy/compose/jobs/sales.yaml", "job"],
  ] as const;

  it.each(files)(
    "%s starts with a yaml-language-server $schema line that resolves",
    (file, kind) => {
      const first = readFileSync(join(REPO, file), "utf8").split("\n", 1)[0] ?? "";
      const match = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(match, `${file}: first line`).not.toBeNull();
      const target = join(REPO, file, "..", match?.[1] ?? "");
      expect(target).toBe(join(REPO, "schemas", `${kind}.schema.json`));
    },
  );
});
