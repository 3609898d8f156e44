import { type Clock, MAX_TIMER_DELAY_MS, type TimerHandle } from "../../src/scheduler/clock.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets queued promise callbacks (run settlement, event chains) finish; not a sleep. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that only moves when told. advance() runs due timers in time order (ties in
 * the order they were set), moving `now` to each timer's time and letting promise
 * callbacks settle after each, so code that reacts to a timer by setting another works.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();
  /** Every delay ever requested, to check chaining of long waits. */
  readonly requestedDelays: number[] = [];

  constructor(start: string | number | Date) {
    this.#now = new Date(start).getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    // Node would clamp a longer delay to 1 ms and fire at once; fail loudly instead.
    if (ms > MAX_TIMER_DELAY_MS) throw new RangeError(`timer delay ${ms} ms exceeds the maximum`);
    this.requestedDelays.push(ms);
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  async advanceTo(target: string | number | Date): Promise<void> {
    const until = new Date(target).getTime();
    await settle();
    for (;;) {
      let due: [number, Timer] | undefined;
      for (const entry of this.#timers) {
        const [, timer] = entry;
        if (timer.at > until) continue;
        if (!due || timer.at < due[1].at || (timer.at === due[1].at && timer.seq < due[1].seq)) {
          due = entry;
        }
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].fn();
      await settle();
    }
    this.#now = Math.max(this.#now, until);
    await settle();
  }
}
