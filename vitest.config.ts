import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // DuckDB builds and child processes are real; give them room on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // CI also keeps a machine-readable summary (.ci/run prints "N passed, N failed" from it).
    reporters: process.env.CI
      ? ["default", ["json", { outputFile: ".tmp/vitest.json" }]]
      : ["default"],
  },
});
