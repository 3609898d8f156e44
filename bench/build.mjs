// `duckcron run` (the whole process) building a catalog of 500 views over local
// parquet with 20 secrets, against a bare @duckdb/node-api script that executes the
// same statements into a temp file and renames it. Target: ratio <= 1.10.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadJob, plan } from "../dist/index.js";
import { compare, writeParquetFiles } from "./lib.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const VIEWS = Number(process.env.BENCH_VIEWS ?? 500);
const SECRETS = 20;
const FILES = 50;
const repetitions = Number(process.env.BENCH_REPETITIONS ?? 7);

const dir = mkdtempSync(join(tmpdir(), "duckcron-bench-build-"));
await writeParquetFiles(dir, FILES);

const env = { ...process.env };
const secretLines = [];
for (let s = 0; s < SECRETS; s++) {
  env[`BENCH_ACME_TOKEN_${s}`] = `bench-token-${s}-${randomBytes(12).toString("hex")}`;
  secretLines.push(
    `    - { name: api_${s}, type: http, bearer_token: "\${secret:token_${s}}", scope: "https://api${s}.example.com/" }`,
  );
}
const viewLines = [];
for (let v = 0; v < VIEWS; v++) {
  viewLines.push(`  - { name: v${v}, source: parquet, uri: data/part${v % FILES}.parquet }`);
}
writeFileSync(
  join(dir, "job.yaml"),
  [
    "version: 1",
    "duckdb:",
    "  database: catalog.duckdb",
    "  secrets:",
    ...secretLines,
    "views:",
    ...viewLines,
    "",
  ].join("\n"),
);
writeFileSync(
  join(dir, "runner.yaml"),
  `version: 1
runner:
  secrets: { type: env, prefix: BENCH_ }
  schedules:
    - { name: bench, config: job.yaml, cron: "0 * * * *", tenants: [acme] }
`,
);

// The baseline executes exactly the statements duckcron plans (values bound the same way).
const job = await loadJob(join(dir, "job.yaml"), { env });
const planned = plan({
  job: { definition: job.definition, dir: job.dir },
  tenant: "acme",
  secrets: { value: ({ name }) => env[`BENCH_ACME_${name.toUpperCase()}`] },
});
writeFileSync(
  join(dir, "statements.json"),
  JSON.stringify({
    options: planned.instanceOptions,
    statements: planned.statements.map((s) => ({
      sql: s.sql,
      params: s.params.map((p) => p.value),
    })),
  }),
);
const clean = () => {
  rmSync(join(dir, "catalog.duckdb"), { force: true });
  rmSync(join(dir, "baseline.duckdb"), { force: true });
};
console.log(`catalog: ${VIEWS} views over ${FILES} parquet files, ${SECRETS} http secrets`);
const ratio = compare({
  name: "build",
  repetitions,
  before: clean,
  candidate: {
    label: "duckcron run (process)",
    argv: [
      process.execPath,
      join(root, "dist/cli/main.js"),
      "run",
      "bench",
      "-c",
      join(dir, "runner.yaml"),
    ],
    options: { cwd: dir, env },
  },
  baseline: {
    label: "bare node-api script",
    argv: [
      process.execPath,
      join(root, "bench/baseline-build.mjs"),
      join(dir, "statements.json"),
      join(dir, "baseline.duckdb"),
    ],
    options: { cwd: dir, env },
  },
});
console.log(`  target <= 1.10: ${ratio <= 1.1 ? "met" : "not met"}`);
if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
else rmSync(dir, { recursive: true, force: true });
