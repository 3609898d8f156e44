import { createHash, createHmac } from "node:crypto";
import { constants, type FileHandle, mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import { DuckcronError } from "../errors.js";
import type { DuckcronEvents, EventBus } from "./events.js";

/**
 * The audit trail: one JSON line per auditable event, each chained to the one
 * before by `prev` = SHA-256 of the previous line's bytes, so `verifyAuditLog`
 * finds edited, deleted, inserted, reordered and truncated records.
 *
 * The chain is unkeyed: it proves the file is internally consistent, not who wrote
 * it. Whoever can rewrite the whole file can recompute the chain, and the newest
 * record is vouched for by no later one; ship lines off the host (or record the
 * `head` hash `verifyAuditLog` returns) where that matters.
 */

export const GENESIS = "0".repeat(64);

export interface AuditLogOptions {
  /** File to append to; `-` writes to stdout (the chain then starts at genesis). */
  path: string;
  /** Key for `fingerprint()`; without it, no fingerprints are recorded. */
  hmacKey?: string | undefined;
  events: EventBus;
  /** Applied to every line before it is hashed and written, as a last defence. */
  scrubber: { scrub(text: string): string; add(value: string): void };
  now?: () => Date;
  /** Told about a mode fixed on open and about failed writes; the daemon passes its logger. */
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Cluster mode: this replica's id, carried by every run.* record. */
  replica?: string | undefined;
}

export interface AuditLog {
  /** HMAC-SHA256 (hex) of a secret value keyed by `hmac_key`, so rotation is visible without the value. */
  fingerprint(value: string): string | undefined;
  /** Resolves when every record emitted so far is written; rejects if a write failed. */
  flush(): Promise<void>;
  /** Stops listening, writes what is pending, syncs and closes the file. */
  close(): Promise<void>;
}

type Fields = Record<string, unknown>;
type Recorders = { [K in keyof DuckcronEvents]?: (p: DuckcronEvents[K]) => [string, Fields] };

/** Which bus events become which audit records. `secret:request` is left to metrics: `secret:resolved` covers access per reference. */
const RECORDERS: Recorders = {
  "secret:resolved": (p) => [
    "secret.resolved",
    {
      schedule: p.schedule,
      tenant: p.tenant,
      reference: p.reference,
      backend: p.backend,
      cacheHit: p.cacheHit,
      outcome: p.outcome,
      fingerprint: p.fingerprint,
    },
  ],
  "duckdb:secret": (p) => [
    `duckdb_secret.${p.action}`,
    {
      schedule: p.schedule,
      tenant: p.tenant,
      catalog: p.catalog,
      name: p.name,
      type: p.type,
      persistent: p.persistent,
      scope: p.scope,
    },
  ],
  "catalog:built": (p) => [
    "catalog.built",
    {
      schedule: p.schedule,
      tenant: p.tenant,
      path: p.path,
      views: p.views,
      viewCount: p.viewCount,
      fingerprint: p.fingerprint,
      skipped: p.skipped,
      durationMs: p.durationMs,
    },
  ],
  "run:started": (p) => ["run.started", { ...p }],
  "run:finished": (p) => ["run.finished", { ...p }],
  "run:skipped": (p) => ["run.skipped", { ...p }],
  "run:retry": (p) => ["run.retry", { ...p }],
  "config:loaded": (p) => [`config.${p.outcome}`, { path: p.path, error: p.error }],
};

interface Sink {
  write(data: string): Promise<void>;
  close(): Promise<void>;
}

export async function openAuditLog(opts: AuditLogOptions): Promise<AuditLog> {
  const now = opts.now ?? (() => new Date());
  if (opts.hmacKey !== undefined) opts.scrubber.add(opts.hmacKey);
  const {
    sink,
    seq: lastSeq,
    prev: lastHash,
  } = opts.path === "-" ? { sink: stdoutSink(), seq: 0, prev: GENESIS } : await openFile(opts);

  let seq = lastSeq;
  let prev = lastHash;
  let pending: string[] = [];
  let queue: Promise<void> = Promise.resolve();
  let failure: unknown;

  // The line (and so the chain) is fixed when the event fires, in event order;
  // only the I/O is deferred, batched through one promise queue.
  const record = (event: string, fields: Fields): void => {
    seq += 1;
    const line = opts.scrubber.scrub(
      JSON.stringify({ seq, ts: now().toISOString(), event, ...fields, prev }),
    );
    prev = sha256(line);
    pending.push(`${line}\n`);
    if (pending.length === 1) {
      queue = queue.then(async () => {
        const batch = pending.join("");
        pending = [];
        await sink.write(batch).catch((error: unknown) => {
          failure ??= error;
          opts.logger?.error({ err: error, path: opts.path }, "audit log write failed");
        });
      });
    }
  };

  const unsubscribes = Object.entries(RECORDERS).map(([name, toRecord]) =>
    opts.events.on(name as keyof DuckcronEvents, (payload: unknown) => {
      const [event, fields] = (toRecord as (p: unknown) => [string, Fields])(payload);
      // Merging the replicas' files shows each fire once: (scheduledAt, replica, attempt).
      record(
        event,
        opts.replica !== undefined && event.startsWith("run.")
          ? { ...fields, replica: opts.replica }
          : fields,
      );
    }),
  );

  const flush = async (): Promise<void> => {
    await queue;
    if (failure !== undefined) {
      throw new DuckcronError("AUDIT_LOG_INVALID", `writing the audit log ${opts.path} failed`, {
        cause: failure,
      });
    }
  };

  let closed: Promise<void> | undefined;
  return {
    fingerprint: (value) =>
      opts.hmacKey === undefined
        ? undefined
        : createHmac("sha256", opts.hmacKey).update(value).digest("hex"),
    flush,
    close() {
      closed ??= (async () => {
        for (const off of unsubscribes) off();
        try {
          await flush();
        } finally {
          await sink.close();
        }
      })();
      return closed;
    },
  };
}

function sha256(line: string): string {
  return createHash("sha256").update(line, "utf8").digest("hex");
}

function stdoutSink(): Sink {
  return {
    write: (data) =>
      new Promise((resolve, reject) => {
        process.stdout.write(data, (error) => (error ? reject(error) : resolve()));
      }),
    close: async () => {},
  };
}

async function openFile(opts: AuditLogOptions): Promise<{ sink: Sink; seq: number; prev: string }> {
  await mkdir(dirname(opts.path), { recursive: true, mode: 0o700 });
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: a symlink planted at the audit path must not redirect the trail.
    handle = await open(
      opts.path,
      constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (error) {
    throw new DuckcronError(
      "AUDIT_LOG_INVALID",
      `cannot open the audit log ${opts.path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    const stat = await handle.stat();
    if ((stat.mode & 0o077) !== 0) {
      await handle.chmod(0o600).catch((error: unknown) => {
        throw new DuckcronError(
          "AUDIT_LOG_INVALID",
          `the audit log ${opts.path} is readable by others (mode ${(stat.mode & 0o777).toString(8)}) and could not be fixed; run: chmod 600 ${opts.path}`,
          { cause: error },
        );
      });
      opts.logger?.warn(
        { path: opts.path, was: (stat.mode & 0o777).toString(8) },
        "audit log was readable by others; mode set to 600",
      );
    }
    const tail = await readLastLine(handle, stat.size);
    const chain = tail === undefined ? { seq: 0, prev: GENESIS } : continueFrom(opts.path, tail);
    return {
      seq: chain.seq,
      prev: chain.prev,
      sink: {
        write: async (data) => {
          await handle.write(data);
        },
        close: async () => {
          await handle.sync().catch(() => {});
          await handle.close();
        },
      },
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function continueFrom(path: string, tail: { line: string; complete: boolean }) {
  const refuse = (why: string) =>
    new DuckcronError(
      "AUDIT_LOG_INVALID",
      `cannot continue the audit log ${path}: its last line ${why}; ` +
        `run \`duckcron audit verify ${path}\` and move the file aside to start a new chain`,
    );
  if (!tail.complete) throw refuse("is truncated (no newline)");
  let seq: unknown;
  try {
    seq = (JSON.parse(tail.line) as { seq?: unknown }).seq;
  } catch {
    throw refuse("is not valid JSON");
  }
  if (typeof seq !== "number" || !Number.isSafeInteger(seq)) throw refuse("has no numeric seq");
  return { seq, prev: sha256(tail.line) };
}

/** Reads backwards in chunks so reopening a large log costs one line, not the file. */
async function readLastLine(
  handle: FileHandle,
  size: number,
): Promise<{ line: string; complete: boolean } | undefined> {
  if (size === 0) return undefined;
  const chunkSize = 64 * 1024;
  const chunks: Buffer[] = [];
  let end = size;
  let complete = false;
  let first = true;
  while (end > 0) {
    const start = Math.max(0, end - chunkSize);
    const buffer = Buffer.alloc(end - start);
    await handle.read(buffer, 0, buffer.length, start);
    let body = buffer;
    if (first) {
      first = false;
      complete = body[body.length - 1] === 0x0a;
      if (complete) body = body.subarray(0, body.length - 1);
    }
    const newline = body.lastIndexOf(0x0a);
    if (newline !== -1) {
      chunks.unshift(body.subarray(newline + 1));
      break;
    }
    chunks.unshift(body);
    end = start;
  }
  return { line: Buffer.concat(chunks).toString("utf8"), complete };
}
