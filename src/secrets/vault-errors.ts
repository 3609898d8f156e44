import { SecretError } from "../errors.js";

/**
 * Turns what node-vault throws into SecretErrors a user can act on. The originals
 * are never attached as `cause`: node-vault and axios errors carry the request
 * options, X-Vault-Token header included, and a logger that walks `cause` would
 * print it.
 */

/** What one request was for, so messages name path, tenant and remedy. */
export interface VaultRequestContext {
  /** `read of secret/data/acme for tenant "acme"`. */
  what: string;
  /** The API path, without `/v1/`. */
  path: string;
  /** ` in namespace "eng"` or "". */
  where: string;
  /** The capability a policy must grant on `path`. */
  capability: string;
  timeoutMs: number;
  /** Credentials to blank out of any text the server sends back. */
  secrets: readonly string[];
}

interface ApiResponseLike {
  response: { statusCode: number; body: unknown };
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO/;
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);

export function isApiResponseError(error: unknown): error is ApiResponseLike {
  const response = (error as Partial<ApiResponseLike> | null)?.response;
  return (
    typeof response === "object" && response !== null && typeof response.statusCode === "number"
  );
}

export function statusOf(error: unknown): number | undefined {
  return isApiResponseError(error) ? error.response.statusCode : undefined;
}

/** Vault's first error string, cut short, with any credential blanked out. */
function serverText(body: unknown, secrets: readonly string[]): string {
  const errors = (body as { errors?: unknown } | null)?.errors;
  const first = Array.isArray(errors) && typeof errors[0] === "string" ? errors[0] : "";
  let text = first.replace(/\s+/g, " ").trim().slice(0, 200);
  for (const secret of secrets) if (secret.length > 0) text = text.replaceAll(secret, "***");
  return text;
}

export function vaultError(error: unknown, ctx: VaultRequestContext): SecretError {
  if (error instanceof SecretError) return error;
  const status = statusOf(error);
  if (status !== undefined) {
    const said = serverText((error as ApiResponseLike).response.body, ctx.secrets);
    const quoted = said ? ` (${said})` : "";
    if (status === 403) {
      return new SecretError(
        "SECRET_ACCESS_DENIED",
        `Vault denied the ${ctx.what}${ctx.where}: 403 permission denied. The token needs a policy granting ` +
          `the "${ctx.capability}" capability on "${ctx.path}", e.g. path "${ctx.path}" { capabilities = ["${ctx.capability}"] }; ` +
          "or the token has expired or belongs to another namespace",
      );
    }
    if (status === 429) {
      return new SecretError(
        "SECRET_BACKEND_UNAVAILABLE",
        `Vault rate-limited the ${ctx.what}${ctx.where} (429${quoted}); retryable: the run can be retried later`,
        { retryable: true },
      );
    }
    if (status >= 500) {
      return new SecretError(
        "SECRET_BACKEND_UNAVAILABLE",
        `Vault failed the ${ctx.what}${ctx.where} with HTTP ${status}${quoted}; retryable: the run can be retried later`,
        { retryable: true },
      );
    }
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Vault refused the ${ctx.what}${ctx.where} with HTTP ${status}${quoted}`,
    );
  }
  const code = String((error as { code?: unknown } | null)?.code ?? "");
  if (
    code === "ECONNABORTED" ||
    code === "ETIMEDOUT" ||
    /timeout/i.test(String((error as Error)?.message))
  ) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Vault did not answer the ${ctx.what}${ctx.where} within ${ctx.timeoutMs} ms (runner.secrets.timeout); retryable`,
      { retryable: true },
    );
  }
  if (TLS_CODES.test(code)) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `TLS to Vault failed for the ${ctx.what} (${code}): set runner.secrets.ca_cert to the CA that signed ` +
        "Vault's certificate, or verify: false for a test server",
    );
  }
  const network =
    NETWORK_CODES.has(code) ||
    code.startsWith("E") ||
    /socket hang up/i.test(String((error as Error)?.message));
  if (network) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Vault could not be reached for the ${ctx.what}${ctx.where}${code ? ` (${code})` : ""}; retryable: check url/VAULT_ADDR and that Vault is up`,
      { retryable: true },
    );
  }
  return new SecretError(
    "SECRET_BACKEND_UNAVAILABLE",
    `the ${ctx.what}${ctx.where} failed unexpectedly (${(error as Error)?.name ?? "error"}); retryable`,
    { retryable: true },
  );
}

export function malformed(ctx: VaultRequestContext, detail: string): SecretError {
  return new SecretError(
    "SECRET_INVALID",
    `Vault answered the ${ctx.what}${ctx.where} with ${detail}; check that url points at Vault's API and ` +
      `that "${ctx.path}" is a KV entry of the configured kv_version`,
  );
}
