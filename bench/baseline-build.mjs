// The baseline of bench:build: what a hand-written script needs to build the same
// catalog safely — execute the statements into a temp file, checkpoint, fsync, rename.
import { readFileSync } from "node:fs";
import { buildCatalogFile } from "./lib.mjs";

const [statementsFile, target] = process.argv.slice(2);
const { options, statements } = JSON.parse(readFileSync(statementsFile, "utf8"));
await buildCatalogFile(target, options, statements);
