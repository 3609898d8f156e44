import { Cron } from "croner";
import { z } from "zod";
import { LISTEN_FORMS, parseListenAddress } from "../listen-address.js";
import { duration, positiveDuration } from "./duration.js";

/**
 * runner.yaml. The schema is the only source of the runner's types; every object is
 * strict so an unknown key is an error (the loader adds a "did you mean").
 */

/** Tenant ids end up in file paths, env var names and secret paths: keep them plain. */
export const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const tenantId = z
  .string()
  .regex(
    TENANT_ID,
    "tenant ids use letters, digits, '_' and '-', start with a letter or digit, at most 63 characters",
  );

/**
 * Zones already checked. Each check builds an ICU formatter whose native memory the
 * garbage collector barely sees; 10,000 schedules would hold hundreds of MB.
 */
const validZones = new Set<string>();

const timezone = z.string().refine(
  (tz) => {
    if (validZones.has(tz)) return true;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
      validZones.add(tz);
      return true;
    } catch {
      return false;
    }
  },
  { message: "unknown IANA time zone (examples: UTC, Europe/Berlin, America/New_York)" },
);

/**
 * Pattern -> why it is refused (undefined: fine). Validating 10,000 schedules should not
 * compile 10,000 crons, and proving a pattern never fires searches years ahead.
 */
const checkedCrons = new Map<string, string | undefined>();

function cronProblem(pattern: string): string | undefined {
  if (checkedCrons.has(pattern)) return checkedCrons.get(pattern);
  let problem: string | undefined;
  try {
    // The same mode the scheduler uses: 5 fields, or 6 with seconds first.
    const job = new Cron(pattern, { paused: true, mode: "5-or-6-parts" });
    // Day 30 of February, 31 April: a valid pattern the scheduler would never fire.
    if (job.nextRun() === null) problem = `cron expression "${pattern}" never fires (no such date)`;
    job.stop();
  } catch (error) {
    problem = `invalid cron expression "${pattern}": ${(error as Error).message} (5 fields, or 6 with seconds first)`;
  }
  checkedCrons.set(pattern, problem);
  return problem;
}

const cron = z.string().superRefine((pattern, ctx) => {
  const problem = cronProblem(pattern);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** More would not run faster on one machine; the limiters honour any count. */
const MAX_CONCURRENCY = 256;

const listen = z.string().refine((value) => parseListenAddress(value) !== undefined, {
  message: `not host:port (e.g. ${LISTEN_FORMS}); the port is required`,
});

const cacheFields = {
  /** How long a resolved secret is reused; 0 disables the cache. */
  cache_ttl: duration.default(300_000),
  /** When the backend fails, a cached value younger than this is used (degraded run). */
  max_stale: duration.default(0),
  max_concurrency: z.number().int().min(1).max(MAX_CONCURRENCY).default(8),
};

export const envBackendSchema = z.strictObject({
  /** The default backend, so `secrets: { prefix: APP_ }` needs no type. */
  type: z.literal("env").default("env"),
  /** Prefix of every variable name: {PREFIX}{TENANT}_{NAME}, falling back to {PREFIX}{NAME}. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_]*$/, "use letters, digits and '_'")
    .default(""),
  ...cacheFields,
});

export const filesystemBackendSchema = z.strictObject({
  type: z.literal("filesystem"),
  /** Holds {tenant}/{name}.json|.env|.txt|<no extension>; relative to runner.yaml. */
  secrets_dir: z.string().min(1),
  ...cacheFields,
});

export const vaultBackendSchema = z
  .strictObject({
    type: z.literal("vault"),
    /** Vault address; falls back to VAULT_ADDR. */
    url: z.url({ protocol: /^https?$/ }).optional(),
    /** For `auth: token`; falls back to VAULT_TOKEN. */
    token: z.string().min(1).optional(),
    auth: z.enum(["token", "approle"]).default("token"),
    role_id: z.string().min(1).optional(),
    secret_id: z.string().min(1).optional(),
    mount_point: z
      .string()
      .regex(/^[^/]+(\/[^/]+)*$/, "a mount path like secret or kv/team")
      .default("secret"),
    kv_version: z.union([z.literal(1), z.literal(2)]).default(2),
    /** Sent as X-Vault-Namespace; falls back to VAULT_NAMESPACE. */
    namespace: z.string().min(1).optional(),
    /** Prepended to the tenant id: {mount}/data/{prefix}{tenant}. */
    prefix: z.string().default(""),
    /** Verify the server's TLS certificate. */
    verify: z.boolean().default(true),
    /** PEM file of the CA that signed Vault's certificate. */
    ca_cert: z.string().min(1).optional(),
    /** Per request. */
    timeout: positiveDuration.default(30_000),
    ...cacheFields,
  })
  .superRefine((config, ctx) => {
    if (config.auth !== "approle") return;
    for (const key of ["role_id", "secret_id"] as const) {
      if (config[key] === undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: `auth: approle needs ${key}` });
      }
    }
  });

/** bundle: one JSON secret per tenant; per_name: one secret per name; auto: bundle, else per_name. */
export const secretLayout = z.enum(["bundle", "per_name", "auto"]).default("auto");
export type SecretLayout = z.output<typeof secretLayout>;

