import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";

/** The built CLI, as users run it (`npm test` builds first). */
export const REPO = resolve(import.meta.dirname, "../..");
export const CLI = join(REPO, "dist/cli/main.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? REPO,
      // A clean environment: nothing from the developer's shell leaks into a test.
      env: { PATH: process.env.PATH, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

/** A private copy of the bundled example (runner.yaml.example, jobs/, data/) to build in. */
export function copyExample(): string {
  const dir = mkdtempSync(join(tmpdir(), "duckcron-example-"));
  cpSync(join(REPO, "runner.yaml.example"), join(dir, "runner.yaml"));
  cpSync(join(REPO, "jobs"), join(dir, "jobs"), { recursive: true });
  cpSync(join(REPO, "data"), join(dir, "data"), { recursive: true });
  return dir;
}

/** The demo secrets of example.env as an env object. */
export function exampleEnv(): Record<string, string> {
  return parseEnv(readFileSync(join(REPO, "example.env"), "utf8")) as Record<string, string>;
}
