import { type ChildProcessByStdio, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { parseEnv } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRunner } from "../../src/config/load.js";
import { collectOutput, freePort, installProduction, REPO } from "../cli/run-cli.js";

/**
 * The `docker run` commands of docs/deploy.md, run as written but without a Docker
 * engine: the image's filesystem is laid out under a temporary root (the runtime
 * stage's production install at /app, its directories, users and ENV from the
 * Dockerfile), each `-v` mount is copied to its target, and each command runs the
 * image's ENTRYPOINT with the image's ENV and the `--env-file`. Running as root (CI),
 * commands run as the image's uid, so the read-only config folder is as unwritable
 * as in the container; otherwise that folder is made read-only by mode.
 *
 * Absolute container paths are mapped under the root: in the Dockerfile's ENV and in
 * the mounted config files (the only places that name them). The published metrics
 * port is mapped to a free port on 127.0.0.1.
 */

const DOCKERFILE = readFileSync(join(REPO, "Dockerfile"), "utf8");
const DOCS = readFileSync(join(REPO, "docs/deploy.md"), "utf8");
/** Folders of the image that mounts and ENV point into. */
const IMAGE_ROOTS = ["/etc/duckcron", "/var/lib/duckcron", "/opt/duckdb", "/home/duckcron", "/app"];

const IMAGE_ENV = Object.fromEntries(
  [...DOCKERFILE.matchAll(/^(?:ENV\s+|\s+)([A-Z_]+)=(\S+?)(?:\s+\\)?$/gm)].map((m) => [m[1], m[2]]),
) as Record<string, string>;
const [IMAGE_UID, IMAGE_GID] = (/^USER (\d+):(\d+)$/m.exec(DOCKERFILE) ?? []).slice(1).map(Number);
const ENTRYPOINT = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]") as string[];
const CMD = JSON.parse(/^CMD (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]") as string[];
const VOLUMES = JSON.parse(/^VOLUME (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]") as string[];

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  /** A named volume (`name:/path`), not a bind mount of a host path. */
  named: boolean;
}

interface DockerRun {
  text: string;
  image: string;
  args: string[];
  mounts: Mount[];
  envFiles: string[];
  publish: string[];
  stopTimeout?: number;
  detach: boolean;
}

/** The `docker run` lines of the first shell block under "## The container image". */
function documentedRuns(): DockerRun[] {
  const section = DOCS.slice(DOCS.indexOf("\n## The container image"));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  return block
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line.startsWith("docker run "))
    .map(parseDockerRun);
}

function parseDockerRun(text: string): DockerRun {
  const tokens = [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) =>
    (m[1] ?? m[2] ?? "").replaceAll("$PWD", REPO),
  );
  const run: DockerRun = {
    text,
    image: "",
    args: [],
    mounts: [],
    envFiles: [],
    publish: [],
    detach: false,
  };
  let i = 2;
  for (; i < tokens.length && tokens[i]?.startsWith("-"); i++) {
    const flag = tokens[i];
    const value = () => tokens[++i] ?? "";
    if (flag === "--rm") continue;
    if (flag === "-d") run.detach = true;
    else if (flag === "--name") value();
    else if (flag === "--stop-timeout") run.stopTimeout = Number(value());
    else if (flag === "--env-file") run.envFiles.push(value());
    else if (flag === "-p") run.publish.push(value());
    else if (flag === "-v") {
      const [source = "", target = "", mode] = value().split(":");
      run.mounts.push({ source, target, readOnly: mode === "ro", named: !source.startsWith("/") });
    } else throw new Error(`docs/deploy.md: docker run ${flag} is not understood by this test`);
  }
  run.image = tokens[i] ?? "";
  run.args = tokens.slice(i + 1);
  return run;
}

const asImageUser = process.getuid?.() === 0;

