import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { EXTENSION_NAME } from "../../src/cli/extensions.js";
import { loadRunner } from "../../src/config/load.js";
import { runnerSectionSchema } from "../../src/config/runner-schema.js";
import { SECRET_TYPES } from "../../src/config/secret-types.js";
import { collectSecretRefs } from "../../src/secrets/refs.js";
import { REPO, runCli } from "../cli/run-cli.js";

/**
 * The deploy artifacts cannot be run here (no Docker engine, no cluster), so every
 * fact they state about duckcron is checked against the code: commands, flags,
 * ports, endpoints, paths, env vars, metric names, config that loads.
 */

// biome-ignore lint/suspicious/noExplicitAny: parsed manifests are walked by known paths
type Doc = Record<string, any>;

const read = (path: string) => readFileSync(join(REPO, path), "utf8");

function filesUnder(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, encoding: "utf8" })
    .map((entry) => join(dir, entry))
    .filter((path) => statSync(join(REPO, path)).isFile())
    .sort();
}

function yamlDocs(path: string): Doc[] {
  return parseAllDocuments(read(path)).map((doc) => doc.toJS() as Doc);
}

const DOCKERFILE = read("Dockerfile");
const COMPOSE = yamlDocs("deploy/compose/docker-compose.yml")[0] as Doc;
const K8S = filesUnder("deploy/k8s").flatMap((file) =>
  yamlDocs(file).map((doc) => ({ file, doc })),
);
const kind = (k: string, name?: string) =>
  K8S.filter(
    ({ doc }) => doc.kind === k && (name === undefined || doc.metadata?.name === name),
  ).map(({ doc }) => doc);

/** The command names registered in src/cli/main.ts. */
const COMMANDS = [
  ...read("src/cli/main.ts").matchAll(/^\s+(\w+): \(\) => import\("\.\/[\w-]+\.js"\)/gm),
].map((m) => m[1]);
/** Endpoints the daemon's HTTP server routes. */
const ROUTES = [...read("src/observe/http-server.ts").matchAll(/^\s+"(\/\w+)": async/gm)].map(
  (m) => m[1],
);
/** Metric names registered in src/observe/metrics.ts. */
const METRICS = new Set(
  [...read("src/observe/metrics.ts").matchAll(/name: "(duckcron_\w+)"/g)].map((m) => m[1]),
);
const DEFAULT_PORT = Number(runnerSectionSchema.parse({}).http.listen.split(":").pop());

const DOCKER_ENV = Object.fromEntries(
  [...DOCKERFILE.matchAll(/^(?:ENV\s+|\s+)([A-Z_]+)=(\S+?)(?:\s+\\)?$/gm)].map((m) => [m[1], m[2]]),
);
const DUCKCRON_CONFIG = DOCKER_ENV.DUCKCRON_CONFIG as string;

/** Asserts a duckcron argv (without the binary) names a registered command and flags it has. */
function expectDuckcronArgs(argv: readonly string[], where: string): void {
  const [command, ...rest] = argv;
  expect(COMMANDS, `${where}: duckcron ${command} is not a command in src/cli/main.ts`).toContain(
    command,
  );
  const source = read(`src/cli/${command}.ts`);
  for (const flag of rest.filter((a) => a.startsWith("--"))) {
    const name = flag.slice(2).split("=")[0] ?? "";
    expect(source, `${where}: src/cli/${command}.ts has no ${flag} option`).toMatch(
      new RegExp(`\\b${name}\\b`),
    );
  }
}

/** A compose value with `${VAR:-default}` interpolated as compose does when VAR is unset. */
function composeDefault(value: string): string {
  return value.replace(/\$\{\w+:-([^}]*)\}/g, "$1");
}

/** The entry of a manifest list with that name (or key); fails the test when absent. */
function named(list: unknown, name: string, field = "name"): Doc {
  const found = (list as Doc[]).find((item) => item[field] === name);
  if (found === undefined) throw new Error(`no entry with ${field} ${name}`);
  return found;
}

function portOf(listen: string): number {
  return Number(listen.split(":").pop());
}

