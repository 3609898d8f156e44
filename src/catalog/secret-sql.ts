import type { SecretDefinition } from "../config/job-schema.js";
import { type ParamKind, SECRET_TYPES, type SecretTypeSpec } from "../config/secret-types.js";
import { CatalogError } from "../errors.js";
import { type RenderContext, render } from "./render.js";
import { keyword, quoteIdentifier, quoteLiteral } from "./sql.js";
import type { PlanParam, Statement } from "./statement.js";

/** Collects `$n` placeholders and their values for one statement. */
class Params {
  readonly list: PlanParam[] = [];
  add(value: PlanParam["value"], sensitive: boolean): string {
    this.list.push({ value, sensitive });
    return `$${this.list.length}`;
  }
}

/**
 * CREATE OR REPLACE [PERSISTENT|TEMPORARY] SECRET with every value bound as a
 * parameter: credentials never become SQL text, and quoting cannot go wrong. Only
 * the name, type, provider and option keys are inlined, all validated.
 */
export function createSecretStatement(
  secret: SecretDefinition,
  ctx: RenderContext,
  existedBefore: boolean,
): Statement {
  const spec: SecretTypeSpec = SECRET_TYPES[secret.type];
  const provider = secret.provider ?? spec.defaultProvider;
  const providerSpec = spec.providers[provider];
  const target = `secret ${secret.name}`;
  if (!providerSpec) {
    throw new CatalogError(
      "CONFIG_INVALID",
      `${target}: type ${secret.type} has no provider ${provider}`,
    );
  }
  const params = new Params();
  const options = [`TYPE ${keyword(secret.type, "secret type")}`];
  if (secret.provider !== undefined)
    options.push(`PROVIDER ${keyword(secret.provider, "secret provider")}`);

  const scope = (secret.scope ?? []).map((s) => render(s, ctx, `${target}: scope`));
  if (scope.length > 0) {
    options.push(`SCOPE [${scope.map((s) => params.add(s.text, s.sensitive)).join(", ")}]`);
  }

  for (const [key, raw] of Object.entries(secret.params)) {
    const kind: ParamKind | undefined = providerSpec.params[key];
    if (kind === undefined) {
      throw new CatalogError(
        "CONFIG_INVALID",
        `${target}: unknown parameter ${key} for ${secret.type}/${provider}`,
      );
    }
    const name = keyword(key, "secret parameter").toUpperCase();
    const where = `${target}: ${key}`;
    options.push(`${name} ${valueSql(kind, raw, ctx, where, params)}`);
  }

  return {
    stage: "secret",
    target,
    sql: `CREATE OR REPLACE ${secret.persistent ? "PERSISTENT" : "TEMPORARY"} SECRET ${quoteIdentifier(secret.name)} (${options.join(", ")})`,
    params: params.list,
    secret: {
      name: secret.name,
      type: secret.type,
      persistent: secret.persistent,
      scope: scope.map((s) => s.text),
      action: existedBefore ? "replaced" : "created",
    },
  };
}

function valueSql(
  kind: ParamKind,
  raw: SecretDefinition["params"][string],
  ctx: RenderContext,
  where: string,
  params: Params,
): string {
  switch (kind) {
    case "string": {
      if (typeof raw === "number") return params.add(String(raw), false);
      if (typeof raw !== "string")
        throw new CatalogError("CONFIG_INVALID", `${where}: expected a string`);
      const r = render(raw, ctx, where);
      return params.add(r.text, r.sensitive);
    }
    case "boolean": {
      if (typeof raw === "boolean") return params.add(raw, false);
      if (typeof raw !== "string")
        throw new CatalogError("CONFIG_INVALID", `${where}: expected true or false`);
      const r = render(raw, ctx, where);
      const text = r.text.trim().toLowerCase();
      if (text !== "true" && text !== "false") {
        // The rendered text may be a secret: name the field, never the value.
        throw new CatalogError("CONFIG_INVALID", `${where}: must render to true or false`);
      }
      return params.add(text === "true", r.sensitive);
    }
    case "integer": {
      if (typeof raw === "number" && Number.isSafeInteger(raw)) return params.add(raw, false);
      if (typeof raw !== "string")
        throw new CatalogError("CONFIG_INVALID", `${where}: expected a whole number`);
      const r = render(raw, ctx, where);
      const text = r.text.trim();
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
        throw new CatalogError("CONFIG_INVALID", `${where}: must render to a whole number`);
      }
      return params.add(Number(text), r.sensitive);
    }
    case "map": {
      if (typeof raw !== "object" || raw === null) {
        throw new CatalogError(
          "CONFIG_INVALID",
          `${where}: expected a mapping of names to strings`,
        );
      }
      const entries = Object.entries(raw).map(([k, v]) => {
        const r = render(v, ctx, `${where}.${k}`);
        return `${quoteLiteral(k)}: ${params.add(r.text, r.sensitive)}`;
      });
      return `MAP {${entries.join(", ")}}`;
    }
    default: {
      const never: never = kind;
      throw new Error(`unexpected parameter kind ${String(never)}`);
    }
  }
}

export function dropPersistentSecretStatement(name: string, type: string): Statement {
  return {
    stage: "secret",
    target: `secret ${name}`,
    sql: `DROP PERSISTENT SECRET IF EXISTS ${quoteIdentifier(name)}`,
    params: [],
    secret: { name, type, persistent: true, scope: [], action: "dropped" },
  };
}
