import { type ChildProcessByStdio, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { Logs } from "../cli/daemon-logs.js";
import { CLI } from "../cli/run-cli.js";
import { testPgUrl } from "./pg.js";

/**
 * Several real `duckcron start` processes sharing one catalog directory and one
 * PostgreSQL schema: the shape of a Deployment with `replicas: 3` on a ReadWriteMany
 * volume, on one machine.
 */

export interface ClusterSetup {
  schema: string;
  tenants: number;
  cron: string;
  lease: string;
  /** SQL of the catalog's one materialized table; ${env:DUCKCRON_TEST_REPLICA} names the builder. */
  tableSql?: string;
  retries?: number;
  maxConcurrentRuns?: number;
}

export type Process = ChildProcessByStdio<null, Readable, Readable>;

export interface Replica {
  id: string;
  process: Process;
  logs: Logs;
  url: string;
  stderr: () => string;
  /** Parsed audit records of this replica. */
  audit: () => Record<string, unknown>[];
  /** When the test saw the process exit (a kill included); undefined while it runs. */
  exitedAt: () => number | undefined;
  /** Resolves when its stdout is read to the end, so `logs` holds every line it wrote. */
  drained: Promise<void>;
}

export class ClusterDir {
  readonly dir = mkdtempSync(join(tmpdir(), "duckcron-cluster-"));
  readonly replicas: Replica[] = [];
  readonly tenantIds: string[];

  constructor(readonly setup: ClusterSetup) {
    this.tenantIds = Array.from({ length: setup.tenants }, (_, i) => `t${i}`);
    mkdirSync(join(this.dir, "jobs"));
    writeFileSync(
      join(this.dir, "runner.yaml"),
      `version: 1
runner:
  max_concurrent_runs: ${setup.maxConcurrentRuns ?? 4}
  shutdown_grace: 500ms
  audit: { path: "audit-\${env:DUCKCRON_TEST_REPLICA}.jsonl" }
  cluster:
    type: postgres
    url: \${env:DUCKCRON_TEST_DATABASE_URL}
    schema: ${setup.schema}
    lease: ${setup.lease}
    replica_id: \${env:DUCKCRON_TEST_REPLICA}
  schedules:
    - name: refresh
      config: jobs/job.yaml
      cron: "${setup.cron}"
      tenants: [${this.tenantIds.join(", ")}]
      retries: { attempts: ${setup.retries ?? 0}, backoff: 100ms }
`,
    );
    const view = setup.tableSql
      ? `  - name: built\n    sql: ${JSON.stringify(setup.tableSql)}\n    materialize: table\n`
      : `  - name: one\n    sql: SELECT 1 AS x\n`;
    writeFileSync(
      join(this.dir, "jobs/job.yaml"),
      `version: 1\nduckdb:\n  database: ../catalogs/\${tenant}.duckdb\nviews:\n${view}`,
    );
  }

  /** Starts replicas r<n>... at the same moment; resolves when all serve HTTP. */
  async start(count: number): Promise<Replica[]> {
    const first = this.replicas.length;
    const started = Array.from({ length: count }, (_, i) => this.#spawn(`r${first + i}`));
    return Promise.all(started);
  }

  async #spawn(id: string): Promise<Replica> {
    const process_ = spawn(process.execPath, [CLI, "start", "--listen", "127.0.0.1:0"], {
      cwd: this.dir,
      env: {
        PATH: process.env.PATH,
        DUCKCRON_TEST_REPLICA: id,
        DUCKCRON_TEST_DATABASE_URL: testPgUrl(),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    process_.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const logs = new Logs(process_.stdout);
    let exitedAt: number | undefined;
    process_.once("exit", () => {
      exitedAt = Date.now();
    });
    const drained = new Promise<void>((resolve) => process_.stdout.once("close", resolve));
    const exited = new Promise<never>((_, reject) =>
      process_.once("exit", (code) =>
        reject(new Error(`replica ${id} exited with ${code} before starting: ${stderr}`)),
      ),
    );
    const line = await Promise.race([logs.next((l) => l.msg === "duckcron started"), exited]);
    const replica: Replica = {
      id,
      process: process_,
      logs,
      url: line.url as string,
      stderr: () => stderr,
      audit: () => readAudit(join(this.dir, `audit-${id}.jsonl`)),
      exitedAt: () => exitedAt,
      drained,
    };
    this.replicas.push(replica);
    return replica;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (r) => {
        if (r.process.exitCode !== null || r.process.signalCode !== null) return;
        const exited = new Promise((resolve) => r.process.once("exit", resolve));
        r.process.kill("SIGCONT");
        r.process.kill("SIGTERM");
        const timer = setTimeout(() => r.process.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readAudit(path: string): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
