import { formatStatement } from "../catalog/plan.js";
import { DuckcronError } from "../errors.js";
import { planTenant } from "../run-tenant.js";
import { COMMON_OPTIONS, parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError, writeWarnings } from "./output.js";
import { checkTenants, loadSchedule, openSession } from "./session.js";
import { COMMAND_USAGE } from "./usage.js";

const USAGE = COMMAND_USAGE.plan;

/**
 * Prints the statements a run would execute, with every secret value masked. Secrets
 * are resolved for real, so a plan that prints also proves the references resolve.
 */
export default async function planCommand(argv: string[]): Promise<number> {
  let scrub = (text: string) => text;
  try {
    const { values, positionals } = parseCommandArgs(
      argv,
      { ...COMMON_OPTIONS, tenant: { type: "string", short: "t" } },
      USAGE,
    );
    const { runner, schedule, strict } = await loadSchedule(positionals, values, USAGE);
    const tenant =
      values.tenant ?? (schedule.tenants.length === 1 ? schedule.tenants[0] : undefined);
    if (tenant === undefined) {
      throw new DuckcronError(
        "USAGE",
        `schedule "${schedule.name}" has several tenants; pick one with --tenant (${schedule.tenants.join(", ")})`,
      );
    }
    checkTenants(runner, schedule, [tenant]);
    await using session = await openSession(runner, { strict });
    scrub = (text) => session.scrubber.scrub(text);
    writeWarnings(runner.warnings, session.scrubber);
    const job = runner.jobs.get(schedule.name)!;
    const { plan, secrets } = await planTenant({
      job,
      schedule: schedule.name,
      tenant,
      resolver: session.resolver,
      scrubber: session.scrubber,
    });
    for (const warning of secrets.warnings) process.stderr.write(`warning: ${scrub(warning)}\n`);
    const { added, changed, dropped } = plan.changes;
    const lines = [
      `-- duckcron plan: schedule ${schedule.name}, tenant ${tenant}`,
      `-- catalog: ${plan.catalogPath}`,
      `-- views: ${added.length} added, ${changed.length} changed, ${dropped.length} dropped`,
      ...Object.entries(plan.instanceOptions).map(([k, v]) => `-- instance option ${k} = ${v}`),
      ...plan.statements.map((s) => `${formatStatement(s)};`),
    ];
    process.stdout.write(`${scrub(lines.join("\n"))}\n`);
    return EXIT.ok;
  } catch (error) {
    writeError(error, { scrub });
    return exitCodeFor(error);
  }
}
