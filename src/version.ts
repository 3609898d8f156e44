import { readFileSync } from "node:fs";

/**
 * duckcron's version, read once from its package.json so it has one source. Found by
 * walking up from this module, which sits at a different depth in src/ (tests) and
 * in the bundled dist/.
 */
function readVersion(): string {
  let dir = new URL(".", import.meta.url);
  for (let depth = 0; depth < 4; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "duckcron" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // Not here; look one level up.
    }
    dir = new URL("..", dir);
  }
  return "unknown";
}

export const VERSION: string = readVersion();
