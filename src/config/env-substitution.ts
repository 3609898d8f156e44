import type { ConfigIssue } from "../errors.js";
import { parseTemplate, TemplateSyntaxError } from "./template.js";
import type { ConfigPath, YamlSource } from "./yaml-source.js";

/**
 * `${env:NAME}` / `${NAME}` are replaced when a file loads, in every string scalar,
 * before validation. Single-pass: substituted text is never scanned again. In fields
 * that are parsed as templates later, literal text is re-escaped (`${` -> `$${`) and
 * `${secret:..}` / `${tenant}` are re-emitted as written; everywhere else the result
 * is the final plain string.
 */

export interface EnvUse {
  path: ConfigPath;
  name: string;
  value: string;
}

export interface SubstitutionContext {
  source: YamlSource;
  env: NodeJS.ProcessEnv;
  /** The YAML path the user wrote for a value path (they differ for aliased layouts). */
  displayPath(path: ConfigPath): string;
  /** runner.yaml has no tenant and no secrets of its own: references there are errors. */
  allowRuntimeReferences: boolean;
  /** Whether the string at `path` is parsed as a template later. */
  isTemplate(path: ConfigPath): boolean;
}

export interface SubstitutionResult {
  value: unknown;
  issues: ConfigIssue[];
  uses: EnvUse[];
  /** Paths whose string could not be substituted (validating them again only repeats the issue). */
  failed: ConfigPath[];
}

export function substituteEnv(input: unknown, ctx: SubstitutionContext): SubstitutionResult {
  const issues: ConfigIssue[] = [];
  const uses: EnvUse[] = [];
  const failed: ConfigPath[] = [];
  const issue = (path: ConfigPath, message: string) => {
    if (failed.at(-1) !== path) failed.push(path);
    issues.push({
      ...ctx.source.locate(path),
      path: ctx.displayPath(path),
      message,
      severity: "error",
    });
  };

  const visit = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === "string") return substituteString(value, path);
    if (Array.isArray(value)) return value.map((item, index) => visit(item, [...path, index]));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([key, child]) => [key, visit(child, [...path, key])]),
      );
    }
    return value;
  };

  const substituteString = (input: string, path: ConfigPath): unknown => {
    if (!input.includes("${")) return input;
    let parts: ReturnType<typeof parseTemplate>;
    try {
      parts = parseTemplate(input);
    } catch (error) {
      if (!(error instanceof TemplateSyntaxError)) throw error;
      issue(path, error.message);
      return input;
    }
    const template = ctx.allowRuntimeReferences && ctx.isTemplate(path);
    // Literal runs (file text plus env values) and references kept for later, in order.
    const segments: ({ literal: string } | { raw: string })[] = [];
    const pushLiteral = (text: string) => {
      const last = segments.at(-1);
      if (last && "literal" in last) last.literal += text;
      else segments.push({ literal: text });
    };
    let failed = false;
    for (const part of parts) {
      switch (part.kind) {
        case "text":
          pushLiteral(part.text);
          break;
        case "env": {
          const value = ctx.env[part.name];
          if (value === undefined) {
            issue(path, `environment variable ${part.name} is not set (${part.raw})`);
            failed = true;
          } else {
            uses.push({ path, name: part.name, value });
            pushLiteral(value);
          }
          break;
        }
        case "secret":
        case "tenant":
          if (!ctx.allowRuntimeReferences) {
            issue(
              path,
              part.kind === "secret"
                ? `${part.raw}: secret references belong in job files (duckdb.secrets[]); runner.yaml takes \${env:NAME}`
                : `${part.raw}: runner.yaml has no tenant; \${tenant} works in job files`,
            );
            failed = true;
          } else if (!template) {
            issue(
              path,
              part.kind === "secret"
                ? `${part.raw}: secret references are only allowed in duckdb.secrets[]; register a DuckDB secret and refer to it by name`
                : `${part.raw}: this field does not take \${tenant}`,
            );
            failed = true;
          } else {
            segments.push({ raw: part.raw });
          }
          break;
        default: {
          const never: never = part;
          return never;
        }
      }
    }
    if (failed) return input;

    if (!template) {
      const text = segments.map((s) => ("literal" in s ? s.literal : s.raw)).join("");
      const only = parts.length === 1 && parts[0]?.kind === "env";
      return only && ctx.source.isPlainScalar(path) ? coerceScalar(text) : text;
    }
    let out = "";
    for (const [index, segment] of segments.entries()) {
      if ("raw" in segment) {
        out += segment.raw;
        continue;
      }
      if (segment.literal.endsWith("$") && segments[index + 1] !== undefined) {
        // "$" right before "${" would read as the "$${" escape; the grammar has no way to say it.
        issue(path, 'a "$" directly before a reference cannot be expressed; add a separator');
        return input;
      }
      // A function, because "$$" in a replacement string means one "$".
      out += segment.literal.replaceAll("${", () => "$${");
    }
    return out;
  };

  return { value: visit(input, []), issues, uses, failed };
}

/** An unquoted `port: ${env:PORT}` means what `port: 5432` would. */
function coerceScalar(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === "true") return true;
  if (text === "false") return false;
  return text;
}
