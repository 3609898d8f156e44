// biome-ignore-all lint/suspicious/noTemplateCurlyInString: job definitions hold ${...} references on purpose
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apply } from "../../src/catalog/apply.js";
import { fingerprintKeyPath } from "../../src/catalog/fingerprint-key.js";
import { readCatalogMetadata } from "../../src/catalog/metadata.js";
import type { Plan } from "../../src/catalog/plan.js";
import { secretParametersSupported } from "../../src/catalog/self-test.js";
import { CatalogError, DuckcronError } from "../../src/errors.js";
import { type DuckcronEvents, EventBus } from "../../src/observe/events.js";
import { planFresh, query, scrubberOf, tempDir } from "./helpers.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const TOKEN = "FAKE_BEARER_TOKEN_7c1e";
const NO_SCRUB = scrubberOf([]);

let root: { path: string; remove: () => Promise<void> };
let n = 0;
/** A fresh job directory per test, with the shared fixtures one level up. */
async function jobDir(): Promise<string> {
  n += 1;
  const dir = join(root.path, `job${n}`);
  await mkdir(dir);
  return dir;
}

beforeAll(async () => {
  root = await tempDir("apply");
  await query(
    ":memory:",
    `COPY (SELECT range AS id, 'p' || range AS label FROM range(3)) TO '${root.path}/data.parquet' (FORMAT parquet);
     COPY (SELECT range AS id FROM range(4)) TO '${root.path}/data.csv' (HEADER);
     COPY (SELECT range AS id FROM range(5)) TO '${root.path}/data.json' (FORMAT json);`,
    {},
  );
});
afterAll(() => root.remove());

const views = [
  { name: "p", source: "parquet", uri: "../data.parquet" },
  { name: "c", source: "csv", uri: "../data.csv", options: { header: true } },
  { name: "j", source: "json", uri: "../data.json" },
  {
    name: "total",
    schema: "report",
    sql: "SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM c) AS n",
  },
];

function definition(extra: { secrets?: unknown[]; views?: unknown[]; settings?: unknown } = {}) {
  return {
    version: 1,
    duckdb: {
      database: "out/${tenant}.duckdb",
      secrets: extra.secrets ?? [],
      ...(extra.settings ? { settings: extra.settings } : {}),
    },
    views: extra.views ?? views,
  };
}

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter(
    (f) => f.includes(".tmp-") || f.endsWith(".wal") || f.endsWith(".lock"),
  );
}

function captureError(promise: Promise<unknown>): Promise<DuckcronError> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(DuckcronError);
      return error as DuckcronError;
    },
  );
}

describe("self-test", () => {
  it("finds that this DuckDB binds CREATE SECRET parameters", async () => {
    expect(await secretParametersSupported()).toBe(true);
  });
});

