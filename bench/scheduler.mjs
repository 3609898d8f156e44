// duckcron's Scheduler against croner alone, firing the same 10,000 mixed crons with a
// no-op run on the real clock. Each side runs in its own child process (same time
// window, so machine noise hits both) so RSS and CPU are its own.
// Reports RSS, CPU while idling and fire delay p50/p99; prints ratios, asserts nothing.
// Targets: RSS <= 150 MB, p99 delay <= 1.5x croner's.
// Both children set up first; the parent starts them together once both are ready, and
// fires in the first BENCH_WARMUP_SECONDS are not counted.
// Env: BENCH_SCHEDULES (10000), BENCH_SECONDS (25), BENCH_WARMUP_SECONDS (3).
// Run through `npm run bench:scheduler` (builds dist/ first).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCHEDULES = Number(process.env.BENCH_SCHEDULES ?? 10_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 25);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];

/** A mix of second-level and minute-level crons; most fire a few times in the window. */
function cronFor(i) {
  switch (i % 20) {
    case 0:
      return "* * * * * *";
    case 1:
    case 2:
      return "*/10 * * * * *";
    case 3:
    case 4:
      return "*/15 * * * * *";
    case 5:
    case 6:
    case 7:
    case 8:
    case 9:
    case 10:
      return `${i % 60} * * * * *`;
    case 11:
    case 12:
      return "* * * * *";
    case 13:
    case 14:
      return "*/5 * * * *";
    case 15:
    case 16:
      return "0 * * * *";
    case 17:
    case 18:
      return "30 2 * * *";
    default:
      return "0 9 * * 1-5";
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function child(mode) {
  const delays = [];
  let countFrom = Number.POSITIVE_INFINITY;
  // A schedule firing twice within one wall-clock second is a repeat, not a second
  // scheduled time (croner does this when a timer wakes a hair early).
  const seen = new Set();
  let repeats = 0;
  const fired = (scheduledAt, now, id) => {
    const key = `${id}@${Math.round(now / 1000)}`;
    if (seen.has(key)) repeats += 1;
    seen.add(key);
    if (scheduledAt >= countFrom) delays.push(now - scheduledAt);
  };
  const setupStart = performance.now();
  let start;
  let stop;
  if (mode === "duckcron") {
    const { Scheduler, EventBus, runnerSectionSchema } = await import("../dist/index.js");
    const runner = runnerSectionSchema.parse({
      max_concurrent_runs: SCHEDULES,
      max_concurrent_runs_per_tenant: SCHEDULES,
      schedules: Array.from({ length: SCHEDULES }, (_, i) => ({
        name: `s${i}`,
        config: "jobs/bench.yaml",
        cron: cronFor(i),
        timezone: TIMEZONES[i % TIMEZONES.length],
        tenants: [`t${i}`],
      })),
    });
    const scheduler = new Scheduler({
      schedules: runner.schedules,
      runner,
      events: new EventBus(),
      run: async ({ schedule, scheduledAt }) => {
        fired(scheduledAt.getTime(), Date.now(), schedule.name);
        return { degraded: false };
      },
    });
    start = () => scheduler.start();
    stop = () => scheduler.shutdown();
  } else {
    const { Cron } = await import("croner");
    const jobs = [];
    for (let i = 0; i < SCHEDULES; i++) {
      jobs.push(
        new Cron(cronFor(i), { timezone: TIMEZONES[i % TIMEZONES.length], mode: "5-or-6-parts" }),
      );
    }
    // Armed only on "go", as the Scheduler arms in start(): setup time is not fire delay.
    start = () => {
      for (const [index, job] of jobs.entries()) {
        let expected = job.nextRun()?.getTime();
        job.schedule(() => {
          fired(expected, Date.now(), index);
          expected = job.nextRun()?.getTime();
        });
      }
    };
    stop = async () => {
      for (const job of jobs) job.stop();
    };
  }
  const setupMs = performance.now() - setupStart;
  global.gc?.();
  await new Promise((resolve) => {
    process.once("message", resolve);
    process.send("ready");
  });
  countFrom = Date.now() + WARMUP * 1000;
  start();
  await new Promise((resolve) => setTimeout(resolve, WARMUP * 1000));
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = performance.now() - wallStart;
  const rss = process.memoryUsage().rss;
  await stop();
  delays.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      mode,
      fires: delays.length,
      repeats,
      setupMs,
      rssMB: rss / 2 ** 20,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
      cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
      p50: percentile(delays, 50),
      p99: percentile(delays, 99),
      max: delays[delays.length - 1] ?? Number.NaN,
    })}\n`,
  );
  process.exit(0);
}

function runChild(mode, ready) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), "child", mode], {
      stdio: ["ignore", "pipe", "inherit", "ipc"],
      env: process.env,
    });
    proc.once("message", () => ready(proc));
    let out = "";
    proc.stdout.on("data", (chunk) => {
      out += chunk;
    });
    proc.on("error", reject);
    proc.on("exit", (code) => {
      if (code !== 0) reject(new Error(`${mode} child exited ${code}`));
      else resolve(JSON.parse(out.trim().split("\n").pop()));
    });
  });
}

async function main() {
  console.log(
    `scheduler: ${SCHEDULES} schedules, ${WARMUP} s warm-up + ${SECONDS} s measured, no-op run, real clock`,
  );
  const waiting = [];
  const ready = (proc) => {
    waiting.push(proc);
    if (waiting.length === 2) for (const p of waiting) p.send("go");
  };
  const [ours, theirs] = await Promise.all([
    runChild("duckcron", ready),
    runChild("croner", ready),
  ]);
  const row = (r) =>
    `  ${r.mode.padEnd(9)} fires ${String(r.fires).padStart(6)} (repeats ${r.repeats})  setup ${r.setupMs.toFixed(0).padStart(5)} ms  ` +
    `RSS ${r.rssMB.toFixed(1).padStart(6)} MB (max ${r.maxRssMB.toFixed(1)})  CPU ${r.cpuPct.toFixed(1).padStart(5)} %  ` +
    `delay p50 ${r.p50} ms  p99 ${r.p99} ms  max ${r.max} ms`;
  console.log(row(ours));
  console.log(row(theirs));
  // +1 ms in ratios: delays are whole milliseconds and often 0 or 1.
  const p99Ratio = (ours.p99 + 1) / (theirs.p99 + 1);
  console.log(
    `  ratios duckcron/croner: RSS ${(ours.rssMB / theirs.rssMB).toFixed(2)}  CPU ${(ours.cpuPct / theirs.cpuPct).toFixed(2)}  p50 ${((ours.p50 + 1) / (theirs.p50 + 1)).toFixed(2)}  p99 ${p99Ratio.toFixed(2)} (delays +1 ms)`,
  );
  console.log(`  target RSS <= 150 MB: ${ours.rssMB <= 150 ? "met" : "not met"}`);
  console.log(`  target p99 delay <= 1.5x croner: ${p99Ratio <= 1.5 ? "met" : "not met"}`);
}

if (process.argv[2] === "child") await child(process.argv[3]);
else await main();
