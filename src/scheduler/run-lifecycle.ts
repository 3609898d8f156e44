import type { Schedule } from "../config/runner-schema.js";
import { DuckcronError, errorCode } from "../errors.js";
import type { DuckcronEvents, EventBus } from "../observe/events.js";
import { retryDelay } from "./backoff.js";
import type { Clock, TimerHandle } from "./clock.js";
import { ConcurrencyLimiter, type Limits, type Waiter } from "./limiter.js";
import { RunAbortedError, RunTimeoutError } from "./run-errors.js";

/**
 * What happens to one fire once it is offered: it waits for a concurrency slot, is
 * admitted (or not) on this replica, then runs attempt after attempt under its timeout
 * and retry policy until it is over. It knows nothing of cron times or overlap; those
 * decide what to submit (firing.ts, scheduler.ts).
 */

export type RunOutcome = { degraded: boolean };

export interface RunRequest {
  /** Same for every attempt of one fire; attempts are numbered from 1. */
  runId: string;
  schedule: Schedule;
  tenant: string;
  attempt: number;
  /**
   * Aborted on timeout (reason RunTimeoutError), at shutdown (reason RunAbortedError),
   * or when the run's lease is lost (the lease's `lost.reason`).
   */
  signal: AbortSignal;
  /** The cron time this run was fired for (a catch-up run carries the missed time). */
  scheduledAt: Date;
}

/** Expected to reject promptly once `signal` aborts, preferably with `signal.reason`. */
export type RunFn = (req: RunRequest) => Promise<RunOutcome>;

export type RunStatus = DuckcronEvents["run:finished"]["status"];
export type RunErrorInfo = NonNullable<DuckcronEvents["run:finished"]["error"]>;

/** One fire of one schedule for one tenant; the object's identity is the run's. */
export interface Fire {
  readonly runId: string;
  readonly schedule: Schedule;
  readonly tenant: string;
  readonly scheduledAt: Date;
}

/** How a run that started ended, after its last attempt. */
export interface RunEnd {
  status: RunStatus;
  error?: RunErrorInfo;
}

/**
 * This replica's hold on a fire, from admission until the run is over. Keeping it alive
 * (renewing) is the lease's own business while it is held; the lifecycle only promises
 * to release it exactly once and to stop the run when it is lost.
 */
export interface Lease {
  /**
   * Aborts when the fire is no longer this replica's: the attempt in flight is aborted
   * with `lost.reason`, and the run is not retried here.
   */
  readonly lost: AbortSignal;
  /**
   * Called exactly once: with how the run ended, or with null when shutdown dropped it
   * before it was over here (not started yet, or a retry pending), so it can be taken over.
   */
  release(end: RunEnd | null): void;
}

/**
 * Asked once per fire, while a concurrency slot is held for it (a replica at its limit
 * is never asked), before its first attempt: may this replica run it? null means no,
 * and the fire is dropped here without events. A rejection counts as null; report
 * failures from inside. Without an admission every fire is run.
 */
export type Admission = (fire: Fire) => Promise<Lease | null>;

export interface RunLifecycleOptions {
  run: RunFn;
  events: EventBus;
  clock: Clock;
  /** [0, 1), for retry jitter. */
  random: () => number;
  limits: Limits;
  admission?: Admission | undefined;
  /** The fire is over: `end` is how it ended, or null when it was not admitted. */
  onEnd: (fire: Fire, end: RunEnd | null) => void;
  /** At or after close(): a fire that will not run (again); `started` if an attempt ran. */
  onDrop: (fire: Fire, started: boolean) => void;
}

interface Run extends Waiter {
  readonly fire: Fire;
  attempt: number;
  lease?: Lease;
  controller?: AbortController;
  startedAt: number;
  timeoutHandle?: TimerHandle;
  retryHandle?: TimerHandle;
  timedOut: boolean;
  /** Aborted from outside (shutdown grace over, lease lost): report that reason, never retry. */
  abortReason?: unknown;
  unwatchLease?: () => void;
}

type Settlement = { ok: true; outcome: RunOutcome } | { ok: false; error: unknown };

export class RunLifecycle {
  readonly #options: RunLifecycleOptions;
  readonly #limiter: ConcurrencyLimiter<Run>;
  /** Attempts (and admissions) in flight -> settles after the outcome is recorded. */
  readonly #inFlight = new Map<Run, Promise<void>>();
  readonly #backingOff = new Set<Run>();
  #closed = false;

