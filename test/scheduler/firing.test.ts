import { afterEach, describe, expect, it } from "vitest";
import type { Schedule } from "../../src/config/runner-schema.js";
import { DuckcronError } from "../../src/errors.js";
import { MAX_TIMER_DELAY_MS } from "../../src/scheduler/clock.js";
import { Firing } from "../../src/scheduler/firing.js";
import { FakeClock } from "./fake-clock.js";
import { harness, iso, runner, schedule, stopAll } from "./harness.js";

afterEach(stopAll);

/** Runs every call as soon as it arrives, so only fire times matter. */
const instant = async () => ({ degraded: false });

describe("when schedules fire", () => {
  it("fires a Europe/Berlin 02:30 daily job at 03:00 on the spring-forward day (croner's rule)", async () => {
    const h = harness({
      schedules: [schedule({ name: "nightly", cron: "30 2 * * *", timezone: "Europe/Berlin" })],
      start: "2026-03-27T12:00:00Z",
      run: instant,
    });
    const fired: string[] = [];
    h.scheduler.start();
    h.events.on("run:started", () => fired.push(new Date(h.clock.now()).toISOString()));
    await h.clock.advanceTo("2026-03-31T12:00:00Z");
    expect(fired).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // 02:30 does not exist; 03:00 CEST
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
      "2026-03-31T00:30:00.000Z",
    ]);
  });

  it("fires an America/New_York 01:30 job once on the fall-back day, and uses runner.timezone by default", async () => {
    const h = harness({
      schedules: [schedule({ name: "ny", cron: "30 1 * * *" })],
      runner: { timezone: "America/New_York" },
      start: "2026-10-30T12:00:00Z",
      run: instant,
    });
    const fired: string[] = [];
    h.events.on("run:started", () => fired.push(new Date(h.clock.now()).toISOString()));
    h.scheduler.start();
    await h.clock.advanceTo("2026-11-02T12:00:00Z");
    expect(fired).toEqual([
      "2026-10-31T05:30:00.000Z", // 01:30 EDT
      "2026-11-01T05:30:00.000Z", // first 01:30 (EDT); the repeated 01:30 EST does not fire
      "2026-11-02T06:30:00.000Z", // 01:30 EST
    ]);
    expect(h.scheduler.status().schedules[0]?.timezone).toBe("America/New_York");
  });

  it("honours a seconds field and passes the cron time to the run", async () => {
    const h = harness({
      schedules: [schedule({ name: "fast", cron: "*/15 * * * * *" })],
      start: "2026-01-01T00:00:01Z",
      run: instant,
    });
    const seen: string[] = [];
    h.scheduler.start();
    expect(iso(h.scheduler.nextRuns().get("fast"))).toBe("2026-01-01T00:00:15.000Z");
    h.events.on("run:started", () => seen.push(new Date(h.clock.now()).toISOString()));
    await h.clock.advanceTo("2026-01-01T00:01:00Z");
    expect(seen).toEqual([
      "2026-01-01T00:00:15.000Z",
      "2026-01-01T00:00:30.000Z",
      "2026-01-01T00:00:45.000Z",
      "2026-01-01T00:01:00.000Z",
    ]);
  });

  it("runs every tenant of the schedule on each fire, with the cron time and a fresh run id", async () => {
    const h = harness({
      schedules: [schedule({ name: "multi", cron: "0 * * * *", tenants: ["acme", "globex"] })],
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    expect(h.runs.calls.map((c) => [c.tenant, c.attempt, iso(c.scheduledAt)])).toEqual([
      ["acme", 1, "2026-01-01T01:00:00.000Z"],
      ["globex", 1, "2026-01-01T01:00:00.000Z"],
    ]);
    expect(new Set(h.runs.calls.map((c) => c.runId)).size).toBe(2);
  });

  it("keeps a schedule with enabled: false defined but idle", async () => {
    const h = harness({
      schedules: [schedule({ name: "off", cron: "* * * * * *", enabled: false })],
    });
    h.scheduler.start();
    await h.clock.advance(60_000);
    expect(h.runs.calls).toHaveLength(0);
    expect(h.scheduler.nextRuns()).toEqual(new Map([["off", null]]));
    expect(h.scheduler.status().schedules[0]).toMatchObject({
      name: "off",
      enabled: false,
      nextRun: null,
    });
  });

  it("chains timers for waits longer than Node's ~24.8-day timer maximum", async () => {
    const h = harness({
      schedules: [schedule({ name: "yearly", cron: "0 0 1 1 *" })],
      start: "2026-01-02T00:00:00Z",
      run: instant,
    });
    const fired: string[] = [];
    h.events.on("run:started", () => fired.push(new Date(h.clock.now()).toISOString()));
    h.scheduler.start();
    await h.clock.advanceTo("2026-12-31T23:59:59Z");
    expect(fired).toEqual([]);
    await h.clock.advanceTo("2027-01-01T00:00:01Z");
    expect(fired).toEqual(["2027-01-01T00:00:00.000Z"]);
    expect(Math.max(...h.clock.requestedDelays)).toBeLessThanOrEqual(MAX_TIMER_DELAY_MS);
  });

  it("rejects a cron with 7 fields naming the schedule, and a reload with one changes nothing", () => {
    expect(() =>
      harness({ schedules: [schedule({ name: "y", cron: "0 0 0 1 1 * 2027" })] }),
    ).toThrow(/schedule "y": invalid cron expression/);
    const h = harness({ schedules: [schedule({ name: "ok", cron: "0 * * * *" })] });
    h.scheduler.start();
    const before = h.scheduler.nextRuns();
    let error: unknown;
    try {
      h.scheduler.reload([schedule({ name: "bad", cron: "0 0 0 1 1 * 2027" })], runner());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DuckcronError);
    expect((error as DuckcronError).code).toBe("CONFIG_INVALID");
    expect(h.scheduler.nextRuns()).toEqual(before);
  });
});

