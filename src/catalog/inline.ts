import { CatalogError } from "../errors.js";
import { quoteLiteral } from "./sql.js";
import type { PlanParam, Statement } from "./statement.js";

/** How one parameter reads as SQL text. */
export function paramLiteral(param: PlanParam): string {
  const { value } = param;
  if (typeof value === "string") return quoteLiteral(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return String(value);
  return `[${value.map(quoteLiteral).join(", ")}]`;
}

/**
 * Replaces `$n` placeholders with literals, skipping quoted strings and identifiers
 * so a `$1` inside a MAP key or a name is left alone. `mask` shows sensitive values
 * as '***' (plan output); without it this is the fallback for DuckDB builds that
 * cannot bind CREATE SECRET parameters.
 */
export function inlineParams(statement: Statement, mask: boolean): string {
  const { sql, params } = statement;
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i] as string;
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) break;
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) j += 2;
          else break;
        } else j += 1;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const m = ch === "$" ? /^\$(\d+)/.exec(sql.slice(i, i + 12)) : null;
    if (m) {
      const param = params[Number(m[1]) - 1];
      if (!param) {
        throw new CatalogError(
          "CATALOG_BUILD_FAILED",
          `${statement.target}: placeholder ${m[0]} has no value`,
        );
      }
      out += mask && param.sensitive ? "'***'" : paramLiteral(param);
      i += m[0].length;
      continue;
    }
    out += ch;
    i += 1;
  }
  return out;
}
