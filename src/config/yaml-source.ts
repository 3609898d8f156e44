import { CORE_SCHEMA, load as loadYaml } from "js-yaml";
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  Scalar,
  visit,
} from "yaml";
import type { ConfigIssue, SourceLocation } from "../errors.js";

/**
 * One parsed YAML file that still knows where every node came from, so an issue
 * found later (by zod, by env substitution) can name its line and column.
 */

export type ConfigPath = readonly (string | number)[];

/**
 * Aliases share their anchor's value, but everything after parsing (env substitution,
 * the schema, freezing) walks the value as a tree, where nine levels of nine aliases
 * ("billion laughs") are 9^9 nodes. A tree of more nodes than this is refused; a
 * 2 MiB file written out without aliases holds far fewer.
 */
export const MAX_EXPANDED_NODES = 1_000_000;

export interface YamlSource {
  file: string;
  /** The plain value (aliases expanded); undefined when the file is empty. */
  value: unknown;
  /** Syntax errors, duplicate keys and YAML warnings, already located. */
  issues: ConfigIssue[];
  /** Where the value at `path` starts, or its nearest existing parent. */
  locate(path: ConfigPath): SourceLocation;
  /** Where the key of the last segment of `path` is (for unknown-key issues). */
  locateKey(path: ConfigPath): SourceLocation;
  /** True when the node at `path` is an unquoted scalar (so `${env:N}` may become a number). */
  isPlainScalar(path: ConfigPath): boolean;
}

/**
 * Parses one config file. The `yaml` library keeps every node's position but is slow
 * on a cold start (about 150 ms for a 500-view job, most of a one-shot run's
 * overhead); js-yaml reads the same YAML 1.2 core schema about six times faster. So
 * the value comes from js-yaml, and the positional document is parsed only when a
 * position is asked for: to report a problem, or to decide whether an unquoted
 * `${env:...}` may become a number. Whatever js-yaml rejects (syntax errors, duplicate
 * keys, several documents) goes through `yaml`, which reports it with its location.
 */
export function parseYamlSource(text: string, file: string): YamlSource {
  let value: unknown;
  try {
    value = loadYaml(text, { schema: CORE_SCHEMA, filename: file });
  } catch {
    return positionalSource(text, file);
  }
  if (!withinExpansionLimit(value)) return positionalSource(text, file);
  let positional: YamlSource | undefined;
  const lazy = () => {
    positional ??= positionalSource(text, file);
    return positional;
  };
  return {
    file,
    // An empty file is null, as `yaml` has it; undefined means "did not parse".
    value: value ?? null,
    issues: [],
    locate: (path) => lazy().locate(path),
    locateKey: (path) => lazy().locateKey(path),
    isPlainScalar: (path) => lazy().isPlainScalar(path),
  };
}

function positionalSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const at = (offset: number | undefined): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return { file, line, col };
  };
  const issues: ConfigIssue[] = [];
  for (const [list, severity] of [
    [doc.errors, "error"],
    [doc.warnings, "warning"],
  ] as const) {
    for (const problem of list) {
      issues.push({
        ...at(problem.pos[0]),
        path: "",
        message: `YAML: ${firstLine(problem.message)}`,
        severity,
      });
    }
  }

  let value: unknown;
  if (doc.errors.length === 0) {
    const aliasProblem = (message: string, alias: Alias | undefined) =>
      issues.push({ ...at(alias?.range?.[0]), path: "", message, severity: "error" });
    try {
      value = doc.toJS({ maxAliasCount: -1 }) as unknown;
      if (!withinExpansionLimit(value)) {
        value = undefined;
        aliasProblem(
          `YAML: aliases expand to more than ${MAX_EXPANDED_NODES.toLocaleString("en-US")} nodes; write the repeated values out instead of nesting aliases`,
          firstAlias(doc, () => true),
        );
      }
    } catch (error) {
      if (!(error instanceof ReferenceError)) throw error;
      const unresolved = firstAlias(doc, (alias) => alias.resolve(doc) === undefined);
      aliasProblem(
        unresolved
          ? `YAML: alias *${unresolved.source} has no anchor &${unresolved.source} before it`
          : `YAML: ${firstLine(error.message)}`,
        unresolved,
      );
    }
  }

  const find = (path: ConfigPath) => walk(doc, path);
  return {
    file,
    value,
    issues,
    locate: (path) => at(find(path).node?.range?.[0]),
    locateKey: (path) => {
      const found = find(path);
      if (found.complete && found.key) return at(found.key.range?.[0]);
      return at(found.node?.range?.[0]);
    },
    isPlainScalar: (path) => {
      const found = find(path);
      return found.complete && isScalar(found.node) && found.node.type === Scalar.PLAIN;
    },
  };
}

/** True when `value`, with every shared (aliased) part counted each time it is reached, has at most MAX_EXPANDED_NODES nodes. */
function withinExpansionLimit(value: unknown): boolean {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (++count > MAX_EXPANDED_NODES) return false;
    // One push per child: spreading a huge array into push() overflows the call stack.
    if (node !== null && typeof node === "object")
      for (const child of Object.values(node)) stack.push(child);
  }
  return true;
}

function firstAlias(doc: Document, test: (alias: Alias) => boolean): Alias | undefined {
  let found: Alias | undefined;
  visit(doc, {
    Alias(_, alias) {
      if (!test(alias)) return undefined;
      found = alias;
      return visit.BREAK;
    },
  });
  return found;
}

interface Found {
  /** The deepest node reached. */
  node: Node | null | undefined;
  /** The key node of the last pair walked through, when the walk ended on a map entry. */
  key: Node | null | undefined;
  complete: boolean;
}

function walk(doc: Document, path: ConfigPath): Found {
  let node = resolve(doc, doc.contents);
  let key: Node | null | undefined;
  for (const segment of path) {
    const next = child(doc, node, segment);
    if (!next) return { node, key: undefined, complete: false };
    node = next.value ?? next.key ?? node;
    key = next.key;
  }
  return { node, key, complete: true };
}

function child(
  doc: Document,
  node: Node | null | undefined,
  segment: string | number,
): { key: Node | null | undefined; value: Node | null | undefined } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const k = pair.key;
      const name = isScalar(k) ? k.value : k;
      if (name === segment || (typeof segment === "number" && name === String(segment))) {
        return { key: k as Node, value: resolve(doc, pair.value as Node | null) };
      }
    }
    return undefined;
  }
  if (isSeq(node) && typeof segment === "number") {
    const item = node.items[segment];
    return item === undefined ? undefined : { key: undefined, value: resolve(doc, item as Node) };
  }
  return undefined;
}

function resolve(doc: Document, node: Node | null | undefined): Node | null | undefined {
  let current = node;
  // An alias points at its anchor; follow it so paths through `*ref` still resolve.
  for (let hops = 0; isAlias(current) && hops < 100; hops++) current = current.resolve(doc) as Node;
  return current;
}

function firstLine(message: string): string {
  return message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? message;
}
