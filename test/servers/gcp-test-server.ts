/**
 * TEST SERVER — never shipped. A small Google Cloud Secret Manager (REST, v1) and
 * the Security Token Service it takes tokens from, close enough for the real
 * google-auth-library and duckcron's GCP backend to run unchanged over 127.0.0.1:
 * - `GET /v1/projects/{p}/secrets/{s}/versions/{v}:access`: `latest` (the most
 *   recently created version, even when it is disabled), a version number or an alias; `{name, payload: {data (base64), dataCrc32c (int64 as a
 *   decimal string)}}`; disabled versions are FAILED_PRECONDITION;
 * - `GET /v1/projects/{p}/secrets?pageSize=`: the first page of the secret list;
 * - `POST /v1/token`: STS token exchange (RFC 8693) as an `external_account`
 *   credentials file drives it; only the subject token the test holds earns an
 *   access token, and only issued access tokens are accepted as `Bearer`;
 * - Google's error JSON `{"error": {"code", "message", "status"}}` with its
 *   statuses: UNAUTHENTICATED, PERMISSION_DENIED (per-token deny lists), NOT_FOUND.
 * The project may be named by id or by number, as with the real service; answers
 * name it by number. Faults (latency, 503 UNAVAILABLE, 429 RESOURCE_EXHAUSTED,
 * hangs, dropped connections, malformed JSON) come from the shared FaultInjector;
 * requests are counted by operation: AccessSecretVersion, ListSecrets, token.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import crc32c from "crc-32/crc32c";
import { FaultInjector, listen, readBody, trackSockets } from "./faults.js";

export interface GcpTestServer {
  readonly url: string;
  readonly projectId: string;
  readonly projectNumber: string;
  readonly faults: FaultInjector;
  /** Adds an enabled version (creating the secret when needed) and returns its number. */
  seed(id: string, value: string | Buffer): number;
  /** Gives the version an alias, as `version: <alias>` reads it. */
  alias(id: string, alias: string, version: number): void;
  disable(id: string, version: number): void;
  /** Answers for this secret carry a dataCrc32c that does not match the data. */
  corrupt(id: string): void;
  /**
   * Writes an external_account credentials file (and its subject token file) into
   * `dir`. Tokens exchanged with it may not read ids starting with any `deny` prefix.
   */
  credentialsFile(dir: string, options?: { deny?: readonly string[]; subject?: string }): string;
  /** Access tokens issued so far. */
  readonly issued: number;
  close(): Promise<void>;
}

interface Version {
  number: number;
  data: Buffer;
  enabled: boolean;
}

interface Secret {
  id: string;
  versions: Version[];
  aliases: Map<string, number>;
  corrupt: boolean;
  created: string;
}

class GoogleFault extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

