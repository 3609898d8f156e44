import { Daemon } from "../daemon.js";
import { createLogger } from "../observe/logger.js";
import { Scrubber } from "../observe/scrubber.js";
import { COMMON_OPTIONS, configPath, parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

const USAGE = COMMAND_USAGE.start;

/**
 * Runs the daemon until SIGTERM or SIGINT: stop firing, let running builds finish
 * for runner.shutdown_grace, abort the rest. Exit 0 when every build finished, 1
 * when some had to be aborted. SIGHUP re-reads the config.
 */
export default async function start(argv: string[]): Promise<number> {
  const scrubber = new Scrubber();
  let daemon: Daemon;
  try {
    const { values } = parseCommandArgs(
      argv,
      { ...COMMON_OPTIONS, listen: { type: "string" } },
      USAGE,
    );
    const logger = createLogger({ scrubber, level: process.env.DUCKCRON_LOG_LEVEL ?? "info" });
    // Handlers go in before the daemon starts: a SIGHUP that arrives between "started"
    // and a later registration would take Node's default action and kill the process.
    // Signals that come while it starts are held and handled once it runs.
    let handle: ((signal: NodeJS.Signals) => void) | undefined;
    const held: NodeJS.Signals[] = [];
    const onSignal = (signal: NodeJS.Signals) => (handle ? handle(signal) : held.push(signal));
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, onSignal);
    daemon = await Daemon.start({
      configPath: configPath(values.config),
      strict: values.strict === true,
      logger,
      scrubber,
      listen: values.listen,
    });
    return await new Promise<number>((done) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          // Supervisors may repeat SIGTERM; the grace period already bounds the stop.
          // A second Ctrl-C is a person who does not want to wait.
          if (signal !== "SIGINT") return;
          logger.warn({ signal }, "second interrupt: exiting without waiting for running builds");
          done(EXIT.failure);
          return;
        }
        stopping = true;
        logger.info({ signal }, "stopping: no new runs; waiting for running builds");
        daemon.stop().then(
          ({ finished }) => {
            logger.info({ finished }, finished ? "stopped" : "stopped; some builds were aborted");
            done(finished ? EXIT.ok : EXIT.failure);
          },
          (error: unknown) => {
            logger.error({ err: error }, "error while stopping");
            done(EXIT.failure);
          },
        );
      };
      handle = (signal) => {
        if (signal !== "SIGHUP") return stop(signal);
        logger.info("SIGHUP: reloading config");
        void daemon.reload();
      };
      for (const signal of held.splice(0)) handle(signal);
    });
  } catch (error) {
    writeError(error, scrubber);
    return exitCodeFor(error);
  }
}
