#!/usr/bin/env node
/**
 * Entry point. Each command lives in its own module and is imported only when asked
 * for, so `duckcron validate` never loads DuckDB or a cloud SDK.
 */
import { DuckcronError } from "../errors.js";
import { EXIT, writeError } from "./output.js";

const COMMANDS = {
  validate: () => import("./validate.js"),
  plan: () => import("./plan.js"),
  run: () => import("./run.js"),
  start: () => import("./start.js"),
  audit: () => import("./audit.js"),
  schema: () => import("./schema.js"),
  doctor: () => import("./doctor.js"),
  extensions: () => import("./extensions.js"),
} as const;

const USAGE = `duckcron — build and refresh DuckDB catalogs on cron schedules

Usage:
  duckcron validate [-c runner.yaml] [--strict]
  duckcron plan <schedule> --tenant <id> [-c runner.yaml] [--strict]
  duckcron run <schedule> [--tenant <id>]... [-c runner.yaml] [--strict] [--force] [--json]
               [--pushgateway URL] [--metrics-file PATH]
  duckcron start [-c runner.yaml] [--strict] [--listen host:port]
  duckcron audit verify <audit.jsonl>
  duckcron doctor [-c runner.yaml]
  duckcron schema runner|job
  duckcron extensions install <name>... [--dir DIR] [--repository URL|DIR]

The config defaults to $DUCKCRON_CONFIG, then ./runner.yaml.
Exit codes: 0 success, 1 a run failed, 2 invalid configuration or usage.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === "--version" || command === "version") {
    const { VERSION } = await import("../version.js");
    process.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const load = COMMANDS[command as keyof typeof COMMANDS];
  if (!load) {
    process.stderr.write(`duckcron: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const module = await load();
  return module.default(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The daemon has stopped everything it started; do not wait on a stray handle
    // (a DuckDB worker, a keep-alive socket) to let the container exit.
    if (process.argv[2] === "start") process.exit(code);
  },
  (error: unknown) => {
    writeError(error);
    process.exitCode =
      error instanceof DuckcronError && error.code === "CONFIG_INVALID"
        ? EXIT.config
        : EXIT.failure;
  },
);
