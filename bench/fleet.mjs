// bench:fleet — `duckcron run <schedule> --force` refreshing N tenants' catalogs (20
// parquet views and 2 http secrets each, max_concurrent_runs 4) against a bare
// @duckdb/node-api script building the same catalogs from the same planned statements
// with the same concurrency (bench/baseline-fleet.mjs), alternated in one run, several
// repetitions. Twice: secrets from the env backend, then from the Vault test server
// answering after 5 ms (the bare script then reads them naively, one request per secret).
// Prints catalogs/s, CPU seconds per catalog (user+sys of the whole process, DuckDB's
// threads included), their ratios, and the event loop's delay p99/max in duckcron's
// process (bench/probe.mjs). Asserts nothing.
// Targets: CPU/catalog <= 1.25x bare, catalogs/s >= 0.8x bare and >= 20/s (env);
// catalogs/s >= 0.75x bare (5 ms Vault); event loop p99 <= 20 ms, max <= 100 ms.
// Env: BENCH_TENANTS (1000), BENCH_REPETITIONS (3), BENCH_BACKENDS (env,vault), BENCH_KEEP,
// BENCH_THREADS (a DuckDB threads setting in the job, so for both sides).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { loadJob, plan } from "../dist/index.js";
import { median, writeParquetFiles } from "./lib.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000);
const REPETITIONS = Number(process.env.BENCH_REPETITIONS ?? 3);
const BACKENDS = (process.env.BENCH_BACKENDS ?? "env,vault").split(",");
const VIEWS = 20;
const FILES = 20;
const CONCURRENCY = 4;
const LATENCY_MS = 5;
const SECRET_NAMES = ["token_a", "token_b"];

const dir = mkdtempSync(join(tmpdir(), "duckcron-bench-fleet-"));
await writeParquetFiles(dir, FILES);

const tenants = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(5, "0")}`);
const secretValue = (tenant, name) => `${name}-${tenant}-${randomBytes(12).toString("hex")}`;
const values = new Map(
  tenants.map((t) => [t, new Map(SECRET_NAMES.map((n) => [n, secretValue(t, n)]))]),
);

writeFileSync(
  join(dir, "job.yaml"),
  [
    "version: 1",
    "duckdb:",
    "  database: catalogs/${tenant}.duckdb",
    ...(process.env.BENCH_THREADS ? [`  settings: { threads: ${process.env.BENCH_THREADS} }`] : []),
    "  secrets:",
    ...SECRET_NAMES.map(
      (n) =>
        `    - { name: api_${n}, type: http, bearer_token: "\${secret:${n}}", scope: "https://${n}.example.com/\${tenant}/" }`,
    ),
    "views:",
    ...Array.from(
      { length: VIEWS },
      (_, v) => `  - { name: v${v}, source: parquet, uri: data/part${v % FILES}.parquet }`,
    ),
    "",
  ].join("\n"),
);
const runnerYaml = (secrets) => `version: 1
runner:
  max_concurrent_runs: ${CONCURRENCY}
  secrets: ${secrets}
  schedules:
    - name: fleet
      config: job.yaml
      cron: "0 * * * *"
      tenants: [${tenants.join(", ")}]
