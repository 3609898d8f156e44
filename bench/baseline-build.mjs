// The baseline of bench:build: what a hand-written script needs to build the same
// catalog safely — execute the statements into a temp file, checkpoint, fsync, rename.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync } from "node:fs";
import { DuckDBInstance, listValue } from "@duckdb/node-api";

const [statementsFile, target] = process.argv.slice(2);
const { options, statements } = JSON.parse(readFileSync(statementsFile, "utf8"));
const temp = `${target}.tmp`;
const instance = await DuckDBInstance.create(temp, options);
const connection = await instance.connect();
for (const s of statements) {
  if (s.params.length === 0) {
    await connection.run(s.sql);
    continue;
  }
  const prepared = await connection.prepare(s.sql);
  prepared.bind(s.params.map((v) => (Array.isArray(v) ? listValue(v) : v)));
  await prepared.run();
}
await connection.run("CHECKPOINT");
connection.closeSync();
instance.closeSync();
const fd = openSync(temp, "r");
fsyncSync(fd);
closeSync(fd);
renameSync(temp, target);
