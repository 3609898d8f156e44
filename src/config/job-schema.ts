import { closest } from "fastest-levenshtein";
import { z } from "zod";
import {
  type ParamKind,
  SECRET_TYPE_NAMES,
  SECRET_TYPES,
  type SecretType,
  type SecretTypeSpec,
} from "./secret-types.js";
import { parseTemplate, TemplateSyntaxError } from "./template.js";

/**
 * A job file: one DuckDB catalog. Key names follow Duckalog's catalog YAML where it
 * has one. The schema is the only source of the catalog definition's types.
 *
 * Strings may hold references. `${tenant}` is allowed anywhere a path or value is;
 * `${secret:...}` only inside duckdb.secrets[], so credentials are bound as DuckDB
 * secret parameters and never written into a view definition or the catalog file.
 */

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Lower-case because DuckDB lower-cases secret names and uses them as file names. */
export const SECRET_OBJECT_NAME = /^[a-z_][a-z0-9_]*$/;
const EXTENSION_NAME = /^[a-z][a-z0-9_]*$/;
const SETTING_NAME = /^[a-z_][a-z0-9_]*$/;

const identifier = z
  .string()
  .regex(IDENTIFIER, "use letters, digits and '_', not starting with a digit");

/** duckcron's own schema and the catalogs' built-in ones: a view there would shadow or break them. */
const RESERVED_SCHEMAS = ["duckcron", "information_schema", "pg_catalog"];
/** The name a catalog being built is attached under in its build's DuckDB instance. */
export const BUILD_DATABASE = "duckcron_build";
/**
 * DuckDB refuses these as database names (system, temp, main), they are schemas
 * above, or a build's instance holds them (its in-memory default and the catalog).
 */
const RESERVED_ALIASES = [...RESERVED_SCHEMAS, "system", "temp", "main", "memory", BUILD_DATABASE];

function notReserved(reserved: readonly string[], what: string) {
  return identifier.refine((name) => !reserved.includes(name.toLowerCase()), {
    message: `"${reserved.join('", "')}" are reserved; pick another ${what}`,
  });
}

function templateString(allowSecrets: boolean) {
  return z.string().superRefine((value, ctx) => {
    let parts: ReturnType<typeof parseTemplate>;
    try {
      parts = parseTemplate(value);
    } catch (error) {
      if (error instanceof TemplateSyntaxError) {
        ctx.addIssue({ code: "custom", message: error.message });
        return;
      }
      throw error;
    }
    for (const part of parts) {
      if (part.kind === "secret" && !allowSecrets) {
        ctx.addIssue({
          code: "custom",
          message: `${part.raw}: secret references are only allowed in duckdb.secrets[]; register a DuckDB secret and refer to it by name`,
        });
      }
      // Env references are substituted when the file loads; one still here was escaped.
    }
  });
}

/** A string that may hold ${tenant}. */
export const plainTemplate = templateString(false);
/** A string that may hold ${tenant} and ${secret:...}. */
export const secretTemplate = templateString(true);

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const extensionSchema = z.union([
  z.string().regex(EXTENSION_NAME, "extension names are lower-case letters, digits and '_'"),
  z.strictObject({
    name: z
      .string()
      .regex(EXTENSION_NAME, "extension names are lower-case letters, digits and '_'"),
    /** A repository URL or local directory laid out as v<version>/<platform>/<name>.duckdb_extension. */
    repository: z.string().min(1).optional(),
  }),
]);

const RESERVED_SECRET_KEYS = new Set(["name", "type", "provider", "persistent", "scope"]);
const secretParamValue = z.union([
  secretTemplate,
  z.number(),
  z.boolean(),
  z.record(z.string(), secretTemplate),
]);

