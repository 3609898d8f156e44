import { access, constants } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import type pino from "pino";
import { catalogPathFor } from "./catalog/plan.js";
import type { LoadedRunner } from "./config/load.js";
import type { SecretsBackendConfig } from "./config/runner-schema.js";
import { effectiveStateDir, prepareStateDir } from "./config/state-dir.js";
import { DuckcronError } from "./errors.js";
import { loadCheckedRunner } from "./load-config.js";
import { type AuditLog, openAuditLog } from "./observe/audit.js";
import { EventBus } from "./observe/events.js";
import { type HttpServerHandle, type ReadyReport, startHttpServer } from "./observe/http-server.js";
import { createMetrics, type DuckcronMetrics } from "./observe/metrics.js";
import type { Scrubber } from "./observe/scrubber.js";
import { runTenant } from "./run-tenant.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { StateStore } from "./scheduler/state.js";
import type { SecretBackend } from "./secrets/backend.js";
import { createBackend } from "./secrets/create-backend.js";
import { SecretResolver } from "./secrets/resolver.js";
import { VERSION } from "./version.js";

/**
 * The long-running service: the composition root that wires config, secrets,
 * scheduler, catalog builds and observability together. Every resource it opens is
 * pushed onto a LIFO stack of releasers, so stopping (or failing half-way through
 * starting) closes exactly what was opened, in reverse order, even if one step fails.
 */

export interface DaemonOptions {
  configPath: string;
  strict?: boolean;
  logger: pino.Logger;
  scrubber: Scrubber;
  /** Overrides runner.http.listen (tests use port 0). */
  listen?: string;
}

interface Secrets {
  config: SecretsBackendConfig;
  backend: SecretBackend;
  resolver: SecretResolver;
}

/** How often /readyz may ask the backend; a scrape every second should not hit Vault every second. */
const BACKEND_CHECK_INTERVAL_MS = 15_000;

export class Daemon {
  readonly events = new EventBus();
  readonly #options: DaemonOptions;
  readonly #releasers: (() => Promise<void> | void)[] = [];
  #runner!: LoadedRunner;
  #secrets!: Secrets;
  #scheduler!: Scheduler;
  #metrics!: DuckcronMetrics;
  #audit: AuditLog | undefined;
  #http!: HttpServerHandle;
  #lastBackendCheck: { at: number; ok: boolean; message?: string } | undefined;
  #stopping: Promise<{ finished: boolean }> | undefined;

  private constructor(options: DaemonOptions) {
    this.#options = options;
  }

