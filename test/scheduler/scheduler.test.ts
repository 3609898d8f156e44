import { afterEach, describe, expect, it } from "vitest";
import { eventsOf, harness, iso, runner, schedule, stopAll } from "./harness.js";

/** What the Scheduler adds to firing and the run lifecycle: overlap lanes and reload. */

afterEach(stopAll);

describe("overlap", () => {
  it("skip (default): a fire that finds the previous run still going is skipped", async () => {
    const h = harness({ schedules: [schedule({ name: "s", cron: "* * * * *" })] });
    h.scheduler.start();
    await h.clock.advance(60_000);
    await h.clock.advance(60_000);
    expect(h.runs.calls).toHaveLength(1);
    const second = new Date(h.runs.calls[0]!.scheduledAt.getTime() + 60_000).toISOString();
    expect(eventsOf(h.log, "run:skipped")).toEqual([
      { schedule: "s", tenant: "acme", scheduledAt: second, reason: "overlap" },
    ]);
    h.runs.finish();
    await h.clock.advance(60_000);
    expect(h.runs.calls).toHaveLength(2);
  });

  it("skip also applies while the previous run is still waiting for a slot", async () => {
    const h = harness({
      schedules: [
        schedule({ name: "hog", cron: "0 * * * *" }),
        schedule({ name: "s", cron: "*/10 * * * *" }),
      ],
      runner: { max_concurrent_runs: 1 },
      start: "2026-01-01T00:59:30Z",
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z"); // hog runs, s waits for the slot
    await h.clock.advanceTo("2026-01-01T01:10:00Z");
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(["hog"]);
    expect(eventsOf(h.log, "run:skipped")).toEqual([
      { schedule: "s", tenant: "acme", scheduledAt: "2026-01-01T01:10:00.000Z", reason: "overlap" },
    ]);
  });

  it("queue: keeps one fire waiting behind the running one and skips further fires", async () => {
    const h = harness({
      schedules: [schedule({ name: "q", cron: "* * * * *", overlap: "queue" })],
    });
    h.scheduler.start();
    await h.clock.advance(60_000); // runs
    await h.clock.advance(60_000); // queued
    await h.clock.advance(60_000); // skipped: one is already queued
    expect(h.runs.calls).toHaveLength(1);
    expect(h.scheduler.status().schedules[0]?.tenants[0]).toMatchObject({
      active: true,
      queued: true,
    });
    expect(eventsOf(h.log, "run:skipped")).toHaveLength(1);
    h.runs.finish();
    await h.clock.advance(0);
    expect(h.runs.calls.map((c) => iso(c.scheduledAt))).toEqual([
      "2026-01-01T00:01:00.000Z",
      "2026-01-01T00:02:00.000Z",
    ]);
  });
});

describe("reload", () => {
  it("keeps running builds of a removed schedule and records their result, but stops firing it", async () => {
    const h = harness({
      schedules: [
        schedule({ name: "gone", cron: "0 * * * *" }),
        schedule({ name: "stays", cron: "0 * * * *", tenants: ["globex"] }),
      ],
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    h.scheduler.reload(
      [schedule({ name: "stays", cron: "0 * * * *", tenants: ["globex"] })],
      runner(),
    );
    expect([...h.scheduler.nextRuns().keys()]).toEqual(["stays"]);
    const gone = h.runs.calls[0];
    expect(gone?.signal.aborted).toBe(false);
    h.runs.finish((r) => r.schedule.name === "gone");
    h.runs.finish();
    await h.clock.advance(0);
    expect(eventsOf(h.log, "run:finished").map((e) => [e.schedule, e.status])).toEqual([
      ["gone", "success"],
      ["stays", "success"],
    ]);
    await h.clock.advanceTo("2026-01-01T03:00:00Z");
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(["gone", "stays", "stays"]);
  });

  it("re-arms a schedule whose cron changed, adds new ones, and applies new limits", async () => {
    const h = harness({ schedules: [schedule({ name: "a", cron: "0 * * * *" })] });
    h.scheduler.start();
    expect(h.scheduler.nextRuns().get("a")?.toISOString()).toBe("2026-01-01T01:00:00.000Z");
    h.scheduler.reload(
      [
        schedule({ name: "a", cron: "*/10 * * * *" }),
        schedule({ name: "b", cron: "0 0 * * *", enabled: true }),
      ],
      runner({ timezone: "Asia/Tokyo" }),
    );
    expect(h.scheduler.nextRuns().get("a")?.toISOString()).toBe("2026-01-01T00:10:00.000Z");
    expect(h.scheduler.nextRuns().get("b")?.toISOString()).toBe("2026-01-01T15:00:00.000Z"); // Tokyo midnight
  });

  it("does not count a fire twice when the schedule is unchanged", async () => {
    const h = harness({ schedules: [schedule({ name: "a", cron: "0 * * * *" })] });
    h.scheduler.start();
    h.scheduler.reload([schedule({ name: "a", cron: "0 * * * *" })], runner());
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    expect(h.runs.calls).toHaveLength(1);
  });
});

describe("admission", () => {
  it("a fire another replica runs leaves no result here and does not block the lane", async () => {
    const asked: string[] = [];
    const h = harness({
      schedules: [schedule({ name: "s", cron: "* * * * *", overlap: "queue" })],
      admission: async (fire) => {
        asked.push(iso(fire.scheduledAt)!);
        return null;
      },
    });
    h.scheduler.start();
    await h.clock.advance(60_000);
    await h.clock.advance(60_000);
    expect(asked).toEqual(["2026-01-01T00:01:00.000Z", "2026-01-01T00:02:00.000Z"]);
    expect(h.runs.calls).toEqual([]);
    expect(h.log).toEqual([]);
    expect(h.scheduler.status().schedules[0]?.tenants[0]).toEqual({
      tenant: "acme",
      active: false,
      queued: false,
      last: null,
    });
  });
});
