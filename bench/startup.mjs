// `duckcron validate` on the bundled example against `node -e 0`: what the CLI costs
// over a bare Node start. Target: ratio <= 3.
import { fileURLToPath } from "node:url";
import { compare } from "./lib.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const repetitions = Number(process.env.BENCH_REPETITIONS ?? 15);
const env = { ...process.env, DUCKCRON_CONFIG: "runner.yaml.example" };

const ratio = compare({
  name: "startup",
  repetitions,
  warmup: 2,
  candidate: {
    label: "duckcron validate",
    argv: [process.execPath, "dist/cli/main.js", "validate"],
    options: { cwd: root, env },
  },
  baseline: {
    label: "node -e 0",
    argv: [process.execPath, "-e", "0"],
    options: { cwd: root, env },
  },
});
console.log(`  target <= 3.00: ${ratio <= 3 ? "met" : "not met"}`);
