import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/observe/events.js";
import { createMetrics, type DuckcronMetrics } from "../../src/observe/metrics.js";

const HAS_PROMTOOL = spawnSync("promtool", ["--version"]).error === undefined;
const NOW = new Date("2026-03-01T12:00:00Z");
let metrics: DuckcronMetrics | undefined;

function setup(opts: Partial<Parameters<typeof createMetrics>[1]> = {}) {
  const bus = new EventBus();
  metrics = createMetrics(bus, {
    version: "1.2.3",
    collectDefault: false,
    schedules: [{ name: "sales", tenants: ["acme", "globex"] }],
    now: () => NOW,
    ...opts,
  });
  return { bus, metrics };
}

afterEach(() => {
  metrics?.dispose();
  metrics = undefined;
});

async function value(m: DuckcronMetrics, name: string, labels: Record<string, string> = {}) {
  const metric = m.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  const hit = data.values.find((v) =>
    Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return hit?.value;
}

function finished(status: "success" | "failure" | "timeout", extra: { degraded?: boolean } = {}) {
  return {
    runId: "r1",
    schedule: "sales",
    tenant: "acme",
    attempt: 1,
    status,
    durationMs: 2500,
    degraded: extra.degraded ?? false,
  };
}

describe("createMetrics", () => {
  it("uses its own registry, not prom-client's global one", async () => {
    const { metrics: m } = setup();
    const { register } = await import("prom-client");
    expect(m.registry).not.toBe(register);
    expect(register.getSingleMetric("duckcron_runs_total")).toBeUndefined();
  });

  it("reports build info and zero-valued run series for configured schedules", async () => {
    const { metrics: m } = setup();
    expect(await value(m, "duckcron_build_info", { version: "1.2.3" })).toBe(1);
    for (const status of ["success", "failure", "timeout", "skipped"]) {
      expect(await value(m, "duckcron_runs_total", { schedule: "sales", status })).toBe(0);
    }
  });

  it("tracks a run from start to finish", async () => {
    const { bus, metrics: m } = setup();
    bus.emit("run:started", { runId: "r1", schedule: "sales", tenant: "acme", attempt: 1 });
    expect(await value(m, "duckcron_runs_running", { schedule: "sales" })).toBe(1);

    bus.emit("run:finished", finished("success", { degraded: true }));
    expect(await value(m, "duckcron_runs_running", { schedule: "sales" })).toBe(0);
    expect(await value(m, "duckcron_runs_total", { schedule: "sales", status: "success" })).toBe(1);
    expect(await value(m, "duckcron_runs_degraded_total", { schedule: "sales" })).toBe(1);
    expect(
      await value(m, "duckcron_last_success_timestamp_seconds", {
        schedule: "sales",
        tenant: "acme",
      }),
    ).toBe(NOW.getTime() / 1000);
    const histogram = await m.registry.getSingleMetricAsString("duckcron_run_duration_seconds");
    expect(histogram).toContain('duckcron_run_duration_seconds_sum{schedule="sales"} 2.5');
    expect(histogram).toContain('duckcron_run_duration_seconds_bucket{le="5",schedule="sales"} 1');
  });

  it("counts failures, timeouts, skips and retries without touching last success", async () => {
    const { bus, metrics: m } = setup();
    bus.emit("run:finished", finished("failure"));
    bus.emit("run:finished", finished("timeout"));
    bus.emit("run:skipped", { schedule: "sales", tenant: "acme", reason: "overlap" });
    bus.emit("run:retry", {
      runId: "r1",
      schedule: "sales",
      tenant: "acme",
      attempt: 2,
      delayMs: 30_000,
    });
    expect(await value(m, "duckcron_runs_total", { status: "failure" })).toBe(1);
    expect(await value(m, "duckcron_runs_total", { status: "timeout" })).toBe(1);
    expect(await value(m, "duckcron_runs_total", { status: "skipped" })).toBe(1);
    expect(await value(m, "duckcron_run_retries_total", { schedule: "sales" })).toBe(1);
    expect(await value(m, "duckcron_last_success_timestamp_seconds")).toBeUndefined();
  });

  it("counts secret requests, their latency and cache hits", async () => {
    const { bus, metrics: m } = setup();
    bus.emit("secret:request", { backend: "vault", tenant: "acme", status: "ok", durationMs: 40 });
    bus.emit("secret:request", {
      backend: "vault",
      tenant: "acme",
      status: "denied",
      durationMs: 10,
    });
    const resolved = {
      tenant: "acme",
      reference: "secret:db",
      backend: "vault",
      outcome: "ok",
    } as const;
    bus.emit("secret:resolved", { ...resolved, cacheHit: true });
    bus.emit("secret:resolved", { ...resolved, cacheHit: false });
    expect(
      await value(m, "duckcron_secret_requests_total", { backend: "vault", status: "ok" }),
    ).toBe(1);
    expect(await value(m, "duckcron_secret_requests_total", { status: "denied" })).toBe(1);
    expect(await value(m, "duckcron_secret_cache_hits_total")).toBe(1);
    const latency = await m.registry.getSingleMetricAsString(
      "duckcron_secret_request_duration_seconds",
    );
    expect(latency).toContain('duckcron_secret_request_duration_seconds_count{backend="vault"} 2');
    expect(latency).toContain(
      'duckcron_secret_request_duration_seconds_bucket{le="0.01",backend="vault"} 1',
    );
  });

  it("records catalog views only for tenants the config allows", async () => {
    const { bus, metrics: m } = setup();
    const built = {
      schedule: "sales",
      path: "catalogs/acme/sales.duckdb",
      fingerprint: "abc",
      skipped: false,
      viewCount: 3,
      views: { added: ["a", "b", "c"], changed: [], dropped: [] },
      durationMs: 5,
    };
    bus.emit("catalog:built", { ...built, tenant: "acme" });
    bus.emit("catalog:built", { ...built, tenant: "intruder" });
    expect(await value(m, "duckcron_catalog_views", { schedule: "sales", tenant: "acme" })).toBe(3);
    expect(await value(m, "duckcron_catalog_views", { tenant: "intruder" })).toBeUndefined();
  });

  it("counts reloads by outcome but not the first load", async () => {
    const { bus, metrics: m } = setup();
    bus.emit("config:loaded", { path: "runner.yaml", outcome: "loaded" });
    bus.emit("config:loaded", { path: "runner.yaml", outcome: "reloaded" });
    bus.emit("config:loaded", { path: "runner.yaml", outcome: "rejected", error: "bad" });
    expect(await value(m, "duckcron_config_reloads_total", { status: "success" })).toBe(1);
    expect(await value(m, "duckcron_config_reloads_total", { status: "failure" })).toBe(1);
  });

  it("sets and clears the next run, and forgets schedules removed on reload", async () => {
    const { bus, metrics: m } = setup();
    m.setNextRun("sales", new Date("2026-03-01T12:15:00Z"));
    expect(await value(m, "duckcron_next_run_timestamp_seconds", { schedule: "sales" })).toBe(
      Date.parse("2026-03-01T12:15:00Z") / 1000,
    );
    m.setNextRun("sales", null);
    expect(
      await value(m, "duckcron_next_run_timestamp_seconds", { schedule: "sales" }),
    ).toBeUndefined();

    bus.emit("run:finished", finished("success"));
    m.setSchedules([{ name: "ops", tenants: ["acme"] }]);
    expect(
      await value(m, "duckcron_last_success_timestamp_seconds", { schedule: "sales" }),
    ).toBeUndefined();
    expect(await value(m, "duckcron_runs_running", { schedule: "sales" })).toBeUndefined();
    expect(await value(m, "duckcron_runs_total", { schedule: "ops", status: "success" })).toBe(0);
  });

  it("stops listening after dispose", async () => {
    const { bus, metrics: m } = setup();
    m.dispose();
    bus.emit("run:started", { runId: "r1", schedule: "sales", tenant: "acme", attempt: 1 });
    expect(m.registry.getMetricsAsArray()).toHaveLength(0);
  });

  // CI installs Debian's `prometheus` package (it ships promtool); there a missing promtool fails.
  const lint = HAS_PROMTOOL || process.env.CI ? it : it.skip;
  const why = HAS_PROMTOOL ? "" : " (skipped: promtool not installed; apt-get install prometheus)";
  lint(
    `exposes a scrape that passes \`promtool check metrics\`, process metrics included${why}`,
    async () => {
      const { bus, metrics: m } = setup({ collectDefault: true });
      bus.emit("run:started", { runId: "r1", schedule: "sales", tenant: "acme", attempt: 1 });
      bus.emit("run:finished", finished("success"));
      bus.emit("secret:request", { backend: "env", tenant: "acme", status: "ok", durationMs: 1 });
      m.setNextRun("sales", new Date("2026-03-01T12:15:00Z"));
      const text = await m.registry.metrics();
      expect(text).toContain("process_cpu_user_seconds_total");

      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      if (check.error !== undefined)
        throw new Error(`promtool could not run: ${check.error.message}`);
      expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
      expect(check.status).toBe(0);
    },
  );
});