describe("Firing alone", () => {
  const fires = (clock: FakeClock, schedules: Schedule[]) => {
    const seen: string[] = [];
    const firing = new Firing({
      schedules,
      timezone: "UTC",
      clock,
      onFire: (s, tenant, at) => seen.push(`${s.name}/${tenant}@${at.toISOString()}`),
    });
    return { firing, seen };
  };

  it("hands on each fire per tenant with its cron time, and nothing before start or after stop", async () => {
    const clock = new FakeClock("2026-01-01T00:00:00Z");
    const { firing, seen } = fires(clock, [
      schedule({ name: "h", cron: "0 * * * *", tenants: ["acme", "globex"] }),
    ]);
    await clock.advanceTo("2026-01-01T01:00:00Z");
    expect(seen).toEqual([]);
    firing.start();
    await clock.advanceTo("2026-01-01T02:00:00Z");
    firing.stop();
    await clock.advanceTo("2026-01-01T05:00:00Z");
    expect(seen).toEqual(["h/acme@2026-01-01T02:00:00.000Z", "h/globex@2026-01-01T02:00:00.000Z"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("reload keeps an unchanged schedule's timer but fires it with the new tenants", async () => {
    const clock = new FakeClock("2026-01-01T00:00:00Z");
    const { firing, seen } = fires(clock, [schedule({ name: "h", cron: "0 * * * *" })]);
    firing.start();
    firing.reload([schedule({ name: "h", cron: "0 * * * *", tenants: ["initech"] })], "UTC");
    await clock.advanceTo("2026-01-01T01:00:00Z");
    expect(seen).toEqual(["h/initech@2026-01-01T01:00:00.000Z"]);
    expect(firing.entries().map((e) => [e.schedule.name, iso(e.nextRun)])).toEqual([
      ["h", "2026-01-01T02:00:00.000Z"],
    ]);
  });
});
