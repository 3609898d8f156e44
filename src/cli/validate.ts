import { loadCheckedRunner } from "../load-config.js";
import { findEnvCollisions } from "../secrets/env.js";
import { collectSecretRefs } from "../secrets/refs.js";
import { COMMON_OPTIONS, configPath, parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError, writeWarnings } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

const USAGE = COMMAND_USAGE.validate;

/** Loads runner.yaml and every job file it names; reports every problem at once. */
export default async function validate(argv: string[]): Promise<number> {
  try {
    const { values } = parseCommandArgs(argv, COMMON_OPTIONS, USAGE);
    const strict = values.strict === true;
    const runner = await loadCheckedRunner(configPath(values.config), { strict });
    writeWarnings(runner.warnings);

    const { secrets, schedules } = runner.config.runner;
    const problems: string[] = [];
    if (secrets.type === "env") {
      const tenants = [...new Set(schedules.flatMap((s) => s.tenants))];
      const names = [
        ...new Set(
          [...runner.jobs.values()].flatMap((job) =>
            collectSecretRefs(job.definition).map((r) => r.name),
          ),
        ),
      ];
      for (const collision of findEnvCollisions(secrets.prefix, tenants, names)) {
        problems.push(`${runner.file}: runner.secrets: ${collision}`);
      }
    }
    for (const problem of problems)
      process.stderr.write(`${strict ? "" : "warning: "}${problem}\n`);
    if (strict && problems.length > 0) return EXIT.config;

    const tenants = new Set(schedules.flatMap((s) => s.tenants)).size;
    const jobs = new Set([...runner.jobs.values()].map((j) => j.file)).size;
    process.stdout.write(
      `${runner.file}: ok (${schedules.length} schedule${schedules.length === 1 ? "" : "s"}, ${jobs} job file${jobs === 1 ? "" : "s"}, ${tenants} tenant${tenants === 1 ? "" : "s"}, secrets backend ${secrets.type})\n`,
    );
    return EXIT.ok;
  } catch (error) {
    writeError(error);
    return exitCodeFor(error);
  }
}
