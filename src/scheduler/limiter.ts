/**
 * Concurrency slots: a global limit and a per-tenant limit. Waiters are served in
 * arrival order, except that a waiter whose tenant is at its limit does not hold up
 * waiters of other tenants behind it (no head-of-line blocking); within one tenant
 * the order is strictly FIFO.
 */

export interface Limits {
  global: number;
  perTenant: number;
}

export interface Waiter {
  readonly tenant: string;
  /** Called once, synchronously from enqueue() or release(), when a slot is granted. */
  readonly start: () => void;
}

export class ConcurrencyLimiter<W extends Waiter = Waiter> {
  #limits: Limits;
  #inFlight = 0;
  readonly #perTenant = new Map<string, number>();
  #queue: W[] = [];

  constructor(limits: Limits) {
    this.#limits = { ...limits };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** New limits apply to the next grant; slots already held are never taken back. */
  setLimits(limits: Limits): void {
    this.#limits = { ...limits };
    this.#pump();
  }

  enqueue(waiter: W): void {
    this.#queue.push(waiter);
    this.#pump();
  }

  /** Removes a waiter that has not started; false if it was not waiting. */
  cancel(waiter: W): boolean {
    const index = this.#queue.indexOf(waiter);
    if (index < 0) return false;
    this.#queue.splice(index, 1);
    return true;
  }

  /** Drops every waiter and returns them, in order. */
  drain(): W[] {
    const dropped = this.#queue;
    this.#queue = [];
    return dropped;
  }

  release(tenant: string): void {
    this.#inFlight--;
    const held = (this.#perTenant.get(tenant) ?? 1) - 1;
    if (held > 0) this.#perTenant.set(tenant, held);
    else this.#perTenant.delete(tenant);
    this.#pump();
  }

  #pump(): void {
    const granted: W[] = [];
    let i = 0;
    while (i < this.#queue.length && this.#inFlight < this.#limits.global) {
      const waiter = this.#queue[i]!;
      const held = this.#perTenant.get(waiter.tenant) ?? 0;
      if (held < this.#limits.perTenant) {
        this.#queue.splice(i, 1);
        this.#inFlight++;
        this.#perTenant.set(waiter.tenant, held + 1);
        granted.push(waiter);
      } else {
        i++;
      }
    }
    // Start after the bookkeeping so a start() that re-enters (a synchronous failure
    // releasing its slot) sees a consistent queue.
    for (const waiter of granted) waiter.start();
  }
}
