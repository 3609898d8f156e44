import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_FILE, StateStore } from "../../src/scheduler/state.js";
import { eventsOf, harness, schedule, stopAll } from "./harness.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "duckcron-state-"));
});
afterEach(async () => {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
});

const record = (scheduledAt: string) => ({
  scheduledAt,
  finishedAt: scheduledAt,
  status: "success" as const,
});

async function storeWith(runs: Record<string, Record<string, ReturnType<typeof record>>>) {
  await writeFile(join(dir, STATE_FILE), JSON.stringify({ version: 1, runs }));
  const { store, issue } = await StateStore.open(dir);
  expect(issue).toBeUndefined();
  return store;
}

describe("the state store", () => {
  it("round-trips records through one JSON file and leaves no temp files behind", async () => {
    const { store } = await StateStore.open(join(dir, "nested"));
    store.record("sales", "acme", record("2026-01-01T01:00:00.000Z"));
    store.record("sales", "globex", record("2026-01-01T02:00:00.000Z"));
    await store.flush();
    expect(await readdir(join(dir, "nested"))).toEqual([STATE_FILE]);
    const { store: reopened } = await StateStore.open(join(dir, "nested"));
    expect(reopened.last("sales", "globex")).toEqual(record("2026-01-01T02:00:00.000Z"));
    expect(reopened.last("sales", "initech")).toBeUndefined();
  });

  it.each([
    ["truncated JSON", '{"version": 1, "runs": {"sales": '],
    ["the wrong shape", '{"version": 2, "runs": []}'],
  ])(
    "starts fresh with an issue when the file holds %s, and keeps the bad file aside",
    async (_, text) => {
      await writeFile(join(dir, STATE_FILE), text);
      const { store, issue } = await StateStore.open(dir);
      expect(issue).toMatch(/scheduler state is unreadable .*starting with no run history/);
      expect(store.last("sales", "acme")).toBeUndefined();
      expect(await readFile(join(dir, `${STATE_FILE}.corrupt`), "utf8")).toBe(text);
      store.record("sales", "acme", record("2026-01-01T01:00:00.000Z"));
      await store.flush();
      expect((await StateStore.open(dir)).issue).toBeUndefined();
    },
  );

  it("reports a failed write through onWarning instead of throwing", async () => {
    const warnings: string[] = [];
    const { store } = await StateStore.open(dir, { onWarning: (m) => warnings.push(m) });
    await rm(dir, { recursive: true });
    store.record("sales", "acme", record("2026-01-01T01:00:00.000Z"));
    await store.flush();
    expect(warnings).toEqual([expect.stringMatching(/could not save scheduler state/)]);
  });
});

describe("catch-up", () => {
  const hourly = { name: "sales", cron: "0 * * * *", tenants: ["acme", "globex"] };

  it("latest: runs once at start for each tenant that missed its most recent time", async () => {
    const state = await storeWith({
      sales: {
        acme: record("2026-01-01T05:00:00.000Z"), // missed 06:00..09:00
        globex: record("2026-01-01T09:00:00.000Z"), // up to date
      },
    });
    const h = harness({
      schedules: [schedule({ ...hourly, catchup: "latest" })],
      start: "2026-01-01T09:20:00Z",
      state,
    });
    h.scheduler.start();
    expect(h.runs.calls.map((c) => [c.tenant, c.scheduledAt.toISOString()])).toEqual([
      ["acme", "2026-01-01T09:00:00.000Z"],
    ]);
    h.runs.finish();
    await h.clock.advance(0);
    await state.flush();
    const { store } = await StateStore.open(dir);
    expect(store.last("sales", "acme")).toMatchObject({
      scheduledAt: "2026-01-01T09:00:00.000Z",
      finishedAt: "2026-01-01T09:20:00.000Z",
      status: "success",
    });
    expect(
      h.scheduler.status().schedules[0]?.tenants.map((t) => t.last?.scheduledAt.toISOString()),
    ).toEqual(["2026-01-01T09:00:00.000Z", "2026-01-01T09:00:00.000Z"]);
  });

  it("none (default): does not run missed times", async () => {
    const state = await storeWith({ sales: { acme: record("2026-01-01T05:00:00.000Z") } });
    const h = harness({ schedules: [schedule(hourly)], start: "2026-01-01T09:20:00Z", state });
    h.scheduler.start();
    await h.clock.advance(0);
    expect(h.runs.calls).toHaveLength(0);
  });

  it("latest: a tenant with no record has nothing known to be missed", async () => {
    const { store: state } = await StateStore.open(dir);
    const h = harness({
      schedules: [schedule({ ...hourly, catchup: "latest" })],
      start: "2026-01-01T09:20:00Z",
      state,
    });
    h.scheduler.start();
    await h.clock.advance(0);
    expect(h.runs.calls).toHaveLength(0);
  });

  it("records every finished run, whatever its status, for the next start", async () => {
    const { store: state } = await StateStore.open(dir);
    const h = harness({
      schedules: [schedule(hourly)],
      state,
      run: async () => {
        throw new Error("x");
      },
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-01-01T01:00:00Z");
    expect(eventsOf(h.log, "run:finished")).toHaveLength(2);
    await state.flush();
    const { store } = await StateStore.open(dir);
    expect(store.last("sales", "globex")?.status).toBe("failure");
  });
});