export const awsBackendSchema = z.strictObject({
  type: z.literal("aws"),
  /** Falls back to the SDK's default chain (AWS_REGION, profile). */
  region_name: z.string().min(1).optional(),
  /** A LocalStack-style endpoint instead of the regional one. */
  endpoint: z.url({ protocol: /^https?$/ }).optional(),
  /** Prepended to the tenant id: {prefix}{tenant} or {prefix}{tenant}/{name}. */
  prefix: z.string().default(""),
  version_stage: z.string().min(1).default("AWSCURRENT"),
  layout: secretLayout,
  /** Per request attempt. */
  timeout: positiveDuration.default(30_000),
  /** SDK attempts per call, with its backoff for throttling and 5xx. */
  max_attempts: z.number().int().min(1).max(10).default(3),
  ...cacheFields,
});

/** Host names a `local_test_server` may use: the test servers listen on loopback only. */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

export const azureBackendSchema = z
  .strictObject({
    type: z.literal("azure"),
    /** https://{vault}.vault.azure.net; falls back to AZURE_KEYVAULT_URL. */
    vault_url: z.url({ protocol: /^https?$/ }).optional(),
    /** Prepended to the tenant: {prefix}{tenant} or {prefix}{tenant}--{name}, mapped as keyvault.ts says. */
    prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9_-]*$/,
        "Key Vault names allow letters, digits and '-' ('_' is written as '-')",
      )
      .default(""),
    layout: secretLayout,
    /** Per request attempt. */
    timeout: duration.default(30_000),
    /** Attempts per secret read on throttling (429), 5xx and dropped connections. */
    max_attempts: z.number().int().min(1).max(10).default(3),
    /** A service principal; without these DefaultAzureCredential is used. */
    tenant_id: z.string().min(1).optional(),
    client_id: z.string().min(1).optional(),
    client_secret: z.string().min(1).optional(),
    /** Microsoft Entra authority of a sovereign cloud; falls back to AZURE_AUTHORITY_HOST. */
    authority_host: z.url({ protocol: /^https$/ }).optional(),
    /** PEM file of a CA to trust for the vault and the token endpoint (TLS-inspecting proxies). */
    ca_cert: z.string().min(1).optional(),
    /**
     * Tests only: skips the check that the vault's auth challenge names a Key Vault
     * resource, and allows an http:// vault_url. Refused unless vault_url is on loopback.
     */
    local_test_server: z.boolean().default(false),
    ...cacheFields,
  })
  .superRefine((config, ctx) => {
    const principal = (["tenant_id", "client_id", "client_secret"] as const).filter(
      (key) => config[key] !== undefined,
    );
    if (principal.length > 0 && principal.length < 3) {
      for (const key of ["tenant_id", "client_id", "client_secret"] as const) {
        if (config[key] !== undefined) continue;
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `a service principal needs tenant_id, client_id and client_secret (${principal.join(", ")} set); drop them all to use DefaultAzureCredential`,
        });
      }
    }
    if (config.vault_url === undefined) return;
    const url = new URL(config.vault_url);
    if (config.local_test_server && !LOOPBACK_HOSTS.has(url.hostname)) {
      ctx.addIssue({
        code: "custom",
        path: ["local_test_server"],
        message: `local_test_server turns off Key Vault's resource check and is only for test servers on 127.0.0.1, not ${url.hostname}`,
      });
    }
    if (url.protocol === "http:" && !config.local_test_server) {
      ctx.addIssue({
        code: "custom",
        path: ["vault_url"],
        message: "Key Vault is only reached over https:// (the bearer token would travel in clear)",
      });
    }
  });
/** Secret Manager ids: letters, digits, '_' and '-', at most 255 characters. */
export const GCP_SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;

export const gcpBackendSchema = z.strictObject({
  type: z.literal("gcp"),
  /** Falls back to GOOGLE_CLOUD_PROJECT, then GCP_PROJECT_ID. */
  project_id: z
    .string()
    .regex(
      /^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[0-9]{1,20}$/,
      "a project id (6-30 lower-case letters, digits and '-') or a project number",
    )
    .optional(),
  /** Prepended to the tenant id: {prefix}{tenant} or {prefix}{tenant}-{name}. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, "Secret Manager ids use letters, digits, '_' and '-' only")
    .default(""),
  layout: secretLayout,
  /** A version number, or an alias such as `latest`. */
  version: z
    .string()
    .regex(
      /^(latest|[1-9][0-9]*|[A-Za-z][A-Za-z0-9_-]{0,62})$/,
      "latest, a version number or an alias",
    )
    .default("latest"),
  /** Another Secret Manager endpoint: a regional or private one, or a test server. */
  endpoint: z.url({ protocol: /^https?$/ }).default("https://secretmanager.googleapis.com"),
  /** A service account key or external_account (workload identity federation) file; relative to runner.yaml. Application Default Credentials when absent. */
  credentials_file: z.string().min(1).optional(),
  /** Per Secret Manager request attempt; getting a token is given at least 10 s. */
  timeout: duration.default(30_000),
  /** Attempts per call for UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED and 5xx. */
  max_attempts: z.number().int().min(1).max(10).default(3),
  ...cacheFields,
});

