import {
  BatchGetSecretValueCommand,
  type BatchGetSecretValueCommandOutput,
  GetSecretValueCommand,
  ListSecretsCommand,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
} from "@aws-sdk/client-secrets-manager";
import type { AwsBackendConfig } from "../config/runner-schema.js";

import { SecretError } from "../errors.js";
import { assertTenant } from "./abort.js";
import { awsError, batchEntryError, errorName } from "./aws-errors.js";
import type { FetchedSecret, SecretBackend } from "./backend.js";
import { bundleEntries, layoutLocation, readLayout, toFetched } from "./layout.js";
import { Semaphore } from "./semaphore.js";

/**
 * AWS Secrets Manager, in the layouts of layout.ts:
 * - bundle: `{prefix}{tenant}` holds a JSON object whose keys are the secret names;
 *   one GetSecretValue per tenant.
 * - per_name: `{prefix}{tenant}/{name}`, fetched with BatchGetSecretValue, 20 ids a
 *   call. BatchGetSecretValue always reads AWSCURRENT, so with another
 *   version_stage each id is read with GetSecretValue instead.
 * The account's secrets are never listed to find a tenant's. Credentials and the
 * region come from the SDK's default chain unless configured.
 */
export interface AwsBackendOptions {
  /** Extra client settings (tests pass `credentials`); they win over the config. */
  client?: Partial<SecretsManagerClientConfig>;
}

/** BatchGetSecretValue's documented maximum of ids per call. */
export const BATCH_LIMIT = 20;
/** Parallel calls within one fetch of many names. */
const PARALLEL_CALLS = 4;
/** The SDK's own socket limit per client. */
const DEFAULT_MAX_SOCKETS = 50;

const utf8 = new TextDecoder("utf-8", { fatal: true });

interface RawValue {
  SecretString?: string | undefined;
  SecretBinary?: Uint8Array | undefined;
}

export class AwsBackend implements SecretBackend {
  readonly type = "aws";
  readonly #config: AwsBackendConfig;
  readonly #client: SecretsManagerClient;

