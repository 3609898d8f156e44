import type pg from "pg";
import { DuckcronError } from "../errors.js";
import { quote } from "./migrations.js";

/**
 * The runs table: one row per fire (schedule, tenant, scheduled_at), claimed by one
 * replica at a time. `attempt` is the fence: every claim bumps it, and renewal,
 * publishing and finishing only succeed for the attempt that holds the row, so a
 * replica that lost its claim can never overwrite the work of the one that took over.
 * Each method is one statement (publishing: one transaction of two round trips).
 */

export interface FireKey {
  schedule: string;
  tenant: string;
  scheduledAt: Date;
}

export interface ClaimRequest extends FireKey {
  /** Claims this fire may ever get: 1 + the schedule's retries.attempts. */
  attempts: number;
  /** The catalog path the build writes; one running build per path. */
  catalog: string;
}

export type ClaimResult =
  | { won: true; attempt: number }
  | { won: false; reason: "taken" | "catalog_busy" };

export type FinishedState = "success" | "failure" | "timeout";

export interface RunRow {
  schedule: string;
  tenant: string;
  scheduledAt: Date;
  attempt: number;
  replica: string;
  state: FinishedState | "running" | "abandoned";
  startedAt: Date;
  finishedAt: Date | null;
  errorCode: string | null;
  durationMs: number | null;
}

export interface ReplicaRow {
  replica: string;
  version: string;
  startedAt: Date;
  seenAt: Date;
  running: number;
  volume: string | null;
}

const RUN_COLUMNS = `schedule, tenant, scheduled_at AS "scheduledAt", attempt, replica, state,
  started_at AS "startedAt", finished_at AS "finishedAt", error_code AS "errorCode",
  duration_ms AS "durationMs"`;

export class RunsTable {
  readonly #pool: pg.Pool;
  readonly #t: string;
  readonly #s: string;
  readonly #replica: string;
  readonly #leaseMs: number;

  constructor(pool: pg.Pool, schema: string, replica: string, leaseMs: number) {
    this.#pool = pool;
    this.#s = quote(schema);
    this.#t = `${this.#s}.runs`;
    this.#replica = replica;
    this.#leaseMs = leaseMs;
  }

  get replica(): string {
    return this.#replica;
  }

