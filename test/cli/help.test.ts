import { describe, expect, it } from "vitest";
import { COMMAND_USAGE, type CommandName } from "../../src/cli/usage.js";
import { runCli } from "./run-cli.js";

const COMMANDS = Object.keys(COMMAND_USAGE) as CommandName[];

/** The first line of a command's usage, as the CLI prints it. */
function usageLine(command: CommandName): string {
  return COMMAND_USAGE[command].split("\n")[0]!;
}

describe("duckcron help", () => {
  it.each(COMMANDS)("%s --help prints its usage and exits 0", async (command) => {
    // A config that does not exist: help must not try to read one.
    const result = await runCli([command, "--help"], {
      env: { DUCKCRON_CONFIG: "/nonexistent/runner.yaml" },
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: ${usageLine(command)}`);
  });

  it.each(COMMANDS)("help %s prints the same as -h", async (command) => {
    const [viaHelp, viaFlag] = await Promise.all([
      runCli(["help", command]),
      runCli([command, "-h"]),
    ]);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toContain(`Usage: ${usageLine(command)}`);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
  });

  it("--help after other arguments still answers, but not after --", async () => {
    const help = await runCli(["run", "sales", "--tenant", "acme", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(`Usage: ${usageLine("run")}`);

    const positional = await runCli(["schema", "--", "--help"]);
    expect(positional.code).toBe(2);
    expect(positional.stdout).toBe("");
  });

  it("duckcron --help lists every command's usage", async () => {
    const result = await runCli(["--help"]);
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toContain(usageLine(command));
  });

  it("help for an unknown command is a usage error", async () => {
    const result = await runCli(["help", "frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
  });

  it("a usage error prints the usage without the error code", async () => {
    const result = await runCli(["validate", "--frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`usage: ${usageLine("validate")}`);
    expect(result.stderr).not.toContain("[USAGE]");
  });
});
