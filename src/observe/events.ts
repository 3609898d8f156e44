import { EventEmitter } from "node:events";

/**
 * What the core modules report. Metrics, the audit trail, logs and tests subscribe;
 * the core never knows who listens. No event carries a secret value: where a value
 * matters (rotation), it is a keyed fingerprint computed by whoever the resolver was
 * given.
 */
export interface DuckcronEvents {
  /** One request to a secrets backend (a single read may serve many references). */
  "secret:request": {
    backend: string;
    tenant: string;
    status: "ok" | "not_found" | "denied" | "error";
    durationMs: number;
  };
  /** One `${secret:...}` reference resolved (or not) for a tenant. */
  "secret:resolved": {
    schedule?: string | undefined;
    tenant: string;
    /** As written, e.g. `secret:db.password`. */
    reference: string;
    backend: string;
    cacheHit: boolean;
    outcome: "ok" | "stale" | "not_found" | "error";
    /** HMAC of the value when the audit trail has a key; never the value. */
    fingerprint?: string | undefined;
  };
  /** A DuckDB secret created, replaced or dropped during a build. */
  "duckdb:secret": {
    schedule?: string | undefined;
    tenant: string;
    catalog: string;
    name: string;
    type: string;
    persistent: boolean;
    scope: readonly string[];
    action: "created" | "replaced" | "dropped";
  };
  "catalog:built": {
    schedule?: string | undefined;
    tenant: string;
    path: string;
    fingerprint: string;
    /** True when nothing changed and the existing catalog was kept. */
    skipped: boolean;
    viewCount: number;
    views: { added: readonly string[]; changed: readonly string[]; dropped: readonly string[] };
    durationMs: number;
  };
  "run:started": {
    runId: string;
    schedule: string;
    tenant: string;
    attempt: number;
    /** The cron time the run was fired for (ISO 8601): with the replica id, a fire's identity. */
    scheduledAt?: string | undefined;
  };
  "run:finished": {
    runId: string;
    schedule: string;
    tenant: string;
    attempt: number;
    scheduledAt?: string | undefined;
    status: "success" | "failure" | "timeout";
    durationMs: number;
    degraded: boolean;
    error?: { code: string; message: string; retryable: boolean } | undefined;
  };
  /** A fire that did not start a run: overlap: skip, or queued when the daemon stopped. */
  "run:skipped": {
    schedule: string;
    tenant: string;
    scheduledAt?: string | undefined;
    reason: "overlap" | "shutdown";
  };
  "run:retry": {
    runId: string;
    schedule: string;
    tenant: string;
    attempt: number;
    scheduledAt?: string | undefined;
    delayMs: number;
  };
  /** Cluster mode: this replica asked the database for a fire. */
  "cluster:claim": {
    schedule: string;
    tenant: string;
    scheduledAt: string;
    /** won: run it here; taken: another replica has it; catalog_busy: its catalog is being built. */
    outcome: "won" | "taken" | "catalog_busy" | "error";
    /** Won a fire another replica had claimed and let expire. */
    takeover: boolean;
    durationMs: number;
  };
  /** Cluster mode: a running fire was no longer this replica's; its build was not published. */
  "cluster:lease_lost": { schedule: string; tenant: string; scheduledAt: string; attempt: number };
  /** Cluster mode: a query to the cluster database failed. */
  "cluster:database_error": { operation: string; code: string };
  /** Cluster mode: replicas with a recent heartbeat, this one included. */
  "cluster:replicas": { count: number };
  "config:loaded": {
    path: string;
    outcome: "loaded" | "reloaded" | "rejected";
    error?: string | undefined;
  };
}

export type EventName = keyof DuckcronEvents;
export type Listener<K extends EventName> = (payload: DuckcronEvents[K]) => void;

/** A typed wrapper over EventEmitter; one per daemon or CLI invocation, never global. */
export class EventBus {
  readonly #emitter = new EventEmitter({ captureRejections: false });

  constructor() {
    this.#emitter.setMaxListeners(100);
  }

  on<K extends EventName>(event: K, listener: Listener<K>): () => void {
    this.#emitter.on(event, listener as (payload: unknown) => void);
    return () => this.#emitter.off(event, listener as (payload: unknown) => void);
  }

  emit<K extends EventName>(event: K, payload: DuckcronEvents[K]): void {
    this.#emitter.emit(event, payload);
  }

  /** Resolves with the next payload of `event` that matches; tests wait on this instead of sleeping. */
  next<K extends EventName>(
    event: K,
    match: (p: DuckcronEvents[K]) => boolean = () => true,
  ): Promise<DuckcronEvents[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (payload) => {
        if (match(payload)) {
          off();
          resolve(payload);
        }
      });
    });
  }
}
