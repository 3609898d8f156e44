// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config references are written ${...}; these strings are data, not templates
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadJob, loadRunner } from "../../src/config/load.js";
import { DuckcronError, formatIssue } from "../../src/errors.js";
import { configError, JOB, writeTree, yaml } from "./helpers.js";

const GOOD = join("test", "fixtures", "config", "good");

describe("loading a valid runner.yaml", () => {
  it("loads every job, applies defaults and freezes the result", async () => {
    const runner = await loadRunner(join(GOOD, "runner.yaml"), { env: {} });
    expect(runner.file).toBe(join(GOOD, "runner.yaml"));
    expect(runner.config.runner.secrets).toMatchObject({
      type: "env",
      prefix: "DUCKCRON_",
      cache_ttl: 60_000,
    });
    const [first, second] = runner.config.runner.schedules;
    expect(first).toMatchObject({ timeout: 600_000, retries: { attempts: 3, backoff: 30_000 } });
    expect(second).toMatchObject({ overlap: "skip", enabled: true, retries: { attempts: 0 } });
    expect([...runner.jobs.keys()]).toEqual(["sales_catalog", "sales_nightly", "local_files"]);
    // One job file shared by two schedules is loaded once.
    expect(runner.jobs.get("sales_catalog")).toBe(runner.jobs.get("sales_nightly"));
    expect(runner.warnings).toEqual([]);

    const sales = runner.jobs.get("sales_catalog")!;
    expect(sales.file).toBe(join(GOOD, "jobs", "sales.yaml"));
    expect(sales.dir).toBe(join(process.cwd(), GOOD, "jobs"));
    expect(sales.definition.duckdb.secrets[0]).toMatchObject({
      name: "lake",
      persistent: false,
      scope: ["s3://lake/${tenant}/"],
      params: { key_id: "${secret:aws_access_key_id}", region: "us-west-2" },
    });
    // `database:` is postgres' alias of dbname.
    expect(sales.definition.duckdb.secrets[1]?.params).toMatchObject({ dbname: "ops", port: 5432 });

    expect(Object.isFrozen(runner.config.runner.schedules[0]?.tenants)).toBe(true);
    expect(Object.isFrozen(sales.definition.duckdb.secrets[0]?.params)).toBe(true);
    expect(() => {
      (runner.config.runner as { timezone: string }).timezone = "x";
    }).toThrow(TypeError);
  });

  it("locates fields of the validated config in the YAML", async () => {
    const runner = await loadRunner(join(GOOD, "runner.yaml"), { env: {} });
    expect(runner.locate(["runner", "schedules", 1, "cron"])).toEqual({
      file: join(GOOD, "runner.yaml"),
      line: 21,
      col: 13,
    });
    // A defaulted field is not in the file: its nearest parent is.
    expect(runner.locate(["runner", "schedules", 1, "overlap"])).toMatchObject({
      line: 19,
      col: 7,
    });
    const sales = runner.jobs.get("sales_catalog")!;
    expect(sales.locate(["duckdb", "secrets", 0, "params", "region"])).toMatchObject({
      line: 11,
      col: 15,
    });
    // Written as `database:`, stored as dbname.
    expect(sales.locate(["duckdb", "secrets", 1, "params", "dbname"])).toMatchObject({
      line: 17,
      col: 17,
    });
  });

  it("loads a single job file", async () => {
    const job = await loadJob(join(GOOD, "jobs", "local.yaml"), { env: {} });
    expect(job.definition.views[1]).toMatchObject({ name: "event_count", materialize: "table" });
    expect(job.sensitive).toEqual([]);
  });

  it("reports a missing top-level file as CONFIG_NOT_FOUND", async () => {
    const error = await loadRunner(join(GOOD, "nope.yaml")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuckcronError);
    expect(error).toMatchObject({ code: "CONFIG_NOT_FOUND" });
    expect((error as Error).message).toContain("nope.yaml (no such file)");
  });
});

