import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { resolve } from "node:path";
import type NodeVault from "node-vault";
import nodeVault from "node-vault";
import type { VaultBackendConfig } from "../config/runner-schema.js";

import { SecretError } from "../errors.js";
import { assertTenant, untilAborted } from "./abort.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import { objectFields, structuredFields } from "./structured.js";
import { type VaultAuth, VaultSession } from "./vault-auth.js";
import { malformed, statusOf, type VaultRequestContext, vaultError } from "./vault-errors.js";

/**
 * HashiCorp Vault KV. One entry per tenant, `{mount}/data/{prefix}{tenant}` on KV v2
 * (`{mount}/{prefix}{tenant}` on v1), whose keys are the secret names: one read per
 * tenant serves every reference of a run. A key holding a JSON object (as a string
 * or as an object) also exposes its fields for `${secret:name.key}`.
 */
export interface VaultBackendOptions {
  /** VAULT_ADDR, VAULT_TOKEN and VAULT_NAMESPACE are read from here. */
  env?: NodeJS.ProcessEnv | undefined;
  /** The folder a relative ca_cert is read from (runner.yaml's). */
  baseDir?: string | undefined;
  /** The clock token leases are measured on. */
  now?: () => number;
}

/** How long an idle kept-alive connection is kept (Node's global agents use the same). */
const IDLE_SOCKET_MS = 5_000;

export class VaultBackend implements SecretBackend {
  readonly type = "vault";
  readonly #client: NodeVault.client;
  readonly #config: VaultBackendConfig;
  readonly #session: VaultSession;
  readonly #namespace: string | undefined;
  readonly #httpAgent: HttpAgent;
  readonly #httpsAgent: HttpsAgent;