describe("apply", () => {
  it("builds views over local parquet, csv and json, relative to the job file, from any cwd", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition(), dir);
    const events = new EventBus();
    const built = events.next("catalog:built");
    const progress: string[] = [];
    const result = await apply(p, {
      scrubber: NO_SCRUB,
      tenant: "acme",
      events,
      onProgress: (s, i, total) => progress.push(`${i + 1}/${total} ${s.target}`),
    });
    expect(result).toMatchObject({
      catalogPath: join(dir, "out/acme.duckdb"),
      skipped: false,
      viewCount: 4,
    });
    expect(result.changes.added).toEqual(["p", "c", "j", "report.total"]);
    expect(progress[0]).toMatch(/^1\/\d+ view p$/);
    expect((await built).skipped).toBe(false);
    const rows = await query(
      p.catalogPath,
      "SELECT (SELECT count(*) FROM p)::INT AS p, (SELECT count(*) FROM c)::INT AS c, (SELECT count(*) FROM j)::INT AS j, (SELECT n FROM report.total)::INT AS total",
    );
    expect(rows).toEqual([{ p: 3, c: 4, j: 5, total: 7 }]);
    expect(await leftovers(join(dir, "out"))).toEqual([]);
    const meta = await readCatalogMetadata(p.catalogPath);
    expect(meta).toMatchObject({ fingerprint: p.fingerprint, tenant: "acme", hasTables: false });
    expect(Object.keys(meta?.views ?? {})).toEqual(["p", "c", "j", "report.total"]);
  });

  it("skips an unchanged catalog, rebuilds when a secret value rotates", async () => {
    const dir = await jobDir();
    const def = definition({
      secrets: [{ name: "api", type: "http", bearer_token: "${secret:tok}" }],
      views: [],
    });
    const first = await apply(await planFresh(def, dir, { tok: "v1" }), {
      scrubber: NO_SCRUB,
      tenant: "acme",
    });
    expect(first.skipped).toBe(false);
    const same = await apply(await planFresh(def, dir, { tok: "v1" }), {
      scrubber: NO_SCRUB,
      tenant: "acme",
    });
    expect(same).toMatchObject({ skipped: true, fingerprint: first.fingerprint });
    const rotated = await apply(await planFresh(def, dir, { tok: "v2" }), {
      scrubber: NO_SCRUB,
      tenant: "acme",
    });
    expect(rotated.skipped).toBe(false);
    expect(rotated.fingerprint).not.toBe(first.fingerprint);
    const forced = await apply(await planFresh(def, dir, { tok: "v2" }), {
      scrubber: NO_SCRUB,
      tenant: "acme",
      force: true,
    });
    expect(forced.skipped).toBe(false);
  });

  it("keys the fingerprint with a key beside the catalog, 0600, never inside it", async () => {
    const dir = await jobDir();
    const def = definition({
      secrets: [{ name: "api", type: "http", bearer_token: "${secret:tok}" }],
      views: [],
    });
    const p = await planFresh(def, dir, { tok: "v1" });
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    const keyFile = fingerprintKeyPath(p.catalogPath);
    expect(basename(keyFile)).toBe(".acme.duckdb.fingerprint-key");
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const key = (await readFile(keyFile, "utf8")).trim();
    expect(key).toBe(p.fingerprintKey);
    expect((await readFile(p.catalogPath)).includes(key)).toBe(false);
    const columns = await query(
      p.catalogPath,
      "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'duckcron' AND table_name = 'catalog'",
    );
    expect(columns.map((c) => c.column_name)).not.toContain("salt");
    expect((await readCatalogMetadata(p.catalogPath))?.formatVersion).toBe(2);

    // The next plan reads the same key, so an unchanged catalog is skipped.
    const same = await planFresh(def, dir, { tok: "v1" });
    expect(same.fingerprintKey).toBe(key);
    expect((await apply(same, { scrubber: NO_SCRUB, tenant: "acme" })).skipped).toBe(true);
    // Without the key the recorded fingerprint cannot be reproduced: rebuild, new key.
    await rm(keyFile);
    const rekeyed = await planFresh(def, dir, { tok: "v1" });
    expect((await apply(rekeyed, { scrubber: NO_SCRUB, tenant: "acme" })).skipped).toBe(false);
    expect((await readFile(keyFile, "utf8")).trim()).toBe(rekeyed.fingerprintKey);
    expect(rekeyed.fingerprintKey).not.toBe(key);
  });

  it("always refreshes materialized tables, which snapshot data at build time", async () => {
    const dir = await jobDir();
    const def = definition({
      views: [{ name: "snap", source: "parquet", uri: "../data.parquet", materialize: "table" }],
    });
    const p = await planFresh(def, dir);
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    const again = await apply(await planFresh(def, dir), { scrubber: NO_SCRUB, tenant: "acme" });
    expect(again.skipped).toBe(false);
    const rows = await query(
      p.catalogPath,
      "SELECT table_type FROM information_schema.tables WHERE table_name = 'snap'",
    );
    expect(rows).toEqual([{ table_type: "BASE TABLE" }]);
  });

  it("serialises concurrent builds of one catalog inside the process", async () => {
    const dir = await jobDir();
    const def = definition({ views: [{ name: "v", sql: "SELECT 1 AS x" }] });
    const p = await planFresh(def, dir);
    const results = await Promise.all([
      apply(p, { scrubber: NO_SCRUB, tenant: "acme" }),
      apply(p, { scrubber: NO_SCRUB, tenant: "acme" }),
    ]);
    expect(results.map((r) => r.skipped)).toEqual([false, true]);
  });
});

