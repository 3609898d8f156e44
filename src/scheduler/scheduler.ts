import { randomUUID } from "node:crypto";
import type { RunnerSection, Schedule } from "../config/runner-schema.js";
import type { EventBus } from "../observe/events.js";
import { type Clock, systemClock } from "./clock.js";
import { Firing } from "./firing.js";
import {
  type Admission,
  type Fire,
  type RunEnd,
  type RunErrorInfo,
  type RunFn,
  RunLifecycle,
  type RunStatus,
} from "./run-lifecycle.js";
import type { RunHistory } from "./state.js";

/**
 * Fires schedules and runs them: one run per schedule x tenant per fire, under the
 * global and per-tenant concurrency limits, with overlap policy, timeouts, retries,
 * catch-up, reload and graceful shutdown. It knows runs, not SQL or secrets: the work
 * itself is the injected RunFn. When a fire happens is firing.ts; what a run goes
 * through is run-lifecycle.ts; this joins them with the per-tenant overlap policy.
 */

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
  state?: RunHistory;
  /** Whether this replica runs a fire; see Admission. Without it, every fire runs. */
  admission?: Admission;
}

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

/** One schedule+tenant: the overlap policy is per lane. */
interface Lane {
  active?: Fire;
  /** overlap: queue only; at most one. */
  next?: Fire;
  last?: LastResult;
}

export class Scheduler {
  readonly #events: EventBus;
  readonly #clock: Clock;
  readonly #state: RunHistory | undefined;
  #runner: SchedulerRunner;
  readonly #firing: Firing;
  readonly #lifecycle: RunLifecycle;
  readonly #lanes = new Map<string, Lane>();
  #phase: SchedulerStatus["state"] = "created";
  #shutdown: Promise<{ finished: boolean }> | undefined;

