import { isAbsolute, resolve } from "node:path";
import { parseTemplate } from "../config/template.js";
import { CatalogError } from "../errors.js";

/** What plan() needs to turn `${...}` references into text. */
export interface RenderContext {
  tenant: string;
  secrets?: { value(ref: { name: string; key?: string | undefined }): string } | undefined;
}

export interface Rendered {
  text: string;
  /** True when any part of the text came from a secret: the whole value is then secret. */
  sensitive: boolean;
}

/**
 * Renders `${tenant}` and `${secret:...}`. Env references were substituted when the
 * file loaded, so one still present was written escaped and stays as written.
 * `where` names the field for errors; a secret reference outside duckdb.secrets[] is
 * refused here too, in case a definition did not come through the schema.
 */
export function render(value: string, ctx: RenderContext, where: string): Rendered {
  let text = "";
  let sensitive = false;
  for (const part of parseTemplate(value)) {
    switch (part.kind) {
      case "text":
        text += part.text;
        break;
      case "env":
        text += part.raw;
        break;
      case "tenant":
        text += ctx.tenant;
        break;
      case "secret":
        if (!ctx.secrets) {
          throw new CatalogError(
            "CONFIG_INVALID",
            `${where}: ${part.raw}: secret references are only allowed in duckdb.secrets[]`,
          );
        }
        text += ctx.secrets.value({ name: part.name, key: part.key });
        sensitive = true;
        break;
      default: {
        const never: never = part;
        throw new Error(`unexpected template part ${JSON.stringify(never)}`);
      }
    }
  }
  return { text, sensitive };
}

/** Renders a string that must not hold secrets (paths, SQL, scopes). */
export function renderPlain(value: string, tenant: string, where: string): string {
  return render(value, { tenant }, where).text;
}

/** Paths without a URL scheme are relative to the job file, so catalogs build from any cwd. */
export function resolveLocal(path: string, dir: string): string {
  return path.includes("://") || isAbsolute(path) ? path : resolve(dir, path);
}