  /** Loads the config and starts everything; throws (after cleaning up) if any part fails. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options);
    try {
      await daemon.#start();
    } catch (error) {
      await daemon.#release();
      throw error;
    }
    return daemon;
  }

  get url(): string {
    return this.#http.url;
  }

  async #start(): Promise<void> {
    const { logger, scrubber } = this.#options;
    const runner = await loadCheckedRunner(this.#options.configPath, {
      strict: this.#options.strict,
    });
    this.#adopt(runner);
    const config = runner.config.runner;

    this.#subscribeLogs();

    if (config.audit) {
      this.#audit = await openAuditLog({
        path: config.audit.path === "-" ? "-" : resolve(runner.dir, config.audit.path),
        hmacKey: config.audit.hmac_key,
        events: this.events,
        scrubber,
        logger,
      });
      const audit = this.#audit;
      this.#releasers.push(() => audit.close());
    }
    this.events.emit("config:loaded", { path: runner.file, outcome: "loaded" });

    this.#metrics = createMetrics(this.events, {
      version: VERSION,
      schedules: scheduleInfo(runner),
    });
    this.#releasers.push(() => this.#metrics.dispose());

    this.#secrets = await this.#openSecrets(config.secrets, runner.dir);
    const { backend } = this.#secrets;
    this.#releasers.push(() => backend.close());

    const state = effectiveStateDir(runner.dir, config.state_dir);
    await prepareStateDir(state);
    const stateDir = state.path;
    const { store, issue } = await StateStore.open(stateDir, {
      onWarning: (message) => logger.warn({ stateDir }, message),
    });
    if (issue) logger.warn({ stateDir }, issue);

    this.#scheduler = new Scheduler({
      schedules: config.schedules,
      runner: config,
      events: this.events,
      state: store,
      run: async ({ schedule, tenant, signal }) => {
        // The job of the config in force when the run starts; a reload mid-build
        // does not change a running build.
        const job = this.#runner.jobs.get(schedule.name);
        if (!job)
          throw new DuckcronError(
            "SCHEDULE_NOT_FOUND",
            `schedule "${schedule.name}" is no longer configured`,
          );
        const result = await runTenant({
          job,
          schedule: schedule.name,
          tenant,
          resolver: this.#secrets.resolver,
          scrubber,
          events: this.events,
          signal,
        });
        for (const warning of result.warnings)
          logger.warn({ schedule: schedule.name, tenant }, warning);
        return { degraded: result.degraded };
      },
    });
    this.#releasers.push(async () => {
      await this.#scheduler.shutdown();
      await store.flush();
    });

    this.#http = await startHttpServer({
      listen: this.#options.listen ?? config.http.listen,
      registry: this.#metrics.registry,
      health: () => ({ ok: !this.#stopping }),
      ready: () => this.#ready(),
      status: () => this.#scheduler.status(),
      scrub: (text) => scrubber.scrub(text),
    });
    this.#releasers.push(() => this.#http.close());

    this.#scheduler.start();
    this.#publishNextRuns();
    this.events.on("run:started", () => this.#publishNextRuns());
    logger.info(
      {
        config: runner.file,
        schedules: config.schedules.length,
        url: this.#http.url,
        version: VERSION,
      },
      "duckcron started",
    );
  }

  /**
   * Re-reads and validates the config. On success, schedules are swapped without
   * dropping running builds; on failure, the old config stays in force and the
   * located error is logged.
   */
  async reload(): Promise<boolean> {
    const { logger } = this.#options;
    let opened: Secrets | undefined;
    try {
      const runner = await loadCheckedRunner(this.#options.configPath, {
        strict: this.#options.strict,
      });
      const config = runner.config.runner;
      // Everything that can fail happens before anything is swapped.
      if (JSON.stringify(config.secrets) !== JSON.stringify(this.#secrets.config)) {
        opened = await this.#openSecrets(config.secrets, runner.dir);
      }
      this.#scheduler.reload(config.schedules, config);
      if (opened) {
        // Builds already running keep the resolver they started with, so the old
        // backend stays open until shutdown.
        this.#secrets = opened;
        const { backend } = opened;
        this.#releasers.push(() => backend.close());
      }
      this.#adopt(runner);
      this.#metrics.setSchedules(scheduleInfo(runner));
      this.#publishNextRuns();
      this.events.emit("config:loaded", { path: runner.file, outcome: "reloaded" });
      logger.info({ config: runner.file, schedules: config.schedules.length }, "config reloaded");
      return true;
    } catch (error) {
      await opened?.backend.close().catch(() => {});
      const message = error instanceof Error ? error.message : String(error);
      logger.error(
        { code: error instanceof DuckcronError ? error.code : "INTERNAL", error: message },
        "config rejected; keeping the previous config",
      );
      this.events.emit("config:loaded", {
        path: this.#runner.file,
        outcome: "rejected",
        error: message,
      });
      return false;
    }
  }

