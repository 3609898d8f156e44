import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { DuckcronEvents, EventBus } from "./events.js";

/** A schedule as the metrics see it: its name and the tenants config allows. */
export interface ScheduleInfo {
  name: string;
  tenants: readonly string[];
}

export interface MetricsOptions {
  /** Reported as `duckcron_build_info{version}`. */
  version: string;
  /**
   * The configured schedules. When given, `tenant` labels are only ever set for
   * configured (schedule, tenant) pairs, so label cardinality stays bounded by config
   * even if something emits an unexpected tenant. When absent (one-shot CLI runs),
   * every pair is accepted: the invocation itself bounds them.
   */
  schedules?: readonly ScheduleInfo[];
  /** Node.js process metrics (`process_*`, `nodejs_*`). Default true. */
  collectDefault?: boolean;
  /** Clock for `duckcron_last_success_timestamp_seconds`; injected by tests. */
  now?: () => Date;
}

export interface DuckcronMetrics {
  /** A registry of our own: never prom-client's global one. */
  readonly registry: Registry;
  /**
   * Replaces the configured schedules (startup, reload): pre-creates zero-valued
   * series for new schedules and removes per-schedule gauges of schedules that left
   * the config, so dashboards do not show ghosts.
   */
  setSchedules(schedules: readonly ScheduleInfo[]): void;
  /** When the scheduler will next fire `schedule`; null when it will not (paused, stopped). */
  setNextRun(schedule: string, at: Date | null): void;
  /** Unsubscribes from the bus and empties the registry. */
  dispose(): void;
}

const LINT_FAILING_DEFAULTS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

export const RUN_STATUSES = ["success", "failure", "timeout", "skipped"] as const;

/** Seconds to tens of minutes: builds range from a local parquet view to a slow lake. */
const RUN_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** Milliseconds to seconds: a local file read up to a slow, retried network call. */
const SECRET_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The daemon's Prometheus metrics, driven only by events on the bus. See
 * docs/metrics.md for every metric, its labels and meaning.
 */
