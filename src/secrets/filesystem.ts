import { constants, type Stats } from "node:fs";
import { access, lstat, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { FilesystemBackendConfig } from "../config/runner-schema.js";
import { TENANT_ID } from "../config/runner-schema.js";
import { SECRET_NAME } from "../config/template.js";
import { SecretError } from "../errors.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import { parseDotenv } from "./dotenv.js";
import { objectFields } from "./structured.js";

/**
 * Secrets as files: `{secrets_dir}/{tenant}/{name}` with `.json`, `.env`, `.txt` or
 * no extension, the last being how Docker and Kubernetes mount secrets. JSON objects
 * and `.env` files hold several keys.
 *
 * Files must not be readable or writable by group or others, and tenant folders not
 * writable by others: a secret anyone on the host can read is refused rather than
 * used. Tenant and name can never reach outside the directory, symlinks included.
 */
export const EXTENSIONS = [".json", ".env", ".txt", ""] as const;
type Extension = (typeof EXTENSIONS)[number];

/** Secrets are small; a huge file is a mistake (a mounted volume, a log). */
const MAX_BYTES = 1024 * 1024;
/** POSIX permissions mean nothing on Windows; the checks would refuse every file. */
const CHECK_MODES = process.platform !== "win32";

export class FilesystemBackend implements SecretBackend {
  readonly type = "filesystem";
  readonly dir: string;

  constructor(config: Pick<FilesystemBackendConfig, "secrets_dir">, baseDir: string) {
    this.dir = path.resolve(baseDir, config.secrets_dir);
  }

  async fetch(
    tenant: string,
    names: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, FetchedSecret>> {
    checkSegment("tenant", tenant, TENANT_ID);
    for (const name of names) checkSegment("secret name", name, SECRET_NAME);
    const root = await this.#root();
    const tenantDir = await this.#tenantDir(root, tenant);
    const found = new Map<string, FetchedSecret>();
    if (tenantDir === undefined) return found;
    for (const name of names) {
      signal?.throwIfAborted();
      const secret = await this.#read(root, tenantDir, tenant, name);
      if (secret) found.set(name, secret);
    }
    return found;
  }

  locationOf(tenant: string, name: string): string {
    const base = path.join(this.dir, tenant, name);
    return `${base}.json, ${base}.env, ${base}.txt or ${base}`;
  }

  async check(): Promise<void> {
    const root = await this.#root();
    try {
      await access(root, constants.R_OK | constants.X_OK);
    } catch (error) {
      throw new SecretError(
        "SECRET_BACKEND_UNAVAILABLE",
        `secrets_dir ${this.dir} is not readable: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
        { cause: error },
      );
    }
  }

  async close(): Promise<void> {}

  /** The real path of secrets_dir; everything read must be inside it. */
  async #root(): Promise<string> {
    let info: Stats;
    let real: string;
    try {
      real = await realpath(this.dir);
      info = await stat(real);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new SecretError(
        "SECRET_BACKEND_UNAVAILABLE",
        code === "ENOENT"
          ? `secrets_dir ${this.dir} does not exist (secrets_dir is relative to runner.yaml)`
          : `secrets_dir ${this.dir} cannot be read: ${code ?? "error"}`,
        { cause: error, retryable: code !== "ENOENT" },
      );
    }
    if (!info.isDirectory()) {
      throw new SecretError(
        "SECRET_BACKEND_UNAVAILABLE",
        `secrets_dir ${this.dir} is not a directory`,
      );
    }
    if (CHECK_MODES && (info.mode & 0o002) !== 0) {
      // Anyone could create a folder for a tenant that has none and supply its credentials.
      throw new SecretError(
        "SECRET_INVALID",
        `secrets_dir ${this.dir} is writable by others, so anyone on this host could plant secrets; fix with: chmod o-w ${this.dir}`,
      );
    }
    return real;
  }

  /** The tenant's folder, or undefined when the tenant has none (its secrets are simply not found). */
  async #tenantDir(root: string, tenant: string): Promise<string | undefined> {
    const dir = path.join(this.dir, tenant);
    const real = await realIfExists(dir);
    if (real === undefined) return undefined;
    assertInside(root, real, dir);
    const info = await stat(real).catch((error: unknown) => {
      throw wrapIo(error, dir);
    });
    if (!info.isDirectory()) {
      throw new SecretError(
        "SECRET_INVALID",
        `${dir} should be a directory holding tenant "${tenant}"'s secrets`,
      );
    }
    if (CHECK_MODES && (info.mode & 0o002) !== 0) {
      throw new SecretError(
        "SECRET_INVALID",
        `${dir} is writable by others, so anyone on this host could plant tenant "${tenant}"'s secrets; fix with: chmod o-w ${dir}`,
      );
    }
    return real;
  }

  async #read(
    root: string,
    tenantDir: string,
    tenant: string,
    name: string,
  ): Promise<FetchedSecret | undefined> {
    const matches: { file: string; shown: string; ext: Extension }[] = [];
    for (const ext of EXTENSIONS) {
      const file = path.join(tenantDir, `${name}${ext}`);
      if (await existsNoFollow(file))
        matches.push({ file, shown: path.join(this.dir, tenant, `${name}${ext}`), ext });
    }
    const [match, second] = matches;
    if (match === undefined) return undefined;
    if (second !== undefined) {
      throw new SecretError(
        "SECRET_INVALID",
        `secret "${name}" of tenant "${tenant}" is ambiguous: both ${match.shown} and ${second.shown} exist; remove one`,
      );
    }
    const real = await realIfExists(match.file, match.shown);
    if (real === undefined) return undefined;
    assertInside(root, real, match.shown);
    const info = await stat(real).catch((error: unknown) => {
      throw wrapIo(error, match.shown);
    });
    if (!info.isFile()) {
      throw new SecretError("SECRET_INVALID", `${match.shown} is not a regular file`);
    }
    if (CHECK_MODES && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(3, "0");
      throw new SecretError(
        "SECRET_INVALID",
        `${match.shown} is readable or writable by group or others (mode ${mode}); fix with: chmod 600 ${match.shown}` +
          " (for Kubernetes secret volumes set defaultMode: 0400)",
      );
    }
    if (info.size > MAX_BYTES) {
      throw new SecretError(
        "SECRET_INVALID",
        `${match.shown} is larger than 1 MiB; is it really a secret?`,
      );
    }
    const content = await readFile(real, "utf8").catch((error: unknown) => {
      throw wrapIo(error, match.shown);
    });
    return parse(content, match.ext, match.shown);
  }
}

function parse(content: string, ext: Extension, shown: string): FetchedSecret {
  switch (ext) {
    case ".json": {
      let parsed: unknown;
      try {
        parsed = JSON.parse(content);
      } catch {
        // The parser's own message quotes the text around the error: never show it.
        throw new SecretError("SECRET_INVALID", `${shown} is not valid JSON`);
      }
      const fields = objectFields(parsed);
      if (!fields) {
        throw new SecretError(
          "SECRET_INVALID",
          `${shown} must hold a JSON object; put a single value in a .txt file`,
        );
      }
      return { text: content, fields };
    }
    case ".env": {
      const { fields, invalidLines } = parseDotenv(content);
      if (invalidLines.length > 0) {
        throw new SecretError(
          "SECRET_INVALID",
          `${shown}: line ${invalidLines.join(", ")} is not KEY=VALUE (or has an unterminated quote)`,
        );
      }
      return { text: content, fields };
    }
    case ".txt":
    case "":
      // Mounted secrets and `echo value > file` end with one newline that is not part of the value.
      return { text: content.replace(/\r?\n$/, "") };
    default: {
      const never: never = ext;
      return never;
    }
  }
}

function checkSegment(what: string, value: string, pattern: RegExp): void {
  if (!pattern.test(value)) {
    throw new SecretError(
      "SECRET_INVALID",
      `${what} ${JSON.stringify(value)} cannot be used in a file path (letters, digits, "_" and "-" only)`,
    );
  }
}

function assertInside(root: string, real: string, shown: string): void {
  const relative = path.relative(root, real);
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new SecretError(
      "SECRET_INVALID",
      `${shown} resolves outside secrets_dir (a symlink pointing elsewhere?); secrets must live inside it`,
    );
  }
}

async function realIfExists(file: string, shown = file): Promise<string | undefined> {
  try {
    return await realpath(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      // A dangling symlink is "exists but broken", not "absent".
      if (await existsNoFollow(file)) {
        throw new SecretError("SECRET_INVALID", `${shown} is a broken symlink`);
      }
      return undefined;
    }
    throw wrapIo(error, shown);
  }
}

async function existsNoFollow(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw wrapIo(error, file);
  }
}

function wrapIo(error: unknown, file: string): SecretError {
  const code = (error as NodeJS.ErrnoException).code ?? "error";
  return new SecretError(
    code === "EACCES" || code === "EPERM" ? "SECRET_ACCESS_DENIED" : "SECRET_BACKEND_UNAVAILABLE",
    `cannot read ${file}: ${code}`,
    { cause: error, retryable: code !== "EACCES" && code !== "EPERM" },
  );
}
