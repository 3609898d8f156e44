import { SecretError } from "../errors.js";

/**
 * Maps what the AWS SDK throws (service exceptions by `name`, network and timeout
 * errors, deserialization failures) to SecretErrors that name tenant and secret id.
 * The SDK error is never attached as `cause`: its `$response` may hold the body,
 * and a malformed body may hold a secret value.
 */

const THROTTLING = new Set([
  "ThrottlingException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "Throttling",
  "RequestThrottled",
  "RequestThrottledException",
]);
const BAD_CREDENTIALS = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
]);
const NETWORK =
  /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/;

interface SdkErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

export function errorName(error: unknown): string {
  return String((error as SdkErrorLike | null)?.name ?? "");
}

/** The subject of a failed call: `secret "acme" for tenant "acme"`. */
export function awsError(error: unknown, subject: string, action: string): SecretError {
  if (error instanceof SecretError) return error;
  const e = (error ?? {}) as SdkErrorLike;
  const name = errorName(error);
  const status = e.$metadata?.httpStatusCode;
  const attempts = e.$metadata?.attempts;
  const tried = attempts && attempts > 1 ? ` after ${attempts} attempts with backoff` : "";
  const said = typeof e.message === "string" ? e.message.replace(/\s+/g, " ").slice(0, 200) : "";

  if (name === "ResourceNotFoundException") {
    return new SecretError(
      "SECRET_NOT_FOUND",
      `AWS Secrets Manager has no ${subject} (ResourceNotFoundException)`,
    );
  }
  if (name === "AccessDeniedException") {
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `AWS denied ${action} on ${subject} (AccessDeniedException): grant secretsmanager:${action} on it to the credentials duckcron runs with`,
    );
  }
  if (name === "DecryptionFailure") {
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `AWS could not decrypt ${subject} with its KMS key (DecryptionFailure): grant kms:Decrypt on the secret's key, or check the key is enabled`,
    );
  }
  if (BAD_CREDENTIALS.has(name)) {
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `AWS rejected the credentials for ${action} on ${subject} (${name}): check the access key, secret key and session token found by the SDK's default chain`,
    );
  }
  if (name === "CredentialsProviderError") {
    return new SecretError(
      "SECRET_ACCESS_DENIED",
      `no AWS credentials for ${action} on ${subject}: the SDK's default chain found none (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance/task role)`,
    );
  }
  if (THROTTLING.has(name) || status === 429) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `AWS throttled ${action} on ${subject} (${name || "429"})${tried}; retryable: the run can be retried later`,
      { retryable: true },
    );
  }
  if (name === "InternalServiceError" || (status !== undefined && status >= 500)) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `AWS Secrets Manager failed ${action} on ${subject} (${name || `HTTP ${status}`})${tried}; retryable: the run can be retried later`,
      { retryable: true },
    );
  }
  if (name === "TimeoutError" || name === "RequestTimeout") {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `AWS Secrets Manager did not answer ${action} on ${subject} in time (runner.secrets.timeout)${tried}; retryable`,
      { retryable: true },
    );
  }
  if (NETWORK.test(String(e.code ?? "")) || /socket hang up|ECONNRESET|ECONNREFUSED/.test(said)) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      `AWS Secrets Manager could not be reached for ${action} on ${subject} (${e.code ?? "connection failed"}); retryable: check endpoint/region and the network`,
      { retryable: true },
    );
  }
  if (name === "SyntaxError" || /Deserialization error|JSON/i.test(said)) {
    return new SecretError(
      "SECRET_INVALID",
      `AWS Secrets Manager answered ${action} on ${subject} with a body that is not valid JSON; check runner.secrets.endpoint points at Secrets Manager`,
    );
  }
  if (/Region is missing/i.test(said)) {
    return new SecretError(
      "SECRET_BACKEND_UNAVAILABLE",
      "no AWS region: set runner.secrets.region_name, or AWS_REGION / a profile region for the SDK's default chain",
    );
  }
  if (
    name === "InvalidRequestException" ||
    name === "InvalidParameterException" ||
    name === "ValidationException"
  ) {
    return new SecretError(
      "SECRET_INVALID",
      `AWS refused ${action} on ${subject} (${name}: ${said})`,
    );
  }
  return new SecretError(
    "SECRET_BACKEND_UNAVAILABLE",
    `${action} on ${subject} failed (${name || "error"}${status ? `, HTTP ${status}` : ""})`,
    { retryable: status === undefined || status >= 500 },
  );
}

/** A per-id entry of BatchGetSecretValue's `Errors` list, as the same kind of error. */
export function batchEntryError(code: string | undefined, subject: string): SecretError {
  return awsError({ name: code ?? "UnknownError", message: "" }, subject, "GetSecretValue");
}