describe("secrets", () => {
  it("keeps temporary secrets out of every file; persistent ones land 0600 in a private per-catalog directory", async () => {
    const dir = await jobDir();
    const def = definition({
      views: [],
      secrets: [
        {
          name: "tmp_api",
          type: "http",
          bearer_token: "${secret:tok}",
          scope: "https://tmp.example/",
        },
        {
          name: "kept_api",
          type: "http",
          bearer_token: "${secret:tok}",
          persistent: true,
          scope: "https://kept.example/",
        },
      ],
    });
    const p = await planFresh(def, dir, { tok: TOKEN });
    // A loose real directory from an older version is replaced by a private folder.
    await mkdir(p.secretDirectory, { recursive: true, mode: 0o755 });
    await chmod(p.secretDirectory, 0o755);
    const events = new EventBus();
    const seen: DuckcronEvents["duckdb:secret"][] = [];
    events.on("duckdb:secret", (e) => seen.push(e));
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme", events, schedule: "s1" });

    expect(seen.map((e) => [e.name, e.action, e.persistent, e.scope])).toEqual([
      ["tmp_api", "created", false, ["https://tmp.example/"]],
      ["kept_api", "created", true, ["https://kept.example/"]],
    ]);
    expect((await stat(p.secretDirectory)).mode & 0o777).toBe(0o700);
    expect(await readdir(p.secretDirectory)).toEqual(["kept_api.duckdb_secret"]);
    expect((await stat(join(p.secretDirectory, "kept_api.duckdb_secret"))).mode & 0o777).toBe(
      0o600,
    );
    expect((await readFile(p.catalogPath)).includes(TOKEN)).toBe(false);

    // A fresh instance with the same secret directory sees the persistent secret only.
    const listed = await query(
      ":memory:",
      "SELECT name, persistent FROM duckdb_secrets() ORDER BY name",
      {
        secret_directory: p.secretDirectory,
      },
    );
    expect(listed).toEqual([{ name: "kept_api", persistent: true }]);
  });

  it("a build meets no secret or attachment of an earlier build in this process", async () => {
    const dir = await jobDir();
    await query(
      ":memory:",
      `ATTACH '${root.path}/other.duckdb' AS o; CREATE TABLE o.t AS SELECT 1 AS x`,
      {},
    );
    const first = {
      ...definition({
        views: [{ name: "v", database: "other_db", table: "t" }],
        secrets: [{ name: "tmp_api", type: "http", bearer_token: "${secret:tok}" }],
      }),
      attachments: [{ alias: "other_db", path: "../other.duckdb" }],
    };
    await apply(await planFresh(first, dir, { tok: TOKEN }, "first"), {
      scrubber: NO_SCRUB,
      tenant: "first",
    });
    // Materialized, so the snapshot shows what the second build's instance held.
    const second = definition({
      views: [
        {
          name: "seen_secrets",
          sql: "SELECT name FROM duckdb_secrets()",
          materialize: "table",
        },
        {
          name: "seen_databases",
          sql: "SELECT database_name FROM duckdb_databases() WHERE database_name = 'other_db'",
          materialize: "table",
        },
      ],
    });
    const p = await planFresh(second, dir, {}, "second");
    await apply(p, { scrubber: NO_SCRUB, tenant: "second" });
    expect(await query(p.catalogPath, "SELECT * FROM seen_secrets")).toEqual([]);
    expect(await query(p.catalogPath, "SELECT * FROM seen_databases")).toEqual([]);
  });

  it("builds a catalog whose attachment has the catalog file's own name (ops.duckdb, alias ops)", async () => {
    // DuckDB names a database after its file up to the first dot; the build attaches its
    // temp file under a fixed name of duckcron's own, so an alias `ops` cannot collide.
    const dir = await jobDir();
    await query(
      ":memory:",
      `ATTACH '${root.path}/ops-source.duckdb' AS s; CREATE TABLE s.orders AS SELECT 42 AS id`,
      {},
    );
    const job = {
      ...definition({ views: [{ name: "orders", database: "ops", table: "orders" }] }),
      attachments: [{ alias: "ops", path: "../ops-source.duckdb" }],
    };
    const p = await planFresh(job, dir, {}, "ops");
    expect(basename(p.catalogPath)).toBe("ops.duckdb");
    await apply(p, { scrubber: NO_SCRUB, tenant: "ops" });
    const rows = await query(
      p.catalogPath,
      "SELECT view_name FROM duckdb_views() WHERE NOT internal",
    );
    expect(rows.map((r) => r.view_name)).toContain("orders");
  });

  it("drops persistent secrets from disk once they leave the config", async () => {
    const dir = await jobDir();
    const secret = { name: "gone", type: "http", bearer_token: "${secret:tok}", persistent: true };
    const first = await planFresh(definition({ views: [], secrets: [secret] }), dir, {
      tok: TOKEN,
    });
    await apply(first, { scrubber: NO_SCRUB, tenant: "acme" });
    expect(await readdir(first.secretDirectory)).toEqual(["gone.duckdb_secret"]);

    const second = await planFresh(definition({ views: [] }), dir);
    expect(second.persistentSecretsToDrop).toEqual(["gone"]);
    const events = new EventBus();
    const dropped = events.next("duckdb:secret", (e) => e.action === "dropped");
    await apply(second, { scrubber: NO_SCRUB, tenant: "acme", events });
    expect((await dropped).name).toBe("gone");
    expect(await readdir(first.secretDirectory)).toEqual([]);
    expect((await readCatalogMetadata(second.catalogPath))?.secrets).toEqual([]);
  });

  it("rebuilds when a persistent secret file was removed by hand", async () => {
    const dir = await jobDir();
    const def = definition({
      views: [],
      secrets: [{ name: "p1", type: "http", bearer_token: "x", persistent: true }],
    });
    const p = await planFresh(def, dir);
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    await import("node:fs/promises").then((fs) =>
      fs.rm(join(p.secretDirectory, "p1.duckdb_secret")),
    );
    const again = await apply(await planFresh(def, dir), { scrubber: NO_SCRUB, tenant: "acme" });
    expect(again.skipped).toBe(false);
    expect(await readdir(p.secretDirectory)).toEqual(["p1.duckdb_secret"]);
  });

  it.each([
    ["bound as parameters", false],
    ["inlined as literals (fallback for DuckDB builds without parameter support)", true],
  ])("stores awkward values exactly when %s", async (_label, inlineParameters) => {
    const dir = await jobDir();
    const value = `${TOKEN} it's \\back\\slash\nnewline "dq" ünïcødé 🔑 $1 ; DROP TABLE x; --`;
    const def = definition({
      views: [],
      secrets: [
        {
          name: "odd",
          type: "http",
          bearer_token: "${secret:tok}",
          extra_http_headers: { "X-$1": "${secret:tok}" },
          verify_ssl: false,
          persistent: true,
        },
      ],
    });
    const p = await planFresh(def, dir, { tok: value });
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme", inlineParameters });
    const rows = await query(
      ":memory:",
      "SELECT secret_string FROM duckdb_secrets(redact := false)",
      {
        secret_directory: p.secretDirectory,
        allow_unredacted_secrets: "true",
      },
    );
    const text = String(rows[0]?.secret_string);
    expect(text).toContain(`bearer_token=${value}`);
    // The MAP is displayed with its own escaping; the key arriving intact is what matters here.
    expect(text).toContain("extra_http_headers={X-$1=");
    expect(text).toContain("verify_ssl=false");
  });
});

