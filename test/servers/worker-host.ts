/**
 * TEST SERVER SUPPORT — never shipped. Runs one Vault, AWS, GCP or Key Vault test server inside a
 * worker thread, driven by messages from in-worker.ts, so a benchmark's client and
 * server do not share an event loop. The servers are the same modules the tests use.
 */
import { parentPort } from "node:worker_threads";
import { type AwsTestServerOptions, startAwsTestServer } from "./aws-test-server.js";
import { type AzureTestServerOptions, startAzureTestServer } from "./azure-test-server.js";
import type { FaultInjector } from "./faults.js";
import { startGcpTestServer } from "./gcp-test-server.js";
import { startVaultTestServer, type VaultTestServerOptions } from "./vault-test-server.js";

export type HostedServerSpec =
  | { kind: "vault"; options?: Omit<VaultTestServerOptions, "now"> }
  | { kind: "aws"; options?: AwsTestServerOptions }
  | { kind: "azure"; options?: Omit<AzureTestServerOptions, "certificates"> }
  /** The GCP server writes its external_account credentials file into credentialsDir. */
  | { kind: "gcp"; credentialsDir: string };

export type HostRequest =
  | { op: "start"; spec: HostedServerSpec }
  | { op: "seed"; calls: unknown[][] }
  | { op: "latency"; ms: number }
  | { op: "resetCounts" }
  | { op: "requests"; operation?: string | undefined }
  | { op: "connections" }
  | { op: "close" };

export interface HostReply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

interface Hosted {
  faults: FaultInjector;
  seed: (...args: never[]) => void;
  close: () => Promise<void>;
}

let hosted: Hosted | undefined;

async function start(spec: HostedServerSpec): Promise<Record<string, unknown>> {
  switch (spec.kind) {
    case "vault": {
      const server = await startVaultTestServer(spec.options);
      hosted = server;
      return { url: server.url, rootToken: server.rootToken };
    }
    case "aws": {
      const server = await startAwsTestServer(spec.options);
      hosted = server;
      return { url: server.url, region: server.region, credentials: server.credentials };
    }
    case "azure": {
      const server = await startAzureTestServer(spec.options);
      hosted = server;
      return {
        url: server.url,
        tenantId: server.tenantId,
        client: server.client,
        caPath: server.caPath,
      };
    }
    case "gcp": {
      const server = await startGcpTestServer();
      hosted = server;
      return {
        url: server.url,
        projectId: server.projectId,
        credentialsFile: server.credentialsFile(spec.credentialsDir),
      };
    }
    default: {
      const never: never = spec;
      throw new Error(`unknown server ${JSON.stringify(never)}`);
    }
  }
}

function server(): Hosted {
  if (!hosted) throw new Error("no server started in this worker");
  return hosted;
}

async function run(request: HostRequest): Promise<unknown> {
  switch (request.op) {
    case "start":
      return start(request.spec);
    case "seed": {
      const seed = server().seed as (...args: unknown[]) => void;
      // Buffers arrive as plain Uint8Arrays; the AWS server tells SecretBinary by Buffer.
      for (const args of request.calls)
        seed(...args.map((a) => (a instanceof Uint8Array ? Buffer.from(a) : a)));
      return undefined;
    }
    case "latency":
      server().faults.latencyMs = request.ms;
      return undefined;
    case "resetCounts":
      server().faults.resetCounts();
      return undefined;
    case "requests":
      return server().faults.requests(request.operation);
    case "connections":
      return server().faults.connections;
    case "close":
      await hosted?.close();
      hosted = undefined;
      return undefined;
    default: {
      const never: never = request;
      throw new Error(`unknown request ${JSON.stringify(never)}`);
    }
  }
}

parentPort?.on("message", (message: { id: number; request: HostRequest }) => {
  run(message.request).then(
    (value) => parentPort?.postMessage({ id: message.id, ok: true, value } satisfies HostReply),
    (error: unknown) =>
      parentPort?.postMessage({
        id: message.id,
        ok: false,
        error: String((error as Error)?.message ?? error),
      } satisfies HostReply),
  );
});
