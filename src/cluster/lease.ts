import { DuckcronError } from "../errors.js";
import type { Lease, RunEnd } from "../scheduler/run-lifecycle.js";
import { type FireKey, leaseLost, type RunsTable } from "./runs-table.js";

/**
 * A claimed fire, held by renewing its lease every lease/3. It is lost when a renewal
 * finds another attempt holding the row, or when no renewal has succeeded for a whole
 * lease (the database is unreachable: another replica may take over from then on).
 * Publishing goes through `publish`, fenced by the attempt number.
 */

export interface ClusterLeaseOptions {
  table: RunsTable;
  key: FireKey;
  attempt: number;
  leaseMs: number;
  /** A renewal or finish query failed (the lease may still hold). */
  onError: (error: unknown) => void;
  onLost: (error: DuckcronError) => void;
}

export class ClusterLease implements Lease {
  readonly #options: ClusterLeaseOptions;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  /** When the last successful renewal (or the claim) was sent. */
  #heldSince = Date.now();
  #renewing = false;
  #published = false;
  #released = false;

  constructor(options: ClusterLeaseOptions) {
    this.#options = options;
    this.#timer = setInterval(() => void this.#tick(), Math.max(100, options.leaseMs / 3));
    this.#timer.unref();
  }

  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  get attempt(): number {
    return this.#options.attempt;
  }

  /** Runs the catalog rename only while this attempt holds the fire (else LEASE_LOST). */
  async publish(rename: () => Promise<void>): Promise<void> {
    const { table, key, attempt } = this.#options;
    if (this.lost.aborted) throw this.lost.reason;
    await table.publish(key, attempt, rename);
    // The fire is marked successful with the rename; renewing would now find no row.
    this.#published = true;
    clearInterval(this.#timer);
  }

  release(end: RunEnd | null): void {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    const { table, key, attempt, onError } = this.#options;
    if (this.#published || this.lost.aborted) return;
    const done = end
      ? table.finish(key, attempt, end.status, end.error?.code)
      : table.giveBack(key, attempt);
    done.catch(onError);
  }

  async #tick(): Promise<void> {
    if (this.#released || this.#published || this.lost.aborted || this.#renewing) {
      this.#checkExpiry();
      return;
    }
    this.#renewing = true;
    const sent = Date.now();
    try {
      const { table, key, attempt } = this.#options;
      if (await table.renew(key, attempt)) this.#heldSince = sent;
      else if (!this.#published && !this.#released)
        this.#lose(leaseLost(this.#options.key, attempt));
    } catch (error) {
      this.#options.onError(error);
      this.#checkExpiry();
    } finally {
      this.#renewing = false;
    }
  }

  #checkExpiry(): void {
    if (this.#released || this.#published || this.lost.aborted) return;
    if (Date.now() - this.#heldSince >= this.#options.leaseMs) {
      const { key, attempt } = this.#options;
      this.#lose(
        new DuckcronError(
          "LEASE_LOST",
          `schedule "${key.schedule}" tenant "${key.tenant}": no lease renewal for ${this.#options.leaseMs} ms (cluster database unreachable); attempt ${attempt} aborted without publishing`,
        ),
      );
    }
  }

  #lose(error: DuckcronError): void {
    clearInterval(this.#timer);
    this.#options.onLost(error);
    this.#controller.abort(error);
  }
}
