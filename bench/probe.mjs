// Preloaded with `node --import` into a benchmarked process: records the event loop's
// delay and the process's own CPU (all threads, DuckDB's included) and writes them as
// JSON to $BENCH_PROBE_OUT when the process exits; `windows` holds the delay of each
// half second (epoch ms at its end), so a benchmark can pick out a phase.
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

const out = process.env.BENCH_PROBE_OUT;
if (out) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const window = monitorEventLoopDelay({ resolution: 10 });
  window.enable();
  const windows = [];
  setInterval(() => {
    windows.push({ at: Date.now(), p99Ms: window.percentile(99) / 1e6, maxMs: window.max / 1e6 });
    window.reset();
  }, 500).unref();
  const started = performance.now();
  process.on("exit", () => {
    histogram.disable();
    const cpu = process.cpuUsage();
    writeFileSync(
      out,
      JSON.stringify({
        cpuMs: (cpu.user + cpu.system) / 1000,
        wallMs: performance.now() - started,
        loopP99Ms: histogram.percentile(99) / 1e6,
        loopMaxMs: histogram.max / 1e6,
        rssMb: process.memoryUsage.rss() / 2 ** 20,
        windows,
      }),
    );
  });
}