export const secretSchema = z
  .object({
    name: z
      .string()
      .regex(
        SECRET_OBJECT_NAME,
        "secret names are lower-case letters, digits and '_' (DuckDB lower-cases them and uses them as file names)",
      ),
    type: z.enum(SECRET_TYPE_NAMES as [SecretType, ...SecretType[]]),
    provider: z.string().optional(),
    /** Temporary (in memory, per build) unless asked otherwise. */
    persistent: z.boolean().default(false),
    scope: z.union([plainTemplate, z.array(plainTemplate).min(1)]).optional(),
  })
  // Every other key is a DuckDB parameter; the refinement below checks it per type.
  .catchall(secretParamValue)
  .superRefine((entry, ctx) => {
    const spec: SecretTypeSpec = SECRET_TYPES[entry.type];
    const provider = entry.provider ?? spec.defaultProvider;
    const providerSpec = spec.providers[provider];
    if (!providerSpec) {
      ctx.addIssue({
        code: "custom",
        path: ["provider"],
        message: `secret type "${entry.type}" has no provider "${provider}" (use one of: ${Object.keys(spec.providers).join(", ")})`,
      });
      return;
    }
    if (entry.scope !== undefined && !spec.scoped) {
      ctx.addIssue({
        code: "custom",
        path: ["scope"],
        message: `DuckDB ignores scope for ${entry.type} secrets; attach with \`secret: ${entry.name}\` instead`,
      });
    }
    const given = new Set<string>();
    for (const [key, value] of Object.entries(entry)) {
      if (RESERVED_SECRET_KEYS.has(key)) continue;
      const canonical = spec.aliases?.[key] ?? key;
      const kind: ParamKind | undefined = providerSpec.params[canonical];
      if (kind === undefined) {
        const known = Object.keys(providerSpec.params);
        const hint = known.length > 0 ? ` (did you mean "${closest(key, known)}"?)` : "";
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `unknown parameter for ${entry.type} secrets with provider ${provider}${hint}`,
        });
        continue;
      }
      if (given.has(canonical)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `"${canonical}" is given twice (once through an alias)`,
        });
      }
      given.add(canonical);
      const problem = checkKind(kind, value);
      if (problem) ctx.addIssue({ code: "custom", path: [key], message: problem });
    }
    for (const anyOf of providerSpec.requires ?? []) {
      if (!anyOf.some((key) => given.has(key))) {
        ctx.addIssue({
          code: "custom",
          message:
            anyOf.length === 1
              ? `${entry.type} secrets with provider ${provider} need "${anyOf[0]}"`
              : `${entry.type} secrets with provider ${provider} need one of: ${anyOf.join(", ")}`,
        });
      }
    }
  })
  .transform((entry) => {
    const spec: SecretTypeSpec = SECRET_TYPES[entry.type];
    const params: Record<string, SecretParamValue> = {};
    for (const [key, value] of Object.entries(entry)) {
      if (RESERVED_SECRET_KEYS.has(key)) continue;
      params[spec.aliases?.[key] ?? key] = value as SecretParamValue;
    }
    return {
      name: entry.name,
      type: entry.type,
      provider: entry.provider,
      persistent: entry.persistent,
      scope:
        entry.scope === undefined
          ? undefined
          : Array.isArray(entry.scope)
            ? entry.scope
            : [entry.scope],
      params,
    };
  });

export type SecretParamValue = string | number | boolean | Record<string, string>;

function checkKind(kind: ParamKind, value: unknown): string | undefined {
  switch (kind) {
    case "string":
      return typeof value === "string" || typeof value === "number"
        ? undefined
        : "expected a string";
    case "boolean":
      return typeof value === "boolean" || (typeof value === "string" && value.includes("${"))
        ? undefined
        : "expected true or false";
    case "integer":
      return (typeof value === "number" && Number.isInteger(value)) ||
        (typeof value === "string" && /^(\d+|.*\$\{.*)$/.test(value))
        ? undefined
        : "expected a whole number";
    case "map":
      return typeof value === "object" && value !== null && !Array.isArray(value)
        ? undefined
        : "expected a mapping of names to strings";
    default: {
      const never: never = kind;
      return never;
    }
  }
}

export const attachmentSchema = z
  .strictObject({
    alias: notReserved(RESERVED_ALIASES, "alias"),
    type: z.enum(["duckdb", "sqlite", "postgres", "mysql"]).default("duckdb"),
    /** File path (duckdb, sqlite) or connection string (postgres, mysql). */
    path: plainTemplate.optional(),
    /** Name of a duckdb.secrets[] entry holding the connection's credentials. */
    secret: z.string().regex(SECRET_OBJECT_NAME).optional(),
    read_only: z.boolean().default(true),
  })
  .superRefine((a, ctx) => {
    if ((a.type === "duckdb" || a.type === "sqlite") && a.path === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["path"],
        message: `${a.type} attachments need a path`,
      });
    }
    if (
      (a.type === "postgres" || a.type === "mysql") &&
      a.path === undefined &&
      a.secret === undefined
    ) {
      ctx.addIssue({
        code: "custom",
        message: `${a.type} attachments need \`secret:\` (a duckdb.secrets[] name) or a \`path\``,
      });
    }
  });

const FILE_SOURCES = ["parquet", "csv", "json"] as const;
const DATABASE_SOURCES = ["duckdb", "sqlite", "postgres", "mysql"] as const;

