import { type ChildProcessByStdio, execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
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
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? REPO,
    // A clean environment: nothing from the developer's shell leaks into a test.
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return collectOutput(child);
}

/** What a spawned process writes, and its exit code, once it has exited. */
export function collectOutput(
  child: ChildProcessByStdio<null, Readable, Readable>,
): Promise<CliResult> {
  return new Promise((done, fail) => {
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

/** A port nothing listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
    server.on("error", fail);
  });
}

/**
 * The built package installed into `app` as the Dockerfile's runtime stage installs
 * it: the bundle plus a production-only `npm ci --omit=dev` from the same lockfile.
 * The npm cache makes this quick after the checkout's own `npm ci`.
 */
export function installProduction(app: string): void {
  mkdirSync(app, { recursive: true });
  for (const file of ["package.json", "package-lock.json"])
    cpSync(join(REPO, file), join(app, file));
  cpSync(join(REPO, "dist"), join(app, "dist"), { recursive: true });
  execFileSync("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd: app,
    stdio: "pipe",
  });
}
