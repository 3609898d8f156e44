/**
 * TEST SERVER SUPPORT — never shipped. Starts a Vault, AWS, GCP or Key Vault test server in a worker
 * thread (its own event loop, so on another core) and drives it by messages. For
 * benchmarks: the client being measured no longer pays for the server's CPU.
 * worker-host.ts is bundled with esbuild on first use, because the worker runs
 * outside vitest's TypeScript transform.
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { build } from "esbuild";
import type { AwsTestServer, AwsTestServerOptions } from "./aws-test-server.js";
import type { AzureTestServer, AzureTestServerOptions } from "./azure-test-server.js";
import type { GcpTestServer } from "./gcp-test-server.js";
import type { VaultTestServer, VaultTestServerOptions } from "./vault-test-server.js";
import type { HostedServerSpec, HostReply, HostRequest } from "./worker-host.js";

/** A test server in a worker: its fault injector is reached through async calls. */
export interface WorkerServer<Seed extends (...args: never[]) => void> {
  /** Stores many entries in one message; each element is one seed() call's arguments. */
  seedMany(calls: readonly Parameters<Seed>[]): Promise<void>;
  setLatency(ms: number): Promise<void>;
  resetCounts(): Promise<void>;
  requests(operation?: string): Promise<number>;
  /** TCP connections accepted since resetCounts(). */
  connections(): Promise<number>;
  /** Closes the server and ends the worker. */
  close(): Promise<void>;
}

export interface WorkerVaultServer extends WorkerServer<VaultTestServer["seed"]> {
  readonly url: string;
  readonly rootToken: string;
}

export interface WorkerAwsServer extends WorkerServer<AwsTestServer["seed"]> {
  readonly url: string;
  readonly region: string;
  readonly credentials: AwsTestServer["credentials"];
}

export interface WorkerAzureServer extends WorkerServer<AzureTestServer["seed"]> {
  readonly url: string;
  readonly tenantId: string;
  readonly client: AzureTestServer["client"];
  readonly caPath: string;
}

export interface WorkerGcpServer extends WorkerServer<GcpTestServer["seed"]> {
  readonly url: string;
  readonly projectId: string;
  /** An external_account file whose token exchange the server accepts. */
  readonly credentialsFile: string;
}

let bundled: Promise<string> | undefined;

function hostCode(): Promise<string> {
  bundled ??= build({
    entryPoints: [fileURLToPath(new URL("./worker-host.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    write: false,
    logLevel: "warning",
  }).then((result) => {
    const file = result.outputFiles[0];
    if (!file) throw new Error("esbuild produced no worker bundle");
    return file.text;
  });
  return bundled;
}

async function startInWorker(
  spec: HostedServerSpec,
): Promise<{ info: Record<string, unknown>; call: (request: HostRequest) => Promise<unknown> }> {
  const worker = new Worker(await hostCode(), { eval: true });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  worker.on("message", (reply: HostReply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) waiter?.resolve(reply.value);
    else waiter?.reject(new Error(`test server worker: ${reply.error}`));
  });
  worker.on("error", (error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  const call = (request: HostRequest) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, request });
    });
  const info = (await call({ op: "start", spec })) as Record<string, unknown>;
  return {
    info,
    call: async (request) => {
      const value = await call(request);
      if (request.op === "close") await worker.terminate();
      return value;
    },
  };
}

function controls(call: (request: HostRequest) => Promise<unknown>) {
  return {
    seedMany: async (calls: readonly unknown[][]) => {
      await call({ op: "seed", calls: calls.map((args) => [...args]) });
    },
    setLatency: async (ms: number) => {
      await call({ op: "latency", ms });
    },
    resetCounts: async () => {
      await call({ op: "resetCounts" });
    },
    requests: async (operation?: string) => (await call({ op: "requests", operation })) as number,
    connections: async () => (await call({ op: "connections" })) as number,
    close: async () => {
      await call({ op: "close" });
    },
  };
}

export async function startVaultTestServerInWorker(
  options: Omit<VaultTestServerOptions, "now"> = {},
): Promise<WorkerVaultServer> {
  const { info, call } = await startInWorker({ kind: "vault", options });
  return {
    url: info.url as string,
    rootToken: info.rootToken as string,
    ...controls(call),
  };
}

export async function startAwsTestServerInWorker(
  options: AwsTestServerOptions = {},
): Promise<WorkerAwsServer> {
  const { info, call } = await startInWorker({ kind: "aws", options });
  return {
    url: info.url as string,
    region: info.region as string,
    credentials: info.credentials as AwsTestServer["credentials"],
    ...controls(call),
  };
}

export async function startAzureTestServerInWorker(
  options: Omit<AzureTestServerOptions, "certificates"> = {},
): Promise<WorkerAzureServer> {
  const { info, call } = await startInWorker({ kind: "azure", options });
  return {
    url: info.url as string,
    tenantId: info.tenantId as string,
    client: info.client as AzureTestServer["client"],
    caPath: info.caPath as string,
    ...controls(call),
  };
}

export async function startGcpTestServerInWorker(credentialsDir: string): Promise<WorkerGcpServer> {
  const { info, call } = await startInWorker({ kind: "gcp", credentialsDir });
  return {
    url: info.url as string,
    projectId: info.projectId as string,
    credentialsFile: info.credentialsFile as string,
    ...controls(call),
  };
}
