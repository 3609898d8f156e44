import { createRequire } from "node:module";
import pino from "pino";

export interface LoggerOptions {
  /** Every serialized line passes through `scrub` before it is written. */
  scrubber: { scrub(text: string): string };
  /** pino level name (trace|debug|info|warn|error|fatal|silent). Default info. */
  level?: string;
  /** Where lines go. Default: stdout (fd 1), written synchronously. */
  destination?: NodeJS.WritableStream | number;
  /** Human-readable lines via pino-pretty. Default: when the destination is a TTY. */
  pretty?: boolean;
}

type Line = (text: string) => void;

/**
 * A pino logger whose every line is masked by the scrubber after serialization,
 * so a secret value is caught wherever it hides: the message, an error's message,
 * stack or cause, or any nested field.
 *
 * File descriptors are written synchronously (sonic-boom with sync: true), so a
 * CLI may call process.exit right after logging without losing the line.
 */
export function createLogger(opts: LoggerOptions): pino.Logger {
  const target = opts.destination ?? 1;
  const write = sink(target);
  const pretty = opts.pretty ?? isTty(target);
  const format = pretty ? prettifier() : undefined;
  const stream: pino.DestinationStream = {
    write(line: string) {
      const scrubbed = opts.scrubber.scrub(line);
      // Scrubbed again after formatting: pretty printing unescapes JSON strings,
      // which can reassemble a spelling the JSON form hid.
      write(format === undefined ? scrubbed : opts.scrubber.scrub(format(scrubbed)));
    },
  };
  return pino(
    {
      level: opts.level ?? "info",
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors under `error` too, not just `err`: otherwise they serialize as `{}`.
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    stream,
  );
}

function sink(target: NodeJS.WritableStream | number): Line {
  if (typeof target === "number") {
    const boom = pino.destination({ fd: target, sync: true });
    return (text) => {
      boom.write(text);
    };
  }
  return (text) => {
    target.write(text);
  };
}

function isTty(target: NodeJS.WritableStream | number): boolean {
  if (typeof target === "number") return target === 1 ? process.stdout.isTTY === true : false;
  return (target as { isTTY?: boolean }).isTTY === true;
}

/** Loaded only when needed: daemons in containers log JSON and never pay for it. */
function prettifier(): (line: string) => string {
  const require = createRequire(import.meta.url);
  const { prettyFactory } = require("pino-pretty") as typeof import("pino-pretty");
  return prettyFactory({ translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" });
}
