import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
const dependencies = Object.keys(
  (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { dependencies: object })
    .dependencies,
);

/**
 * Bundles a source module for child processes, which run outside vitest's TypeScript
 * transform. The bundle sits in the repository's .tmp/ so runtime dependencies
 * (DuckDB's native module) resolve from node_modules. Returns the bundle's path;
 * the caller removes it.
 */
export async function bundleForChild(source: string, name: string): Promise<string> {
  const outdir = join(REPO, ".tmp", "child-bundles");
  await mkdir(outdir, { recursive: true });
  const outfile = join(outdir, `${name}-${process.pid}.mjs`);
  await build({
    entryPoints: [join(REPO, source)],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    external: dependencies.flatMap((d) => [d, `${d}/*`]),
    banner: {
      js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
    },
    logLevel: "warning",
  });
  return outfile;
}
