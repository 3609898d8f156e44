import { afterEach, describe, expect, it } from "vitest";
import type { Schedule } from "../../src/config/runner-schema.js";
import { ConfigError, type DuckcronError, SecretError } from "../../src/errors.js";
import { EventBus } from "../../src/observe/events.js";
import {
  type Fire,
  type Lease,
  type RunEnd,
  RunLifecycle,
} from "../../src/scheduler/run-lifecycle.js";
import { FakeClock } from "./fake-clock.js";
import { eventsOf, harness, ManualRuns, record, schedule, stopAll } from "./harness.js";

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
      {
        schedule: "q",
        tenant: "initech",
        scheduledAt: "2026-01-01T01:30:00.000Z",
        reason: "shutdown",
      },
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
      {
        schedule: "waiting",
        tenant: "globex",
        scheduledAt: "2026-01-01T01:00:00.000Z",
        reason: "shutdown",
      },
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

describe("concurrency limits", () => {
  it("never runs more than max_concurrent_runs at once and starts waiting runs in FIFO order", async () => {
    const names = ["a", "b", "c", "d", "e"];
    const h = harness({
      schedules: names.map((name) => schedule({ name, cron: "0 * * * *", tenants: [`t-${name}`] })),
      runner: { max_concurrent_runs: 2 },
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    expect(h.runs.inFlight).toBe(2);
    expect(h.scheduler.status()).toMatchObject({ running: 2, waiting: 3 });
    while (h.runs.inFlight > 0) {
      h.runs.finish();
      await h.clock.advance(0);
    }
    expect(h.runs.maxInFlight).toBe(2);
    expect(h.runs.calls.map((c) => c.schedule.name)).toEqual(names);
  });

  it("limits runs per tenant without holding up other tenants queued behind", async () => {
    const h = harness({
      schedules: [
        schedule({ name: "x", cron: "0 * * * *", tenants: ["acme", "globex"] }),
        schedule({ name: "y", cron: "0 * * * *", tenants: ["acme", "initech"] }),
      ],
      runner: { max_concurrent_runs: 10, max_concurrent_runs_per_tenant: 1 },
    });
    const inFlight = new Map<string, number>();
    const maxInFlight = new Map<string, number>();
    h.events.on("run:started", ({ tenant }) => {
      inFlight.set(tenant, (inFlight.get(tenant) ?? 0) + 1);
      maxInFlight.set(tenant, Math.max(maxInFlight.get(tenant) ?? 0, inFlight.get(tenant)!));
    });
    h.events.on("run:finished", ({ tenant }) => inFlight.set(tenant, inFlight.get(tenant)! - 1));
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    const running = () => h.runs.pending.map((p) => `${p.req.schedule.name}/${p.req.tenant}`);
    // y/acme waits for acme's slot; y/initech behind it is not held up.
    expect(running()).toEqual(["x/acme", "x/globex", "y/initech"]);
    h.runs.finish((r) => r.tenant === "acme");
    await h.clock.advance(0);
    expect(running()).toEqual(["x/globex", "y/initech", "y/acme"]);
    expect(maxInFlight.get("acme")).toBe(1);
  });
});

describe("RunLifecycle alone: admission and leases", () => {
  /** A lease the test loses by hand, recording what the lifecycle released it with. */
  function lease() {
    const controller = new AbortController();
    const released: (RunEnd | null)[] = [];
    const held: Lease = { lost: controller.signal, release: (end) => released.push(end) };
    return { held, released, lose: (reason: unknown) => controller.abort(reason) };
  }

  function lifecycle(options: { global?: number; retries?: Schedule["retries"] } = {}) {
    const clock = new FakeClock("2026-01-01T00:00:00Z");
    const events = new EventBus();
    const log = record(events);
    const runs = new ManualRuns();
    const asked: Fire[] = [];
    const answers: ((lease: Lease | null) => void)[] = [];
    const failures: ((error: unknown) => void)[] = [];
    const ends: [string, RunEnd | null][] = [];
    const drops: [string, boolean][] = [];
    const lc = new RunLifecycle({
      run: runs.fn,
      events,
      clock,
      random: () => 0.5,
      limits: { global: options.global ?? 4, perTenant: 4 },
      admission: (fire) =>
        new Promise<Lease | null>((resolve, reject) => {
          asked.push(fire);
          answers.push(resolve);
          failures.push(reject);
        }),
      onEnd: (fire, end) => ends.push([fire.runId, end]),
      onDrop: (fire, started) => drops.push([fire.runId, started]),
    });
    const sched = schedule({
      name: "s",
      cron: "0 * * * *",
      ...(options.retries ? { retries: options.retries } : {}),
    });
    const submit = (runId: string): Fire => {
      const fire = { runId, schedule: sched, tenant: "acme", scheduledAt: new Date(clock.now()) };
      lc.submit(fire);
      return fire;
    };
    /** Submits a fire and admits it with a fresh lease, up to its first attempt. */
    const admitted = async (runId: string) => {
      submit(runId);
      const held = lease();
      answers[answers.length - 1]!(held.held);
      await clock.advance(0);
      return held;
    };
    return { lc, clock, log, runs, asked, answers, failures, ends, drops, submit, admitted };
  }

  it("asks once per fire while holding its slot, so a replica at its limit does not ask", async () => {
    const t = lifecycle({ global: 1 });
    t.submit("one");
    t.submit("two");
    expect(t.asked.map((f) => f.runId)).toEqual(["one"]);
    expect([t.lc.running, t.lc.waiting]).toEqual([1, 1]);
    expect(t.runs.calls).toEqual([]); // nothing runs before the answer
    const first = lease();
    t.answers[0]!(first.held);
    await t.clock.advance(0);
    expect(t.runs.calls.map((c) => [c.runId, c.attempt])).toEqual([["one", 1]]);
    expect(t.asked.map((f) => f.runId)).toEqual(["one"]);
    t.runs.finish();
    await t.clock.advance(0);
    expect(first.released).toEqual([{ status: "success" }]);
    expect(t.ends).toEqual([["one", { status: "success" }]]);
    expect(t.asked.map((f) => f.runId)).toEqual(["one", "two"]);
  });

  it.each([
    ["answers null", (t: ReturnType<typeof lifecycle>) => t.answers[0]!(null)],
    ["rejects", (t: ReturnType<typeof lifecycle>) => t.failures[0]!(new Error("db down"))],
  ])("drops a fire whose admission %s: no run, no events, the slot goes on", async (_, answer) => {
    const t = lifecycle({ global: 1 });
    t.submit("one");
    t.submit("two");
    answer(t);
    await t.clock.advance(0);
    expect(t.runs.calls).toEqual([]);
    expect(t.log).toEqual([]);
    expect(t.ends).toEqual([["one", null]]);
    expect(t.asked.map((f) => f.runId)).toEqual(["one", "two"]);
  });

  it("retries under the same lease without asking again", async () => {
    const t = lifecycle({ retries: { attempts: 2, backoff: 1_000, max_backoff: 1_000 } });
    const held = await t.admitted("one");
    t.runs.fail(backendDown());
    await t.clock.advance(500);
    expect(t.runs.calls.map((c) => c.attempt)).toEqual([1, 2]);
    t.runs.finish();
    await t.clock.advance(0);
    expect(t.asked).toHaveLength(1);
    expect(held.released).toEqual([{ status: "success" }]);
  });

  it("aborts the attempt when the lease is lost, reports its reason, never retries, releases once", async () => {
    const t = lifecycle({ retries: { attempts: 3, backoff: 10, max_backoff: 10 } });
    const held = await t.admitted("one");
    const call = t.runs.calls[0]!;
    const reason = new SecretError("SECRET_BACKEND_UNAVAILABLE", "lease taken over", {
      retryable: true,
    });
    held.lose(reason);
    await t.clock.advance(1_000);
    expect(call.signal.reason).toBe(reason);
    expect(t.runs.calls).toHaveLength(1);
    expect(eventsOf(t.log, "run:retry")).toEqual([]);
    const failure = {
      status: "failure",
      error: expect.objectContaining({ message: "lease taken over" }),
    };
    expect(eventsOf(t.log, "run:finished")).toEqual([expect.objectContaining(failure)]);
    expect(held.released).toEqual([failure]);
    expect(t.ends).toEqual([["one", failure]]);
    expect([t.lc.running, t.lc.waiting]).toEqual([0, 0]);
  });

  it("cancels a pending retry when the lease is lost while backing off", async () => {
    const t = lifecycle({ retries: { attempts: 3, backoff: 60_000, max_backoff: 60_000 } });
    const held = await t.admitted("one");
    t.runs.fail(backendDown());
    await t.clock.advance(0);
    expect(eventsOf(t.log, "run:retry")).toHaveLength(1);
    held.lose(new Error("lease expired"));
    await t.clock.advance(120_000);
    expect(t.runs.calls).toHaveLength(1);
    expect(held.released).toEqual([
      { status: "failure", error: expect.objectContaining({ message: "lease expired" }) },
    ]);
    expect(t.ends).toHaveLength(1);
  });

  it("releases the lease with null when shutdown drops a pending retry, so it can be taken over", async () => {
    const t = lifecycle({ retries: { attempts: 3, backoff: 60_000, max_backoff: 60_000 } });
    const held = await t.admitted("one");
    t.runs.fail(backendDown());
    await t.clock.advance(0);
    t.lc.close();
    expect(held.released).toEqual([null]);
    expect(t.drops).toEqual([["one", true]]);
    expect(t.ends).toEqual([]);
  });

  it("never starts a fire admitted after close(): its lease is released with null", async () => {
    const t = lifecycle();
    t.submit("one");
    t.lc.close();
    const drained = t.lc.drain(30_000);
    const held = lease();
    t.answers[0]!(held.held);
    expect(await drained).toEqual({ finished: true });
    expect(t.runs.calls).toEqual([]);
    expect(held.released).toEqual([null]);
    expect(t.drops).toEqual([["one", false]]);
    expect(t.lc.running).toBe(0);
  });
});
