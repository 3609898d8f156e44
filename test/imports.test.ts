import { readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { REPO } from "./cli/run-cli.js";

/**
 * The module boundaries of DESIGN.md, checked on every import in src/ (type-only and
 * dynamic ones too: a type import is still a dependency, and the one circle this test
 * was written against was type-only in one direction).
 *
 * Data flows config -> secrets -> catalog -> scheduler -> observe, but observe sits
 * underneath in the import graph: every layer reports on the typed EventBus
 * (observe/events.ts) and observe's sinks subscribe, so observe imports no other
 * layer. The scheduler knows runs, not SQL or secrets. The composition root wires the
 * layers; cli/ wires commands onto all of it. errors.ts and friends are shared by all.
 */

type Layer = "shared" | "observe" | "config" | "secrets" | "catalog" | "scheduler" | "root" | "cli";

/** What each layer may import besides itself. */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  shared: [],
  observe: ["shared"],
  config: ["shared"],
  secrets: ["config", "observe", "shared"],
  catalog: ["config", "secrets", "observe", "shared"],
  scheduler: ["config", "observe", "shared"],
  root: ["config", "secrets", "catalog", "scheduler", "observe", "shared"],
  cli: ["root", "config", "secrets", "catalog", "scheduler", "observe", "shared"],
};

const SHARED = new Set(["errors.ts", "listen-address.ts", "version.ts", "write-atomically.ts"]);
/** The composition root, and index.ts, the package's API. */
const ROOT = new Set(["daemon.ts", "index.ts", "load-config.ts", "run-tenant.ts"]);
const DIRECTORIES = new Set<Layer>(["observe", "config", "secrets", "catalog", "scheduler", "cli"]);

/** The layer of a file (path relative to src/, with `/`), or undefined if it has none yet. */
function layerOf(file: string): Layer | undefined {
  const [head, ...rest] = file.split("/");
  if (rest.length === 0) {
    if (SHARED.has(file)) return "shared";
    if (ROOT.has(file)) return "root";
    return undefined;
  }
  return DIRECTORIES.has(head as Layer) ? (head as Layer) : undefined;
}

type Graph = Map<string, string[]>;

/** Every .ts file under src/ to the src/ files it imports, paths relative to src/. */
function importGraph(srcDir: string): Graph {
  const files = readdirSync(srcDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.split("\\").join("/"))
    .sort();
  const graph: Graph = new Map();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(
      readFileSync(join(srcDir, file), "utf8"),
      true,
      true,
    );
    const targets = importedFiles
      .map((ref) => ref.fileName)
      .filter((spec) => spec.startsWith("."))
      .map((spec) =>
        posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, ".ts"),
      );
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** One message per import that crosses layers the wrong way, or a file with no layer. */
function layerViolations(graph: Graph): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file);
    if (!from) {
      problems.push(`${file} belongs to no layer: give it one in test/imports.test.ts`);
      continue;
    }
    for (const target of targets) {
      const to = layerOf(target);
      if (to && (to === from || MAY_IMPORT[from].includes(to))) continue;
      problems.push(`${file} (${from}) imports ${target} (${to ?? "no layer"})`);
    }
  }
  return problems;
}

/** Import circles: each strongly connected component of two or more files, or a self-import. */
function circles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next);
    next++;
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || graph.get(file)?.includes(file)) found.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

const SRC = join(REPO, "src");

describe("imports in src/", () => {
  const graph = importGraph(SRC);

  it("reads the whole tree, type-only and dynamic imports included", () => {
    expect(graph.size).toBe(
      readdirSync(SRC, { recursive: true }).filter((f) => String(f).endsWith(".ts")).length,
    );
    expect(graph.get("catalog/view-sql.ts")).toEqual(
      expect.arrayContaining(["errors.ts", "catalog/statement.ts"]), // ../ and import type
    );
    expect(graph.get("cli/main.ts")).toContain("cli/run.ts"); // import("./run.js")
    for (const targets of graph.values()) {
      for (const target of targets) expect(graph.has(target), target).toBe(true);
    }
  });

  it("form no circle", () => {
    expect(circles(graph)).toEqual([]);
  });

  it("never run back up a layer", () => {
    expect(layerViolations(graph)).toEqual([]);
  });
});

describe("the import checks", () => {
  const graphOf = (edges: Record<string, string[]>): Graph => new Map(Object.entries(edges));

  it("find a circle through several files and a file importing itself", () => {
    const graph = graphOf({
      "catalog/plan.ts": ["catalog/view-sql.ts"],
      "catalog/view-sql.ts": ["catalog/sql.ts"],
      "catalog/sql.ts": ["catalog/plan.ts"],
      "catalog/apply.ts": ["catalog/plan.ts", "catalog/apply.ts"],
    });
    expect(circles(graph)).toEqual([
      ["catalog/plan.ts", "catalog/sql.ts", "catalog/view-sql.ts"],
      ["catalog/apply.ts"],
    ]);
  });

  it("flag an import up a layer, into the scheduler from below, and a file with no layer", () => {
    const graph = graphOf({
      "config/load.ts": ["secrets/refs.ts"],
      "observe/metrics.ts": ["scheduler/scheduler.ts"],
      "scheduler/scheduler.ts": ["catalog/plan.ts", "config/runner-schema.ts"],
      "catalog/plan.ts": ["daemon.ts", "errors.ts"],
      "secrets/vault.ts": ["cli/main.ts"],
      "util.ts": [],
    });
    expect(layerViolations(graph)).toEqual([
      "config/load.ts (config) imports secrets/refs.ts (secrets)",
      "observe/metrics.ts (observe) imports scheduler/scheduler.ts (scheduler)",
      "scheduler/scheduler.ts (scheduler) imports catalog/plan.ts (catalog)",
      "catalog/plan.ts (catalog) imports daemon.ts (root)",
      "secrets/vault.ts (secrets) imports cli/main.ts (cli)",
      "util.ts belongs to no layer: give it one in test/imports.test.ts",
    ]);
  });
});