describe("failures leave the old catalog untouched", () => {
  async function builtCatalog() {
    const dir = await jobDir();
    const p = await planFresh(definition({ views: [{ name: "v", sql: "SELECT 1 AS x" }] }), dir);
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    return { dir, path: p.catalogPath, bytes: await readFile(p.catalogPath) };
  }

  it("a view over a missing file", async () => {
    const old = await builtCatalog();
    const p = await planFresh(
      definition({ views: [{ name: "broken", source: "parquet", uri: "nope/*.parquet" }] }),
      old.dir,
    );
    const error = await captureError(apply(p, { scrubber: NO_SCRUB, tenant: "acme" }));
    expect(error).toBeInstanceOf(CatalogError);
    expect(error.code).toBe("CATALOG_BUILD_FAILED");
    expect(error.message).toMatch(/^view broken: .*No files found/);
    expect((await readFile(old.path)).equals(old.bytes)).toBe(true);
    expect(await leftovers(join(old.dir, "out"))).toEqual([]);
  });

  it("a build killed outright leaves a temp file that the next build removes", async () => {
    const old = await builtCatalog();
    // What SIGKILL mid-build leaves: a temp file (and WAL) of a process that is gone.
    const dead = 2 ** 22 + 12345; // above Linux's highest pid_max: never a live process
    const stale = join(old.dir, "out", `.${basename(old.path)}.tmp-${dead}-0badc0de`);
    await writeFile(stale, "half a catalog");
    await writeFile(`${stale}.wal`, "half a log");
    const p = await planFresh(
      definition({ views: [{ name: "v", sql: "SELECT 2 AS x" }] }),
      old.dir,
    );
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme", force: true });
    expect(await leftovers(join(old.dir, "out"))).toEqual([]);
  });

  it("a publish step that refuses (a lost cluster lease) publishes nothing", async () => {
    const old = await builtCatalog();
    const p = await planFresh(
      definition({ views: [{ name: "v", sql: "SELECT 3 AS x" }] }),
      old.dir,
    );
    const refused = new DuckcronError("LEASE_LOST", "attempt 1 no longer holds the fire");
    const error = await captureError(
      apply(p, {
        scrubber: NO_SCRUB,
        tenant: "acme",
        publish: async () => {
          throw refused;
        },
      }),
    );
    expect(error).toBe(refused);
    expect((await readFile(old.path)).equals(old.bytes)).toBe(true);
    expect(await leftovers(join(old.dir, "out"))).toEqual([]);
  });

  it("a bad setting", async () => {
    const old = await builtCatalog();
    const p = await planFresh(definition({ views: [], settings: { no_such_setting: 1 } }), old.dir);
    const error = await captureError(apply(p, { scrubber: NO_SCRUB, tenant: "acme" }));
    expect(error.message).toMatch(/^settings: .*no_such_setting/);
    expect((await readFile(old.path)).equals(old.bytes)).toBe(true);
    expect(await leftovers(join(old.dir, "out"))).toEqual([]);
  });

  it("an abort between statements", async () => {
    const old = await builtCatalog();
    const p = await planFresh(
      definition({
        views: [
          { name: "a", sql: "SELECT 1" },
          { name: "b", sql: "SELECT 2" },
        ],
      }),
      old.dir,
    );
    const controller = new AbortController();
    const error = await captureError(
      apply(p, {
        scrubber: NO_SCRUB,
        tenant: "acme",
        signal: controller.signal,
        onProgress: (_s, index) => {
          if (index === 0) controller.abort();
        },
      }),
    );
    expect(error.message).toMatch(/^view b: build of .* aborted/);
    expect((await readFile(old.path)).equals(old.bytes)).toBe(true);
    expect(await leftovers(join(old.dir, "out"))).toEqual([]);
  });

  it("an abort during a long statement interrupts DuckDB", async () => {
    const dir = await jobDir();
    const p = await planFresh(
      definition({
        views: [
          {
            name: "slow",
            sql: "SELECT count(*) AS n FROM range(10000000000000) a",
            materialize: "table",
          },
        ],
      }),
      dir,
    );
    const controller = new AbortController();
    const error = await captureError(
      apply(p, {
        scrubber: NO_SCRUB,
        tenant: "acme",
        signal: controller.signal,
        // The statement would run for hours: only the interrupt can end it.
        onProgress: (s) => {
          if (s.target === "table slow") setImmediate(() => controller.abort());
        },
      }),
    );
    expect(error.message).toMatch(/^table slow: build of .* aborted/);
    expect(await leftovers(join(dir, "out"))).toEqual([]);
  });

  it("refuses to replace a file duckcron did not build", async () => {
    const dir = await jobDir();
    await mkdir(join(dir, "out"));
    await query(join(dir, "out/acme.duckdb"), "CREATE TABLE precious AS SELECT 42 AS answer", {});
    const p = await planFresh(definition({ views: [] }), dir);
    const error = await captureError(apply(p, { scrubber: NO_SCRUB, tenant: "acme" }));
    expect(error.message).toMatch(/exists but was not built by duckcron/);
    expect(await query(p.catalogPath, "SELECT answer FROM precious")).toEqual([{ answer: 42 }]);
  });

  it("--force replaces even a file that is no DuckDB database at all", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition({ views: [{ name: "v", sql: "SELECT 7 AS x" }] }), dir);
    await mkdir(join(dir, "out"));
    await writeFile(p.catalogPath, "not a database");
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme", force: true });
    expect(await query(p.catalogPath, "SELECT x FROM v")).toEqual([{ x: 7 }]);
  });
});

