import { randomBytes } from "node:crypto";
import { access, chmod, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  LIST,
  VARCHAR,
} from "@duckdb/node-api";
import { CatalogError, DuckcronError } from "../errors.js";
import type { EventBus } from "../observe/events.js";
import { acquireBuildInstance, BUILD_DATABASE, type BuildInstance } from "./build-instance.js";
import { inlineParams } from "./inline.js";
import { acquireLockFile, isAlive, withPathMutex } from "./lock.js";
import { readCatalogMetadata } from "./metadata.js";
import type { Plan } from "./plan.js";
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
    await mkdir(dirname(catalogPath), { recursive: true });
    const release = await acquireLockFile(`${catalogPath}.lock`, catalogPath);
    try {
      await removeAbandonedBuilds(catalogPath);
      if (!options.force && (await upToDate(plan))) {
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
 * A build killed mid-way (SIGKILL, OOM, power loss) leaves its temp file behind. We
 * hold the catalog's lock, so a temp file of a process that is gone is garbage.
 */
async function removeAbandonedBuilds(catalogPath: string): Promise<void> {
  const prefix = `.${basename(catalogPath)}.tmp-`;
  for (const name of await readdir(dirname(catalogPath))) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number.parseInt(name.slice(prefix.length), 10);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      await rm(join(dirname(catalogPath), name), { force: true });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** True when the catalog on disk was built from this very plan and nothing needs refreshing. */
async function upToDate(plan: Plan): Promise<boolean> {
  const existing = await readCatalogMetadata(plan.catalogPath);
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
  // Someone may have removed secret files by hand; then the build has work to do.
  for (const s of plan.record.secrets) {
    if (s.persistent && !(await exists(join(plan.secretDirectory, `${s.name}.duckdb_secret`))))
      return false;
  }
  return true;
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

/** DuckDB creates the secret directory 0755 and secret files 0600; the directory must be private too. */
async function ensurePrivateDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) await chmod(path, 0o700);
}

async function build(plan: Plan, options: ApplyOptions): Promise<void> {
  const { catalogPath } = plan;
  const temp = join(
    dirname(catalogPath),
    `.${basename(catalogPath)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  const inline = options.inlineParameters ?? !(await secretParametersSupported());
  if (plan.instanceOptions.allow_persistent_secrets === "true")
    await ensurePrivateDirectory(plan.secretDirectory);

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
    lease = await acquireBuildInstance(plan);
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
    current = "checkpoint";
    throwIfAborted(options.signal, current);
    await connection.run(`CHECKPOINT ${BUILD_DATABASE}`);
    stopInterrupting();
    await close();
    if (await exists(`${temp}.wal`))
      throw new Error(`write-ahead log ${temp}.wal left after CHECKPOINT`);
    await fsyncPath(temp);
    await rename(temp, catalogPath);
    await fsyncPath(dirname(catalogPath));
  } catch (error) {
    stopInterrupting();
    try {
      await close();
    } catch {
      // Closing after a failure is best effort; the temp file goes either way.
    }
    await rm(temp, { force: true });
    await rm(`${temp}.wal`, { force: true });
    throw buildError(error, current, plan, options);
  } finally {
    stopInterrupting();
  }
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

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
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
