import type { Schedule } from "../config/runner-schema.js";

/**
 * Delay before re-try number `retry` (1 = the first re-try): exponential with full
 * jitter, so tenants failing together against the same backend do not retry in step.
 * `random` returns [0, 1) like Math.random.
 */
export function retryDelay(
  retry: number,
  retries: Schedule["retries"],
  random: () => number,
): number {
  const ceiling = Math.min(retries.max_backoff, retries.backoff * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}
