import type { SecretLayout } from "../config/runner-schema.js";
import { SecretError } from "../errors.js";
import type { FetchedSecret } from "./backend.js";
import { objectFields, structuredFields } from "./structured.js";

/**
 * The layouts shared by the cloud secret managers (AWS, GCP, Azure):
 * - bundle: one secret per tenant holding a JSON object whose keys are the names;
 * - per_name: one secret per tenant and name;
 * - auto: bundle, and per_name when the bundle does not exist (two calls for such
 *   tenants; set the layout to save one).
 * A backend supplies the two reads; this module decides which run.
 */
export interface LayoutReads {
  /** Undefined when the tenant's bundle secret does not exist. */
  bundle(): Promise<Map<string, FetchedSecret> | undefined>;
  perName(): Promise<Map<string, FetchedSecret>>;
}

export async function readLayout(
  layout: SecretLayout,
  reads: LayoutReads,
): Promise<Map<string, FetchedSecret>> {
  switch (layout) {
    case "bundle":
      return (await reads.bundle()) ?? new Map();
    case "per_name":
      return reads.perName();
    case "auto":
      return (await reads.bundle()) ?? reads.perName();
    default: {
      const never: never = layout;
      throw new Error(`unhandled layout ${String(never)}`);
    }
  }
}

/** How `locationOf` words a name under each layout. */
export function layoutLocation(
  layout: SecretLayout,
  bundle: string,
  perName: string,
  name: string,
) {
  switch (layout) {
    case "bundle":
      return `${bundle}, key "${name}"`;
    case "per_name":
      return perName;
    case "auto":
      return `${bundle} (key "${name}") or ${perName}`;
    default: {
      const never: never = layout;
      return never;
    }
  }
}

/**
 * The requested names out of a bundle secret's text. `subject` names the secret in
 * the error; the text itself never reaches a message.
 */
export function bundleEntries(
  text: string,
  names: readonly string[],
  subject: string,
): Map<string, FetchedSecret> {
  const fields = objectFields(parseJson(text));
  if (!fields) {
    throw new SecretError(
      "SECRET_INVALID",
      `${subject} is not a JSON object; the bundle layout stores {"<name>": "<value>", ...} in it (or set layout: per_name)`,
    );
  }
  const found = new Map<string, FetchedSecret>();
  for (const name of names) {
    if (!Object.hasOwn(fields, name)) continue;
    found.set(name, toFetched(fields[name] as string));
  }
  return found;
}

export function toFetched(text: string): FetchedSecret {
  const fields = structuredFields(text);
  return fields ? { text, fields } : { text };
}

/** Never throws: a parser's message would quote the secret. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
