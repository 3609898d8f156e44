// biome-ignore-all lint/suspicious/noTemplateCurlyInString: job definitions hold ${...} references on purpose
import {
  cp,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apply } from "../../src/catalog/apply.js";
import { readCatalogMetadata } from "../../src/catalog/metadata.js";
import type { Plan } from "../../src/catalog/plan.js";
import { DuckcronError } from "../../src/errors.js";
import { planFresh, query, scrubberOf, tempDir } from "./helpers.js";

const NO_SCRUB = scrubberOf([]);
const OLD = "FAKE_OLD_TOKEN_51d2";
const NEW = "FAKE_NEW_TOKEN_93ae";

let root: { path: string; remove: () => Promise<void> };
let n = 0;
beforeAll(async () => {
  root = await tempDir("secret-folders");
});
afterAll(() => root.remove());

async function jobDir(): Promise<string> {
  n += 1;
  const dir = join(root.path, `job${n}`);
  await mkdir(dir);
  return dir;
}

function definition(secrets: unknown[], view = "SELECT 1 AS x") {
  return {
    version: 1,
    duckdb: { database: "out/${tenant}.duckdb", secrets },
    views: [{ name: "v", sql: view }],
  };
}

const persistent = (name: string) => ({
  name,
  type: "http",
  bearer_token: "${secret:tok}",
  persistent: true,
});

async function build(dir: string, secrets: unknown[], tok: string, view?: string) {
  const p = await planFresh(definition(secrets, view), dir, { tok });
  const result = await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
  return { p, result };
}

/** What a reader sees when it sets secret_directory to the published path, as documented. */
async function readerSees(p: Plan): Promise<string[]> {
  const rows = await query(
    ":memory:",
    `SET secret_directory = '${p.secretDirectory}';
     SELECT name || '=' || regexp_extract(secret_string, 'bearer_token=([^;]*)', 1) AS s
     FROM duckdb_secrets(redact := false) ORDER BY name`,
    { allow_unredacted_secrets: "true" },
  );
  return rows.map((r) => String(r.s));
}

async function entries(p: Plan): Promise<string[]> {
  return (await readdir(join(p.catalogPath, ".."))).sort();
}

