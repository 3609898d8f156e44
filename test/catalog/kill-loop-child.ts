/**
 * The kill loop's victim: builds one catalog again and again, from build number
 * argv[3] on, until it is killed. Prints "ready" once loaded, starts on a line of
 * input, and prints each statement's target as it starts, so the test can aim kills
 * at secret statements.
 */
import { once } from "node:events";
import { createInterface } from "node:readline";
import { apply } from "../../src/catalog/apply.js";
import { planFresh, scrubberOf } from "./helpers.js";
import { killLoopJob } from "./kill-loop-job.js";

const dir = process.argv[2] ?? "";
const first = Number(process.argv[3]);
console.log("ready");
await once(createInterface({ input: process.stdin }), "line");
for (let i = first; ; i += 1) {
  const job = killLoopJob(i);
  const p = await planFresh(job.definition, dir, job.secrets);
  await apply(p, {
    scrubber: scrubberOf([]),
    tenant: "acme",
    force: true,
    onProgress: (s) => console.log(`${i} ${s.target}`),
  });
  console.log(`${i} built`);
}
