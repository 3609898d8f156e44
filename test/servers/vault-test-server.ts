/**
 * TEST SERVER — never shipped. A small HashiCorp Vault that speaks the documented
 * HTTP API closely enough for the real `node-vault` client to run unchanged against
 * it over 127.0.0.1:
 * - KV v2 (`{mount}/data/{path}` GET/POST/PUT, `{mount}/metadata/{path}` GET and
 *   list) and KV v1 (`{mount}/{path}` GET/POST/PUT/list) secrets engines;
 * - X-Vault-Token checked on every request but sys/health and the AppRole login;
 *   per-token ACL policies (path globs with `*` and `+`, capabilities) so a 403 is
 *   a real policy decision; tokens expire on the injected clock;
 * - X-Vault-Namespace: each namespace has its own storage; a token issued in a
 *   namespace works only there (root-namespace tokens work everywhere);
 * - AppRole login, token renew-self and lookup-self; sys/health;
 * - Vault's error bodies: `{"errors":[...]}`, 403 "permission denied", 404 `{"errors":[]}`.
 * The LIST verb is not accepted (Node's HTTP parser rejects unknown methods); use
 * GET with `?list=true`, which Vault treats the same.
 * Faults (latency, 5xx, 429, hangs, dropped connections, malformed JSON) come from
 * the shared FaultInjector; requests are counted by operation. With `tls` it serves
 * HTTPS (for `verify` / `ca_cert` tests).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { FaultInjector, listen, readBody, trackSockets } from "./faults.js";

export type Capability = "create" | "read" | "update" | "delete" | "list" | "sudo" | "deny";

export interface PolicyRule {
  /** An API path without `/v1/`, e.g. `secret/data/acme`, `secret/data/*`, `secret/+/acme`. */
  path: string;
  capabilities: readonly Capability[];
}

export interface TokenOptions {
  /** `root` may do anything. */
  policies: readonly PolicyRule[] | "root";
  namespace?: string;
  ttlSeconds?: number;
  renewable?: boolean;
}

interface TokenEntry {
  policies: readonly PolicyRule[] | "root";
  namespace: string;
  ttlSeconds: number;
  renewable: boolean;
  issuedAt: number;
  expiresAt: number;
}

export interface AppRole {
  roleId: string;
  secretId: string;
  policies: readonly PolicyRule[] | "root";
  namespace?: string;
  tokenTtlSeconds?: number;
  renewable?: boolean;
}

interface KvEntry {
  versions: { data: Record<string, unknown>; created: string }[];
}

export interface VaultTestServerOptions {
  /** Mount name -> KV version. Default `{ secret: 2 }`. */
  mounts?: Record<string, 1 | 2>;
  /** The clock tokens expire on (ms since epoch). */
  now?: () => number;
  /** Serve HTTPS with this certificate chain (PEM) and key; the URL becomes https://. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface VaultTestServer {
  readonly url: string;
  readonly rootToken: string;
  readonly faults: FaultInjector;
  createToken(options: TokenOptions): string;
  revokeToken(token: string): void;
  addAppRole(role: AppRole): void;
  /** Writes straight into storage (a new version on KV v2). */
  seed(
    path: string,
    data: Record<string, unknown>,
    options?: { mount?: string; namespace?: string },
  ): void;
  /** Every token value the server ever issued, for "no token in messages" checks. */
  issuedTokens(): string[];
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
};

const vaultError = (res: ServerResponse, status: number, errors: string[]): void =>
  json(res, status, { errors });

function globMatches(pattern: string, path: string): boolean {
  const prefix = pattern.endsWith("*");
  const body = prefix ? pattern.slice(0, -1) : pattern;
  const patternParts = body.split("/");
  const pathParts = path.split("/");
  if (!prefix && patternParts.length !== pathParts.length) return false;
  if (prefix && pathParts.length < patternParts.length) return false;
  for (let i = 0; i < patternParts.length; i++) {
    const p = patternParts[i]!;
    const s = pathParts[i]!;
    const last = i === patternParts.length - 1;
    if (p === "+") continue;
    if (prefix && last) {
      if (!s.startsWith(p)) return false;
    } else if (p !== s) return false;
  }
  return true;
}

