import type { JobFile } from "../config/job-schema.js";
import { parseTemplate } from "../config/template.js";
import type { SourceLocation } from "../errors.js";

/** One `${secret:name}` or `${secret:name.key}` found in a job file. */
export interface SecretRef {
  name: string;
  key?: string | undefined;
  /** As written, e.g. `${secret:db.password}`. */
  raw: string;
  /** Where in the job it sits: ["duckdb","secrets",0,"key_id"], or one level deeper for map params. */
  path: readonly (string | number)[];
  location?: SourceLocation | undefined;
}

/** Maps a path inside the job file to its position, when the loader kept positions. */
export type Locate = (path: readonly (string | number)[]) => SourceLocation | undefined;

/**
 * Every secret reference in duckdb.secrets[].params (map values included), in file
 * order, duplicates kept: the resolver de-duplicates, and each occurrence keeps its
 * own location for error messages.
 */
export function collectSecretRefs(job: JobFile, locate?: Locate): SecretRef[] {
  const refs: SecretRef[] = [];
  const visit = (text: string, path: readonly (string | number)[]) => {
    for (const part of parseTemplate(text)) {
      if (part.kind !== "secret") continue;
      // Positions are looked up only when an error message needs one: finding them
      // may mean parsing the job file again with positions.
      refs.push({
        name: part.name,
        key: part.key,
        raw: part.raw,
        path,
        get location() {
          return locate?.(path);
        },
      });
    }
  };
  job.duckdb.secrets.forEach((secret, index) => {
    for (const [param, value] of Object.entries(secret.params)) {
      const path = ["duckdb", "secrets", index, param] as const;
      if (typeof value === "string") visit(value, path);
      else if (typeof value === "object" && value !== null) {
        for (const [entry, text] of Object.entries(value)) visit(text, [...path, entry]);
      }
    }
  });
  return refs;
}

/** `duckdb.secrets[0].extra_http_headers.X-Api-Key`, the way config errors print paths. */
export function formatRefPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const segment of path) {
    out += typeof segment === "number" ? `[${segment}]` : out === "" ? segment : `.${segment}`;
  }
  return out;
}

/** `file:line:col: duckdb.secrets[0].key_id` (the location only when known). */
export function describeRef(ref: Pick<SecretRef, "path" | "location">): string {
  const path = formatRefPath(ref.path);
  if (!ref.location) return path;
  const { file, line, col } = ref.location;
  return `${file}:${line}:${col}: ${path}`;
}
