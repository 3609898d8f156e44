import { resolve } from "node:path";
import crc32c from "crc-32/crc32c";
import { GoogleAuth } from "google-auth-library";
import { gcpProject } from "../config/gcp-checks.js";
import { GCP_SECRET_ID, type GcpBackendConfig } from "../config/runner-schema.js";
import { SecretError } from "../errors.js";
import { assertTenant, untilAborted } from "./abort.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import {
  credentialError,
  type GoogleStatus,
  googleStatus,
  isRetryable,
  statusError,
  transportError,
} from "./gcp-errors.js";
import { bundleEntries, layoutLocation, readLayout, toFetched } from "./layout.js";
import { Semaphore } from "./semaphore.js";

/**
 * Google Cloud Secret Manager, in the layouts of layout.ts:
 * - bundle: `{prefix}{tenant}` holds a JSON object whose keys are the names; one
 *   access call per tenant.
 * - per_name: `{prefix}{tenant}-{name}`, one access call per name (the API has no
 *   batch read), all names at once; the backend as a whole keeps at most
 *   max_concurrency calls in flight, however many fetches run.
 * google-auth-library supplies the token (Application Default Credentials or
 * credentials_file); the read itself is one REST call, `GET
 * /v1/projects/{p}/secrets/{s}/versions/{v}:access`, under our own timeout and
 * retries: Google's generated client retries UNAVAILABLE for up to ten minutes.
 */
export interface GcpBackendOptions {
  /** The folder holding runner.yaml; credentials_file is relative to it. */
  baseDir?: string | undefined;
  /** GOOGLE_CLOUD_PROJECT / GCP_PROJECT_ID are read from here. */
  env?: NodeJS.ProcessEnv | undefined;
}

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const FIRST_BACKOFF_MS = 100;
/** The least a token exchange or metadata-server call is given, whatever `timeout` says. */
const MIN_TOKEN_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 2_000;

const utf8 = new TextDecoder("utf-8", { fatal: true });

interface AccessResponse {
  payload?: { data?: unknown; dataCrc32c?: unknown };
}

/** A failed attempt, whether another may help, and Google's status when it answered. */
class Attempt extends Error {
  constructor(
    readonly error: SecretError,
    readonly again: boolean,
    readonly status?: string,
  ) {
    super(error.message);
  }
}

export class GcpBackend implements SecretBackend {
  readonly type = "gcp";
  readonly #config: GcpBackendConfig;
  readonly #project: string;
  readonly #auth: GoogleAuth;
  readonly #endpoint: string;
  readonly #slots: Semaphore;

