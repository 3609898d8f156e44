import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { writeAtomically } from "../write-atomically.js";

/**
 * The scheduler's memory across restarts: when each schedule+tenant last ran, for
 * `catchup: latest` and for /status. One small JSON file, replaced atomically (temp
 * file, fsync, rename) so a crash leaves the old file or the new one, never half.
 */

export const STATE_FILE = "scheduler-state.json";

const runRecordSchema = z.object({
  /** The cron time the run was fired for (ISO 8601). */
  scheduledAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  status: z.enum(["success", "failure", "timeout"]),
});

const stateFileSchema = z.object({
  version: z.literal(1),
  /** schedule name -> tenant -> last finished run */
  runs: z.record(z.string(), z.record(z.string(), runRecordSchema)),
});

export type RunRecord = z.output<typeof runRecordSchema>;
type StateFile = z.output<typeof stateFileSchema>;

export interface StateStoreOptions {
  /** Write failures are reported here; the scheduler keeps running on a failed write. */
  onWarning?: (message: string) => void;
}

export interface OpenedState {
  store: StateStore;
  /** Set when the file existed but could not be used; the store starts empty. */
  issue?: string;
}

/** What the scheduler needs of its memory: the state file, or the cluster's runs table. */
export type RunHistory = Pick<StateStore, "last" | "record" | "flush">;

export class StateStore {
  readonly path: string;
  readonly #runs: StateFile["runs"];
  readonly #onWarning: (message: string) => void;
  #dirty = false;
  #writing: Promise<void> | undefined;

  private constructor(path: string, runs: StateFile["runs"], options: StateStoreOptions) {
    this.path = path;
    this.#runs = runs;
    this.#onWarning = options.onWarning ?? (() => {});
  }

  /** Reads `<dir>/scheduler-state.json`, creating `dir`. A corrupt file never throws. */
  static async open(dir: string, options: StateStoreOptions = {}): Promise<OpenedState> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, STATE_FILE);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return { store: new StateStore(path, {}, options) };
      }
      throw error;
    }
    let reason: string;
    try {
      const parsed = stateFileSchema.safeParse(JSON.parse(text));
      if (parsed.success) return { store: new StateStore(path, parsed.data.runs, options) };
      reason = parsed.error.issues[0]?.message ?? "unexpected shape";
    } catch (error) {
      reason = (error as Error).message;
    }
    // Keep the bad file for inspection; the next write replaces the original name.
    const aside = `${path}.corrupt`;
    await rename(path, aside).catch(() => {});
    return {
      store: new StateStore(path, {}, options),
      issue: `${path}: scheduler state is unreadable (${reason}); starting with no run history (moved to ${aside}); catch-up will skip missed runs until each schedule runs once`,
    };
  }

  last(schedule: string, tenant: string): RunRecord | undefined {
    return this.#runs[schedule]?.[tenant];
  }

  /** Remembers a finished run and writes the file in the background (writes coalesce). */
  record(schedule: string, tenant: string, record: RunRecord): void {
    const tenants = this.#runs[schedule] ?? {};
    tenants[tenant] = record;
    this.#runs[schedule] = tenants;
    this.#dirty = true;
    this.#writing ??= this.#writeLoop().finally(() => {
      this.#writing = undefined;
    });
  }

  /** Resolves when everything recorded so far is on disk (or its write has failed and been reported). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #writeLoop(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      try {
        await writeAtomically(
          this.path,
          JSON.stringify({ version: 1, runs: this.#runs } satisfies StateFile),
        );
      } catch (error) {
        this.#onWarning(
          `${this.path}: could not save scheduler state: ${(error as Error).message}`,
        );
      }
    }
  }
}
