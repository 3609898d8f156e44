import { randomBytes } from "node:crypto";
import { access, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  LIST,
  VARCHAR,
} from "@duckdb/node-api";
import { CatalogError, DuckcronError } from "../errors.js";
import type { EventBus } from "../observe/events.js";
import { fsyncPath } from "../write-atomically.js";
import { acquireBuildInstance, BUILD_DATABASE, type BuildInstance } from "./build-instance.js";
import { ensureCatalogDir } from "./catalog-dir.js";
import { fingerprintKeyPath, storeFingerprintKey } from "./fingerprint-key.js";
import { inlineParams } from "./inline.js";
import { acquireLockFile, isAlive, withPathMutex } from "./lock.js";
import { readCatalogMetadata } from "./metadata.js";
import { type CatalogMetadata, secretDirectoryStatement } from "./metadata-sql.js";
import type { Plan } from "./plan.js";
import {
  createSecretFolder,
  publishSecretFolder,
  readPublished,
  removeSecretFoldersExcept,
  secretFolderHolds,
  secretFolderPath,
  syncSecretFolder,
} from "./secret-folders.js";
import { secretParametersSupported } from "./self-test.js";
import { quoteLiteral } from "./sql.js";
import type { PlanParam, Statement } from "./statement.js";

export interface ApplyOptions {
  /** Masks every known secret value; DuckDB's error texts pass through it. */
  scrubber: { scrub(text: string): string };
  signal?: AbortSignal;
  events?: EventBus;
  tenant: string;
  schedule?: string;
  onProgress?: (s: Statement, index: number, total: number) => void;
  /** Rebuild even when the fingerprint matches, and replace a file duckcron did not build. */
  force?: boolean;
  /**
   * Inline secret values as quoted literals instead of binding them. Chosen
   * automatically when secretParametersSupported() is false; tests force it.
   */
  inlineParameters?: boolean;
  /**
   * Wraps the publish sequence (fingerprint key, catalog rename, secrets link) so it
   * runs only while the caller still holds the fire (cluster mode: fenced by the
   * attempt number). If it throws without calling `sequence`, nothing is published.
   */
  publish?: (sequence: () => Promise<void>) => Promise<void>;
  /**
   * Builds of this catalog are already kept apart by the caller (cluster mode: a claim
   * in PostgreSQL), so the `<catalog>.lock` file, unreliable on network file systems,
   * is not taken.
   */
  externalLock?: boolean;
}

export interface ApplyResult {
  catalogPath: string;
  skipped: boolean;
  fingerprint: string;
  viewCount: number;
  durationMs: number;
  changes: Plan["changes"];
}

/**
 * Executes a plan: builds a fresh catalog in a temporary file next to the target and
 * renames it over the old one, so readers see either the old catalog or the new
 * one. On any failure the old file is left exactly as it was.
 */
export async function apply(plan: Plan, options: ApplyOptions): Promise<ApplyResult> {
  const started = performance.now();
  const { catalogPath } = plan;
  return withPathMutex(catalogPath, async () => {
    throwIfAborted(options.signal, "catalog");
    await ensureCatalogDir(catalogPath);
    const release = options.externalLock
      ? async () => {}
      : await acquireLockFile(`${catalogPath}.lock`, catalogPath);
    try {
      // --force also replaces a file that cannot be read as a catalog at all.
      const existing = await readCatalogMetadata(catalogPath).catch((error: unknown) => {
        if (options.force) return undefined;
        throw error;
      });
      await removeAbandonedBuilds(catalogPath, existing);
      if (!options.force && (await upToDate(plan, existing))) {
        return finish(plan, options, started, true);
      }
      await build(plan, options);
      return finish(plan, options, started, false);
    } finally {
      await release();
    }
  });
}

/**
 * A build killed mid-way (SIGKILL, OOM, power loss) leaves its temp file and its
 * unpublished secrets folder behind. We hold the catalog's lock, so a temp file of a
 * process that is gone is garbage, and so is every secrets folder but the one the
 * catalog pairs with. A build killed between the catalog's rename and the secrets
 * link's swap left a new catalog beside old secrets: finish that swap first.
 */
