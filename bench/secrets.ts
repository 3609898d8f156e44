/**
 * Secrets benchmark: 1,000 tenants x 10 secrets through the SecretResolver against
 * the Vault, AWS Secrets Manager, GCP Secret Manager and Azure Key Vault test servers
 * (5 ms latency per request), for each backend and layout, Vault over http and over
 * https (ca_cert), Key Vault over https (the only way its token endpoint is reached).
 * Prints backend
 * requests and TCP connections per run, wall time, the ratio to the ideal
 * (requests x latency / concurrency) and to a naive resolver (one request per
 * secret, sequential), all measured in the same run. The naive run is measured on
 * a sample of tenants and extrapolated (the output says so). Times are printed,
 * never asserted.
 *
 * The test servers run in a worker thread (the same server code the tests use), so
 * the client's event loop carries only duckcron's backend and resolver; "client ms
 * / request" is the busy time of that loop divided by the requests it made. Each
 * setup first resolves BENCH_WARMUP other tenants (default: as many as measured; not
 * counted), so the JIT and the connection pool are as warm as in a daemon's second
 * run: with only 200, client CPU per request measured about 1.5x higher.
 *
 * Run: npm run bench:secrets (vitest runs this file so the TypeScript test servers
 * load as they are). BENCH_TENANTS and BENCH_WARMUP change the sizes, BENCH_LATENCY_MS
 * the servers' latency (default 20);
 * BENCH_CPU_PROF=<folder> writes CPU profiles (see vitest.secrets.config.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "vitest";
import {
  awsBackendSchema,
  azureBackendSchema,
  gcpBackendSchema,
  vaultBackendSchema,
} from "../src/config/runner-schema.js";
import { Scrubber } from "../src/observe/scrubber.js";
import { AwsBackend } from "../src/secrets/aws.js";
import { AzureBackend } from "../src/secrets/azure.js";
import type { SecretBackend } from "../src/secrets/backend.js";
import { GcpBackend } from "../src/secrets/gcp.js";
import type { SecretRef } from "../src/secrets/refs.js";
import { SecretResolver } from "../src/secrets/resolver.js";
import { VaultBackend } from "../src/secrets/vault.js";
import {
  startAwsTestServerInWorker,
  startAzureTestServerInWorker,
  startGcpTestServerInWorker,
  startVaultTestServerInWorker,
  type WorkerServer,
} from "../test/servers/in-worker.js";
import { makeTestCertificates } from "../test/servers/test-certs.js";

const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? TENANTS);
const SECRETS = 10;
// The target is stated at 20 ms, a cross-region round trip: there a layout's wall time
// should be within 1.2x of ideal. At 5 ms the clients' own CPU per request dominates,
// which is why "client ms / request" is printed too.
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const TARGET_WALL_OVER_IDEAL = 1.2;
const CONCURRENCY = 8;
const NAIVE_SAMPLE_TENANTS = 10;

const tenantId = (i: number) => `tenant-${String(i).padStart(4, "0")}`;
const tenants = Array.from({ length: TENANTS }, (_, i) => tenantId(i));
// Tenants of their own, so the measured run never meets a warm-up's leftovers.
const warmupTenants = Array.from({ length: WARMUP }, (_, i) => tenantId(TENANTS + i));
const seededTenants = [...tenants, ...warmupTenants];
const names = Array.from({ length: SECRETS }, (_, i) => `secret_${i}`);
const refs: SecretRef[] = names.map((name) => ({
  name,
  raw: `\${secret:${name}}`,
  path: ["duckdb", "secrets", 0, name],
}));
const expectedValue = (tenant: string, name: string) => `value-${tenant}-${name}-${"x".repeat(24)}`;

interface Row {
  setup: string;
  requests: number;
  idealRequests: number;
  connections: number;
  wallMs: number;
  idealMs: number;
  naiveMs: number;
  naiveRequests: number;
  /** Busy time of the client's event loop per request, concurrent run. */
  clientMsPerRequest: number;
}

type Counted = Pick<WorkerServer<() => void>, "resetCounts" | "requests" | "connections">;

async function resolveAll(backend: SecretBackend, list: readonly string[]): Promise<void> {
  const resolver = new SecretResolver({
    backend,
    cacheTtlMs: 0,
    maxStaleMs: 0,
    maxConcurrency: CONCURRENCY,
    scrubber: new Scrubber(),
  });
  await Promise.all(
    list.map(async (tenant) => {
      const resolved = await resolver.resolve(tenant, refs);
      if (resolved.value({ name: "secret_3" }) !== expectedValue(tenant, "secret_3"))
        throw new Error(`wrong value for ${tenant}`);
    }),
  );
}

