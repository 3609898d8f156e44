/**
 * TEST SERVER SUPPORT — never shipped. Fault injection and request counting shared
 * by the Vault and AWS Secrets Manager test servers, so fault tests read the same
 * against both.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server, Socket } from "node:net";
import { Server as TlsServer } from "node:tls";

/**
 * - `unavailable`: a 5xx in the service's own error shape.
 * - `throttle`: the service's rate-limit answer (429 for Vault, ThrottlingException for AWS).
 * - `hang`: accept the request and never answer (until the server closes).
 * - `drop`: destroy the socket without an answer.
 * - `malformed`: 200 with a body that is not JSON.
 */
export type FaultKind = "unavailable" | "throttle" | "hang" | "drop" | "malformed";

export interface FaultRule {
  kind: FaultKind;
  /** Only requests of this operation; all when absent. */
  operation?: string;
  /** How many matching requests get the fault; forever when absent. */
  times?: number;
}

export class FaultInjector {
  /** Delay before every answer, in ms (real time: for benchmarks, not unit tests). */
  latencyMs = 0;
  private rules: FaultRule[] = [];
  private readonly counts = new Map<string, number>();
  /** TCP connections accepted since the last resetCounts() (keep-alive shows as few). */
  connections = 0;
  private readonly hung = new Set<ServerResponse>();

  inject(rule: FaultRule): void {
    this.rules.push({ ...rule });
  }

  clear(): void {
    this.rules = [];
    this.latencyMs = 0;
  }

  /** Requests seen, by operation name, or all together. */
  requests(operation?: string): number {
    if (operation !== undefined) return this.counts.get(operation) ?? 0;
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  resetCounts(): void {
    this.counts.clear();
    this.connections = 0;
  }

  count(operation: string): void {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + 1);
  }

  /** The fault for this request, consuming one use of a counted rule. */
  take(operation: string): FaultKind | undefined {
    const index = this.rules.findIndex(
      (r) => r.operation === undefined || r.operation === operation,
    );
    if (index < 0) return undefined;
    const rule = this.rules[index]!;
    if (rule.times !== undefined) {
      rule.times -= 1;
      if (rule.times <= 0) this.rules.splice(index, 1);
    }
    return rule.kind;
  }

  async delay(): Promise<void> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
  }

  /** Applies the transport-level faults; returns true when the request was consumed. */
  applyTransport(kind: FaultKind, req: IncomingMessage, res: ServerResponse): boolean {
    if (kind === "hang") {
      this.hung.add(res);
      res.on("close", () => this.hung.delete(res));
      return true;
    }
    if (kind === "drop") {
      req.socket.destroy();
      return true;
    }
    return false;
  }
}

/** Tracks sockets so close() ends hung requests and keep-alive connections at once (HTTP or HTTPS). */
export function trackSockets(server: Server, faults?: FaultInjector): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    if (faults) faults.connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return () =>
    new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      for (const socket of sockets) socket.destroy();
    });
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Listens on a free port of 127.0.0.1; the URL is https:// for a TLS server. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const scheme = server instanceof TlsServer ? "https" : "http";
  return `${scheme}://127.0.0.1:${address.port}`;
}