export function createMetrics(events: EventBus, opts: MetricsOptions): DuckcronMetrics {
  const registry = new Registry();
  const now = opts.now ?? (() => new Date());
  if (opts.collectDefault ?? true) {
    collectDefaultMetrics({ register: registry });
    // Gauges named *_total break Prometheus naming (promtool rejects them); the same
    // numbers stay available, split by type, as nodejs_active_{handles,requests,resources}.
    for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  }

  const registers = [registry];
  const runsTotal = new Counter({
    name: "duckcron_runs_total",
    help: "Runs by outcome; skipped counts fires that did not start a run (overlap, shutdown).",
    labelNames: ["schedule", "status"] as const,
    registers,
  });
  const runDuration = new Histogram({
    name: "duckcron_run_duration_seconds",
    help: "Wall time of finished runs (one attempt of one tenant), any outcome.",
    labelNames: ["schedule"] as const,
    buckets: RUN_DURATION_BUCKETS,
    registers,
  });
  const runsRunning = new Gauge({
    name: "duckcron_runs_running",
    help: "Runs in progress.",
    labelNames: ["schedule"] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: "duckcron_last_success_timestamp_seconds",
    help: "Unix time of the last successful run of a schedule for a tenant.",
    labelNames: ["schedule", "tenant"] as const,
    registers,
  });
  const nextRun = new Gauge({
    name: "duckcron_next_run_timestamp_seconds",
    help: "Unix time the scheduler will next fire a schedule.",
    labelNames: ["schedule"] as const,
    registers,
  });
  const retries = new Counter({
    name: "duckcron_run_retries_total",
    help: "Retries scheduled after a failed attempt.",
    labelNames: ["schedule"] as const,
    registers,
  });
  const degraded = new Counter({
    name: "duckcron_runs_degraded_total",
    help: "Runs that finished using stale cached secrets or with parts skipped.",
    labelNames: ["schedule"] as const,
    registers,
  });
  const secretRequests = new Counter({
    name: "duckcron_secret_requests_total",
    help: "Requests to the secrets backend by outcome (ok, not_found, denied, error).",
    labelNames: ["backend", "status"] as const,
    registers,
  });
  const secretDuration = new Histogram({
    name: "duckcron_secret_request_duration_seconds",
    help: "Latency of requests to the secrets backend.",
    labelNames: ["backend"] as const,
    buckets: SECRET_DURATION_BUCKETS,
    registers,
  });
  const cacheHits = new Counter({
    name: "duckcron_secret_cache_hits_total",
    help: "Secret references served from the resolver's cache.",
    registers,
  });
  const catalogViews = new Gauge({
    name: "duckcron_catalog_views",
    help: "Views in a tenant's catalog after its last build.",
    labelNames: ["schedule", "tenant"] as const,
    registers,
  });
  const configReloads = new Counter({
    name: "duckcron_config_reloads_total",
    help: "Configuration reloads; failure means the new config was rejected and the last good one kept.",
    labelNames: ["status"] as const,
    registers,
  });
  const clusterClaims = new Counter({
    name: "duckcron_cluster_claims_total",
    help: "Cluster mode: claims of fires by this replica, by outcome",
    labelNames: ["outcome"] as const,
    registers,
  });
  const clusterClaimDuration = new Histogram({
    name: "duckcron_cluster_claim_duration_seconds",
    help: "Cluster mode: time of one claim statement",
    buckets: SECRET_DURATION_BUCKETS,
    registers,
  });
  const clusterTakeovers = new Counter({
    name: "duckcron_cluster_takeovers_total",
    help: "Cluster mode: fires this replica took over after another replica's lease expired",
    registers,
  });
  const clusterLeaseLosses = new Counter({
    name: "duckcron_cluster_lease_losses_total",
    help: "Cluster mode: runs aborted here because their lease was lost",
    registers,
  });
  const clusterDatabaseErrors = new Counter({
    name: "duckcron_cluster_database_errors_total",
    help: "Cluster mode: failed queries to the cluster database",
    registers,
  });
  const clusterReplicas = new Gauge({
    name: "duckcron_cluster_replicas",
    help: "Cluster mode: replicas with a recent heartbeat, this one included",
    registers,
  });
  const buildInfo = new Gauge({
    name: "duckcron_build_info",
    help: "Always 1; the version label says which duckcron is running.",
    labelNames: ["version"] as const,
    registers,
  });
  buildInfo.set({ version: opts.version }, 1);

  let allowed: Map<string, Set<string>> | undefined;
  const tenantAllowed = (schedule: string, tenant: string): boolean =>
    allowed === undefined || allowed.get(schedule)?.has(tenant) === true;

  const setSchedules = (schedules: readonly ScheduleInfo[]): void => {
    const next = new Map(schedules.map((s) => [s.name, new Set(s.tenants)]));
    if (allowed !== undefined) {
      for (const [name, tenants] of allowed) {
        const kept = next.get(name);
        if (kept === undefined) {
          runsRunning.remove({ schedule: name });
          nextRun.remove({ schedule: name });
        }
        for (const tenant of tenants) {
          if (kept?.has(tenant) === true) continue;
          lastSuccess.remove({ schedule: name, tenant });
          catalogViews.remove({ schedule: name, tenant });
        }
      }
    }
    allowed = next;
    // Zero-valued series from the start, so rate() and absent() work before the first fire.
    for (const name of next.keys()) {
      for (const status of RUN_STATUSES) runsTotal.inc({ schedule: name, status }, 0);
      runsRunning.inc({ schedule: name }, 0);
      retries.inc({ schedule: name }, 0);
      degraded.inc({ schedule: name }, 0);
    }
  };
  if (opts.schedules !== undefined) setSchedules(opts.schedules);

  const handlers: { [K in keyof DuckcronEvents]?: (p: DuckcronEvents[K]) => void } = {
    "run:started": (p) => runsRunning.inc({ schedule: p.schedule }),
    "run:finished": (p) => {
      runsRunning.dec({ schedule: p.schedule });
      runsTotal.inc({ schedule: p.schedule, status: p.status });
      runDuration.observe({ schedule: p.schedule }, p.durationMs / 1000);
      if (p.degraded) degraded.inc({ schedule: p.schedule });
      if (p.status === "success" && tenantAllowed(p.schedule, p.tenant)) {
        lastSuccess.set({ schedule: p.schedule, tenant: p.tenant }, now().getTime() / 1000);
      }
    },
    "run:skipped": (p) => runsTotal.inc({ schedule: p.schedule, status: "skipped" }),
    "run:retry": (p) => retries.inc({ schedule: p.schedule }),
    "secret:request": (p) => {
      secretRequests.inc({ backend: p.backend, status: p.status });
      secretDuration.observe({ backend: p.backend }, p.durationMs / 1000);
    },
    "secret:resolved": (p) => {
      if (p.cacheHit) cacheHits.inc();
    },
    "catalog:built": (p) => {
      // Ad-hoc builds (`duckcron build` without a schedule) report schedule="".
      const schedule = p.schedule ?? "";
      if (tenantAllowed(schedule, p.tenant)) {
        catalogViews.set({ schedule, tenant: p.tenant }, p.viewCount);
      }
    },
    "cluster:claim": (p) => {
      clusterClaims.inc({ outcome: p.outcome });
      clusterClaimDuration.observe(p.durationMs / 1000);
      if (p.takeover && p.outcome === "won") clusterTakeovers.inc();
    },
    "cluster:lease_lost": () => clusterLeaseLosses.inc(),
    "cluster:database_error": () => clusterDatabaseErrors.inc(),
    "cluster:replicas": (p) => clusterReplicas.set(p.count),
    "config:loaded": (p) => {
      // The first load is not a reload; a rejected config is a failed (re)load either way.
      if (p.outcome === "reloaded") configReloads.inc({ status: "success" });
      else if (p.outcome === "rejected") configReloads.inc({ status: "failure" });
    },
  };
  configReloads.inc({ status: "success" }, 0);
  configReloads.inc({ status: "failure" }, 0);

  const unsubscribes = Object.entries(handlers).map(([event, handler]) =>
    events.on(event as keyof DuckcronEvents, handler as (p: unknown) => void),
  );

  return {
    registry,
    setSchedules,
    setNextRun(schedule, at) {
      if (at === null) nextRun.remove({ schedule });
      else nextRun.set({ schedule }, at.getTime() / 1000);
    },
    dispose() {
      for (const off of unsubscribes) off();
      registry.clear();
    },
  };
}
