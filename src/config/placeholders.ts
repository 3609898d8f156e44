/**
 * Values people leave in config files meaning "fill me in". Shipping one to DuckDB
 * fails later with a vague authentication error, so they are flagged when loading
 * (and by the resolver for resolved secret values).
 *
 * The reason names the pattern, never the value, so it is safe to print for a real
 * secret too.
 */

const RULES: readonly { test: RegExp; reason: string }[] = [
  { test: /^\s*$/, reason: "it is empty" },
  { test: /change[_-]?me/i, reason: 'it contains "changeme"' },
  { test: /replace[_-]?me/i, reason: 'it contains "replace_me"' },
  { test: /(^|[^a-z])todo([^a-z]|$)/i, reason: 'it contains "TODO"' },
  { test: /(^|[^a-z])fixme([^a-z]|$)/i, reason: 'it contains "FIXME"' },
  { test: /^x{3,}$|(^|[^a-z])xxx+([^a-z]|$)/i, reason: 'it contains "xxx"' },
  { test: /^<[^<>]*>$/, reason: "it is a <placeholder> in angle brackets" },
  { test: /^your[\s_-].*[\s_-]here$/i, reason: 'it reads like "your-...-here"' },
  {
    test: /^(insert|put|enter|add)[\s_-].*[\s_-]here$/i,
    reason: 'it reads like "insert-...-here"',
  },
  { test: /AKIAIOSFODNN7EXAMPLE/i, reason: "it is AWS's documented example access key id" },
  {
    test: /wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYEXAMPLEKEY/i,
    reason: "it is AWS's documented example secret access key",
  },
];

/** Why `value` looks like a placeholder, or undefined when it looks real. */
export function placeholderReason(value: string): string | undefined {
  for (const rule of RULES) if (rule.test.test(value)) return rule.reason;
  return undefined;
}