async function removeAbandonedBuilds(
  catalogPath: string,
  existing: CatalogMetadata | undefined,
): Promise<void> {
  const prefixes = [
    `.${basename(catalogPath)}.tmp-`,
    `${basename(fingerprintKeyPath(catalogPath))}.tmp-`,
  ];
  for (const name of await readdir(dirname(catalogPath))) {
    const prefix = prefixes.find((p) => name.startsWith(p));
    if (prefix === undefined) continue;
    const pid = Number.parseInt(name.slice(prefix.length), 10);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      await rm(join(dirname(catalogPath), name), { force: true });
    }
  }
  const paired = existing?.secretDirectory;
  let published = await readPublished(catalogPath);
  if (
    paired !== undefined &&
    !(published?.kind === "link" && published.folder === paired) &&
    (await exists(secretFolderPath(catalogPath, paired)))
  ) {
    await publishSecretFolder(catalogPath, paired);
    await fsyncPath(dirname(catalogPath));
    published = { kind: "link", folder: paired };
  }
  await removeSecretFoldersExcept(
    catalogPath,
    published?.kind === "link" ? published.folder : undefined,
  );
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** True when the catalog on disk was built from this very plan and nothing needs refreshing. */
async function upToDate(plan: Plan, existing: CatalogMetadata | undefined): Promise<boolean> {
  if (existing === undefined) {
    if (await exists(plan.catalogPath)) {
      throw new CatalogError(
        "CATALOG_BUILD_FAILED",
        `${plan.catalogPath} exists but was not built by duckcron; move it away or rebuild with --force`,
      );
    }
    return false;
  }
  // Materialized tables are snapshots of data that may have changed: always refresh.
  if (existing.fingerprint !== plan.fingerprint || plan.record.hasTables) return false;
  // Reconcile against what is on disk, not only the record: a secret file removed or
  // added by hand, or a folder that does not pair with this catalog, means work.
  const persistent = plan.record.secrets.filter((s) => s.persistent).map((s) => s.name);
  const published = await readPublished(plan.catalogPath);
  if (published === undefined) return persistent.length === 0;
  return (
    published.kind === "link" &&
    published.folder === existing.secretDirectory &&
    (await secretFolderHolds(plan.catalogPath, published.folder, persistent))
  );
}

function finish(plan: Plan, options: ApplyOptions, started: number, skipped: boolean): ApplyResult {
  const result: ApplyResult = {
    catalogPath: plan.catalogPath,
    skipped,
    fingerprint: plan.fingerprint,
    viewCount: Object.keys(plan.record.views).length,
    durationMs: performance.now() - started,
    changes: skipped ? { added: [], changed: [], dropped: [] } : plan.changes,
  };
  options.events?.emit("catalog:built", {
    schedule: options.schedule,
    tenant: options.tenant,
    path: plan.catalogPath,
    fingerprint: plan.fingerprint,
    skipped,
    viewCount: result.viewCount,
    views: result.changes,
    durationMs: result.durationMs,
  });
  return result;
}

