/**
 * TEST SERVER SUPPORT — never shipped. A throwaway CA and a server certificate for
 * 127.0.0.1, made with the openssl command line at test time (Node's crypto cannot
 * issue X.509 certificates). EC P-256 keys keep it to a few milliseconds.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificates {
  /** The folder holding ca.pem, server.pem and server.key. */
  dir: string;
  /** Path of the CA certificate (PEM), for `ca_cert`. */
  caPath: string;
  cert: string;
  key: string;
  /** Removes the folder. */
  remove(): void;
}

export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "duckcron-certs-"));
  const file = (name: string) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"];
  const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  try {
    openssl(
      [
        "req",
        "-x509",
        ...ec,
        ["-keyout", file("ca.key")],
        ["-out", file("ca.pem")],
        ["-subj", "/CN=duckcron test CA"],
        ["-addext", "basicConstraints=critical,CA:TRUE"],
        ["-addext", "keyUsage=critical,keyCertSign"],
      ].flat(),
    );
    openssl(
      [
        "req",
        "-x509",
        ["-CA", file("ca.pem")],
        ["-CAkey", file("ca.key")],
        ...ec,
        ["-keyout", file("server.key")],
        ["-out", file("server.pem")],
        ["-subj", "/CN=127.0.0.1"],
        ["-addext", "subjectAltName=IP:127.0.0.1"],
        ["-addext", "basicConstraints=CA:FALSE"],
        ["-addext", "extendedKeyUsage=serverAuth"],
      ].flat(),
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = String((error as { stderr?: unknown }).stderr ?? "");
    throw new Error(`openssl could not make the test certificates: ${stderr || String(error)}`);
  }
  return {
    dir,
    caPath: file("ca.pem"),
    cert: readFileSync(file("server.pem"), "utf8"),
    key: readFileSync(file("server.key"), "utf8"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