describe("env substitution", () => {
  const runnerWith = (job: string) => ({
    "runner.yaml": yaml`
      version: 1
      runner:
        max_concurrent_runs: \${env:RUNS}
        schedules:
          - name: s
            config: \${JOBS_DIR}/job.yaml
            cron: "* * * * *"
            tenants: ["\${env:TENANT}"]
    `,
    "jobs/job.yaml": job,
  });

  it("substitutes ${env:NAME} and ${NAME} everywhere, keeping ${secret:..} and ${tenant}", async () => {
    const root = await writeTree(
      runnerWith(yaml`
        version: 1
        duckdb:
          database: \${env:CATALOGS}/\${tenant}/x.duckdb
          settings: { memory_limit: "\${MEM}" }
          secrets:
            - name: api
              type: http
              bearer_token: \${env:API_TOKEN}
              extra_http_headers: { X-Key: "k-\${env:HEADER_KEY}", X-Tenant: "\${tenant}" }
            - name: lake
              type: s3
              key_id: \${secret:aws.key_id}
              secret: \${secret:aws.secret}
      `),
    );
    const env = {
      RUNS: "3",
      JOBS_DIR: "jobs",
      TENANT: "acme",
      CATALOGS: "/data/cat",
      MEM: "1GB",
      API_TOKEN: "tok-$1-${HOME}-$${x}-$",
      HEADER_KEY: "hk-77aa",
    };
    const runner = await loadRunner(join(root, "runner.yaml"), { env });
    // An unquoted `${env:RUNS}` means what an unquoted 3 would.
    expect(runner.config.runner.max_concurrent_runs).toBe(3);
    expect(runner.config.runner.schedules[0]?.tenants).toEqual(["acme"]);
    const job = runner.jobs.get("s")!;
    expect(job.definition.duckdb.database).toBe("/data/cat/${tenant}/x.duckdb");
    // Not a template field: the plain value.
    expect(job.definition.duckdb.settings).toEqual({ memory_limit: "1GB" });
    // Template fields escape substituted text so the later parse reads it literally.
    const api = job.definition.duckdb.secrets[0]!;
    expect(api.params.bearer_token).toBe("tok-$1-$${HOME}-$$${x}-$");
    expect(api.params.extra_http_headers).toEqual({
      "X-Key": "k-hk-77aa",
      "X-Tenant": "${tenant}",
    });
    expect(job.definition.duckdb.secrets[1]?.params.key_id).toBe("${secret:aws.key_id}");
    // Env values in credential-bearing places are reported for masking; others are not.
    expect([...job.sensitive].sort()).toEqual(["hk-77aa", "tok-$1-${HOME}-$${x}-$"]);
    expect(runner.sensitive).toEqual(job.sensitive);
  });

  it("round-trips a `$` in a value exactly through the template parser", async () => {
    const { parseTemplate } = await import("../../src/config/template.js");
    const root = await writeTree({
      "job.yaml": yaml`
        version: 1
        duckdb:
          database: x.duckdb
          secrets:
            - { name: api, type: http, bearer_token: "\${env:T}\${tenant}" }
      `,
    });
    const value = "p$a${ss}$${w}";
    const job = await loadJob(join(root, "job.yaml"), { env: { T: value } });
    const parts = parseTemplate(job.definition.duckdb.secrets[0]?.params.bearer_token as string);
    expect(parts).toEqual([
      { kind: "text", text: value },
      { kind: "tenant", raw: "${tenant}" },
    ]);
  });

  it('refuses a value ending in "$" right before a reference (the grammar cannot say it)', async () => {
    const root = await writeTree({
      "job.yaml": yaml`
        version: 1
        duckdb:
          database: "\${env:DIR}\${tenant}/x.duckdb"
      `,
    });
    const error = await configError(() => loadJob(join(root, "job.yaml"), { env: { DIR: "a$" } }));
    expect(error.message).toMatch(
      /job\.yaml:3:13: duckdb\.database: a "\$" directly before a reference/,
    );
  });

  it("names the variable, file, line and field of a missing variable, and checks every file", async () => {
    const root = await writeTree(
      runnerWith(yaml`
        version: 1
        duckdb:
          database: x.duckdb
          secrets:
            - name: api
              type: http
              bearer_token: \${env:VAULT_TOKEN}
      `),
    );
    const error = await configError(() =>
      loadRunner(join(root, "runner.yaml"), { env: { JOBS_DIR: "jobs", TENANT: "acme" } }),
    );
    const lines = error.message.split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /runner\.yaml:3:24: runner\.max_concurrent_runs: environment variable RUNS is not set \(\$\{env:RUNS\}\)$/,
    );
    expect(lines[1]).toMatch(
      /job\.yaml:7:21: duckdb\.secrets\[0\]\.bearer_token: environment variable VAULT_TOKEN is not set \(\$\{env:VAULT_TOKEN\}\)$/,
    );
    expect(error.code).toBe("CONFIG_INVALID");
  });

  it("never puts an env value into a message", async () => {
    const planted = "PLANTED-9f8e7d-value";
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runner:
          timezone: \${env:V}
          secrets: { type: env, prefix: "\${env:V}" }
          schedules:
            - { name: "\${env:V}", config: j.yaml, cron: "\${env:V}", tenants: [a], overlap: "\${V}" }
      `,
    });
    const error = await configError(() =>
      loadRunner(join(root, "runner.yaml"), { env: { V: planted } }),
    );
    expect(error.issues.length).toBeGreaterThanOrEqual(5);
    expect(error.message).not.toContain("PLANTED");
    expect(JSON.stringify(error.issues)).not.toContain("PLANTED");
  });

  it("rejects ${secret:..} and ${tenant} in runner.yaml and malformed references anywhere", async () => {
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runner:
          secrets: { type: filesystem, secrets_dir: "\${secret:dir}" }
          state_dir: state/\${tenant}
          schedules:
            - { name: a, config: j.yaml, cron: "\${foo:bar}", tenants: [a] }
      `,
      "j.yaml": yaml`
        version: 1
        duckdb:
          database: x.duckdb
          extension_directory: ext/\${tenant}
        views:
          - { name: v, sql: "SELECT '\${secret:pw}'" }
          - { name: w, sql: "SELECT '\${secret:}'" }
      `,
    });
    const error = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    const text = error.issues.map(formatIssue);
    expect(text).toEqual([
      expect.stringMatching(
        /runner\.yaml:3:45: runner\.secrets\.secrets_dir: \$\{secret:dir\}: secret references belong in job files/,
      ),
      expect.stringMatching(
        /runner\.yaml:4:14: runner\.state_dir: \$\{tenant\}: runner\.yaml has no tenant/,
      ),
      expect.stringMatching(
        /runner\.yaml:6:40: runner\.schedules\[0\]\.cron: \$\{foo:bar\}: unknown reference kind "foo"/,
      ),
      expect.stringMatching(
        /j\.yaml:4:24: duckdb\.extension_directory: \$\{tenant\}: this field does not take \$\{tenant\}/,
      ),
      expect.stringMatching(
        /j\.yaml:6:21: views\[0\]\.sql: \$\{secret:pw\}: secret references are only allowed in duckdb\.secrets\[\]/,
      ),
      expect.stringMatching(
        /j\.yaml:7:21: views\[1\]\.sql: \$\{secret:\}: secret names use letters/,
      ),
    ]);
  });
});

