import { createHash, randomBytes } from "node:crypto";
import { link, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CatalogError } from "../errors.js";

/**
 * Two layers keep builds of one catalog apart: a promise chain per path inside this
 * process (DuckDB's own file locks are per process, so it would not notice two
 * instances of ours), and `<catalog>.lock` across processes.
 */
const chains = new Map<string, Promise<void>>();

/** Runs `fn` after every earlier call for the same path in this process has settled. */
export async function withPathMutex<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const before = chains.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const chained = before.then(() => mine);
  chains.set(path, chained);
  await before;
  try {
    return await fn();
  } finally {
    release();
    if (chains.get(path) === chained) chains.delete(path);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `<catalog>.lock`. The lock is written whole under a unique name and linked
 * into place, so it is never half-written, and holds our pid and a token unique to
 * this acquisition. A lock left by a dead process is taken over (takeOver); a live
 * holder makes this a retryable CATALOG_LOCKED.
 */
export async function acquireLockFile(
  lockPath: string,
  catalogPath: string,
): Promise<() => Promise<void>> {
  const token = `${process.pid} ${randomBytes(8).toString("hex")}\n`;
  const mine = `${lockPath}.new-${process.pid}-${randomBytes(4).toString("hex")}`;
  await writeFile(mine, token, { flag: "wx", mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if ((await linkUnlessExists(mine, lockPath)) || (await takeOverIfStale(lockPath, mine))) {
        await sweepLeftovers(lockPath);
        return async () => {
          // Never remove a lock that is no longer ours.
          if ((await readFile(lockPath, "utf8").catch(() => "")) === token)
            await unlink(lockPath).catch(() => undefined);
        };
      }
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  const held = await readFile(lockPath, "utf8").catch(() => "");
  const pid = pidOf(held);
  throw new CatalogError(
    "CATALOG_LOCKED",
    pid !== undefined && isAlive(pid)
      ? `${catalogPath} is being built by process ${pid} (lock file ${lockPath}); try again later`
      : `${catalogPath}: another process is taking over the stale lock file ${lockPath}; try again later`,
    { retryable: true },
  );
}

/** link() fails when the name exists: an atomic create-if-absent. */
async function linkUnlessExists(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

function pidOf(lockText: string): number | undefined {
  const pid = Number.parseInt(lockText.trim().split(/\s+/)[0] ?? "", 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Where the right to replace a lock holding `held` is claimed (exported for tests). */
export function claimPath(lockPath: string, held: string): string {
  return `${lockPath}.claim-${createHash("sha256").update(held).digest("hex").slice(0, 16)}`;
}

/**
 * Replaces a dead holder's lock as a compare-and-swap. Removing the stale file and
 * creating a new one would race: two processes both see the dead pid, one removes
 * it and takes the lock, the other then removes that live lock. Instead the right to
 * replace the lock with content `stale` is a claim file named after `stale`, created
 * with link() so exactly one process gets it, and only that process renames its own
 * lock over the stale one. A claimant killed half-way leaves a dead claim, which is
 * claimed the same way, one level deeper.
 */
async function takeOverIfStale(lockPath: string, mine: string): Promise<boolean> {
  const stale = await readFile(lockPath, "utf8").catch(() => undefined);
  if (stale === undefined) return false; // released meanwhile: the caller tries again
  let contested = stale;
  for (let depth = 0; depth < 8; depth += 1) {
    const holder = pidOf(contested);
    if (holder !== undefined && holder !== process.pid && isAlive(holder)) return false;
    const claim = claimPath(lockPath, contested);
    if (await linkUnlessExists(mine, claim)) {
      // Nobody else can replace `stale` while we hold its claim, so check-then-rename is safe.
      if ((await readFile(lockPath, "utf8").catch(() => undefined)) !== stale) {
        await unlink(claim).catch(() => undefined);
        return false;
      }
      await rename(mine, lockPath);
      return true;
    }
    const claimant = await readFile(claim, "utf8").catch(() => undefined);
    if (claimant === undefined) return false;
    contested = claimant;
  }
  return false;
}

/**
 * Under the lock, claims are spent (they name locks that no longer exist) and unique
 * lock files of dead processes are garbage.
 */
async function sweepLeftovers(lockPath: string): Promise<void> {
  const dir = dirname(lockPath);
  const base = basename(lockPath);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(`${base}.claim-`)) {
      await unlink(join(dir, name)).catch(() => undefined);
    } else if (name.startsWith(`${base}.new-`)) {
      const pid = pidOf(name.slice(`${base}.new-`.length).replace("-", " "));
      if (pid !== undefined && pid !== process.pid && !isAlive(pid))
        await unlink(join(dir, name)).catch(() => undefined);
    }
  }
}
