import { type ChildProcessByStdio, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, installProduction, REPO } from "../cli/run-cli.js";
import { freshSchema, pgDisabled, testPgUrl } from "../cluster/pg.js";
import { startVaultTestServer, type VaultTestServer } from "../servers/vault-test-server.js";

/**
 * The image's contract without a Docker engine: what the Dockerfile's runtime stage
 * does (a production-only `npm ci --omit=dev` of the built package), started the way
 * its ENTRYPOINT starts it, with the Compose stack's runner.yaml and job (container
 * paths rewritten to a temp dir, Vault replaced by the Vault test server). It must
 * build catalogs, pass the image's own HEALTHCHECK command, and stop with exit 0 on
 * SIGTERM.
 */
const SECRETS = {
  api_token: "prod-install-api-token-77c1",
  proxy_password: "prod-install-proxy-pw-19ab",
};

describe("a production-only install runs the Compose stack's config", { timeout: 240_000 }, () => {
  let app: string;
  let vault: VaultTestServer;
  let daemon: ChildProcessByStdio<null, Readable, Readable>;
  let port: number;
  let stdout = "";
  let stderr = "";

  beforeAll(async () => {
    app = mkdtempSync(join(tmpdir(), "duckcron-prod-"));
    installProduction(app);

    vault = await startVaultTestServer();
    for (const tenant of ["acme", "globex"]) vault.seed(`duckcron/${tenant}`, SECRETS);

    port = await freePort();
    const etc = join(app, "etc");
    const state = join(app, "var");
    mkdirSync(join(etc, "jobs"), { recursive: true });
    cpSync(join(REPO, "data"), join(etc, "data"), { recursive: true });
    const runner = readFileSync(join(REPO, "deploy/compose/runner.yaml"), "utf8")
      .replace("http://vault:8200", vault.url)
      .replace('listen: "0.0.0.0:9464"', `listen: "127.0.0.1:${port}"`)
      .replace("/var/lib/duckcron", state)
      .replace('cron: "*/30 * * * * *"', 'cron: "* * * * * *"')
      // The stack's replicas coordinate through PostgreSQL: this one uses the tests'
      // throwaway database, in a schema of its own (without one, it runs alone).
      .replace("schema: duckcron", `schema: ${freshSchema("prod")}`);
    const clustered = pgDisabled ? runner.replace(/^ {2}cluster:\n(?: {4}.*\n)+/m, "") : runner;
    writeFileSync(join(etc, "runner.yaml"), clustered);
    const job = readFileSync(join(REPO, "deploy/compose/jobs/sales.yaml"), "utf8")
      .replace("/var/lib/duckcron", state)
      .replace(/^ {2}extension_directory: .*\n/m, "");
    writeFileSync(join(etc, "jobs/sales.yaml"), job);

    daemon = spawn(process.execPath, [join(app, "dist/cli/main.js"), "start"], {
      cwd: app,
      env: {
        PATH: process.env.PATH,
        DUCKCRON_CONFIG: join(etc, "runner.yaml"),
        VAULT_TOKEN: vault.rootToken,
        ...(pgDisabled ? {} : { DUCKCRON_DATABASE_URL: testPgUrl() }),
        NODE_ENV: "production",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    daemon.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    daemon.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    // npm ci of the runtime dependencies (the cloud clients included) on a busy machine.
  }, 180_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) daemon.kill("SIGKILL");
    await vault?.close();
    rmSync(app, { recursive: true, force: true });
  }, 60_000);

  it("installs without dev dependencies", () => {
    expect(existsSync(join(app, "node_modules/@duckdb/node-api"))).toBe(true);
    expect(existsSync(join(app, "node_modules/vitest"))).toBe(false);
    expect(existsSync(join(app, "node_modules/typescript"))).toBe(false);
  });

  it("builds every tenant's catalog from Vault secrets", async () => {
    await until(
      () => (stdout.match(/"msg":"run succeeded"/g) ?? []).length >= 2,
      () => `${stdout}\n${stderr}`,
    );
    expect(existsSync(join(app, "var/catalogs/acme/sales.duckdb"))).toBe(true);
    expect(existsSync(join(app, "var/catalogs/globex/sales.duckdb"))).toBe(true);
  });

  it("passes the image's HEALTHCHECK command", () => {
    const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8");
    const probe = /CMD \["node", "-e", "(.+)"\]/.exec(dockerfile)?.[1];
    expect(probe).toBeDefined();
    const script = JSON.parse(`"${probe}"`).replace("127.0.0.1:9464", `127.0.0.1:${port}`);
    expect(spawnSync(process.execPath, ["-e", script]).status).toBe(0);
  });

  it("stops cleanly on SIGTERM, without a secret value in its output", async () => {
    const exited = new Promise<number | null>((done) => daemon.on("exit", (code) => done(code)));
    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
    for (const value of [...Object.values(SECRETS), vault.rootToken]) {
      expect(stdout).not.toContain(value);
      expect(stderr).not.toContain(value);
    }
  });
});

async function until(ready: () => boolean, describe: () => string): Promise<void> {
  for (let i = 0; i < 600 && !ready(); i++) await new Promise((done) => setTimeout(done, 100));
  if (!ready()) throw new Error(`timed out waiting; output so far:\n${describe()}`);
}
