import { constants, type Stats } from "node:fs";
import { open, stat } from "node:fs/promises";

/**
 * A config file is small text a person wrote. Anything else named as one (a FIFO that
 * never ends, /dev/urandom, a multi-gigabyte log) would block or exhaust memory
 * before the YAML parser could object, so it is refused before a byte is read.
 */

/** The largest runner.yaml or job file read; a 500-view job is about 60 KiB. */
export const MAX_CONFIG_BYTES = 2 * 1024 * 1024;

/** Why a config file cannot be used; the message is complete without a path. */
export class UnreadableConfigFile extends Error {
  override readonly cause: unknown;
  constructor(reason: string, cause?: unknown) {
    super(reason);
    this.cause = cause;
  }
}

export async function readConfigFile(path: string): Promise<string> {
  // stat, not lstat: a symlink to a regular file is how Kubernetes mounts a ConfigMap.
  const before = await stat(path).catch((error: unknown) => {
    throw new UnreadableConfigFile(failure(error), error);
  });
  checkShape(before);
  // O_NONBLOCK: a FIFO swapped in after the stat must not block the open.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(
    (error: unknown) => {
      throw new UnreadableConfigFile(failure(error), error);
    },
  );
  try {
    checkShape(await handle.stat());
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_BYTES) throw new UnreadableConfigFile(tooLarge());
    }
    return buffer.toString("utf8", 0, length);
  } finally {
    await handle.close();
  }
}

function checkShape(info: Stats): void {
  if (info.isDirectory()) throw new UnreadableConfigFile("it is a directory");
  if (!info.isFile()) throw new UnreadableConfigFile(`not a regular file (${kind(info)})`);
  if (info.size > MAX_CONFIG_BYTES) throw new UnreadableConfigFile(tooLarge());
}

function tooLarge(): string {
  return `larger than the ${MAX_CONFIG_BYTES / 1024 / 1024} MiB a config file may have`;
}

function kind(info: Stats): string {
  if (info.isFIFO()) return "a FIFO";
  if (info.isCharacterDevice() || info.isBlockDevice()) return "a device";
  if (info.isSocket()) return "a socket";
  return "not a file";
}

function failure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    default:
      return code ?? String(error);
  }
}