describe("the duckcron commands the deploy artifacts run exist, with those flags", () => {
  const k8sArgs = (doc: Doc | undefined, spec: (d: Doc) => Doc) =>
    spec(doc ?? {}).containers[0].args as string[];
  const uses: [string, string[]][] = [
    ["Dockerfile CMD", JSON.parse(/^CMD (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]") as string[]],
    [
      "Dockerfile RUN (extensions)",
      [
        ...(/node dist\/cli\/main\.js (extensions install) \$DUCKDB_EXTENSIONS (--dir) \S+\s+\\?\s*\$\{DUCKDB_REPOSITORY:\+(--repository)/.exec(
          DOCKERFILE,
        ) ?? []),
      ]
        .slice(1)
        .flatMap((part) => part.split(" ")),
    ],
    [
      "compose duckcron.command",
      (COMPOSE.services as Record<string, Doc>).duckcron?.command as string[],
    ],
    [
      "k8s Deployment args",
      k8sArgs(kind("Deployment", "duckcron")[0], (d) => d.spec.template.spec),
    ],
    ["k8s CronJob args", k8sArgs(kind("CronJob")[0], (d) => d.spec.jobTemplate.spec.template.spec)],
  ];

  it.each(uses.map(([where, argv]) => [where, argv.join(" "), argv] as const))(
    "%s: duckcron %s",
    (where, _, argv) => {
      expect(argv.length, where).toBeGreaterThan(0);
      expectDuckcronArgs(argv, where);
    },
  );
});

describe("every file under deploy/ parses", () => {
  it.each(filesUnder("deploy"))("%s", (file) => {
    if (/\.ya?ml$/.test(file)) {
      for (const doc of parseAllDocuments(read(file))) expect(doc.errors, file).toEqual([]);
    } else if (file.endsWith(".json")) {
      expect(() => JSON.parse(read(file))).not.toThrow();
    } else {
      throw new Error(`${file}: add a parse check for this file type`);
    }
  });
});

describe("Dockerfile", () => {
  const froms = [...DOCKERFILE.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(DOCKERFILE)?.[1] ?? "";

  it("builds in one stage and runs in another, both on the pinned node image", () => {
    expect(froms).toEqual(["${NODE_IMAGE}", "${NODE_IMAGE}"]);
    expect(nodeImage).toMatch(/^node:\d+-[a-z]+-slim$/);
    expect(DOCKERFILE).toMatch(/^RUN npm ci --no-audit --no-fund$/m);
    expect(DOCKERFILE).toMatch(/^RUN npm run build$/m);
    expect(DOCKERFILE).toMatch(/^RUN npm ci --omit=dev\b/m);
  });

  it("uses a node major that package.json engines allow", () => {
    const major = Number(/^node:(\d+)/.exec(nodeImage)?.[1]);
    const engines = (JSON.parse(read("package.json")) as { engines: { node: string } }).engines
      .node;
    const minimum = Number(/^>=\s*(\d+)/.exec(engines)?.[1]);
    expect(minimum).toBeGreaterThan(0);
    expect(major).toBeGreaterThanOrEqual(minimum);
    expect(major % 2, "use an LTS (even) major").toBe(0);
  });

  it("runs as a non-root user under tini, the CLI as entrypoint", () => {
    expect(DOCKERFILE).toMatch(/^USER 10001:10001$/m);
    expect(DOCKERFILE).toMatch(/apt-get install -y --no-install-recommends tini/);
    const entrypoint = JSON.parse(
      /^ENTRYPOINT (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]",
    ) as string[];
    expect(entrypoint).toEqual(["/usr/bin/tini", "--", "node", "/app/dist/cli/main.js"]);
    const bin = (JSON.parse(read("package.json")) as { bin: { duckcron: string } }).bin.duckcron;
    expect(`/app/${bin}`).toBe(entrypoint[3]);
  });

  it("checks health on the daemon's /healthz at the default port, with node only", () => {
    const healthcheck = /^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$/m.exec(DOCKERFILE)?.[1];
    const [node, flag, code] = JSON.parse(healthcheck ?? "[]") as string[];
    expect([node, flag]).toEqual(["node", "-e"]);
    expect(() => new Function(code ?? "")).not.toThrow();
    const url = new URL(/fetch\('([^']+)'\)/.exec(code ?? "")?.[1] ?? "");
    expect(ROUTES).toContain(url.pathname);
    expect(url.pathname).toBe("/healthz");
    expect(Number(url.port)).toBe(DEFAULT_PORT);
    expect(DOCKERFILE).toMatch(new RegExp(`^EXPOSE ${DEFAULT_PORT}$`, "m"));
  });

  it("sets DUCKCRON_CONFIG and declares volumes for catalogs and secrets", () => {
    expect(DUCKCRON_CONFIG).toBe("/etc/duckcron/runner.yaml");
    expect(DOCKER_ENV.DUCKDB_EXTENSION_DIRECTORY).toBe("/opt/duckdb/extensions");
    const volumes = JSON.parse(/^VOLUME (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]") as string[];
    expect(volumes).toEqual([
      "/var/lib/duckcron/catalogs",
      "/var/lib/duckcron/secrets",
      "/var/lib/duckcron/state",
    ]);
  });

  it("installs valid extension names covering every extension-backed secret type", () => {
    const names = (/^ARG DUCKDB_EXTENSIONS="([^"]*)"$/m.exec(DOCKERFILE)?.[1] ?? "").split(" ");
    for (const name of names) expect(name).toMatch(EXTENSION_NAME);
    for (const spec of Object.values(SECRET_TYPES))
      if (spec.extension) expect(names).toContain(spec.extension);
    expect(names).toEqual(expect.arrayContaining(["aws", "avro"]));
    const install =
      /node dist\/cli\/main\.js (extensions install) \$DUCKDB_EXTENSIONS --dir (\S+)/.exec(
        DOCKERFILE,
      );
    expect(install?.[2]).toBe(DOCKER_ENV.DUCKDB_EXTENSION_DIRECTORY);
  });

  it("has no `# syntax=` line, which would make BuildKit pull its frontend from Docker Hub", () => {
    expect(DOCKERFILE).not.toMatch(/^#\s*syntax\s*=/im);
  });

  it("can install extensions from duckdb-extensions/ in the build context, offline", async () => {
    const build = DOCKERFILE.slice(0, DOCKERFILE.indexOf("AS runtime"));
    const copy = build.indexOf("COPY duckdb-extensions ./duckdb-extensions");
    expect(copy).toBeGreaterThan(0);
    expect(copy).toBeLessThan(build.indexOf("extensions install $DUCKDB_EXTENSIONS"));
    expect(/^WORKDIR (\S+)$/m.exec(build)?.[1]).toBe("/app");
    expect(read(".gitignore")).toMatch(/^duckdb-extensions\/v\*\/$/m);
    // The build arg's relative path, from the build stage's WORKDIR: the folder is read
    // as a local repository (here empty, so the install names the file it looked for).
    const app = mkdtempSync(join(tmpdir(), "duckcron-build-stage-"));
    try {
      cpSync(join(REPO, "duckdb-extensions"), join(app, "duckdb-extensions"), { recursive: true });
      const result = await runCli(
        [
          "extensions",
          "install",
          "httpfs",
          "--dir",
          join(app, "ext"),
          "--repository",
          "duckdb-extensions",
        ],
        { cwd: app },
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        new RegExp(
          `expected ${join(app, "duckdb-extensions")}/v[\\d.]+/\\w+/httpfs\\.duckdb_extension`,
        ),
      );
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it("copies only files that exist and that .dockerignore lets into the context", () => {
    const allowed = read(".dockerignore")
      .split("\n")
      .filter((line) => line.startsWith("!"))
      .map((line) => line.slice(1).replace(/\/$/, ""));
    expect(read(".dockerignore")).toMatch(/^\*$/m);
    const sources = [...DOCKERFILE.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      (m[1] ?? "").split(" "),
    );
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(existsSync(join(REPO, source)), source).toBe(true);
      expect(allowed, `.dockerignore excludes ${source}`).toContain(source);
    }
  });
});

describe("deploy/compose", () => {
  const services = COMPOSE.services as Record<string, Doc>;
  const duckcron = services.duckcron as Doc;
  const composeDir = "deploy/compose";

  it("builds duckcron from the repository's Dockerfile", () => {
    expect(
      existsSync(join(REPO, composeDir, duckcron.build.context, duckcron.build.dockerfile)),
    ).toBe(true);
    for (const name of (duckcron.build.args.DUCKDB_EXTENSIONS as string)
      .split(" ")
      .filter(Boolean)) {
      expect(name).toMatch(EXTENSION_NAME);
    }
  });

  it("mounts runner.yaml at $DUCKCRON_CONFIG and only paths that exist", () => {
    expect(duckcron.environment.DUCKCRON_CONFIG).toBe(DUCKCRON_CONFIG);
    const mounts = (duckcron.volumes as string[]).map((v) => v.split(":"));
    expect(mounts).toContainEqual(["./runner.yaml", DUCKCRON_CONFIG, "ro"]);
    // Job files sit where runner.yaml's relative `config:` paths point.
    expect(mounts).toContainEqual(["./jobs", join(dirname(DUCKCRON_CONFIG), "jobs"), "ro"]);
    for (const service of Object.values(services)) {
      for (const [source] of ((service.volumes ?? []) as string[]).map((v) => v.split(":"))) {
        if (source?.startsWith("."))
          expect(existsSync(join(REPO, composeDir, source)), source).toBe(true);
      }
    }
  });

  it("publishes and scrapes the default metrics port", () => {
    expect(duckcron.ports).toEqual([`${DEFAULT_PORT}:${DEFAULT_PORT}`]);
    const prometheus = parseYaml(read(`${composeDir}/prometheus/prometheus.yml`)) as Doc;
    const job = prometheus.scrape_configs[0];
    expect(job.static_configs[0].targets).toEqual([`duckcron:${DEFAULT_PORT}`]);
    expect(ROUTES).toContain(job.metrics_path);
    expect(services.prometheus?.volumes).toContain(
      "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
    );
  });

  it("pins every image by tag", () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.image === undefined) continue;
      expect(service.image, name).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
    }
  });

  it("has a runner.yaml that loads, on the vault backend, listening for Prometheus", async () => {
    const runner = await loadRunner(join(REPO, composeDir, "runner.yaml"), {
      env: { VAULT_TOKEN: composeDefault(duckcron.environment.VAULT_TOKEN) },
      strict: true,
    });
    const { secrets, http } = runner.config.runner;
    expect(secrets).toMatchObject({
      type: "vault",
      url: "http://vault:8200",
      mount_point: "secret",
      kv_version: 2,
    });
    expect(portOf(http.listen)).toBe(DEFAULT_PORT);
    expect(http.listen.startsWith("0.0.0.0:")).toBe(true);
    expect(runner.sensitive).toContain("duckcron-dev-root");
  });

  it("seeds Vault where the vault backend reads, with every secret the job refers to", async () => {
    const runner = await loadRunner(join(REPO, composeDir, "runner.yaml"), {
      env: { VAULT_TOKEN: "t" },
    });
    const secrets = runner.config.runner.secrets;
    if (secrets.type !== "vault") throw new Error("compose runner.yaml must use the vault backend");
    const script = ((services["vault-seed"] as Doc).command as string[]).join("\n");
    const puts = new Map(
      [...script.matchAll(/^vault kv put (\S+) (.+)$/gm)].map((m) => [
        m[1],
        (m[2] ?? "").split(" ").map((pair) => pair.split("=")[0]),
      ]),
    );
    for (const schedule of runner.config.runner.schedules) {
      const job = runner.jobs.get(schedule.name);
      const names = collectSecretRefs(job?.definition as never).map((r) => r.name);
      for (const tenant of schedule.tenants) {
        // KV v2: the CLI's `kv put secret/x` writes the API path secret/data/x.
        const path = `${secrets.mount_point}/${secrets.prefix}${tenant}`;
        expect(puts.get(path), `vault-seed writes ${path}`).toEqual(expect.arrayContaining(names));
      }
    }
    expect(services["vault-seed"]?.environment.VAULT_TOKEN).toBe(
      services.vault?.environment.VAULT_DEV_ROOT_TOKEN_ID,
    );
  });

  it("provisions Grafana's datasource and dashboard where the dashboard expects them", () => {
    const datasource = (
      parseYaml(read(`${composeDir}/grafana/provisioning/datasources/prometheus.yml`)) as Doc
    ).datasources[0];
    expect(datasource.url).toBe("http://prometheus:9090");
    const provider = (
      parseYaml(read(`${composeDir}/grafana/provisioning/dashboards/duckcron.yml`)) as Doc
    ).providers[0];
    expect(services.grafana?.volumes).toContain(`./grafana/dashboards:${provider.options.path}:ro`);
    const dashboard = JSON.parse(read(`${composeDir}/grafana/dashboards/duckcron.json`)) as Doc;
    for (const panel of dashboard.panels as Doc[])
      expect(panel.datasource.uid, panel.title).toBe(datasource.uid);
  });
});

describe("metric names", () => {
  const used = (text: string) =>
    new Set(
      [...text.matchAll(/\b(duckcron_[a-z_]+)/g)]
        .map((m) => (m[1] ?? "").replace(/_(bucket|sum|count)$/, ""))
        .filter((name) => !name.startsWith("duckcron_dev")),
    );

  it("registered in src/observe/metrics.ts include every one the brief's dashboard needs", () => {
    expect(METRICS.size).toBeGreaterThan(10);
  });

  it.each(["deploy/compose/grafana/dashboards/duckcron.json", "docs/deploy.md"])(
    "used in %s all exist",
    (file) => {
      const names = used(read(file));
      expect(names.size).toBeGreaterThan(5);
      expect([...names].filter((name) => !METRICS.has(name))).toEqual([]);
    },
  );

  it("the dashboard covers runs, failures, durations, last success, secret requests and cache hits", () => {
    const text = read("deploy/compose/grafana/dashboards/duckcron.json");
    for (const name of [
      "duckcron_runs_total",
      "duckcron_run_duration_seconds_bucket",
      "duckcron_last_success_timestamp_seconds",
      "duckcron_secret_requests_total",
      "duckcron_secret_cache_hits_total",
    ]) {
      expect(text).toContain(name);
    }
  });
});

describe("deploy/k8s", () => {
  const deployment = kind("Deployment", "duckcron")[0] as Doc;
  const cronjob = kind("CronJob")[0] as Doc;
  const podSpecs = [
    ["Deployment", deployment.spec.template.spec],
    ["CronJob", cronjob.spec.jobTemplate.spec.template.spec],
  ] as const;

  it("runs one daemon replica, recreated rather than rolled", () => {
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: "Recreate" });
  });

  it.each(podSpecs)(
    "%s: config at $DUCKCRON_CONFIG, token from the Secret, catalogs on the PVC",
    (_, spec) => {
      const container = spec.containers[0];
      const env = Object.fromEntries(
        (container.env as Doc[]).map((e) => [e.name, e.value ?? e.valueFrom]),
      );
      expect(env.DUCKCRON_CONFIG).toBe(DUCKCRON_CONFIG);
      const secret = kind("Secret", env.VAULT_TOKEN.secretKeyRef.name)[0] as Doc;
      expect(Object.keys(secret.stringData)).toContain(env.VAULT_TOKEN.secretKeyRef.key);
      const configMount = named(container.volumeMounts, "config");
      const volume = named(spec.volumes, "config");
      const items = volume.configMap.items as Doc[];
      const runnerItem = named(items, "runner.yaml", "key");
      expect(join(configMount.mountPath, runnerItem.path)).toBe(DUCKCRON_CONFIG);
      expect(kind("ConfigMap", volume.configMap.name)).toHaveLength(1);
      const catalogs = named(container.volumeMounts, "catalogs");
      expect(catalogs.mountPath).toBe("/var/lib/duckcron/catalogs");
      const claim = named(spec.volumes, "catalogs").persistentVolumeClaim.claimName;
      expect(kind("PersistentVolumeClaim", claim)).toHaveLength(1);
    },
  );

  it.each(podSpecs)("%s: non-root with a read-only root filesystem", (_, spec) => {
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(DOCKERFILE).toContain(
      `USER ${spec.securityContext.runAsUser}:${spec.securityContext.runAsGroup}`,
    );
    expect(spec.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
  });

  it("probes /healthz and /readyz on the metrics port the Service uses", () => {
    const container = deployment.spec.template.spec.containers[0];
    expect(container.ports).toEqual([{ name: "metrics", containerPort: DEFAULT_PORT }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "metrics" });
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      expect(ROUTES).toContain(container[probe].httpGet.path);
    }
    const service = kind("Service", "duckcron")[0] as Doc;
    expect(service.spec.ports).toEqual([
      { name: "metrics", port: DEFAULT_PORT, targetPort: "metrics" },
    ]);
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
  });

  it("ServiceMonitor scrapes /metrics through the daemon Service's named port", () => {
    const monitors = kind("ServiceMonitor");
    expect(monitors).toHaveLength(1);
    const monitor = monitors[0] as Doc;
    // The operator finds Services by label in the monitor's own namespace (kustomize sets it).
    const selected = kind("Service").filter((service) =>
      Object.entries(monitor.spec.selector.matchLabels).every(
        ([key, value]) => service.metadata.labels?.[key] === value,
      ),
    );
    expect(selected.map((service) => service.metadata.name)).toEqual(["duckcron"]);
    const service = selected[0] as Doc;
    const container = deployment.spec.template.spec.containers[0];
    expect(monitor.spec.endpoints).toHaveLength(1);
    const endpoint = monitor.spec.endpoints[0] as Doc;
    // By name, as the operator requires for `port`: renumbering the Service keeps the scrape working.
    const port = named(service.spec.ports, endpoint.port);
    const containerPort = named(container.ports, port.targetPort);
    expect(containerPort.containerPort).toBe(DEFAULT_PORT);
    expect(endpoint.path).toBe("/metrics");
    expect(ROUTES).toContain(endpoint.path);
  });

  it("pushes the CronJob's metrics to the Pushgateway the kustomization deploys", () => {
    const args = cronjob.spec.jobTemplate.spec.template.spec.containers[0].args as string[];
    const url = new URL(args[args.indexOf("--pushgateway") + 1] ?? "");
    const service = kind("Service", url.hostname)[0] as Doc;
    expect(service.spec.ports[0].port).toBe(Number(url.port));
  });

  it("lists every manifest in kustomization.yaml", () => {
    const kustomization = K8S.find(({ doc }) => doc.kind === "Kustomization")?.doc as Doc;
    const listed = new Set(kustomization.resources as string[]);
    for (const file of new Set(K8S.map(({ file }) => relative("deploy/k8s", file)))) {
      if (file !== "kustomization.yaml") expect(listed, file).toContain(file);
    }
  });

  it("ships a runner.yaml and job files that load together", async () => {
    const config = kind("ConfigMap", "duckcron-config")[0] as Doc;
    const items = named(deployment.spec.template.spec.volumes, "config").configMap.items as Doc[];
    const dir = mkdtempSync(join(tmpdir(), "duckcron-k8s-"));
    try {
      for (const item of items) {
        mkdirSync(dirname(join(dir, item.path)), { recursive: true });
        writeFileSync(join(dir, item.path), config.data[item.key]);
      }
      const runner = await loadRunner(join(dir, "runner.yaml"), {
        env: { VAULT_TOKEN: "t" },
        strict: true,
      });
      expect(runner.config.runner.secrets.type).toBe("vault");
      expect(portOf(runner.config.runner.http.listen)).toBe(DEFAULT_PORT);
      const schedule = cronjob.spec.jobTemplate.spec.template.spec.containers[0].args[1];
      expect(runner.config.runner.schedules.map((s) => s.name)).toContain(schedule);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
