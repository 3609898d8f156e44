import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import pg from "pg";
import { catalogPathFor } from "../catalog/plan.js";
import { maskedTarget, poolOptions, unavailable } from "../cluster/connection.js";
import { currentVersion, SCHEMA_VERSION } from "../cluster/migrations.js";
import { RunsTable } from "../cluster/runs-table.js";
import { commonDirectory, VOLUME_MARKER } from "../cluster-mode.js";
import type { LoadedRunner } from "../config/load.js";
import type { DoctorCheck } from "./doctor-check.js";

/**
 * doctor's cluster-mode checks: the database answers, its schema is one this release
 * can run (or migrate), and this host sees the same catalogs volume as the replicas
 * (the marker the first replica wrote, compared with the database's copy and with what
 * each replica's heartbeat reports).
 */
export async function clusterChecks(runner: LoadedRunner): Promise<DoctorCheck[]> {
  const cluster = runner.config.runner.cluster;
  if (!cluster) return [];
  const target = maskedTarget(cluster);
  const pool = new pg.Pool(poolOptions(cluster, 1));
  try {
    let version: number;
    try {
      version = await currentVersion(pool, cluster.schema);
    } catch (error) {
      return [
        {
          status: "problem",
          subject: "cluster database",
          message: unavailable(cluster, error).message,
          fix: "check runner.cluster (url or host/user/database) and that PostgreSQL accepts connections from here",
        },
      ];
    }
    const checks: DoctorCheck[] = [
      { status: "ok", subject: "cluster database", message: `reachable at ${target}` },
    ];
    if (version > SCHEMA_VERSION) {
      checks.push({
        status: "problem",
        subject: "cluster schema",
        message: `"${cluster.schema}" is at version ${version}, newer than this duckcron's ${SCHEMA_VERSION}`,
        fix: "run the same duckcron release on every replica",
      });
      return checks;
    }
    if (version < SCHEMA_VERSION) {
      checks.push({
        status: "warn",
        subject: "cluster schema",
        message: `"${cluster.schema}" is at version ${version}; the first replica to start migrates it to ${SCHEMA_VERSION}`,
      });
      return checks;
    }
    checks.push({
      status: "ok",
      subject: "cluster schema",
      message: `"${cluster.schema}" at version ${version}`,
    });
    checks.push(
      await volumeCheck(
        runner,
        new RunsTable(pool, cluster.schema, "doctor", cluster.lease),
        cluster.lease,
      ),
    );
    return checks;
  } finally {
    await pool.end();
  }
}

async function volumeCheck(
  runner: LoadedRunner,
  table: RunsTable,
  leaseMs: number,
): Promise<DoctorCheck> {
  const dirs = new Set<string>();
  for (const schedule of runner.config.runner.schedules) {
    const job = runner.jobs.get(schedule.name);
    if (!job) continue;
    for (const tenant of schedule.tenants) dirs.add(dirname(catalogPathFor(job, tenant)));
  }
  const dir = commonDirectory([...dirs]) ?? runner.dir;
  const subject = `catalog volume ${dir}`;
  const [stored, replicas] = await Promise.all([
    table.storedVolumeMarker(),
    table.replicas(3 * leaseMs),
  ]);
  const here = await readFile(join(dir, VOLUME_MARKER), "utf8").then(
    (text) => text.trim(),
    () => null,
  );
  if (stored === null) {
    return {
      status: "ok",
      subject,
      message: "no replica has started yet; the first writes the marker",
    };
  }
  if (here !== stored) {
    return {
      status: "problem",
      subject,
      message: `${join(dir, VOLUME_MARKER)} is ${here === null ? "missing" : "not the one the cluster wrote"}: this host does not see the replicas' catalogs volume`,
      fix: "mount the same shared (ReadWriteMany) volume at the same path on every replica",
    };
  }
  const strays = replicas.filter((r) => r.volume !== stored).map((r) => r.replica);
  if (strays.length > 0) {
    return {
      status: "problem",
      subject,
      message: `replicas ${strays.join(", ")} report a different catalogs volume (or none)`,
      fix: "mount the same shared (ReadWriteMany) volume at the same path on every replica",
    };
  }
  return {
    status: "ok",
    subject,
    message: `the marker matches the database and all ${replicas.length} live replicas`,
  };
}