  constructor(config: AwsBackendConfig, options: AwsBackendOptions = {}) {
    this.#config = config;
    // One client (and so one signer and one connection pool) per backend. Keep-alive is
    // the SDK's default; maxSockets is raised so that max_concurrency fetches, each with
    // up to PARALLEL_CALLS calls, never queue for a socket (the SDK default is 50).
    const agent = {
      keepAlive: true,
      maxSockets: Math.max(DEFAULT_MAX_SOCKETS, config.max_concurrency * PARALLEL_CALLS),
    };
    this.#client = new SecretsManagerClient({
      ...(config.region_name !== undefined ? { region: config.region_name } : {}),
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      maxAttempts: config.max_attempts,
      requestHandler: {
        requestTimeout: config.timeout,
        throwOnRequestTimeout: true,
        connectionTimeout: config.timeout,
        httpAgent: agent,
        httpsAgent: agent,
      },
      ...options.client,
    });
  }

  bundleId(tenant: string): string {
    return `${this.#config.prefix}${tenant}`;
  }

  nameId(tenant: string, name: string): string {
    return `${this.#config.prefix}${tenant}/${name}`;
  }

  locationOf(tenant: string, name: string): string {
    return layoutLocation(
      this.#config.layout,
      `AWS secret "${this.bundleId(tenant)}"`,
      `AWS secret "${this.nameId(tenant, name)}"`,
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

  /**
   * Proves the endpoint answers and the credentials are accepted with one
   * ListSecrets of at most one secret under the prefix. An AccessDeniedException
   * still proves both (the signature was checked first), so it passes: duckcron
   * itself needs only GetSecretValue/BatchGetSecretValue.
   */
  async check(signal?: AbortSignal): Promise<void> {
    const prefix = this.#config.prefix;
    try {
      await this.#client.send(
        new ListSecretsCommand({
          MaxResults: 1,
          ...(prefix ? { Filters: [{ Key: "name", Values: [prefix] }] } : {}),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (errorName(error) === "AccessDeniedException") return;
      throw awsError(error, `secrets under prefix "${prefix}"`, "ListSecrets");
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** Undefined when the bundle secret does not exist. */
  async #bundle(tenant: string, names: readonly string[], signal?: AbortSignal) {
    const id = this.bundleId(tenant);
    const subject = `secret "${id}" for tenant "${tenant}"`;
    let raw: RawValue;
    try {
      raw = await this.#client.send(
        new GetSecretValueCommand({ SecretId: id, VersionStage: this.#config.version_stage }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (errorName(error) === "ResourceNotFoundException") return undefined;
      throw awsError(error, subject, "GetSecretValue");
    }
    return bundleEntries(textOf(raw, subject), names, subject);
  }

  async #perName(tenant: string, names: readonly string[], signal?: AbortSignal) {
    const unique = [...new Set(names)];
    const found = new Map<string, FetchedSecret>();
    const tasks =
      this.#config.version_stage === "AWSCURRENT"
        ? chunks(unique, BATCH_LIMIT).map(
            (chunk) => () => this.#batch(tenant, chunk, found, signal),
          )
        : unique.map((name) => () => this.#single(tenant, name, found, signal));
    const slots = new Semaphore(PARALLEL_CALLS);
    await Promise.all(tasks.map((task) => slots.run(task)));
    return found;
  }

  async #batch(
    tenant: string,
    names: readonly string[],
    found: Map<string, FetchedSecret>,
    signal?: AbortSignal,
  ) {
    const byId = new Map(names.map((name) => [this.nameId(tenant, name), name]));
    const ids = [...byId.keys()];
    const range = `secrets "${ids[0]}".."${ids.at(-1)}" for tenant "${tenant}"`;
    let nextToken: string | undefined;
    do {
      let out: BatchGetSecretValueCommandOutput;
      try {
        out = await this.#client.send(
          new BatchGetSecretValueCommand({
            SecretIdList: ids,
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw awsError(error, range, "BatchGetSecretValue");
      }
      for (const entry of out.Errors ?? []) {
        if (entry.ErrorCode === "ResourceNotFoundException") continue;
        throw batchEntryError(
          entry.ErrorCode,
          `secret "${entry.SecretId ?? "?"}" for tenant "${tenant}"`,
        );
      }
      for (const value of out.SecretValues ?? []) {
        const name = byId.get(value.Name ?? "") ?? byId.get(value.ARN ?? "");
        if (name === undefined) continue;
        found.set(name, toFetched(textOf(value, `secret "${value.Name}" for tenant "${tenant}"`)));
      }
      nextToken = out.NextToken;
    } while (nextToken);
  }

  async #single(
    tenant: string,
    name: string,
    found: Map<string, FetchedSecret>,
    signal?: AbortSignal,
  ) {
    const id = this.nameId(tenant, name);
    const subject = `secret "${id}" for tenant "${tenant}"`;
    try {
      const raw = await this.#client.send(
        new GetSecretValueCommand({ SecretId: id, VersionStage: this.#config.version_stage }),
        { abortSignal: signal },
      );
      found.set(name, toFetched(textOf(raw, subject)));
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (errorName(error) === "ResourceNotFoundException") return;
      throw awsError(error, subject, "GetSecretValue");
    }
  }
}

function textOf(raw: RawValue, subject: string): string {
  if (typeof raw.SecretString === "string") return raw.SecretString;
  if (raw.SecretBinary instanceof Uint8Array) {
    try {
      return utf8.decode(raw.SecretBinary);
    } catch {
      throw new SecretError(
        "SECRET_INVALID",
        `${subject} holds SecretBinary that is not UTF-8 text`,
      );
    }
  }
  throw new SecretError(
    "SECRET_INVALID",
    `${subject} has neither SecretString nor SecretBinary for the configured version_stage`,
  );
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
