/**
 * TEST SERVER — never shipped. A small Azure Key Vault and Microsoft Entra token
 * endpoint, faithful enough for the real `@azure/keyvault-secrets` and
 * `@azure/identity` to run unchanged against it over 127.0.0.1:
 * - Key Vault: `GET /secrets/{name}[/{version}]?api-version=...` answering
 *   `{"value","id","attributes":{"enabled","created","updated","exp","nbf",...}}`;
 *   names compared case-insensitively; `PUT /secrets/{name}` to store a version.
 * - The challenge flow: a request without a bearer token gets 401 with
 *   `WWW-Authenticate: Bearer authorization="{authority}/{tenant}", resource="https://vault.azure.net"`
 *   (the client sends its first request without a token on purpose); a token must
 *   come from this server's token endpoint, for the vault resource, unexpired.
 * - Entra: `GET /{tenant}/v2.0/.well-known/openid-configuration` (MSAL reads the
 *   token endpoint from it) and `POST /{tenant}/oauth2/v2.0/token` with the client
 *   credentials grant; a wrong secret is 401 invalid_client (AADSTS7000215), an
 *   unknown client 400 unauthorized_client (AADSTS700016).
 * - Azure's error JSON `{"error":{"code","message","innererror":{"code"}}}`:
 *   SecretNotFound (404), Forbidden with ForbiddenByRbac or SecretDisabled (403),
 *   Unauthorized (401), Throttled (429 with Retry-After), InternalServerError (500).
 * HTTPS with a throwaway CA (MSAL refuses an http:// authority); `plainHttp` adds an
 * http:// listener for the vault API. Faults (latency, 5xx, throttling, hangs,
 * dropped connections, malformed JSON) come from the shared FaultInjector, per
 * operation: GetSecret, SetSecret, token, metadata.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { FaultInjector, listen, readBody, trackSockets } from "./faults.js";
import { makeTestCertificates, type TestCertificates } from "./test-certs.js";

export interface AzureClient {
  clientId: string;
  clientSecret: string;
  /** Vault secret names (exact, or prefixes ending in `*`) this client may not get. */
  deny?: readonly string[];
}

export interface AzureTestServerOptions {
  tenantId?: string;
  clients?: readonly AzureClient[];
  /** Also serve the vault API over plain HTTP at `httpUrl`. */
  plainHttp?: boolean;
  /** Seconds the service asks a throttled client to wait. */
  retryAfterSeconds?: number;
  /** The caller's certificates, kept after close (so ca_cert stays readable); fresh ones otherwise. */
  certificates?: TestCertificates;
}

export interface SecretAttributes {
  enabled?: boolean;
  /** Expiry, as a Date. */
  expires?: Date;
  notBefore?: Date;
}

export interface AzureTestServer {
  /** https:// vault URL and authority host at once. */
  readonly url: string;
  /** http:// vault URL (with `plainHttp`). */
  readonly httpUrl: string | undefined;
  readonly tenantId: string;
  /** The default client's credentials. */
  readonly client: { clientId: string; clientSecret: string };
  /** PEM file of the CA that signed the server's certificate, for `ca_cert`. */
  readonly caPath: string;
  readonly faults: FaultInjector;
  /** Stores a new current version of a secret. */
  seed(name: string, value: string, attributes?: SecretAttributes): void;
  /** Tokens issued so far. */
  tokensIssued(): number;
  close(): Promise<void>;
}

interface Version {
  id: string;
  value: string;
  attributes: SecretAttributes;
  created: number;
}

class AzureFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly inner?: string,
  ) {
    super(message);
  }
}

const VAULT_RESOURCE = "https://vault.azure.net";
const API_VERSIONS = /^(7\.\d|20\d\d-\d\d-\d\d)(-preview(\.\d+)?)?$/;
const NAME = /^[0-9A-Za-z-]{1,127}$/;
const TOKEN_SECONDS = 3599;