describe("DuckDB errors that echo secret values are scrubbed", () => {
  async function secretPlan(): Promise<Plan> {
    const dir = await jobDir();
    return planFresh(
      definition({
        views: [],
        secrets: [{ name: "api", type: "http", bearer_token: "${secret:tok}" }],
      }),
      dir,
      {
        tok: TOKEN,
      },
    );
  }

  it.each([
    ["bound", false],
    ["inlined", true],
  ])("a cast error on a %s value", async (_label, inlineParameters) => {
    const p = await secretPlan();
    // Hand-crafted: the schema would never let a string reach VERIFY_SSL.
    const statements = p.statements.map((s) =>
      s.stage === "secret"
        ? {
            ...s,
            sql: `CREATE OR REPLACE TEMPORARY SECRET "api" (TYPE http, VERIFY_SSL $1)`,
            params: [{ value: TOKEN, sensitive: true }],
          }
        : s,
    );
    const error = await captureError(
      apply(
        { ...p, statements },
        { scrubber: NO_SCRUB, tenant: "acme", inlineParameters, force: true },
      ),
    );
    expect(error.message).toMatch(/^secret api: .*verify_ssl/);
    expect(error.message).toContain("***");
    expect(error.message).not.toContain(TOKEN);
    expect(error.cause).toBeUndefined();
  });

  it("a LINE excerpt of a view, through the run's scrubber", async () => {
    const dir = await jobDir();
    const planted = "FAKE_VIEW_ECHO_91";
    const p = await planFresh(
      definition({
        views: [
          { name: "bad", sql: `SELECT CAST('${planted}' AS INTEGER) AS x`, materialize: "table" },
        ],
      }),
      dir,
    );
    const error = await captureError(apply(p, { scrubber: scrubberOf([planted]), tenant: "acme" }));
    expect(error.message).toMatch(/^table bad: Conversion Error/);
    expect(error.message).not.toContain(planted);
  });
});

