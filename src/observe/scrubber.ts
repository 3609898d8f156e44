/**
 * Masks secret values in text that leaves the process (logs, errors, audit, plan
 * output, DuckDB's own error messages). Every resolved value is registered here
 * before anything else sees it.
 *
 * A value can reach text in other spellings than its own: inside JSON (escaped
 * quotes, backslashes, newlines), inside a URL (percent-encoded), or inside SQL
 * (single quotes doubled). Those forms are registered too.
 */
export const MASK = "***";
/** Shorter lines of a multi-line value are too common to mask on their own ("}", "-----"). */
const MIN_LINE_LENGTH = 8;
/**
 * Values this short or this common carry no secrecy and would mask ordinary output
 * (a JSON secret's `"port": 1` or `"tls": true` field would turn every "1" or "true"
 * into `***` and corrupt JSON lines). Credentials are longer than this.
 */
const MIN_VALUE_LENGTH = 4;
const TOO_COMMON = new Set(["true", "false", "null", "none", "auto"]);
/** Every form is at least this long (values are at least MIN_VALUE_LENGTH). */
const PREFIX = 3;

export class Scrubber {
  readonly #values = new Set<string>();
  readonly #forms = new Set<string>();
  #pending: string[] = [];
  /**
   * Forms bucketed by their first PREFIX characters, each bucket longest first, so a
   * scrub costs one map lookup per character of text instead of one search per form:
   * a daemon with a thousand tenants holds tens of thousands of forms.
   */
  #byPrefix: Map<string, string[]> | undefined;

  /** Number of distinct values registered (not counting their derived forms). */
  get size(): number {
    return this.#values.size;
  }

  add(value: string): void {
    if (value.trim().length < MIN_VALUE_LENGTH || TOO_COMMON.has(value.trim().toLowerCase()))
      return;
    if (this.#values.has(value)) return;
    this.#values.add(value);
    // Spellings are derived on the next scrub: a run registers many values and may
    // never print anything.
    this.#pending.push(value);
  }

  #expand(): void {
    for (const value of this.#pending) {
      for (const form of spellings(value)) {
        if (form !== "") this.#forms.add(form);
      }
      // Tools often quote one line of a multi-line value (a PEM key, a .env file).
      if (value.includes("\n")) {
        for (const line of value.split(/\r?\n/)) {
          const trimmed = line.trim();
          if (trimmed.length >= MIN_LINE_LENGTH) this.#forms.add(trimmed);
        }
      }
    }
    this.#pending = [];
    this.#byPrefix = undefined;
  }

  #index(): Map<string, string[]> {
    const index = new Map<string, string[]>();
    for (const form of this.#forms) {
      const key = form.slice(0, PREFIX);
      const bucket = index.get(key);
      if (bucket) bucket.push(form);
      else index.set(key, [form]);
    }
    for (const bucket of index.values()) bucket.sort((a, b) => b.length - a.length);
    return index;
  }

  /**
   * Replaces every occurrence of every registered form with `***`. Occurrences that
   * overlap or touch (two secrets sharing characters) are masked as one span, so no
   * fragment of either survives.
   */
  scrub(text: string): string {
    if (this.#pending.length > 0) this.#expand();
    if (this.#forms.size === 0 || text === "") return text;
    this.#byPrefix ??= this.#index();
    const spans: [number, number][] = [];
    for (let at = 0; at + PREFIX <= text.length; at++) {
      const bucket = this.#byPrefix.get(text.slice(at, at + PREFIX));
      if (!bucket) continue;
      // Longest first: the first form that matches here is the widest span.
      const form = bucket.find((f) => text.startsWith(f, at));
      if (form) spans.push([at, at + form.length]);
    }
    if (spans.length === 0) return text;
    spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    let out = "";
    let cursor = 0;
    let current: [number, number] | undefined;
    for (const span of spans) {
      if (current && span[0] < current[1]) {
        current[1] = Math.max(current[1], span[1]);
        continue;
      }
      if (current) {
        out += MASK;
        cursor = current[1];
      }
      out += text.slice(cursor, span[0]);
      current = [span[0], span[1]];
    }
    if (current) {
      out += MASK;
      cursor = current[1];
    }
    return out + text.slice(cursor);
  }
}

function spellings(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  return [
    value,
    json,
    // A JSON string embedded in another JSON string (a log line quoting a payload).
    JSON.stringify(json).slice(1, -1),
    encodeURIComponent(value),
    encodeURIComponent(value).replaceAll("%20", "+"),
    value.replaceAll("'", "''"),
  ];
}
