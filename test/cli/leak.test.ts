import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "./run-cli.js";

/**
 * Secret values never leave the process: plant distinctive values, run every command
 * including builds that fail inside DuckDB with errors that echo values, and scan
 * every byte written — stdout, stderr and every file — for them. The only files
 * allowed to hold a value are DuckDB's own persistent secret files.
 */
const PLANTED = {
  DUCKCRON_ACME_TOKEN: "FAKE_LEAK_TOKEN_5d1e2f3a",
  DUCKCRON_ACME_API_KEY: "FAKE_LEAK_APIKEY_7c6b5a49",
  DUCKCRON_ACME_PROXY_PW: "FAKE_LEAK_PROXYPW_0f9e8d7c",
  DUCKCRON_ACME_DB: JSON.stringify({ user: "reporting", password: "FAKE_LEAK_DBPW_1a2b3c4d" }),
  // Not a boolean: DuckDB's cast error would echo it.
  DUCKCRON_ACME_SSL_FLAG: "FAKE_LEAK_ECHO_9a8b7c6d",
  PROXY_USER: "FAKE_LEAK_ENVUSER_4e5f6a7b",
};
const VALUES = [
  "FAKE_LEAK_TOKEN_5d1e2f3a",
  "FAKE_LEAK_APIKEY_7c6b5a49",
  "FAKE_LEAK_PROXYPW_0f9e8d7c",
  "FAKE_LEAK_DBPW_1a2b3c4d",
  "FAKE_LEAK_ECHO_9a8b7c6d",
  "FAKE_LEAK_ENVUSER_4e5f6a7b",
];

const GOOD_JOB = `version: 1
duckdb:
  database: out/\${tenant}.duckdb
  secrets:
    - name: api
      type: http
      bearer_token: \${secret:token}
      extra_http_headers: { X-Api-Key: "\${secret:api_key}" }
      scope: https://api.example.com/
    - name: proxy
      type: http
      persistent: true
      http_proxy: http://proxy:3128
      http_proxy_username: \${env:PROXY_USER}
      http_proxy_password: \${secret:proxy_pw}
    - name: db_as_header
      type: http
      extra_http_headers: { X-Db-Password: "\${secret:db.password}" }
views:
  - { name: numbers, source: csv, uri: numbers.csv }
`;

const runnerYaml = (job: string) => `version: 1
runner:
  secrets: { type: env, prefix: DUCKCRON_ }
  schedules:
    - { name: leak, config: ${job}, cron: "0 * * * *", tenants: [acme] }
`;

describe("secret values never leak", () => {
  let dir: string;
  const outputs: CliResult[] = [];
  const run = async (args: string[], env: NodeJS.ProcessEnv = PLANTED) => {
    const result = await runCli(args, { cwd: dir, env });
    outputs.push(result);
    return result;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "duckcron-leak-"));
    writeFileSync(join(dir, "numbers.csv"), "n\n1\n2\n");
    writeFileSync(join(dir, "good.yaml"), GOOD_JOB);
    writeFileSync(join(dir, "runner.yaml"), runnerYaml("good.yaml"));
    mkdirSync(join(dir, "bad"));
    // A boolean parameter fed from a secret that is not a boolean: DuckDB's cast error echoes it.
    writeFileSync(
      join(dir, "bad", "echo.yaml"),
      GOOD_JOB.replace(
        "      scope: https://api.example.com/\n",
        "      scope: https://api.example.com/\n      verify_ssl: ${secret:ssl_flag}\n",
      ),
    );
    writeFileSync(join(dir, "bad", "runner.yaml"), runnerYaml("echo.yaml"));
    // A key the JSON secret does not hold: the error lists key names, not values.
    writeFileSync(join(dir, "bad", "key.yaml"), GOOD_JOB.replace("db.password", "db.passwd"));
    writeFileSync(join(dir, "bad", "runner-key.yaml"), runnerYaml("key.yaml"));
    // Secrets are created, then a view fails inside DuckDB.
    writeFileSync(
      join(dir, "bad", "view.yaml"),
      GOOD_JOB.replace("uri: numbers.csv", "uri: missing.csv"),
    );
    writeFileSync(join(dir, "bad", "runner-view.yaml"), runnerYaml("view.yaml"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("validate, plan and run succeed without printing a value", async () => {
    expect((await run(["validate"])).code).toBe(0);
    expect((await run(["plan", "leak", "--tenant", "acme"])).code).toBe(0);
    const built = await run(["run", "leak"]);
    expect(built.stderr).toBe("");
    expect(built.code).toBe(0);
    const again = await run(["run", "leak"]);
    expect(again.stdout).toMatch(/^unchanged leak\/acme /m);
    expect((await run(["run", "leak", "--json", "--force"])).code).toBe(0);
  });

  it("a value DuckDB would echo in a cast error is refused before DuckDB sees it", async () => {
    const result = await run(["run", "leak", "-c", "bad/runner.yaml"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /echo\.yaml:\d+:\d+: duckdb\.secrets\[0\]: secret api: verify_ssl: must render to true or false/,
    );
    const json = await run(["run", "leak", "-c", "bad/runner.yaml", "--json"]);
    expect(json.code).toBe(1);
  });

  it("a build that fails inside DuckDB reports the object and keeps values out", async () => {
    const result = await run(["run", "leak", "-c", "bad/runner-view.yaml"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^failed leak\/acme CATALOG_BUILD_FAILED /m);
    expect(result.stderr).toMatch(/view numbers: .*missing\.csv/);
  });

  it("a missing JSON key names the keys, not their values", async () => {
    const result = await run(["run", "leak", "-c", "bad/runner-key.yaml"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("passwd");
    expect(result.stderr).toMatch(/password/);
  });

  it("no planted value appears in any output", () => {
    expect(outputs.length).toBeGreaterThanOrEqual(9);
    for (const output of outputs) {
      for (const value of VALUES) {
        expect(output.stdout).not.toContain(value);
        expect(output.stderr).not.toContain(value);
      }
    }
  });

  it("no planted value appears in any file but DuckDB's persistent secret files", () => {
    const files = listFiles(dir).filter((f) => !f.endsWith(".duckdb_secret"));
    expect(files.some((f) => f.endsWith("acme.duckdb"))).toBe(true);
    for (const file of files) {
      const bytes = readFileSync(file).toString("latin1");
      for (const value of VALUES) {
        expect(bytes.includes(value), `${relative(dir, file)} holds a planted value`).toBe(false);
      }
    }
  });

  it("persistent secrets exist only in each catalog's own 0700 secret folder, as 0600 files", () => {
    const secretFiles = listFiles(dir).filter((f) => f.endsWith(".duckdb_secret"));
    // The folder the catalog's published link points to.
    expect(secretFiles.map((f) => relative(dir, f))).toContain(
      join("out", readlinkSync(join(dir, "out", "acme.duckdb.secrets")), "proxy.duckdb_secret"),
    );
    for (const file of secretFiles) {
      expect(relative(dir, file)).toMatch(
        /^(bad\/)?out\/\.acme\.duckdb\.secrets-[0-9a-f]{16}\/proxy\.duckdb_secret$/,
      );
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
    }
  });
});

function listFiles(root: string): string[] {
  return readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}
