import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Writes `path` so a reader sees the old content or the new, never half a file: a
 * hidden temp file in the same directory (so `*.prom`-style globs skip it), synced,
 * renamed over `path`, then the directory synced so the rename survives a crash
 * (best effort: some file systems refuse fsync on a directory).
 */
export async function writeAtomically(path: string, text: string, mode = 0o644): Promise<void> {
  const temp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`,
  );
  try {
    const handle = await open(temp, "wx", mode);
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const dir = await open(dirname(path), "r").catch(() => undefined);
  await dir?.sync().catch(() => {});
  await dir?.close();
}

/** Flushes a file, or a directory's entries (renames, links), to disk. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