async function measure(
  setup: string,
  backend: SecretBackend,
  server: Counted,
  idealRequests: number,
): Promise<Row> {
  await server.resetCounts();
  await resolveAll(backend, warmupTenants);
  const warmupConnections = await server.connections();
  await server.resetCounts();
  const loopBefore = performance.eventLoopUtilization();
  const started = performance.now();
  await resolveAll(backend, tenants);
  const wallMs = performance.now() - started;
  const loop = performance.eventLoopUtilization(loopBefore);
  const requests = await server.requests();
  const connections = warmupConnections + (await server.connections());

  // Naive: one request per secret, one after another, on a sample of tenants.
  await server.resetCounts();
  const naiveStarted = performance.now();
  for (const tenant of tenants.slice(0, NAIVE_SAMPLE_TENANTS)) {
    for (const name of names) {
      const found = await backend.fetch(tenant, [name]);
      if (!found.has(name)) throw new Error(`naive run missed ${tenant}/${name}`);
    }
  }
  const sampleMs = performance.now() - naiveStarted;
  const scale = TENANTS / Math.min(NAIVE_SAMPLE_TENANTS, TENANTS);
  await backend.close();
  return {
    setup,
    requests,
    idealRequests,
    connections,
    wallMs,
    idealMs: (requests * LATENCY_MS) / CONCURRENCY,
    naiveMs: sampleMs * scale,
    naiveRequests: Math.round((await server.requests()) * scale),
    clientMsPerRequest: loop.active / requests,
  };
}

async function vaultRows(): Promise<Row[]> {
  const certs = makeTestCertificates();
  const rows: Row[] = [];
  try {
    for (const tls of [false, true]) {
      const server = await startVaultTestServerInWorker(
        tls ? { tls: { cert: certs.cert, key: certs.key } } : {},
      );
      try {
        await server.seedMany(
          seededTenants.map((tenant) => [
            tenant,
            Object.fromEntries(names.map((name) => [name, expectedValue(tenant, name)])),
          ]),
        );
        await server.setLatency(LATENCY_MS);
        const backend = new VaultBackend(
          vaultBackendSchema.parse({
            type: "vault",
            url: server.url,
            token: server.rootToken,
            ...(tls ? { ca_cert: certs.caPath } : {}),
          }),
        );
        rows.push(await measure(tls ? "vault kv2 https" : "vault kv2", backend, server, TENANTS));
      } finally {
        await server.close();
      }
    }
  } finally {
    certs.remove();
  }
  return rows;
}

async function awsRows(): Promise<Row[]> {
  const server = await startAwsTestServerInWorker();
  try {
    await server.seedMany(
      seededTenants.flatMap((tenant): [string, string][] => [
        [
          `bundle/${tenant}`,
          JSON.stringify(Object.fromEntries(names.map((n) => [n, expectedValue(tenant, n)]))),
        ],
        ...names.map((name): [string, string] => [
          `split/${tenant}/${name}`,
          expectedValue(tenant, name),
        ]),
      ]),
    );
    await server.setLatency(LATENCY_MS);
    const make = (prefix: string, layout: string) =>
      new AwsBackend(
        awsBackendSchema.parse({
          type: "aws",
          region_name: server.region,
          endpoint: server.url,
          prefix,
          layout,
        }),
        { client: { credentials: server.credentials, maxAttempts: 1 } },
      );
    return [
      await measure("aws bundle", make("bundle/", "bundle"), server, TENANTS),
      await measure(
        "aws per_name",
        make("split/", "per_name"),
        server,
        Math.ceil(SECRETS / 20) * TENANTS,
      ),
      await measure("aws auto (bundles)", make("bundle/", "auto"), server, TENANTS),
    ];
  } finally {
    await server.close();
  }
}

