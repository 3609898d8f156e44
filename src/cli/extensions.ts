import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { quoteLiteral } from "../catalog/sql.js";
import { DuckcronError } from "../errors.js";
import { parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

/**
 * `duckcron extensions install`: pre-stages DuckDB extensions into a directory, for
 * images and hosts that cannot (or must not) download at build time. DuckDB looks
 * for them at `<dir>/v<duckdb version>/<platform>/<name>.duckdb_extension`, so an
 * extension directory only fits the exact DuckDB that @duckdb/node-api links.
 */

const USAGE = COMMAND_USAGE.extensions;
export const EXTENSION_NAME = /^[a-z][a-z0-9_]*$/;
export const DEFAULT_EXTENSION_DIR = "/opt/duckdb/extensions";
/** Repositories DuckDB knows by name; anything else is a URL or a local directory. */
const NAMED_REPOSITORIES = new Set(["core", "core_nightly", "community"]);

export interface DuckdbBuild {
  /** As DuckDB reports it, e.g. `v1.5.6`: also the first folder of the extension layout. */
  version: string;
  /** e.g. `linux_amd64`, `linux_arm64`, `osx_arm64`. */
  platform: string;
  /** Extensions compiled into this DuckDB; never installed from a file. */
  builtIn: ReadonlySet<string>;
}

export function defaultExtensionDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DUCKDB_EXTENSION_DIRECTORY || DEFAULT_EXTENSION_DIR;
}

/** Where DuckDB looks for an installed extension. */
export function extensionFile(dir: string, build: DuckdbBuild, name: string): string {
  return join(dir, build.version, build.platform, `${name}.duckdb_extension`);
}

/** Version, platform and built-in extensions of the linked DuckDB, from an in-memory instance. */
export async function describeDuckdb(connection: DuckDBConnection): Promise<DuckdbBuild> {
  const [row] = (
    await connection.runAndReadAll("SELECT version() AS version, platform FROM pragma_platform()")
  ).getRowObjectsJS();
  const builtIn = (
    await connection.runAndReadAll(
      "SELECT extension_name FROM duckdb_extensions() WHERE install_mode = 'STATICALLY_LINKED'",
    )
  ).getRowObjectsJS();
  return {
    version: String(row?.version),
    platform: String(row?.platform),
    builtIn: new Set(builtIn.map((r) => String(r.extension_name))),
  };
}

