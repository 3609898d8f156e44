import { randomBytes } from "node:crypto";
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  symlink,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncPath } from "../write-atomically.js";

/**
 * Persistent secrets are files DuckDB writes while a build runs, so they cannot share
 * the catalog's atomic rename. Each build writes them into a fresh folder
 * `.<catalog>.secrets-<hex>` beside the catalog, and `<catalog>.secrets` (what readers
 * set as secret_directory) is a relative symlink that publishing swaps by rename right
 * after the catalog's own rename. A killed or failed build leaves only an unpublished
 * folder, which the next build removes; the published folder is never written to, so
 * it holds exactly the secrets of the build that published it.
 */

/** Where readers point secret_directory: a symlink to the current folder. */
export function publishedSecretPath(catalogPath: string): string {
  return `${catalogPath}.secrets`;
}

function folderPrefix(catalogPath: string): string {
  return `.${basename(catalogPath)}.secrets-`;
}

export type Published =
  | { kind: "link"; folder: string }
  /** A real directory: what versions before per-build folders wrote. */
  | { kind: "directory" }
  | undefined;

export async function readPublished(catalogPath: string): Promise<Published> {
  const path = publishedSecretPath(catalogPath);
  const info = await lstat(path).catch(() => undefined);
  if (info === undefined) return undefined;
  if (info.isSymbolicLink()) return { kind: "link", folder: await readlink(path) };
  return { kind: "directory" };
}

/** A new private folder for one build's secrets; returns its name (relative to the catalog's directory). */
export async function createSecretFolder(catalogPath: string): Promise<string> {
  const name = `${folderPrefix(catalogPath)}${randomBytes(8).toString("hex")}`;
  const path = join(dirname(catalogPath), name);
  // DuckDB would create it 0755; the files it holds are unencrypted credentials.
  await mkdir(path, { mode: 0o700 });
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o700);
  return name;
}

export function secretFolderPath(catalogPath: string, folder: string): string {
  return join(dirname(catalogPath), folder);
}

/** Flushes the secret files and the folder itself, so a published link never points at lost data. */
export async function syncSecretFolder(catalogPath: string, folder: string): Promise<void> {
  const path = secretFolderPath(catalogPath, folder);
  for (const name of await readdir(path)) await fsyncPath(join(path, name));
  await fsyncPath(path);
}

/**
 * Points `<catalog>.secrets` at `folder`: a symlink made under a temporary name and
 * renamed over the old one, so a reader resolves either the old folder or the new.
 * A real directory left by an older version cannot be renamed over; it is moved
 * aside first (as a folder the cleanup removes), once.
 */
export async function publishSecretFolder(catalogPath: string, folder: string): Promise<void> {
  const dir = dirname(catalogPath);
  const prefix = folderPrefix(catalogPath);
  const temp = join(dir, `${prefix}${randomBytes(8).toString("hex")}.link`);
  await symlink(folder, temp);
  try {
    if ((await readPublished(catalogPath))?.kind === "directory") {
      await rename(
        publishedSecretPath(catalogPath),
        join(dir, `${prefix}legacy-${randomBytes(8).toString("hex")}`),
      );
    }
    await rename(temp, publishedSecretPath(catalogPath));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Removes every per-build folder (and temporary link) except `keep`. Only called
 * under the catalog's build lock, where no other build of this catalog can be writing.
 */
export async function removeSecretFoldersExcept(
  catalogPath: string,
  keep: string | undefined,
): Promise<void> {
  const dir = dirname(catalogPath);
  const prefix = folderPrefix(catalogPath);
  for (const name of await readdir(dir)) {
    if (name.startsWith(prefix) && name !== keep) {
      await rm(join(dir, name), { recursive: true, force: true });
    }
  }
}

/** True when `folder` holds exactly the secret files for `names`, and nothing else. */
export async function secretFolderHolds(
  catalogPath: string,
  folder: string,
  names: readonly string[],
): Promise<boolean> {
  const present = await readdir(secretFolderPath(catalogPath, folder)).catch(() => undefined);
  if (present === undefined) return false;
  const expected = names.map((n) => `${n}.duckdb_secret`).sort();
  return JSON.stringify(present.sort()) === JSON.stringify(expected);
}