  constructor(options: RunLifecycleOptions) {
    this.#options = options;
    this.#limiter = new ConcurrencyLimiter<Run>(options.limits);
  }

  /** Runs holding a concurrency slot. */
  get running(): number {
    return this.#limiter.inFlight;
  }

  /** Runs waiting for a slot. */
  get waiting(): number {
    return this.#limiter.queued;
  }

  /** New limits apply to the next grant; slots already held are never taken back. */
  setLimits(limits: Limits): void {
    this.#limiter.setLimits(limits);
  }

  submit(fire: Fire): void {
    if (this.#closed) return;
    const run: Run = {
      fire,
      tenant: fire.tenant,
      attempt: 1,
      start: () => this.#granted(run),
      startedAt: 0,
      timedOut: false,
    };
    this.#limiter.enqueue(run);
  }

  /**
   * Stops starting anything: runs waiting for a slot and pending retries are dropped
   * (onDrop), attempts in flight go on until drain().
   */
  close(): void {
    this.#closed = true;
    for (const run of this.#limiter.drain()) this.#drop(run);
    for (const run of this.#backingOff) {
      if (run.retryHandle !== undefined) this.#options.clock.clearTimeout(run.retryHandle);
      // Its last attempt already reported failure; the retry simply does not happen.
      this.#drop(run);
    }
    this.#backingOff.clear();
  }

  /**
   * Waits up to `graceMs` for attempts in flight, then aborts the rest and waits for
   * them to settle. `finished` is false if any had to be aborted.
   */
  async drain(graceMs: number): Promise<{ finished: boolean }> {
    if (this.#inFlight.size === 0) return { finished: true };
    const clock = this.#options.clock;
    let graceTimer: TimerHandle | undefined;
    const graceOver = new Promise<"grace">((resolve) => {
      graceTimer = clock.setTimeout(() => resolve("grace"), graceMs, { unref: true });
    });
    const outcome = await Promise.race([this.#allSettled(), graceOver]);
    if (graceTimer !== undefined) clock.clearTimeout(graceTimer);
    if (outcome !== "grace" || this.#inFlight.size === 0) return { finished: true };
    for (const run of this.#inFlight.keys()) {
      this.#abort(run, new RunAbortedError(run.fire.schedule.name, run.fire.tenant, graceMs));
    }
    await this.#allSettled();
    return { finished: false };
  }

  async #allSettled(): Promise<"settled"> {
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight.values());
    return "settled";
  }

  /** A slot is held: a first attempt is admitted before it starts, a retry goes on. */
  #granted(run: Run): void {
    const admission = this.#options.admission;
    if (run.attempt > 1 || !admission) {
      this.#startAttempt(run);
      return;
    }
    let admitted: Promise<Lease | null>;
    try {
      admitted = Promise.resolve(admission(run.fire));
    } catch {
      admitted = Promise.resolve(null);
    }
    this.#inFlight.set(
      run,
      admitted.then(
        (lease) => this.#admitted(run, lease),
        () => this.#admitted(run, null),
      ),
    );
  }

  #admitted(run: Run, lease: Lease | null): void {
    this.#inFlight.delete(run);
    if (!lease) {
      this.#limiter.release(run.tenant);
      this.#options.onEnd(run.fire, null);
      return;
    }
    run.lease = lease;
    if (this.#closed) {
      this.#limiter.release(run.tenant);
      this.#drop(run);
      return;
    }
    const onLost = () => this.#leaseLost(run);
    lease.lost.addEventListener("abort", onLost, { once: true });
    run.unwatchLease = () => lease.lost.removeEventListener("abort", onLost);
    if (lease.lost.aborted) {
      this.#limiter.release(run.tenant);
      this.#end(run, { status: "failure", error: errorInfo(lease.lost.reason) });
      return;
    }
    this.#startAttempt(run);
  }

  #startAttempt(run: Run): void {
    const { events, clock } = this.#options;
    const controller = new AbortController();
    run.controller = controller;
    run.startedAt = clock.now();
    run.timedOut = false;
    const { runId, schedule, tenant, scheduledAt } = run.fire;
    events.emit("run:started", {
      runId,
      schedule: schedule.name,
      tenant,
      attempt: run.attempt,
      scheduledAt: scheduledAt.toISOString(),
    });
    const timeout = schedule.timeout;
    if (timeout !== undefined) {
      run.timeoutHandle = clock.setTimeout(() => this.#timeOut(run, timeout), timeout);
    }
    let promise: Promise<RunOutcome>;
    try {
      promise = Promise.resolve(
        this.#options.run({
          runId,
          schedule,
          tenant,
          attempt: run.attempt,
          signal: controller.signal,
          scheduledAt,
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
    const reason = new RunTimeoutError(run.fire.schedule.name, run.fire.tenant, timeoutMs);
    run.controller?.abort(reason);
    this.#emitFinished(run, "timeout", false, errorInfo(reason));
  }

  #abort(run: Run, reason: unknown): void {
    run.abortReason ??= reason;
    run.controller?.abort(reason);
  }

  /** Stops the run wherever it is: in an attempt, backing off, or waiting to retry. */
  #leaseLost(run: Run): void {
    const reason = run.lease?.lost.reason;
    if (this.#inFlight.has(run)) {
      this.#abort(run, reason);
    } else if (this.#backingOff.delete(run)) {
      if (run.retryHandle !== undefined) this.#options.clock.clearTimeout(run.retryHandle);
      this.#end(run, { status: "failure", error: errorInfo(reason) });
    } else if (this.#limiter.cancel(run)) {
      this.#end(run, { status: "failure", error: errorInfo(reason) });
    }
  }

  #settle(run: Run, result: Settlement): void {
    const clock = this.#options.clock;
    if (run.timeoutHandle !== undefined) clock.clearTimeout(run.timeoutHandle);
    run.timeoutHandle = undefined;
    this.#inFlight.delete(run);
    let retry = false;
    let end: RunEnd;
    if (run.timedOut) {
      end = { status: "timeout", error: errorInfo(run.controller?.signal.reason) };
    } else if (result.ok) {
      end = { status: "success" };
      this.#emitFinished(run, "success", result.outcome?.degraded === true, undefined);
    } else {
      const error = errorInfo(run.abortReason !== undefined ? run.abortReason : result.error);
      end = { status: "failure", error };
      this.#emitFinished(run, "failure", false, error);
      retry =
        !this.#closed &&
        run.abortReason === undefined &&
        isRetryable(result.error) &&
        run.attempt <= run.fire.schedule.retries.attempts;
    }
    this.#limiter.release(run.tenant);
    if (retry) this.#scheduleRetry(run);
    else this.#end(run, end);
  }

