import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Registry } from "prom-client";
import { DuckcronError } from "../errors.js";
import { LISTEN_FORMS, type ListenAddress, parseListenAddress } from "../listen-address.js";

/** What the daemon says about itself beyond the event loop (optional details for humans). */
export interface HealthReport {
  ok: boolean;
  details?: Record<string, unknown>;
}

export interface CheckResult {
  ok: boolean;
  /** Why a check failed, for the operator; never a secret value. */
  message?: string;
}

/** Readiness is the conjunction of named checks (config loaded, backend reachable, ...). */
export interface ReadyReport {
  checks: Record<string, CheckResult>;
}

export interface HttpServerOptions {
  /** `host:port`, `[v6addr]:port` or `:port` (all interfaces); port 0 picks a free port. */
  listen: string;
  registry: Registry;
  health: () => Promise<HealthReport> | HealthReport;
  ready: () => Promise<ReadyReport>;
  status: () => unknown;
  /** /healthz fails when the event loop stalled longer than this since the last probe. Default 5000. */
  maxEventLoopDelayMs?: number;
  /**
   * Longest event-loop stall (ms) since the previous call. Default: measured with
   * perf_hooks.monitorEventLoopDelay; tests inject a fake.
   */
  eventLoopDelay?: () => number;
  /** Applied to every JSON body as a last defence (the daemon's scrubber). */
  scrub?: (text: string) => string;
}

export interface HttpServerHandle {
  /** Base URL with the port actually bound, e.g. `http://127.0.0.1:40123`. */
  url: string;
  close(): Promise<void>;
}

/** Parses `host:port`, `[::1]:port` and `:port`. */
export function parseListen(listen: string): ListenAddress {
  const address = parseListenAddress(listen);
  if (address === undefined) {
    throw new DuckcronError(
      "CONFIG_INVALID",
      `runner.http.listen: "${listen}" is not host:port (e.g. ${LISTEN_FORMS})`,
    );
  }
  return address;
}

/**
 * Serves /metrics, /healthz, /readyz and /status with node:http only. Answers 404
 * for other paths and 405 for methods other than GET and HEAD.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const { host, port } = parseListen(opts.listen);
  const maxDelayMs = opts.maxEventLoopDelayMs ?? 5000;
  const scrub = opts.scrub ?? ((text: string) => text);
  const monitor =
    opts.eventLoopDelay === undefined ? monitorEventLoopDelay({ resolution: 20 }) : undefined;
  monitor?.enable();
  const loopDelay =
    opts.eventLoopDelay ??
    (() => {
      // Max since the previous probe: a stall between probes is still seen by the next one.
      const ms = (monitor?.max ?? 0) / 1e6;
      monitor?.reset();
      return ms;
    });

  const routes: Record<string, (res: ServerResponse) => Promise<void>> = {
    "/metrics": async (res) => {
      const body = await opts.registry.metrics();
      send(res, 200, opts.registry.contentType, body);
    },
    "/healthz": async (res) => {
      const delayMs = loopDelay();
      const loopOk = delayMs <= maxDelayMs;
      const report = await opts.health();
      const ok = loopOk && report.ok;
      const body = {
        status: ok ? "ok" : "unhealthy",
        eventLoop: { ok: loopOk, maxDelayMs: Math.round(delayMs), thresholdMs: maxDelayMs },
        ...report.details,
      };
      sendJson(res, ok ? 200 : 503, body, scrub);
    },
    "/readyz": async (res) => {
      const { checks } = await opts.ready();
      const ready = Object.values(checks).every((c) => c.ok);
      sendJson(res, ready ? 200 : 503, { ready, checks }, scrub);
    },
    "/status": async (res) => {
      sendJson(res, 200, await opts.status(), scrub);
    },
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const route = routes[path];
    if (route === undefined)
      return sendJson(res, 404, { error: `no such endpoint: ${path}` }, scrub);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return sendJson(res, 405, { error: `method ${req.method} not allowed` }, scrub);
    }
    route(res).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      // A probe that throws is a failing probe, not a crashed daemon.
      const code = path === "/healthz" || path === "/readyz" ? 503 : 500;
      if (!res.headersSent) sendJson(res, code, { error: message }, scrub);
      else res.destroy();
    });
  });
  // Probes and scrapers hold keep-alive connections; do not let them delay shutdown.
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((error: unknown) => {
    monitor?.disable();
    throw new DuckcronError(
      "CONFIG_INVALID",
      `runner.http.listen: cannot listen on ${opts.listen}: ${(error as Error).message}`,
      { cause: error },
    );
  });

  const bound = server.address() as AddressInfo;
  const urlHost = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${urlHost}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        monitor?.disable();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.setHeader("Cache-Control", "no-store");
  // node:http drops the body of HEAD responses itself, keeping the headers.
  res.end(body);
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  scrub: (text: string) => string,
): void {
  send(
    res,
    status,
    "application/json; charset=utf-8",
    `${scrub(JSON.stringify(value) ?? "null")}\n`,
  );
}
