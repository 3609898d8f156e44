import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** Runs bench/secrets.ts (npm run bench:secrets); kept apart from the test suite. */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["bench/secrets.ts"],
    testTimeout: 900_000,
    pool: "forks",
    silent: false,
  },
});
