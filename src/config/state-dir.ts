import { constants } from "node:fs";
import { access, mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { DuckcronError } from "../errors.js";

/** Lets an image or a unit file put the daemon's state on a volume without editing runner.yaml. */
export const STATE_DIR_ENV = "DUCKCRON_STATE_DIR";

export interface StateDir {
  path: string;
  /** What chose it, so a message can say which setting to change. */
  source: "runner.state_dir" | typeof STATE_DIR_ENV | "default";
}

/**
 * `runner.state_dir` (relative to runner.yaml), then $DUCKCRON_STATE_DIR (relative to
 * the working directory, as any path in the environment), then `.duckcron` beside
 * runner.yaml.
 */
export function effectiveStateDir(
  runnerDir: string,
  configured: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): StateDir {
  if (configured !== undefined) {
    return { path: resolve(runnerDir, configured), source: "runner.state_dir" };
  }
  const fromEnv = env[STATE_DIR_ENV];
  if (fromEnv) return { path: resolve(fromEnv), source: STATE_DIR_ENV };
  return { path: resolve(runnerDir, ".duckcron"), source: "default" };
}

/** Which setting chose the directory, for messages that say what to change. */
export function stateDirSetting(dir: StateDir): string {
  switch (dir.source) {
    case "runner.state_dir":
      return "runner.state_dir";
    case STATE_DIR_ENV:
      return `$${STATE_DIR_ENV}`;
    default:
      return "the default, .duckcron beside runner.yaml";
  }
}

export const STATE_DIR_FIX = `set runner.state_dir in runner.yaml or $${STATE_DIR_ENV} to a directory this user can write (in the container image: the /var/lib/duckcron/state volume)`;

/**
 * Creates the state directory and proves it writable before the daemon starts, so a
 * read-only config mount fails at start with the setting to change, not at the first
 * saved run time.
 */
export async function prepareStateDir(dir: StateDir): Promise<void> {
  try {
    await mkdir(dir.path, { recursive: true });
    await access(dir.path, constants.W_OK | constants.X_OK);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new DuckcronError(
      "STATE_DIR_UNWRITABLE",
      `state directory ${dir.path} (${stateDirSetting(dir)}) cannot be created or written (${reason}); ${STATE_DIR_FIX}`,
      { cause: error },
    );
  }
}
