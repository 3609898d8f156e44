import { createHash, createHmac } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AuditLog, GENESIS, openAuditLog } from "../../src/observe/audit.js";
import { verifyAuditLog } from "../../src/observe/audit-verify.js";
import { EventBus } from "../../src/observe/events.js";
import { createLogger } from "../../src/observe/logger.js";
import { Scrubber } from "../../src/observe/scrubber.js";

const PLANTED = "pl4nted-S3CRET-value-9f8e7d";
const HMAC_KEY = "audit-hmac-key-0a1b2c3d";
const FIXED = new Date("2026-03-01T12:00:00.000Z");

let dir: string;
let bus: EventBus;
let scrubber: Scrubber;
const open: AuditLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "duckcron-audit-"));
  bus = new EventBus();
  scrubber = new Scrubber();
});
afterEach(async () => {
  for (const log of open.splice(0)) await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function openLog(path = join(dir, "audit.jsonl"), hmacKey: string | null = HMAC_KEY) {
  const log = await openAuditLog({
    path,
    hmacKey: hmacKey ?? undefined,
    events: bus,
    scrubber,
    now: () => FIXED,
  });
  open.push(log);
  return { log, path };
}

function emitRun(runId: string): void {
  bus.emit("run:started", { runId, schedule: "sales", tenant: "acme", attempt: 1 });
  bus.emit("run:finished", {
    runId,
    schedule: "sales",
    tenant: "acme",
    attempt: 1,
    status: "success",
    durationMs: 1234,
    degraded: false,
  });
}

async function lines(path: string): Promise<string[]> {
  return (await readFile(path, "utf8")).split("\n").filter((l) => l !== "");
}

async function writeLines(path: string, content: string[]): Promise<void> {
  await writeFile(path, `${content.join("\n")}\n`);
}

/** Five records: run 1 started/finished, run 2 started/finished, a config reload. */
async function fiveRecords(name = "audit.jsonl"): Promise<string> {
  const { log, path } = await openLog(join(dir, name));
  emitRun("r1");
  emitRun("r2");
  bus.emit("config:loaded", { path: "runner.yaml", outcome: "reloaded" });
  await log.close();
  return path;
}

describe("openAuditLog", () => {
  it("writes one JSON line per event with seq, ts, event, fields and prev", async () => {
    const { log, path } = await openLog();
    emitRun("r1");
    await log.flush();
    const records = (await lines(path)).map((l) => JSON.parse(l));
    expect(records).toEqual([
      {
        seq: 1,
        ts: "2026-03-01T12:00:00.000Z",
        event: "run.started",
        runId: "r1",
        schedule: "sales",
        tenant: "acme",
        attempt: 1,
        prev: GENESIS,
      },
      expect.objectContaining({
        seq: 2,
        event: "run.finished",
        status: "success",
        durationMs: 1234,
      }),
    ]);
    const [first] = await lines(path);
    expect(records[1].prev).toBe(createHash("sha256").update(first!).digest("hex"));
  });

  it("records secrets, DuckDB secrets, catalogs and config by name and fingerprint, never by value", async () => {
    const { log, path } = await openLog();
    scrubber.add(PLANTED);
    bus.emit("secret:resolved", {
      schedule: "sales",
      tenant: "acme",
      reference: "secret:db.password",
      backend: "vault",
      cacheHit: false,
      outcome: "ok",
      fingerprint: log.fingerprint(PLANTED),
    });
    bus.emit("duckdb:secret", {
      schedule: "sales",
      tenant: "acme",
      catalog: "catalogs/acme/sales.duckdb",
      name: "lake",
      type: "s3",
      persistent: false,
      scope: ["s3://lake/acme/"],
      action: "created",
    });
    bus.emit("catalog:built", {
      schedule: "sales",
      tenant: "acme",
      path: "catalogs/acme/sales.duckdb",
      fingerprint: "f00d",
      skipped: false,
      viewCount: 2,
      views: { added: ["sales"], changed: ["top"], dropped: [] },
      durationMs: 80,
    });
    // A value that slipped into a field by mistake is still masked on the way out.
    bus.emit("config:loaded", {
      path: "runner.yaml",
      outcome: "rejected",
      error: `bad token ${PLANTED}`,
    });
    await log.close();

    const text = await readFile(path, "utf8");
    expect(text).not.toContain(PLANTED);
    expect(text).not.toContain(HMAC_KEY);
    const records = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(records.map((r) => r.event)).toEqual([
      "secret.resolved",
      "duckdb_secret.created",
      "catalog.built",
      "config.rejected",
    ]);
    expect(records[0]).toMatchObject({
      reference: "secret:db.password",
      backend: "vault",
      cacheHit: false,
      outcome: "ok",
      fingerprint: createHmac("sha256", HMAC_KEY).update(PLANTED).digest("hex"),
    });
    expect(records[1]).toMatchObject({
      name: "lake",
      type: "s3",
      persistent: false,
      scope: ["s3://lake/acme/"],
    });
    expect(records[2]).toMatchObject({
      views: { added: ["sales"], changed: ["top"], dropped: [] },
      skipped: false,
    });
    expect(records[3].error).toBe("bad token ***");
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, records: 4 });
  });

  it("fingerprints only with a key", async () => {
    const { log } = await openLog(join(dir, "nokey.jsonl"), null);
    expect(log.fingerprint(PLANTED)).toBeUndefined();
  });

  it("creates the file 0600 and tightens a looser existing file", async () => {
    const { log, path } = await openLog();
    await log.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const loose = join(dir, "loose.jsonl");
    await writeFile(loose, "");
    await chmod(loose, 0o644);
    const logged = new PassThrough();
    const warnings: string[] = [];
    logged.on("data", (chunk: Buffer) => warnings.push(chunk.toString("utf8")));
    const logger = createLogger({ scrubber, destination: logged, pretty: false });
    open.push(await openAuditLog({ path: loose, events: bus, scrubber, logger }));
    expect((await stat(loose)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(warnings.join(""))).toMatchObject({ level: 40, was: "644", path: loose });
  });

  it("refuses to follow a symlink at the audit path", async () => {
    const target = join(dir, "elsewhere.jsonl");
    await writeFile(target, "");
    const link = join(dir, "link.jsonl");
    await symlink(target, link);
    await expect(openLog(link)).rejects.toMatchObject({ code: "AUDIT_LOG_INVALID" });
  });

  it("continues the chain of an existing file across reopen", async () => {
    const first = await openLog();
    emitRun("r1");
    await first.log.close();
    open.length = 0;

    bus = new EventBus();
    const second = await openLog(first.path);
    emitRun("r2");
    await second.log.close();

    const records = (await lines(first.path)).map((l) => JSON.parse(l));
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(await verifyAuditLog(first.path)).toMatchObject({ ok: true, records: 4 });
  });

  it("refuses to continue a file whose last line is torn, saying what to do", async () => {
    const path = await fiveRecords();
    const content = await readFile(path, "utf8");
    await writeFile(path, content.slice(0, -20));
    await expect(openLog(path)).rejects.toThrow(/last line is truncated.*audit verify/);
  });

  it("keeps records in event order under a burst of events", async () => {
    const { log, path } = await openLog();
    for (let i = 0; i < 200; i++) emitRun(`r${i}`);
    await log.close();
    expect(await verifyAuditLog(path)).toMatchObject({ ok: true, records: 400 });
  });

  it("writes to stdout given `-`, chained from genesis", async () => {
    const written: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string, cb?: (error?: Error | null) => void) => {
      written.push(chunk);
      cb?.();
      return true;
    }) as typeof process.stdout.write;
    try {
      const log = await openAuditLog({ path: "-", events: bus, scrubber, now: () => FIXED });
      emitRun("r1");
      await log.close();
    } finally {
      process.stdout.write = original;
    }
    const records = written
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(records.map((r) => [r.seq, r.event])).toEqual([
      [1, "run.started"],
      [2, "run.finished"],
    ]);
    expect(records[0].prev).toBe(GENESIS);
  });
});

