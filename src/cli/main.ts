#!/usr/bin/env node
/**
 * Entry point. Each command lives in its own module and is imported only when asked
 * for, so `duckcron validate` never loads DuckDB or a cloud SDK.
 */
import { DuckcronError } from "../errors.js";
import { holdDependencyNotices } from "./notices.js";
import { EXIT, writeError } from "./output.js";
import { asksForHelp, type CommandName, commandHelp, isCommand, overview } from "./usage.js";

const COMMANDS = {
  validate: () => import("./validate.js"),
  plan: () => import("./plan.js"),
  run: () => import("./run.js"),
  start: () => import("./start.js"),
  audit: () => import("./audit.js"),
  schema: () => import("./schema.js"),
  doctor: () => import("./doctor.js"),
  extensions: () => import("./extensions.js"),
} as const satisfies Record<
  CommandName,
  () => Promise<{ default: (argv: string[]) => Promise<number> }>
>;

async function main(argv: string[]): Promise<number> {
  holdDependencyNotices();
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h") {
    process.stdout.write(`${overview()}\n`);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === "help") {
    const [topic] = rest;
    if (topic === undefined) {
      process.stdout.write(`${overview()}\n`);
      return EXIT.ok;
    }
    if (!isCommand(topic)) return unknownCommand(topic);
    process.stdout.write(`${commandHelp(topic)}\n`);
    return EXIT.ok;
  }
  if (command === "--version" || command === "version") {
    const { VERSION } = await import("../version.js");
    process.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  if (!isCommand(command)) return unknownCommand(command);
  // Answered before the command's module loads: help never needs DuckDB or a config.
  if (asksForHelp(rest)) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return EXIT.ok;
  }
  const load = COMMANDS[command];
  const module = await load();
  return module.default(rest);
}

function unknownCommand(command: string): number {
  process.stderr.write(`duckcron: unknown command "${command}"\n\n${overview()}\n`);
  return EXIT.usage;
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
