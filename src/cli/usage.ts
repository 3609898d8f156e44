/**
 * Every command's usage, in one place: `duckcron --help`, `duckcron <command> --help`,
 * `duckcron help <command>` and the usage errors all print from here, so they cannot
 * drift apart.
 */

export const COMMAND_USAGE = {
  validate: "duckcron validate [-c runner.yaml] [--strict]",
  plan: "duckcron plan <schedule> --tenant <id> [-c runner.yaml] [--strict]",
  run: `duckcron run <schedule> [--tenant <id>]... [-c runner.yaml] [--strict] [--force] [--json]
             [--pushgateway URL] [--metrics-file PATH]`,
  start: "duckcron start [-c runner.yaml] [--strict] [--listen host:port]",
  audit: "duckcron audit verify <audit.jsonl>",
  doctor: "duckcron doctor [-c runner.yaml]",
  schema: "duckcron schema runner|job",
  extensions: "duckcron extensions install <name>... [--dir DIR] [--repository URL|DIR]",
} as const;

export type CommandName = keyof typeof COMMAND_USAGE;

const SUMMARY: Record<CommandName, string> = {
  validate: "Check runner.yaml and every job file it names; exit 2 on the first located problem.",
  plan: "Print the statements a run would execute for one tenant, secret values masked.",
  run: "Build a schedule's catalogs once (for cron, a CronJob or a script); exit 1 if any tenant failed.",
  start: "Run the daemon: fire schedules, serve /metrics /healthz /readyz /status; SIGHUP reloads.",
  audit: "Check an audit log's hash chain and name the first record that breaks it.",
  doctor: "Check config, secrets backend, DuckDB, extensions, directories and the Node version.",
  schema: "Print the JSON Schema of runner.yaml or of a job file.",
  extensions:
    "Install DuckDB extensions for the linked DuckDB, from the network, a mirror or a local directory.",
};

const FOOTER = `The config defaults to $DUCKCRON_CONFIG, then ./runner.yaml.
Exit codes: 0 success, 1 a run failed, 2 invalid configuration or usage.`;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_USAGE, name);
}

/** `duckcron --help`: every command's usage line. */
export function overview(): string {
  const lines = Object.values(COMMAND_USAGE).map((usage) => `  ${usage.replace(/\n/g, "\n  ")}`);
  return `duckcron — build and refresh DuckDB catalogs on cron schedules

Usage:
${lines.join("\n")}
  duckcron help <command>       (or duckcron <command> --help)

${FOOTER}`;
}

/** `duckcron <command> --help`. */
export function commandHelp(command: CommandName): string {
  return `Usage: ${COMMAND_USAGE[command]}\n\n${SUMMARY[command]}\n\n${FOOTER}`;
}

/**
 * True when the arguments ask for help. Only before `--`: after it every argument is
 * a positional, and no command takes `-h` for anything else.
 */
export function asksForHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === "--") return false;
    if (arg === "--help" || arg === "-h") return true;
  }
  return false;
}
