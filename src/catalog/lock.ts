import { open, readFile, unlink } from "node:fs/promises";
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
 * Takes `<catalog>.lock` (O_EXCL, holding our pid). A lock left by a dead process is
 * taken over; a live holder makes this a retryable CATALOG_LOCKED.
 */
export async function acquireLockFile(
  lockPath: string,
  catalogPath: string,
): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const handle = await open(lockPath, "wx", 0o644);
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return async () => {
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const text = await readFile(lockPath, "utf8").catch(() => "");
    const pid = Number.parseInt(text.trim(), 10);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
      throw new CatalogError(
        "CATALOG_LOCKED",
        `${catalogPath} is being built by process ${pid} (lock file ${lockPath}); try again later`,
        { retryable: true },
      );
    }
    // Stale (dead pid) or unreadable half-written lock: remove it and try once more.
    await unlink(lockPath).catch(() => undefined);
  }
  throw new CatalogError(
    "CATALOG_LOCKED",
    `${catalogPath}: could not take the lock file ${lockPath}`,
    {
      retryable: true,
    },
  );
}
