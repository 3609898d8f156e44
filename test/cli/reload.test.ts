import { type ChildProcessByStdio, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Logs } from "./daemon-logs.js";
import { CLI, copyExample, exampleEnv } from "./run-cli.js";

/**
 * SIGHUP re-reads runner.yaml: a bad file is rejected with its located error and the
 * daemon keeps the config it had; a good one is swapped in.
 */
describe("duckcron start on SIGHUP", { timeout: 60_000 }, () => {
  let dir: string;
  let daemon: ChildProcessByStdio<null, Readable, Readable>;
  let logs: Logs;
  let url: string;
  let original: string;

  beforeAll(async () => {
    dir = copyExample();
    // Hourly: this test is about config, not builds.
    original = readFileSync(join(dir, "runner.yaml"), "utf8").replace(
      'cron: "0 */15 * * * *"',
      'cron: "0 0 * * * *"',
    );
    writeFileSync(join(dir, "runner.yaml"), original);
    daemon = spawn(process.execPath, [CLI, "start", "--listen", "127.0.0.1:0"], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...exampleEnv() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    logs = new Logs(daemon.stdout);
    url = (await logs.next((l) => l.msg === "duckcron started")).url as string;
  });

  afterAll(() => {
    if (daemon.exitCode === null) daemon.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  const status = async () =>
    (await (await fetch(`${url}/status`)).json()) as {
      schedules: { name: string; cron: string }[];
    };
  const metrics = async () => (await fetch(`${url}/metrics`)).text();

  it("rejects a bad config with the located error and keeps the old one", async () => {
    writeFileSync(
      join(dir, "runner.yaml"),
      original.replace('cron: "0 0 * * * *"', 'cron: "0 0 * *"'),
    );
    const mark = logs.lines.length;
    daemon.kill("SIGHUP");
    const rejected = await logs.next(
      (l) => l.msg === "config rejected; keeping the previous config",
      mark,
    );
    expect(rejected.error).toMatch(
      /runner\.yaml:\d+:\d+: runner\.schedules\[0\]\.cron: invalid cron expression/,
    );
    expect((await status()).schedules).toEqual([
      expect.objectContaining({ name: "sales", cron: "0 0 * * * *" }),
    ]);
    expect(await metrics()).toMatch(/^duckcron_config_reloads_total\{status="failure"\} 1$/m);
  });

  it("swaps in a good config without a restart", async () => {
    const twoSchedules = original.replace(
      "      overlap: skip\n",
      '      overlap: skip\n    - { name: sales_nightly, config: jobs/sales.yaml, cron: "0 2 * * *", tenants: [globex] }\n',
    );
    writeFileSync(join(dir, "runner.yaml"), twoSchedules);
    const mark = logs.lines.length;
    daemon.kill("SIGHUP");
    await logs.next((l) => l.msg === "config reloaded", mark);
    expect((await status()).schedules.map((s) => s.name)).toEqual(["sales", "sales_nightly"]);
    const text = await metrics();
    expect(text).toMatch(/^duckcron_config_reloads_total\{status="success"\} 1$/m);
    expect(text).toMatch(/^duckcron_next_run_timestamp_seconds\{schedule="sales_nightly"\} \d+/m);
  });

  it("rejects a config whose secrets backend cannot be set up, and keeps serving", async () => {
    // Valid YAML and schema, but Vault needs an address (url or VAULT_ADDR) to start.
    writeFileSync(
      join(dir, "runner.yaml"),
      original.replace(
        /secrets:\n(?: {4}.*\n)+/,
        "secrets:\n    type: vault\n    token: t0k3n-for-reload-test\n",
      ),
    );
    const mark = logs.lines.length;
    daemon.kill("SIGHUP");
    const rejected = await logs.next(
      (l) => l.msg === "config rejected; keeping the previous config",
      mark,
    );
    expect(rejected.error).toMatch(/VAULT_ADDR/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await metrics()).toMatch(/^duckcron_config_reloads_total\{status="failure"\} 2$/m);
  });

  it("still stops cleanly", async () => {
    const exited = new Promise<number | null>((done) => daemon.on("exit", (code) => done(code)));
    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
