import { afterEach, expect, it } from "vitest";
import { describePg, dropSchema, freshSchema, withClient } from "./pg.js";
import { ClusterDir, sleep } from "./replicas.js";

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
    expect(byFire.size).toBe(rows.length);
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
  });
});