describe("docs/deploy.md's docker run commands, on the image's filesystem", {
  timeout: 240_000,
}, () => {
  const runs = documentedRuns();
  const daemonRun = runs.find((r) => r.args.length === 0);
  let root: string;
  let port: number;
  const inImage = (path: string) => join(root, path);

  /** Container paths in a mounted config file, pointed at the staged root. */
  function rewrite(file: string): void {
    let text = readFileSync(file, "utf8");
    for (const prefix of IMAGE_ROOTS) text = text.replaceAll(`${prefix}/`, `${inImage(prefix)}/`);
    text = text.replace('listen: "0.0.0.0:9464"', `listen: "127.0.0.1:${port}"`);
    writeFileSync(file, text);
  }

  function each(path: string, visit: (p: string, isDir: boolean) => void): void {
    const isDir = lstatSync(path).isDirectory();
    visit(path, isDir);
    if (isDir) for (const entry of readdirSync(path)) each(join(path, entry), visit);
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "duckcron-image-"));
    chmodSync(root, 0o755);
    port = await freePort();
    // The runtime stage: /app, then the directories, owner and symlink of its RUN line.
    installProduction(inImage("/app"));
    for (const dir of ["/etc/duckcron", "/opt/duckdb/extensions", "/home/duckcron/.duckdb"])
      mkdirSync(inImage(dir), { recursive: true });
    for (const volume of VOLUMES) mkdirSync(inImage(volume), { recursive: true });
    symlinkSync(inImage("/opt/duckdb/extensions"), inImage("/home/duckcron/.duckdb/extensions"));
    chmodSync(inImage("/var/lib/duckcron/secrets"), 0o700);
    if (asImageUser) {
      for (const dir of ["/home/duckcron", "/var/lib/duckcron"])
        each(inImage(dir), (p) => lchownSync(p, IMAGE_UID!, IMAGE_GID!));
    }
    // Bind mounts, as copies; the same target in several commands is the same source.
    for (const mount of runs.flatMap((r) => r.mounts).filter((m) => !m.named)) {
      const target = inImage(mount.target);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(mount.source, target, { recursive: true });
      each(target, (p, isDir) => {
        if (!isDir && /\.ya?ml$/.test(p)) rewrite(p);
      });
    }
    // Without the image's uid, the mode is what keeps the mounts and /etc/duckcron read-only.
    if (!asImageUser) {
      for (const mount of runs.flatMap((r) => r.mounts).filter((m) => m.readOnly))
        each(inImage(mount.target), (p, isDir) => chmodSync(p, isDir ? 0o555 : 0o444));
      chmodSync(inImage("/etc/duckcron"), 0o555);
    }
  }, 180_000);

  afterAll(() => {
    if (!root) return;
    if (!asImageUser) {
      each(inImage("/etc/duckcron"), (p, isDir) => {
        if (isDir) chmodSync(p, 0o755);
      });
    }
    rmSync(root, { recursive: true, force: true });
  });

  /** The container's environment: the image's ENV (paths mapped), then --env-file. */
  function envOf(run: DockerRun, drop: string[] = []): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: inImage("/home/duckcron") };
    for (const [key, value] of Object.entries(IMAGE_ENV)) {
      if (drop.includes(key)) continue;
      env[key] = value.startsWith("/") ? inImage(value) : value;
    }
    for (const file of run.envFiles)
      Object.assign(env, parseEnv(readFileSync(join(REPO, file), "utf8")));
    return env;
  }

  function start(
    run: DockerRun,
    drop: string[] = [],
  ): ChildProcessByStdio<null, Readable, Readable> {
    const [node, script] = ENTRYPOINT.slice(ENTRYPOINT.indexOf("--") + 1);
    expect(node).toBe("node");
    return spawn(
      process.execPath,
      [inImage(script ?? ""), ...(run.args.length > 0 ? run.args : CMD)],
      {
        cwd: inImage("/app"),
        env: envOf(run, drop),
        stdio: ["ignore", "pipe", "pipe"],
        ...(asImageUser ? { uid: IMAGE_UID, gid: IMAGE_GID } : {}),
      },
    );
  }

  const oneShot = (name: string) => {
    const run = runs.find((r) => r.args[0] === name);
    if (!run) throw new Error(`docs/deploy.md has no docker run ... duckcron ${name}`);
    return run;
  };

  it("documents the daemon, a one-shot run and doctor, with mounts that exist", () => {
    expect(runs.map((r) => r.args[0] ?? "(CMD)")).toEqual(["(CMD)", "run", "doctor"]);
    for (const run of runs) {
      expect(run.image, run.text).toBe("duckcron");
      for (const mount of run.mounts) {
        if (mount.named) expect(VOLUMES, run.text).toContain(mount.target);
        else expect(existsSync(mount.source), mount.source).toBe(true);
      }
      for (const file of run.envFiles) expect(existsSync(join(REPO, file)), file).toBe(true);
    }
    expect(VOLUMES).toContain(IMAGE_ENV.DUCKCRON_STATE_DIR);
  });

  it("stops the daemon slower than its shutdown_grace, and publishes the metrics port", async () => {
    expect(daemonRun?.publish).toEqual(["9464:9464"]);
    const runner = await loadRunner(inImage("/etc/duckcron/runner.yaml"));
    const grace = runner.config.runner.shutdown_grace / 1000;
    expect(daemonRun?.stopTimeout).toBeGreaterThan(grace);
  });

  it("run sales builds both tenants' catalogs into the catalog volume", async () => {
    const result = await collectOutput(start(oneShot("run")));
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    for (const tenant of ["acme", "globex"]) {
      const catalog = inImage(`/var/lib/duckcron/catalogs/${tenant}/sales.duckdb`);
      const instance = await DuckDBInstance.create(catalog, { access_mode: "READ_ONLY" });
      try {
        const connection = await instance.connect();
        const rows = await connection.runAndReadAll("SELECT count(*) FROM revenue_by_customer");
        expect(Number(rows.getRows()[0]?.[0])).toBeGreaterThan(0);
        connection.closeSync();
      } finally {
        instance.closeSync();
      }
    }
  });

  it("doctor passes and checks the state volume the image's ENV names", async () => {
    const result = await collectOutput(start(oneShot("doctor")));
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain(
      `state dir: ${inImage("/var/lib/duckcron/state")} is writable (state dir from $DUCKCRON_STATE_DIR)`,
    );
  });

  it("the daemon starts, passes the HEALTHCHECK, and stops with exit 0 on SIGTERM", async () => {
    if (!daemonRun) throw new Error("docs/deploy.md has no docker run for the daemon");
    const daemon = start(daemonRun);
    const done = collectOutput(daemon);
    const probe = JSON.parse(
      `"${/CMD \["node", "-e", "(.+)"\]/.exec(DOCKERFILE)?.[1] ?? ""}"`,
    ).replace("127.0.0.1:9464", `127.0.0.1:${port}`) as string;
    let healthy = false;
    for (let i = 0; i < 300 && !healthy && daemon.exitCode === null; i++) {
      healthy = spawnSync(process.execPath, ["-e", probe]).status === 0;
      if (!healthy) await new Promise((wait) => setTimeout(wait, 100));
    }
    daemon.kill("SIGTERM");
    const result = await done;
    expect(healthy, result.stderr).toBe(true);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(inImage("/etc/duckcron/.duckcron"))).toBe(false);
  });

  it("without the image's DUCKCRON_STATE_DIR, start names the read-only default and the fix", async () => {
    if (!daemonRun) throw new Error("docs/deploy.md has no docker run for the daemon");
    const result = await collectOutput(start(daemonRun, ["DUCKCRON_STATE_DIR"]));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `state directory ${inImage("/etc/duckcron/.duckcron")} (the default, .duckcron beside runner.yaml) cannot be created or written (EACCES)`,
    );
    expect(result.stderr).toContain("[STATE_DIR_UNWRITABLE]");
  });
});
