import type { Readable } from "node:stream";

/** One parsed pino line of the daemon's stdout. */
export interface LogLine {
  msg: string;
  [field: string]: unknown;
}

/** Collects the daemon's JSON log lines; tests wait on lines instead of sleeping. */
export class Logs {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  #waiters: { match: (l: LogLine) => boolean; done: (l: LogLine) => void }[] = [];

  constructor(stream: Readable) {
    let buffer = "";
    stream.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      let newline = buffer.indexOf("\n");
      while (newline !== -1) {
        this.#add(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf("\n");
      }
    });
  }

  #add(text: string): void {
    this.raw.push(text);
    const line = JSON.parse(text) as LogLine;
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(line)) return true;
      w.done(line);
      return false;
    });
  }

  /** The next line (from now on, or already seen after `from`) that matches. */
  next(match: (l: LogLine) => boolean, from = this.lines.length): Promise<LogLine> {
    const seen = this.lines.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((done) => this.#waiters.push({ match, done }));
  }
}
