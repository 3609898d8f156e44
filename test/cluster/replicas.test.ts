import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, expect, it } from "vitest";
import { buildIntervals, isRunEnd, overlappingBuilds } from "./build-intervals.js";
import { describePg, dropSchema, freshSchema, pgCtl, withClient } from "./pg.js";
import { ClusterDir, type Replica, sleep } from "./replicas.js";

/**
 * Real daemons against one database. Sizes are scaled down from production shapes so
 * the suite stays fast on a small CI machine: 12 tenants on a 5 s schedule stand in
 * for hundreds on 1 s (a fire must fit in the interval even on a loaded 2-core machine,
 * or `overlap: skip` rightly drops the next one); what is checked (one run per fire,
 * spread, takeover, fencing) does not depend on the size.
 */

interface Row {
  tenant: string;
  scheduledAt: Date;
  attempt: number;
  replica: string;
  state: string;
  errorCode: string | null;
  finishedAt: Date | null;
}

async function runs(schema: string): Promise<Row[]> {
  return withClient(async (c) => {
    const { rows } = await c.query<Row>(
      `SELECT tenant, scheduled_at AS "scheduledAt", attempt, replica, state,
              error_code AS "errorCode", finished_at AS "finishedAt"
         FROM "${schema}".runs ORDER BY scheduled_at, tenant`,
    );
    return rows;
  });
}

/** run.started audit records of all replicas, keyed by fire and attempt. */
function startsByFire(cluster: ClusterDir): Map<string, string[]> {
  const byFire = new Map<string, string[]>();
  for (const replica of cluster.replicas) {
    for (const record of replica.audit()) {
      if (record.event !== "run.started") continue;
      expect(record.replica).toBe(replica.id);
      const fire = `${record.tenant}@${record.scheduledAt}`;
      byFire.set(fire, [...(byFire.get(fire) ?? []), replica.id]);
    }
  }
  return byFire;
}

/** A build long enough to be caught in the middle; it records which replica built it. */
const SLOW_TABLE =
  "SELECT range AS n, md5(range::VARCHAR) AS h, '${env:DUCKCRON_TEST_REPLICA}' AS built_by FROM range(2000000)";

/** Fires a replica has started so far, as "tenant@scheduledAt". */
function startedOn(replica: Replica): Set<string> {
  return new Set(
    replica.logs.lines
      .filter((l) => l.msg === "run started")
      .map((l) => `${l.tenant}@${l.scheduledAt}`),
  );
}

async function builtBy(cluster: ClusterDir, tenant: string): Promise<{ n: number; by: string }> {
  const instance = await DuckDBInstance.create(join(cluster.dir, "catalogs", `${tenant}.duckdb`), {
    access_mode: "READ_ONLY",
  });
  try {
    const connection = await instance.connect();
    const reader = await connection.runAndReadAll(
      "SELECT count(*)::INTEGER AS n, min(built_by) AS by FROM built",
    );
    const [row] = reader.getRowObjectsJS() as { n: number; by: string }[];
    connection.closeSync();
    return row!;
  } finally {
    instance.closeSync();
  }
}

/**
 * Every build of every catalog, from the replicas' logs (read to the end once they are
 * stopped or killed); fails the test if two of one catalog overlapped. The partial unique
 * index on running claims should make that impossible: this observes it.
 */
async function expectNoOverlappingBuilds(cluster: ClusterDir): Promise<{ replica: string }[]> {
  await Promise.all(cluster.replicas.map((r) => r.drained));
  const catalogs = await withClient(async (c) => {
    const { rows } = await c.query<{ tenant: string; scheduledAt: Date; catalog: string }>(
      `SELECT tenant, scheduled_at AS "scheduledAt", catalog FROM "${cluster.setup.schema}".runs`,
    );
    return new Map(rows.map((r) => [`${r.tenant}@${r.scheduledAt.toISOString()}`, r.catalog]));
  });
  const builds = buildIntervals(
    cluster.replicas.map((r) => ({ id: r.id, lines: r.logs.lines, exitedAt: r.exitedAt() })),
    (tenant, scheduledAt) => {
      const catalog = catalogs.get(`${tenant}@${scheduledAt}`);
      if (catalog === undefined) throw new Error(`no claim on record for ${tenant}@${scheduledAt}`);
      return catalog;
    },
  );
  expect(builds.length).toBeGreaterThan(0);
  expect(overlappingBuilds(builds)).toEqual([]);
  return builds;
}

const fireId = (r: Row) => `${r.tenant}@${r.scheduledAt.toISOString()}`;

