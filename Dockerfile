# duckcron as a container: `docker build -t duckcron .`, then
#   docker run --stop-timeout 45 -v $PWD/runner.yaml:/etc/duckcron/runner.yaml:ro ... duckcron  (daemon)
#   docker run ... duckcron run <schedule>                                                      (one shot)
# See docs/deploy.md for the full commands. Node 22 is the current LTS; package.json
# "engines" must allow it. No `# syntax=` line on purpose: it makes BuildKit pull the
# frontend image from Docker Hub, which an air-gapped builder cannot reach.

ARG NODE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------- build stage
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# DuckDB extensions, fetched now so the runtime never downloads. They must match the
# exact DuckDB that @duckdb/node-api links (package.json pins it) and this platform:
# they land in /opt/duckdb/extensions/v<duckdb version>/<platform>/. Pass
# --build-arg DUCKDB_EXTENSIONS="" for none, --build-arg DUCKDB_REPOSITORY=<url> for a
# mirror laid out like extensions.duckdb.org, or, offline,
# --build-arg DUCKDB_REPOSITORY=duckdb-extensions with the (gunzipped) files placed in
# the build context's duckdb-extensions/v<duckdb version>/<platform>/ (see its README).
ARG DUCKDB_EXTENSIONS="httpfs aws azure postgres_scanner mysql_scanner iceberg avro ducklake"
ARG DUCKDB_REPOSITORY=""
# Only the build stage sees this folder; the runtime gets the installed copies.
COPY duckdb-extensions ./duckdb-extensions
RUN mkdir -p /opt/duckdb/extensions \
 && if [ -n "$DUCKDB_EXTENSIONS" ]; then \
      node dist/cli/main.js extensions install $DUCKDB_EXTENSIONS --dir /opt/duckdb/extensions \
        ${DUCKDB_REPOSITORY:+--repository "$DUCKDB_REPOSITORY"}; \
    fi

# -------------------------------------------------------------- runtime stage
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM (drain and exit) and SIGHUP (reload) to node and
# reaps zombies; node as PID 1 would ignore signals it has no handler for.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Same lockfile as the build stage, so the same @duckdb/node-api (and DuckDB) as the extensions.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
COPY --from=build /opt/duckdb/extensions /opt/duckdb/extensions

# A fixed non-root uid, so volume ownership and Kubernetes runAsUser can name it.
# ~/.duckdb/extensions points at the pre-staged extensions, for jobs that set no
# duckdb.extension_directory.
RUN groupadd --system --gid 10001 duckcron \
 && useradd --system --uid 10001 --gid duckcron --home-dir /home/duckcron --create-home duckcron \
 && mkdir -p /home/duckcron/.duckdb /etc/duckcron \
      /var/lib/duckcron/catalogs /var/lib/duckcron/secrets /var/lib/duckcron/state \
 && ln -s /opt/duckdb/extensions /home/duckcron/.duckdb/extensions \
 && chmod 700 /var/lib/duckcron/secrets \
 && chown -R duckcron:duckcron /home/duckcron /var/lib/duckcron

# The state volume is the default state_dir: the default beside runner.yaml would be
# inside the read-only config mount.
ENV DUCKCRON_CONFIG=/etc/duckcron/runner.yaml \
    DUCKCRON_STATE_DIR=/var/lib/duckcron/state \
    DUCKDB_EXTENSION_DIRECTORY=/opt/duckdb/extensions
# Catalogs (and their <catalog>.secrets/ persistent DuckDB secrets, kept 0700 beside
# them); the filesystem backend's secrets_dir; small daemon state.
VOLUME ["/var/lib/duckcron/catalogs", "/var/lib/duckcron/secrets", "/var/lib/duckcron/state"]
USER 10001:10001
# /metrics /healthz /readyz /status; runner.yaml must listen on 0.0.0.0:9464 to publish it.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/main.js"]
CMD ["start"]
