/**
 * Time as the scheduler sees it. Injected so tests advance a fake clock instead of
 * sleeping; the daemon uses `systemClock`.
 */

/** Opaque: only the clock that made a handle can clear it. */
export type TimerHandle = unknown;

export interface TimerOptions {
  /**
   * The timer alone does not keep the process alive. Cron timers are ref'd (the daemon
   * exists to fire them); timers that only bound a wait (shutdown grace) are not.
   */
  unref?: boolean;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Node clamps a delay above this to 1 ms (with only a warning), so a yearly cron would
 * fire immediately. Callers chain timers instead of passing longer delays.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, options) {
    const timer = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS));
    if (options?.unref) timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
