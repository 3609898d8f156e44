import { vi } from "vitest";

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command module in-process and collects what it writes to stdout and stderr. */
export async function capture(command: () => Promise<number>): Promise<Captured> {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await command(), stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}
