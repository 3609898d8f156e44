// bench:cluster — cluster mode (PostgreSQL coordination) with 1, 2 and 3 `duckcron start`
// replicas on this machine sharing one catalog directory per configuration: N tenants x
// 20 views (plain SQL views, so the builds are short and the claim/lease/publish state
// machine is what is loaded), one fire of one schedule building every tenant.
// Replicas start on a schedule that does not fire; once all serve, runner.yaml gets a
// cron for a second just ahead and SIGHUP reloads it, so every replica computes the same
// fire time and the measurement holds no start-up.
// Prints per configuration: fires/s (the fire's tenants over first claim to last finish,
// from the runs table), its ratio to 1 replica in the same run, how the fires spread over
// the replicas, claim latency p50/p99 (histogram_quantile over the replicas' summed
// duckcron_cluster_claim_duration_seconds buckets, as Prometheus would report it: linear
// within a bucket, so coarse), and database round trips per fire counted on the server: the
// throwaway PostgreSQL logs every statement (log_statement=all), and the lines logged
// between "all replicas serve" and "every fire finished" are classified. `fire path`
// counts claims (won and lost), renewals, finishes and the publish transaction (BEGIN +
// fenced UPDATE in one round trip, then COMMIT); `all` adds each replica's maintenance
// loop (heartbeat, expired claims, last results). Target: <= 3 per fire for
// the replica that runs it (claim, publish, commit; a renewal only for a build longer than
// lease/3); each further replica adds its lost claim per fire. Asserts nothing.
// Runs through scripts/test-pg.sh (npm run bench:cluster), which starts the database.
// Env: BENCH_TENANTS (1000; 100-200 is what fits a busy 2-core machine in a few minutes),
// BENCH_REPLICAS (1,2,3), BENCH_CONCURRENCY (max_concurrent_runs per replica, 4),
// BENCH_LEASE (10s), BENCH_KEEP.
import { spawn } from "node:child_process";
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const root = fileURLToPath(new URL("..", import.meta.url));
const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000);
const REPLICAS = (process.env.BENCH_REPLICAS ?? "1,2,3").split(",").map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const LEASE = process.env.BENCH_LEASE ?? "10s";
const VIEWS = 20;
const FIRE_AHEAD_S = 3;
const DEADLINE_MS = 15 * 60_000;

const url = process.env.DUCKCRON_TEST_PG;
if (!url || url === "off") {
  console.error("bench:cluster needs PostgreSQL: run it with `npm run bench:cluster`");
  process.exit(2);
}
// The statement log of the server scripts/test-pg.sh started; without it (a database
// of your own in DUCKCRON_TEST_PG) round trips are not counted.
const serverLog = process.env.DUCKCRON_TEST_PG_DATA
  ? join(dirname(process.env.DUCKCRON_TEST_PG_DATA), "server.log")
  : undefined;

const dir = mkdtempSync(join(tmpdir(), "duckcron-bench-cluster-"));
const tenants = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(5, "0")}`);
const db = new pg.Client({ connectionString: url });
await db.connect();
// The bench's own polling stays out of the statement log it counts.
await db.query("SET log_statement = 'none'");
if (serverLog) {
  await db.query("ALTER SYSTEM SET log_statement = 'all'");
  await db.query("SELECT pg_reload_conf()");
}

const runnerYaml = (schema, cron) => `version: 1
runner:
  max_concurrent_runs: ${CONCURRENCY}
  shutdown_grace: 2s
  cluster:
    type: postgres
    url: \${env:BENCH_DATABASE_URL}
    schema: ${schema}
    lease: ${LEASE}
    replica_id: \${env:BENCH_REPLICA}
  schedules:
    - name: refresh
      config: job.yaml
      cron: "${cron}"
      tenants: [${tenants.join(", ")}]
