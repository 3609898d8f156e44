import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { jobFileSchema, plainTemplate, secretTemplate } from "../../src/config/job-schema.js";
import { runnerFileSchema } from "../../src/config/runner-schema.js";
import { allowedKeys, isTemplateField } from "../../src/config/schema-shape.js";

const job = jobFileSchema as z.ZodType;
const runner = runnerFileSchema as z.ZodType;
const markers = [plainTemplate, secretTemplate];

describe("reading the zod schemas", () => {
  it("lists the keys an object allows, through defaults, arrays, pipes and unions", () => {
    expect(allowedKeys(runner, [])).toEqual(["runner", "version"]);
    expect(allowedKeys(runner, ["runner", "schedules", 0])).toContain("cron");
    expect(allowedKeys(runner, ["runner", "schedules", 0, "retries"])).toEqual([
      "attempts",
      "backoff",
      "max_backoff",
    ]);
    // A discriminated union offers every backend's keys.
    expect(allowedKeys(runner, ["runner", "secrets"])).toEqual(
      expect.arrayContaining(["type", "prefix", "secrets_dir", "cache_ttl"]),
    );
    expect(allowedKeys(job, ["views", 3])).toContain("materialize");
    expect(allowedKeys(job, ["duckdb", "install_extensions", 0])).toEqual(["name", "repository"]);
  });

  it("knows which strings are templates, refined ones and open secret parameters included", () => {
    expect(isTemplateField(job, ["duckdb", "database"], markers)).toBe(true);
    expect(isTemplateField(job, ["views", 0, "uri", 2], markers)).toBe(true);
    expect(isTemplateField(job, ["duckdb", "secrets", 0, "key_id"], markers)).toBe(true);
    expect(
      isTemplateField(job, ["duckdb", "secrets", 0, "extra_http_headers", "X-A"], markers),
    ).toBe(true);
    expect(isTemplateField(job, ["duckdb", "secrets", 0, "name"], markers)).toBe(false);
    expect(isTemplateField(job, ["duckdb", "settings", "memory_limit"], markers)).toBe(false);
    expect(isTemplateField(job, ["views", 0, "description"], markers)).toBe(false);
  });
});
