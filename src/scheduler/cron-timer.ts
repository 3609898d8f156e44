import { Cron } from "croner";
import type { Schedule } from "../config/runner-schema.js";
import { DuckcronError } from "../errors.js";
import { type Clock, MAX_TIMER_DELAY_MS, type TimerHandle } from "./clock.js";

/**
 * croner computes the fire times (so DST follows croner's rules: a fixed-time job in a
 * spring-forward gap runs at the first valid time after it, and once when a time
 * repeats; interval jobs run on both passes); the timer itself runs on our Clock so
 * tests need no real sleeps.
 */
export function compileCron(schedule: Schedule, timezone: string): Cron {
  try {
    // No callback: croner only computes; it never arms a timer of its own.
    return new Cron(schedule.cron, { timezone, paused: true, mode: "5-or-6-parts" });
  } catch (error) {
    throw new DuckcronError(
      "CONFIG_INVALID",
      `schedule "${schedule.name}": invalid cron expression "${schedule.cron}": ${(error as Error).message} (5 fields, or 6 with seconds first)`,
      { cause: error },
    );
  }
}

interface Slot {
  at: number;
  seq: number;
  token: number;
  timer: CronTimer;
}

/**
 * All cron timers of a scheduler behind ONE clock timer, ordered by a binary heap. When
 * several schedules are due together (10,000 schedules put thousands on the same
 * second), every one of them fires first and only then are their next times computed:
 * croner's nextRun costs ~0.1-0.5 ms, and computing it between fires would delay the
 * last fire of a batch by the whole batch's computation.
 */
export class TimerQueue {
  readonly #clock: Clock;
  readonly #heap: Slot[] = [];
  #seq = 0;
  #handle: TimerHandle | undefined;
  #armedAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get clock(): Clock {
    return this.#clock;
  }

  /** @internal used by CronTimer */
  push(timer: CronTimer, token: number, at: number): void {
    this.#insert({ at, seq: ++this.#seq, token, timer });
    if (at < this.#armedAt) this.#arm();
  }

  /** Forgets every timer (shutdown). */
  clear(): void {
    this.#heap.length = 0;
    this.#disarm();
  }

  #disarm(): void {
    if (this.#handle !== undefined) this.#clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #arm(): void {
    this.#disarm();
    // Stopped timers leave stale slots behind; drop them rather than wake up for nothing.
    while (this.#heap.length > 0 && !live(this.#heap[0]!)) this.#pop();
    const top = this.#heap[0];
    if (!top) return;
    const delay = top.at - this.#clock.now();
    this.#armedAt = top.at;
    // Delays beyond the timer maximum (~24.8 days) are chained: wake up, re-check, wait again.
    this.#handle = this.#clock.setTimeout(
      () => this.#wake(),
      Math.min(Math.max(0, delay), MAX_TIMER_DELAY_MS),
    );
  }

  #wake(): void {
    this.#handle = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    const due: Slot[] = [];
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const slot = this.#pop();
      if (live(slot)) due.push(slot);
    }
    try {
      for (const slot of due) if (live(slot)) slot.timer.fire(slot.at);
    } finally {
      for (const slot of due) if (live(slot)) slot.timer.advance(slot.token, slot.at, now);
      if (this.#handle === undefined) this.#arm();
    }
  }

  #insert(slot: Slot): void {
    const heap = this.#heap;
    heap.push(slot);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): Slot {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Earlier first; at the same time, in the order they were queued. */
function before(a: Slot, b: Slot): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function live(slot: Slot): boolean {
  return slot.token === slot.timer.token;
}

/** Fires `onFire(scheduledAt)` at each run time of `cron`, until stopped. */
export class CronTimer {
  readonly #cron: Cron;
  readonly #queue: TimerQueue;
  readonly #onFire: (scheduledAt: Date) => void;
  #next: Date | null = null;
  /** Bumped on start/stop so slots queued earlier are recognised as stale. */
  token = 0;

  constructor(cron: Cron, queue: TimerQueue, onFire: (scheduledAt: Date) => void) {
    this.#cron = cron;
    this.#queue = queue;
    this.#onFire = onFire;
  }

  /** The next fire time, or null when stopped or the pattern has no future match. */
  get next(): Date | null {
    return this.#next;
  }

  start(): void {
    this.stop();
    this.#schedule(this.#cron.nextRun(new Date(this.#queue.clock.now())));
  }

  stop(): void {
    this.token++;
    this.#next = null;
  }

  /** @internal called by the queue when the slot is due */
  fire(at: number): void {
    this.#onFire(new Date(at));
  }

  /**
   * @internal called by the queue after a batch has fired. Counts from now, not from the
   * due time: after a stall (suspended host, blocked loop) the missed times collapse into
   * the one late fire instead of a burst.
   */
  advance(token: number, due: number, now: number): void {
    if (token !== this.token) return;
    this.#schedule(this.#cron.nextRun(new Date(Math.max(now, due))));
  }

  #schedule(next: Date | null): void {
    this.#next = next;
    if (next) this.#queue.push(this, this.token, next.getTime());
  }
}
