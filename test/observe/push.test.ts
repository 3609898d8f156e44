import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/observe/events.js";
import { createMetrics, type DuckcronMetrics } from "../../src/observe/metrics.js";
import { pushToGateway, writeTextfile } from "../../src/observe/push.js";

let dir: string;
let metrics: DuckcronMetrics;
let gateway: Server | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "duckcron-push-"));
  const bus = new EventBus();
  metrics = createMetrics(bus, { version: "1.2.3", collectDefault: true });
  bus.emit("run:finished", {
    runId: "r1",
    schedule: "sales",
    tenant: "acme",
    attempt: 1,
    status: "success",
    durationMs: 900,
    degraded: false,
  });
});
afterEach(async () => {
  metrics.dispose();
  await new Promise<void>((resolve) => (gateway ? gateway.close(() => resolve()) : resolve()));
  gateway = undefined;
  await rm(dir, { recursive: true, force: true });
});

interface Received {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

/** A stand-in Pushgateway on 127.0.0.1 that records what it is sent. */
async function fakeGateway(status = 200): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  gateway = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      received.push({
        method: req.method ?? "",
        url: req.url ?? "",
        contentType: req.headers["content-type"],
        authorization: req.headers.authorization,
        body,
      });
      res.statusCode = status;
      res.end(status === 200 ? "" : "pushed metrics are invalid or inconsistent");
    });
  });
  await new Promise<void>((resolve) => gateway?.listen(0, "127.0.0.1", resolve));
  const { port } = gateway.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

describe("pushToGateway", () => {
  it("PUTs the duckcron metrics in exposition format under job and grouping labels", async () => {
    const { url, received } = await fakeGateway();
    await pushToGateway(metrics.registry, url, "duckcron", { schedule: "sales", tenant: "acme" });
    expect(received).toHaveLength(1);
    const [push] = received;
    expect(push?.method).toBe("PUT");
    expect(push?.url).toBe("/metrics/job/duckcron/schedule/sales/tenant/acme");
    expect(push?.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(push?.body).toContain("# TYPE duckcron_runs_total counter");
    expect(push?.body).toContain('duckcron_runs_total{schedule="sales",status="success"} 1');
    expect(push?.body).not.toContain("process_cpu");
  });

  it("encodes grouping values with a slash in the gateway's base64 form", async () => {
    const { url, received } = await fakeGateway();
    await pushToGateway(metrics.registry, `${url}/`, "duckcron", {
      catalog: "catalogs/acme",
      empty: "",
    });
    expect(received[0]?.url).toBe(
      `/metrics/job/duckcron/catalog@base64/${Buffer.from("catalogs/acme").toString("base64url")}/empty@base64/=`,
    );
  });

  it("turns a refusal into an error with a stable code and the gateway's reason", async () => {
    const { url } = await fakeGateway(400);
    await expect(pushToGateway(metrics.registry, url, "duckcron")).rejects.toMatchObject({
      code: "METRICS_EXPORT_FAILED",
      message: expect.stringMatching(/answered 400: pushed metrics are invalid/),
    });
  });

  it("sends credentials in the URL as basic auth and keeps them out of errors", async () => {
    const { url, received } = await fakeGateway(500);
    const withCreds = url.replace("http://", "http://user:hunter2pass@");
    const error = await pushToGateway(metrics.registry, withCreds, "duckcron").catch(
      (e: Error) => e,
    );
    expect(String(error)).toMatch(/answered 500/);
    expect(String(error)).not.toContain("hunter2pass");
    expect(received[0]?.authorization).toBe(
      `Basic ${Buffer.from("user:hunter2pass").toString("base64")}`,
    );
  });
});

describe("writeTextfile", () => {
  it("writes the duckcron metrics for the textfile collector, readable by others, no temp left", async () => {
    const path = join(dir, "duckcron.prom");
    await writeTextfile(metrics.registry, path);
    const text = await readFile(path, "utf8");
    expect(text).toContain('duckcron_build_info{version="1.2.3"} 1');
    expect(text).not.toContain("process_");
    expect(text.endsWith("\n")).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual(["duckcron.prom"]);
  });

  it("replaces the file by rename: a reader holding the old file sees it whole", async () => {
    const path = join(dir, "duckcron.prom");
    const old = '# an older, complete exposition\nduckcron_build_info{version="0.0.1"} 1\n';
    await writeFile(path, old);
    const before = await stat(path);
    const reader = await open(path, "r");
    try {
      await writeTextfile(metrics.registry, path);
      expect((await reader.readFile("utf8")).toString()).toBe(old);
      expect((await stat(path)).ino).not.toBe(before.ino);
      expect(await readFile(path, "utf8")).toContain('version="1.2.3"');
    } finally {
      await reader.close();
    }
  });

  it("leaves no temp file behind when the write fails", async () => {
    const path = join(dir, "taken.prom");
    await mkdir(path);
    await expect(writeTextfile(metrics.registry, path)).rejects.toMatchObject({
      code: "METRICS_EXPORT_FAILED",
    });
    expect(await readdir(dir)).toEqual(["taken.prom"]);
  });

  it("can include process metrics on request", async () => {
    const path = join(dir, "all.prom");
    await writeTextfile(metrics.registry, path, { include: () => true });
    expect(await readFile(path, "utf8")).toContain("process_cpu_user_seconds_total");
  });
});
