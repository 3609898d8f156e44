import { type ParseArgsConfig, parseArgs } from "node:util";
import { DuckcronError } from "../errors.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

export const COMMON_OPTIONS = {
  config: { type: "string", short: "c" },
  strict: { type: "boolean", default: false },
} as const satisfies Options;

/** parseArgs with usage errors turned into DuckcronError(USAGE). */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new DuckcronError("USAGE", `${(error as Error).message}\nusage: ${usage}`);
  }
}

/** `-c`, then $DUCKCRON_CONFIG, then ./runner.yaml. */
export function configPath(flag: string | undefined): string {
  return flag ?? process.env.DUCKCRON_CONFIG ?? "runner.yaml";
}