  constructor(options: SchedulerOptions) {
    this.#events = options.events;
    this.#clock = options.clock ?? systemClock;
    this.#state = options.state;
    this.#runner = options.runner;
    this.#firing = new Firing({
      schedules: options.schedules,
      timezone: options.runner.timezone,
      clock: this.#clock,
      state: options.state,
      onFire: (schedule, tenant, scheduledAt) => this.#offer(schedule, tenant, scheduledAt),
    });
    this.#lifecycle = new RunLifecycle({
      run: options.run,
      events: options.events,
      clock: this.#clock,
      random: options.random ?? Math.random,
      limits: limitsOf(options.runner),
      admission: options.admission,
      onEnd: (fire, end) => this.#finish(fire, end),
      onDrop: (fire, started) => this.#drop(fire, started),
    });
  }

  /** Arms every enabled schedule and runs missed `catchup: latest` schedules once. */
  start(): void {
    if (this.#phase !== "created") return;
    this.#phase = "running";
    this.#firing.start();
  }

  /**
   * Replaces the schedule set. Runs in flight (and their retries) continue under the
   * schedule they started with and their results are recorded; removed schedules stop
   * firing; a schedule whose cron, timezone or `enabled` changed is re-armed. Throws
   * (changing nothing) if a cron does not compile.
   */
  reload(schedules: readonly Schedule[], runner: SchedulerRunner): void {
    if (this.#phase === "stopping" || this.#phase === "stopped") return;
    this.#firing.reload(schedules, runner.timezone);
    this.#runner = runner;
    this.#lifecycle.setLimits(limitsOf(runner));
  }

  /** Next fire per schedule; null when disabled, not started, or no future match. */
  nextRuns(): Map<string, Date | null> {
    const result = new Map<string, Date | null>();
    for (const entry of this.#firing.entries()) result.set(entry.schedule.name, entry.nextRun);
    return result;
  }

  status(): SchedulerStatus {
    const schedules: ScheduleStatus[] = this.#firing.entries().map((entry) => {
      const name = entry.schedule.name;
      return {
        name,
        cron: entry.schedule.cron,
        timezone: entry.timezone,
        enabled: entry.schedule.enabled,
        nextRun: entry.nextRun,
        tenants: entry.schedule.tenants.map((tenant) => {
          const lane = this.#lanes.get(laneKey(name, tenant));
          return {
            tenant,
            active: lane?.active !== undefined,
            queued: lane?.next !== undefined,
            last: lane?.last ?? this.#storedResult(name, tenant),
          };
        }),
      };
    });
    return {
      state: this.#phase,
      running: this.#lifecycle.running,
      waiting: this.#lifecycle.waiting,
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

  /**
   * Offers a fire that did not come from this replica's timers: another replica's
   * expired claim, found by the cluster's takeover sweep. False when the schedule is
   * unknown, disabled or does not list the tenant (any more).
   */
  offer(scheduleName: string, tenant: string, scheduledAt: Date): boolean {
    const schedule = this.#firing.entries().find((e) => e.schedule.name === scheduleName)?.schedule;
    if (!schedule?.enabled || !schedule.tenants.includes(tenant)) return false;
    this.#offer(schedule, tenant, scheduledAt);
    return true;
  }

  #offer(schedule: Schedule, tenant: string, scheduledAt: Date): void {
    if (this.#phase !== "running") return;
    const lane = this.#lane(schedule.name, tenant);
    if (lane.active) {
      // `queue` keeps at most one fire waiting behind the active run: a further fire
      // while one is queued would only repeat it, so it is skipped like under `skip`.
      if (schedule.overlap === "queue" && !lane.next) {
        lane.next = { runId: randomUUID(), schedule, tenant, scheduledAt };
        return;
      }
      this.#events.emit("run:skipped", {
        schedule: schedule.name,
        tenant,
        scheduledAt: scheduledAt.toISOString(),
        reason: "overlap",
      });
      return;
    }
    const fire: Fire = { runId: randomUUID(), schedule, tenant, scheduledAt };
    lane.active = fire;
    this.#lifecycle.submit(fire);
  }

  /**
   * The run is over: record it and let a queued fire of the lane go. A fire another
   * replica took (end null) leaves no result here.
   */
  #finish(fire: Fire, end: RunEnd | null): void {
    const lane = this.#lane(fire.schedule.name, fire.tenant);
    if (lane.active === fire) lane.active = undefined;
    if (end) {
      const finishedAt = new Date(this.#clock.now());
      lane.last = {
        status: end.status,
        scheduledAt: fire.scheduledAt,
        finishedAt,
        ...(end.error ? { error: end.error } : {}),
      };
      this.#state?.record(fire.schedule.name, fire.tenant, {
        scheduledAt: fire.scheduledAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        status: end.status,
      });
    }
    const next = lane.next;
    if (next && this.#phase === "running" && !lane.active) {
      lane.next = undefined;
      lane.active = next;
      this.#lifecycle.submit(next);
    }
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

  #storedResult(schedule: string, tenant: string): LastResult | null {
    const record = this.#state?.last(schedule, tenant);
    if (!record) return null;
    return {
      status: record.status,
      scheduledAt: new Date(record.scheduledAt),
      finishedAt: new Date(record.finishedAt),
    };
  }

  async #stop(): Promise<{ finished: boolean }> {
    this.#phase = "stopping";
    this.#firing.stop();
    this.#lifecycle.close();
    for (const lane of this.#lanes.values()) {
      if (lane.next) this.#drop(lane.next, false);
    }
    const { finished } = await this.#lifecycle.drain(this.#runner.shutdown_grace);
    await this.#state?.flush();
    this.#phase = "stopped";
    return { finished };
  }

  /** A fire that will not run (again) because of shutdown; only one that never started is reported. */
  #drop(fire: Fire, started: boolean): void {
    const lane = this.#lane(fire.schedule.name, fire.tenant);
    if (lane.active === fire) lane.active = undefined;
    if (lane.next === fire) lane.next = undefined;
    if (!started) {
      this.#events.emit("run:skipped", {
        schedule: fire.schedule.name,
        tenant: fire.tenant,
        scheduledAt: fire.scheduledAt.toISOString(),
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
