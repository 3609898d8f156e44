import { randomBytes } from "node:crypto";
import { link, open, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * The key of a catalog's fingerprint HMAC lives beside the catalog, readable by
 * duckcron's user only, never inside the catalog: whoever can read the catalog must
 * not be able to test guesses of a weak secret against its fingerprint.
 */
export function fingerprintKeyPath(catalogPath: string): string {
  return join(dirname(catalogPath), `.${basename(catalogPath)}.fingerprint-key`);
}

export function newFingerprintKey(): string {
  return randomBytes(32).toString("hex");
}

/** The stored key, or undefined before the first build. */
export async function readFingerprintKey(catalogPath: string): Promise<string | undefined> {
  try {
    const key = (await readFile(fingerprintKeyPath(catalogPath), "utf8")).trim();
    return key.length > 0 ? key : undefined;
  } catch (error) {
    // ENOTDIR: a file stands where the catalog's directory should be, so there is no
    // key either; creating the directory reports that (CATALOG_DIR_UNWRITABLE).
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw error;
  }
}

/**
 * Stores `key` unless a key is already there, and returns the key in effect. The file
 * is written whole under a unique name and linked into place, so a reader never sees
 * a half-written key and the first writer wins for good.
 */
export async function storeFingerprintKey(catalogPath: string, key: string): Promise<string> {
  const existing = await readFingerprintKey(catalogPath);
  if (existing !== undefined) return existing;
  const target = fingerprintKeyPath(catalogPath);
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${key}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, target);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return (await readFingerprintKey(catalogPath)) ?? key;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