async function gcpRows(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "duckcron-bench-gcp-"));
  const server = await startGcpTestServerInWorker(dir);
  try {
    await server.seedMany(
      seededTenants.flatMap((tenant): [string, string][] => [
        [
          `bundle-${tenant}`,
          JSON.stringify(Object.fromEntries(names.map((n) => [n, expectedValue(tenant, n)]))),
        ],
        ...names.map((name): [string, string] => [
          `split-${tenant}-${name}`,
          expectedValue(tenant, name),
        ]),
      ]),
    );
    await server.setLatency(LATENCY_MS);
    const make = (prefix: string, layout: string) =>
      new GcpBackend(
        gcpBackendSchema.parse({
          type: "gcp",
          project_id: server.projectId,
          endpoint: server.url,
          credentials_file: server.credentialsFile,
          prefix,
          layout,
          max_attempts: 1,
          max_concurrency: CONCURRENCY,
        }),
      );
    return [
      await measure("gcp bundle", make("bundle-", "bundle"), server, TENANTS),
      await measure("gcp per_name", make("split-", "per_name"), server, SECRETS * TENANTS),
      await measure("gcp auto (bundles)", make("bundle-", "auto"), server, TENANTS),
    ];
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function azureRows(): Promise<Row[]> {
  const server = await startAzureTestServerInWorker();
  try {
    // Key Vault names: lower-case, '_' as '-', {prefix}{tenant}--{name} per name.
    await server.seedMany(
      seededTenants.flatMap((tenant): [string, string][] => [
        [
          `bundle-${tenant}`,
          JSON.stringify(Object.fromEntries(names.map((n) => [n, expectedValue(tenant, n)]))),
        ],
        ...names.map((name): [string, string] => [
          `split-${tenant}--${name.replaceAll("_", "-")}`,
          expectedValue(tenant, name),
        ]),
      ]),
    );
    await server.setLatency(LATENCY_MS);
    const make = (prefix: string, layout: string) =>
      new AzureBackend(
        azureBackendSchema.parse({
          type: "azure",
          vault_url: server.url,
          authority_host: server.url,
          tenant_id: server.tenantId,
          client_id: server.client.clientId,
          client_secret: server.client.clientSecret,
          ca_cert: server.caPath,
          local_test_server: true,
          prefix,
          layout,
          max_attempts: 1,
          max_concurrency: CONCURRENCY,
        }),
      );
    return [
      await measure("azure bundle", make("bundle-", "bundle"), server, TENANTS),
      await measure("azure per_name", make("split-", "per_name"), server, SECRETS * TENANTS),
      await measure("azure auto (bundles)", make("bundle-", "auto"), server, TENANTS),
    ];
  } finally {
    await server.close();
  }
}

it("secrets benchmark", { timeout: 900_000 }, async () => {
  const rows = [
    ...(await vaultRows()),
    ...(await awsRows()),
    ...(await gcpRows()),
    ...(await azureRows()),
  ];
  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const table = rows.map((r) => ({
    "backend / layout": r.setup,
    requests: r.requests,
    "requests / tenant": (r.requests / TENANTS).toFixed(2),
    "target requests": r.idealRequests,
    connections: r.connections,
    wall: fmt(r.wallMs),
    ideal: fmt(r.idealMs),
    "wall / ideal": (r.wallMs / r.idealMs).toFixed(2),
    "client ms / request": r.clientMsPerRequest.toFixed(2),
    "naive (extrapolated)": fmt(r.naiveMs),
    "naive requests": r.naiveRequests,
    "speedup vs naive": `${(r.naiveMs / r.wallMs).toFixed(1)}x`,
  }));
  console.log(
    [
      `secrets benchmark: ${TENANTS} tenants x ${SECRETS} secrets, ${LATENCY_MS} ms server latency, max_concurrency ${CONCURRENCY}`,
      `target: wall / ideal <= ${TARGET_WALL_OVER_IDEAL} at 20 ms latency (BENCH_LATENCY_MS sets the latency; at 5 ms the clients' CPU dominates)`,
      "ideal = requests x latency / concurrency; target requests = tenants (bundle layouts), ceil(10/20) x tenants (aws per_name), 10 x tenants (gcp and azure per_name: no batch read)",
      `naive = one request per secret, sequential: measured on ${NAIVE_SAMPLE_TENANTS} tenants and extrapolated to ${TENANTS}`,
      `test servers run in a worker thread; each setup is warmed up first on ${WARMUP} other tenants (not counted)`,
      "client ms / request = busy time of the client's event loop / requests (1 core; ideal needs < latency / concurrency)",
      "connections = TCP connections the server accepted during warm-up and run together (kept alive: about max_concurrency)",
    ].join("\n"),
  );
  console.table(table);
});
