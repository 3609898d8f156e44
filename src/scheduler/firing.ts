import type { Cron } from "croner";
import type { Schedule } from "../config/runner-schema.js";
import type { Clock } from "./clock.js";
import { CronTimer, compileCron, TimerQueue } from "./cron-timer.js";
import type { RunHistory } from "./state.js";

/**
 * When schedules fire: cron times per schedule in its time zone, re-arming on reload,
 * and `catchup: latest` at start. Each fire is handed on per tenant; what becomes of
 * it (overlap, slots, attempts) is not decided here.
 */

export type OnFire = (schedule: Schedule, tenant: string, scheduledAt: Date) => void;

export interface FiringOptions {
  schedules: readonly Schedule[];
  /** For schedules without a time zone of their own. */
  timezone: string;
  clock: Clock;
  onFire: OnFire;
  /** Last run times, for `catchup: latest`. */
  state?: RunHistory | undefined;
}

export interface FiringEntry {
  readonly schedule: Schedule;
  readonly timezone: string;
  /** Null when disabled, not started, stopped, or the pattern has no future match. */
  readonly nextRun: Date | null;
}

interface Entry {
  schedule: Schedule;
  timezone: string;
  cron: Cron;
  timer: CronTimer | null;
}

export class Firing {
  readonly #clock: Clock;
  readonly #onFire: OnFire;
  readonly #state: RunHistory | undefined;
  readonly #timers: TimerQueue;
  #entries: Map<string, Entry>;
  /** pattern+timezone -> compiled Cron, shared by the schedules that use it. */
  #crons = new Map<string, Cron>();
  #armed = false;

  constructor(options: FiringOptions) {
    this.#clock = options.clock;
    this.#onFire = options.onFire;
    this.#state = options.state;
    this.#timers = new TimerQueue(options.clock);
    this.#entries = this.#compile(options.schedules, options.timezone);
  }

  /** Arms every enabled schedule, then fires missed `catchup: latest` schedules once. */
  start(): void {
    if (this.#armed) return;
    this.#armed = true;
    for (const entry of this.#entries.values()) this.#arm(entry);
    for (const entry of this.#entries.values()) this.#catchUp(entry);
  }

  /**
   * Replaces the schedule set: removed schedules stop firing; a schedule whose cron,
   * timezone or `enabled` changed is re-armed; an unchanged one keeps its timer. Throws
   * (changing nothing) if a cron does not compile.
   */
  reload(schedules: readonly Schedule[], timezone: string): void {
    const next = this.#compile(schedules, timezone);
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
    if (this.#armed) {
      for (const entry of next.values()) if (entry.timer === null) this.#arm(entry);
    }
  }

  /** Stops every timer for good. */
  stop(): void {
    for (const entry of this.#entries.values()) entry.timer?.stop();
    this.#timers.clear();
  }

  entries(): FiringEntry[] {
    return [...this.#entries.values()].map((entry) => ({
      schedule: entry.schedule,
      timezone: entry.timezone,
      nextRun: entry.timer?.next ?? null,
    }));
  }

  /**
   * Compiles every cron before anything changes, so a bad one leaves the set as it
   * was. Identical pattern+timezone pairs share one Cron: croner keeps ~80 KB of tables
   * per pattern (a 10,000-entry year table), which is 800 MB for 10,000 schedules, and a
   * paused Cron without a callback is a pure calculator, safe to share.
   */
  #compile(schedules: readonly Schedule[], defaultTimezone: string): Map<string, Entry> {
    const entries = new Map<string, Entry>();
    const crons = new Map<string, Cron>();
    for (const schedule of schedules) {
      const timezone = schedule.timezone ?? defaultTimezone;
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
      const current = this.#entries.get(name)?.schedule;
      if (!current) return;
      for (const tenant of current.tenants) this.#onFire(current, tenant, scheduledAt);
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
        this.#onFire(entry.schedule, tenant, latest);
      }
    }
  }
}
