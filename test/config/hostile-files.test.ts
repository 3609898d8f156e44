import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadJob, loadRunner } from "../../src/config/load.js";
import { MAX_CONFIG_BYTES } from "../../src/config/read-config-file.js";
import { DuckcronError } from "../../src/errors.js";
import { configError, writeTree, yaml } from "./helpers.js";

/**
 * Paths that name something other than a small regular file are refused before a byte
 * is read: a FIFO with no writer would block the open for ever, a device or a huge
 * file would fill memory. (The corpus has /dev/urandom as a job file; a FIFO and a
 * large file cannot be committed, so they are made here.)
 */

const RUNNER = (job: string) => yaml`
  version: 1
  runner:
    schedules:
      - name: main
        config: ${job}
        cron: "0 * * * *"
        tenants: [acme]
`;

async function withFifo(): Promise<string> {
  const root = await writeTree({ "runner.yaml": RUNNER("jobs/job.yaml") });
  execFileSync("mkfifo", [join(root, "fifo.yaml")]);
  return root;
}

async function topLevelError(path: string): Promise<DuckcronError> {
  const error = await loadRunner(path, { env: {} }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DuckcronError);
  expect(error).toMatchObject({ code: "CONFIG_NOT_FOUND" });
  return error as DuckcronError;
}

describe("config paths that are not small regular files", () => {
  it("refuses a FIFO as runner.yaml without blocking on it", async () => {
    const root = await withFifo();
    const error = await topLevelError(join(root, "fifo.yaml"));
    expect(error.message).toContain("fifo.yaml (not a regular file (a FIFO))");
  });

  it("refuses a FIFO as a job file, located at the schedule that names it", async () => {
    const root = await withFifo();
    await writeFile(join(root, "runner.yaml"), RUNNER("fifo.yaml"));
    const error = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    expect(error.message).toMatch(
      /runner\.yaml:5:15: runner\.schedules\[0\]\.config: cannot read job file .*fifo\.yaml \(not a regular file \(a FIFO\)\)/,
    );
  });

  it("refuses a device as runner.yaml and as a job file given to loadJob", async () => {
    const error = await topLevelError("/dev/urandom");
    expect(error.message).toContain("/dev/urandom (not a regular file (a device))");
    const job = await loadJob("/dev/zero").catch((e: unknown) => e);
    expect(job).toMatchObject({ code: "CONFIG_NOT_FOUND" });
  });

  it("refuses a file over the size limit, and reads one at the limit", async () => {
    const comment = (bytes: number) => `#${"x".repeat(bytes - 2)}\n`;
    const root = await writeTree({
      "big.yaml": comment(MAX_CONFIG_BYTES + 1),
      "jobs/job.yaml": comment(MAX_CONFIG_BYTES + 1),
    });
    const error = await topLevelError(join(root, "big.yaml"));
    expect(error.message).toContain("larger than the 2 MiB a config file may have");

    const body = RUNNER("jobs/job.yaml");
    await writeFile(join(root, "at-limit.yaml"), body + comment(MAX_CONFIG_BYTES - body.length));
    await writeFile(join(root, "runner.yaml"), body);
    const jobError = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    expect(jobError.message).toContain("job.yaml (larger than the 2 MiB a config file may have)");
    // At the limit, the file is read and the (missing) job is what gets reported.
    const atLimit = await configError(() => loadRunner(join(root, "at-limit.yaml"), { env: {} }));
    expect(atLimit.message).toContain("larger than the 2 MiB");
    expect(atLimit.message).not.toContain("at-limit.yaml (larger");
  });
});
