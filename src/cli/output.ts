import { ConfigError, type ConfigIssue, DuckcronError, formatIssue } from "../errors.js";

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 2 } as const;

interface Scrub {
  scrub(text: string): string;
}
const NO_SCRUB: Scrub = { scrub: (text) => text };

/** Writes an error for a person: located config issues one per line, others as `code: message`. */
export function writeError(error: unknown, scrubber: Scrub = NO_SCRUB): void {
  process.stderr.write(`${scrubber.scrub(describeError(error))}\n`);
}

export function describeError(error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  // A usage error already ends with the usage line; its code would read as part of it.
  if (error instanceof DuckcronError && error.code === "USAGE") return error.message;
  if (error instanceof DuckcronError) return `${error.message} [${error.code}]`;
  if (error instanceof Error) return `internal error: ${error.message}`;
  return `internal error: ${String(error)}`;
}

export function writeWarnings(warnings: readonly ConfigIssue[], scrubber: Scrub = NO_SCRUB): void {
  for (const warning of warnings) process.stderr.write(`${scrubber.scrub(formatIssue(warning))}\n`);
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof DuckcronError) {
    switch (error.code) {
      case "CONFIG_INVALID":
      case "CONFIG_NOT_FOUND":
      case "SCHEDULE_NOT_FOUND":
      case "TENANT_NOT_FOUND":
      case "USAGE":
      case "STATE_DIR_UNWRITABLE":
      case "CATALOG_DIR_UNWRITABLE":
        return EXIT.config;
      default:
        return EXIT.failure;
    }
  }
  return EXIT.failure;
}

/** First line only: a failed tenant gets one line of cause. */
export function oneLine(text: string): string {
  const first = text.split("\n", 1)[0] ?? "";
  return first.length < text.length ? `${first} …` : first;
}
