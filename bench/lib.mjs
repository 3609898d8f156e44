// Shared helpers for the benchmarks: run a command several times, report medians.
import { spawnSync } from "node:child_process";

export function timeCommand(argv, options = {}) {
  const started = process.hrtime.bigint();
  const result = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", ...options });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) {
    throw new Error(
      `${argv.join(" ")} exited ${result.status}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return ms;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function fmt(ms) {
  return `${ms.toFixed(1)} ms`;
}

/** Alternates the two commands so drift on a shared machine hits both alike. */
export function compare({ name, candidate, baseline, repetitions, warmup = 1, before }) {
  for (let i = 0; i < warmup; i++) {
    before?.();
    timeCommand(candidate.argv, candidate.options);
    before?.();
    timeCommand(baseline.argv, baseline.options);
  }
  const c = [];
  const b = [];
  const ratios = [];
  for (let i = 0; i < repetitions; i++) {
    before?.();
    const tc = timeCommand(candidate.argv, candidate.options);
    before?.();
    const tb = timeCommand(baseline.argv, baseline.options);
    c.push(tc);
    b.push(tb);
    ratios.push(tc / tb);
  }
  console.log(`${name}: ${repetitions} repetitions`);
  console.log(`  ${candidate.label.padEnd(28)} median ${fmt(median(c))}`);
  console.log(`  ${baseline.label.padEnd(28)} median ${fmt(median(b))}`);
  console.log(`  ratio (median of per-repetition ratios): ${median(ratios).toFixed(3)}`);
  return median(ratios);
}