describe("verifyAuditLog", () => {
  it("accepts an intact log and an empty one", async () => {
    const path = await fiveRecords();
    const result = await verifyAuditLog(path);
    expect(result).toMatchObject({ ok: true, records: 5 });
    const last = (await lines(path)).at(-1)!;
    expect(result).toMatchObject({ head: createHash("sha256").update(last).digest("hex") });
    const empty = join(dir, "empty.jsonl");
    await writeFile(empty, "");
    expect(await verifyAuditLog(empty)).toEqual({ ok: true, records: 0, head: GENESIS });
  });

  it("finds an edited record at its own line", async () => {
    const path = await fiveRecords();
    const content = await lines(path);
    content[2] = content[2]!.replace('"tenant":"acme"', '"tenant":"evil"');
    await writeLines(path, content);
    expect(await verifyAuditLog(path)).toEqual({
      ok: false,
      records: 2,
      firstBad: { line: 3, reason: expect.stringMatching(/altered/) },
    });
  });

  it("finds a deleted record at the line after the gap", async () => {
    const path = await fiveRecords();
    const content = await lines(path);
    content.splice(2, 1);
    await writeLines(path, content);
    expect(await verifyAuditLog(path)).toEqual({
      ok: false,
      records: 2,
      firstBad: { line: 3, reason: expect.stringMatching(/seq jumps from 2 to 4/) },
    });
  });

  it("finds a deleted first record", async () => {
    const path = await fiveRecords();
    await writeLines(path, (await lines(path)).slice(1));
    expect(await verifyAuditLog(path)).toMatchObject({ ok: false, firstBad: { line: 1 } });
  });

  it("finds an inserted record at its own line, even one with a forged seq and prev", async () => {
    const path = await fiveRecords();
    const content = await lines(path);
    const forged = JSON.stringify({
      seq: 3,
      ts: FIXED.toISOString(),
      event: "run.started",
      runId: "forged",
      prev: createHash("sha256").update(content[1]!).digest("hex"),
    });
    content.splice(2, 0, forged);
    await writeLines(path, content);
    expect(await verifyAuditLog(path)).toEqual({
      ok: false,
      records: 2,
      firstBad: { line: 3, reason: expect.stringMatching(/inserted/) },
    });

    const copied = await fiveRecords("second.jsonl");
    const again = await lines(copied);
    again.splice(3, 0, again[0]!);
    await writeLines(copied, again);
    expect(await verifyAuditLog(copied)).toMatchObject({ ok: false, firstBad: { line: 4 } });
  });

  it("finds reordered records at the first displaced line", async () => {
    const path = await fiveRecords();
    const content = await lines(path);
    [content[1], content[2]] = [content[2]!, content[1]!];
    await writeLines(path, content);
    expect(await verifyAuditLog(path)).toMatchObject({
      ok: false,
      records: 1,
      firstBad: { line: 2 },
    });
  });

  it("finds a truncated last line", async () => {
    const path = await fiveRecords();
    const content = await readFile(path, "utf8");
    await writeFile(path, content.slice(0, -10));
    expect(await verifyAuditLog(path)).toEqual({
      ok: false,
      records: 4,
      firstBad: { line: 5, reason: "truncated: the last line has no newline" },
    });
  });

  it("names an unreadable file with a stable code", async () => {
    await expect(verifyAuditLog(join(dir, "missing.jsonl"))).rejects.toMatchObject({
      code: "AUDIT_LOG_INVALID",
    });
  });
});