  constructor(config: GcpBackendConfig, options: GcpBackendOptions = {}) {
    this.#config = config;
    const project = gcpProject(config, options.env ?? process.env);
    if (project === undefined) {
      throw new SecretError(
        "CONFIG_INVALID",
        "runner.secrets.project_id is not set and GOOGLE_CLOUD_PROJECT / GCP_PROJECT_ID are empty: give the project that holds the secrets",
      );
    }
    this.#project = project;
    this.#endpoint = config.endpoint.replace(/\/+$/, "");
    this.#slots = new Semaphore(config.max_concurrency);
    this.#auth = new GoogleAuth({
      scopes: [SCOPE],
      // Without it, Application Default Credentials look the project up first: a call
      // to Cloud Resource Manager (with the library's own retries) before every token.
      projectId: project,
      ...(config.credentials_file !== undefined
        ? { keyFilename: resolve(options.baseDir ?? ".", config.credentials_file) }
        : {}),
    });
  }

  bundleId(tenant: string): string {
    return `${this.#config.prefix}${tenant}`;
  }

  nameId(tenant: string, name: string): string {
    return `${this.#config.prefix}${tenant}-${name}`;
  }

  locationOf(tenant: string, name: string): string {
    return layoutLocation(
      this.#config.layout,
      `GCP secret "${this.bundleId(tenant)}"`,
      `GCP secret "${this.nameId(tenant, name)}"`,
      name,
    );
  }

  async fetch(
    tenant: string,
    names: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, FetchedSecret>> {
    assertTenant(tenant);
    signal?.throwIfAborted();
    return readLayout(this.#config.layout, {
      bundle: async () => {
        const id = this.bundleId(tenant);
        const subject = `secret "${id}" for tenant "${tenant}"`;
        const text = await this.#access(id, subject, signal);
        return text === undefined ? undefined : bundleEntries(text, names, subject);
      },
      perName: () => this.#perName(tenant, names, signal),
    });
  }

  /**
   * Proves the endpoint answers and the token is accepted by listing at most one
   * secret. PERMISSION_DENIED still proves both (the token was checked first), so it
   * passes: duckcron itself needs only roles/secretmanager.secretAccessor.
   */
  async check(signal?: AbortSignal): Promise<void> {
    const url = `${this.#endpoint}/v1/projects/${this.#project}/secrets?pageSize=1`;
    const subject = `the secrets of project "${this.#project}"`;
    try {
      await this.#call(url, subject, signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof Attempt) {
        if (error.status === "PERMISSION_DENIED") return;
        throw error.error;
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    // Nothing to release: requests go through Node's shared fetch pool.
  }

  async #perName(tenant: string, names: readonly string[], signal?: AbortSignal) {
    const found = new Map<string, FetchedSecret>();
    await Promise.all(
      [...new Set(names)].map(async (name) => {
        const id = this.nameId(tenant, name);
        if (!GCP_SECRET_ID.test(id)) {
          throw new SecretError(
            "INVALID_NAME",
            `secret "${name.slice(0, 64)}" of tenant "${tenant}" does not map to a GCP secret id (letters, digits, '_' and '-', at most 255 characters)`,
          );
        }
        const text = await this.#access(id, `secret "${id}" for tenant "${tenant}"`, signal);
        if (text !== undefined) found.set(name, toFetched(text));
      }),
    );
    return found;
  }

  /** The payload as text; undefined when the secret (or its version) does not exist. */
  async #access(id: string, subject: string, signal?: AbortSignal): Promise<string | undefined> {
    const resource = `projects/${this.#project}/secrets/${id}/versions/${this.#config.version}`;
    let body: unknown;
    try {
      body = await this.#slots.run(
        () => this.#call(`${this.#endpoint}/v1/${resource}:access`, subject, signal),
        signal,
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof Attempt) {
        if (error.status === "NOT_FOUND") return undefined;
        throw error.error;
      }
      throw error;
    }
    return payloadText(body as AccessResponse, subject);
  }

  /** One GET with retries; throws an Attempt holding the final SecretError. */
  async #call(url: string, subject: string, signal?: AbortSignal): Promise<unknown> {
    const attempts = this.#config.max_attempts;
    for (let attempt = 1; ; attempt += 1) {
      const tried = attempt > 1 ? ` after ${attempt} attempts with backoff` : "";
      try {
        return await this.#once(url, subject, tried, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!(error instanceof Attempt) || !error.again || attempt >= attempts) throw error;
      }
      await sleep(backoff(attempt), signal);
    }
  }

  async #once(url: string, subject: string, tried: string, signal?: AbortSignal) {
    let headers: Headers;
    // The token is fetched about once an hour, and the first time also reads the
    // credentials and loads the auth library's parts: it gets a budget of its own.
    const tokenMs = Math.max(this.#config.timeout, MIN_TOKEN_TIMEOUT_MS);
    const tokenTimeout = AbortSignal.timeout(tokenMs);
    try {
      headers = await untilAborted(
        this.#auth.getRequestHeaders(),
        signal ? AbortSignal.any([signal, tokenTimeout]) : tokenTimeout,
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const failure = tokenTimeout.aborted
        ? transportError(tokenTimeout.reason, `a token for ${subject}`, tokenMs, tried)
        : credentialError(error, subject);
      throw new Attempt(failure, failure.retryable);
    }
    const timeout = AbortSignal.timeout(this.#config.timeout);
    const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
    headers.set("accept", "application/json");
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { headers, signal: both });
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new Attempt(transportError(error, subject, this.#config.timeout, tried), true);
    }
    const body = parseJson(text);
    if (!response.ok) {
      const status: GoogleStatus = googleStatus(response.status, body);
      const resource = new URL(url).pathname.replace(/^\/v1\//, "").replace(/:access$/, "");
      throw new Attempt(
        statusError(status, subject, resource, tried),
        isRetryable(status),
        status.status,
      );
    }
    if (body === undefined) {
      throw new Attempt(
        new SecretError(
          "SECRET_INVALID",
          `Secret Manager answered the read of ${subject} with a body that is not JSON; check runner.secrets.endpoint points at Secret Manager`,
        ),
        false,
      );
    }
    return body;
  }
}

function payloadText(body: AccessResponse, subject: string): string {
  const data = body.payload?.data;
  if (typeof data !== "string") {
    // An empty payload is sent without `data` (proto3 JSON omits empty bytes).
    if (body.payload !== undefined && data === undefined) return "";
    throw new SecretError(
      "SECRET_INVALID",
      `Secret Manager answered the read of ${subject} without payload.data; check runner.secrets.endpoint points at Secret Manager`,
    );
  }
  const bytes = Buffer.from(data, "base64");
  const expected = body.payload?.dataCrc32c;
  if (expected !== undefined && expected !== null) {
    // int64 in proto3 JSON is a decimal string; CRC-32C is unsigned 32-bit.
    const actual = crc32c.buf(bytes) >>> 0;
    if (String(expected) !== String(actual)) {
      throw new SecretError(
        "SECRET_INVALID",
        `${subject} arrived with a payload whose CRC32C does not match payload.dataCrc32c: the data was corrupted in transit or storage; the run is stopped rather than use it`,
      );
    }
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new SecretError("SECRET_INVALID", `${subject} holds a payload that is not UTF-8 text`);
  }
}

/** Never throws: a parser's message could quote a payload. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function backoff(attempt: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      done();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      fail(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