async function build(plan: Plan, options: ApplyOptions): Promise<void> {
  const { catalogPath } = plan;
  const temp = join(
    dirname(catalogPath),
    `.${basename(catalogPath)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  const inline = options.inlineParameters ?? !(await secretParametersSupported());
  // A folder of its own whenever persistent secrets are configured or were published
  // before (then an empty one replaces them).
  const secretFolder =
    plan.instanceOptions.allow_persistent_secrets === "true" ||
    (await readPublished(catalogPath)) !== undefined
      ? await createSecretFolder(catalogPath)
      : undefined;
  const instanceOptions =
    secretFolder === undefined
      ? { ...plan.instanceOptions }
      : {
          ...plan.instanceOptions,
          secret_directory: secretFolderPath(catalogPath, secretFolder),
          allow_persistent_secrets: "true",
        };
  let publishing = false;

  let lease: BuildInstance | undefined;
  let connection: DuckDBConnection | undefined;
  let attached = false;
  let current = "settings";
  // An interrupt that lands before DuckDB has started the statement is lost, so keep
  // interrupting until the build stops.
  let interrupting: NodeJS.Timeout | undefined;
  const onAbort = () => {
    connection?.interrupt();
    interrupting ??= setInterval(() => connection?.interrupt(), 25);
    interrupting.unref();
  };
  options.signal?.addEventListener("abort", onAbort);
  const stopInterrupting = () => {
    options.signal?.removeEventListener("abort", onAbort);
    clearInterval(interrupting);
  };
  // DETACH closes the temp file on DuckDB's threads; the instance left behind is empty.
  const close = async () => {
    let clean = true;
    if (attached && connection) {
      try {
        await connection.run(`USE memory; DETACH ${BUILD_DATABASE}`);
        attached = false;
      } catch {
        clean = false;
      }
    }
    connection?.closeSync();
    connection = undefined;
    await lease?.release(clean && !attached);
    lease = undefined;
  };
  try {
    lease = await acquireBuildInstance(instanceOptions, plan.statements);
    connection = await lease.instance.connect();
    await connection.run(`ATTACH ${quoteLiteral(temp)} AS ${BUILD_DATABASE}`);
    attached = true;
    await connection.run(`USE ${BUILD_DATABASE}`);
    const total = plan.statements.length;
    for (const [index, statement] of plan.statements.entries()) {
      current = statement.target;
      throwIfAborted(options.signal, current);
      options.onProgress?.(statement, index, total);
      await execute(connection, statement, inline);
      if (statement.secret) {
        options.events?.emit("duckdb:secret", {
          schedule: options.schedule,
          tenant: options.tenant,
          catalog: catalogPath,
          ...statement.secret,
        });
      }
    }
    if (secretFolder !== undefined)
      await execute(connection, secretDirectoryStatement(secretFolder), inline);
    current = "checkpoint";
    throwIfAborted(options.signal, current);
    await connection.run(`CHECKPOINT ${BUILD_DATABASE}`);
    stopInterrupting();
    await close();
    if (await exists(`${temp}.wal`))
      throw new Error(`write-ahead log ${temp}.wal left after CHECKPOINT`);
    await fsyncPath(temp);
    if (secretFolder !== undefined) await syncSecretFolder(catalogPath, secretFolder);
    // The fence (cluster mode) wraps the whole publish sequence: refused, nothing of
    // this build becomes visible and its secrets folder goes with the temp file.
    const fenced = options.publish ?? ((sequence) => sequence());
    await fenced(async () => {
      publishing = true;
      await publish(plan, temp, secretFolder);
    });
  } catch (error) {
    stopInterrupting();
    try {
      await close();
    } catch {
      // Closing after a failure is best effort; the temp file goes either way.
    }
    await rm(temp, { force: true });
    await rm(`${temp}.wal`, { force: true });
    // Once publishing started the new catalog may already name this folder; the next
    // build (under the lock) pairs or removes it.
    if (secretFolder !== undefined && !publishing)
      await rm(secretFolderPath(catalogPath, secretFolder), { recursive: true, force: true });
    throw buildError(error, current, plan, options);
  } finally {
    stopInterrupting();
  }
  // The build has succeeded; folders of earlier builds are garbage.
  await removeSecretFoldersExcept(catalogPath, secretFolder);
}

/**
 * The publish sequence: every step that turns a finished build into what readers
 * see, in this order and nothing else, so it can be wrapped as one unit. The key is
 * stored before the catalog whose fingerprint it keys appears. Should another build
 * have stored a key since this plan was made, the fingerprint recorded here does not
 * match it, and the next run rebuilds once. The secrets link follows the catalog
 * (a crash between the two renames is finished by the next build, which re-points the
 * link at the folder the catalog names); old folders go only after this returns.
 */
async function publish(
  plan: Plan,
  builtCatalog: string,
  secretFolder: string | undefined,
): Promise<void> {
  await storeFingerprintKey(plan.catalogPath, plan.fingerprintKey);
  await rename(builtCatalog, plan.catalogPath);
  if (secretFolder !== undefined) await publishSecretFolder(plan.catalogPath, secretFolder);
  await fsyncPath(dirname(plan.catalogPath));
}

async function execute(
  connection: DuckDBConnection,
  statement: Statement,
  inline: boolean,
): Promise<void> {
  if (statement.params.length === 0 || inline) {
    await connection.run(inline ? inlineParams(statement, false) : statement.sql);
    return;
  }
  const prepared = await connection.prepare(statement.sql);
  try {
    for (const [i, param] of statement.params.entries()) bind(prepared, i + 1, param);
    await prepared.run();
  } finally {
    prepared.destroySync();
  }
}

function bind(prepared: DuckDBPreparedStatement, index: number, param: PlanParam): void {
  const { value } = param;
  if (typeof value === "string") prepared.bindVarchar(index, value);
  else if (typeof value === "boolean") prepared.bindBoolean(index, value);
  else if (typeof value === "number") {
    if (Number.isSafeInteger(value)) prepared.bindBigInt(index, BigInt(value));
    else prepared.bindDouble(index, value);
  } else prepared.bindList(index, [...value], LIST(VARCHAR));
}

function throwIfAborted(signal: AbortSignal | undefined, target: string): void {
  if (signal?.aborted) throw new AbortedBuild(target);
}

class AbortedBuild extends Error {
  constructor(readonly target: string) {
    super("build aborted");
  }
}

/** Masks the plan's own sensitive values, then everything the scrubber knows. */
function scrub(text: string, plan: Plan, options: ApplyOptions): string {
  const values = plan.statements
    .flatMap((s) => s.params)
    .filter((p) => p.sensitive)
    .flatMap((p) =>
      typeof p.value === "string" ? [p.value] : Array.isArray(p.value) ? [...p.value] : [],
    )
    .filter((v) => v.length > 0)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of values) out = out.replaceAll(v, "***");
  return options.scrubber.scrub(out);
}

function buildError(
  error: unknown,
  target: string,
  plan: Plan,
  options: ApplyOptions,
): DuckcronError {
  if (error instanceof DuckcronError) return error;
  if (error instanceof AbortedBuild || options.signal?.aborted) {
    return new CatalogError(
      "CATALOG_BUILD_FAILED",
      `${target}: build of ${plan.catalogPath} aborted; the previous catalog is untouched`,
    );
  }
  const message = scrub(error instanceof Error ? error.message : String(error), plan, options);
  // DuckDB's original error is not kept as `cause`: its text may hold secret values.
  return new CatalogError("CATALOG_BUILD_FAILED", `${target}: ${message}`, {
    retryable: /^(IO|HTTP) Error/.test(message),
  });
}
