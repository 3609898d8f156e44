import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import pg from "pg";
import type pino from "pino";
import {
  clusterSecrets,
  defaultReplicaId,
  maskedTarget,
  poolOptions,
  unavailable,
} from "./cluster/connection.js";
import { ClusterLease } from "./cluster/lease.js";
import { migrate } from "./cluster/migrations.js";
import { type FireKey, type ReplicaRow, type RunRow, RunsTable } from "./cluster/runs-table.js";
import type { ClusterConfig } from "./config/runner-schema.js";
import { DuckcronError, errorCode } from "./errors.js";
import type { EventBus } from "./observe/events.js";
import type { Admission, Fire, Lease, RunEnd } from "./scheduler/run-lifecycle.js";
import type { RunRecord } from "./scheduler/state.js";
import { writeAtomically } from "./write-atomically.js";

/**
 * Cluster mode, wired: the scheduler's admission claims each fire in PostgreSQL and
 * holds it with a renewed lease; builds publish through the lease's fence; a
 * maintenance loop (every lease/3) sends this replica's heartbeat, offers expired
 * claims of dead replicas for takeover, refreshes the last results catch-up and
 * /status use, and prunes old runs.
 */

export const VOLUME_MARKER = ".duckcron-volume";

export interface ClusterModeOptions {
  config: ClusterConfig;
  events: EventBus;
  logger: pino.Logger;
  version: string;
  /** The catalog file a fire builds; one running build per file across the cluster. */
  catalogOf: (schedule: string, tenant: string) => string;
  /** Where the volume marker lives: the catalogs' common directory. */
  volumeDir: string;
  /** Adds the database password to the log scrubber. */
  addSensitive?: (value: string) => void;
}

/** The part of the scheduler the maintenance loop drives. */
export interface Offerable {
  offer(schedule: string, tenant: string, scheduledAt: Date): boolean;
  status(): { running: number };
}

export interface ClusterStatus {
  replica: string;
  database: string;
  leaseMs: number;
  replicas: ReplicaRow[];
  recent: RunRow[];
}

export class ClusterMode {
  readonly replica: string;
  readonly #options: ClusterModeOptions;
  readonly #pool: pg.Pool;
  readonly #table: RunsTable;
  readonly #leases = new Map<string, ClusterLease>();
  readonly #last = new Map<string, RunRecord>();
  /** Expired fires offered for takeover recently, so one is not offered every loop. */
  readonly #offered = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #ticks = 0;
  #closed = false;

  private constructor(options: ClusterModeOptions, pool: pg.Pool, replica: string) {
    this.#options = options;
    this.#pool = pool;
    this.replica = replica;
    this.#table = new RunsTable(pool, options.config.schema, replica, options.config.lease);
  }

  /** Connects, migrates and loads the last results; throws CLUSTER_UNAVAILABLE or CLUSTER_SCHEMA_MISMATCH. */
  static async open(options: ClusterModeOptions): Promise<ClusterMode> {
    const { config } = options;
    for (const value of clusterSecrets(config)) options.addSensitive?.(value);
    const pool = new pg.Pool(poolOptions(config, 8));
    // An idle connection the server dropped (restart) is reported here, not thrown.
    pool.on("error", (error) => {
      options.events.emit("cluster:database_error", { operation: "idle", code: errorCode(error) });
    });
    const mode = new ClusterMode(options, pool, config.replica_id ?? defaultReplicaId());
    try {
      const client = await pool.connect();
      try {
        const { applied } = await migrate(client, config.schema, mode.replica);
        if (applied.length > 0) {
          options.logger.info(
            { schema: config.schema, applied },
            "cluster database schema migrated",
          );
        }
      } finally {
        client.release();
      }
      await mode.#refreshLast();
      await mode.#claimVolume();
      await mode.#table.prune(config.history);
    } catch (error) {
      await pool.end().catch(() => {});
      throw unavailable(config, error);
    }
    return mode;
  }

