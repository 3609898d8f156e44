// Shared helpers for the benchmarks: run a command several times, report medians.
import { spawnSync } from "node:child_process";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance, listValue } from "@duckdb/node-api";

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

/** `count` small parquet files data/part<i>.parquet under `dir` for views to read. */
export async function writeParquetFiles(dir, count) {
  mkdirSync(join(dir, "data"), { recursive: true });
  const instance = await DuckDBInstance.create(":memory:");
  const c = await instance.connect();
  for (let f = 0; f < count; f++) {
    await c.run(
      `COPY (SELECT range AS id, range % 97 AS k, 'row ' || range AS label FROM range(${1000 + f})) TO '${join(dir, "data", `part${f}.parquet`)}' (FORMAT parquet)`,
    );
  }
  c.closeSync();
  instance.closeSync();
}

/**
 * What a hand-written script needs to build a catalog safely: execute the statements
 * into a temp file, checkpoint, fsync, rename. `value` maps a parameter to its value.
 */
export async function buildCatalogFile(target, options, statements, value = (v) => v) {
  const temp = `${target}.tmp`;
  const instance = await DuckDBInstance.create(temp, options);
  const connection = await instance.connect();
  for (const s of statements) {
    if (s.params.length === 0) {
      await connection.run(s.sql);
      continue;
    }
    const prepared = await connection.prepare(s.sql);
    prepared.bind(s.params.map((v) => (Array.isArray(v) ? listValue(v) : value(v))));
    await prepared.run();
  }
  await connection.run("CHECKPOINT");
  connection.closeSync();
  instance.closeSync();
  const fd = openSync(temp, "r");
  fsyncSync(fd);
  closeSync(fd);
  renameSync(temp, target);
}
