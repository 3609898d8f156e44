import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, type DuckcronError, SecretError } from "../../src/errors.js";
import { eventsOf, harness, runner, schedule, stopAll } from "./harness.js";

afterEach(stopAll);

const backendDown = () =>
  new SecretError("SECRET_BACKEND_UNAVAILABLE", "vault unreachable", { retryable: true });

describe("timeouts", () => {
  it("aborts the run through its signal and records status timeout", async () => {
    const h = harness({ schedules: [schedule({ name: "t", cron: "0 * * * *", timeout: 5_000 })] });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    const call = h.runs.calls[0]!;
    await h.clock.advance(5_000);
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as DuckcronError).code).toBe("RUN_TIMEOUT");
    expect(eventsOf(h.log, "run:finished")).toEqual([
      expect.objectContaining({
        schedule: "t",
        status: "timeout",
        durationMs: 5_000,
        error: expect.objectContaining({ code: "RUN_TIMEOUT", retryable: false }),
      }),
    ]);
    expect(h.runs.inFlight).toBe(0);
    expect(h.scheduler.status().schedules[0]?.tenants[0]?.last?.status).toBe("timeout");
  });

  it("keeps the slot of a run that ignores the abort until it settles, and never retries a timeout", async () => {
    const h = harness({
      schedules: [
        schedule({
          name: "stuck",
          cron: "0 * * * *",
          timeout: 1_000,
          retries: { attempts: 3, backoff: 10, max_backoff: 10 },
        }),
        schedule({ name: "other", cron: "0 * * * *", tenants: ["globex"] }),
      ],
      runner: { max_concurrent_runs: 1 },
    });
    h.runs.ignoreAbort = true;
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    await h.clock.advance(1_000);
    expect(eventsOf(h.log, "run:finished").map((e) => e.status)).toEqual(["timeout"]);
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(["stuck"]); // other still waits
    h.runs.finish((r) => r.schedule.name === "stuck"); // settles late, successfully
    await h.clock.advance(0);
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(["stuck", "other"]);
    expect(eventsOf(h.log, "run:finished").map((e) => e.status)).toEqual(["timeout"]);
    expect(eventsOf(h.log, "run:retry")).toEqual([]);
    h.runs.finish();
  });
});

