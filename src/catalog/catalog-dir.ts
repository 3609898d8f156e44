import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { CatalogError } from "../errors.js";

/**
 * Creates the directory the catalog goes in. One that cannot be made (no permission,
 * a file where a directory should be, a read-only mount) is a problem of
 * `duckdb.database`, not of the build: it fails the same way every time.
 */
export async function ensureCatalogDir(catalogPath: string): Promise<void> {
  const dir = dirname(catalogPath);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CatalogError(
      "CATALOG_DIR_UNWRITABLE",
      `cannot create the catalog directory ${dir} (${REASONS[code ?? ""] ?? code ?? String(error)}); point duckdb.database somewhere duckcron may write`,
      { cause: error, path: ["duckdb", "database"] },
    );
  }
}

const REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a file is in the way of a directory on the path",
  EEXIST: "a file of that name exists",
  EROFS: "read-only file system",
  ENOSPC: "no space left",
};