  get database(): string {
    return maskedTarget(this.#options.config);
  }

  /** Claims the fire for this replica, or null (taken, catalog busy, database down). */
  readonly admission: Admission = async (fire: Fire): Promise<Lease | null> => {
    if (this.#closed) return null;
    const { events, config } = this.#options;
    const key = keyOf(fire);
    const started = performance.now();
    const report = (outcome: "won" | "taken" | "catalog_busy" | "error", takeover: boolean) =>
      events.emit("cluster:claim", {
        schedule: key.schedule,
        tenant: key.tenant,
        scheduledAt: key.scheduledAt.toISOString(),
        outcome,
        takeover,
        durationMs: performance.now() - started,
      });
    let result: Awaited<ReturnType<RunsTable["claim"]>>;
    try {
      result = await this.#table.claim({
        ...key,
        attempts: 1 + fire.schedule.retries.attempts,
        catalog: this.#options.catalogOf(key.schedule, key.tenant),
      });
    } catch (error) {
      this.#databaseError("claim", error);
      report("error", false);
      return null;
    }
    if (!result.won) {
      report(result.reason, false);
      return null;
    }
    report("won", result.attempt > 1);
    if (result.attempt > 1) {
      this.#options.logger.warn(
        { schedule: key.schedule, tenant: key.tenant, attempt: result.attempt },
        "took over a fire whose replica stopped renewing its lease",
      );
    }
    const lease = new ClusterLease({
      table: this.#table,
      key,
      attempt: result.attempt,
      leaseMs: config.lease,
      onError: (error) => this.#databaseError("lease", error),
      onLost: (error) => {
        events.emit("cluster:lease_lost", {
          schedule: key.schedule,
          tenant: key.tenant,
          scheduledAt: key.scheduledAt.toISOString(),
          attempt: result.attempt,
        });
        this.#options.logger.warn({ code: error.code, error: error.message }, "lease lost");
      },
    });
    this.#leases.set(fire.runId, lease);
    return {
      lost: lease.lost,
      release: (end: RunEnd | null) => {
        this.#leases.delete(fire.runId);
        lease.release(end);
        if (end) this.#remember(key, end);
      },
    };
  };

  /**
   * The fenced publish step for a run this replica holds. A run it does not hold (never
   * claimed here) has nothing to publish with, so it gets LEASE_LOST.
   */
  publishFor(runId: string): (rename: () => Promise<void>) => Promise<void> {
    return async (rename) => {
      const lease = this.#leases.get(runId);
      if (!lease) throw new DuckcronError("LEASE_LOST", `run ${runId} holds no cluster claim`);
      await lease.publish(rename);
    };
  }

  /** Last finished run per schedule and tenant across the cluster (catch-up, /status). */
  readonly history = {
    last: (schedule: string, tenant: string): RunRecord | undefined =>
      this.#last.get(`${schedule}\u0000${tenant}`),
    // The runs table already has it: the lease wrote it when the run ended.
    record: (_schedule: string, _tenant: string, _record: RunRecord): void => {},
    flush: async (): Promise<void> => {},
  };

  /** Starts the maintenance loop for `scheduler`. */
  attach(scheduler: Offerable): void {
    const every = Math.max(200, Math.floor(this.#options.config.lease / 3));
    const tick = () => {
      this.#loop = this.#maintain(scheduler).finally(() => {
        this.#loop = undefined;
        if (!this.#closed) this.#timer = setTimeout(tick, every);
      });
    };
    tick();
  }

  /** For /readyz: can this replica reach the cluster database right now? */
  async check(): Promise<{ ok: true } | { ok: false; message: string }> {
    try {
      await this.#pool.query("SELECT 1");
      return { ok: true };
    } catch (error) {
      return { ok: false, message: unavailable(this.#options.config, error).message };
    }
  }

  async status(): Promise<ClusterStatus | { replica: string; database: string; error: string }> {
    try {
      const [replicas, recent] = await Promise.all([
        this.#table.replicas(3 * this.#options.config.lease),
        this.#table.recent(50),
      ]);
      return {
        replica: this.replica,
        database: this.database,
        leaseMs: this.#options.config.lease,
        replicas,
        recent,
      };
    } catch (error) {
      return {
        replica: this.replica,
        database: this.database,
        error: unavailable(this.#options.config, error).message,
      };
    }
  }

  /** Stops the loop and closes the pool; call after the scheduler has shut down (leases released). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#loop;
    // Releases run their queries in the background; let them reach the pool first.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#pool.totalCount > this.#pool.idleCount || this.#pool.waitingCount > 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await this.#pool.end();
  }

  async #maintain(scheduler: Offerable): Promise<void> {
    const { config, events } = this.#options;
    this.#ticks += 1;
    try {
      await this.#table.heartbeat(
        this.#options.version,
        scheduler.status().running,
        await this.#readVolume(),
      );
      const replicas = await this.#table.replicas(3 * config.lease);
      events.emit("cluster:replicas", { count: replicas.length });
      const now = Date.now();
      for (const [id, at] of this.#offered) if (now - at > config.lease) this.#offered.delete(id);
      for (const key of await this.#table.expired()) {
        const id = `${key.schedule}\u0000${key.tenant}\u0000${key.scheduledAt.toISOString()}`;
        if (this.#offered.has(id)) continue;
        this.#offered.set(id, now);
        scheduler.offer(key.schedule, key.tenant, key.scheduledAt);
      }
      if (this.#ticks % 10 === 0) await this.#refreshLast();
      // About hourly at the default lease: pruning scans the finished runs.
      if (this.#ticks % 180 === 0) await this.#table.prune(config.history);
    } catch (error) {
      this.#databaseError("maintenance", error);
    }
  }

  async #refreshLast(): Promise<void> {
    for (const row of await this.#table.lastFinished()) {
      if (row.finishedAt === null || row.state === "running" || row.state === "abandoned") continue;
      this.#last.set(`${row.schedule}\u0000${row.tenant}`, {
        scheduledAt: row.scheduledAt.toISOString(),
        finishedAt: row.finishedAt.toISOString(),
        status: row.state,
      });
    }
  }

  #remember(key: FireKey, end: RunEnd): void {
    const id = `${key.schedule}\u0000${key.tenant}`;
    const known = this.#last.get(id);
    if (known && Date.parse(known.scheduledAt) > key.scheduledAt.getTime()) return;
    this.#last.set(id, {
      scheduledAt: key.scheduledAt.toISOString(),
      finishedAt: new Date().toISOString(),
      status: end.status,
    });
  }

  /**
   * The first replica to start on an empty database writes a random marker to the
   * catalog volume and the database; every replica reports what it reads in its
   * heartbeat, so `doctor` can tell a replica that mounted a different volume.
   */
  async #claimVolume(): Promise<void> {
    const existing = await this.#readVolume();
    const candidate = existing ?? randomBytes(16).toString("hex");
    const marker = await this.#table.volumeMarker(candidate);
    if (existing === null && marker === candidate) {
      await mkdir(this.#options.volumeDir, { recursive: true });
      await writeAtomically(join(this.#options.volumeDir, VOLUME_MARKER), `${marker}\n`);
    }
  }

  async #readVolume(): Promise<string | null> {
    try {
      return (await readFile(join(this.#options.volumeDir, VOLUME_MARKER), "utf8")).trim();
    } catch {
      return null;
    }
  }

  #databaseError(operation: string, error: unknown): void {
    const wrapped = unavailable(this.#options.config, error);
    this.#options.events.emit("cluster:database_error", { operation, code: wrapped.code });
    this.#options.logger.warn({ operation, error: wrapped.message }, "cluster database error");
  }
}

function keyOf(fire: Fire): FireKey {
  // Every replica computes the same cron times; to the second, so they name one fire.
  const scheduledAt = new Date(Math.floor(fire.scheduledAt.getTime() / 1000) * 1000);
  return { schedule: fire.schedule.name, tenant: fire.tenant, scheduledAt };
}

/** The deepest directory holding all of `dirs` (where the volume marker goes); undefined for none. */
export function commonDirectory(dirs: readonly string[]): string | undefined {
  if (dirs.length === 0) return undefined;
  let common = dirs[0]!;
  for (const dir of dirs.slice(1)) {
    while (dir !== common && !dir.startsWith(`${common}${sep}`)) {
      const parent = dirname(common);
      if (parent === common) break;
      common = parent;
    }
  }
  return common;
}
