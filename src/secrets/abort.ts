import { TENANT_ID } from "../config/runner-schema.js";
import { SecretError } from "../errors.js";

/**
 * Stops waiting for `promise` when `signal` aborts, rejecting with the signal's
 * reason. For clients that take no AbortSignal: the request itself runs on until
 * its own timeout, but the run does not wait for it.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Tenant ids become part of a store path; anything the schema would refuse never reaches a store. */
export function assertTenant(tenant: string): void {
  if (!TENANT_ID.test(tenant)) {
    throw new SecretError(
      "INVALID_NAME",
      `tenant id ${JSON.stringify(tenant.slice(0, 64))} is not allowed (letters, digits, '_' and '-')`,
    );
  }
}