describe("persistent secrets follow the catalog", () => {
  it("publishes <catalog>.secrets as a relative link to the folder the catalog names", async () => {
    const dir = await jobDir();
    const { p } = await build(dir, [persistent("api")], OLD);
    const link = await readlink(p.secretDirectory);
    expect(link).toMatch(/^\.acme\.duckdb\.secrets-[0-9a-f]{16}$/);
    expect((await readCatalogMetadata(p.catalogPath))?.secretDirectory).toBe(link);
    expect((await stat(p.secretDirectory)).mode & 0o777).toBe(0o700);
    expect(await readdir(p.secretDirectory)).toEqual(["api.duckdb_secret"]);
    expect(await readerSees(p)).toEqual([`api=${OLD}`]);
    expect((await readFile(p.catalogPath)).includes(OLD)).toBe(false);
  });

  it("a rebuild swaps in a new folder and removes the old one", async () => {
    const dir = await jobDir();
    const first = await build(dir, [persistent("api"), persistent("gone")], OLD);
    const before = await readlink(first.p.secretDirectory);
    const second = await build(dir, [persistent("api")], NEW);
    const after = await readlink(second.p.secretDirectory);
    expect(after).not.toBe(before);
    expect(await readerSees(second.p)).toEqual([`api=${NEW}`]);
    expect((await entries(second.p)).filter((e) => e.includes(".secrets"))).toEqual(
      ["acme.duckdb.secrets", after].sort(),
    );
  });

  it("a failed build leaves the old catalog with its old secrets, and no folder of its own", async () => {
    const dir = await jobDir();
    const { p } = await build(dir, [persistent("api")], OLD);
    const before = await entries(p);
    const link = await readlink(p.secretDirectory);
    const error = await build(
      dir,
      [persistent("api"), persistent("extra")],
      NEW,
      "SELECT * FROM no_such_table",
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DuckcronError);
    expect(await readlink(p.secretDirectory)).toBe(link);
    expect(await readerSees(p)).toEqual([`api=${OLD}`]);
    expect(await entries(p)).toEqual(before);
  });

  it("removes what a killed build left (an unpublished folder with half-written secrets), even when the catalog is up to date", async () => {
    const dir = await jobDir();
    const { p } = await build(dir, [persistent("api")], OLD);
    const stray = join(dir, "out", ".acme.duckdb.secrets-0badc0de0badc0de");
    await mkdir(stray, { mode: 0o700 });
    await writeFile(join(stray, "api.duckdb_secret.tmp-1234"), NEW, { mode: 0o600 });
    await writeFile(join(stray, "added.duckdb_secret"), NEW, { mode: 0o600 });
    await symlink(
      ".acme.duckdb.secrets-0badc0de0badc0de",
      join(dir, "out", ".acme.duckdb.secrets-1234.link"),
    );
    const again = await build(dir, [persistent("api")], OLD);
    expect(again.result.skipped).toBe(true);
    expect((await entries(p)).filter((e) => e.includes(".secrets"))).toEqual(
      ["acme.duckdb.secrets", await readlink(p.secretDirectory)].sort(),
    );
  });

  it("reconciles against the folder's contents: a file added by hand means a rebuild to exactly the configured set", async () => {
    const dir = await jobDir();
    const { p } = await build(dir, [persistent("api")], OLD);
    await cp(
      join(p.secretDirectory, "api.duckdb_secret"),
      join(p.secretDirectory, "stray.duckdb_secret"),
    );
    const again = await build(dir, [persistent("api")], OLD);
    expect(again.result.skipped).toBe(false);
    expect(await readdir(p.secretDirectory)).toEqual(["api.duckdb_secret"]);
  });

  it("with no persistent secrets left, an empty folder replaces the published one", async () => {
    const dir = await jobDir();
    const { p } = await build(dir, [persistent("api")], OLD);
    const second = await build(dir, [], OLD);
    expect(await readdir(second.p.secretDirectory)).toEqual([]);
    expect(await readerSees(p)).toEqual([]);
    // Once nothing is left to drop the plan settles, and the empty folder counts as up to date.
    await build(dir, [], OLD);
    expect((await build(dir, [], OLD)).result.skipped).toBe(true);
    expect(await readdir(p.secretDirectory)).toEqual([]);
  });

  it("a job that never had persistent secrets gets no secrets folder", async () => {
    const dir = await jobDir();
    const { p } = await build(
      dir,
      [{ name: "t", type: "http", bearer_token: "${secret:tok}" }],
      OLD,
    );
    expect((await entries(p)).filter((e) => e.includes(".secrets"))).toEqual([]);
    expect((await readCatalogMetadata(p.catalogPath))?.secretDirectory).toBeUndefined();
  });

  it("replaces the real <catalog>.secrets directory of older versions with the link", async () => {
    const dir = await jobDir();
    const p = await planFresh(definition([persistent("api")]), dir, { tok: NEW });
    await mkdir(p.secretDirectory, { recursive: true, mode: 0o700 });
    await writeFile(join(p.secretDirectory, "old.duckdb_secret"), OLD, { mode: 0o600 });
    await apply(p, { scrubber: NO_SCRUB, tenant: "acme" });
    expect((await lstat(p.secretDirectory)).isSymbolicLink()).toBe(true);
    expect(await readerSees(p)).toEqual([`api=${NEW}`]);
    expect((await entries(p)).filter((e) => e.includes(".secrets"))).toEqual(
      ["acme.duckdb.secrets", await readlink(p.secretDirectory)].sort(),
    );
  });

  it("finishes a publish cut between the catalog's rename and the link's swap", async () => {
    const dir = await jobDir();
    const { p } = await build(dir, [persistent("api")], NEW);
    const paired = await readlink(p.secretDirectory);
    // The state such a crash leaves: the new catalog, the link still on an older folder.
    const older = ".acme.duckdb.secrets-00000000000000aa";
    await mkdir(join(dir, "out", older), { mode: 0o700 });
    await rm(p.secretDirectory);
    await symlink(older, p.secretDirectory);
    const again = await build(dir, [persistent("api")], NEW);
    expect(again.result.skipped).toBe(true);
    expect(await readlink(p.secretDirectory)).toBe(paired);
    expect(await readerSees(p)).toEqual([`api=${NEW}`]);
    expect((await entries(p)).filter((e) => e.includes(".secrets"))).toEqual(
      ["acme.duckdb.secrets", paired].sort(),
    );
  });
});