export const viewSchema = z
  .strictObject({
    name: notReserved(RESERVED_SCHEMAS, "name"),
    schema: notReserved(RESERVED_SCHEMAS, "schema").optional(),
    source: z.enum([...FILE_SOURCES, ...DATABASE_SOURCES]).optional(),
    /** One path or glob, or several, for file sources. */
    uri: z.union([plainTemplate, z.array(plainTemplate).min(1)]).optional(),
    /** Options passed to read_parquet/read_csv/read_json, e.g. { header: true }. */
    options: z.record(z.string().regex(SETTING_NAME), scalar).optional(),
    /** Attachment alias and table (schema.table allowed) for database sources. */
    database: identifier.optional(),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/)
      .optional(),
    /** A SELECT over other views or attachments. ${tenant} is allowed. */
    sql: plainTemplate.optional(),
    /** `table` snapshots the data into the catalog at build time. */
    materialize: z.enum(["view", "table"]).default("view"),
    description: z.string().optional(),
  })
  .superRefine((v, ctx) => {
    const forms = [v.sql !== undefined, v.uri !== undefined, v.table !== undefined].filter(
      Boolean,
    ).length;
    if (forms !== 1) {
      ctx.addIssue({
        code: "custom",
        message:
          "a view needs exactly one of: `sql`, `source` + `uri` (files), `database` + `table` (attachments)",
      });
      return;
    }
    if (v.uri !== undefined && !FILE_SOURCES.includes(v.source as (typeof FILE_SOURCES)[number])) {
      ctx.addIssue({
        code: "custom",
        path: ["source"],
        message: "file views need `source: parquet | csv | json`",
      });
    }
    if (v.table !== undefined && v.database === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["database"],
        message: "name the attachment alias the table lives in",
      });
    }
    if (v.options !== undefined && v.uri === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["options"],
        message: "options apply to file views only",
      });
    }
  });

export const duckdbSectionSchema = z.strictObject({
  /** The catalog file; usually holds ${tenant}. Relative to the job file. */
  database: plainTemplate.refine((p) => p.trim() !== "" && p !== ":memory:", {
    message: "the catalog needs a file path (not :memory:)",
  }),
  /** Pre-staged extensions (laid out as v<version>/<platform>/<name>.duckdb_extension). */
  extension_directory: z.string().min(1).optional(),
  install_extensions: z.array(extensionSchema).default([]),
  load_extensions: z.array(extensionSchema).default([]),
  /** DuckDB settings, applied when the instance is created. */
  settings: z
    .record(z.string().regex(SETTING_NAME, "setting names are lower-case"), scalar)
    .default({}),
  secrets: z.array(secretSchema).default([]),
});

export const jobFileSchema = z
  .strictObject({
    version: z.literal(1),
    duckdb: duckdbSectionSchema,
    attachments: z.array(attachmentSchema).default([]),
    views: z.array(viewSchema).default([]),
  })
  .superRefine((job, ctx) => {
    const dup = <T>(items: readonly T[], key: (item: T) => string, path: string, what: string) => {
      const seen = new Map<string, number>();
      items.forEach((item, index) => {
        const k = key(item).toLowerCase();
        const first = seen.get(k);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [...path.split("."), index],
            message: `duplicate ${what} "${key(item)}" (first at ${path}[${first}])`,
          });
        } else seen.set(k, index);
      });
    };
    dup(job.duckdb.secrets, (s) => s.name, "duckdb.secrets", "secret name");
    dup(job.attachments, (a) => a.alias, "attachments", "attachment alias");
    dup(job.views, (v) => `${v.schema ?? "main"}.${v.name}`, "views", "view");

    const secretNames = new Set(job.duckdb.secrets.map((s) => s.name));
    const aliases = new Set(job.attachments.map((a) => a.alias));
    job.attachments.forEach((a, index) => {
      if (a.secret !== undefined && !secretNames.has(a.secret)) {
        ctx.addIssue({
          code: "custom",
          path: ["attachments", index, "secret"],
          message: `no duckdb.secrets[] entry named "${a.secret}"`,
        });
      }
    });
    job.views.forEach((v, index) => {
      if (v.database !== undefined && !aliases.has(v.database)) {
        ctx.addIssue({
          code: "custom",
          path: ["views", index, "database"],
          message: `no attachment with alias "${v.database}"`,
        });
      }
    });
  });

export type JobFile = z.output<typeof jobFileSchema>;
export type DuckdbSection = JobFile["duckdb"];
export type SecretDefinition = z.output<typeof secretSchema>;
export type AttachmentDefinition = z.output<typeof attachmentSchema>;
export type ViewDefinition = z.output<typeof viewSchema>;
export type ExtensionRef = z.output<typeof extensionSchema>;