describe("Dativo's layout", () => {
  const schedules = yaml`
    - name: a
      config: j.yaml
      cron: "61 * * * *"
      tenants: [acme]
  `;
  it("accepts runner.orchestrator.schedules and locates issues at what was written", async () => {
    const indented = schedules.replace(/^/gm, "      ");
    const root = await writeTree({
      "runner.yaml": `version: 1\nrunner:\n  orchestrator:\n    schedules:\n${indented}\n`,
      "j.yaml": JOB,
    });
    const error = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    expect(error.message).toMatch(
      /runner\.yaml:7:15: runner\.orchestrator\.schedules\[0\]\.cron: invalid cron expression/,
    );

    await writeTree({});
    const fixed = indented.replace("61 * * * *", "1 * * * *");
    const good = await writeTree({
      "runner.yaml": `version: 1\nrunner:\n  orchestrator:\n    schedules:\n${fixed}\n`,
      "j.yaml": JOB,
    });
    const runner = await loadRunner(join(good, "runner.yaml"), { env: {} });
    expect(runner.config.runner.schedules[0]?.name).toBe("a");
    expect(runner.jobs.has("a")).toBe(true);
    expect(runner.locate(["runner", "schedules", 0, "cron"])).toMatchObject({ line: 7, col: 15 });
  });

  it("refuses both layouts at once", async () => {
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runner:
          schedules: []
          orchestrator:
            schedules: []
            kind: x
      `,
    });
    const error = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue)).toEqual([
      expect.stringMatching(
        /runner\.yaml:5:5: runner\.orchestrator\.schedules: runner\.schedules and runner\.orchestrator\.schedules are both given/,
      ),
      expect.stringMatching(
        /runner\.yaml:6:5: runner\.orchestrator\.kind: unknown key "kind" \(allowed: schedules\)$/,
      ),
    ]);
  });
});

describe("unknown keys", () => {
  it("are located at the key, with a suggestion from the schema, at every depth", async () => {
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runer: {}
        runner:
          max_concurent_runs: 2
          http: { listn: ":9464" }
          schedules:
            - name: a
              config: j.yaml
              crn: "* * * * *"
              tenants: [acme]
      `,
      "j.yaml": yaml`
        version: 1
        duckdb:
          database: x.duckdb
          secrets:
            - { name: lake, type: s3, regoin: us-east-1 }
        attachments:
          - { alias: a, path: a.duckdb, readonly: true }
        views:
          - name: v
            sql: SELECT 1
            materialise: table
      `,
    });
    const error = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue)).toEqual([
      expect.stringMatching(
        /runner\.yaml:2:1: runer: unknown key "runer" \(did you mean "runner"\?\)$/,
      ),
      expect.stringMatching(
        /runner\.yaml:4:3: runner\.max_concurent_runs: unknown key "max_concurent_runs" \(did you mean "max_concurrent_runs"\?\)$/,
      ),
      expect.stringMatching(
        /runner\.yaml:5:11: runner\.http\.listn: unknown key "listn" \(did you mean "listen"\?\)$/,
      ),
      // "cron is missing" would only repeat the did-you-mean below.
      expect.stringMatching(
        /runner\.yaml:9:7: runner\.schedules\[0\]\.crn: unknown key "crn" \(did you mean "cron"\?\)$/,
      ),
      expect.stringMatching(
        /j\.yaml:5:31: duckdb\.secrets\[0\]\.regoin: unknown parameter for s3 secrets with provider config \(did you mean "region"\?\)$/,
      ),
      expect.stringMatching(
        /j\.yaml:7:33: attachments\[0\]\.readonly: unknown key "readonly" \(did you mean "read_only"\?\)$/,
      ),
      expect.stringMatching(
        /j\.yaml:11:5: views\[0\]\.materialise: unknown key "materialise" \(did you mean "materialize"\?\)$/,
      ),
    ]);
  });
});

