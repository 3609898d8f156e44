import { z } from "zod";

const UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/**
 * Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer delay fires after
 * 1 ms instead, so a `timeout: 30d` would abort every run at once. Every duration is
 * a timer somewhere, so all are bounded by whole days below that.
 */
export const MAX_DURATION_MS = 24 * UNITS_MS.d;

/** "30s", "5m", "1h", "250ms" or a number of seconds. Parses to milliseconds, at most 24d. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  let ms: number;
  if (typeof value === "number") ms = Math.round(value * 1_000);
  else {
    const match = DURATION.exec(value.trim());
    if (!match) {
      ctx.addIssue({
        code: "custom",
        message: `"${value}" is not a duration; write it like 30s, 5m, 1h or 250ms`,
      });
      return z.NEVER;
    }
    ms = Math.round(Number(match[1]) * UNITS_MS[match[2] as keyof typeof UNITS_MS]);
  }
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) {
    ctx.addIssue({ code: "custom", message: "at most 24d (the longest timer Node can set)" });
    return z.NEVER;
  }
  return ms;
});

/** A duration where 0 means nothing sensible (a timeout that has always expired). */
export const positiveDuration = duration.refine((ms) => ms > 0, {
  message: "must be more than 0",
});