/** Opens an in-memory DuckDB that never downloads or loads anything by itself. */
export async function withDuckdb<T>(
  extensionDirectory: string | undefined,
  fn: (connection: DuckDBConnection) => Promise<T>,
): Promise<T> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const options: Record<string, string> = {
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
  };
  if (extensionDirectory !== undefined) options.extension_directory = extensionDirectory;
  const instance = await DuckDBInstance.create(":memory:", options);
  try {
    const connection = await instance.connect();
    try {
      return await fn(connection);
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

export interface InstallOptions {
  dir: string;
  /** `core`, `community`, a URL, or a local directory laid out like extensions.duckdb.org. */
  repository?: string | undefined;
}

export interface InstallOutcome {
  name: string;
  /** Absolute path of the installed file, or `(BUILT-IN)`. */
  path: string;
  builtIn: boolean;
}

/** Installs each extension in turn; the first failure stops and is thrown. */
export async function installExtensions(
  names: readonly string[],
  options: InstallOptions,
  onInstalled: (outcome: InstallOutcome, build: DuckdbBuild) => void = () => {},
): Promise<InstallOutcome[]> {
  for (const name of names) checkName(name);
  const dir = resolve(options.dir);
  const repository = repositoryClause(options.repository);
  mkdirSync(dir, { recursive: true });
  return withDuckdb(dir, async (connection) => {
    const build = await describeDuckdb(connection);
    const outcomes: InstallOutcome[] = [];
    for (const name of names) {
      let outcome: InstallOutcome;
      if (build.builtIn.has(name)) {
        outcome = { name, path: "(BUILT-IN)", builtIn: true };
      } else {
        if (repository?.localDir !== undefined) checkLocalLayout(repository.localDir, build, name);
        try {
          await connection.run(`INSTALL ${name}${repository?.sql ?? ""}`);
        } catch (error) {
          throw installFailed(name, dir, build, options.repository, error);
        }
        outcome = { name, path: extensionFile(dir, build, name), builtIn: false };
      }
      outcomes.push(outcome);
      onInstalled(outcome, build);
    }
    return outcomes;
  });
}

function checkName(name: string): void {
  if (!EXTENSION_NAME.test(name)) {
    throw new DuckcronError(
      "USAGE",
      `${JSON.stringify(name)} is not an extension name (lower-case letters, digits and '_', e.g. httpfs, postgres_scanner)\nusage: ${USAGE}`,
    );
  }
}

function repositoryClause(
  repository: string | undefined,
): { sql: string; localDir?: string } | undefined {
  if (repository === undefined) return undefined;
  if (NAMED_REPOSITORIES.has(repository)) return { sql: ` FROM ${repository}` };
  if (/^https?:\/\//.test(repository)) return { sql: ` FROM ${quoteLiteral(repository)}` };
  if (repository.includes("://")) {
    throw new DuckcronError(
      "USAGE",
      `--repository ${repository}: use core, community, an http(s) URL or a local directory`,
    );
  }
  const localDir = resolve(repository);
  if (!existsSync(localDir) || !statSync(localDir).isDirectory()) {
    throw new DuckcronError("USAGE", `--repository ${localDir}: no such directory`);
  }
  return { sql: ` FROM ${quoteLiteral(localDir)}`, localDir };
}

/** DuckDB's own message for a missing file names the path but not the layout rule. */
function checkLocalLayout(repo: string, build: DuckdbBuild, name: string): void {
  const expected = extensionFile(repo, build, name);
  if (existsSync(expected)) return;
  const versions = readdirSync(repo).filter((entry) => /^v\d/.test(entry));
  const platforms = existsSync(join(repo, build.version))
    ? readdirSync(join(repo, build.version))
    : [];
  const found =
    versions.length === 0
      ? "it holds no v<version>/ folders"
      : !versions.includes(build.version)
        ? `it holds ${versions.join(", ")} but not ${build.version}, the DuckDB linked by @duckdb/node-api`
        : !platforms.includes(build.platform)
          ? `${build.version}/ holds ${platforms.join(", ") || "nothing"} but not ${build.platform}`
          : `${build.version}/${build.platform}/ has no ${name}.duckdb_extension`;
  throw new DuckcronError(
    "EXTENSION_INSTALL_FAILED",
    `cannot install ${name} from local repository ${repo}: expected ${expected}, but ${found}. ` +
      "A local repository uses the layout of extensions.duckdb.org, uncompressed: " +
      "<repository>/v<duckdb version>/<platform>/<name>.duckdb_extension (gunzip the downloaded .gz files)",
  );
}

function installFailed(
  name: string,
  dir: string,
  build: DuckdbBuild,
  repository: string | undefined,
  error: unknown,
): DuckcronError {
  const said = ((error as Error).message ?? String(error))
    .split("\n", 1)[0]
    ?.replace(/[.!\s]+$/, "");
  const source = repository ?? "extensions.duckdb.org";
  const remedy =
    repository === undefined
      ? ` Without network access, fetch http://extensions.duckdb.org/${build.version}/${build.platform}/${name}.duckdb_extension.gz elsewhere, ` +
        `gunzip it into <repository>/${build.version}/${build.platform}/ and pass --repository <repository>.`
      : ` Check that ${name}.duckdb_extension was built for DuckDB ${build.version} on ${build.platform}.`;
  return new DuckcronError(
    "EXTENSION_INSTALL_FAILED",
    `cannot install ${name} into ${dir} from ${source}: ${said}.${remedy}`,
    { cause: error },
  );
}

export default async function extensions(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommandArgs(
      argv,
      { dir: { type: "string" }, repository: { type: "string" } } as const,
      USAGE,
    );
    const [action, ...names] = positionals;
    if (action !== "install" || names.length === 0) {
      throw new DuckcronError(
        "USAGE",
        `${action === "install" ? "name at least one extension" : "the only action is install"}\nusage: ${USAGE}`,
      );
    }
    const dir = resolve(values.dir ?? defaultExtensionDir());
    await installExtensions(names, { dir, repository: values.repository }, (outcome, build) => {
      process.stdout.write(
        outcome.builtIn
          ? `${outcome.name}: built into DuckDB ${build.version}, nothing to install\n`
          : `installed ${outcome.name} (DuckDB ${build.version}, ${build.platform}) -> ${outcome.path}\n`,
      );
    });
    return EXIT.ok;
  } catch (error) {
    writeError(error);
    return exitCodeFor(error);
  }
}
