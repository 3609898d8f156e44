import {
  type RunnerSection,
  type Schedule,
  scheduleSchema,
} from "../../src/config/runner-schema.js";
import type { DuckcronEvents, EventName } from "../../src/observe/events.js";
import { EventBus } from "../../src/observe/events.js";
import type {
  Admission,
  RunFn,
  RunOutcome,
  RunRequest,
} from "../../src/scheduler/run-lifecycle.js";
import { Scheduler, type SchedulerRunner } from "../../src/scheduler/scheduler.js";
import type { StateStore } from "../../src/scheduler/state.js";
import { FakeClock } from "./fake-clock.js";

/** A schedule with the schema's defaults; `timeout` and `retries` are given in ms here. */
export function schedule(fields: Partial<Schedule> & { name: string; cron: string }): Schedule {
  const defaults = scheduleSchema.parse({
    config: "jobs/x.yaml",
    tenants: ["acme"],
    name: fields.name,
    // Defaults only: the scheduler must also defend itself against a cron the schema never saw.
    cron: "* * * * *",
  });
  return { ...defaults, ...fields };
}

export function runner(fields: Partial<RunnerSection> = {}): SchedulerRunner {
  return {
    timezone: "UTC",
    max_concurrent_runs: 4,
    max_concurrent_runs_per_tenant: 1,
    shutdown_grace: 30_000,
    ...fields,
  };
}

export type Recorded = { [K in EventName]: { event: K; payload: DuckcronEvents[K] } }[EventName];

/** Every run-related event, in order, so tests can assert on sequences. */
export function record(events: EventBus): Recorded[] {
  const log: Recorded[] = [];
  for (const event of ["run:started", "run:finished", "run:skipped", "run:retry"] as const) {
    events.on(event, (payload) => log.push({ event, payload } as Recorded));
  }
  return log;
}

interface Pending {
  req: RunRequest;
  resolve: (outcome: RunOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * A RunFn the test drives by hand: each call waits until the test resolves or rejects
 * it. It rejects with signal.reason on abort, unless `ignoreAbort` is set.
 */
export class ManualRuns {
  readonly calls: RunRequest[] = [];
  readonly pending: Pending[] = [];
  maxInFlight = 0;
  ignoreAbort = false;

  readonly fn: RunFn = (req) => {
    this.calls.push(req);
    return new Promise<RunOutcome>((resolve, reject) => {
      const entry: Pending = {
        req,
        resolve: (outcome) => {
          this.#remove(entry);
          resolve(outcome);
        },
        reject: (error) => {
          this.#remove(entry);
          reject(error);
        },
      };
      this.pending.push(entry);
      this.maxInFlight = Math.max(this.maxInFlight, this.pending.length);
      req.signal.addEventListener("abort", () => {
        if (!this.ignoreAbort) entry.reject(req.signal.reason);
      });
    });
  };

  get inFlight(): number {
    return this.pending.length;
  }

  /** Settles the oldest pending call matching `match`. */
  finish(
    match: (req: RunRequest) => boolean = () => true,
    outcome: RunOutcome = { degraded: false },
  ): void {
    const entry = this.pending.find((p) => match(p.req));
    if (!entry) throw new Error("no matching pending run");
    entry.resolve(outcome);
  }

  fail(error: unknown, match: (req: RunRequest) => boolean = () => true): void {
    const entry = this.pending.find((p) => match(p.req));
    if (!entry) throw new Error("no matching pending run");
    entry.reject(error);
  }

  #remove(entry: Pending): void {
    const index = this.pending.indexOf(entry);
    if (index >= 0) this.pending.splice(index, 1);
  }
}

export interface Harness {
  scheduler: Scheduler;
  clock: FakeClock;
  events: EventBus;
  log: Recorded[];
  runs: ManualRuns;
  /** Shuts down and lets the grace period pass on the fake clock. */
  stop(): Promise<{ finished: boolean }>;
}

const live = new Set<Harness>();

export function harness(options: {
  schedules: Schedule[];
  runner?: Partial<RunnerSection>;
  start?: string;
  run?: RunFn;
  random?: () => number;
  state?: StateStore;
  admission?: Admission;
}): Harness {
  const clock = new FakeClock(options.start ?? "2026-01-01T00:00:00Z");
  const events = new EventBus();
  const log = record(events);
  const runs = new ManualRuns();
  const scheduler = new Scheduler({
    schedules: options.schedules,
    runner: runner(options.runner),
    run: options.run ?? runs.fn,
    events,
    clock,
    ...(options.random ? { random: options.random } : {}),
    ...(options.state ? { state: options.state } : {}),
    ...(options.admission ? { admission: options.admission } : {}),
  });
  const h: Harness = {
    scheduler,
    clock,
    events,
    log,
    runs,
    async stop() {
      live.delete(h);
      const done = scheduler.shutdown();
      await clock.advance(runner(options.runner).shutdown_grace);
      return done;
    },
  };
  live.add(h);
  return h;
}

/** For afterEach: no scheduler outlives its test. */
export async function stopAll(): Promise<void> {
  for (const h of [...live]) await h.stop();
}

export function eventsOf<K extends EventName>(log: Recorded[], event: K): DuckcronEvents[K][] {
  return log.filter((r) => r.event === event).map((r) => r.payload as DuckcronEvents[K]);
}

export const iso = (d: Date | null | undefined): string | undefined => d?.toISOString();
