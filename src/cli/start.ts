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
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      process.on("SIGHUP", () => {
        logger.info("SIGHUP: reloading config");
        void daemon.reload();
      });
    });
  } catch (error) {
    writeError(error, scrubber);
    return exitCodeFor(error);
  }
}
