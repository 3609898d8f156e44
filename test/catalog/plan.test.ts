// biome-ignore-all lint/suspicious/noTemplateCurlyInString: job definitions hold ${...} references on purpose
import { describe, expect, it } from "vitest";
import { formatStatement, plan } from "../../src/catalog/plan.js";
import type { Statement } from "../../src/catalog/statement.js";
import { job, secretsOf } from "./helpers.js";

const DIR = "/srv/jobs";
const SECRETS = {
  key_id: "FAKE_KEY_ID_1",
  secret_key: "FAKE_SECRET_2",
  token: "FAKE_TOKEN_3",
  pw: "FAKE_PW_4",
  "json.client_secret": "FAKE_CLIENT_SECRET_5",
  conn: "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=FAKE_ACCOUNT_KEY_6",
  quirky: "it's \\ $1 'x' \n ✓",
};

function planSecrets(secrets: unknown[], extra: Record<string, unknown> = {}) {
  return plan({
    job: job({ version: 1, duckdb: { database: "cat/${tenant}.duckdb", secrets, ...extra } }, DIR),
    tenant: "acme",
    secrets: secretsOf(SECRETS),
    fingerprintKey: "fixed-key",
  });
}

function secretStatement(secret: Record<string, unknown>): Statement {
  const s = planSecrets([secret]).statements.find((st) => st.stage === "secret");
  if (!s) throw new Error("no secret statement");
  return s;
}

