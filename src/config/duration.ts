import { z } from "zod";

const UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** "30s", "5m", "1h", "250ms" or a number of seconds. Parses to milliseconds. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === "number") return Math.round(value * 1_000);
  const match = DURATION.exec(value.trim());
  if (!match) {
    ctx.addIssue({
      code: "custom",
      message: `"${value}" is not a duration; write it like 30s, 5m, 1h or 250ms`,
    });
    return z.NEVER;
  }
  return Math.round(Number(match[1]) * UNITS_MS[match[2] as keyof typeof UNITS_MS]);
});
