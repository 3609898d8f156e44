import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIN_NODE_MAJOR, nodeCheck } from "../../src/cli/doctor.js";
import { heldNotices, holdDependencyNotices } from "../../src/cli/notices.js";
import { type AwsTestServer, startAwsTestServer } from "../servers/aws-test-server.js";
import { REPO, runCli } from "./run-cli.js";

/** The AWS SDK's floor for releases after January 2027; below it the SDK prints its notice. */
const AWS_SDK_NODE_FLOOR = 22;

describe("dependency notices", () => {
  it("holds known notices back, by text prefix or warning type, and lets others through", async () => {
    holdDependencyNotices();
    const printed: string[] = [];
    const listener = (warning: Error) => printed.push(warning.message);
    process.on("warning", listener);
    try {
      process.emitWarning("NodeVersionSupportWarning: The SDK\nwill require node >=22.\n");
      process.emitWarning("use something newer", "NodeVersionSupportWarning");
      process.emitWarning("an unrelated warning");
      await new Promise((done) => setImmediate(done));
    } finally {
      process.off("warning", listener);
    }
    expect(printed).toEqual(["an unrelated warning"]);
    expect(heldNotices()).toEqual([
      "NodeVersionSupportWarning: The SDK will require node >=22.",
      "use something newer",
    ]);
  });
});

describe("doctor's node check", () => {
  it("matches package.json engines", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
      engines: { node: string };
    };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE_MAJOR}`);
  });

  it("is ok on a supported Node, warns with held notices, and refuses an old Node", () => {
    expect(nodeCheck("v22.11.0", [])).toMatchObject({ status: "ok", subject: "node" });
    expect(nodeCheck("v20.20.2", ["NodeVersionSupportWarning: upgrade"])).toMatchObject({
      status: "warn",
      message: "Node v20.20.2; a dependency says: NodeVersionSupportWarning: upgrade",
    });
    expect(nodeCheck("v18.20.0", [])).toMatchObject({ status: "problem" });
  });
});

describe("the AWS SDK's Node notice through the CLI", { timeout: 60_000 }, () => {
  let server: AwsTestServer;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startAwsTestServer();
    server.seed("duckcron/acme", JSON.stringify({ api_token: "notice-test-token-4c1e" }));
    dir = mkdtempSync(join(tmpdir(), "duckcron-notices-"));
    mkdirSync(join(dir, "jobs"));
    writeFileSync(
      join(dir, "runner.yaml"),
      `version: 1
runner:
  secrets: { type: aws, region_name: ${server.region}, endpoint: "${server.url}", prefix: duckcron/ }
  schedules:
    - { name: sales, config: jobs/sales.yaml, cron: "0 * * * *", tenants: [acme] }
`,
    );
    writeFileSync(
      join(dir, "jobs/sales.yaml"),
      `version: 1
duckdb:
  database: ../catalogs/\${tenant}/sales.duckdb
  secrets:
    - { name: api, type: http, bearer_token: "\${secret:api_token}" }
views:
  - { name: one, sql: SELECT 1 AS x }
`,
    );
    env = {
      AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    };
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("plan and run load the SDK and print no notice", async () => {
    for (const args of [
      ["plan", "sales"],
      ["run", "sales"],
    ]) {
      const result = await runCli([...args, "-c", join(dir, "runner.yaml")], { env });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).not.toContain("NodeVersionSupportWarning");
      expect(result.stderr).not.toContain("AWS SDK");
    }
  });

  it("doctor reports the Node version, and the SDK's notice once where the SDK gives one", async () => {
    const result = await runCli(["doctor", "-c", join(dir, "runner.yaml")], { env });
    expect(result.stderr).toBe("");
    const node = result.stdout.split("\n").filter((line) => / node: /.test(line));
    expect(node).toHaveLength(1);
    const major = Number(process.versions.node.split(".")[0]);
    if (major < AWS_SDK_NODE_FLOOR) {
      expect(node[0]).toMatch(
        /^warn {4}node: Node v[\d.]+; a dependency says: NodeVersionSupportWarning: /,
      );
      expect(result.stdout.match(/NodeVersionSupportWarning/g)).toHaveLength(1);
    } else {
      expect(node[0]).toMatch(/^ok {6}node: Node v[\d.]+ \(duckcron supports >= 20\)$/);
    }
  });
});
