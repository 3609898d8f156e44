import { type ChildProcessByStdio, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Logs } from "./daemon-logs.js";
import { CLI, copyExample, exampleEnv } from "./run-cli.js";

/**
 * The real daemon process on a one-second schedule: it builds, serves /metrics whose
 * counters move, and on SIGTERM in the middle of a build stops firing, aborts the
 * build after the grace period, exits non-zero, and leaves the last catalog intact.
 */
type Daemon = ChildProcessByStdio<null, Readable, Readable>;

describe("duckcron start (the daemon process)", { timeout: 90_000 }, () => {
  let dir: string;
  let daemon: Daemon;
  let logs: Logs;
  let stderr = "";
  let url: string;
  const env = exampleEnv();

  beforeAll(async () => {
    dir = copyExample();
    const runner = readFileSync(join(dir, "runner.yaml"), "utf8")
      .replace('cron: "0 */15 * * * *"', 'cron: "* * * * * *"')
      .replace("tenants: [acme, globex]", "tenants: [acme]")
      .replace(
        "timezone: UTC",
        "timezone: UTC\n  shutdown_grace: 200ms\n  audit: { path: audit.jsonl, hmac_key: test-hmac-key-0123 }",
      );
    writeFileSync(join(dir, "runner.yaml"), runner);
    // A build that takes long enough to be caught in the middle by SIGTERM.
    const job = readFileSync(join(dir, "jobs/sales.yaml"), "utf8").concat(
      "  - name: slow\n    sql: SELECT range AS n, md5(range::VARCHAR) AS h FROM range(3000000)\n    materialize: table\n",
    );
    writeFileSync(join(dir, "jobs/sales.yaml"), job);

    daemon = spawn(process.execPath, [CLI, "start", "--listen", "127.0.0.1:0"], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    daemon.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    logs = new Logs(daemon.stdout);
    const started = await logs.next((l) => l.msg === "duckcron started");
    url = started.url as string;
  });

  afterAll(() => {
    if (daemon.exitCode === null) daemon.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const response = await fetch(`${url}${path}`);
    return { status: response.status, body: await response.text() };
  };
  const successes = (metrics: string) =>
    Number(
      /^duckcron_runs_total\{schedule="sales",status="success"\} (\d+)$/m.exec(metrics)?.[1] ??
        Number.NaN,
    );

  it("answers /healthz, /readyz and /status", async () => {
    expect((await get("/healthz")).status).toBe(200);
    const ready = await get("/readyz");
    expect(ready.status).toBe(200);
    const status = JSON.parse((await get("/status")).body) as {
      schedules: { name: string; nextRun: string }[];
    };
    expect(status.schedules.map((s) => s.name)).toEqual(["sales"]);
  });

  it("builds on schedule and the run counters move in /metrics", async () => {
    await logs.next((l) => l.msg === "run succeeded", 0);
    const first = successes((await get("/metrics")).body);
    expect(first).toBeGreaterThanOrEqual(1);
    const mark = logs.lines.length;
    await logs.next((l) => l.msg === "run succeeded", mark);
    const metrics = (await get("/metrics")).body;
    expect(successes(metrics)).toBeGreaterThan(first);
    expect(metrics).toMatch(
      /^duckcron_last_success_timestamp_seconds\{schedule="sales",tenant="acme"\} \d/m,
    );
    expect(metrics).toMatch(/^duckcron_catalog_views\{schedule="sales",tenant="acme"\} 6$/m);
    expect(metrics).toMatch(/^duckcron_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
  });

  it("on SIGTERM mid-build: aborts after the grace period, exits 1, and the catalog is intact", async () => {
    const mark = logs.lines.length;
    await logs.next((l) => l.msg === "run started", mark);
    const exited = new Promise<number | null>((done) => daemon.on("exit", (code) => done(code)));
    daemon.kill("SIGTERM");
    expect(await exited).toBe(1);
    const tail = logs.lines.slice(mark);
    expect(tail.some((l) => l.msg === "run failure" && l.code === "RUN_ABORTED")).toBe(true);
    expect(tail.at(-1)?.msg).toBe("stopped; some builds were aborted");

    // The catalog, its key and its secrets link are intact, and the link names the folder
    // of the build that published. The process may exit before the aborted build has
    // removed its own unpublished folder (the grace period is over: it is stopped as hard
    // as a kill); the next build removes such folders under the build lock, as the
    // kill -9 loop in test/catalog proves. No temp catalog file is left either way.
    const entries = readdirSync(join(dir, "catalogs", "acme")).sort();
    const folders = entries.filter((e) => /^\.sales\.duckdb\.secrets-[0-9a-f]{16}$/.test(e));
    expect(entries.filter((e) => !folders.includes(e))).toEqual([
      ".sales.duckdb.fingerprint-key",
      "sales.duckdb",
      "sales.duckdb.secrets",
    ]);
    expect(folders).toContain(readlinkSync(join(dir, "catalogs", "acme", "sales.duckdb.secrets")));
    const instance = await DuckDBInstance.create(join(dir, "catalogs/acme/sales.duckdb"), {
      access_mode: "READ_ONLY",
    });
    const connection = await instance.connect();
    const rows = await connection.runAndReadAll("SELECT count(*) FROM slow");
    expect(rows.getRows()[0]?.[0]).toBe(3000000n);
    connection.closeSync();
    instance.closeSync();
  });

  it("wrote a verifiable audit trail and logs without a secret value", async () => {
    const audit = readFileSync(join(dir, "audit.jsonl"), "utf8");
    const events = audit
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toContain("secret.resolved");
    expect(events).toContain("catalog.built");
    expect(events).toContain("run.finished");
    for (const value of Object.values(env)) {
      expect(audit).not.toContain(value);
      expect(logs.raw.join("\n")).not.toContain(value);
      expect(stderr).not.toContain(value);
    }
    const { spawnSync } = await import("node:child_process");
    const verify = spawnSync(process.execPath, [CLI, "audit", "verify", join(dir, "audit.jsonl")], {
      encoding: "utf8",
    });
    expect(verify.stdout).toMatch(/: ok, \d+ records, head [0-9a-f]{64}/);
    expect(verify.status).toBe(0);
  });
});