export async function startAzureTestServer(
  options: AzureTestServerOptions = {},
): Promise<AzureTestServer> {
  const tenantId = options.tenantId ?? "72f988bf-86f1-41af-91ab-2d7cd011db47";
  const clients = options.clients ?? [
    { clientId: "11111111-2222-3333-4444-555555555555", clientSecret: "duckcron~test~secret" },
  ];
  const retryAfter = options.retryAfterSeconds ?? 1;
  const certs = options.certificates ?? makeTestCertificates();
  const faults = new FaultInjector();
  const secrets = new Map<string, { name: string; versions: Version[] }>();
  const tokens = new Map<string, { client: AzureClient; expires: number }>();
  let issued = 0;
  let httpsUrl = "";

  const send = (
    res: ServerResponse,
    status: number,
    payload: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = JSON.stringify(payload);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "x-ms-request-id": randomUUID(),
      "x-ms-keyvault-service-version": "1.9.0.0",
      ...headers,
    });
    res.end(text);
  };
  const sendFault = (res: ServerResponse, fault: AzureFault, headers?: Record<string, string>) =>
    send(
      res,
      fault.status,
      {
        error: {
          code: fault.code,
          message: fault.message,
          ...(fault.inner ? { innererror: { code: fault.inner } } : {}),
        },
      },
      headers,
    );
  const challenge = () => ({
    "www-authenticate": `Bearer authorization="${httpsUrl}/${tenantId}", resource="${VAULT_RESOURCE}"`,
  });

  const secretBundle = (host: string, name: string, version: Version) => {
    const a = version.attributes;
    return {
      value: version.value,
      id: `${host}/secrets/${name}/${version.id}`,
      attributes: {
        enabled: a.enabled ?? true,
        ...(a.notBefore ? { nbf: Math.floor(a.notBefore.getTime() / 1000) } : {}),
        ...(a.expires ? { exp: Math.floor(a.expires.getTime() / 1000) } : {}),
        created: version.created,
        updated: version.created,
        recoveryLevel: "Recoverable+Purgeable",
        recoverableDays: 90,
      },
      tags: {},
    };
  };

  const bearer = (req: IncomingMessage): AzureClient | undefined => {
    const auth = req.headers.authorization;
    if (typeof auth !== "string" || !/^Bearer /i.test(auth)) return undefined;
    const entry = tokens.get(auth.slice("Bearer ".length).trim());
    if (!entry || entry.expires < Date.now()) {
      throw new AzureFault(401, "Unauthorized", "AKV10032: Invalid issuer or expired token.");
    }
    return entry.client;
  };

  const vault = async (req: IncomingMessage, res: ServerResponse, url: URL, host: string) => {
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const operation = req.method === "PUT" ? "SetSecret" : "GetSecret";
    faults.count(operation);
    await faults.delay();
    const fault = faults.take(operation);
    if (fault && faults.applyTransport(fault, req, res)) return;
    if (fault === "unavailable") {
      return sendFault(
        res,
        new AzureFault(500, "InternalServerError", "An internal server error occurred."),
      );
    }
    if (fault === "throttle") {
      return sendFault(
        res,
        new AzureFault(
          429,
          "Throttled",
          "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        ),
        { "retry-after": String(retryAfter) },
      );
    }
    if (fault === "malformed") {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end('{"value":"{\\"unterminated');
      return;
    }
    const body = await readBody(req);
    const apiVersion = url.searchParams.get("api-version");
    if (!apiVersion || !API_VERSIONS.test(apiVersion)) {
      throw new AzureFault(
        400,
        "BadParameter",
        `The specified version (${apiVersion ?? ""}) is not recognized. Consider using the latest supported version (2025-07-01).`,
      );
    }
    const client = bearer(req);
    if (!client) {
      return sendFault(
        res,
        new AzureFault(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
        challenge(),
      );
    }
    if (parts[0] !== "secrets" || parts.length < 2 || parts.length > 3) {
      throw new AzureFault(404, "NotFound", "The requested resource was not found.");
    }
    const name = parts[1] as string;
    if (!NAME.test(name)) {
      throw new AzureFault(
        400,
        "BadParameter",
        "The request URI contains an invalid name: Secret names may only contain alphanumeric characters and dashes",
      );
    }
    const key = name.toLowerCase();
    const denied = (client.deny ?? []).some((d) =>
      d.endsWith("*") ? key.startsWith(d.slice(0, -1).toLowerCase()) : d.toLowerCase() === key,
    );
    if (req.method === "PUT") {
      const input = JSON.parse(body.toString("utf8")) as { value?: unknown };
      if (typeof input.value !== "string") {
        throw new AzureFault(400, "BadParameter", "Property value is required.");
      }
      const version = store(name, input.value);
      return send(res, 200, secretBundle(host, name, version));
    }
    if (req.method !== "GET") throw new AzureFault(405, "MethodNotAllowed", "Method not allowed.");
    if (denied) {
      throw new AzureFault(
        403,
        "Forbidden",
        `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${client.clientId}\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: '/secrets/${key}'`,
        "ForbiddenByRbac",
      );
    }
    const secret = secrets.get(key);
    const version =
      parts[2] === undefined || parts[2] === ""
        ? secret?.versions.at(-1)
        : secret?.versions.find((v) => v.id === parts[2]);
    if (!secret || !version) {
      throw new AzureFault(
        404,
        "SecretNotFound",
        `A secret with (name/id) ${name}${parts[2] ? `/${parts[2]}` : ""} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      );
    }
    if (version.attributes.enabled === false) {
      throw new AzureFault(
        403,
        "Forbidden",
        "Operation get is not allowed on a disabled secret.",
        "SecretDisabled",
      );
    }
    send(res, 200, secretBundle(host, secret.name, version));
  };

  const entra = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const [tenant, ...rest] = url.pathname.split("/").filter(Boolean);
    const path = rest.join("/");
    const operation = path === "oauth2/v2.0/token" ? "token" : "metadata";
    faults.count(operation);
    await faults.delay();
    const fault = faults.take(operation);
    if (fault && faults.applyTransport(fault, req, res)) return;
    if (fault === "unavailable" || fault === "throttle") {
      return send(res, fault === "throttle" ? 429 : 503, {
        error: "temporarily_unavailable",
        error_description: "AADSTS50196: The server is temporarily unavailable.",
        error_codes: [50196],
      });
    }
    if (tenant !== tenantId) {
      return send(res, 400, {
        error: "invalid_tenant",
        error_description: `AADSTS90002: Tenant '${tenant}' not found.`,
        error_codes: [90002],
      });
    }
    const base = `${httpsUrl}/${tenantId}`;
    if (req.method === "GET" && path === "v2.0/.well-known/openid-configuration") {
      return send(res, 200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt"],
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"],
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        scopes_supported: ["openid", "profile", "email", "offline_access"],
        issuer: `${base}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${httpsUrl}/oidc/userinfo`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ["sub", "iss", "aud", "exp", "iat", "tid"],
        kerberos_endpoint: `${base}/kerberos`,
        tenant_region_scope: "EU",
        cloud_instance_name: "microsoftonline.com",
        cloud_graph_host_name: "graph.windows.net",
        msgraph_host: "graph.microsoft.com",
      });
    }
    if (req.method === "POST" && operation === "token") {
      const form = new URLSearchParams((await readBody(req)).toString("utf8"));
      if (form.get("grant_type") !== "client_credentials") {
        return send(res, 400, {
          error: "unsupported_grant_type",
          error_description: "AADSTS70003: The app requested an unsupported grant type.",
          error_codes: [70003],
        });
      }
      const client = clients.find((c) => c.clientId === form.get("client_id"));
      if (!client) {
        return send(res, 400, {
          error: "unauthorized_client",
          error_description: `AADSTS700016: Application with identifier '${form.get("client_id")}' was not found in the directory '${tenantId}'.`,
          error_codes: [700016],
        });
      }
      if (form.get("client_secret") !== client.clientSecret) {
        return send(res, 401, {
          error: "invalid_client",
          error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${client.clientId}'.`,
          error_codes: [7000215],
        });
      }
      const scopes = (form.get("scope") ?? "").split(" ");
      if (!scopes.includes(`${VAULT_RESOURCE}/.default`)) {
        return send(res, 400, {
          error: "invalid_scope",
          error_description: `AADSTS70011: The provided value for the input parameter 'scope' is not valid. (${form.get("scope")})`,
          error_codes: [70011],
        });
      }
      const token = randomBytes(24).toString("base64url");
      tokens.set(token, { client, expires: Date.now() + TOKEN_SECONDS * 1000 });
      issued += 1;
      return send(res, 200, {
        token_type: "Bearer",
        expires_in: TOKEN_SECONDS,
        ext_expires_in: TOKEN_SECONDS,
        access_token: token,
      });
    }
    send(res, 404, { error: "not_found", error_description: "AADSTS90011: Not found." });
  };

  const store = (name: string, value: string, attributes: SecretAttributes = {}): Version => {
    const key = name.toLowerCase();
    const secret = secrets.get(key) ?? { name, versions: [] };
    const version = {
      id: randomBytes(16).toString("hex"),
      value,
      attributes,
      created: Math.floor(Date.now() / 1000),
    };
    secret.versions.push(version);
    secrets.set(key, secret);
    return version;
  };

  const handler = (scheme: string) => (req: IncomingMessage, res: ServerResponse) => {
    const host = `${scheme}://${req.headers.host ?? "127.0.0.1"}`;
    const url = new URL(req.url ?? "/", host);
    const work = url.pathname.startsWith("/secrets")
      ? vault(req, res, url, host)
      : entra(req, res, url);
    work.catch((error: unknown) => {
      if (res.headersSent) return;
      // Key Vault repeats the challenge with every 401.
      if (error instanceof AzureFault)
        return sendFault(res, error, error.status === 401 ? challenge() : {});
      sendFault(
        res,
        new AzureFault(500, "InternalServerError", "An internal server error occurred."),
      );
    });
  };

  const https = createHttpsServer({ cert: certs.cert, key: certs.key }, handler("https"));
  const closeHttps = trackSockets(https, faults);
  httpsUrl = await listen(https);
  let httpUrl: string | undefined;
  let closeHttp = async () => {};
  if (options.plainHttp) {
    const http = createServer(handler("http"));
    closeHttp = trackSockets(http, faults);
    httpUrl = await listen(http);
  }
  const first = clients[0] as AzureClient;
  return {
    url: httpsUrl,
    httpUrl,
    tenantId,
    client: { clientId: first.clientId, clientSecret: first.clientSecret },
    caPath: certs.caPath,
    faults,
    seed: (name, value, attributes) => {
      store(name, value, attributes);
    },
    tokensIssued: () => issued,
    close: async () => {
      await Promise.all([closeHttps(), closeHttp()]);
      if (!options.certificates) certs.remove();
    },
  };
}
