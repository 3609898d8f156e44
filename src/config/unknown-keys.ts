import { closest, distance } from "fastest-levenshtein";

/** "unknown key "crn" (did you mean "cron"?)"; the hint only when a key is close enough. */
export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const hint = suggestion(key, allowed);
  if (hint) return `unknown key "${key}" (did you mean "${hint}"?)`;
  return allowed.length > 0
    ? `unknown key "${key}" (allowed: ${allowed.join(", ")})`
    : `unknown key "${key}"`;
}

export function suggestion(key: string, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) return undefined;
  const best = closest(key, allowed as string[]);
  // Beyond this, the "suggestion" is just some other key and misleads more than helps.
  return distance(key, best) <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}
