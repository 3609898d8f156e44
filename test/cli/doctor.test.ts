import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import doctor, { type DoctorCheck, formatCheck, runDoctor } from "../../src/cli/doctor.js";
import { describeDuckdb, withDuckdb } from "../../src/cli/extensions.js";
import { startGcpTestServer } from "../servers/gcp-test-server.js";

/** A deployment on disk: runner.yaml, one job, and whatever the test adds. */
let dir: string;
let extensions: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "duckcron-doctor-"));
  extensions = join(dir, "no-such-home-extensions");
  mkdirSync(join(dir, "jobs"));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

function runnerYaml(secrets: string): void {
  writeFileSync(
    join(dir, "runner.yaml"),
    `version: 1
runner:
  secrets:
${secrets}
  schedules:
    - { name: sales, config: jobs/sales.yaml, cron: "0 * * * *", tenants: [acme, globex] }
`,
  );
}

function jobYaml(secrets: string, extra = ""): void {
  writeFileSync(
    join(dir, "jobs", "sales.yaml"),
    `version: 1
duckdb:
  database: ../catalogs/\${tenant}/sales.duckdb
${extra}  secrets:
${secrets}
views:
  - { name: one, sql: SELECT 1 AS x }
`,
  );
}

const HTTP_SECRET = `    - { name: api, type: http, bearer_token: "\${secret:api_token}" }`;

async function checks(): Promise<DoctorCheck[]> {
  return (await runDoctor(join(dir, "runner.yaml"), { env: {}, defaultExtensionDir: extensions }))
    .checks;
}

function find(list: DoctorCheck[], subject: RegExp): DoctorCheck[] {
  return list.filter((c) => subject.test(c.subject));
}

