import { readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, exampleEnv, runCli } from "./run-cli.js";

/** One-shot runs from cron or a Kubernetes CronJob hand their metrics on before exiting. */
describe("duckcron run exporting metrics", () => {
  let dir: string;
  let gateway: Server;
  let gatewayUrl: string;
  const pushes: { method: string; url: string; body: string }[] = [];
  const env = exampleEnv();

  beforeAll(async () => {
    dir = copyExample();
    // A stand-in Pushgateway: records what it is sent (PUT replaces a group).
    gateway = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      req.on("end", () => {
        pushes.push({ method: req.method ?? "", url: req.url ?? "", body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((done) => gateway.listen(0, "127.0.0.1", done));
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((done) => gateway.close(done));
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes a node_exporter textfile with the run counters and only duckcron metrics", async () => {
    const file = join(dir, "duckcron.prom");
    const result = await runCli(["run", "sales", "--metrics-file", file], { cwd: dir, env });
    expect(result.code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/^duckcron_runs_total\{schedule="sales",status="success"\} 2$/m);
    expect(text).toMatch(
      /^duckcron_last_success_timestamp_seconds\{schedule="sales",tenant="globex"\} \d/m,
    );
    expect(text).not.toMatch(/^process_/m);
  });

  it("pushes to a Pushgateway, grouped by schedule", async () => {
    const result = await runCli(["run", "sales", "--tenant", "acme", "--pushgateway", gatewayUrl], {
      cwd: dir,
      env,
    });
    expect(result.code).toBe(0);
    expect(pushes).toHaveLength(1);
    expect(pushes[0]?.method).toBe("PUT");
    expect(pushes[0]?.url).toBe("/metrics/job/duckcron/schedule/sales");
    expect(pushes[0]?.body).toMatch(
      /^duckcron_runs_total\{schedule="sales",status="success"\} 1$/m,
    );
  });

  it("exits 1 when the Pushgateway cannot be reached, after building", async () => {
    const result = await runCli(
      ["run", "sales", "--tenant", "acme", "--pushgateway", "http://127.0.0.1:9"],
      {
        cwd: dir,
        env,
      },
    );
    expect(result.stdout).toMatch(/^built sales\/acme /m);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("METRICS_EXPORT_FAILED");
  });
});
