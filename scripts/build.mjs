// Bundles the CLI (and the library entry) with esbuild. Loading ~200 small ES
// modules of zod and yaml cost more than half of `duckcron validate`'s start-up;
// one bundle with per-command chunks halves it. Packages with native code, worker
// threads or large optional parts stay external and load from node_modules.
import { readFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const BUNDLED = new Set(["zod", "yaml", "js-yaml", "croner", "fastest-levenshtein"]);
const external = Object.keys(pkg.dependencies)
  .filter((name) => !BUNDLED.has(name))
  .flatMap((name) => [name, `${name}/*`]);

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { "cli/main": "src/cli/main.ts", index: "src/index.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  sourcemap: true,
  // yaml's Node build is CommonJS and requires node builtins; give the ESM bundle a require.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
  logLevel: "warning",
});