describe("retries", () => {
  it("retries retryable errors with exponential backoff and full jitter, capped by max_backoff", async () => {
    const h = harness({
      schedules: [
        schedule({
          name: "r",
          cron: "0 * * * *",
          retries: { attempts: 3, backoff: 1_000, max_backoff: 3_000 },
        }),
      ],
      random: () => 0.5,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    for (let i = 0; i < 4; i++) {
      h.runs.fail(backendDown());
      await h.clock.advance(0);
      const retries = eventsOf(h.log, "run:retry");
      if (i < 3) await h.clock.advance(retries[retries.length - 1]!.delayMs);
    }
    const retries = eventsOf(h.log, "run:retry");
    // ceilings 1000, 2000, min(4000, 3000) times random 0.5
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([
      [2, 500],
      [3, 1_000],
      [4, 1_500],
    ]);
    expect(new Set(h.runs.calls.map((c) => c.runId)).size).toBe(1);
    expect(h.runs.calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
    expect(
      eventsOf(h.log, "run:finished").map((e) => [e.attempt, e.status, e.error?.code]),
    ).toEqual([
      [1, "failure", "SECRET_BACKEND_UNAVAILABLE"],
      [2, "failure", "SECRET_BACKEND_UNAVAILABLE"],
      [3, "failure", "SECRET_BACKEND_UNAVAILABLE"],
      [4, "failure", "SECRET_BACKEND_UNAVAILABLE"],
    ]);
    expect(h.runs.inFlight).toBe(0);
  });

  it("does not hold a concurrency slot while backing off", async () => {
    const h = harness({
      schedules: [
        schedule({
          name: "r",
          cron: "0 * * * *",
          retries: { attempts: 1, backoff: 60_000, max_backoff: 60_000 },
        }),
        schedule({ name: "o", cron: "0 * * * *", tenants: ["globex"] }),
      ],
      runner: { max_concurrent_runs: 1 },
      random: () => 0.99,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    h.runs.fail(backendDown());
    await h.clock.advance(0);
    expect(h.runs.pending.map((p) => p.req.schedule.name)).toEqual(["o"]);
  });

  it.each([
    ["a config error", new ConfigError([])],
    ["an access-denied secret error", new SecretError("SECRET_ACCESS_DENIED", "denied")],
    ["a plain Error", new Error("boom")],
  ])("never retries %s", async (_, error) => {
    const h = harness({
      schedules: [
        schedule({
          name: "n",
          cron: "0 * * * *",
          retries: { attempts: 5, backoff: 1, max_backoff: 1 },
        }),
      ],
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    h.runs.fail(error);
    await h.clock.advance(10);
    expect(h.runs.calls).toHaveLength(1);
    expect(eventsOf(h.log, "run:retry")).toEqual([]);
    expect(eventsOf(h.log, "run:finished")[0]).toMatchObject({
      status: "failure",
      error: { retryable: false },
    });
  });

  it("reports an unknown error as INTERNAL with its message as given", async () => {
    const h = harness({ schedules: [schedule({ name: "n", cron: "0 * * * *" })] });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    h.runs.fail(new Error("disk full"));
    await h.clock.advance(0);
    expect(eventsOf(h.log, "run:finished")[0]?.error).toEqual({
      code: "INTERNAL",
      message: "disk full",
      retryable: false,
    });
  });
});

describe("shutdown", () => {
  it("waits for running runs that finish within the grace period: finished true", async () => {
    const h = harness({
      schedules: [schedule({ name: "s", cron: "0 * * * *" })],
      runner: { shutdown_grace: 10_000 },
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    const done = h.scheduler.shutdown();
    await h.clock.advance(9_000);
    expect(h.runs.calls[0]?.signal.aborted).toBe(false);
    h.runs.finish();
    await expect(done).resolves.toEqual({ finished: true });
    expect(h.scheduler.status().state).toBe("stopped");
    expect(eventsOf(h.log, "run:finished").map((e) => e.status)).toEqual(["success"]);
    await h.clock.advance(3_600_000);
    expect(h.runs.calls).toHaveLength(1); // no more fires
  });

  it("aborts runs still going after the grace period, waits for them to settle: finished false", async () => {
    const h = harness({
      schedules: [schedule({ name: "slow", cron: "0 * * * *" })],
      runner: { shutdown_grace: 10_000 },
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    h.runs.ignoreAbort = true;
    let result: { finished: boolean } | undefined;
    void h.scheduler.shutdown().then((r) => {
      result = r;
    });
    await h.clock.advance(10_000);
    const call = h.runs.calls[0]!;
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as DuckcronError).code).toBe("RUN_ABORTED");
    expect(result).toBeUndefined(); // still waiting for the run to settle
    h.runs.fail(call.signal.reason);
    await h.clock.advance(0);
    expect(result).toEqual({ finished: false });
    expect(eventsOf(h.log, "run:finished")).toEqual([
      expect.objectContaining({
        status: "failure",
        error: expect.objectContaining({ code: "RUN_ABORTED" }),
      }),
    ]);
  });

  it("drops a fire queued behind a running one with run:skipped shutdown, and cancels pending retries", async () => {
    const hours = (n: number) => n * 3_600_000;
    const h = harness({
      schedules: [
        schedule({ name: "busy", cron: "0 * * * *" }),
        schedule({
          name: "retrying",
          cron: "0 * * * *",
          tenants: ["umbrella"],
          retries: { attempts: 2, backoff: hours(4), max_backoff: hours(4) },
        }),
        schedule({ name: "q", cron: "*/30 * * * *", tenants: ["initech"], overlap: "queue" }),
      ],
      runner: { shutdown_grace: 1_000 },
      start: "2026-01-01T00:59:30Z",
      random: () => 0.5,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    h.runs.fail(backendDown(), (r) => r.schedule.name === "retrying"); // retry due at 03:00
    await h.clock.advanceTo("2026-01-01T01:30:00Z"); // q queues behind itself
    expect(h.runs.pending.map((p) => p.req.schedule.name)).toEqual(["busy", "q"]);
    const done = h.scheduler.shutdown();
    expect(eventsOf(h.log, "run:skipped")).toEqual([
      { schedule: "q", tenant: "initech", reason: "shutdown" },
    ]);
    h.runs.finish();
    h.runs.finish();
    await expect(done).resolves.toEqual({ finished: true });
    await h.clock.advance(hours(4));
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(["busy", "retrying", "q"]);
  });

  it("drops runs waiting for a slot at shutdown", async () => {
    const h = harness({
      schedules: [
        schedule({ name: "busy", cron: "0 * * * *" }),
        schedule({ name: "waiting", cron: "0 * * * *", tenants: ["globex"] }),
      ],
      runner: { max_concurrent_runs: 1 },
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    const done = h.scheduler.shutdown();
    expect(eventsOf(h.log, "run:skipped")).toEqual([
      { schedule: "waiting", tenant: "globex", reason: "shutdown" },
    ]);
    h.runs.finish();
    await expect(done).resolves.toEqual({ finished: true });
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(["busy"]);
  });

  it("is what `await using` calls", async () => {
    const h = harness({ schedules: [schedule({ name: "s", cron: "0 * * * *" })] });
    h.scheduler.start();
    await h.scheduler[Symbol.asyncDispose]();
    expect(h.scheduler.status().state).toBe("stopped");
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
