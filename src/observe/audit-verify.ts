import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { DuckcronError } from "../errors.js";
import { GENESIS } from "./audit.js";

export type AuditVerifyResult =
  | {
      ok: true;
      records: number /** SHA-256 of the last line; note it elsewhere to pin the newest record. */;
      head: string;
    }
  | { ok: false; records: number; firstBad: { line: number; reason: string } };

interface Seen {
  hash: string;
  seq: number;
}

/**
 * Walks the chain of an audit log written by `openAuditLog`. Reports the first
 * line (1-based) where it breaks and why; `records` counts the good lines before it.
 * Limits: the newest record can be edited or dropped without a trace (no later
 * record vouches for it), and an attacker who rewrites every later line can
 * recompute the unkeyed chain.
 */
export async function verifyAuditLog(path: string): Promise<AuditVerifyResult> {
  const seen: Seen[] = [];
  let lines = 0;
  let bad: Bad | undefined;
  let rest = Buffer.alloc(0);
  const stream = createReadStream(path);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let data = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
      for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a)) {
        lines += 1;
        bad = checkLine(data.subarray(0, nl), true, lines, seen);
        if (bad !== undefined) break;
        data = data.subarray(nl + 1);
      }
      if (bad !== undefined) break;
      rest = Buffer.from(data);
    }
    if (bad === undefined && rest.length > 0) {
      lines += 1;
      bad = checkLine(rest, false, lines, seen);
    }
  } catch (error) {
    const reason = (error as Error).message;
    throw new DuckcronError("AUDIT_LOG_INVALID", `cannot read the audit log ${path}: ${reason}`, {
      cause: error,
    });
  } finally {
    stream.destroy();
  }

  if (bad !== undefined) return { ok: false, records: bad.line - 1, firstBad: bad };
  return { ok: true, records: lines, head: seen.at(-1)?.hash ?? GENESIS };
}

type Bad = { line: number; reason: string };

/** Checks line `n` against the two lines before it (`seen`, oldest first), then remembers it. */
function checkLine(bytes: Buffer, complete: boolean, n: number, seen: Seen[]): Bad | undefined {
  const bad = (line: number, reason: string): Bad => ({ line, reason });
  if (!complete) return bad(n, "truncated: the last line has no newline");
  if (bytes.length === 0) return bad(n, "empty line");
  const record = parse(bytes);
  if (typeof record === "string") return bad(n, record);

  const hash = createHash("sha256").update(bytes).digest("hex");
  const before = seen.at(-1);
  if (before === undefined) {
    if (record.prev !== GENESIS || record.seq !== 1) {
      return bad(
        n,
        `the chain does not start here (seq ${record.seq}, prev is not genesis): earlier records were deleted`,
      );
    }
  } else if (record.prev === before.hash) {
    if (record.seq !== before.seq + 1) {
      return bad(n, `seq ${record.seq} does not follow seq ${before.seq}`);
    }
  } else if (seen.length >= 2 && record.prev === seen.at(-2)?.hash) {
    return bad(n - 1, "record was inserted: the next record chains to the one before it");
  } else if (record.seq === before.seq + 1) {
    return bad(n - 1, "record was altered: its hash does not match `prev` of the next record");
  } else if (record.seq > before.seq + 1) {
    return bad(
      n,
      `chain broken: seq jumps from ${before.seq} to ${record.seq} (records deleted or reordered)`,
    );
  } else {
    return bad(
      n,
      `chain broken: seq ${record.seq} after seq ${before.seq} (records inserted or reordered)`,
    );
  }
  seen.push({ hash, seq: record.seq });
  if (seen.length > 2) seen.shift();
  return undefined;
}

function parse(bytes: Buffer): { seq: number; prev: string } | string {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    return "not valid JSON (edited or truncated)";
  }
  if (typeof value !== "object" || value === null) return "not a JSON object";
  const { seq, prev, ts, event } = value as Record<string, unknown>;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq)) return "missing or non-integer seq";
  if (typeof prev !== "string" || !/^[0-9a-f]{64}$/.test(prev)) return "missing or malformed prev";
  if (typeof ts !== "string" || typeof event !== "string") return "missing ts or event";
  return { seq, prev };
}
