import { request } from "node:http";
import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import {
  type HttpServerHandle,
  type HttpServerOptions,
  parseListen,
  type ReadyReport,
  startHttpServer,
} from "../../src/observe/http-server.js";

let server: HttpServerHandle | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function registryWithOneCounter(): Registry {
  const registry = new Registry();
  new Counter({ name: "duckcron_test_total", help: "A test counter.", registers: [registry] }).inc(
    7,
  );
  return registry;
}

async function start(overrides: Partial<HttpServerOptions> = {}): Promise<HttpServerHandle> {
  server = await startHttpServer({
    listen: "127.0.0.1:0",
    registry: registryWithOneCounter(),
    health: () => ({ ok: true }),
    ready: async () => ({ checks: { config: { ok: true } } }),
    status: () => ({ schedules: ["sales"] }),
    eventLoopDelay: () => 3,
    ...overrides,
  });
  return server;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(url: string, method = "GET"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("parseListen", () => {
  it("accepts host:port, [v6]:port and :port", () => {
    expect(parseListen("0.0.0.0:9464")).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(parseListen("[::1]:9464")).toEqual({ host: "::1", port: 9464 });
    expect(parseListen(":9464")).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(parseListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
  });

  it("rejects a listen string without a usable port, naming the setting", () => {
    expect(() => parseListen("9464")).toThrow(/runner\.http\.listen: "9464" is not host:port/);
    expect(() => parseListen("host:70000")).toThrow(/is not host:port/);
    expect(() => parseListen("::1:9464")).toThrow(/is not host:port/);
  });
});

describe("startHttpServer", () => {
  it("binds port 0 to a free port and reports its URL", async () => {
    const { url } = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
  });

  it("serves the registry at /metrics with its content type", async () => {
    const { url } = await start();
    const reply = await call(`${url}/metrics`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe(new Registry().contentType);
    expect(reply.body).toContain("duckcron_test_total 7");
  });

  it("answers HEAD with headers and no body", async () => {
    const { url } = await start();
    const reply = await call(`${url}/metrics`, "HEAD");
    expect(reply.status).toBe(200);
    expect(reply.body).toBe("");
  });

  it("says 404 for unknown paths and 405 for other methods", async () => {
    const { url } = await start();
    expect((await call(`${url}/nope`)).status).toBe(404);
    const post = await call(`${url}/metrics`, "POST");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
  });

  it("reports healthy while the event loop is responsive", async () => {
    const { url } = await start();
    const reply = await call(`${url}/healthz?verbose=1`);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({
      status: "ok",
      eventLoop: { ok: true, maxDelayMs: 3 },
    });
  });

  it("reports 503 when the event loop stalled beyond the threshold", async () => {
    const { url } = await start({ eventLoopDelay: () => 12_000, maxEventLoopDelayMs: 5000 });
    const reply = await call(`${url}/healthz`);
    expect(reply.status).toBe(503);
    expect(JSON.parse(reply.body)).toMatchObject({ status: "unhealthy", eventLoop: { ok: false } });
  });

  it("reports 503 when the injected health check fails or throws", async () => {
    const { url } = await start({
      health: () => ({ ok: false, details: { scheduler: "stopped" } }),
    });
    const reply = await call(`${url}/healthz`);
    expect(reply.status).toBe(503);
    expect(JSON.parse(reply.body)).toMatchObject({ scheduler: "stopped" });
    await server?.close();
    const { url: url2 } = await start({
      health: async () => {
        throw new Error("boom");
      },
    });
    expect((await call(`${url2}/healthz`)).status).toBe(503);
  });

  it("measures the real event loop by default", async () => {
    const { url } = await start({ eventLoopDelay: undefined });
    const reply = await call(`${url}/healthz`);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).eventLoop.thresholdMs).toBe(5000);
  });

  it("is ready only when every injected check passes, listing them all", async () => {
    let report: ReadyReport = {
      checks: { config: { ok: true }, secrets: { ok: true }, catalogs_dir: { ok: true } },
    };
    const { url } = await start({ ready: async () => report });
    const ok = await call(`${url}/readyz`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ready: true, checks: report.checks });

    report = {
      checks: {
        config: { ok: true },
        secrets: { ok: false, message: "vault unreachable" },
        catalogs_dir: { ok: true },
      },
    };
    const notReady = await call(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toMatchObject({
      ready: false,
      checks: { secrets: { ok: false, message: "vault unreachable" } },
    });
  });

  it("serves /status as JSON, scrubbed as a last defence", async () => {
    const { url } = await start({
      status: () => ({ note: "token=S3CR3T-VALUE" }),
      scrub: (text) => text.replaceAll("S3CR3T-VALUE", "***"),
    });
    const reply = await call(`${url}/status`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(reply.body)).toEqual({ note: "token=***" });
  });

  it("listens on IPv6 loopback given [::1]:0", async () => {
    let handle: HttpServerHandle;
    try {
      handle = await start({ listen: "[::1]:0" });
    } catch (error) {
      // Containers without IPv6 cannot bind ::1; the message must still name the setting.
      expect(String(error)).toMatch(/runner\.http\.listen: cannot listen on \[::1\]:0/);
      return;
    }
    expect(handle.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await call(`${handle.url}/metrics`)).status).toBe(200);
  });

  it("closes even with a keep-alive connection open", async () => {
    const { url } = await start();
    await call(`${url}/metrics`);
    await server?.close();
    server = undefined;
    await expect(call(`${url}/metrics`)).rejects.toThrow();
  });
});
