import { type ChildProcessByStdio, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVaultTestServer, type VaultTestServer } from "../servers/vault-test-server.js";
import { Logs } from "./daemon-logs.js";
import { CLI, copyExample } from "./run-cli.js";

/**
 * The daemon when Vault goes down (Vault test server answering 503): without
 * max_stale the run fails as retryable and the catalog keeps its last good build;
 * with max_stale the run succeeds from the last values and says it is degraded.
 * Either way the daemon keeps serving.
 */
const SECRETS = { api_token: "outage-api-token-31d7", proxy_password: "outage-proxy-pw-88e2" };

interface Daemon {
  dir: string;
  process: ChildProcessByStdio<null, Readable, Readable>;
  logs: Logs;
  url: string;
}

describe("the daemon during a secrets backend outage", { timeout: 90_000 }, () => {
  let vault: VaultTestServer;
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    vault = await startVaultTestServer();
    vault.seed("duckcron/acme", SECRETS);
  });
  afterAll(async () => {
    for (const d of daemons) {
      if (d.process.exitCode === null) d.process.kill("SIGKILL");
      rmSync(d.dir, { recursive: true, force: true });
    }
    await vault.close();
  });

  async function startDaemon(maxStale: string): Promise<Daemon> {
    const dir = copyExample();
    const runner = readFileSync(join(dir, "runner.yaml"), "utf8")
      .replace(
        /secrets:\n(?: {4}.*\n)+/,
        `secrets:\n    type: vault\n    url: ${vault.url}\n    prefix: duckcron/\n    cache_ttl: 0\n    max_stale: ${maxStale}\n`,
      )
      .replace('cron: "0 */15 * * * *"', 'cron: "* * * * * *"')
      .replace("tenants: [acme, globex]", "tenants: [acme]")
      .replace("retries: { attempts: 3, backoff: 30s }", "retries: { attempts: 0 }");
    writeFileSync(join(dir, "runner.yaml"), runner);
    const child = spawn(process.execPath, [CLI, "start", "--listen", "127.0.0.1:0"], {
      cwd: dir,
      env: { PATH: process.env.PATH, VAULT_TOKEN: vault.rootToken },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const logs = new Logs(child.stdout);
    const url = (await logs.next((l) => l.msg === "duckcron started")).url as string;
    const daemon = { dir, process: child, logs, url };
    daemons.push(daemon);
    return daemon;
  }

  it("without max_stale: the run fails as retryable, the catalog keeps its last build", async () => {
    const d = await startDaemon("0s");
    await d.logs.next((l) => l.msg === "run succeeded", 0);
    const catalog = join(d.dir, "catalogs/acme/sales.duckdb");
    vault.faults.inject({ kind: "unavailable" });
    try {
      const mark = d.logs.lines.length;
      const failed = await d.logs.next((l) => l.msg === "run failure", mark);
      expect(failed.code).toBe("SECRET_BACKEND_UNAVAILABLE");
      expect(failed.retryable).toBe(true);
      // Nothing is built while the backend is down: the last good catalog is what readers see.
      const before = readFileSync(catalog);
      await d.logs.next((l) => l.msg === "run failure", d.logs.lines.length);
      expect(readFileSync(catalog).equals(before)).toBe(true);
      expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${d.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toContain("secrets_backend");
    } finally {
      vault.faults.clear();
    }
    await d.logs.next((l) => l.msg === "run succeeded", d.logs.lines.length);
    d.process.kill("SIGTERM");
  });

  it("with max_stale: the run succeeds from the last values and is marked degraded", async () => {
    const d = await startDaemon("1h");
    await d.logs.next((l) => l.msg === "run succeeded", 0);
    vault.faults.inject({ kind: "unavailable" });
    try {
      const degraded = await d.logs.next(
        (l) => l.msg === "run succeeded (degraded: stale secrets)",
        d.logs.lines.length,
      );
      expect(degraded.degraded).toBe(true);
      const metrics = await (await fetch(`${d.url}/metrics`)).text();
      expect(metrics).toMatch(/^duckcron_runs_degraded_total\{schedule="sales"\} [1-9]/m);
    } finally {
      vault.faults.clear();
    }
    for (const value of [...Object.values(SECRETS), vault.rootToken]) {
      expect(d.logs.raw.join("\n")).not.toContain(value);
    }
    d.process.kill("SIGTERM");
  });
});
