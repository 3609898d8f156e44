import type { LogLine } from "../cli/daemon-logs.js";

/**
 * When each build of each catalog ran, from what the replicas already log: "run started"
 * is logged before the catalog build begins, and the run's end ("run succeeded",
 * "run failure") after the build has settled, published or not. So each interval
 * covers its build, and two builds that overlapped have overlapping intervals. No hook
 * in the daemon is needed, and none could be skipped by a bug it is meant to find.
 *
 * A run's timeout is logged when it fires, before the build settles: these intervals
 * are only sound for schedules without a timeout, as the cluster tests run them.
 */

export interface BuildInterval {
  catalog: string;
  replica: string;
  /** "tenant@scheduledAt#attempt", for messages. */
  run: string;
  start: number;
  end: number;
}

export interface ReplicaLog {
  id: string;
  lines: readonly LogLine[];
  /** When the process was seen gone: a build it never finished ended by then. */
  exitedAt: number | undefined;
}

/** A log line that ends a run attempt, whatever its outcome (degraded successes too). */
export const isRunEnd = (msg: string): boolean => /^run (succeeded|failure|timeout)/.test(msg);

/**
 * One interval per started run attempt; `catalogOf` names the catalog path a fire
 * builds (the runs table records it). A run with no logged end lasts until its
 * process exited, or, for a replica still up, until now.
 */
export function buildIntervals(
  replicas: readonly ReplicaLog[],
  catalogOf: (tenant: string, scheduledAt: string) => string,
  now = Date.now(),
): BuildInterval[] {
  const intervals: BuildInterval[] = [];
  for (const replica of replicas) {
    const open = new Map<string, BuildInterval>();
    for (const line of replica.lines) {
      const key = `${String(line.runId)}#${String(line.attempt)}`;
      if (line.msg === "run started") {
        const tenant = String(line.tenant);
        const scheduledAt = String(line.scheduledAt);
        open.set(key, {
          catalog: catalogOf(tenant, scheduledAt),
          replica: replica.id,
          run: `${tenant}@${scheduledAt}#${String(line.attempt)}`,
          start: Date.parse(String(line.time)),
          end: Number.POSITIVE_INFINITY,
        });
      } else if (isRunEnd(line.msg)) {
        const interval = open.get(key);
        if (!interval) continue;
        open.delete(key);
        intervals.push({ ...interval, end: Date.parse(String(line.time)) });
      }
    }
    for (const interval of open.values()) {
      intervals.push({ ...interval, end: replica.exitedAt ?? now });
    }
  }
  return intervals;
}

/** Every pair of builds of one catalog whose intervals overlap, as readable strings. */
export function overlappingBuilds(intervals: readonly BuildInterval[]): string[] {
  const byCatalog = new Map<string, BuildInterval[]>();
  for (const i of intervals) byCatalog.set(i.catalog, [...(byCatalog.get(i.catalog) ?? []), i]);
  const found: string[] = [];
  for (const [catalog, builds] of byCatalog) {
    builds.sort((a, b) => a.start - b.start);
    // Sorted by start, a build overlaps an earlier one iff it starts before the
    // latest end seen so far; ends and starts in the same millisecond do not overlap.
    let latest: BuildInterval | undefined;
    for (const build of builds) {
      if (latest && build.start < latest.end) {
        found.push(`${catalog}: ${latest.replica} ${latest.run} and ${build.replica} ${build.run}`);
      }
      if (!latest || build.end > latest.end) latest = build;
    }
  }
  return found;
}
