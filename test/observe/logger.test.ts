import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observe/logger.js";
import { Scrubber } from "../../src/observe/scrubber.js";

const PLANTED = "pl4nted-S3CRET-9f8e7d";
const TRICKY = 'quote"and\\back';

function capture(opts: { pretty?: boolean; level?: string } = {}) {
  const scrubber = new Scrubber();
  scrubber.add(PLANTED);
  scrubber.add(TRICKY);
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk.toString("utf8")));
  const logger = createLogger({ scrubber, destination: stream, pretty: false, ...opts });
  const text = () => chunks.join("");
  const lines = () =>
    text()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, text, lines };
}

describe("createLogger", () => {
  it("writes JSON lines with level, ISO time and fields", () => {
    const { logger, lines } = capture();
    logger.info({ schedule: "sales" }, "run started");
    const [line] = lines();
    expect(line).toMatchObject({ level: 30, msg: "run started", schedule: "sales" });
    expect(line?.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("masks planted values in messages, interpolations and nested fields", () => {
    const { logger, text, lines } = capture();
    logger.info(`token is ${PLANTED}`);
    logger.info("value %s here", PLANTED);
    logger.warn(
      { request: { headers: { authorization: `Bearer ${PLANTED}` } }, list: [TRICKY] },
      "nested",
    );
    expect(text()).not.toContain(PLANTED);
    expect(text()).not.toContain(JSON.stringify(TRICKY).slice(1, -1));
    const [a, b, c] = lines();
    expect(a?.msg).toBe("token is ***");
    expect(b?.msg).toBe("value *** here");
    expect(c).toMatchObject({
      request: { headers: { authorization: "Bearer ***" } },
      list: ["***"],
    });
  });

  it("masks planted values in an error's message, stack and cause", () => {
    const { logger, text, lines } = capture();
    const cause = new Error(`connect failed with password ${PLANTED}`);
    const error = new Error(`login as admin:${PLANTED}`, { cause });
    logger.error({ err: error }, "build failed");
    logger.error({ error }, "under another key");
    logger.error(error);
    expect(text()).not.toContain(PLANTED);
    const [first, second, third] = lines() as [
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    const err = first.err as { message: string; stack: string; type: string };
    expect(err.type).toBe("Error");
    expect(err.message).toContain("login as admin:***");
    expect(err.message).toContain("connect failed with password ***");
    expect(err.stack).toContain("caused by: Error: connect failed with password ***");
    expect((second.error as { message: string }).message).toContain("login as admin:***");
    expect((third.err as { message: string }).message).toContain("login as admin:***");
  });

  it("honours the level", () => {
    const { logger, lines } = capture({ level: "warn" });
    logger.info("quiet");
    logger.warn("loud");
    expect(lines().map((l) => l.msg)).toEqual(["loud"]);
  });

  it("pretty-prints on request, still masked", () => {
    const { logger, text } = capture({ pretty: true });
    logger.info({ detail: TRICKY }, `hello ${PLANTED}`);
    const out = text();
    expect(out).toContain("hello ***");
    expect(out).not.toContain(PLANTED);
    expect(out).not.toContain(TRICKY);
    expect(() => JSON.parse(out)).toThrow();
  });

  it("writes a file descriptor synchronously, so process.exit right after logging loses nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "duckcron-logger-"));
    const out = join(dir, "out.log");
    const fd = openSync(out, "w");
    try {
      const scrubber = new Scrubber();
      scrubber.add(PLANTED);
      const logger = createLogger({ scrubber, destination: fd });
      for (let i = 0; i < 500; i++) logger.info({ i }, `line ${PLANTED}`);
      // No await, no flush: the bytes are in the file when info() returns.
      const written = readFileSync(out, "utf8").trim().split("\n");
      expect(written).toHaveLength(500);
      expect(written.at(-1)).toContain('"i":499');
      expect(written.join("\n")).not.toContain(PLANTED);
    } finally {
      closeSync(fd);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
