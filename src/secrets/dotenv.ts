/**
 * `.env` files as dotenv reads them: `KEY=value` lines, `#` comments (whole line, or
 * after whitespace in an unquoted value), an optional `export ` prefix, single and
 * backtick quotes taken literally, double quotes with `\n` `\r` `\t` `\"` `\\`
 * escapes, and quoted values spanning lines. Malformed lines are reported by number
 * only, so a caller can say where the problem is without quoting the file.
 */
export interface DotenvResult {
  fields: Record<string, string>;
  /** 1-based numbers of lines that are neither blank, comments nor KEY=VALUE. */
  invalidLines: number[];
}

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=[ \t]*/;
const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };

export function parseDotenv(source: string): DotenvResult {
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const fields: Record<string, string> = {};
  const invalidLines: number[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const match = ASSIGNMENT.exec(line);
    if (!match) {
      invalidLines.push(i + 1);
      continue;
    }
    const key = match[1] as string;
    const rest = line.slice(match[0].length);
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === "`") {
      // The value may continue on following lines until the closing quote.
      let body = rest.slice(1);
      let end = closingQuote(body, quote);
      let last = i;
      while (end === -1 && last + 1 < lines.length) {
        last += 1;
        body += `\n${lines[last]}`;
        end = closingQuote(body, quote);
      }
      if (end === -1) {
        invalidLines.push(i + 1);
        continue;
      }
      const raw = body.slice(0, end);
      fields[key] =
        quote === '"' ? raw.replace(/\\(.)/g, (all, c: string) => ESCAPES[c] ?? all) : raw;
      i = last;
      continue;
    }
    const comment = rest.search(/(^|\s)#/);
    fields[key] = (comment === -1 ? rest : rest.slice(0, comment)).trim();
  }
  return { fields, invalidLines };
}

function closingQuote(body: string, quote: string): number {
  for (let i = 0; i < body.length; i += 1) {
    if (quote === '"' && body[i] === "\\") {
      i += 1;
      continue;
    }
    if (body[i] === quote) return i;
  }
  return -1;
}