  constructor(config: VaultBackendConfig, options: VaultBackendOptions = {}) {
    const env = options.env ?? process.env;
    this.#config = config;
    const endpoint = config.url ?? env.VAULT_ADDR;
    if (!endpoint) {
      throw new SecretError(
        "CONFIG_INVALID",
        "runner.secrets.url is not set and VAULT_ADDR is empty: give the Vault address, e.g. https://vault.example.com:8200",
      );
    }
    this.#namespace = config.namespace ?? (env.VAULT_NAMESPACE || undefined);
    let ca: Buffer | undefined;
    if (config.ca_cert !== undefined) {
      try {
        ca = readFileSync(resolve(options.baseDir ?? ".", config.ca_cert));
      } catch (error) {
        throw new SecretError(
          "CONFIG_INVALID",
          `runner.secrets.ca_cert "${config.ca_cert}" cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`,
        );
      }
    }
    // One pool of kept-alive connections per backend, handed to node-vault (axios) with
    // every request: its own https.Agent would open a new TLS connection per request.
    // TLS settings live only here, so `verify` and `ca_cert` alone decide (node-vault
    // would also read VAULT_SKIP_VERIFY). Like Node's global agents, idle sockets are
    // dropped after 5 s, before a server or load balancer closes them under a request.
    // No maxSockets: a request abandoned on abort keeps its socket until it times out,
    // and must not make the next ones queue behind it.
    const pool = { keepAlive: true, timeout: IDLE_SOCKET_MS };
    this.#httpAgent = new HttpAgent(pool);
    this.#httpsAgent = new HttpsAgent({
      ...pool,
      rejectUnauthorized: config.verify,
      ...(ca !== undefined ? { ca } : {}),
    });
    const requestOptions = {
      timeout: config.timeout,
      httpAgent: this.#httpAgent,
      httpsAgent: this.#httpsAgent,
    };
    this.#client = nodeVault({
      endpoint,
      // node-vault's debug output prints request bodies, AppRole secret_id included.
      debug: () => {},
      requestOptions,
    });
    // node-vault falls back to VAULT_PREFIX/VAULT_NAMESPACE/VAULT_TOKEN on its own; only our config counts.
    Object.assign(this.#client, { pathPrefix: "", namespace: this.#namespace, token: undefined });
    let auth: VaultAuth;
    if (config.auth === "approle") {
      auth = { method: "approle", roleId: config.role_id ?? "", secretId: config.secret_id ?? "" };
    } else {
      const token = config.token ?? env.VAULT_TOKEN;
      if (!token) {
        throw new SecretError(
          "CONFIG_INVALID",
          "runner.secrets.token is not set and VAULT_TOKEN is empty: give a Vault token (e.g. token: ${env:VAULT_TOKEN}) or use auth: approle",
        );
      }
      auth = { method: "token", token };
    }
    this.#session = new VaultSession(
      this.#client,
      auth,
      options.now ?? Date.now,
      (what, path, capability) => this.#context(what, path, capability),
    );
  }

  /** The API path of a tenant's entry, without `/v1/`. */
  entryPath(tenant: string): string {
    const { mount_point: mount, prefix, kv_version: version } = this.#config;
    return version === 2 ? `${mount}/data/${prefix}${tenant}` : `${mount}/${prefix}${tenant}`;
  }

  locationOf(tenant: string, name: string): string {
    return `Vault path "${this.entryPath(tenant)}"${this.#where()}, key "${name}"`;
  }

  async fetch(
    tenant: string,
    names: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, FetchedSecret>> {
    assertTenant(tenant);
    const path = this.entryPath(tenant);
    const ctx = this.#context(`read of "${path}" for tenant "${tenant}"`, path, "read");
    const body = await this.#call(ctx, signal, () => this.#client.read(path));
    if (body === undefined) return new Map();
    return this.#pick(body, names, ctx);
  }

  async check(signal?: AbortSignal): Promise<void> {
    const path = "auth/token/lookup-self";
    const ctx = this.#context(`token lookup at ${path}`, path, "read");
    await this.#call(ctx, signal, () => this.#client.tokenLookupSelf());
  }

  async close(): Promise<void> {
    this.#client.stopAllRenewals?.();
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /** One request with auth, a 403 re-login for AppRole, and abort. Resolves undefined on 404. */
  async #call(
    ctx: VaultRequestContext,
    signal: AbortSignal | undefined,
    request: () => Promise<unknown>,
  ) {
    signal?.throwIfAborted();
    const attempt = async (): Promise<unknown> => {
      await this.#session.ready();
      return await request();
    };
    try {
      try {
        return await untilAborted(attempt(), signal);
      } catch (error) {
        if (statusOf(error) !== 403 || !this.#session.canRelogin) throw error;
        await this.#session.relogin();
        return await untilAborted(request(), signal);
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (statusOf(error) === 404) return undefined;
      throw vaultError(error, { ...ctx, secrets: this.#session.secrets });
    }
  }

  #pick(
    body: unknown,
    names: readonly string[],
    ctx: VaultRequestContext,
  ): Map<string, FetchedSecret> {
    if (typeof body !== "object" || body === null)
      return fail(malformed(ctx, "a body that is not JSON"));
    let data = (body as { data?: unknown }).data;
    if (this.#config.kv_version === 2) data = (data as { data?: unknown } | null | undefined)?.data;
    // KV v2 answers a deleted or destroyed version with data: null.
    if (data === null) return new Map();
    if (typeof data !== "object" || data === undefined || Array.isArray(data)) {
      return fail(malformed(ctx, "no data object"));
    }
    const found = new Map<string, FetchedSecret>();
    const entry = data as Record<string, unknown>;
    for (const name of names) {
      if (!Object.hasOwn(entry, name)) continue;
      const value = entry[name];
      if (value === null || value === undefined) continue;
      if (typeof value === "string") {
        const fields = structuredFields(value);
        found.set(name, fields ? { text: value, fields } : { text: value });
      } else if (typeof value === "object" && !Array.isArray(value)) {
        found.set(name, { text: JSON.stringify(value), fields: objectFields(value) });
      } else {
        found.set(name, {
          text:
            typeof value === "number" || typeof value === "boolean"
              ? String(value)
              : JSON.stringify(value),
        });
      }
    }
    return found;
  }

  #where(): string {
    return this.#namespace ? ` in namespace "${this.#namespace}"` : "";
  }

  #context(what: string, path: string, capability: string): VaultRequestContext {
    return {
      what,
      path,
      where: this.#where(),
      capability,
      timeoutMs: this.#config.timeout,
      secrets: [],
    };
  }
}

function fail(error: SecretError): never {
  throw error;
}
