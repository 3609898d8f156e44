/**
 * `runner.http.listen` and `start --listen`, parsed the same way by `validate` and by
 * the HTTP server, so an address `validate` accepts is one `start` can bind.
 */

export interface ListenAddress {
  host: string;
  port: number;
}

export const LISTEN_FORMS = '"0.0.0.0:9464", "[::1]:9464", ":9464"';

/** `host:port`, `[::1]:port` or `:port` (all interfaces); undefined for anything else. */
export function parseListenAddress(listen: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.%\w]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port > 65535) return undefined;
  const host = match[1] ?? match[2] ?? "";
  return { host: host === "" ? "0.0.0.0" : host, port };
}