  /** Stops firing, lets running builds finish for shutdown_grace, then aborts them. */
  stop(): Promise<{ finished: boolean }> {
    this.#stopping ??= (async () => {
      const { finished } = await this.#scheduler.shutdown();
      await this.#release();
      return { finished };
    })();
    return this.#stopping;
  }

  #adopt(runner: LoadedRunner): void {
    for (const value of runner.sensitive) this.#options.scrubber.add(value);
    for (const job of runner.jobs.values())
      for (const value of job.sensitive) this.#options.scrubber.add(value);
    this.#runner = runner;
  }

  async #openSecrets(config: SecretsBackendConfig, baseDir: string): Promise<Secrets> {
    const backend = await createBackend(config, { baseDir });
    const resolver = new SecretResolver({
      backend,
      cacheTtlMs: config.cache_ttl,
      maxStaleMs: config.max_stale,
      maxConcurrency: config.max_concurrency,
      scrubber: this.#options.scrubber,
      events: this.events,
      strict: this.#options.strict,
      fingerprint: this.#fingerprint(),
    });
    this.#lastBackendCheck = undefined;
    return { config, backend, resolver };
  }

  /** HMAC fingerprints of secret values for the audit trail, when it has a key. */
  #fingerprint(): ((value: string) => string) | undefined {
    const audit = this.#audit;
    if (!audit || !this.#runner.config.runner.audit?.hmac_key) return undefined;
    return (value) => audit.fingerprint(value) ?? "";
  }

  async #ready(): Promise<ReadyReport> {
    const checks: ReadyReport["checks"] = { config: { ok: true } };
    const now = Date.now();
    if (
      !this.#lastBackendCheck ||
      now - this.#lastBackendCheck.at > BACKEND_CHECK_INTERVAL_MS ||
      !this.#lastBackendCheck.ok
    ) {
      try {
        await this.#secrets.backend.check(AbortSignal.timeout(5_000));
        this.#lastBackendCheck = { at: now, ok: true };
      } catch (error) {
        this.#lastBackendCheck = {
          at: now,
          ok: false,
          message: error instanceof Error ? error.message : String(error),
        };
      }
    }
    checks.secrets_backend = this.#lastBackendCheck.ok
      ? { ok: true }
      : { ok: false, message: this.#lastBackendCheck.message ?? "unreachable" };
    const problems: string[] = [];
    for (const dir of catalogDirectories(this.#runner)) {
      const problem = await writableProblem(dir);
      if (problem) problems.push(problem);
    }
    checks.catalogs_writable =
      problems.length === 0 ? { ok: true } : { ok: false, message: problems.join("; ") };
    return { checks };
  }

  #publishNextRuns(): void {
    for (const [schedule, at] of this.#scheduler.nextRuns()) this.#metrics.setNextRun(schedule, at);
  }

  #subscribeLogs(): void {
    const { logger } = this.#options;
    this.events.on("run:finished", (p) => {
      const fields = {
        runId: p.runId,
        schedule: p.schedule,
        tenant: p.tenant,
        attempt: p.attempt,
        status: p.status,
        durationMs: p.durationMs,
        degraded: p.degraded,
      };
      if (p.status === "success")
        logger.info(
          fields,
          p.degraded ? "run succeeded (degraded: stale secrets)" : "run succeeded",
        );
      else
        logger.error(
          {
            ...fields,
            code: p.error?.code,
            error: p.error?.message,
            retryable: p.error?.retryable,
          },
          `run ${p.status}`,
        );
    });
    this.events.on("run:started", (p) => logger.info(p, "run started"));
    this.events.on("run:skipped", (p) => logger.info(p, "run skipped"));
    this.events.on("run:retry", (p) => logger.warn(p, "run will be retried"));
    this.events.on("catalog:built", (p) =>
      logger.info(
        {
          schedule: p.schedule,
          tenant: p.tenant,
          path: p.path,
          skipped: p.skipped,
          views: p.viewCount,
          added: p.views.added.length,
          changed: p.views.changed.length,
          dropped: p.views.dropped.length,
        },
        p.skipped ? "catalog unchanged" : "catalog built",
      ),
    );
  }

  async #release(): Promise<void> {
    while (this.#releasers.length > 0) {
      const release = this.#releasers.pop()!;
      try {
        await release();
      } catch (error) {
        this.#options.logger.error(
          { error: error instanceof Error ? error.message : String(error) },
          "error while stopping",
        );
      }
    }
  }
}

function scheduleInfo(runner: LoadedRunner) {
  return runner.config.runner.schedules.map((s) => ({ name: s.name, tenants: s.tenants }));
}

/** The directories catalogs of every schedule and tenant are written to. */
function catalogDirectories(runner: LoadedRunner): Set<string> {
  const dirs = new Set<string>();
  for (const schedule of runner.config.runner.schedules) {
    const job = runner.jobs.get(schedule.name);
    if (!job) continue;
    for (const tenant of schedule.tenants) {
      dirs.add(dirname(catalogPathFor({ definition: job.definition, dir: job.dir }, tenant)));
    }
  }
  return dirs;
}

/** A catalog directory is fine if it, or the nearest existing parent it would be created in, is writable. */
async function writableProblem(dir: string): Promise<string | undefined> {
  let current = dir;
  for (;;) {
    try {
      await access(current, constants.W_OK);
      return undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") return `${current} is not writable (${code})`;
      const parent = dirname(current);
      if (parent === current || !isAbsolute(parent)) return `${dir} cannot be created`;
      current = parent;
    }
  }
}
