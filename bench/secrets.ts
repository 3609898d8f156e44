/**
 * Secrets benchmark: 1,000 tenants x 10 secrets through the SecretResolver against
 * the Vault and AWS Secrets Manager test servers (5 ms latency per request), for
 * each backend and layout. Prints backend requests per run, wall time, the ratio to
 * the ideal (requests x latency / concurrency) and to a naive resolver (one
 * request per secret, sequential), all measured in the same run. The naive run is
 * measured on a sample of tenants and extrapolated (the output says so). Times are
 * printed, never asserted.
 *
 * The test servers run in a worker thread (the same server code the tests use), so
 * the client's event loop carries only duckcron's backend and resolver; "client ms
 * / request" is the busy time of that loop divided by the requests it made.
 *
 * Run: npm run bench:secrets (vitest runs this file so the TypeScript test servers load as they are).
 */
import { it } from "vitest";
import { awsBackendSchema, vaultBackendSchema } from "../src/config/runner-schema.js";
import { Scrubber } from "../src/observe/scrubber.js";
import { AwsBackend } from "../src/secrets/aws.js";
import type { SecretBackend } from "../src/secrets/backend.js";
import type { SecretRef } from "../src/secrets/refs.js";
import { SecretResolver } from "../src/secrets/resolver.js";
import { VaultBackend } from "../src/secrets/vault.js";
import {
  startAwsTestServerInWorker,
  startVaultTestServerInWorker,
  type WorkerServer,
} from "../test/servers/in-worker.js";

const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000);
const SECRETS = 10;
const LATENCY_MS = 5;
const CONCURRENCY = 8;
const NAIVE_SAMPLE_TENANTS = 10;

const tenants = Array.from({ length: TENANTS }, (_, i) => `tenant-${String(i).padStart(4, "0")}`);
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
  wallMs: number;
  idealMs: number;
  naiveMs: number;
  naiveRequests: number;
  /** Busy time of the client's event loop per request, concurrent run. */
  clientMsPerRequest: number;
}

type Counted = Pick<WorkerServer<() => void>, "resetCounts" | "requests">;

async function measure(
  setup: string,
  backend: SecretBackend,
  server: Counted,
  idealRequests: number,
): Promise<Row> {
  const resolver = new SecretResolver({
    backend,
    cacheTtlMs: 0,
    maxStaleMs: 0,
    maxConcurrency: CONCURRENCY,
    scrubber: new Scrubber(),
  });
  await server.resetCounts();
  const loopBefore = performance.eventLoopUtilization();
  const started = performance.now();
  await Promise.all(
    tenants.map(async (tenant) => {
      const resolved = await resolver.resolve(tenant, refs);
      if (resolved.value({ name: "secret_3" }) !== expectedValue(tenant, "secret_3"))
        throw new Error(`wrong value for ${tenant}`);
    }),
  );
  const wallMs = performance.now() - started;
  const loop = performance.eventLoopUtilization(loopBefore);
  const requests = await server.requests();

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
    wallMs,
    idealMs: (requests * LATENCY_MS) / CONCURRENCY,
    naiveMs: sampleMs * scale,
    naiveRequests: Math.round((await server.requests()) * scale),
    clientMsPerRequest: loop.active / requests,
  };
}

async function vaultRows(): Promise<Row[]> {
  const server = await startVaultTestServerInWorker();
  try {
    await server.seedMany(
      tenants.map((tenant) => [
        tenant,
        Object.fromEntries(names.map((name) => [name, expectedValue(tenant, name)])),
      ]),
    );
    await server.setLatency(LATENCY_MS);
    const backend = new VaultBackend(
      vaultBackendSchema.parse({ type: "vault", url: server.url, token: server.rootToken }),
    );
    return [await measure("vault kv2", backend, server, TENANTS)];
  } finally {
    await server.close();
  }
}

async function awsRows(): Promise<Row[]> {
  const server = await startAwsTestServerInWorker();
  try {
    await server.seedMany(
      tenants.flatMap((tenant): [string, string][] => [
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

it("secrets benchmark", { timeout: 900_000 }, async () => {
  const rows = [...(await vaultRows()), ...(await awsRows())];
  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const table = rows.map((r) => ({
    "backend / layout": r.setup,
    requests: r.requests,
    "target requests": r.idealRequests,
    wall: fmt(r.wallMs),
    ideal: fmt(r.idealMs),
    "wall / ideal": (r.wallMs / r.idealMs).toFixed(2),
    "naive (extrapolated)": fmt(r.naiveMs),
    "naive requests": r.naiveRequests,
    "speedup vs naive": `${(r.naiveMs / r.wallMs).toFixed(1)}x`,
    "client ms / request": r.clientMsPerRequest.toFixed(2),
  }));
  console.log(
    [
      `secrets benchmark: ${TENANTS} tenants x ${SECRETS} secrets, ${LATENCY_MS} ms server latency, max_concurrency ${CONCURRENCY}`,
      "ideal = requests x latency / concurrency; target requests = tenants (bundle layouts), ceil(10/20) x tenants (per_name)",
      `naive = one request per secret, sequential: measured on ${NAIVE_SAMPLE_TENANTS} tenants and extrapolated to ${TENANTS}`,
      "test servers run in a worker thread; client ms / request = the client event loop's busy time / requests",
    ].join("\n"),
  );
  console.table(table);
});