  /**
   * Claims a fire: a new row is attempt 1; an existing one is taken over (attempt + 1)
   * only if its lease has expired and its claims are not used up. One statement, so
   * two replicas can never both get a row back. A running build of the same catalog
   * (another fire, maybe another schedule) makes the claim fail.
   */
  async claim(request: ClaimRequest): Promise<ClaimResult> {
    try {
      const { rows } = await this.#pool.query<{ attempt: number }>(
        `INSERT INTO ${this.#t} AS r
           (schedule, tenant, scheduled_at, attempt, attempts, replica, catalog, state, lease_until)
         VALUES ($1, $2, $3, 1, $4, $5, $6, 'running', now() + $7 * interval '1 millisecond')
         ON CONFLICT (schedule, tenant, scheduled_at) DO UPDATE
           SET attempt = r.attempt + 1, replica = EXCLUDED.replica, catalog = EXCLUDED.catalog,
               lease_until = EXCLUDED.lease_until, started_at = now(), finished_at = NULL,
               error_code = NULL, duration_ms = NULL
           WHERE r.state = 'running' AND r.lease_until < now() AND r.attempt < r.attempts
         RETURNING attempt`,
        [
          request.schedule,
          request.tenant,
          request.scheduledAt,
          request.attempts,
          this.#replica,
          request.catalog,
          this.#leaseMs,
        ],
      );
      const row = rows[0];
      return row ? { won: true, attempt: row.attempt } : { won: false, reason: "taken" };
    } catch (error) {
      if (isUniqueViolation(error, "runs_catalog_running")) {
        return { won: false, reason: "catalog_busy" };
      }
      throw error;
    }
  }

  /** Extends the lease; false when this attempt no longer holds the fire. */
  async renew(key: FireKey, attempt: number): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      `UPDATE ${this.#t} SET lease_until = now() + $5 * interval '1 millisecond'
        WHERE schedule = $1 AND tenant = $2 AND scheduled_at = $3 AND attempt = $4
          AND replica = $6 AND state = 'running'`,
      [key.schedule, key.tenant, key.scheduledAt, attempt, this.#leaseMs, this.#replica],
    );
    return rowCount === 1;
  }

  /** Records how the fire ended; false when this attempt no longer holds it. */
  async finish(
    key: FireKey,
    attempt: number,
    state: FinishedState,
    errorCode?: string,
  ): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      `UPDATE ${this.#t} SET state = $5, error_code = $6, finished_at = now(),
              duration_ms = (extract(epoch FROM now() - started_at) * 1000)::integer
        WHERE schedule = $1 AND tenant = $2 AND scheduled_at = $3 AND attempt = $4
          AND state = 'running'`,
      [key.schedule, key.tenant, key.scheduledAt, attempt, state, errorCode ?? null],
    );
    return rowCount === 1;
  }

  /**
   * Hands a fire back without running it to the end (shutdown): its lease ends now, so
   * another replica may take it over, and this claim is not charged to its budget.
   */
  async giveBack(key: FireKey, attempt: number): Promise<void> {
    await this.#pool.query(
      `UPDATE ${this.#t} SET lease_until = now(), attempts = greatest(attempts, attempt + 1)
        WHERE schedule = $1 AND tenant = $2 AND scheduled_at = $3 AND attempt = $4
          AND state = 'running'`,
      [key.schedule, key.tenant, key.scheduledAt, attempt],
    );
  }

  /**
   * Runs `publish` (the catalog rename) only while this attempt holds an unexpired
   * lease, and marks the fire successful in the same transaction: the row stays locked
   * until the rename is done, so no takeover can slip in between. Throws LEASE_LOST
   * (publishing nothing) when the fence does not hold.
   */
  async publish(key: FireKey, attempt: number, publish: () => Promise<void>): Promise<void> {
    const client = await this.#pool.connect();
    // A server that goes away while this client is checked out emits 'error' on it;
    // unheard, that would end the process. The failing query reports it instead.
    const ignore = () => {};
    client.on("error", ignore);
    let broken: unknown;
    try {
      const lit = (value: string | number) => client.escapeLiteral(String(value));
      // BEGIN and the locking UPDATE go in one round trip (simple query protocol).
      const results = (await client.query(
        `BEGIN;
         UPDATE ${this.#t} SET state = 'success', finished_at = now(),
                duration_ms = (extract(epoch FROM now() - started_at) * 1000)::integer
          WHERE schedule = ${lit(key.schedule)} AND tenant = ${lit(key.tenant)}
            AND scheduled_at = ${lit(key.scheduledAt.toISOString())}::timestamptz
            AND attempt = ${lit(attempt)} AND state = 'running' AND lease_until > now()`,
      )) as unknown as pg.QueryResult[];
      if (results[1]?.rowCount !== 1) {
        await client.query("ROLLBACK");
        throw leaseLost(key, attempt);
      }
      try {
        await publish();
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      }
      await client.query("COMMIT");
    } catch (error) {
      if (!(error instanceof DuckcronError)) broken = error;
      throw error;
    } finally {
      client.off("error", ignore);
      // A connection that failed mid-transaction is not handed out again.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /**
   * Expired claims: those with claims left are returned for takeover; those without are
   * closed as abandoned, which frees their catalog.
   */
  async expired(limit = 500): Promise<FireKey[]> {
    await this.#pool.query(
      `UPDATE ${this.#t} SET state = 'abandoned', error_code = 'LEASE_LOST', finished_at = now()
        WHERE state = 'running' AND lease_until < now() AND attempt >= attempts`,
    );
    const { rows } = await this.#pool.query<FireKey>(
      `SELECT schedule, tenant, scheduled_at AS "scheduledAt" FROM ${this.#t}
        WHERE state = 'running' AND lease_until < now() AND attempt < attempts
        ORDER BY scheduled_at LIMIT $1`,
      [limit],
    );
    return rows;
  }

  /** Deletes finished runs older than `historyMs`; returns how many. */
  async prune(historyMs: number): Promise<number> {
    const { rowCount } = await this.#pool.query(
      `DELETE FROM ${this.#t}
        WHERE finished_at < now() - $1 * interval '1 millisecond'`,
      [historyMs],
    );
    return rowCount ?? 0;
  }

  /** The latest finished fire per schedule and tenant, across replicas. */
  async lastFinished(): Promise<RunRow[]> {
    const { rows } = await this.#pool.query<RunRow>(
      `SELECT DISTINCT ON (schedule, tenant) ${RUN_COLUMNS} FROM ${this.#t}
        WHERE state IN ('success', 'failure', 'timeout')
        ORDER BY schedule, tenant, scheduled_at DESC`,
    );
    return rows;
  }

  async recent(limit = 50): Promise<RunRow[]> {
    const { rows } = await this.#pool.query<RunRow>(
      `SELECT ${RUN_COLUMNS} FROM ${this.#t} ORDER BY started_at DESC LIMIT $1`,
      [limit],
    );
    return rows;
  }

  async heartbeat(version: string, running: number, volume: string | null): Promise<void> {
    await this.#pool.query(
      `INSERT INTO ${this.#s}.replicas (replica, version, running, volume) VALUES ($1, $2, $3, $4)
       ON CONFLICT (replica) DO UPDATE
         SET version = EXCLUDED.version, running = EXCLUDED.running, volume = EXCLUDED.volume,
             seen_at = now()`,
      [this.#replica, version, running, volume],
    );
  }

  /** Replicas seen within `withinMs`. */
  async replicas(withinMs: number): Promise<ReplicaRow[]> {
    const { rows } = await this.#pool.query<ReplicaRow>(
      `SELECT replica, version, started_at AS "startedAt", seen_at AS "seenAt", running, volume
         FROM ${this.#s}.replicas WHERE seen_at > now() - $1 * interval '1 millisecond'
        ORDER BY replica`,
      [withinMs],
    );
    return rows;
  }

  /** The marker on record, or null when no replica has written one yet. */
  async storedVolumeMarker(): Promise<string | null> {
    const { rows } = await this.#pool.query<{ marker: string }>(
      `SELECT marker FROM ${this.#s}.volume`,
    );
    return rows[0]?.marker ?? null;
  }

  /** The volume marker the first replica wrote; `marker` is set if none was recorded yet. */
  async volumeMarker(marker: string): Promise<string> {
    const { rows } = await this.#pool.query<{ marker: string }>(
      `WITH ins AS (
         INSERT INTO ${this.#s}.volume (marker, written_by) VALUES ($1, $2)
         ON CONFLICT (id) DO NOTHING RETURNING marker)
       SELECT marker FROM ins UNION ALL SELECT marker FROM ${this.#s}.volume LIMIT 1`,
      [marker, this.#replica],
    );
    return rows[0]?.marker ?? marker;
  }
}

export function leaseLost(key: FireKey, attempt: number): DuckcronError {
  return new DuckcronError(
    "LEASE_LOST",
    `schedule "${key.schedule}" tenant "${key.tenant}" (fire ${key.scheduledAt.toISOString()}): attempt ${attempt} no longer holds the fire; the build was not published`,
  );
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown };
  return e?.code === "23505" && e.constraint === constraint;
}
