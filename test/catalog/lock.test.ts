import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireLockFile, claimPath } from "../../src/catalog/lock.js";
import { CatalogError } from "../../src/errors.js";
import { bundleForChild, REPO } from "./child-bundle.js";
import { tempDir } from "./helpers.js";

let root: { path: string; remove: () => Promise<void> };
let lockModule: string;
let n = 0;

beforeAll(async () => {
  root = await tempDir("lock");
  lockModule = await bundleForChild("src/catalog/lock.ts", "lock");
});
afterAll(async () => {
  await root.remove();
  await rm(lockModule, { force: true });
});

/** A pid that was a real process a moment ago and is gone now. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ["-e", ""]);
  if (pid === undefined) throw new Error("could not spawn");
  return pid;
}

async function freshDir(): Promise<string> {
  n += 1;
  const dir = join(root.path, `d${n}`);
  await import("node:fs/promises").then((fs) => fs.mkdir(dir));
  return dir;
}

/**
 * Processes that all try to take the lock once `go` appears, print the outcome, and
 * hold what they got until their stdin closes, so no loser can get the lock later
 * from a winner that already let go.
 */
function contender(lockPath: string, catalogPath: string, go: string) {
  const script = `
    import { existsSync } from "node:fs";
    const { acquireLockFile } = await import(${JSON.stringify(pathToFileURL(lockModule).href)});
    console.log("ready");
    while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1));
    let release;
    try {
      release = await acquireLockFile(${JSON.stringify(lockPath)}, ${JSON.stringify(catalogPath)});
      console.log("won");
    } catch (error) {
      console.log(error.code ?? String(error));
    }
    for await (const _ of process.stdin);
    await release?.();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: REPO });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("contender exited early");
    return value as string;
  };
  return { child, next };
}

describe("stale lock takeover", () => {
  it.each([1, 2, 3])(
    "six processes taking over one stale lock at once: exactly one wins (round %i)",
    async () => {
      const dir = await freshDir();
      const catalog = join(dir, "c.duckdb");
      const lockPath = `${catalog}.lock`;
      await writeFile(lockPath, `${deadPid()}\n`);
      const go = join(dir, "go");
      const contenders = Array.from({ length: 6 }, () => contender(lockPath, catalog, go));
      try {
        for (const c of contenders) expect(await c.next()).toBe("ready");
        await writeFile(go, "");
        const outcomes = await Promise.all(contenders.map((c) => c.next()));
        expect(outcomes.filter((o) => o === "won")).toHaveLength(1);
        expect(outcomes.filter((o) => o === "CATALOG_LOCKED")).toHaveLength(5);
        // The winner's lock names a live process: the winner.
        const winner = contenders[outcomes.indexOf("won")];
        expect(Number.parseInt(await readFile(lockPath, "utf8"), 10)).toBe(winner?.child.pid);
      } finally {
        for (const c of contenders) c.child.stdin.end();
        await Promise.all(contenders.map((c) => once(c.child, "exit")));
      }
      // Released, and neither claims nor unique lock files are left behind.
      expect(await readdir(dir)).toEqual(["go"]);
    },
  );

  it("a claimant killed half-way leaves a dead claim, which is claimed in turn", async () => {
    const dir = await freshDir();
    const lockPath = join(dir, "c.duckdb.lock");
    const stale = `${deadPid()}\n`;
    await writeFile(lockPath, stale);
    await writeFile(claimPath(lockPath, stale), `${deadPid()} 00c0ffee\n`);
    const release = await acquireLockFile(lockPath, join(dir, "c.duckdb"));
    expect(Number.parseInt(await readFile(lockPath, "utf8"), 10)).toBe(process.pid);
    expect(await readdir(dir)).toEqual(["c.duckdb.lock"]);
    await release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("a live claimant makes the takeover CATALOG_LOCKED and retryable, and leaves its claim alone", async () => {
    const dir = await freshDir();
    const lockPath = join(dir, "c.duckdb.lock");
    const stale = `${deadPid()}\n`;
    await writeFile(lockPath, stale);
    await writeFile(claimPath(lockPath, stale), `${process.ppid} 00c0ffee\n`);
    const error = await acquireLockFile(lockPath, join(dir, "c.duckdb")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CatalogError);
    expect(error).toMatchObject({ code: "CATALOG_LOCKED", retryable: true });
    expect((error as Error).message).toMatch(/taking over the stale lock file/);
    expect(await readFile(lockPath, "utf8")).toBe(stale);
    expect((await readdir(dir)).sort()).toEqual(
      ["c.duckdb.lock", claimPath("c.duckdb.lock", stale)].sort(),
    );
  });

  it("release leaves a lock that is no longer ours", async () => {
    const dir = await freshDir();
    const lockPath = join(dir, "c.duckdb.lock");
    const release = await acquireLockFile(lockPath, join(dir, "c.duckdb"));
    await writeFile(lockPath, "1 someone-else\n");
    await release();
    expect(await readFile(lockPath, "utf8")).toBe("1 someone-else\n");
  });
});