describe("locks", () => {
  it("a live process's lock file makes the build CATALOG_LOCKED and retryable", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition({ views: [] }), dir);
    await mkdir(join(dir, "out"));
    await writeFile(`${p.catalogPath}.lock`, `${process.ppid}\n`);
    const error = await captureError(apply(p, { scrubber: NO_SCRUB, tenant: "acme" }));
    expect(error.code).toBe("CATALOG_LOCKED");
    expect(error.retryable).toBe(true);
    expect(await readFile(`${p.catalogPath}.lock`, "utf8")).toBe(`${process.ppid}\n`);
  });

  it("with an external lock (a cluster claim) the lock file is neither needed nor taken", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition({ views: [] }), dir);
    await mkdir(join(dir, "out"));
    await writeFile(`${p.catalogPath}.lock`, `${process.ppid}\n`);
    let published = 0;
    const result = await apply(p, {
      scrubber: NO_SCRUB,
      tenant: "acme",
      externalLock: true,
      publish: async (rename) => {
        published += 1;
        await rename();
      },
    });
    expect(result.skipped).toBe(false);
    expect(published).toBe(1);
    expect(await readCatalogMetadata(p.catalogPath)).toMatchObject({ fingerprint: p.fingerprint });
    expect(await readFile(`${p.catalogPath}.lock`, "utf8")).toBe(`${process.ppid}\n`);
  });

  it("a dead process's lock file is taken over", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition({ views: [] }), dir);
    await mkdir(join(dir, "out"));
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    await writeFile(`${p.catalogPath}.lock`, `${dead}\n`);
    const result = await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    expect(result.skipped).toBe(false);
    expect(await leftovers(join(dir, "out"))).toEqual([]);
  });
});

