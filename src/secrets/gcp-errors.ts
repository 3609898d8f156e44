import { SecretError } from "../errors.js";

/**
 * Maps Secret Manager's answers (Google's error JSON `{"error": {code, message,
 * status}}`), fetch failures and credential failures to SecretErrors naming tenant
 * and secret id. Nothing the server or the auth library says is attached as `cause`
 * or quoted beyond its status: a body may echo a payload, a token exchange error may
 * echo a credential.
 */

/** Statuses worth another attempt, as Google's own clients treat them. */
const RETRYABLE_STATUS = new Set(["UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"]);

/** The role that grants secretmanager.versions.access. */
export const ACCESSOR_ROLE = "roles/secretmanager.secretAccessor";

export interface GoogleStatus {
  /** HTTP status. */
  code: number;
  /** Canonical status name, e.g. NOT_FOUND; derived from the HTTP status when the body has none. */
  status: string;
}

const BY_HTTP: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "NOT_IMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** The canonical status of an error answer; never reads more of the body than `status`. */
export function googleStatus(httpStatus: number, body: unknown): GoogleStatus {
  const error = (body as { error?: { status?: unknown } } | null)?.error;
  const named = typeof error?.status === "string" && /^[A-Z_]{1,40}$/.test(error.status);
  return {
    code: httpStatus,
    status: named ? (error.status as string) : (BY_HTTP[httpStatus] ?? `HTTP_${httpStatus}`),
  };
}

export function isRetryable(status: GoogleStatus): boolean {
  return RETRYABLE_STATUS.has(status.status) || status.code >= 500;
}

/** `subject`: `secret "acme" for tenant "acme"`; `resource`: the API path. */
export function statusError(
  status: GoogleStatus,
  subject: string,
  resource: string,
  tried: string,
): SecretError {
  const said = `${status.status}, HTTP ${status.code}`;
  switch (status.status) {
    case "NOT_FOUND":
      return new SecretError(
        "SECRET_NOT_FOUND",
        `Secret Manager has no ${subject} (${resource}: ${said})`,
      );
    case "PERMISSION_DENIED":
      return new SecretError(
        "SECRET_ACCESS_DENIED",
        `Secret Manager denied access to ${subject} (${said}): grant ${ACCESSOR_ROLE} on ${resource.replace(/\/versions\/.*$/, "")} (or its project) to the account duckcron runs as`,
      );
    case "UNAUTHENTICATED":
      return new SecretError(
        "SECRET_ACCESS_DENIED",
        `Secret Manager rejected the credentials for ${subject} (${said}): check credentials_file or the Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity)`,
      );
    case "FAILED_PRECONDITION":
      return new SecretError(
        "SECRET_INVALID",
        `${subject} cannot be read at the configured version (${said}): the version is disabled or destroyed; enable it, add a new version, or set runner.secrets.version`,
      );
    case "INVALID_ARGUMENT":
      return new SecretError(
        "SECRET_INVALID",
        `Secret Manager refused the request for ${subject} (${said}): check runner.secrets.project_id, prefix and version`,
      );
    default:
      if (isRetryable(status)) {
        return new SecretError(
          "SECRET_BACKEND_UNAVAILABLE",
          `Secret Manager ${status.status === "RESOURCE_EXHAUSTED" ? "throttled" : "failed"} the read of ${subject} (${said})${tried}; retryable: the run can be retried later`,
          { retryable: true },
        );
      }
      return new SecretError(
        "SECRET_BACKEND_UNAVAILABLE",
        `Secret Manager answered the read of ${subject} with ${said}`,
      );
  }
}

const NETWORK =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED|UND_ERR_SOCKET|UND_ERR_CLOSED|other side closed/;

/** A failure before any answer: timeout, refused or dropped connection. */
export function transportError(
  error: unknown,
  subject: string,
  timeoutMs: number,
  tried: string,
): SecretError {
  if (error instanceof SecretError) return error;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "TimeoutError") {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `Secret Manager did not answer the read of ${subject} in time (${timeoutMs} ms, runner.secrets.timeout)${tried}; retryable`,
      { retryable: true },
    );
  }
  const code = networkCode(error);
  return new SecretError(
    "SECRET_BACKEND_UNAVAILABLE",
    `Secret Manager could not be reached for ${subject} (${code ?? "connection failed"})${tried}; retryable: check runner.secrets.endpoint and the network`,
    { retryable: true },
  );
}

function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK.test(code)) return code;
    const message = (current as { message?: unknown }).message;
    if (typeof message === "string") {
      const hit = NETWORK.exec(message);
      if (hit) return hit[0];
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The auth library failed to produce a token: a bad key file, a refused token
 * exchange, no ADC at all. Only the library's first line is kept, cut short; it
 * names files and endpoints, not credentials.
 */
export function credentialError(error: unknown, subject: string): SecretError {
  if (error instanceof SecretError) return error;
  const status = (error as { response?: { status?: unknown } } | null)?.response?.status;
  if (typeof status === "number" && status >= 500) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `the Google token endpoint failed (HTTP ${status}) while getting a token for ${subject}; retryable`,
      { retryable: true },
    );
  }
  if (status === undefined && networkCode(error) !== undefined) {
    return transportError(error, `a token for ${subject}`, 0, "");
  }
  const message = String((error as { message?: unknown } | null)?.message ?? "");
  const first = message.split("\n")[0]?.replace(/\s+/g, " ").slice(0, 160) ?? "";
  const said = status === undefined ? first : `HTTP ${status}`;
  return new SecretError(
    "SECRET_ACCESS_DENIED",
    `no Google access token for ${subject}${said ? ` (${said})` : ""}: check credentials_file or the Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata server's service account)`,
  );
}
