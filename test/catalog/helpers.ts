import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { readFingerprintKey } from "../../src/catalog/fingerprint-key.js";
import { readCatalogMetadata } from "../../src/catalog/metadata.js";
import { type Plan, plan } from "../../src/catalog/plan.js";
import { type JobFile, jobFileSchema } from "../../src/config/job-schema.js";

/** A secrets resolver over a plain map: `name` or `name.key`. */
export function secretsOf(values: Record<string, string>) {
  return {
    value(ref: { name: string; key?: string | undefined }): string {
      const id = ref.key === undefined ? ref.name : `${ref.name}.${ref.key}`;
      const v = values[id];
      if (v === undefined) throw new Error(`test secret ${id} missing`);
      return v;
    },
  };
}

export function job(definition: unknown, dir: string): { definition: JobFile; dir: string } {
  return { definition: jobFileSchema.parse(definition), dir };
}

/** A scrubber like the resolver's: masks the values it was told about. */
export function scrubberOf(values: readonly string[]) {
  return { scrub: (text: string) => values.reduce((t, v) => t.replaceAll(v, "***"), text) };
}

export async function tempDir(
  prefix: string,
): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `duckcron-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Plans against whatever catalog is on disk now, as the run pipeline does. */
export async function planFresh(
  definition: unknown,
  dir: string,
  secrets: Record<string, string> = {},
  tenant = "acme",
): Promise<Plan> {
  const j = job(definition, dir);
  const first = plan({ job: j, tenant, secrets: secretsOf(secrets) });
  const previous = await readCatalogMetadata(first.catalogPath);
  const fingerprintKey = await readFingerprintKey(first.catalogPath);
  return plan({ job: j, tenant, secrets: secretsOf(secrets), previous, fingerprintKey });
}

/** Runs one query against a file in a short-lived instance. */
export async function query(
  path: string,
  sql: string,
  options: Record<string, string> = { access_mode: "READ_ONLY" },
): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(path, options);
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