`;

// The bare script executes exactly the statements duckcron plans; secret values are
// filled in from its own read of the backend.
const job = await loadJob(join(dir, "job.yaml"), { env: process.env });
const baselinePlans = tenants.map((tenant) => {
  const p = plan({
    job: { definition: job.definition, dir: job.dir },
    tenant,
    secrets: { value: ({ name }) => `\u0001${name}` },
  });
  return {
    tenant,
    target: join(dir, "bare", `${tenant}.duckdb`),
    options: p.instanceOptions,
    statements: p.statements.map((s) => ({
      sql: s.sql,
      params: s.params.map(({ value }) =>
        typeof value === "string" && value.startsWith("\u0001")
          ? { secret: value.slice(1) }
          : value,
      ),
    })),
  };
});
mkdirSync(join(dir, "bare"));

function runChild(argv, env) {
  const probe = join(dir, `probe-${randomBytes(4).toString("hex")}.json`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ["--import", pathToFileURL(join(root, "bench/probe.mjs")).href, ...argv],
      { cwd: dir, env: { ...env, BENCH_PROBE_OUT: probe }, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const wallMs = performance.now() - started;
      if (code !== 0) {
        reject(new Error(`${argv.join(" ")} exited ${code}\n${stderr.slice(-4000)}`));
        return;
      }
      const measured = JSON.parse(readFileSync(probe, "utf8"));
      rmSync(probe);
      resolve({ ...measured, wallMs });
    });
  });
}

async function measureBackend(name, secrets, env) {
  const runner = join(dir, `runner-${name}.yaml`);
  writeFileSync(runner, runnerYaml(secrets.runner));
  const planFile = join(dir, `bare-${name}.json`);
  writeFileSync(
    planFile,
    JSON.stringify({ concurrency: CONCURRENCY, secrets: secrets.bare, tenants: baselinePlans }),
  );
  const duckcron = () =>
    runChild([join(root, "dist/cli/main.js"), "run", "fleet", "-c", runner, "--force"], env);
  const bare = () => runChild([join(root, "bench/baseline-fleet.mjs"), planFile], env);
  // One warm-up each: the page cache holds the parquet files and every catalog exists,
  // so every measured run is a refresh.
  await duckcron();
  await bare();
  const rows = [];
  for (let i = 0; i < REPETITIONS; i++)
    rows.push({ duckcron: await duckcron(), bare: await bare() });
  const stat = (side, f) => median(rows.map((r) => f(r[side])));
  const rate = (m) => TENANTS / (m.wallMs / 1000);
  const cpu = (m) => m.cpuMs / 1000 / TENANTS;
  return {
    backend: name,
    "duckcron catalogs/s": stat("duckcron", rate).toFixed(1),
    "bare catalogs/s": stat("bare", rate).toFixed(1),
    "catalogs/s ratio": median(rows.map((r) => rate(r.duckcron) / rate(r.bare))).toFixed(3),
    "duckcron CPU s/catalog": stat("duckcron", cpu).toFixed(4),
    "bare CPU s/catalog": stat("bare", cpu).toFixed(4),
    "CPU ratio": median(rows.map((r) => cpu(r.duckcron) / cpu(r.bare))).toFixed(3),
    "loop p99 ms": stat("duckcron", (m) => m.loopP99Ms).toFixed(1),
    "loop max ms": Math.max(...rows.map((r) => r.duckcron.loopMaxMs)).toFixed(1),
    "duckcron RSS MB": stat("duckcron", (m) => m.rssMb).toFixed(0),
  };
}

/** The Vault test server, bundled from its TypeScript source, in this process. */
async function startVault() {
  const out = join(dir, "vault-test-server.mjs");
  await build({
    entryPoints: [join(root, "test/servers/vault-test-server.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    outfile: out,
    logLevel: "warning",
  });
  const { startVaultTestServer } = await import(pathToFileURL(out).href);
  const server = await startVaultTestServer();
  for (const tenant of tenants) server.seed(tenant, Object.fromEntries(values.get(tenant)));
  server.faults.latencyMs = LATENCY_MS;
  return server;
}

const results = [];
try {
  for (const backend of BACKENDS) {
    if (backend === "env") {
      const env = { ...process.env };
      for (const [tenant, secrets] of values) {
        for (const [n, v] of secrets) env[`BENCH_${tenant.toUpperCase()}_${n.toUpperCase()}`] = v;
      }
      results.push(
        await measureBackend(
          "env",
          {
            runner: "{ type: env, prefix: BENCH_ }",
            bare: { type: "env", prefix: "BENCH_", names: SECRET_NAMES },
          },
          env,
        ),
      );
    } else if (backend === "vault") {
      const server = await startVault();
      try {
        results.push(
          await measureBackend(
            `vault ${LATENCY_MS} ms`,
            {
              runner: `{ type: vault, url: "${server.url}", token: "${server.rootToken}" }`,
              bare: {
                type: "vault",
                url: server.url,
                token: server.rootToken,
                names: SECRET_NAMES,
              },
            },
            process.env,
          ),
        );
      } finally {
        await server.close();
      }
    }
  }
} finally {
  if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

console.log(
  `fleet: ${TENANTS} tenants x ${VIEWS} parquet views x ${SECRET_NAMES.length} http secrets, max_concurrent_runs ${CONCURRENCY}, ${REPETITIONS} repetitions (medians; ratios are medians of per-repetition ratios)`,
);
console.table(results);
for (const r of results) {
  const env = r.backend === "env";
  const checks = [
    ...(env
      ? [
          ["CPU/catalog <= 1.25x bare", Number(r["CPU ratio"]) <= 1.25],
          ["catalogs/s >= 0.8x bare", Number(r["catalogs/s ratio"]) >= 0.8],
          [">= 20 catalogs/s", Number(r["duckcron catalogs/s"]) >= 20],
        ]
      : [["catalogs/s >= 0.75x bare", Number(r["catalogs/s ratio"]) >= 0.75]]),
    ["loop p99 <= 20 ms", Number(r["loop p99 ms"]) <= 20],
    ["loop max <= 100 ms", Number(r["loop max ms"]) <= 100],
  ];
  console.log(
    `  ${r.backend}: ${checks.map(([t, ok]) => `${t} ${ok ? "met" : "NOT met"}`).join("; ")}`,
  );
}
