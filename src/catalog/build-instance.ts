import { DuckDBInstance } from "@duckdb/node-api";
import { BUILD_DATABASE } from "../config/job-schema.js";
import { quoteIdentifier } from "./sql.js";
import type { Statement } from "./statement.js";

/**
 * The in-memory DuckDB instance a build attaches its temp file to. Closing an
 * instance that owns a file is synchronous and checkpoints on the event loop; a file
 * that is merely attached is closed by DETACH, on DuckDB's threads. Between builds
 * with the same instance options an instance is reused: temporary secrets and
 * attachments are instance-wide, so one build holds it at a time and it is wiped
 * before the next. Instances that write persistent secrets are never shared, since
 * their secret directory belongs to one catalog.
 */
export interface BuildInstance {
  readonly instance: DuckDBInstance;
  /** Hands the instance back; `clean` says the build detached what it attached. */
  release(clean: boolean): Promise<void>;
}

export { BUILD_DATABASE };

/** Idle instances kept for reuse, over all option sets; more are closed. */
const IDLE_LIMIT = 8;
const idle = new Map<string, DuckDBInstance[]>();
let idleCount = 0;

export async function acquireBuildInstance(
  options: Readonly<Record<string, string>>,
  statements: readonly Statement[],
): Promise<BuildInstance> {
  const key = poolKey(options, statements);
  const reused = key === undefined ? undefined : take(key);
  const instance = reused ?? (await DuckDBInstance.create(":memory:", { ...options }));
  return {
    instance,
    release: async (clean) => {
      if (key !== undefined && clean && idleCount < IDLE_LIMIT && (await wipe(instance))) {
        idle.set(key, [...(idle.get(key) ?? []), instance]);
        idleCount += 1;
        return;
      }
      // Nothing is attached any more (or the build failed to detach): no checkpoint here.
      instance.closeSync();
    },
  };
}

function take(key: string): DuckDBInstance | undefined {
  const list = idle.get(key);
  const instance = list?.pop();
  if (instance === undefined) return undefined;
  idleCount -= 1;
  if (list?.length === 0) idle.delete(key);
  return instance;
}

/**
 * Builds may share an instance when its options are the same. The extensions a build
 * loads are part of the key, so a build never sees one it did not ask for.
 */
function poolKey(
  instanceOptions: Readonly<Record<string, string>>,
  statements: readonly Statement[],
): string | undefined {
  const { secret_directory: _, ...options } = instanceOptions;
  if (options.allow_persistent_secrets === "true") return undefined;
  const extensions = statements.filter((s) => s.stage === "extension").map((s) => s.sql);
  return JSON.stringify([Object.entries(options).sort(), extensions]);
}

/** Removes every attachment and temporary secret a build left; false when that failed. */
async function wipe(instance: DuckDBInstance): Promise<boolean> {
  const connection = await instance.connect();
  try {
    const databases = await connection.runAndReadAll(
      "SELECT database_name AS name FROM duckdb_databases() WHERE NOT internal AND database_name <> 'memory'",
    );
    for (const { name } of databases.getRowObjectsJS())
      await connection.run(`DETACH ${quoteIdentifier(String(name))}`);
    const secrets = await connection.runAndReadAll(
      "SELECT name FROM duckdb_secrets() WHERE NOT persistent",
    );
    for (const { name } of secrets.getRowObjectsJS())
      await connection.run(`DROP TEMPORARY SECRET ${quoteIdentifier(String(name))}`);
    return true;
  } catch {
    return false;
  } finally {
    connection.closeSync();
  }
}
