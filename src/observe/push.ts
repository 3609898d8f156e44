import type { Registry } from "prom-client";
import { DuckcronError } from "../errors.js";
import { writeAtomically } from "../write-atomically.js";

/**
 * One-shot metrics export for runs started by cron, Kubernetes CronJobs or ETL
 * scripts, which end before anything could scrape them.
 */

export interface ExportOptions {
  /**
   * Which metric families to export. Default: only `duckcron_*`. Process metrics
   * of a short-lived CLI mean little, and in a textfile they collide with
   * node_exporter's own `process_*` series (a scrape error).
   */
  include?: (name: string) => boolean;
}

export interface PushOptions extends ExportOptions {
  /** Default 10 s. */
  timeoutMs?: number;
}

const DUCKCRON_ONLY = (name: string): boolean => name.startsWith("duckcron_");

async function exposition(registry: Registry, include = DUCKCRON_ONLY): Promise<string> {
  const parts: string[] = [];
  for (const metric of registry.getMetricsAsArray()) {
    if (include(metric.name)) parts.push(await registry.getSingleMetricAsString(metric.name));
  }
  return parts.length === 0 ? "" : `${parts.join("\n\n")}\n`;
}

/**
 * PUTs the registry to a Prometheus Pushgateway under
 * `/metrics/job/<job>{/<label>/<value>}`, replacing that group. Values with a `/`
 * (or empty) use the gateway's `@base64` form.
 */
export async function pushToGateway(
  registry: Registry,
  url: string,
  job: string,
  groupings: Record<string, string> = {},
  opts: PushOptions = {},
): Promise<void> {
  const path = [
    segment("job", job),
    ...Object.entries(groupings).map(([k, v]) => segment(k, v)),
  ].join("/");
  const { base, authorization } = splitCredentials(url);
  const target = `${base.replace(/\/+$/, "")}/metrics/${path}`;
  const body = await exposition(registry, opts.include);
  const headers: Record<string, string> = {
    "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
  };
  if (authorization !== undefined) headers.Authorization = authorization;
  let response: Response;
  try {
    response = await fetch(target, {
      method: "PUT",
      headers,
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw new DuckcronError(
      "METRICS_EXPORT_FAILED",
      `pushing metrics to ${base} failed: ${(error as Error).message}`,
      { cause: error, retryable: true },
    );
  }
  if (!response.ok) {
    const detail = (await response.text().catch(() => "")).slice(0, 500).trim();
    throw new DuckcronError(
      "METRICS_EXPORT_FAILED",
      `the Pushgateway at ${base} answered ${response.status}${detail ? `: ${detail}` : ""}`,
      { retryable: response.status >= 500 },
    );
  }
}

function segment(label: string, value: string): string {
  if (value === "" || value.includes("/")) {
    return `${label}@base64/${Buffer.from(value, "utf8").toString("base64url") || "="}`;
  }
  return `${label}/${encodeURIComponent(value)}`;
}

/**
 * fetch refuses URLs with credentials (and would echo them in its error), so
 * `https://user:pass@host` becomes basic auth, and messages name only the bare URL.
 */
function splitCredentials(url: string): { base: string; authorization?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DuckcronError("METRICS_EXPORT_FAILED", "the Pushgateway URL is not a valid URL");
  }
  if (parsed.username === "" && parsed.password === "") return { base: url };
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = "";
  parsed.password = "";
  return {
    base: parsed.toString(),
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
  };
}

/** Writes the registry for node_exporter's textfile collector; a scrape never sees half a file. */
export async function writeTextfile(
  registry: Registry,
  path: string,
  opts: ExportOptions = {},
): Promise<void> {
  const body = await exposition(registry, opts.include);
  try {
    // 0644: node_exporter usually runs as another user and must read it.
    await writeAtomically(path, body, 0o644);
  } catch (error) {
    throw new DuckcronError(
      "METRICS_EXPORT_FAILED",
      `writing the metrics textfile ${path} failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