/** Two replicas, a lease of 2 s, one takeover allowed, builds slow enough to catch. */
function slowPair(prefix: string): ClusterDir {
  return new ClusterDir({
    schema: freshSchema(prefix),
    tenants: 2,
    cron: "*/15 * * * * *",
    lease: "2s",
    retries: 1,
    tableSql: SLOW_TABLE,
  });
}

/** Starts two replicas; `first` is the one that started building first. */
async function firstToBuild(cluster: ClusterDir): Promise<{ first: Replica; other: Replica }> {
  const pair = await cluster.start(2);
  const first = await Promise.race(
    pair.map((r) => r.logs.next((l) => l.msg === "run started").then(() => r)),
  );
  return { first, other: pair.find((r) => r !== first)! };
}

/** Waits until every one of `fires` is on record as successful; returns their rows. */
async function allSucceeded(cluster: ClusterDir, fires: Set<string>): Promise<Row[]> {
  for (;;) {
    const rows = (await runs(cluster.setup.schema)).filter((r) => fires.has(fireId(r)));
    if (rows.length === fires.size && rows.every((r) => r.state === "success")) return rows;
    await sleep(250);
  }
}

/** Polls `check` until it holds; the test's own timeout bounds it. */
async function until(check: () => Promise<boolean>, everyMs = 250): Promise<void> {
  while (!(await check())) await sleep(everyMs);
}