function allowed(
  policies: readonly PolicyRule[] | "root",
  path: string,
  capability: Capability,
): boolean {
  if (policies === "root") return true;
  // Vault picks the most specific matching rule; longest non-glob pattern is a fair stand-in.
  const matching = policies
    .filter((rule) => globMatches(rule.path, path))
    .sort((a, b) => b.path.replace(/[*+]/g, "").length - a.path.replace(/[*+]/g, "").length);
  const best = matching[0];
  if (!best || best.capabilities.includes("deny")) return false;
  return best.capabilities.includes(capability);
}

export async function startVaultTestServer(
  options: VaultTestServerOptions = {},
): Promise<VaultTestServer> {
  const mounts = options.mounts ?? { secret: 2 };
  const now = options.now ?? Date.now;
  const faults = new FaultInjector();
  const tokens = new Map<string, TokenEntry>();
  const issued: string[] = [];
  const approles = new Map<string, AppRole>();
  const storage = new Map<string, Map<string, KvEntry>>();

  const createToken = (opts: TokenOptions): string => {
    const token = `hvs.${randomUUID().replaceAll("-", "")}`;
    const ttlSeconds = opts.ttlSeconds ?? 0;
    tokens.set(token, {
      policies: opts.policies,
      namespace: normalizeNamespace(opts.namespace),
      ttlSeconds,
      renewable: opts.renewable ?? ttlSeconds > 0,
      issuedAt: now(),
      expiresAt: ttlSeconds > 0 ? now() + ttlSeconds * 1000 : Number.POSITIVE_INFINITY,
    });
    issued.push(token);
    return token;
  };
  const rootToken = createToken({ policies: "root" });

  const store = (namespace: string, mount: string): Map<string, KvEntry> => {
    const key = `${namespace}\u0000${mount}`;
    let map = storage.get(key);
    if (!map) {
      map = new Map();
      storage.set(key, map);
    }
    return map;
  };

  const writeKv = (
    namespace: string,
    mount: string,
    path: string,
    data: Record<string, unknown>,
  ): KvEntry => {
    const map = store(namespace, mount);
    const entry = map.get(path) ?? { versions: [] };
    const version = { data: structuredClone(data), created: new Date(now()).toISOString() };
    if (mounts[mount] === 1) entry.versions = [version];
    else entry.versions.push(version);
    map.set(path, entry);
    return entry;
  };

  const envelope = (data: unknown, extra: Record<string, unknown> = {}) => ({
    request_id: randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
    mount_type: "kv",
    ...extra,
  });

  const authBlock = (token: string, entry: TokenEntry) => ({
    client_token: token,
    accessor: `acc.${token.slice(-8)}`,
    policies: entry.policies === "root" ? ["root"] : ["default", "duckcron"],
    token_policies: entry.policies === "root" ? ["root"] : ["default", "duckcron"],
    metadata: null,
    lease_duration: entry.ttlSeconds,
    renewable: entry.renewable,
    entity_id: "",
    token_type: "service",
    orphan: true,
  });

  const operationOf = (method: string, path: string, list: boolean): string => {
    if (path === "sys/health") return "sys.health";
    if (path.startsWith("auth/approle/login")) return "approle.login";
    if (path === "auth/token/renew-self") return "token.renew-self";
    if (path === "auth/token/lookup-self") return "token.lookup-self";
    if (list) return "kv.list";
    if (method === "GET") return path.split("/")[1] === "metadata" ? "kv.metadata" : "kv.read";
    if (method === "DELETE") return "kv.delete";
    return "kv.write";
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://vault");
    const method = (req.method ?? "GET").toUpperCase();
    const body = await readBody(req);
    if (!url.pathname.startsWith("/v1/")) return vaultError(res, 404, []);
    const path = decodeURIComponent(url.pathname.slice(4)).replace(/\/+$/, "");
    const list = url.searchParams.get("list") === "true" || url.searchParams.get("list") === "1";
    const operation = operationOf(method, path, list);
    faults.count(operation);
    await faults.delay();
    const fault = faults.take(operation);
    if (fault && faults.applyTransport(fault, req, res)) return;
    if (fault === "unavailable") return vaultError(res, 503, ["Vault is sealed"]);
    if (fault === "throttle") {
      return vaultError(res, 429, [`request path "${path}": rate limit quota exceeded`]);
    }
    if (fault === "malformed") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"request_id":"x","data":{"data":{"oops"');
      return;
    }

    if (path === "sys/health") {
      return json(res, 200, {
        initialized: true,
        sealed: false,
        standby: false,
        performance_standby: false,
        replication_performance_mode: "disabled",
        replication_dr_mode: "disabled",
        server_time_utc: Math.floor(now() / 1000),
        version: "1.17.0-test",
        cluster_name: "vault-test-server",
        cluster_id: "00000000-0000-0000-0000-000000000000",
      });
    }

    const namespace = normalizeNamespace(req.headers["x-vault-namespace"] as string | undefined);
    let payload: Record<string, unknown> = {};
    if (body.length > 0) {
      try {
        payload = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
      } catch {
        return vaultError(res, 400, ["failed to parse JSON input: invalid character"]);
      }
    }

    if (path.startsWith("auth/approle/login") && method !== "GET") {
      const role = approles.get(String(payload.role_id ?? ""));
      if (!role || normalizeNamespace(role.namespace) !== namespace)
        return vaultError(res, 400, ["invalid role ID"]);
      if (role.secretId !== payload.secret_id) return vaultError(res, 400, ["invalid secret id"]);
      const token = createToken({
        policies: role.policies,
        namespace: role.namespace,
        ttlSeconds: role.tokenTtlSeconds ?? 3600,
        renewable: role.renewable ?? true,
      });
      return json(
        res,
        200,
        envelope(null, { auth: authBlock(token, tokens.get(token)!), mount_type: "" }),
      );
    }

    const token = req.headers["x-vault-token"];
    const entry = typeof token === "string" ? tokens.get(token) : undefined;
    const valid =
      entry !== undefined &&
      entry.expiresAt > now() &&
      (entry.namespace === "" || entry.namespace === namespace);
    if (!valid || typeof token !== "string") return vaultError(res, 403, ["permission denied"]);

    if (path === "auth/token/lookup-self") {
      return json(
        res,
        200,
        envelope(
          {
            accessor: `acc.${token.slice(-8)}`,
            creation_time: Math.floor(entry.issuedAt / 1000),
            creation_ttl: entry.ttlSeconds,
            display_name: "token",
            expire_time: Number.isFinite(entry.expiresAt)
              ? new Date(entry.expiresAt).toISOString()
              : null,
            explicit_max_ttl: 0,
            id: token,
            meta: null,
            num_uses: 0,
            orphan: true,
            path: "auth/token/create",
            policies: entry.policies === "root" ? ["root"] : ["default", "duckcron"],
            renewable: entry.renewable,
            ttl: Number.isFinite(entry.expiresAt)
              ? Math.max(0, Math.floor((entry.expiresAt - now()) / 1000))
              : 0,
            type: "service",
          },
          { mount_type: "token" },
        ),
      );
    }
    if (path === "auth/token/renew-self") {
      if (!entry.renewable) return vaultError(res, 400, ["lease is not renewable"]);
      const increment = Number(payload.increment ?? entry.ttlSeconds);
      entry.expiresAt = now() + increment * 1000;
      return json(res, 200, envelope(null, { auth: authBlock(token, entry), mount_type: "token" }));
    }

    const [mount, ...restParts] = path.split("/");
    const version = mount === undefined ? undefined : mounts[mount];
    if (mount === undefined || version === undefined) {
      return vaultError(res, 404, [`no handler for route "${path}". route entry not found.`]);
    }
    let kind: "data" | "metadata" = "data";
    let rest = restParts;
    if (version === 2) {
      if (restParts[0] !== "data" && restParts[0] !== "metadata") {
        return vaultError(res, 404, [`no handler for route "${path}". route entry not found.`]);
      }
      kind = restParts[0];
      rest = restParts.slice(1);
    }
    const key = rest.join("/");
    const map = store(namespace, mount);

    if (list) {
      if (!allowed(entry.policies, path, "list"))
        return vaultError(res, 403, ["permission denied"]);
      const prefix = key === "" ? "" : `${key}/`;
      const keys = new Set<string>();
      for (const stored of map.keys()) {
        if (!stored.startsWith(prefix)) continue;
        const tail = stored.slice(prefix.length);
        const slash = tail.indexOf("/");
        keys.add(slash < 0 ? tail : tail.slice(0, slash + 1));
      }
      if (keys.size === 0) return vaultError(res, 404, []);
      return json(res, 200, envelope({ keys: [...keys].sort() }));
    }

    if (method === "GET") {
      if (!allowed(entry.policies, path, "read"))
        return vaultError(res, 403, ["permission denied"]);
      const stored = map.get(key);
      if (!stored || stored.versions.length === 0) return vaultError(res, 404, []);
      if (version === 1)
        return json(res, 200, envelope(stored.versions[0]!.data, { lease_duration: 2764800 }));
      const metadataOf = (n: number) => ({
        created_time: stored.versions[n - 1]!.created,
        custom_metadata: null,
        deletion_time: "",
        destroyed: false,
        version: n,
      });
      if (kind === "metadata") {
        const versions: Record<string, unknown> = {};
        stored.versions.forEach((_, i) => {
          versions[String(i + 1)] = metadataOf(i + 1);
        });
        return json(
          res,
          200,
          envelope({
            cas_required: false,
            current_version: stored.versions.length,
            max_versions: 0,
            oldest_version: 1,
            versions,
          }),
        );
      }
      const wanted =
        Number(url.searchParams.get("version") ?? stored.versions.length) || stored.versions.length;
      const picked = stored.versions[wanted - 1];
      if (!picked) return vaultError(res, 404, []);
      return json(res, 200, envelope({ data: picked.data, metadata: metadataOf(wanted) }));
    }

    if (method === "POST" || method === "PUT") {
      const capability: Capability = map.has(key) ? "update" : "create";
      if (!allowed(entry.policies, path, capability))
        return vaultError(res, 403, ["permission denied"]);
      if (version === 1) {
        writeKv(namespace, mount, key, payload);
        res.writeHead(204).end();
        return;
      }
      if (kind !== "data") return vaultError(res, 405, ["unsupported operation"]);
      const data = payload.data;
      if (data === null || typeof data !== "object" || Array.isArray(data)) {
        return vaultError(res, 400, ["no data provided"]);
      }
      const written = writeKv(namespace, mount, key, data as Record<string, unknown>);
      return json(
        res,
        200,
        envelope({
          created_time: written.versions.at(-1)!.created,
          custom_metadata: null,
          deletion_time: "",
          destroyed: false,
          version: written.versions.length,
        }),
      );
    }

    if (method === "DELETE") {
      if (!allowed(entry.policies, path, "delete"))
        return vaultError(res, 403, ["permission denied"]);
      map.delete(key);
      res.writeHead(204).end();
      return;
    }
    return vaultError(res, 405, ["unsupported operation"]);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) vaultError(res, 500, [`internal error: ${(error as Error).message}`]);
    });
  };
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createServer(onRequest);
  const close = trackSockets(server, faults);
  const url = await listen(server);

  return {
    url,
    rootToken,
    faults,
    createToken,
    revokeToken: (token) => {
      tokens.delete(token);
    },
    addAppRole: (role) => {
      approles.set(role.roleId, role);
    },
    seed: (path, data, opts = {}) => {
      writeKv(normalizeNamespace(opts.namespace), opts.mount ?? "secret", path, data);
    },
    issuedTokens: () => [...issued],
    close,
  };
}

function normalizeNamespace(namespace: string | undefined): string {
  return (namespace ?? "").replace(/^\/+|\/+$/g, "");
}