export async function startGcpTestServer(
  options: { projectId?: string; projectNumber?: string } = {},
): Promise<GcpTestServer> {
  const projectId = options.projectId ?? "duckcron-test";
  const projectNumber = options.projectNumber ?? "123456789012";
  const faults = new FaultInjector();
  const secrets = new Map<string, Secret>();
  /** Subject token -> the deny prefixes of what it is exchanged for. */
  const subjects = new Map<string, readonly string[]>();
  /** Access token -> deny prefixes. */
  const tokens = new Map<string, readonly string[]>();

  const secretName = (id: string) => `projects/${projectNumber}/secrets/${id}`;

  const authenticate = (req: IncomingMessage): readonly string[] => {
    const header = String(req.headers.authorization ?? "");
    const deny = header.startsWith("Bearer ") ? tokens.get(header.slice(7)) : undefined;
    if (deny === undefined) {
      throw new GoogleFault(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
      );
    }
    return deny;
  };

  const project = (given: string) => {
    if (given !== projectId && given !== projectNumber) {
      throw new GoogleFault(
        403,
        "PERMISSION_DENIED",
        `Permission denied on resource project ${given}.`,
      );
    }
  };

  const access = (given: string, id: string, version: string, deny: readonly string[]) => {
    project(given);
    const resource = `projects/${given}/secrets/${id}/versions/${version}`;
    if (deny.some((prefix) => id.startsWith(prefix))) {
      throw new GoogleFault(
        403,
        "PERMISSION_DENIED",
        `Permission 'secretmanager.versions.access' denied for resource '${resource}' (or it may not exist).`,
      );
    }
    const secret = secrets.get(id);
    let found: Version | undefined;
    // `latest` is the most recently created version, enabled or not.
    if (version === "latest") found = secret?.versions.at(-1);
    else if (/^[0-9]+$/.test(version)) found = secret?.versions[Number(version) - 1];
    else {
      const number = secret?.aliases.get(version);
      found = number === undefined ? undefined : secret?.versions[number - 1];
    }
    if (!secret || !found) {
      throw new GoogleFault(
        404,
        "NOT_FOUND",
        version === "latest"
          ? `Secret [${secretName(id)}] not found or has no versions.`
          : `Secret Version [${secretName(id)}/versions/${version}] not found.`,
      );
    }
    if (!found.enabled) {
      throw new GoogleFault(
        400,
        "FAILED_PRECONDITION",
        `Secret Version [${secretName(id)}/versions/${found.number}] is in DISABLED state.`,
      );
    }
    const crc = crc32c.buf(found.data) >>> 0;
    return {
      name: `${secretName(id)}/versions/${found.number}`,
      payload: {
        data: found.data.toString("base64"),
        dataCrc32c: String(secret.corrupt ? (crc + 1) >>> 0 : crc),
      },
    };
  };

  const list = (given: string, pageSize: number) => {
    project(given);
    const all = [...secrets.values()];
    const page = all.slice(0, Math.max(1, Math.min(pageSize || 25_000, 25_000)));
    return {
      secrets: page.map((s) => ({
        name: secretName(s.id),
        replication: { automatic: {} },
        createTime: s.created,
        etag: `"${s.created}"`,
      })),
      ...(page.length < all.length ? { nextPageToken: String(page.length) } : {}),
      totalSize: all.length,
    };
  };

  /** RFC 8693 as Google's STS speaks it; errors are OAuth's shape, not Google's. */
  const exchange = (res: ServerResponse, body: Buffer) => {
    const form = new URLSearchParams(body.toString("utf8"));
    const deny = subjects.get(form.get("subject_token") ?? "");
    if (form.get("grant_type") !== TOKEN_EXCHANGE || deny === undefined) {
      return sendJson(res, 400, {
        error: "invalid_grant",
        error_description: "The subject token is invalid or has expired.",
      });
    }
    const token = `ya29.test-${randomBytes(12).toString("hex")}`;
    tokens.set(token, deny);
    sendJson(res, 200, {
      access_token: token,
      issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
      token_type: "Bearer",
      expires_in: 3600,
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", "http://gcp");
    const accessPath =
      /^\/v1\/projects\/([^/]+)\/secrets\/([^/]+)\/versions\/([^/:]+):access$/.exec(url.pathname);
    const listPath = /^\/v1\/projects\/([^/]+)\/secrets$/.exec(url.pathname);
    const operation = accessPath
      ? "AccessSecretVersion"
      : listPath
        ? "ListSecrets"
        : url.pathname === "/v1/token"
          ? "token"
          : "unknown";
    faults.count(operation);
    await faults.delay();
    const fault = faults.take(operation);
    if (fault && faults.applyTransport(fault, req, res)) return;
    try {
      if (fault === "unavailable")
        throw new GoogleFault(503, "UNAVAILABLE", "The service is currently unavailable.");
      if (fault === "throttle") {
        throw new GoogleFault(
          429,
          "RESOURCE_EXHAUSTED",
          "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute per project' of service 'secretmanager.googleapis.com'.",
        );
      }
      if (fault === "malformed") {
        res.writeHead(200, { "content-type": "application/json; charset=UTF-8" });
        res.end('{"name":"projects/1/secrets/x/versions/1","payload":{"data":"dW5');
        return;
      }
      if (operation === "token" && req.method === "POST") return exchange(res, body);
      if (req.method !== "GET" || operation === "unknown" || operation === "token") {
        throw new GoogleFault(404, "NOT_FOUND", `Method not found: ${req.method} ${url.pathname}`);
      }
      const deny = authenticate(req);
      if (accessPath) {
        const [, given, id, version] = accessPath.map(decodeURIComponent) as [
          string,
          string,
          string,
          string,
        ];
        return sendJson(res, 200, access(given, id, version, deny));
      }
      const [, given] = listPath as RegExpExecArray;
      if (deny.length > 0) {
        throw new GoogleFault(
          403,
          "PERMISSION_DENIED",
          `Permission 'secretmanager.secrets.list' denied for resource 'projects/${given}' (or it may not exist).`,
        );
      }
      return sendJson(res, 200, list(String(given), Number(url.searchParams.get("pageSize"))));
    } catch (error) {
      if (!(error instanceof GoogleFault)) throw error;
      sendJson(res, error.code, {
        error: { code: error.code, message: error.message, status: error.status },
      });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const close = trackSockets(server, faults);
  const url = await listen(server);

  const secretOf = (id: string): Secret => {
    let secret = secrets.get(id);
    if (!secret) {
      secret = {
        id,
        versions: [],
        aliases: new Map(),
        corrupt: false,
        created: new Date().toISOString(),
      };
      secrets.set(id, secret);
    }
    return secret;
  };

  return {
    url,
    projectId,
    projectNumber,
    faults,
    seed(id, value) {
      const secret = secretOf(id);
      const data = typeof value === "string" ? Buffer.from(value, "utf8") : value;
      secret.versions.push({ number: secret.versions.length + 1, data, enabled: true });
      return secret.versions.length;
    },
    alias(id, alias, version) {
      secretOf(id).aliases.set(alias, version);
    },
    disable(id, version) {
      const found = secretOf(id).versions[version - 1];
      if (found) found.enabled = false;
    },
    corrupt(id) {
      secretOf(id).corrupt = true;
    },
    credentialsFile(dir, { deny = [], subject = randomBytes(16).toString("hex") } = {}) {
      subjects.set(subject, deny);
      const tokenFile = join(dir, `subject-${subject.slice(0, 8)}.jwt`);
      writeFileSync(tokenFile, subject);
      const file = join(dir, `gcp-credentials-${subject.slice(0, 8)}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          type: "external_account",
          audience: `//iam.googleapis.com/projects/${projectNumber}/locations/global/workloadIdentityPools/duckcron/providers/test`,
          subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
          token_url: `${url}/v1/token`,
          credential_source: { file: tokenFile },
        }),
      );
      return file;
    },
    get issued() {
      return tokens.size;
    },
    close,
  };
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    "content-type": "application/json; charset=UTF-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
