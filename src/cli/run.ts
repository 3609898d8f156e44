import { randomUUID } from "node:crypto";
import { errorCode } from "../errors.js";
import { runTenant, type TenantRunResult } from "../run-tenant.js";
import { Semaphore } from "../secrets/semaphore.js";
import { VERSION } from "../version.js";
import { COMMON_OPTIONS, parseCommandArgs } from "./args.js";
import { describeError, EXIT, exitCodeFor, oneLine, writeError, writeWarnings } from "./output.js";
import { checkTenants, loadSchedule, openSession } from "./session.js";
import { COMMAND_USAGE } from "./usage.js";

const USAGE = COMMAND_USAGE.run;

interface TenantReport {
  tenant: string;
  status: "success" | "failure" | "timeout";
  catalog?: string;
  skipped?: boolean;
  views?: number;
  degraded?: boolean;
  durationMs: number;
  error?: { code: string; message: string };
}

/**
 * Builds a schedule's catalogs once, for every tenant or the ones named. Made for cron
 * jobs and scripts: progress on a terminal, one parseable line per tenant otherwise,
 * exit 1 when any tenant failed.
 */
export default async function runCommand(argv: string[]): Promise<number> {
  let scrub = (text: string) => text;
  try {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...COMMON_OPTIONS,
        tenant: { type: "string", short: "t", multiple: true },
        force: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        pushgateway: { type: "string" },
        "metrics-file": { type: "string" },
      },
      USAGE,
    );
    // The DuckDB self-test runs on DuckDB's threads while the config is read.
    const selfTest = import("../catalog/self-test.js")
      .then((m) => m.secretParametersSupported())
      .catch(() => false);
    const { runner, schedule, strict } = await loadSchedule(positionals, values, USAGE);
    await selfTest;
    const tenants = values.tenant ?? schedule.tenants;
    checkTenants(runner, schedule, tenants);

    await using session = await openSession(runner, { strict });
    scrub = (text) => session.scrubber.scrub(text);
    writeWarnings(runner.warnings, session.scrubber);
    const job = runner.jobs.get(schedule.name)!;
    const exportMetrics = values.pushgateway !== undefined || values["metrics-file"] !== undefined;
    const metrics = exportMetrics
      ? (await import("../observe/metrics.js")).createMetrics(session.events, {
          version: VERSION,
          collectDefault: false,
        })
      : undefined;
    const progress = process.stderr.isTTY && !values.json ? new Progress() : undefined;

    const runOne = async (tenant: string): Promise<TenantReport> => {
      const started = performance.now();
      const runId = randomUUID();
      const signal =
        schedule.timeout === undefined ? undefined : AbortSignal.timeout(schedule.timeout);
      // The same run events the daemon's scheduler emits, so exported metrics and the
      // audit trail look alike for one-shot and scheduled runs.
      session.events.emit("run:started", { runId, schedule: schedule.name, tenant, attempt: 1 });
      const finish = (report: TenantReport, degraded = false): TenantReport => {
        session.events.emit("run:finished", {
          runId,
          schedule: schedule.name,
          tenant,
          attempt: 1,
          status: report.status,
          durationMs: report.durationMs,
          degraded,
          error: report.error && { ...report.error, retryable: false },
        });
        progress?.done(tenant);
        return report;
      };
      try {
        const result: TenantRunResult = await runTenant({
          job,
          schedule: schedule.name,
          tenant,
          resolver: session.resolver,
          scrubber: session.scrubber,
          events: session.events,
          signal,
          force: values.force === true,
          onStage: (stage) => progress?.update(tenant, stage),
          onProgress: (s, i, n) => progress?.update(tenant, `build ${i + 1}/${n} ${s.target}`),
        });
        for (const w of result.warnings) process.stderr.write(`warning: ${tenant}: ${scrub(w)}\n`);
        return finish(
          {
            tenant,
            status: "success",
            catalog: result.catalogPath,
            skipped: result.skipped,
            views: result.viewCount,
            degraded: result.degraded,
            durationMs: Math.round(performance.now() - started),
          },
          result.degraded,
        );
      } catch (error) {
        const timedOut = signal?.aborted === true;
        return finish({
          tenant,
          status: timedOut ? "timeout" : "failure",
          durationMs: Math.round(performance.now() - started),
          error: timedOut
            ? {
                code: "RUN_TIMEOUT",
                message: `timed out after ${schedule.timeout} ms (schedule timeout); the previous catalog is untouched`,
              }
            : { code: errorCode(error), message: scrub(describeError(error)) },
        });
      }
    };

    const slots = new Semaphore(runner.config.runner.max_concurrent_runs);
    const reports = await Promise.all(tenants.map((tenant) => slots.run(() => runOne(tenant))));
    progress?.clear();
    if (values.json) {
      process.stdout.write(
        `${scrub(JSON.stringify({ schedule: schedule.name, results: reports }, null, 2))}\n`,
      );
    } else {
      for (const r of reports) process.stdout.write(`${scrub(formatReport(schedule.name, r))}\n`);
    }
    for (const r of reports) {
      if (r.error && !values.json)
        process.stderr.write(
          `duckcron: ${schedule.name}/${r.tenant}: ${oneLine(r.error.message)}\n`,
        );
    }
    let exported = true;
    if (metrics) {
      const { pushToGateway, writeTextfile } = await import("../observe/push.js");
      try {
        if (values.pushgateway)
          await pushToGateway(metrics.registry, values.pushgateway, "duckcron", {
            schedule: schedule.name,
          });
        if (values["metrics-file"]) await writeTextfile(metrics.registry, values["metrics-file"]);
      } catch (error) {
        writeError(error, { scrub });
        exported = false;
      }
    }
    return reports.some((r) => r.status !== "success") || !exported ? EXIT.failure : EXIT.ok;
  } catch (error) {
    writeError(error, { scrub });
    return exitCodeFor(error);
  }
}

function formatReport(schedule: string, r: TenantReport): string {
  const seconds = `${(r.durationMs / 1000).toFixed(2)}s`;
  if (r.status !== "success") return `failed ${schedule}/${r.tenant} ${r.error?.code} ${seconds}`;
  const what = r.skipped ? "unchanged" : "built";
  const degraded = r.degraded ? " degraded" : "";
  return `${what} ${schedule}/${r.tenant} ${r.catalog} views=${r.views} ${seconds}${degraded}`;
}

/** One status line per tenant on a terminal, redrawn in place. */
class Progress {
  readonly #lines = new Map<string, string>();
  #drawn = 0;

  update(tenant: string, stage: string): void {
    this.#lines.set(tenant, `  ${tenant}: ${stage}`);
    this.#draw();
  }

  done(tenant: string): void {
    this.#lines.delete(tenant);
    this.#draw();
  }

  clear(): void {
    this.#lines.clear();
    this.#draw();
  }

  #draw(): void {
    const out = process.stderr;
    if (this.#drawn > 0) out.write(`\x1b[${this.#drawn}A\x1b[0J`);
    const width = out.columns ?? 80;
    const lines = [...this.#lines.values()].map((l) => l.slice(0, width - 1));
    if (lines.length > 0) out.write(`${lines.join("\n")}\n`);
    this.#drawn = lines.length;
  }
}
