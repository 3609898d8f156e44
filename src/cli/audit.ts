import { DuckcronError } from "../errors.js";
import { verifyAuditLog } from "../observe/audit-verify.js";
import { parseCommandArgs } from "./args.js";
import { EXIT, exitCodeFor, writeError } from "./output.js";
import { COMMAND_USAGE } from "./usage.js";

const USAGE = COMMAND_USAGE.audit;

/** Checks an audit trail's hash chain and names the first record that breaks it. */
export default async function audit(argv: string[]): Promise<number> {
  try {
    const { positionals } = parseCommandArgs(argv, {}, USAGE);
    const [action, path] = positionals;
    if (action !== "verify" || path === undefined || positionals.length !== 2) {
      throw new DuckcronError("USAGE", `usage: ${USAGE}`);
    }
    const result = await verifyAuditLog(path);
    if (result.ok) {
      // The head hash lets an operator pin the log elsewhere: a trimmed tail changes it.
      process.stdout.write(`${path}: ok, ${result.records} records, head ${result.head}\n`);
      return EXIT.ok;
    }
    process.stdout.write(
      `${path}:${result.firstBad.line}: chain broken: ${result.firstBad.reason}\n`,
    );
    return EXIT.failure;
  } catch (error) {
    writeError(error);
    return exitCodeFor(error);
  }
}
