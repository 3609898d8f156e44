import { SecretError } from "../errors.js";

/**
 * Maps what the Key Vault and identity clients throw (RestError with the service's
 * error code, AuthenticationError and its kin from the token endpoint, network and
 * abort errors) to SecretErrors that name tenant and vault secret. The client error
 * is never attached as `cause`: a RestError carries the request and the response.
 */

/** Credential failures: retrying with the same credential cannot pass. */
const CREDENTIAL_ERRORS = new Set([
  "AuthenticationError",
  "AuthenticationRequiredError",
  "AggregateAuthenticationError",
  "CredentialUnavailableError",
  "ClientConfigurationError",
  "ServerError",
]);
const NETWORK =
  /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED|REQUEST_SEND_ERROR)$/;
const TLS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS/;

interface ClientErrorLike {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  /** The parsed error body; the client spells the service's `innererror` as `innerError`. */
  details?: {
    error?: { code?: string; innererror?: { code?: string }; innerError?: { code?: string } };
  };
  errorResponse?: { error?: string; errorDescription?: string };
  response?: { headers?: { get(name: string): string | undefined } };
}

export interface AzureErrorContext {
  /** `secret "acme" for tenant "acme"`. */
  subject: string;
  /** Set when the per-attempt timeout (not the run) aborted the call. */
  timedOutAfterMs?: number | undefined;
}

/** The Retry-After the service sent with a 429 or 503, in ms. */
export function retryAfterMs(error: unknown): number | undefined {
  const header = (error as ClientErrorLike | null)?.response?.headers?.get("retry-after");
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** The service's own error code, the inner one first (SecretDisabled inside Forbidden). */
function serviceCode(e: ClientErrorLike): string {
  const inner = e.details?.error?.innerError ?? e.details?.error?.innererror;
  return String(inner?.code ?? e.code ?? "");
}

/** One line of the client's message, short and without the request dump. */
function said(e: ClientErrorLike): string {
  const text = e.errorResponse?.errorDescription ?? e.message ?? "";
  return text.split("\n")[0]?.replace(/\s+/g, " ").slice(0, 200) ?? "";
}

export function azureError(error: unknown, ctx: AzureErrorContext): SecretError {
  if (error instanceof SecretError) return error;
  const e = (error ?? {}) as ClientErrorLike;
  const name = String(e.name ?? "");
  const status = e.statusCode;
  const code = serviceCode(e);
  const { subject } = ctx;

  if (ctx.timedOutAfterMs !== undefined) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Key Vault did not answer for ${subject} within ${ctx.timedOutAfterMs} ms (runner.secrets.timeout); retryable`,
      { retryable: true },
    );
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    const oauth = e.errorResponse?.error;
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `Microsoft Entra ID gave no token for reading ${subject} (${name}${status ? `, HTTP ${status}` : ""}${oauth ? `, ${oauth}` : ""}: ${said(e)}); check tenant_id, client_id and client_secret, or what DefaultAzureCredential finds`,
    );
  }
  if (status === 404 || code === "SecretNotFound") {
    return new SecretError("SECRET_NOT_FOUND", `Key Vault has no ${subject} (SecretNotFound)`);
  }
  if (code === "SecretDisabled") {
    return new SecretError(
      "SECRET_INVALID",
      `${subject} is disabled in Key Vault (SecretDisabled): enable it, or set a new enabled version`,
    );
  }
  if (status === 403) {
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `Key Vault denied get on ${subject} (Forbidden${code && code !== "Forbidden" ? `, ${code}` : ""}): give the identity duckcron runs as the permission get on secrets (role Key Vault Secrets User, or an access policy with get)`,
    );
  }
  if (status === 401) {
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `Key Vault did not accept the token for ${subject} (HTTP 401${code ? `, ${code}` : ""}): check that the credential's tenant is the vault's`,
    );
  }
  if (status === 429) {
    const wait = retryAfterMs(error);
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Key Vault throttled reading ${subject} (429${code ? ` ${code}` : ""}${wait !== undefined ? `, Retry-After ${Math.ceil(wait / 1000)} s` : ""}); retryable: the run can be retried later`,
      { retryable: true },
    );
  }
  if (status !== undefined && status >= 500) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Key Vault failed reading ${subject} (HTTP ${status}${code ? ` ${code}` : ""}); retryable: the run can be retried later`,
      { retryable: true },
    );
  }
  if (TLS.test(String(e.code ?? "")) || TLS.test(said(e))) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `the TLS certificate of Key Vault or the token endpoint was not trusted reading ${subject} (${e.code ?? "certificate not trusted"}); for a TLS-inspecting proxy set ca_cert`,
    );
  }
  if (
    NETWORK.test(String(e.code ?? "")) ||
    /socket hang up|ECONNRESET|ECONNREFUSED/.test(said(e))
  ) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Key Vault could not be reached reading ${subject} (${e.code ?? "connection failed"}); retryable: check vault_url and the network`,
      { retryable: true },
    );
  }
  if (name === "SyntaxError" || /JSON|Unexpected token|deserializ/i.test(said(e))) {
    return new SecretError(
      "SECRET_INVALID",
      `Key Vault answered reading ${subject} with a body that is not valid JSON; check vault_url points at a Key Vault`,
    );
  }
  return new SecretError(
    "SECRET_BACKEND_UNAVAILABLE",
    `reading ${subject} from Key Vault failed (${name || "error"}${status ? `, HTTP ${status}` : ""}${code ? `, ${code}` : ""})`,
    { retryable: status === undefined || status >= 500 },
  );
}
