import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Runs bench/secrets.ts (npm run bench:secrets); kept apart from the test suite.
 * BENCH_CPU_PROF=<folder> writes a V8 CPU profile of the client process there.
 */
const profileDir = process.env.BENCH_CPU_PROF;

export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["bench/secrets.ts"],
    testTimeout: 900_000,
    pool: "forks",
    silent: false,
    ...(profileDir ? { execArgv: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] } : {}),
  },
});
