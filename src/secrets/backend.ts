/**
 * The one interface every secrets backend implements. A backend knows how to fetch
 * named secrets for a tenant from one store; it does not cache, mask, apply
 * defaults or know DuckDB exists. The resolver does the rest.
 */

/** One stored secret. `fields` is set when the store holds several keys (JSON, .env, KV). */
export interface FetchedSecret {
  /** The raw value as stored (a JSON document for JSON secrets). */
  readonly text: string;
  /** Keys of a structured secret, for `${secret:name.key}`. */
  readonly fields?: Readonly<Record<string, string>> | undefined;
}

export interface SecretBackend {
  /** The backend type as configured (`env`, `filesystem`, `vault`, `aws`, ...). */
  readonly type: string;
  /**
   * Fetches the named secrets of one tenant in as few store requests as its layout
   * allows. A name that does not exist is left out of the map (the resolver turns
   * that into a located SECRET_NOT_FOUND). Anything else that goes wrong throws a
   * SecretError whose message names tenant and location but never a value, with
   * `retryable` set when trying again later may help.
   */
  fetch(
    tenant: string,
    names: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, FetchedSecret>>;
  /** Where `name` would be looked up for `tenant` (env var names, a path, a secret id), for error messages. */
  locationOf(tenant: string, name: string): string;
  /** Cheap reachability and auth check, for /readyz and `duckcron doctor`. */
  check(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
