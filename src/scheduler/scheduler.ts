import { randomUUID } from "node:crypto";
import type { Cron } from "croner";
import type { RunnerSection, Schedule } from "../config/runner-schema.js";
import { DuckcronError, errorCode } from "../errors.js";
import type { DuckcronEvents, EventBus } from "../observe/events.js";
import { retryDelay } from "./backoff.js";
import { type Clock, systemClock, type TimerHandle } from "./clock.js";
import { CronTimer, compileCron, TimerQueue } from "./cron-timer.js";
import { ConcurrencyLimiter, type Waiter } from "./limiter.js";
import { RunAbortedError, RunTimeoutError } from "./run-errors.js";
import type { StateStore } from "./state.js";

/**
 * Fires schedules and runs them: one run per schedule x tenant per fire, under the
 * global and per-tenant concurrency limits, with overlap policy, timeouts, retries,
 * catch-up, reload and graceful shutdown. It knows runs, not SQL or secrets: the work
 * itself is the injected RunFn.
 */

export type RunOutcome = { degraded: boolean };

export interface RunRequest {
  /** Same for every attempt of one fire; attempts are numbered from 1. */
  runId: string;
  schedule: Schedule;
  tenant: string;
  attempt: number;
  /** Aborted on timeout (reason RunTimeoutError) or at shutdown (reason RunAbortedError). */
  signal: AbortSignal;
  /** The cron time this run was fired for (a catch-up run carries the missed time). */
  scheduledAt: Date;
}

/** Expected to reject promptly once `signal` aborts, preferably with `signal.reason`. */
export type RunFn = (req: RunRequest) => Promise<RunOutcome>;

export type SchedulerRunner = Pick<
  RunnerSection,
  "timezone" | "max_concurrent_runs" | "max_concurrent_runs_per_tenant" | "shutdown_grace"
>;

export interface SchedulerOptions {
  schedules: readonly Schedule[];
  runner: SchedulerRunner;
  run: RunFn;
  events: EventBus;
  clock?: Clock;
  /** [0, 1), for retry jitter. */
  random?: () => number;
  /** Last run times, for `catchup: latest` and status across restarts. */
  state?: StateStore;
}

type RunStatus = DuckcronEvents["run:finished"]["status"];
type RunErrorInfo = NonNullable<DuckcronEvents["run:finished"]["error"]>;

export interface LastResult {
  status: RunStatus;
  scheduledAt: Date;
  finishedAt: Date;
  /** Absent when the result was loaded from the state file. */
  error?: RunErrorInfo;
}

export interface TenantStatus {
  tenant: string;
  /** A run is in flight, waiting for a slot, or waiting to retry. */
  active: boolean;
  /** Only with `overlap: queue`: a fire is waiting behind the active run. */
  queued: boolean;
  last: LastResult | null;
}

export interface ScheduleStatus {
  name: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  nextRun: Date | null;
  tenants: TenantStatus[];
}

export interface SchedulerStatus {
  state: "created" | "running" | "stopping" | "stopped";
  /** Attempts holding a concurrency slot. */
  running: number;
  /** Runs waiting for a slot. */
  waiting: number;
  schedules: ScheduleStatus[];
}

interface Entry {
  schedule: Schedule;
  timezone: string;
  cron: Cron;
  timer: CronTimer | null;
}

interface Run {
  readonly id: string;
  readonly schedule: Schedule;
  readonly tenant: string;
  readonly scheduledAt: Date;
  attempt: number;
  readonly waiter: RunWaiter;
  controller?: AbortController;
  startedAt: number;
  timeoutHandle?: TimerHandle;
  retryHandle?: TimerHandle;
  timedOut: boolean;
  abortedAtShutdown: boolean;
}

interface RunWaiter extends Waiter {
  readonly run: Run;
}

/** One schedule+tenant: the overlap policy is per lane. */
interface Lane {
  active?: Run;
  /** overlap: queue only; at most one. */
  next?: Run;
  last?: LastResult;
}

