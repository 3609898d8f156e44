import pg from "pg";
import { maskedTarget, poolOptions, unavailable } from "../cluster/connection.js";
import { currentVersion, SCHEMA_VERSION } from "../cluster/migrations.js";
import { RunsTable } from "../cluster/runs-table.js";
import { DuckcronError } from "../errors.js";
import { loadCheckedRunner } from "../load-config.js";
import { COMMON_OPTIONS, configPath, parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

const USAGE = COMMAND_USAGE.status;

/**
 * What /status shows of the cluster, read from the database without a daemon: the
 * replicas with a recent heartbeat and the latest runs of all of them. Read-only: it
 * never migrates.
 */
export default async function status(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommandArgs(
      argv,
      { ...COMMON_OPTIONS, json: { type: "boolean", default: false } },
      USAGE,
    );
    if (positionals.length > 0) throw new DuckcronError("USAGE", `usage: ${USAGE}`);
    const runner = await loadCheckedRunner(configPath(values.config), {
      strict: values.strict === true,
    });
    const cluster = runner.config.runner.cluster;
    if (!cluster) {
      throw new DuckcronError(
        "USAGE",
        `${runner.file}: duckcron status reads the cluster database, and runner.cluster is not set; a single daemon answers GET /status`,
      );
    }
    const pool = new pg.Pool(poolOptions(cluster, 1));
    try {
      const version = await currentVersion(pool, cluster.schema).catch((error: unknown) => {
        throw unavailable(cluster, error);
      });
      if (version !== SCHEMA_VERSION) {
        throw new DuckcronError(
          "CLUSTER_SCHEMA_MISMATCH",
          `cluster schema "${cluster.schema}" at ${maskedTarget(cluster)} is at version ${version}, this duckcron expects ${SCHEMA_VERSION}${version === 0 ? " (no replica has started against it yet)" : ""}`,
        );
      }
      const table = new RunsTable(pool, cluster.schema, "status", cluster.lease);
      const [replicas, recent] = await Promise.all([
        table.replicas(3 * cluster.lease),
        table.recent(20),
      ]).catch((error: unknown) => {
        throw unavailable(cluster, error);
      });
      if (values.json) {
        process.stdout.write(
          `${JSON.stringify({ database: maskedTarget(cluster), schema: cluster.schema, replicas, recent }, null, 2)}\n`,
        );
        return EXIT.ok;
      }
      const lines = [
        `cluster ${maskedTarget(cluster)} schema ${cluster.schema} (version ${version})`,
        `replicas (${replicas.length} seen within ${3 * cluster.lease} ms):`,
        ...replicas.map(
          (r) =>
            `  ${r.replica}  version ${r.version}  running ${r.running}  seen ${r.seenAt.toISOString()}`,
        ),
        "recent runs:",
        ...recent.map(
          (r) =>
            `  ${r.scheduledAt.toISOString()}  ${r.schedule}/${r.tenant}  attempt ${r.attempt} on ${r.replica}  ${r.state}${r.errorCode ? ` ${r.errorCode}` : ""}${r.durationMs === null ? "" : `  ${r.durationMs} ms`}`,
        ),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
      return EXIT.ok;
    } finally {
      await pool.end();
    }
  } catch (error) {
    writeError(error);
    return exitCodeFor(error);
  }
}
