/**
 * Deprecation notices that dependencies print through process.emitWarning. The AWS SDK
 * prints a dozen lines on every command that loads it when Node is older than the
 * SDK's next floor; that is a note for whoever runs `doctor`, not for every cron run.
 * Known notices are held back here and `doctor` reports them once.
 */

/**
 * The notices held back, by the name a notice carries: its warning type, or the
 * `Name:` prefix of its text (the AWS SDK emits a plain Warning whose text starts
 * with its name).
 */
export const NOTICE_KEYS = ["NodeVersionSupportWarning"] as const;

const held: string[] = [];
let installed = false;

function keyOf(warning: string | Error, typeOrOptions: unknown): string | undefined {
  const text = typeof warning === "string" ? warning : warning.message;
  const type =
    typeof typeOrOptions === "string"
      ? typeOrOptions
      : typeof typeOrOptions === "object" && typeOrOptions !== null && "type" in typeOrOptions
        ? String(typeOrOptions.type)
        : typeof warning === "string"
          ? undefined
          : warning.name;
  return NOTICE_KEYS.find((key) => type === key || text.startsWith(`${key}:`));
}

/** From now on, known notices are kept for `heldNotices()` instead of printed. */
export function holdDependencyNotices(): void {
  if (installed) return;
  installed = true;
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (keyOf(warning, rest[0]) !== undefined) {
      held.push(typeof warning === "string" ? warning : warning.message);
      return;
    }
    (emit as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** The known notices emitted so far, each once, with its whitespace collapsed to one line. */
export function heldNotices(): string[] {
  return [...new Set(held.map((text) => text.replace(/\s+/g, " ").trim()))];
}