export const secretsBackendSchema = z.discriminatedUnion("type", [
  envBackendSchema,
  filesystemBackendSchema,
  vaultBackendSchema,
  awsBackendSchema,
  azureBackendSchema,
  gcpBackendSchema,
]);

export const retriesSchema = z.strictObject({
  attempts: z.number().int().min(0).max(100).default(0),
  backoff: duration.default(30_000),
  max_backoff: duration.default(600_000),
});

export const scheduleSchema = z.strictObject({
  name: z.string().regex(SCHEDULE_NAME, "use letters, digits, '_', '-' and '.'"),
  /** The job file, relative to runner.yaml. */
  config: z.string().min(1),
  cron,
  tenants: z.array(tenantId).min(1, "list at least one tenant"),
  timezone: timezone.optional(),
  timeout: positiveDuration.optional(),
  retries: retriesSchema.default({ attempts: 0, backoff: 30_000, max_backoff: 600_000 }),
  overlap: z.enum(["skip", "queue"]).default("skip"),
  catchup: z.enum(["none", "latest"]).default("none"),
  enabled: z.boolean().default(true),
});

/**
 * Cluster mode: several replicas coordinate through PostgreSQL. Either `url` or the
 * host/user/database fields; `url` wins where both are given.
 */
export const clusterSchema = z
  .strictObject({
    type: z.literal("postgres"),
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "a URL like postgres://user:password@host:5432/db")
      .optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    database: z.string().min(1).optional(),
    ssl: z.boolean().optional(),
    /** Tables live here; created and migrated at start. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, "a plain lower-case identifier like duckcron")
      .default("duckcron"),
    /** How long a claim holds without renewal; renewed every lease/3. */
    lease: duration
      .default(60_000)
      .refine((ms) => ms >= 1_000, "at least 1s, so a renewal every lease/3 can make it"),
    /** Names this replica in the runs table and the audit trail; default hostname-pid. */
    replica_id: z.string().min(1).max(200).optional(),
    /** Finished runs older than this are pruned from the runs table. */
    history: duration.default(7 * 86_400_000),
  })
  .superRefine((cluster, ctx) => {
    if (cluster.url === undefined && cluster.host === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        message: "give url (postgres://...) or host (with user, password, database)",
      });
    }
  });

export const runnerSectionSchema = z.strictObject({
  timezone: timezone.default("UTC"),
  max_concurrent_runs: z.number().int().min(1).max(MAX_CONCURRENCY).default(4),
  max_concurrent_runs_per_tenant: z.number().int().min(1).max(MAX_CONCURRENCY).default(1),
  shutdown_grace: duration.default(30_000),
  http: z
    .strictObject({ listen: listen.default("127.0.0.1:9464") })
    .default({ listen: "127.0.0.1:9464" }),
  audit: z
    .strictObject({
      path: z.string().default("-"),
      hmac_key: z.string().optional(),
    })
    .optional(),
  /** Where the daemon keeps small state (last run times); relative to runner.yaml. */
  state_dir: z.string().optional(),
  secrets: secretsBackendSchema.default({
    type: "env",
    prefix: "",
    cache_ttl: 300_000,
    max_stale: 0,
    max_concurrency: 8,
  }),
  schedules: z.array(scheduleSchema).default([]),
  /** Absent: a single daemon with its local state file. */
  cluster: clusterSchema.optional(),
});

export const runnerFileSchema = z
  .strictObject({
    version: z.literal(1),
    runner: runnerSectionSchema,
  })
  .superRefine((file, ctx) => {
    const seen = new Map<string, number>();
    file.runner.schedules.forEach((schedule, index) => {
      const first = seen.get(schedule.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["runner", "schedules", index, "name"],
          message: `duplicate schedule name "${schedule.name}" (first used by runner.schedules[${first}])`,
        });
      } else {
        seen.set(schedule.name, index);
      }
      const tenants = new Set<string>();
      schedule.tenants.forEach((tenant, t) => {
        if (tenants.has(tenant)) {
          ctx.addIssue({
            code: "custom",
            path: ["runner", "schedules", index, "tenants", t],
            message: `tenant "${tenant}" is listed twice`,
          });
        }
        tenants.add(tenant);
      });
    });
  });

export type RunnerFile = z.output<typeof runnerFileSchema>;
export type RunnerSection = RunnerFile["runner"];
export type Schedule = z.output<typeof scheduleSchema>;
export type SecretsBackendConfig = z.output<typeof secretsBackendSchema>;
export type EnvBackendConfig = z.output<typeof envBackendSchema>;
export type FilesystemBackendConfig = z.output<typeof filesystemBackendSchema>;
export type VaultBackendConfig = z.output<typeof vaultBackendSchema>;
export type AwsBackendConfig = z.output<typeof awsBackendSchema>;
export type AzureBackendConfig = z.output<typeof azureBackendSchema>;
export type GcpBackendConfig = z.output<typeof gcpBackendSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
