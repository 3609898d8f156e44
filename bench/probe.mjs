// Preloaded with `node --import` into a benchmarked process: records the event loop's
// delay and the process's own CPU (all threads, DuckDB's included) and writes them as
// JSON to $BENCH_PROBE_OUT when the process exits.
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

const out = process.env.BENCH_PROBE_OUT;
if (out) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
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
      }),
    );
  });
}
