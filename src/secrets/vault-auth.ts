import type NodeVault from "node-vault";
import { SecretError } from "../errors.js";
import { type VaultRequestContext, vaultError } from "./vault-errors.js";

/**
 * Keeps node-vault's token valid. `token` auth uses the configured token as is.
 * `approle` logs in lazily, renews through auth/token/renew-self once two thirds
 * of the lease has passed (checked before each request, on the injected clock, so
 * no timer keeps the process alive), logs in again when renewal fails or the
 * lease is over, and on demand after a 403.
 */
export type VaultAuth =
  | { method: "token"; token: string }
  | { method: "approle"; roleId: string; secretId: string };

interface Lease {
  renewAt: number;
  expiresAt: number;
}

export class VaultSession {
  readonly #client: NodeVault.client;
  readonly #auth: VaultAuth;
  readonly #now: () => number;
  readonly #context: (what: string, path: string, capability: string) => VaultRequestContext;
  #lease: Lease | undefined;
  #loggedIn = false;
  #pending: Promise<void> | undefined;

  constructor(
    client: NodeVault.client,
    auth: VaultAuth,
    now: () => number,
    context: (what: string, path: string, capability: string) => VaultRequestContext,
  ) {
    this.#client = client;
    this.#auth = auth;
    this.#now = now;
    this.#context = context;
    if (auth.method === "token") client.token = auth.token;
  }

  get canRelogin(): boolean {
    return this.#auth.method === "approle";
  }

  /** Credentials to blank out of server texts. */
  get secrets(): string[] {
    const current = typeof this.#client.token === "string" ? [this.#client.token] : [];
    return this.#auth.method === "approle" ? [...current, this.#auth.secretId] : current;
  }

  /** Makes sure the token is usable now; one login or renewal at a time. */
  async ready(): Promise<void> {
    if (this.#auth.method === "token") return;
    this.#pending ??= this.#refresh().finally(() => {
      this.#pending = undefined;
    });
    await this.#pending;
  }

  /** After a 403: drop the token and log in again. */
  async relogin(): Promise<void> {
    this.#loggedIn = false;
    this.#lease = undefined;
    await this.ready();
  }

  async #refresh(): Promise<void> {
    const now = this.#now();
    if (!this.#loggedIn || (this.#lease && now >= this.#lease.expiresAt)) return this.#login();
    if (this.#lease && now >= this.#lease.renewAt) {
      try {
        const renewed = (await this.#client.tokenRenewSelf({})) as { auth?: AuthBlock };
        this.#remember(renewed.auth);
      } catch {
        // A lease that can no longer be renewed (max TTL reached) needs a fresh login.
        await this.#login();
      }
    }
  }

  async #login(): Promise<void> {
    if (this.#auth.method !== "approle") return;
    const path = "auth/approle/login";
    try {
      const response = (await this.#client.approleLogin({
        role_id: this.#auth.roleId,
        secret_id: this.#auth.secretId,
      })) as { auth?: AuthBlock };
      if (typeof response?.auth?.client_token !== "string") {
        throw new SecretError(
          "SECRET_INVALID",
          `Vault's AppRole login at ${path} returned no auth.client_token; check url points at Vault`,
        );
      }
      this.#client.token = response.auth.client_token;
      this.#loggedIn = true;
      this.#remember(response.auth);
    } catch (error) {
      const status = (error as { response?: { statusCode?: number } }).response?.statusCode;
      if (status === 400) {
        throw new SecretError(
          "SECRET_ACCESS_DENIED",
          `Vault refused the AppRole login at ${path}: check runner.secrets.role_id and secret_id (the secret_id may have expired)`,
        );
      }
      throw vaultError(error, this.#context("AppRole login", path, "update"));
    }
  }

  #remember(auth: AuthBlock | undefined): void {
    const lease = Number(auth?.lease_duration ?? 0);
    if (!(lease > 0)) {
      this.#lease = undefined;
      return;
    }
    const now = this.#now();
    const expiresAt = now + lease * 1000;
    this.#lease = {
      expiresAt,
      renewAt: auth?.renewable === false ? expiresAt : now + (lease * 1000 * 2) / 3,
    };
  }
}

interface AuthBlock {
  client_token?: string;
  lease_duration?: number;
  renewable?: boolean;
}
