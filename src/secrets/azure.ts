import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import {
  ClientSecretCredential,
  DefaultAzureCredential,
  type TokenCredential,
} from "@azure/identity";
import { type KeyVaultSecret, SecretClient } from "@azure/keyvault-secrets";
import {
  keyVaultBundleName,
  keyVaultNameProblem,
  keyVaultSecretName,
  perNameTenantProblem,
} from "../config/keyvault.js";
import type { AzureBackendConfig } from "../config/runner-schema.js";
import { SecretError } from "../errors.js";
import { assertTenant } from "./abort.js";
import { azureError, retryAfterMs } from "./azure-errors.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import { bundleEntries, layoutLocation, readLayout, toFetched } from "./layout.js";
import { Semaphore } from "./semaphore.js";

/**
 * Azure Key Vault, in the layouts of layout.ts, with names mapped by keyvault.ts:
 * - bundle: `{prefix}{tenant}` holds a JSON object whose keys are the secret names;
 *   one GET per tenant.
 * - per_name: `{prefix}{tenant}--{name}`, one GET per name (Key Vault has no batch
 *   read), in parallel: at most max_concurrency GETs of the backend are in flight.
 * The vault's secrets are never listed. The client's own retries are off: its
 * defaults wait out any Retry-After, for minutes; ours are bounded (see #call).
 */
export interface AzureBackendOptions {
  /** AZURE_KEYVAULT_URL, AZURE_AUTHORITY_HOST and DefaultAzureCredential's variables are read here. */
  env?: NodeJS.ProcessEnv | undefined;
  /** The folder a relative ca_cert is read from (runner.yaml's). */
  baseDir?: string | undefined;
  /** Instead of the configured or default credential (tests). */
  credential?: TokenCredential;
}

/** Longest Retry-After that is waited out within a run; a longer one fails the attempt. */
const MAX_RETRY_AFTER_MS = 10_000;
const BACKOFF_BASE_MS = 200;
/** The most HTTP requests one read makes: challenge, token metadata, token, the read. */
const REQUESTS_PER_ATTEMPT = 4;
const BACKOFF_MAX_MS = 3_000;
/** Looked up by `check`: a 404 for it proves reachability, the credential and `get`. */
const PROBE_TENANT = "duckcron-probe";

export class AzureBackend implements SecretBackend {
  readonly type = "azure";
  readonly #config: AzureBackendConfig;
  readonly #client: SecretClient;
  readonly #insecure: boolean;
  /** Every GET of this backend, all tenants together: max_concurrency requests in flight. */
  readonly #slots: Semaphore;