describe("secret statements: every value is a parameter, the SQL text holds none", () => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    [
      "s3 (config)",
      {
        name: "lake",
        type: "s3",
        key_id: "${secret:key_id}",
        secret: "${secret:secret_key}",
        region: "us-west-2",
        scope: "s3://lake/${tenant}/",
        use_ssl: true,
        url_style: "path",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "lake" (TYPE s3, SCOPE [$1], KEY_ID $2, SECRET $3, REGION $4, USE_SSL $5, URL_STYLE $6)',
      "CREATE OR REPLACE TEMPORARY SECRET \"lake\" (TYPE s3, SCOPE ['s3://lake/acme/'], KEY_ID '***', SECRET '***', REGION 'us-west-2', USE_SSL true, URL_STYLE 'path')",
    ],
    [
      "s3 (credential_chain, aws extension)",
      {
        name: "chain",
        type: "s3",
        provider: "credential_chain",
        chain: "env;config",
        region: "us-east-1",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "chain" (TYPE s3, PROVIDER credential_chain, CHAIN $1, REGION $2)',
      "CREATE OR REPLACE TEMPORARY SECRET \"chain\" (TYPE s3, PROVIDER credential_chain, CHAIN 'env;config', REGION 'us-east-1')",
    ],
    [
      "r2 with account_id",
      {
        name: "r2",
        type: "r2",
        key_id: "${secret:key_id}",
        secret: "${secret:secret_key}",
        account_id: "acct123",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "r2" (TYPE r2, KEY_ID $1, SECRET $2, ACCOUNT_ID $3)',
      "CREATE OR REPLACE TEMPORARY SECRET \"r2\" (TYPE r2, KEY_ID '***', SECRET '***', ACCOUNT_ID 'acct123')",
    ],
    [
      "gcs (HMAC keys)",
      {
        name: "g",
        type: "gcs",
        key_id: "${secret:key_id}",
        secret: "${secret:secret_key}",
        scope: ["gs://a", "gcs://b"],
      },
      'CREATE OR REPLACE TEMPORARY SECRET "g" (TYPE gcs, SCOPE [$1, $2], KEY_ID $3, SECRET $4)',
      "CREATE OR REPLACE TEMPORARY SECRET \"g\" (TYPE gcs, SCOPE ['gs://a', 'gcs://b'], KEY_ID '***', SECRET '***')",
    ],
    [
      "azure (config, connection string)",
      { name: "az", type: "azure", connection_string: "${secret:conn}" },
      'CREATE OR REPLACE TEMPORARY SECRET "az" (TYPE azure, CONNECTION_STRING $1)',
      "CREATE OR REPLACE TEMPORARY SECRET \"az\" (TYPE azure, CONNECTION_STRING '***')",
    ],
    [
      "azure (credential_chain)",
      {
        name: "az",
        type: "azure",
        provider: "credential_chain",
        chain: "cli;env",
        account_name: "acct",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "az" (TYPE azure, PROVIDER credential_chain, CHAIN $1, ACCOUNT_NAME $2)',
      "CREATE OR REPLACE TEMPORARY SECRET \"az\" (TYPE azure, PROVIDER credential_chain, CHAIN 'cli;env', ACCOUNT_NAME 'acct')",
    ],
    [
      "azure (managed_identity)",
      {
        name: "az",
        type: "azure",
        provider: "managed_identity",
        client_id: "cid",
        account_name: "acct",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "az" (TYPE azure, PROVIDER managed_identity, CLIENT_ID $1, ACCOUNT_NAME $2)',
      "CREATE OR REPLACE TEMPORARY SECRET \"az\" (TYPE azure, PROVIDER managed_identity, CLIENT_ID 'cid', ACCOUNT_NAME 'acct')",
    ],
    [
      "azure (service_principal)",
      {
        name: "az",
        type: "azure",
        provider: "service_principal",
        tenant_id: "tid",
        client_id: "cid",
        client_secret: "${secret:json.client_secret}",
        account_name: "acct",
        proxy_password: "${secret:pw}",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "az" (TYPE azure, PROVIDER service_principal, TENANT_ID $1, CLIENT_ID $2, CLIENT_SECRET $3, ACCOUNT_NAME $4, PROXY_PASSWORD $5)',
      "CREATE OR REPLACE TEMPORARY SECRET \"az\" (TYPE azure, PROVIDER service_principal, TENANT_ID 'tid', CLIENT_ID 'cid', CLIENT_SECRET '***', ACCOUNT_NAME 'acct', PROXY_PASSWORD '***')",
    ],
    [
      "azure (access_token)",
      {
        name: "az",
        type: "azure",
        provider: "access_token",
        access_token: "${secret:token}",
        account_name: "acct",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "az" (TYPE azure, PROVIDER access_token, ACCESS_TOKEN $1, ACCOUNT_NAME $2)',
      "CREATE OR REPLACE TEMPORARY SECRET \"az\" (TYPE azure, PROVIDER access_token, ACCESS_TOKEN '***', ACCOUNT_NAME 'acct')",
    ],
    [
      "postgres (aliases map to libpq names; port stays a string)",
      {
        name: "ops_db",
        type: "postgres",
        hostname: "pg.internal",
        port: 5432,
        database: "ops_${tenant}",
        username: "ro",
        password: "${secret:pw}",
        sslmode: "require",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "ops_db" (TYPE postgres, HOST $1, PORT $2, DBNAME $3, USER $4, PASSWORD $5, SSLMODE $6)',
      "CREATE OR REPLACE TEMPORARY SECRET \"ops_db\" (TYPE postgres, HOST 'pg.internal', PORT '5432', DBNAME 'ops_acme', USER 'ro', PASSWORD '***', SSLMODE 'require')",
    ],
    [
      "mysql",
      {
        name: "shop",
        type: "mysql",
        host: "db",
        port: "3306",
        database: "shop",
        user: "u",
        password: "${secret:pw}",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "shop" (TYPE mysql, HOST $1, PORT $2, DATABASE $3, USER $4, PASSWORD $5)',
      "CREATE OR REPLACE TEMPORARY SECRET \"shop\" (TYPE mysql, HOST 'db', PORT '3306', DATABASE 'shop', USER 'u', PASSWORD '***')",
    ],
    [
      "http (bearer, headers as MAP, proxy, verify_ssl)",
      {
        name: "api",
        type: "http",
        bearer_token: "${secret:token}",
        extra_http_headers: { "X-Org": "${tenant}", "X-Api-Key": "${secret:key_id}" },
        http_proxy: "http://proxy:3128",
        http_proxy_password: "${secret:pw}",
        verify_ssl: false,
        scope: "https://api.example.com",
      },
      "CREATE OR REPLACE TEMPORARY SECRET \"api\" (TYPE http, SCOPE [$1], BEARER_TOKEN $2, EXTRA_HTTP_HEADERS MAP {'X-Org': $3, 'X-Api-Key': $4}, HTTP_PROXY $5, HTTP_PROXY_PASSWORD $6, VERIFY_SSL $7)",
      "CREATE OR REPLACE TEMPORARY SECRET \"api\" (TYPE http, SCOPE ['https://api.example.com'], BEARER_TOKEN '***', EXTRA_HTTP_HEADERS MAP {'X-Org': 'acme', 'X-Api-Key': '***'}, HTTP_PROXY 'http://proxy:3128', HTTP_PROXY_PASSWORD '***', VERIFY_SSL false)",
    ],
    [
      "http (env provider)",
      { name: "proxy", type: "http", provider: "env" },
      'CREATE OR REPLACE TEMPORARY SECRET "proxy" (TYPE http, PROVIDER env)',
      'CREATE OR REPLACE TEMPORARY SECRET "proxy" (TYPE http, PROVIDER env)',
    ],
    [
      "huggingface (config)",
      { name: "hf", type: "huggingface", token: "${secret:token}" },
      'CREATE OR REPLACE TEMPORARY SECRET "hf" (TYPE huggingface, TOKEN $1)',
      "CREATE OR REPLACE TEMPORARY SECRET \"hf\" (TYPE huggingface, TOKEN '***')",
    ],
    [
      "huggingface (credential_chain)",
      { name: "hf", type: "huggingface", provider: "credential_chain" },
      'CREATE OR REPLACE TEMPORARY SECRET "hf" (TYPE huggingface, PROVIDER credential_chain)',
      'CREATE OR REPLACE TEMPORARY SECRET "hf" (TYPE huggingface, PROVIDER credential_chain)',
    ],
    [
      "iceberg (token, integer expires_in)",
      {
        name: "ice",
        type: "iceberg",
        token: "${secret:token}",
        endpoint: "https://cat/v1",
        expires_in: 3600,
      },
      'CREATE OR REPLACE TEMPORARY SECRET "ice" (TYPE iceberg, TOKEN $1, ENDPOINT $2, EXPIRES_IN $3)',
      "CREATE OR REPLACE TEMPORARY SECRET \"ice\" (TYPE iceberg, TOKEN '***', ENDPOINT 'https://cat/v1', EXPIRES_IN 3600)",
    ],
    [
      "iceberg (client credentials)",
      {
        name: "ice",
        type: "iceberg",
        client_id: "cid",
        client_secret: "${secret:json.client_secret}",
        oauth2_server_uri: "https://cat/v1/oauth/tokens",
        oauth2_scope: "PRINCIPAL_ROLE:ALL",
      },
      'CREATE OR REPLACE TEMPORARY SECRET "ice" (TYPE iceberg, CLIENT_ID $1, CLIENT_SECRET $2, OAUTH2_SERVER_URI $3, OAUTH2_SCOPE $4)',
      "CREATE OR REPLACE TEMPORARY SECRET \"ice\" (TYPE iceberg, CLIENT_ID 'cid', CLIENT_SECRET '***', OAUTH2_SERVER_URI 'https://cat/v1/oauth/tokens', OAUTH2_SCOPE 'PRINCIPAL_ROLE:ALL')",
    ],
    [
      "ducklake (map of metadata parameters, boolean)",
      {
        name: "lake",
        type: "ducklake",
        metadata_path: "postgres:dbname=lake host=pg",
        data_path: "s3://bucket/lake/",
        metadata_parameters: { TYPE: "postgres", SECRET: "ops_db" },
        encrypted: true,
      },
      "CREATE OR REPLACE TEMPORARY SECRET \"lake\" (TYPE ducklake, METADATA_PATH $1, DATA_PATH $2, METADATA_PARAMETERS MAP {'TYPE': $3, 'SECRET': $4}, ENCRYPTED $5)",
      "CREATE OR REPLACE TEMPORARY SECRET \"lake\" (TYPE ducklake, METADATA_PATH 'postgres:dbname=lake host=pg', DATA_PATH 's3://bucket/lake/', METADATA_PARAMETERS MAP {'TYPE': 'postgres', 'SECRET': 'ops_db'}, ENCRYPTED true)",
    ],
  ];

  it.each(cases)("%s", (_label, secret, sql, formatted) => {
    const s = secretStatement(secret);
    expect(s.sql).toBe(sql);
    expect(formatStatement(s)).toBe(formatted);
    for (const value of Object.values(SECRETS)) {
      expect(s.sql).not.toContain(value);
      expect(formatStatement(s)).not.toContain(value);
    }
  });

  it("binds the rendered values with their types and marks secret-derived ones sensitive", () => {
    const s = secretStatement({
      name: "api",
      type: "http",
      bearer_token: "Bearer ${secret:token}",
      verify_ssl: true,
      scope: "https://${tenant}.example.com/",
    });
    expect(s.params).toEqual([
      { value: "https://acme.example.com/", sensitive: false },
      { value: "Bearer FAKE_TOKEN_3", sensitive: true },
      { value: true, sensitive: false },
    ]);
  });

  it("renders booleans and integers that came from references to real booleans and numbers", () => {
    const p = plan({
      job: job(
        {
          version: 1,
          duckdb: {
            database: "c.duckdb",
            secrets: [
              { name: "ice", type: "iceberg", token: "t", expires_in: "${secret:n}" },
              { name: "api", type: "http", verify_ssl: "${secret:b}" },
            ],
          },
        },
        DIR,
      ),
      tenant: "acme",
      secrets: secretsOf({ n: "60", b: "FALSE" }),
    });
    const [ice, api] = p.statements.filter((st) => st.stage === "secret");
    expect(ice?.params[1]).toEqual({ value: 60, sensitive: true });
    expect(api?.params[0]).toEqual({ value: false, sensitive: true });
  });

  it("refuses a boolean reference that renders to something else, without echoing it", () => {
    expect(() =>
      plan({
        job: job(
          {
            version: 1,
            duckdb: {
              database: "c.duckdb",
              secrets: [{ name: "api", type: "http", verify_ssl: "${secret:b}" }],
            },
          },
          DIR,
        ),
        tenant: "acme",
        secrets: secretsOf({ b: "FAKE_NOT_A_BOOL" }),
      }),
    ).toThrow(/secret api: verify_ssl: must render to true or false$/);
  });

  it("keeps `$1` inside values and MAP keys intact when inlining", () => {
    const s = secretStatement({
      name: "api",
      type: "http",
      extra_http_headers: { "k$1 'q'": "${secret:quirky}", plain: "v$2" },
    });
    expect(s.sql).toBe(
      `CREATE OR REPLACE TEMPORARY SECRET "api" (TYPE http, EXTRA_HTTP_HEADERS MAP {'k$1 ''q''': $1, 'plain': $2})`,
    );
    expect(formatStatement(s)).toBe(
      `CREATE OR REPLACE TEMPORARY SECRET "api" (TYPE http, EXTRA_HTTP_HEADERS MAP {'k$1 ''q''': '***', 'plain': 'v$2'})`,
    );
  });

  it("uses PERSISTENT when asked and drops persistent secrets that left the config", () => {
    const previous = planSecrets([
      { name: "old", type: "http", bearer_token: "x", persistent: true },
      { name: "kept", type: "http", bearer_token: "x", persistent: true },
      { name: "demoted", type: "http", bearer_token: "x", persistent: true },
    ]).record;
    const p = plan({
      job: job(
        {
          version: 1,
          duckdb: {
            database: "cat/${tenant}.duckdb",
            secrets: [
              { name: "kept", type: "http", bearer_token: "y", persistent: true },
              { name: "demoted", type: "http", bearer_token: "y" },
            ],
          },
        },
        DIR,
      ),
      tenant: "acme",
      secrets: secretsOf({}),
      previous,
    });
    expect(p.persistentSecretsToDrop).toEqual(["old", "demoted"]);
    expect(p.statements.filter((s) => s.stage === "secret").map((s) => s.sql)).toEqual([
      'DROP PERSISTENT SECRET IF EXISTS "old"',
      'DROP PERSISTENT SECRET IF EXISTS "demoted"',
      'CREATE OR REPLACE PERSISTENT SECRET "kept" (TYPE http, BEARER_TOKEN $1)',
      'CREATE OR REPLACE TEMPORARY SECRET "demoted" (TYPE http, BEARER_TOKEN $1)',
    ]);
    expect(p.statements.filter((s) => s.secret).map((s) => s.secret?.action)).toEqual([
      "dropped",
      "dropped",
      "replaced",
      "replaced",
    ]);
    expect(p.instanceOptions.allow_persistent_secrets).toBe("true");
  });
});

describe("instance options", () => {
  it("passes settings as strings, pins the secret directory next to the catalog, keeps persistence off when unused", () => {
    const p = planSecrets([], {
      settings: { threads: 2, allow_unsigned_extensions: true, memory_limit: "1GB" },
    });
    expect(p.catalogPath).toBe("/srv/jobs/cat/acme.duckdb");
    expect(p.secretDirectory).toBe("/srv/jobs/cat/acme.duckdb.secrets");
    expect(p.instanceOptions).toEqual({
      threads: "2",
      allow_unsigned_extensions: "true",
      memory_limit: "1GB",
      secret_directory: "/srv/jobs/cat/acme.duckdb.secrets",
      allow_persistent_secrets: "false",
    });
  });

  it("resolves extension_directory against the job file and turns auto-install off unless set", () => {
    expect(planSecrets([], { extension_directory: "ext" }).instanceOptions).toMatchObject({
      extension_directory: "/srv/jobs/ext",
      autoinstall_known_extensions: "false",
    });
    expect(
      planSecrets([], {
        extension_directory: "/opt/ext",
        settings: { autoinstall_known_extensions: true },
      }).instanceOptions,
    ).toMatchObject({ extension_directory: "/opt/ext", autoinstall_known_extensions: "true" });
  });

  it("never lets a setting move secrets to ~/.duckdb", () => {
    const p = planSecrets([], { settings: { secret_directory: "/home/x/.duckdb/stored_secrets" } });
    expect(p.instanceOptions.secret_directory).toBe("/srv/jobs/cat/acme.duckdb.secrets");
  });
});

describe("statements", () => {
  const definition = {
    version: 1,
    duckdb: {
      database: "/data/${tenant}/sales.duckdb",
      install_extensions: [
        "httpfs",
        { name: "iceberg", repository: "core_nightly" },
        { name: "avro", repository: "repo" },
      ],
      load_extensions: ["httpfs"],
    },
    attachments: [
      { alias: "ref", path: "ref/${tenant}.duckdb" },
      { alias: "legacy", type: "sqlite", path: "/abs/legacy.db", read_only: false },
      { alias: "ops", type: "postgres", secret: "ops_db" },
    ],
    views: [
      {
        name: "sales",
        source: "parquet",
        uri: "data/${tenant}/*.parquet",
        options: { hive_partitioning: true, union_by_name: true },
      },
      {
        name: "events",
        source: "csv",
        uri: ["a.csv", "s3://b/${tenant}/b.csv"],
        options: { header: true, delim: ";", skip: 1 },
      },
      {
        name: "logs",
        schema: "raw",
        source: "json",
        uri: "https://h/x.json",
        materialize: "table",
      },
      { name: "top", schema: "raw", sql: "SELECT * FROM sales WHERE tenant = '${tenant}'" },
      { name: "orders", database: "ops", table: "public.orders" },
    ],
  };
  const full = {
    ...definition,
    duckdb: {
      ...definition.duckdb,
      secrets: [{ name: "ops_db", type: "postgres", host: "pg", password: "${secret:pw}" }],
    },
  };

  it("come in order: extensions, secrets, attachments, views, metadata", () => {
    const p = plan({
      job: job(full, DIR),
      tenant: "acme",
      secrets: secretsOf(SECRETS),
      fingerprintKey: "k",
    });
    const nonMeta = p.statements.filter((s) => s.stage !== "metadata");
    expect(nonMeta.map((s) => [s.stage, s.target, s.sql])).toEqual([
      ["extension", "extension httpfs", "INSTALL httpfs"],
      ["extension", "extension iceberg", "INSTALL iceberg FROM core_nightly"],
      ["extension", "extension avro", "INSTALL avro FROM '/srv/jobs/repo'"],
      ["extension", "extension httpfs", "LOAD httpfs"],
      [
        "secret",
        "secret ops_db",
        'CREATE OR REPLACE TEMPORARY SECRET "ops_db" (TYPE postgres, HOST $1, PASSWORD $2)',
      ],
      ["attach", "attachment ref", `ATTACH '/srv/jobs/ref/acme.duckdb' AS "ref" (READ_ONLY)`],
      ["attach", "attachment legacy", `ATTACH '/abs/legacy.db' AS "legacy" (TYPE sqlite)`],
      ["attach", "attachment ops", `ATTACH '' AS "ops" (TYPE postgres, SECRET ops_db, READ_ONLY)`],
      [
        "view",
        "view sales",
        `CREATE OR REPLACE VIEW "main"."sales" AS SELECT * FROM read_parquet('/srv/jobs/data/acme/*.parquet', hive_partitioning = true, union_by_name = true)`,
      ],
      [
        "view",
        "view events",
        `CREATE OR REPLACE VIEW "main"."events" AS SELECT * FROM read_csv(['/srv/jobs/a.csv', 's3://b/acme/b.csv'], header = true, delim = ';', skip = 1)`,
      ],
      ["view", "schema raw", `CREATE SCHEMA IF NOT EXISTS "raw"`],
      [
        "view",
        "table raw.logs",
        `CREATE OR REPLACE TABLE "raw"."logs" AS SELECT * FROM read_json('https://h/x.json')`,
      ],
      [
        "view",
        "view raw.top",
        `CREATE OR REPLACE VIEW "raw"."top" AS SELECT * FROM sales WHERE tenant = 'acme'`,
      ],
      [
        "view",
        "view orders",
        `CREATE OR REPLACE VIEW "main"."orders" AS SELECT * FROM "ops"."public"."orders"`,
      ],
    ]);
    expect(p.catalogPath).toBe("/data/acme/sales.duckdb");
    expect(p.record.hasTables).toBe(true);
    expect(Object.keys(p.record.views)).toEqual([
      "sales",
      "events",
      "raw.logs",
      "raw.top",
      "orders",
    ]);
  });

  it("record names and types of secrets in the metadata, never values", () => {
    const p = plan({
      job: job(full, DIR),
      tenant: "acme",
      secrets: secretsOf(SECRETS),
      fingerprintKey: "k",
    });
    const meta = p.statements.filter((s) => s.stage === "metadata");
    expect(meta.every((s) => s.params.length === 0)).toBe(true);
    const text = meta.map((s) => s.sql).join("\n");
    expect(text).toContain(`INSERT INTO duckcron.secrets VALUES ('ops_db', 'postgres', false)`);
    expect(text).not.toContain("FAKE_PW_4");
    expect(p.record.secrets).toEqual([{ name: "ops_db", type: "postgres", persistent: false }]);
  });
});

describe("fingerprint", () => {
  const def = (token: string, view = "SELECT 1") => ({
    version: 1,
    duckdb: {
      database: "c.duckdb",
      secrets: [{ name: "api", type: "http", bearer_token: `\${secret:${token}}` }],
    },
    views: [{ name: "v", sql: view }],
  });
  const run = (d: unknown, values: Record<string, string>, fingerprintKey = "key-a") =>
    plan({
      job: job(d, DIR),
      tenant: "acme",
      secrets: secretsOf(values),
      fingerprintKey,
      now: new Date(0),
    });

  it("is deterministic for the same input and key, and ignores the build time", () => {
    const a = run(def("t"), { t: "v1" });
    const b = plan({
      job: job(def("t"), DIR),
      tenant: "acme",
      secrets: secretsOf({ t: "v1" }),
      fingerprintKey: "key-a",
      now: new Date(),
    });
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it("changes when a secret value rotates", () => {
    expect(run(def("t"), { t: "v1" }).fingerprint).not.toBe(run(def("t"), { t: "v2" }).fingerprint);
  });

  it("is keyed: another key gives another fingerprint; without a stored key a fresh one is drawn", () => {
    const a = run(def("t"), { t: "v1" });
    expect(run(def("t"), { t: "v1" }, "key-b").fingerprint).not.toBe(a.fingerprint);
    const fresh = plan({
      job: job(def("t"), DIR),
      tenant: "acme",
      secrets: secretsOf({ t: "v1" }),
    });
    const other = plan({
      job: job(def("t"), DIR),
      tenant: "acme",
      secrets: secretsOf({ t: "v1" }),
    });
    expect(fresh.fingerprintKey).toMatch(/^[0-9a-f]{64}$/);
    expect(fresh.fingerprintKey).not.toBe(other.fingerprintKey);
    expect(fresh.fingerprint).not.toBe(other.fingerprint);
  });

  it("keeps the key out of the catalog: no metadata statement carries it", () => {
    const a = run(def("t"), { t: "v1" }, "key-that-must-stay-out");
    expect(a.record).not.toHaveProperty("salt");
    const sql = a.statements.filter((s) => s.stage === "metadata").map((s) => s.sql);
    expect(sql.join("\n")).not.toContain("key-that-must-stay-out");
    expect(sql.join("\n")).toContain("format_version INTEGER, fingerprint VARCHAR, built_at");
  });

  it("reports view changes against the previous catalog", () => {
    const before = plan({
      job: job(
        {
          version: 1,
          duckdb: { database: "c.duckdb" },
          views: [
            { name: "a", sql: "SELECT 1" },
            { name: "b", sql: "SELECT 2" },
          ],
        },
        DIR,
      ),
      tenant: "acme",
      secrets: secretsOf({}),
    });
    const after = plan({
      job: job(
        {
          version: 1,
          duckdb: { database: "c.duckdb" },
          views: [
            { name: "b", sql: "SELECT 3" },
            { name: "c", sql: "SELECT 4" },
          ],
        },
        DIR,
      ),
      tenant: "acme",
      secrets: secretsOf({}),
      previous: before.record,
    });
    expect(after.changes).toEqual({ added: ["c"], changed: ["b"], dropped: ["a"] });
    expect(before.changes).toEqual({ added: ["a", "b"], changed: [], dropped: [] });
  });
});
