// Bundles the CLI (and the library entry) with esbuild. Loading ~200 small ES
// modules of zod and yaml cost more than half of `duckcron validate`'s start-up;
// one bundle with per-command chunks halves it. The rule: `dependencies` are what
// the bundle loads from node_modules at run time (native code, worker threads,
// large optional parts); everything else it imports is bundled, so pure-JS
// libraries such as zod and yaml are devDependencies.
import { readFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const external = Object.keys(pkg.dependencies).flatMap((name) => [name, `${name}/*`]);

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
