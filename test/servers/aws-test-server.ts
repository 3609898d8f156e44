/**
 * TEST SERVER — never shipped. A small AWS Secrets Manager that speaks the
 * documented JSON 1.1 protocol (POST /, `X-Amz-Target: secretsmanager.<Operation>`,
 * `application/x-amz-json-1.1`) closely enough for the real
 * `@aws-sdk/client-secrets-manager` to run unchanged against it over 127.0.0.1:
 * - GetSecretValue (VersionId / VersionStage, AWSCURRENT by default), BatchGetSecretValue
 *   (SecretIdList of 1-20 ids with a per-id `Errors` list, or name Filters),
 *   CreateSecret, PutSecretValue (moves AWSCURRENT, keeps AWSPREVIOUS), ListSecrets;
 * - SecretString vs SecretBinary (base64 on the wire), ARN and Name, lookup by either;
 * - SigV4 verified for every request: canonical request, string to sign and signing
 *   key are recomputed with the known secret key, so a wrong key is rejected with
 *   InvalidSignatureException and an unknown key id with UnrecognizedClientException;
 * - per-identity deny lists (AccessDeniedException) and per-secret DecryptionFailure;
 * - AWS error shapes: HTTP 400/500, `{"__type": ..., "message"|"Message": ...}`,
 *   x-amzn-RequestId and x-amzn-ErrorType headers.
 * Faults (latency, 5xx, ThrottlingException, hangs, dropped connections, malformed
 * JSON) come from the shared FaultInjector; requests are counted by operation.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { FaultInjector, listen, readBody, trackSockets } from "./faults.js";

export interface AwsIdentity {
  accessKeyId: string;
  secretAccessKey: string;
  /** Secret names (exact, or prefixes ending in `*`) this identity may not read. */
  deny?: readonly string[];
}

export interface AwsTestServerOptions {
  identities?: readonly AwsIdentity[];
  region?: string;
}

export interface AwsTestServer {
  readonly url: string;
  readonly region: string;
  /** The default identity's credentials, for the SDK's `credentials`. */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly faults: FaultInjector;
  /** Stores a new AWSCURRENT version (creating the secret when needed); Buffer values become SecretBinary. */
  seed(name: string, value: string | Buffer): void;
  /** Adds a version with only the given stage (e.g. AWSPENDING), leaving AWSCURRENT alone. */
  seedStage(name: string, value: string, stage: string): void;
  /** Reads of this secret fail with DecryptionFailure. */
  breakDecryption(name: string): void;
  close(): Promise<void>;
}

interface Version {
  id: string;
  text?: string;
  binary?: Buffer;
  stages: Set<string>;
  created: number;
}

interface Secret {
  arn: string;
  name: string;
  created: number;
  versions: Version[];
  undecryptable: boolean;
}

class AwsFault extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    /** Secrets Manager's own exceptions use "Message"; the auth layer uses "message". */
    readonly key: "message" | "Message" = "Message",
  ) {
    super(message);
  }
}

const ACCOUNT = "123456789012";
const MAX_BATCH_IDS = 20;

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) =>
  createHmac("sha256", key).update(data).digest();