describe("placeholders", () => {
  const files = {
    "job.yaml": yaml`
      version: 1
      duckdb:
        database: x.duckdb
        secrets:
          - name: lake
            type: s3
            key_id: AKIAIOSFODNN7EXAMPLE
            secret: \${env:LAKE_SECRET}
            region: us-east-1
    `,
  };

  it("are warnings by default, located at the field, echoing only file text", async () => {
    const root = await writeTree(files);
    const job = await loadJob(join(root, "job.yaml"), { env: { LAKE_SECRET: "CHANGEME-now" } });
    expect(job.warnings.map(formatIssue)).toEqual([
      expect.stringMatching(
        /job\.yaml:7:15: warning: duckdb\.secrets\[0\]\.key_id: looks like a placeholder \("AKIAIOSFODNN7EXAMPLE": it is AWS's documented example access key id\)$/,
      ),
      expect.stringMatching(
        /job\.yaml:8:15: warning: duckdb\.secrets\[0\]\.secret: the environment variable's value looks like a placeholder \(it contains "changeme"\)$/,
      ),
    ]);
    expect(JSON.stringify(job.warnings)).not.toContain("CHANGEME-now");
  });

  it("are errors with strict", async () => {
    const root = await writeTree(files);
    const error = await configError(() =>
      loadJob(join(root, "job.yaml"), { env: { LAKE_SECRET: "CHANGEME-now" }, strict: true }),
    );
    expect(error.issues.map((i) => i.severity)).toEqual(["error", "error"]);
    expect(error.message).toContain("duckdb.secrets[0].key_id: looks like a placeholder");
  });

  it("flag backend credentials in runner.yaml too, and only those", async () => {
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runner:
          audit: { path: "-", hmac_key: changeme }
          secrets:
            type: vault
            url: https://vault.example.com:8200
            token: <vault token>
            prefix: ""
      `,
    });
    const runner = await loadRunner(join(root, "runner.yaml"), { env: {} });
    expect(runner.warnings.map(formatIssue)).toEqual([
      expect.stringMatching(
        /runner\.yaml:7:12: warning: runner\.secrets\.token: looks like a placeholder \("<vault token>": it is a <placeholder> in angle brackets\)$/,
      ),
    ]);
  });

  it("record env values of DuckDB's credential settings as sensitive, and no other settings", async () => {
    const root = await writeTree({
      "job.yaml": [
        "version: 1",
        "duckdb:",
        "  database: out/${tenant}.duckdb",
        "  settings:",
        "    s3_secret_access_key: ${env:LEGACY_KEY}",
        "    azure_storage_connection_string: ${env:AZ_CONN}",
        "    memory_limit: ${env:MEM}",
        "",
      ].join("\n"),
    });
    const job = await loadJob(join(root, "job.yaml"), {
      env: { LEGACY_KEY: "legacy-s3-key-9a8b", AZ_CONN: "AccountKey=abcd1234", MEM: "1GB" },
    });
    expect([...job.sensitive].sort()).toEqual(["AccountKey=abcd1234", "legacy-s3-key-9a8b"]);
  });

  it("record env values of backend credentials as sensitive", async () => {
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runner:
          timezone: \${env:TZ_NAME}
          secrets: { type: vault, url: "https://vault.example.com", token: "\${env:VAULT_TOKEN}" }
      `,
    });
    const runner = await loadRunner(join(root, "runner.yaml"), {
      env: { VAULT_TOKEN: "hvs.s3cr3t", TZ_NAME: "UTC" },
    });
    expect(runner.config.runner.secrets).toMatchObject({ token: "hvs.s3cr3t" });
    expect(runner.sensitive).toEqual(["hvs.s3cr3t"]);
  });
});