describePg("several replicas on one database", { timeout: 120_000 }, () => {
  let cluster: ClusterDir | undefined;
  afterEach(async () => {
    await cluster?.stopAll();
    cluster?.remove();
    if (cluster) await dropSchema(cluster.setup.schema);
    cluster = undefined;
  });

  it("run every fire exactly once, spread over the replicas, after one migration", async () => {
    cluster = new ClusterDir({
      schema: freshSchema("spread"),
      tenants: 12,
      cron: "*/5 * * * * *",
      lease: "5s",
      maxConcurrentRuns: 4,
    });
    // Three replicas starting at the same moment on an empty database.
    await cluster.start(3);
    // Until four fire times are on record: the middle ones had all replicas up throughout.
    await until(
      async () => new Set((await runs(cluster!.setup.schema)).map((r) => +r.scheduledAt)).size >= 4,
    );
    await cluster.stopAll();

    const versions = await withClient((c) =>
      c.query(`SELECT version, applied_by FROM "${cluster!.setup.schema}".schema_version`),
    );
    expect(versions.rows).toHaveLength(1);

    const rows = await runs(cluster.setup.schema);
    const byFire = startsByFire(cluster);
    // Nothing ran twice: each fire started once, on one replica, as attempt 1.
    for (const [fire, replicas] of byFire) expect([fire, replicas.length]).toEqual([fire, 1]);
    // Every start is on record; a fire claimed but not started (the replica was stopping)
    // was handed back, still open for a takeover.
    expect(byFire.size).toBe(rows.filter((r) => byFire.has(fireId(r))).length);
    for (const row of rows.filter((r) => !byFire.has(fireId(r)))) expect(row.state).toBe("running");
    expect(rows.every((r) => r.attempt === 1)).toBe(true);
    // Every fire of a full second the replicas were all up ran for every tenant.
    const times = [...new Set(rows.map((r) => r.scheduledAt.getTime()))].sort();
    expect(times.length).toBeGreaterThanOrEqual(3);
    // On a loaded machine a build can outlast the interval; then `overlap: skip` drops
    // the tenant's next fire on every replica, which is the configured behaviour. Any
    // other missing fire would be a fire nobody ran.
    for (const time of times.slice(1, -1)) {
      for (const tenant of cluster.tenantIds) {
        const fire = rows.find((r) => r.tenant === tenant && +r.scheduledAt === time);
        if (fire) {
          expect(fire.state).toBe("success");
          continue;
        }
        const previous = rows.findLast((r) => r.tenant === tenant && +r.scheduledAt < time);
        expect(previous?.finishedAt?.getTime() ?? 0).toBeGreaterThan(time);
      }
    }
    // The work spread: every replica ran some of it.
    const perReplica = new Set(rows.map((r) => r.replica));
    expect([...perReplica].sort()).toEqual(["r0", "r1", "r2"]);
    await expectNoOverlappingBuilds(cluster);
  });

  it("take over a killed replica's fires after the lease, and finish each once", async () => {
    cluster = slowPair("kill");
    // Whichever replica starts building first is killed in the middle of its builds.
    const { first: victim, other: survivor } = await firstToBuild(cluster);
    victim.process.kill("SIGKILL");
    // Everything it wrote before dying, read to the end.
    await new Promise((resolve) => victim.process.stdout.once("close", resolve));
    const orphaned = startedOn(victim);
    expect(orphaned.size).toBeGreaterThan(0);
    const rows = await allSucceeded(cluster, orphaned);
    for (const row of rows) {
      expect(row).toMatchObject({ attempt: 2, replica: survivor.id, state: "success" });
      // The catalog is whole, and the survivor's.
      expect(await builtBy(cluster, row.tenant)).toEqual({ n: 2_000_000, by: survivor.id });
    }
    // The takeover cleaned up what the killed build left behind.
    // (The survivor may be building another taken-over fire: only the victim's count.)
    const victimTemp = `.tmp-${victim.process.pid}-`;
    expect(
      readdirSync(join(cluster.dir, "catalogs")).filter((f) => f.includes(victimTemp)),
    ).toEqual([]);
    const metrics = await (await fetch(`${survivor.url}/metrics`)).text();
    // At least those: a fire the victim had claimed but not yet started is taken over too.
    expect(
      Number(/^duckcron_cluster_takeovers_total (\d+)/m.exec(metrics)?.[1]),
    ).toBeGreaterThanOrEqual(rows.length);
    // Neither the victim's cut-off builds (ended, at the latest, when it was seen dead)
    // nor the takeovers overlapped another build of the same catalog.
    await cluster.stopAll();
    const builds = await expectNoOverlappingBuilds(cluster);
    expect(builds.filter((b) => b.replica === victim.id).length).toBe(orphaned.size);
  });

  it("keep a replica paused past its lease from publishing when it resumes", async () => {
    cluster = slowPair("stop");
    const { first: paused, other } = await firstToBuild(cluster);
    paused.process.kill("SIGSTOP");
    const held = startedOn(paused);
    await allSucceeded(cluster, held);
    const from = paused.logs.lines.length;
    paused.process.kill("SIGCONT");
    // Each of its builds ends here without publishing: the lease is gone.
    for (const fire of held) {
      const [tenant] = fire.split("@");
      const ended = await paused.logs.next((l) => isRunEnd(l.msg) && l.tenant === tenant, from);
      expect(ended).toMatchObject({ msg: "run failure", code: "LEASE_LOST" });
    }
    for (const row of await allSucceeded(cluster, held)) {
      expect(row).toMatchObject({ attempt: 2, replica: other.id, state: "success" });
      expect(await builtBy(cluster, row.tenant)).toEqual({ n: 2_000_000, by: other.id });
    }
  });

  it("ride out a PostgreSQL restart under load: no crash, no double run, recovery", async () => {
    cluster = new ClusterDir({
      schema: freshSchema("restart"),
      tenants: 6,
      cron: "*/2 * * * * *",
      lease: "3s",
    });
    const [a, b] = await cluster.start(2);
    await until(async () => (await runs(cluster!.setup.schema)).length >= 6);
    await pgCtl("stop", "-m", "fast");
    try {
      await until(async () => {
        const response = await fetch(`${a!.url}/readyz`);
        const body = (await response.json()) as { checks: Record<string, { ok: boolean }> };
        return response.status === 503 && body.checks.cluster_database?.ok === false;
      });
      await sleep(2_000);
    } finally {
      await pgCtl("start");
    }
    const back = Date.now();
    await until(async () =>
      (await runs(cluster!.setup.schema)).some(
        (r) => +r.scheduledAt > back && r.state === "success",
      ),
    );
    expect((await fetch(`${a!.url}/readyz`)).status).toBe(200);
    for (const replica of [a!, b!]) {
      expect(
        replica.process.exitCode,
        `${replica.stderr()}\n${replica.logs.raw.slice(-5).join("\n")}`,
      ).toBeNull();
    }
    await cluster.stopAll();
    // No fire started twice under the same claim, on one replica or across both.
    const starts = new Map<string, number>();
    for (const replica of cluster.replicas) {
      for (const record of replica.audit()) {
        if (record.event !== "run.started") continue;
        const id = `${record.tenant}@${record.scheduledAt}`;
        starts.set(id, (starts.get(id) ?? 0) + 1);
      }
    }
    const rows = await runs(cluster.setup.schema);
    for (const row of rows) {
      // A run whose lease ran out during the outage may be taken over: one start per claim.
      expect([fireId(row), starts.get(fireId(row)) ?? 0]).toEqual([fireId(row), row.attempt]);
    }
  });
});
