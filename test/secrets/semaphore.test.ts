import { describe, expect, it } from "vitest";
import { Semaphore } from "../../src/secrets/semaphore.js";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("Semaphore", () => {
  it("runs at most `max` tasks at once and starts waiters in arrival order", async () => {
    const semaphore = new Semaphore(2);
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((gate, i) =>
      semaphore.run(async () => {
        started.push(i);
        await gate.promise;
      }),
    );
    await new Promise(setImmediate);
    expect(started).toEqual([0, 1]);
    expect(semaphore.waiting).toBe(2);

    gates[1]?.resolve();
    await new Promise(setImmediate);
    expect(started).toEqual([0, 1, 2]);

    for (const gate of gates) gate.resolve();
    await Promise.all(runs);
    expect(started).toEqual([0, 1, 2, 3]);
    expect(semaphore.active).toBe(0);
  });

  it("frees the slot when a task fails", async () => {
    const semaphore = new Semaphore(1);

    await expect(semaphore.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow(
      "boom",
    );
    await expect(semaphore.run(async () => "next")).resolves.toBe("next");
  });

  it("drops an aborted waiter from the queue without running it", async () => {
    const semaphore = new Semaphore(1);
    const gate = deferred();
    const busy = semaphore.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;

    const queued = semaphore.run(async () => {
      ran = true;
    }, controller.signal);
    controller.abort(new Error("cancelled"));

    await expect(queued).rejects.toThrow("cancelled");
    expect(semaphore.waiting).toBe(0);
    gate.resolve();
    await busy;
    expect(ran).toBe(false);
    expect(semaphore.active).toBe(0);
  });

  it("rejects a size below one", () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});