describe("several files", () => {
  it("reports every issue of every file in one error", async () => {
    const root = await writeTree({
      "runner.yaml": yaml`
        version: 1
        runner:
          timezone: Mars/Olympus
          schedules:
            - { name: a, config: jobs/a.yaml, cron: "* * * * *", tenants: [acme] }
            - { name: b, config: jobs/b.yaml, cron: "* * * * *", tenants: [acme] }
            - { name: c, config: jobs/a.yaml, cron: "* * * * *", tenants: [acme] }
            - { name: d, config: jobs/missing.yaml, cron: "* * * * *", tenants: [acme] }
      `,
      "jobs/a.yaml": "version: 1\nduckdb: { database: 3 }\n",
      "jobs/b.yaml": "version: 1\nduckdb:\n  database: x.duckdb\n  threads: 4\n",
    });
    const error = await configError(() => loadRunner(join(root, "runner.yaml"), { env: {} }));
    expect(error.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/runner\.yaml:3:13: runner\.timezone: unknown IANA time zone/),
      expect.stringMatching(
        /runner\.yaml:8:26: runner\.schedules\[3\]\.config: cannot read job file .*jobs\/missing\.yaml \(no such file\)$/,
      ),
      expect.stringMatching(/jobs\/a\.yaml:2:21: duckdb\.database: expected string, got number$/),
      expect.stringMatching(
        /jobs\/b\.yaml:4:3: duckdb\.threads: unknown key "threads" \(allowed: /,
      ),
    ]);
  });
});