  #scheduleRetry(run: Run): void {
    const { clock, events, random } = this.#options;
    const delayMs = retryDelay(run.attempt, run.fire.schedule.retries, random);
    run.attempt++;
    this.#backingOff.add(run);
    events.emit("run:retry", {
      runId: run.fire.runId,
      schedule: run.fire.schedule.name,
      tenant: run.tenant,
      attempt: run.attempt,
      scheduledAt: run.fire.scheduledAt.toISOString(),
      delayMs,
    });
    run.retryHandle = clock.setTimeout(() => {
      run.retryHandle = undefined;
      this.#backingOff.delete(run);
      // A retry waits for a slot like any run; it does not hold one while backing off.
      if (!this.#closed) this.#limiter.enqueue(run);
    }, delayMs);
  }

  /** The run is over (all attempts). */
  #end(run: Run, end: RunEnd): void {
    run.unwatchLease?.();
    run.lease?.release(end);
    this.#options.onEnd(run.fire, end);
  }

  /** A run that will not (again) start, at close(). */
  #drop(run: Run): void {
    run.unwatchLease?.();
    run.lease?.release(null);
    this.#options.onDrop(run.fire, run.attempt > 1);
  }

  #emitFinished(
    run: Run,
    status: RunStatus,
    degraded: boolean,
    error: RunErrorInfo | undefined,
  ): void {
    this.#options.events.emit("run:finished", {
      runId: run.fire.runId,
      schedule: run.fire.schedule.name,
      tenant: run.tenant,
      attempt: run.attempt,
      scheduledAt: run.fire.scheduledAt.toISOString(),
      status,
      durationMs: this.#options.clock.now() - run.startedAt,
      degraded,
      ...(error ? { error } : {}),
    });
  }
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
