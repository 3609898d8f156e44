import { z } from "zod";
import { jobFileSchema } from "../config/job-schema.js";
import { runnerFileSchema } from "../config/runner-schema.js";
import { type ParamKind, SECRET_TYPES, type SecretTypeSpec } from "../config/secret-types.js";
import { DuckcronError } from "../errors.js";
import { parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

/**
 * JSON Schema for editors (yaml-language-server, VS Code, IntelliJ), generated from
 * the zod schemas so it cannot say something the loader does not. It is the input
 * side: fields with defaults are optional. Checks zod cannot express in JSON Schema
 * (cron syntax, ${...} references, cross-field rules) are left to `duckcron validate`.
 *
 * `npm run schemas` writes the committed copies in schemas/; a test fails when they drift.
 */

export const SCHEMA_KINDS = ["runner", "job"] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

type JsonSchema = Record<string, unknown>;

const USAGE = COMMAND_USAGE.schema;

const HEADERS: Record<SchemaKind, { id: string; title: string; description: string }> = {
  runner: {
    id: "runner.schema.json",
    title: "duckcron runner.yaml",
    description:
      "Schedules, tenants and the one secrets backend they share. Generated from duckcron's zod schema by `duckcron schema runner`; `duckcron validate` checks what JSON Schema cannot (cron expressions, time zones, references).",
  },
  job: {
    id: "job.schema.json",
    title: "duckcron job file",
    description:
      "One DuckDB catalog per tenant: database path, extensions, settings, DuckDB secrets, attachments and views. Generated from duckcron's zod schema by `duckcron schema job`; `duckcron validate` checks what JSON Schema cannot (references, per-provider required parameters, cross references).",
  },
};

export function jsonSchemaFor(kind: SchemaKind): JsonSchema {
  const schema = kind === "runner" ? runnerFileSchema : jobFileSchema;
  // Refinements and transforms have no JSON Schema form; their input side is what editors need.
  const generated = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const { $schema, ...rest } = generated;
  const header = HEADERS[kind];
  const out: JsonSchema = {
    $schema,
    $id: header.id,
    title: header.title,
    description: header.description,
    ...rest,
  };
  if (kind === "job") describeSecretParameters(out);
  return out;
}

/** The committed file's text: stable key order, two-space indent, trailing newline. */
export function renderSchema(kind: SchemaKind): string {
  return `${JSON.stringify(jsonSchemaFor(kind), null, 2)}\n`;
}

/**
 * duckdb.secrets[] entries are loose objects checked against secret-types.ts in a
 * refinement, which JSON Schema cannot see. Spell the table out as if/then branches
 * so editors complete parameter names and providers per secret type.
 */
function describeSecretParameters(job: JsonSchema): void {
  const item = pick(job, ["properties", "duckdb", "properties", "secrets", "items"]);
  if (item === undefined) {
    throw new Error(
      "job schema shape changed: duckdb.secrets[] not found; update src/cli/schema.ts",
    );
  }
  item.allOf = Object.entries(SECRET_TYPES).map(([type, spec]: [string, SecretTypeSpec]) => ({
    if: { properties: { type: { const: type } }, required: ["type"] },
    // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword, not a thenable.
    then: {
      description: spec.extension
        ? `DuckDB secret type ${type} (from the ${spec.extension} extension)`
        : `DuckDB secret type ${type} (built into DuckDB)`,
      properties: {
        provider: {
          type: "string",
          enum: Object.keys(spec.providers),
          default: spec.defaultProvider,
        },
        ...paramProperties(spec),
      },
    },
  }));
}

function paramProperties(spec: SecretTypeSpec): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const provider of Object.values(spec.providers)) {
    for (const [name, kind] of Object.entries(provider.params)) out[name] = paramSchema(kind);
  }
  for (const [alias, canonical] of Object.entries(spec.aliases ?? {})) {
    out[alias] = { ...(out[canonical] ?? {}), description: `Alias of ${canonical}` };
  }
  return out;
}

/** `${...}` references are strings until resolved, whatever the parameter's type. */
function paramSchema(kind: ParamKind): JsonSchema {
  switch (kind) {
    case "string":
      return { type: ["string", "number"] };
    case "boolean":
      return { type: ["boolean", "string"] };
    case "integer":
      return { type: ["integer", "string"] };
    case "map":
      return { type: "object", additionalProperties: { type: "string" } };
    default: {
      const never: never = kind;
      return never;
    }
  }
}

function pick(root: JsonSchema, path: readonly string[]): JsonSchema | undefined {
  let node: unknown = root;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as JsonSchema)[key];
  }
  return typeof node === "object" && node !== null ? (node as JsonSchema) : undefined;
}

export default async function schema(argv: string[]): Promise<number> {
  try {
    const { positionals } = parseCommandArgs(argv, {}, USAGE);
    const [kind, ...extra] = positionals;
    if (!SCHEMA_KINDS.includes(kind as SchemaKind) || extra.length > 0) {
      throw new DuckcronError("USAGE", `name one schema: runner or job\nusage: ${USAGE}`);
    }
    process.stdout.write(renderSchema(kind as SchemaKind));
    return EXIT.ok;
  } catch (error) {
    writeError(error);
    return exitCodeFor(error);
  }
}
