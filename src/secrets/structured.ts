/**
 * The keys of a secret stored as a JSON object, for `${secret:name.key}`. Values
 * that are not strings are kept as their JSON text (`5432`, `true`, `{"a":1}`).
 * Returns undefined for anything that is not a JSON object; never throws, because
 * a parser's error message would quote the secret.
 */
export function structuredFields(text: string): Record<string, string> | undefined {
  if (!text.trimStart().startsWith("{")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return objectFields(parsed);
}

export function objectFields(value: unknown): Record<string, string> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const fields: Record<string, string> = {};
  for (const [key, field] of Object.entries(value)) {
    fields[key] = typeof field === "string" ? field : JSON.stringify(field);
  }
  return fields;
}
