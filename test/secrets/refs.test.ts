// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are duckcron config references, not JS templates
import { describe, expect, it } from "vitest";
import { jobFileSchema } from "../../src/config/job-schema.js";
import { collectSecretRefs, describeRef, formatRefPath } from "../../src/secrets/refs.js";

const job = jobFileSchema.parse({
  version: 1,
  duckdb: {
    database: "catalogs/${tenant}/sales.duckdb",
    secrets: [
      {
        name: "lake",
        type: "s3",
        key_id: "${secret:aws_access_key_id}",
        secret: "${secret:aws_secret_access_key}",
        region: "us-west-2",
        scope: "s3://lake/${tenant}/",
      },
      {
        name: "api",
        type: "http",
        bearer_token: "prefix-${secret:api.token}-${secret:aws_access_key_id}",
        extra_http_headers: { "X-Api-Key": "${secret:api.key}", "X-Static": "plain" },
      },
    ],
  },
});

describe("collectSecretRefs", () => {
  it("finds every secret reference in duckdb.secrets params, map values included, in order with duplicates", () => {
    const refs = collectSecretRefs(job);

    expect(refs.map((r) => [r.name, r.key, r.raw, r.path])).toEqual([
      [
        "aws_access_key_id",
        undefined,
        "${secret:aws_access_key_id}",
        ["duckdb", "secrets", 0, "key_id"],
      ],
      [
        "aws_secret_access_key",
        undefined,
        "${secret:aws_secret_access_key}",
        ["duckdb", "secrets", 0, "secret"],
      ],
      ["api", "token", "${secret:api.token}", ["duckdb", "secrets", 1, "bearer_token"]],
      [
        "aws_access_key_id",
        undefined,
        "${secret:aws_access_key_id}",
        ["duckdb", "secrets", 1, "bearer_token"],
      ],
      [
        "api",
        "key",
        "${secret:api.key}",
        ["duckdb", "secrets", 1, "extra_http_headers", "X-Api-Key"],
      ],
    ]);
  });

  it("attaches source locations when the loader can provide them", () => {
    const refs = collectSecretRefs(job, (path) =>
      path[3] === "key_id" ? { file: "jobs/sales.yaml", line: 7, col: 15 } : undefined,
    );

    expect(refs[0]?.location).toEqual({ file: "jobs/sales.yaml", line: 7, col: 15 });
    expect(describeRef(refs[0]!)).toBe("jobs/sales.yaml:7:15: duckdb.secrets[0].key_id");
    expect(describeRef(refs[1]!)).toBe("duckdb.secrets[0].secret");
  });

  it("returns nothing for a job without secrets", () => {
    const bare = jobFileSchema.parse({ version: 1, duckdb: { database: "x.duckdb" } });

    expect(collectSecretRefs(bare)).toEqual([]);
  });
});

describe("formatRefPath", () => {
  it("prints paths the way config errors do", () => {
    expect(formatRefPath(["duckdb", "secrets", 2, "extra_http_headers", "X-Api-Key"])).toBe(
      "duckdb.secrets[2].extra_http_headers.X-Api-Key",
    );
    expect(formatRefPath([])).toBe("");
  });
});