  constructor(config: AzureBackendConfig, options: AzureBackendOptions = {}) {
    const env = options.env ?? process.env;
    this.#config = config;
    const vaultUrl = checkedVaultUrl(config, env.AZURE_KEYVAULT_URL);
    this.#insecure = vaultUrl.startsWith("http:");
    this.#slots = new Semaphore(config.max_concurrency);
    const common = {
      retryOptions: { maxRetries: 0 },
      ...(config.ca_cert !== undefined
        ? { tlsOptions: { ca: readCa(resolve(options.baseDir ?? ".", config.ca_cert)) } }
        : {}),
    };
    const authorityHost = config.authority_host ?? (env.AZURE_AUTHORITY_HOST || undefined);
    const identity = {
      ...common,
      ...(authorityHost !== undefined ? { authorityHost } : {}),
      // Instance discovery asks login.microsoftonline.com about the authority; a test
      // server's authority is unknown there.
      disableInstanceDiscovery: config.local_test_server,
    };
    const credential =
      options.credential ??
      (config.client_secret !== undefined &&
      config.tenant_id !== undefined &&
      config.client_id !== undefined
        ? new ClientSecretCredential(
            config.tenant_id,
            config.client_id,
            config.client_secret,
            identity,
          )
        : new DefaultAzureCredential(identity));
    this.#client = new SecretClient(vaultUrl, credential, {
      ...common,
      disableChallengeResourceVerification: config.local_test_server,
    });
  }

  bundleName(tenant: string): string {
    return keyVaultBundleName(this.#config.prefix, tenant);
  }

  nameOf(tenant: string, name: string): string {
    return keyVaultSecretName(this.#config.prefix, tenant, name);
  }

  locationOf(tenant: string, name: string): string {
    return layoutLocation(
      this.#config.layout,
      `Key Vault secret "${this.bundleName(tenant)}"`,
      `Key Vault secret "${this.nameOf(tenant, name)}" (for "${name}")`,
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
      bundle: () => this.#bundle(tenant, names, signal),
      perName: () => this.#perName(tenant, names, signal),
    });
  }

  async check(signal?: AbortSignal): Promise<void> {
    const name = this.bundleName(PROBE_TENANT);
    try {
      await this.#get(name, `probe secret "${name}"`, signal);
    } catch (error) {
      if (error instanceof SecretError && error.code === "SECRET_NOT_FOUND") return;
      throw error;
    }
  }

  async close(): Promise<void> {}

  async #bundle(tenant: string, names: readonly string[], signal?: AbortSignal) {
    const id = this.bundleName(tenant);
    const subject = `secret "${id}" for tenant "${tenant}"`;
    validName(id, subject);
    const secret = await this.#read(id, subject, signal);
    if (secret === undefined) return undefined;
    return bundleEntries(secret, names, subject);
  }

  async #perName(tenant: string, names: readonly string[], signal?: AbortSignal) {
    const problem = perNameTenantProblem(tenant);
    if (problem) throw new SecretError("INVALID_NAME", problem);
    const found = new Map<string, FetchedSecret>();
    // All names at once: #get's slots keep the requests in flight to max_concurrency.
    await Promise.all(
      [...new Set(names)].map(async (name) => {
        const id = this.nameOf(tenant, name);
        const subject = `secret "${id}" for tenant "${tenant}"`;
        if (name === "") throw new SecretError("INVALID_NAME", `empty secret name for ${subject}`);
        validName(id, subject);
        const text = await this.#read(id, subject, signal);
        if (text !== undefined) found.set(name, toFetched(text));
      }),
    );
    return found;
  }

  /** The secret's text; undefined when it does not exist. */
  async #read(id: string, subject: string, signal?: AbortSignal): Promise<string | undefined> {
    let secret: KeyVaultSecret;
    try {
      secret = await this.#get(id, subject, signal);
    } catch (error) {
      if (error instanceof SecretError && error.code === "SECRET_NOT_FOUND") return undefined;
      throw error;
    }
    const { expiresOn, notBefore } = secret.properties;
    const now = Date.now();
    // Key Vault serves expired and not-yet-valid secrets (for recovery); a run must not use them.
    if (expiresOn !== undefined && expiresOn.getTime() <= now) {
      throw new SecretError(
        "SECRET_INVALID",
        `${subject} expired on ${expiresOn.toISOString()}: set a new version, or move its expiry date`,
      );
    }
    if (notBefore !== undefined && notBefore.getTime() > now) {
      throw new SecretError(
        "SECRET_INVALID",
        `${subject} is not valid before ${notBefore.toISOString()} (its activation date)`,
      );
    }
    if (typeof secret.value !== "string") {
      throw new SecretError("SECRET_INVALID", `Key Vault returned ${subject} without a value`);
    }
    return secret.value;
  }

  /**
   * One getSecret with our retry rules: up to max_attempts for throttling, 5xx,
   * timeouts and dropped connections, with capped exponential backoff or the
   * service's Retry-After when that is short enough to wait out.
   */
  async #get(id: string, subject: string, signal?: AbortSignal): Promise<KeyVaultSecret> {
    const { max_attempts: attempts, timeout } = this.#config;
    for (let attempt = 1; ; attempt += 1) {
      try {
        // `timeout` bounds each HTTP request; an attempt may take four (challenge, token
        // endpoint metadata, token, the read), and not every token request takes the
        // per-request timeout, so the attempt is bounded too, from when it gets a slot.
        const read = () => {
          const deadline = AbortSignal.timeout(timeout * REQUESTS_PER_ATTEMPT);
          return this.#client.getSecret(id, {
            abortSignal: signal ? AbortSignal.any([signal, deadline]) : deadline,
            requestOptions: {
              timeout,
              ...(this.#insecure ? { allowInsecureConnection: true } : {}),
            },
          });
        };
        return await this.#slots.run(read, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        // Not the run's signal: the request's or the attempt's timeout.
        const timedOut = (error as Error | null)?.name === "AbortError";
        const failure = azureError(error, {
          subject,
          timedOutAfterMs: timedOut ? timeout : undefined,
        });
        const asked = retryAfterMs(error);
        if (!failure.retryable || attempt >= attempts) throw tried(failure, attempt);
        if (asked !== undefined && asked > MAX_RETRY_AFTER_MS) throw failure;
        await sleep(asked ?? backoff(attempt), signal);
      }
    }
  }
}

function checkedVaultUrl(config: AzureBackendConfig, fromEnv: string | undefined): string {
  const raw = config.vault_url ?? (fromEnv || undefined);
  if (raw === undefined) {
    throw new SecretError(
      "CONFIG_INVALID",
      "runner.secrets.vault_url is not set and AZURE_KEYVAULT_URL is empty: give the vault's URL, e.g. https://my-vault.vault.azure.net",
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SecretError("CONFIG_INVALID", "AZURE_KEYVAULT_URL is not a URL");
  }
  // The schema checks vault_url; AZURE_KEYVAULT_URL gets the same rules here.
  if (url.protocol !== "https:" && !(url.protocol === "http:" && config.local_test_server)) {
    throw new SecretError(
      "CONFIG_INVALID",
      `the Key Vault URL ${url.origin} is not https://; the bearer token would travel in clear`,
    );
  }
  if (config.local_test_server && !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new SecretError(
      "CONFIG_INVALID",
      `runner.secrets.local_test_server is for test servers on 127.0.0.1, not ${url.hostname}`,
    );
  }
  return raw;
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new SecretError(
      "CONFIG_INVALID",
      `runner.secrets.ca_cert: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

function validName(id: string, subject: string): void {
  const problem = keyVaultNameProblem(id);
  if (problem) throw new SecretError("INVALID_NAME", `${subject}: ${problem}`);
}

function tried(error: SecretError, attempts: number): SecretError {
  if (attempts <= 1) return error;
  return new SecretError(error.code, `${error.message} (after ${attempts} attempts)`, {
    retryable: error.retryable,
  });
}

function backoff(attempt: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
