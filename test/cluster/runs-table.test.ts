import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ClusterLease } from "../../src/cluster/lease.js";
import { migrate, SCHEMA_VERSION } from "../../src/cluster/migrations.js";
import { RunsTable } from "../../src/cluster/runs-table.js";
import { describePg, dropSchema, freshSchema, testPgUrl } from "./pg.js";

describePg("the runs table", () => {
  const schema = freshSchema("runs");
  let pool: pg.Pool;
  const table = (replica: string, leaseMs = 60_000) =>
    new RunsTable(pool, schema, replica, leaseMs);
  let n = 0;
  /** A fire no other test uses. */
  const fire = () => ({
    schedule: "s",
    tenant: `t${++n}`,
    scheduledAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)),
    attempts: 2,
    catalog: `/cat/t${n}.duckdb`,
  });

  /** Ends a fire's lease as if its replica had stopped renewing long ago. */
  const expire = (tenant: string) =>
    pool.query(
      `UPDATE "${schema}".runs SET lease_until = now() - interval '1 s' WHERE tenant = $1`,
      [tenant],
    );
  const lease = (
    f: ReturnType<typeof fire>,
    leaseMs: number,
    onLost: (e: unknown) => void = () => {},
  ) =>
    new ClusterLease({
      table: table("a", leaseMs),
      key: f,
      attempt: 1,
      leaseMs,
      onError: () => {},
      onLost,
    });

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testPgUrl(), max: 8 });
    const client = await pool.connect();
    try {
      await migrate(client, schema, "test");
    } finally {
      client.release();
    }
  });
  afterAll(async () => {
    await pool.end();
    await dropSchema(schema);
  });

  it("migrates once: a second replica finds the schema current", async () => {
    const client = await pool.connect();
    try {
      expect(await migrate(client, schema, "other")).toEqual({
        applied: [],
        version: SCHEMA_VERSION,
      });
    } finally {
      client.release();
    }
  });

  it("runs each migration once when replicas migrate an empty schema at the same moment", async () => {
    const fresh = freshSchema("mig");
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    try {
      const results = await Promise.all(clients.map((c, i) => migrate(c, fresh, `r${i}`)));
      expect(results.flatMap((r) => r.applied)).toEqual([1]);
      const { rows } = await pool.query(`SELECT version FROM "${fresh}".schema_version`);
      expect(rows).toEqual([{ version: 1 }]);
    } finally {
      for (const c of clients) c.release();
      await dropSchema(fresh);
    }
  });

  it("refuses a schema a newer release migrated", async () => {
    const fresh = freshSchema("new");
    const client = await pool.connect();
    try {
      await migrate(client, fresh, "r");
      await client.query(
        `INSERT INTO "${fresh}".schema_version (version, applied_by) VALUES (99, 'x')`,
      );
      await expect(migrate(client, fresh, "r")).rejects.toMatchObject({
        code: "CLUSTER_SCHEMA_MISMATCH",
      });
    } finally {
      client.release();
      await dropSchema(fresh);
    }
  });

  it("gives a fire to exactly one of many concurrent claimers", async () => {
    const f = fire();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => table(`r${i}`).claim(f)));
    expect(results.filter((r) => r.won)).toEqual([{ won: true, attempt: 1 }]);
  });

  it("lets a fire be taken over only after its lease expired, within its claims", async () => {
    const f = fire();
    expect(await table("a", 200).claim(f)).toEqual({ won: true, attempt: 1 });
    expect(await table("b").claim(f)).toEqual({ won: false, reason: "taken" });
    await expire(f.tenant);
    expect(await table("b").claim(f)).toEqual({ won: true, attempt: 2 });
    await expire(f.tenant);
    // attempts: 2 are used up; the sweep closes it as abandoned instead.
    expect(await table("c").claim(f)).toEqual({ won: false, reason: "taken" });
    expect(await table("c").expired()).not.toContainEqual(
      expect.objectContaining({ tenant: f.tenant }),
    );
    const { rows } = await pool.query(`SELECT state FROM "${schema}".runs WHERE tenant = $1`, [
      f.tenant,
    ]);
    expect(rows).toEqual([{ state: "abandoned" }]);
  });

  it("fences renewal, finishing and publishing by the attempt number", async () => {
    const f = fire();
    const a = table("a");
    const b = table("b");
    await a.claim(f);
    await expire(f.tenant);
    expect(await b.claim(f)).toEqual({ won: true, attempt: 2 });
    expect(await a.renew(f, 1)).toBe(false);
    let renamed = false;
    await expect(
      a.publish(f, 1, async () => {
        renamed = true;
      }),
    ).rejects.toMatchObject({ code: "LEASE_LOST" });
    expect(renamed).toBe(false);
    expect(await a.finish(f, 1, "failure")).toBe(false);
    expect(await b.renew(f, 2)).toBe(true);
    await b.publish(f, 2, async () => {
      renamed = true;
    });
    expect(renamed).toBe(true);
    const [last] = (await b.lastFinished()).filter((r) => r.tenant === f.tenant);
    expect(last).toMatchObject({ state: "success", attempt: 2, replica: "b" });
  });

  it("does not publish with an expired lease even when nobody took over", async () => {
    const f = fire();
    const a = table("a");
    await a.claim(f);
    await expire(f.tenant);
    await expect(a.publish(f, 1, async () => {})).rejects.toMatchObject({ code: "LEASE_LOST" });
  });

  it("rolls the finish back when the rename fails", async () => {
    const f = fire();
    const a = table("a");
    await a.claim(f);
    await expect(
      a.publish(f, 1, async () => {
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(await a.finish(f, 1, "failure", "CATALOG_BUILD_FAILED")).toBe(true);
  });

  it("keeps two running builds of one catalog apart, even from two schedules", async () => {
    const f = fire();
    const a = table("a");
    await a.claim(f);
    const other = { ...f, schedule: "other" };
    expect(await table("b").claim(other)).toEqual({ won: false, reason: "catalog_busy" });
    await a.finish(f, 1, "success");
    expect(await table("b").claim(other)).toEqual({ won: true, attempt: 1 });
  });

  it("gives a fire back at shutdown without charging it", async () => {
    const f = { ...fire(), attempts: 1 };
    await table("a").claim(f);
    await table("a").giveBack(f, 1);
    expect(await table("b").expired()).toContainEqual(
      expect.objectContaining({ tenant: f.tenant }),
    );
    expect(await table("b").claim(f)).toEqual({ won: true, attempt: 2 });
  });

  it("loses a lease that another attempt took over, and aborts with LEASE_LOST", async () => {
    const f = fire();
    await table("a", 300).claim(f);
    const lost: unknown[] = [];
    const held = lease(f, 300, (e) => lost.push(e));
    await expire(f.tenant);
    await table("b").claim(f);
    await new Promise((resolve) => held.lost.addEventListener("abort", resolve));
    expect(held.lost.reason).toMatchObject({ code: "LEASE_LOST" });
    expect(lost).toHaveLength(1);
    held.release({ status: "failure" });
  });

  it("keeps a lease alive by renewing it", async () => {
    const f = fire();
    await table("a", 1_000).claim(f);
    const held = lease(f, 1_000);
    // Three leases' time: without renewals the claim would have expired twice over.
    for (let i = 0; i < 30; i++) await new Promise((r) => setTimeout(r, 100));
    expect(held.lost.aborted).toBe(false);
    expect(await table("b").claim(f)).toEqual({ won: false, reason: "taken" });
    held.release({ status: "success" });
    await new Promise((r) => setTimeout(r, 100));
    const [row] = (await table("b").lastFinished()).filter((r) => r.tenant === f.tenant);
    expect(row).toMatchObject({ state: "success" });
  });
});
