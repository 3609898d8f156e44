import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { lstat, mkdir, readdir, readFile, readlink, rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apply } from "../../src/catalog/apply.js";
import { readCatalogMetadata } from "../../src/catalog/metadata.js";
import { bundleForChild, REPO } from "./child-bundle.js";
import { planFresh, query, scrubberOf, tempDir } from "./helpers.js";
import { killLoopJob, killLoopToken } from "./kill-loop-job.js";

/**
 * Kill -9 of builds at random points, a part of them aimed at the moment a secret
 * statement starts (DuckDB writing `<name>.duckdb_secret.tmp-<uuid>` and renaming
 * it). Whatever the point, what is on disk afterwards must pair: the link leads to
 * the complete secrets of one build, the catalog's recorded folder holds exactly
 * the secrets the catalog lists, and the next successful build leaves exactly the
 * configured secrets and no credential anywhere else.
 */

// KILL_LOOP_KILLS shortens (or lengthens) the loop when working on it.
const KILLS = Number(process.env.KILL_LOOP_KILLS ?? 20);

let root: { path: string; remove: () => Promise<void> };
let child: string;
beforeAll(async () => {
  root = await tempDir("kill-loop");
  child = await bundleForChild("test/catalog/kill-loop-child.ts", "kill-loop-child");
});
afterAll(async () => {
  await root.remove();
  await rm(child, { force: true });
});

/**
 * A build loop in a child process. It loads (DuckDB's native module is slow to load on
 * a busy machine) and then waits for go(), so the next victim can load while the
 * test checks the last one's remains.
 */
function start(dir: string, first: number) {
  const proc = spawn(process.execPath, [child, dir, String(first)], {
    cwd: REPO,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const queue: string[] = [];
  const state = { last: "", exited: false };
  let wake: (() => void) | undefined;
  const lines = createInterface({ input: proc.stdout });
  lines.on("line", (line) => {
    state.last = line;
    queue.push(line);
    wake?.();
  });
  lines.on("close", () => {
    state.exited = true;
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (queue.length === 0) {
      if (state.exited) throw new Error(`build loop exited: ${stderr}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    return queue.shift() as string;
  };
  const go = () => proc.stdin.write("go\n");
  return { proc, next, go, state };
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, "exit");
  proc.kill("SIGKILL");
  await exited;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Secret name to bearer token, as a reader with this secret_directory sees them. */
async function secretsIn(folder: string): Promise<Record<string, string>> {
  const rows = await query(
    ":memory:",
    `SELECT name, regexp_extract(secret_string, 'bearer_token=([^;]*)', 1) AS token
     FROM duckdb_secrets(redact := false) ORDER BY name`,
    { secret_directory: folder, allow_unredacted_secrets: "true" },
  );
  return Object.fromEntries(rows.map((r) => [String(r.name), String(r.token)]));
}

/** The persistent secrets of build `i`, by name. */
function expectedSecrets(i: number): Record<string, string> {
  return Object.fromEntries(
    killLoopJob(i)
      .definition.duckdb.secrets.filter((s) => s.persistent)
      .map((s) => [s.name, killLoopToken(i)]),
  );
}

async function iterationOf(catalog: string): Promise<number> {
  const [row] = await query(catalog, "SELECT i FROM iteration");
  return Number(row?.i);
}

/** Holds right after any kill: no reader can see a mixed, partial or half-written set. */
async function checkAfterKill(out: string): Promise<void> {
  const catalog = join(out, "acme.duckdb");
  const link = join(out, "acme.duckdb.secrets");
  const published = await lstat(link).catch(() => undefined);
  if (published !== undefined) {
    expect(published.isSymbolicLink()).toBe(true);
    const files = await readdir(link);
    expect(files.every((f) => f.endsWith(".duckdb_secret"))).toBe(true);
    // One complete build's secrets: its token names the build, which fixes the set.
    const seen = await secretsIn(link);
    const token = Object.values(seen)[0] ?? "";
    const build = Number(/^FAKE_KILL_(\d+)_TOKEN$/.exec(token)?.[1]);
    expect(seen).toEqual(expectedSecrets(build));
  }
  const meta = await readCatalogMetadata(catalog);
  if (meta !== undefined) {
    // The folder this catalog names still exists, so the next build can pair them.
    expect(meta.secretDirectory).toBeDefined();
    const folder = join(out, meta.secretDirectory ?? "");
    expect(await secretsIn(folder)).toEqual(expectedSecrets(await iterationOf(catalog)));
  }
}

/** Holds after every successful build: exact pairing, nothing else left on disk. */
async function checkAfterBuild(out: string, i: number): Promise<void> {
  const catalog = join(out, "acme.duckdb");
  const link = join(out, "acme.duckdb.secrets");
  const folder = await readlink(link);
  expect((await readCatalogMetadata(catalog))?.secretDirectory).toBe(folder);
  expect(await iterationOf(catalog)).toBe(i);
  expect(await secretsIn(link)).toEqual(expectedSecrets(i));
  expect((await readdir(join(out, folder))).sort()).toEqual(
    Object.keys(expectedSecrets(i)).map((n) => `${n}.duckdb_secret`),
  );
  expect((await readdir(out)).sort()).toEqual(
    [".acme.duckdb.fingerprint-key", folder, "acme.duckdb", "acme.duckdb.secrets"].sort(),
  );
  // No credential anywhere but the published folder: no orphaned tmp-<uuid> file.
  const holders: string[] = [];
  for (const entry of await readdir(out, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes("FAKE_KILL_")) holders.push(relative(out, path));
  }
  expect(holders.sort()).toEqual(
    Object.keys(expectedSecrets(i)).map((n) => join(folder, `${n}.duckdb_secret`)),
  );
}

describe("kill -9 during builds with persistent secrets", () => {
  it(`keeps catalog and secrets paired through ${KILLS} kills at random points`, async () => {
    const dir = join(root.path, "job");
    const out = join(dir, "out");
    await mkdir(dir);
    let victim = start(dir, 1);
    for (let k = 0; k < KILLS; k += 1) {
      const { proc, next, go } = victim;
      try {
        expect(await next()).toBe("ready");
        go();
        if (k % 2 === 0) {
          // Aimed: the n-th persistent secret statement across the first builds.
          const n = 1 + Math.floor(Math.random() * 4);
          let seen = 0;
          while (seen < n) if (/^\d+ secret [abc]$/.test(await next())) seen += 1;
          await sleep(Math.random() * 4);
        } else {
          // Anywhere in the first builds, publishing and cleanup included.
          await sleep(Math.random() * 1000);
        }
      } finally {
        await kill(proc);
      }
      if (k + 1 < KILLS) victim = start(dir, (k + 1) * 1000 + 1);
      await checkAfterKill(out);

      const recovery = k * 1000 + 999;
      const job = killLoopJob(recovery);
      const p = await planFresh(job.definition, dir, job.secrets);
      const result = await apply(p, { scrubber: scrubberOf([]), tenant: "acme" });
      expect(result.skipped).toBe(false);
      await checkAfterBuild(out, recovery);
    }
    // Some 20 s on an idle machine; room for a busy CI runner.
  }, 180_000);
});
