import { DuckcronError } from "../errors.js";

/**
 * Reasons the scheduler aborts a run with. They travel as `signal.reason`, so a RunFn
 * that rethrows the reason reports the right code. Neither is retried.
 */

export class RunTimeoutError extends DuckcronError {
  constructor(schedule: string, tenant: string, timeoutMs: number) {
    super(
      "RUN_TIMEOUT",
      `run of schedule "${schedule}" for tenant "${tenant}" did not finish within its timeout of ${timeoutMs} ms; raise runner.schedules[].timeout if the build is expected to take longer`,
    );
  }
}

export class RunAbortedError extends DuckcronError {
  constructor(schedule: string, tenant: string, graceMs: number) {
    super(
      "RUN_ABORTED",
      `run of schedule "${schedule}" for tenant "${tenant}" was aborted at shutdown after the grace period of ${graceMs} ms; raise runner.shutdown_grace to let builds finish`,
    );
  }
}