type Settlement = { ok: true; outcome: RunOutcome } | { ok: false; error: unknown };

export class Scheduler {
  readonly #run: RunFn;
  readonly #events: EventBus;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #state: StateStore | undefined;
  #runner: SchedulerRunner;
  #entries: Map<string, Entry>;
  /** pattern+timezone -> compiled Cron, shared by the schedules that use it. */
  #crons = new Map<string, Cron>();
  readonly #lanes = new Map<string, Lane>();
  readonly #limiter: ConcurrencyLimiter<RunWaiter>;
  readonly #timers: TimerQueue;
  /** Attempts in flight -> settles after the scheduler has recorded the outcome. */
  readonly #inFlight = new Map<Run, Promise<void>>();
  readonly #backingOff = new Set<Run>();
  #phase: SchedulerStatus["state"] = "created";
  #shutdown: Promise<{ finished: boolean }> | undefined;

  constructor(options: SchedulerOptions) {
    this.#run = options.run;
    this.#events = options.events;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#state = options.state;
    this.#runner = options.runner;
    this.#entries = this.#compile(options.schedules, options.runner);
    this.#limiter = new ConcurrencyLimiter<RunWaiter>(limitsOf(options.runner));
    this.#timers = new TimerQueue(this.#clock);
  }

  /** Arms every enabled schedule and runs missed `catchup: latest` schedules once. */
  start(): void {
    if (this.#phase !== "created") return;
    this.#phase = "running";
    for (const entry of this.#entries.values()) this.#arm(entry);
    for (const entry of this.#entries.values()) this.#catchUp(entry);
  }

  /**
   * Replaces the schedule set. Runs in flight (and their retries) continue under the
   * schedule they started with and their results are recorded; removed schedules stop
   * firing; a schedule whose cron, timezone or `enabled` changed is re-armed. Throws
   * (changing nothing) if a cron does not compile.
   */
  reload(schedules: readonly Schedule[], runner: SchedulerRunner): void {
    if (this.#phase === "stopping" || this.#phase === "stopped") return;
    const next = this.#compile(schedules, runner);
    this.#runner = runner;
    this.#limiter.setLimits(limitsOf(runner));
    for (const [name, old] of this.#entries) {
      const entry = next.get(name);
      if (
        entry &&
        old.schedule.cron === entry.schedule.cron &&
        old.timezone === entry.timezone &&
        old.schedule.enabled === entry.schedule.enabled
      ) {
        entry.cron = old.cron;
        entry.timer = old.timer;
        // The running timer's callback looks the entry up by name, so it fires with the new settings.
      } else {
        old.timer?.stop();
      }
    }
    this.#entries = next;
    if (this.#phase === "running") {
      for (const entry of next.values()) if (entry.timer === null) this.#arm(entry);
    }
  }

  /** Next fire per schedule; null when disabled, not started, or no future match. */
  nextRuns(): Map<string, Date | null> {
    const result = new Map<string, Date | null>();
    for (const [name, entry] of this.#entries) result.set(name, entry.timer?.next ?? null);
    return result;
  }

  status(): SchedulerStatus {
    const schedules: ScheduleStatus[] = [];
    for (const [name, entry] of this.#entries) {
      schedules.push({
        name,
        cron: entry.schedule.cron,
        timezone: entry.timezone,
        enabled: entry.schedule.enabled,
        nextRun: entry.timer?.next ?? null,
        tenants: entry.schedule.tenants.map((tenant) => {
          const lane = this.#lanes.get(laneKey(name, tenant));
          return {
            tenant,
            active: lane?.active !== undefined,
            queued: lane?.next !== undefined,
            last: lane?.last ?? this.#storedResult(name, tenant),
          };
        }),
      });
    }
    return {
      state: this.#phase,
      running: this.#limiter.inFlight,
      waiting: this.#limiter.queued,
      schedules,
    };
  }

  /**
   * Stops firing, drops runs that have not started (run:skipped "shutdown") and pending
   * retries, waits up to runner.shutdown_grace for running attempts, then aborts the rest
   * and waits for them to settle. `finished` is false if any had to be aborted.
   */
  shutdown(): Promise<{ finished: boolean }> {
    this.#shutdown ??= this.#stop();
    return this.#shutdown;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  // --- firing ---------------------------------------------------------------------

  /**
   * Compiles every cron before anything changes, so a bad one leaves the scheduler as it
   * was. Identical pattern+timezone pairs share one Cron: croner keeps ~80 KB of tables
   * per pattern (a 10,000-entry year table), which is 800 MB for 10,000 schedules, and a
   * paused Cron without a callback is a pure calculator, safe to share.
   */
  #compile(schedules: readonly Schedule[], runner: SchedulerRunner): Map<string, Entry> {
    const entries = new Map<string, Entry>();
    const crons = new Map<string, Cron>();
    for (const schedule of schedules) {
      const timezone = schedule.timezone ?? runner.timezone;
      const key = `${timezone}\u0000${schedule.cron}`;
      let cron = crons.get(key) ?? this.#crons.get(key);
      if (!cron) cron = compileCron(schedule, timezone);
      crons.set(key, cron);
      entries.set(schedule.name, { schedule, timezone, cron, timer: null });
    }
    this.#crons = crons;
    return entries;
  }

  #arm(entry: Entry): void {
    if (!entry.schedule.enabled) return;
    const name = entry.schedule.name;
    entry.timer = new CronTimer(entry.cron, this.#timers, (scheduledAt) => {
      const current = this.#entries.get(name);
      if (current) this.#fire(current.schedule, scheduledAt);
    });
    entry.timer.start();
  }

  #catchUp(entry: Entry): void {
    if (!this.#state || !entry.schedule.enabled || entry.schedule.catchup !== "latest") return;
    const [latest] = entry.cron.previousRuns(1, new Date(this.#clock.now()));
    if (!latest) return;
    for (const tenant of entry.schedule.tenants) {
      const last = this.#state.last(entry.schedule.name, tenant);
      // No record means this schedule+tenant never ran under this state dir: nothing
      // was missed that we know of, so a fresh deployment does not fire everything.
      if (last && Date.parse(last.scheduledAt) < latest.getTime()) {
        this.#offer(entry.schedule, tenant, latest);
      }
    }
  }

  #fire(schedule: Schedule, scheduledAt: Date): void {
    for (const tenant of schedule.tenants) this.#offer(schedule, tenant, scheduledAt);
  }

  #offer(schedule: Schedule, tenant: string, scheduledAt: Date): void {
    if (this.#phase !== "running") return;
    const lane = this.#lane(schedule.name, tenant);
    if (lane.active) {
      // `queue` keeps at most one fire waiting behind the active run: a further fire
      // while one is queued would only repeat it, so it is skipped like under `skip`.
      if (schedule.overlap === "queue" && !lane.next) {
        lane.next = this.#newRun(schedule, tenant, scheduledAt);
        return;
      }
      this.#events.emit("run:skipped", { schedule: schedule.name, tenant, reason: "overlap" });
      return;
    }
    const run = this.#newRun(schedule, tenant, scheduledAt);
    lane.active = run;
    this.#limiter.enqueue(run.waiter);
  }

  #newRun(schedule: Schedule, tenant: string, scheduledAt: Date): Run {
    const run: Run = {
      id: randomUUID(),
      schedule,
      tenant,
      scheduledAt,
      attempt: 1,
      waiter: {
        tenant,
        start: () => this.#startAttempt(run),
        get run() {
          return run;
        },
      },
      startedAt: 0,
      timedOut: false,
      abortedAtShutdown: false,
    };
    return run;
  }

  #lane(schedule: string, tenant: string): Lane {
    const key = laneKey(schedule, tenant);
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = {};
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  // --- running --------------------------------------------------------------------

  #startAttempt(run: Run): void {
    const controller = new AbortController();
    run.controller = controller;
    run.startedAt = this.#clock.now();
    run.timedOut = false;
    const { schedule, tenant } = run;
    this.#events.emit("run:started", {
      runId: run.id,
      schedule: schedule.name,
      tenant,
      attempt: run.attempt,
    });
    const timeout = schedule.timeout;
    if (timeout !== undefined) {
      run.timeoutHandle = this.#clock.setTimeout(() => this.#timeOut(run, timeout), timeout);
    }
    let promise: Promise<RunOutcome>;
    try {
      promise = Promise.resolve(
        this.#run({
          runId: run.id,
          schedule,
          tenant,
          attempt: run.attempt,
          signal: controller.signal,
          scheduledAt: run.scheduledAt,
        }),
      );
    } catch (error) {
      promise = Promise.reject(error);
    }
    this.#inFlight.set(
      run,
      promise.then(
        (outcome) => this.#settle(run, { ok: true, outcome }),
        (error: unknown) => this.#settle(run, { ok: false, error }),
      ),
    );
  }

  /**
   * Reported as finished (timeout) right away, so metrics see it even if the RunFn
   * ignores the signal; the slot stays held until the RunFn actually settles.
   */
  #timeOut(run: Run, timeoutMs: number): void {
    run.timeoutHandle = undefined;
    run.timedOut = true;
    const reason = new RunTimeoutError(run.schedule.name, run.tenant, timeoutMs);
    run.controller?.abort(reason);
    this.#emitFinished(run, "timeout", false, errorInfo(reason));
  }

  #settle(run: Run, result: Settlement): void {
    if (run.timeoutHandle !== undefined) this.#clock.clearTimeout(run.timeoutHandle);
    run.timeoutHandle = undefined;
    this.#inFlight.delete(run);
    let retry = false;
    let status: RunStatus;
    let error: RunErrorInfo | undefined;
    if (run.timedOut) {
      status = "timeout";
      error = errorInfo(run.controller?.signal.reason);
    } else if (result.ok) {
      status = "success";
      this.#emitFinished(run, status, result.outcome?.degraded === true, undefined);
    } else {
      status = "failure";
      error = run.abortedAtShutdown
        ? errorInfo(run.controller?.signal.reason)
        : errorInfo(result.error);
      this.#emitFinished(run, status, false, error);
      retry =
        this.#phase === "running" &&
        !run.abortedAtShutdown &&
        isRetryable(result.error) &&
        run.attempt <= run.schedule.retries.attempts;
    }
    this.#limiter.release(run.tenant);
    if (retry) this.#scheduleRetry(run);
    else this.#finish(run, status, error);
  }

  #scheduleRetry(run: Run): void {
    const delayMs = retryDelay(run.attempt, run.schedule.retries, this.#random);
    run.attempt++;
    this.#backingOff.add(run);
    this.#events.emit("run:retry", {
      runId: run.id,
      schedule: run.schedule.name,
      tenant: run.tenant,
      attempt: run.attempt,
      delayMs,
    });
    run.retryHandle = this.#clock.setTimeout(() => {
      run.retryHandle = undefined;
      this.#backingOff.delete(run);
      // A retry waits for a slot like any run; it does not hold one while backing off.
      if (this.#phase === "running") this.#limiter.enqueue(run.waiter);
    }, delayMs);
  }

  /** The run is over (all attempts): record it and let a queued fire of the lane go. */
  #finish(run: Run, status: RunStatus, error: RunErrorInfo | undefined): void {
    const lane = this.#lane(run.schedule.name, run.tenant);
    if (lane.active === run) lane.active = undefined;
    const finishedAt = new Date(this.#clock.now());
    lane.last = { status, scheduledAt: run.scheduledAt, finishedAt, ...(error ? { error } : {}) };
    this.#state?.record(run.schedule.name, run.tenant, {
      scheduledAt: run.scheduledAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      status,
    });
    const next = lane.next;
    if (next && this.#phase === "running" && !lane.active) {
      lane.next = undefined;
      lane.active = next;
      this.#limiter.enqueue(next.waiter);
    }
  }

  #emitFinished(
    run: Run,
    status: RunStatus,
    degraded: boolean,
    error: RunErrorInfo | undefined,
  ): void {
    this.#events.emit("run:finished", {
      runId: run.id,
      schedule: run.schedule.name,
      tenant: run.tenant,
      attempt: run.attempt,
      status,
      durationMs: this.#clock.now() - run.startedAt,
      degraded,
      ...(error ? { error } : {}),
    });
  }

  #storedResult(schedule: string, tenant: string): LastResult | null {
    const record = this.#state?.last(schedule, tenant);
    if (!record) return null;
    return {
      status: record.status,
      scheduledAt: new Date(record.scheduledAt),
      finishedAt: new Date(record.finishedAt),
    };
  }

  // --- shutdown -------------------------------------------------------------------

  async #stop(): Promise<{ finished: boolean }> {
    this.#phase = "stopping";
    for (const entry of this.#entries.values()) entry.timer?.stop();
    this.#timers.clear();
    for (const waiter of this.#limiter.drain()) this.#drop(waiter.run);
    for (const run of this.#backingOff) {
      if (run.retryHandle !== undefined) this.#clock.clearTimeout(run.retryHandle);
      // Its last attempt already reported failure; the retry simply does not happen.
      this.#lane(run.schedule.name, run.tenant).active = undefined;
    }
    this.#backingOff.clear();
    for (const lane of this.#lanes.values()) {
      if (lane.next) this.#drop(lane.next);
    }

    let finished = true;
    if (this.#inFlight.size > 0) {
      const grace = this.#runner.shutdown_grace;
      let graceTimer: TimerHandle | undefined;
      const graceOver = new Promise<"grace">((resolve) => {
        graceTimer = this.#clock.setTimeout(() => resolve("grace"), grace, { unref: true });
      });
      const outcome = await Promise.race([this.#allSettled(), graceOver]);
      if (graceTimer !== undefined) this.#clock.clearTimeout(graceTimer);
      if (outcome === "grace" && this.#inFlight.size > 0) {
        finished = false;
        for (const run of this.#inFlight.keys()) {
          run.abortedAtShutdown = true;
          run.controller?.abort(new RunAbortedError(run.schedule.name, run.tenant, grace));
        }
        await this.#allSettled();
      }
    }
    await this.#state?.flush();
    this.#phase = "stopped";
    return { finished };
  }

  async #allSettled(): Promise<"settled"> {
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight.values());
    return "settled";
  }

  /** A run that never started (or never got to retry) at shutdown. */
  #drop(run: Run): void {
    const lane = this.#lane(run.schedule.name, run.tenant);
    if (lane.active === run) lane.active = undefined;
    if (lane.next === run) lane.next = undefined;
    if (run.attempt === 1) {
      this.#events.emit("run:skipped", {
        schedule: run.schedule.name,
        tenant: run.tenant,
        reason: "shutdown",
      });
    }
  }
}

function laneKey(schedule: string, tenant: string): string {
  return `${schedule}\u0000${tenant}`;
}

function limitsOf(runner: SchedulerRunner): { global: number; perTenant: number } {
  return {
    global: runner.max_concurrent_runs,
    perTenant: runner.max_concurrent_runs_per_tenant,
  };
}

/** Only errors that say so are retried; config, auth and unknown errors are not. */
function isRetryable(error: unknown): boolean {
  if (error instanceof RunTimeoutError || error instanceof RunAbortedError) return false;
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { retryable?: unknown }).retryable === true
  );
}

/** The message goes out as given; the log sink scrubs secret values. */
function errorInfo(error: unknown): RunErrorInfo {
  if (error instanceof DuckcronError) {
    return { code: error.code, message: error.message, retryable: error.retryable };
  }
  return {
    code: errorCode(error),
    message: error instanceof Error ? error.message : String(error),
    retryable: false,
  };
}