`;
const jobYaml = [
  "version: 1",
  "duckdb:",
  "  database: catalogs/${tenant}.duckdb",
  "views:",
  ...Array.from({ length: VIEWS }, (_, v) => `  - { name: v${v}, sql: "SELECT ${v} AS x" }`),
  "",
].join("\n");

function startReplica(cwd, id) {
  const child = spawn(
    process.execPath,
    [join(root, "dist/cli/main.js"), "start", "--listen", "127.0.0.1:0"],
    {
      cwd,
      env: { PATH: process.env.PATH, BENCH_REPLICA: id, BENCH_DATABASE_URL: url },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d) => {
    stderr += d;
  });
  const ready = new Promise((resolve) => {
    let buffered = "";
    const onData = (d) => {
      buffered += d;
      const lines = buffered.split("\n");
      buffered = lines.pop();
      const started = lines.find((l) => l.includes('"msg":"duckcron started"'));
      if (started) {
        child.stdout.off("data", onData);
        child.stdout.resume();
        resolve(JSON.parse(started).url);
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    // The replica's log, for BENCH_KEEP.
    child.stdout.pipe(createWriteStream(join(cwd, `${id}.log`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let stopping = false;
  const died = exited.then((code) => {
    throw new Error(
      `replica ${id} exited ${code}${stopping ? "" : " during the run"}: ${stderr.slice(-4000)}`,
    );
  });
  died.catch(() => {});
  return {
    id,
    // The "started" line is logged just before the SIGHUP handler is installed, and
    // SIGHUP without one ends the process; any answer over HTTP comes after it.
    ready: Promise.race([ready.then(async (at) => (await fetch(`${at}/healthz`)).text()), died]),
    died,
    /** This replica's claim duration histogram: cumulative count per upper bound. */
    claimBuckets: async () => {
      const text = await (await fetch(`${await ready}/metrics`)).text();
      return [
        ...text.matchAll(/^duckcron_cluster_claim_duration_seconds_bucket\{le="([^"]+)"\} (\d+)/gm),
      ].map((m) => ({ le: Number(m[1]), count: Number(m[2]) }));
    },
    stop: async () => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
    reload: () => child.kill("SIGHUP"),
  };
}

/** A cron (with seconds, UTC: the runner's default time zone) for one moment ahead. */
function cronAt(date) {
  return `${date.getUTCSeconds()} ${date.getUTCMinutes()} ${date.getUTCHours()} ${date.getUTCDate()} ${date.getUTCMonth() + 1} *`;
}

const logSize = () => (serverLog ? statSync(serverLog).size : 0);

/** Statements the server logged between two offsets, by kind. */
function countStatements(from, to) {
  const counts = { claim: 0, renew: 0, finish: 0, publish: 0, commit: 0, other: 0 };
  if (!serverLog) return undefined;
  const text = readFileSync(serverLog).subarray(from, to).toString("utf8");
  for (const m of text.matchAll(/LOG: {2}(?:statement|execute [^:]*): (.*)/g)) {
    const sql = m[1].trim();
    if (/^INSERT INTO \S+\.runs AS r/.test(sql)) counts.claim++;
    else if (/^UPDATE \S+\.runs SET lease_until = now\(\) \+/.test(sql)) counts.renew++;
    else if (/^UPDATE \S+\.runs SET state = \$5/.test(sql)) counts.finish++;
    else if (/^BEGIN;/.test(sql)) counts.publish++;
    else if (/^(COMMIT|ROLLBACK)$/.test(sql)) counts.commit++;
    else counts.other++;
  }
  return counts;
}

/** Prometheus' histogram_quantile over cumulative buckets (seconds), in ms. */
function histogramQuantile(q, buckets) {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower * 1000;
      return (lower + ((le - lower) * (rank - below)) / Math.max(1, count - below)) * 1000;
    }
    lower = le;
    below = count;
  }
  return Number.NaN;
}

async function measure(replicaCount) {
  const schema = `bench_${replicaCount}r`;
  const cwd = join(dir, schema);
  mkdirSync(join(cwd, "catalogs"), { recursive: true });
  writeFileSync(join(cwd, "job.yaml"), jobYaml);
  // Midnight of 1 January: the replicas start with nothing to fire.
  writeFileSync(join(cwd, "runner.yaml"), runnerYaml(schema, "0 0 0 1 1 *"));
  const replicas = Array.from({ length: replicaCount }, (_, i) => startReplica(cwd, `r${i}`));
  let buckets = [];
  let from = 0;
  let to = 0;
  let finished = 0;
  try {
    await Promise.all(replicas.map((r) => r.ready));
    const fireAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + FIRE_AHEAD_S * 1000);
    writeFileSync(join(cwd, "runner.yaml"), runnerYaml(schema, cronAt(fireAt)));
    from = logSize();
    for (const r of replicas) r.reload();
    const deadline = Date.now() + DEADLINE_MS;
    while (Date.now() < deadline) {
      await Promise.race([
        new Promise((resolve) => setTimeout(resolve, 250)),
        ...replicas.map((r) => r.died),
      ]);
      const { rows } = await db.query(
        `SELECT count(*)::int AS n FROM "${schema}".runs WHERE state <> 'running'`,
      );
      finished = rows[0].n;
      if (finished >= TENANTS) break;
    }
    to = logSize();
    const scraped = await Promise.all(replicas.map((r) => r.claimBuckets()));
    buckets = scraped[0].map(({ le }, i) => ({
      le,
      count: scraped.reduce((sum, b) => sum + b[i].count, 0),
    }));
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
  }
  const { rows } = await db.query(
    `SELECT replica, state, count(*)::int AS n FROM "${schema}".runs GROUP BY replica, state ORDER BY replica`,
  );
  const { rows: span } = await db.query(
    `SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 AS seconds,
            count(*) FILTER (WHERE state = 'success')::int AS ok
       FROM "${schema}".runs`,
  );
  const fires = TENANTS;
  const statements = countStatements(from, to);
  const firePath = statements
    ? statements.claim +
      statements.renew +
      statements.finish +
      statements.publish +
      statements.commit
    : Number.NaN;
  const all = statements ? firePath + statements.other : Number.NaN;
  return {
    replicas: replicaCount,
    "fires finished": `${finished}/${fires}`,
    succeeded: span[0].ok,
    "fires/s": fires / span[0].seconds,
    spread: rows
      .filter((r) => r.state === "success")
      .map((r) => `${r.replica}:${r.n}`)
      .join(" "),
    "claim p50 ms": histogramQuantile(0.5, buckets).toFixed(1),
    "claim p99 ms": histogramQuantile(0.99, buckets).toFixed(1),
    claims: buckets.at(-1)?.count ?? 0,
    "round trips/fire (fire path)": (firePath / fires).toFixed(2),
    "round trips/fire (all)": (all / fires).toFixed(2),
    statements,
  };
}

const results = [];
try {
  for (const n of REPLICAS) results.push(await measure(n));
} finally {
  if (serverLog) {
    await db.query("ALTER SYSTEM RESET log_statement");
    await db.query("SELECT pg_reload_conf()");
  }
  await db.end();
  if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

const base = results.find((r) => r.replicas === 1)?.["fires/s"];
console.log(
  `cluster: ${TENANTS} tenants x ${VIEWS} views, one fire, max_concurrent_runs ${CONCURRENCY} per replica, lease ${LEASE}`,
);
console.table(
  results.map(({ statements, ...r }) => ({
    ...r,
    "fires/s": r["fires/s"].toFixed(1),
    "vs 1 replica": base ? (r["fires/s"] / base).toFixed(2) : "-",
  })),
);
if (!serverLog) console.log("round trips not counted: no statement log of a test-pg.sh server");
for (const r of results) {
  if (!r.statements) continue;
  const s = r.statements;
  // Every replica tries every fire; all but the winner get no row back.
  const lost = s.claim - TENANTS;
  const won = s.claim - lost + s.renew + s.finish + s.publish + s.commit;
  console.log(
    `  ${r.replicas} replica(s): statements per fire: claim ${(s.claim / TENANTS).toFixed(2)}, renew ${(s.renew / TENANTS).toFixed(2)}, finish ${(s.finish / TENANTS).toFixed(2)}, publish ${(s.publish / TENANTS).toFixed(2)}, commit/rollback ${(s.commit / TENANTS).toFixed(2)}, maintenance ${(s.other / TENANTS).toFixed(2)}; the replica that ran it ${(won / TENANTS).toFixed(2)} (target <= 3: ${won / TENANTS <= 3 ? "met" : "NOT met"}), plus ${(lost / TENANTS).toFixed(2)} lost claims of the others`,
  );
}