export async function startAwsTestServer(
  options: AwsTestServerOptions = {},
): Promise<AwsTestServer> {
  const region = options.region ?? "us-east-1";
  const identities = options.identities ?? [
    {
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    },
  ];
  const faults = new FaultInjector();
  const secrets = new Map<string, Secret>();

  const find = (id: unknown): Secret | undefined => {
    if (typeof id !== "string") return undefined;
    const byName = secrets.get(id);
    if (byName) return byName;
    for (const secret of secrets.values()) if (secret.arn === id) return secret;
    return undefined;
  };

  const notFound = () =>
    new AwsFault("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");

  const denied = (
    identity: AwsIdentity,
    action: string,
    secret: Secret | string,
  ): AwsFault | undefined => {
    const name = typeof secret === "string" ? secret : secret.name;
    const hit = (identity.deny ?? []).some((d) =>
      d.endsWith("*") ? name.startsWith(d.slice(0, -1)) : d === name,
    );
    if (!hit) return undefined;
    return new AwsFault(
      "AccessDeniedException",
      `User: arn:aws:iam::${ACCOUNT}:user/duckcron is not authorized to perform: secretsmanager:${action} on resource: ${name} because no identity-based policy allows the secretsmanager:${action} action`,
    );
  };

  const addVersion = (
    name: string,
    value: string | Buffer,
    stages: string[],
  ): { secret: Secret; version: Version } => {
    let secret = secrets.get(name);
    const now = Date.now() / 1000;
    if (!secret) {
      secret = {
        arn: `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${name}-${randomBytes(3).toString("hex")}`,
        name,
        created: now,
        versions: [],
        undecryptable: false,
      };
      secrets.set(name, secret);
    }
    if (stages.includes("AWSCURRENT")) {
      for (const old of secret.versions) {
        old.stages.delete("AWSPREVIOUS");
        if (old.stages.delete("AWSCURRENT")) old.stages.add("AWSPREVIOUS");
      }
    }
    for (const old of secret.versions) for (const stage of stages) old.stages.delete(stage);
    const version: Version = { id: randomUUID(), stages: new Set(stages), created: now };
    if (typeof value === "string") version.text = value;
    else version.binary = Buffer.from(value);
    secret.versions.push(version);
    return { secret, version };
  };

  const valueFromBody = (body: Record<string, unknown>): string | Buffer => {
    if (typeof body.SecretString === "string") return body.SecretString;
    if (typeof body.SecretBinary === "string") return Buffer.from(body.SecretBinary, "base64");
    throw new AwsFault(
      "InvalidRequestException",
      "You must provide either SecretString or SecretBinary.",
    );
  };

  const secretValue = (secret: Secret, version: Version) => ({
    ARN: secret.arn,
    Name: secret.name,
    VersionId: version.id,
    ...(version.text !== undefined ? { SecretString: version.text } : {}),
    ...(version.binary !== undefined ? { SecretBinary: version.binary.toString("base64") } : {}),
    VersionStages: [...version.stages],
    CreatedDate: version.created,
  });

  const readVersion = (
    identity: AwsIdentity,
    action: string,
    id: unknown,
    versionId?: unknown,
    stage?: unknown,
  ) => {
    const secret = find(id);
    if (!secret) {
      const deny = denied(identity, action, String(id));
      throw deny ?? notFound();
    }
    const deny = denied(identity, action, secret);
    if (deny) throw deny;
    const wantedStage =
      typeof stage === "string" ? stage : versionId === undefined ? "AWSCURRENT" : undefined;
    const version = secret.versions.find(
      (v) =>
        (versionId === undefined || v.id === versionId) &&
        (wantedStage === undefined || v.stages.has(wantedStage)),
    );
    if (!version) {
      throw new AwsFault(
        "ResourceNotFoundException",
        `Secrets Manager can't find the specified secret value for ${wantedStage ? `staging label: ${wantedStage}` : `VersionId: ${String(versionId)}`}`,
      );
    }
    if (secret.undecryptable) {
      throw new AwsFault(
        "DecryptionFailure",
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
      );
    }
    return secretValue(secret, version);
  };

  const listEntry = (secret: Secret) => ({
    ARN: secret.arn,
    Name: secret.name,
    CreatedDate: secret.created,
    LastChangedDate: secret.versions.at(-1)?.created ?? secret.created,
    SecretVersionsToStages: Object.fromEntries(secret.versions.map((v) => [v.id, [...v.stages]])),
  });

  const filtered = (filters: unknown): Secret[] => {
    const list = Array.isArray(filters) ? (filters as { Key?: string; Values?: string[] }[]) : [];
    return [...secrets.values()]
      .filter((s) =>
        list.every(
          (f) => f.Key !== "name" || (f.Values ?? []).some((prefix) => s.name.startsWith(prefix)),
        ),
      )
      .sort((a, b) => a.name.localeCompare(b.name));
  };

  const page = <T>(items: T[], body: Record<string, unknown>, max: number) => {
    const start =
      typeof body.NextToken === "string"
        ? Number(Buffer.from(body.NextToken, "base64").toString())
        : 0;
    const size = typeof body.MaxResults === "number" ? body.MaxResults : max;
    const end = start + size;
    return {
      items: items.slice(start, end),
      next: end < items.length ? Buffer.from(String(end)).toString("base64") : undefined,
    };
  };

  const operations: Record<
    string,
    (body: Record<string, unknown>, identity: AwsIdentity) => unknown
  > = {
    GetSecretValue: (body, identity) =>
      readVersion(identity, "GetSecretValue", body.SecretId, body.VersionId, body.VersionStage),
    BatchGetSecretValue: (body, identity) => {
      const ids = body.SecretIdList;
      if (ids !== undefined && body.Filters !== undefined) {
        throw new AwsFault(
          "InvalidParameterException",
          "Either SecretIdList or Filters must be provided, but not both.",
        );
      }
      if (Array.isArray(ids)) {
        if (ids.length < 1 || ids.length > MAX_BATCH_IDS) {
          throw new AwsFault(
            "ValidationException",
            `1 validation error detected: Value at 'secretIdList' failed to satisfy constraint: Member must have length less than or equal to ${MAX_BATCH_IDS}`,
            400,
            "message",
          );
        }
        const values: unknown[] = [];
        const errors: unknown[] = [];
        for (const id of ids) {
          try {
            values.push(readVersion(identity, "GetSecretValue", id));
          } catch (error) {
            if (!(error instanceof AwsFault)) throw error;
            errors.push({ SecretId: id, ErrorCode: error.type, Message: error.message });
          }
        }
        return { SecretValues: values, Errors: errors };
      }
      const { items, next } = page(filtered(body.Filters), body, 20);
      return {
        SecretValues: items.map((s) => readVersion(identity, "GetSecretValue", s.name)),
        Errors: [],
        ...(next ? { NextToken: next } : {}),
      };
    },
    ListSecrets: (body) => {
      const { items, next } = page(filtered(body.Filters), body, 100);
      return { SecretList: items.map(listEntry), ...(next ? { NextToken: next } : {}) };
    },
    CreateSecret: (body, identity) => {
      const name = String(body.Name ?? "");
      if (!name) throw new AwsFault("InvalidParameterException", "You must provide a Name.");
      const deny = denied(identity, "CreateSecret", name);
      if (deny) throw deny;
      if (secrets.has(name)) {
        throw new AwsFault(
          "ResourceExistsException",
          `The operation failed because the secret ${name} already exists.`,
        );
      }
      const { secret, version } = addVersion(name, valueFromBody(body), ["AWSCURRENT"]);
      return { ARN: secret.arn, Name: secret.name, VersionId: version.id };
    },
    PutSecretValue: (body, identity) => {
      const existing = find(body.SecretId);
      if (!existing) throw notFound();
      const deny = denied(identity, "PutSecretValue", existing);
      if (deny) throw deny;
      const stages = Array.isArray(body.VersionStages)
        ? (body.VersionStages as string[])
        : ["AWSCURRENT"];
      const { secret, version } = addVersion(existing.name, valueFromBody(body), stages);
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.id,
        VersionStages: [...version.stages],
      };
    },
  };

  const verify = (req: IncomingMessage, body: Buffer): AwsIdentity => {
    const auth = req.headers.authorization;
    if (typeof auth !== "string" || !auth.startsWith("AWS4-HMAC-SHA256 ")) {
      throw new AwsFault(
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        400,
        "message",
      );
    }
    const parts = Object.fromEntries(
      auth
        .slice("AWS4-HMAC-SHA256 ".length)
        .split(",")
        .map((p) => p.trim().split("=") as [string, string]),
    );
    const [keyId, date, scopeRegion, service, terminator] = String(parts.Credential ?? "").split(
      "/",
    );
    const identity = identities.find((i) => i.accessKeyId === keyId);
    if (!identity) {
      throw new AwsFault(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        400,
        "message",
      );
    }
    const amzDate = String(req.headers["x-amz-date"] ?? "");
    const signedHeaders = String(parts.SignedHeaders ?? "");
    const malformedAuth =
      !date ||
      !scopeRegion ||
      service !== "secretsmanager" ||
      terminator !== "aws4_request" ||
      !amzDate.startsWith(date);
    if (malformedAuth || !signedHeaders.split(";").includes("host")) {
      throw new AwsFault(
        "IncompleteSignatureException",
        "Authorization header requires a valid Credential scope and signed host header.",
        400,
        "message",
      );
    }
    const url = new URL(req.url ?? "/", "http://aws");
    const canonicalQuery = [...url.searchParams.entries()]
      .map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)] as const)
      .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const canonicalHeaders = signedHeaders
      .split(";")
      .map((name) => {
        const raw = req.headers[name];
        const value = Array.isArray(raw) ? raw.join(",") : (raw ?? "");
        return `${name}:${value.trim().replace(/\s+/g, " ")}\n`;
      })
      .join("");
    const payloadHash = sha256(body);
    const contentHash = req.headers["x-amz-content-sha256"];
    if (
      typeof contentHash === "string" &&
      contentHash !== payloadHash &&
      contentHash !== "UNSIGNED-PAYLOAD"
    ) {
      throw new AwsFault(
        "InvalidSignatureException",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
        "message",
      );
    }
    const canonicalRequest = [
      req.method,
      url.pathname || "/",
      canonicalQuery,
      canonicalHeaders,
      signedHeaders,
      payloadHash,
    ].join("\n");
    const scope = `${date}/${scopeRegion}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
    const kDate = hmac(`AWS4${identity.secretAccessKey}`, date);
    const kSigning = hmac(hmac(hmac(kDate, scopeRegion), service), "aws4_request");
    const expected = Buffer.from(createHmac("sha256", kSigning).update(stringToSign).digest("hex"));
    const given = Buffer.from(String(parts.Signature ?? ""));
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new AwsFault(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        400,
        "message",
      );
    }
    return identity;
  };

  const send = (res: ServerResponse, status: number, payload: unknown, type?: string) => {
    const text = JSON.stringify(payload);
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.1",
      "content-length": Buffer.byteLength(text),
      "x-amzn-requestid": randomUUID(),
      ...(type ? { "x-amzn-errortype": type } : {}),
    });
    res.end(text);
  };
  const sendFault = (res: ServerResponse, fault: AwsFault) =>
    send(res, fault.status, { __type: fault.type, [fault.key]: fault.message }, fault.type);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.startsWith("secretsmanager.")
      ? target.slice("secretsmanager.".length)
      : target;
    faults.count(operation);
    await faults.delay();
    const fault = faults.take(operation);
    if (fault && faults.applyTransport(fault, req, res)) return;
    if (fault === "unavailable")
      return sendFault(
        res,
        new AwsFault("InternalServiceError", "An error occurred on the server side.", 500),
      );
    if (fault === "throttle")
      return sendFault(res, new AwsFault("ThrottlingException", "Rate exceeded", 400, "message"));
    if (fault === "malformed") {
      res.writeHead(200, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": randomUUID(),
      });
      res.end('{"ARN":"arn:aws:secretsmanager:x","SecretString":"{\\"unterminated');
      return;
    }
    try {
      if (req.method !== "POST") throw new AwsFault("UnknownOperationException", "", 404);
      const identity = verify(req, body);
      const handler = operations[operation];
      if (!handler) throw new AwsFault("UnknownOperationException", "", 400);
      const contentType = String(req.headers["content-type"] ?? "");
      if (!contentType.startsWith("application/x-amz-json-1.1")) {
        throw new AwsFault(
          "SerializationException",
          "Start of structure or map found where not expected.",
          400,
          "message",
        );
      }
      let input: Record<string, unknown>;
      try {
        input =
          body.length === 0 ? {} : (JSON.parse(body.toString("utf8")) as Record<string, unknown>);
      } catch {
        throw new AwsFault(
          "SerializationException",
          "Start of structure or map found where not expected.",
          400,
          "message",
        );
      }
      send(res, 200, handler(input, identity));
    } catch (error) {
      if (error instanceof AwsFault) return sendFault(res, error);
      throw error;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent)
        sendFault(
          res,
          new AwsFault("InternalServiceError", "An error occurred on the server side.", 500),
        );
    });
  });
  const close = trackSockets(server, faults);
  const url = await listen(server);
  const first = identities[0]!;

  return {
    url,
    region,
    credentials: { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey },
    faults,
    seed: (name, value) => {
      addVersion(name, value, ["AWSCURRENT"]);
    },
    seedStage: (name, value, stage) => {
      addVersion(name, value, [stage]);
    },
    breakDecryption: (name) => {
      const secret = secrets.get(name);
      if (!secret) throw new Error(`no secret ${name}`);
      secret.undecryptable = true;
    },
    close,
  };
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