describe("duckcron doctor", () => {
  it("passes a healthy env-backend setup, one line per check", async () => {
    runnerYaml("    type: env\n    prefix: DUCKCRON_");
    jobYaml(HTTP_SECRET);
    const list = await checks();
    expect(list.filter((c) => c.status !== "ok")).toEqual([]);
    expect(list.map((c) => c.subject)).toEqual([
      "config",
      "secrets backend env",
      "node",
      "duckdb",
      `extensions for ${list[4]?.subject.slice("extensions for ".length)}`,
      "catalog dir for acme",
      "catalog dir for globex",
      "state dir",
    ]);
    expect(find(list, /^duckdb$/)[0]?.message).toMatch(
      /^DuckDB v\d+\.\d+\.\d+ on \w+; CREATE SECRET binds/,
    );
    expect(find(list, /^extensions/)[0]?.message).toBe("none needed beyond DuckDB's built-ins");
    expect(find(list, /acme/)[0]?.message).toMatch(
      /catalogs\/acme will be created \(.* is writable\)/,
    );
    for (const check of list) expect(formatCheck(check)).not.toContain("\n");
  });

  it("checks the state dir start will use, whichever setting chose it", async () => {
    runnerYaml("    type: env");
    jobYaml(HTTP_SECRET);
    const stateOf = async (env: NodeJS.ProcessEnv) =>
      find(
        (await runDoctor(join(dir, "runner.yaml"), { env, defaultExtensionDir: extensions }))
          .checks,
        /^state dir$/,
      );

    expect(await stateOf({})).toEqual([
      {
        status: "ok",
        subject: "state dir",
        message: `${join(dir, ".duckcron")} will be created (${dir} is writable) (state dir from the default, .duckcron beside runner.yaml)`,
      },
    ]);

    // As in a container whose config mount is read-only and whose env names the volume:
    // here the variable points somewhere no user can create a directory.
    writeFileSync(join(dir, "a-file"), "");
    const [check] = await stateOf({ DUCKCRON_STATE_DIR: join(dir, "a-file", "state") });
    expect(check).toMatchObject({
      status: "problem",
      subject: "state dir",
      message: `${join(dir, "a-file")} is not a directory (state dir from $DUCKCRON_STATE_DIR)`,
      fix: expect.stringContaining("set runner.state_dir in runner.yaml or $DUCKCRON_STATE_DIR"),
    });
  });

  it("checks the gcp backend: a token and one list call, or the fix naming role and credentials", async () => {
    const server = await startGcpTestServer();
    try {
      const credentials = server.credentialsFile(dir);
      runnerYaml(
        `    type: gcp\n    project_id: ${server.projectId}\n    endpoint: ${server.url}\n    credentials_file: ${credentials}`,
      );
      jobYaml(HTTP_SECRET);
      expect(find(await checks(), /^secrets backend gcp$/)[0]).toMatchObject({
        status: "ok",
        message: `reachable and accepting requests to Secret Manager at ${server.url}`,
      });
      expect(server.faults.requests("ListSecrets")).toBe(1);

      // The subject token is no longer one the token endpoint accepts.
      const file = JSON.parse(readFileSync(credentials, "utf8"));
      writeFileSync(file.credential_source.file, "revoked-PLANTED-subject");
      const [check] = find(await checks(), /^secrets backend gcp$/);
      expect(check).toMatchObject({
        status: "problem",
        message: expect.stringMatching(/no Google access token/),
        fix: expect.stringContaining("roles/secretmanager.secretAccessor"),
      });
      expect(JSON.stringify(check)).not.toContain("PLANTED");
    } finally {
      await server.close();
    }
  });

  it("checks the filesystem backend: reachable, and secrets_dir not world-readable", async () => {
    runnerYaml("    type: filesystem\n    secrets_dir: secrets");
    jobYaml(HTTP_SECRET);
    mkdirSync(join(dir, "secrets", "acme"), { recursive: true });
    writeFileSync(join(dir, "secrets", "acme", "api_token.txt"), "PLANTED-doctor-value-91f3", {
      mode: 0o600,
    });
    chmodSync(join(dir, "secrets"), 0o700);
    let list = await checks();
    expect(find(list, /^secrets backend filesystem$/)[0]?.status).toBe("ok");
    expect(find(list, /secrets_dir/)[0]).toMatchObject({
      status: "ok",
      message: expect.stringMatching(/mode 0700$/),
    });

    chmodSync(join(dir, "secrets"), 0o755);
    list = await checks();
    expect(find(list, /secrets_dir/)[0]).toMatchObject({
      status: "problem",
      message: expect.stringMatching(/mode 0755: readable or writable by every user/),
      fix: expect.stringMatching(/^chmod o-rwx .*secrets/),
    });
    expect(JSON.stringify(list)).not.toContain("PLANTED-doctor-value-91f3");
  });

  it("reports an unreachable filesystem backend with the fix", async () => {
    runnerYaml("    type: filesystem\n    secrets_dir: missing-secrets");
    jobYaml(HTTP_SECRET);
    const [backend] = find(await checks(), /^secrets backend/);
    expect(backend?.status).toBe("problem");
    expect(backend?.message).toMatch(/missing-secrets/);
    expect(backend?.fix).toMatch(/chmod 700/);
  });

  it("wants persistent secret folders at 0700", async () => {
    runnerYaml("    type: env");
    jobYaml(
      `${HTTP_SECRET}\n    - { name: kept, type: http, persistent: true, bearer_token: "\${secret:api_token}" }`,
    );
    let list = await checks();
    expect(find(list, /persistent secret dir/).map((c) => c.status)).toEqual(["ok", "ok"]);
    expect(find(list, /persistent secret dir/)[0]?.message).toMatch(/will be created 0700/);

    const secretDir = join(dir, "catalogs", "acme", "sales.duckdb.secrets");
    mkdirSync(secretDir, { recursive: true, mode: 0o755 });
    chmodSync(secretDir, 0o755);
    list = await checks();
    expect(find(list, /persistent secret dir/)[0]).toMatchObject({
      status: "problem",
      message: expect.stringContaining("mode 0755"),
      fix: `chmod 700 ${secretDir}`,
    });
  });

  it("flags a catalog folder that is a file", async () => {
    runnerYaml("    type: env");
    jobYaml(HTTP_SECRET);
    mkdirSync(join(dir, "catalogs"));
    writeFileSync(join(dir, "catalogs", "acme"), "not a folder");
    const [acme] = find(await checks(), /catalog dir for acme/);
    expect(acme).toMatchObject({
      status: "problem",
      message: expect.stringMatching(/is not a directory$/),
    });
  });

  it("looks for the job's extensions in its extension_directory, under v<version>/<platform>/", async () => {
    runnerYaml("    type: env");
    const staged = join(dir, "extensions");
    jobYaml(
      `    - { name: lake, type: s3, key_id: "\${secret:k}", secret: "\${secret:s}" }
    - { name: lake_chain, type: s3, provider: credential_chain, scope: "s3://other/" }`,
      `  extension_directory: ${staged}\n`,
    );
    let [ext] = find(await checks(), /^extensions/);
    const build = await withDuckdb(undefined, describeDuckdb);
    const where = `${staged}/${build.version}/${build.platform}/`;
    expect(ext).toEqual({
      status: "problem",
      subject: `extensions for ${ext?.subject.slice("extensions for ".length)}`,
      message: `aws, httpfs not in ${where}`,
      fix: `duckcron extensions install aws httpfs --dir ${staged}`,
    });

    mkdirSync(where, { recursive: true });
    for (const name of ["aws", "httpfs"])
      writeFileSync(join(where, `${name}.duckdb_extension`), "");
    [ext] = find(await checks(), /^extensions/);
    expect(ext).toMatchObject({ status: "ok", message: `aws, httpfs present in ${where}` });
  });

  it("stops at a config that does not load, naming file, line and field", async () => {
    runnerYaml("    type: env\n    prefx: X");
    jobYaml(HTTP_SECRET);
    const list = await checks();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: "problem", subject: "config" });
    expect(list[0]?.message).toMatch(/runner\.yaml:\d+:\d+: runner\.secrets.*prefx/);
  });

  it("exits 0 when every check passes and 1 on any problem", async () => {
    runnerYaml("    type: filesystem\n    secrets_dir: secrets");
    jobYaml(HTTP_SECRET);
    mkdirSync(join(dir, "secrets"), { mode: 0o700 });
    chmodSync(join(dir, "secrets"), 0o700);
    let out = "";
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    expect(await doctor(["-c", join(dir, "runner.yaml")])).toBe(0);
    expect(out).toMatch(
      /^ok {6}config: .*runner\.yaml \(1 schedule, 1 job file, secrets backend filesystem\)$/m,
    );
    expect(out).toMatch(/^doctor: \d+ checks passed/m);

    chmodSync(join(dir, "secrets"), 0o755);
    out = "";
    expect(await doctor(["-c", join(dir, "runner.yaml")])).toBe(1);
    expect(out).toMatch(/^problem filesystem secrets_dir: .* \(fix: chmod o-rwx .*\)$/m);
    expect(out).toMatch(/^doctor: 1 problem found$/m);
  });
});
