/**
 * `${...}` references inside config strings.
 *
 *   ${env:NAME} or ${NAME}   an environment variable, substituted when the file loads
 *   ${secret:name}           a secret of the run's tenant, resolved per run
 *   ${secret:name.key}       one key of a JSON or .env secret
 *   ${tenant}                the run's tenant id
 *   $${                      a literal "${"
 *
 * Substitution is single-pass: text that came out of an env var or a secret is never
 * scanned again, so a value containing `$` or `${` stays exactly as it is.
 */

export type TemplatePart =
  | { kind: "text"; text: string }
  | { kind: "env"; name: string; raw: string }
  | { kind: "secret"; name: string; key: string | undefined; raw: string }
  | { kind: "tenant"; raw: string };

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    /** 0-based offset of the problem inside the string. */
    readonly offset: number,
  ) {
    super(message);
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Secret names become file names and env var suffixes, so keep them simple. */
export const SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;
const SECRET_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function parseTemplate(input: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = "";
  let i = 0;
  while (i < input.length) {
    if (input.startsWith("$${", i)) {
      text += "${";
      i += 3;
      continue;
    }
    if (!input.startsWith("${", i)) {
      text += input[i];
      i += 1;
      continue;
    }
    const end = input.indexOf("}", i + 2);
    if (end === -1) throw new TemplateSyntaxError(`unterminated reference "${input.slice(i)}"`, i);
    const raw = input.slice(i, end + 1);
    const body = input.slice(i + 2, end).trim();
    if (text) parts.push({ kind: "text", text });
    text = "";
    parts.push(parseReference(body, raw, i));
    i = end + 1;
  }
  if (text) parts.push({ kind: "text", text });
  return parts;
}

function parseReference(body: string, raw: string, offset: number): TemplatePart {
  if (body === "tenant") return { kind: "tenant", raw };
  const colon = body.indexOf(":");
  const scheme = colon === -1 ? "env" : body.slice(0, colon);
  const rest = colon === -1 ? body : body.slice(colon + 1);
  if (scheme === "env") {
    if (!ENV_NAME.test(rest)) {
      throw new TemplateSyntaxError(
        `${raw}: "${rest}" is not a valid environment variable name`,
        offset,
      );
    }
    return { kind: "env", name: rest, raw };
  }
  if (scheme === "secret") {
    const dot = rest.indexOf(".");
    const name = dot === -1 ? rest : rest.slice(0, dot);
    const key = dot === -1 ? undefined : rest.slice(dot + 1);
    if (!SECRET_NAME.test(name)) {
      throw new TemplateSyntaxError(
        `${raw}: secret names use letters, digits, "_" and "-" (got "${name}")`,
        offset,
      );
    }
    if (key !== undefined && !SECRET_KEY.test(key)) {
      throw new TemplateSyntaxError(`${raw}: "${key}" is not a valid key name`, offset);
    }
    return { kind: "secret", name, key, raw };
  }
  throw new TemplateSyntaxError(
    `${raw}: unknown reference kind "${scheme}" (use env:, secret: or tenant)`,
    offset,
  );
}

/** True when the string holds any reference that needs resolving. */
export function hasReferences(input: string): boolean {
  return input.includes("${");
}