describe("atomic replace", () => {
  /** A reader in another process: prints the row count, and again on each line of input. */
  function startReader(path: string): {
    child: ChildProcessWithoutNullStreams;
    next: () => Promise<string>;
  } {
    const script = `
      import { DuckDBInstance } from "@duckdb/node-api";
      import { createInterface } from "node:readline";
      const instance = await DuckDBInstance.create(${JSON.stringify(path)}, { access_mode: "READ_ONLY" });
      const c = await instance.connect();
      const count = async () => String((await c.runAndReadAll("SELECT count(*) FROM p")).getRows()[0][0]);
      console.log(await count());
      for await (const line of createInterface({ input: process.stdin })) {
        if (line === "quit") break;
        console.log(await count());
      }
      c.closeSync(); instance.closeSync();
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: REPO });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return {
      child,
      next: async () => {
        const { value, done } = await lines.next();
        if (done) throw new Error("reader exited");
        return value as string;
      },
    };
  }

  it("a reader in another process keeps its old snapshot; new readers see the new catalog", async () => {
    const dir = await jobDir();
    const v1 = await planFresh(
      definition({ views: [{ name: "p", sql: "SELECT * FROM range(3)", materialize: "table" }] }),
      dir,
    );
    await apply(v1, { scrubber: NO_SCRUB, tenant: "acme" });
    const reader = startReader(v1.catalogPath);
    try {
      expect(await reader.next()).toBe("3");
      const v2 = await planFresh(
        definition({ views: [{ name: "p", sql: "SELECT * FROM range(5)", materialize: "table" }] }),
        dir,
      );
      const result = await apply(v2, { scrubber: NO_SCRUB, tenant: "acme" });
      expect(result.changes.changed).toEqual(["p"]);
      expect(await query(v2.catalogPath, "SELECT count(*)::INT AS n FROM p")).toEqual([{ n: 5 }]);
      reader.child.stdin.write("again\n");
      expect(await reader.next()).toBe("3");
    } finally {
      reader.child.stdin.end("quit\n");
      await once(reader.child, "exit");
    }
    expect(await leftovers(join(dir, "out"))).toEqual([]);
  });
});

describe("reading a catalog's metadata", () => {
  it("reads one catalog many times at once", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition({ views: [{ name: "v", sql: "SELECT 1 AS x" }] }), dir);
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    const read = await Promise.all(
      Array.from({ length: 6 }, () => readCatalogMetadata(p.catalogPath)),
    );
    expect(read.map((m) => m?.fingerprint)).toEqual(Array(6).fill(p.fingerprint));
  });

  it("a file that is no DuckDB database is CATALOG_BUILD_FAILED, naming it", async () => {
    const dir = await jobDir();
    await writeFile(join(dir, "not.duckdb"), "plain text, not a database\n".repeat(200));
    const error = await captureError(readCatalogMetadata(join(dir, "not.duckdb")));
    expect(error.code).toBe("CATALOG_BUILD_FAILED");
    expect(error.message).toContain(
      `${join(dir, "not.duckdb")} cannot be read as a DuckDB catalog`,
    );
  });

  it("a catalog held read-write by another process is CATALOG_LOCKED and retryable", async () => {
    const dir = await jobDir();
    const path = join(dir, "held.duckdb");
    const script = `
      import { DuckDBInstance } from "@duckdb/node-api";
      const instance = await DuckDBInstance.create(${JSON.stringify(path)});
      console.log("open");
      process.stdin.once("data", () => process.exit(0));
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: REPO });
    try {
      const [line] = await once(createInterface({ input: child.stdout }), "line");
      expect(line).toBe("open");
      const error = await captureError(readCatalogMetadata(path));
      expect(error.code).toBe("CATALOG_LOCKED");
      expect(error.retryable).toBe(true);
    } finally {
      child.stdin.end("quit\n");
      await once(child, "exit");
    }
  });
});
