import type { z } from "zod";
import type { ConfigPath } from "./yaml-source.js";

/**
 * Reads the zod schemas themselves, so the allowed keys for "did you mean" and the
 * set of template-bearing fields never drift from the schema (there is no second list).
 */

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  options?: readonly z.ZodType[];
  element?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  getter?: () => z.ZodType;
  checks?: readonly unknown[];
}

const def = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The concrete schemas a value may meet: wrappers removed, unions spread. */
function concrete(schema: z.ZodType, depth = 0): z.ZodType[] {
  if (depth > 32) return [];
  const d = def(schema);
  switch (d.type) {
    case "default":
    case "prefault":
    case "optional":
    case "nullable":
    case "readonly":
    case "catch":
    case "nonoptional":
      return d.innerType ? concrete(d.innerType, depth + 1) : [];
    case "pipe":
      // The input side is what the YAML has to look like.
      return d.in ? concrete(d.in, depth + 1) : [];
    case "lazy":
      return d.getter ? concrete(d.getter(), depth + 1) : [];
    case "union":
      return (d.options ?? []).flatMap((option) => concrete(option, depth + 1));
    default:
      return [schema];
  }
}

/** Schemas the value at `path` (below `root`) may be checked against. */
export function schemasAt(root: z.ZodType, path: ConfigPath): z.ZodType[] {
  let current = concrete(root);
  for (const segment of path) {
    const next: z.ZodType[] = [];
    for (const schema of current) {
      const d = def(schema);
      if (d.type === "unknown" || d.type === "any") {
        next.push(schema);
      } else if (d.type === "object") {
        const field = typeof segment === "string" ? d.shape?.[segment] : undefined;
        if (field) next.push(field);
        else if (d.catchall && def(d.catchall).type !== "never") next.push(d.catchall);
      } else if (d.type === "array" && typeof segment === "number" && d.element) {
        next.push(d.element);
      } else if (d.type === "record" && d.valueType) {
        next.push(d.valueType);
      }
    }
    current = next.flatMap((schema) => concrete(schema));
  }
  return current;
}

/** Keys an object at `path` accepts (all union branches together), sorted. */
export function allowedKeys(root: z.ZodType, path: ConfigPath): string[] {
  const keys = new Set<string>();
  for (const schema of schemasAt(root, path)) {
    const d = def(schema);
    if (d.type === "object") for (const key of Object.keys(d.shape ?? {})) keys.add(key);
  }
  return [...keys].sort();
}

/**
 * True when a string at `path` is parsed as a template later (so `${tenant}` and
 * `${secret:..}` stay as written and substituted text must be escaped). A schema
 * counts as a template when it carries one of the markers' checks; `.refine()` on a
 * marker keeps its checks, so refined template fields count too.
 */
export function isTemplateField(root: z.ZodType, path: ConfigPath, markers: readonly z.ZodType[]) {
  const markerChecks = new Set(markers.flatMap((marker) => def(marker).checks ?? []));
  return schemasAt(root, path).some((schema) => {
    const d = def(schema);
    // Open objects (DuckDB secret parameters) take template strings for their extra keys.
    if (d.type === "unknown" || d.type === "any") return true;
    return d.type === "string" && (d.checks ?? []).some((check) => markerChecks.has(check));
  });
}
